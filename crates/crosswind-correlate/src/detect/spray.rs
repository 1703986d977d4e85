//! Password spray (`azure_password_spray`): one source failing for many distinct users within a
//! window; every identity that then succeeds from that source — in Entra
//! (`azure_password_spray` on the identity) or at the AWS console
//! (`cross_cloud_spray_then_aws_login`) — within the follow-up. A source is an IP, or its
//! IPv4 /24 (IPv6 /48) when the spray rotated.

use std::collections::VecDeque;

use crate::StateMap;

use crosswind_model::CloudProvider;

use super::{Detector, Sweep, AZURE, BOTH, Ctx, MAX_EVENT_IDS, Sink, age};
use crate::catalog::SignalKind;
use crate::config::CorrelateConfig;
use crate::emit::Draft;
use crate::identity::{PrincipalKind, Resolved};
use crate::net::{fmt_duration, fmt_time};

const MAX_SPRAY_FAILS_PER_SOURCE: usize = 10_000;
const MAX_PENDING_SUCCESSES: usize = 1_000;

#[derive(Clone)]
struct Fail {
    t: i64,
    user: String,
    event_id: String,
    ip: String,
    code: String,
}

#[derive(Clone)]
struct PendingSuccess {
    t: i64,
    identity: String,
    is_service: bool,
    ip: String,
    event_id: String,
    cloud: CloudProvider,
}

#[derive(Clone, Default)]
struct SprayWindow {
    fails: VecDeque<Fail>,
    users: StateMap<String, u32>,
    successes: VecDeque<PendingSuccess>,
}

impl SprayWindow {
    fn evict(&mut self, before: i64) {
        while let Some(f) = self.fails.front() {
            if f.t >= before && self.fails.len() <= MAX_SPRAY_FAILS_PER_SOURCE {
                break;
            }
            if let Some(f) = self.fails.pop_front()
                && let Some(n) = self.users.get_mut(&f.user)
            {
                *n -= 1;
                if *n == 0 {
                    self.users.remove(&f.user);
                }
            }
        }
        // A pending success older than the oldest failure can never be attributed to a spray.
        let oldest = self.fails.front().map_or(i64::MAX, |f| f.t).max(before);
        while self.successes.front().is_some_and(|s| s.t < oldest) {
            self.successes.pop_front();
        }
        while self.successes.len() > MAX_PENDING_SUCCESSES {
            self.successes.pop_front();
        }
    }
}

#[derive(Clone)]
struct Sprayed {
    at: i64,
    threat: String,
    users: usize,
    window_ms: i64,
}

/// Spray windows per source, and the sources that sprayed.
#[derive(Clone, Default)]
pub(crate) struct Spray {
    windows: StateMap<String, SprayWindow>,
    sprayed: StateMap<String, Sprayed>,
}

impl Spray {
    pub fn sizes(&self) -> (usize, usize) {
        (self.windows.len(), self.sprayed.len())
    }

    pub fn on_failure(
        &mut self,
        c: &Ctx<'_>,
        source: &str,
        user: &str,
        code: &str,
        sink: &mut Sink<'_>,
    ) {
        let spec = c.cfg.signal(SignalKind::AzurePasswordSpray).clone();
        let ip = c.ip.unwrap_or_default();
        let w = self.windows.entry(source.to_owned()).or_default();
        w.fails.push_back(Fail {
            t: c.t,
            user: user.to_owned(),
            event_id: c.id.to_owned(),
            ip: ip.to_owned(),
            code: code.to_owned(),
        });
        *w.users.entry(user.to_owned()).or_insert(0) += 1;
        w.evict(c.t.saturating_sub(spec.window_ms));
        if w.users.len() < spec.threshold as usize {
            return;
        }
        // A spray: the source failed for ≥ threshold distinct users within the window.
        let first = w.fails.front().map_or(c.t, |f| f.t);
        let users = w.users.len();
        let single_ip = w.fails.iter().all(|f| f.ip == ip);
        let threat = if single_ip {
            ip.to_owned()
        } else {
            source.to_owned()
        };
        let mut codes: Vec<(&str, usize)> = Vec::new();
        for f in &w.fails {
            match codes.iter_mut().find(|(k, _)| *k == f.code) {
                Some((_, n)) => *n += 1,
                None => codes.push((&f.code, 1)),
            }
        }
        codes.sort();
        let codes = codes
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let ids: Vec<String> = w
            .fails
            .iter()
            .take(MAX_EVENT_IDS)
            .map(|f| f.event_id.clone())
            .collect();
        let n_fails = w.fails.len();
        let pending: Vec<PendingSuccess> = w.successes.drain(..).filter(|s| s.t >= first).collect();
        let span = fmt_duration(c.t - first);
        self.sprayed.insert(
            source.to_owned(),
            Sprayed {
                at: c.t,
                threat: threat.clone(),
                users,
                window_ms: spec.window_ms,
            },
        );
        sink.fire(
            c.t,
            Draft { kind: SignalKind::AzurePasswordSpray, risk_object: "", is_service: false, score: 0.0, threat: Some(&threat), clouds: AZURE },
            0.0,
            || {
                (
                    format!(
                        "password spray from {threat}: {n_fails} failed Entra sign-ins for {users} distinct users in {span} ({codes})"
                    ),
                    ids,
                )
            },
        );
        for p in pending {
            let who = Resolved {
                name: p.identity.clone(),
                kind: PrincipalKind::Other,
                is_service: p.is_service,
            };
            self.spray_success(c.t, &who, &p.ip, &p.event_id, p.t, source, p.cloud, sink);
        }
    }

