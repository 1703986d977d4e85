//! The `[splunk]` table: parsed raw with serde, then [`SplunkConfig::validate`]d key by key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crosswind_model::{SensitiveString, shown_env_name, shown_path};
use crosswind_store::outbox::OutboxKind;
use serde::Deserialize;

/// What to forward to Splunk (`forward = [...]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forward {
    /// Raw source records, exactly as received.
    Raw,
    /// Risk events (one per signal), `sourcetype = crosswind:risk`.
    Risk,
    /// Findings, `sourcetype = crosswind:finding`.
    Findings,
    /// Normalised events, `sourcetype = crosswind:event`.
    Events,
}

impl Forward {
    pub fn kind(self) -> OutboxKind {
        match self {
            Forward::Raw => OutboxKind::Raw,
            Forward::Risk => OutboxKind::Risk,
            Forward::Findings => OutboxKind::Finding,
            Forward::Events => OutboxKind::Event,
        }
    }
}

/// What `[splunk] indexes` routes: raw records by cloud, and crosswind's own kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexKind {
    /// Raw Entra records (sign-ins, risk detections).
    Entra = 0,
    /// Raw CloudTrail records.
    Aws = 1,
    /// Risk events (`crosswind:risk`).
    Risk = 2,
    /// Findings (`crosswind:finding`).
    Findings = 3,
    /// Normalised events (`crosswind:event`).
    Events = 4,
}

impl IndexKind {
    pub const ALL: [IndexKind; 5] = [
        IndexKind::Entra,
        IndexKind::Aws,
        IndexKind::Risk,
        IndexKind::Findings,
        IndexKind::Events,
    ];

    /// The key in `[splunk] indexes`.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexKind::Entra => "entra",
            IndexKind::Aws => "aws",
            IndexKind::Risk => "risk",
            IndexKind::Findings => "findings",
            IndexKind::Events => "events",
        }
    }
}

/// `[splunk]`: where and how to forward to Splunk HTTP Event Collector.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplunkConfig {
    /// HEC base URL, e.g. `https://splunk.example.com:8088` (the sink appends
    /// `/services/collector/event`).
    pub url: String,
    /// File holding the HEC token (systemd credentials). One of `token_file`, `token_env`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the HEC token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Index for every event not routed by `indexes`; unset uses the token's default index.
    #[serde(default)]
    pub index: Option<String>,
    /// Index per kind (`entra`, `aws`, `risk`, `findings`, `events`), e.g.
    /// `{ entra = "azure", aws = "aws", risk = "risk" }`; kinds not named go to `index`.
    #[serde(default)]
    pub indexes: BTreeMap<String, String>,
    /// Ask Splunk to acknowledge indexing (the token must have indexer acknowledgement on).
    #[serde(default = "default_true")]
    pub indexer_ack: bool,
    /// Compress request bodies (`Content-Encoding: gzip`).
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// Verify Splunk's TLS certificate. Turning it off logs a warning at every start.
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// Extra CA certificate(s), PEM, trusted besides the system roots. Empty = none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// What to forward.
    #[serde(default = "default_forward")]
    pub forward: Vec<Forward>,
    /// Largest uncompressed request body. Splunk's default `max_content_length` is 1 MB.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// In the daemon, how long a partly filled batch may wait for more events.
    #[serde(default = "default_batch_max_delay_ms")]
    pub batch_max_delay_ms: u64,
    /// Resend a request whose indexer ack was not confirmed within this time (a possible
    /// duplicate, counted).
    #[serde(default = "default_ack_timeout_secs")]
    pub ack_timeout_secs: u64,
    /// How often to ask Splunk about pending acks.
    #[serde(default = "default_ack_poll_interval_ms")]
    pub ack_poll_interval_ms: u64,
    /// Longest wait between retries (busy server, network errors), before `Retry-After`.
    #[serde(default = "default_retry_max_backoff_secs")]
    pub retry_max_backoff_secs: u64,
    /// HTTP request timeout.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Bound on queued events; when reached, collection pauses until the sink drains.
    #[serde(default = "default_max_outbox_rows")]
    pub max_outbox_rows: u64,
    /// `source` for every raw record, finding and normalised event instead of
    /// `crosswind:<collector>`. Risk events keep their `search_name` as `source`.
    #[serde(default)]
    pub source: Option<String>,
    /// `host` for every event instead of this machine's host name.
    #[serde(default)]
    pub host: Option<String>,
}

