//! Late data: when events arrive that are older than signals already stored (a file imported
//! after the days that follow it, a collector catching up), the correlator replays event time
//! from the earliest new event, and that replay — every event in event order — is what crosswind
//! concludes from then on. A signal stored earlier may come out differently: habitual now that
//! the days before it are known (a quarter of its score), or a repeat of a signal the earlier
//! days raise (not raised at all). This module compares the replay with what is stored, so the
//! store ends up as one import in event order would have left it, and Splunk, which sums risk
//! scores, is told the difference:
//!
//! - a stored signal the replay raises with another score is stored again in its new version,
//!   and Splunk gets a correction carrying the difference (`extends` naming the signal);
//! - a stored signal the replay no longer raises is taken back by a withdrawal (minus its score,
//!   `extends` naming it), stored and forwarded like the withdrawal of a dismissed detection.
//!
//! Findings already raised stay raised (they were sent); later scoring reads the corrected
//! signals. Both kinds of record have ids derived from what they correct, so a re-run adds
//! nothing twice.

use std::collections::{HashMap, HashSet};

use crosswind_correlate::stable_id;
use crosswind_model::Signal;

/// Scores closer than this are the same.
const SCORE_EPSILON: f64 = 1e-6;

/// What the replay changes about the stored signals it covers.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Stored signals the replay raised with another score, in their new version.
    pub rescored: Vec<Signal>,
    /// For Splunk only: the difference for each rescored signal.
    pub corrections: Vec<Signal>,
    /// Withdrawals of stored signals the replay no longer raises (stored and forwarded).
    pub withdrawals: Vec<Signal>,
}

/// The id of the withdrawal that takes back stored signal `id` after a replay.
pub fn withdrawal_id(id: &str) -> String {
    stable_id(&["no-longer-raised", id])
}

/// `stored`: the stored signals at or after the replay's start; `fresh`: what the replay raised
/// from that start on.
pub fn reconcile(stored: &[Signal], fresh: &[Signal]) -> Reconciled {
    let mut fresh_by_id: HashMap<&str, &Signal> = HashMap::with_capacity(fresh.len());
    for f in fresh {
        fresh_by_id.entry(f.id.as_str()).or_insert(f);
    }
    let stored_ids: HashSet<&str> = stored.iter().map(|s| s.id.as_str()).collect();
    let mut out = Reconciled::default();
    for s in stored {
        // A withdrawal of ours: it stands with the signal it took back.
        if s.extends
            .as_deref()
            .is_some_and(|x| withdrawal_id(x) == s.id)
        {
            continue;
        }
        match fresh_by_id.get(s.id.as_str()) {
            Some(f) => {
                let diff = f.risk_score - s.risk_score;
                if diff.abs() <= SCORE_EPSILON || !diff.is_finite() {
                    continue;
                }
                out.rescored.push((*f).clone());
                out.corrections.push(Signal {
                    id: stable_id(&["rescored", &s.id, &format!("{:.6}", f.risk_score)]),
                    risk_score: diff,
                    risk_message: format!(
                        "{} [re-scored when earlier events arrived: {:.0} -> {:.0}; this risk event carries the difference]",
                        f.risk_message, s.risk_score, f.risk_score
                    ),
                    extends: Some(s.id.clone()),
                    ..(*f).clone()
                });
            }
            None => {
                let id = withdrawal_id(&s.id);
                if stored_ids.contains(id.as_str())
                    || s.risk_score.abs() <= SCORE_EPSILON
                    || !s.risk_score.is_finite()
                {
                    continue;
                }
                out.withdrawals.push(Signal {
                    id,
                    risk_score: -s.risk_score,
                    risk_message: format!(
                        "{}: taken back when earlier events arrived: replayed in event order they no longer raise this {} (a repeat of an earlier one, or no longer observed) [withdraws the {:.0} of signal {}: {}]",
                        if s.risk_object.is_empty() {
                            s.threat_object.as_deref().unwrap_or("system")
                        } else {
                            &s.risk_object
                        },
                        s.signal,
                        s.risk_score,
                        s.id,
                        s.risk_message
                    ),
                    extends: Some(s.id.clone()),
                    habitual: false,
                    ..s.clone()
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crosswind_model::{CloudProvider, SCHEMA_VERSION};

    fn sig(id: &str, score: f64, habitual: bool) -> Signal {
        Signal {
            schema_version: SCHEMA_VERSION,
            id: id.to_owned(),
            signal: "aws_messaging_abuse".to_owned(),
            time: 1_000,
            risk_object: "svc".to_owned(),
            risk_object_type: "user".to_owned(),
            risk_score: score,
            risk_message: format!("observed {id}"),
            threat_object: Some("198.51.100.7".to_owned()),
            threat_object_type: Some("ip".to_owned()),
            mitre_technique_id: vec!["T1496.004".to_owned()],
            cloud: vec![CloudProvider::Aws],
            event_ids: vec![format!("e-{id}")],
            habitual,
            extends: None,
        }
    }

    #[test]
    fn the_same_conclusion_changes_nothing() {
        let s = [sig("a", 56.0, false)];
        let r = reconcile(&s, &s);
        assert!(r.rescored.is_empty() && r.corrections.is_empty() && r.withdrawals.is_empty());
    }

    #[test]
    fn a_signal_now_habitual_is_stored_anew_and_splunk_gets_the_difference() {
        let r = reconcile(&[sig("a", 56.0, false)], &[sig("a", 14.0, true)]);
        assert_eq!(r.rescored.len(), 1);
        assert_eq!(
            (r.rescored[0].risk_score, r.rescored[0].habitual),
            (14.0, true)
        );
        let c = &r.corrections[0];
        assert_eq!(c.risk_score, -42.0);
        assert_eq!(c.extends.as_deref(), Some("a"));
        assert_ne!(c.id, "a");
        assert!(c.risk_message.contains("56 -> 14"), "{}", c.risk_message);
        assert!(r.withdrawals.is_empty());
    }

    #[test]
    fn a_signal_no_longer_raised_is_withdrawn_once() {
        let stored = [sig("a", 56.0, false), sig("b", 56.0, false)];
        // The replay raises `b` (an earlier day's) and not `a` (now its repeat).
        let r = reconcile(&stored, &[sig("b", 56.0, false)]);
        assert_eq!(r.withdrawals.len(), 1);
        let w = &r.withdrawals[0];
        assert_eq!((w.risk_score, w.extends.as_deref()), (-56.0, Some("a")));
        assert_eq!(w.id, withdrawal_id("a"));
        assert_eq!(w.time, stored[0].time);
        // Stored, the withdrawal stands, and the next run adds nothing.
        let mut after = stored.to_vec();
        after.push(w.clone());
        let again = reconcile(&after, &[sig("b", 56.0, false)]);
        assert!(again.withdrawals.is_empty() && again.rescored.is_empty());
    }
}
