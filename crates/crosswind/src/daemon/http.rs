//! `[http] listen`: `/healthz` (the process is alive), `/readyz` (store open, every collector's
//! last poll ok, Splunk reachable; 503 with the reasons otherwise) and `/metrics` (Prometheus
//! text format). Plain HTTP: bind it to loopback or a management network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, anyhow};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tracing::Instrument;

use super::state::{Shared, lock};
use crate::config::HttpConfig;

struct AppState {
    shared: Arc<Shared>,
    registry: Registry,
}

/// Binds `listen` (an error when taken) and serves until `stop`.
pub(crate) async fn serve(
    config: &HttpConfig,
    shared: Arc<Shared>,
    registry: Registry,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} ([http] listen)", config.listen))?;
    let addr = listener.local_addr().context("listener address")?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(AppState { shared, registry }));
    let span = tracing::info_span!("http", component_kind = "api", component_id = "http");
    let task = tokio::spawn(
        async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "HTTP endpoint failed.");
            }
        }
        .instrument(span),
    );
    tracing::info!(listen = %addr, "Serving /healthz, /readyz and /metrics.");
    Ok((addr, task))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness as JSON; 200 when ready, 503 otherwise.
pub(crate) fn readiness(shared: &Shared) -> (bool, Value) {
    let store_ok = shared.store_ok.load(Ordering::Relaxed);
    let mut ready = store_ok;
    let mut collectors = Map::new();
    // Parts of a poll that fail while the rest goes on (risk detections refused for a missing
    // permission): named here, and not a reason to be unready (the sign-ins flow).
    let mut warnings = Map::new();
    for e in shared.collectors() {
        let last = lock(&e.last).clone();
        if let Some(w) = &last.warning {
            warnings.insert(e.name.clone(), json!(w));
        }
        let v = match last.ok {
            Some(true) => json!("ok"),
            Some(false) => {
                ready = false;
                json!(format!("failing: {}", last.error.unwrap_or_default()))
            }
            None => {
                ready = false;
                json!("waiting for the first poll")
            }
        };
        collectors.insert(e.name.clone(), v);
    }
    let configured = shared.splunk_configured.load(Ordering::Relaxed);
    let splunk = if configured {
        let ok = shared.splunk_ok.load(Ordering::Relaxed);
        ready &= ok;
        json!(if ok { "ok" } else { "unreachable or refusing" })
    } else {
        json!("not configured")
    };
    let forwarder = forwarder_state(shared);
    if configured && forwarder.is_some() {
        ready = false;
    }
    (
        ready,
        json!({
            "ready": ready,
            "store": if store_ok { "ok" } else { "unavailable" },
            "collectors": collectors,
            "collector_warnings": warnings,
            "splunk": splunk,
            "forwarder": match (configured, forwarder) {
                (false, _) => json!("not configured"),
                (true, None) => json!("running"),
                (true, Some(why)) => json!(why),
            },
            "collection_paused": shared.paused(),
        }),
    )
}

/// Why the Splunk HEC forwarder is not forwarding, if it is not: stopped (being restarted) or
/// retrying a failing store.
pub(crate) fn forwarder_state(shared: &Shared) -> Option<String> {
    if let Some(why) = lock(&shared.forwarder_stopped).clone() {
        return Some(format!("stopped ({why}); restarting"));
    }
    let failing = shared.hec()?.store_failing()?;
    Some(format!("retrying: the store failed ({failing})"))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let (ready, body) = readiness(&state.shared);
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match super::metrics::render(&state.registry) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            anyhow!("cannot encode metrics").to_string(),
        )
            .into_response(),
    }
}
