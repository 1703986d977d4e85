//! End to end: the CloudTrail collector
//! - in `lookup_events` mode against the LookupEvents simulator (per-region rate limit with
//!   ThrottlingException, scripted throttle/5xx storms, late records, 50-record pages), with a
//!   kill (poll future dropped mid-run) and a restart;
//! - in `s3` mode against a real moto server: `.json.gz` trail files written to a bucket whose
//!   S3 event notifications go to an SQS queue, a role assumed through STS, a kill and a restart.
//!
//! The store must hold exactly the record ids that were served (none missing, none twice).
//! moto: `moto_server` on PATH, or `$MOTO_SERVER_URL`; when neither is there the S3 test fails
//! with instructions, unless `CROSSWIND_SKIP_MOTO=1`.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{Credentials, Region};
use chrono::{DateTime, Utc};
use crosswind_aws::{AwsCollector, AwsConfig, CredentialSource, RetryTuning};
use crosswind_model::RecordSource;
use crosswind_sim::cloudtrail_api::{CloudTrailFault, CloudTrailSim};
use crosswind_sim::{Scenario, SimConfig, generate};
use crosswind_store::Store;
use serde_json::Value;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn creds() -> Credentials {
    Credentials::new("testing", "testing", None, None, "crosswind-tests")
}

fn fast_tuning() -> RetryTuning {
    RetryTuning {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(200),
        throttle_base: Duration::from_millis(20),
    }
}

fn stored_ids(path: &Path) -> Vec<String> {
    Store::open(path)
        .expect("open store")
        .record_ids(RecordSource::CloudTrail)
        .expect("record ids")
}

fn str_at<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn assert_exact(stored: &[String], served: &BTreeSet<String>) {
    let set: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), set.len(), "an id stored twice");
    let missing: Vec<_> = served.difference(&set).take(5).collect();
    let extra: Vec<_> = set.difference(served).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
}

