//! `forward --once` against a Splunk that never takes anything — nothing listening, or a
//! certificate crosswind does not trust — logs why on stderr, gives up after `--give-up-after`
//! with exit 1 and keeps every event queued: a later run against a working receiver delivers
//! them all.

use std::sync::Arc;

use crosswind_sim::hec::{HecSim, HecSimConfig};
use crosswind_sim::loopback::{self, SimResponse, TestCa};
use crosswind_tests::*;
use serde_json::{Value, json};

const TOKEN: &str = "0c9a7d4e-52b1-4f7e-8d3a-1e2f3a4b5c6d";

/// A store with raw records queued for Splunk at `url` (an import with `[splunk]` configured).
/// Returns (temp dir, config path, records stored).
fn store_with_queued_records(url: &str) -> (tempfile::TempDir, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = crosswind(&[
        "simulate",
        "--scenario",
        "spray-to-aws",
        "--out",
        data.to_str().unwrap(),
        "--users",
        "20",
        "--hours",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let config = write_config(dir.path(), url);
    let mut files: Vec<String> = walk(&data)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".json.gz") || (name.starts_with("signins-") && name.ends_with(".json"))
        })
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["--config", &config, "import", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let out = crosswind(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let stored = summary["stored"].as_u64().unwrap();
    assert!(stored > 0);
    (dir, config, stored)
}

fn write_config(dir: &std::path::Path, url: &str) -> String {
    let token_file = dir.join("hec-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let config = dir.join("crosswind.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n\n[splunk]\nurl = \"{url}\"\ntoken_file = \"{}\"\nindex = \"cloud\"\nforward = [\"raw\"]\nretry_max_backoff_secs = 1\n",
            dir.join("cw.db").display(),
            token_file.display()
        ),
    )
    .unwrap();
    config.display().to_string()
}

fn forward_giving_up(config: &str) -> std::process::Output {
    crosswind_env(
        &[
            "--config",
            config,
            "forward",
            "--once",
            "--give-up-after",
            "3s",
            "--log-format",
            "text",
        ],
        &[("CROSSWIND_LOG", "info")],
    )
}

/// After giving up, a working receiver gets every queued record: nothing was lost.
async fn everything_still_delivers(dir: &std::path::Path, stored: u64) {
    let hec = HecSim::start(HecSimConfig {
        token: TOKEN.into(),
        ..HecSimConfig::default()
    })
    .await
    .unwrap();
    let config = write_config(dir, &hec.url());
    let out = forward_once(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let raw = hec
        .events()
        .iter()
        .filter(|e| e["sourcetype"] != "crosswind:risk" && e["sourcetype"] != "crosswind:finding")
        .count() as u64;
    assert_eq!(raw, stored, "every raw record queued before the give-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_on_an_unreachable_splunk_and_keeps_everything_queued() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (dir, config, stored) = store_with_queued_records(&url);
    let out = tokio::task::spawn_blocking(move || forward_giving_up(&config))
        .await
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("gave up"), "{err}");
    assert!(err.contains("every event stays queued"), "{err}");
    // The failures were logged while it retried, not only summed up at the end.
    assert!(err.contains("health check failed"), "{err}");
    assert!(
        !err.contains(TOKEN),
        "the token never reaches stderr: {err}"
    );
    everything_still_delivers(dir.path(), stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_on_an_untrusted_certificate_and_says_so() {
    // A healthy HEC over TLS, with a certificate from a CA crosswind was not told to trust.
    let ca = TestCa::generate().unwrap();
    let server = loopback::serve(
        Arc::new(|_req| SimResponse::json(200, &json!({"text": "HEC is healthy", "code": 17}))),
        Some(ca.acceptor()),
    )
    .await
    .unwrap();
    let (dir, config, stored) = store_with_queued_records(&server.url());
    assert!(server.url().starts_with("https://"));
    let out = tokio::task::spawn_blocking(move || forward_giving_up(&config))
        .await
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("gave up"), "{err}");
    assert!(
        err.to_ascii_lowercase().contains("certificate"),
        "the reason names the certificate: {err}"
    );
    everything_still_delivers(dir.path(), stored).await;
}
