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

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crosswind_model::{CloudProvider, Event, STATUS_FAILURE, Signal};
use sha2::{Digest, Sha256};

use crate::catalog::*;
use crate::config::CorrelateConfig;
use crate::emit::{Draft, Emitter, HABIT_WINDOW_DAYS};
use crate::identity::{IdentityLinks, PrincipalKind, Resolved, resolve};
use crate::net::{canonical, fmt_duration, fmt_time, haversine_km, source_of, valid_coords};

const MIN_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// How long a location learnt from Entra for an IP is used to place AWS calls from that IP.
pub const GEO_TTL_MS: i64 = 7 * DAY_MS;
const SWEEP_EVERY_MS: i64 = 5 * MIN_MS;
const LONG_SWEEP_EVERY_MS: i64 = HOUR_MS;

// Bounds on state (documented limits; hit only under abnormal volume).
const MAX_SPRAY_FAILS_PER_SOURCE: usize = 10_000;
const MAX_PENDING_SUCCESSES: usize = 1_000;
const MAX_CONSOLE_FAILS_PER_IP: usize = 1_000;
const MAX_RECON_CALLS_PER_KEY: usize = 256;
const MAX_IPS_PER_IDENTITY: usize = 64;
const MAX_EVENT_IDS: usize = 100;
const MAX_GEO_IPS: usize = 2_000_000;
const MAX_IDENTITIES: usize = 2_000_000;

const AZURE: &[CloudProvider] = &[CloudProvider::Azure];
const AWS: &[CloudProvider] = &[CloudProvider::Aws];
const BOTH: &[CloudProvider] = &[CloudProvider::Azure, CloudProvider::Aws];

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

fn age(now: i64, then: i64) -> i64 {
    now.saturating_sub(then)
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
    pub occurrences: usize,
}

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
    users: HashMap<String, u32>,
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

#[derive(Clone)]
struct ConsoleFail {
    t: i64,
    identity: Option<(String, bool)>,
    event_id: String,
}

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

#[derive(Clone)]
struct Fix {
    t: i64,
    lat: f64,
    lon: f64,
    ip: String,
    event_id: String,
}

#[derive(Clone, Copy)]
struct GeoFix {
    t: i64,
    lat: f64,
    lon: f64,
}

#[derive(Clone)]
struct Risky {
    t: i64,
    event_id: String,
    why: String,
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
    spray: HashMap<String, SprayWindow>,
    sprayed: HashMap<String, Sprayed>,
    console_fail: HashMap<String, VecDeque<ConsoleFail>>,
    recon: HashMap<String, ReconWindow>,
    ip_seen: HashMap<String, Vec<(String, i64)>>,
    geo: HashMap<String, GeoFix>,
    last_fix: HashMap<String, [Option<Fix>; 2]>,
    risky: HashMap<String, Risky>,
}

