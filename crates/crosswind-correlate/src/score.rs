//! Risk scoring: a pure function of an identity's signals.
//!
//! `risk(t) = Σ score_i · 0.5^((t − t_i) / half_life)` over the identity's signals at or before
//! `t`, × 1.5 while the identity has signals in both clouds (a cross-cloud signal counts for
//! both; a cloud "has signals" while its newest signal is at most four half-lives old, i.e. still
//! weighs ≥ 1/16). Evaluated at each signal's time — event time, not wall-clock — so a
//! historical import raises the same findings as live collection. A finding is raised when the
//! risk reaches `finding_threshold`: once per identity per 24 h, and again within those 24 h
//! when the risk has grown by half over the last finding's; never by habitual signals alone.

use std::collections::{BTreeMap, VecDeque};

use crosswind_model::{CloudProvider, Finding, SCHEMA_VERSION, Signal};

use crate::catalog::BOTH_CLOUDS_FACTOR;
use crate::config::CorrelateConfig;
use crate::engine::stable_id;
use crate::net::fmt_time;

const DAY_MS: i64 = 86_400_000;
/// A signal counts towards "both clouds" and is listed in a finding while younger than this
/// many half-lives.
const ACTIVE_HALF_LIVES: i64 = 4;

/// The identity's risk right after one signal.
#[derive(Clone, Debug, PartialEq)]
pub struct ScorePoint {
    pub time: i64,
    pub score: f64,
    pub both_clouds: bool,
    /// The signal that moved the score.
    pub signal_id: String,
}

/// The score timeline of one identity and the findings raised on it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdentityScore {
    pub timeline: Vec<ScorePoint>,
    pub findings: Vec<Finding>,
}

fn weight(score: f64) -> f64 {
    if score.is_finite() && score > 0.0 {
        score
    } else {
        0.0
    }
}

/// What a signal adds to the risk: its score, or for a withdrawal (a negative score extending
/// another signal, `emit.rs`) minus the score it takes back.
fn contribution(s: &Signal) -> f64 {
    if s.extends.is_some() && s.risk_score.is_finite() && s.risk_score < 0.0 {
        s.risk_score
    } else {
        weight(s.risk_score)
    }
}

fn decay(age_ms: i64, half_life_ms: i64) -> f64 {
    if age_ms <= 0 {
        return 1.0;
    }
    let f = 0.5f64.powf(age_ms as f64 / half_life_ms.max(1) as f64);
    if f.is_finite() { f } else { 0.0 }
}

fn sort_key(a: &&Signal, b: &&Signal) -> std::cmp::Ordering {
    a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id))
}

/// Score one identity. `signals` may hold other identities' signals (ignored) and need not be
/// sorted (they are, by time then id). `prior_findings` are findings already raised for this
/// identity (from the store): they seed the "once per 24 h" state, and no finding at or before
/// the newest of them is raised again.
pub fn score_identity(
    identity: &str,
    signals: &[Signal],
    prior_findings: &[Finding],
    cfg: &CorrelateConfig,
) -> IdentityScore {
    let mut mine: Vec<&Signal> = signals
        .iter()
        .filter(|s| s.risk_object == identity && !identity.is_empty())
        .collect();
    mine.sort_by(sort_key);
    mine.dedup_by(|a, b| a.id == b.id);
    let hl = cfg.half_life_ms();
    let active_ms = hl.saturating_mul(ACTIVE_HALF_LIVES);
    let threshold = cfg.finding_threshold;

    let mut last: Option<(i64, f64)> = prior_findings
        .iter()
        .filter(|f| f.identity == identity)
        .map(|f| (f.raised_at, weight(f.score)))
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let raised_until = last.map_or(i64::MIN, |l| l.0);

    // Signals taken back, and when: they leave the finding's list and are never fresh.
    let mut withdrawn: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for s in mine.iter().filter(|s| contribution(s) < 0.0) {
        if let Some(x) = s.extends.as_deref() {
            let w = withdrawn.entry(x).or_insert(s.time);
            *w = (*w).min(s.time);
        }
    }
    let withdrawn_by = |s: &Signal, t: i64| withdrawn.get(s.id.as_str()).is_some_and(|w| *w <= t);

    let mut out = IdentityScore::default();
    let mut sum = 0.0f64;
    let mut sum_t = i64::MIN;
    let mut last_cloud: [Option<i64>; 2] = [None, None];
    let mut active: VecDeque<&Signal> = VecDeque::new();
    // Whether the signals of the current instant include one that is not habitual.
    let mut fresh_at_instant = false;
    for (i, &s) in mine.iter().enumerate() {
        let first_at_instant = i == 0 || mine[i - 1].time != s.time;
        fresh_at_instant = (fresh_at_instant && !first_at_instant)
            || (!s.habitual && weight(s.risk_score) > 0.0 && !withdrawn_by(s, s.time));
        let w = contribution(s);
        sum = if sum_t == i64::MIN {
            w
        } else {
            sum * decay(s.time.saturating_sub(sum_t), hl) + w
        };
        sum_t = s.time;
        if w > 0.0 && !withdrawn_by(s, s.time) {
            for c in &s.cloud {
                let i = cloud_index(*c);
                last_cloud[i] = Some(s.time);
            }
            active.push_back(s);
        }
        if w < 0.0 {
            active.retain(|a| Some(&a.id) != s.extends.as_ref());
        }
        while active
            .front()
            .is_some_and(|f| s.time.saturating_sub(f.time) > active_ms)
        {
            active.pop_front();
        }
        let both = last_cloud
            .iter()
            .all(|t| t.is_some_and(|t| s.time.saturating_sub(t) <= active_ms));
        let score = sum * if both { BOTH_CLOUDS_FACTOR } else { 1.0 };
        let score = if score.is_finite() { score } else { 0.0 };
        out.timeline.push(ScorePoint {
            time: s.time,
            score,
            both_clouds: both,
            signal_id: s.id.clone(),
        });
        // Signals of one instant (one event can complete several) are judged together: a
        // finding is raised on the score after all of them, never twice in the same ms.
        let more_at_this_instant = mine.get(i + 1).is_some_and(|n| n.time == s.time);
        // A habitual pattern is never a finding on its own: it adds to the risk, but only a
        // signal that is not habitual raises the finding (docs/detections.md, "Repeats").
        if score < threshold || s.time <= raised_until || more_at_this_instant || !fresh_at_instant
        {
            continue;
        }
        let due = match last {
            None => true,
            Some((t, prev)) => s.time.saturating_sub(t) >= DAY_MS || score >= prev * 1.5,
        };
        if !due {
            continue;
        }
        last = Some((s.time, score));
        out.findings
            .push(finding(identity, s, score, both, &active, cfg));
    }
    out
}