// === lookup_events ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_collects_exactly_what_was_served() {
    let sim_cfg = SimConfig {
        hours: 6,
        users: 60,
        ..SimConfig::default()
    };
    let data = generate(&sim_cfg, &[Scenario::Mixed]);
    // CloudTrail delivers late: every 7th record shows up 12 minutes after its eventTime.
    let delays: Vec<i64> = (0..data.cloudtrail.len())
        .map(|i| if i % 7 == 3 { 12 * MIN } else { 0 })
        .collect();
    let sim = CloudTrailSim::start(&data.cloudtrail, &delays)
        .await
        .expect("cloudtrail sim");
    sim.set_rate_limit(Some(8));
    let mut regions: Vec<String> = data
        .cloudtrail
        .iter()
        .map(|r| str_at(r, "awsRegion").to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    regions.truncate(2);
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for r in &data.cloudtrail {
        *names.entry(str_at(r, "eventName").to_owned()).or_default() += 1;
    }
    let mut event_names: Vec<String> = names.keys().cloned().collect();
    // Recon reads and sign-ins first; keep the poll short.
    event_names.sort_by_key(|n| std::cmp::Reverse(names[n]));
    event_names.truncate(5);

    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join("crosswind.db");
    let toml = format!(
        r#"
name = "prod"
mode = "lookup_events"
regions = {regions:?}
endpoint_url = "{url}"
event_names = {event_names:?}
lookback_secs = 1800
initial_backfill_secs = 3600
max_calls_per_sec = 8
max_retries = 12
request_timeout_secs = 10
"#,
        url = sim.url()
    );
    let cfg: AwsConfig = toml::from_str(&toml).expect("aws config");
    assert_eq!(cfg.validate(), vec![]);
    let make = |cfg: AwsConfig| async move {
        let mut c = AwsCollector::with_credentials(cfg, CredentialSource::Static(creds()))
            .await
            .expect("collector");
        c.set_retry_tuning(fast_tuning());
        c
    };
    let mut store = Store::open(&store_path).expect("store");
    let mut c = make(cfg.clone()).await;
    let start = sim_cfg.start;
    let end = start + i64::from(sim_cfg.hours) * HOUR;
    let mut now = start + HOUR;
    let mut polls = 0;
    while now <= end + HOUR {
        sim.set_now(now);
        match polls {
            1 => sim.push_faults([CloudTrailFault::Throttle; 4]),
            2 => sim.push_faults([
                CloudTrailFault::InternalFailure,
                CloudTrailFault::Unavailable,
            ]),
            _ => {}
        }
        if polls == 4 {
            // Kill mid-poll, then a new process: fresh collector, reopened store.
            let r =
                tokio::time::timeout(Duration::from_millis(300), c.poll_once(&mut store, ts(now)))
                    .await;
            assert!(r.is_err(), "the poll should have been cut off");
            drop(c);
            drop(store);
            store = Store::open(&store_path).expect("reopen");
            c = make(cfg.clone()).await;
        }
        let stats = c.poll_once(&mut store, ts(now)).await.expect("poll");
        assert_eq!(stats.quarantined, 0);
        polls += 1;
        now += 30 * MIN;
    }
    let st = c.status(&store, ts(now)).expect("status");
    assert_eq!(st.checkpoints.len(), regions.len());
    assert_eq!(st.last_error, None);
    drop(store);
    let served = sim.served_ids();
    let region_refs: Vec<&str> = regions.iter().map(String::as_str).collect();
    let name_refs: Vec<&str> = event_names.iter().map(String::as_str).collect();
    let expected = sim.visible_ids(i64::MAX, start, end, &name_refs, &region_refs);
    assert_eq!(
        served, expected,
        "the simulator served a different set than generated"
    );
    assert!(!served.is_empty());
    assert_exact(&stored_ids(&store_path), &served);
    assert!(sim.throttled() >= 4, "no throttling was exercised");
    assert!(
        sim.served_count() > served.len() as u64,
        "the overlap re-read nothing"
    );
    println!(
        "aws lookup e2e: {} records, {} polls, {} requests ({} throttled); metrics after restart {:?}",
        served.len(),
        polls,
        sim.requests(),
        sim.throttled(),
        c.metrics().snapshot()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_figures() {
    let sim_cfg = SimConfig {
        hours: 24,
        users: 400,
        ..SimConfig::default()
    };
    let data = generate(&sim_cfg, &[Scenario::Mixed]);
    let sim = CloudTrailSim::start(&data.cloudtrail, &[])
        .await
        .expect("sim");
    sim.set_rate_limit(None);
    let mut by_region: BTreeMap<String, usize> = BTreeMap::new();
    for r in &data.cloudtrail {
        *by_region
            .entry(str_at(r, "awsRegion").to_owned())
            .or_default() += 1;
    }
    let region = by_region
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(r, _)| r.clone())
        .unwrap_or_default();
    let names: BTreeSet<String> = data
        .cloudtrail
        .iter()
        .map(|r| str_at(r, "eventName").to_owned())
        .collect();
    let names: Vec<String> = names.into_iter().collect();
    let toml = format!(
        "name = \"fig\"\nregions = [\"{region}\"]\nendpoint_url = \"{}\"\nevent_names = {names:?}\ninitial_backfill_secs = 100000\nmax_calls_per_sec = 1000\n",
        sim.url()
    );
    let cfg: AwsConfig = toml::from_str(&toml).expect("config");
    let mut c = AwsCollector::with_credentials(cfg, CredentialSource::Static(creds()))
        .await
        .expect("collector");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("s.db")).expect("store");
    let now = sim_cfg.start + 25 * HOUR;
    sim.set_now(now);
    let t0 = Instant::now();
    let stats = c.poll_once(&mut store, ts(now)).await.expect("poll");
    let secs = t0.elapsed().as_secs_f64();
    let n = sim.served_ids().len() as f64;
    assert_eq!(stats.stored as f64, n);
    println!(
        "aws lookup figures: {n} records ({} event names, 1 region) in {secs:.2}s unpaced = {:.0} records/s; {} requests = {:.0} per 10,000 records (50 per page); at the API's 2 calls/s that is {:.0} records/s",
        names.len(),
        n / secs,
        stats.requests,
        stats.requests as f64 * 10_000.0 / n,
        n / (stats.requests as f64 / 2.0),
    );
}

/// A LookupEvents collector over generated records, unpaced by the simulator: (sim, collector
/// config with `regions` and the five commonest event names, the records, window start and end).
async fn lookup_env(
    regions: &[&str],
    edit: impl Fn(usize, &mut Value),
) -> (CloudTrailSim, AwsConfig, i64, i64) {
    lookup_env_late(regions, edit, |_| 0).await
}

