//! `crosswind report`: one self-contained HTML investigation report — inline CSS and SVG, no
//! script, no fonts or anything else fetched — that opens from a USB stick on an air-gapped
//! workstation.
//!
//! This module gathers what the report shows from the store, reusing what `explain`
//! ([`Story`]), `findings` and `hunt identity-risk` ([`identity_risks`]) compute; the scores are
//! crosswind-correlate's. [`page`] lays it out, [`timeline`] draws one identity's two-lane
//! timeline, and [`html`] is the writer that escapes every record value by construction.
//!
//! Large stores stay usable: aggregates come from the indexed columns, a timeline is binned when
//! its events are dense, and every list is capped with the count of what was left out.

mod html;
mod page;
mod timeline;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use crosswind_correlate::{Cidr, CorrelateConfig, score_at};
use crosswind_model::{Finding, Location, Signal};
use crosswind_store::report::{
    self as db, CloudCount, EventMark, Outcome, SourceIp, events_of_names, marks_of_names,
};
use crosswind_store::{Store, StoredEvent};

use crate::explain::{Story, what_happened};
use crate::hunt::{IdentityRisk, Range, identity_risks};

pub use html::{escape, escape_into};
use timeline::{Bin, Dot};

/// Identities drawn with a timeline at most (the riskiest; the rest are named).
const MAX_IDENTITIES: usize = 25;
/// Rows of the findings table at most.
const MAX_FINDINGS: usize = 200;
/// Identities in the summary's ranking.
const MAX_TOP: usize = 10;
/// Rows of the source-IP table at most.
const MAX_IPS: usize = 100;
/// User names listed per source IP.
const IP_USERS: usize = 6;
/// Above this many events in an identity's window its lanes are binned.
const MAX_DOTS: usize = 300;
/// Time slices of a binned timeline.
const BINS: usize = 160;
/// Rows of an identity's signal and evidence tables at most.
const MAX_SIGNAL_ROWS: usize = 60;
const MAX_EVIDENCE_ROWS: usize = 40;
/// Events behind signals looked up per identity at most.
const MAX_EVIDENCE_LOOKUPS: usize = 2_000;
/// Source signals (a spray source) shown per identity at most, and how long before its first
/// signal they are looked for (the spray follow-up window of the catalogue).
const MAX_SOURCES: usize = 20;
const SOURCE_LOOKBACK_MS: i64 = 86_400_000;
/// Points the score curve is sampled at between signals.
const CURVE_SAMPLES: i64 = 240;
const MINUTE_MS: i64 = 60_000;

/// `crosswind report`'s arguments.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    pub range: Range,
    /// Only these identities (or aliases); all identities with findings when empty.
    pub identities: Vec<String>,
}

/// Everything the page shows.
pub struct Report {
    pub generated_at: i64,
    pub store_path: String,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The identities the report is limited to (`--identity`), canonical names.
    pub scope: Option<Vec<String>>,
    pub threshold: f64,
    pub half_life_ms: i64,
    pub clouds: Vec<CloudCount>,
    pub signals: usize,
    pub findings: Vec<Finding>,
    pub findings_total: usize,
    /// Identities by peak score.
    pub top: Vec<IdentityRisk>,
    pub top_total: usize,
    pub identities: Vec<IdentityView>,
    /// Identities with findings not drawn (beyond the cap), riskiest first.
    pub identities_left_out: Vec<String>,
    pub ips: Vec<IpRow>,
    pub ips_total: usize,
    /// `--identity` values that named nothing in the store.
    pub unknown: Vec<String>,
}

/// One identity's section.
pub struct IdentityView {
    /// The in-page anchor (`identity-N`): never derived from record text.
    pub anchor: String,
    pub story: Story,
    /// Threat-only signals (a spray source) whose source holds one of its IPs, in the day
    /// before its signals: the attack that led up to them.
    pub sources: Vec<Signal>,
    pub from: i64,
    pub to: i64,
    pub dots: Vec<Dot>,
    pub bins: Option<Vec<Bin>>,
    pub lane_events: [usize; 2],
    /// Events drawn in each lane that other names made (what its sources did).
    pub lane_others: [usize; 2],
    pub curve: Vec<(i64, f64)>,
    /// The events behind its signals in the window, oldest first (capped).
    pub evidence: Vec<StoredEvent>,
    pub evidence_total: usize,
}

