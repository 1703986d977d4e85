//! Builds Microsoft Graph **beta** `signIn` objects with the full property set (FIELDS.md §1).

use serde_json::{Value, json};

use crate::rng::Rng;
use crate::time::{SEC, iso};
use crate::world::{App, CA_GUEST, CA_LEGACY, CA_MFA, Device, HOME, Place, Tenant};

/// Who signs in.
#[derive(Clone, Copy)]
pub(crate) struct Who<'a> {
    pub upn: &'a str,
    pub display: &'a str,
    pub user_id: &'a str,
    pub guest: bool,
    pub home_tenant: &'a Tenant,
}

/// How the device looked to Entra.
#[derive(Clone, Copy)]
pub(crate) struct DeviceView<'a> {
    pub device: &'a Device,
    pub device_id: &'a str,
    pub name: &'a str,
    pub ua: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Auth {
    /// Password + a fresh MFA prompt.
    FreshMfa(&'static str),
    /// Both factors satisfied by claims in the refresh/session token.
    Token,
    /// Password only (guests, legacy clients, attackers).
    PasswordOnly,
    /// Password right, then an MFA push the user refused (500121); the text is Entra's
    /// `status.additionalDetails` ([`MFA_DECLINED`], [`MFA_NO_RESPONSE`]).
    MfaRefused(&'static str),
}

/// `status.additionalDetails` of a push the user declined (500121).
pub(crate) const MFA_DECLINED: &str = "MFA denied; user declined the authentication";
/// `status.additionalDetails` of a push the user left unanswered (500121).
pub(crate) const MFA_NO_RESPONSE: &str =
    "MFA denied; user did not respond to mobile app notification";

#[derive(Clone, Copy, Debug)]
pub(crate) struct Risk {
    pub level: &'static str,
    pub aggregated: &'static str,
    pub state: &'static str,
    pub detail: &'static str,
    pub events: &'static [&'static str],
}

pub(crate) const NO_RISK: Risk = Risk {
    level: "none",
    aggregated: "none",
    state: "none",
    detail: "none",
    events: &[],
};

/// One sign-in to build.
#[derive(Clone, Copy)]
pub(crate) struct SignIn<'a> {
    pub time: i64,
    pub who: Who<'a>,
    pub app: &'a App,
    pub ip: &'a str,
    pub asn: u32,
    pub place: &'a Place,
    pub device: DeviceView<'a>,
    pub client_app: &'a str,
    pub protocol: &'a str,
    pub interactive: bool,
    pub error: u32,
    pub auth: Auth,
    pub risk: Risk,
}

pub(crate) fn failure_reason(code: u32) -> &'static str {
    match code {
        0 => "Other.",
        50126 => "Error validating credentials due to invalid username or password.",
        50053 => {
            "Account is locked because user tried to sign in too many times with an incorrect user ID or password."
        }
        50074 => "Strong Authentication is required.",
        500121 => "Authentication failed during strong authentication request.",
        50140 => {
            "This error occurred due to 'Keep me signed in' interrupt when the user was signing in."
        }
        50058 => "Session information is not sufficient for single-sign-on.",
        _ => "Other.",
    }
}

fn step(t: i64, method: &str, detail: Option<&str>, ok: bool, result: &str, req: &str) -> Value {
    json!({
        "authenticationStepDateTime": iso(t),
        "authenticationMethod": method,
        "authenticationMethodDetail": detail,
        "succeeded": ok,
        "authenticationStepResultDetail": result,
        "authenticationStepRequirement": req,
    })
}

fn ca_policy(
    id_name: (&str, &str),
    grant: &[&str],
    result: &str,
    satisfied: &str,
    not_satisfied: &str,
) -> Value {
    json!({
        "id": id_name.0,
        "displayName": id_name.1,
        "enforcedGrantControls": grant,
        "enforcedSessionControls": [],
        "result": result,
        "conditionsSatisfied": satisfied,
        "conditionsNotSatisfied": not_satisfied,
        "includeRulesSatisfied": [],
        "excludeRulesSatisfied": [],
        "sessionControlsNotSatisfied": [],
        "authenticationStrength": null,
    })
}

