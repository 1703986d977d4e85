//! `cross_cloud_risky_then_aws`: an identity with a risky Entra sign-in logs in to the AWS
//! console or makes a recon burst within the window. The engine routes both sides here: the
//! risky sign-ins the Entra risk detector reports, and the AWS activity.

use std::collections::HashMap;

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
}

/// Each identity's last risky Entra observation (a risky sign-in, a risk detection at high or
/// medium, MFA fatigue that ended in a success, a legacy-protocol sign-in).
#[derive(Clone, Default)]
pub(crate) struct RiskyThenAws {
    risky: HashMap<String, Risky>,
}

impl RiskyThenAws {
    pub fn len(&self) -> usize {
        self.risky.len()
    }

    pub fn on_risky_signin(&mut self, c: &Ctx<'_>, who: &Resolved, r: RiskySignin) {
        self.risky.insert(
            who.name.clone(),
            Risky {
                t: c.t,
                event_id: r.event_id,
                what: r.what,
                why: r.why,
            },
        );
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
        let Some(r) = self.risky.get(&who.name) else {
            return;
        };
        if c.t < r.t || age(c.t, r.t) > window {
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
        self.risky.retain(|_, r| r.t >= cut);
    }
}
