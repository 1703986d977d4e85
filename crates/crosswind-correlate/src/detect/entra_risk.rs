//! Entra sign-in risk: `azure_high_risk_signin`, `azure_risky_event`, `azure_cross_tenant_sfa`
//! on a successful sign-in. [`seed_dimensions`] is the seed detection's three checks, shared
//! with the `risky-signins` hunt; the detector adds the tuning (trusted CIDRs silence IP-based
//! risk, partner tenants, travel-like low risk at half).

use crosswind_model::EntraDetail;

use super::{Detector, AZURE, Ctx, Sink};
use crate::catalog::{
    IP_BASED_RISK_TYPES, RISKY_EVENT_TYPES, SignalKind, TRAVEL_FACTOR, TRAVEL_RISK_TYPES,
};
use crate::emit::Draft;
use crate::identity::Resolved;

/// Which of the seed detection's three dimensions one sign-in meets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedDimensions {
    /// `riskLevelDuringSignIn` high/medium or `riskState` atRisk/confirmedCompromised, and not
    /// reviewed safe (`riskState` dismissed or confirmedSafe; `remediated` still counts).
    pub high_risk: bool,
    /// The risky event types it carries, as recorded.
    pub risky_events: Vec<String>,
    /// Single-factor sign-in from another home tenant.
    pub cross_tenant_mfa_bypass: bool,
}

impl SeedDimensions {
    pub fn threat_score(&self) -> u8 {
        self.high_risk as u8
            + !self.risky_events.is_empty() as u8
            + self.cross_tenant_mfa_bypass as u8
    }

    pub fn indicators(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.high_risk {
            out.push("HighRiskSignIn".to_string());
        }
        if !self.risky_events.is_empty() {
            out.push(format!("RiskyEvent:{}", self.risky_events.join(",")));
        }
        if self.cross_tenant_mfa_bypass {
            out.push("CrossTenantMFABypass".to_string());
        }
        out
    }
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The home and resource tenants of a sign-in; `tenant` (the tenant it was collected from)
/// stands in for a resource tenant the record does not name.
pub fn tenants<'a>(
    entra: &'a EntraDetail,
    tenant: Option<&'a str>,
) -> (Option<&'a str>, Option<&'a str>) {
    (
        nonempty(&entra.home_tenant_id),
        nonempty(&entra.resource_tenant_id).or(tenant.map(str::trim).filter(|t| !t.is_empty())),
    )
}

/// Evaluates the three dimensions on an Entra sign-in detail (case-insensitive throughout).
/// Success is the caller's check.
pub fn seed_dimensions(entra: &EntraDetail, tenant: Option<&str>) -> SeedDimensions {
    let is = |v: &Option<String>, any: &[&str]| {
        v.as_deref()
            .is_some_and(|v| any.iter().any(|a| v.trim().eq_ignore_ascii_case(a)))
    };
    let high_risk = !is(&entra.risk_state, &["dismissed", "confirmedSafe"])
        && (is(&entra.risk_level_during_signin, &["high", "medium"])
            || is(&entra.risk_state, &["atRisk", "confirmedCompromised"]));
    let risky_events = entra
        .risk_event_types
        .iter()
        .filter(|t| {
            RISKY_EVENT_TYPES
                .iter()
                .any(|r| t.trim().eq_ignore_ascii_case(r))
        })
        .map(|t| t.trim().to_owned())
        .collect();
    let cross_tenant_mfa_bypass = is(
        &entra.authentication_requirement,
        &["singleFactorAuthentication"],
    ) && match tenants(entra, tenant) {
        (Some(home), Some(resource)) => !home.eq_ignore_ascii_case(resource),
        // Without a resource tenant there is nothing to differ from.
        _ => false,
    };
    SeedDimensions {
        high_risk,
        risky_events,
        cross_tenant_mfa_bypass,
    }
}

/// A risky Entra observation, for `cross_cloud_risky_then_aws` (travel-like low risk
/// excluded): a sign-in here, or another Entra detector's (risk detection, MFA fatigue, legacy
/// protocol).
pub(crate) struct RiskySignin {
    pub event_id: String,
    /// What it was, for the message ("a risky Entra sign-in").
    pub what: &'static str,
    pub why: String,
    /// The Identity Protection detection it is, if one: a later state closing that detection
    /// takes it back.
    pub detection: Option<String>,
}

