//! Simulated Microsoft Graph `GET /{v1.0|beta}/auditLogs/signIns`, fed by the scenario
//! generator's sign-ins, as the public docs describe it:
//! - `$filter` on `createdDateTime` (`ge`, `gt`, `le`, `lt`, joined by `and`) and, on beta,
//!   `signInEventTypes/any(t: t eq '…')`; without a type filter beta returns interactive
//!   sign-ins only;
//! - `$top` (1..=1000, default 1000), newest first, `@odata.nextLink` with a `$skiptoken`
//!   that pins the result set of the first page;
//! - records become visible at their arrival time on the simulator's clock
//!   ([`GraphSim::set_now`]), so a late sign-in shows up with an old `createdDateTime`;
//! - injected faults: 429 with `Retry-After`, 503, 500; 401 `InvalidAuthenticationToken`
//!   for tokens the token simulator expired; 403 when told the app lacks permissions.
//!
//! And `GET /{v1.0|beta}/identityProtection/riskDetections` (Graph's riskDetection list):
//! - one object per detection id, in its latest state visible on the simulator clock: a
//!   detection dismissed or remediated later is served again with the newer
//!   `lastUpdatedDateTime` (the old state is gone from Graph, as in Entra);
//! - `$filter` on `lastUpdatedDateTime` or `detectedDateTime` (`ge`, `gt`, `le`, `lt`);
//!   `$top` 1..=500, default 20; newest `lastUpdatedDateTime` first; `@odata.nextLink`;
//! - the same fault queue as sign-ins (429 + `Retry-After` …), and a 403
//!   `Authorization_RequestDenied` when the app lacks IdentityRiskEvent.Read.All
//!   ([`GraphSim::deny_risk_detections`]) while sign-ins are still served.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::loopback::{self, LoopbackError, ServerHandle, SimRequest, SimResponse, TestCa};
use crate::token::{TokenCheck, TokenValidator};

/// A scripted answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFault {
    /// 429 `TooManyRequests` with `Retry-After: secs`.
    Throttle { retry_after_secs: u64 },
    /// 503 with an optional `Retry-After`.
    Unavailable { retry_after_secs: Option<u64> },
    /// 500 without `Retry-After`.
    ServerError,
    /// 403 `Authorization_RequestDenied` (the app lacks AuditLog.Read.All).
    Forbidden,
}

/// One sign-in the simulator can serve.
#[derive(Clone, Debug)]
struct Stored {
    created_ms: i64,
    id: String,
    arrival_ms: i64,
    types: Vec<String>,
    bytes: Vec<u8>,
}

