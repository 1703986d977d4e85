//! `aws_unused_region`: RunInstances, CreateFunction or CreateStack in a region where the account
//! had no activity in the look-back (14 days of stored history) — infrastructure where nobody
//! looks (T1535). Silent until the account has enough history for "unused" to mean something:
//! its earliest activity within the look-back must be at least `threshold` days (7) old, so a
//! freshly connected account, or a team's first days, raise nothing (docs/detections.md).
//!
//! Prior use is activity in the look-back *before the last `window` (24 h)*: an intruder who
//! looks up an AMI, creates a key pair or a security group in the new region minutes before
//! RunInstances has not made the region used.
//!
//! State, from events alone (warm-up rebuilds it): per account, each region's successful
//! activity as (earliest, latest) per UTC day, and the UTC days the account was active, both
//! within the look-back. History is counted in UTC days so that it only reads the look-back,
//! which the engine's warm-up covers (`Engine::max_lookback_ms`): a replay then sees the same
//! history as an uninterrupted run.

use crate::StateMap;

use crosswind_model::{CloudProvider, Event};

use super::{AWS, Ctx, Detector, Sink};
use crate::catalog::{SignalKind, UNUSED_REGION_CALLS};
use crate::config::CorrelateConfig;
use crate::emit::Draft;
use crate::engine::{DAY_MS, trim_oldest};
use crate::identity::Resolved;
use crate::net::{fmt_duration, fmt_time};

const MAX_ACCOUNTS: usize = 100_000;
const MAX_REGIONS_PER_ACCOUNT: usize = 64;

/// A region's successful activity: (day, earliest, latest) per UTC day, ascending by day.
/// Whether any activity fell in a span of more than a day is exact from these two per day: a
/// day cut by the span's start keeps its latest inside, one cut by its end its earliest.
#[derive(Clone, Default)]
struct RegionUse {
    days: Vec<(i64, i64, i64)>,
}

impl RegionUse {
    fn observe(&mut self, t: i64) {
        let day = t.div_euclid(DAY_MS);
        match self.days.binary_search_by_key(&day, |d| d.0) {
            Ok(i) => {
                let d = &mut self.days[i];
                d.1 = d.1.min(t);
                d.2 = d.2.max(t);
            }
            Err(i) => self.days.insert(i, (day, t, t)),
        }
    }

    /// Any activity in `from..=to`.
    fn active_within(&self, from: i64, to: i64) -> bool {
        self.days
            .iter()
            .any(|&(_, first, last)| (from..=to).contains(&first) || (from..=to).contains(&last))
    }

    fn latest(&self) -> i64 {
        self.days.last().map_or(i64::MIN, |d| d.2)
    }
}

#[derive(Clone, Default)]
struct AccountHistory {
    /// Region → its activity.
    regions: StateMap<String, RegionUse>,
    /// The UTC days (ascending, distinct) the account was active within the look-back.
    days: Vec<i64>,
}

/// Each account's regions and active days.
#[derive(Clone, Default)]
pub(crate) struct UnusedRegion {
    accounts: StateMap<String, AccountHistory>,
}

fn account_and_region(ev: &Event) -> Option<(&str, &str)> {
    let account = ev.cloud.account.uid.as_deref().map(str::trim)?;
    let region = ev.cloud.region.as_deref().map(str::trim)?;
    (!account.is_empty() && !region.is_empty()).then_some((account, region))
}

