//! Microsoft Entra ID Protection risk detections → OCSF Detection Finding (2004), from three
//! shapes: Graph `riskDetection` (v1.0 and beta; older beta names the type `riskType`, and
//! `servicePrincipalRiskDetection` names a service principal instead of a user), the
//! diagnostic-settings record of category `UserRiskEvents` / `ServicePrincipalRiskEvents`
//! (`properties` is a riskDetection), and the Log Analytics `AADUserRiskEvents` /
//! `AADServicePrincipalRiskEvents` row (PascalCase; `Location` and `AdditionalInfo` are dynamic
//! columns, sometimes exported as JSON text).
//!
//! A detection changes state after it is raised (dismissed, remediated, confirmed): each state
//! is its own record, `metadata.uid` = `<id>@<lastUpdatedDateTime>`, so every update is kept
//! and the newest state is found by its id (see `risk_detection_record_prefix` in the model).

use crosswind_model::{
    Account, CLASS_DETECTION_FINDING, Cloud, CloudProvider, EntraDetail, Event, FindingInfo,
    HttpRequest, Metadata, SCHEMA_VERSION, STATUS_UNKNOWN, SourceFormat, User,
    risk_detection_record_prefix,
};
use serde_json::Value;

use crate::Rejection;
use crate::entra::source_endpoint;
use crate::fields::{J, Obj, content_id, owned, structured, tenant_from_resource_id, text};
use crate::graph::entra_time;

/// The key names one shape uses for each fact.
struct Keys {
    id: &'static str,
    request_id: &'static str,
    correlation_id: &'static str,
    risk_event_type: &'static str,
    /// The older beta name of `riskEventType`.
    risk_type: &'static str,
    risk_state: &'static str,
    risk_level: &'static str,
    risk_detail: &'static str,
    source: &'static str,
    timing: &'static str,
    activity: &'static str,
    token_issuer_type: &'static str,
    ip: &'static str,
    location: &'static str,
    activity_time: &'static str,
    detected_time: &'static str,
    updated_time: &'static str,
    upn: &'static str,
    user_id: &'static str,
    display_name: &'static str,
    user_type: &'static str,
    home_tenant: &'static str,
    resource_tenant: &'static str,
    cross_tenant: &'static str,
    sp_id: &'static str,
    sp_name: &'static str,
    additional_info: &'static str,
}

/// Graph `riskDetection` and diagnostic `properties`.
const CAMEL: Keys = Keys {
    id: "id",
    request_id: "requestId",
    correlation_id: "correlationId",
    risk_event_type: "riskEventType",
    risk_type: "riskType",
    risk_state: "riskState",
    risk_level: "riskLevel",
    risk_detail: "riskDetail",
    source: "source",
    timing: "detectionTimingType",
    activity: "activity",
    token_issuer_type: "tokenIssuerType",
    ip: "ipAddress",
    location: "location",
    activity_time: "activityDateTime",
    detected_time: "detectedDateTime",
    updated_time: "lastUpdatedDateTime",
    upn: "userPrincipalName",
    user_id: "userId",
    display_name: "userDisplayName",
    user_type: "userType",
    home_tenant: "homeTenantId",
    resource_tenant: "resourceTenantId",
    cross_tenant: "crossTenantAccessType",
    sp_id: "servicePrincipalId",
    sp_name: "servicePrincipalDisplayName",
    additional_info: "additionalInfo",
};

/// Log Analytics `AADUserRiskEvents` columns.
const PASCAL: Keys = Keys {
    id: "Id",
    request_id: "RequestId",
    correlation_id: "CorrelationId",
    risk_event_type: "RiskEventType",
    risk_type: "RiskType",
    risk_state: "RiskState",
    risk_level: "RiskLevel",
    risk_detail: "RiskDetail",
    source: "Source",
    timing: "DetectionTimingType",
    activity: "Activity",
    token_issuer_type: "TokenIssuerType",
    ip: "IpAddress",
    location: "Location",
    activity_time: "ActivityDateTime",
    detected_time: "DetectedDateTime",
    updated_time: "LastUpdatedDateTime",
    upn: "UserPrincipalName",
    user_id: "UserId",
    display_name: "UserDisplayName",
    user_type: "UserType",
    home_tenant: "HomeTenantId",
    resource_tenant: "ResourceTenantId",
    cross_tenant: "CrossTenantAccessType",
    sp_id: "ServicePrincipalId",
    sp_name: "ServicePrincipalDisplayName",
    additional_info: "AdditionalInfo",
};