/// As [`lookup_env`], the i-th record showing up `delay(i)` ms after its `eventTime`.
async fn lookup_env_late(
    regions: &[&str],
    edit: impl Fn(usize, &mut Value),
    delay: impl Fn(usize) -> i64,
) -> (CloudTrailSim, AwsConfig, i64, i64) {
    let sim_cfg = SimConfig {
        hours: 6,
        users: 60,
        ..SimConfig::default()
    };
    let mut data = generate(&sim_cfg, &[Scenario::Mixed]);
    for (i, r) in data.cloudtrail.iter_mut().enumerate() {
        edit(i, r);
    }
    let delays: Vec<i64> = (0..data.cloudtrail.len()).map(delay).collect();
    let sim = CloudTrailSim::start(&data.cloudtrail, &delays)
        .await
        .expect("cloudtrail sim");
    sim.set_rate_limit(None);
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for r in &data.cloudtrail {
        *names.entry(str_at(r, "eventName").to_owned()).or_default() += 1;
    }
    let mut event_names: Vec<String> = names.keys().cloned().collect();
    event_names.sort_by_key(|n| std::cmp::Reverse(names[n]));
    event_names.truncate(5);
    let toml = format!(
        r#"
name = "prod"
regions = {regions:?}
endpoint_url = "{url}"
event_names = {event_names:?}
lookback_secs = 1800
initial_backfill_secs = 3600
max_calls_per_sec = 1000
max_retries = 3
request_timeout_secs = 10
"#,
        url = sim.url()
    );
    let cfg: AwsConfig = toml::from_str(&toml).expect("aws config");
    assert_eq!(cfg.validate(), vec![]);
    let start = sim_cfg.start;
    (sim, cfg, start, start + i64::from(sim_cfg.hours) * HOUR)
}

async fn lookup_collector(cfg: &AwsConfig) -> AwsCollector {
    let mut c = AwsCollector::with_credentials(cfg.clone(), CredentialSource::Static(creds()))
        .await
        .expect("collector");
    c.set_retry_tuning(fast_tuning());
    c
}

/// Issue 16, clock: the host clock ran two hours fast for one poll (its checkpoints are two hours
/// in the future), then was set back. Polls go on at the true time while records keep arriving:
/// every record is collected, the stretch after the fast poll included, and each region's
/// checkpoint was re-based once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_checkpoint_ahead_of_the_clock_skips_nothing() {
    let regions = ["us-east-1", "eu-west-1"];
    let (sim, cfg, start, end) = lookup_env(&regions, |_, _| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("crosswind.db")).expect("store");
    let mut c = lookup_collector(&cfg).await;
    let mut now = start + HOUR;
    let mut polls = 0;
    while now <= end + HOUR {
        sim.set_now(now);
        // The second poll runs on a clock two hours fast; the sources' clocks are right.
        let clock = if polls == 1 { now + 2 * HOUR } else { now };
        c.poll_once(&mut store, ts(clock)).await.expect("poll");
        if polls == 1 {
            let st = c.status(&store, ts(now)).expect("status");
            assert!(
                st.checkpoints
                    .iter()
                    .all(|cp| cp.checkpoint.timestamp_millis() > now + HOUR),
                "the fast poll should have left checkpoints in the future: {st:?}"
            );
        }
        polls += 1;
        now += 20 * MIN;
    }
    let name_refs: Vec<&str> = cfg.event_names.iter().map(String::as_str).collect();
    let expected = sim.visible_ids(i64::MAX, start, end, &name_refs, &regions);
    assert!(!expected.is_empty());
    assert_exact(&stored_ids(&dir.path().join("crosswind.db")), &expected);
    let st = c.status(&store, ts(now)).expect("status");
    // Read by the polls' own windows, not picked up late by the sweep behind them.
    assert_eq!(st.too_late, 0);
    assert!(
        st.checkpoints
            .iter()
            .all(|cp| cp.checkpoint.timestamp_millis() <= now),
        "checkpoints still ahead of the clock: {st:?}"
    );
    assert_eq!(
        c.metrics().snapshot().checkpoint_rebases,
        regions.len() as u64,
        "each region's checkpoint is re-based once, in the first poll after the clock was set back"
    );
}

/// Issue 16, records later than the lookback: every 9th record shows up in LookupEvents 45
/// minutes after its `eventTime`, with `lookback_secs` = 30 minutes, so no poll's window still
/// covers it when it arrives. Each region's late sweep collects them all and counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_records_later_than_the_lookback_are_collected_and_counted() {
    let regions = ["us-east-1", "eu-west-1"];
    let late = |i: usize| i % 9 == 4;
    let (sim, cfg, start, end) =
        lookup_env_late(&regions, |_, _| {}, |i| if late(i) { 45 * MIN } else { 0 }).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join("crosswind.db");
    let mut store = Store::open(&store_path).expect("store");
    let mut c = lookup_collector(&cfg).await;
    let mut now = start + HOUR;
    let mut found = 0;
    while now <= end + 3 * HOUR {
        sim.set_now(now);
        found += c
            .poll_once(&mut store, ts(now))
            .await
            .expect("poll")
            .too_late;
        now += 10 * MIN;
    }
    let name_refs: Vec<&str> = cfg.event_names.iter().map(String::as_str).collect();
    let expected = sim.visible_ids(i64::MAX, start, end, &name_refs, &regions);
    drop(store);
    assert_exact(&stored_ids(&store_path), &expected);
    assert!(found > 5, "{found}");
    assert_eq!(c.metrics().snapshot().records_too_late, found);
    let store = Store::open(&store_path).expect("store");
    assert_eq!(c.status(&store, ts(now)).expect("status").too_late, found);
}

