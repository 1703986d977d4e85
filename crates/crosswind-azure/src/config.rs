//! One `[[azure]]` table: raw serde shape, defaults and per-key validation.

use std::path::{Path, PathBuf};

use crosswind_model::{SensitiveString, shown_env_name, shown_path};
use serde::Deserialize;

use crate::cert::ClientCertificate;

/// Sign-in event types Graph beta can filter on (`signInEventTypes/any(t: t eq '…')`).
pub const SIGN_IN_EVENT_TYPES: [&str; 4] = [
    "interactiveUser",
    "nonInteractiveUser",
    "servicePrincipal",
    "managedIdentity",
];

/// The largest `$top` Graph accepts on `identityProtection/riskDetections` (its default is 20).
pub const RISK_DETECTIONS_MAX_TOP: u32 = 500;

/// The environment variable the workload identity webhook sets to the token file's path.
pub const FEDERATED_TOKEN_FILE_ENV: &str = "AZURE_FEDERATED_TOKEN_FILE";

/// How the collector gets its Graph token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// Client credentials with a secret from `client_secret_file` or `client_secret_env`.
    #[default]
    ClientSecret,
    /// Client credentials with a certificate (`certificate_file`: PKCS#12 or PEM certificate
    /// and private key).
    ClientCertificate,
    /// Azure managed identity (IMDS / App Service); `client_id` selects a user-assigned one.
    ManagedIdentity,
    /// Kubernetes workload identity: the projected service-account token in
    /// `federated_token_file` (default: the `AZURE_FEDERATED_TOKEN_FILE` environment variable
    /// the workload identity webhook sets) exchanged for a Graph token.
    WorkloadIdentity,
}

/// One Entra ID tenant to collect sign-ins from (`[[azure]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// Collector name: `source` in Splunk is `crosswind:<name>`, checkpoints are keyed by it.
    pub name: String,
    /// Directory (tenant) id, a GUID.
    pub tenant_id: String,
    /// Application (client) id, a GUID. Optional for managed identity (system-assigned).
    #[serde(default)]
    pub client_id: Option<String>,
    /// `client_secret` (default when a secret key is set), `client_certificate`,
    /// `managed_identity` or `workload_identity`.
    #[serde(default)]
    pub auth: Option<AuthKind>,
    /// File holding the client secret (systemd credentials, a 0600 file).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Certificate and private key for certificate auth: a PKCS#12 file (`.pfx`/`.p12`) or a
    /// PEM file holding the certificate and its (PKCS#8 or PKCS#1 RSA) private key. Setting it
    /// selects `auth = "client_certificate"` unless `auth` says otherwise.
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// File holding the password of an encrypted PKCS#12 file or PEM key.
    #[serde(default)]
    pub certificate_password_file: Option<PathBuf>,
    /// Environment variable holding the password of an encrypted PKCS#12 file or PEM key.
    #[serde(default)]
    pub certificate_password_env: Option<String>,
    /// Workload identity: the file holding the federated (Kubernetes service-account) token.
    /// Default: the path in the `AZURE_FEDERATED_TOKEN_FILE` environment variable. It is read
    /// again for a new Graph token when the last read is over 10 minutes old, and after Graph
    /// rejects a token, so the kubelet may rotate it.
    #[serde(default)]
    pub federated_token_file: Option<PathBuf>,
    /// Microsoft Graph base URL (sovereign clouds, tests).
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// Entra authority host (sovereign clouds, tests). Must be `https://`.
    #[serde(default = "default_authority_host")]
    pub authority_host: String,
    /// `beta` (all four sign-in event types) or `v1.0` (interactive sign-ins only).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Extra PEM CA certificates to trust (TLS-inspecting proxy, tests). Empty means none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Event types to collect on beta; default all four.
    #[serde(default = "default_sign_in_event_types")]
    pub sign_in_event_types: Vec<String>,
    /// Also collect `identityProtection/riskDetections` (permission IdentityRiskEvent.Read.All),
    /// with its own checkpoint on `lastUpdatedDateTime`. A 403 there is reported and sign-ins
    /// go on.
    #[serde(default = "default_risk_detections")]
    pub risk_detections: bool,
    /// Cron schedule with seconds (the daemon's driver reads it).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Each poll re-reads this far behind the checkpoint; sign-ins that show up late with an
    /// older `createdDateTime` are caught and deduplicated by `id`.
    #[serde(default = "default_lookback_secs")]
    pub lookback_secs: u64,
    /// How far back the first poll reads.
    #[serde(default = "default_initial_backfill_secs")]
    pub initial_backfill_secs: u64,
    /// Page size (`$top`), 1..=1000.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Client-side pacing: at most this many Graph requests per 10 s (Graph's reporting APIs
    /// allow about 5 per 10 s per app per tenant). 0 disables pacing.
    #[serde(default = "default_max_requests_per_10s")]
    pub max_requests_per_10s: u32,
    /// Attempts per request before the poll fails (throttling, 5xx, network errors).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Per-request timeout.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
}

