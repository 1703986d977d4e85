//! `aws_console_login_failures`: many failed console logins from one IP within a window (the
//! user may be `HIDDEN_DUE_TO_SECURITY_REASONS`, so the key is the IP).

use std::collections::VecDeque;

use crate::StateMap;

use super::{Detector, Sweep, AWS, Ctx, MAX_EVENT_IDS, Sink};
use crate::catalog::SignalKind;
use crate::config::CorrelateConfig;
use crate::emit::Draft;
use crate::net::fmt_duration;

const MAX_CONSOLE_FAILS_PER_IP: usize = 1_000;

#[derive(Clone)]
struct ConsoleFail {
    t: i64,
    identity: Option<(String, bool)>,
    event_id: String,
}

/// Recent failed console logins per IP.
#[derive(Clone, Default)]
pub(crate) struct ConsoleFailures {
    by_ip: StateMap<String, VecDeque<ConsoleFail>>,
}

impl ConsoleFailures {
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn on_failure(&mut self, c: &Ctx<'_>, sink: &mut Sink<'_>) {
        let set = c.cfg.signal(SignalKind::AwsConsoleLoginFailures).clone();
        let ip = c.ip.unwrap_or_default();
        let q = self.by_ip.entry(ip.to_owned()).or_default();
        q.push_back(ConsoleFail {
            t: c.t,
            identity: c.who.as_ref().map(|w| (w.name.clone(), w.is_service)),
            event_id: c.id.to_owned(),
        });
        let before = c.t.saturating_sub(set.window_ms);
        while q.front().is_some_and(|f| f.t < before) || q.len() > MAX_CONSOLE_FAILS_PER_IP {
            q.pop_front();
        }
        if q.len() < set.threshold as usize {
            return;
        }
        // One identity (every failure named the same resolvable user): risk on it; otherwise
        // (several users, or hidden user names) a threat-only signal on the IP.
        let first = q.front().and_then(|f| f.identity.clone());
        let single = first.filter(|f| {
            q.iter()
                .all(|x| x.identity.as_ref().map(|i| &i.0) == Some(&f.0))
        });
        let mut names: Vec<&str> = q
            .iter()
            .map(|f| f.identity.as_ref().map_or("(hidden)", |i| i.0.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let n = q.len();
        let span = fmt_duration(c.t - q.front().map_or(c.t, |f| f.t));
        let users = names.join(", ");
        let ids: Vec<String> = q
            .iter()
            .take(MAX_EVENT_IDS)
            .map(|f| f.event_id.clone())
            .collect();
        let (risk, svc) = single.unwrap_or_default();
        sink.fire(
            c.t,
            Draft {
                kind: SignalKind::AwsConsoleLoginFailures,
                risk_object: &risk,
                is_service: svc,
                score: 0.0,
                threat: Some(ip),
                clouds: AWS,
            },
            1.0,
            || {
                (
                    format!("{n} failed AWS console logins from {ip} in {span} (users: {users})"),
                    ids,
                )
            },
        );
    }
}

impl Detector for ConsoleFailures {
    const SWEEP: Sweep = Sweep::Often;

    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let cut = now.saturating_sub(cfg.signal(SignalKind::AwsConsoleLoginFailures).window_ms);
        self.by_ip
            .retain(|_, q| q.back().is_some_and(|f| f.t >= cut));
    }
}
