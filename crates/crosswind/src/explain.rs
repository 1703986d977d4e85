//! `crosswind explain IDENTITY` and `crosswind findings`: one identity's cross-cloud story —
//! aliases in both clouds, a timeline of its events and signals, its score over time — and the
//! findings raised.

use std::io::{self, Write};

use anyhow::Context;
use crosswind_correlate::{CorrelateConfig, IdentityScore, ScorePoint, score_identity};
use crosswind_model::{Alias, Event, Finding, Signal};
use crosswind_store::Store;
use crosswind_store::correlate::{
    aliases_of, events_by_record_ids, events_for_names, findings_of, identity_for_alias, signals_of,
};
use serde_json::json;

use crate::correlation::clouds_text;
use crate::output::{OutputFormat, Rows};
use crate::timearg::format_time;

/// Events shown in a timeline at most.
const TIMELINE_EVENTS: usize = 200;

/// Findings as rows, newest first.
pub fn findings_rows(findings: &[Finding]) -> Rows {
    let mut rows = Rows::new(vec![
        "raised_at",
        "identity",
        "score",
        "threshold",
        "clouds",
        "signals",
        "first_seen",
        "last_seen",
        "summary",
    ]);
    for f in findings {
        rows.push(vec![
            json!(format_time(f.raised_at)),
            json!(f.identity),
            json!((f.score * 10.0).round() / 10.0),
            json!(f.threshold),
            json!(clouds_text(&f.clouds)),
            json!(f.signals.len()),
            json!(format_time(f.first_seen)),
            json!(format_time(f.last_seen)),
            json!(f.summary),
        ]);
    }
    rows
}

/// One identity's story across both clouds: what `explain` prints and the report draws.
pub struct Story {
    /// The canonical identity (risk object).
    pub identity: String,
    pub aliases: Vec<Alias>,
    /// Every stored signal on it, oldest first.
    pub signals: Vec<Signal>,
    pub findings: Vec<Finding>,
    /// The score after each signal (crosswind-correlate's scoring).
    pub scored: IdentityScore,
}

impl Story {
    /// The story of `who` (a canonical identity or any alias of it); `None` when nothing is
    /// known about it.
    pub fn load(
        store: &Store,
        who: &str,
        config: &CorrelateConfig,
    ) -> anyhow::Result<Option<Story>> {
        let Some(identity) = identity_for_alias(store, who)? else {
            return Ok(None);
        };
        let aliases = aliases_of(store, &identity)?;
        let signals = signals_of(store, &identity, i64::MIN)?;
        let findings = findings_of(store, &identity)?;
        let scored = score_identity(&identity, &signals, &findings, config);
        Ok(Some(Story {
            identity,
            aliases,
            signals,
            findings,
            scored,
        }))
    }

    /// The user names its events may carry: every alias and the identity, as recorded and
    /// lower-cased.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .aliases
            .iter()
            .map(|a| a.value.clone())
            .chain([self.identity.clone()])
            .flat_map(|n| {
                let lower = n.to_lowercase();
                [n, lower]
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The highest score it reached.
    pub fn peak(&self) -> Option<&ScorePoint> {
        self.scored
            .timeline
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score).then(b.time.cmp(&a.time)))
    }

