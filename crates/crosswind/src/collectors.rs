//! The configured collectors, built and polled: one `[[azure]]` or `[[aws]]` table becomes a
//! [`Spec`], a [`Source`] polls it into the store. The daemon's scheduler drives sources on
//! their cron schedules; `crosswind collect` polls them directly. Neither reaches into the other.

use std::str::FromStr;

use anyhow::{Context, anyhow};
use chrono::Utc;
use crosswind_aws::{AwsCollector, AwsConfig, CredentialSource};
use crosswind_azure::{AzureCollector, AzureConfig};
use crosswind_store::Store;

/// One `[[azure]]` or `[[aws]]` table.
#[derive(Clone, Debug)]
pub enum Spec {
    Azure(AzureConfig),
    Aws(AwsConfig),
}

impl Spec {
    pub fn all(config: &crate::config::Config) -> Vec<Spec> {
        let azure = config.azure.iter().cloned().map(Spec::Azure);
        let aws = config.aws.iter().cloned().map(Spec::Aws);
        azure.chain(aws).collect()
    }

    pub fn name(&self) -> &str {
        match self {
            Spec::Azure(c) => &c.name,
            Spec::Aws(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Azure(_) => "azure_signins",
            Spec::Aws(_) => "aws_cloudtrail",
        }
    }

    pub fn schedule(&self) -> &str {
        match self {
            Spec::Azure(c) => &c.schedule,
            Spec::Aws(c) => &c.schedule,
        }
    }

    /// Changes when any setting changes (reload restarts the collector then).
    pub fn fingerprint(&self) -> String {
        format!("{self:?}")
    }
}

/// Parses a `schedule` key: cron with seconds first (`0 */2 * * * *`).
pub fn parse_schedule(expr: &str) -> anyhow::Result<cron::Schedule> {
    cron::Schedule::from_str(expr).map_err(|e| {
        anyhow!("invalid schedule {expr:?}: {e} (cron with a seconds field first, e.g. \"0 */2 * * * *\")")
    })
}

/// One built collector: the daemon's scheduler and `crosswind collect` poll through this.
pub enum Source {
    Azure(Box<AzureCollector>),
    Aws(Box<AwsCollector>),
}

/// What one poll brought.
#[derive(Clone, Debug, Default)]
pub struct Polled {
    pub stored: u64,
    pub pages: u64,
    /// Risk detections stored (Entra with `risk_detections`; 0 otherwise).
    pub risk_stored: u64,
    /// A part of the poll that failed while the rest went on (risk detections refused): shown
    /// by `collect`, `/readyz` and `status`, not a failed poll.
    pub warning: Option<String>,
}

impl Source {
    /// Builds the collector (reads its secret, sets up TLS and credentials).
    pub async fn build(
        spec: &Spec,
        aws_credentials: Option<&aws_sdk_cloudtrail::config::Credentials>,
    ) -> anyhow::Result<Source> {
        Ok(match spec {
            Spec::Azure(cfg) => {
                let c = AzureCollector::new(cfg.clone())
                    .with_context(|| format!("collector {}", cfg.name))?;
                Source::Azure(Box::new(c))
            }
            Spec::Aws(cfg) => {
                let creds = match aws_credentials {
                    Some(c) => CredentialSource::Static(c.clone()),
                    None => CredentialSource::DefaultChain,
                };
                let c = AwsCollector::with_credentials(cfg.clone(), creds)
                    .await
                    .with_context(|| format!("collector {}", cfg.name))?;
                Source::Aws(Box::new(c))
            }
        })
    }

    /// One full poll cycle; `since` backfills from that time instead of the checkpoint.
    pub async fn poll_from(
        &mut self,
        store: &mut Store,
        since: Option<chrono::DateTime<Utc>>,
    ) -> Result<Polled, String> {
        let now = Utc::now();
        match self {
            Source::Azure(c) => polled(match since {
                Some(t) => c.poll_since(store, t, now).await,
                None => c.poll_once(store, now).await,
            }),
            Source::Aws(c) => polled(match since {
                Some(t) => c.poll_since(store, t, now).await,
                None => c.poll_once(store, now).await,
            }),
        }
    }

    /// One poll cycle from the checkpoint.
    pub async fn poll(&mut self, store: &mut Store) -> Result<Polled, String> {
        self.poll_from(store, None).await
    }
}

fn polled<S: Into<Polled>, E: std::fmt::Display>(result: Result<S, E>) -> Result<Polled, String> {
    result.map(Into::into).map_err(|e| e.to_string())
}

impl From<crosswind_azure::PollStats> for Polled {
    fn from(s: crosswind_azure::PollStats) -> Polled {
        let risk = s.risk.unwrap_or_default();
        Polled {
            stored: s.stored + risk.stored,
            pages: s.pages + risk.pages,
            risk_stored: risk.stored,
            warning: risk.error.map(|e| format!("risk detections: {e}")),
        }
    }
}

impl From<crosswind_aws::PollStats> for Polled {
    fn from(s: crosswind_aws::PollStats) -> Polled {
        Polled {
            stored: s.stored,
            pages: s.pages,
            ..Polled::default()
        }
    }
}