/// One state of one risk detection: visible from `arrival_ms` until a later state of the same
/// id arrives.
#[derive(Clone, Debug)]
struct RiskVersion {
    id: String,
    updated_ms: i64,
    detected_ms: i64,
    arrival_ms: i64,
    bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct GraphState {
    records: Vec<Stored>,
    /// Every state of every risk detection, by (id, arrival).
    risk: Vec<RiskVersion>,
    /// The app lacks IdentityRiskEvent.Read.All: riskDetections answers 403.
    risk_denied: bool,
    /// `<id>@<lastUpdatedDateTime ms>` of every risk detection state served in a page.
    risk_served: BTreeSet<String>,
    risk_served_count: u64,
    risk_requests: u64,
    now_ms: i64,
    faults: VecDeque<GraphFault>,
    /// Every `n`-th request gets this fault.
    every: Option<(u64, GraphFault)>,
    requests: u64,
    data_requests: u64,
    served: BTreeSet<String>,
    served_count: u64,
    statuses: Vec<u16>,
    /// Queries filtered on this sign-in event type are refused (400).
    refused_type: Option<String>,
}

/// A running Graph simulator.
#[derive(Debug)]
pub struct GraphSim {
    handle: ServerHandle,
    state: Arc<Mutex<GraphState>>,
}

fn lock(state: &Mutex<GraphState>) -> MutexGuard<'_, GraphState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn parse_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

impl GraphSim {
    /// Starts the simulator with `signins` (Graph beta objects) and, parallel to them, how many
    /// ms after its `createdDateTime` each becomes visible. TLS when `ca` is given.
    pub async fn start(
        signins: &[Value],
        arrival_delay_ms: &[i64],
        tokens: TokenValidator,
        ca: Option<&TestCa>,
    ) -> Result<GraphSim, LoopbackError> {
        let mut records = Vec::with_capacity(signins.len());
        for (i, s) in signins.iter().enumerate() {
            let Some(created_ms) = s
                .get("createdDateTime")
                .and_then(Value::as_str)
                .and_then(parse_ms)
            else {
                continue;
            };
            let id = s
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let types = s
                .get("signInEventTypes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_else(|| vec!["interactiveUser".to_owned()]);
            records.push(Stored {
                created_ms,
                id,
                arrival_ms: created_ms + arrival_delay_ms.get(i).copied().unwrap_or(0).max(0),
                types,
                bytes: serde_json::to_vec(s).unwrap_or_default(),
            });
        }
        // Newest first, ties by id descending: the order pages are cut in.
        records.sort_by(|a, b| {
            b.created_ms
                .cmp(&a.created_ms)
                .then_with(|| b.id.cmp(&a.id))
        });
        let state = Arc::new(Mutex::new(GraphState {
            records,
            now_ms: i64::MAX,
            ..GraphState::default()
        }));
        let scheme = if ca.is_some() { "https" } else { "http" };
        let handler = {
            let state = state.clone();
            Arc::new(move |req: SimRequest| handle(&state, &tokens, scheme, req))
        };
        let handle = loopback::serve(handler, ca.map(TestCa::acceptor)).await?;
        Ok(GraphSim { handle, state })
    }

    /// `https://127.0.0.1:PORT`: the `graph_url` to configure.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// Sets the simulator clock (epoch ms): records whose arrival is later are not visible.
    pub fn set_now(&self, now_ms: i64) {
        lock(&self.state).now_ms = now_ms;
    }

    /// Risk detection states (Graph `riskDetection` objects; several objects with one `id` are
    /// its successive states) and, parallel to them, how many ms after its
    /// `lastUpdatedDateTime` each becomes visible. Replaces what was set before.
    pub fn set_risk_detections(&self, detections: &[Value], arrival_delay_ms: &[i64]) {
        let mut risk = Vec::with_capacity(detections.len());
        for (i, d) in detections.iter().enumerate() {
            let time = |k: &str| d.get(k).and_then(Value::as_str).and_then(parse_ms);
            let Some(updated_ms) = time("lastUpdatedDateTime") else {
                continue;
            };
            risk.push(RiskVersion {
                id: d
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                updated_ms,
                detected_ms: time("detectedDateTime").unwrap_or(updated_ms),
                arrival_ms: updated_ms + arrival_delay_ms.get(i).copied().unwrap_or(0).max(0),
                bytes: serde_json::to_vec(d).unwrap_or_default(),
            });
        }
        risk.sort_by(|a, b| {
            a.id.cmp(&b.id)
                .then(a.arrival_ms.cmp(&b.arrival_ms))
                .then(a.updated_ms.cmp(&b.updated_ms))
        });
        lock(&self.state).risk = risk;
    }

    /// Answers riskDetections with 403 `Authorization_RequestDenied` (the app lacks
    /// IdentityRiskEvent.Read.All) or, with `false`, serves them again.
    pub fn deny_risk_detections(&self, denied: bool) {
        lock(&self.state).risk_denied = denied;
    }

    /// Requests to riskDetections (all statuses, faults included).
    pub fn risk_requests(&self) -> u64 {
        lock(&self.state).risk_requests
    }

    /// `<id>@<lastUpdatedDateTime epoch ms>` of every risk detection state served.
    pub fn served_risk_states(&self) -> BTreeSet<String> {
        lock(&self.state).risk_served.clone()
    }

    /// Risk detection objects served in pages, counting repeats.
    pub fn risk_served_count(&self) -> u64 {
        lock(&self.state).risk_served_count
    }

    /// `<id>@<lastUpdatedDateTime epoch ms>` of the states visible at `now_ms` (one per id, the
    /// latest that has arrived) with `lastUpdatedDateTime` in `[from_ms, to_ms]`.
    pub fn visible_risk_states(&self, now_ms: i64, from_ms: i64, to_ms: i64) -> BTreeSet<String> {
        latest_risk(&lock(&self.state).risk, now_ms)
            .into_iter()
            .filter(|r| r.updated_ms >= from_ms && r.updated_ms <= to_ms)
            .map(|r| format!("{}@{}", r.id, r.updated_ms))
            .collect()
    }

    /// Refuses every query filtered on `event_type` with a 400 `BadRequest` (as Graph answers a
    /// filter it cannot serve), or stops doing so with `None`.
    pub fn refuse_event_type(&self, event_type: Option<&str>) {
        lock(&self.state).refused_type = event_type.map(str::to_owned);
    }

    /// Queues faults for the next requests, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = GraphFault>) {
        lock(&self.state).faults.extend(faults);
    }

