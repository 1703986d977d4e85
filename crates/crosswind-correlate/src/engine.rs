//! The streaming signal engine: fed events in event-time order, keeps bounded windowed state,
//! emits [`Signal`]s with deterministic ids.
//!
//! Invariants:
//! - Pure: no clock, no I/O. Time is the events' own time; history comes in through
//!   [`Engine::warm_up`] and [`Engine::seed_prior_signals`].
//! - Deterministic: the same events in the same order ([`event_order`]: time, then event id)
//!   give the same signals with the same ids. State is only ever read through time filters, so
//!   when the periodic sweep frees memory does not change any result.
//! - Detection state (spray sources, risky sign-ins, windows) comes from events alone; what
//!   fired comes from the stored signals plus what this engine emits (`emit.rs`). A re-run
//!   replays `[start − max_lookback, start)` through `warm_up`, seeds the stored signals
//!   through `seed_signals`, then `process`es from `start`.
//! - Repeats, growth and habits are judged once, in the emission path (`emit.rs`).

use crate::StateMap;
use std::cmp::Ordering;
use std::net::IpAddr;

use crosswind_model::{CloudProvider, Event, STATUS_FAILURE, Signal};
use sha2::{Digest, Sha256};

use crate::catalog::{SPRAY_FAILURE_CODES, SignalKind, aws_call_roles};
use crate::config::CorrelateConfig;
use crate::detect::history::IpHistory;
use crate::detect::messaging::messaging_call;
use crate::detect::risk_detection::DetectionUpdate;
use crate::detect::unused_region::UnusedRegion;
use crate::detect::{Ctx, Detectors, Sink};
use crate::emit::{Emitter, HABIT_WINDOW_DAYS};
use crate::identity::{IdentityLinks, Resolved, resolve};
use crate::net::{canonical, source_of};

const MIN_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// How long a location learnt from Entra for an IP is used to place AWS calls from that IP.
pub const GEO_TTL_MS: i64 = 7 * DAY_MS;
const SWEEP_EVERY_MS: i64 = 5 * MIN_MS;
const LONG_SWEEP_EVERY_MS: i64 = HOUR_MS;

