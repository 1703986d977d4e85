//! `mode = "s3"`: CloudTrail trail files (`{"Records":[…]}`, gzip) under
//! `AWSLogs/[o-…/]<account>/CloudTrail/<region>/YYYY/MM/DD/`, found through S3 event
//! notifications on an SQS queue (deleted only after the file's records are committed) or by
//! listing the day prefixes of the poll window. Each file is one transaction that also records
//! the key as done, so a file is read once even when notified twice.

use aws_sdk_s3::error::ProvideErrorMetadata;
use chrono::{DateTime, Datelike, Utc};
use crosswind_store::{QuarantineRecord, Store};

use crate::trail::{EventFilter, MAX_FILE_BYTES, store_trail_file};
use crate::{AwsCollector, AwsError, PollStats, add, fmt_time, parse_time};

/// Most notification batches one poll receives (10 messages each).
const MAX_RECEIVES: usize = 1000;

/// One S3 object named by a notification.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Notified {
    pub bucket: String,
    pub key: String,
}

/// What a notification message holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Notification {
    Objects(Vec<Notified>),
    /// `s3:TestEvent`, sent when the notification is configured.
    Test,
}

/// Parses a queue message naming trail files, in any of the shapes that reach an SQS queue:
/// - an S3 event notification (`{"Records":[{"eventName":"ObjectCreated:…","s3":{…}}]}`), keys
///   URL-encoded (`+` for space);
/// - CloudTrail's own log-delivery notification (`{"s3Bucket":"…","s3ObjectKey":["…"]}`, the
///   trail's SNS topic), keys as stored;
/// - an EventBridge `Object Created` event from `aws.s3` (`detail.bucket.name`,
///   `detail.object.key`), keys as stored;
///
/// each either as the message body or wrapped in an SNS envelope (`{"Type":"Notification",
/// "Message":"…"}`, a queue subscribed without raw message delivery).
pub(crate) fn parse_notification(body: &str) -> Option<Notification> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let v = match v.get("Type").and_then(|t| t.as_str()) {
        Some("Notification") => serde_json::from_str(v.get("Message")?.as_str()?).ok()?,
        _ => v,
    };
    if v.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return Some(Notification::Test);
    }
    if let Some(bucket) = v.get("s3Bucket").and_then(|b| b.as_str()) {
        let keys = match v.get("s3ObjectKey")? {
            serde_json::Value::Array(a) => a.iter().filter_map(|k| k.as_str()).collect(),
            serde_json::Value::String(k) => vec![k.as_str()],
            _ => return None,
        };
        return Some(Notification::Objects(
            keys.into_iter()
                .map(|k| Notified {
                    bucket: bucket.to_owned(),
                    key: k.to_owned(),
                })
                .collect(),
        ));
    }
    if v.get("source").and_then(|s| s.as_str()) == Some("aws.s3")
        && let Some(kind) = v.get("detail-type").and_then(|d| d.as_str())
    {
        if kind != "Object Created" {
            return Some(Notification::Objects(Vec::new()));
        }
        let d = v.get("detail")?;
        return Some(Notification::Objects(vec![Notified {
            bucket: d.get("bucket")?.get("name")?.as_str()?.to_owned(),
            key: d.get("object")?.get("key")?.as_str()?.to_owned(),
        }]));
    }
    let recs = v.get("Records")?.as_array()?;
    let mut out = Vec::new();
    for r in recs {
        let name = r
            .get("eventName")
            .and_then(|e| e.as_str())
            .unwrap_or_default();
        if !name.starts_with("ObjectCreated") {
            continue;
        }
        let s3 = r.get("s3")?;
        let bucket = s3.get("bucket")?.get("name")?.as_str()?.to_owned();
        let raw_key = s3.get("object")?.get("key")?.as_str()?;
        let key = url::form_urlencoded::parse(raw_key.as_bytes())
            .next()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.into_owned()
                } else {
                    format!("{k}={v}")
                }
            })
            .unwrap_or_default();
        out.push(Notified { bucket, key });
    }
    Some(Notification::Objects(out))
}

/// `(region)` when `key` is a CloudTrail log file (not a digest or insight file).
pub(crate) fn trail_file_region(key: &str) -> Option<&str> {
    if !key.ends_with(".json.gz") && !key.ends_with(".json") {
        return None;
    }
    let mut parts = key.split('/');
    while let Some(p) = parts.next() {
        if p == "CloudTrail" {
            return parts.next();
        }
    }
    None
}

