//! S3 mode's CPU cost per trail file: gunzip, split `{"Records":[…]}`, drop the records whose
//! `eventName` the collector does not keep (the default `event_names`), normalise and store the
//! rest in a real SQLite store, one transaction per file with its checkpoint — what the
//! collector does per file after `GetObject`, on one thread. For sizing a machine that reads
//! an organisation trail, where most records are calls crosswind does not keep.
//!
//! `CROSSWIND_TRAIL_BENCH_INPUT=records.ndjson cargo bench -p crosswind-aws --bench trail_files`
//! where the input holds CloudTrail records, one JSON object per line (from a trail:
//! `zcat *.json.gz | jq -c '.Records[]'`). `CROSSWIND_TRAIL_BENCH_PER_FILE` sets the records
//! per trail file (default 2,000).

use std::io::{BufRead, Write};
use std::time::Instant;

use crosswind_aws::config::default_event_names;
use crosswind_aws::trail::{EventFilter, store_trail_file};
use crosswind_store::Store;

/// User + system CPU seconds of this process so far (`/proc/self/stat`, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Closes the trail file being built and gzips it, as CloudTrail delivers it.
fn finish(current: &mut String, files: &mut Vec<Vec<u8>>) {
    current.push_str("]}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(current.as_bytes()).expect("gzip");
    files.push(gz.finish().expect("gzip"));
    current.clear();
    current.push_str("{\"Records\":[");
}

fn main() {
    let Some(input) = std::env::var_os("CROSSWIND_TRAIL_BENCH_INPUT") else {
        eprintln!(
            "set CROSSWIND_TRAIL_BENCH_INPUT to an NDJSON file of CloudTrail records \
             (e.g. `zcat trail/*.json.gz | jq -c '.Records[]' > records.ndjson`)"
        );
        std::process::exit(2);
    };
    let per_file: usize = std::env::var("CROSSWIND_TRAIL_BENCH_PER_FILE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
        .max(1);

    // The trail files are built before the clock starts.
    let reader = std::io::BufReader::new(std::fs::File::open(&input).expect("open input"));
    let mut files: Vec<Vec<u8>> = Vec::new();
    let (mut records, mut json_bytes) = (0u64, 0u64);
    let mut current = String::from("{\"Records\":[");
    let mut in_current = 0;
    for line in reader.lines() {
        let line = line.expect("read input");
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if in_current > 0 {
            current.push(',');
        }
        current.push_str(line);
        in_current += 1;
        records += 1;
        json_bytes += line.len() as u64;
        if in_current == per_file {
            finish(&mut current, &mut files);
            in_current = 0;
        }
    }
    if in_current > 0 {
        finish(&mut current, &mut files);
    }
    let gz_bytes: usize = files.iter().map(Vec::len).sum();

    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(&dir.path().join("crosswind.db")).expect("store");
    let names = default_event_names();
    let filter = EventFilter::new(&names);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let (mut kept, mut filtered, mut stored) = (0u64, 0u64, 0u64);
    for (i, body) in files.iter().enumerate() {
        let mut batch = store.begin().expect("begin");
        let location = format!("bench/file-{i}.json.gz");
        let out =
            store_trail_file(&mut batch, body, &filter, "s3:bench", &location).expect("trail file");
        batch
            .set_checkpoint(&format!("bench:{location}"), "etag")
            .expect("checkpoint");
        stored += batch.commit().expect("commit").stored;
        kept += out.records;
        filtered += out.filtered;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    println!(
        "{} trail files of up to {per_file} records: {records} records, {:.0} MiB JSON, {:.0} MiB gzip",
        files.len(),
        json_bytes as f64 / 1048576.0,
        gz_bytes as f64 / 1048576.0
    );
    println!(
        "kept {kept} ({:.2}%, {stored} stored), filtered out {filtered}; event names kept: {}",
        100.0 * kept as f64 / records.max(1) as f64,
        names.len()
    );
    println!(
        "wall {wall:.2} s, CPU {cpu:.2} s: {:.0} records/s read per CPU second ({:.0}/s wall)",
        records as f64 / cpu,
        records as f64 / wall
    );
}
