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
