//! Hostile input to `crosswind import`: each case asserts the exit code, what was stored and
//! quarantined, and that the child's peak resident memory (VmHWM, polled from /proc while it
//! runs) stayed under the bound. Big inputs are generated on the fly and streamed.
//! Concatenated trail files (`zcat *.json.gz | crosswind import -`) store every record.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crosswind_tests::*;
use serde_json::{Value, json};

/// Peak memory allowed to an import, whatever its input.
const BOUND_KB: u64 = 512 * 1024;

struct Run {
    code: Option<i32>,
    summary: Value,
    stderr: String,
    peak_kb: u64,
}

impl Run {
    fn counts(&self) -> [u64; 4] {
        ["read", "stored", "duplicates", "quarantined"]
            .map(|k| self.summary[k].as_u64().unwrap_or(u64::MAX))
    }

    fn assert_bounded(&self) {
        assert!(self.peak_kb > 0, "no peak memory read");
        assert!(
            self.peak_kb < BOUND_KB,
            "peak RSS {} MiB over the bound; {}",
            self.peak_kb / 1024,
            self.stderr
        );
    }
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `crosswind import --format json <args> <input>`; `feed` writes the child's stdin.
fn import(store: &Path, args: &[&str], feed: impl FnOnce(&mut dyn Write) + Send + 'static) -> Run {
    let mut child = Command::new(crosswind_bin())
        .args([
            "--store",
            store.to_str().unwrap(),
            "import",
            "--format",
            "json",
        ])
        .args(args)
        .env_remove("CROSSWIND_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The child may stop reading early; a closed pipe is not the test's failure.
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut stdin);
        feed(&mut w);
        let _ = w.flush();
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // VmHWM is a high-water mark: the last reading before the child exits is its peak (up to
    // the last few milliseconds).
    let mut peak_kb = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    writer.join().unwrap();
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    Run {
        code: status.code(),
        summary: serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        stderr,
        peak_kb,
    }
}

fn stdin_of(bytes: Vec<u8>) -> impl FnOnce(&mut dyn Write) + Send + 'static {
    move |w| {
        let _ = w.write_all(&bytes);
    }
}

fn cloudtrail(id: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/bob",
            "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "bob"},
        "eventTime": "2026-11-30T09:13:00Z", "eventSource": "sts.amazonaws.com",
        "eventName": "GetCallerIdentity", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.4",
        "userAgent": "aws-cli/2.15.0", "requestParameters": null, "responseElements": null,
        "requestID": "r-1", "eventID": id, "readOnly": true, "eventType": "AwsApiCall",
        "managementEvent": true, "recipientAccountId": "111122223333", "eventCategory": "Management"
    })
}

fn line(id: &str) -> String {
    format!("{}\n", cloudtrail(id))
}

fn quarantine(store: &Path) -> Vec<crosswind_store::QuarantineRow> {
    crosswind_store::Store::open(store)
        .unwrap()
        .quarantine(100)
        .unwrap()
}

#[test]
fn a_huge_line_is_quarantined_with_its_first_bytes_and_length() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    let run = import(&store, &["-"], |w| {
        let _ = w.write_all(line("before").as_bytes());
        let _ = w.write_all(b"{\"eventID\":\"huge\",\"pad\":\"");
        let block = vec![b'y'; 1 << 20];
        for _ in 0..200 {
            let _ = w.write_all(&block);
        }
        let _ = w.write_all(b"\"}\n");
        let _ = w.write_all(line("after").as_bytes());
    });
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts(), [3, 2, 0, 1], "{}", run.summary);
    run.assert_bounded();
    let q = quarantine(&store);
    assert_eq!(q.len(), 1);
    assert!(q[0].raw.starts_with(b"{\"eventID\":\"huge\",\"pad\":\"yyy"));
    assert_eq!(q[0].raw.len(), crosswind_normalize::KEPT_BYTES);
    assert!(
        q[0].reason.contains(&format!("{} bytes", (200 << 20) + 27)),
        "{}",
        q[0].reason
    );
}

#[test]
fn a_flood_of_newlines_in_a_gzip_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    let file = dir.path().join("flood.json.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&file).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(line("before").as_bytes()).unwrap();
    let block = vec![b'\n'; 1 << 20];
    for _ in 0..300 {
        gz.write_all(&block).unwrap();
    }
    gz.write_all(line("after").as_bytes()).unwrap();
    gz.finish().unwrap();
    let run = import(&store, &[file.to_str().unwrap()], |_| {});
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts(), [2, 2, 0, 0], "{}", run.summary);
    run.assert_bounded();
}