/// Issue 16, regions: the middle one of three regions refuses the credentials (an opt-in region
/// not enabled answers `UnrecognizedClientException`). The regions after it are still read and
/// checkpointed; the poll reports the failing region by name, `status` and the region metrics
/// show it failing while the others are fine; once it is enabled its records from the whole
/// window are collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_failing_middle_region_does_not_starve_the_others() {
    let regions = ["eu-west-1", "ap-southeast-3", "us-east-1"];
    // Some of the regional calls happen in ap-southeast-3.
    let (sim, cfg, start, end) = lookup_env(&regions, |i, r| {
        if i % 3 == 0 && str_at(r, "awsRegion") == "eu-west-1" {
            r["awsRegion"] = Value::from("ap-southeast-3");
        }
    })
    .await;
    sim.set_region_refused("ap-southeast-3", true);
    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join("crosswind.db");
    let mut store = Store::open(&store_path).expect("store");
    let mut c = lookup_collector(&cfg).await;
    let name_refs: Vec<&str> = cfg.event_names.iter().map(String::as_str).collect();
    let mut now = start + HOUR;
    let mut failed_polls = 0;
    while now <= end {
        sim.set_now(now);
        failed_polls += 1;
        let err = c
            .poll_once(&mut store, ts(now))
            .await
            .expect_err("a region fails");
        let msg = err.to_string();
        assert!(
            msg.starts_with("1 of 3 regions failed: ap-southeast-3: ")
                && msg.contains("UnrecognizedClientException"),
            "{msg}"
        );
        now += 30 * MIN;
    }
    let healthy = sim.visible_ids(
        i64::MAX,
        start,
        end,
        &name_refs,
        &["eu-west-1", "us-east-1"],
    );
    let middle = sim.visible_ids(i64::MAX, start, end, &name_refs, &["ap-southeast-3"]);
    assert!(!healthy.is_empty() && !middle.is_empty());
    assert_exact(&stored_ids(&store_path), &healthy);
    let st = c.status(&store, ts(now)).expect("status");
    let scopes: Vec<&str> = st.checkpoints.iter().map(|c| c.scope.as_str()).collect();
    assert_eq!(scopes, ["eu-west-1", "us-east-1"]);
    assert_eq!(st.region_errors.len(), 1);
    assert_eq!(st.region_errors[0].0, "ap-southeast-3");
    assert!(st.last_error.is_some());
    let m = c.metrics().regions();
    let by: BTreeMap<&str, &crosswind_aws::RegionMetrics> =
        m.iter().map(|(r, m)| (r.as_str(), m)).collect();
    assert_eq!(by["ap-southeast-3"].up, Some(false));
    assert_eq!(by["ap-southeast-3"].errors, failed_polls);
    assert_eq!(by["ap-southeast-3"].lag_secs, None);
    assert_eq!(by["us-east-1"].up, Some(true));
    assert_eq!(by["us-east-1"].errors, 0);
    assert_eq!(by["eu-west-1"].lag_secs, Some(0));

    // Enabled: its first poll reads from now - initial_backfill, as any first poll does.
    sim.set_region_refused("ap-southeast-3", false);
    let first_ok = now;
    while now <= end + HOUR {
        sim.set_now(now);
        c.poll_once(&mut store, ts(now)).await.expect("poll");
        now += 30 * MIN;
    }
    let st = c.status(&store, ts(now)).expect("status");
    assert_eq!(st.region_errors, vec![]);
    assert_eq!(st.last_error, None);
    assert_eq!(st.checkpoints.len(), 3);
    drop(store);
    let late_start = first_ok - HOUR;
    let mut expected = healthy;
    expected.extend(sim.visible_ids(i64::MAX, late_start, end, &name_refs, &["ap-southeast-3"]));
    assert_exact(&stored_ids(&store_path), &expected);
}

// === s3 (moto) ===

struct Moto {
    url: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn port_open(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(
        &addr
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 1))),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// A moto server: `$MOTO_SERVER_URL`, or `moto_server` started on a free port. `None` only
/// when moto is missing and `CROSSWIND_SKIP_MOTO=1`.
fn moto() -> Option<Moto> {
    if let Ok(url) = std::env::var("MOTO_SERVER_URL") {
        return Some(Moto { url, child: None });
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let spawned = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CROSSWIND_SKIP_MOTO").as_deref() == Ok("1") {
                eprintln!(
                    "skipping the S3/SQS test: moto_server not found ({e}) and CROSSWIND_SKIP_MOTO=1"
                );
                return None;
            }
            panic!(
                "moto_server not found ({e}): install it with `pip install 'moto[server]'`, or point \
                 MOTO_SERVER_URL at a running one, or set CROSSWIND_SKIP_MOTO=1 to skip this test"
            );
        }
    };
    let m = Moto {
        url: format!("http://127.0.0.1:{port}"),
        child: Some(child),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !port_open(&format!("127.0.0.1:{port}")) {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(m)
}

/// Records of one trail file: (account, region, 5-minute slot) → records.
type TrailGroup<'a> = ((String, String, i64), Vec<&'a Value>);

