//! Every public sample file in `../shared/data` imports through the real binary: per-file counts
//! of stored, duplicate and quarantined records are exact, and re-importing stores nothing new.

use crosswind_tests::*;
use serde_json::Value;

/// (file, read, stored, duplicates, quarantined). Quarantined: Entra audit logs (21), the CSV
/// summary rows (301), the analytic summary row (1), and Panther's non-CloudTrail or
/// time-less fragments (91). Duplicates: records that share an id inside one file — msticpy
/// has 45 distinct `Id`s in 86 rows, Panther's synthetic tests reuse `eventID`s (its scripted
/// root story uses one for all 27 records), the AWS doc examples repeat three.
const EXPECTED: &[(&str, u64, u64, u64, u64)] = &[
    (
        "awsdocs-cloudtrail-user-guide/doc_example_events.ndjson",
        20,
        17,
        3,
        0,
    ),
    (
        "azure-sentinel/asim_aws_cloudtrail_authentication_consolelogin_subset.ndjson",
        13,
        13,
        0,
        0,
    ),
    (
        "azure-sentinel/training_lab_disabled_account_signin_summary.ndjson",
        1,
        0,
        0,
        1,
    ),
    (
        "azure-sentinel/training_lab_signin_adelev_signinlogs.ndjson",
        56,
        56,
        0,
        0,
    ),
    (
        "invictus-ir-aws_dataset/cloudtrail_records.ndjson",
        2900,
        2900,
        0,
        0,
    ),
    (
        "microsoft-docs/azure_monitor_signinlogs_record_example.ndjson",
        1,
        1,
        0,
        0,
    ),
    ("msticpy/aad_logons_signinlogs.ndjson", 86, 45, 41, 0),
    (
        "otrf-security-datasets/aws_s3_honeybucket_logs.ndjson",
        301,
        0,
        0,
        301,
    ),
    (
        "otrf-security-datasets/ec2_proxy_s3_exfiltration_cloudtrail.ndjson",
        103,
        103,
        0,
        0,
    ),
    (
        "panther-analysis/aws_cloudtrail_rule_tests.ndjson",
        537,
        162,
        284,
        91,
    ),
    (
        "panther-analysis/azure_audit_rule_tests.ndjson",
        47,
        19,
        7,
        21,
    ),
    (
        "panther-analysis/test_scenarios_cloudtrail.ndjson",
        27,
        1,
        26,
        0,
    ),
    ("stratus-red-team/detonation_logs.ndjson", 310, 310, 0, 0),
];

fn import(store: &str, file: &str) -> Value {
    let out = crosswind(&["--store", store, "import", "--format", "json", file]);
    assert_eq!(out.status.code(), Some(0), "{file}: {}", stderr(&out));
    serde_json::from_str(stdout(&out).trim()).expect("json summary")
}

#[test]
fn every_shared_file_imports_with_exact_counts_and_reimports_nothing() {
    let files = shared_data_files();
    let listed: Vec<_> = EXPECTED.iter().map(|e| e.0.to_string()).collect();
    assert_eq!(files, listed, "a shared data file was added or removed");

    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for &(rel, ..) in EXPECTED {
        // Each file into its own store: counts do not depend on what other files hold.
        let store = dir.path().join(format!("{}.db", rel.replace('/', "__")));
        let store = store.to_str().unwrap();
        let path = unwrapped_copy(rel, dir.path());
        let first = import(store, path.to_str().unwrap());
        let counts =
            ["read", "stored", "duplicates", "quarantined"].map(|k| first[k].as_u64().unwrap());
        seen.push((rel, counts));
        let again = import(store, path.to_str().unwrap());
        assert_eq!(
            again["stored"], 0,
            "{rel}: re-import stored something: {again}"
        );
        assert_eq!(
            again["duplicates"].as_u64().unwrap(),
            counts[1] + counts[2],
            "{rel}: every stored record is a duplicate the second time"
        );
    }
    for ((rel, counts), &(_, read, stored, dups, quarantined)) in seen.iter().zip(EXPECTED) {
        assert_eq!(counts[0], read, "{rel}: read");
        assert_eq!(counts[3], quarantined, "{rel}: quarantined");
        assert_eq!(
            [counts[1], counts[2]],
            [stored, dups],
            "{rel}: stored, duplicates"
        );
        assert_eq!(
            counts[0],
            counts[1] + counts[2] + counts[3],
            "{rel}: every record accounted for"
        );
    }
}

/// The largest real file is enough to train the store's CloudTrail dictionaries (2,000 records):
/// the records after that are stored compressed, and every record still reads back byte for
/// byte, every event decodes.
#[test]
fn real_cloudtrail_is_stored_compressed_and_reads_back_exactly() {
    let rel = "invictus-ir-aws_dataset/cloudtrail_records.ndjson";
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("cw.db");
    let path = unwrapped_copy(rel, dir.path());
    let summary = import(store_path.to_str().unwrap(), path.to_str().unwrap());
    assert_eq!(summary["stored"], 2900, "{summary}");

    let store = crosswind_store::Store::open(&store_path).unwrap();
    let conn = store.connection();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM zstd_dicts WHERE format = 'cloudtrail'"),
        2,
        "one dictionary for raw records, one for events"
    );
    assert_eq!(
        count("SELECT count(*) FROM raw_records WHERE dict IS NOT NULL"),
        2900 - 1999
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE event_dict IS NOT NULL"),
        2900 - 1999
    );
    let (plain, packed): (f64, f64) = conn
        .query_row(
            "SELECT avg(CASE WHEN dict IS NULL THEN length(raw) END),
                    avg(CASE WHEN dict IS NOT NULL THEN length(raw) END) FROM raw_records",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    println!("raw record bytes stored: plain {plain:.0}, compressed {packed:.0} on average");

    let text = std::fs::read_to_string(&path).unwrap();
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let event_id = record["eventID"].as_str().unwrap();
        let id = store
            .event_id(crosswind_model::RecordSource::CloudTrail, event_id)
            .unwrap()
            .unwrap_or_else(|| panic!("{event_id} stored"));
        let raw = store.raw_record(id).unwrap().unwrap();
        assert_eq!(raw, line.as_bytes(), "{event_id} reads back as received");
    }
    let events = store
        .events(&crosswind_store::EventQuery::default())
        .unwrap();
    assert_eq!(events.len(), 2900);
}
