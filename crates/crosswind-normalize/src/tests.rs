//! Tests over the public sample records in `../shared/data` (never copied into the repository:
//! the goldens hold our normalised output only) and hand-written Graph records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{FormatHint, Normalized, Rejection, normalize};

mod container_tests;
mod fuzz_tests;
mod mapping_tests;
mod risk_detection_tests;

/// `../shared/data` beside the repository, or `$CROSSWIND_SHARED_DATA`.
pub(crate) fn shared_data() -> PathBuf {
    match std::env::var_os("CROSSWIND_SHARED_DATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

/// Removes the test-only wrappers: `{"_source":…,"event":<record>}` (the record's bytes are kept
/// exactly) and inline records carrying a `_source` key (re-serialised without it).
pub(crate) fn unwrap_line(line: &[u8]) -> Vec<u8> {
    #[derive(serde::Deserialize)]
    struct Wrapped<'a> {
        #[serde(rename = "_source")]
        _source: &'a serde_json::value::RawValue,
        #[serde(borrow)]
        event: &'a serde_json::value::RawValue,
    }
    if let Ok(w) = serde_json::from_slice::<Wrapped<'_>>(line) {
        return w.event.get().as_bytes().to_vec();
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(mut o)) if o.contains_key("_source") => {
            o.remove("_source");
            serde_json::to_vec(&Value::Object(o)).unwrap_or_default()
        }
        _ => line.to_vec(),
    }
}

/// Every record of one data file, unwrapped, with its line number.
pub(crate) fn records(rel: &str) -> Vec<(u64, Vec<u8>)> {
    let path = shared_data().join(rel);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i as u64 + 1, unwrap_line(l)))
        .collect()
}

pub(crate) fn norm(raw: &[u8]) -> Result<Normalized, Rejection> {
    normalize(raw, None::<FormatHint>)
}

/// The event as pretty JSON (what the goldens hold).
pub(crate) fn pretty(n: &Normalized) -> String {
    let mut s = serde_json::to_string_pretty(&n.event).unwrap_or_default();
    s.push('\n');
    s
}

fn ndjson_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            ndjson_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "ndjson") {
            out.push(p);
        }
    }
}

/// Per file: records normalised, records rejected. Rejections checked by hand: the Entra audit
/// rows (category AuditLogs, Policy, DirectoryManagement, ApplicationManagement), the lab's
/// analytic summary row, the honeybucket CSV summary rows, and in Panther's CloudTrail rule tests
/// the other products' logs (Okta, GCP, Zoom, enrichment-only rows), lower-cased-key variants,
/// and partial CloudTrail fragments with no event time or a placeholder one ("redacted", "...").
const EXPECTED_COUNTS: [(&str, usize, usize); 13] = [
    (
        "awsdocs-cloudtrail-user-guide/doc_example_events.ndjson",
        20,
        0,
    ),
    (
        "azure-sentinel/asim_aws_cloudtrail_authentication_consolelogin_subset.ndjson",
        13,
        0,
    ),
    (
        "azure-sentinel/training_lab_disabled_account_signin_summary.ndjson",
        0,
        1,
    ),
    (
        "azure-sentinel/training_lab_signin_adelev_signinlogs.ndjson",
        56,
        0,
    ),
    ("invictus-ir-aws_dataset/cloudtrail_records.ndjson", 2900, 0),
    (
        "microsoft-docs/azure_monitor_signinlogs_record_example.ndjson",
        1,
        0,
    ),
    ("msticpy/aad_logons_signinlogs.ndjson", 86, 0),
    (
        "otrf-security-datasets/aws_s3_honeybucket_logs.ndjson",
        0,
        301,
    ),
    (
        "otrf-security-datasets/ec2_proxy_s3_exfiltration_cloudtrail.ndjson",
        103,
        0,
    ),
    ("panther-analysis/aws_cloudtrail_rule_tests.ndjson", 446, 91),
    ("panther-analysis/azure_audit_rule_tests.ndjson", 26, 21),
    ("panther-analysis/test_scenarios_cloudtrail.ndjson", 27, 0),
    ("stratus-red-team/detonation_logs.ndjson", 310, 0),
];

/// Every `*.ndjson` under the shared data, unwrapped: accepted/rejected counts per file, and
/// the rejection reasons by kind.
#[test]
fn every_shared_file_counts() {
    let root = shared_data();
    let mut files = Vec::new();
    ndjson_files(&root, &mut files);
    files.sort();
    let mut got = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(f)
            .to_string_lossy()
            .replace('\\', "/");
        let (mut ok, mut rejected) = (0usize, 0usize);
        for (line, raw) in records(&rel) {
            match norm(&raw) {
                Ok(n) => {
                    ok += 1;
                    assert_eq!(n.record_id, n.event.metadata.uid, "{rel}:{line}");
                    assert!(n.event.time > 0, "{rel}:{line}");
                }
                Err(r) => {
                    rejected += 1;
                    // Group reasons by their kind (the part before any record-specific detail).
                    let kind = r.reason.split(" (").next().unwrap_or_default().to_owned();
                    *reasons
                        .entry(format!(
                            "{kind} [{}]",
                            rel.split('/').next().unwrap_or_default()
                        ))
                        .or_default() += 1;
                }
            }
        }
        got.push((rel, ok, rejected));
    }
    let want: Vec<(String, usize, usize)> = EXPECTED_COUNTS
        .iter()
        .map(|(f, a, r)| ((*f).to_owned(), *a, *r))
        .collect();
    assert_eq!(got, want, "reasons: {reasons:#?}");
    expect_test::expect![[r#"
        {
            "cloudtrail record without eventTime or @timestamp [panther-analysis]": 17,
            "invalid eventTime: \"...\" is not a timestamp [panther-analysis]": 1,
            "invalid eventTime: \"redacted\" is not a timestamp [panther-analysis]": 1,
            "not a sign-in, risk detection or CloudTrail record: Entra audit log [panther-analysis]": 21,
            "not a sign-in, risk detection or CloudTrail record: SigninLogs analytic summary row [azure-sentinel]": 1,
            "not a sign-in, risk detection or CloudTrail record: unrecognised shape [otrf-security-datasets]": 301,
            "not a sign-in, risk detection or CloudTrail record: unrecognised shape [panther-analysis]": 72,
        }
    "#]]
    .assert_eq(&format!("{reasons:#?}\n"));
}