impl IdentityView {
    /// Its signals and their sources within the window, oldest first, with the score right after
    /// each of its own (`None` for a source: it scores no identity).
    pub fn signals_in_window(&self) -> Vec<(&Signal, Option<f64>)> {
        let after: BTreeMap<&str, f64> = self
            .story
            .scored
            .timeline
            .iter()
            .map(|p| (p.signal_id.as_str(), p.score))
            .collect();
        let mut out: Vec<(&Signal, Option<f64>)> = self
            .story
            .signals
            .iter()
            .map(|s| (s, Some(after.get(s.id.as_str()).copied().unwrap_or(0.0))))
            .chain(self.sources.iter().map(|s| (s, None)))
            .filter(|(s, _)| s.time >= self.from && s.time <= self.to)
            .collect();
        out.sort_by(|a, b| a.0.time.cmp(&b.0.time).then(a.0.id.cmp(&b.0.id)));
        out
    }
}

/// One source IP's row.
pub struct IpRow {
    pub ip: SourceIp,
    pub place: Option<Location>,
    /// User names seen from it (capped), each with the anchor of its identity's section when the
    /// report draws that identity.
    pub users: Vec<(String, Option<String>)>,
    /// A signal names it, or an identity's evidence came from it.
    pub flagged: bool,
}

/// Writes the report for `options` to `out` (a file path); returns what it contains.
pub fn write_report(
    store: &Store,
    config: &CorrelateConfig,
    options: &ReportOptions,
    out: &Path,
) -> anyhow::Result<ReportStats> {
    let report = gather(store, config, options)?;
    let page = page::render(&report);
    write_atomically(out, page.as_bytes())?;
    Ok(ReportStats {
        bytes: page.len() as u64,
        identities: report.identities.len(),
        findings: report.findings_total,
        unknown: report.unknown,
    })
}

/// What [`write_report`] wrote.
#[derive(Clone, Debug)]
pub struct ReportStats {
    pub bytes: u64,
    pub identities: usize,
    pub findings: usize,
    pub unknown: Vec<String>,
}

/// `explain ID --format html`: the report's page for one identity, all of its history.
pub fn write_identity_page(
    store: &Store,
    story: Story,
    config: &CorrelateConfig,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let report = gather_subjects(
        store,
        config,
        Range::default(),
        Subjects::Scope(vec![story]),
        Vec::new(),
    )?;
    out.write_all(page::render(&report).as_bytes())
        .context("cannot write")?;
    Ok(())
}

/// Writes to a temporary file beside `path`, then renames: a reader never sees half a report.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".crosswind-report-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads the store into a [`Report`].
pub fn gather(
    store: &Store,
    config: &CorrelateConfig,
    options: &ReportOptions,
) -> anyhow::Result<Report> {
    if options.identities.is_empty() {
        return gather_subjects(
            store,
            config,
            options.range,
            Subjects::WithFindings,
            Vec::new(),
        );
    }
    let mut unknown = Vec::new();
    let mut stories: Vec<Story> = Vec::new();
    for who in &options.identities {
        match Story::load(store, who, config)? {
            Some(story) => {
                if !stories.iter().any(|s| s.identity == story.identity) {
                    stories.push(story);
                }
            }
            None => unknown.push(who.clone()),
        }
    }
    gather_subjects(
        store,
        config,
        options.range,
        Subjects::Scope(stories),
        unknown,
    )
}

/// Whom a report is about.
enum Subjects {
    /// Every identity with a finding raised in the range (the riskiest are drawn).
    WithFindings,
    /// Only these (`--identity`, `explain --format html`).
    Scope(Vec<Story>),
}

fn bounds(range: Range) -> (i64, i64) {
    (
        range.since.unwrap_or(i64::MIN),
        range.until.unwrap_or(i64::MAX),
    )
}

