//! Logs through `tracing`: human-readable with colours on a terminal, plain text without ANSI
//! (and without timestamps under journald, which adds its own) when not, or one JSON object per
//! line with `--log-format json`. `CROSSWIND_LOG` filters (`info`, `warn,crosswind_hec=debug`).
//!
//! Secrets never reach a log: tokens and client secrets live in `SensitiveString`s whose
//! `Debug`/`Display` print nothing, and no component logs request headers.

use std::io::IsTerminal;

use anyhow::Context;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Colours on a terminal; plain text otherwise (journald-friendly).
    #[default]
    Auto,
    /// Plain text, never colours.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. A second call (the demo inside a test) is a no-op.
pub fn init(format: LogFormat, default_level: Level) -> anyhow::Result<()> {
    let filter = match std::env::var("CROSSWIND_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec
            .parse::<Targets>()
            .with_context(|| format!("invalid CROSSWIND_LOG {spec:?}"))?,
        _ => Targets::new().with_default(default_level),
    };
    let tty = std::io::stderr().is_terminal();
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let layer = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Auto if tty => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Auto | LogFormat::Text if journald && !tty => fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Auto | LogFormat::Text => fmt::layer()
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
    Ok(())
}
