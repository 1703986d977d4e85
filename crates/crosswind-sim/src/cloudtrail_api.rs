//! Simulated AWS CloudTrail `LookupEvents` (AWS JSON 1.1), fed by the scenario generator's
//! CloudTrail records, as the API reference describes it:
//! `POST /` with `x-amz-target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`
//! (or `CloudTrail_20131101.LookupEvents`, as the SDK sends it),
//! body `{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"…"}],
//! "StartTime":<epoch s>,"EndTime":<epoch s>,"MaxResults":≤50,"NextToken":"…"}`; answer
//! `{"Events":[{"EventId","EventName","ReadOnly","AccessKeyId","EventTime","EventSource",
//! "Username","Resources":[],"CloudTrailEvent":"<the record as a JSON string>"}],"NextToken":"…"}`,
//! newest first. The region is the one the request was signed for (SigV4 credential scope);
//! records are served per `awsRegion`. At most one lookup attribute per call. Errors use the
//! AWS JSON 1.1 shape (`{"__type":"ThrottlingException","message":"Rate exceeded"}`, HTTP 400),
//! including a per-region rate limit (2 calls/s, like the real API), scripted faults and regions
//! that refuse the credentials (`UnrecognizedClientException`, as an opt-in region not enabled
//! for the account answers).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::loopback::{self, LoopbackError, ServerHandle, SimRequest, SimResponse};

/// `x-amz-target` values: the API reference's long form and the short form the Rust SDK sends.
const TARGETS: [&str; 2] = [
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
    "CloudTrail_20131101.LookupEvents",
];

/// A scripted answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloudTrailFault {
    /// HTTP 400 `ThrottlingException`.
    Throttle,
    /// HTTP 500 `InternalFailure`.
    InternalFailure,
    /// HTTP 503 `ServiceUnavailable`.
    Unavailable,
}

#[derive(Clone, Debug)]
struct Rec {
    time_ms: i64,
    id: String,
    name: String,
    source: String,
    region: String,
    username: String,
    access_key: String,
    read_only: String,
    arrival_ms: i64,
    json: String,
}

#[derive(Debug, Default)]
struct CtState {
    records: Vec<Rec>,
    now_ms: i64,
    faults: VecDeque<CloudTrailFault>,
    rate_per_sec: Option<usize>,
    recent: HashMap<String, VecDeque<Instant>>,
    requests: u64,
    throttled: u64,
    served: BTreeSet<String>,
    served_count: u64,
    /// Regions that answer as an opt-in region not enabled for the account.
    refused_regions: BTreeSet<String>,
}

/// A running LookupEvents simulator (plain HTTP: the SDK takes `endpoint_url`).
#[derive(Debug)]
pub struct CloudTrailSim {
    handle: ServerHandle,
    state: Arc<Mutex<CtState>>,
}

fn lock(s: &Mutex<CtState>) -> MutexGuard<'_, CtState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