    /// A successful sign-in (Entra) or console login (AWS) from a non-trusted source.
    pub fn on_source_success(
        &mut self,
        c: &Ctx<'_>,
        source: &str,
        who: &Resolved,
        cloud: CloudProvider,
        sink: &mut Sink<'_>,
    ) {
        let follow = match cloud {
            CloudProvider::Azure => c.cfg.signal(SignalKind::AzurePasswordSpray).lookback_ms,
            CloudProvider::Aws => {
                c.cfg
                    .signal(SignalKind::CrossCloudSprayThenAwsLogin)
                    .window_ms
            }
        };
        let ip = c.ip.unwrap_or_default();
        if self
            .sprayed
            .get(source)
            .is_some_and(|s| c.t >= s.at && age(c.t, s.at) <= follow)
        {
            self.spray_success(c.t, who, ip, c.id, c.t, source, cloud, sink);
            return;
        }
        let window = c.cfg.signal(SignalKind::AzurePasswordSpray).window_ms;
        if let Some(w) = self.windows.get_mut(source)
            && w.fails.back().is_some_and(|f| age(c.t, f.t) <= window)
        {
            w.successes.push_back(PendingSuccess {
                t: c.t,
                identity: who.name.clone(),
                is_service: who.is_service,
                ip: ip.to_owned(),
                event_id: c.id.to_owned(),
                cloud,
            });
            if w.successes.len() > MAX_PENDING_SUCCESSES {
                w.successes.pop_front();
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn spray_success(
        &mut self,
        now: i64,
        who: &Resolved,
        ip: &str,
        event_id: &str,
        success_t: i64,
        source: &str,
        cloud: CloudProvider,
        sink: &mut Sink<'_>,
    ) {
        let Some(s) = self.sprayed.get(source) else {
            return;
        };
        let desc = format!(
            "{}{} failed Entra sign-ins for {} distinct users within {} at {}",
            s.threat,
            if s.threat == source {
                String::new()
            } else {
                format!(" (source {source})")
            },
            s.users,
            fmt_duration(s.window_ms),
            fmt_time(s.at)
        );
        let (kind, clouds, what) = match cloud {
            CloudProvider::Azure => (
                SignalKind::AzurePasswordSpray,
                AZURE,
                "signed in to Entra successfully",
            ),
            CloudProvider::Aws => (
                SignalKind::CrossCloudSprayThenAwsLogin,
                BOTH,
                "logged in to the AWS console successfully",
            ),
        };
        sink.fire(
            now,
            Draft {
                kind,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: Some(ip),
                clouds,
            },
            1.0,
            || {
                (
                    format!(
                        "{} {what} from {ip} at {} after a password spray: {desc}",
                        who.name,
                        fmt_time(success_t)
                    ),
                    vec![event_id.to_owned()],
                )
            },
        );
    }
}

impl Detector for Spray {
    const SWEEP: Sweep = Sweep::Often;

    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let spray = cfg.signal(SignalKind::AzurePasswordSpray);
        let follow = spray.lookback_ms.max(
            cfg.signal(SignalKind::CrossCloudSprayThenAwsLogin)
                .window_ms,
        );
        let window = spray.window_ms;
        self.windows.retain(|_, w| {
            w.evict(now.saturating_sub(window));
            !w.fails.is_empty()
        });
        self.sprayed
            .retain(|_, s| s.at >= now.saturating_sub(follow));
    }
}
