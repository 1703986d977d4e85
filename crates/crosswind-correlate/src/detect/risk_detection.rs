//! `azure_risk_detection`: an Identity Protection risk detection (OCSF 2004) in state atRisk or
//! confirmedCompromised, scored by its `riskLevel` at its activity time (docs/detections.md).
//!
//! Each state of a detection is its own record (`<id>@<lastUpdatedDateTime>`) dated at the
//! detection's activity, so all states share one event time and sort by their update time
//! (`event_order` ties by id): whatever order they arrive in, the driver replays from that
//! activity time and this detector sees the original before its updates. A later state that
//! closes the detection (dismissed, confirmedSafe, remediated) takes its score back with a
//! withdrawal (`emit.rs`); one that arrives alone, before the original was collected, is
//! remembered so the original fires nothing when it does arrive (the same replay sees the
//! original first, fires it, and takes it back at the update).
//!
//! A detection tied to a sign-in (its `requestId` is the sign-in's id, or both share a
//! `correlationId`) that raised `azure_high_risk_signin` or `azure_risky_event` adds nothing:
//! the sign-in already counted that risk. The sign-in and its real-time detection are dated
//! nearly the same, so either may come first; when the detection fired first, the sign-in
//! takes it back.

use crate::StateMap;

use super::entra_risk::RiskySignin;
use super::{AZURE, Ctx, Detector, Sink, age};
use crate::catalog::{
    IP_BASED_RISK_TYPES, RISK_DETECTION_AT_RISK, RISK_DETECTION_CLOSED, RISK_LEVEL_FACTORS,
    RISK_TYPE_TECHNIQUES, SignalKind,
};
use crate::config::CorrelateConfig;
use crate::emit::{Draft, Withdrawal};
use crate::engine::DAY_MS;
use crate::identity::Resolved;
use crate::net::fmt_time;

/// How long (event time) a detection's state and a risky sign-in's ids are kept to meet the
/// records they link to. States and real-time detections share their sign-in's time; a
/// detection lacking `activityDateTime` is dated by its update and needs longer.
pub(crate) const LINK_MS: i64 = DAY_MS;

#[derive(Clone)]
struct Reported {
    signal_id: String,
    score: f64,
    t: i64,
    risk_object: String,
    threat: Option<String>,
}

#[derive(Clone)]
struct Detection {
    /// The newest state seen (its `lastUpdatedDateTime`), and whether it closed the detection.
    version: i64,
    closed: bool,
    /// The signal it raised and has not been taken back.
    reported: Option<Reported>,
    /// Whom it was observed on and when (emitting or warming up): the context a closing state
    /// takes back from `aws_credential_persistence`.
    observed: Option<(String, i64)>,
    /// When last touched (event time), for the sweep.
    t: i64,
}

/// What a detection's state means for `cross_cloud_risky_then_aws`.
pub(crate) enum DetectionUpdate {
    /// It is the risky Entra side.
    AtRisk(RiskySignin),
    /// This detection (its id) was dismissed, confirmed safe or remediated: it no longer is.
    Closed(String),
}

/// Detection states and risky sign-ins, by id.
#[derive(Clone, Default)]
pub(crate) struct RiskDetections {
    detections: StateMap<String, Detection>,
    /// Sign-in ids and correlation ids of sign-ins that raised sign-in risk → their time.
    risky_signins: StateMap<String, i64>,
    /// Sign-in id or correlation id → detections that reported a signal tied to it.
    tied: StateMap<String, Vec<String>>,
}

fn lower(v: Option<&str>) -> String {
    v.map(|s| s.trim().to_ascii_lowercase()).unwrap_or_default()
}

impl RiskDetections {
    pub fn len(&self) -> usize {
        self.detections.len()
    }

