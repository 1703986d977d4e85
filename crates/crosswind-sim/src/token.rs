//! Simulated Microsoft identity platform token endpoint (client credentials flow):
//! `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`, `client_id`,
//! `scope` (`<resource>/.default`) and either `client_secret` or a certificate credential
//! (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a signed
//! `client_assertion`, verified against the registered certificates as in [`crate::assertion`]),
//! or a federated credential (workload identity federation: a token from an external OIDC issuer,
//! such as a Kubernetes service-account token, as `client_assertion`; an assertion whose header
//! names no registered certificate is checked against the registered federated identity
//! credentials by [`assertion::verify_federated`]), answering
//! `{"token_type":"Bearer","expires_in":…,"ext_expires_in":…,"access_token":"…"}` or an AADSTS
//! error (`{"error":"invalid_client","error_description":"AADSTS7000215: …","error_codes":[…]}`).
//! Served over TLS (azure_identity accepts only `https://` authorities).
//!
//! Tokens are opaque random strings; [`TokenValidator`] lets the Graph simulator check them,
//! expire them (server side, before the advertised `expires_in`) and count their uses.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::assertion::{self, FederatedCredential, RegisteredCert};
use crate::loopback::{self, LoopbackError, ServerHandle, SimRequest, SimResponse, TestCa};

/// What the token endpoint accepts and how long its tokens live.
#[derive(Clone, Debug)]
pub struct TokenSimConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Certificates registered for `client_id` (certificate credentials); empty = none, so
    /// every client assertion is refused with AADSTS700027.
    pub client_certificates: Vec<RegisteredCert>,
    /// Federated identity credentials registered for `client_id` (workload identity); empty =
    /// none, so an assertion that names no registered certificate is refused with AADSTS700027
    /// as before.
    pub federated_credentials: Vec<FederatedCredential>,
    /// `expires_in` advertised to the client.
    pub expires_in_secs: u64,
    /// How long a token is really accepted (server side); `None` = as advertised.
    pub valid_for: Option<Duration>,
    /// A token is refused after this many Graph requests (a token expiring mid-run,
    /// deterministically); `None` = unlimited.
    pub max_uses: Option<u64>,
    /// The first token requests are answered with these statuses instead (429 with
    /// `Retry-After: 1`, 503 and other 5xx as Entra does when throttling or degraded).
    pub busy_first: Vec<u16>,
}

impl Default for TokenSimConfig {
    fn default() -> Self {
        TokenSimConfig {
            tenant_id: "11111111-2222-3333-4444-555555555555".to_owned(),
            client_id: "66666666-7777-8888-9999-aaaaaaaaaaaa".to_owned(),
            client_secret: "sim-secret".to_owned(),
            client_certificates: Vec::new(),
            federated_credentials: Vec::new(),
            expires_in_secs: 3599,
            valid_for: None,
            max_uses: None,
            busy_first: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Issued {
    valid_until: Instant,
    uses: u64,
}

#[derive(Debug, Default)]
pub(crate) struct TokenState {
    issued: HashMap<String, Issued>,
    requests: u64,
    failures: u64,
    counter: u64,
    /// `jti` of every client assertion accepted.
    assertion_ids: HashSet<String>,
    pub(crate) assertions_accepted: u64,
    /// Federated tokens accepted, and their `jti`s in order (`-` when absent).
    federated_accepted: u64,
    pub(crate) federated_jtis: Vec<String>,
    /// The last refusal's `error_description`.
    last_error: Option<String>,
}

/// Checks bearer tokens issued by the simulator (shared with the Graph simulator).
#[derive(Clone, Debug)]
pub struct TokenValidator {
    state: Arc<Mutex<TokenState>>,
    max_uses: Option<u64>,
}

/// Why a bearer token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    Missing,
    Unknown,
    Expired,
}

fn lock(state: &Mutex<TokenState>) -> MutexGuard<'_, TokenState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl TokenValidator {
    /// Checks an `Authorization` header value and counts one use.
    pub fn check(&self, authorization: Option<&str>) -> TokenCheck {
        let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return TokenCheck::Missing;
        };
        let mut st = lock(&self.state);
        let Some(issued) = st.issued.get_mut(token) else {
            return TokenCheck::Unknown;
        };
        if Instant::now() >= issued.valid_until {
            return TokenCheck::Expired;
        }
        if let Some(max) = self.max_uses
            && issued.uses >= max
        {
            return TokenCheck::Expired;
        }
        issued.uses += 1;
        TokenCheck::Valid
    }

