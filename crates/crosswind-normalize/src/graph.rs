//! Microsoft Graph `signIn` (v1.0 and beta), as `/auditLogs/signIns` returns it.

use crosswind_model::{Event, SourceFormat};

use crate::Rejection;
use crate::entra::{self, CAMEL, Input};
use crate::fields::{J, Obj, code, member, object, owned, string_list, tenant_from_resource_id};

pub(crate) fn map(record: &[u8], obj: &Obj<'_>) -> Result<Event, Rejection> {
    let time = entra_time(obj.get("createdDateTime"), "createdDateTime")?;
    let Status {
        code: status_code,
        detail: status_detail,
        additional: status_additional_details,
    } = status_of(obj.get("status"), "status")?;
    let tenant = match owned(obj.get("tenantId"), "tenantId")? {
        Some(t) => Some(t),
        None => owned(obj.get("resourceId"), "resourceId")?
            .as_deref()
            .and_then(tenant_from_resource_id)
            .map(str::to_owned),
    };
    entra::build(Input {
        format: SourceFormat::GraphSignIn,
        record,
        fields: obj,
        keys: &CAMEL,
        time,
        status_code,
        status_detail,
        status_additional_details,
        tenant,
        event_types: string_list(obj.get("signInEventTypes"), "signInEventTypes")?,
        ip_fallback: None,
        name_fallback: None,
        country_fallback: None,
    })
}

/// A required timestamp field, rejected with its name when missing or unparsable.
pub(crate) fn entra_time(v: Option<J<'_>>, field: &str) -> Result<i64, Rejection> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Err(Rejection::new(format!("missing {field}")));
    };
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

pub(crate) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A sign-in's `status`: the code as text, the failure reason, and the additional details.
#[derive(Default)]
pub(crate) struct Status {
    pub code: Option<String>,
    pub detail: Option<String>,
    pub additional: Option<String>,
}

/// `status{errorCode, failureReason, additionalDetails}` (an object, or a JSON string of one in
/// Log Analytics).
pub(crate) fn status_of(v: Option<J<'_>>, field: &str) -> Result<Status, Rejection> {
    let Some(status) = object(v, field)? else {
        return Ok(Status::default());
    };
    let code = code(
        member(&status, "errorCode"),
        format_args!("{field}.errorCode"),
    )?;
    let detail = owned(
        member(&status, "failureReason"),
        format_args!("{field}.failureReason"),
    )?;
    let additional = owned(
        member(&status, "additionalDetails"),
        format_args!("{field}.additionalDetails"),
    )?;
    Ok(Status {
        code,
        detail,
        additional,
    })
}