/// Builds one beta `signIn`. Ids come from `rng`; everything else from `s`.
pub(crate) fn build(rng: &mut Rng, s: &SignIn<'_>) -> Value {
    let ok = s.error == 0;
    let legacy = s.client_app == "Other clients";
    let mfa = matches!(
        s.auth,
        Auth::FreshMfa(_) | Auth::Token | Auth::MfaRefused(_)
    );
    let requirement = if mfa {
        "multiFactorAuthentication"
    } else {
        "singleFactorAuthentication"
    };

    let (details, methods_used, additional): (Vec<Value>, Vec<&str>, Option<&str>) = match (
        ok, s.auth, s.error,
    ) {
        (true, Auth::FreshMfa(m), _) => (
            vec![
                step(
                    s.time - 14 * SEC,
                    "Password",
                    Some("Password in the cloud"),
                    true,
                    "Correct password",
                    "Primary authentication",
                ),
                step(
                    s.time - 6 * SEC,
                    m,
                    None,
                    true,
                    "MFA successfully completed",
                    "MFA",
                ),
            ],
            vec!["Password", m],
            Some("MFA completed in Azure AD"),
        ),
        (true, Auth::Token, _) => (
            vec![
                step(
                    s.time,
                    "Previously satisfied",
                    None,
                    true,
                    "First factor requirement satisfied by claim in the token",
                    "Primary authentication",
                ),
                step(
                    s.time,
                    "Previously satisfied",
                    None,
                    true,
                    "MFA requirement satisfied by claim in the token",
                    "MFA",
                ),
            ],
            vec![],
            Some("MFA requirement satisfied by claim in the token"),
        ),
        (true, Auth::PasswordOnly | Auth::MfaRefused(_), _) => (
            vec![step(
                s.time - 3 * SEC,
                "Password",
                Some("Password in the cloud"),
                true,
                "Correct password",
                "Primary authentication",
            )],
            vec!["Password"],
            None,
        ),
        (false, Auth::MfaRefused(why), 500121) => (
            vec![
                step(
                    s.time - 25 * SEC,
                    "Password",
                    Some("Password in the cloud"),
                    true,
                    "Correct password",
                    "Primary authentication",
                ),
                step(s.time, "Mobile app notification", None, false, why, "MFA"),
            ],
            vec!["Password"],
            Some(why),
        ),
        (false, _, 50074) => (
            vec![
                step(
                    s.time - 4 * SEC,
                    "Password",
                    Some("Password in the cloud"),
                    true,
                    "Correct password",
                    "Primary authentication",
                ),
                step(
                    s.time,
                    "Mobile app notification",
                    None,
                    false,
                    "MFA denied; user did not respond to mobile app notification",
                    "MFA",
                ),
            ],
            vec!["Password"],
            Some(
                "The user is required to use multi-factor authentication to access this resource.",
            ),
        ),
        (false, _, _) => (
            vec![step(
                s.time,
                "Password",
                Some("Password in the cloud"),
                false,
                "Invalid username or password or Invalid on-premise username or password.",
                "Primary authentication",
            )],
            vec![],
            if s.error == 50053 {
                Some(
                    "Account is locked because the user tried to sign in too many times with an incorrect user ID or password.",
                )
            } else {
                None
            },
        ),
    };

    // Conditional Access: evaluated only after the first factor succeeds.
    let (ca_status, policies) = if s.error == 50126 || s.error == 50053 {
        (
            "notApplied",
            vec![
                ca_policy(CA_MFA, &["Mfa"], "notApplied", "none", "none"),
                ca_policy(
                    CA_LEGACY,
                    &["Block"],
                    "reportOnlyNotApplied",
                    "none",
                    "none",
                ),
            ],
        )
    } else if s.who.guest {
        (
            "success",
            vec![
                ca_policy(CA_MFA, &["Mfa"], "notApplied", "application", "users"),
                ca_policy(
                    CA_GUEST,
                    &["TermsOfUse"],
                    "success",
                    "application,users",
                    "none",
                ),
            ],
        )
    } else if legacy {
        (
            "notApplied",
            vec![
                ca_policy(
                    CA_MFA,
                    &["Mfa"],
                    "notApplied",
                    "application,users",
                    "clientType",
                ),
                ca_policy(
                    CA_LEGACY,
                    &["Block"],
                    "reportOnlyFailure",
                    "application,users,clientType",
                    "none",
                ),
            ],
        )
    } else if s.error == 50074 || s.error == 500121 {
        (
            "failure",
            vec![
                ca_policy(
                    CA_MFA,
                    &["Mfa"],
                    "failure",
                    "application,users,clientType",
                    "none",
                ),
                ca_policy(
                    CA_LEGACY,
                    &["Block"],
                    "reportOnlyNotApplied",
                    "application,users",
                    "clientType",
                ),
            ],
        )
    } else if mfa {
        (
            "success",
            vec![
                ca_policy(
                    CA_MFA,
                    &["Mfa"],
                    "success",
                    "application,users,clientType",
                    "none",
                ),
                ca_policy(
                    CA_LEGACY,
                    &["Block"],
                    "reportOnlyNotApplied",
                    "application,users",
                    "clientType",
                ),
            ],
        )
    } else {
        (
            "notApplied",
            vec![
                ca_policy(CA_MFA, &["Mfa"], "notApplied", "application", "users"),
                ca_policy(
                    CA_LEGACY,
                    &["Block"],
                    "reportOnlyNotApplied",
                    "application,users",
                    "clientType",
                ),
            ],
        )
    };

    let id = rng.uuid();
    let correlation = rng.uuid();
    let session = if ok { rng.uuid() } else { String::new() };
    let token_id = rng.alnum(22);
    let processing = rng.range(40, 420);
    let event_type = if s.interactive {
        "interactiveUser"
    } else {
        "nonInteractiveUser"
    };
    let cross = if s.who.home_tenant.id == HOME.id {
        "none"
    } else {
        "b2bCollaboration"
    };
    let d = &s.device;

    json!({
        "id": id,
        "createdDateTime": iso(s.time),
        "userDisplayName": s.who.display,
        "userPrincipalName": s.who.upn,
        "userId": s.who.user_id,
        "userType": if s.who.guest { "guest" } else { "member" },
        "signInIdentifier": s.who.upn,
        "signInIdentifierType": "userPrincipalName",
        "appId": s.app.id,
        "appDisplayName": s.app.name,
        "appOwnerTenantId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        "appTokenProtectionStatus": "none",
        "appliedEventListeners": [],
        "ipAddress": s.ip,
        "ipAddressFromResourceProvider": null,
        "autonomousSystemNumber": s.asn,
        "clientAppUsed": s.client_app,
        "clientCredentialType": "none",
        "userAgent": d.ua,
        "correlationId": correlation,
        "originalRequestId": id,
        "originalTransferMethod": "none",
        "conditionalAccessStatus": ca_status,
        "conditionalAccessAudiences": [],
        "appliedConditionalAccessPolicies": policies,
        "isInteractive": s.interactive,
        "isTenantRestricted": false,
        "isThroughGlobalSecureAccess": false,
        "globalSecureAccessIpAddress": null,
        "flaggedForReview": false,
        "incomingTokenType": if matches!(s.auth, Auth::Token) && ok { "primaryRefreshToken" } else { "none" },
        "authenticationProtocol": s.protocol,
        "authenticationRequirement": requirement,
        "authenticationRequirementPolicies": [],
        "authenticationDetails": details,
        "authenticationMethodsUsed": methods_used,
        "authenticationProcessingDetails": [
            { "key": "Legacy TLS (TLS 1.0, 1.1, 3DES)", "value": "False" },
            { "key": "Is CAE Token", "value": "False" },
        ],
        "authenticationContextClassReferences": [],
        "authenticationAppDeviceDetails": null,
        "authenticationAppPolicyEvaluationDetails": [],
        "homeTenantId": s.who.home_tenant.id,
        "homeTenantName": s.who.home_tenant.name,
        "resourceTenantId": HOME.id,
        "resourceOwnerTenantId": HOME.id,
        "resourceDisplayName": s.app.resource,
        "resourceId": s.app.resource_id,
        "resourceServicePrincipalId": s.app.resource_id,
        "azureResourceId": "",
        "crossTenantAccessType": cross,
        "federatedCredentialId": "",
        "servicePrincipalId": "",
        "servicePrincipalName": null,
        "servicePrincipalCredentialKeyId": "",
        "servicePrincipalCredentialThumbprint": "",
        "managedServiceIdentity": {
            "msiType": "none",
            "associatedResourceId": null,
            "federatedTokenId": null,
            "federatedTokenIssuer": null,
        },
        "signInEventTypes": [event_type],
        "signInTokenProtectionStatus": "none",
        "tokenProtectionStatusDetails": { "signInSessionStatus": "unbound", "signInSessionStatusCode": 1002 },
        "tokenIssuerName": "",
        "tokenIssuerType": "AzureAD",
        "uniqueTokenIdentifier": token_id,
        "sessionId": session,
        "sessionLifetimePolicies": [],
        "processingTimeInMilliseconds": processing,
        "networkLocationDetails": [],
        "privateLinkDetails": { "policyId": "", "policyName": "", "resourceId": "", "policyTenantId": "" },
        "mfaDetail": null,
        "riskDetail": s.risk.detail,
        "riskLevelAggregated": s.risk.aggregated,
        "riskLevelDuringSignIn": s.risk.level,
        "riskState": s.risk.state,
        "riskEventTypes_v2": s.risk.events,
        "status": {
            "errorCode": s.error,
            "failureReason": failure_reason(s.error),
            "additionalDetails": additional,
        },
        "deviceDetail": {
            "deviceId": d.device_id,
            "displayName": d.name,
            "operatingSystem": d.device.os,
            "browser": d.device.browser,
            "isCompliant": d.device.managed && !d.device_id.is_empty(),
            "isManaged": d.device.managed && !d.device_id.is_empty(),
            "trustType": if d.device_id.is_empty() { "" } else { d.device.trust },
        },
        "location": {
            "city": s.place.city,
            "state": s.place.state,
            "countryOrRegion": s.place.country,
            "geoCoordinates": {
                "altitude": null,
                "latitude": s.place.lat,
                "longitude": s.place.lon,
            },
        },
    })
}
