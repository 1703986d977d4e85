//! Log Analytics / Sentinel `SigninLogs` row (and the AAD*SignInLogs sibling tables):
//! PascalCase columns, `dynamic` columns sometimes exported as JSON text, portal CSV exports with
//! `[UTC]` suffixed datetime headers.

use crosswind_model::{Event, SourceFormat};

use crate::Rejection;
use crate::entra::{self, Input, PASCAL};
use crate::fields::{J, Obj, code, owned, tenant_from_resource_id};
use crate::graph::{entra_time, status_of};

pub(crate) fn map(record: &[u8], obj: &Obj<'_>) -> Result<Event, Rejection> {
    let time = [
        "CreatedDateTime",
        "CreatedDateTime [UTC]",
        "TimeGenerated",
        "TimeGenerated [UTC]",
    ]
    .iter()
    .find_map(|k| obj.get(k).filter(|v| !v.is_null()).map(|v| (*k, v)));
    let time = match time {
        Some((k, v)) => entra_time(Some(v), k)?,
        None => return Err(Rejection::new("missing CreatedDateTime")),
    };

    // `Status` is a dynamic column; some exports name it `Status_dynamic`.
    let status = match obj.get("Status").filter(|v| !v.is_null()) {
        Some(v) => status_of(Some(v), "Status")?,
        None => status_of(obj.get("Status_dynamic"), "Status_dynamic")?,
    };
    let status_additional_details = status.additional;
    let (status_code, status_detail) = {
        let (s_code, s_detail) = (status.code, status.detail);
        let code = match code(obj.get("ResultType"), "ResultType")? {
            Some(c) => Some(c),
            None => s_code,
        };
        let detail = match owned(obj.get("ResultDescription"), "ResultDescription")? {
            Some(d) => Some(d),
            None => s_detail,
        };
        (code, detail)
    };

    // `TenantId` is the Log Analytics workspace, not the Entra tenant.
    let mut tenant = owned(obj.get("AADTenantId"), "AADTenantId")?;
    if tenant.is_none() {
        tenant = owned(obj.get("ResourceTenantId"), "ResourceTenantId")?;
    }
    if tenant.is_none() {
        tenant = owned(obj.get("ResourceId"), "ResourceId")?
            .as_deref()
            .and_then(tenant_from_resource_id)
            .map(str::to_owned);
    }

    let event_types = owned(obj.get("Category"), "Category")?
        .into_iter()
        .collect();

    entra::build(Input {
        format: SourceFormat::SigninLogsRow,
        record,
        fields: obj,
        keys: &PASCAL,
        time,
        status_code,
        status_detail,
        status_additional_details,
        tenant,
        event_types,
        ip_fallback: None,
        name_fallback: owned(obj.get("Identity"), "Identity")?,
        country_fallback: obj
            .get("Location")
            .and_then(J::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| s.into_owned()),
    })
}
