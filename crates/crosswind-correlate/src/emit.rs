//! The emission path, shared by every detector: a detector describes what it observed as a
//! [`Draft`]; this module decides whether and how it becomes a [`Signal`] (docs/detections.md,
//! "Repeats"):
//! - **Repeats.** The same signal for the same risk object and threat object fires at most once
//!   per `suppress_secs` (default 24 h), counted from the last time it *fired*: a suppressed
//!   repeat does not extend the silence.
//! - **Growth.** For signals whose spec says so (`escalates`: the recon burst), a repeat inside
//!   that silence that scores more than what was already reported fires an escalation carrying
//!   only the difference, with `extends` naming the signal it grows. The identity's risk then
//!   holds the whole observation, and Splunk sees the growth as its own risk event.
//! - **Habitual.** A pattern observed on at least [`HABIT_MIN_DAYS`] earlier UTC days within the
//!   previous [`HABIT_WINDOW_DAYS`] fires at a quarter of its score, flagged `habitual`.
//! - **Withdrawals.** An observation later found harmless (an Identity Protection detection an
//!   admin dismissed) is taken back by a signal with the negative of the score that was
//!   reported, `extends` naming it: the identity's risk from then on no longer counts it (nor
//!   does Splunk ES, which sums risk scores), and the withdrawn signal no longer silences
//!   repeats.
//!
//! State and replay: observation days come from events alone (warm-up rebuilds them). What
//! fired is not a function of a bounded event window (each firing depends on the previous
//! one), so it is seeded from the stored signals ([`Emitter::seed`]): stored signals at any time,
//! each counting as fired from its own time on. A re-run and a snapshot replay thus judge a
//! repeat against the same fired set — the stored signals plus what they emit — and a signal
//! the re-run reproduces is never suppressed by its own stored copy (same id).

use crate::StateMap;

use crosswind_model::{CloudProvider, SCHEMA_VERSION, Signal};

use crate::catalog::{HABITUAL_FACTOR, SERVICE_ACCOUNT_FACTOR, SignalKind};
use crate::config::CorrelateConfig;
use crate::engine::{DAY_MS, stable_id, trim_oldest};

/// A pattern is habitual when observed on at least this many earlier days...
pub const HABIT_MIN_DAYS: usize = 2;
/// ...within this many days before the current one.
pub const HABIT_WINDOW_DAYS: i64 = 7;
const MAX_PATTERNS: usize = 4_000_000;
/// Observations kept per identity as context: enough that one taken back leaves the one before.
const LAST_OTHER_KEPT: usize = 4;
/// Scores closer than this are the same (escalation never fires on rounding noise).
const SCORE_EPSILON: f64 = 1e-6;

/// What one detector observed, before repeats, habits and tuning.
pub(crate) struct Draft<'a> {
    pub kind: SignalKind,
    pub risk_object: &'a str,
    pub is_service: bool,
    /// Before the service-account and habitual factors.
    pub score: f64,
    pub threat: Option<&'a str>,
    pub clouds: &'static [CloudProvider],
}

#[derive(Clone)]
struct Fired {
    t: i64,
    id: String,
    score: f64,
    /// Its escalations: time, id, score.
    escalations: Vec<(i64, String, f64)>,
    /// When it was taken back ([`Emitter::withdraw`]): from then on it silences no repeat.
    withdrawn_at: Option<i64>,
}

impl Fired {
    fn live_at(&self, t: i64) -> bool {
        self.t <= t && self.withdrawn_at.is_none_or(|w| w > t)
    }
}

impl Fired {
    /// The score reported by time `t`, leaving out the escalation `except` (a re-run meets its
    /// own stored copy among the seeds).
    fn reported(&self, t: i64, except: &str) -> f64 {
        self.score
            + self
                .escalations
                .iter()
                .filter(|(at, id, _)| *at <= t && id != except)
                .map(|e| e.2)
                .sum::<f64>()
    }
}