/// Everything about an event the handlers need, computed once.
struct Ctx<'a> {
    ev: &'a Event,
    t: i64,
    id: &'a str,
    who: Option<Resolved>,
    ip: Option<&'a str>,
    addr: Option<IpAddr>,
    trusted: bool,
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
            spray: HashMap::new(),
            sprayed: HashMap::new(),
            console_fail: HashMap::new(),
            recon: HashMap::new(),
            ip_seen: HashMap::new(),
            geo: HashMap::new(),
            last_fix: HashMap::new(),
            risky: HashMap::new(),
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
        let score_history = [SignalKind::AwsConsoleLoginNoMfa, SignalKind::AwsReconBurst];
        let detection = SignalKind::ALL
            .iter()
            .map(|k| {
                let s = self.cfg.signal(*k);
                let follow = if score_history.contains(k) {
                    0
                } else {
                    s.lookback_ms
                };
                s.window_ms.saturating_add(follow)
            })
            .max()
            .unwrap_or(0)
            .max(GEO_TTL_MS);
        let history = score_history
            .iter()
            .map(|k| self.cfg.signal(*k).lookback_ms)
            .max()
            .unwrap_or(0);
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
        StateSizes {
            spray_sources: self.spray.len(),
            sprayed_sources: self.sprayed.len(),
            console_failure_ips: self.console_fail.len(),
            recon_keys: self.recon.len(),
            identities_with_ip_history: self.ip_seen.len(),
            located_ips: self.geo.len(),
            identities_with_location: self.last_fix.len(),
            risky_identities: self.risky.len(),
            occurrences: self.emitter.patterns(),
        }
    }

    // === impl step ===

    fn step(&mut self, ev: &Event, out: &mut Vec<Signal>) {
        let t = ev.time;
        if t >= self.next_sweep {
            self.sweep(t);
        }
        let ip = ev.src_ip().map(str::trim).filter(|s| !s.is_empty());
        let addr = ip.and_then(|s| s.parse::<IpAddr>().ok()).map(canonical);
        let trusted = addr.is_some_and(|a| self.cfg.is_trusted(&a));
        let ctx = Ctx {
            ev,
            t,
            id: &ev.metadata.uid,
            who: self.resolve(ev),
            ip,
            addr,
            trusted,
        };
        match ev.provider() {
            CloudProvider::Azure => self.on_entra(&ctx, out),
            CloudProvider::Aws => self.on_aws(&ctx, out),
        }
        // History for the "new source IP" modifier: source IPs of the identity's successful
        // AWS activity. Entra sign-ins are not a baseline for AWS: an attacker's Entra sign-in
        // just before using AWS must not make its IP "known".
        if let (Some(who), Some(ip)) = (&ctx.who, ctx.ip)
            && ev.is_success()
            && ev.provider() == CloudProvider::Aws
        {
            self.remember_ip(&who.name, ip, t);
        }
    }

    fn on_entra(&mut self, c: &Ctx<'_>, out: &mut Vec<Signal>) {
        let ev = c.ev;
        // Learn the IP's location for placing AWS calls.
        if let (Some(ip), Some(loc)) = (c.ip, ev.src_endpoint.location.as_ref())
            && let (Some(lat), Some(lon)) = (loc.lat, loc.long)
            && valid_coords(lat, lon)
            && !c.trusted
        {
            let fix = GeoFix { t: c.t, lat, lon };
            match self.geo.get_mut(ip) {
                Some(g) => *g = fix,
                None => {
                    self.geo.insert(ip.to_owned(), fix);
                }
            }
        }
        let code = ev.status_code.as_deref().map(str::trim);
        let success = ev.is_success() || (ev.status_id != STATUS_FAILURE && code == Some("0"));
        let source = if c.trusted {
            None
        } else {
            c.addr.as_ref().map(source_of)
        };
        if !success {
            if let (Some(src), Some(who), Some(code)) = (&source, &c.who, code)
                && SPRAY_FAILURE_CODES.contains(&code)
            {
                self.on_spray_failure(c, src, &who.name, code, out);
            }
            return;
        }
        let Some(who) = c.who.clone() else { return };
        self.entra_risk(c, &who, out);
        if let Some(src) = &source {
            self.on_source_success(c, src, &who, CloudProvider::Azure, out);
        }
        self.travel(c, &who, CloudProvider::Azure, out);
    }

    fn entra_risk(&mut self, c: &Ctx<'_>, who: &Resolved, out: &mut Vec<Signal>) {
        let Some(d) = c.ev.entra.as_ref() else { return };
        let lower = |s: &Option<String>| {
            s.as_deref()
                .map(|s| s.trim().to_ascii_lowercase())
                .unwrap_or_default()
        };
        let level = lower(&d.risk_level_during_signin);
        let state = lower(&d.risk_state);
        let types: Vec<String> = d
            .risk_event_types
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty() && s != "none")
            .collect();
        let ip_based_only = !types.is_empty()
            && types
                .iter()
                .all(|t| IP_BASED_RISK_TYPES.contains(&t.as_str()));
        let trusted_ip_risk = c.trusted && ip_based_only;
        let travel_only = !types.is_empty()
            && types
                .iter()
                .all(|t| TRAVEL_RISK_TYPES.contains(&t.as_str()))
            && matches!(level.as_str(), "" | "low" | "none" | "hidden")
            && state != "confirmedcompromised";
        // An admin's review (dismissed, confirmedSafe) clears the sign-in; `remediated` does not:
        // the password was reset because the account was used.
        let reviewed_safe = matches!(state.as_str(), "dismissed" | "confirmedsafe");
        let high = !reviewed_safe
            && (matches!(level.as_str(), "high" | "medium")
                || matches!(state.as_str(), "atrisk" | "confirmedcompromised"));
        // As recorded (original case), for the message.
        let risky: Vec<&str> = d
            .risk_event_types
            .iter()
            .map(|t| t.trim())
            .filter(|t| {
                let l = t.to_ascii_lowercase();
                RISKY_EVENT_TYPES.contains(&l.as_str())
                    && !(c.trusted && IP_BASED_RISK_TYPES.contains(&l.as_str()))
            })
            .collect();
        let home = d
            .home_tenant_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let resource = d
            .resource_tenant_id
            .as_deref()
            .or(c.ev.cloud.account.uid.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let sfa = d
            .authentication_requirement
            .as_deref()
            .is_some_and(|a| a.trim().eq_ignore_ascii_case("singleFactorAuthentication"));
        let cross = match (home, resource) {
            (Some(h), Some(r)) => {
                sfa && !h.eq_ignore_ascii_case(r) && !self.cfg.is_partner_tenant(h)
            }
            _ => false,
        };
        let factor = if travel_only { TRAVEL_FACTOR } else { 1.0 };
        // Travel-only risk is about the person's movement, not the IP: its threat object is
        // left empty so that repeat suppression is per identity (a traveller's hotel, airport
        // and office IPs are one observation).
        let threat = if travel_only { None } else { c.ip };
        let ip_text = c.ip.unwrap_or("an unknown IP");
        let app =
            c.ev.service
                .as_ref()
                .and_then(|s| s.name.as_deref())
                .unwrap_or("an application");
        let travel_note = if travel_only {
            " (low-risk travel-like detection only: score halved)"
        } else {
            ""
        };
        let mut whys = Vec::new();
        if high && !trusted_ip_risk {
            let why = format!(
                "Entra sign-in risk level `{}`, risk state `{}`",
                d.risk_level_during_signin.as_deref().unwrap_or("none"),
                d.risk_state.as_deref().unwrap_or("none")
            );
            self.fire(
                c.t,
                Draft {
                    kind: SignalKind::AzureHighRiskSignin,
                    risk_object: &who.name,
                    is_service: who.is_service,
                    score: 0.0,
                    threat,
                    clouds: AZURE,
                },
                factor,
                out,
                || {
                    (
                        format!(
                            "{} signed in to {app} from {ip_text} with {why}{travel_note}",
                            who.name
                        ),
                        vec![c.id.to_owned()],
                    )
                },
            );
            whys.push(format!(
                "risk level {} / state {}",
                or_none(&level),
                or_none(&state)
            ));
        }
        if !risky.is_empty() {
            let list = risky.join(", ");
            self.fire(
                c.t,
                Draft { kind: SignalKind::AzureRiskyEvent, risk_object: &who.name, is_service: who.is_service, score: 0.0, threat, clouds: AZURE },
                factor,
                out,
                || {
                    (
                        format!("{} signed in to {app} from {ip_text} with Entra risk events [{list}]{travel_note}", who.name),
                        vec![c.id.to_owned()],
                    )
                },
            );
            whys.push(format!("risk events [{}]", risky.join(", ")));
        }
        if cross {
            let home = home.unwrap_or_default();
            let resource = resource.unwrap_or_default();
            self.fire(
                c.t,
                Draft { kind: SignalKind::AzureCrossTenantSfa, risk_object: &who.name, is_service: who.is_service, score: 0.0, threat: c.ip, clouds: AZURE },
                1.0,
                out,
                || {
                    (
                        format!(
                            "{} signed in single-factor from home tenant {home} into resource tenant {resource} from {ip_text} (not a partner tenant)",
                            who.name
                        ),
                        vec![c.id.to_owned()],
                    )
                },
            );
            whys.push(format!(
                "single-factor cross-tenant sign-in from tenant {home}"
            ));
        }
        if !whys.is_empty() && !travel_only || cross {
            self.risky.insert(
                who.name.clone(),
                Risky {
                    t: c.t,
                    event_id: c.id.to_owned(),
                    why: format!("{} from {ip_text}", whys.join(", ")),
                },
            );
        }
    }

    fn on_spray_failure(
        &mut self,
        c: &Ctx<'_>,
        source: &str,
        user: &str,
        code: &str,
        out: &mut Vec<Signal>,
    ) {
        let spec = self.cfg.signal(SignalKind::AzurePasswordSpray).clone();
        let ip = c.ip.unwrap_or_default();
        let w = self.spray.entry(source.to_owned()).or_default();
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
        self.fire(
            c.t,
            Draft { kind: SignalKind::AzurePasswordSpray, risk_object: "", is_service: false, score: 0.0, threat: Some(&threat), clouds: AZURE },
            0.0,
            out,
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
            self.spray_success(c.t, &who, &p.ip, &p.event_id, p.t, source, p.cloud, out);
        }
    }

    /// A successful sign-in (Entra) or console login (AWS) from a non-trusted source.
    fn on_source_success(
        &mut self,
        c: &Ctx<'_>,
        source: &str,
        who: &Resolved,
        cloud: CloudProvider,
        out: &mut Vec<Signal>,
    ) {
        let follow = match cloud {
            CloudProvider::Azure => self.cfg.signal(SignalKind::AzurePasswordSpray).lookback_ms,
            CloudProvider::Aws => {
                self.cfg
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
            self.spray_success(c.t, who, ip, c.id, c.t, source, cloud, out);
            return;
        }
        let window = self.cfg.signal(SignalKind::AzurePasswordSpray).window_ms;
        if let Some(w) = self.spray.get_mut(source)
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
    fn spray_success(
        &mut self,
        now: i64,
        who: &Resolved,
        ip: &str,
        event_id: &str,
        success_t: i64,
        source: &str,
        cloud: CloudProvider,
        out: &mut Vec<Signal>,
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
        self.fire(
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
            out,
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

    fn on_aws(&mut self, c: &Ctx<'_>, out: &mut Vec<Signal>) {
        let ev = c.ev;
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
            if failure && !c.trusted && c.ip.is_some() {
                self.on_console_failure(c, out);
            }
            if success && let Some(who) = c.who.clone() {
                self.console_success(c, &who, out);
                self.travel(c, &who, CloudProvider::Aws, out);
            }
            return;
        }
        let Some(who) = c.who.clone() else { return };
        if let Some(idx) = recon_index(plain_event_name(op))
            && !made_by_console(ev)
        {
            self.on_recon(c, &who, idx, out);
        }
        if ev.is_success() {
            self.travel(c, &who, CloudProvider::Aws, out);
        }
    }

    fn console_success(&mut self, c: &Ctx<'_>, who: &Resolved, out: &mut Vec<Signal>) {
        let aws = c.ev.aws.as_ref();
        let ip_text = c.ip.unwrap_or("an unknown IP");
        let federated = who.kind == PrincipalKind::FederatedSession
            || aws.is_some_and(|a| a.saml_provider_arn.is_some());
        if matches!(who.kind, PrincipalKind::IamUser | PrincipalKind::Root) && !federated {
            let mfa_used = aws.and_then(|a| a.mfa_used.as_deref()).map(str::trim);
            let mfa = match mfa_used {
                Some(v) => v.eq_ignore_ascii_case("yes"),
                None => c.ev.is_mfa == Some(true),
            };
            if !mfa {
                let new_ip = !c.trusted
                    && c.ip.is_some_and(|ip| {
                        self.ip_is_new(&who.name, ip, c.t, SignalKind::AwsConsoleLoginNoMfa)
                    });
                let lookback = fmt_duration(
                    self.cfg
                        .signal(SignalKind::AwsConsoleLoginNoMfa)
                        .lookback_ms,
                );
                let mfa_text = mfa_used.map_or("missing".to_owned(), |v| format!("\"{v}\""));
                self.fire(
                    c.t,
                    Draft { kind: SignalKind::AwsConsoleLoginNoMfa, risk_object: &who.name, is_service: who.is_service, score: 0.0, threat: c.ip, clouds: AWS },
                    if new_ip { NEW_IP_FACTOR } else { 1.0 },
                    out,
                    || {
                        let new = if new_ip { format!("; source IP not seen for this identity in the last {lookback} (×1.5)") } else { String::new() };
                        (
                            format!("{} logged in to the AWS console from {ip_text} without MFA (MFAUsed {mfa_text}){new}", who.name),
                            vec![c.id.to_owned()],
                        )
                    },
                );
            }
            if who.kind == PrincipalKind::Root {
                self.fire(
                    c.t,
                    Draft { kind: SignalKind::AwsRootConsoleLogin, risk_object: &who.name, is_service: who.is_service, score: 0.0, threat: c.ip, clouds: AWS },
                    1.0,
                    out,
                    || (format!("the root user of account {} logged in to the AWS console from {ip_text}", who.name.trim_start_matches("root@")), vec![c.id.to_owned()]),
                );
            }
        }
        self.risky_then_aws(
            c,
            who,
            "logged in to the AWS console",
            vec![c.id.to_owned()],
            out,
        );
        if !c.trusted
            && let Some(src) = c.addr.as_ref().map(source_of)
        {
            self.on_source_success(c, &src, who, CloudProvider::Aws, out);
        }
    }

    fn risky_then_aws(
        &mut self,
        c: &Ctx<'_>,
        who: &Resolved,
        what: &str,
        aws_ids: Vec<String>,
        out: &mut Vec<Signal>,
    ) {
        let window = self
            .cfg
            .signal(SignalKind::CrossCloudRiskyThenAws)
            .window_ms;
        let Some(r) = self.risky.get(&who.name) else {
            return;
        };
        if c.t < r.t || age(c.t, r.t) > window {
            return;
        }
        let msg = format!(
            "{} {what} from {} {} after a risky Entra sign-in ({}) at {}",
            who.name,
            c.ip.unwrap_or("an unknown IP"),
            fmt_duration(c.t - r.t),
            r.why,
            fmt_time(r.t)
        );
        let mut ids = vec![r.event_id.clone()];
        ids.extend(aws_ids);
        self.fire(
            c.t,
            Draft {
                kind: SignalKind::CrossCloudRiskyThenAws,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: c.ip,
                clouds: BOTH,
            },
            1.0,
            out,
            || (msg, ids),
        );
    }

    fn on_console_failure(&mut self, c: &Ctx<'_>, out: &mut Vec<Signal>) {
        let set = self.cfg.signal(SignalKind::AwsConsoleLoginFailures).clone();
        let ip = c.ip.unwrap_or_default();
        let q = self.console_fail.entry(ip.to_owned()).or_default();
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
        self.fire(
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
            out,
            || {
                (
                    format!("{n} failed AWS console logins from {ip} in {span} (users: {users})"),
                    ids,
                )
            },
        );
    }

    fn on_recon(&mut self, c: &Ctx<'_>, who: &Resolved, op: u8, out: &mut Vec<Signal>) {
        let set = self.cfg.signal(SignalKind::AwsReconBurst).clone();
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
        let ip_new = !c.trusted
            && c.ip
                .is_some_and(|ip| self.ip_is_new(&who.name, ip, c.t, SignalKind::AwsReconBurst));
        let w = self.recon.entry(key).or_insert_with(|| ReconWindow {
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
            return;
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
        let lookback = fmt_duration(self.cfg.signal(SignalKind::AwsReconBurst).lookback_ms);
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
        self.fire_scored(
            c.t,
            Draft {
                kind: SignalKind::AwsReconBurst,
                risk_object: &risk,
                is_service: svc,
                score: base,
                threat: c.ip,
                clouds: AWS,
            },
            out,
            || (msg, ids.clone()),
        );
        let what = format!("made a reconnaissance burst ({})", ops.join(", "));
        self.risky_then_aws(c, who, &what, ids, out);
    }

    /// Cross-cloud impossible travel: compare this located success with the identity's last
    /// located success in the other cloud.
    fn travel(&mut self, c: &Ctx<'_>, who: &Resolved, cloud: CloudProvider, out: &mut Vec<Signal>) {
        if c.trusted {
            return;
        }
        let Some(ip) = c.ip else { return };
        let (lat, lon) = match cloud {
            CloudProvider::Azure => match c
                .ev
                .src_endpoint
                .location
                .as_ref()
                .and_then(|l| Some((l.lat?, l.long?)))
            {
                Some((a, b)) if valid_coords(a, b) => (a, b),
                _ => return,
            },
            CloudProvider::Aws => match self.geo.get(ip) {
                Some(g) if age(c.t, g.t) <= GEO_TTL_MS && c.t >= g.t => (g.lat, g.lon),
                _ => return,
            },
        };
        let set = self
            .cfg
            .signal(SignalKind::CrossCloudImpossibleTravel)
            .clone();
        let (idx, other) = match cloud {
            CloudProvider::Azure => (0, 1),
            CloudProvider::Aws => (1, 0),
        };
        let fixes = match self.last_fix.get_mut(&who.name) {
            Some(f) => f,
            None => self
                .last_fix
                .entry(who.name.clone())
                .or_insert([None, None]),
        };
        let prev = fixes[other]
            .as_ref()
            .map(|p| (p.t, p.lat, p.lon, p.ip == ip));
        match &mut fixes[idx] {
            Some(f) => {
                // Reuse the buffers: this runs for most events.
                f.t = c.t;
                f.lat = lat;
                f.lon = lon;
                f.ip.clear();
                f.ip.push_str(ip);
                f.event_id.clear();
                f.event_id.push_str(c.id);
            }
            slot => {
                *slot = Some(Fix {
                    t: c.t,
                    lat,
                    lon,
                    ip: ip.to_owned(),
                    event_id: c.id.to_owned(),
                });
            }
        }
        let Some((pt, plat, plon, same_ip)) = prev else {
            return;
        };
        if same_ip || c.t < pt || age(c.t, pt) > set.window_ms {
            return;
        }
        let km = haversine_km(plat, plon, lat, lon);
        if km < MIN_TRAVEL_KM {
            return;
        }
        let Some(p) = self.last_fix.get(&who.name).and_then(|f| f[other].clone()) else {
            return;
        };
        let hours = (c.t - p.t) as f64 / HOUR_MS as f64;
        let speed = if hours > 0.0 {
            km / hours
        } else {
            f64::INFINITY
        };
        if speed <= f64::from(set.threshold) {
            return;
        }
        let (from_cloud, to_cloud) = match cloud {
            CloudProvider::Azure => ("AWS", "Entra"),
            CloudProvider::Aws => ("Entra", "AWS"),
        };
        let speed_text = if speed.is_finite() {
            format!("{speed:.0} km/h")
        } else {
            "at the same instant".to_owned()
        };
        let msg = format!(
            "{} used {from_cloud} from {} ({:.2}, {:.2}) and {} later {to_cloud} from {ip} ({lat:.2}, {lon:.2}): {km:.0} km apart, {speed_text} (limit {} km/h)",
            who.name,
            p.ip,
            p.lat,
            p.lon,
            fmt_duration(c.t - p.t),
            set.threshold
        );
        let ids = vec![p.event_id.clone(), c.id.to_owned()];
        // The threat object is always the AWS side's IP, so that A→B and B→A between the same
        // two places are one observation for repeat suppression.
        let aws_ip = match cloud {
            CloudProvider::Aws => ip.to_owned(),
            CloudProvider::Azure => p.ip.clone(),
        };
        self.fire(
            c.t,
            Draft {
                kind: SignalKind::CrossCloudImpossibleTravel,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: Some(&aws_ip),
                clouds: BOTH,
            },
            1.0,
            out,
            || (msg, ids),
        );
    }

    // === impl history ===

    fn ip_is_new(&self, identity: &str, ip: &str, t: i64, kind: SignalKind) -> bool {
        let lookback = self.cfg.signal(kind).lookback_ms;
        !self.ip_seen.get(identity).is_some_and(|v| {
            v.iter()
                .any(|(i, seen)| i == ip && *seen <= t && age(t, *seen) <= lookback)
        })
    }

    fn remember_ip(&mut self, identity: &str, ip: &str, t: i64) {
        let v = match self.ip_seen.get_mut(identity) {
            Some(v) => v,
            None => self.ip_seen.entry(identity.to_owned()).or_default(),
        };
        if let Some(e) = v.iter_mut().find(|(i, _)| i == ip) {
            e.1 = e.1.max(t);
            return;
        }
        if v.len() >= MAX_IPS_PER_IDENTITY
            && let Some(pos) = v
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.1.cmp(&b.1.1).then_with(|| a.1.0.cmp(&b.1.0)))
                .map(|(i, _)| i)
        {
            v.swap_remove(pos);
        }
        v.push((ip.to_owned(), t));
    }

    // === impl emission ===

    /// Fire with the catalogue score × `factor`.
    fn fire(
        &mut self,
        t: i64,
        mut d: Draft<'_>,
        factor: f64,
        out: &mut Vec<Signal>,
        build: impl FnOnce() -> (String, Vec<String>),
    ) {
        d.score = self.cfg.signal(d.kind).score * factor;
        self.fire_scored(t, d, out, build);
    }

    fn fire_scored(
        &mut self,
        t: i64,
        d: Draft<'_>,
        out: &mut Vec<Signal>,
        build: impl FnOnce() -> (String, Vec<String>),
    ) {
        self.emitter
            .emit(&self.cfg, t, d, self.emitting, out, build);
    }

    // === impl sweep ===

    /// Free state no time filter can read any more. Never changes a result (except when a
    /// documented size cap is hit).
    fn sweep(&mut self, now: i64) {
        self.next_sweep =
            (now.div_euclid(SWEEP_EVERY_MS).saturating_add(1)).saturating_mul(SWEEP_EVERY_MS);
        let sig = |k: SignalKind| self.cfg.signal(k).clone();
        let spray = sig(SignalKind::AzurePasswordSpray);
        let console = sig(SignalKind::AwsConsoleLoginFailures);
        let recon = sig(SignalKind::AwsReconBurst);
        let spray_follow = spray
            .lookback_ms
            .max(sig(SignalKind::CrossCloudSprayThenAwsLogin).window_ms);
        let cut = |w: i64| now.saturating_sub(w);
        self.spray.retain(|_, w| {
            w.evict(cut(spray.window_ms));
            !w.fails.is_empty()
        });
        self.sprayed.retain(|_, s| s.at >= cut(spray_follow));
        self.console_fail
            .retain(|_, q| q.back().is_some_and(|f| f.t >= cut(console.window_ms)));
        self.recon
            .retain(|_, w| w.calls.back().is_some_and(|f| f.t >= cut(recon.window_ms)));
        if now < self.next_long_sweep {
            return;
        }
        self.next_long_sweep = (now.div_euclid(LONG_SWEEP_EVERY_MS).saturating_add(1))
            .saturating_mul(LONG_SWEEP_EVERY_MS);
        let ip_keep = sig(SignalKind::AwsReconBurst)
            .lookback_ms
            .max(sig(SignalKind::AwsConsoleLoginNoMfa).lookback_ms);
        self.ip_seen.retain(|_, v| {
            v.retain(|(_, t)| *t >= cut(ip_keep));
            !v.is_empty()
        });
        trim_oldest(&mut self.ip_seen, MAX_IDENTITIES, |v| {
            v.iter().map(|e| e.1).max().unwrap_or(i64::MIN)
        });
        self.geo.retain(|_, g| g.t >= cut(GEO_TTL_MS));
        trim_oldest(&mut self.geo, MAX_GEO_IPS, |g| g.t);
        let travel = sig(SignalKind::CrossCloudImpossibleTravel).window_ms;
        self.last_fix
            .retain(|_, f| f.iter().flatten().any(|x| x.t >= cut(travel)));
        trim_oldest(&mut self.last_fix, MAX_IDENTITIES, |f| {
            f.iter().flatten().map(|x| x.t).max().unwrap_or(i64::MIN)
        });
        let risky = sig(SignalKind::CrossCloudRiskyThenAws).window_ms;
        self.risky.retain(|_, r| r.t >= cut(risky));
        self.emitter.sweep(&self.cfg, now);
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

/// Deterministically drop the oldest entries (by time, then key) above `cap`.
pub(crate) fn trim_oldest<T>(map: &mut HashMap<String, T>, cap: usize, time: impl Fn(&T) -> i64) {
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