    /// One state of a risk detection. Returns what the cross-cloud rule needs to know: a
    /// detection that counts as its risky Entra side (fired at high or medium level), or one
    /// closed since.
    pub fn on_detection(
        &mut self,
        c: &Ctx<'_>,
        who: Option<&Resolved>,
        sink: &mut Sink<'_>,
    ) -> Option<DetectionUpdate> {
        let ev = c.ev;
        let info = ev.finding_info.as_ref()?;
        let d = ev.entra.as_ref();
        let state = lower(d.and_then(|d| d.risk_state.as_deref()));
        let level = lower(d.and_then(|d| d.risk_level.as_deref()));
        let kind = lower(d.and_then(|d| d.risk_event_types.first().map(String::as_str)));
        let kind = if kind.is_empty() {
            lower(Some(&info.title))
        } else {
            kind
        };
        let version = info.modified_time;
        let closes = RISK_DETECTION_CLOSED.contains(&state.as_str());
        let entry = self
            .detections
            .entry(info.uid.clone())
            .or_insert(Detection {
                version: i64::MIN,
                closed: false,
                reported: None,
                observed: None,
                t: c.t,
            });
        entry.t = entry.t.max(c.t);
        // An older state met after a newer one (only when their times differ): recorded in the
        // store, changes nothing here.
        if version < entry.version {
            return None;
        }
        entry.version = version;
        if closes {
            entry.closed = true;
            if let Some(r) = entry.reported.take() {
                let why = format!(
                    "Entra risk detection {} ({kind}) was set to `{}` at {}",
                    info.uid,
                    d.and_then(|d| d.risk_state.as_deref()).unwrap_or_default(),
                    fmt_time(version)
                );
                withdraw(c, sink, r, why);
            }
            if let Some((identity, t)) = entry.observed.take() {
                sink.emitter
                    .forget_observation(&identity, t, SignalKind::AzureRiskDetection);
            }
            return Some(DetectionUpdate::Closed(info.uid.clone()));
        }
        // A newer state that is at risk again (re-opened) counts again.
        entry.closed = false;
        if !RISK_DETECTION_AT_RISK.contains(&state.as_str()) || entry.reported.is_some() {
            return None;
        }
        let who = who?;
        let factor = RISK_LEVEL_FACTORS
            .iter()
            .find(|(l, _)| *l == level)
            .map(|(_, f)| *f)?;
        // A trusted CIDR raises no IP-based risk (docs/detections.md, tuning).
        if c.trusted && IP_BASED_RISK_TYPES.contains(&kind.as_str()) {
            return None;
        }
        let links = links_of(ev);
        // The sign-in's own signals already counted it.
        if links.iter().any(|l| {
            self.risky_signins
                .get(l)
                .is_some_and(|t| age(c.t, *t).abs() <= LINK_MS)
        }) {
            return None;
        }
        let techniques = RISK_TYPE_TECHNIQUES
            .iter()
            .find(|(t, _)| *t == kind)
            .map(|(_, t)| *t);
        let timing = d
            .and_then(|d| d.detection_timing_type.as_deref())
            .map(|t| format!(", {t}"))
            .unwrap_or_default();
        let shown_type = d
            .and_then(|d| d.risk_event_types.first().cloned())
            .unwrap_or_else(|| info.title.clone());
        let shown_level = d.and_then(|d| d.risk_level.clone()).unwrap_or_default();
        let shown_state = d.and_then(|d| d.risk_state.clone()).unwrap_or_default();
        let from = c.ip.map(|ip| format!(" from {ip}")).unwrap_or_default();
        let detected = info
            .created_time
            .filter(|t| *t > c.t)
            .map(|t| format!(", detected {}", fmt_time(t)))
            .unwrap_or_default();
        let detection_id = info.uid.clone();
        if let Some(e) = self.detections.get_mut(&detection_id) {
            e.observed = Some((who.name.clone(), c.t));
        }
        let reported = sink.fire_tracked(
            c.t,
            Draft {
                kind: SignalKind::AzureRiskDetection,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: c.ip,
                clouds: AZURE,
            },
            factor,
            techniques,
            || {
                (
                    format!(
                        "Entra ID Protection raised {shown_type} ({shown_level} risk, {shown_state}{timing}) on {}{from} at {}{detected} (detection {detection_id})",
                        who.name,
                        fmt_time(c.t),
                    ),
                    vec![c.id.to_owned()],
                )
            },
        );
        if let Some((signal_id, score)) = reported {
            for l in &links {
                self.tied
                    .entry(l.clone())
                    .or_default()
                    .push(detection_id.clone());
            }
            if let Some(e) = self.detections.get_mut(&detection_id) {
                e.reported = Some(Reported {
                    signal_id,
                    score,
                    t: c.t,
                    risk_object: who.name.clone(),
                    threat: c.ip.map(str::to_owned),
                });
            }
        }
        // High or medium counts as the risky Entra side of a cross-cloud rule.
        (factor >= RISK_LEVEL_FACTORS[1].1).then(|| {
            DetectionUpdate::AtRisk(RiskySignin {
                event_id: c.id.to_owned(),
                what: "an Identity Protection risk detection",
                why: format!("{shown_type} at {shown_level} risk{from}"),
                detection: Some(detection_id),
            })
        })
    }

