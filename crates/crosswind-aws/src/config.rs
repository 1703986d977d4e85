//! One `[[aws]]` table: raw serde shape, defaults and per-key validation.

use serde::Deserialize;

/// The calls the default config collects: every call a signal reads (docs/detections.md) —
/// sign-in, recon (Splunk's AWS add-on drops Get/List/Describe by default; these are the ones
/// attackers use first), persistence, SES/SNS messaging, infrastructure creation. LookupEvents
/// filters one event name per call, so each name costs one call per region and poll.
pub const DEFAULT_EVENT_NAMES: [&str; 36] = [
    // Console sign-in and the recon burst.
    "ConsoleLogin",
    "GetCallerIdentity",
    "ListAttachedUserPolicies",
    "ListGroupsForUser",
    "ListBuckets",
    "DescribeInstances",
    "ListUsers",
    "ListRoles",
    "GetAccountAuthorizationDetails",
    // aws_credential_persistence.
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "CreateUser",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
    "AttachUserPolicy",
    "PutUserPolicy",
    "AddUserToGroup",
    // aws_messaging_abuse (SES, SES v2, SNS).
    "GetSendQuota",
    "GetAccount",
    "GetAccountSendingEnabled",
    "ListIdentities",
    "ListEmailIdentities",
    "UpdateAccountSendingEnabled",
    "PutAccountDetails",
    "CreateEmailIdentity",
    "VerifyEmailIdentity",
    "VerifyDomainIdentity",
    "GetSMSAttributes",
    "SetSMSAttributes",
    "GetSMSSandboxAccountStatus",
    "CreateSMSSandboxPhoneNumber",
    // aws_unused_region (Lambda logs CreateFunction with its API version).
    "RunInstances",
    "CreateFunction20150331",
    "CreateFunction",
    "CreateStack",
];

/// Where the records come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// CloudTrail `LookupEvents`: management events of the last 90 days, one call per event
    /// name, region and page.
    #[default]
    LookupEvents,
    /// Trail files in S3 (`AWSLogs/[o-…/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`),
    /// driven by S3 event notifications on `queue_url` or by listing.
    S3,
}

/// One AWS account (or organization trail) to collect CloudTrail from (`[[aws]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Collector name: checkpoints are keyed by it, Splunk `source` is `crosswind:<name>`.
    pub name: String,
    #[serde(default)]
    pub mode: Mode,
    /// Regions to read. Global-service events (IAM, STS without a regional endpoint, console
    /// sign-in) are recorded in us-east-1. In `s3` mode, empty means every region in the trail.
    #[serde(default = "default_regions")]
    pub regions: Vec<String>,
    /// Role assumed via STS (refreshed before expiry).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// External id for the role, when its trust policy requires one.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Endpoint override for every AWS call (tests, VPC endpoints).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Event names to keep. `lookup_events` makes one lookup per name; `s3` filters records.
    #[serde(default = "default_event_names")]
    pub event_names: Vec<String>,
    /// Trail bucket (`s3` mode).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Region of the trail bucket (`s3` mode; default the first of `regions`).
    #[serde(default)]
    pub bucket_region: Option<String>,
    /// Key prefix of the trail (`s3` mode).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// S3 event-notification queue (`s3` mode, optional; empty = list the bucket).
    #[serde(default)]
    pub queue_url: Option<String>,
    /// How long a received notification stays invisible while its file is processed.
    #[serde(default = "default_visibility_timeout_secs")]
    pub visibility_timeout_secs: u32,
    /// Cron schedule with seconds (the daemon's driver reads it).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Each poll re-reads this far behind the checkpoint (CloudTrail delivers late).
    #[serde(default = "default_lookback_secs")]
    pub lookback_secs: u64,
    /// How far back the first poll reads (LookupEvents keeps 90 days).
    #[serde(default = "default_initial_backfill_secs")]
    pub initial_backfill_secs: u64,
    /// LookupEvents calls per second per region (the API allows 2).
    #[serde(default = "default_max_calls_per_sec")]
    pub max_calls_per_sec: u32,
    /// Attempts per request before the poll fails.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Per-attempt timeout.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Path-style S3 addressing (default: on when `endpoint_url` is set).
    #[serde(default)]
    pub force_path_style: Option<bool>,
}

pub fn default_regions() -> Vec<String> {
    vec!["us-east-1".to_owned()]
}
pub fn default_event_names() -> Vec<String> {
    DEFAULT_EVENT_NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}
pub fn default_prefix() -> String {
    "AWSLogs/".to_owned()
}
pub fn default_visibility_timeout_secs() -> u32 {
    300
}
pub fn default_schedule() -> String {
    "30 */2 * * * *".to_owned()
}
pub fn default_lookback_secs() -> u64 {
    1800
}
pub fn default_initial_backfill_secs() -> u64 {
    86_400
}
pub fn default_max_calls_per_sec() -> u32 {
    2
}
pub fn default_max_retries() -> u32 {
    8
}
pub fn default_request_timeout_secs() -> u64 {
    60
}

/// One problem with one key, for `crosswind validate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: &'static str,
    pub message: String,
}