#[test]
fn a_gzip_bomb_is_quarantined_not_swallowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    let file = dir.path().join("bomb.json.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&file).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(line("before").as_bytes()).unwrap();
    // 320 MiB of zeros, then 320 MiB inside one record's string: two records over the limit
    // (sizes kept down so a debug build decompresses them in seconds).
    let block = vec![0u8; 1 << 20];
    for _ in 0..320 {
        gz.write_all(&block).unwrap();
    }
    gz.write_all(b"\n{\"eventID\":\"bomb\",\"pad\":\"").unwrap();
    let block = vec![b'A'; 1 << 20];
    for _ in 0..320 {
        gz.write_all(&block).unwrap();
    }
    gz.write_all(b"\"}\n").unwrap();
    gz.write_all(line("after").as_bytes()).unwrap();
    gz.finish().unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() < 32 << 20);
    let run = import(&store, &[file.to_str().unwrap()], |_| {});
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts(), [4, 2, 0, 2], "{}", run.summary);
    run.assert_bounded();
    let q = quarantine(&store);
    assert!(
        q.iter()
            .all(|q| q.raw.len() <= crosswind_normalize::KEPT_BYTES)
    );
    assert!(
        q.iter()
            .any(|q| q.reason.contains(&(320u64 << 20).to_string())),
        "{q:?}"
    );
}

#[test]
fn one_huge_document_is_streamed_record_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    // {"Records":[…]} of 512 MiB (read whole, it alone would break the bound), on one line and
    // without a newline, as CloudTrail writes its files: 512 records of 1 MiB (ten distinct
    // ids, the rest duplicates of them).
    let run = import(&store, &["--format", "cloudtrail", "-"], |w| {
        let pad = "p".repeat((1 << 20) - 700);
        let _ = w.write_all(b"{\"Records\":[");
        for i in 0..512 {
            let mut r = cloudtrail(&format!("big-{}", i % 10));
            r["requestParameters"] = json!({ "pad": pad });
            if i > 0 {
                let _ = w.write_all(b",");
            }
            let _ = w.write_all(r.to_string().as_bytes());
        }
        let _ = w.write_all(b"]}");
    });
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts(), [512, 10, 502, 0], "{}", run.summary);
    run.assert_bounded();
}

#[test]
fn invalid_utf8_nul_bytes_and_deep_nesting_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    let mut input = line("good-1").into_bytes();
    // Invalid UTF-8 inside a record's string and on its own.
    input.extend_from_slice(
        b"{\"eventID\":\"bad-\xff\xfe\",\"eventTime\":\"2026-11-30T09:13:00Z\"}\n",
    );
    input.extend_from_slice(b"\xc3\x28\xa0\xa1\n");
    // NUL bytes: a line of them, and one inside a record's string (a raw control character).
    input.extend_from_slice(&[0u8; 64]);
    input.push(b'\n');
    input.extend_from_slice(b"{\"eventID\":\"nul\0\",\"eventTime\":\"2026-11-30T09:13:00Z\"}\n");
    input.extend_from_slice(line("good-2").as_bytes());
    // 100k-deep nesting, as an array and as an object.
    input.extend("[".repeat(100_000).bytes());
    input.extend("]".repeat(100_000).bytes());
    input.push(b'\n');
    input.extend("{\"a\":".repeat(100_000).bytes());
    input.extend("1".bytes());
    input.extend("}".repeat(100_000).bytes());
    input.push(b'\n');
    input.extend_from_slice(line("good-3").as_bytes());
    let run = import(&store, &["-"], stdin_of(input));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let [read, stored, duplicates, quarantined] = run.counts();
    assert_eq!((stored, duplicates), (3, 0), "{}", run.summary);
    assert_eq!(quarantined, read - 3, "{}", run.summary);
    assert!(quarantined >= 6, "{}", run.summary);
    run.assert_bounded();
}