fn gather_subjects(
    store: &Store,
    config: &CorrelateConfig,
    range: Range,
    subjects: Subjects,
    unknown: Vec<String>,
) -> anyhow::Result<Report> {
    let (since, until) = bounds(range);
    let (scope_names, scope_identities): (Option<Vec<String>>, Option<BTreeSet<String>>) =
        match &subjects {
            Subjects::WithFindings => (None, None),
            Subjects::Scope(stories) => (
                Some(stories.iter().flat_map(Story::names).collect()),
                Some(stories.iter().map(|s| s.identity.clone()).collect()),
            ),
        };
    let in_scope = |identity: &str| {
        scope_identities
            .as_ref()
            .is_none_or(|s| s.contains(identity))
    };

    let activity = db::activity(store, since, until, scope_names.as_deref(), IP_USERS)?;

    let mut findings: Vec<Finding> = crosswind_store::correlate::findings_since(store, since)?
        .into_iter()
        .filter(|f| f.raised_at < until && in_scope(&f.identity))
        .collect();
    // Highest score first (the newest of equal ones): what a capped table must not leave out.
    findings.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.raised_at.cmp(&a.raised_at))
            .then(a.id.cmp(&b.id))
    });
    let findings_total = findings.len();

    // The ranking: identity-risk's scores, by peak within the range.
    let hunt_range = Range {
        since: range.since,
        until: range.until.or_else(|| {
            crosswind_store::correlate::max_event_time(store)
                .ok()
                .flatten()
                .map(|t| t + 1)
        }),
    };
    let mut top: Vec<IdentityRisk> = identity_risks(store, hunt_range, config)?
        .into_iter()
        .filter(|r| in_scope(&r.identity))
        .collect();
    let signals = top.iter().map(|r| r.signals).sum();
    top.sort_by(|a, b| {
        b.peak
            .total_cmp(&a.peak)
            .then(b.score.total_cmp(&a.score))
            .then(a.identity.cmp(&b.identity))
    });
    let top_total = top.len();
    let peak_of: BTreeMap<&str, f64> = top.iter().map(|r| (r.identity.as_str(), r.peak)).collect();
    let by_peak = |a: &str, b: &str| {
        let pa = peak_of.get(a).copied().unwrap_or(0.0);
        let pb = peak_of.get(b).copied().unwrap_or(0.0);
        pb.total_cmp(&pa).then(a.cmp(b))
    };

    // The riskiest identities get a timeline; the rest are named.
    let (stories, identities_left_out) = match subjects {
        Subjects::Scope(mut stories) => {
            stories.sort_by(|a, b| by_peak(&a.identity, &b.identity));
            (stories, Vec::new())
        }
        Subjects::WithFindings => {
            let mut names: Vec<&str> = findings.iter().map(|f| f.identity.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names.sort_by(|a, b| by_peak(a, b));
            let mut stories = Vec::new();
            for name in names.iter().take(MAX_IDENTITIES) {
                stories.extend(Story::load(store, name, config)?);
            }
            let left_out = names
                .iter()
                .skip(MAX_IDENTITIES)
                .map(|n| n.to_string())
                .collect();
            (stories, left_out)
        }
    };
    findings.truncate(MAX_FINDINGS);
    top.truncate(MAX_TOP);

    // Threat-only signals (spray sources), read once for every identity's lead-up.
    let threat_only = crosswind_store::correlate::signals_of(
        store,
        "",
        since.saturating_sub(SOURCE_LOOKBACK_MS),
    )?;
    let mut identities = Vec::with_capacity(stories.len());
    for (i, story) in stories.into_iter().enumerate() {
        identities.push(identity_view(
            store,
            config,
            story,
            &threat_only,
            format!("identity-{}", i + 1),
            since,
            until,
        )?);
    }

    let ips_total = activity.ips.len();
    let ips = ip_rows(store, since, until, activity.ips, &identities)?;

    Ok(Report {
        generated_at: crosswind_store::now_ms(),
        store_path: store.path().display().to_string(),
        since: range.since,
        until: range.until,
        scope: scope_identities.map(|s| s.into_iter().collect()),
        threshold: config.finding_threshold,
        half_life_ms: config.half_life_ms(),
        clouds: activity.clouds,
        signals,
        findings,
        findings_total,
        top,
        top_total,
        identities,
        identities_left_out,
        ips,
        ips_total,
        unknown,
    })
}