    /// A successful sign-in that raised `azure_high_risk_signin` or `azure_risky_event`: a
    /// detection tied to it adds nothing, and one that already fired is taken back.
    pub fn on_risky_signin(&mut self, c: &Ctx<'_>, sink: &mut Sink<'_>) {
        for l in links_of(c.ev) {
            self.risky_signins.insert(l.clone(), c.t);
            let Some(ids) = self.tied.remove(&l) else {
                continue;
            };
            for id in ids {
                if let Some(r) = self.detections.get_mut(&id).and_then(|d| d.reported.take()) {
                    let why = format!(
                        "Entra risk detection {id} belongs to sign-in {}, whose own risk signals already count it",
                        c.id
                    );
                    withdraw(c, sink, r, why);
                }
            }
        }
    }

}

impl Detector for RiskDetections {
    fn sweep(&mut self, _cfg: &CorrelateConfig, now: i64) {
        let cut = now.saturating_sub(LINK_MS);
        self.detections.retain(|_, d| d.t >= cut);
        self.risky_signins.retain(|_, t| *t >= cut);
        let detections = &self.detections;
        self.tied.retain(|_, ids| {
            ids.retain(|id| detections.get(id).is_some_and(|d| d.reported.is_some()));
            !ids.is_empty()
        });
    }
}

/// The ids a detection and its sign-in share: the sign-in's id (a detection's `requestId`)
/// and the correlation id.
fn links_of(ev: &crosswind_model::Event) -> Vec<String> {
    let mut out = Vec::with_capacity(2);
    let id = if ev.is_risk_detection() {
        ev.entra.as_ref().and_then(|d| d.request_id.clone())
    } else {
        Some(ev.metadata.uid.clone())
    };
    out.extend(
        id.filter(|s| !s.trim().is_empty())
            .map(|s| format!("r:{s}")),
    );
    out.extend(
        ev.metadata
            .correlation_uid
            .clone()
            .filter(|s| !s.trim().is_empty())
            .map(|s| format!("c:{s}")),
    );
    out
}

/// Take a reported detection back, with its weight at `c.t` (the same time in the common case:
/// states share the activity time) so the identity's risk no longer counts it.
fn withdraw(c: &Ctx<'_>, sink: &mut Sink<'_>, r: Reported, why: String) {
    let hl = c.cfg.half_life_ms().max(1);
    let decayed = r.score * 0.5f64.powf(age(c.t, r.t).max(0) as f64 / hl as f64);
    sink.withdraw(
        c.t,
        Withdrawal {
            kind: SignalKind::AzureRiskDetection,
            risk_object: &r.risk_object,
            threat: r.threat.as_deref(),
            clouds: AZURE,
            extends: &r.signal_id,
            score: decayed,
            message: format!("{}: {why}; it no longer counts", r.risk_object),
            event_ids: vec![c.id.to_owned()],
        },
    );
}