fn gz_trail_file(records: &[&Value]) -> Vec<u8> {
    let body = serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap_or_default();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(&body);
    enc.finish().unwrap_or_default()
}

/// Trail file key for records of one account, region and 5-minute slot, as CloudTrail names them.
fn trail_key(prefix: &str, account: &str, region: &str, slot_ms: i64, n: usize) -> String {
    let t = ts(slot_ms);
    format!(
        "{prefix}{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{n:04}.json.gz",
        t.format("%Y/%m/%d"),
        t.format("%Y%m%dT%H%MZ"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_mode_with_sqs_notifications_against_moto() {
    let Some(moto) = moto() else { return };
    let sim_cfg = SimConfig {
        hours: 6,
        users: 60,
        ..SimConfig::default()
    };
    let data = generate(&sim_cfg, &[Scenario::Mixed]);
    // Group records into trail files: (account, region, 5-minute slot).
    let mut files: BTreeMap<(String, String, i64), Vec<&Value>> = BTreeMap::new();
    for r in &data.cloudtrail {
        let t = DateTime::parse_from_rfc3339(str_at(r, "eventTime"))
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        let acct = r
            .get("recipientAccountId")
            .and_then(Value::as_str)
            .unwrap_or("123456789012")
            .to_owned();
        files
            .entry((
                acct,
                str_at(r, "awsRegion").to_owned(),
                t - t.rem_euclid(5 * MIN),
            ))
            .or_default()
            .push(r);
    }
    let suffix = format!(
        "{:x}",
        std::process::id() ^ (Instant::now().elapsed().as_nanos() as u32)
    );
    let bucket = format!("crosswind-trail-{suffix}");
    let queue = format!("crosswind-trail-{suffix}");
    let prefix = "AWSLogs/o-exampleorg/";

    // Set up the bucket, the queue and S3 → SQS notifications with plain SDK clients.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(creds())
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&conf);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let q = sqs
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .expect("create queue");
    let queue_url = q.queue_url().unwrap_or_default().to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(
                    aws_sdk_s3::types::QueueConfiguration::builder()
                        .queue_arn(queue_arn)
                        .events(aws_sdk_s3::types::Event::S3ObjectCreated)
                        .build()
                        .expect("queue configuration"),
                )
                .build(),
        )
        .send()
        .await
        .expect("bucket notification");

    let all: Vec<_> = files.into_iter().collect();
    let (first, second) = all.split_at(all.len() / 2);
    let upload = |batch: &[TrailGroup<'_>]| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        let batch: Vec<(String, Vec<u8>)> = batch
            .iter()
            .enumerate()
            .map(|(i, ((acct, region, slot), recs))| {
                (
                    trail_key(prefix, acct, region, *slot, i),
                    gz_trail_file(recs),
                )
            })
            .collect();
        async move {
            for (key, body) in batch {
                s3.put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(body.into())
                    .send()
                    .await
                    .expect("put trail file");
            }
        }
    };
    // A non-trail object and a digest file: notified, ignored, message deleted.
    s3.put_object()
        .bucket(&bucket)
        .key(format!(
            "{prefix}123456789012/CloudTrail-Digest/us-east-1/2026/11/30/d.json.gz"
        ))
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect("put digest");
    upload(first).await;

    let wanted: Vec<String> = crosswind_aws::DEFAULT_EVENT_NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let toml = format!(
        r#"
name = "org"
mode = "s3"
regions = []
role_arn = "arn:aws:iam::123456789012:role/crosswind-reader"
endpoint_url = "{url}"
bucket = "{bucket}"
prefix = "{prefix}"
queue_url = "{queue_url}"
visibility_timeout_secs = 2
event_names = {wanted:?}
max_retries = 3
request_timeout_secs = 10
"#,
        url = moto.url
    );
    let cfg: AwsConfig = toml::from_str(&toml).expect("config");
    assert_eq!(cfg.validate(), vec![]);
    let make = |cfg: AwsConfig| async move {
        let mut c = AwsCollector::with_credentials(cfg, CredentialSource::Static(creds()))
            .await
            .expect("collector");
        c.set_retry_tuning(fast_tuning());
        c
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join("crosswind.db");
    let mut store = Store::open(&store_path).expect("store");
    let mut c = make(cfg.clone()).await;
    let now = ts(sim_cfg.start + 7 * HOUR);
    let s1 = c.poll_once(&mut store, now).await.expect("poll 1");
    assert!(s1.files > 0 && s1.messages_deleted > s1.files, "{s1:?}");

    // Second half; the poll is killed mid-run, then a new process picks up.
    upload(second).await;
    let _ = tokio::time::timeout(Duration::from_millis(150), c.poll_once(&mut store, now)).await;
    drop(c);
    drop(store);
    let mut store = Store::open(&store_path).expect("reopen");
    let mut c = make(cfg.clone()).await;
    // Messages received by the killed poll come back after the visibility timeout.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        c.poll_once(&mut store, now)
            .await
            .expect("poll after restart");
        let left = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )
            .send()
            .await
            .expect("queue depth");
        let n: u64 = attrs_sum(left.attributes());
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} notifications never drained");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A listing backfill (`collect --since`) over the same files adds nothing.
    let s3_since = c
        .poll_since(&mut store, ts(sim_cfg.start - HOUR), now)
        .await
        .expect("listing poll");
    assert_eq!(s3_since.stored, 0, "{s3_since:?}");
    let st = c.status(&store, now).expect("status");
    assert!(st.files_done > 0);
    // A month later (file checkpoints aged by hand), the next poll forgets them; the records
    // stay, and re-listing the old window still stores nothing twice.
    store
        .connection()
        .execute(
            "UPDATE checkpoints SET updated_at = updated_at - 30 * 86400000
             WHERE name LIKE 'aws:%:s3key:%'",
            [],
        )
        .expect("age checkpoints");
    c.poll_once(&mut store, now)
        .await
        .expect("poll after a month");
    assert_eq!(c.status(&store, now).expect("status").files_done, 0);
    let again = c
        .poll_since(&mut store, ts(sim_cfg.start - HOUR), now)
        .await
        .expect("listing poll over forgotten files");
    assert_eq!(again.stored, 0, "{again:?}");
    assert!(again.duplicates > 0, "{again:?}");
    drop(store);

    let expected: BTreeSet<String> = data
        .cloudtrail
        .iter()
        .filter(|r| wanted.iter().any(|w| w == str_at(r, "eventName")))
        .map(|r| str_at(r, "eventID").to_owned())
        .collect();
    assert!(!expected.is_empty());
    assert_exact(&stored_ids(&store_path), &expected);
    println!(
        "aws s3 e2e: {} records kept of {} in {} trail files; metrics {:?}",
        expected.len(),
        data.cloudtrail.len(),
        st.files_done,
        c.metrics().snapshot()
    );
}

