//! `aws_recon_burst`: distinct reconnaissance calls sharing access key (or principal), source
//! IP and user-agent family within a window. Every call of the window counts toward the score
//! and message wherever it falls: a burst that grows after it was reported (a later denied
//! call) fires the difference through the emission path (`escalates` in its spec).

use std::collections::VecDeque;

use crate::StateMap;

use super::{Detector, Sweep, AWS, Ctx, MAX_EVENT_IDS, Sink};
use crate::catalog::{DENIED_BONUS, NEW_IP_FACTOR, RECON_CALLS, SignalKind};
use crate::config::CorrelateConfig;
use crate::emit::Draft;
use crate::engine::user_agent_family;
use crate::identity::Resolved;
use crate::net::fmt_duration;

const MAX_RECON_CALLS_PER_KEY: usize = 256;

#[derive(Clone)]
struct ReconCall {
    t: i64,
    op: u8,
    event_id: String,
    denied: bool,
    ip_new: bool,
}

#[derive(Clone)]
struct ReconWindow {
    identity: String,
    is_service: bool,
    ip: String,
    user_agent: String,
    credential: String,
    calls: VecDeque<ReconCall>,
}

/// A burst, for `cross_cloud_risky_then_aws`: what it did and its events.
pub(crate) struct Burst {
    pub what: String,
    pub event_ids: Vec<String>,
}

/// Recent recon calls per (key, IP, user-agent family).
#[derive(Clone, Default)]
pub(crate) struct Recon {
    windows: StateMap<String, ReconWindow>,
}

impl Recon {
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// A recon call (`op` indexes [`RECON_CALLS`]); the burst it completes or grows, if any.
    pub fn on_call(
        &mut self,
        c: &Ctx<'_>,
        who: &Resolved,
        op: u8,
        sink: &mut Sink<'_>,
    ) -> Option<Burst> {
        let set = c.cfg.signal(SignalKind::AwsReconBurst).clone();
        let user = c.ev.principal();
        let credential = user
            .and_then(|u| u.credential_uid.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let ua =
            c.ev.http_request
                .as_ref()
                .and_then(|h| h.user_agent.as_deref())
                .unwrap_or_default();
        let ip = c.ip.unwrap_or_default();
        let key_principal = credential.unwrap_or(&who.name);
        let key = format!("{key_principal}\u{1f}{ip}\u{1f}{}", user_agent_family(ua));
        let denied =
            c.ev.status_code
                .as_deref()
                .is_some_and(|s| s.contains("AccessDenied") || s.contains("UnauthorizedOperation"));
        let ip_new = c.ip_is_new(&who.name, SignalKind::AwsReconBurst);
        let w = self.windows.entry(key).or_insert_with(|| ReconWindow {
            identity: who.name.clone(),
            is_service: who.is_service,
            ip: ip.to_owned(),
            user_agent: ua.to_owned(),
            credential: credential.unwrap_or_default().to_owned(),
            calls: VecDeque::new(),
        });
        w.calls.push_back(ReconCall {
            t: c.t,
            op,
            event_id: c.id.to_owned(),
            denied,
            ip_new,
        });
        let before = c.t.saturating_sub(set.window_ms);
        while w.calls.front().is_some_and(|f| f.t < before)
            || w.calls.len() > MAX_RECON_CALLS_PER_KEY
        {
            w.calls.pop_front();
        }
        let mut mask = 0u64;
        for call in &w.calls {
            mask |= 1u64 << (call.op & 63);
        }
        if mask.count_ones() < set.threshold {
            return None;
        }
        let new_ip = w.calls.front().is_some_and(|f| f.ip_new);
        let n_denied = w.calls.iter().filter(|f| f.denied).count();
        let ops: Vec<&str> = (0..64u8)
            .filter(|i| mask & (1u64 << i) != 0)
            .filter_map(|i| RECON_CALLS.get(usize::from(i)).copied())
            .collect();
        let span = fmt_duration(c.t - w.calls.front().map_or(c.t, |f| f.t));
        let ids: Vec<String> = w
            .calls
            .iter()
            .take(MAX_EVENT_IDS)
            .map(|f| f.event_id.clone())
            .collect();
        let lookback = fmt_duration(c.cfg.signal(SignalKind::AwsReconBurst).lookback_ms);
        let msg = {
            let cred = if w.credential.is_empty() {
                String::new()
            } else {
                format!(" with access key {}", w.credential)
            };
            let mut m = format!(
                "{} made {} distinct reconnaissance calls in {span} from {} (user agent \"{}\"){cred}: {}",
                w.identity,
                ops.len(),
                if w.ip.is_empty() {
                    "an unknown IP"
                } else {
                    &w.ip
                },
                w.user_agent,
                ops.join(", ")
            );
            if n_denied > 0 {
                m.push_str(&format!("; {n_denied} denied (+20)"));
            }
            if new_ip {
                m.push_str(&format!(
                    "; source IP not seen for this identity in the last {lookback} (×1.5)"
                ));
            }
            m
        };
        let base = set.score * if new_ip { NEW_IP_FACTOR } else { 1.0 }
            + if n_denied > 0 { DENIED_BONUS } else { 0.0 };
        let risk = w.identity.clone();
        let svc = w.is_service;
        sink.fire_scored(
            c.t,
            Draft {
                kind: SignalKind::AwsReconBurst,
                risk_object: &risk,
                is_service: svc,
                score: base,
                threat: c.ip,
                clouds: AWS,
            },
            || (msg, ids.clone()),
        );
        Some(Burst {
            what: format!("made a reconnaissance burst ({})", ops.join(", ")),
            event_ids: ids,
        })
    }
}

impl Detector for Recon {
    const SWEEP: Sweep = Sweep::Often;

    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let cut = now.saturating_sub(cfg.signal(SignalKind::AwsReconBurst).window_ms);
        self.windows
            .retain(|_, w| w.calls.back().is_some_and(|f| f.t >= cut));
    }
}
