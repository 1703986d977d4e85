//! Which shape a record has, by its distinctive keys, and why a record is not one we map: a
//! rejection names what the record is (an Entra audit log, a risky-user record, an analytic
//! summary row), not just what it is not.

use crosswind_model::SourceFormat;

use crate::Rejection;
use crate::fields::Obj;

pub(crate) enum Class {
    /// One of the shapes we map.
    Format(SourceFormat),
    /// Recognisably something else (an Entra audit log, a risky-user record, an analytic summary
    /// row): rejected even when the caller names a format family.
    NotSignIn(Rejection),
    /// No known shape; with a format family hint it is mapped as that family anyway, so the
    /// rejection names the missing field.
    Unknown(Rejection),
}

/// Diagnostic-settings categories that hold sign-ins.
const SIGNIN_CATEGORIES: [&str; 5] = [
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    "ServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs",
    "ADFSSignInLogs",
];

/// Diagnostic-settings categories that hold risk detections.
const RISK_CATEGORIES: [&str; 2] = ["UserRiskEvents", "ServicePrincipalRiskEvents"];

/// Log Analytics tables that hold sign-ins.
const SIGNIN_TABLES: [&str; 4] = [
    "SigninLogs",
    "AADNonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs",
];

/// Log Analytics tables that hold risk detections.
const RISK_TABLES: [&str; 2] = ["AADUserRiskEvents", "AADServicePrincipalRiskEvents"];

/// Entra audit log categories: the diagnostic category `AuditLogs`, and the audit record's own
/// `category` that some exporters put in its place.
const AUDIT_CATEGORIES: [&str; 22] = [
    "AuditLogs",
    "AdministrativeUnit",
    "Agreement",
    "ApplicationManagement",
    "Authentication",
    "Authorization",
    "CertAuthority",
    "Contact",
    "Device",
    "DeviceConfiguration",
    "DirectoryManagement",
    "EntitlementManagement",
    "GroupManagement",
    "IdentityProtection",
    "KerberosDomain",
    "KeyManagement",
    "Label",
    "PermissionGrantPolicy",
    "Policy",
    "ResourceManagement",
    "RoleManagement",
    "UserManagement",
];

fn not_mapped(what: String) -> Class {
    Class::NotSignIn(Rejection::new(format!(
        "not a sign-in, risk detection or CloudTrail record: {what}"
    )))
}

/// What a diagnostic-settings record of a category we do not map holds.
fn diagnostic_category(c: &str) -> String {
    let what = match c {
        c if AUDIT_CATEGORIES.contains(&c) => "Entra audit log",
        "ProvisioningLogs" => "Entra provisioning log",
        "RiskyUsers" => "Identity Protection risky-user record (a user's risk, not a detection)",
        "RiskyServicePrincipals" => {
            "Identity Protection risky service principal (its risk, not a detection)"
        }
        "MicrosoftGraphActivityLogs" => "Microsoft Graph activity log",
        "NetworkAccessTrafficLogs" => "Global Secure Access traffic log",
        _ => "Azure Monitor diagnostic record",
    };
    format!("{what} (category {c})")
}

/// What a Log Analytics row of a table we do not map holds; `None` for tables we do not know.
fn log_analytics_table(t: &str) -> Option<String> {
    let what = match t {
        "AuditLogs" => "Entra audit log",
        "AADProvisioningLogs" => "Entra provisioning log",
        "AADRiskyUsers" => "Identity Protection risky-user record (a user's risk, not a detection)",
        "AADRiskyServicePrincipals" => {
            "Identity Protection risky service principal (its risk, not a detection)"
        }
        "MicrosoftGraphActivityLogs" => "Microsoft Graph activity log",
        _ => return None,
    };
    Some(format!("{what} (Log Analytics table {t})"))
}