/// What the envelope around the detection adds (diagnostic record, Log Analytics row).
#[derive(Default)]
struct Envelope {
    /// Used when the detection has none of its three times (`time`, `TimeGenerated`).
    time: Option<(i64, &'static str)>,
    tenant: Option<String>,
    event_types: Vec<String>,
    ip_fallback: Option<String>,
    country_fallback: Option<String>,
}

/// A Graph `riskDetection`.
pub(crate) fn map_graph(record: &[u8], obj: &Obj<'_>) -> Result<Event, Rejection> {
    let tenant = owned(obj.get("tenantId"), "tenantId")?;
    build(
        SourceFormat::GraphRiskDetection,
        record,
        obj,
        &CAMEL,
        Envelope {
            tenant,
            ..Envelope::default()
        },
    )
}

/// A diagnostic-settings `UserRiskEvents` record: `{time, category, tenantId, properties{…}}`.
pub(crate) fn map_diagnostic(record: &[u8], obj: &Obj<'_>) -> Result<Event, Rejection> {
    let props = crate::diagnostic::properties(obj)?;
    let time = match obj.get_ci("time") {
        Some(t) if !t.is_null() => Some((entra_time(Some(t), "time")?, "time")),
        _ => None,
    };
    let mut tenant = owned(obj.get_ci("tenantId"), "tenantId")?;
    if tenant.is_none() {
        tenant = owned(obj.get_ci("resourceId"), "resourceId")?
            .as_deref()
            .and_then(tenant_from_resource_id)
            .map(str::to_owned);
    }
    build(
        SourceFormat::DiagnosticRiskDetection,
        record,
        &props,
        &CAMEL,
        Envelope {
            time,
            tenant,
            event_types: owned(obj.get_ci("category"), "category")?
                .into_iter()
                .collect(),
            ip_fallback: owned(obj.get_ci("callerIpAddress"), "callerIpAddress")?,
            country_fallback: owned(obj.get_ci("location"), "location")?
                .map(|c| c.to_ascii_uppercase()),
        },
    )
}

/// A Log Analytics `AADUserRiskEvents` row.
pub(crate) fn map_row(record: &[u8], obj: &Obj<'_>) -> Result<Event, Rejection> {
    let time = ["TimeGenerated", "TimeGenerated [UTC]"]
        .iter()
        .find_map(|k| obj.get(k).filter(|v| !v.is_null()).map(|v| (*k, v)));
    let time = match time {
        Some((k, v)) => Some((entra_time(Some(v), k)?, "TimeGenerated")),
        None => None,
    };
    // `TenantId` is the Log Analytics workspace, not the Entra tenant.
    let tenant = owned(obj.get("AADTenantId"), "AADTenantId")?;
    build(
        SourceFormat::UserRiskEventsRow,
        record,
        obj,
        &PASCAL,
        Envelope {
            time,
            tenant,
            event_types: owned(obj.get("Type"), "Type")?.into_iter().collect(),
            ..Envelope::default()
        },
    )
}

/// An optional timestamp: missing, null or "" is `None`, anything else must parse.
fn opt_time(v: Option<J<'_>>, field: &str) -> Result<Option<i64>, Rejection> {
    match v {
        None => Ok(None),
        Some(v) if v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()) => Ok(None),
        Some(v) => entra_time(Some(v), field).map(Some),
    }
}

