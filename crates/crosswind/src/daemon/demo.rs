//! `crosswind demo [--seconds N]`: the real daemon against the built-in simulators on 127.0.0.1
//! (Graph sign-ins behind a TLS token endpoint, CloudTrail LookupEvents per account, a Splunk HEC
//! receiver), with a temporary store and a config it writes itself. Needs no config, no network
//! and no credentials. Then prints the findings, an `explain`-style view of the riskiest
//! identity, what the HEC receiver got, where the store is, and writes the HTML report beside
//! it (`report.html`), printing its path.
//!
//! The simulated traffic is the `mixed` scenario (every attack in a benign tenant) over the last
//! six hours, its final stretch arriving live while the daemon runs. Among its findings is a
//! cross-cloud chain from Identity Protection evidence: a developer's credentials found leaked
//! (an offline `leakedCredentials` detection, collected from the simulated `riskDetections`) and
//! their AWS key's SES messaging burst (`leaked-credentials-messaging`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use crosswind_sim::cloudtrail_api::CloudTrailSim;
use crosswind_sim::graph::GraphSim;
use crosswind_sim::hec::{HecSim, HecSimConfig};
use crosswind_sim::loopback::TestCa;
use crosswind_sim::token::{TokenSim, TokenSimConfig};
use crosswind_sim::{Dataset, EntraSims, Scenario, SimConfig, generate};
use crosswind_store::Store;
use crosswind_store::correlate as db;
use serde_json::{Value, json};

use super::{RunOptions, logging};
use crate::config::Config;
use crate::output::{OutputFormat, Rows};

/// `--seconds` default.
pub const DEFAULT_DEMO_SECONDS: u64 = 20;

const HOUR_MS: i64 = 3_600_000;

/// The running simulators and what they were fed.
pub(crate) struct Sims {
    pub data: Dataset,
    pub ca: TestCa,
    pub token: TokenSim,
    pub graph: GraphSim,
    /// One LookupEvents simulator per AWS account, with that account's records.
    pub cloudtrail: Vec<(String, CloudTrailSim)>,
    pub hec: HecSim,
}

/// Generates `mixed` over six hours ending `live_ms` after now, and starts the simulators.
pub(crate) async fn start_sims(users: usize, live_ms: i64) -> anyhow::Result<Sims> {
    let hours = 6;
    let sim = SimConfig {
        users,
        hours,
        accounts: 2,
        start: crosswind_store::now_ms() + live_ms - i64::from(hours) * HOUR_MS,
        ..SimConfig::default()
    };
    let data = generate(&sim, &[Scenario::Mixed]);
    let EntraSims { ca, token, graph } =
        EntraSims::start(&data, TokenSimConfig::default())
            .await
            .context("cannot start the token endpoint and Graph simulators")?;
    let mut cloudtrail = Vec::new();
    for account in &data.truth.accounts {
        let records: Vec<Value> = data
            .cloudtrail
            .iter()
            .filter(|r| r.get("recipientAccountId").and_then(Value::as_str) == Some(account))
            .cloned()
            .collect();
        let sim = CloudTrailSim::start(&records, &[])
            .await
            .context("cannot start the CloudTrail simulator")?;
        sim.set_rate_limit(None);
        cloudtrail.push((account.clone(), sim));
    }
    let hec = HecSim::start(HecSimConfig::default())
        .await
        .context("cannot start the HEC simulator")?;
    Ok(Sims {
        data,
        ca,
        token,
        graph,
        cloudtrail,
        hec,
    })
}

/// Writes the CA, secrets, identities file and a config pointing at the simulators into `dir`;
/// returns the config path.
pub(crate) fn write_config(sims: &Sims, dir: &Path, schedule: &str) -> anyhow::Result<PathBuf> {
    let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
        Ok(p)
    };
    let ca = dir.join("ca.pem");
    sims.ca
        .write_ca_file(&ca)
        .with_context(|| format!("cannot write {}", ca.display()))?;
    let secret = write("azure-secret", &sims.token.config().client_secret)?;
    let hec_token = write("hec-token", &sims.hec.token())?;
    write("identities.toml", &sims.data.identities_toml)?;
    let t = sims.token.config();
    let backfill = 7 * 3600;
    let mut text = format!(
        "# Written by `crosswind demo`: the daemon against the built-in simulators.\n\
         [store]\npath = {store:?}\nretention_days = 90\n\n\
         [[azure]]\nname = \"contoso\"\ntenant_id = {tenant:?}\nclient_id = {client:?}\n\
         client_secret_file = {secret:?}\ngraph_url = {graph:?}\nauthority_host = {auth:?}\n\
         api_version = \"beta\"\nca_file = {ca:?}\nschedule = {schedule:?}\nlookback_secs = 3600\n\
         initial_backfill_secs = {backfill}\npage_size = 1000\nmax_requests_per_10s = 0\n\
         max_retries = 3\nrequest_timeout_secs = 10\n\n",
        store = dir.join("crosswind.db").display().to_string(),
        tenant = t.tenant_id,
        client = t.client_id,
        secret = secret.display().to_string(),
        graph = sims.graph.url(),
        auth = sims.token.authority_host(),
        ca = ca.display().to_string(),
    );
    for (i, (account, sim)) in sims.cloudtrail.iter().enumerate() {
        text.push_str(&format!(
            "[[aws]]\nname = \"account-{n}\"  # {account}\nmode = \"lookup_events\"\n\
             regions = [\"us-east-1\", \"eu-west-1\"]\nendpoint_url = {url:?}\n\
             schedule = {schedule:?}\nlookback_secs = 3600\ninitial_backfill_secs = {backfill}\n\
             max_calls_per_sec = 1000\nmax_retries = 3\nrequest_timeout_secs = 10\n\n",
            n = i + 1,
            url = sim.url(),
        ));
    }
    text.push_str(&sims.data.correlate_toml);
    text.push_str(&format!(
        "\n[splunk]\nurl = {url:?}\ntoken_file = {token:?}\nindexer_ack = true\ngzip = true\n\
         forward = [\"raw\", \"risk\", \"findings\"]\nbatch_max_delay_ms = 200\n\
         ack_poll_interval_ms = 200\nretry_max_backoff_secs = 2\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\n",
        url = sims.hec.url(),
        token = hec_token.display().to_string(),
    ));
    write("crosswind.toml", &text)
}

