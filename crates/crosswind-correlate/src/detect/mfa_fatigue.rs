//! `azure_mfa_fatigue`: push-bombing. At least `threshold` (5) MFA prompts one user denied or
//! left unanswered (`status.errorCode` 500121 whose `additionalDetails` says so) within the
//! window (10 min) score 24; when the same user then signs in successfully within the
//! look-back (1 h) the observation grows to 80 through the emission path's growth rule (an
//! escalation carrying the difference, `extends` naming the first signal), and counts as the
//! risky Entra side of `cross_cloud_risky_then_aws`. One or two denials (a misclick, a prompt
//! the user did not expect) never reach the threshold (docs/detections.md).

use std::collections::VecDeque;

use crate::StateMap;

use super::entra_risk::RiskySignin;
use super::{AZURE, Ctx, Detector, MAX_EVENT_IDS, Sink, Sweep, age};
use crate::catalog::{MFA_DENIED_CODE, MFA_FATIGUE_SUCCESS_FACTOR, MFA_REFUSED_DETAILS, SignalKind};
use crate::config::CorrelateConfig;
use crate::emit::Draft;
use crate::identity::Resolved;
use crate::net::{fmt_duration, fmt_time};

/// Whether a failed sign-in is an MFA prompt the user refused or ignored.
pub fn is_refused_prompt(code: &str, additional_details: Option<&str>) -> bool {
    code.trim() == MFA_DENIED_CODE
        && additional_details.is_some_and(|d| {
            let d = d.to_ascii_lowercase();
            MFA_REFUSED_DETAILS.iter().any(|m| d.contains(m))
        })
}

#[derive(Clone)]
struct Prompt {
    t: i64,
    id: String,
    ip: Option<String>,
}

/// A burst that reached the threshold: what was reported, for the success that may follow.
#[derive(Clone)]
struct Burst {
    t: i64,
    first: i64,
    count: usize,
    threat: Option<String>,
    event_ids: Vec<String>,
}

#[derive(Clone, Default)]
struct User {
    prompts: VecDeque<Prompt>,
    burst: Option<Burst>,
}

/// Each user's recent refused prompts and last burst.
#[derive(Clone, Default)]
pub(crate) struct MfaFatigue {
    users: StateMap<String, User>,
}

impl Detector for MfaFatigue {
    const SWEEP: Sweep = Sweep::Often;

    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let set = cfg.signal(SignalKind::AzureMfaFatigue);
        let prompts_cut = now.saturating_sub(set.window_ms);
        let burst_cut = now.saturating_sub(set.lookback_ms);
        self.users.retain(|_, u| {
            while u.prompts.front().is_some_and(|p| p.t < prompts_cut) {
                u.prompts.pop_front();
            }
            if u.burst.as_ref().is_some_and(|b| b.t < burst_cut) {
                u.burst = None;
            }
            !u.prompts.is_empty() || u.burst.is_some()
        });
    }
}

impl MfaFatigue {
    /// A failed sign-in with code `code`.
    pub fn on_failure(&mut self, c: &Ctx<'_>, who: &Resolved, code: &str, sink: &mut Sink<'_>) {
        let details =
            c.ev.entra
                .as_ref()
                .and_then(|e| e.status_additional_details.as_deref());
        if !is_refused_prompt(code, details) {
            return;
        }
        let set = c.cfg.signal(SignalKind::AzureMfaFatigue);
        let u = self.users.entry(who.name.clone()).or_default();
        let cut = c.t.saturating_sub(set.window_ms);
        while u.prompts.front().is_some_and(|p| p.t < cut) {
            u.prompts.pop_front();
        }
        u.prompts.push_back(Prompt {
            t: c.t,
            id: c.id.to_owned(),
            ip: c.ip.map(str::to_owned),
        });
        if u.prompts.len() < set.threshold as usize {
            return;
        }
        // The burst's threat object is where its first prompt came from; kept for its growth.
        let threat = match &u.burst {
            Some(b) if age(c.t, b.t) <= set.lookback_ms => b.threat.clone(),
            _ => u.prompts.front().and_then(|p| p.ip.clone()),
        };
        let first = u.prompts.front().map_or(c.t, |p| p.t);
        let count = u.prompts.len();
        let event_ids: Vec<String> = u
            .prompts
            .iter()
            .rev()
            .take(MAX_EVENT_IDS)
            .rev()
            .map(|p| p.id.clone())
            .collect();
        let mut ips: Vec<&str> = u.prompts.iter().filter_map(|p| p.ip.as_deref()).collect();
        ips.sort_unstable();
        ips.dedup();
        let from = if ips.is_empty() {
            "an unknown IP".to_owned()
        } else {
            ips.join(", ")
        };
        let ids = event_ids.clone();
        sink.fire(
            c.t,
            draft(who, threat.as_deref()),
            1.0,
            || {
                (
                    format!(
                        "{} denied or ignored {count} MFA prompts in {} (500121: {}), requested from {from}: MFA fatigue",
                        who.name,
                        fmt_duration(c.t - first),
                        details.unwrap_or_default(),
                    ),
                    ids,
                )
            },
        );
        u.burst = Some(Burst {
            t: c.t,
            first,
            count,
            threat,
            event_ids,
        });
    }

    /// A successful sign-in: after a burst within the look-back, the user gave in (or the
    /// attacker got through). Returns it as the risky Entra side of a cross-cloud rule.
    pub fn on_success(
        &mut self,
        c: &Ctx<'_>,
        who: &Resolved,
        sink: &mut Sink<'_>,
    ) -> Option<RiskySignin> {
        let set = c.cfg.signal(SignalKind::AzureMfaFatigue);
        let u = self.users.get_mut(&who.name)?;
        let b = u.burst.take_if(|b| c.t >= b.t && age(c.t, b.t) <= set.lookback_ms)?;
        let ip_text = c.ip.unwrap_or("an unknown IP");
        let mut ids = b.event_ids.clone();
        ids.push(c.id.to_owned());
        sink.fire(
            c.t,
            draft(who, b.threat.as_deref()),
            MFA_FATIGUE_SUCCESS_FACTOR,
            || {
                (
                    format!(
                        "{} signed in successfully from {ip_text} {} after denying or ignoring {} MFA prompts between {} and {}: MFA fatigue that worked",
                        who.name,
                        fmt_duration(c.t - b.t),
                        b.count,
                        fmt_time(b.first),
                        fmt_time(b.t),
                    ),
                    ids,
                )
            },
        );
        Some(RiskySignin {
            event_id: c.id.to_owned(),
            what: "MFA fatigue",
            why: format!(
                "{} MFA prompts denied or ignored, then a success from {ip_text}",
                b.count
            ),
            detection: None,
        })
    }
}

fn draft<'a>(who: &'a Resolved, threat: Option<&'a str>) -> Draft<'a> {
    Draft {
        kind: SignalKind::AzureMfaFatigue,
        risk_object: &who.name,
        is_service: who.is_service,
        score: 0.0,
        threat,
        clouds: AZURE,
    }
}
