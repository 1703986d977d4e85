//! Property tests that double as fuzz targets for the record reader and every normaliser:
//! generated documents read the same whatever the record limit, and arbitrary or mutated
//! input never panics. `PROPTEST_CASES=N` runs them longer (the default keeps CI quick).

use std::io::Write;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::container::{ContainerError, RawRecord};
use crate::{FormatFamily, FormatHint, normalize};
use crosswind_model::SourceFormat;

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn read(input: &[u8], max: usize) -> Vec<Result<RawRecord, ContainerError>> {
    super::container_tests::read_checked(input, max)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap_or_default();
    enc.finish().unwrap_or_default()
}

/// Every hint a record may be normalised with.
fn hints() -> Vec<Option<FormatHint>> {
    let mut hints = vec![None];
    for f in [
        FormatFamily::Auto,
        FormatFamily::Graph,
        FormatFamily::SigninLogs,
        FormatFamily::Diagnostic,
        FormatFamily::CloudTrail,
    ] {
        hints.push(Some(FormatHint::Family(f)));
    }
    hints.extend(
        SourceFormat::ALL
            .iter()
            .map(|f| Some(FormatHint::Exact(*f))),
    );
    hints
}

/// A record: an object with strings full of JSON's own punctuation.
fn record() -> impl Strategy<Value = String> {
    (
        "[a-z\"\\\\{}\\[\\],:\n é]{0,12}",
        any::<i32>(),
        prop::collection::vec("[\\]\\[{}\"a-z]{0,4}", 0..3),
    )
        .prop_map(|(s, n, list)| {
            json!({"eventID": s, "n": n, "list": list, "value": {"x": [1]}}).to_string()
        })
}

#[derive(Clone, Debug)]
enum Doc {
    Line(String),
    Trail(Vec<String>),
    Page(Vec<String>),
    Array(Vec<String>),
    Pretty(Vec<String>),
}

impl Doc {
    fn text(&self) -> String {
        match self {
            Doc::Line(r) => r.clone(),
            Doc::Trail(rs) => format!("{{\"Records\":[{}]}}", rs.join(",")),
            Doc::Page(rs) => format!(
                "{{\"@odata.context\":\"c\",\"value\":[{}],\"@odata.nextLink\":\"n\"}}",
                rs.join(",")
            ),
            Doc::Array(rs) => format!("[{}]", rs.join(", ")),
            Doc::Pretty(rs) => format!("{{\n  \"records\": [\n    {}\n  ]\n}}", rs.join(",\n    ")),
        }
    }

    fn records(&self) -> &[String] {
        match self {
            Doc::Line(r) => std::slice::from_ref(r),
            Doc::Trail(rs) | Doc::Page(rs) | Doc::Array(rs) | Doc::Pretty(rs) => rs,
        }
    }
}

fn doc() -> impl Strategy<Value = Doc> {
    let rs = || prop::collection::vec(record(), 0..6);
    prop_oneof![
        record().prop_map(Doc::Line),
        rs().prop_map(Doc::Trail),
        rs().prop_map(Doc::Page),
        rs().prop_map(Doc::Array),
        rs().prop_map(Doc::Pretty),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", " ", "\n", "\r\n", "\n\n\t"])
}

/// `position bytes` of each record and each error's text.
fn shown(items: &[Result<RawRecord, ContainerError>]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Ok(r) => format!("{} {}", r.position, r.as_str()),
            Err(e) => format!("err {e}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(config(256))]

    /// Back-to-back documents of every shape, with or without whitespace between them: every
    /// record comes out exactly, in order, and the same when the documents are over the limit
    /// and streamed record by record.
    #[test]
    fn documents_read_the_same_whatever_the_limit(
        docs in prop::collection::vec((doc(), separator()), 1..6),
        lead in separator(),
        slack in 0usize..40,
    ) {
        let mut input = lead.to_owned();
        for (d, sep) in &docs {
            // A pretty document must not follow another on the same line (it would then be
            // the broken end of an NDJSON line).
            if matches!(d, Doc::Pretty(_)) && !input.is_empty() && !input.ends_with('\n') {
                input.push('\n');
            }
            input.push_str(&d.text());
            input.push_str(sep);
        }
        let expected: Vec<&str> = docs.iter().flat_map(|(d, _)| d.records()).map(String::as_str).collect();
        let whole = read(input.as_bytes(), crate::DEFAULT_MAX_RECORD_BYTES);
        let got: Vec<&str> = whole.iter().flatten().map(RawRecord::as_str).collect();
        prop_assert_eq!(&got, &expected, "{}", input);
        prop_assert!(whole.iter().all(Result::is_ok), "{:?}", shown(&whole));
        let longest = expected.iter().map(|r| r.len()).max().unwrap_or(0);
        let streamed = read(input.as_bytes(), longest.max(2) + slack);
        prop_assert_eq!(shown(&streamed), shown(&whole), "{}", input);
        // Gzipped, the same.
        let gz = read(&gzip(input.as_bytes()), crate::DEFAULT_MAX_RECORD_BYTES);
        prop_assert_eq!(shown(&gz), shown(&whole));
    }

    /// Arbitrary bytes (biased towards JSON punctuation), plain or gzipped and cut anywhere:
    /// no panic, records are UTF-8 and within the limit, and every normaliser copes.
    #[test]
    fn arbitrary_input_is_safe(
        bytes in prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(b"{}[]\",:\\ \n\r\t0aeE-.tfnu".to_vec()),
                1 => any::<u8>(),
            ],
            0..400,
        ),
        max in 2usize..64,
        cut in any::<prop::sample::Index>(),
    ) {
        let gz = gzip(&bytes);
        let cut_gz = gz.get(..cut.index(gz.len() + 1)).unwrap_or_default().to_vec();
        for input in [&bytes, &cut_gz] {
            for limit in [max, crate::DEFAULT_MAX_RECORD_BYTES] {
                for item in read(input, limit) {
                    match item {
                        Ok(r) => {
                            prop_assert!(std::str::from_utf8(&r.bytes).is_ok());
                            prop_assert!(r.bytes.len() <= limit);
                            for hint in hints() {
                                let _ = normalize(&r.bytes, hint);
                            }
                        }
                        Err(e) => prop_assert!(e.raw_bytes().len() <= limit.max(crate::KEPT_BYTES) + 1 || limit > 64),
                    }
                }
            }
        }
    }
}