fn key_checkpoint(name: &str, key: &str) -> String {
    format!("aws:{name}:s3key:{key}")
}

/// A trail file that could not be read: tried again by every poll until it is read (or ages out
/// like a done key); `status` counts them.
fn failed_checkpoint(name: &str, key: &str) -> String {
    format!("aws:{name}:s3failed:{key}")
}

/// Errors that concern one trail file (its object is unreadable: access denied, a KMS key we may
/// not use, archived, gone, too large), so the others go on. Network and store errors do not.
fn concerns_one_file(e: &AwsError) -> bool {
    match e {
        AwsError::TrailFile { .. } => true,
        AwsError::Api(a) => a.operation == "GetObject" && a.code != "body" && !a.retriable,
        _ => false,
    }
}

/// How long a trail file's checkpoint is kept. A listing poll only walks the day folders from
/// its window start (checkpoint minus `lookback_secs`), and SQS keeps a notification at most 14
/// days, so an older file is not met again on its own; if `collect --since` re-reads one, its
/// records are deduplicated by `eventID`. Without this the table gains a row per file for ever.
fn key_checkpoint_age(lookback_secs: u64) -> std::time::Duration {
    const SQS_MAX_RETENTION: u64 = 14 * 86_400;
    std::time::Duration::from_secs(
        lookback_secs
            .saturating_add(2 * 86_400)
            .max(SQS_MAX_RETENTION + 86_400),
    )
}

fn region_from_queue_url(u: &str) -> Option<String> {
    let host = url::Url::parse(u).ok()?.host_str()?.to_owned();
    let mut it = host.split('.');
    (it.next()? == "sqs").then_some(())?;
    let r = it.next()?;
    (r.contains('-')).then(|| r.to_owned())
}

