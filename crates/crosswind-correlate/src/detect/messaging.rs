//! `aws_messaging_abuse`: distinct account-level SES / SES v2 / SNS messaging calls by one
//! identity within a window — what a stolen key does before spamming from the account (is
//! sending enabled, what is the quota, which identities are verified, leave the SMS sandbox).
//! Calls the console makes for a browsing user never count (as for recon), and a call counts only
//! when its `eventSource` is the service the name belongs to, or unknown: API Gateway has a
//! `GetAccount` too, Cognito Identity a `ListIdentities` (docs/detections.md).

use std::collections::VecDeque;

use crate::StateMap;

use super::{AWS, Ctx, Detector, MAX_EVENT_IDS, Sink, Sweep};
use crate::catalog::{MESSAGING_CALLS, NEW_IP_FACTOR, SignalKind};
use crate::config::CorrelateConfig;
use crate::emit::Draft;
use crate::identity::Resolved;
use crate::net::{fmt_duration, fmt_time};

const MAX_CALLS_PER_IDENTITY: usize = 256;

/// `op` (an index in [`MESSAGING_CALLS`]) when the call was made to that call's service, or to
/// an unknown one.
pub(crate) fn messaging_call(op: u8, event_source: Option<&str>) -> Option<u8> {
    let (_, services) = MESSAGING_CALLS.get(usize::from(op))?;
    let source = event_source.map(str::trim).filter(|s| !s.is_empty());
    let ok = source.is_none_or(|s| services.iter().any(|svc| s.eq_ignore_ascii_case(svc)));
    ok.then_some(op)
}

#[derive(Clone)]
struct Call {
    t: i64,
    op: u8,
    event_id: String,
    ip: String,
    ip_new: bool,
}

/// Recent messaging calls per identity.
#[derive(Clone, Default)]
pub(crate) struct Messaging {
    calls: StateMap<String, VecDeque<Call>>,
}

/// What a messaging burst did, for `cross_cloud_risky_then_aws`.
pub(crate) struct MessagingBurst {
    pub what: String,
    pub event_ids: Vec<String>,
}

impl Messaging {
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// A messaging call (`op` indexes [`MESSAGING_CALLS`]); the burst it completes, if any.
    pub fn on_call(
        &mut self,
        c: &Ctx<'_>,
        who: &Resolved,
        op: u8,
        sink: &mut Sink<'_>,
    ) -> Option<MessagingBurst> {
        let set = c.cfg.signal(SignalKind::AwsMessagingAbuse).clone();
        let ip_new = c.ip_is_new(&who.name, SignalKind::AwsMessagingAbuse);
        let q = match self.calls.get_mut(&who.name) {
            Some(q) => q,
            None => self.calls.entry(who.name.clone()).or_default(),
        };
        q.push_back(Call {
            t: c.t,
            op,
            event_id: c.id.to_owned(),
            ip: c.ip.unwrap_or_default().to_owned(),
            ip_new,
        });
        let before = c.t.saturating_sub(set.window_ms);
        while q.front().is_some_and(|f| f.t < before) || q.len() > MAX_CALLS_PER_IDENTITY {
            q.pop_front();
        }
        let mut mask = 0u32;
        for call in q.iter() {
            mask |= 1 << (call.op & 31);
        }
        if mask.count_ones() < set.threshold {
            return None;
        }
        let names: Vec<&str> = (0..32u8)
            .filter(|i| mask & (1 << i) != 0)
            .filter_map(|i| MESSAGING_CALLS.get(usize::from(i)).map(|c| c.0))
            .collect();
        let new_ip = q.iter().find(|f| f.ip_new).map(|f| f.ip.clone());
        let ids: Vec<String> = q
            .iter()
            .take(MAX_EVENT_IDS)
            .map(|f| f.event_id.clone())
            .collect();
        let msg = {
            let first = q.front().map_or(c.t, |f| f.t);
            let calls: Vec<String> = q
                .iter()
                .map(|f| {
                    format!(
                        "{} at {} from {}",
                        MESSAGING_CALLS
                            .get(usize::from(f.op))
                            .map_or("?", |c| c.0),
                        fmt_time(f.t),
                        if f.ip.is_empty() {
                            "an unknown IP"
                        } else {
                            &f.ip
                        }
                    )
                })
                .collect();
            let mut m = format!(
                "{} made {} distinct account-level messaging calls (SES/SNS) in {}: {}",
                who.name,
                names.len(),
                fmt_duration(c.t - first),
                calls.join(", ")
            );
            if let Some(ip) = &new_ip {
                m.push_str(&format!(
                    "; source IP {ip} not seen for this identity in the last {} (×1.5)",
                    fmt_duration(set.lookback_ms)
                ));
            }
            m
        };
        sink.fire(
            c.t,
            Draft {
                kind: SignalKind::AwsMessagingAbuse,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: c.ip,
                clouds: AWS,
            },
            if new_ip.is_some() { NEW_IP_FACTOR } else { 1.0 },
            || (msg, ids.clone()),
        );
        Some(MessagingBurst {
            what: format!("made account-level messaging calls ({})", names.join(", ")),
            event_ids: ids,
        })
    }
}

impl Detector for Messaging {
    const SWEEP: Sweep = Sweep::Often;

    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let cut = now.saturating_sub(cfg.signal(SignalKind::AwsMessagingAbuse).window_ms);
        self.calls.retain(|_, q| q.back().is_some_and(|f| f.t >= cut));
    }
}
