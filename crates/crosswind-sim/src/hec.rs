//! A loopback Splunk HTTP Event Collector that behaves as Splunk documents it, with fault
//! injection, for tests, benches and `crosswind demo`.
//!
//! Endpoints: `POST /services/collector/event` (also `/services/collector`, `…/event/1.0`),
//! `POST /services/collector/ack`, `GET /services/collector/health` (also `…/health/1.0`).
//! Documented behaviour reproduced:
//! - auth first: no `Authorization` → 401 code 2 "Token is required"; not `Splunk <token>` → 401
//!   code 3 "Invalid authorization"; unknown token → 403 code 4 "Invalid token"; disabled token →
//!   403 code 1 "Token disabled";
//! - with indexer acknowledgement on, a request without `X-Splunk-Request-Channel` (or `?channel=`)
//!   → 400 code 10 "Data channel is missing"; a channel that is not a GUID → 400 code 11 "Invalid
//!   data channel"; success answers `{"text":"Success","code":0,"ackId":N}`, ack ids counting from 0
//!   per channel; `POST /services/collector/ack` `{"acks":[..]}` → `{"acks":{"N":true|false}}`, and an
//!   ack reported true is forgotten (asking again answers false); with acks off the ack endpoint
//!   answers 400 code 14 "ACK is disabled";
//! - the body is concatenated event objects, optionally gzip (`Content-Encoding: gzip`); an empty
//!   body → 400 code 5 "No data"; events are read as a stream: events before the first bad one are
//!   indexed, the bad one and the rest are not, and the answer names it with
//!   `invalid-event-number` (zero-based): unparsable → code 6 "Invalid data format", no `event` →
//!   code 12 "Event field is required", blank `event` → code 13 "Event field cannot be blank",
//!   non-numeric `time` or a non-string indexed field → code 15 "Error in handling indexed fields";
//! - an event whose `index` the token may not write → 400 code 7 "Incorrect index". Splunk checks
//!   the index after it has counted the event, so its `invalid-event-number` is the refused
//!   event's position plus one: a lone event to a missing index is answered
//!   `{"text":"Incorrect index","code":7,"invalid-event-number":1}` (as Splunk Connect for Syslog's
//!   index check and the Splunk OpenTelemetry Collector's logs show). Like every refusal, the
//!   events before it are indexed and the rest of the batch is not read;
//! - a body HEC cannot read from the start (a gzip stream that does not decode, say) is refused as
//!   a whole: 400 code 6 "Invalid data format" with `invalid-event-number` 0, whatever event 0 is
//!   (what Splunk answers, e.g. `{"text":"Invalid data format","code":6,"invalid-event-number":0}`
//!   for a payload that is not event JSON);
//! - health: 200 code 17 "HEC is healthy", or 503 code 18 "HEC is unhealthy, queues are full";
//! - busy: 503 code 9 "Server is busy"; a body over `max_content_length` → 413.
//!
//! Simulator choices (not Splunk's): `max_content_length` is checked on the decoded body, so tests
//! behave the same with and without gzip.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the simulated HEC token is set up.
#[derive(Clone, Debug)]
pub struct HecSimConfig {
    /// The only token accepted.
    pub token: String,
    /// The token has indexer acknowledgement on.
    pub indexer_ack: bool,
    /// The token is disabled (403 code 1).
    pub token_disabled: bool,
    /// Indexes the token may write to; `None` = any.
    pub allowed_indexes: Option<Vec<String>>,
    /// Largest decoded body accepted; larger → 413.
    pub max_content_length: Option<usize>,
    /// Keep every indexed event (off for benches: only counts and duplicate detection).
    pub keep_events: bool,
}

impl Default for HecSimConfig {
    fn default() -> Self {
        HecSimConfig {
            token: "00000000-0000-4000-8000-00000000c0de".into(),
            indexer_ack: true,
            token_disabled: false,
            allowed_indexes: None,
            max_content_length: None,
            keep_events: true,
        }
    }
}

/// Faults to inject; counters are consumed as requests arrive.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The next N event requests answer 503 code 9 "Server is busy".
    pub busy_requests: u32,
    /// `Retry-After` (seconds) on busy answers.
    pub retry_after_secs: Option<u64>,
    /// The next N health checks answer 503 code 18.
    pub unhealthy_checks: u32,
    /// The next N event requests lose their connection before anything is indexed.
    pub drop_connections: u32,
    /// The next N event requests are indexed but their connection is lost before the answer.
    pub drop_after_index: u32,
    /// The next N ack ids are never confirmed (their events are indexed): a lost ack.
    pub lose_acks: u32,
    /// Every ack is confirmed only after this many queries about it (slow indexing).
    pub ack_delay_polls: u32,
    /// An event whose bytes contain this marker is invalid (400 code 6 with its number).
    pub invalid_marker: Option<String>,
    /// The next N event requests arrive unreadable (a middlebox mangled the body): refused as a
    /// whole, 400 code 6 naming event 0, nothing indexed. `u32::MAX`: every request.
    pub refuse_requests: u32,
    /// The next N event requests are answered `Success` with an `ackId`, then the indexer
    /// restarts before they are indexed (HEC answers before events enter the pipeline): their
    /// events are lost and, ack state being kept in memory, every channel's pending acks are
    /// forgotten and ack ids count from 0 again.
    pub restart_after_accept: u32,
    /// The next N event requests are indexed, then never answered (the client hangs).
    pub stall_after_index: u32,
}

