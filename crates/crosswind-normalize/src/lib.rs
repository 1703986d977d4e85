//! Raw records → crosswind's common [`Event`]: Microsoft Entra ID sign-ins (Graph v1.0/beta,
//! diagnostic-settings records, Log Analytics `SigninLogs` rows), Entra ID Protection risk
//! detections (Graph `riskDetection`, diagnostic `UserRiskEvents` records, Log Analytics
//! `AADUserRiskEvents` rows) and AWS CloudTrail (raw records, Logstash-shipped records,
//! Sentinel `AWSCloudTrail` rows).
//!
//! Two halves:
//! - [`container`]: [`RecordReader`] splits an input stream (NDJSON, a JSON array, a Graph page,
//!   a CloudTrail `{"Records":[…]}` file, a diagnostic `{"records":[…]}` envelope, gzip or not)
//!   into [`RawRecord`]s, one at a time, each with its exact bytes and position.
//! - [`normalize`]: one raw record → [`Normalized`] or a [`Rejection`] with a short reason.
//!
//! Invariants: this crate does no I/O of its own (it reads only the `BufRead` it is given), never
//! panics on any input and never drops a record silently: every record is either normalised or
//! rejected with a reason that names the field at fault.

#![forbid(unsafe_code)]

pub mod container;
mod detect;
mod fields;
mod time;

mod cloudtrail;
mod diagnostic;
mod entra;
mod graph;
mod riskdetection;
mod sentinel;
mod signinlogs;

#[cfg(test)]
mod tests;

use std::fmt;

use crosswind_model::{Event, SourceFormat};
use serde_json::Value;

use crate::fields::{Obj, Parsed};

pub use container::{
    ContainerError, DEFAULT_MAX_RECORD_BYTES, KEPT_BYTES, MaybeGz, NormalizedRecord, Position,
    RawRecord, RecordReader, open_maybe_gz,
};
pub use time::parse_timestamp_ms;

/// What `import --format` accepts: `auto` detects the shape of each record, the others restrict
/// detection to one family (and, when a record matches no shape at all, map it as that family so
/// the rejection names the missing field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FormatFamily {
    #[default]
    Auto,
    /// Microsoft Graph `signIn` and `riskDetection` (v1.0 or beta).
    Graph,
    /// Log Analytics / Sentinel Entra rows: `SigninLogs` (and its sibling tables) and
    /// `AADUserRiskEvents`.
    SigninLogs,
    /// Azure Monitor diagnostic-settings records: sign-in categories and `UserRiskEvents`.
    Diagnostic,
    /// CloudTrail: raw, Logstash-shipped or Sentinel `AWSCloudTrail` rows.
    CloudTrail,
}

impl FormatFamily {
    pub const ALL: [FormatFamily; 5] = [
        FormatFamily::Auto,
        FormatFamily::Graph,
        FormatFamily::SigninLogs,
        FormatFamily::Diagnostic,
        FormatFamily::CloudTrail,
    ];

    /// The `--format` name.
    pub fn as_str(self) -> &'static str {
        match self {
            FormatFamily::Auto => "auto",
            FormatFamily::Graph => "graph",
            FormatFamily::SigninLogs => "signinlogs",
            FormatFamily::Diagnostic => "diagnostic",
            FormatFamily::CloudTrail => "cloudtrail",
        }
    }

    pub fn parse(s: &str) -> Option<FormatFamily> {
        FormatFamily::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether `format` belongs to this family (`Auto` holds every format).
    pub fn contains(self, format: SourceFormat) -> bool {
        match self {
            FormatFamily::Auto => true,
            FormatFamily::Graph => matches!(
                format,
                SourceFormat::GraphSignIn | SourceFormat::GraphRiskDetection
            ),
            FormatFamily::SigninLogs => matches!(
                format,
                SourceFormat::SigninLogsRow | SourceFormat::UserRiskEventsRow
            ),
            FormatFamily::Diagnostic => matches!(
                format,
                SourceFormat::DiagnosticSignIn | SourceFormat::DiagnosticRiskDetection
            ),
            FormatFamily::CloudTrail => matches!(
                format,
                SourceFormat::CloudTrail
                    | SourceFormat::CloudTrailLogstash
                    | SourceFormat::SentinelCloudTrailRow
            ),
        }
    }
}

impl fmt::Display for FormatFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FormatFamily {
    type Err = Rejection;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FormatFamily::parse(s).ok_or_else(|| {
            Rejection::new(format!(
                "unknown format {s:?} (expected auto, graph, signinlogs, diagnostic or cloudtrail)"
            ))
        })
    }
}

/// How the caller constrains [`normalize`]: a family (as `import --format` gives) or one exact
/// shape (a collector knows what it fetched).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FormatHint {
    Family(FormatFamily),
    Exact(SourceFormat),
}

impl From<FormatFamily> for FormatHint {
    fn from(f: FormatFamily) -> Self {
        FormatHint::Family(f)
    }
}

impl From<SourceFormat> for FormatHint {
    fn from(f: SourceFormat) -> Self {
        FormatHint::Exact(f)
    }
}

