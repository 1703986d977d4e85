//! Which shape a record has, by its distinctive keys, and why a record is not one we map.

use crosswind_model::SourceFormat;

use crate::Rejection;
use crate::fields::Obj;

pub(crate) enum Class {
    /// One of the shapes we map.
    Format(SourceFormat),
    /// Recognisably something else (an Entra audit log, an analytic summary row): rejected even
    /// when the caller names a format family.
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

/// Log Analytics tables that hold sign-ins.
const SIGNIN_TABLES: [&str; 4] = [
    "SigninLogs",
    "AADNonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs",
];

fn not_sign_in(what: String) -> Class {
    Class::NotSignIn(Rejection::new(format!(
        "not a sign-in or CloudTrail record: {what}"
    )))
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
        if let Some(c) = category {
            return not_sign_in(format!("Entra audit log (category {c})"));
        }
        if let Some(op) = operation {
            return not_sign_in(format!("Entra audit log (operation {op})"));
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
                not_sign_in(format!(
                    "{t} analytic summary row (no ResultType, UserPrincipalName or Id)"
                ))
            };
        }
        Some("AWSCloudTrail") => return Class::Format(SourceFormat::SentinelCloudTrailRow),
        Some(t @ ("AuditLogs" | "AADProvisioningLogs" | "AADRiskyUsers" | "AADUserRiskEvents")) => {
            return not_sign_in(format!("Entra log analytics table {t}"));
        }
        _ => {}
    }
    if o.contains_key("UserPrincipalName")
        && o.contains_key("ResultType")
        && (o.contains_key("CreatedDateTime") || o.contains_key("TimeGenerated"))
    {
        return Class::Format(SourceFormat::SigninLogsRow);
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
    // Graph directoryAudit.
    if o.contains_key("activityDateTime") && o.contains_key("activityDisplayName") {
        return not_sign_in("Entra directory audit".to_owned());
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
        "not a sign-in or CloudTrail record: unrecognised shape (keys {})",
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