/// Fixed keys for the CloudTrail simulator (it does not check signatures).
pub(crate) fn sim_credentials() -> aws_sdk_cloudtrail::config::Credentials {
    aws_sdk_cloudtrail::config::Credentials::new("demo", "demo", None, None, "crosswind-demo")
}

/// `crosswind demo`.
pub fn demo(seconds: u64) -> anyhow::Result<()> {
    logging::init(super::LogFormat::Auto, tracing::Level::WARN)?;
    let dir = tempfile::Builder::new()
        .prefix("crosswind-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?
        .keep();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let seconds = seconds.max(1);
    let result = runtime.block_on(async {
        let live_ms = (seconds as i64 * 1000) / 2;
        let sims = start_sims(80, live_ms).await?;
        let config_path = write_config(&sims, &dir, "*/2 * * * * *")?;
        let config = Config::load(&config_path)?;
        let store_path = config.store.path.clone();
        crate::output::note(format_args!(
            "crosswind demo: simulated tenant ({} sign-ins) and {} AWS accounts ({} CloudTrail records) on 127.0.0.1; running the daemon for {seconds} s...",
            sims.data.signins.len(),
            sims.cloudtrail.len(),
            sims.data.cloudtrail.len(),
        ));
        let options = RunOptions {
            aws_credentials: Some(sim_credentials()),
            keep_logging: true,
            ..RunOptions::default()
        };
        let drain_path = store_path.clone();
        let stop = async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            // Let the sink deliver what is queued (bounded).
            for _ in 0..60 {
                if drained(&drain_path) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        };
        super::serve(config, config_path.clone(), options, stop).await?;
        Ok::<_, anyhow::Error>((sims, store_path, config_path))
    });
    let (sims, store_path, config_path) = result?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    report(&sims, &store_path, &config_path)
}

fn drained(store_path: &Path) -> bool {
    let Ok(store) = Store::open(store_path) else {
        return false;
    };
    let fed = crosswind_store::cursor::stored_cursor(&store, super::FEEDER_CHECKPOINT).unwrap_or(0);
    let max = crosswind_store::feed::max_event_id(&store).unwrap_or(0);
    let depth = crosswind_store::outbox::stats(&store).map_or(1, |s| s.depth());
    fed >= max && depth == 0
}

fn report(sims: &Sims, store_path: &Path, config_path: &Path) -> anyhow::Result<()> {
    let store = Store::open(store_path)?;
    let mut out = io::stdout().lock();
    let counts = store.counts()?;
    writeln!(
        out,
        "\ncollected {} events ({} quarantined) from the simulated Graph and CloudTrail APIs",
        counts.events, counts.quarantined
    )?;

    let mut findings = db::findings_recent(&store, i64::MIN, 1000)?;
    writeln!(out, "\nfindings ({}):", findings.len())?;
    crate::explain::findings_rows(&findings).write(OutputFormat::Table, &mut out)?;

    findings.sort_by(|a, b| b.score.total_cmp(&a.score));
    let correlate = Config::load(config_path)?
        .correlate_config()
        .map_err(anyhow::Error::msg)?;
    if let Some(top) = findings.first() {
        writeln!(out, "\nexplain {} (the riskiest identity):", top.identity)?;
        crate::explain::explain(
            &store,
            &top.identity,
            &correlate,
            crate::explain::ExplainFormat::Table,
            &mut out,
        )?;
    }

    let mut per_sourcetype: BTreeMap<String, u64> = BTreeMap::new();
    for e in sims.hec.events() {
        let st = e
            .get("sourcetype")
            .and_then(Value::as_str)
            .unwrap_or("(none)")
            .to_owned();
        *per_sourcetype.entry(st).or_default() += 1;
    }
    let stats = sims.hec.stats();
    writeln!(
        out,
        "\nSplunk HEC receiver got {} events in {} requests ({} duplicates):",
        stats.indexed, stats.requests, stats.duplicates
    )?;
    let mut rows = Rows::new(vec!["sourcetype", "events"]);
    for (st, n) in per_sourcetype {
        rows.push(vec![json!(st), json!(n)]);
    }
    rows.write(OutputFormat::Table, &mut out)?;
    writeln!(
        out,
        "\nstore: {} (try: crosswind --store {} hunt --list)\nconfig the daemon ran with: {}",
        store_path.display(),
        store_path.display(),
        config_path.display()
    )?;
    let report_path = store_path.with_file_name("report.html");
    crate::report::write_report(
        &store,
        &correlate,
        &crate::report::ReportOptions::default(),
        &report_path,
    )?;
    writeln!(
        out,
        "report: {} (open it in a browser)",
        report_path.display()
    )?;
    Ok(())
}