pub fn default_graph_url() -> String {
    "https://graph.microsoft.com".to_owned()
}
pub fn default_authority_host() -> String {
    "https://login.microsoftonline.com".to_owned()
}
pub fn default_api_version() -> String {
    "beta".to_owned()
}
pub fn default_sign_in_event_types() -> Vec<String> {
    SIGN_IN_EVENT_TYPES
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}
pub fn default_risk_detections() -> bool {
    true
}
pub fn default_schedule() -> String {
    "0 */2 * * * *".to_owned()
}
pub fn default_lookback_secs() -> u64 {
    1800
}
pub fn default_initial_backfill_secs() -> u64 {
    86_400
}
pub fn default_page_size() -> u32 {
    1000
}
pub fn default_max_requests_per_10s() -> u32 {
    5
}
pub fn default_max_retries() -> u32 {
    8
}
pub fn default_request_timeout_secs() -> u64 {
    60
}

/// The certificate password from `certificate_password_file` or `certificate_password_env`,
/// `None` when neither is set; on error the key at fault and why.
pub fn read_certificate_password(
    cfg: &AzureConfig,
    env: &dyn Env,
) -> Result<Option<SensitiveString>, (&'static str, String)> {
    match (
        &cfg.certificate_password_file,
        &cfg.certificate_password_env,
    ) {
        (Some(_), Some(_)) => Err((
            "certificate_password_file",
            "set only one of certificate_password_file and certificate_password_env".to_owned(),
        )),
        (Some(f), None) => match std::fs::read_to_string(f) {
            // Only the line end is trimmed: a password may contain spaces.
            Ok(s) => Ok(Some(SensitiveString::new(s.trim_end_matches(['\r', '\n'])))),
            Err(e) => Err((
                "certificate_password_file",
                format!("cannot read {}: {e}", shown_path(f)),
            )),
        },
        (None, Some(var)) => match env.var(var) {
            Some(v) => Ok(Some(SensitiveString::new(v))),
            None => Err((
                "certificate_password_env",
                format!("environment variable {} is not set", shown_env_name(var)),
            )),
        },
        (None, None) => Ok(None),
    }
}

/// One problem with one key, for `crosswind validate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key at fault, e.g. `tenant_id`.
    pub key: &'static str,
    pub message: String,
}

/// Reads environment variables (a trait so tests never call `set_var`).
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

/// Whether `s` is a GUID in the 8-4-4-4-12 hex form.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_url(key: &'static str, value: &str, problems: &mut Vec<ConfigProblem>) {
    match reqwest::Url::parse(value) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
        Ok(u) => problems.push(ConfigProblem {
            key,
            message: format!(
                "{value:?} must be an https:// URL with a host (found scheme {})",
                u.scheme()
            ),
        }),
        Err(e) => problems.push(ConfigProblem {
            key,
            message: format!("{value:?} is not a URL: {e}"),
        }),
    }
}

fn check_readable(key: &'static str, path: &Path, problems: &mut Vec<ConfigProblem>) {
    if let Err(e) = std::fs::metadata(path).and_then(|m| {
        if m.is_file() {
            Ok(())
        } else {
            Err(std::io::Error::other("not a regular file"))
        }
    }) {
        problems.push(ConfigProblem {
            key,
            message: format!("cannot read {}: {e}", shown_path(path)),
        });
    }
}

// === impl AzureConfig ===

impl AzureConfig {
    /// The auth method in effect: explicit `auth`, else a certificate when `certificate_file`
    /// is set, else a client secret.
    pub fn auth_kind(&self) -> AuthKind {
        self.auth.unwrap_or(if self.certificate_file.is_some() {
            AuthKind::ClientCertificate
        } else {
            AuthKind::ClientSecret
        })
    }