    /// Injects `fault` into every `n`-th request (`n` ≥ 2), or stops doing so with `None`.
    pub fn fault_every(&self, every: Option<(u64, GraphFault)>) {
        lock(&self.state).every = every.filter(|(n, _)| *n >= 2);
    }

    /// Requests received (all statuses).
    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// Requests answered with a page.
    pub fn data_requests(&self) -> u64 {
        lock(&self.state).data_requests
    }

    /// Distinct sign-in ids served in any page.
    pub fn served_ids(&self) -> BTreeSet<String> {
        lock(&self.state).served.clone()
    }

    /// Records served in pages, counting repeats.
    pub fn served_count(&self) -> u64 {
        lock(&self.state).served_count
    }

    /// Status of every request, in order.
    pub fn statuses(&self) -> Vec<u16> {
        lock(&self.state).statuses.clone()
    }

    /// Ids of records visible at `now_ms` with `createdDateTime` in `[from_ms, to_ms]`.
    pub fn visible_ids(&self, now_ms: i64, from_ms: i64, to_ms: i64) -> BTreeSet<String> {
        lock(&self.state)
            .records
            .iter()
            .filter(|r| r.arrival_ms <= now_ms && r.created_ms >= from_ms && r.created_ms <= to_ms)
            .map(|r| r.id.clone())
            .collect()
    }
}

fn graph_error(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": "00000000-0000-0000-0000-000000000000",
                    "client-request-id": "00000000-0000-0000-0000-000000000000"
                }
            }
        }),
    )
}

fn fault_response(f: GraphFault) -> SimResponse {
    match f {
        GraphFault::Throttle { retry_after_secs } => {
            graph_error(429, "TooManyRequests", "Too many requests.")
                .with_header("retry-after", retry_after_secs.to_string())
        }
        GraphFault::Unavailable { retry_after_secs } => {
            let r = graph_error(
                503,
                "ServiceUnavailable",
                "Service is temporarily unavailable.",
            );
            match retry_after_secs {
                Some(s) => r.with_header("retry-after", s.to_string()),
                None => r,
            }
        }
        GraphFault::ServerError => {
            graph_error(500, "InternalServerError", "Internal server error.")
        }
        GraphFault::Forbidden => graph_error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ),
    }
}

/// A parsed `$filter`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filter {
    from_ms: Option<i64>,
    from_incl: bool,
    to_ms: Option<i64>,
    to_incl: bool,
    event_type: Option<String>,
}

fn parse_filter(f: &str) -> Result<Filter, String> {
    let mut out = Filter::default();
    for term in f.split(" and ") {
        let term = term
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        if term.is_empty() {
            continue;
        }
        if let Some(rest) = term.strip_prefix("signInEventTypes/any(") {
            // t: t eq 'nonInteractiveUser'
            let v = rest
                .split_once(" eq ")
                .map(|(_, v)| v.trim().trim_end_matches(')').trim().trim_matches('\''))
                .ok_or_else(|| format!("invalid signInEventTypes clause: {term}"))?;
            out.event_type = Some(v.to_owned());
            continue;
        }
        let mut parts = term.splitn(3, ' ');
        let (Some(field), Some(op), Some(val)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("invalid filter clause: {term}"));
        };
        if field != "createdDateTime" {
            return Err(format!("unsupported filter property: {field}"));
        }
        let ms = parse_ms(val.trim_matches('\''))
            .ok_or_else(|| format!("invalid DateTimeOffset: {val}"))?;
        match op {
            "ge" => (out.from_ms, out.from_incl) = (Some(ms), true),
            "gt" => (out.from_ms, out.from_incl) = (Some(ms), false),
            "le" => (out.to_ms, out.to_incl) = (Some(ms), true),
            "lt" => (out.to_ms, out.to_incl) = (Some(ms), false),
            _ => return Err(format!("unsupported operator: {op}")),
        }
    }
    Ok(out)
}