impl CloudTrailSim {
    /// Starts the simulator with `records` (CloudTrail records) and, parallel to them, how many
    /// ms after its `eventTime` each becomes visible (missing = on time).
    pub async fn start(
        records: &[Value],
        arrival_delay_ms: &[i64],
    ) -> Result<CloudTrailSim, LoopbackError> {
        let mut recs = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let Some(time_ms) = str_at(r, &["eventTime"])
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis())
            else {
                continue;
            };
            let username = str_at(r, &["userIdentity", "userName"])
                .or_else(|| {
                    str_at(
                        r,
                        &[
                            "userIdentity",
                            "sessionContext",
                            "sessionIssuer",
                            "userName",
                        ],
                    )
                })
                .unwrap_or_default();
            recs.push(Rec {
                time_ms,
                id: str_at(r, &["eventID"]).unwrap_or_default().to_owned(),
                name: str_at(r, &["eventName"]).unwrap_or_default().to_owned(),
                source: str_at(r, &["eventSource"]).unwrap_or_default().to_owned(),
                region: str_at(r, &["awsRegion"]).unwrap_or("us-east-1").to_owned(),
                username: username.to_owned(),
                access_key: str_at(r, &["userIdentity", "accessKeyId"])
                    .unwrap_or_default()
                    .to_owned(),
                read_only: match r.get("readOnly") {
                    Some(Value::Bool(b)) => b.to_string(),
                    Some(Value::String(s)) => s.clone(),
                    _ => "false".to_owned(),
                },
                arrival_ms: time_ms + arrival_delay_ms.get(i).copied().unwrap_or(0).max(0),
                json: serde_json::to_string(r).unwrap_or_default(),
            });
        }
        recs.sort_by(|a, b| b.time_ms.cmp(&a.time_ms).then_with(|| b.id.cmp(&a.id)));
        let state = Arc::new(Mutex::new(CtState {
            records: recs,
            now_ms: i64::MAX,
            rate_per_sec: Some(2),
            ..CtState::default()
        }));
        let handler = {
            let state = state.clone();
            Arc::new(move |req: SimRequest| respond(&state, &req))
        };
        let handle = loopback::serve(handler, None).await?;
        Ok(CloudTrailSim { handle, state })
    }

    /// `http://127.0.0.1:PORT`: the `endpoint_url` to configure.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    pub fn set_now(&self, now_ms: i64) {
        lock(&self.state).now_ms = now_ms;
    }

    /// Calls per second allowed per region before `ThrottlingException` (`None` = unlimited).
    pub fn set_rate_limit(&self, per_sec: Option<usize>) {
        lock(&self.state).rate_per_sec = per_sec;
    }

    /// Makes `region` answer every call as an opt-in region the account has not enabled does:
    /// HTTP 400 `UnrecognizedClientException` (the credentials are unknown there); `false` heals.
    pub fn set_region_refused(&self, region: &str, refused: bool) {
        let mut st = lock(&self.state);
        if refused {
            st.refused_regions.insert(region.to_owned());
        } else {
            st.refused_regions.remove(region);
        }
    }

    pub fn push_faults(&self, faults: impl IntoIterator<Item = CloudTrailFault>) {
        lock(&self.state).faults.extend(faults);
    }

    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// Requests refused with `ThrottlingException` (scripted or by the rate limit).
    pub fn throttled(&self) -> u64 {
        lock(&self.state).throttled
    }

    pub fn served_ids(&self) -> BTreeSet<String> {
        lock(&self.state).served.clone()
    }

    pub fn served_count(&self) -> u64 {
        lock(&self.state).served_count
    }

    /// Ids visible at `now_ms` with the given event names and regions and `eventTime` in
    /// `[from_ms, to_ms]`.
    pub fn visible_ids(
        &self,
        now_ms: i64,
        from_ms: i64,
        to_ms: i64,
        names: &[&str],
        regions: &[&str],
    ) -> BTreeSet<String> {
        lock(&self.state)
            .records
            .iter()
            .filter(|r| {
                r.arrival_ms <= now_ms
                    && r.time_ms >= from_ms
                    && r.time_ms <= to_ms
                    && names.contains(&r.name.as_str())
                    && regions.contains(&r.region.as_str())
            })
            .map(|r| r.id.clone())
            .collect()
    }
}

fn aws_error(status: u16, kind: &str, message: &str) -> SimResponse {
    SimResponse {
        status,
        headers: vec![
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            (
                "x-amzn-requestid".to_owned(),
                "00000000-0000-0000-0000-000000000000".to_owned(),
            ),
        ],
        body: serde_json::to_vec(&json!({"__type": kind, "message": message})).unwrap_or_default(),
    }
}

/// The region from `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261130/eu-west-1/cloudtrail/aws4_request, …`.
fn signed_region(req: &SimRequest) -> Option<String> {
    let auth = req.header("authorization")?;
    let cred = auth.split("Credential=").nth(1)?;
    let scope = cred.split([',', ' ']).next()?;
    scope.split('/').nth(2).map(str::to_owned)
}

fn epoch_ms(v: Option<&Value>) -> Result<Option<i64>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some((f * 1000.0).round() as i64))
            .ok_or(()),
        Some(_) => Err(()),
    }
}

