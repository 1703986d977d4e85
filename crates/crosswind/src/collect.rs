//! `crosswind collect`: the configured collectors outside the daemon — one full poll cycle each
//! (`--once`, or `--since T` to backfill), then, as the daemon does after a poll, the outbox
//! feeder and the correlator over what they stored: with `[splunk]` configured the raw records,
//! risk events and findings are queued for `crosswind forward` (or the daemon's sink). Without
//! `--once` it keeps polling on each collector's schedule until Ctrl-C.

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use crosswind_store::Store;

use crate::collectors::{Source, Spec, parse_schedule};
use crate::config::Config;
use crate::correlation::Correlation;

struct Named {
    name: String,
    schedule: cron::Schedule,
    source: Source,
}

async fn build(config: &Config, only: Option<&str>) -> anyhow::Result<Vec<Named>> {
    let mut out = Vec::new();
    for spec in Spec::all(config)
        .into_iter()
        .filter(|s| only.is_none_or(|o| o == s.name()))
    {
        let schedule = parse_schedule(spec.schedule())
            .with_context(|| format!("collector {}: schedule", spec.name()))?;
        let source = Source::build(&spec, None).await?;
        out.push(Named {
            name: spec.name().to_owned(),
            schedule,
            source,
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
    // Queue for Splunk what the daemon would: raw records, risk events, findings.
    let splunk = config
        .splunk
        .as_ref()
        .map(|s| (crosswind_hec::Renderer::new(s), s.max_outbox_rows));
    runtime.block_on(async {
        let mut collectors = build(config, only).await?;
        let mut since = since.and_then(DateTime::<Utc>::from_timestamp_millis);
        loop {
            let mut failed = 0;
            for c in &mut collectors {
                match c.source.poll_from(store, since).await {
                    Ok(p) => {
                        println!("{}: {} new records in {} pages", c.name, p.stored, p.pages);
                        // The rest of the poll went on; the checkpoint of what failed stays.
                        if let Some(w) = &p.warning {
                            eprintln!("crosswind: collector {}: {w}", c.name);
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("crosswind: collector {}: {e:#}", c.name);
                    }
                }
            }
            since = None;
            if let Some((renderer, max_outbox_rows)) = &splunk {
                let fed = crate::feeder::feed(store, renderer, *max_outbox_rows, || true)?;
                if fed.records > 0 {
                    println!("queued for Splunk: {} records", fed.records);
                }
                if fed.full {
                    eprintln!(
                        "crosswind: the Splunk outbox is full ([splunk] max_outbox_rows = \
                         {max_outbox_rows}); the rest is queued once `crosswind forward` drains it"
                    );
                }
            }
            let correlated = correlation.run_pending(store, splunk.as_ref().map(|(r, _)| r))?;
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
