//! The Entra sign-in mapping shared by the three Entra shapes: Graph `signIn` and diagnostic
//! `properties` (camelCase) and Log Analytics `SigninLogs` (PascalCase, JSON-in-string columns).
//! Each shape's module supplies the time, status, tenant and fallbacks; this builds the event.

use crosswind_model::{
    Account, CLASS_AUTHENTICATION, Cloud, CloudProvider, EntraDetail, Event, HttpRequest, Location,
    Metadata, SCHEMA_VERSION, STATUS_FAILURE, STATUS_SUCCESS, STATUS_UNKNOWN, Service,
    SourceFormat, SrcEndpoint, User,
};
use serde_json::Value;

use crate::Rejection;
use crate::fields::{
    Obj, coordinate, flag, ip_or_domain, owned, small_uint, string_list, structured, text,
};

/// The key names one Entra shape uses for each fact.
pub(crate) struct Keys {
    pub id: &'static str,
    pub upn: &'static str,
    pub user_id: &'static str,
    pub display_name: &'static str,
    pub user_type: &'static str,
    pub sp_id: &'static str,
    pub sp_name: &'static str,
    pub app_name: &'static str,
    pub app_id: &'static str,
    pub ip: &'static str,
    pub user_agent: &'static str,
    pub correlation_id: &'static str,
    pub location: &'static str,
    pub asn: &'static str,
    pub auth_requirement: &'static str,
    pub auth_details: &'static str,
    pub auth_protocol: &'static str,
    pub client_app: &'static str,
    pub home_tenant: &'static str,
    pub resource_tenant: &'static str,
    pub cross_tenant: &'static str,
    pub is_interactive: &'static str,
    pub ca_status: &'static str,
    pub risk_during: &'static str,
    /// A documented typo (`riskLevelDuringsignIn`) read when `risk_during` is absent.
    pub risk_during_alt: &'static str,
    pub risk_aggregated: &'static str,
    pub risk_state: &'static str,
    pub risk_detail: &'static str,
    pub risk_types_v2: &'static str,
    pub risk_types: &'static str,
}

/// Graph `signIn` and diagnostic `properties`.
pub(crate) const CAMEL: Keys = Keys {
    id: "id",
    upn: "userPrincipalName",
    user_id: "userId",
    display_name: "userDisplayName",
    user_type: "userType",
    sp_id: "servicePrincipalId",
    sp_name: "servicePrincipalName",
    app_name: "appDisplayName",
    app_id: "appId",
    ip: "ipAddress",
    user_agent: "userAgent",
    correlation_id: "correlationId",
    location: "location",
    asn: "autonomousSystemNumber",
    auth_requirement: "authenticationRequirement",
    auth_details: "authenticationDetails",
    auth_protocol: "authenticationProtocol",
    client_app: "clientAppUsed",
    home_tenant: "homeTenantId",
    resource_tenant: "resourceTenantId",
    cross_tenant: "crossTenantAccessType",
    is_interactive: "isInteractive",
    ca_status: "conditionalAccessStatus",
    risk_during: "riskLevelDuringSignIn",
    risk_during_alt: "riskLevelDuringsignIn",
    risk_aggregated: "riskLevelAggregated",
    risk_state: "riskState",
    risk_detail: "riskDetail",
    risk_types_v2: "riskEventTypes_v2",
    risk_types: "riskEventTypes",
};

/// Log Analytics `SigninLogs` columns.
pub(crate) const PASCAL: Keys = Keys {
    id: "Id",
    upn: "UserPrincipalName",
    user_id: "UserId",
    display_name: "UserDisplayName",
    user_type: "UserType",
    sp_id: "ServicePrincipalId",
    sp_name: "ServicePrincipalName",
    app_name: "AppDisplayName",
    app_id: "AppId",
    ip: "IPAddress",
    user_agent: "UserAgent",
    correlation_id: "CorrelationId",
    location: "LocationDetails",
    asn: "AutonomousSystemNumber",
    auth_requirement: "AuthenticationRequirement",
    auth_details: "AuthenticationDetails",
    auth_protocol: "AuthenticationProtocol",
    client_app: "ClientAppUsed",
    home_tenant: "HomeTenantId",
    resource_tenant: "ResourceTenantId",
    cross_tenant: "CrossTenantAccessType",
    is_interactive: "IsInteractive",
    ca_status: "ConditionalAccessStatus",
    risk_during: "RiskLevelDuringSignIn",
    risk_during_alt: "RiskLevelDuringsignIn",
    risk_aggregated: "RiskLevelAggregated",
    risk_state: "RiskState",
    risk_detail: "RiskDetail",
    risk_types_v2: "RiskEventTypes_V2",
    risk_types: "RiskEventTypes",
};

