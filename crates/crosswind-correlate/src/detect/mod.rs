//! The detectors, one module each (docs/detections.md has what each fires on and why). A
//! detector owns its state type, reads one event's [`Ctx`], and hands what it observed to the
//! emission path through [`Sink`]; it never calls another detector. When one detector's
//! observation feeds another (a risky Entra sign-in, a recon burst → `cross_cloud_risky_then_aws`),
//! it returns it as a value and the engine routes it.
//!
//! Adding a detector: a new module with its state type (`Clone + Default`), its `on_*` methods
//! and an `impl Detector` (how often its state is swept), one line in [`detectors!`] below, and
//! one routing line in `engine.rs`.

use crosswind_model::{CloudProvider, Event, Signal};

use crate::catalog::SignalKind;
use crate::config::CorrelateConfig;
use crate::emit::{Draft, Emitter};
use crate::identity::Resolved;

/// How often the engine frees a detector's expired state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// Every 5 minutes of event time: windows of minutes.
    Often,
    /// Every hour of event time: windows of hours or days.
    Hourly,
}

/// A detector's state as the engine sees it: cloneable (the daemon snapshots the engine),
/// empty by default, and swept. Sweeping only frees what no time filter can read any more,
/// so it never changes a result.
pub(crate) trait Detector: Clone + Default {
    const SWEEP: Sweep = Sweep::Hourly;

    fn sweep(&mut self, _cfg: &CorrelateConfig, _now: i64) {}
}

/// The registry: one line per detector declares its module and its field in [`Detectors`].
macro_rules! detectors {
    ($($module:ident :: $state:ident,)*) => {
        $(pub(crate) mod $module;)*

        /// Every detector's state, one field per detector module, named after it.
        #[derive(Clone, Default)]
        pub(crate) struct Detectors {
            $(pub $module: $module::$state,)*
        }

        impl Detectors {
            /// Sweep the detectors due: the frequent ones always, the hourly ones when `hourly`.
            pub fn sweep(&mut self, cfg: &CorrelateConfig, now: i64, hourly: bool) {
                $(
                    if hourly || <$module::$state as Detector>::SWEEP == Sweep::Often {
                        self.$module.sweep(cfg, now);
                    }
                )*
            }
        }
    };
}

detectors! {
    history::IpHistory,
    entra_risk::EntraRisk,
    spray::Spray,
    console_login::ConsoleLogin,
    console_failures::ConsoleFailures,
    recon::Recon,
    travel::Travel,
    cross_cloud::RiskyThenAws,
    risk_detection::RiskDetections,
    legacy_auth::LegacyAuth,
    mfa_fatigue::MfaFatigue,
    persistence::Persistence,
    messaging::Messaging,
    unused_region::UnusedRegion,
}

pub(crate) const AZURE: &[CloudProvider] = &[CloudProvider::Azure];
pub(crate) const AWS: &[CloudProvider] = &[CloudProvider::Aws];
pub(crate) const BOTH: &[CloudProvider] = &[CloudProvider::Azure, CloudProvider::Aws];
/// At most this many event ids are listed in one signal.
pub(crate) const MAX_EVENT_IDS: usize = 100;

/// Everything about an event the detectors need, computed once by the engine.
pub(crate) struct Ctx<'a> {
    pub ev: &'a Event,
    pub t: i64,
    pub id: &'a str,
    pub who: Option<Resolved>,
    pub ip: Option<&'a str>,
    /// The source IP is in `trusted_cidrs`.
    pub trusted: bool,
    pub cfg: &'a CorrelateConfig,
    /// The identity's source-IP history (the "new source IP" modifier), read-only.
    pub history: &'a history::IpHistory,
}

impl Ctx<'_> {
    /// The source IP was not seen for this identity within `kind`'s look-back (never for a
    /// trusted or unknown IP).
    pub fn ip_is_new(&self, identity: &str, kind: SignalKind) -> bool {
        !self.trusted
            && self.ip.is_some_and(|ip| {
                self.history
                    .is_new(identity, ip, self.t, self.cfg.signal(kind).lookback_ms)
            })
    }
}

/// The emission path as a detector sees it.
pub(crate) struct Sink<'a> {
    pub emitter: &'a mut Emitter,
    pub cfg: &'a CorrelateConfig,
    /// Off while warming up: observations are recorded, nothing is emitted.
    pub emitting: bool,
    pub out: &'a mut Vec<Signal>,
}

impl Sink<'_> {
    /// Fire with the catalogue score × `factor`.
    pub fn fire(
        &mut self,
        t: i64,
        mut d: Draft<'_>,
        factor: f64,
        build: impl FnOnce() -> (String, Vec<String>),
    ) {
        d.score = self.cfg.signal(d.kind).score * factor;
        self.fire_scored(t, d, build);
    }

    /// Fire with the score the detector computed.
    pub fn fire_scored(
        &mut self,
        t: i64,
        d: Draft<'_>,
        build: impl FnOnce() -> (String, Vec<String>),
    ) {
        self.emitter
            .emit(self.cfg, t, d, self.emitting, self.out, build);
    }

    /// [`Sink::fire`] for an observation that may be taken back later: returns the id and
    /// final score of the signal when one was emitted (not while warming up, not a repeat).
    /// `techniques` replaces the catalogue's when given (one signal, several techniques by
    /// what was detected).
    pub fn fire_tracked(
        &mut self,
        t: i64,
        d: Draft<'_>,
        factor: f64,
        techniques: Option<&[&str]>,
        build: impl FnOnce() -> (String, Vec<String>),
    ) -> Option<(String, f64)> {
        let before = self.out.len();
        self.fire(t, d, factor, build);
        if self.out.len() == before {
            return None;
        }
        let s = self.out.last_mut()?;
        if let Some(tech) = techniques {
            s.mitre_technique_id = tech.iter().map(|t| (*t).to_owned()).collect();
        }
        Some((s.id.clone(), s.risk_score))
    }

    /// Take back a signal this engine emitted (see [`Emitter::withdraw`]).
    pub fn withdraw(&mut self, t: i64, w: crate::emit::Withdrawal<'_>) {
        self.emitter
            .withdraw(self.cfg, t, w, self.emitting, self.out);
    }
}

/// How long before `now` `then` was (0 or negative when it is not before).
pub(crate) fn age(now: i64, then: i64) -> i64 {
    now.saturating_sub(then)
}