    /// The record ids of the events behind its signals.
    pub fn evidence_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .signals
            .iter()
            .flat_map(|s| s.event_ids.iter().cloned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// How `explain` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// A self-contained HTML page (the `report` command's page for one identity).
    Html,
}

/// Explains `who` (a canonical identity or any alias of it). `None` when nothing is known.
pub fn explain(
    store: &Store,
    who: &str,
    config: &CorrelateConfig,
    format: ExplainFormat,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let Some(story) = Story::load(store, who, config)? else {
        return Ok(false);
    };
    if format == ExplainFormat::Html {
        crate::report::write_identity_page(store, story, config, out)?;
        return Ok(true);
    }
    let Story {
        identity,
        aliases,
        signals,
        findings,
        scored,
    } = &story;
    // Its newest events under any of its names, and the events behind its signals whatever
    // name they carry (root logins are recorded as "root", failed logins with the name as
    // typed).
    let mut events = events_for_names(store, &story.names(), TIMELINE_EVENTS)?;
    events.extend(events_by_record_ids(store, &story.evidence_ids())?);
    events.sort_by(|a, b| b.event.time.cmp(&a.event.time).then(b.id.cmp(&a.id)));
    events.dedup_by_key(|e| e.id);

    if format == ExplainFormat::Json {
        let doc = json!({
            "identity": identity,
            "aliases": aliases.iter().map(|a| json!({"kind": a.kind, "value": a.value, "cloud": a.cloud.as_str()})).collect::<Vec<_>>(),
            "signals": signals,
            "findings": findings,
            "score": scored.timeline.iter().map(|p| json!({"time": p.time, "score": p.score, "both_clouds": p.both_clouds, "signal_id": p.signal_id})).collect::<Vec<_>>(),
            "events": events.iter().map(|e| &e.event).collect::<Vec<_>>(),
        });
        writeln!(out, "{doc}")?;
        return Ok(true);
    }

    let current = scored.timeline.last().map_or(0.0, |p| p.score);
    writeln!(out, "identity  {}", crate::output::terminal_safe(identity))?;
    writeln!(
        out,
        "score     {current:.1} (threshold {}), {} signals, {} findings",
        config.finding_threshold,
        signals.len(),
        findings.len()
    )?;
    writeln!(out, "\naliases")?;
    let mut alias_rows = Rows::new(vec!["cloud", "kind", "value"]);
    for a in aliases {
        alias_rows.push(vec![json!(a.cloud.as_str()), json!(a.kind), json!(a.value)]);
    }
    alias_rows.write(OutputFormat::Table, out)?;

    // One timeline: events and the signals they made, oldest first; signals carry their score
    // and the running total after them.
    writeln!(
        out,
        "\ntimeline (newest {TIMELINE_EVENTS} events and every signal)"
    )?;
    let mut timeline: Vec<(i64, u8, Vec<serde_json::Value>)> = Vec::new();
    for e in &events {
        let ev = &e.event;
        let (what, status) = what_happened(ev);
        timeline.push((
            ev.time,
            0,
            vec![
                json!(format_time(ev.time)),
                json!(ev.provider().as_str()),
                json!(format!("{what} {status}")),
                json!(ev.src_endpoint.ip),
                json!(null),
                json!(null),
            ],
        ));
    }
    for s in signals {
        let total = scored
            .timeline
            .iter()
            .find(|p| p.signal_id == s.id)
            .map(|p| (p.score * 10.0).round() / 10.0);
        let clouds = s
            .cloud
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("+");
        timeline.push((
            s.time,
            1,
            vec![
                json!(format_time(s.time)),
                json!(clouds),
                json!(format!("SIGNAL {}: {}", s.signal, s.risk_message)),
                json!(s.threat_object),
                json!((s.risk_score * 10.0).round() / 10.0),
                json!(total),
            ],
        ));
    }
    timeline.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut rows = Rows::new(vec!["time", "cloud", "what", "src_ip", "points", "score"]);
    for (_, _, row) in timeline {
        rows.push(row);
    }
    rows.write(OutputFormat::Table, out)?;
    if !findings.is_empty() {
        writeln!(out, "\nfindings")?;
        findings_rows(findings).write(OutputFormat::Table, out)?;
    }
    Ok(true)
}

/// What an event did and how it ended, as `explain` and the report print it: the CloudTrail
/// call (or the Entra application signed in to) and "ok" or the error code.
pub fn what_happened(ev: &Event) -> (String, String) {
    let what = ev
        .operation()
        .map(str::to_string)
        .or_else(|| ev.service.as_ref().and_then(|s| s.name.clone()))
        .unwrap_or_default();
    let status = if ev.is_success() {
        "ok".to_string()
    } else {
        ev.status_code.clone().unwrap_or_else(|| "failed".into())
    };
    (what, status)
}

/// Prints an explanation to stdout; an unknown identity is an error naming it.
pub fn print_explain(
    store: &Store,
    who: &str,
    config: &CorrelateConfig,
    format: ExplainFormat,
) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    if !explain(store, who, config, format, &mut stdout).context("cannot write")? {
        anyhow::bail!("no identity or alias {who:?} in the store");
    }
    Ok(())
}
