//! Hunt marks: facts about an event that hunts filter on, written with the event (the `marks`
//! bit set, migration 0007) so a selective hunt reads its few candidates through a partial index
//! instead of decoding every event in its window.
//!
//! A mark is a *superset* of what a hunt selects and holds no tunable policy (no list of risky
//! event types, no threshold): the hunt still checks every candidate itself, so a stale mark can
//! cost time but never a row. Rows written before marks existed have `marks IS NULL` and are
//! read as candidates of every mark.

use crosswind_model::{CLASS_AUTHENTICATION, CloudProvider, EntraDetail, Event};

/// The schema version that added `events.marks` and the subset indexes.
pub(crate) const SCHEMA_VERSION: usize = 7;

/// A successful Entra sign-in with any Identity Protection risk (high/medium level, an at-risk
/// state, any risk event type) or a single-factor sign-in whose home tenant differs from the
/// resource tenant: the candidates of `hunt risky-signins`.
pub const ENTRA_RISK_MARK: i64 = 1;

/// Which subset of events a query reads (see [`crate::EventQuery::subset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subset {
    /// Events marked [`ENTRA_RISK_MARK`] (and unmarked old rows).
    EntraRisk,
    /// AWS `ConsoleLogin` events (a partial index on the plain columns).
    AwsConsoleLogins,
    /// Identity Protection risk detections, every stored state (the partial index on their
    /// record source): a few per thousand events, where a scan of the window reads them all.
    RiskDetections,
}

/// The marks of one event (0 when it meets none).
pub fn marks_of(event: &Event) -> i64 {
    let mut marks = 0;
    if event.cloud.provider == CloudProvider::Azure
        && event.class_uid == CLASS_AUTHENTICATION
        && event.is_success()
        && event
            .entra
            .as_ref()
            .is_some_and(|e| entra_risk(e, event.cloud.account.uid.as_deref()))
    {
        marks |= ENTRA_RISK_MARK;
    }
    marks
}

fn nonblank(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

fn entra_risk(entra: &EntraDetail, tenant: Option<&str>) -> bool {
    let is = |v: &Option<String>, any: &[&str]| {
        v.as_deref()
            .is_some_and(|v| any.iter().any(|a| v.trim().eq_ignore_ascii_case(a)))
    };
    let risk = is(&entra.risk_level_during_signin, &["high", "medium"])
        || is(&entra.risk_state, &["atRisk", "confirmedCompromised"])
        || entra.risk_event_types.iter().any(|t| !t.trim().is_empty());
    // Cross-tenant single factor: the resource tenant is the record's, else the tenant the
    // sign-in was collected from.
    let cross_tenant = is(
        &entra.authentication_requirement,
        &["singleFactorAuthentication"],
    ) && match (
        nonblank(entra.home_tenant_id.as_deref()),
        nonblank(entra.resource_tenant_id.as_deref()).or(nonblank(tenant)),
    ) {
        (Some(home), Some(resource)) => !home.eq_ignore_ascii_case(resource),
        _ => false,
    };
    risk || cross_tenant
}

#[cfg(test)]
mod tests;
