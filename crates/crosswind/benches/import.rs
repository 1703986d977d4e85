//! Import throughput: N realistic Graph beta sign-ins and CloudTrail records (half each, from
//! the scenario generator) written as NDJSON, then imported end to end — read, detect,
//! normalise, serialise, compress, dedup, store raw + event in SQLite — as `crosswind import`
//! does it (two threads; pin with `taskset -c 0` for one core). Prints records/s, store size and
//! peak RSS.
//!
//! `cargo bench -p crosswind --bench import` (N from `CROSSWIND_BENCH_N`, default 1,000,000).

use std::io::{BufWriter, Write};
use std::time::Instant;

use crosswind::import::{ImportOptions, import_files};
use crosswind_sim::{SimConfig, SimRecord, stream};
use crosswind_store::{NewRecord, Store};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let n: u64 = std::env::var("CROSSWIND_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    // CROSSWIND_BENCH_INPUT=FILE keeps the generated NDJSON there and reuses it on later runs
    // (profiling the import without the generator in the profile).
    let kept = std::env::var_os("CROSSWIND_BENCH_INPUT").map(std::path::PathBuf::from);
    let input = kept
        .clone()
        .unwrap_or_else(|| dir.path().join("records.ndjson"));
    if kept.is_some() && input.exists() {
        let bytes = std::fs::metadata(&input).expect("input").len();
        println!(
            "reusing {} ({:.0} MiB)",
            input.display(),
            bytes as f64 / 1048576.0
        );
        return run(&input, n, bytes, dir.path());
    }

    let started = Instant::now();
    let mut out = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&input).expect("create input"),
    );
    let mut bytes = 0u64;
    let cfg = SimConfig {
        stream_records: n,
        users: 20_000,
        hours: 24 * 7,
        ..SimConfig::default()
    };
    for record in stream(&cfg).take(n as usize) {
        let line = match &record {
            SimRecord::SignIn(s) | SimRecord::CloudTrail(s) => s,
        };
        bytes += line.len() as u64 + 1;
        out.write_all(line.as_bytes()).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
    drop(out);
    println!(
        "generated {n} records ({:.0} MiB NDJSON) in {:.1}s",
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    run(&input, n, bytes, dir.path());
}

fn run(input: &std::path::Path, n: u64, bytes: u64, dir: &std::path::Path) {
    // Stage costs, to see where the end-to-end time goes (skip with CROSSWIND_BENCH_STAGES=0;
    // CROSSWIND_BENCH_STAGES=store runs the store-only stage alone, for profiling).
    let stages = std::env::var("CROSSWIND_BENCH_STAGES").map_or(true, |v| v != "0");
    if std::env::var("CROSSWIND_BENCH_STAGES").is_ok_and(|v| v == "store") {
        return store_only(input, n, dir);
    }
    let started = Instant::now();
    let (mut parsed, mut json_bytes) = (0u64, 0u64);
    let file = std::fs::File::open(input).expect("open input");
    for record in crosswind_normalize::RecordReader::from_read(file)
        .expect("reader")
        .take(if stages { usize::MAX } else { 0 })
    {
        let record = record.expect("record");
        let normalized = crosswind_normalize::normalize(&record.bytes, None).expect("normalize");
        json_bytes += serde_json::to_vec(&normalized.event)
            .map(|v| v.len() as u64)
            .unwrap_or(0);
        parsed += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "read + normalise + serialise event (no store): {:.0} records/s, event JSON {:.0} B/record",
        parsed as f64 / secs,
        json_bytes as f64 / parsed.max(1) as f64
    );

    let db = dir.join("bench.db");
    let mut store = Store::open(&db).expect("open store");
    let started = Instant::now();
    let summary = import_files(
        &mut store,
        &[input.display().to_string()],
        &ImportOptions::default(),
        false,
    )
    .expect("import");
    let secs = started.elapsed().as_secs_f64();
    let total = summary.total();
    assert_eq!(total.read, n, "every record read");
    assert_eq!(total.quarantined, 0, "generated records all map");
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.join("bench.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "import: {} records in {secs:.1}s = {:.0} records/s ({:.1} MiB/s of input); stored {}, duplicates {}; store {:.0} MiB; peak RSS {:.0} MiB",
        total.read,
        total.read as f64 / secs,
        bytes as f64 / 1048576.0 / secs,
        total.stored,
        total.duplicates,
        db_bytes as f64 / 1048576.0,
        peak_rss_mib()
    );
    drop(store);

    // After the import, so its peak RSS above is its own.
    if stages {
        store_only(input, n, dir);
    }
}

/// The store's share alone (serialising and compressing the event and raw record, SQLite): the
/// first 10,000 records are normalised up front, then written
/// again and again under fresh record ids (same bytes, same batches as `import`) until `n` rows
/// are stored. What is left of the end-to-end time is reading and normalising.
fn store_only(input: &std::path::Path, n: u64, dir: &std::path::Path) {
    const DISTINCT: usize = 10_000;
    const BATCH: u64 = 100_000;
    let file = std::fs::File::open(input).expect("open input");
    let mut records = Vec::with_capacity(DISTINCT);
    for record in crosswind_normalize::RecordReader::from_read(file)
        .expect("reader")
        .take(DISTINCT)
    {
        let record = record.expect("record");
        let normalized = crosswind_normalize::normalize(&record.bytes, None).expect("normalize");
        let uid = normalized.event.metadata.uid.clone();
        records.push((normalized, record.bytes, uid));
    }
    let db = dir.join("store-only.db");
    let mut store = Store::open(&db).expect("open store");
    let started = Instant::now();
    let mut batch = store.begin().expect("begin");
    let origin = input.display().to_string();
    for i in 0..n {
        let distinct = records.len().max(1);
        let (normalized, raw, uid) = &mut records[i as usize % distinct];
        let round = i / DISTINCT as u64;
        if round > 0 {
            normalized.event.metadata.uid = format!("{uid}-{round}");
        }
        batch
            .insert(&NewRecord {
                event: &normalized.event,
                format: normalized.format,
                raw,
                origin: &origin,
            })
            .expect("insert");
        if (i + 1) % BATCH == 0 {
            batch.commit().expect("commit");
            batch = store.begin().expect("begin");
        }
    }
    batch.commit().expect("commit");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "store only (pre-normalised rows: serialise, compress, SQLite; same batches): {:.0} records/s",
        n as f64 / secs
    );
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("store-only.db{suffix}")));
    }
}
