//! Graph access tokens from azure_identity 1.0: client secret, client certificate, managed
//! identity or workload identity, cached here and refreshed before expiry; [`TokenSource::invalidate`] forces a fresh
//! token after Graph answered 401.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_identity::{
    ClientCertificateCredential, ClientCertificateCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use crosswind_model::SensitiveString;

use crate::cert::ClientCertificate;
use crate::config::{AuthKind, AzureConfig, Env, read_certificate_password};
use crate::error::AzureError;

/// Refresh this long before the token expires (azure_identity uses the same margin), or at half
/// the token's lifetime when that is shorter.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A client certificate expiring sooner than this is logged as a warning when the collector
/// starts.
const CERT_EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

type Factory = Box<dyn Fn() -> Result<Arc<dyn TokenCredential>, AzureError> + Send + Sync>;

/// A cached bearer token and when to refresh it.
struct Cached {
    token: SensitiveString,
    refresh_at: Instant,
}

/// Where the collector's Graph tokens come from.
pub struct TokenSource {
    factory: Factory,
    credential: Arc<dyn TokenCredential>,
    scope: String,
    cached: Option<Cached>,
    /// Token endpoint path, for logs (never the token).
    endpoint_path: String,
    pub(crate) fetches: u64,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("scope", &self.scope)
            .field("cached", &self.cached.is_some())
            .finish_non_exhaustive()
    }
}

/// Reads the client secret named by the config.
pub fn read_client_secret(cfg: &AzureConfig, env: &dyn Env) -> Result<SensitiveString, AzureError> {
    if let Some(path) = &cfg.client_secret_file {
        let s = std::fs::read_to_string(path).map_err(|source| AzureError::Secret {
            what: format!("client_secret_file {}", crosswind_model::shown_path(path)),
            message: source.to_string(),
        })?;
        let s = s.trim();
        if s.is_empty() {
            return Err(AzureError::Secret {
                what: format!("client_secret_file {}", path.display()),
                message: "file is empty".to_owned(),
            });
        }
        return Ok(SensitiveString::new(s));
    }
    if let Some(var) = &cfg.client_secret_env {
        return match env.var(var) {
            Some(v) if !v.trim().is_empty() => Ok(SensitiveString::new(v.trim())),
            _ => Err(AzureError::Secret {
                what: format!("client_secret_env {}", crosswind_model::shown_env_name(var)),
                message: "not set or empty".to_owned(),
            }),
        };
    }
    Err(AzureError::Secret {
        what: "client secret".to_owned(),
        message: "set client_secret_file or client_secret_env".to_owned(),
    })
}

/// Loads and checks `certificate_file` (with its password keys); logs a warning when the
/// certificate expires within 30 days.
pub fn load_client_certificate(
    cfg: &AzureConfig,
    env: &dyn Env,
) -> Result<ClientCertificate, AzureError> {
    let path = cfg
        .certificate_file
        .as_deref()
        .ok_or_else(|| AzureError::Config("certificate auth needs certificate_file".to_owned()))?;
    let password = read_certificate_password(cfg, env)
        .map_err(|(key, message)| AzureError::Config(format!("{key}: {message}")))?;
    let cert = ClientCertificate::load(path, password.as_ref())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    cert.check_validity(path, now)?;
    let left = cert.not_after_unix() - now;
    if left < CERT_EXPIRY_WARNING.as_secs() as i64 {
        tracing::warn!(
            thumbprint = %cert.thumbprint(),
            not_after = %cert.not_after(),
            days_left = left / 86_400,
            "The Entra client certificate expires soon; register and install its successor."
        );
    }
    tracing::debug!(
        thumbprint = %cert.thumbprint(),
        subject = %cert.subject(),
        format = ?cert.format(),
        "Loaded the Entra client certificate."
    );
    Ok(cert)
}

fn client_options(cfg: &AzureConfig, http: &reqwest::Client) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = cfg.authority_host.trim_end_matches('/').to_owned();
    ClientOptions {
        // Our own retry loop around get_token (the default policy takes minutes to give up).
        retry: RetryOptions::none(),
        transport: Some(Transport::new(Arc::new(http.clone()))),
        cloud: Some(Arc::new(CloudConfiguration::from(custom))),
        ..ClientOptions::default()
    }
}

fn credential_error(e: azure_core::Error) -> AzureError {
    AzureError::Token {
        retriable: is_retriable_credential_error(&e),
        // With the causes: "failed to execute `reqwest` request" alone does not say that the
        // proxy refused the tunnel or the certificate did not verify.
        message: crate::proxy::describe(&e, &crate::config::ProcessEnv),
    }
}

/// Throttling, server errors and I/O are worth retrying; refusals are not. azure_identity wraps
/// the token endpoint's answer in a `Credential` error, so the cause chain is searched.
fn is_retriable_credential_error(e: &azure_core::Error) -> bool {
    use azure_core::error::ErrorKind;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(az) = err.downcast_ref::<azure_core::Error>() {
            match az.kind() {
                ErrorKind::HttpResponse { status, .. } => {
                    let s = u16::from(*status);
                    return s == 429 || s >= 500;
                }
                ErrorKind::Io => return true,
                _ => {}
            }
        } else if err.is::<std::io::Error>() {
            return true;
        }
        cause = err.source();
    }
    false
}

// === impl TokenSource ===

