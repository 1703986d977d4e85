//! AWS CloudTrail records: raw (S3 trail files, LookupEvents `CloudTrailEvent`, EventBridge
//! `detail`) and Logstash-shipped (`@timestamp` instead of `eventTime`). The event builder here
//! is shared with the Sentinel `AWSCloudTrail` row mapping.

use crosswind_model::{
    ADMIN_GRANT_CALLS, Account, Actor, Api, AwsDetail, CLASS_API_ACTIVITY, CLASS_AUTHENTICATION,
    Cloud, CloudProvider, Event, HttpRequest, Metadata, SCHEMA_VERSION, STATUS_FAILURE,
    STATUS_SUCCESS, STATUS_UNKNOWN, Session, SourceFormat, SrcEndpoint, User,
};
use serde_json::Value;

use crate::Rejection;
use crate::fields::{J, Obj, flag, ip_or_domain, member, object, owned};
use crate::graph::truncate;

/// The caller, from `userIdentity` or the Sentinel `UserIdentity*`/`Session*` columns.
#[derive(Default)]
pub(crate) struct Identity {
    pub kind: Option<String>,
    pub principal_id: Option<String>,
    pub arn: Option<String>,
    pub account_id: Option<String>,
    pub access_key_id: Option<String>,
    pub user_name: Option<String>,
    pub invoked_by: Option<String>,
    pub mfa_authenticated: Option<bool>,
    pub issuer_arn: Option<String>,
    pub issuer_name: Option<String>,
    /// A `sessionContext` was present.
    pub has_session: bool,
}

/// One CloudTrail event's facts, whichever shape they came in.
pub(crate) struct Input<'a> {
    pub format: SourceFormat,
    pub record: &'a [u8],
    pub time: i64,
    pub event_id: Option<String>,
    pub event_name: String,
    pub event_source: Option<String>,
    pub region: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub event_type: Option<String>,
    pub event_version: Option<String>,
    pub read_only: Option<bool>,
    pub recipient_account: Option<String>,
    pub identity: Option<Identity>,
    /// `responseElements.ConsoleLogin`.
    pub console_login: Option<String>,
    /// `additionalEventData.MFAUsed` / `LoginTo` / `SamlProviderArn`.
    pub mfa_used: Option<String>,
    pub login_to: Option<String>,
    pub saml_provider_arn: Option<String>,
    /// `sessionCredentialFromConsole`.
    pub from_console: Option<bool>,
    /// `requestParameters` grant admin (only judged for the calls [`grants_admin`] reads).
    pub grants_admin: Option<bool>,
}

/// Whether a grant call's `requestParameters` give administrator rights: the
/// AdministratorAccess managed policy, an inline policy document whose statement allows action
/// `*` (the document is URL-encoded JSON text in CloudTrail), or a group whose name says admin.
/// `None` for other calls.
pub(crate) fn grants_admin(event_name: &str, params: Option<&Value>) -> Option<bool> {
    if !ADMIN_GRANT_CALLS.contains(&event_name) {
        return None;
    }
    let text = |k: &str| params.and_then(|p| p.get(k)).and_then(Value::as_str);
    let admin = match event_name {
        "AttachUserPolicy" => text("policyArn").is_some_and(|a| {
            a.rsplit('/')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case("AdministratorAccess"))
        }),
        "PutUserPolicy" => text("policyDocument").is_some_and(policy_allows_everything),
        _ => text("groupName").is_some_and(|g| g.to_ascii_lowercase().contains("admin")),
    };
    Some(admin)
}

/// A policy document (possibly URL-encoded) with an Allow statement whose Action is `*` (or a
/// list holding `*`).
fn policy_allows_everything(doc: &str) -> bool {
    let decoded = percent_decode(doc);
    let Ok(v) = serde_json::from_str::<Value>(&decoded) else {
        // Not JSON: fall back to the literal text.
        let flat: String = decoded.chars().filter(|c| !c.is_whitespace()).collect();
        return flat.contains("\"Action\":\"*\"");
    };
    let statements = match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s) => vec![s.clone()],
        None => vec![],
    };
    statements.iter().any(|st| {
        let allow = st
            .get("Effect")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("allow"));
        let star = match st.get("Action") {
            Some(Value::String(a)) => a == "*",
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some("*")),
            _ => false,
        };
        allow && star
    })
}

