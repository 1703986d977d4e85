//! Runs the correlator over what the store holds: the driver around the pure
//! `crosswind-correlate` engine. It follows the `events` table by a cursor checkpoint, replays
//! event time from the earliest new event (after warming up on the history before it), stores
//! signals, findings, identities and aliases, and queues the new ones for Splunk — all in one
//! transaction with the cursor, so a crash re-runs the same range and, ids being deterministic,
//! doubles nothing.
//!
//! A long-lived `Correlation` (the daemon's) also keeps a snapshot of the engine a replay window
//! behind the newest events, so a run replays only that window instead of warming up over the
//! whole look-back (14 days of history for the new-IP modifier). Records later than the window
//! fall back to the full warm-up; the results are the same either way.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use crosswind_correlate::{CorrelateConfig, Engine, IdentityLinks, aliases_of, score_identity};
use crosswind_hec::Renderer;
use crosswind_model::{Alias, CloudProvider, Finding, Signal};
use crosswind_store::correlate::{self as db, CORRELATE_CHECKPOINT};
use crosswind_store::outbox::Quota;
use crosswind_store::{Store, StoreError};

use crate::config::Config;
use crate::reconcile::reconcile;

/// How far behind the newest event the engine snapshot is kept: records arriving up to this
/// late (Entra sign-ins routinely show up 30 minutes late) replay from the snapshot.
pub const REPLAY_WINDOW_MS: i64 = 2 * 3_600_000;

/// How far ahead of the host clock an event may be dated and still move the snapshot.
const FUTURE_SLACK_MS: i64 = 86_400_000;

/// The correlator's configuration, resolved (identities file read), and its engine snapshot.
pub struct Correlation {
    config: CorrelateConfig,
    links: IdentityLinks,
    max_outbox_rows: u64,
    snapshot: Mutex<Option<Snapshot>>,
}

/// The engine's state after every stored event with `time < at`.
struct Snapshot {
    engine: Engine,
    at: i64,
}

impl std::fmt::Debug for Correlation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correlation")
            .field("config", &self.config)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

/// What one run did.
#[derive(Clone, Debug, Default)]
pub struct CorrelationStats {
    /// Events replayed (new ones and the ones after them in event time).
    pub events: u64,
    pub signals_new: u64,
    pub findings_new: Vec<Finding>,
    /// The run replayed from the engine snapshot instead of warming up on the full look-back.
    pub from_snapshot: bool,
    /// The stored cursor was ahead of every event id ever handed out (a store whose ids went
    /// back) and was moved back from this value; see `crosswind_store::cursor`.
    pub cursor_rebased_from: Option<i64>,
}