/// A record mapped to the common schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    pub event: Event,
    /// The shape the record came in (also in `event.metadata.log_name`).
    pub format: SourceFormat,
    /// The source's own record id (Graph `id`, CloudTrail `eventID`, …) or `sha256:<hex>` of the
    /// record's canonical JSON; equals `event.metadata.uid`. Dedup key with
    /// `format.record_source()`.
    pub record_id: String,
}

/// Why a record could not be mapped: a short lowercase reason naming the field at fault, kept
/// with the raw record in quarantine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    pub reason: String,
}

impl Rejection {
    pub fn new(reason: impl Into<String>) -> Self {
        Rejection {
            reason: reason.into(),
        }
    }
}

/// Which shape `record` has, by its distinctive keys; `None` for anything that is not an Entra
/// sign-in, a risk detection or a CloudTrail record (Entra audit logs, risky-user records,
/// analytic summary rows, CSV exports, …).
pub fn detect(record: &Value) -> Option<SourceFormat> {
    detect_or_reason(record).ok()
}

/// Like [`detect`], but says why a record was not recognised.
pub fn detect_or_reason(record: &Value) -> Result<SourceFormat, Rejection> {
    let raw = serde_json::to_vec(record).map_err(|e| Rejection::new(e.to_string()))?;
    detect_raw(&raw)
}

/// [`detect_or_reason`] over a record's JSON text.
pub fn detect_raw(raw: &[u8]) -> Result<SourceFormat, Rejection> {
    let obj = parse_object(raw)?;
    match detect::classify(&obj) {
        detect::Class::Format(f) => Ok(f),
        detect::Class::NotSignIn(r) | detect::Class::Unknown(r) => Err(r),
    }
}

fn parse_object(raw: &[u8]) -> Result<Obj<'_>, Rejection> {
    match Obj::parse(raw).map_err(|e| fields::json_rejection(&e))? {
        Parsed::Object(o) => Ok(o),
        Parsed::Other(found) => Err(Rejection::new(format!("not a json object (found {found})"))),
    }
}

/// Parses and maps one raw record (its JSON text). `hint` `None` means auto-detection.
///
/// Only the record's top level (and a diagnostic record's `properties`) is split into members;
/// the members a mapping reads are parsed on demand, the rest are only validated.
pub fn normalize(raw: &[u8], hint: Option<FormatHint>) -> Result<Normalized, Rejection> {
    let obj = parse_object(raw)?;
    normalize_object(raw, &obj, hint)
}

/// [`normalize`] of a record already split into its members (`obj` is `raw` parsed).
pub(crate) fn normalize_object(
    raw: &[u8],
    obj: &Obj<'_>,
    hint: Option<FormatHint>,
) -> Result<Normalized, Rejection> {
    let format = resolve_format(obj, hint.unwrap_or(FormatHint::Family(FormatFamily::Auto)))?;
    let event = match format {
        SourceFormat::GraphSignIn => graph::map(raw, obj)?,
        SourceFormat::DiagnosticSignIn => diagnostic::map(raw, obj)?,
        SourceFormat::SigninLogsRow => signinlogs::map(raw, obj)?,
        SourceFormat::CloudTrail | SourceFormat::CloudTrailLogstash => {
            cloudtrail::map(raw, obj, format)?
        }
        SourceFormat::SentinelCloudTrailRow => sentinel::map(raw, obj)?,
        SourceFormat::GraphRiskDetection => riskdetection::map_graph(raw, obj)?,
        SourceFormat::DiagnosticRiskDetection => riskdetection::map_diagnostic(raw, obj)?,
        SourceFormat::UserRiskEventsRow => riskdetection::map_row(raw, obj)?,
    };
    let record_id = event.metadata.uid.clone();
    Ok(Normalized {
        event,
        format,
        record_id,
    })
}

/// Maps one already-parsed record (a convenience: it is serialised and read like [`normalize`]).
pub fn normalize_value(record: &Value, hint: Option<FormatHint>) -> Result<Normalized, Rejection> {
    let raw = serde_json::to_vec(record).map_err(|e| Rejection::new(e.to_string()))?;
    normalize(&raw, hint)
}

fn resolve_format(record: &Obj<'_>, hint: FormatHint) -> Result<SourceFormat, Rejection> {
    let family = match hint {
        FormatHint::Exact(f) => return Ok(f),
        FormatHint::Family(family) => family,
    };
    match detect::classify(record) {
        detect::Class::Format(f) if family.contains(f) => Ok(f),
        detect::Class::Format(f) => Err(Rejection::new(format!(
            "expected a {family} record, found {}",
            f.as_str()
        ))),
        detect::Class::NotSignIn(r) => Err(r),
        detect::Class::Unknown(r) => match family {
            FormatFamily::Auto => Err(r),
            FormatFamily::Graph => Ok(SourceFormat::GraphSignIn),
            FormatFamily::SigninLogs => Ok(SourceFormat::SigninLogsRow),
            FormatFamily::Diagnostic => Ok(SourceFormat::DiagnosticSignIn),
            FormatFamily::CloudTrail => Ok(detect::cloudtrail_default(record)),
        },
    }
}