/// The UTC days a pattern was observed on: the latest, and the [`HABIT_WINDOW_DAYS`] before it
/// as bits (bit `i`: day `day − 1 − i`). Compact: there is one per pattern.
#[derive(Clone, Copy)]
struct Seen {
    day: i64,
    earlier: u8,
}

const _: () = assert!(HABIT_WINDOW_DAYS <= 8);
const EARLIER_MASK: u32 = (1 << HABIT_WINDOW_DAYS) - 1;

impl Default for Seen {
    fn default() -> Self {
        Seen {
            day: i64::MIN,
            earlier: 0,
        }
    }
}

impl Seen {
    /// How many distinct days within the window before `today` it was observed on.
    fn earlier_days(&self, today: i64) -> usize {
        if self.day == i64::MIN {
            return 0;
        }
        let within = |d: i64| d < today && d >= today - HABIT_WINDOW_DAYS;
        let older = (0..HABIT_WINDOW_DAYS)
            .filter(|i| self.earlier & (1 << i) != 0)
            .filter(|i| within(self.day - 1 - i))
            .count();
        older + usize::from(within(self.day))
    }

    fn observe(&mut self, today: i64) {
        if self.day == i64::MIN {
            *self = Seen {
                day: today,
                earlier: 0,
            };
        } else if today > self.day {
            let shift = today - self.day;
            let bits = if shift > HABIT_WINDOW_DAYS {
                0
            } else {
                ((u32::from(self.earlier) << 1 | 1) << (shift - 1)) & EARLIER_MASK
            };
            *self = Seen {
                day: today,
                earlier: bits as u8,
            };
        } else if today < self.day {
            let back = self.day - 1 - today;
            if back < HABIT_WINDOW_DAYS {
                self.earlier |= 1 << back;
            }
        }
    }
}

/// One (signal, risk object, threat object).
#[derive(Clone, Default)]
struct Pattern {
    /// The days it was observed on, for the habit check.
    seen: Seen,
    /// Fired signals (emitted or seeded), ascending by time, within the suppression span.
    fired: Vec<Fired>,
}

/// A signal taken back: see the module docs.
pub(crate) struct Withdrawal<'a> {
    pub kind: SignalKind,
    pub risk_object: &'a str,
    pub threat: Option<&'a str>,
    pub clouds: &'static [CloudProvider],
    /// The signal taken back and the score it reported.
    pub extends: &'a str,
    pub score: f64,
    pub message: String,
    /// The events that took it back.
    pub event_ids: Vec<String>,
}

/// Counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EmitStats {
    pub signals: u64,
    pub suppressed: u64,
}

#[derive(Clone, Default)]
pub(crate) struct Emitter {
    patterns: StateMap<String, Pattern>,
    /// Each identity's latest observed signals (time, kind), oldest first, at most
    /// [`LAST_OTHER_KEPT`], other than the one that reads them (`aws_credential_persistence`)
    /// and habitual ones: the context of a persistence call. From events alone, so warm-up
    /// rebuilds it; an observation later taken back leaves it ([`Emitter::forget_observation`]).
    last_other: StateMap<String, Vec<(i64, SignalKind)>>,
    pub stats: EmitStats,
}

fn occurrence_key(signal: &str, risk: &str, threat: Option<&str>) -> String {
    format!("{signal}\u{1f}{risk}\u{1f}{}", threat.unwrap_or_default())
}

fn sane(score: f64) -> f64 {
    if score.is_finite() && score > 0.0 {
        score
    } else {
        0.0
    }
}

impl Emitter {
    pub fn patterns(&self) -> usize {
        self.patterns.len()
    }