/// The user agent with what changes per call removed, so one client's calls share a key:
/// aws-cli v2 appends the command (`command/sts.get-caller-identity`, newer builds
/// `md/command#sts.get-caller-identity`) to every call, and CloudTrail sometimes wraps SDK
/// agents in brackets (`[Boto3/1.26 …]`).
pub fn user_agent_family(ua: &str) -> String {
    let ua = ua.trim();
    let ua = ua
        .strip_prefix('[')
        .and_then(|u| u.strip_suffix(']'))
        .unwrap_or(ua);
    ua.split_ascii_whitespace()
        .filter(|token| !token.starts_with("command/") && !token.starts_with("md/command#"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The event name without the API version some services append (`ListFunctions20150331`,
/// `GetFunction20150331v2`): an 8-digit date, optionally followed by `v` and a number.
pub fn plain_event_name(op: &str) -> &str {
    let trimmed = match op.rfind('v') {
        Some(i) if i + 1 < op.len() && op[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &op[..i],
        _ => op,
    };
    let bytes = trimmed.as_bytes();
    if bytes.len() > 8 && bytes[bytes.len() - 8..].iter().all(u8::is_ascii_digit) {
        &trimmed[..trimmed.len() - 8]
    } else {
        op
    }
}

/// A call the AWS console made on a signed-in user's behalf (browsing, not recon):
/// `sessionCredentialFromConsole`, or a console / AWS-internal user agent — `AWS Internal`,
/// `console.ec2.amazonaws.com`, `s3.console.aws.amazonaws.com`, `[S3Console/0.4, aws-internal/3
/// aws-sdk-java/…]`.
pub fn made_by_console(ev: &Event) -> bool {
    if ev
        .aws
        .as_ref()
        .and_then(|a| a.session_credential_from_console)
        == Some(true)
    {
        return true;
    }
    let Some(ua) = ev
        .http_request
        .as_ref()
        .and_then(|h| h.user_agent.as_deref())
    else {
        return false;
    };
    let ua = ua.trim().trim_start_matches('[').to_ascii_lowercase();
    ua.starts_with("aws internal")
        || ua.contains("aws-internal/")
        || (!ua.contains(char::is_whitespace)
            && ua.ends_with(".amazonaws.com")
            && ua.split('.').any(|label| label == "console"))
}

/// The order the driver must feed events in: event time, ties by event id.
pub fn event_order(a: &Event, b: &Event) -> Ordering {
    a.time
        .cmp(&b.time)
        .then_with(|| a.metadata.uid.cmp(&b.metadata.uid))
}

/// Sort events into [`event_order`].
pub fn sort_events(events: &mut [Event]) {
    events.sort_by(event_order);
}

/// Deterministic id: SHA-256 over the length-prefixed parts, 32 hex digits.
pub fn stable_id<S: AsRef<str>>(parts: &[S]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        let p = p.as_ref().as_bytes();
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(32);
    for b in &digest[..16] {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// Counters, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub events: u64,
    pub warm_up_events: u64,
    pub signals: u64,
    pub suppressed: u64,
}

/// Sizes of the windowed state, for metrics and the bench.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSizes {
    pub spray_sources: usize,
    pub sprayed_sources: usize,
    pub console_failure_ips: usize,
    pub recon_keys: usize,
    pub identities_with_ip_history: usize,
    pub located_ips: usize,
    pub identities_with_location: usize,
    pub risky_identities: usize,
    /// Identity Protection detections whose states are kept to meet their updates.
    pub risk_detections: usize,
    /// Identities with recent SES/SNS messaging calls.
    pub messaging_identities: usize,
    /// AWS accounts whose regions and active days are kept.
    pub accounts_with_region_history: usize,
    pub occurrences: usize,
}

/// The signal engine. See the module docs for the invariants. `Clone` snapshots its whole
/// state (the daemon keeps one a replay window behind the newest events).
#[derive(Clone)]
pub struct Engine {
    cfg: CorrelateConfig,
    links: IdentityLinks,
    emitting: bool,
    next_sweep: i64,
    next_long_sweep: i64,
    stats: EngineStats,
    emitter: Emitter,
    /// The detectors (detect/), each with its own state.
    det: Detectors,
}

impl Engine {
    pub fn new(cfg: CorrelateConfig, links: IdentityLinks) -> Engine {
        Engine {
            cfg,
            links,
            emitting: true,
            next_sweep: i64::MIN,
            next_long_sweep: i64::MIN,
            stats: EngineStats::default(),
            emitter: Emitter::default(),
            det: Detectors::default(),
        }
    }

    pub fn config(&self) -> &CorrelateConfig {
        &self.cfg
    }

    pub fn links(&self) -> &IdentityLinks {
        &self.links
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            signals: self.emitter.stats.signals,
            suppressed: self.emitter.stats.suppressed,
            ..self.stats
        }
    }

    /// How far before the earliest new event a re-run must warm up (ms) so that it reproduces
    /// exactly what an uninterrupted run emits:
    /// - the state a detection reads at a time `t` reaches back the longest window plus
    ///   follow-up of any signal, and [`GEO_TTL_MS`] (AWS calls placed by an Entra location);
    /// - the new-IP history behind a score reaches back its look-back;
    /// - the habit check reads the observations of the previous days, each of which needs the
    ///   detection state before it.
    ///
    /// Stored signals are seeded over [`Engine::seed_lookback_ms`] (what fired last).
    pub fn max_lookback_ms(&self) -> i64 {
        // Look-backs that only change a score (the new-IP history) are history, not state a
        // detection needs before an observation; `aws_unused_region`'s look-back decides
        // whether it observes at all, so it is detection state.
        let score_history = IpHistory::USERS;
        let detection = SignalKind::ALL
            .iter()
            .map(|k| {
                let s = self.cfg.signal(*k);
                let follow = if score_history.contains(k) {
                    0
                } else if *k == SignalKind::AwsUnusedRegion {
                    UnusedRegion::lookback_ms(&self.cfg)
                } else {
                    s.lookback_ms
                };
                s.window_ms.saturating_add(follow)
            })
            .max()
            .unwrap_or(0)
            .max(GEO_TTL_MS);
        let history = IpHistory::lookback_ms(&self.cfg);
        let habits = (HABIT_WINDOW_DAYS + 1)
            .saturating_mul(DAY_MS)
            .saturating_add(detection);
        detection.max(history).max(habits)
    }

    /// How far before a re-run's start stored signals must be passed to
    /// [`Engine::seed_signals`] (later ones are passed too).
    pub fn seed_lookback_ms(&self) -> i64 {
        Emitter::seed_lookback_ms(&self.cfg)
    }

    /// The canonical identity of an event under this engine's links and service accounts.
    pub fn resolve(&self, ev: &Event) -> Option<Resolved> {
        resolve(ev, &self.links, &self.cfg.service_accounts)
    }

    /// Signals already stored count as fired from their own time on, for the repeat rule:
    /// pass every stored signal from `start − seed_lookback_ms()` on, including those at or
    /// after `start` (a re-run reproduces those with the same ids; see `emit.rs`).
    pub fn seed_signals<'a>(&mut self, signals: impl IntoIterator<Item = &'a Signal>) {
        self.emitter.seed(signals);
    }

    /// Feed one historical event: updates all state exactly as [`Engine::process`] would, but
    /// emits nothing. Use for `[start − max_lookback_ms, start)` before a re-run.
    pub fn warm_up(&mut self, ev: &Event) {
        self.emitting = false;
        let mut sink = Vec::new();
        self.step(ev, &mut sink);
        self.emitting = true;
        self.stats.warm_up_events += 1;
    }

    /// Feed one event (in [`event_order`]); signals it completes are appended to `out`.
    pub fn process(&mut self, ev: &Event, out: &mut Vec<Signal>) {
        self.emitting = true;
        self.step(ev, out);
        self.stats.events += 1;
    }

    /// Convenience: process a batch already in [`event_order`], returning its signals.
    pub fn process_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) -> Vec<Signal> {
        let mut out = Vec::new();
        for ev in events {
            self.process(ev, &mut out);
        }
        out
    }

    pub fn state_sizes(&self) -> StateSizes {
        let (spray_sources, sprayed_sources) = self.det.spray.sizes();
        let (located_ips, identities_with_location) = self.det.travel.sizes();
        StateSizes {
            spray_sources,
            sprayed_sources,
            console_failure_ips: self.det.console_failures.len(),
            recon_keys: self.det.recon.len(),
            identities_with_ip_history: self.det.history.len(),
            located_ips,
            identities_with_location,
            risky_identities: self.det.cross_cloud.len(),
            risk_detections: self.det.risk_detection.len(),
            messaging_identities: self.det.messaging.len(),
            accounts_with_region_history: self.det.unused_region.len(),
            occurrences: self.emitter.patterns(),
        }
    }

    // === impl step: routing ===

    fn step(&mut self, ev: &Event, out: &mut Vec<Signal>) {
        let t = ev.time;
        if t >= self.next_sweep {
            self.sweep(t);
        }
        let ip = ev.src_ip().map(str::trim).filter(|s| !s.is_empty());
        let addr = ip.and_then(|s| s.parse::<IpAddr>().ok()).map(canonical);
        let trusted = addr.is_some_and(|a| self.cfg.is_trusted(&a));
        let who = resolve(ev, &self.links, &self.cfg.service_accounts);
        let c = Ctx {
            ev,
            t,
            id: &ev.metadata.uid,
            who,
            ip,
            trusted,
            cfg: &self.cfg,
            history: &self.det.history,
        };
        let mut sink = Sink {
            emitter: &mut self.emitter,
            cfg: &self.cfg,
            emitting: self.emitting,
            out,
        };
        // A spray's source: the IP's /24 (/48); never a trusted one. Only sign-ins and console
        // logins need it (computed on demand: it allocates).
        let source = || {
            if trusted {
                None
            } else {
                addr.as_ref().map(source_of)
            }
        };
        if ev.is_risk_detection() {
            // Identity Protection (class 2004): one state of a detection, dated at its
            // activity; its updates share that time and sort after it (detect/risk_detection.rs).
            match self
                .det
                .risk_detection
                .on_detection(&c, c.who.as_ref(), &mut sink)
            {
                Some(DetectionUpdate::AtRisk(risky)) => {
                    if let Some(who) = &c.who {
                        self.det.cross_cloud.on_risky_signin(&c, who, risky);
                    }
                }
                Some(DetectionUpdate::Closed(id)) => {
                    self.det
                        .cross_cloud
                        .on_detection_closed(c.who.as_ref(), &id);
                }
                None => {}
            }
            return;
        }
        match ev.provider() {
            CloudProvider::Azure => {
                self.det.travel.learn(&c);
                let source = source();
                let code = ev.status_code.as_deref().map(str::trim);
                let success =
                    ev.is_success() || (ev.status_id != STATUS_FAILURE && code == Some("0"));
                if !success {
                    if let (Some(src), Some(who), Some(code)) = (&source, &c.who, code)
                        && SPRAY_FAILURE_CODES.contains(&code)
                    {
                        self.det
                            .spray
                            .on_failure(&c, src, &who.name, code, &mut sink);
                    }
                    if let (Some(who), Some(code)) = (&c.who, code) {
                        self.det.mfa_fatigue.on_failure(&c, who, code, &mut sink);
                    }
                } else if let Some(who) = &c.who {
                    let risk = self.det.entra_risk.on_success(&c, who, &mut sink);
                    if risk.raised_risk {
                        self.det.risk_detection.on_risky_signin(&c, &mut sink);
                    }
                    let legacy = self.det.legacy_auth.on_success(&c, who, &mut sink);
                    let fatigue = self.det.mfa_fatigue.on_success(&c, who, &mut sink);
                    // One sign-in is one risky observation: MFA fatigue that worked, else its
                    // risk, else its protocol.
                    if let Some(risky) = fatigue.or(risk.risky).or(legacy) {
                        self.det.cross_cloud.on_risky_signin(&c, who, risky);
                    }
                    if let Some(src) = &source {
                        self.det.spray.on_source_success(
                            &c,
                            src,
                            who,
                            CloudProvider::Azure,
                            &mut sink,
                        );
                    }
                    self.det
                        .travel
                        .on_success(&c, who, CloudProvider::Azure, &mut sink);
                }
            }
            CloudProvider::Aws => {
                let op = ev.operation().unwrap_or_default();
                if op == "ConsoleLogin" {
                    let console = ev
                        .aws
                        .as_ref()
                        .and_then(|a| a.console_login.as_deref())
                        .map(str::trim);
                    let success = match console {
                        Some(v) => v.eq_ignore_ascii_case("success"),
                        None => ev.is_success(),
                    };
                    let failure = match console {
                        Some(v) => v.eq_ignore_ascii_case("failure"),
                        None => ev.status_id == STATUS_FAILURE,
                    };
                    if failure && !trusted && ip.is_some() {
                        self.det.console_failures.on_failure(&c, &mut sink);
                    }
                    if success && let Some(who) = &c.who {
                        self.det.console_login.on_success(&c, who, &mut sink);
                        self.det.cross_cloud.on_aws_activity(
                            &c,
                            who,
                            "logged in to the AWS console",
                            vec![c.id.to_owned()],
                            &mut sink,
                        );
                        if let Some(src) = &source() {
                            self.det.spray.on_source_success(
                                &c,
                                src,
                                who,
                                CloudProvider::Aws,
                                &mut sink,
                            );
                        }
                        self.det
                            .travel
                            .on_success(&c, who, CloudProvider::Aws, &mut sink);
                    }
                } else if let Some(who) = &c.who {
                    // One name lookup per call for every AWS detector.
                    let name = plain_event_name(op);
                    let roles = aws_call_roles(name);
                    let by_console =
                        (roles.recon.is_some() || roles.messaging.is_some()) && made_by_console(ev);
                    if let Some(idx) = roles.recon
                        && !by_console
                        && let Some(burst) = self.det.recon.on_call(&c, who, idx, &mut sink)
                    {
                        self.det.cross_cloud.on_aws_activity(
                            &c,
                            who,
                            &burst.what,
                            burst.event_ids,
                            &mut sink,
                        );
                    }
                    let service = ev.api.as_ref().and_then(|a| a.service.as_deref());
                    if let Some(idx) = roles.messaging.and_then(|i| messaging_call(i, service))
                        && !by_console
                        && let Some(burst) = self.det.messaging.on_call(&c, who, idx, &mut sink)
                    {
                        self.det.cross_cloud.on_aws_activity(
                            &c,
                            who,
                            &burst.what,
                            burst.event_ids,
                            &mut sink,
                        );
                    }
                    if ev.is_success() {
                        if let Some(idx) = roles.persistence
                            && let Some(what) =
                                self.det.persistence.on_call(&c, who, idx, &mut sink)
                        {
                            self.det.cross_cloud.on_aws_activity(
                                &c,
                                who,
                                &what,
                                vec![c.id.to_owned()],
                                &mut sink,
                            );
                        }
                        if roles.unused_region {
                            self.det.unused_region.on_call(&c, who, name, &mut sink);
                        }
                        self.det
                            .travel
                            .on_success(&c, who, CloudProvider::Aws, &mut sink);
                    }
                }
            }
        }
        // After the detectors: a call does not make its own IP known.
        if let (Some(who), Some(ip)) = (&c.who, ip) {
            self.det.history.on_event(ev, &who.name, ip, t);
        }
        self.det.unused_region.on_event(ev, t);
    }

    // === impl sweep ===

    /// Free state no time filter can read any more. Never changes a result (except when a
    /// documented size cap is hit).
    fn sweep(&mut self, now: i64) {
        self.next_sweep =
            (now.div_euclid(SWEEP_EVERY_MS).saturating_add(1)).saturating_mul(SWEEP_EVERY_MS);
        let hourly = now >= self.next_long_sweep;
        self.det.sweep(&self.cfg, now, hourly);
        if hourly {
            self.next_long_sweep = (now.div_euclid(LONG_SWEEP_EVERY_MS).saturating_add(1))
                .saturating_mul(LONG_SWEEP_EVERY_MS);
            self.emitter.sweep(&self.cfg, now);
        }
    }
}

/// Deterministically drop the oldest entries (by time, then key) above `cap`.
pub(crate) fn trim_oldest<T>(map: &mut StateMap<String, T>, cap: usize, time: impl Fn(&T) -> i64) {
    if map.len() <= cap {
        return;
    }
    let mut all: Vec<(i64, String)> = map.iter().map(|(k, v)| (time(v), k.clone())).collect();
    all.sort_unstable();
    let drop = map.len() - cap + cap / 10;
    for (_, k) in all.into_iter().take(drop) {
        map.remove(&k);
    }
}