/// `%XX` decoding (CloudTrail records policy documents URL-encoded); invalid escapes are kept.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn map(record: &[u8], obj: &Obj<'_>, format: SourceFormat) -> Result<Event, Rejection> {
    let present = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let time = match (present("eventTime"), present("@timestamp")) {
        (Some(t), _) => time_field(t, "eventTime")?,
        (None, Some(t)) => time_field(t, "@timestamp")?,
        _ => return Err(Rejection::new("missing eventTime")),
    };
    let event_name = owned(obj.get("eventName"), "eventName")?
        .ok_or_else(|| Rejection::new("missing eventName"))?;
    let identity = match object(obj.get("userIdentity"), "userIdentity")? {
        Some(ui) => Some(identity_of(&ui)?),
        None => None,
    };
    // Only console logins read the response (other calls' responses can be large).
    let response = if event_name == "ConsoleLogin" {
        object(obj.get("responseElements"), "responseElements")?
    } else {
        None
    };
    let extra = object(obj.get("additionalEventData"), "additionalEventData")?;
    let params = if ADMIN_GRANT_CALLS.contains(&event_name.as_str()) {
        object(obj.get("requestParameters"), "requestParameters")?
    } else {
        None
    };
    let grants_admin = grants_admin(&event_name, params.as_deref());
    let s = |key: &str| owned(obj.get(key), key);
    build(Input {
        format,
        record,
        time,
        event_id: s("eventID")?,
        event_name,
        event_source: s("eventSource")?,
        region: s("awsRegion")?,
        source_ip: s("sourceIPAddress")?,
        user_agent: s("userAgent")?,
        request_id: s("requestID")?,
        error_code: s("errorCode")?,
        error_message: s("errorMessage")?,
        event_type: s("eventType")?,
        event_version: s("eventVersion")?,
        read_only: flag(obj.get("readOnly"), "readOnly")?,
        recipient_account: s("recipientAccountId")?,
        identity,
        console_login: match response.as_deref() {
            Some(r) => owned(member(r, "ConsoleLogin"), "responseElements.ConsoleLogin")?,
            None => None,
        },
        mfa_used: sub(extra.as_deref(), "MFAUsed")?,
        login_to: sub(extra.as_deref(), "LoginTo")?,
        saml_provider_arn: sub(extra.as_deref(), "SamlProviderArn")?,
        from_console: flag(
            obj.get("sessionCredentialFromConsole"),
            "sessionCredentialFromConsole",
        )?,
        grants_admin,
    })
}

/// An `additionalEventData` member.
pub(crate) fn sub(extra: Option<&Value>, key: &str) -> Result<Option<String>, Rejection> {
    match extra {
        Some(e) => owned(member(e, key), format_args!("additionalEventData.{key}")),
        None => Ok(None),
    }
}

pub(crate) fn time_field(v: J<'_>, field: &str) -> Result<i64, Rejection> {
    match v.as_str() {
        Some(s) if s.is_empty() => Err(Rejection::new(format!("missing {field}"))),
        Some(s) => crate::time::parse_timestamp_ms(&s).ok_or_else(|| {
            Rejection::new(format!(
                "invalid {field}: {:?} is not a timestamp",
                truncate(&s)
            ))
        }),
        None => Err(Rejection::new(format!(
            "invalid {field}: expected a timestamp string, found {}",
            v.kind()
        ))),
    }
}