/// One identity's window, marks, bins, curve and evidence.
fn identity_view(
    store: &Store,
    config: &CorrelateConfig,
    story: Story,
    threat_only: &[Signal],
    anchor: String,
    since: i64,
    until: i64,
) -> anyhow::Result<IdentityView> {
    let names = story.names();
    let mut ids = story.evidence_ids();
    ids.truncate(MAX_EVIDENCE_LOOKUPS);
    let mut evidence = evidence_events(store, &ids, since, until)?;
    let sources = source_signals(&story, threat_only, &evidence, since, until);
    if !sources.is_empty() {
        let mut ids: Vec<String> = sources
            .iter()
            .flat_map(|s| s.event_ids.iter().cloned())
            .collect();
        ids.truncate(MAX_EVIDENCE_LOOKUPS);
        evidence.extend(evidence_events(store, &ids, since, until)?);
        evidence.sort_by_key(|e| (e.event.time, e.id));
        evidence.dedup_by_key(|e| e.id);
    }

    // The window: its signals, their sources and findings in the range and the events behind
    // them, padded.
    let mut times: Vec<i64> = story
        .signals
        .iter()
        .chain(&sources)
        .map(|s| s.time)
        .chain(
            story
                .findings
                .iter()
                .flat_map(|f| [f.first_seen, f.raised_at]),
        )
        .chain(evidence.iter().map(|e| e.event.time))
        .filter(|t| *t >= since && *t < until)
        .collect();
    if times.is_empty() {
        // No signal in the range (an `--identity` without any): its newest events.
        times.extend(
            events_of_names(store, &names, since, until, 1)?
                .iter()
                .map(|e| e.event.time),
        );
    }
    let (lo, hi) = match (times.iter().min(), times.iter().max()) {
        (Some(lo), Some(hi)) => (*lo, *hi),
        _ => {
            let now = crosswind_store::now_ms().min(until);
            (now - 86_400_000, now)
        }
    };
    let pad = ((hi - lo) / 8).max(30 * MINUTE_MS);
    let from = lo.saturating_sub(pad).max(since);
    let to = hi
        .saturating_add(pad)
        .min(until.saturating_sub(1))
        .max(from + 1);

    let marks = marks_of_names(store, &names, from, to.saturating_add(1))?;
    let mut lane_events = [0usize; 2];
    for m in &marks {
        lane_events[timeline::lane_of(m.provider)] += 1;
    }
    let evidence_ids: BTreeSet<i64> = evidence.iter().map(|e| e.id).collect();
    let own_names: BTreeSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
    let in_window = |e: &&StoredEvent| e.event.time >= from && e.event.time <= to;
    let (dots, bins) = if marks.len() <= MAX_DOTS {
        let mut events = events_of_names(store, &names, from, to.saturating_add(1), MAX_DOTS)?;
        events.extend(evidence.iter().filter(in_window).cloned());
        events.sort_by_key(|e| (e.event.time, e.id));
        events.dedup_by_key(|e| e.id);
        let dots = events
            .iter()
            .map(|e| dot(e, evidence_ids.contains(&e.id), &own_names))
            .collect();
        (dots, None)
    } else {
        let dots = evidence
            .iter()
            .filter(in_window)
            .take(MAX_DOTS)
            .map(|e| dot(e, true, &own_names))
            .collect();
        (dots, Some(binned(&marks, from, to)))
    };

    let mut lane_others = [0usize; 2];
    for e in evidence.iter().filter(in_window) {
        if !is_own(e, &own_names) {
            lane_others[timeline::lane_of(e.event.provider())] += 1;
        }
    }
    let curve = score_curve(&story, config, from, to);
    let evidence_total = evidence.len();
    if evidence.len() > MAX_EVIDENCE_ROWS {
        // Its own evidence first, then what its sources did; shown oldest first.
        let own: BTreeSet<&str> = story
            .signals
            .iter()
            .flat_map(|s| s.event_ids.iter().map(String::as_str))
            .collect();
        evidence.sort_by_key(|e| (!own.contains(e.event.metadata.uid.as_str()), e.event.time));
        evidence.truncate(MAX_EVIDENCE_ROWS);
        evidence.sort_by_key(|e| (e.event.time, e.id));
    }
    Ok(IdentityView {
        anchor,
        story,
        sources,
        from,
        to,
        dots,
        bins,
        lane_events,
        lane_others,
        curve,
        evidence,
        evidence_total,
    })
}