impl AwsCollector {
    fn s3_client(&self) -> aws_sdk_s3::Client {
        let path_style = self
            .cfg
            .force_path_style
            .unwrap_or(self.cfg.endpoint_url().is_some());
        let mut b = aws_sdk_s3::config::Builder::from(&self.base).force_path_style(path_style);
        if let Some(r) = &self.cfg.bucket_region {
            b = b.region(aws_sdk_s3::config::Region::new(r.clone()));
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    fn sqs_client(&self, queue_url: &str) -> aws_sdk_sqs::Client {
        let mut b = aws_sdk_sqs::config::Builder::from(&self.base);
        if let Some(r) = region_from_queue_url(queue_url) {
            b = b.region(aws_sdk_sqs::config::Region::new(r));
        }
        aws_sdk_sqs::Client::from_conf(b.build())
    }

    fn wants_region(&self, region: &str) -> bool {
        self.cfg.regions.is_empty() || self.cfg.regions.iter().any(|r| r == region)
    }

    pub(crate) async fn poll_s3(
        &mut self,
        store: &mut Store,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<PollStats, AwsError> {
        let mut stats = PollStats::default();
        let bucket = self.cfg.bucket.clone().unwrap_or_default();
        let s3 = self.s3_client();
        self.file_failures.clear();
        match self.cfg.queue_url().map(str::to_owned) {
            Some(q) if since.is_none() => {
                self.drain_queue(store, &s3, &bucket, &q, &mut stats)
                    .await?
            }
            _ => {
                self.list_window(store, &s3, &bucket, since, now, &mut stats)
                    .await?
            }
        }
        let age = key_checkpoint_age(self.cfg.lookback_secs);
        let pruned = store.prune_checkpoints(&key_checkpoint(&self.cfg.name, ""), age)?;
        if pruned > 0 {
            tracing::debug!(collector = %self.cfg.name, pruned, "Forgot old trail-file checkpoints.");
        }
        // A file failing that long was quarantined (with its key) the first time.
        store.prune_checkpoints(&failed_checkpoint(&self.cfg.name, ""), age)?;
        let failures = std::mem::take(&mut self.file_failures);
        stats.files_failed = failures.len() as u64;
        if failures.is_empty() {
            Ok(stats)
        } else {
            Err(AwsError::Files { failures })
        }
    }

    /// [`AwsCollector::process_file`], except that a file that cannot be read is recorded (log,
    /// metric, a quarantine row naming it once, a checkpoint that has it tried again) and the
    /// poll goes on with the next one. `Ok(false)` when it was not read.
    async fn try_file(
        &mut self,
        store: &mut Store,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        stats: &mut PollStats,
    ) -> Result<bool, AwsError> {
        let failed_cp = failed_checkpoint(&self.cfg.name, key);
        match self.process_file(store, s3, bucket, key, stats).await {
            Ok(()) => {
                if store.checkpoint(&failed_cp)?.is_some() {
                    tracing::info!(collector = %self.cfg.name, bucket, key, "Trail file that could not be read before is collected now.");
                    store.delete_checkpoint(&failed_cp)?;
                }
                Ok(true)
            }
            Err(e) if concerns_one_file(&e) => {
                add(&self.metrics.files_failed, 1);
                tracing::warn!(collector = %self.cfg.name, bucket, key, error = %e, "Trail file could not be read; going on with the others, it is tried again next poll.");
                let origin = self.origin();
                let pos = format!("s3://{bucket}/{key}");
                let reason = format!("trail file could not be read: {e}");
                let mut b = store.begin()?;
                b.quarantine_once(&QuarantineRecord {
                    origin: &origin,
                    position: Some(&pos),
                    reason: &reason,
                    raw: pos.as_bytes(),
                })?;
                b.set_checkpoint(&failed_cp, &e.to_string())?;
                b.commit()?;
                self.file_failures.push((key.to_owned(), e));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn drain_queue(
        &mut self,
        store: &mut Store,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        queue_url: &str,
        stats: &mut PollStats,
    ) -> Result<(), AwsError> {
        let sqs = self.sqs_client(queue_url);
        for _ in 0..MAX_RECEIVES {
            let started = std::time::Instant::now();
            let res = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                // Long polling: a short poll asks a sample of SQS's servers and may come back
                // empty while messages wait (SQS developer guide, "Amazon SQS short and long
                // polling"), which would end the drain early. One second is the shortest.
                .wait_time_seconds(1)
                .visibility_timeout(self.cfg.visibility_timeout_secs as i32)
                .send()
                .await;
            add(&self.metrics.requests, 1);
            let out =
                res.map_err(|e| sdk_error("sqs", "ReceiveMessage", &self.base_region(), e))?;
            tracing::debug!(collector = %self.cfg.name, method = "POST", operation = "ReceiveMessage", status = 200u16, duration_ms = started.elapsed().as_millis() as u64, messages = out.messages().len(), "SQS request.");
            if out.messages().is_empty() {
                break;
            }
            for m in out.messages() {
                let Some(receipt) = m.receipt_handle() else {
                    continue;
                };
                let body = m.body().unwrap_or_default();
                let objects = match parse_notification(body) {
                    Some(Notification::Test) => Vec::new(),
                    Some(Notification::Objects(o)) => o,
                    None => {
                        // Not ours to judge: leave it for the queue's redrive policy.
                        add(&self.metrics.messages_unrecognized, 1);
                        tracing::warn!(collector = %self.cfg.name, message_id = m.message_id().unwrap_or_default(), "Queue message is not an S3 event notification; leaving it.");
                        continue;
                    }
                };
                let mut foreign = false;
                let mut unread = false;
                for o in &objects {
                    if o.bucket != bucket {
                        foreign = true;
                        continue;
                    }
                    let wanted = o.key.starts_with(&self.cfg.prefix)
                        && trail_file_region(&o.key).is_some_and(|r| self.wants_region(r));
                    if wanted && !self.try_file(store, s3, bucket, &o.key, stats).await? {
                        unread = true;
                    }
                }
                if foreign {
                    tracing::warn!(collector = %self.cfg.name, "Notification names another bucket; leaving it.");
                    continue;
                }
                if unread {
                    // Back on the queue after its visibility timeout (or to the queue's
                    // dead-letter queue by its redrive policy).
                    continue;
                }
                // Every file it names is committed (or was already): now it may go.
                let started = std::time::Instant::now();
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| sdk_error("sqs", "DeleteMessage", &self.base_region(), e))?;
                add(&self.metrics.requests, 1);
                stats.messages_deleted += 1;
                tracing::debug!(collector = %self.cfg.name, method = "POST", operation = "DeleteMessage", status = 200u16, duration_ms = started.elapsed().as_millis() as u64, "SQS request.");
            }
        }
        Ok(())
    }

    async fn list_window(
        &mut self,
        store: &mut Store,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        stats: &mut PollStats,
    ) -> Result<(), AwsError> {
        let cp_name = format!("aws:{}:s3", self.cfg.name);
        let stored = store
            .checkpoint(&cp_name)?
            .and_then(|c| parse_time(&c.value));
        let checkpoint = self.rebase_if_ahead(store, "s3", stored, now)?;
        let start = self.window_start(since, checkpoint, now);
        stats.window_start = Some(start);
        stats.window_end = Some(now);
        // Walk down to every `…/CloudTrail/<region>/`.
        let mut bases = Vec::new();
        let mut queue = vec![(self.cfg.prefix.clone(), 0u32)];
        while let Some((p, depth)) = queue.pop() {
            let children = self.list(s3, bucket, &p, true).await?;
            for c in children {
                let last = c
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if p.ends_with("/CloudTrail/") || p == "CloudTrail/" {
                    if self.wants_region(&last) {
                        bases.push(c);
                    }
                } else if last == "CloudTrail" || (depth < 3 && !last.starts_with("CloudTrail-")) {
                    queue.push((c, depth + 1));
                }
            }
        }
        bases.sort();
        let mut day = start.date_naive();
        let last_day = now.date_naive();
        let mut keys = Vec::new();
        while day <= last_day {
            for b in &bases {
                let p = format!("{b}{:04}/{:02}/{:02}/", day.year(), day.month(), day.day());
                keys.extend(self.list(s3, bucket, &p, false).await?);
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        // Files that could not be read before, even when their day is behind the window now.
        let failed_prefix = failed_checkpoint(&self.cfg.name, "");
        for c in store.checkpoints()? {
            if let Some(k) = c.name.strip_prefix(&failed_prefix) {
                keys.push(k.to_owned());
            }
        }
        keys.sort();
        keys.dedup();
        for k in keys {
            if trail_file_region(&k).is_some() {
                self.try_file(store, s3, bucket, &k, stats).await?;
            }
        }
        let mut b = store.begin()?;
        b.set_checkpoint(&cp_name, &fmt_time(checkpoint.map_or(now, |c| c.max(now))))?;
        b.commit()?;
        Ok(())
    }

    /// Keys (`delimited = false`) or common prefixes (`true`) under `prefix`, all pages.
    async fn list(
        &self,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        prefix: &str,
        delimited: bool,
    ) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let started = std::time::Instant::now();
            let mut req = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone());
            if delimited {
                req = req.delimiter("/");
            }
            let res = req.send().await;
            add(&self.metrics.requests, 1);
            let page = res.map_err(|e| sdk_error("s3", "ListObjectsV2", &self.base_region(), e))?;
            tracing::debug!(collector = %self.cfg.name, method = "GET", path = %format!("/{bucket}"), prefix, status = 200u16, duration_ms = started.elapsed().as_millis() as u64, "S3 request.");
            if delimited {
                out.extend(
                    page.common_prefixes()
                        .iter()
                        .filter_map(|p| p.prefix().map(str::to_owned)),
                );
            } else {
                out.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_owned)),
                );
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Reads one trail file and commits its records and its key checkpoint together.
    async fn process_file(
        &mut self,
        store: &mut Store,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        stats: &mut PollStats,
    ) -> Result<(), AwsError> {
        let cp = key_checkpoint(&self.cfg.name, key);
        if store.checkpoint(&cp)?.is_some() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let res = s3.get_object().bucket(bucket).key(key).send().await;
        add(&self.metrics.requests, 1);
        let obj = res.map_err(|e| sdk_error("s3", "GetObject", &self.base_region(), e))?;
        let etag = obj.e_tag().unwrap_or_default().to_owned();
        if obj
            .content_length()
            .is_some_and(|n| n as u64 > MAX_FILE_BYTES)
        {
            return Err(AwsError::TrailFile {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                message: format!("larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        let body = obj
            .body
            .collect()
            .await
            .map_err(|e| {
                AwsError::Api(Box::new(crate::ApiError {
                    service: "s3",
                    operation: "GetObject",
                    region: self.base_region(),
                    status: String::new(),
                    code: "body".to_owned(),
                    message: e.to_string(),
                    hint: String::new(),
                    retriable: true,
                }))
            })?
            .into_bytes();
        tracing::debug!(collector = %self.cfg.name, method = "GET", path = %format!("/{bucket}/{key}"), status = 200u16, duration_ms = started.elapsed().as_millis() as u64, bytes = body.len(), "S3 request.");
        let origin = self.origin();
        let filter = EventFilter::new(&self.cfg.event_names);
        let mut batch = store.begin()?;
        let out = store_trail_file(
            &mut batch,
            &body,
            &filter,
            &origin,
            &format!("s3://{bucket}/{key}"),
        )?;
        stats.records += out.records;
        stats.filtered += out.filtered;
        add(&self.metrics.records, out.records);
        batch.set_checkpoint(&cp, &etag)?;
        let b = batch.commit()?;
        stats.files += 1;
        stats.pages += 1;
        stats.add_batch(&b);
        add(&self.metrics.files, 1);
        add(&self.metrics.stored, b.stored);
        add(&self.metrics.quarantined, b.quarantined);
        Ok(())
    }

    fn base_region(&self) -> String {
        self.base
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }
}

fn sdk_error<E, R>(
    service: &'static str,
    operation: &'static str,
    region: &str,
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> AwsError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or_default().to_owned();
    let message = e
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| aws_sdk_s3::error::DisplayErrorContext(&e).to_string());
    let retriable = matches!(
        e,
        aws_sdk_s3::error::SdkError::TimeoutError(_)
            | aws_sdk_s3::error::SdkError::DispatchFailure(_)
    );
    let hint = match code.as_str() {
        "AccessDenied" | "AccessDeniedException" => match service {
            "s3" => "; the principal needs s3:ListBucket and s3:GetObject on the trail bucket (and kms:Decrypt for SSE-KMS)",
            _ => "; the principal needs sqs:ReceiveMessage and sqs:DeleteMessage on the queue",
        }
        .to_owned(),
        "NoSuchBucket" => "; check bucket".to_owned(),
        "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" => "; check queue_url".to_owned(),
        _ => String::new(),
    };
    AwsError::Api(Box::new(crate::ApiError {
        service,
        operation,
        region: region.to_owned(),
        status: String::new(),
        code: if code.is_empty() {
            "error".to_owned()
        } else {
            code
        },
        message,
        hint,
        retriable,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_notifications() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"trail"},"object":{"key":"AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/30/a+b%3Dc.json.gz"}}}]}"#;
        assert_eq!(
            parse_notification(body),
            Some(Notification::Objects(vec![Notified {
                bucket: "trail".to_owned(),
                key: "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/30/a b=c.json.gz"
                    .to_owned()
            }]))
        );
        assert_eq!(
            parse_notification(r#"{"Event":"s3:TestEvent","Bucket":"x"}"#),
            Some(Notification::Test)
        );
        assert_eq!(parse_notification("nope"), None);
        // CloudTrail's log-delivery notification through SNS (the AWS CloudTrail user guide,
        // "Configuring Amazon SNS notifications for CloudTrail"), and with raw delivery.
        let key = "AWSLogs/111122223333/CloudTrail/us-east-2/2026/11/30/111122223333_CloudTrail_us-east-2_20261130T1200Z_a1.json.gz";
        let ct = format!(r#"{{"s3Bucket":"trail","s3ObjectKey":["{key}"]}}"#);
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-2:111122223333:t", "Message": ct}).to_string();
        let want = Some(Notification::Objects(vec![Notified {
            bucket: "trail".to_owned(),
            key: key.to_owned(),
        }]));
        assert_eq!(parse_notification(&sns), want);
        assert_eq!(parse_notification(&ct), want);
        // EventBridge S3 "Object Created" (the Amazon S3 user guide, "EventBridge event message
        // structure"); other S3 event types name nothing to read.
        let eb = format!(
            r#"{{"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3","account":"111122223333","time":"2026-11-30T12:00:00Z","region":"us-east-2","resources":["arn:aws:s3:::trail"],"detail":{{"version":"0","bucket":{{"name":"trail"}},"object":{{"key":"{key}","size":10}},"reason":"PutObject"}}}}"#
        );
        assert_eq!(parse_notification(&eb), want);
        let deleted = eb.replace("Object Created", "Object Deleted");
        assert_eq!(
            parse_notification(&deleted),
            Some(Notification::Objects(vec![]))
        );
        assert_eq!(
            trail_file_region(
                "AWSLogs/o-abc/111122223333/CloudTrail/eu-west-1/2026/11/30/f.json.gz"
            ),
            Some("eu-west-1")
        );
        assert_eq!(
            trail_file_region("AWSLogs/1/CloudTrail-Digest/us-east-1/2026/11/30/f.json.gz"),
            None
        );
        assert_eq!(
            region_from_queue_url("https://sqs.eu-west-1.amazonaws.com/1/q").as_deref(),
            Some("eu-west-1")
        );
    }
}