/// What the receiver saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HecSimStats {
    /// Event requests received (all outcomes).
    pub requests: u64,
    /// Events indexed, duplicates included.
    pub indexed: u64,
    /// Indexed events whose exact bytes had been indexed before.
    pub duplicates: u64,
    /// Events refused as invalid.
    pub invalid: u64,
    pub ack_queries: u64,
    /// Ack ids reported true.
    pub acks_confirmed: u64,
    pub health_checks: u64,
}

/// A running loopback HEC on `127.0.0.1:<random port>`; stops when dropped.
pub struct HecSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    config: Mutex<HecSimConfig>,
    faults: Mutex<Faults>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stats: HecSimStats,
    events: Vec<Bytes>,
    seen: HashSet<u64>,
    channels: HashMap<String, Channel>,
}

#[derive(Default)]
struct Channel {
    next_ack: u64,
    pending: HashMap<u64, Ack>,
}

struct Ack {
    polls_left: u32,
    lost: bool,
}

/// Closing the connection without an answer (hyper drops it when the service fails).
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type Reply = Result<Response<Full<Bytes>>, DropConnection>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// === impl HecSim ===

impl HecSim {
    /// Binds `127.0.0.1:0` and serves until dropped. Must run inside a tokio runtime.
    pub async fn start(config: HecSimConfig) -> std::io::Result<HecSim> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            faults: Mutex::new(Faults::default()),
            state: Mutex::new(State::default()),
        });
        let accept = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let conn_shared = Arc::clone(&accept);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let s = Arc::clone(&conn_shared);
                        async move { handle(&s, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(HecSim { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, the `[splunk] url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> String {
        lock(&self.shared.config).token.clone()
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Changes the token setup (e.g. disable the token, change the accepted token).
    pub fn update_config(&self, f: impl FnOnce(&mut HecSimConfig)) {
        f(&mut lock(&self.shared.config));
    }

    pub fn stats(&self) -> HecSimStats {
        lock(&self.shared.state).stats
    }

    /// Every indexed event object (duplicates included), in indexing order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        lock(&self.shared.state)
            .events
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect()
    }

    /// Every indexed event object as received, byte for byte.
    pub fn raw_events(&self) -> Vec<Bytes> {
        lock(&self.shared.state).events.clone()
    }
}

impl Drop for HecSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

fn hec_error(status: StatusCode, code: u32, text: &str) -> Response<Full<Bytes>> {
    json(
        status,
        serde_json::json!({ "text": text, "code": code }).to_string(),
    )
}

/// A body HEC cannot read from the start: refused as a whole, naming event 0.
fn unreadable_body() -> Response<Full<Bytes>> {
    json(
        StatusCode::BAD_REQUEST,
        r#"{"text":"Invalid data format","code":6,"invalid-event-number":0}"#.into(),
    )
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().trim_end_matches('/').to_string();
    match path.as_str() {
        "/services/collector/health" | "/services/collector/health/1.0" => Ok(health(shared)),
        "/services/collector/event" | "/services/collector/event/1.0" | "/services/collector" => {
            event(shared, req).await
        }
        "/services/collector/ack" => Ok(ack(shared, req).await),
        _ => Ok(json(
            StatusCode::NOT_FOUND,
            r#"{"text":"The requested URL was not found on this server.","code":404}"#.into(),
        )),
    }
}

fn health(shared: &Shared) -> Response<Full<Bytes>> {
    lock(&shared.state).stats.health_checks += 1;
    let mut faults = lock(&shared.faults);
    if faults.unhealthy_checks > 0 {
        faults.unhealthy_checks -= 1;
        return hec_error(
            StatusCode::SERVICE_UNAVAILABLE,
            18,
            "HEC is unhealthy, queues are full",
        );
    }
    hec_error(StatusCode::OK, 17, "HEC is healthy")
}

/// Token and channel checks shared by the event and ack endpoints; `Err` is the answer.
fn check_request(
    shared: &Shared,
    req: &Request<Incoming>,
) -> Result<Option<String>, Box<Response<Full<Bytes>>>> {
    let config = lock(&shared.config);
    let Some(auth) = req.headers().get(hyper::header::AUTHORIZATION) else {
        return Err(Box::new(hec_error(
            StatusCode::UNAUTHORIZED,
            2,
            "Token is required",
        )));
    };
    let auth = auth.to_str().unwrap_or_default();
    let Some(token) = auth
        .strip_prefix("Splunk ")
        .or_else(|| auth.strip_prefix("splunk "))
    else {
        return Err(Box::new(hec_error(
            StatusCode::UNAUTHORIZED,
            3,
            "Invalid authorization",
        )));
    };
    if token.trim() != config.token {
        return Err(Box::new(hec_error(
            StatusCode::FORBIDDEN,
            4,
            "Invalid token",
        )));
    }
    if config.token_disabled {
        return Err(Box::new(hec_error(
            StatusCode::FORBIDDEN,
            1,
            "Token disabled",
        )));
    }
    if !config.indexer_ack {
        return Ok(None);
    }
    let channel = req
        .headers()
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            req.uri().query().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("channel=").map(str::to_string))
            })
        });
    let Some(channel) = channel else {
        return Err(Box::new(hec_error(
            StatusCode::BAD_REQUEST,
            10,
            "Data channel is missing",
        )));
    };
    if !is_guid(&channel) {
        return Err(Box::new(hec_error(
            StatusCode::BAD_REQUEST,
            11,
            "Invalid data channel",
        )));
    }
    Ok(Some(channel))
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn event(shared: &Shared, req: Request<Incoming>) -> Reply {
    lock(&shared.state).stats.requests += 1;
    if req.method() != Method::POST {
        return Ok(json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"text":"Method not allowed","code":404}"#.into(),
        ));
    }
    let channel = match check_request(shared, &req) {
        Ok(c) => c,
        Err(resp) => return Ok(*resp),
    };
    let (stall, drop_after, restart) = {
        let mut f = lock(&shared.faults);
        if f.drop_connections > 0 {
            f.drop_connections -= 1;
            return Err(DropConnection);
        }
        if f.busy_requests > 0 {
            f.busy_requests -= 1;
            let mut resp = hec_error(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy");
            if let Some(secs) = f.retry_after_secs
                && let Ok(v) = hyper::header::HeaderValue::from_str(&secs.to_string())
            {
                resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
            }
            return Ok(resp);
        }
        if f.refuse_requests > 0 {
            if f.refuse_requests != u32::MAX {
                f.refuse_requests -= 1;
            }
            drop(f);
            lock(&shared.state).stats.invalid += 1;
            return Ok(unreadable_body());
        }
        let stall = f.stall_after_index > 0;
        if stall {
            f.stall_after_index -= 1;
        }
        let drop_after = !stall && f.drop_after_index > 0;
        if drop_after {
            f.drop_after_index -= 1;
        }
        let restart = f.restart_after_accept > 0;
        if restart {
            f.restart_after_accept -= 1;
        }
        (stall, drop_after, restart)
    };
    let gzip = req
        .headers()
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    let body = if gzip {
        let mut out = Vec::with_capacity(body.len() * 4);
        if flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_err()
        {
            return Ok(unreadable_body());
        }
        Bytes::from(out)
    } else {
        body
    };
    let (max_len, allowed, keep) = {
        let c = lock(&shared.config);
        (
            c.max_content_length,
            c.allowed_indexes.clone(),
            c.keep_events,
        )
    };
    if let Some(max) = max_len
        && body.len() > max
    {
        return Ok(json(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({
                "text": format!("Content-Length of {} too large (maximum is {max})", body.len()),
                "code": 413,
            })
            .to_string(),
        ));
    }
    let marker = lock(&shared.faults).invalid_marker.clone();
    // Stream the events: index each valid one until the first invalid one.
    let mut indexed: Vec<Bytes> = Vec::new();
    let mut failure: Option<(u32, &str, usize)> = None;
    let mut stream = serde_json::Deserializer::from_slice(&body).into_iter::<&RawValue>();
    let mut n = 0usize;
    loop {
        let item = match stream.next() {
            None => break,
            Some(item) => item,
        };
        let raw = match item {
            Ok(raw) => raw,
            Err(_) => {
                failure = Some((6, "Invalid data format", n));
                break;
            }
        };
        if let Some(problem) = validate(raw.get(), marker.as_deref(), allowed.as_deref()) {
            failure = Some((problem.0, problem.1, n));
            break;
        }
        indexed.push(body.slice_ref(raw.get().as_bytes()));
        n += 1;
    }
    if indexed.is_empty() && failure.is_none() {
        return Ok(hec_error(StatusCode::BAD_REQUEST, 5, "No data"));
    }
    if restart {
        // Received, answered, then lost with the indexer.
        indexed.clear();
    }
    {
        let mut st = lock(&shared.state);
        for e in indexed {
            let mut h = DefaultHasher::new();
            e.hash(&mut h);
            if !st.seen.insert(h.finish()) {
                st.stats.duplicates += 1;
            }
            st.stats.indexed += 1;
            if keep {
                st.events.push(e);
            }
        }
        if failure.is_some() {
            st.stats.invalid += 1;
        }
    }
    if let Some((code, text, position)) = failure {
        let number = if code == 7 { position + 1 } else { position };
        return Ok(json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "text": text, "code": code, "invalid-event-number": number })
                .to_string(),
        ));
    }
    let body = match channel {
        Some(channel) => {
            let (delay, lost) = {
                let mut f = lock(&shared.faults);
                let lost = f.lose_acks > 0;
                if lost {
                    f.lose_acks -= 1;
                }
                (f.ack_delay_polls, lost)
            };
            let mut st = lock(&shared.state);
            let ch = st.channels.entry(channel).or_default();
            let id = ch.next_ack;
            ch.next_ack += 1;
            ch.pending.insert(
                id,
                Ack {
                    polls_left: delay,
                    lost,
                },
            );
            if restart {
                st.channels.clear();
            }
            serde_json::json!({ "text": "Success", "code": 0, "ackId": id }).to_string()
        }
        None => r#"{"text":"Success","code":0}"#.to_string(),
    };
    if stall {
        std::future::pending::<()>().await;
    }
    if drop_after {
        return Err(DropConnection);
    }
    Ok(json(StatusCode::OK, body))
}

/// One event object, read without parsing the event itself.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(default)]
    time: Option<serde_json::Value>,
    #[serde(borrow, default)]
    index: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    fields: Option<serde_json::Value>,
}

/// Why one event is refused: `(code, text)`.
fn validate(
    raw: &str,
    marker: Option<&str>,
    allowed: Option<&[String]>,
) -> Option<(u32, &'static str)> {
    if marker.is_some_and(|m| raw.contains(m)) {
        return Some((6, "Invalid data format"));
    }
    let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(raw) else {
        return Some((6, "Invalid data format"));
    };
    match envelope.event.map(RawValue::get) {
        None => return Some((12, "Event field is required")),
        Some("null" | "\"\"") => return Some((13, "Event field cannot be blank")),
        Some(_) => {}
    }
    match &envelope.time {
        None | Some(serde_json::Value::Number(_)) => {}
        Some(serde_json::Value::String(s)) if s.parse::<f64>().is_ok() => {}
        Some(_) => return Some((15, "Error in handling indexed fields")),
    }
    if let Some(fields) = &envelope.fields {
        let ok = fields.as_object().is_some_and(|f| {
            f.values().all(|v| match v {
                serde_json::Value::String(_) => true,
                serde_json::Value::Array(a) => a.iter().all(|x| x.is_string()),
                _ => false,
            })
        });
        if !ok {
            return Some((15, "Error in handling indexed fields"));
        }
    }
    if let (Some(allowed), Some(index)) = (allowed, envelope.index.as_deref())
        && !allowed.iter().any(|a| a == index)
    {
        return Some((7, "Incorrect index"));
    }
    None
}

async fn ack(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    lock(&shared.state).stats.ack_queries += 1;
    let channel = match check_request(shared, &req) {
        Ok(Some(c)) => c,
        Ok(None) => return hec_error(StatusCode::BAD_REQUEST, 14, "ACK is disabled"),
        Err(resp) => return *resp,
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return hec_error(StatusCode::BAD_REQUEST, 6, "Invalid data format"),
    };
    #[derive(serde::Deserialize)]
    struct Query {
        acks: Vec<u64>,
    }
    let Ok(query) = serde_json::from_slice::<Query>(&body) else {
        return hec_error(StatusCode::BAD_REQUEST, 6, "Invalid data format");
    };
    let mut st = lock(&shared.state);
    let mut answer = serde_json::Map::new();
    let mut confirmed = 0;
    let ch = st.channels.entry(channel).or_default();
    for id in query.acks {
        let done = match ch.pending.get_mut(&id) {
            Some(a) if a.lost => false,
            Some(a) if a.polls_left > 0 => {
                a.polls_left -= 1;
                false
            }
            Some(_) => {
                ch.pending.remove(&id);
                confirmed += 1;
                true
            }
            None => false,
        };
        answer.insert(id.to_string(), serde_json::Value::Bool(done));
    }
    st.stats.acks_confirmed += confirmed;
    json(
        StatusCode::OK,
        serde_json::json!({ "acks": answer }).to_string(),
    )
}
