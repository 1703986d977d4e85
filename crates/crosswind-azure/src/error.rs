//! Collector errors: bounded variants, lowercase messages, [`AzureError::is_retriable`].

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error("invalid config: {0}")]
    Config(String),
    #[error("cannot read {what}: {message}")]
    Secret { what: String, message: String },
    #[error("client certificate: {0}")]
    Certificate(#[from] crate::cert::CertError),
    #[error("cannot build http client: {0}")]
    HttpClient(String),
    #[error("token request failed: {message}")]
    Token { retriable: bool, message: String },
    #[error("graph {method} {path} returned {status} {code}: {message}{hint}")]
    Graph {
        method: &'static str,
        path: String,
        status: u16,
        code: String,
        message: String,
        /// What to do about it (missing permission, licence), with a leading "; ".
        hint: String,
    },
    #[error("graph {method} {path} still failing after {attempts} attempts: {last}")]
    RetriesExhausted {
        method: &'static str,
        path: String,
        attempts: u32,
        last: String,
    },
    #[error("graph returned a page that is not a collection: {0}")]
    Decode(String),
    #[error("refusing to follow @odata.nextLink to another host: {0}")]
    ForeignNextLink(String),
    #[error("store: {0}")]
    Store(#[from] crosswind_store::StoreError),
    /// Some event-type queries failed; the others were read and checkpointed.
    #[error("{} of {total} sign-in event type queries failed: {}", failures.len(), type_list(failures))]
    EventTypes {
        total: usize,
        failures: Vec<(String, AzureError)>,
    },
}

fn type_list(failures: &[(String, AzureError)]) -> String {
    failures
        .iter()
        .map(|(t, e)| format!("{t}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AzureError {
    /// Whether the next scheduled poll may succeed without anyone changing anything.
    pub fn is_retriable(&self) -> bool {
        match self {
            AzureError::Token { retriable, .. } => *retriable,
            AzureError::RetriesExhausted { .. } | AzureError::Store(_) => true,
            AzureError::Graph { status, .. } => *status >= 500 || *status == 429,
            AzureError::EventTypes { failures, .. } => {
                failures.iter().all(|(_, e)| e.is_retriable())
            }
            _ => false,
        }
    }

    /// A bounded label for metrics (`error_type`).
    pub fn kind(&self) -> &'static str {
        match self {
            AzureError::Config(_) => "config",
            AzureError::Secret { .. } => "secret",
            AzureError::Certificate(_) => "certificate",
            AzureError::HttpClient(_) => "http_client",
            AzureError::Token { .. } => "token",
            AzureError::Graph { .. } => "graph_status",
            AzureError::RetriesExhausted { .. } => "retries_exhausted",
            AzureError::Decode(_) => "decode",
            AzureError::ForeignNextLink(_) => "next_link",
            AzureError::Store(_) => "store",
            AzureError::EventTypes { .. } => "event_types",
        }
    }
}