fn identity_of(ui: &Value) -> Result<Identity, Rejection> {
    let s = |key: &str| owned(member(ui, key), format_args!("userIdentity.{key}"));
    let mut id = Identity {
        kind: s("type")?,
        principal_id: s("principalId")?,
        arn: s("arn")?,
        account_id: s("accountId")?,
        access_key_id: s("accessKeyId")?,
        user_name: s("userName")?,
        invoked_by: s("invokedBy")?,
        ..Identity::default()
    };
    if let Some(ctx) = object(member(ui, "sessionContext"), "userIdentity.sessionContext")? {
        id.has_session = true;
        if let Some(attrs) = ctx.get("attributes") {
            id.mfa_authenticated = flag(
                member(attrs, "mfaAuthenticated"),
                "userIdentity.sessionContext.attributes.mfaAuthenticated",
            )?;
        }
        if let Some(issuer) = ctx.get("sessionIssuer") {
            id.issuer_arn = owned(
                member(issuer, "arn"),
                "userIdentity.sessionContext.sessionIssuer.arn",
            )?;
            id.issuer_name = owned(
                member(issuer, "userName"),
                "userIdentity.sessionContext.sessionIssuer.userName",
            )?;
        }
    }
    Ok(id)
}

/// `arn:aws:sts::acct:assumed-role/ROLE/SESSION` → (ROLE, SESSION).
fn assumed_role_parts(arn: &str) -> Option<(&str, &str)> {
    let (_, rest) = arn.split_once(":assumed-role/")?;
    let (role, session) = rest.split_once('/')?;
    Some((role, session.rsplit('/').next().unwrap_or(session)))
}

/// `arn:aws:sts::acct:federated-user/NAME` → NAME.
fn federated_user_name(arn: &str) -> Option<&str> {
    arn.split_once(":federated-user/").map(|(_, n)| n)
}

fn build_user(id: Identity, saml_provider_arn: Option<&str>) -> (User, Option<String>) {
    let kind = id.kind.as_deref();
    let role_parts = id.arn.as_deref().and_then(assumed_role_parts);
    let after_colon = |p: &Option<String>| {
        p.as_deref()
            .and_then(|p| p.split_once(':'))
            .map(|(_, s)| s.to_owned())
            .filter(|s| !s.is_empty())
    };
    let name = id
        .user_name
        .clone()
        .or_else(|| (kind == Some("Root")).then(|| "root".to_owned()))
        .or_else(|| role_parts.map(|(_, session)| session.to_owned()))
        .or_else(|| {
            id.arn
                .as_deref()
                .and_then(federated_user_name)
                .map(str::to_owned)
        })
        .or_else(|| match kind {
            Some("AssumedRole" | "FederatedUser") => after_colon(&id.principal_id),
            _ => None,
        })
        .or_else(|| id.invoked_by.clone());

    let issuer_name = id
        .issuer_name
        .clone()
        .or_else(|| role_parts.map(|(role, _)| role.to_owned()));
    let is_federated = issuer_name
        .as_deref()
        .is_some_and(|r| r.starts_with("AWSReservedSSO_"))
        || id
            .issuer_arn
            .as_deref()
            .is_some_and(|a| a.contains("/aws-reserved/sso.amazonaws.com/"))
        || saml_provider_arn.is_some()
        || kind == Some("SAMLUser");
    let wants_session = id.has_session
        || is_federated
        || matches!(
            kind,
            Some("AssumedRole" | "FederatedUser" | "WebIdentityUser")
        );
    let session = wants_session.then_some(Session {
        issuer_arn: id.issuer_arn,
        issuer_name,
        mfa_authenticated: id.mfa_authenticated,
        is_federated,
    });
    let user = User {
        name,
        uid: id.principal_id,
        kind: id.kind,
        full_name: None,
        arn: id.arn,
        credential_uid: id.access_key_id,
        account_uid: id.account_id,
        session,
    };
    (user, id.invoked_by)
}