fn attrs_sum(
    a: Option<&std::collections::HashMap<aws_sdk_sqs::types::QueueAttributeName, String>>,
) -> u64 {
    a.map(|m| m.values().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0)
}

/// Issue 16, S3 mode:
/// - one trail file that cannot be read (archived to Glacier: `GetObject` answers
///   `InvalidObjectState`, as a KMS key the role may not use answers `AccessDenied`) no longer
///   stops every key after it: the others are collected, the poll fails naming it, `status`
///   counts it, it is quarantined once and read as soon as it is readable again;
/// - notifications in CloudTrail's own SNS shape (`s3Bucket`, `s3ObjectKey[]`, wrapped in the SNS
///   envelope or raw) and EventBridge `Object Created` events are read and deleted, not left on
///   the queue for ever; the notification of an unreadable file stays on the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_mode_unreadable_file_and_notification_shapes_against_moto() {
    let Some(moto) = moto() else { return };
    let sim_cfg = SimConfig {
        hours: 6,
        users: 60,
        ..SimConfig::default()
    };
    let data = generate(&sim_cfg, &[Scenario::Mixed]);
    let wanted: Vec<String> = crosswind_aws::DEFAULT_EVENT_NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    // One trail file per (account, region, hour) that holds a wanted record.
    let mut groups: BTreeMap<(String, String, i64), Vec<&Value>> = BTreeMap::new();
    for r in &data.cloudtrail {
        let t = DateTime::parse_from_rfc3339(str_at(r, "eventTime"))
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        let acct = r
            .get("recipientAccountId")
            .and_then(Value::as_str)
            .unwrap_or("123456789012")
            .to_owned();
        groups
            .entry((
                acct,
                str_at(r, "awsRegion").to_owned(),
                t - t.rem_euclid(HOUR),
            ))
            .or_default()
            .push(r);
    }
    let prefix = "AWSLogs/";
    let files: Vec<(String, Vec<u8>, BTreeSet<String>)> = groups
        .iter()
        .enumerate()
        .map(|(i, ((acct, region, slot), recs))| {
            let ids = recs
                .iter()
                .filter(|r| wanted.iter().any(|w| w == str_at(r, "eventName")))
                .map(|r| str_at(r, "eventID").to_owned())
                .collect();
            (
                trail_key(prefix, acct, region, *slot, i),
                gz_trail_file(recs),
                ids,
            )
        })
        .filter(|(_, _, ids): &(String, Vec<u8>, BTreeSet<String>)| !ids.is_empty())
        .collect();
    assert!(files.len() >= 7, "{} trail files", files.len());
    let suffix = format!("{:x}", std::process::id() ^ 0x5eed);
    let bucket = format!("crosswind-unread-{suffix}");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(creds())
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&conf);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let put = |i: usize, class: aws_sdk_s3::types::StorageClass| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        let (key, body) = (files[i].0.clone(), files[i].1.clone());
        async move {
            s3.put_object()
                .bucket(&bucket)
                .key(&key)
                .storage_class(class)
                .body(body.into())
                .send()
                .await
                .expect("put trail file");
        }
    };
    use aws_sdk_s3::types::StorageClass;
    let ids_of = |range: &[usize]| -> BTreeSet<String> {
        range.iter().flat_map(|i| files[*i].2.clone()).collect()
    };
    let config = |name: &str, queue_url: &str| -> AwsConfig {
        let toml = format!(
            "name = \"{name}\"\nmode = \"s3\"\nregions = []\nendpoint_url = \"{url}\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}\"\nqueue_url = \"{queue_url}\"\nvisibility_timeout_secs = 60\nmax_retries = 2\nrequest_timeout_secs = 10\n",
            url = moto.url
        );
        let cfg: AwsConfig = toml::from_str(&toml).expect("config");
        assert_eq!(cfg.validate(), vec![]);
        cfg
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join("crosswind.db");
    let mut store = Store::open(&store_path).expect("store");
    let now = ts(sim_cfg.start + 7 * HOUR);

    // Listing: the second of three files (in key order) is archived.
    put(0, StorageClass::Standard).await;
    put(1, StorageClass::Glacier).await;
    put(2, StorageClass::Standard).await;
    let mut lister =
        AwsCollector::with_credentials(config("listed", ""), CredentialSource::Static(creds()))
            .await
            .expect("collector");
    for _ in 0..2 {
        let err = lister
            .poll_once(&mut store, now)
            .await
            .expect_err("one file is unreadable");
        let msg = err.to_string();
        assert!(
            msg.starts_with("1 trail file(s) could not be read") && msg.contains(&files[1].0),
            "{msg}"
        );
    }
    assert_exact(&stored_ids(&store_path), &ids_of(&[0, 2]));
    let st = lister.status(&store, now).expect("status");
    assert_eq!((st.files_done, st.files_failing), (2, 1));
    assert!(st.last_error.is_some());
    assert_eq!(lister.metrics().snapshot().files_failed, 2);
    let quarantined: Vec<_> = store
        .quarantine(10)
        .expect("quarantine")
        .into_iter()
        .filter(|q| q.position.as_deref() == Some(&format!("s3://{bucket}/{}", files[1].0)))
        .collect();
    assert_eq!(
        quarantined.len(),
        1,
        "quarantined once, however often it fails"
    );
    // Restored: the next poll reads it.
    put(1, StorageClass::Standard).await;
    lister.poll_once(&mut store, now).await.expect("poll");
    let st = lister.status(&store, now).expect("status");
    assert_eq!(
        (st.files_done, st.files_failing, st.last_error),
        (3, 0, None)
    );
    assert_exact(&stored_ids(&store_path), &ids_of(&[0, 1, 2]));

    // Queue: CloudTrail's SNS notification (enveloped and raw), an EventBridge event, and an
    // EventBridge event for an archived file.
    let q = sqs
        .create_queue()
        .queue_name(format!("crosswind-unread-{suffix}"))
        .send()
        .await
        .expect("create queue");
    let queue_url = q.queue_url().unwrap_or_default().to_owned();
    for (i, class) in [
        (3, StorageClass::Standard),
        (4, StorageClass::Standard),
        (5, StorageClass::Standard),
        (6, StorageClass::Glacier),
    ] {
        put(i, class).await;
    }
    let trail_note =
        |i: usize| serde_json::json!({"s3Bucket": bucket, "s3ObjectKey": [files[i].0]}).to_string();
    let event_bridge = |i: usize| {
        serde_json::json!({
            "version": "0", "id": format!("e{i}"), "detail-type": "Object Created",
            "source": "aws.s3", "account": "111122223333", "time": "2026-11-30T07:00:00Z",
            "region": "us-east-1", "resources": [format!("arn:aws:s3:::{bucket}")],
            "detail": {"version": "0", "bucket": {"name": bucket},
                       "object": {"key": files[i].0, "size": files[i].1.len()},
                       "reason": "PutObject"}
        })
        .to_string()
    };
    let bodies = [
        serde_json::json!({"Type": "Notification", "MessageId": "m3",
            "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail", "Message": trail_note(3)})
        .to_string(),
        trail_note(4),
        event_bridge(5),
        event_bridge(6),
        "not a notification".to_owned(),
    ];
    for b in bodies {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(b)
            .send()
            .await
            .expect("send message");
    }
    let mut queued = AwsCollector::with_credentials(
        config("queued", &queue_url),
        CredentialSource::Static(creds()),
    )
    .await
    .expect("collector");
    let err = queued
        .poll_once(&mut store, now)
        .await
        .expect_err("the archived file fails");
    assert!(err.to_string().contains(&files[6].0), "{err}");
    let depth = |name: aws_sdk_sqs::types::QueueAttributeName| {
        let (sqs, queue_url) = (sqs.clone(), queue_url.clone());
        async move {
            let a = sqs
                .get_queue_attributes()
                .queue_url(&queue_url)
                .attribute_names(name)
                .send()
                .await
                .expect("queue attributes");
            attrs_sum(a.attributes())
        }
    };
    use aws_sdk_sqs::types::QueueAttributeName as A;
    assert_eq!(depth(A::ApproximateNumberOfMessages).await, 0);
    assert_eq!(
        depth(A::ApproximateNumberOfMessagesNotVisible).await,
        2,
        "only the unreadable file's notification and the message of no known shape are left, in flight"
    );
    assert_eq!(queued.metrics().snapshot().messages_unrecognized, 1);
    drop(store);
    assert_exact(&stored_ids(&store_path), &ids_of(&[0, 1, 2, 3, 4, 5]));
}