pub(crate) fn classify(o: &Obj<'_>) -> Class {
    // Azure Monitor diagnostic-settings record: {time, category, operationName, properties{…}}.
    let has_props = o.get("properties").is_some_and(|p| p.kind() == "an object");
    if has_props {
        let category = o.str_ci("category");
        let operation = o.str_ci("operationName");
        let signin_category = category
            .as_deref()
            .is_some_and(|c| SIGNIN_CATEGORIES.contains(&c));
        if signin_category || operation.as_deref() == Some("Sign-in activity") {
            return Class::Format(SourceFormat::DiagnosticSignIn);
        }
        let risk_category = category
            .as_deref()
            .is_some_and(|c| RISK_CATEGORIES.contains(&c));
        if risk_category
            || operation
                .as_deref()
                .is_some_and(|op| op.eq_ignore_ascii_case("User Risk Detection"))
        {
            return Class::Format(SourceFormat::DiagnosticRiskDetection);
        }
        if let Some(c) = category {
            return not_mapped(diagnostic_category(&c));
        }
        if let Some(op) = operation {
            return not_mapped(format!("Azure Monitor diagnostic record (operation {op})"));
        }
    }

    // Log Analytics rows carry their table in `Type`.
    match o.str_of("Type").as_deref() {
        Some(t) if SIGNIN_TABLES.contains(&t) => {
            let is_row = ["ResultType", "UserPrincipalName", "Id", "UserId"]
                .iter()
                .any(|k| o.contains_key(k));
            return if is_row {
                Class::Format(SourceFormat::SigninLogsRow)
            } else {
                not_mapped(format!(
                    "{t} analytic summary row (no ResultType, UserPrincipalName or Id)"
                ))
            };
        }
        Some(t) if RISK_TABLES.contains(&t) => {
            let is_row = [
                "Id",
                "RiskEventType",
                "ActivityDateTime",
                "DetectedDateTime",
            ]
            .iter()
            .any(|k| o.contains_key(k));
            return if is_row {
                Class::Format(SourceFormat::UserRiskEventsRow)
            } else {
                not_mapped(format!(
                    "{t} analytic summary row (no Id, RiskEventType or ActivityDateTime)"
                ))
            };
        }
        Some("AWSCloudTrail") => return Class::Format(SourceFormat::SentinelCloudTrailRow),
        Some(t) => {
            if let Some(what) = log_analytics_table(t) {
                return not_mapped(what);
            }
        }
        None => {}
    }
    if o.contains_key("UserPrincipalName")
        && o.contains_key("ResultType")
        && (o.contains_key("CreatedDateTime") || o.contains_key("TimeGenerated"))
    {
        return Class::Format(SourceFormat::SigninLogsRow);
    }
    if (o.contains_key("RiskEventType") || o.contains_key("RiskType"))
        && (o.contains_key("ActivityDateTime") || o.contains_key("DetectedDateTime"))
    {
        return Class::Format(SourceFormat::UserRiskEventsRow);
    }
    if o.contains_key("AwsEventId") && o.contains_key("EventName") {
        return Class::Format(SourceFormat::SentinelCloudTrailRow);
    }

    // Graph signIn (camelCase, top level).
    if o.contains_key("createdDateTime")
        && ["userPrincipalName", "status", "appDisplayName"]
            .iter()
            .any(|k| o.contains_key(k))
    {
        return Class::Format(SourceFormat::GraphSignIn);
    }
    // Graph riskDetection / servicePrincipalRiskDetection.
    if (o.contains_key("riskEventType") || o.contains_key("riskType"))
        && [
            "activityDateTime",
            "detectedDateTime",
            "lastUpdatedDateTime",
            "detectionTimingType",
        ]
        .iter()
        .any(|k| o.contains_key(k))
    {
        return Class::Format(SourceFormat::GraphRiskDetection);
    }
    // Graph riskyUser / riskyUserHistoryItem: a user's aggregate risk, not a detection.
    if o.contains_key("riskLastUpdatedDateTime") {
        return not_mapped(
            "Identity Protection risky-user record (a user's risk, not a detection)".to_owned(),
        );
    }
    // Graph directoryAudit.
    if o.contains_key("activityDateTime") && o.contains_key("activityDisplayName") {
        return not_mapped("Entra directory audit".to_owned());
    }

    // CloudTrail.
    if ["eventVersion", "eventSource", "eventName"]
        .iter()
        .any(|k| o.contains_key(k))
    {
        if o.contains_key("eventTime") {
            return Class::Format(SourceFormat::CloudTrail);
        }
        if o.contains_key("@timestamp") {
            return Class::Format(SourceFormat::CloudTrailLogstash);
        }
        return Class::Unknown(Rejection::new(
            "cloudtrail record without eventTime or @timestamp",
        ));
    }

    let mut keys: Vec<&str> = o.keys().into_iter().take(4).collect();
    if o.len() > 4 {
        keys.push("…");
    }
    Class::Unknown(Rejection::new(format!(
        "not a sign-in, risk detection or CloudTrail record: unrecognised shape (keys {})",
        keys.join(", ")
    )))
}

/// The CloudTrail shape to map an unrecognised record as under `--format cloudtrail`.
pub(crate) fn cloudtrail_default(o: &Obj<'_>) -> SourceFormat {
    if o.contains_key("AwsEventId") || o.contains_key("EventName") {
        SourceFormat::SentinelCloudTrailRow
    } else if o.contains_key("@timestamp") && !o.contains_key("eventTime") {
        SourceFormat::CloudTrailLogstash
    } else {
        SourceFormat::CloudTrail
    }
}