impl UnusedRegion {
    /// How far back the state it reads reaches: the look-back, plus the day its earliest
    /// active day may start before it (history is counted in UTC days).
    pub fn lookback_ms(cfg: &CorrelateConfig) -> i64 {
        cfg.signal(SignalKind::AwsUnusedRegion)
            .lookback_ms
            .saturating_add(DAY_MS)
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// A successful call named `op` (without API version), before it counts as activity.
    pub fn on_call(&mut self, c: &Ctx<'_>, who: &Resolved, op: &str, sink: &mut Sink<'_>) {
        if !UNUSED_REGION_CALLS.contains(&op) {
            return;
        }
        let Some((account, region)) = account_and_region(c.ev) else {
            return;
        };
        let set = c.cfg.signal(SignalKind::AwsUnusedRegion);
        let lookback = set.lookback_ms;
        let Some(h) = self.accounts.get(account) else {
            return; // no history at all
        };
        let today = c.t.div_euclid(DAY_MS);
        let lookback_days = lookback.div_euclid(DAY_MS);
        let Some(first_day) = h
            .days
            .iter()
            .copied()
            .find(|d| *d <= today && today - d <= lookback_days)
        else {
            return;
        };
        let history_days = today - first_day;
        if history_days < i64::from(set.threshold) {
            return;
        }
        // Prior use: activity from the look-back's start to `window` before the call.
        let recent = set.window_ms.clamp(0, lookback);
        let (from, to) = (c.t.saturating_sub(lookback), c.t.saturating_sub(recent));
        let here = h.regions.get(region);
        if here.is_some_and(|r| r.active_within(from, to)) {
            return;
        }
        let mut used: Vec<&str> = h
            .regions
            .iter()
            .filter(|(_, r)| r.active_within(from, to))
            .map(|(name, _)| name.as_str())
            .collect();
        used.sort_unstable();
        // The region's activity just before (the intruder's preparation), said as such.
        let prepared = here
            .and_then(|r| {
                r.days
                    .iter()
                    .map(|d| d.1)
                    .find(|first| *first > to && *first <= c.t)
            })
            .map(|first| format!(", none before {}", fmt_time(first)))
            .unwrap_or_default();
        let msg = format!(
            "{} called {op} in {region} from {}: account {account} had no activity in {region} in the {} before the last {}{prepared} (its history starts {} days back, on {}; regions in use: {})",
            who.name,
            c.ip.unwrap_or("an unknown IP"),
            fmt_duration(lookback),
            fmt_duration(recent),
            history_days,
            fmt_time(first_day.saturating_mul(DAY_MS)),
            if used.is_empty() {
                "none".to_owned()
            } else {
                used.join(", ")
            }
        );
        sink.fire(
            c.t,
            Draft {
                kind: SignalKind::AwsUnusedRegion,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: c.ip,
                clouds: AWS,
            },
            1.0,
            || (msg, vec![c.id.to_owned()]),
        );
    }

    /// After the detectors: a successful AWS event is activity of its account in its region.
    pub fn on_event(&mut self, ev: &Event, t: i64) {
        if ev.provider() != CloudProvider::Aws || !ev.is_success() {
            return;
        }
        let Some((account, region)) = account_and_region(ev) else {
            return;
        };
        let h = match self.accounts.get_mut(account) {
            Some(h) => h,
            None => self.accounts.entry(account.to_owned()).or_default(),
        };
        match h.regions.get_mut(region) {
            Some(used) => used.observe(t),
            None => {
                if h.regions.len() >= MAX_REGIONS_PER_ACCOUNT
                    && let Some(oldest) = h
                        .regions
                        .iter()
                        .min_by(|a, b| a.1.latest().cmp(&b.1.latest()).then_with(|| a.0.cmp(b.0)))
                        .map(|(r, _)| r.clone())
                {
                    h.regions.remove(&oldest);
                }
                let mut used = RegionUse::default();
                used.observe(t);
                h.regions.insert(region.to_owned(), used);
            }
        }
        let day = t.div_euclid(DAY_MS);
        if let Err(at) = h.days.binary_search(&day) {
            h.days.insert(at, day);
        }
    }
}

impl Detector for UnusedRegion {
    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let lookback = cfg.signal(SignalKind::AwsUnusedRegion).lookback_ms;
        let cut = now.saturating_sub(lookback);
        let day_cut = cut.div_euclid(DAY_MS);
        self.accounts.retain(|_, h| {
            h.regions.retain(|_, r| {
                r.days.retain(|d| d.2 >= cut);
                !r.days.is_empty()
            });
            h.days.retain(|d| *d >= day_cut);
            !h.days.is_empty()
        });
        trim_oldest(&mut self.accounts, MAX_ACCOUNTS, |h| {
            h.days.last().map_or(i64::MIN, |d| d.saturating_mul(DAY_MS))
        });
    }
}