    /// The `ca_file` when set and not empty.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// Checks every key; empty when the table is usable. Reads the files it names.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        self.validate_with_env(&ProcessEnv)
    }

    pub fn validate_with_env(&self, env: &dyn Env) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let name_ok = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !name_ok {
            p.push(ConfigProblem {
                key: "name",
                message: format!(
                    "{:?} must be non-empty letters, digits, '-', '_' or '.'",
                    self.name
                ),
            });
        }
        if !is_guid(&self.tenant_id) {
            p.push(ConfigProblem {
                key: "tenant_id",
                message: format!(
                    "{:?} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                    self.tenant_id
                ),
            });
        }
        match (&self.client_id, self.auth_kind()) {
            (Some(id), _) if !is_guid(id) => p.push(ConfigProblem {
                key: "client_id",
                message: format!("{id:?} is not a GUID"),
            }),
            (None, AuthKind::ClientSecret | AuthKind::ClientCertificate) => p.push(ConfigProblem {
                key: "client_id",
                message: "required for client secret and certificate auth".to_owned(),
            }),
            _ => {}
        }
        check_url("graph_url", &self.graph_url, &mut p);
        check_url("authority_host", &self.authority_host, &mut p);
        if self.api_version != "beta" && self.api_version != "v1.0" {
            p.push(ConfigProblem {
                key: "api_version",
                message: format!("{:?} must be \"beta\" or \"v1.0\"", self.api_version),
            });
        }
        match self.auth_kind() {
            AuthKind::ClientSecret => match (&self.client_secret_file, &self.client_secret_env) {
                (Some(_), Some(_)) => p.push(ConfigProblem {
                    key: "client_secret_file",
                    message: "set only one of client_secret_file and client_secret_env".to_owned(),
                }),
                (Some(f), None) => {
                    check_readable("client_secret_file", f, &mut p);
                    if let Ok(s) = std::fs::read_to_string(f)
                        && s.trim().is_empty()
                    {
                        p.push(ConfigProblem {
                            key: "client_secret_file",
                            message: format!("{} is empty", f.display()),
                        });
                    }
                }
                (None, Some(var)) => {
                    if env.var(var).is_none_or(|v| v.trim().is_empty()) {
                        p.push(ConfigProblem {
                            key: "client_secret_env",
                            message: format!(
                                "environment variable {} is not set or empty",
                                shown_env_name(var)
                            ),
                        });
                    }
                }
                (None, None) => p.push(ConfigProblem {
                    key: "client_secret_file",
                    message: "client secret auth needs client_secret_file or client_secret_env (or set auth)".to_owned(),
                }),
            },
            AuthKind::ClientCertificate => self.validate_certificate(env, &mut p),
            AuthKind::ManagedIdentity => {}
            AuthKind::WorkloadIdentity => self.validate_federated_token_file(env, &mut p),
        }
        if self.auth_kind() != AuthKind::WorkloadIdentity && self.federated_token_file.is_some() {
            p.push(ConfigProblem {
                key: "federated_token_file",
                message: "only used with auth = \"workload_identity\"".to_owned(),
            });
        }
        if self.auth_kind() != AuthKind::ClientCertificate {
            for (key, set) in [
                (
                    "certificate_password_file",
                    self.certificate_password_file.is_some(),
                ),
                (
                    "certificate_password_env",
                    self.certificate_password_env.is_some(),
                ),
            ] {
                if set {
                    p.push(ConfigProblem {
                        key,
                        message: "only used with certificate auth (certificate_file)".to_owned(),
                    });
                }
            }
        }
        if let Some(ca) = self.ca_file() {
            check_readable("ca_file", ca, &mut p);
            if let Ok(pem) = std::fs::read(ca)
                && let Err(e) = reqwest::Certificate::from_pem_bundle(&pem)
            {
                p.push(ConfigProblem {
                    key: "ca_file",
                    message: format!("{} is not a PEM certificate bundle: {e}", ca.display()),
                });
            }
        }
        if self.sign_in_event_types.is_empty() {
            p.push(ConfigProblem {
                key: "sign_in_event_types",
                message: "must name at least one event type".to_owned(),
            });
        }
        for t in &self.sign_in_event_types {
            if !SIGN_IN_EVENT_TYPES.contains(&t.as_str()) {
                p.push(ConfigProblem {
                    key: "sign_in_event_types",
                    message: format!("{t:?} is not one of {}", SIGN_IN_EVENT_TYPES.join(", ")),
                });
            }
        }
        if self.api_version == "v1.0" && self.sign_in_event_types != default_sign_in_event_types() {
            p.push(ConfigProblem {
                key: "sign_in_event_types",
                message: "only Graph beta filters on sign-in event types (v1.0 returns interactive sign-ins only)".to_owned(),
            });
        }
        if !(1..=1000).contains(&self.page_size) {
            p.push(ConfigProblem {
                key: "page_size",
                message: format!("{} must be between 1 and 1000", self.page_size),
            });
        }
        if self.initial_backfill_secs == 0 {
            p.push(ConfigProblem {
                key: "initial_backfill_secs",
                message: "must be greater than 0".to_owned(),
            });
        }
        if self.max_retries == 0 {
            p.push(ConfigProblem {
                key: "max_retries",
                message: "must be at least 1".to_owned(),
            });
        }
        if self.request_timeout_secs == 0 {
            p.push(ConfigProblem {
                key: "request_timeout_secs",
                message: "must be greater than 0".to_owned(),
            });
        }
        p
    }

    /// Workload identity: `federated_token_file`, else the file `AZURE_FEDERATED_TOKEN_FILE`
    /// names, must be a readable, non-empty regular file.
    fn validate_federated_token_file(&self, env: &dyn Env, p: &mut Vec<ConfigProblem>) {
        let path = match (
            &self.federated_token_file,
            env.var(FEDERATED_TOKEN_FILE_ENV),
        ) {
            (Some(f), _) => f.clone(),
            (None, Some(v)) if !v.is_empty() => PathBuf::from(v),
            (None, _) => {
                p.push(ConfigProblem {
                    key: "auth",
                    message: format!(
                        "workload identity needs federated_token_file or {FEDERATED_TOKEN_FILE_ENV} in the environment"
                    ),
                });
                return;
            }
        };
        let before = p.len();
        check_readable("federated_token_file", &path, p);
        if p.len() == before {
            match std::fs::read(&path) {
                Ok(b) if b.iter().all(u8::is_ascii_whitespace) => p.push(ConfigProblem {
                    key: "federated_token_file",
                    message: format!("{} is empty", path.display()),
                }),
                Ok(_) => {}
                Err(e) => p.push(ConfigProblem {
                    key: "federated_token_file",
                    message: format!("cannot read {}: {e}", shown_path(&path)),
                }),
            }
        }
    }

    /// `certificate_file` (and its password keys): the file must be PKCS#12 or PEM with a
    /// certificate and its matching RSA private key, and the certificate must be valid now.
    fn validate_certificate(&self, env: &dyn Env, p: &mut Vec<ConfigProblem>) {
        let password = match read_certificate_password(self, env) {
            Ok(pw) => pw,
            Err((key, message)) => {
                p.push(ConfigProblem { key, message });
                None
            }
        };
        let Some(path) = &self.certificate_file else {
            p.push(ConfigProblem {
                key: "certificate_file",
                message: "certificate auth needs certificate_file".to_owned(),
            });
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match ClientCertificate::load(path, password.as_ref())
            .and_then(|c| c.check_validity(path, now))
        {
            Ok(()) => {}
            Err(e) => p.push(ConfigProblem {
                key: "certificate_file",
                message: e.to_string(),
            }),
        }
    }

    /// The event types to query: one `signInEventTypes` filter each on beta, a single
    /// unfiltered query on v1.0.
    pub fn event_type_filters(&self) -> Vec<Option<String>> {
        if self.api_version == "v1.0" {
            vec![None]
        } else {
            self.sign_in_event_types.iter().cloned().map(Some).collect()
        }
    }

    /// The checkpoint row name.
    pub fn checkpoint_name(&self) -> String {
        format!("azure:{}", self.name)
    }

    /// `$top` for risk detections: Graph serves at most 500 per page there (1000 for sign-ins).
    pub fn risk_page_size(&self) -> u32 {
        self.page_size.clamp(1, RISK_DETECTIONS_MAX_TOP)
    }
}