/// Issue 16, clock, S3 listing mode: a listing poll on a clock two hours fast (just past
/// midnight) leaves the listing checkpoint on the next day; back on the right clock the next
/// poll would walk the day folders from tomorrow only, so a trail file delivered into today's
/// folder after the fast poll was never listed. Re-based, it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_listing_checkpoint_ahead_of_the_clock_skips_nothing() {
    let Some(moto) = moto() else { return };
    let sim_cfg = SimConfig {
        hours: 6,
        users: 60,
        ..SimConfig::default()
    };
    let data = generate(&sim_cfg, &[Scenario::Mixed]);
    let wanted: Vec<&Value> = data
        .cloudtrail
        .iter()
        .filter(|r| crosswind_aws::DEFAULT_EVENT_NAMES.contains(&str_at(r, "eventName")))
        .collect();
    let (first, second) = wanted.split_at(wanted.len() / 2);
    let ids = |recs: &[&Value]| -> BTreeSet<String> {
        recs.iter()
            .map(|r| str_at(r, "eventID").to_owned())
            .collect()
    };
    let bucket = format!("crosswind-clock-{:x}", std::process::id() ^ 0xc10c);
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(creds())
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let put = |slot: i64, n: usize, recs: &[&Value]| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        let key = trail_key("AWSLogs/", "123456789012", "us-east-1", slot, n);
        let body = gz_trail_file(recs);
        async move {
            s3.put_object()
                .bucket(&bucket)
                .key(&key)
                .body(body.into())
                .send()
                .await
                .expect("put trail file");
        }
    };
    let toml = format!(
        "name = \"listed\"\nmode = \"s3\"\nregions = []\nendpoint_url = \"{}\"\nbucket = \"{bucket}\"\nmax_retries = 2\nrequest_timeout_secs = 10\n",
        moto.url
    );
    let cfg: AwsConfig = toml::from_str(&toml).expect("config");
    let mut c = AwsCollector::with_credentials(cfg, CredentialSource::Static(creds()))
        .await
        .expect("collector");
    let dir = tempfile::tempdir().expect("tempdir");
    let store_path = dir.path().join("crosswind.db");
    let mut store = Store::open(&store_path).expect("store");
    let day = sim_cfg.start;
    put(day + 22 * HOUR, 1, first).await;
    // 23:10 on a clock two hours fast: 01:10 the next day.
    c.poll_once(&mut store, ts(day + 25 * HOUR + 10 * MIN))
        .await
        .expect("fast poll");
    put(day + 23 * HOUR + 30 * MIN, 2, second).await;
    c.poll_once(&mut store, ts(day + 23 * HOUR + 50 * MIN))
        .await
        .expect("poll");
    drop(store);
    let mut expected = ids(first);
    expected.extend(ids(second));
    assert_exact(&stored_ids(&store_path), &expected);
    assert_eq!(c.metrics().snapshot().checkpoint_rebases, 1);
}