impl Filter {
    fn matches(&self, r: &Stored) -> bool {
        let from_ok = match self.from_ms {
            Some(f) if self.from_incl => r.created_ms >= f,
            Some(f) => r.created_ms > f,
            None => true,
        };
        let to_ok = match self.to_ms {
            Some(t) if self.to_incl => r.created_ms <= t,
            Some(t) => r.created_ms < t,
            None => true,
        };
        let type_ok = match &self.event_type {
            Some(t) => r.types.iter().any(|x| x == t),
            None => r.types.iter().any(|x| x == "interactiveUser"),
        };
        from_ok && to_ok && type_ok
    }
}

fn handle(
    state: &Mutex<GraphState>,
    tokens: &TokenValidator,
    scheme: &str,
    req: SimRequest,
) -> SimResponse {
    let resp = respond(state, tokens, scheme, &req);
    let mut st = lock(state);
    st.statuses.push(resp.status);
    resp
}

fn respond(
    state: &Mutex<GraphState>,
    tokens: &TokenValidator,
    scheme: &str,
    req: &SimRequest,
) -> SimResponse {
    let risk_version = match req.path.as_str() {
        "/v1.0/identityProtection/riskDetections" => Some("v1.0"),
        "/beta/identityProtection/riskDetections" => Some("beta"),
        _ => None,
    };
    {
        let mut st = lock(state);
        st.requests += 1;
        if risk_version.is_some() {
            st.risk_requests += 1;
        }
        let n = st.requests;
        if let Some(f) = st.faults.pop_front() {
            return fault_response(f);
        }
        if let Some((every, f)) = st.every
            && n.is_multiple_of(every)
        {
            return fault_response(f);
        }
    }
    match tokens.check(req.header("authorization")) {
        TokenCheck::Valid => {}
        TokenCheck::Missing => {
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.");
        }
        TokenCheck::Unknown => {
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            );
        }
        TokenCheck::Expired => {
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            );
        }
    }
    if let Some(version) = risk_version {
        return respond_risk(state, scheme, req, version);
    }
    let version = if req.path == "/beta/auditLogs/signIns" {
        "beta"
    } else if req.path == "/v1.0/auditLogs/signIns" {
        "v1.0"
    } else {
        return graph_error(
            404,
            "BadRequest",
            &format!("Resource not found for the segment '{}'.", req.path),
        );
    };
    if req.method != "GET" {
        return graph_error(405, "BadRequest", "Only GET is supported.");
    }
    let q = req.query_pairs();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let filter_s = get("$filter").unwrap_or("");
    let filter = match parse_filter(filter_s) {
        Ok(f) => f,
        Err(e) => return graph_error(400, "BadRequest", &format!("Invalid filter clause: {e}")),
    };
    if filter.event_type.is_some() && lock(state).refused_type == filter.event_type {
        return graph_error(
            400,
            "BadRequest",
            "Invalid filter clause: the query could not be served.",
        );
    }
    if version == "v1.0" && filter.event_type.is_some() {
        return graph_error(
            400,
            "BadRequest",
            "Invalid filter clause: Could not find a property named 'signInEventTypes' on type 'microsoft.graph.signIn'.",
        );
    }
    let Paging {
        top,
        offset,
        snapshot,
    } = match Paging::parse(&get, 1000, 1000) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut st = lock(state);
    st.data_requests += 1;
    let now = snapshot.unwrap_or(st.now_ms);
    let matching: Vec<&Stored> = st
        .records
        .iter()
        .filter(|r| r.arrival_ms <= now && filter.matches(r))
        .collect();
    let page: Vec<&Stored> = matching.iter().skip(offset).take(top).copied().collect();
    let page_out = PageOut {
        host: &host_url(scheme, req),
        version,
        context: "auditLogs/signIns",
        path: "auditLogs/signIns",
        filter: filter_s,
        top,
        next_offset: offset + page.len(),
        more: offset + page.len() < matching.len(),
        now,
    };
    let body = page_out.body(page.iter().map(|r| &r.bytes[..]));
    let ids: Vec<String> = page.iter().map(|r| r.id.clone()).collect();
    st.served_count += ids.len() as u64;
    st.served.extend(ids);
    graph_page(body)
}

/// The latest arrived state of each detection at `now` (versions sorted by id, then arrival).
fn latest_risk(versions: &[RiskVersion], now: i64) -> Vec<&RiskVersion> {
    let mut out: Vec<&RiskVersion> = Vec::new();
    for v in versions.iter().filter(|v| v.arrival_ms <= now) {
        match out.last_mut() {
            Some(last) if last.id == v.id => *last = v,
            _ => out.push(v),
        }
    }
    out
}

