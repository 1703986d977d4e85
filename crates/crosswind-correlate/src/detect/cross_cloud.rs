//! `cross_cloud_risky_then_aws`: an identity with a risky Entra sign-in logs in to the AWS
//! console or makes a recon burst within the window. The engine routes both sides here: the
//! risky sign-ins the Entra risk detector reports, and the AWS activity.

use crate::StateMap;

use super::entra_risk::RiskySignin;
use super::{Detector, Sweep, BOTH, Ctx, Sink, age};
use crate::catalog::SignalKind;
use crate::config::CorrelateConfig;
use crate::emit::Draft;
use crate::identity::Resolved;
use crate::net::{fmt_duration, fmt_time};

#[derive(Clone)]
struct Risky {
    t: i64,
    event_id: String,
    what: &'static str,
    why: String,
    /// The Identity Protection detection it is, if one.
    detection: Option<String>,
}

/// Risky observations kept per identity: enough that one taken back (a dismissed detection)
/// leaves the one before it.
const KEPT_PER_IDENTITY: usize = 4;

/// Each identity's latest risky Entra observations, oldest first (a risky sign-in, a risk
/// detection at high or medium, MFA fatigue that ended in a success, a legacy-protocol
/// sign-in).
#[derive(Clone, Default)]
pub(crate) struct RiskyThenAws {
    risky: StateMap<String, Vec<Risky>>,
}

impl RiskyThenAws {
    pub fn len(&self) -> usize {
        self.risky.len()
    }

    pub fn on_risky_signin(&mut self, c: &Ctx<'_>, who: &Resolved, r: RiskySignin) {
        let kept = self.risky.entry(who.name.clone()).or_default();
        if kept.iter().any(|k| k.event_id == r.event_id) {
            return;
        }
        let at = kept.partition_point(|k| k.t <= c.t);
        kept.insert(
            at,
            Risky {
                t: c.t,
                event_id: r.event_id,
                what: r.what,
                why: r.why,
                detection: r.detection,
            },
        );
        if kept.len() > KEPT_PER_IDENTITY {
            kept.remove(0);
        }
    }

    /// A detection dismissed, confirmed safe or remediated is no longer the risky side (the
    /// identity's other risky observations still are).
    pub fn on_detection_closed(&mut self, who: Option<&Resolved>, detection: &str) {
        let closed = |kept: &mut Vec<Risky>| {
            kept.retain(|k| k.detection.as_deref() != Some(detection));
            !kept.is_empty()
        };
        match who {
            Some(who) => {
                if let Some(kept) = self.risky.get_mut(&who.name)
                    && !closed(kept)
                {
                    self.risky.remove(&who.name);
                }
            }
            // A state without its user: look everywhere (rare).
            None => self.risky.retain(|_, kept| closed(kept)),
        }
    }

    pub fn on_aws_activity(
        &mut self,
        c: &Ctx<'_>,
        who: &Resolved,
        what: &str,
        aws_ids: Vec<String>,
        sink: &mut Sink<'_>,
    ) {
        let window = c.cfg.signal(SignalKind::CrossCloudRiskyThenAws).window_ms;
        let Some(r) = self
            .risky
            .get(&who.name)
            .and_then(|kept| kept.iter().rev().find(|r| r.t <= c.t))
        else {
            return;
        };
        if age(c.t, r.t) > window {
            return;
        }
        let msg = format!(
            "{} {what} from {} {} after {} ({}) at {}",
            who.name,
            c.ip.unwrap_or("an unknown IP"),
            fmt_duration(c.t - r.t),
            r.what,
            r.why,
            fmt_time(r.t)
        );
        let mut ids = vec![r.event_id.clone()];
        ids.extend(aws_ids);
        sink.fire(
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
            || (msg, ids),
        );
    }
}

impl Detector for RiskyThenAws {
    const SWEEP: Sweep = Sweep::Hourly;

    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let cut = now.saturating_sub(cfg.signal(SignalKind::CrossCloudRiskyThenAws).window_ms);
        self.risky.retain(|_, kept| {
            kept.retain(|r| r.t >= cut);
            !kept.is_empty()
        });
    }
}