fn cloud_index(c: CloudProvider) -> usize {
    match c {
        CloudProvider::Azure => 0,
        CloudProvider::Aws => 1,
    }
}

fn finding(
    identity: &str,
    trigger: &Signal,
    score: f64,
    both: bool,
    active: &VecDeque<&Signal>,
    cfg: &CorrelateConfig,
) -> Finding {
    let mut clouds: Vec<CloudProvider> = active
        .iter()
        .flat_map(|s| s.cloud.iter().copied())
        .collect();
    clouds.sort();
    clouds.dedup();
    let first_seen = active.front().map_or(trigger.time, |s| s.time);
    let mut by_name: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for s in active {
        let e = by_name.entry(s.signal.as_str()).or_default();
        e.0 += 1;
        e.1 += weight(s.risk_score);
    }
    let parts: Vec<String> = by_name
        .iter()
        .map(|(n, (c, sc))| {
            if *c == 1 {
                format!("{n} ({sc:.0})")
            } else {
                format!("{n} ×{c} ({sc:.0})")
            }
        })
        .collect();
    let cloud_names: Vec<&str> = clouds.iter().map(|c| c.as_str()).collect();
    let summary = format!(
        "{identity} reached risk {score:.1} (threshold {:.0}) at {} from {} signal(s) between {} and {} in {}: {}{}; latest: {}",
        cfg.finding_threshold,
        fmt_time(trigger.time),
        active.len(),
        fmt_time(first_seen),
        fmt_time(trigger.time),
        cloud_names.join(" + "),
        parts.join(", "),
        if both {
            " (×1.5: signals in both clouds)"
        } else {
            ""
        },
        trigger.risk_message
    );
    Finding {
        schema_version: SCHEMA_VERSION,
        id: stable_id(&["finding", identity, &trigger.time.to_string(), &trigger.id]),
        identity: identity.to_owned(),
        score,
        threshold: cfg.finding_threshold,
        clouds,
        signals: active.iter().map(|s| s.id.clone()).collect(),
        first_seen,
        last_seen: trigger.time,
        raised_at: trigger.time,
        summary,
    }
}

/// The identity's risk at an arbitrary time `at_ms` (e.g. "now" for `explain`): signals after
/// `at_ms` are ignored.
pub fn score_at(identity: &str, signals: &[Signal], at_ms: i64, cfg: &CorrelateConfig) -> f64 {
    let hl = cfg.half_life_ms();
    let active_ms = hl.saturating_mul(ACTIVE_HALF_LIVES);
    let mut sum = 0.0;
    let mut last_cloud: [Option<i64>; 2] = [None, None];
    for s in signals
        .iter()
        .filter(|s| s.risk_object == identity && !identity.is_empty() && s.time <= at_ms)
    {
        let w = contribution(s);
        sum += w * decay(at_ms.saturating_sub(s.time), hl);
        if w > 0.0 {
            for c in &s.cloud {
                let i = cloud_index(*c);
                last_cloud[i] = Some(last_cloud[i].map_or(s.time, |t: i64| t.max(s.time)));
            }
        }
    }
    let both = last_cloud
        .iter()
        .all(|t| t.is_some_and(|t| at_ms.saturating_sub(t) <= active_ms));
    let score = sum * if both { BOTH_CLOUDS_FACTOR } else { 1.0 };
    if score.is_finite() { score } else { 0.0 }
}

/// Score every identity (risk object) among `signals`; threat-only signals are skipped.
pub fn score_all(
    signals: &[Signal],
    prior_findings: &[Finding],
    cfg: &CorrelateConfig,
) -> BTreeMap<String, IdentityScore> {
    let mut by_identity: BTreeMap<&str, Vec<Signal>> = BTreeMap::new();
    for s in signals.iter().filter(|s| !s.risk_object.is_empty()) {
        by_identity
            .entry(&s.risk_object)
            .or_default()
            .push(s.clone());
    }
    by_identity
        .into_iter()
        .map(|(id, sigs)| {
            (
                id.to_owned(),
                score_identity(id, &sigs, prior_findings, cfg),
            )
        })
        .collect()
}
