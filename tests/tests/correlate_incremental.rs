//! The daemon's correlator keeps an engine snapshot a replay window behind the newest events and
//! replays only that window on each run. Fed the same arrivals, it must store exactly what a
//! fresh correlator (full warm-up on every run) stores — and it must really use the snapshot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crosswind::config::Config;
use crosswind::correlation::Correlation;
use crosswind::import::{ImportOptions, import_files};
use crosswind_sim::{Dataset, Scenario, SimConfig, generate, write_dataset};
use crosswind_store::Store;
use crosswind_store::correlate::{findings_since, signals_between};

/// Imports `chunks` one after another, correlating after each with `correlation_for(i)`.
fn run(
    db: &Path,
    chunks: &[Vec<PathBuf>],
    mut correlation_for: impl FnMut() -> Option<Correlation>,
    shared: &Correlation,
) -> (BTreeSet<String>, BTreeSet<String>, usize) {
    let mut store = Store::open(db).unwrap();
    let mut from_snapshot = 0;
    for chunk in chunks {
        let paths: Vec<String> = chunk.iter().map(|p| p.display().to_string()).collect();
        import_files(&mut store, &paths, &ImportOptions::default(), false).unwrap();
        let fresh = correlation_for();
        let stats = fresh
            .as_ref()
            .unwrap_or(shared)
            .run_pending(&mut store, None)
            .unwrap();
        from_snapshot += stats.from_snapshot as usize;
    }
    let signals = signals_between(&store, i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let findings = findings_since(&store, i64::MIN)
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    (signals, findings, from_snapshot)
}

/// Arrivals as a daemon sees them: each record at its event time plus its delay (the generator
/// makes ~2% of sign-ins 5–30 min late; CloudTrail delivers in ~5 min), batched into 30-minute
/// polls written as NDJSON files; `extra` is added to the first poll.
fn poll_chunks(dir: &Path, dataset: &Dataset, extra: Option<&str>) -> Vec<Vec<PathBuf>> {
    const POLL_MS: i64 = 30 * 60_000;
    let time_of = |v: &serde_json::Value, key: &str| {
        crosswind_sim::parse_iso(v[key].as_str().unwrap_or_default()).unwrap_or_default()
    };
    let mut arrivals: Vec<(i64, String)> = Vec::new();
    for (i, s) in dataset.signins.iter().enumerate() {
        let delay = dataset.signin_arrival_delay_ms.get(i).copied().unwrap_or(0);
        arrivals.push((time_of(s, "createdDateTime") + delay, s.to_string()));
    }
    for r in &dataset.cloudtrail {
        arrivals.push((time_of(r, "eventTime") + 5 * 60_000, r.to_string()));
    }
    arrivals.sort();
    if let Some(extra) = extra {
        arrivals.insert(0, (i64::MIN, extra.to_owned()));
    }
    let mut chunks: Vec<Vec<PathBuf>> = Vec::new();
    let mut poll = i64::MIN;
    let mut lines = String::new();
    let flush = |lines: &mut String, chunks: &mut Vec<Vec<PathBuf>>| {
        if !lines.is_empty() {
            let file = dir.join(format!("poll-{:04}.ndjson", chunks.len()));
            std::fs::write(&file, std::mem::take(lines)).unwrap();
            chunks.push(vec![file]);
        }
    };
    for (arrival, line) in arrivals {
        if arrival != i64::MIN && arrival / POLL_MS != poll {
            flush(&mut lines, &mut chunks);
            poll = arrival / POLL_MS;
        }
        lines.push_str(&line);
        lines.push('\n');
    }
    flush(&mut lines, &mut chunks);
    chunks
}

#[test]
fn snapshot_replay_stores_exactly_what_a_full_warm_up_stores() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dataset = generate(
        &SimConfig {
            users: 120,
            hours: 12,
            ..SimConfig::default()
        },
        &[Scenario::Mixed],
    );
    write_dataset(&dataset, &data).unwrap();
    let config = Config::load(&data.join("correlate.toml")).unwrap();
    let correlation = || Correlation::from_config(&config, Some(&data)).unwrap();

    let chunks = poll_chunks(dir.path(), &dataset, None);

    let shared = correlation();
    let started = std::time::Instant::now();
    let (live_signals, live_findings, used) =
        run(&dir.path().join("live.db"), &chunks, || None, &shared);
    let live_time = started.elapsed();
    let unused = correlation();
    let started = std::time::Instant::now();
    let (fresh_signals, fresh_findings, fresh_used) = run(
        &dir.path().join("fresh.db"),
        &chunks,
        || Some(correlation()),
        &unused,
    );
    // Reported, never asserted (timings belong in benchmarks).
    eprintln!(
        "{} polls: snapshot replay {live_time:?}, full warm-up every poll {:?}",
        chunks.len(),
        started.elapsed()
    );
    assert_eq!(fresh_used, 0, "a new correlator has no snapshot");
    assert!(
        used > chunks.len() / 2,
        "the live correlator replayed from its snapshot ({used} of {} runs)",
        chunks.len()
    );
    assert!(!live_findings.is_empty());
    assert_eq!(live_signals, fresh_signals, "same signals");
    assert_eq!(live_findings, fresh_findings, "same findings");
}

/// Issue 16, suspected: one sign-in dated in the year 9999 (accepted by the parsers) no longer
/// becomes the "newest event" the snapshot is kept behind; the live correlator still replays
/// from its snapshot on most runs and stores what a fresh one stores.
#[test]
fn a_future_dated_event_does_not_push_the_snapshot_away() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dataset = generate(
        &SimConfig {
            users: 60,
            hours: 6,
            ..SimConfig::default()
        },
        &[Scenario::Mixed],
    );
    write_dataset(&dataset, &data).unwrap();
    let config = Config::load(&data.join("correlate.toml")).unwrap();
    let correlation = || Correlation::from_config(&config, Some(&data)).unwrap();
    let mut future = dataset.signins[0].clone();
    future["id"] = serde_json::json!("00000000-9999-4999-8999-999999999999");
    future["createdDateTime"] = serde_json::json!("9999-12-31T23:59:59Z");
    let chunks = poll_chunks(dir.path(), &dataset, Some(&future.to_string()));
    let shared = correlation();
    let (live_signals, live_findings, used) =
        run(&dir.path().join("live.db"), &chunks, || None, &shared);
    let unused = correlation();
    let (fresh_signals, fresh_findings, _) = run(
        &dir.path().join("fresh.db"),
        &chunks,
        || Some(correlation()),
        &unused,
    );
    assert!(
        used > chunks.len() / 2,
        "the live correlator replayed from its snapshot ({used} of {} runs)",
        chunks.len()
    );
    assert_eq!(live_signals, fresh_signals, "same signals");
    assert_eq!(live_findings, fresh_findings, "same findings");
}
