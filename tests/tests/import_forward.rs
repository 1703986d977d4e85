//! `import` queues raw records, risk events and findings for Splunk in the transactions that
//! store them; `forward --once` delivers all of it to the loopback HEC receiver (indexer acks,
//! gzip) and exits with the outbox empty. Re-importing queues nothing new.

use crosswind_sim::hec::{HecSim, HecSimConfig};
use crosswind_tests::*;
use serde_json::Value;

const TOKEN: &str = "6f0d0c2e-1f7b-4c55-9a8e-7d1b2c3a4f5e";

fn run(args: Vec<String>) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crosswind(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_then_forward_delivers_everything_once() {
    let hec = HecSim::start(HecSimConfig {
        token: TOKEN.into(),
        indexer_ack: true,
        ..HecSimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = crosswind(&[
        "simulate",
        "--scenario",
        "spray-to-aws",
        "--out",
        data.to_str().unwrap(),
        "--users",
        "60",
        "--hours",
        "8",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token_file = dir.path().join("hec-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let correlate = std::fs::read_to_string(data.join("correlate.toml")).unwrap();
    let config = data.join("crosswind.toml");
    std::fs::write(
        &config,
        format!(
            "{correlate}\n[store]\npath = \"{}\"\n\n[splunk]\nurl = \"{}\"\ntoken_file = \"{}\"\nindex = \"cloud\"\nindexer_ack = true\ngzip = true\nforward = [\"raw\", \"risk\", \"findings\"]\n",
            dir.path().join("cw.db").display(),
            hec.url(),
            token_file.display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap().to_string();
    let mut files = Vec::new();
    for entry in walk(&data) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json.gz") || (name.starts_with("signins-") && name.ends_with(".json")) {
            files.push(entry.display().to_string());
        }
    }
    files.sort();

    let mut import = vec![
        "--config".to_string(),
        cfg.clone(),
        "import".into(),
        "--format".into(),
        "json".into(),
    ];
    import.extend(files.iter().cloned());
    let out = tokio::task::spawn_blocking({
        let import = import.clone();
        move || run(import)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let stored = summary["stored"].as_u64().unwrap();
    let (signals, findings) = (
        summary["signals"].as_u64().unwrap(),
        summary["findings"].as_u64().unwrap(),
    );
    assert!(stored > 100 && signals > 0 && findings > 0, "{summary}");

    // Issue 16: `forward` beside a running daemon (which holds `<store>.lock` and has a request
    // in flight) refuses instead of taking the daemon's in-flight claim over as crash recovery.
    let db = dir.path().join("cw.db");
    {
        let store = crosswind_store::Store::open(&db).unwrap();
        store
            .connection()
            .execute(
                "INSERT INTO outbox_inflight (first_id, last_id, claimed_at)
                 SELECT min(id), max(id), 0 FROM outbox",
                [],
            )
            .unwrap();
    }
    let daemon_lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("cw.db.lock"))
        .unwrap();
    daemon_lock.try_lock().unwrap();
    let out = forward_once(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a running daemon forwards this store's outbox itself"),
        "{}",
        stderr(&out)
    );
    assert!(hec.events().is_empty());
    let inflight: i64 = crosswind_store::Store::open(&db)
        .unwrap()
        .connection()
        .query_row("SELECT count(*) FROM outbox_inflight", [], |r| r.get(0))
        .unwrap();
    assert_eq!(inflight, 1, "the daemon's in-flight claim is left alone");
    // The daemon stopped (crashed mid-request): now `forward` recovers its claim and delivers.
    drop(daemon_lock);
    let out = forward_once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let events = hec.events();
    for e in &events {
        assert_eq!(e["index"], "cloud");
    }
    let by_sourcetype = count_by_sourcetype(&events);
    let raw = by_sourcetype.get("azure:aad:signin").copied().unwrap_or(0)
        + by_sourcetype.get("aws:cloudtrail").copied().unwrap_or(0);
    assert_eq!(
        raw, stored,
        "every stored raw record delivered once: {by_sourcetype:?}"
    );
    assert_eq!(
        by_sourcetype.get("crosswind:risk").copied().unwrap_or(0),
        signals,
        "{by_sourcetype:?}"
    );
    assert_eq!(
        by_sourcetype.get("crosswind:finding").copied().unwrap_or(0),
        findings,
        "{by_sourcetype:?}"
    );

    // Nothing is queued twice: re-importing and forwarding again delivers nothing new.
    let out = tokio::task::spawn_blocking(move || run(import))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = hec.events().len();
    let out = forward_once(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(hec.events().len(), before);
}