/// What one successful sign-in showed.
pub(crate) struct SigninRisk {
    /// It counts as the risky side of `cross_cloud_risky_then_aws`.
    pub risky: Option<RiskySignin>,
    /// It raised `azure_high_risk_signin` or `azure_risky_event` (a risk detection tied to it
    /// adds nothing).
    pub raised_risk: bool,
}

/// Stateless: every sign-in is judged on its own.
#[derive(Clone, Default)]
pub(crate) struct EntraRisk;

impl Detector for EntraRisk {}

impl EntraRisk {
    pub fn on_success(&mut self, c: &Ctx<'_>, who: &Resolved, sink: &mut Sink<'_>) -> SigninRisk {
        let none = SigninRisk {
            risky: None,
            raised_risk: false,
        };
        let Some(d) = c.ev.entra.as_ref() else {
            return none;
        };
        let dims = seed_dimensions(d, c.ev.cloud.account.uid.as_deref());
        if dims.threat_score() == 0 {
            return none;
        }
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
        // Risky types, as recorded; from a trusted CIDR the IP-based ones raise nothing.
        let risky: Vec<&str> = dims
            .risky_events
            .iter()
            .map(String::as_str)
            .filter(|t| {
                !(c.trusted && IP_BASED_RISK_TYPES.contains(&t.to_ascii_lowercase().as_str()))
            })
            .collect();
        let (home, resource) = tenants(d, c.ev.cloud.account.uid.as_deref());
        let cross =
            dims.cross_tenant_mfa_bypass && home.is_some_and(|h| !c.cfg.is_partner_tenant(h));
        let factor = if travel_only { TRAVEL_FACTOR } else { 1.0 };
        // Travel-only risk is about the person's movement, not the IP: its threat object is
        // left empty so that repeats are per identity (a traveller's hotel, airport and office
        // IPs are one observation).
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
        let draft = |kind| Draft {
            kind,
            risk_object: &who.name,
            is_service: who.is_service,
            score: 0.0,
            threat,
            clouds: AZURE,
        };
        let mut whys = Vec::new();
        let raised_risk = (dims.high_risk && !trusted_ip_risk) || !risky.is_empty();
        if dims.high_risk && !trusted_ip_risk {
            let why = format!(
                "Entra sign-in risk level `{}`, risk state `{}`",
                d.risk_level_during_signin.as_deref().unwrap_or("none"),
                d.risk_state.as_deref().unwrap_or("none")
            );
            sink.fire(c.t, draft(SignalKind::AzureHighRiskSignin), factor, || {
                (
                    format!(
                        "{} signed in to {app} from {ip_text} with {why}{travel_note}",
                        who.name
                    ),
                    vec![c.id.to_owned()],
                )
            });
            whys.push(format!(
                "risk level {} / state {}",
                or_none(&level),
                or_none(&state)
            ));
        }
        if !risky.is_empty() {
            let list = risky.join(", ");
            sink.fire(c.t, draft(SignalKind::AzureRiskyEvent), factor, || {
                (
                    format!(
                        "{} signed in to {app} from {ip_text} with Entra risk events [{list}]{travel_note}",
                        who.name
                    ),
                    vec![c.id.to_owned()],
                )
            });
            whys.push(format!("risk events [{}]", risky.join(", ")));
        }
        if cross {
            let home = home.unwrap_or_default();
            let resource = resource.unwrap_or_default();
            sink.fire(
                c.t,
                Draft {
                    threat: c.ip,
                    ..draft(SignalKind::AzureCrossTenantSfa)
                },
                1.0,
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
        let risky = (!whys.is_empty() && !travel_only || cross).then(|| RiskySignin {
            event_id: c.id.to_owned(),
            what: "a risky Entra sign-in",
            why: format!("{} from {ip_text}", whys.join(", ")),
            detection: None,
        });
        SigninRisk { risky, raised_risk }
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}