fn default_true() -> bool {
    true
}
fn default_forward() -> Vec<Forward> {
    vec![Forward::Raw, Forward::Risk, Forward::Findings]
}
pub fn default_batch_max_bytes() -> usize {
    900_000
}
pub fn default_batch_max_delay_ms() -> u64 {
    1_000
}
pub fn default_ack_timeout_secs() -> u64 {
    300
}
pub fn default_ack_poll_interval_ms() -> u64 {
    1_000
}
pub fn default_retry_max_backoff_secs() -> u64 {
    60
}
pub fn default_request_timeout_secs() -> u64 {
    60
}
pub fn default_max_outbox_rows() -> u64 {
    5_000_000
}

/// One problem with one key, as `crosswind validate` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Full key, e.g. `splunk.token_file`.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Where environment variables come from (a trait so tests never call `set_var`).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

// === impl SplunkConfig ===

impl SplunkConfig {
    /// A config with defaults for everything but the URL and token source (tests, demo).
    pub fn new(url: impl Into<String>) -> SplunkConfig {
        SplunkConfig {
            url: url.into(),
            token_file: None,
            token_env: None,
            index: None,
            indexes: BTreeMap::new(),
            indexer_ack: true,
            gzip: true,
            tls_verify: true,
            ca_file: None,
            forward: default_forward(),
            batch_max_bytes: default_batch_max_bytes(),
            batch_max_delay_ms: default_batch_max_delay_ms(),
            ack_timeout_secs: default_ack_timeout_secs(),
            ack_poll_interval_ms: default_ack_poll_interval_ms(),
            retry_max_backoff_secs: default_retry_max_backoff_secs(),
            request_timeout_secs: default_request_timeout_secs(),
            max_outbox_rows: default_max_outbox_rows(),
            source: None,
            host: None,
        }
    }

