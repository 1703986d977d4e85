//! HTTP against Splunk HEC: `POST /services/collector/event`, `POST /services/collector/ack`,
//! `GET /services/collector/health`, and the typed reading of HEC's answers.
//!
//! HEC answers with `{"text":..,"code":N}` (plus `ackId` on success with indexer ack, and
//! `invalid-event-number` when one event of a batch is bad). Codes, per Splunk's documentation:
//! 0 success; 1 token disabled (403); 2 token is required (401); 3 invalid authorization (401);
//! 4 invalid token (403); 5 no data; 6 invalid data format; 7 incorrect index; 8 internal server
//! error (500); 9 server is busy (503); 10 data channel is missing; 11 invalid data channel;
//! 12 event field is required; 13 event field cannot be blank; 14 ACK is disabled; 15 error in
//! handling indexed fields; 16 query string authorization is not enabled; 17 HEC is healthy;
//! 18 HEC is unhealthy, queues are full (503); 19 HEC is unhealthy, ack service unavailable (503).

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use crosswind_model::SensitiveString;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Deserialize;

use crate::HecError;
use crate::config::SplunkConfig;

pub const EVENT_PATH: &str = "/services/collector/event";
pub const ACK_PATH: &str = "/services/collector/ack";
pub const HEALTH_PATH: &str = "/services/collector/health";
pub const CHANNEL_HEADER: &str = "X-Splunk-Request-Channel";

/// HEC's JSON answer.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HecReply {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default, rename = "ackId")]
    pub ack_id: Option<u64>,
    #[serde(default, rename = "invalid-event-number")]
    pub invalid_event_number: Option<i64>,
}

/// What one `POST /services/collector/event` came to.
#[derive(Clone, Debug, PartialEq)]
pub enum SendOutcome {
    /// 2xx: accepted; with indexer ack, confirmed later under `ack_id`.
    Accepted { ack_id: Option<u64> },
    /// 400 for the data (codes 5, 6, 12, 13, 15). With `index`, events before it were indexed
    /// (HEC processes a batch as a stream) and the rest were not.
    InvalidEvent {
        index: Option<usize>,
        code: i64,
        text: String,
    },
    /// 400 code 7: the token may not write to one event's index. `number` is HEC's
    /// `invalid-event-number` as sent: Splunk counts the refused event itself (a lone event is
    /// number 1), and the events before it were indexed.
    IncorrectIndex { number: Option<usize>, text: String },
    /// 413: the body is over Splunk's `max_content_length`.
    TooLarge,
    /// Busy or failing server (429, 5xx): nothing was indexed; try again later.
    Retry {
        status: u16,
        retry_after: Option<Duration>,
        text: String,
    },
    /// Wrong token, index, channel or URL: needs an operator. With `index`, events before it
    /// were indexed.
    Refused {
        status: u16,
        code: Option<i64>,
        text: String,
        index: Option<usize>,
    },
}

/// The HEC HTTP client. Holds the token; never prints it.
pub(crate) struct HecClient {
    http: reqwest::Client,
    base: String,
    token: SensitiveString,
    gzip: bool,
    channel: Option<String>,
}

// === impl HecClient ===