    /// Expires every token issued so far (the next Graph call gets a 401).
    pub fn expire_all(&self) {
        let now = Instant::now();
        for t in lock(&self.state).issued.values_mut() {
            t.valid_until = now;
        }
    }
}

/// A running token endpoint.
#[derive(Debug)]
pub struct TokenSim {
    handle: ServerHandle,
    pub(crate) state: Arc<Mutex<TokenState>>,
    pub(crate) cfg: TokenSimConfig,
}

impl TokenSim {
    /// Starts the endpoint on `127.0.0.1:0` over TLS with `ca`'s server certificate.
    pub async fn start(cfg: TokenSimConfig, ca: &TestCa) -> Result<TokenSim, LoopbackError> {
        let state = Arc::new(Mutex::new(TokenState::default()));
        let handler = {
            let state = state.clone();
            let cfg = cfg.clone();
            Arc::new(move |req: SimRequest| handle(&cfg, &state, req))
        };
        let handle = loopback::serve(handler, Some(ca.acceptor())).await?;
        Ok(TokenSim { handle, state, cfg })
    }

    /// `https://127.0.0.1:PORT`: the `authority_host` to configure.
    pub fn authority_host(&self) -> String {
        self.handle.url()
    }

    pub fn validator(&self) -> TokenValidator {
        TokenValidator {
            state: self.state.clone(),
            max_uses: self.cfg.max_uses,
        }
    }

    /// Token requests answered (successful or not).
    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// Tokens issued.
    pub fn issued(&self) -> u64 {
        lock(&self.state).issued.len() as u64
    }

    /// Client assertions accepted (each one a newly signed JWT: `jti`s are counted once).
    pub fn assertions_accepted(&self) -> u64 {
        lock(&self.state).assertions_accepted
    }

    /// Distinct `jti`s among the accepted assertions.
    pub fn distinct_assertions(&self) -> usize {
        lock(&self.state).assertion_ids.len()
    }

    /// Tokens issued for a federated credential (workload identity).
    pub fn federated_accepted(&self) -> u64 {
        lock(&self.state).federated_accepted
    }

    /// The `jti` of every accepted federated token, in order (`-` for a token without one).
    pub fn federated_jtis(&self) -> Vec<String> {
        lock(&self.state).federated_jtis.clone()
    }

    /// Refused token requests.
    pub fn failures(&self) -> u64 {
        lock(&self.state).failures
    }

    /// The last refusal's `error_description` (AADSTS…).
    pub fn last_error(&self) -> Option<String> {
        lock(&self.state).last_error.clone()
    }

    pub fn config(&self) -> &TokenSimConfig {
        &self.cfg
    }
}

fn aadsts(status: u16, error: &str, code: u32, description: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        }),
    )
}

pub(crate) fn handle(
    cfg: &TokenSimConfig,
    state: &Mutex<TokenState>,
    req: SimRequest,
) -> SimResponse {
    let request_no = {
        let mut st = lock(state);
        st.requests += 1;
        st.requests
    };
    let resp = match cfg.busy_first.get(request_no as usize - 1) {
        Some(&429) => aadsts(
            429,
            "temporarily_unavailable",
            50196,
            "The server is temporarily throttling requests.",
        )
        .with_header("Retry-After", "1"),
        Some(&status) => aadsts(
            status,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        ),
        None => token_response(cfg, state, &req),
    };
    if resp.status != 200 {
        let mut st = lock(state);
        st.failures += 1;
        st.last_error = serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("error_description")?.as_str().map(str::to_owned));
    }
    resp
}