/// The stored events with these record ids in `[since, until)`, oldest first.
fn evidence_events(
    store: &Store,
    ids: &[String],
    since: i64,
    until: i64,
) -> anyhow::Result<Vec<StoredEvent>> {
    let mut events = crosswind_store::correlate::events_by_record_ids(store, ids)?;
    events.retain(|e| e.event.time >= since && e.event.time < until);
    events.sort_by_key(|e| (e.event.time, e.id));
    events.dedup_by_key(|e| e.id);
    Ok(events)
}

/// The threat-only signals (risk object empty: a spray source) whose source — an IP or a
/// rotated /24 — holds an IP the identity's signals name or its evidence came from, from a day
/// before its first signal in the range up to its last.
fn source_signals(
    story: &Story,
    threat_only: &[Signal],
    evidence: &[StoredEvent],
    since: i64,
    until: i64,
) -> Vec<Signal> {
    let mine: Vec<&Signal> = story
        .signals
        .iter()
        .filter(|s| s.time >= since && s.time < until)
        .collect();
    let (Some(first), Some(last)) = (
        mine.iter().map(|s| s.time).min(),
        mine.iter().map(|s| s.time).max(),
    ) else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = mine
        .iter()
        .filter_map(|s| s.threat_object.as_deref())
        .chain(evidence.iter().filter_map(|e| e.event.src_ip()))
        .filter_map(|ip| ip.parse().ok())
        .collect();
    ips.sort();
    ips.dedup();
    let from = first.saturating_sub(SOURCE_LOOKBACK_MS).max(since);
    let mut sources: Vec<Signal> = threat_only
        .iter()
        .filter(|s| s.time >= from && s.time <= last && s.time < until)
        .filter(|s| {
            s.threat_object
                .as_deref()
                .and_then(|t| Cidr::parse(t).ok())
                .is_some_and(|c| ips.iter().any(|ip| c.contains(ip)))
        })
        .cloned()
        .collect();
    // The latest ones: those that led up to its signals.
    let skip = sources.len().saturating_sub(MAX_SOURCES);
    sources.drain(..skip);
    sources
}

/// Made under one of the identity's own names.
fn is_own(e: &StoredEvent, own_names: &BTreeSet<String>) -> bool {
    e.event
        .principal()
        .and_then(|u| u.name.as_deref())
        .is_some_and(|n| own_names.contains(&n.to_lowercase()))
}

fn dot(e: &StoredEvent, evidence: bool, own_names: &BTreeSet<String>) -> Dot {
    let ev = &e.event;
    let (what, status) = what_happened(ev);
    let user = ev
        .principal()
        .and_then(|u| u.name.as_deref())
        .unwrap_or("?");
    let mut tip = format!(
        "{} UTC · {} · {} {} · {} from {}",
        timeline::short_time(ev.time),
        ev.provider().as_str(),
        what,
        status,
        user,
        ev.src_ip().unwrap_or("unknown IP"),
    );
    if let Some(place) = ev.src_endpoint.location.as_ref().and_then(place_text) {
        tip.push_str(&format!(" ({place})"));
    }
    if let Some(ua) = ev
        .http_request
        .as_ref()
        .and_then(|h| h.user_agent.as_deref())
    {
        tip.push_str(&format!(" · {ua}"));
    }
    if evidence {
        tip.push_str(" · behind a signal");
    }
    Dot {
        time: ev.time,
        provider: ev.provider(),
        outcome: Outcome::from_status(ev.status_id),
        evidence,
        other: !is_own(e, own_names),
        tip,
    }
}