impl HecClient {
    pub(crate) fn new(
        config: &SplunkConfig,
        token: SensitiveString,
        channel: Option<String>,
    ) -> Result<HecClient, HecError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .connect_timeout(Duration::from_secs(config.request_timeout_secs.min(30)))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("crosswind/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = config
            .ca_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            let pem = std::fs::read(ca).map_err(|e| HecError::Tls {
                message: format!("cannot read ca_file {}: {e}", ca.display()),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| HecError::Tls {
                message: format!("ca_file {} is not PEM: {e}", ca.display()),
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        if !config.tls_verify {
            tracing::warn!(
                url = %redacted_url(&config.url),
                "TLS certificate verification is off for Splunk (splunk.tls_verify = false); \
                 anyone on the path can read the HEC token and the events."
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| HecError::Tls {
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        Ok(HecClient {
            http,
            base: config.url.trim_end_matches('/').to_string(),
            token,
            gzip: config.gzip,
            channel,
        })
    }

    fn auth(&self) -> HeaderValue {
        let mut v = HeaderValue::from_str(&format!("Splunk {}", self.token.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static("Splunk"));
        v.set_sensitive(true);
        v
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.auth())
            .header(CONTENT_TYPE, "application/json");
        if let Some(channel) = &self.channel {
            req = req.header(CHANNEL_HEADER, channel);
        }
        req
    }

    /// Compresses `body` when gzip is on. Returns the bytes to put on the wire.
    pub(crate) fn encode(&self, body: &[u8]) -> Vec<u8> {
        if !self.gzip {
            return body.to_vec();
        }
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4 + 64),
            flate2::Compression::fast(),
        );
        // Writing into a Vec cannot fail.
        let _ = enc.write_all(body);
        enc.finish().unwrap_or_default()
    }

    /// Sends one batch of concatenated HEC events (already encoded by [`HecClient::encode`]).
    pub(crate) async fn send(
        &self,
        wire: Vec<u8>,
        events: usize,
    ) -> Result<SendOutcome, reqwest::Error> {
        let mut req = self.post(EVENT_PATH);
        if self.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        let resp = req.body(wire).send().await.map_err(redacted)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(redacted)?;
        let reply: HecReply = serde_json::from_slice(&bytes).unwrap_or_else(|_| HecReply {
            text: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
            ..HecReply::default()
        });
        Ok(classify(status, retry_after, reply, events))
    }

    /// Asks which of `ack_ids` are indexed. Ids missing from the answer count as not yet.
    pub(crate) async fn ack_status(&self, ack_ids: &[u64]) -> Result<AckStatus, reqwest::Error> {
        #[derive(serde::Serialize)]
        struct Query<'a> {
            acks: &'a [u64],
        }
        #[derive(Deserialize)]
        struct Answer {
            acks: HashMap<String, bool>,
        }
        let resp = self
            .post(ACK_PATH)
            .json(&Query { acks: ack_ids })
            .send()
            .await
            .map_err(redacted)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(redacted)?;
        if (200..300).contains(&status)
            && let Ok(answer) = serde_json::from_slice::<Answer>(&bytes)
        {
            let acked = answer
                .acks
                .into_iter()
                .filter(|(_, done)| *done)
                .filter_map(|(id, _)| id.parse().ok())
                .collect();
            return Ok(AckStatus::Answered(acked));
        }
        let reply: HecReply = serde_json::from_slice(&bytes).unwrap_or_default();
        Ok(AckStatus::Failed {
            status,
            code: reply.code,
            text: reply.text,
        })
    }

    /// `GET /services/collector/health`.
    pub(crate) async fn health(&self) -> Result<Health, reqwest::Error> {
        let resp = self
            .http
            .get(format!("{}{HEALTH_PATH}", self.base))
            .send()
            .await
            .map_err(redacted)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(redacted)?;
        let reply: HecReply = serde_json::from_slice(&bytes).unwrap_or_default();
        Ok(match status {
            200..=299 => Health::Healthy,
            // Some load balancers do not expose the health endpoint: do not block on it.
            404 | 405 => Health::Unknown,
            _ => Health::Unhealthy {
                status,
                code: reply.code,
                text: reply.text,
            },
        })
    }
}

/// `url` without the user name and password it may carry, for logs and errors.
pub fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("***");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) if url.contains('@') => "(an unparsable url, not shown)".to_string(),
        Err(_) => url.to_string(),
    }
}

/// A reqwest error names the URL it failed on: never with its user name and password.
fn redacted(mut e: reqwest::Error) -> reqwest::Error {
    if let Some(u) = e.url_mut()
        && (!u.username().is_empty() || u.password().is_some())
    {
        let _ = u.set_username("***");
        let _ = u.set_password(None);
    }
    e
}

/// The answer to an ack query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AckStatus {
    Answered(Vec<u64>),
    Failed {
        status: u16,
        code: Option<i64>,
        text: String,
    },
}

/// The answer to a health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// The endpoint is not exposed (404/405): treated as healthy.
    Unknown,
    Unhealthy {
        status: u16,
        code: Option<i64>,
        text: String,
    },
}

/// Reads one HEC answer. `events` is the number of events in the request.
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    reply: HecReply,
    events: usize,
) -> SendOutcome {
    let index = reply
        .invalid_event_number
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n < events);
    let text = if reply.text.is_empty() {
        format!("http {status}")
    } else {
        reply.text
    };
    match status {
        200..=299 => SendOutcome::Accepted {
            ack_id: reply.ack_id,
        },
        413 => SendOutcome::TooLarge,
        429 | 500..=599 => SendOutcome::Retry {
            status,
            retry_after,
            text,
        },
        400 => match reply.code {
            Some(code @ (5 | 6 | 12 | 13 | 15)) => SendOutcome::InvalidEvent { index, code, text },
            Some(7) => SendOutcome::IncorrectIndex {
                number: reply
                    .invalid_event_number
                    .and_then(|n| usize::try_from(n).ok()),
                text,
            },
            code => SendOutcome::Refused {
                status,
                code,
                text,
                index,
            },
        },
        408 => SendOutcome::Retry {
            status,
            retry_after,
            text,
        },
        _ => SendOutcome::Refused {
            status,
            code: reply.code,
            text,
            index: None,
        },
    }
}

/// What an operator should do about a refusal.
pub(crate) fn refusal_hint(status: u16, code: Option<i64>) -> &'static str {
    match (status, code) {
        (_, Some(1)) => "the HEC token is disabled in Splunk; enable it",
        (_, Some(2..=4)) | (401 | 403, _) => {
            "check the HEC token (splunk.token_file / splunk.token_env)"
        }
        (_, Some(7)) => {
            "the token may not write to that index; fix splunk.index / splunk.indexes or the \
             token's allowed indexes"
        }
        (_, Some(10 | 11)) => {
            "the token has indexer acknowledgement on: set splunk.indexer_ack = true"
        }
        (_, Some(14)) => {
            "the token has indexer acknowledgement off: set splunk.indexer_ack = false"
        }
        (_, Some(16)) => "query-string authorization is off; crosswind sends the token in a header",
        (404, _) => "check splunk.url: no HEC endpoint there",
        _ => "see Splunk's answer",
    }
}
