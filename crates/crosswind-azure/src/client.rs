//! The Graph HTTP client: bearer token, client-side pacing, `Retry-After` on 429/503, jittered
//! backoff on other 5xx and network errors, one token refresh on 401, and a log line per request
//! (method, path, status, duration, retry count; never the token).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};

use crate::config::AzureConfig;
use crate::error::AzureError;
use crate::metrics::Metrics;
use crate::token::TokenSource;

/// Backoff timings. The defaults suit Graph; tests shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryTuning {
    /// First backoff after a 5xx or network error; doubles per attempt, with jitter.
    pub base: Duration,
    /// Largest backoff.
    pub cap: Duration,
    /// Largest `Retry-After` honoured (longer values are clamped to it).
    pub max_retry_after: Duration,
    /// Wait used for a 429/503 without a `Retry-After` header.
    pub default_retry_after: Duration,
}

impl Default for RetryTuning {
    fn default() -> Self {
        RetryTuning {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            default_retry_after: Duration::from_secs(10),
        }
    }
}

impl RetryTuning {
    /// Capped exponential backoff with "equal jitter": between half and all of the step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Sliding-window pacer: at most `limit` requests in any 10 s.
#[derive(Debug)]
struct Pacer {
    limit: usize,
    sent: VecDeque<Instant>,
}

impl Pacer {
    const WINDOW: Duration = Duration::from_secs(10);