    /// Stored signals count as fired from their own time on (see the module docs).
    pub fn seed<'a>(&mut self, signals: impl IntoIterator<Item = &'a Signal>) {
        let mut grown = Vec::new();
        for s in signals {
            if s.extends.is_some() {
                grown.push(s);
                continue;
            }
            let key = occurrence_key(&s.signal, &s.risk_object, s.threat_object.as_deref());
            let p = self.patterns.entry(key).or_default();
            if p.fired.iter().any(|f| f.id == s.id) {
                continue;
            }
            let at = p.fired.partition_point(|f| (f.t, &f.id) < (s.time, &s.id));
            p.fired.insert(
                at,
                Fired {
                    t: s.time,
                    id: s.id.clone(),
                    score: sane(s.risk_score),
                    escalations: Vec::new(),
                    withdrawn_at: None,
                },
            );
        }
        for s in grown {
            if s.risk_score < 0.0 {
                let key = occurrence_key(&s.signal, &s.risk_object, s.threat_object.as_deref());
                if let Some(f) = self.patterns.get_mut(&key).and_then(|p| {
                    p.fired
                        .iter_mut()
                        .find(|f| Some(&f.id) == s.extends.as_ref())
                }) {
                    f.withdrawn_at = Some(f.withdrawn_at.map_or(s.time, |w| w.min(s.time)));
                }
                continue;
            }
            let key = occurrence_key(&s.signal, &s.risk_object, s.threat_object.as_deref());
            if let Some(f) = self.patterns.get_mut(&key).and_then(|p| {
                p.fired
                    .iter_mut()
                    .find(|f| Some(&f.id) == s.extends.as_ref())
            }) && !f.escalations.iter().any(|e| e.1 == s.id)
            {
                f.escalations
                    .push((s.time, s.id.clone(), sane(s.risk_score)));
            }
        }
    }

    /// Whether an observation of `kind` for this risk and threat object at `t` would be habitual
    /// (read from observation days, which warm-up rebuilds too, so a detector may use it).
    pub fn would_be_habitual(
        &self,
        kind: SignalKind,
        risk_object: &str,
        threat: Option<&str>,
        t: i64,
    ) -> bool {
        let key = occurrence_key(kind.spec().name, risk_object, threat);
        self.patterns
            .get(&key)
            .is_some_and(|p| p.seen.earlier_days(t.div_euclid(DAY_MS)) >= HABIT_MIN_DAYS)
    }

    /// Record the observation; unless `emitting` is off (warm-up) or the signal is disabled,
    /// push the signal, its escalation, or nothing (a repeat).
    pub fn emit(
        &mut self,
        cfg: &CorrelateConfig,
        t: i64,
        d: Draft<'_>,
        emitting: bool,
        out: &mut Vec<Signal>,
        build: impl FnOnce() -> (String, Vec<String>),
    ) {
        let set = cfg.signal(d.kind);
        if !set.enabled {
            return;
        }
        let spec = d.kind.spec();
        let key = occurrence_key(spec.name, d.risk_object, d.threat);
        let p = match self.patterns.get_mut(&key) {
            Some(p) => p,
            None => self.patterns.entry(key).or_default(),
        };
        let today = t.div_euclid(DAY_MS);
        let earlier_days = p.seen.earlier_days(today);
        p.seen.observe(today);
        let habitual = earlier_days >= HABIT_MIN_DAYS;
        // A habit is no context: the mail-room device's daily sign-in says nothing about the
        // key its owner creates.
        if d.kind != SignalKind::AwsCredentialPersistence
            && !habitual
            && !d.risk_object.is_empty()
            && d.score > 0.0
        {
            let seen = match self.last_other.get_mut(d.risk_object) {
                Some(v) => v,
                None => self.last_other.entry(d.risk_object.to_owned()).or_default(),
            };
            if !seen.contains(&(t, d.kind)) {
                let at = seen.partition_point(|o| o.0 <= t);
                seen.insert(at, (t, d.kind));
                if seen.len() > LAST_OTHER_KEPT {
                    seen.remove(0);
                }
            }
        }
        if !emitting {
            return;
        }
        // The common case, a plain repeat, is decided before the message is built.
        if !spec.escalates
            && let Some(f) = p.fired.iter().rev().find(|f| f.live_at(t))
            && f.t < t
            && t.saturating_sub(f.t) < set.suppress_ms
        {
            self.stats.suppressed += 1;
            return;
        }
        let factor = if d.is_service {
            SERVICE_ACCOUNT_FACTOR
        } else {
            1.0
        } * if habitual { HABITUAL_FACTOR } else { 1.0 };
        let score = sane(d.score * factor);
        let (message, event_ids) = build();
        let threat = d.threat.unwrap_or_default();
        let mut parts: Vec<&str> = vec![spec.name, d.risk_object, threat];
        parts.extend(event_ids.iter().map(String::as_str));
        let id = stable_id(&parts);
        let mut notes = String::new();
        if d.is_service {
            notes.push_str(" [service account: score ×0.25]");
        }
        if habitual {
            notes.push_str(&format!(
                " [habitual: seen on {earlier_days} earlier days of the last {HABIT_WINDOW_DAYS}: score ×0.25]"
            ));
        }
        // The last firing at or before `t` other than this very signal (a re-run meets its
        // own stored copy among the seeds).
        let prev = p.fired.iter().rposition(|f| f.live_at(t) && f.id != id);
        let mut extends = None;
        let (id, score) = match prev {
            Some(i) if t.saturating_sub(p.fired[i].t) < set.suppress_ms => {
                let f = &mut p.fired[i];
                if !spec.escalates {
                    self.stats.suppressed += 1;
                    return;
                }
                parts.push("extends");
                parts.push(&f.id);
                let grown = stable_id(&parts);
                let reported = f.reported(t, &grown);
                if score <= reported + SCORE_EPSILON {
                    self.stats.suppressed += 1;
                    return;
                }
                let diff = score - reported;
                notes.push_str(&format!(
                    " [grew after it was reported: +{diff:.0} over the {reported:.0} of signal {}]",
                    f.id
                ));
                if !f.escalations.iter().any(|e| e.1 == grown) {
                    f.escalations.push((t, grown.clone(), diff));
                }
                extends = Some(f.id.clone());
                (grown, diff)
            }
            _ => {
                if !p.fired.iter().any(|f| f.id == id) {
                    let at = p.fired.partition_point(|f| (f.t, &f.id) < (t, &id));
                    p.fired.insert(
                        at,
                        Fired {
                            t,
                            id: id.clone(),
                            score,
                            escalations: Vec::new(),
                            withdrawn_at: None,
                        },
                    );
                }
                (id, score)
            }
        };
        out.push(Signal {
            schema_version: SCHEMA_VERSION,
            id,
            signal: spec.name.to_owned(),
            time: t,
            risk_object: d.risk_object.to_owned(),
            risk_object_type: if d.risk_object.is_empty() {
                "system"
            } else {
                "user"
            }
            .to_owned(),
            risk_score: score,
            risk_message: format!("{message}{notes}"),
            threat_object: d.threat.map(str::to_owned),
            threat_object_type: d.threat.map(|_| "ip".to_owned()),
            mitre_technique_id: spec.techniques.iter().map(|s| (*s).to_owned()).collect(),
            cloud: d.clouds.to_vec(),
            event_ids,
            habitual,
            extends,
        });
        self.stats.signals += 1;
    }

    /// Take back a signal (see the module docs): push a signal carrying minus the score it
    /// reported, linked to it by `extends`, and stop it silencing repeats. Not a repeat, not
    /// habitual: a withdrawal always fires (the driver stores it once, by id).
    pub fn withdraw(
        &mut self,
        cfg: &CorrelateConfig,
        t: i64,
        w: Withdrawal<'_>,
        emitting: bool,
        out: &mut Vec<Signal>,
    ) {
        if !cfg.signal(w.kind).enabled {
            return;
        }
        let spec = w.kind.spec();
        let key = occurrence_key(spec.name, w.risk_object, w.threat);
        if let Some(f) = self
            .patterns
            .get_mut(&key)
            .and_then(|p| p.fired.iter_mut().find(|f| f.id == w.extends))
        {
            f.withdrawn_at = Some(f.withdrawn_at.map_or(t, |x| x.min(t)));
        }
        if !emitting {
            return;
        }
        let threat = w.threat.unwrap_or_default();
        let mut parts: Vec<&str> = vec![spec.name, w.risk_object, threat, "withdraws", w.extends];
        parts.extend(w.event_ids.iter().map(String::as_str));
        let id = stable_id(&parts);
        let score = -sane(w.score);
        out.push(Signal {
            schema_version: SCHEMA_VERSION,
            id,
            signal: spec.name.to_owned(),
            time: t,
            risk_object: w.risk_object.to_owned(),
            risk_object_type: "user".to_owned(),
            risk_score: score,
            risk_message: format!(
                "{} [withdraws the {:.0} of signal {}]",
                w.message, -score, w.extends
            ),
            threat_object: w.threat.map(str::to_owned),
            threat_object_type: w.threat.map(|_| "ip".to_owned()),
            mitre_technique_id: spec.techniques.iter().map(|s| (*s).to_owned()).collect(),
            cloud: w.clouds.to_vec(),
            event_ids: w.event_ids,
            habitual: false,
            extends: Some(w.extends.to_owned()),
        });
        self.stats.signals += 1;
    }

    /// The identity's latest observed signal at or before `t`, other than
    /// `aws_credential_persistence`, habitual ones and ones taken back.
    pub fn last_other(&self, identity: &str, t: i64) -> Option<(i64, SignalKind)> {
        self.last_other
            .get(identity)?
            .iter()
            .rev()
            .find(|o| o.0 <= t)
            .copied()
    }

    /// An observation found harmless later (a dismissed risk detection): no longer context.
    /// Called whether or not the engine is emitting, so a warm-up forgets it too.
    pub fn forget_observation(&mut self, identity: &str, t: i64, kind: SignalKind) {
        if let Some(seen) = self.last_other.get_mut(identity) {
            seen.retain(|o| *o != (t, kind));
            if seen.is_empty() {
                self.last_other.remove(identity);
            }
        }
    }

    /// Forget what no repeat or habit check at or after `now` can read.
    pub fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let other_cut =
            now.saturating_sub(cfg.signal(SignalKind::AwsCredentialPersistence).window_ms);
        self.last_other.retain(|_, seen| {
            seen.retain(|o| o.0 >= other_cut);
            !seen.is_empty()
        });
        let suppress = SignalKind::ALL
            .iter()
            .map(|k| cfg.signal(*k).suppress_ms)
            .max()
            .unwrap_or(0);
        let fired_cut = now.saturating_sub(suppress);
        let day_cut = now.div_euclid(DAY_MS) - HABIT_WINDOW_DAYS;
        self.patterns.retain(|_, p| {
            p.fired.retain(|f| f.t >= fired_cut);
            !p.fired.is_empty() || p.seen.day >= day_cut
        });
        trim_oldest(&mut self.patterns, MAX_PATTERNS, |p| {
            let fired = p.fired.last().map_or(i64::MIN, |f| f.t);
            let seen = p.seen.day.saturating_mul(DAY_MS);
            fired.max(seen)
        });
    }

    /// How far before a re-run's start stored signals must be seeded.
    pub fn seed_lookback_ms(cfg: &CorrelateConfig) -> i64 {
        SignalKind::ALL
            .iter()
            .map(|k| cfg.signal(*k).suppress_ms)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_days_count_within_the_window_before_today() {
        let mut s = Seen::default();
        assert_eq!(s.earlier_days(10), 0);
        for day in [1, 2, 5, 5, 9] {
            s.observe(day);
        }
        // Day 10 looks back at days 3..=9: 5 and 9.
        assert_eq!(s.earlier_days(10), 2);
        assert_eq!(s.earlier_days(9), 2); // 2 and 5 are in 2..=8; 9 is today
        assert_eq!(s.earlier_days(17), 0);
        // Out of order (not in event order, but handled): day 7 joins the bits.
        s.observe(7);
        assert_eq!(s.earlier_days(10), 3);
        s.observe(30);
        assert_eq!(s.earlier_days(31), 1);
        assert_eq!(s.earlier_days(30), 0);
    }
}