fn token_response(
    cfg: &TokenSimConfig,
    state: &Mutex<TokenState>,
    req: &SimRequest,
) -> SimResponse {
    let expected_path = format!("/{}/oauth2/v2.0/token", cfg.tenant_id);
    if req.method != "POST" {
        return aadsts(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        );
    }
    if req.path != expected_path {
        if req.path.ends_with("/oauth2/v2.0/token") {
            return aadsts(400, "invalid_request", 90002, "Tenant not found.");
        }
        return SimResponse::json(404, &json!({"error": "not_found"}));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "client_credentials" {
        return aadsts(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if get("client_id") != cfg.client_id {
        return aadsts(
            400,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    let assertion_type = get("client_assertion_type");
    let assertion = get("client_assertion");
    if !assertion_type.is_empty() || !assertion.is_empty() {
        if !get("client_secret").is_empty() {
            return aadsts(
                400,
                "invalid_request",
                7000218,
                "Only one of 'client_assertion' and 'client_secret' may be presented.",
            );
        }
        if assertion_type != assertion::JWT_BEARER {
            return aadsts(
                400,
                "invalid_request",
                7000216,
                "'client_assertion_type' must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            );
        }
        // The audience is the endpoint as the client addressed it (scheme, Host, path).
        let audience = format!(
            "https://{}{}",
            req.header("host").unwrap_or("127.0.0.1"),
            expected_path
        );
        let now = chrono::Utc::now().timestamp();
        if !cfg.federated_credentials.is_empty()
            && !assertion::names_registered_cert(assertion, &cfg.client_certificates)
        {
            match assertion::verify_federated(assertion, &cfg.federated_credentials, now) {
                Ok(ok) => {
                    let mut st = lock(state);
                    st.federated_accepted += 1;
                    st.federated_jtis
                        .push(ok.jti.unwrap_or_else(|| "-".to_owned()));
                }
                Err(r) => return aadsts(r.status, r.error, r.code, &r.description),
            }
        } else {
            match assertion::verify(
                assertion,
                &cfg.client_id,
                &audience,
                &cfg.client_certificates,
                now,
            ) {
                Ok(ok) => {
                    let mut st = lock(state);
                    st.assertions_accepted += 1;
                    st.assertion_ids.insert(ok.jti);
                }
                Err(r) => return aadsts(r.status, r.error, r.code, &r.description),
            }
        }
    } else if get("client_secret").is_empty() {
        return aadsts(
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        );
    } else if get("client_secret") != cfg.client_secret {
        return aadsts(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    let scope = get("scope");
    if !scope.ends_with("/.default") {
        return aadsts(
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    }
    let token = issue(cfg, state);
    SimResponse::json(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": cfg.expires_in_secs,
            "ext_expires_in": cfg.expires_in_secs,
            "access_token": token,
        }),
    )
}

/// A new bearer token the [`TokenValidator`] accepts (for `valid_for`, else `expires_in_secs`).
pub(crate) fn issue(cfg: &TokenSimConfig, state: &Mutex<TokenState>) -> String {
    let mut st = lock(state);
    st.counter += 1;
    let token = format!("sim.{:016x}.{:016x}", st.counter, fastrand_u64(st.counter));
    let valid_for = cfg
        .valid_for
        .unwrap_or(Duration::from_secs(cfg.expires_in_secs));
    st.issued.insert(
        token.clone(),
        Issued {
            valid_until: Instant::now() + valid_for,
            uses: 0,
        },
    );
    token
}

/// Unpredictable enough for a simulator token (not a secret anyone relies on).
fn fastrand_u64(salt: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}
