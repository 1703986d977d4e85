//! `azure_legacy_auth_signin`: a successful sign-in over a legacy protocol (IMAP4, POP3,
//! Exchange ActiveSync, Authenticated SMTP, Other clients, …), which cannot do MFA: a stolen
//! password alone gets in. `clientAppUsed` Browser and "Mobile Apps and Desktop clients" are
//! modern; an empty or unknown value says nothing and is not legacy (docs/detections.md).
//!
//! A device that uses such a protocol every day (a mail-room scanner on Exchange ActiveSync)
//! is a habit: the emission path scores it a quarter and it is never a finding on its own, nor
//! the risky side of a cross-cloud rule.

use super::entra_risk::RiskySignin;
use super::{AZURE, Ctx, Detector, Sink};
use crate::catalog::{MODERN_CLIENT_APPS, SignalKind, UNKNOWN_CLIENT_APPS};
use crate::emit::Draft;
use crate::identity::Resolved;

/// Whether `clientAppUsed` names a legacy protocol.
pub fn is_legacy_client_app(app: &str) -> bool {
    let app = app.trim().to_ascii_lowercase();
    !app.is_empty()
        && !MODERN_CLIENT_APPS.contains(&app.as_str())
        && !UNKNOWN_CLIENT_APPS.contains(&app.as_str())
}

/// Stateless: every sign-in is judged on its own; habits are the emission path's.
#[derive(Clone, Default)]
pub(crate) struct LegacyAuth;

impl Detector for LegacyAuth {}

impl LegacyAuth {
    /// A successful sign-in. Returns it as the risky Entra side of `cross_cloud_risky_then_aws`
    /// unless it is habitual.
    pub fn on_success(
        &mut self,
        c: &Ctx<'_>,
        who: &Resolved,
        sink: &mut Sink<'_>,
    ) -> Option<RiskySignin> {
        let app = c.ev.entra.as_ref()?.client_app_used.as_deref()?.trim();
        if !is_legacy_client_app(app) {
            return None;
        }
        let kind = SignalKind::AzureLegacyAuthSignin;
        let habitual = sink
            .emitter
            .would_be_habitual(kind, &who.name, c.ip, c.t);
        let ip_text = c.ip.unwrap_or("an unknown IP");
        let target =
            c.ev.service
                .as_ref()
                .and_then(|s| s.name.as_deref())
                .unwrap_or("an application");
        let country = c
            .ev
            .src_endpoint
            .location
            .as_ref()
            .and_then(|l| l.country.as_deref())
            .map(|cc| format!(" ({cc})"))
            .unwrap_or_default();
        sink.fire(
            c.t,
            Draft {
                kind,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: c.ip,
                clouds: AZURE,
            },
            1.0,
            || {
                (
                    format!(
                        "{} signed in to {target} over the legacy protocol `{app}` (no MFA possible) from {ip_text}{country}",
                        who.name
                    ),
                    vec![c.id.to_owned()],
                )
            },
        );
        (!habitual).then(|| RiskySignin {
            event_id: c.id.to_owned(),
            what: "a legacy-protocol Entra sign-in",
            why: format!("`{app}` from {ip_text}"),
            detection: None,
        })
    }
}