impl Correlation {
    /// From the config's `[correlate]` section; a relative `identities_file` is resolved against
    /// `config_dir`.
    pub fn from_config(config: &Config, config_dir: Option<&Path>) -> anyhow::Result<Correlation> {
        let correlate = config.correlate_config().map_err(anyhow::Error::msg)?;
        let links = match &correlate.identities_file {
            Some(file) => {
                let path = config_dir.unwrap_or(Path::new(".")).join(file);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read identities file {}", path.display()))?;
                IdentityLinks::from_toml(&text)
                    .with_context(|| format!("invalid identities file {}", path.display()))?
            }
            None => IdentityLinks::default(),
        };
        Ok(Correlation {
            config: correlate,
            links,
            max_outbox_rows: config
                .splunk
                .as_ref()
                .map_or(u64::MAX, |s| s.max_outbox_rows),
            snapshot: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &CorrelateConfig {
        &self.config
    }

    /// Correlates every event stored since the last run. Idempotent; `renderer` queues new
    /// signals and findings for Splunk in the same transaction.
    pub fn run_pending(
        &self,
        store: &mut Store,
        renderer: Option<&Renderer>,
    ) -> anyhow::Result<CorrelationStats> {
        let cursor = crosswind_store::cursor::follower_cursor(store, CORRELATE_CHECKPOINT)?;
        if let Some(from) = cursor.rebased_from {
            tracing::warn!(
                cursor = from,
                rebased_to = cursor.after,
                "The correlator's cursor was ahead of every stored event id (ids went back); \
                 re-reading from the first event it cannot have seen."
            );
        }
        let Some((start, max_id)) = db::pending_since(store, cursor.after)? else {
            return Ok(CorrelationStats {
                cursor_rebased_from: cursor.rebased_from,
                ..CorrelationStats::default()
            });
        };
        // Events dated in the future (a source clock far off, year 9999 in a broken or hostile
        // record) do not count as the newest: the snapshot would be kept past every real event
        // and each run would warm up over the full look-back instead of replaying from it.
        let until = crosswind_store::now_ms().saturating_add(FUTURE_SLACK_MS);
        let newest = db::max_event_time_until(store, until)?
            .unwrap_or(start)
            .min(until);
        // Replay from the snapshot when it predates every new event; otherwise warm a fresh
        // engine up on the history before the earliest new event.
        let saved = self
            .snapshot
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .filter(|s| s.at <= start);
        let from_snapshot = saved.is_some();
        let (mut engine, replay_from) = match saved {
            Some(mut s) => {
                // The snapshot knows what fired before it; signals stored since (by the runs
                // after it) count from their own times, as for a fresh engine. Those from
                // `start` on are the replay's to conclude again (`reconcile`).
                let stored = db::signals_between(store, s.at, start)?;
                s.engine.seed_signals(stored.iter());
                (s.engine, s.at)
            }
            None => {
                let mut engine = Engine::new(self.config.clone(), self.links.clone());
                let warm_from = start.saturating_sub(engine.max_lookback_ms());
                // What already fired, for the repeat rule: every stored signal from the seed
                // look-back up to `start`; those after it are the replay's to conclude again
                // (`reconcile`).
                let seed_from = start.saturating_sub(engine.seed_lookback_ms());
                let stored = db::signals_between(store, seed_from, start)?;
                engine.seed_signals(stored.iter());
                db::for_each_event_ordered(store, warm_from, start, |e| {
                    engine.warm_up(&e.event);
                    Ok::<_, StoreError>(true)
                })?;
                (engine, start)
            }
        };
        let snapshot_at = replay_from.max(newest.saturating_sub(REPLAY_WINDOW_MS));
        let mut next_snapshot: Option<Snapshot> = None;

        let mut stats = CorrelationStats {
            from_snapshot,
            cursor_rebased_from: cursor.rebased_from,
            ..CorrelationStats::default()
        };
        let mut signals: Vec<Signal> = Vec::new();
        let mut aliases: BTreeMap<Alias, (i64, i64)> = BTreeMap::new();
        db::for_each_event_ordered(store, replay_from, i64::MAX, |e| {
            let t = e.event.time;
            if next_snapshot.is_none() && t >= snapshot_at {
                next_snapshot = Some(Snapshot {
                    engine: engine.clone(),
                    at: snapshot_at,
                });
            }
            stats.events += 1;
            engine.process(&e.event, &mut signals);
            if t >= start {
                for alias in aliases_of(&e.event, &self.links) {
                    let seen = aliases.entry(alias).or_insert((t, t));
                    seen.0 = seen.0.min(t);
                    seen.1 = seen.1.max(t);
                }
            }
            Ok::<_, StoreError>(true)
        })?;
        // Signals before `start` were stored by the runs that saw their events.
        signals.retain(|s| s.time >= start);
        // Signals stored from `start` on were concluded before these events arrived: the replay
        // is what counts now (late data; see `reconcile`).
        let stored_later = db::signals_between(store, start, i64::MAX)?;
        let reconciled = reconcile(&stored_later, &signals);
        if !reconciled.rescored.is_empty() || !reconciled.withdrawals.is_empty() {
            tracing::info!(
                rescored = reconciled.rescored.len(),
                withdrawn = reconciled.withdrawals.len(),
                "Late events changed what was concluded after them: stored signals re-scored \
                 or taken back, and Splunk told the difference."
            );
        }
        let stored_later: HashSet<&str> = stored_later.iter().map(|s| s.id.as_str()).collect();
        let current: HashMap<&str, &Signal> = signals
            .iter()
            .chain(&reconciled.withdrawals)
            .map(|s| (s.id.as_str(), s))
            .collect();
        let next_snapshot = next_snapshot.unwrap_or(Snapshot {
            engine,
            at: snapshot_at.max(newest.saturating_add(1)),
        });

        // Findings: every identity with a signal in this run, scored over its stored history
        // plus what this run found (ids dedup the overlap).
        let identities: BTreeSet<&str> = signals
            .iter()
            .chain(&reconciled.withdrawals)
            .map(|s| s.risk_object.as_str())
            .filter(|r| !r.is_empty())
            .collect();
        let score_from = start.saturating_sub(self.config.score_lookback_ms());
        let mut findings = Vec::new();
        // The stored signals a finding lists, so its risk event names them (new ones are in
        // `signals`).
        let mut behind: Vec<Signal> = Vec::new();
        for identity in identities {
            let mut history = db::signals_of(store, identity, score_from)?;
            // The replay's version of a stored signal is the one that counts.
            for h in history.iter_mut() {
                if let Some(now) = current.get(h.id.as_str()) {
                    *h = (*now).clone();
                }
            }
            let stored = history.len();
            history.extend(
                signals
                    .iter()
                    .chain(&reconciled.withdrawals)
                    .filter(|s| s.risk_object == identity && !stored_later.contains(s.id.as_str()))
                    .cloned(),
            );
            let prior_findings = db::findings_of(store, identity)?;
            let raised = score_identity(identity, &history, &prior_findings, &self.config).findings;
            if !raised.is_empty() {
                history.truncate(stored);
                behind.extend(history);
            }
            findings.extend(raised);
        }

        let mut batch = store.begin()?;
        for (alias, (first, last)) in &aliases {
            db::upsert_alias_seen(&mut batch, alias, *first, *last)?;
        }
        for s in &reconciled.rescored {
            db::replace_signal(&mut batch, s)?;
        }
        let new_signals = db::insert_signals(&mut batch, &signals)?;
        let new_withdrawals = db::insert_signals(&mut batch, &reconciled.withdrawals)?;
        let new_findings = db::insert_findings(&mut batch, &findings)?;
        if let Some(renderer) = renderer {
            let mut quota = Quota::check(&batch, self.max_outbox_rows)?;
            let to_splunk = new_signals
                .iter()
                .map(|&i| &signals[i])
                .chain(reconciled.corrections.iter())
                .chain(new_withdrawals.iter().map(|&i| &reconciled.withdrawals[i]));
            for s in to_splunk {
                if let Some(r) = renderer.risk(s) {
                    crosswind_hec::enqueue(&batch, &mut quota, &r)?;
                }
            }
            let behind: HashMap<&str, &Signal> = behind
                .iter()
                .chain(signals.iter())
                .map(|s| (s.id.as_str(), s))
                .collect();
            for &i in &new_findings {
                if let Some(r) = renderer.finding(&findings[i], &behind) {
                    crosswind_hec::enqueue(&batch, &mut quota, &r)?;
                }
            }
        }
        batch.set_checkpoint(CORRELATE_CHECKPOINT, &max_id.to_string())?;
        batch.commit()?;
        // Only a committed run moves the snapshot forward.
        if let Ok(mut s) = self.snapshot.lock() {
            *s = Some(next_snapshot);
        }
        stats.signals_new = (new_signals.len() + new_withdrawals.len()) as u64;
        stats.findings_new = new_findings.iter().map(|&i| findings[i].clone()).collect();
        Ok(stats)
    }
}

/// The clouds these signals were seen in, sorted, once each.
pub fn clouds_of<'a>(signals: impl IntoIterator<Item = &'a Signal>) -> Vec<CloudProvider> {
    let mut clouds: Vec<CloudProvider> = signals
        .into_iter()
        .flat_map(|s| s.cloud.iter().copied())
        .collect();
    clouds.sort();
    clouds.dedup();
    clouds
}

/// Clouds as the CLI prints them.
pub fn clouds_text(clouds: &[CloudProvider]) -> String {
    clouds
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join("+")
}