fn is_region(r: &str) -> bool {
    // us-east-1, eu-west-2, ap-southeast-3, us-gov-west-1, cn-north-1, il-central-1 …
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_role_arn(a: &str) -> bool {
    let parts: Vec<&str> = a.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > 5
}

// === impl AwsConfig ===

impl AwsConfig {
    /// Checks every key; empty when the table is usable.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let mut bad = |key: &'static str, message: String| p.push(ConfigProblem { key, message });
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            bad(
                "name",
                format!(
                    "{:?} must be non-empty letters, digits, '-', '_' or '.'",
                    self.name
                ),
            );
        }
        if self.mode == Mode::LookupEvents && self.regions.is_empty() {
            bad(
                "regions",
                "lookup_events needs at least one region".to_owned(),
            );
        }
        for r in &self.regions {
            if !is_region(r) {
                bad(
                    "regions",
                    format!("{r:?} is not an AWS region name (like us-east-1)"),
                );
            }
        }
        if let Some(arn) = &self.role_arn
            && !is_role_arn(arn)
        {
            bad(
                "role_arn",
                format!("{arn:?} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)"),
            );
        }
        if let Some(u) = self.endpoint_url.as_deref().filter(|u| !u.is_empty()) {
            match url::Url::parse(u) {
                Ok(x)
                    if (x.scheme() == "https" || x.scheme() == "http")
                        && x.host_str().is_some() => {}
                _ => bad("endpoint_url", format!("{u:?} is not an http(s) URL")),
            }
        }
        for n in &self.event_names {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bad(
                    "event_names",
                    format!("{n:?} is not a CloudTrail event name"),
                );
            }
        }
        match self.mode {
            Mode::LookupEvents => {
                if self.event_names.is_empty() {
                    bad(
                        "event_names",
                        "lookup_events needs at least one event name (one lookup per name)"
                            .to_owned(),
                    );
                }
                if self.bucket.is_some() || self.queue_url.is_some() {
                    bad(
                        "mode",
                        "bucket and queue_url are for mode = \"s3\"".to_owned(),
                    );
                }
                if self.max_calls_per_sec == 0 {
                    bad("max_calls_per_sec", "must be at least 1".to_owned());
                }
            }
            Mode::S3 => {
                match self.bucket.as_deref() {
                    None | Some("") => bad("bucket", "mode = \"s3\" needs a bucket".to_owned()),
                    Some(b) => {
                        if b.len() < 3
                            || b.len() > 63
                            || !b.bytes().all(|c| {
                                c.is_ascii_lowercase()
                                    || c.is_ascii_digit()
                                    || c == b'-'
                                    || c == b'.'
                            })
                        {
                            bad("bucket", format!("{b:?} is not an S3 bucket name"));
                        }
                    }
                }
                if let Some(q) = self.queue_url.as_deref().filter(|q| !q.is_empty())
                    && url::Url::parse(q).is_err()
                {
                    bad("queue_url", format!("{q:?} is not a URL"));
                }
                if self.visibility_timeout_secs == 0 || self.visibility_timeout_secs > 43_200 {
                    bad(
                        "visibility_timeout_secs",
                        "must be between 1 and 43200".to_owned(),
                    );
                }
            }
        }
        if self.initial_backfill_secs == 0 {
            bad("initial_backfill_secs", "must be greater than 0".to_owned());
        }
        if self.mode == Mode::LookupEvents && self.initial_backfill_secs > 90 * 86_400 {
            bad(
                "initial_backfill_secs",
                "LookupEvents keeps 90 days; use at most 7776000".to_owned(),
            );
        }
        if self.max_retries == 0 {
            bad("max_retries", "must be at least 1".to_owned());
        }
        if self.request_timeout_secs == 0 {
            bad("request_timeout_secs", "must be greater than 0".to_owned());
        }
        p
    }

    /// Advisories that do not stop the collector.
    pub fn warnings(&self) -> Vec<String> {
        let global = [
            "ConsoleLogin",
            "GetAccountAuthorizationDetails",
            "ListUsers",
            "ListRoles",
            "ListGroupsForUser",
            "ListAttachedUserPolicies",
        ];
        if self.mode == Mode::LookupEvents
            && !self.regions.iter().any(|r| r == "us-east-1")
            && self
                .event_names
                .iter()
                .any(|n| global.contains(&n.as_str()))
        {
            return vec![format!(
                "aws {}: IAM and most console sign-in events are recorded in us-east-1, which regions does not include",
                self.name
            )];
        }
        Vec::new()
    }

    pub fn queue_url(&self) -> Option<&str> {
        self.queue_url.as_deref().filter(|q| !q.is_empty())
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref().filter(|q| !q.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> AwsConfig {
        toml::from_str(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn validation_names_each_bad_key() {
        let ok = parse(
            "name = \"prod\"\nregions = [\"us-east-1\", \"eu-west-1\"]\nrole_arn = \"arn:aws:iam::123456789012:role/crosswind-reader\"",
        );
        assert_eq!(ok.validate(), vec![]);
        assert_eq!(ok.event_names.len(), DEFAULT_EVENT_NAMES.len());
        let bad = parse(
            "name = \"prod\"\nregions = [\"Europe\"]\nrole_arn = \"arn:aws:iam::1:user/x\"\nendpoint_url = \"ftp://x\"\nevent_names = [\"List Users\"]",
        );
        let keys: Vec<&str> = bad.validate().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            vec!["regions", "role_arn", "endpoint_url", "event_names"]
        );
        let s3 = parse("name = \"org\"\nmode = \"s3\"\nregions = []");
        let keys: Vec<&str> = s3.validate().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["bucket"]);
        assert!(toml::from_str::<AwsConfig>("name = \"x\"\nregion = \"us-east-1\"").is_err());
        let eu = parse("name = \"eu\"\nregions = [\"eu-west-1\"]");
        assert_eq!(eu.warnings().len(), 1);
    }

    /// The binary spawns polls on tokio tasks: the future must be `Send`.
    #[allow(dead_code)]
    fn poll_future_is_send(c: &mut crate::AwsCollector, store: &mut crosswind_store::Store) {
        fn assert_send<T: Send>(_: T) {}
        assert_send(c.poll_once(store, chrono::Utc::now()));
    }
}
