//! Azure Monitor diagnostic-settings sign-in record (Event Hub / storage account export):
//! `{time, category, resultType, tenantId, callerIpAddress, identity, properties{…signIn…}}`.

use crosswind_model::{Event, SourceFormat};
use serde_json::Value;

use crate::Rejection;
use crate::entra::{self, CAMEL, Input};
use crate::fields::{Obj, code, get_ci, owned, string_list, tenant_from_resource_id};
use crate::graph::{entra_time, status_of};

pub(crate) fn map(record: &Value, obj: &Obj) -> Result<Event, Rejection> {
    let props = match obj.get("properties") {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => return Err(Rejection::new("missing properties")),
        Some(other) => {
            return Err(Rejection::new(format!(
                "invalid properties: expected an object, found {}",
                crate::fields::kind_of(other)
            )));
        }
    };
    let time = match get_ci(obj, "time") {
        Some(t) if !t.is_null() => entra_time(Some(t), "time")?,
        _ => entra_time(props.get("createdDateTime"), "properties.createdDateTime")?,
    };

    // The sign-in's own status wins over the envelope's resultType (which Panther's hand-written
    // tests sometimes set to "Success"/"Failure").
    let (mut status_code, mut status_detail) = status_of(props.get("status"), "properties.status")?;
    if status_code.is_none() {
        status_code = code(get_ci(obj, "resultType"), "resultType")?;
    }
    if status_detail.is_none() {
        status_detail = owned(get_ci(obj, "resultDescription"), "resultDescription")?;
    }

    let mut tenant = owned(get_ci(obj, "tenantId"), "tenantId")?;
    if tenant.is_none() {
        tenant = owned(props.get("tenantId"), "properties.tenantId")?;
    }
    if tenant.is_none() {
        tenant = owned(props.get("resourceTenantId"), "properties.resourceTenantId")?;
    }
    if tenant.is_none() {
        tenant = owned(get_ci(obj, "resourceId"), "resourceId")?
            .as_deref()
            .and_then(tenant_from_resource_id)
            .map(str::to_owned);
    }

    let mut event_types = string_list(props.get("signInEventTypes"), "properties.signInEventTypes")?;
    if event_types.is_empty() {
        event_types.extend(owned(get_ci(obj, "category"), "category")?);
    }

    entra::build(Input {
        format: SourceFormat::DiagnosticSignIn,
        record,
        fields: props,
        keys: &CAMEL,
        time,
        status_code,
        status_detail,
        tenant,
        event_types,
        ip_fallback: owned(get_ci(obj, "callerIpAddress"), "callerIpAddress")?,
        name_fallback: owned(get_ci(obj, "identity"), "identity")?,
        country_fallback: match get_ci(obj, "location") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        },
    })
}