fn respond(state: &Mutex<CtState>, req: &SimRequest) -> SimResponse {
    if req.method != "POST" || req.path != "/" {
        return aws_error(404, "UnknownOperationException", "not found");
    }
    if !req
        .header("x-amz-target")
        .is_some_and(|t| TARGETS.contains(&t))
    {
        return aws_error(
            400,
            "UnknownOperationException",
            "only LookupEvents is simulated",
        );
    }
    let Some(region) = signed_region(req) else {
        return aws_error(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    {
        let mut st = lock(state);
        st.requests += 1;
        if st.refused_regions.contains(&region) {
            return aws_error(
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            );
        }
        if let Some(f) = st.faults.pop_front() {
            return match f {
                CloudTrailFault::Throttle => {
                    st.throttled += 1;
                    aws_error(400, "ThrottlingException", "Rate exceeded")
                }
                CloudTrailFault::InternalFailure => {
                    aws_error(500, "InternalFailure", "internal failure")
                }
                CloudTrailFault::Unavailable => {
                    aws_error(503, "ServiceUnavailable", "service unavailable")
                }
            };
        }
        if let Some(limit) = st.rate_per_sec {
            let now = Instant::now();
            let q = st.recent.entry(region.clone()).or_default();
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                q.pop_front();
            }
            if q.len() >= limit {
                st.throttled += 1;
                return aws_error(400, "ThrottlingException", "Rate exceeded");
            }
            q.push_back(now);
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return aws_error(400, "SerializationException", "body is not JSON");
    };
    let attrs = body
        .get("LookupAttributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if attrs.len() > 1 {
        return aws_error(
            400,
            "InvalidLookupAttributesException",
            "You cannot specify more than one lookup attribute.",
        );
    }
    let attr = attrs.first().map(|a| {
        (
            a.get("AttributeKey")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            a.get("AttributeValue")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    });
    let (Ok(start), Ok(end)) = (
        epoch_ms(body.get("StartTime")),
        epoch_ms(body.get("EndTime")),
    ) else {
        return aws_error(
            400,
            "InvalidTimeRangeException",
            "StartTime and EndTime must be timestamps",
        );
    };
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return aws_error(
            400,
            "InvalidTimeRangeException",
            "Start time must be earlier than end time.",
        );
    }
    let max = match body.get("MaxResults").and_then(Value::as_u64) {
        None => 50,
        Some(n) if (1..=50).contains(&n) => n as usize,
        Some(_) => {
            return aws_error(
                400,
                "InvalidMaxResultsException",
                "MaxResults must be between 1 and 50.",
            );
        }
    };
    let (offset, snapshot) = match body.get("NextToken").and_then(Value::as_str) {
        None => (0usize, None),
        Some(t) => match t
            .split_once(':')
            .and_then(|(o, s)| Some((o.parse().ok()?, s.parse::<i64>().ok()?)))
        {
            Some((o, s)) => (o, Some(s)),
            None => return aws_error(400, "InvalidNextTokenException", "Invalid NextToken"),
        },
    };
    let mut st = lock(state);
    let now = snapshot.unwrap_or(st.now_ms);
    let matching: Vec<&Rec> = st
        .records
        .iter()
        .filter(|r| {
            r.region == region
                && r.arrival_ms <= now
                && start.is_none_or(|s| r.time_ms >= s)
                && end.is_none_or(|e| r.time_ms <= e)
                && match &attr {
                    None => true,
                    Some((k, v)) => match k.as_str() {
                        "EventName" => &r.name == v,
                        "EventId" => &r.id == v,
                        "EventSource" => &r.source == v,
                        "Username" => &r.username == v,
                        "AccessKeyId" => &r.access_key == v,
                        "ReadOnly" => &r.read_only == v,
                        _ => false,
                    },
                }
        })
        .collect();
    let page: Vec<&Rec> = matching.iter().skip(offset).take(max).copied().collect();
    let more = offset + page.len() < matching.len();
    let events: Vec<Value> = page
        .iter()
        .map(|r| {
            json!({
                "EventId": r.id,
                "EventName": r.name,
                "ReadOnly": r.read_only,
                "AccessKeyId": r.access_key,
                "EventTime": r.time_ms as f64 / 1000.0,
                "EventSource": r.source,
                "Username": r.username,
                "Resources": [],
                "CloudTrailEvent": r.json,
            })
        })
        .collect();
    let ids: Vec<String> = page.iter().map(|r| r.id.clone()).collect();
    let mut out = json!({ "Events": events });
    if more {
        out["NextToken"] = json!(format!("{}:{}", offset + page.len(), now));
    }
    st.served_count += ids.len() as u64;
    st.served.extend(ids);
    SimResponse {
        status: 200,
        headers: vec![
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            (
                "x-amzn-requestid".to_owned(),
                "00000000-0000-0000-0000-000000000001".to_owned(),
            ),
        ],
        body: serde_json::to_vec(&out).unwrap_or_default(),
    }
}