/// A `$filter` on riskDetections: `lastUpdatedDateTime` and `detectedDateTime` bounds.
#[derive(Debug, Default, PartialEq, Eq)]
struct RiskFilter {
    /// (field is lastUpdatedDateTime, op, ms)
    terms: Vec<(bool, String, i64)>,
}

fn parse_risk_filter(f: &str) -> Result<RiskFilter, String> {
    let mut out = RiskFilter::default();
    for term in f.split(" and ") {
        let term = term
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        if term.is_empty() {
            continue;
        }
        let mut parts = term.splitn(3, ' ');
        let (Some(field), Some(op), Some(val)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("invalid filter clause: {term}"));
        };
        let updated = match field {
            "lastUpdatedDateTime" => true,
            "detectedDateTime" => false,
            _ => return Err(format!("unsupported filter property: {field}")),
        };
        if !matches!(op, "ge" | "gt" | "le" | "lt") {
            return Err(format!("unsupported operator: {op}"));
        }
        let ms = parse_ms(val.trim_matches('\''))
            .ok_or_else(|| format!("invalid DateTimeOffset: {val}"))?;
        out.terms.push((updated, op.to_owned(), ms));
    }
    Ok(out)
}

impl RiskFilter {
    fn matches(&self, r: &RiskVersion) -> bool {
        self.terms.iter().all(|(updated, op, ms)| {
            let t = if *updated {
                r.updated_ms
            } else {
                r.detected_ms
            };
            match op.as_str() {
                "ge" => t >= *ms,
                "gt" => t > *ms,
                "le" => t <= *ms,
                _ => t < *ms,
            }
        })
    }
}

fn respond_risk(
    state: &Mutex<GraphState>,
    scheme: &str,
    req: &SimRequest,
    version: &str,
) -> SimResponse {
    if req.method != "GET" {
        return graph_error(405, "BadRequest", "Only GET is supported.");
    }
    if lock(state).risk_denied {
        return fault_response(GraphFault::Forbidden);
    }
    let q = req.query_pairs();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let filter_s = get("$filter").unwrap_or("");
    let filter = match parse_risk_filter(filter_s) {
        Ok(f) => f,
        Err(e) => return graph_error(400, "BadRequest", &format!("Invalid filter clause: {e}")),
    };
    // Graph: default page size 20, at most 500 with $top.
    let Paging {
        top,
        offset,
        snapshot,
    } = match Paging::parse(&get, 20, 500) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut st = lock(state);
    st.data_requests += 1;
    let now = snapshot.unwrap_or(st.now_ms);
    let mut matching: Vec<&RiskVersion> = latest_risk(&st.risk, now)
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();
    matching.sort_by(|a, b| {
        b.updated_ms
            .cmp(&a.updated_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    let page: Vec<&RiskVersion> = matching.iter().skip(offset).take(top).copied().collect();
    let page_out = PageOut {
        host: &host_url(scheme, req),
        version,
        context: "riskDetections",
        path: "identityProtection/riskDetections",
        filter: filter_s,
        top,
        next_offset: offset + page.len(),
        more: offset + page.len() < matching.len(),
        now,
    };
    let body = page_out.body(page.iter().map(|r| &r.bytes[..]));
    let keys: Vec<String> = page
        .iter()
        .map(|r| format!("{}@{}", r.id, r.updated_ms))
        .collect();
    st.risk_served_count += keys.len() as u64;
    st.risk_served.extend(keys);
    graph_page(body)
}

/// `$top` and `$skiptoken` of a Graph list request. The skip token is `<offset>-<snapshot ms>`:
/// later pages see the data as it was when the first page was served.
struct Paging {
    top: usize,
    offset: usize,
    snapshot: Option<i64>,
}

impl Paging {
    fn parse<'q>(
        get: &impl Fn(&str) -> Option<&'q str>,
        default_top: usize,
        max_top: usize,
    ) -> Result<Paging, SimResponse> {
        let top = match get("$top").map(str::parse::<usize>) {
            None => default_top,
            Some(Ok(n)) if (1..=max_top).contains(&n) => n,
            Some(_) => {
                return Err(graph_error(
                    400,
                    "BadRequest",
                    &format!("Invalid $top value: must be between 1 and {max_top}."),
                ));
            }
        };
        let (offset, snapshot) = match get("$skiptoken") {
            None => (0, None),
            Some(tok) => match tok
                .split_once('-')
                .and_then(|(o, s)| Some((o.parse().ok()?, s.parse::<i64>().ok()?)))
            {
                Some((o, s)) => (o, Some(s)),
                None => return Err(graph_error(400, "BadRequest", "Invalid $skiptoken.")),
            },
        };
        Ok(Paging {
            top,
            offset,
            snapshot,
        })
    }
}

/// One page of a Graph collection: `@odata.context`, `@odata.nextLink` while more remain
/// (same filter and `$top`, the next offset and the snapshot time), and `value`.
struct PageOut<'a> {
    host: &'a str,
    version: &'a str,
    context: &'a str,
    path: &'a str,
    filter: &'a str,
    top: usize,
    next_offset: usize,
    more: bool,
    now: i64,
}

impl PageOut<'_> {
    fn body<'r>(&self, records: impl Iterator<Item = &'r [u8]> + Clone) -> Vec<u8> {
        let (host, version) = (self.host, self.version);
        let size = records.clone().map(|r| r.len() + 1).sum::<usize>() + 512;
        let mut body = Vec::with_capacity(size);
        body.extend_from_slice(
            format!(
                "{{\"@odata.context\":\"{host}/{version}/$metadata#{}\",",
                self.context
            )
            .as_bytes(),
        );
        if self.more {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            if !self.filter.is_empty() {
                q.append_pair("$filter", self.filter);
            }
            let next = format!(
                "{host}/{version}/{}?{}",
                self.path,
                q.append_pair("$top", &self.top.to_string())
                    .append_pair("$skiptoken", &format!("{}-{}", self.next_offset, self.now))
                    .finish()
            );
            body.extend_from_slice(b"\"@odata.nextLink\":");
            body.extend_from_slice(&serde_json::to_vec(&next).unwrap_or_default());
            body.push(b',');
        }
        body.extend_from_slice(b"\"value\":[");
        for (i, r) in records.enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(r);
        }
        body.extend_from_slice(b"]}");
        body
    }
}