/// What the shape-specific module worked out before the shared mapping.
pub(crate) struct Input<'a> {
    pub format: SourceFormat,
    /// The whole record's JSON text (hashed for the id when the record has none).
    pub record: &'a [u8],
    /// Where the sign-in's own fields live (the record, or diagnostic `properties`).
    pub fields: &'a Obj<'a>,
    pub keys: &'static Keys,
    pub time: i64,
    /// `status.errorCode` / `resultType` / `ResultType` as text.
    pub status_code: Option<String>,
    pub status_detail: Option<String>,
    /// `status.additionalDetails`.
    pub status_additional_details: Option<String>,
    pub tenant: Option<String>,
    pub event_types: Vec<String>,
    /// Used when `fields` lacks the IP (diagnostic `callerIpAddress`).
    pub ip_fallback: Option<String>,
    /// Used when `fields` lacks the display name (diagnostic `identity`).
    pub name_fallback: Option<String>,
    /// Used when `fields` has no location object (`location` "US", LA `Location`).
    pub country_fallback: Option<String>,
}

pub(crate) fn status_id(code: Option<&str>) -> u8 {
    match code {
        None => STATUS_UNKNOWN,
        Some("0") => STATUS_SUCCESS,
        Some(c) if c.eq_ignore_ascii_case("success") => STATUS_SUCCESS,
        Some(_) => STATUS_FAILURE,
    }
}

pub(crate) fn build(input: Input<'_>) -> Result<Event, Rejection> {
    let Input {
        format,
        record,
        fields: f,
        keys: k,
        ..
    } = input;
    let get = |key: &str| f.get(key);

    // --- user ---
    let upn = text(get(k.upn), k.upn)?.map(|u| u.to_lowercase());
    let user_id = owned(get(k.user_id), k.user_id)?;
    let mut user = User {
        name: upn,
        uid: user_id,
        kind: text(get(k.user_type), k.user_type)?.map(|t| t.to_ascii_lowercase()),
        full_name: match owned(get(k.display_name), k.display_name)? {
            Some(n) => Some(n),
            None => input.name_fallback,
        },
        account_uid: owned(get(k.home_tenant), k.home_tenant)?,
        ..User::default()
    };
    if user.name.is_none() && user.uid.is_none() {
        // Service principal and managed identity sign-ins have no user: the principal is the app.
        let sp_id = owned(get(k.sp_id), k.sp_id)?;
        let sp_name = owned(get(k.sp_name), k.sp_name)?;
        if sp_id.is_none() && sp_name.is_none() {
            return Err(Rejection::new("missing user"));
        }
        user.name = sp_name;
        user.uid = sp_id;
        user.kind
            .get_or_insert_with(|| "servicePrincipal".to_owned());
    }

    // --- source ---
    let src_endpoint = SrcEndpoint {
        autonomous_system_number: small_uint(get(k.asn), k.asn)?,
        ..source_endpoint(
            f,
            (k.ip, k.location),
            input.ip_fallback,
            input.country_fallback,
        )?
    };

    // --- authentication ---
    let auth_requirement = owned(get(k.auth_requirement), k.auth_requirement)?;
    let is_mfa = match auth_requirement.as_deref() {
        Some("multiFactorAuthentication") => Some(true),
        Some("singleFactorAuthentication") => Some(false),
        _ => mfa_from_details(structured(get(k.auth_details), k.auth_details)?.as_deref()),
    };

    let mut risk_event_types = string_list(get(k.risk_types_v2), k.risk_types_v2)?;
    if risk_event_types.is_empty() {
        risk_event_types = string_list(get(k.risk_types), k.risk_types)?;
    }
    let risk_level_during_signin = match owned(get(k.risk_during), k.risk_during)? {
        Some(r) => Some(r),
        None => owned(get(k.risk_during_alt), k.risk_during_alt)?,
    };
    let entra = EntraDetail {
        risk_level_during_signin,
        risk_level_aggregated: owned(get(k.risk_aggregated), k.risk_aggregated)?,
        risk_state: owned(get(k.risk_state), k.risk_state)?,
        risk_detail: owned(get(k.risk_detail), k.risk_detail)?,
        risk_event_types,
        authentication_requirement: auth_requirement,
        home_tenant_id: user.account_uid.clone(),
        resource_tenant_id: owned(get(k.resource_tenant), k.resource_tenant)?,
        cross_tenant_access_type: owned(get(k.cross_tenant), k.cross_tenant)?,
        client_app_used: owned(get(k.client_app), k.client_app)?,
        status_additional_details: input.status_additional_details,
        authentication_protocol: owned(get(k.auth_protocol), k.auth_protocol)?,
        is_interactive: flag(get(k.is_interactive), k.is_interactive)?,
        conditional_access_status: owned(get(k.ca_status), k.ca_status)?,
        ..EntraDetail::default()
    };

    let app_name = owned(get(k.app_name), k.app_name)?;
    let app_id = owned(get(k.app_id), k.app_id)?;
    let service = (app_name.is_some() || app_id.is_some()).then_some(Service {
        name: app_name,
        uid: app_id,
    });
    let http_request = owned(get(k.user_agent), k.user_agent)?.map(|ua| HttpRequest {
        user_agent: Some(ua),
    });

    let uid = match owned(get(k.id), k.id)? {
        Some(id) => id,
        None => crate::fields::content_id(record),
    };
    let tenant = input.tenant.or_else(|| entra.resource_tenant_id.clone());

    Ok(Event {
        schema_version: SCHEMA_VERSION,
        class_uid: CLASS_AUTHENTICATION,
        time: input.time,
        status_id: status_id(input.status_code.as_deref()),
        status_code: input.status_code,
        status_detail: input.status_detail,
        metadata: Metadata {
            uid,
            product: "Microsoft Entra ID".to_owned(),
            log_name: format,
            correlation_uid: owned(get(k.correlation_id), k.correlation_id)?,
            event_types: input.event_types,
        },
        cloud: Cloud {
            provider: CloudProvider::Azure,
            account: Account { uid: tenant },
            region: None,
        },
        src_endpoint,
        user: Some(user),
        actor: None,
        api: None,
        service,
        http_request,
        is_mfa,
        finding_info: None,
        entra: Some(entra),
        aws: None,
    })
}