impl TokenSource {
    /// Builds the credential the config asks for; `http` is the transport (CA file, proxy).
    pub fn from_config(
        cfg: &AzureConfig,
        env: &dyn Env,
        http: &reqwest::Client,
    ) -> Result<TokenSource, AzureError> {
        let opts = {
            let cfg = cfg.clone();
            let http = http.clone();
            move || client_options(&cfg, &http)
        };
        let tenant = cfg.tenant_id.clone();
        let client_id = cfg.client_id.clone();
        let federated_token_file = cfg.federated_token_file.clone();
        let factory: Factory = match cfg.auth_kind() {
            AuthKind::ClientSecret => {
                let secret = read_client_secret(cfg, env)?;
                let client_id = client_id
                    .ok_or_else(|| AzureError::Config("client_id is required".to_owned()))?;
                Box::new(move || {
                    let options = ClientSecretCredentialOptions {
                        client_options: opts(),
                    };
                    let c = ClientSecretCredential::new(
                        &tenant,
                        client_id.clone(),
                        Secret::new(secret.expose().to_owned()),
                        Some(options),
                    )
                    .map_err(credential_error)?;
                    Ok(c as Arc<dyn TokenCredential>)
                })
            }
            AuthKind::ManagedIdentity => Box::new(move || {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: opts(),
                };
                let c = ManagedIdentityCredential::new(Some(options)).map_err(credential_error)?;
                Ok(c as Arc<dyn TokenCredential>)
            }),
            AuthKind::WorkloadIdentity => Box::new(move || {
                let mut options = WorkloadIdentityCredentialOptions {
                    client_id: client_id.clone(),
                    tenant_id: Some(tenant.clone()),
                    // None: azure_identity reads AZURE_FEDERATED_TOKEN_FILE itself. The file
                    // is read when the credential is built, i.e. again on every invalidate().
                    token_file_path: federated_token_file.clone(),
                    ..Default::default()
                };
                options.credential_options.client_options = opts();
                let c = WorkloadIdentityCredential::new(Some(options)).map_err(credential_error)?;
                Ok(c as Arc<dyn TokenCredential>)
            }),
            AuthKind::ClientCertificate => {
                let cert = load_client_certificate(cfg, env)?;
                let client_id = client_id
                    .ok_or_else(|| AzureError::Config("client_id is required".to_owned()))?;
                Box::new(move || {
                    let options = ClientCertificateCredentialOptions {
                        client_options: opts(),
                        password: cert.password().map(|p| Secret::new(p.expose().to_owned())),
                    };
                    let c = ClientCertificateCredential::new(
                        tenant.clone(),
                        client_id.clone(),
                        cert.pkcs12().clone(),
                        Some(options),
                    )
                    .map_err(credential_error)?;
                    Ok(c as Arc<dyn TokenCredential>)
                })
            }
        };
        let scope = graph_scope(&cfg.graph_url);
        TokenSource::with_factory(
            factory,
            scope,
            format!("/{}/oauth2/v2.0/token", cfg.tenant_id),
        )
    }

    /// A source over any credential factory (tests inject fakes here).
    pub fn with_factory(
        factory: Factory,
        scope: String,
        endpoint_path: String,
    ) -> Result<TokenSource, AzureError> {
        let credential = factory()?;
        Ok(TokenSource {
            factory,
            credential,
            scope,
            cached: None,
            endpoint_path,
            fetches: 0,
        })
    }

    /// The cached token, or a new one when it is due for refresh.
    pub async fn token(&mut self) -> Result<SensitiveString, AzureError> {
        if let Some(c) = &self.cached
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let started = Instant::now();
        let res = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await;
        self.fetches += 1;
        let elapsed = started.elapsed();
        match res {
            Ok(tok) => {
                let now_utc = azure_core::time::OffsetDateTime::now_utc();
                let lifetime = (tok.expires_on - now_utc).whole_milliseconds().max(0) as u64;
                let lifetime = Duration::from_millis(lifetime);
                let margin = REFRESH_MARGIN.min(lifetime / 2);
                tracing::debug!(
                    method = "POST",
                    path = %self.endpoint_path,
                    status = 200u16,
                    duration_ms = elapsed.as_millis() as u64,
                    expires_in_secs = lifetime.as_secs(),
                    "Fetched a Graph token."
                );
                let token = SensitiveString::new(tok.token.secret().to_owned());
                self.cached = Some(Cached {
                    token: token.clone(),
                    refresh_at: started + lifetime.saturating_sub(margin),
                });
                Ok(token)
            }
            Err(e) => {
                let err = credential_error(e);
                tracing::warn!(
                    method = "POST",
                    path = %self.endpoint_path,
                    duration_ms = elapsed.as_millis() as u64,
                    error = %err,
                    "Token request failed."
                );
                Err(err)
            }
        }
    }

    /// Drops the cached token and the credential's own cache: the next call fetches a new token.
    pub fn invalidate(&mut self) -> Result<(), AzureError> {
        self.cached = None;
        self.credential = (self.factory)()?;
        Ok(())
    }

    /// How many tokens were fetched so far.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }
}

/// The `.default` scope for a Graph base URL (`https://graph.microsoft.com/.default`).
pub fn graph_scope(graph_url: &str) -> String {
    match reqwest::Url::parse(graph_url) {
        Ok(u) => format!("{}/.default", u.origin().ascii_serialization()),
        Err(_) => format!("{}/.default", graph_url.trim_end_matches('/')),
    }
}
