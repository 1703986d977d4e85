//! `aws_credential_persistence`: successful IAM calls that create a way back in (a new access
//! key or console password, a new user, MFA removed, admin granted to a user). Key rotation is
//! routine, so on its own it scores 16; with another signal of the same identity in the
//! previous 8 h (the window) ×3 = 48 (docs/detections.md).

use crosswind_model::ADMIN_GRANT_CALLS;

use super::{AWS, Ctx, Detector, Sink, age};
use crate::catalog::{PERSISTENCE_CALLS, PERSISTENCE_CONTEXT_FACTOR, SignalKind};
use crate::emit::Draft;
use crate::identity::Resolved;
use crate::net::{fmt_duration, fmt_time};

/// Stateless: the identity's other signals are the emission path's (`Emitter::last_other`).
#[derive(Clone, Default)]
pub(crate) struct Persistence;

impl Detector for Persistence {}

impl Persistence {
    /// A successful persistence call (`op` indexes [`PERSISTENCE_CALLS`]). What it did, for
    /// the AWS side of `cross_cloud_risky_then_aws`.
    pub fn on_call(
        &mut self,
        c: &Ctx<'_>,
        who: &Resolved,
        op: u8,
        sink: &mut Sink<'_>,
    ) -> Option<String> {
        let &(op, what) = PERSISTENCE_CALLS.get(usize::from(op))?;
        if ADMIN_GRANT_CALLS.contains(&op)
            && c.ev.aws.as_ref().and_then(|a| a.grants_admin) != Some(true)
        {
            return None;
        }
        let window = c.cfg.signal(SignalKind::AwsCredentialPersistence).window_ms;
        let context = sink
            .emitter
            .last_other(&who.name, c.t)
            .filter(|(t, _)| age(c.t, *t) <= window);
        let ip_text = c.ip.unwrap_or("an unknown IP");
        sink.fire(
            c.t,
            Draft {
                kind: SignalKind::AwsCredentialPersistence,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: c.ip,
                clouds: AWS,
            },
            if context.is_some() {
                PERSISTENCE_CONTEXT_FACTOR
            } else {
                1.0
            },
            || {
                let mut m = format!("{} {what} ({op}) from {ip_text}", who.name);
                if let Some((t, kind)) = context {
                    m.push_str(&format!(
                        "; the identity raised {} {} earlier, at {} (×3)",
                        kind.name(),
                        fmt_duration(c.t - t),
                        fmt_time(t)
                    ));
                } else {
                    m.push_str("; no other signal of the identity in the last ");
                    m.push_str(&fmt_duration(window));
                }
                (m, vec![c.id.to_owned()])
            },
        );
        Some(format!("{what} ({op})"))
    }
}