/// Where an Entra record came from: its IP (`keys.0`, else `ip_fallback`; a non-IP caller is
/// kept as the domain) and its `signInLocation` object (`keys.1`, else `country_fallback`).
pub(crate) fn source_endpoint(
    f: &Obj<'_>,
    (ip_key, location_key): (&str, &str),
    ip_fallback: Option<String>,
    country_fallback: Option<String>,
) -> Result<SrcEndpoint, Rejection> {
    let ip = match owned(f.get(ip_key), ip_key)? {
        Some(ip) => Some(ip),
        None => ip_fallback,
    };
    let (ip, domain) = ip_or_domain(ip);
    let location = match structured(f.get(location_key), location_key)? {
        Some(loc) => location_of(&loc, country_fallback),
        None => country_fallback.map(|c| Location {
            country: Some(c),
            ..Location::default()
        }),
    };
    Ok(SrcEndpoint {
        ip,
        domain,
        location,
        autonomous_system_number: None,
    })
}

/// `{city, state, countryOrRegion, geoCoordinates{latitude, longitude}}`; wrong inner types are
/// treated as absent.
fn location_of(loc: &Value, country_fallback: Option<String>) -> Option<Location> {
    let s = |key: &str| {
        loc.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let geo = loc.get("geoCoordinates");
    let l = Location {
        country: s("countryOrRegion").or(country_fallback),
        region: s("state"),
        city: s("city"),
        lat: coordinate(geo.and_then(|g| g.get("latitude"))),
        long: coordinate(geo.and_then(|g| g.get("longitude"))),
    };
    (l != Location::default()).then_some(l)
}

/// True when an MFA step of `authenticationDetails` succeeded; `None` when no step says.
fn mfa_from_details(details: Option<&Value>) -> Option<bool> {
    let steps = details?.as_array()?;
    let mfa_step_succeeded = steps.iter().any(|step| {
        let requirement = step
            .get("authenticationStepRequirement")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let is_mfa_step = requirement.contains("mfa")
            || requirement.contains("multi")
            || requirement.contains("secondary");
        let succeeded = match step.get("succeeded") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        is_mfa_step && succeeded
    });
    mfa_step_succeeded.then_some(true)
}