fn yes_no(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("yes") || s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("no") || s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn build(input: Input<'_>) -> Result<Event, Rejection> {
    let is_console_login = input.event_name == "ConsoleLogin";
    let (status_id, status_code) = if is_console_login {
        match input.console_login.as_deref() {
            Some(c) if c.eq_ignore_ascii_case("success") => (STATUS_SUCCESS, Some(c.to_owned())),
            Some(c) => (STATUS_FAILURE, Some(c.to_owned())),
            None if input.error_code.is_some() || input.error_message.is_some() => (
                STATUS_FAILURE,
                Some(
                    input
                        .error_code
                        .clone()
                        .unwrap_or_else(|| "Failure".to_owned()),
                ),
            ),
            None => (STATUS_UNKNOWN, None),
        }
    } else {
        match &input.error_code {
            Some(c) => (STATUS_FAILURE, Some(c.clone())),
            None => (STATUS_SUCCESS, None),
        }
    };

    let mfa_authenticated = input.identity.as_ref().and_then(|i| i.mfa_authenticated);
    let is_mfa = if is_console_login {
        input
            .mfa_used
            .as_deref()
            .and_then(yes_no)
            .or(mfa_authenticated)
    } else {
        mfa_authenticated
    };

    let (user, invoked_by, identity_account) = match input.identity {
        Some(id) => {
            let account = id.account_id.clone();
            let (user, invoked_by) = build_user(id, input.saml_provider_arn.as_deref());
            (Some(user), invoked_by, account)
        }
        None => (None, None, None),
    };
    let (user, actor) = if is_console_login {
        (user, None)
    } else {
        (None, user.map(|user| Actor { user, invoked_by }))
    };

    let (ip, domain) = ip_or_domain(input.source_ip);
    let uid = match input.event_id {
        Some(id) => id,
        None => crate::fields::content_id(input.record),
    };

    Ok(Event {
        schema_version: SCHEMA_VERSION,
        class_uid: if is_console_login {
            CLASS_AUTHENTICATION
        } else {
            CLASS_API_ACTIVITY
        },
        time: input.time,
        status_id,
        status_code,
        status_detail: input.error_message,
        metadata: Metadata {
            uid,
            product: "AWS CloudTrail".to_owned(),
            log_name: input.format,
            correlation_uid: input.request_id.clone(),
            event_types: input.event_type.clone().into_iter().collect(),
        },
        cloud: Cloud {
            provider: CloudProvider::Aws,
            account: Account {
                uid: input.recipient_account.or(identity_account),
            },
            region: input.region,
        },
        src_endpoint: SrcEndpoint {
            ip,
            domain,
            location: None,
            autonomous_system_number: None,
        },
        user,
        actor,
        api: Some(Api {
            operation: input.event_name,
            service: input.event_source,
            request_uid: input.request_id,
        }),
        service: None,
        http_request: input.user_agent.map(|ua| HttpRequest {
            user_agent: Some(ua),
        }),
        is_mfa,
        finding_info: None,
        entra: None,
        aws: Some(AwsDetail {
            event_type: input.event_type,
            read_only: input.read_only,
            mfa_used: input.mfa_used,
            login_to: input.login_to,
            saml_provider_arn: input.saml_provider_arn,
            console_login: input.console_login,
            event_version: input.event_version,
            session_credential_from_console: input.from_console,
            grants_admin: input.grants_admin,
        }),
    })
}

#[cfg(test)]
mod grant_tests {
    use super::*;

    #[test]
    fn grants_admin_reads_the_request_parameters() {
        let p = grants_admin_of;
        fn grants_admin_of(v: Value) -> (Option<bool>, Option<bool>, Option<bool>) {
            (
                grants_admin("AttachUserPolicy", Some(&v)),
                grants_admin("PutUserPolicy", Some(&v)),
                grants_admin("AddUserToGroup", Some(&v)),
            )
        }
        let attach = p(serde_json::json!({
            "userName": "backdoor",
            "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"
        }));
        assert_eq!(attach.0, Some(true));
        let read_only = p(serde_json::json!({
            "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"
        }));
        assert_eq!(read_only.0, Some(false));
        // CloudTrail records inline policy documents URL-encoded.
        let doc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
        assert_eq!(p(serde_json::json!({"policyDocument": doc})).1, Some(true));
        let narrow = r#"{"Statement":{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"*"}}"#;
        assert_eq!(
            p(serde_json::json!({"policyDocument": narrow})).1,
            Some(false)
        );
        let deny = r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
        assert_eq!(
            p(serde_json::json!({"policyDocument": deny})).1,
            Some(false)
        );
        assert_eq!(p(serde_json::json!({"groupName": "Admins"})).2, Some(true));
        assert_eq!(
            p(serde_json::json!({"groupName": "developers"})).2,
            Some(false)
        );
        assert_eq!(grants_admin("CreateAccessKey", None), None);
        assert_eq!(grants_admin("AttachUserPolicy", None), Some(false));
    }
}
