//! Hunts straight over stored events: console logins without MFA and IPs seen in both clouds.

use crosswind_model::{CLASS_AUTHENTICATION, CloudProvider};
use crosswind_store::correlate::cross_cloud_ips;
use crosswind_store::{EventQuery, Store, StoreError, Subset};
use serde_json::{Value, json};

use super::Range;
use crate::output::Rows;
use crate::timearg::format_time;

/// `console-no-mfa`: successful AWS console logins by IAM users and root without MFA
/// (`MFAUsed` not "yes" in any case); SSO/SAML sessions are excluded, their MFA is at the IdP.
pub(super) fn console_no_mfa(store: &Store, range: Range) -> anyhow::Result<Rows> {
    let query = EventQuery {
        since: range.since,
        until: range.until,
        provider: Some(CloudProvider::Aws),
        class_uid: Some(CLASS_AUTHENTICATION),
        success_only: true,
        subset: Some(Subset::AwsConsoleLogins),
    };
    let mut hits = Vec::new();
    store.for_each_event(&query, |stored| {
        let e = stored.event;
        let Some(user) = e.user.as_ref() else {
            return Ok::<_, StoreError>(true);
        };
        let kind = user.kind.as_deref().unwrap_or_default();
        let federated = user.session.as_ref().is_some_and(|s| s.is_federated)
            || e.aws
                .as_ref()
                .is_some_and(|a| a.saml_provider_arn.is_some());
        let mfa = e.aws.as_ref().and_then(|a| a.mfa_used.clone());
        let used = mfa
            .as_deref()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("yes"));
        if e.operation() == Some("ConsoleLogin")
            && matches!(kind, "IAMUser" | "Root")
            && !federated
            && !used
        {
            hits.push((
                e.time,
                user.clone(),
                e.cloud.account.uid.clone(),
                e.src_endpoint.ip.clone(),
                mfa,
                e.http_request.as_ref().and_then(|h| h.user_agent.clone()),
            ));
        }
        Ok(true)
    })?;
    hits.sort_by_key(|h| std::cmp::Reverse(h.0));
    let opt = |v: Option<String>| v.map_or(Value::Null, Value::String);
    let mut rows = Rows::new(vec![
        "time",
        "user",
        "type",
        "arn",
        "account",
        "src_ip",
        "mfa_used",
        "user_agent",
    ]);
    for (time, user, account, ip, mfa, ua) in hits {
        rows.push(vec![
            json!(format_time(time)),
            opt(user.name),
            opt(user.kind),
            opt(user.arn),
            opt(account),
            opt(ip),
            opt(mfa),
            opt(ua),
        ]);
    }
    Ok(rows)
}

/// `cross-cloud-ips`: source IPs seen in both Entra sign-ins and AWS calls.
pub(super) fn cross_cloud(store: &Store, range: Range) -> anyhow::Result<Rows> {
    let ips = cross_cloud_ips(
        store,
        range.since.unwrap_or(i64::MIN),
        range.until.unwrap_or(i64::MAX),
    )?;
    let mut rows = Rows::new(vec![
        "src_ip",
        "azure_events",
        "aws_events",
        "azure_users",
        "aws_users",
        "first_seen",
        "last_seen",
    ]);
    for ip in ips {
        rows.push(vec![
            json!(ip.ip),
            json!(ip.azure_events),
            json!(ip.aws_events),
            json!(ip.azure_users),
            json!(ip.aws_users),
            json!(format_time(ip.first_seen)),
            json!(format_time(ip.last_seen)),
        ]);
    }
    Ok(rows)
}
