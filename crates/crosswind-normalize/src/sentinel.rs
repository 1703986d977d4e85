//! Log Analytics / Sentinel `AWSCloudTrail` row: PascalCase columns, `RequestParameters`,
//! `ResponseElements` and `AdditionalEventData` as JSON text.

use crosswind_model::{ADMIN_GRANT_CALLS, Event, SourceFormat};

use crate::Rejection;
use crate::cloudtrail::{self, Identity, Input, sub, time_field};
use crate::fields::{Obj, flag, member, object, owned};

pub(crate) fn map(record: &[u8], obj: &Obj<'_>) -> Result<Event, Rejection> {
    let s = |key: &str| owned(obj.get(key), key);
    let time = match obj.get("TimeGenerated") {
        Some(t) if !t.is_null() => time_field(t, "TimeGenerated")?,
        _ => return Err(Rejection::new("missing TimeGenerated")),
    };
    let event_name = s("EventName")?.ok_or_else(|| Rejection::new("missing EventName"))?;

    let mut identity = Identity {
        kind: s("UserIdentityType")?,
        principal_id: s("UserIdentityPrincipalid")?,
        arn: s("UserIdentityArn")?,
        account_id: s("UserIdentityAccountId")?,
        access_key_id: s("UserIdentityAccessKeyId")?,
        user_name: s("UserIdentityUserName")?,
        invoked_by: s("UserIdentityInvokedBy")?,
        mfa_authenticated: flag(
            obj.get("SessionMfaAuthenticated"),
            "SessionMfaAuthenticated",
        )?,
        issuer_arn: s("SessionIssuerArn")?,
        issuer_name: s("SessionIssuerUserName")?,
        has_session: false,
    };
    identity.has_session = identity.mfa_authenticated.is_some()
        || identity.issuer_arn.is_some()
        || identity.issuer_name.is_some()
        || s("SessionCreationDate")?.is_some();
    let has_identity = identity.has_session
        || [
            &identity.kind,
            &identity.principal_id,
            &identity.arn,
            &identity.account_id,
            &identity.user_name,
            &identity.invoked_by,
        ]
        .iter()
        .any(|f| f.is_some());

    let response = object(obj.get("ResponseElements"), "ResponseElements")?;
    let extra = object(obj.get("AdditionalEventData"), "AdditionalEventData")?;
    let params = if ADMIN_GRANT_CALLS.contains(&event_name.as_str()) {
        object(obj.get("RequestParameters"), "RequestParameters")?
    } else {
        None
    };
    let grants_admin = cloudtrail::grants_admin(&event_name, params.as_deref());
    cloudtrail::build(Input {
        format: SourceFormat::SentinelCloudTrailRow,
        record,
        time,
        event_id: s("AwsEventId")?,
        event_name,
        event_source: s("EventSource")?,
        region: s("AWSRegion")?,
        source_ip: s("SourceIpAddress")?,
        user_agent: s("UserAgent")?,
        request_id: s("AwsRequestId")?,
        error_code: s("ErrorCode")?,
        error_message: s("ErrorMessage")?,
        event_type: s("EventTypeName")?,
        event_version: s("EventVersion")?,
        read_only: flag(obj.get("ReadOnly"), "ReadOnly")?,
        recipient_account: s("RecipientAccountId")?,
        identity: has_identity.then_some(identity),
        console_login: match response.as_deref() {
            Some(r) => owned(member(r, "ConsoleLogin"), "ResponseElements.ConsoleLogin")?,
            None => None,
        },
        mfa_used: sub(extra.as_deref(), "MFAUsed")?,
        login_to: sub(extra.as_deref(), "LoginTo")?,
        saml_provider_arn: sub(extra.as_deref(), "SamlProviderArn")?,
        from_console: flag(
            obj.get("SessionCredentialFromConsole"),
            "SessionCredentialFromConsole",
        )?,
        grants_admin,
    })
}