/// Real records from the shared data, one of each kind of file.
fn real_records() -> Vec<Value> {
    let files = [
        "invictus-ir-aws_dataset/cloudtrail_records.ndjson",
        "msticpy/aad_logons_signinlogs.ndjson",
        "microsoft-docs/azure_monitor_signinlogs_record_example.ndjson",
        "azure-sentinel/asim_aws_cloudtrail_authentication_consolelogin_subset.ndjson",
        "azure-sentinel/training_lab_signin_adelev_signinlogs.ndjson",
        "panther-analysis/aws_cloudtrail_rule_tests.ndjson",
        "panther-analysis/azure_audit_rule_tests.ndjson",
        "stratus-red-team/detonation_logs.ndjson",
        "awsdocs-cloudtrail-user-guide/doc_example_events.ndjson",
    ];
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read(super::shared_data().join(f)).unwrap_or_default();
        for line in text.split(|&b| b == b'\n').take(20) {
            if let Ok(v) = serde_json::from_slice::<Value>(&super::unwrap_line(line)) {
                out.push(v);
            }
        }
    }
    out
}

/// A JSON value of any type, odd ones favoured.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("9999-99-99T99:99:99Z")),
        Just(json!("2024-02-30T25:61:00.123456789+99:00")),
        Just(json!("")),
        Just(json!("\u{0}\u{202e}\u{1b}[2J")),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{"a": null}, 1, "x"])),
        Just(json!({"nested": {"deeper": [null]}})),
    ]
}

/// Replaces the value at a walk of `path` choices (or a whole-record key) with `new`.
fn mutate(record: &mut Value, path: &[prop::sample::Index], new: Value, remove: bool) {
    let mut at = record;
    for (depth, step) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        let next = match at {
            Value::Object(map) if !map.is_empty() => {
                let key = map
                    .keys()
                    .nth(step.index(map.len()))
                    .cloned()
                    .unwrap_or_default();
                if last || !matches!(map.get(&key), Some(Value::Object(_) | Value::Array(_))) {
                    if remove {
                        map.remove(&key);
                    } else {
                        map.insert(key, new);
                    }
                    return;
                }
                map.get_mut(&key)
            }
            Value::Array(items) if !items.is_empty() => {
                let i = step.index(items.len());
                if last {
                    if let Some(slot) = items.get_mut(i) {
                        *slot = new;
                    }
                    return;
                }
                items.get_mut(i)
            }
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Real records with one field replaced by a value of another type (or removed), or their
    /// text cut or bytes flipped: every normaliser rejects or maps them, never panics.
    #[test]
    fn mutated_real_records_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(
            (prop::collection::vec(any::<prop::sample::Index>(), 1..5), odd_value(), any::<bool>()),
            1..4,
        ),
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        thread_local! {
            static RECORDS: Vec<Value> = real_records();
        }
        let Some(mut record) = RECORDS.with(|r| r.get(pick.index(r.len().max(1))).cloned()) else {
            return Ok(());
        };
        for (path, new, remove) in mutations {
            mutate(&mut record, &path, new, remove);
        }
        let text = record.to_string().into_bytes();
        let mut cut_text = text.get(..cut.index(text.len() + 1)).unwrap_or_default().to_vec();
        if let Some(b) = cut_text.get_mut(flip.0.index(text.len() + 1)) {
            *b ^= flip.1;
        }
        for hint in hints() {
            let _ = normalize(&text, hint);
            let _ = normalize(&cut_text, hint);
        }
    }
}

#[test]
fn the_real_records_are_there() {
    // The mutation target starts from real records; without them it would test nothing.
    assert!(real_records().len() > 100);
}
