//! Simulated App Service managed identity endpoint (the protocol azure_identity's
//! `ManagedIdentityCredential` uses when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set):
//! `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=…]` with the
//! secret from `IDENTITY_HEADER` in the `X-IDENTITY-HEADER` header, answering
//! `{"access_token":"…","expires_on":"<unix seconds>","resource":"…","token_type":"Bearer","client_id":"…"}`.
//!
//! Plain HTTP on 127.0.0.1, as the App Service sandbox serves it on localhost. Tokens are issued
//! into a [`TokenSim`]'s state, so the Graph simulator's [`crate::token::TokenValidator`] accepts
//! (and expires) them exactly like the token endpoint's.
//!
//! Refusals: a missing or wrong `X-IDENTITY-HEADER` is 401, a wrong `api-version` or a
//! `resource` the identity may not get a token for is 400, a `client_id` that names no
//! identity assigned to the resource is 400 (azure_identity reports any 400 as "The requested
//! identity has not been assigned to this resource").

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;

use crate::loopback::{self, LoopbackError, ServerHandle, SimRequest, SimResponse};
use crate::token::{self, TokenSim, TokenSimConfig, TokenState};

/// The API version azure_identity 1.0 sends to App Service.
pub const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// What the managed identity endpoint accepts.
#[derive(Clone)]
pub struct MsiSimConfig {
    /// The `IDENTITY_HEADER` value the platform gives the process.
    pub identity_header: String,
    /// Resources a token may be requested for (`resource`, no `/.default`).
    pub resources: Vec<String>,
    /// The system-assigned identity's client id (returned as `client_id`).
    pub system_client_id: String,
    /// User-assigned identities' client ids (`client_id=` selects one).
    pub user_assigned_client_ids: Vec<String>,
}

impl std::fmt::Debug for MsiSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsiSimConfig")
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub(crate) struct MsiState {
    requests: u64,
    issued: u64,
    failures: u64,
    last_error: Option<String>,
    /// `client_id` of each issued token's identity, in order.
    pub(crate) identities: Vec<String>,
}

fn lock(state: &Mutex<MsiState>) -> MutexGuard<'_, MsiState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running App Service managed identity endpoint.
#[derive(Debug)]
pub struct MsiSim {
    handle: ServerHandle,
    state: Arc<Mutex<MsiState>>,
}

impl MsiSim {
    /// Starts the endpoint on `127.0.0.1:0` (plain HTTP), issuing tokens valid at `token`'s
    /// Graph validator (with `token`'s lifetime and `max_uses`).
    pub async fn start(cfg: MsiSimConfig, token: &TokenSim) -> Result<MsiSim, LoopbackError> {
        let state = Arc::new(Mutex::new(MsiState::default()));
        let handler = {
            let state = state.clone();
            let tokens = token.state.clone();
            let token_cfg = token.cfg.clone();
            Arc::new(move |req: SimRequest| handle(&cfg, &token_cfg, &tokens, &state, req))
        };
        let handle = loopback::serve(handler, None).await?;
        Ok(MsiSim { handle, state })
    }

    /// `http://127.0.0.1:PORT/msi/token`: the `IDENTITY_ENDPOINT` to give the process.
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.handle.url())
    }

    /// Token requests answered (successful or not).
    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// Tokens issued.
    pub fn issued(&self) -> u64 {
        lock(&self.state).issued
    }

    /// Refused requests.
    pub fn failures(&self) -> u64 {
        lock(&self.state).failures
    }

    /// The last refusal's message.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.state).last_error.clone()
    }

    /// The identity (client id) each token was issued to, in order.
    pub fn identities(&self) -> Vec<String> {
        lock(&self.state).identities.clone()
    }
}

fn refuse(status: u16, error: &str, description: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({"statusCode": status, "error": error, "error_description": description}),
    )
}

pub(crate) fn handle(
    cfg: &MsiSimConfig,
    token_cfg: &TokenSimConfig,
    tokens: &Mutex<TokenState>,
    state: &Mutex<MsiState>,
    req: SimRequest,
) -> SimResponse {
    lock(state).requests += 1;
    let resp = respond(cfg, token_cfg, tokens, state, &req);
    if resp.status != 200 {
        let mut st = lock(state);
        st.failures += 1;
        st.last_error = serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("error_description")?.as_str().map(str::to_owned));
    }
    resp
}

fn respond(
    cfg: &MsiSimConfig,
    token_cfg: &TokenSimConfig,
    tokens: &Mutex<TokenState>,
    state: &Mutex<MsiState>,
    req: &SimRequest,
) -> SimResponse {
    if req.path != "/msi/token" {
        return SimResponse::json(404, &json!({"error": "not_found"}));
    }
    if req.method != "GET" {
        return refuse(405, "invalid_request", "Only GET is supported.");
    }
    if req.header("x-identity-header") != Some(cfg.identity_header.as_str()) {
        return refuse(
            401,
            "unauthorized",
            "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.",
        );
    }
    let q = req.query_pairs();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("api-version") != Some(APP_SERVICE_API_VERSION) {
        return refuse(
            400,
            "invalid_request",
            &format!("api-version must be {APP_SERVICE_API_VERSION}."),
        );
    }
    let Some(resource) = get("resource").filter(|r| cfg.resources.iter().any(|a| a == r)) else {
        return refuse(
            400,
            "invalid_resource",
            &format!(
                "The resource {:?} is not one this identity can get a token for.",
                get("resource").unwrap_or("")
            ),
        );
    };
    let identity = match (get("client_id"), get("object_id"), get("mi_res_id")) {
        (None, None, None) => cfg.system_client_id.clone(),
        (Some(id), None, None) if cfg.user_assigned_client_ids.iter().any(|u| u == id) => {
            id.to_owned()
        }
        _ => {
            return refuse(
                400,
                "invalid_request",
                "No managed identity with the given id is assigned to this resource.",
            );
        }
    };
    let access_token = token::issue(token_cfg, tokens);
    let expires_on = chrono::Utc::now().timestamp() + token_cfg.expires_in_secs as i64;
    {
        let mut st = lock(state);
        st.issued += 1;
        st.identities.push(identity.clone());
    }
    SimResponse::json(
        200,
        &json!({
            "access_token": access_token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity,
        }),
    )
}
