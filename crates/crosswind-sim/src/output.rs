//! Writes a [`Dataset`] as the files the real sources produce: Graph `signIns` pages (newest
//! first, `@odata.nextLink` on all but the last), Graph `riskDetections` pages (every state of
//! every detection, newest update first: what a collector polling all along would have read),
//! CloudTrail log files
//! (`AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/…json.gz`, 5-minute files, ≤ 500 records),
//! plus `truth.json`, `identities.toml` and `correlate.toml`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Dataset;
use crate::rng::Rng;
use crate::time::{MIN, compact_minute, date_path, parse_iso};

/// Graph's maximum (and default) page size.
pub const GRAPH_PAGE_SIZE: usize = 1000;
/// Graph's largest `$top` for `identityProtection/riskDetections`.
pub const RISK_DETECTION_PAGE_SIZE: usize = 500;
/// Records per CloudTrail file at most.
pub const TRAIL_FILE_RECORDS: usize = 500;
const TRAIL_FILE_SPAN: i64 = 5 * MIN;

/// What [`write_dataset`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub signins: usize,
    pub signin_pages: usize,
    pub late_signins: usize,
    /// Risk detection states written, and their pages (`entra/riskdetections-NNNN.json`).
    pub risk_detections: usize,
    pub risk_detection_pages: usize,
    pub cloudtrail_records: usize,
    pub cloudtrail_files: usize,
    /// Every file written, relative to the output directory, in writing order.
    pub files: Vec<PathBuf>,
}

fn io_err(e: serde_json::Error) -> io::Error {
    io::Error::other(format!("cannot serialise record: {e}"))
}

fn write_json(path: &Path, v: &impl Serialize, pretty: bool) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    if pretty {
        serde_json::to_writer_pretty(&mut w, v).map_err(io_err)?;
    } else {
        serde_json::to_writer(&mut w, v).map_err(io_err)?;
    }
    w.write_all(b"\n")?;
    w.flush()
}

/// Writes `ds` under `out_dir` (created if missing). Deterministic: same dataset, same bytes.
pub fn write_dataset(ds: &Dataset, out_dir: &Path) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut rng = Rng::derive(ds.truth.seed, "files");
    let entra = out_dir.join("entra");
    fs::create_dir_all(&entra)?;

    // Graph pages, newest first.
    let newest_first: Vec<&Value> = ds.signins.iter().rev().collect();
    let pages: Vec<&[&Value]> = newest_first.chunks(GRAPH_PAGE_SIZE).collect();
    for (i, page) in pages.iter().enumerate() {
        let mut body = serde_json::Map::new();
        body.insert(
            "@odata.context".into(),
            json!("https://graph.microsoft.com/beta/$metadata#auditLogs/signIns"),
        );
        if i + 1 < pages.len() {
            body.insert(
                "@odata.nextLink".into(),
                json!(format!(
                    "https://graph.microsoft.com/beta/auditLogs/signIns?$top={GRAPH_PAGE_SIZE}&$skiptoken={}",
                    rng.hex(64)
                )),
            );
        }
        body.insert("value".into(), json!(page));
        let rel = PathBuf::from(format!("entra/signins-{:04}.json", i + 1));
        write_json(&out_dir.join(&rel), &body, false)?;
        summary.files.push(rel);
        summary.signin_pages += 1;
    }
    summary.signins = ds.signins.len();

    // Late arrivals, for the Graph simulator: sign-in id → delay in ms.
    let late: BTreeMap<&str, i64> = ds
        .signins
        .iter()
        .zip(&ds.signin_arrival_delay_ms)
        .filter(|(_, d)| **d > 0)
        .map(|(v, d)| (v.get("id").and_then(Value::as_str).unwrap_or_default(), *d))
        .collect();
    summary.late_signins = late.len();
    let rel = PathBuf::from("entra/arrival-delays.json");
    write_json(&out_dir.join(&rel), &late, true)?;
    summary.files.push(rel);

    // Risk detection pages: every state (a detection reviewed later appears once per state,
    // same `id`), newest `lastUpdatedDateTime` first as Graph lists them; one empty page when
    // there is none, as Graph answers.
    let mut risk_rng = Rng::derive(ds.truth.seed, "files:risk-detections");
    let newest_first: Vec<&Value> = ds.risk_detections.iter().rev().collect();
    let mut pages: Vec<&[&Value]> = newest_first.chunks(RISK_DETECTION_PAGE_SIZE).collect();
    if pages.is_empty() {
        pages.push(&[]);
    }
    for (i, page) in pages.iter().enumerate() {
        let mut body = serde_json::Map::new();
        body.insert(
            "@odata.context".into(),
            json!("https://graph.microsoft.com/v1.0/$metadata#riskDetections"),
        );
        if i + 1 < pages.len() {
            body.insert(
                "@odata.nextLink".into(),
                json!(format!(
                    "https://graph.microsoft.com/v1.0/identityProtection/riskDetections?$top={RISK_DETECTION_PAGE_SIZE}&$skiptoken={}",
                    risk_rng.hex(64)
                )),
            );
        }
        body.insert("value".into(), json!(page));
        let rel = PathBuf::from(format!("entra/riskdetections-{:04}.json", i + 1));
        write_json(&out_dir.join(&rel), &body, false)?;
        summary.files.push(rel);
        summary.risk_detection_pages += 1;
    }
    summary.risk_detections = ds.risk_detections.len();

    // CloudTrail files: per account, region and 5-minute span.
    let mut files: BTreeMap<(String, String, i64), Vec<&Value>> = BTreeMap::new();
    for rec in &ds.cloudtrail {
        let field = |k: &str| {
            rec.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let t = parse_iso(&field("eventTime")).unwrap_or_default();
        let span = t - t.rem_euclid(TRAIL_FILE_SPAN);
        files
            .entry((field("recipientAccountId"), field("awsRegion"), span))
            .or_default()
            .push(rec);
    }
    for ((acct, region, span), recs) in &files {
        for chunk in recs.chunks(TRAIL_FILE_RECORDS) {
            let delivered = span + TRAIL_FILE_SPAN;
            let dir = PathBuf::from(format!(
                "cloudtrail/AWSLogs/{acct}/CloudTrail/{region}/{}",
                date_path(delivered)
            ));
            fs::create_dir_all(out_dir.join(&dir))?;
            let rel = dir.join(format!(
                "{acct}_CloudTrail_{region}_{}_{}.json.gz",
                compact_minute(delivered),
                rng.alnum(16)
            ));
            let body = serde_json::to_vec(&json!({ "Records": chunk })).map_err(io_err)?;
            let file = File::create(out_dir.join(&rel))?;
            let mut gz = GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(file, Compression::default());
            gz.write_all(&body)?;
            gz.finish()?.flush()?;
            summary.files.push(rel);
            summary.cloudtrail_files += 1;
        }
    }
    summary.cloudtrail_records = ds.cloudtrail.len();

    for (name, text) in [
        ("identities.toml", &ds.identities_toml),
        ("correlate.toml", &ds.correlate_toml),
    ] {
        fs::write(out_dir.join(name), text)?;
        summary.files.push(PathBuf::from(name));
    }
    write_json(&out_dir.join("truth.json"), &ds.truth, true)?;
    summary.files.push(PathBuf::from("truth.json"));
    Ok(summary)
}