/// A 200 with a Graph page, as Graph labels it.
fn graph_page(body: Vec<u8>) -> SimResponse {
    SimResponse {
        status: 200,
        headers: vec![(
            "content-type".to_owned(),
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8".to_owned(),
        )],
        body,
    }
}

fn host_url(scheme: &str, req: &SimRequest) -> String {
    // The Host header carries 127.0.0.1:PORT.
    let host = req.header("host").unwrap_or("127.0.0.1");
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_filters() {
        let f = parse_filter(
            "createdDateTime ge 2026-11-30T00:00:00Z and createdDateTime le 2026-11-30T01:00:00Z and signInEventTypes/any(t: t eq 'nonInteractiveUser')",
        )
        .unwrap_or_default();
        assert_eq!(f.event_type.as_deref(), Some("nonInteractiveUser"));
        assert_eq!(f.from_ms, Some(1_795_996_800_000));
        assert_eq!(f.to_ms, Some(1_796_000_400_000));
        assert!(parse_filter("userId eq 'x'").is_err());
    }

    fn version(id: &str, updated_ms: i64, arrival_ms: i64) -> RiskVersion {
        RiskVersion {
            id: id.to_owned(),
            updated_ms,
            detected_ms: 100,
            arrival_ms,
            bytes: Vec::new(),
        }
    }

    #[test]
    fn a_detection_is_served_in_its_latest_arrived_state() {
        // Sorted by id then arrival, as set_risk_detections keeps them.
        let v = [
            version("a", 100, 110),
            version("a", 500, 520),
            version("b", 200, 200),
        ];
        let at = |now| {
            latest_risk(&v, now)
                .iter()
                .map(|r| (r.id.clone(), r.updated_ms))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(105), vec![]);
        assert_eq!(at(300), vec![("a".into(), 100), ("b".into(), 200)]);
        assert_eq!(at(520), vec![("a".into(), 500), ("b".into(), 200)]);
        let f = parse_risk_filter(
            "lastUpdatedDateTime ge 1970-01-01T00:00:00.300Z and lastUpdatedDateTime le 1970-01-01T00:00:01Z",
        )
        .unwrap_or_default();
        assert!(f.matches(&v[1]) && !f.matches(&v[0]) && !f.matches(&v[2]));
        assert!(parse_risk_filter("createdDateTime ge 2026-11-30T00:00:00Z").is_err());
        assert!(parse_risk_filter("detectedDateTime gt 2026-11-30T00:00:00Z").is_ok());
    }
}
