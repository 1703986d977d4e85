//! Azure Monitor diagnostic-settings sign-in record (Event Hub / storage account export):
//! `{time, category, resultType, tenantId, callerIpAddress, identity, properties{…signIn…}}`.

use crosswind_model::{Event, SourceFormat};

use crate::Rejection;
use crate::entra::{self, CAMEL, Input};
use crate::fields::{J, Obj, code, owned, string_list, tenant_from_resource_id};
use crate::graph::{Status, entra_time, status_of};

pub(crate) fn map(record: &[u8], obj: &Obj<'_>) -> Result<Event, Rejection> {
    let props = &properties(obj)?;
    let time = match obj.get_ci("time") {
        Some(t) if !t.is_null() => entra_time(Some(t), "time")?,
        _ => entra_time(props.get("createdDateTime"), "properties.createdDateTime")?,
    };

    // The sign-in's own status wins over the envelope's resultType (which Panther's hand-written
    // tests sometimes set to "Success"/"Failure").
    let Status {
        code: mut status_code,
        detail: mut status_detail,
        additional: status_additional_details,
    } = status_of(props.get("status"), "properties.status")?;
    if status_code.is_none() {
        status_code = code(obj.get_ci("resultType"), "resultType")?;
    }
    if status_detail.is_none() {
        status_detail = owned(obj.get_ci("resultDescription"), "resultDescription")?;
    }

    let mut tenant = owned(obj.get_ci("tenantId"), "tenantId")?;
    if tenant.is_none() {
        tenant = owned(props.get("tenantId"), "properties.tenantId")?;
    }
    if tenant.is_none() {
        tenant = owned(props.get("resourceTenantId"), "properties.resourceTenantId")?;
    }
    if tenant.is_none() {
        tenant = owned(obj.get_ci("resourceId"), "resourceId")?
            .as_deref()
            .and_then(tenant_from_resource_id)
            .map(str::to_owned);
    }

    let mut event_types =
        string_list(props.get("signInEventTypes"), "properties.signInEventTypes")?;
    if event_types.is_empty() {
        event_types.extend(owned(obj.get_ci("category"), "category")?);
    }

    entra::build(Input {
        format: SourceFormat::DiagnosticSignIn,
        record,
        fields: props,
        keys: &CAMEL,
        time,
        status_code,
        status_detail,
        status_additional_details,
        tenant,
        event_types,
        ip_fallback: owned(obj.get_ci("callerIpAddress"), "callerIpAddress")?,
        name_fallback: owned(obj.get_ci("identity"), "identity")?,
        country_fallback: obj
            .get_ci("location")
            .and_then(J::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| s.into_owned()),
    })
}

/// A diagnostic record's `properties` object, split into its members.
pub(crate) fn properties<'a>(obj: &Obj<'a>) -> Result<Obj<'a>, Rejection> {
    match obj.get("properties") {
        Some(J::Raw(raw)) if raw.get().starts_with('{') => Obj::nested(raw)
            .ok()
            .flatten()
            .ok_or_else(|| Rejection::new("invalid properties: not a json object")),
        Some(p) if !p.is_null() => Err(Rejection::new(format!(
            "invalid properties: expected an object, found {}",
            p.kind()
        ))),
        _ => Err(Rejection::new("missing properties")),
    }
}