/// "City, Country" as far as known.
pub fn place_text(place: &Location) -> Option<String> {
    let parts: Vec<&str> = [place.city.as_deref(), place.country.as_deref()]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Counts per time slice and lane.
fn binned(marks: &[EventMark], from: i64, to: i64) -> Vec<Bin> {
    let span = (to - from).max(1);
    let width = (span / BINS as i64).max(1);
    let mut bins: Vec<Bin> = (0..BINS as i64)
        .map(|i| Bin {
            start: from + i * width,
            end: (from + (i + 1) * width).min(to),
            ..Bin::default()
        })
        .collect();
    if let Some(last) = bins.last_mut() {
        last.end = to;
    }
    for m in marks {
        let i = (((m.time - from) / width).max(0) as usize).min(BINS - 1);
        let lane = timeline::lane_of(m.provider);
        let b = &mut bins[i];
        match m.outcome {
            Outcome::Success => b.ok[lane] += 1,
            Outcome::Failure => b.failed[lane] += 1,
            Outcome::Unknown => b.other[lane] += 1,
        }
    }
    bins
}

/// The decayed score over the window: crosswind-correlate's `score_at`, sampled evenly and
/// just before and at each signal (the jumps).
fn score_curve(story: &Story, config: &CorrelateConfig, from: i64, to: i64) -> Vec<(i64, f64)> {
    let step = ((to - from) / CURVE_SAMPLES).max(1);
    let mut times: Vec<i64> = (0..=CURVE_SAMPLES).map(|i| from + i * step).collect();
    times.push(to);
    for s in story
        .signals
        .iter()
        .filter(|s| s.time > from && s.time <= to)
    {
        times.push(s.time - 1);
        times.push(s.time);
    }
    times.retain(|t| *t >= from && *t <= to);
    times.sort_unstable();
    times.dedup();
    times
        .into_iter()
        .map(|t| (t, score_at(&story.identity, &story.signals, t, config)))
        .collect()
}

/// The source-IP table: flagged IPs first (named by a signal or behind an identity's
/// evidence), then those seen in both clouds, then those used by the most names; capped.
fn ip_rows(
    store: &Store,
    since: i64,
    until: i64,
    mut ips: Vec<SourceIp>,
    identities: &[IdentityView],
) -> anyhow::Result<Vec<IpRow>> {
    let flagged: BTreeSet<&str> = identities
        .iter()
        .flat_map(|v| {
            v.story
                .signals
                .iter()
                .chain(&v.sources)
                .filter_map(|s| s.threat_object.as_deref())
                .chain(v.evidence.iter().filter_map(|e| e.event.src_ip()))
        })
        .collect();
    let anchors: BTreeMap<String, &str> = identities
        .iter()
        .flat_map(|v| v.story.names().into_iter().map(|n| (n, v.anchor.as_str())))
        .collect();
    let both = |ip: &SourceIp| ip.azure_events > 0 && ip.aws_events > 0;
    let key = |ip: &SourceIp| {
        (
            !flagged.contains(ip.ip.as_str()),
            !both(ip),
            std::cmp::Reverse(ip.users),
            std::cmp::Reverse(ip.failed),
            std::cmp::Reverse(ip.azure_events + ip.aws_events),
        )
    };
    if ips.len() > MAX_IPS {
        ips.select_nth_unstable_by(MAX_IPS - 1, |a, b| {
            key(a).cmp(&key(b)).then(a.ip.cmp(&b.ip))
        });
        ips.truncate(MAX_IPS);
    }
    ips.sort_by(|a, b| key(a).cmp(&key(b)).then(a.ip.cmp(&b.ip)));
    let mut rows = Vec::with_capacity(ips.len());
    for ip in ips {
        // Only Entra sign-ins carry a place.
        let place = if ip.azure_events > 0 {
            db::place_of_ip(store, &ip.ip, since, until)?
        } else {
            None
        };
        let users = ip
            .sample_users
            .iter()
            .map(|u| {
                let anchor = anchors
                    .get(u)
                    .or_else(|| anchors.get(&u.to_lowercase()))
                    .map(|a| a.to_string());
                (u.clone(), anchor)
            })
            .collect();
        rows.push(IpRow {
            flagged: flagged.contains(ip.ip.as_str()),
            ip,
            place,
            users,
        });
    }
    Ok(rows)
}