    /// Every problem, each with its key (`splunk.<key>`). Empty when the config is usable.
    /// Checks that named files exist and are readable, and that the token resolves.
    pub fn validate(&self, env: &dyn Env) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, message: String| {
            problems.push(ConfigProblem {
                key: format!("splunk.{key}"),
                message,
            })
        };
        match reqwest::Url::parse(&self.url) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => bad(
                "url",
                format!("scheme must be http or https, not {}", url.scheme()),
            ),
            Ok(url) if url.host_str().is_none() => bad("url", "has no host".into()),
            Ok(url) if url.query().is_some() || url.fragment().is_some() => {
                bad("url", "must not carry a query or fragment".into())
            }
            Ok(_) => {}
            Err(e) => bad("url", format!("not a valid URL: {e}")),
        }
        match (&self.token_file, &self.token_env) {
            (Some(_), Some(_)) => bad(
                "token_file",
                "set only one of token_file and token_env".into(),
            ),
            (None, None) => bad(
                "token_file",
                "set token_file or token_env: the HEC token is required".into(),
            ),
            _ => {}
        }
        if let Err(e) = self.token(env) {
            match e {
                TokenError::Both | TokenError::Missing => {}
                TokenError::Read { .. } | TokenError::EmptyFile { .. } => {
                    bad("token_file", e.to_string())
                }
                TokenError::Unset { .. } | TokenError::EmptyEnv { .. } => {
                    bad("token_env", e.to_string())
                }
            }
        }
        if let Some(index) = &self.index
            && !valid_index(index)
        {
            bad("index", INDEX_RULE.into());
        }
        for (kind, index) in &self.indexes {
            let key = format!("indexes.{kind}");
            if !IndexKind::ALL.iter().any(|k| k.as_str() == kind) {
                let kinds: Vec<&str> = IndexKind::ALL.iter().map(|k| k.as_str()).collect();
                bad(
                    &key,
                    format!("unknown kind (expected one of {})", kinds.join(", ")),
                );
            } else if !valid_index(index) {
                bad(&key, INDEX_RULE.into());
            }
        }
        if let Some(ca) = &self.ca_file
            && !ca.as_os_str().is_empty()
        {
            match std::fs::read(ca) {
                Ok(pem) => {
                    if reqwest::Certificate::from_pem_bundle(&pem).map_or(true, |c| c.is_empty()) {
                        bad(
                            "ca_file",
                            format!("{} holds no PEM certificate", ca.display()),
                        );
                    }
                }
                Err(e) => bad("ca_file", format!("cannot read {}: {e}", ca.display())),
            }
        }
        if self.forward.is_empty() {
            bad(
                "forward",
                "is empty: nothing would reach Splunk (remove [splunk] instead)".into(),
            );
        }
        let distinct: BTreeSet<_> = self.forward.iter().collect();
        if distinct.len() != self.forward.len() {
            bad("forward", "lists a kind twice".into());
        }
        if !(1_024..=100_000_000).contains(&self.batch_max_bytes) {
            bad(
                "batch_max_bytes",
                "must be between 1024 and 100000000".into(),
            );
        }
        if self.batch_max_delay_ms > 3_600_000 {
            bad("batch_max_delay_ms", "must be at most 3600000".into());
        }
        if self.ack_timeout_secs == 0 {
            bad("ack_timeout_secs", "must be at least 1".into());
        }
        if self.ack_poll_interval_ms == 0 {
            bad("ack_poll_interval_ms", "must be at least 1".into());
        }
        if self.retry_max_backoff_secs == 0 {
            bad("retry_max_backoff_secs", "must be at least 1".into());
        }
        if self.request_timeout_secs == 0 {
            bad("request_timeout_secs", "must be at least 1".into());
        }
        if self.max_outbox_rows == 0 {
            bad("max_outbox_rows", "must be at least 1".into());
        }
        for (key, value) in [("source", &self.source), ("host", &self.host)] {
            if value.as_deref().is_some_and(str::is_empty) {
                bad(key, "must not be empty when set".into());
            }
        }
        problems
    }

    /// The HEC token, from `token_file` (trimmed) or `token_env`.
    pub fn token(&self, env: &dyn Env) -> Result<SensitiveString, TokenError> {
        match (&self.token_file, &self.token_env) {
            (Some(_), Some(_)) => Err(TokenError::Both),
            (None, None) => Err(TokenError::Missing),
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                    path: path.clone(),
                    source,
                })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(TokenError::EmptyFile { path: path.clone() });
                }
                Ok(SensitiveString::new(token))
            }
            (None, Some(name)) => {
                let value = env
                    .var(name)
                    .ok_or_else(|| TokenError::Unset { name: name.clone() })?;
                let token = value.trim();
                if token.is_empty() {
                    return Err(TokenError::EmptyEnv { name: name.clone() });
                }
                Ok(SensitiveString::new(token))
            }
        }
    }

    pub fn forwards(&self, kind: OutboxKind) -> bool {
        self.forward.iter().any(|f| f.kind() == kind)
    }
}

const INDEX_RULE: &str = "must be 1-80 characters of a-z, 0-9, _ and - (Splunk index name)";

/// A name Splunk accepts for an index (lower case, digits, `_`, `-`; not starting with `_`,
/// which Splunk keeps for its internal indexes, nor `-`).
fn valid_index(index: &str) -> bool {
    !index.is_empty()
        && index.len() <= 80
        && index.bytes().all(valid_index_byte)
        && !index.starts_with(['_', '-'])
}

fn valid_index_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

/// Why the token could not be read. Never carries the token itself, nor a `token_file` or
/// `token_env` value that looks like a pasted token rather than a path or variable name
/// (`Debug` prints the same text as `Display`).
#[derive(thiserror::Error)]
pub enum TokenError {
    #[error("set only one of token_file and token_env")]
    Both,
    #[error("no token_file or token_env: the HEC token is required")]
    Missing,
    #[error("cannot read token file {}: {source}", shown_path(path))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {} is empty", shown_path(path))]
    EmptyFile { path: PathBuf },
    #[error("environment variable {} is not set", shown_env_name(name))]
    Unset { name: String },
    #[error("environment variable {} is empty", shown_env_name(name))]
    EmptyEnv { name: String },
}

impl std::fmt::Debug for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenError({self})")
    }
}
