//! `crosswind collect`: the configured collectors outside the daemon — one full poll cycle each
//! (`--once`, or `--since T` to backfill), then the correlator over what they stored. Without
//! `--once` it keeps polling on each collector's schedule until Ctrl-C.

use std::str::FromStr;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use crosswind_aws::{AwsCollector, AwsConfig};
use crosswind_azure::{AzureCollector, AzureConfig};
use crosswind_store::Store;

use crate::config::Config;
use crate::correlation::Correlation;

/// One configured collector, built.
enum Collector {
    Azure(Box<AzureCollector>),
    Aws(Box<AwsCollector>),
}

struct Named {
    name: String,
    schedule: cron::Schedule,
    collector: Collector,
}

/// What one poll brought.
struct Polled {
    stored: u64,
    pages: u64,
}

impl Collector {
    async fn poll(
        &mut self,
        store: &mut Store,
        since: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Polled> {
        let now = Utc::now();
        Ok(match self {
            Collector::Azure(c) => {
                let s = match since {
                    Some(t) => c.poll_since(store, t, now).await?,
                    None => c.poll_once(store, now).await?,
                };
                Polled {
                    stored: s.stored,
                    pages: s.pages,
                }
            }
            Collector::Aws(c) => {
                let s = match since {
                    Some(t) => c.poll_since(store, t, now).await?,
                    None => c.poll_once(store, now).await?,
                };
                Polled {
                    stored: s.stored,
                    pages: s.pages,
                }
            }
        })
    }
}

async fn build(config: &Config, only: Option<&str>) -> anyhow::Result<Vec<Named>> {
    let schedule = |expr: &str, name: &str| {
        cron::Schedule::from_str(expr)
            .map_err(|e| anyhow!("collector {name}: invalid schedule {expr:?}: {e}"))
    };
    let mut out = Vec::new();
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    for cfg in config.azure.iter().filter(|c| wanted(&c.name)) {
        let AzureConfig {
            name,
            schedule: expr,
            ..
        } = cfg;
        let collector =
            AzureCollector::new(cfg.clone()).with_context(|| format!("collector {name}"))?;
        out.push(Named {
            name: name.clone(),
            schedule: schedule(expr, name)?,
            collector: Collector::Azure(Box::new(collector)),
        });
    }
    for cfg in config.aws.iter().filter(|c| wanted(&c.name)) {
        let AwsConfig {
            name,
            schedule: expr,
            ..
        } = cfg;
        let collector = AwsCollector::new(cfg.clone())
            .await
            .with_context(|| format!("collector {name}"))?;
        out.push(Named {
            name: name.clone(),
            schedule: schedule(expr, name)?,
            collector: Collector::Aws(Box::new(collector)),
        });
    }
    if out.is_empty() {
        match only {
            Some(name) => anyhow::bail!("no collector named {name:?} in the config"),
            None => anyhow::bail!("the config has no [[azure]] or [[aws]] collector"),
        }
    }
    Ok(out)
}

/// Runs `collect`. `since` backfills from that time (epoch ms) on the first cycle.
pub fn collect(
    config: &Config,
    store: &mut Store,
    correlation: &Correlation,
    only: Option<&str>,
    once: bool,
    since: Option<i64>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut collectors = build(config, only).await?;
        let mut since = since.and_then(DateTime::<Utc>::from_timestamp_millis);
        loop {
            let mut failed = 0;
            for c in &mut collectors {
                match c.collector.poll(store, since).await {
                    Ok(p) => println!("{}: {} new records in {} pages", c.name, p.stored, p.pages),
                    Err(e) => {
                        failed += 1;
                        eprintln!("crosswind: collector {}: {e:#}", c.name);
                    }
                }
            }
            since = None;
            let correlated = correlation.run_pending(store, None)?;
            if correlated.signals_new > 0 || !correlated.findings_new.is_empty() {
                println!(
                    "correlated: {} new signals, {} new findings",
                    correlated.signals_new,
                    correlated.findings_new.len()
                );
            }
            if once {
                if failed > 0 {
                    anyhow::bail!(
                        "{failed} collector(s) failed; their checkpoints did not advance"
                    );
                }
                return Ok(());
            }
            // Sleep until the next collector is due (a simple shared cadence outside the daemon).
            let next = collectors
                .iter()
                .filter_map(|c| c.schedule.upcoming(Utc).next())
                .min()
                .ok_or_else(|| anyhow!("no schedule has a future run"))?;
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}