fn build(
    format: SourceFormat,
    record: &[u8],
    f: &Obj<'_>,
    k: &Keys,
    env: Envelope,
) -> Result<Event, Rejection> {
    let get = |key: &str| f.get(key);

    // --- times: scored at the activity; the state's own time orders its updates ---
    let activity = opt_time(get(k.activity_time), k.activity_time)?;
    let detected = opt_time(get(k.detected_time), k.detected_time)?;
    let updated = opt_time(get(k.updated_time), k.updated_time)?;
    let time = match activity.or(detected).or(updated).or(env.time.map(|t| t.0)) {
        Some(t) => t,
        None => return Err(Rejection::new(format!("missing {}", k.activity_time))),
    };
    let version = updated.or(detected).unwrap_or(time);

    // --- the detection ---
    let detection_id = match owned(get(k.id), k.id)? {
        Some(id) => id,
        None => content_id(record),
    };
    let risk_type = match owned(get(k.risk_event_type), k.risk_event_type)? {
        Some(t) => Some(t),
        None => owned(get(k.risk_type), k.risk_type)?,
    };
    let finding_info = FindingInfo {
        uid: detection_id.clone(),
        title: risk_type.clone().unwrap_or_else(|| "unknown".to_owned()),
        types: risk_type.iter().cloned().collect(),
        created_time: detected,
        modified_time: version,
    };

    // --- who: the user at risk, or the service principal for workload identity detections ---
    let mut user = User {
        name: text(get(k.upn), k.upn)?.map(|u| u.to_lowercase()),
        uid: owned(get(k.user_id), k.user_id)?,
        kind: text(get(k.user_type), k.user_type)?.map(|t| t.to_ascii_lowercase()),
        full_name: owned(get(k.display_name), k.display_name)?,
        account_uid: owned(get(k.home_tenant), k.home_tenant)?,
        ..User::default()
    };
    if user.name.is_none() && user.uid.is_none() {
        let sp_id = owned(get(k.sp_id), k.sp_id)?;
        let sp_name = owned(get(k.sp_name), k.sp_name)?;
        if sp_id.is_some() || sp_name.is_some() {
            user.name = sp_name;
            user.uid = sp_id;
            user.kind
                .get_or_insert_with(|| "servicePrincipal".to_owned());
        }
    }
    // A detection naming nobody is still kept: the record is evidence even when unattributed.
    let user = (user != User::default()).then_some(user);

    // --- where from ---
    let src_endpoint =
        source_endpoint(f, (k.ip, k.location), env.ip_fallback, env.country_fallback)?;
    let http_request = user_agent(get(k.additional_info)).map(|ua| HttpRequest {
        user_agent: Some(ua),
    });

    let entra = EntraDetail {
        risk_state: owned(get(k.risk_state), k.risk_state)?,
        risk_detail: owned(get(k.risk_detail), k.risk_detail)?,
        risk_event_types: risk_type.into_iter().collect(),
        risk_level: owned(get(k.risk_level), k.risk_level)?,
        detection_timing_type: owned(get(k.timing), k.timing)?,
        risk_activity: owned(get(k.activity), k.activity)?,
        request_id: owned(get(k.request_id), k.request_id)?,
        risk_source: owned(get(k.source), k.source)?,
        token_issuer_type: owned(get(k.token_issuer_type), k.token_issuer_type)?,
        home_tenant_id: user.as_ref().and_then(|u| u.account_uid.clone()),
        resource_tenant_id: owned(get(k.resource_tenant), k.resource_tenant)?,
        cross_tenant_access_type: owned(get(k.cross_tenant), k.cross_tenant)?,
        ..EntraDetail::default()
    };
    let tenant = env
        .tenant
        .or_else(|| entra.home_tenant_id.clone())
        .or_else(|| entra.resource_tenant_id.clone());

    Ok(Event {
        schema_version: SCHEMA_VERSION,
        class_uid: CLASS_DETECTION_FINDING,
        time,
        status_id: STATUS_UNKNOWN,
        status_code: None,
        status_detail: None,
        metadata: Metadata {
            uid: record_id(&detection_id, version),
            product: "Microsoft Entra ID Protection".to_owned(),
            log_name: format,
            correlation_uid: owned(get(k.correlation_id), k.correlation_id)?,
            event_types: env.event_types,
        },
        cloud: Cloud {
            provider: CloudProvider::Azure,
            account: Account { uid: tenant },
            region: None,
        },
        src_endpoint,
        user,
        actor: None,
        api: None,
        service: None,
        http_request,
        is_mfa: None,
        finding_info: Some(finding_info),
        entra: Some(entra),
        aws: None,
    })
}

/// The record id of one state: `<detection id>@<YYYY-MM-DDTHH:MM:SS.mmmZ>`.
fn record_id(detection_id: &str, version_ms: i64) -> String {
    let mut id = risk_detection_record_prefix(detection_id);
    match chrono::DateTime::from_timestamp_millis(version_ms) {
        Some(t) => id.push_str(&t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        None => id.push_str(&version_ms.to_string()),
    }
    id
}

/// `userAgent` from `additionalInfo` (`[{"Key":"userAgent","Value":"…"}]`, as JSON text or a
/// dynamic column). Decoration: anything unreadable is ignored, never a rejection.
fn user_agent(v: Option<J<'_>>) -> Option<String> {
    let info = structured(v, "additionalInfo").ok()??;
    info.as_array()?.iter().find_map(|kv| {
        let key = kv.get("Key").or_else(|| kv.get("key"))?.as_str()?;
        if !key.eq_ignore_ascii_case("userAgent") {
            return None;
        }
        kv.get("Value")
            .or_else(|| kv.get("value"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    })
}
