//! Throughput of the HEC sink: enqueue small risk events into the SQLite outbox, then drain them
//! to the loopback HEC receiver with gzip and indexer acks, and report events/s for both.
//!
//! `cargo bench -p crosswind-hec --bench hec` (`HEC_BENCH_EVENTS=N` to change the count).

#![forbid(unsafe_code)]

use std::time::Instant;

use crosswind_hec::{Forwarder, Renderer, SplunkConfig, enqueue};
use crosswind_model::{CloudProvider, Signal};
use crosswind_sim::hec::{HecSim, HecSimConfig};
use crosswind_store::Store;
use crosswind_store::outbox::{self, Quota};

const TOKEN: &str = "11111111-2222-4333-8444-555555555555";

fn main() {
    let events: usize = std::env::var("HEC_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(events));
}

async fn run(events: usize) {
    let sim = HecSim::start(HecSimConfig {
        token: TOKEN.into(),
        indexer_ack: true,
        keep_events: false,
        ..HecSimConfig::default()
    })
    .await
    .expect("loopback HEC");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let mut config = SplunkConfig::new(sim.url());
    config.token_env = Some("HEC_BENCH_TOKEN".into());
    config.gzip = true;
    config.indexer_ack = true;
    config.ack_poll_interval_ms = 20;
    config.host = Some("bench".into());

    // Enqueue: one transaction per 10k events, as an importer would.
    let renderer = Renderer::new(&config);
    let mut store = Store::open(&path).expect("store");
    let started = Instant::now();
    let mut bytes = 0usize;
    for chunk in 0..events.div_ceil(10_000) {
        let batch = store.begin().expect("batch");
        let mut quota = Quota::check(&batch, config.max_outbox_rows).expect("quota");
        for i in chunk * 10_000..((chunk + 1) * 10_000).min(events) {
            let signal = Signal {
                schema_version: 1,
                id: format!("sig-{i}"),
                signal: "aws_recon_burst".into(),
                time: 1_700_000_000_000 + i as i64,
                risk_object: format!("user{}@contoso.com", i % 500),
                risk_object_type: "user".into(),
                risk_score: 24.0,
                risk_message: "Recon burst.".into(),
                threat_object: Some("203.0.113.7".into()),
                threat_object_type: Some("ip_address".into()),
                mitre_technique_id: vec!["T1087.004".into()],
                cloud: vec![CloudProvider::Aws],
                event_ids: vec![format!("e{i}")],
                habitual: false,
                extends: None,
            };
            let rendered = renderer.risk(&signal).expect("risk is forwarded");
            bytes += rendered.payload.len();
            enqueue(&batch, &mut quota, &rendered).expect("enqueue");
        }
        batch.commit().expect("commit");
    }
    let enqueue_secs = started.elapsed().as_secs_f64();
    drop(store);

    let env = |name: &str| (name == "HEC_BENCH_TOKEN").then(|| TOKEN.to_string());
    let mut forwarder =
        Forwarder::with_env(config, Store::open(&path).expect("store"), &env).expect("forwarder");
    let started = Instant::now();
    let stats = forwarder.drain_once().await.expect("drain");
    let drain_secs = started.elapsed().as_secs_f64();

    let sim_stats = sim.stats();
    let left = outbox::stats(forwarder.store()).expect("stats");
    assert_eq!(sim_stats.indexed, events as u64, "receiver count");
    assert_eq!(sim_stats.duplicates, 0);
    assert_eq!(left.depth(), 0);
    assert_eq!(stats.events_acked, events as u64);
    let m = forwarder.metrics().snapshot();
    println!(
        "hec bench: {events} events ({:.0} bytes avg), gzip + indexer acks",
        bytes as f64 / events as f64
    );
    println!(
        "  enqueue: {:>9.0} events/s ({enqueue_secs:.2}s)",
        events as f64 / enqueue_secs
    );
    println!(
        "  drain:   {:>9.0} events/s ({drain_secs:.2}s, {} requests, {} ack polls, {:.1} MB on the wire)",
        events as f64 / drain_secs,
        stats.requests,
        m.ack_polls,
        m.bytes_sent as f64 / 1e6
    );
    println!(
        "  end to end: {:>6.0} events/s",
        events as f64 / (enqueue_secs + drain_secs)
    );
}