#[test]
fn a_file_cut_short_is_reported_not_silently_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    let doc = format!(
        "{{\"Records\":[{},{},{}]}}",
        cloudtrail("cut-1"),
        cloudtrail("cut-2"),
        cloudtrail("cut-3")
    );
    let file = dir.path().join("trail.json");
    std::fs::write(&file, &doc.as_bytes()[..doc.len() - 40]).unwrap();
    let run = import(&store, &[file.to_str().unwrap()], |_| {});
    assert_eq!(
        run.code,
        Some(1),
        "a file cut short is a failure: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ends inside a record"),
        "{}",
        run.stderr
    );
    assert!(
        run.summary["per_file"][0]["error"].is_string(),
        "{}",
        run.summary
    );
    assert_eq!(run.counts(), [3, 2, 0, 1], "{}", run.summary);
    // Truncated gzip: the same, through the decompressor.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..3000 {
        gz.write_all(line(&format!("gz-{i}")).as_bytes()).unwrap();
    }
    let gz = gz.finish().unwrap();
    let file = dir.path().join("trail.json.gz");
    std::fs::write(&file, &gz[..gz.len() / 2]).unwrap();
    let run = import(&store, &[file.to_str().unwrap()], |_| {});
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let [read, stored, _, _] = run.counts();
    assert!(
        stored > 0 && stored == read && stored < 3000,
        "{}",
        run.summary
    );
    run.assert_bounded();
}

/// Real CloudTrail records as trail files (`{"Records":[…]}`, no newline at the end).
fn trail_files(per_file: usize) -> (Vec<String>, usize) {
    let text = std::fs::read_to_string(
        shared_data_dir().join("invictus-ir-aws_dataset/cloudtrail_records.ndjson"),
    )
    .unwrap();
    let records: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let ids: std::collections::HashSet<String> = records
        .iter()
        .map(|r| serde_json::from_str::<Value>(r).unwrap()["eventID"].to_string())
        .collect();
    let files = records
        .chunks(per_file)
        .map(|c| format!("{{\"Records\":[{}]}}", c.join(",")))
        .collect();
    (files, ids.len())
}

#[test]
fn concatenated_trail_files_store_every_record() {
    let (files, distinct) = trail_files(400);
    assert!(files.len() > 5 && distinct > 2000);
    let cases: [(&str, String); 3] = [
        ("no whitespace", files.concat()),
        ("newlines", files.join("\n")),
        ("spaces and blank lines", files.join(" \r\n\n\t")),
    ];
    for (name, input) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cw.db");
        let run = import(
            &store,
            &["--format", "cloudtrail", "-"],
            stdin_of(input.into_bytes()),
        );
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        let [read, stored, _, quarantined] = run.counts();
        assert_eq!(quarantined, 0, "{name}: {}", run.summary);
        assert_eq!(stored as usize, distinct, "{name}: {}", run.summary);
        assert_eq!(read as usize, 2900, "{name}: {}", run.summary);
    }
    // The gzipped files as `cat *.json.gz` gives them, and as one file.
    let dir = tempfile::tempdir().unwrap();
    let mut gz = Vec::new();
    for f in &files {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(f.as_bytes()).unwrap();
        gz.extend(enc.finish().unwrap());
    }
    let file = dir.path().join("all.json.gz");
    std::fs::write(&file, &gz).unwrap();
    let store = dir.path().join("cw.db");
    let run = import(&store, &["--format", "cloudtrail", "-"], stdin_of(gz));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts()[1] as usize, distinct, "{}", run.summary);
    let store2 = dir.path().join("cw2.db");
    let run = import(
        &store2,
        &["--format", "cloudtrail", file.to_str().unwrap()],
        |_| {},
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts()[1] as usize, distinct, "{}", run.summary);
}

#[test]
fn the_record_limit_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    let mut big = cloudtrail("big");
    big["requestParameters"] = json!({ "pad": "x".repeat(5000) });
    let input = format!("{}{big}\n{}", line("small"), line("small-2"));
    let run = import(
        &store,
        &["--max-record-bytes", "4096", "-"],
        stdin_of(input.clone().into_bytes()),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.counts(), [3, 2, 0, 1], "{}", run.summary);
    // From the config file, and refused out of range.
    let config = dir.path().join("crosswind.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n[import]\nmax_record_bytes = 100000\n",
            dir.path().join("cw2.db").display()
        ),
    )
    .unwrap();
    let out = Command::new(crosswind_bin())
        .args([
            "--config",
            config.to_str().unwrap(),
            "import",
            "--format",
            "json",
            "-",
        ])
        .stdin(
            std::fs::File::open({
                let f = dir.path().join("in.ndjson");
                std::fs::write(&f, &input).unwrap();
                f
            })
            .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"stored\":3"), "{}", stdout(&out));
    let out = crosswind(&[
        "--store",
        store.to_str().unwrap(),
        "import",
        "--max-record-bytes",
        "10",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