    async fn wait(&mut self) {
        if self.limit == 0 {
            return;
        }
        while self.sent.len() >= self.limit {
            let oldest = self.sent[0];
            let free_at = oldest + Pacer::WINDOW;
            let now = Instant::now();
            if free_at <= now {
                self.sent.pop_front();
            } else {
                tokio::time::sleep(free_at - now).await;
            }
        }
        self.sent.push_back(Instant::now());
    }
}

/// Graph's error body: `{"error":{"code":"…","message":"…"}}`.
#[derive(serde::Deserialize, Default)]
struct GraphErrorBody {
    #[serde(default)]
    error: GraphErrorInner,
}

#[derive(serde::Deserialize, Default)]
struct GraphErrorInner {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

fn hint_for(path: &str, status: u16, code: &str, message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let premium = lower.contains("premium") || code.contains("NonPremium");
    if path.ends_with("/identityProtection/riskDetections") {
        // docs/architecture.md: a refused risk-detection query never stops the sign-ins.
        if premium {
            return "; reading risk detections needs a Microsoft Entra ID P1 or P2 licence"
                .to_owned();
        }
        if status == 403 || code == "Authorization_RequestDenied" {
            return format!(
                "; grant the app the Microsoft Graph application permission {RISK_DETECTIONS_PERMISSION}, with admin consent (or set risk_detections = false)"
            );
        }
        return String::new();
    }
    if status == 403 || code == "Authorization_RequestDenied" {
        if premium {
            return "; reading sign-in logs needs a Microsoft Entra ID P1 or P2 licence".to_owned();
        }
        return "; grant the app the Microsoft Graph application permissions AuditLog.Read.All and Directory.Read.All, with admin consent".to_owned();
    }
    if premium {
        return "; reading sign-in logs needs a Microsoft Entra ID P1 or P2 licence".to_owned();
    }
    if status == 400 {
        return "; check api_version and sign_in_event_types (event type filters need api_version = \"beta\")".to_owned();
    }
    String::new()
}

/// The Graph application permission `identityProtection/riskDetections` needs.
pub const RISK_DETECTIONS_PERMISSION: &str = "IdentityRiskEvent.Read.All";

/// Graph client for one collector.
#[derive(Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    tokens: TokenSource,
    pacer: Pacer,
    max_attempts: u32,
    pub(crate) tuning: RetryTuning,
    metrics: Arc<Metrics>,
    name: String,
}

/// Builds the shared HTTP client (Graph and azure_identity's token requests): timeouts, gzip,
/// extra CA, TLS verification always on, and the proxy from `HTTPS_PROXY`/`ALL_PROXY` with
/// `NO_PROXY` exceptions (reqwest reads the variables itself; see [`crate::proxy`]).
pub fn build_http(cfg: &AzureConfig) -> Result<reqwest::Client, AzureError> {
    match crate::proxy::https_proxy(&crate::config::ProcessEnv) {
        Some(p) if p.unusable.is_none() => tracing::info!(
            collector = %cfg.name,
            proxy = %p.redacted,
            from = p.var,
            "Entra requests go through an HTTPS proxy (hosts in NO_PROXY excepted)."
        ),
        Some(p) => tracing::warn!(
            collector = %cfg.name,
            proxy = %p.redacted,
            from = p.var,
            problem = p.unusable.unwrap_or_default(),
            "The proxy setting will not work as intended."
        ),
        None => {}
    }
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("crosswind/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(cfg.request_timeout_secs))
        .connect_timeout(Duration::from_secs(cfg.request_timeout_secs.min(30)))
        .gzip(true);
    if let Some(ca) = cfg.ca_file() {
        let pem = std::fs::read(ca)
            .map_err(|e| AzureError::Config(format!("ca_file {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| AzureError::Config(format!("ca_file {}: {e}", ca.display())))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| AzureError::HttpClient(e.to_string()))
}

// === impl GraphClient ===

impl GraphClient {
    pub fn new(
        cfg: &AzureConfig,
        http: reqwest::Client,
        tokens: TokenSource,
        metrics: Arc<Metrics>,
    ) -> GraphClient {
        GraphClient {
            http,
            tokens,
            pacer: Pacer {
                limit: cfg.max_requests_per_10s as usize,
                sent: VecDeque::new(),
            },
            max_attempts: cfg.max_retries.max(1),
            tuning: RetryTuning::default(),
            metrics,
            name: cfg.name.clone(),
        }
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// GETs `url` and returns the body of a 2xx answer, retrying what is worth retrying.
    /// Returns the body and how many retries it took.
    pub async fn get(&mut self, url: &Url) -> Result<(Vec<u8>, u32), AzureError> {
        let path = url.path().to_owned();
        let mut retries = 0u32;
        let mut refreshed_after_401 = false;
        loop {
            let last: String;
            self.pacer.wait().await;
            let fetches_before = self.tokens.fetches();
            let token = self.tokens.token().await;
            Metrics::add(
                &self.metrics.token_fetches,
                self.tokens.fetches() - fetches_before,
            );
            let token = match token {
                Ok(t) => t,
                Err(e) if e.is_retriable() && retries + 1 < self.max_attempts => {
                    Metrics::add(&self.metrics.retries, 1);
                    let wait = self.tuning.backoff(retries);
                    retries += 1;
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let started = Instant::now();
            let res = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await;
            Metrics::add(&self.metrics.requests, 1);
            let wait = match res {
                Err(e) => {
                    let e = crate::proxy::describe(&without_url(e), &crate::config::ProcessEnv);
                    tracing::warn!(
                        collector = %self.name,
                        method = "GET",
                        path = %path,
                        duration_ms = started.elapsed().as_millis() as u64,
                        retries,
                        error = %e,
                        "Graph request failed."
                    );
                    last = e;
                    self.tuning.backoff(retries)
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
                    let body = resp.bytes().await;
                    let duration_ms = started.elapsed().as_millis() as u64;
                    tracing::debug!(
                        collector = %self.name,
                        method = "GET",
                        path = %path,
                        status = status.as_u16(),
                        duration_ms,
                        retries,
                        "Graph request."
                    );
                    let body = match body {
                        Ok(b) => b,
                        Err(e) => {
                            last = format!("reading body: {}", without_url(e));
                            Metrics::add(&self.metrics.retries, 1);
                            if retries + 1 >= self.max_attempts {
                                return Err(AzureError::RetriesExhausted {
                                    method: "GET",
                                    path,
                                    attempts: retries + 1,
                                    last,
                                });
                            }
                            let wait = self.tuning.backoff(retries);
                            retries += 1;
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    };
                    if status.is_success() {
                        return Ok((Vec::from(body), retries));
                    }
                    let parsed: GraphErrorBody = serde_json::from_slice(&body).unwrap_or_default();
                    let code = parsed.error.code;
                    let message = parsed.error.message;
                    match status {
                        StatusCode::UNAUTHORIZED if !refreshed_after_401 => {
                            tracing::info!(
                                collector = %self.name,
                                method = "GET",
                                path = %path,
                                status = 401u16,
                                code = %code,
                                "Graph refused the token; fetching a new one."
                            );
                            refreshed_after_401 = true;
                            self.tokens.invalidate()?;
                            Metrics::add(&self.metrics.retries, 1);
                            retries += 1;
                            continue;
                        }
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                            last = format!("{} {}", status.as_u16(), code);
                            tracing::info!(
                                collector = %self.name,
                                method = "GET",
                                path = %path,
                                status = status.as_u16(),
                                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                                retries,
                                "Graph is throttling; waiting."
                            );
                            retry_after
                                .unwrap_or(self.tuning.default_retry_after)
                                .min(self.tuning.max_retry_after)
                        }
                        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                            last = format!("{} {} {}", s.as_u16(), code, message);
                            match retry_after {
                                Some(ra) => ra.min(self.tuning.max_retry_after),
                                None => self.tuning.backoff(retries),
                            }
                        }
                        s => {
                            let hint = hint_for(&path, s.as_u16(), &code, &message);
                            let message = if message.is_empty() {
                                String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
                            } else {
                                message
                            };
                            return Err(AzureError::Graph {
                                method: "GET",
                                path,
                                status: s.as_u16(),
                                code,
                                message,
                                hint,
                            });
                        }
                    }
                }
            };
            if retries + 1 >= self.max_attempts {
                return Err(AzureError::RetriesExhausted {
                    method: "GET",
                    path,
                    attempts: retries + 1,
                    last,
                });
            }
            Metrics::add(&self.metrics.retries, 1);
            retries += 1;
            tokio::time::sleep(wait).await;
        }
    }
}

/// reqwest errors print the URL, whose query holds nothing secret but is long; keep messages short.
fn without_url(e: reqwest::Error) -> reqwest::Error {
    e.without_url()
}
