//! Command-line surface (README, `crosswind --help`, the man page) and dispatch to the commands.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use crosswind_store::Store;

use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::correlation::Correlation;
use crate::hunt::{Hunt, Range};
use crate::import::{self, ImportOptions};
use crate::output::{OutputFormat, is_broken_pipe, note, say};
use crate::simulate::{SimArgs, write_scenario};
use crate::timearg::{format_time, parse_time};

#[derive(Debug, Parser)]
#[command(
    name = "crosswind",
    version,
    about = "Catches compromised cloud accounts by correlating Entra ID sign-ins and AWS CloudTrail."
)]
pub struct Cli {
    /// Config file [default: $CROSSWIND_CONFIG, then /etc/crosswind/crosswind.toml].
    #[arg(long, global = true, env = "CROSSWIND_CONFIG")]
    pub config: Option<PathBuf>,
    /// SQLite store to use instead of the config's `[store] path`.
    #[arg(long, global = true, env = "CROSSWIND_STORE")]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon, in the foreground: collectors on their schedules, correlation, Splunk
    /// forwarding, /healthz /readyz /metrics (systemd `Type=notify`; SIGTERM stops, SIGHUP
    /// reloads).
    Run {
        /// auto (colours on a terminal, plain text otherwise), text or json.
        #[arg(long, value_enum, default_value_t)]
        log_format: crate::daemon::LogFormat,
    },
    /// Check the config and every file it names; print each problem with its key.
    Validate,
    /// Load exported records (NDJSON, JSON arrays, Graph pages, CloudTrail files; `-` = stdin; .gz accepted).
    Import {
        /// Input shape (auto|graph|signinlogs|diagnostic|cloudtrail) and/or summary format
        /// (table|json); may be given twice, e.g. `--format cloudtrail --format json`.
        #[arg(long = "format", value_name = "FORMAT")]
        formats: Vec<String>,
        /// Do not show progress on a terminal.
        #[arg(long)]
        no_progress: bool,
        /// The largest record (or line, or document that is not an array of records) read
        /// whole; a longer one is quarantined with its first bytes and its length (default:
        /// `[import] max_record_bytes`, else 16 MiB).
        #[arg(long, value_name = "BYTES")]
        max_record_bytes: Option<u64>,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
    },
    /// Run a named hunt over the store (`--list` shows them).
    Hunt {
        /// List the built-in hunts.
        #[arg(long)]
        list: bool,
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// RFC 3339 time or a duration back from now (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// risk-detections: this user (UPN or object id); post-compromise: this identity.
        #[arg(long)]
        user: Option<String>,
        /// risk-detections: this risk level (high, medium, low).
        #[arg(long)]
        level: Option<String>,
        /// risk-detections: this (latest) risk state (atRisk, confirmedCompromised, dismissed, …).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Write a simulated scenario's records as files (Graph pages, CloudTrail `.json.gz`),
    /// with `truth.json`, `identities.toml` and `correlate.toml` beside them.
    Simulate {
        /// benign, mixed, password-spray, anonymizer-signin, cross-tenant-sfa, aws-recon,
        /// spray-to-aws, impossible-travel, mfa-fatigue, imap-new-country,
        /// stolen-key-persistence, unused-region (needs 192 hours: a shorter --hours grows to
        /// it, and mixed leaves it out of a shorter window) or leaked-credentials-messaging.
        #[arg(long)]
        scenario: String,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        sim: SimArgs,
    },
    /// Needs no config and no cloud: simulates a tenant and AWS accounts with every attack
    /// scenario, imports them into a temporary store and prints what crosswind found.
    Demo {
        /// How long the daemon runs against the simulators before the report.
        #[arg(long, default_value_t = crate::daemon::DEFAULT_DEMO_SECONDS)]
        seconds: u64,
    },
    /// Run the configured collectors outside the daemon (backfills, hunts, cron-style use).
    Collect {
        /// One full poll cycle (all pages) of each collector, then exit.
        #[arg(long)]
        once: bool,
        /// Only this collector (its `name`).
        #[arg(long)]
        collector: Option<String>,
        /// Backfill from this time (RFC 3339 or a duration back from now, e.g. 7d).
        #[arg(long)]
        since: Option<String>,
        /// Progress and failures on stderr: auto, text or json (as `run`).
        #[arg(long, value_enum, default_value_t)]
        log_format: crate::daemon::LogFormat,
    },
    /// Drain the Splunk outbox outside the daemon (after an `import`, say).
    Forward {
        /// Exit once the outbox is empty and everything is acknowledged.
        #[arg(long)]
        once: bool,
        /// First move every dead-lettered event back into the outbox (after the cause was fixed).
        #[arg(long)]
        retry_dead: bool,
        /// With --once: exit 1 when Splunk has taken nothing for this long (unreachable,
        /// untrusted certificate, unhealthy, busy); every event stays queued.
        #[arg(long, default_value = "5m", value_parser = crate::timearg::parse_duration)]
        give_up_after: std::time::Duration,
        /// Progress and failures on stderr: auto, text or json (as `run`).
        #[arg(long, value_enum, default_value_t)]
        log_format: crate::daemon::LogFormat,
    },
    /// Findings raised (identities whose cross-cloud risk crossed the threshold), newest first.
    Findings {
        /// RFC 3339 time or a duration back from now (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// One identity's cross-cloud timeline: aliases, events, signals, score over time.
    Explain {
        /// An identity or any of its aliases (UPN, object id, IAM ARN or user name).
        identity: String,
        /// table, json, or html (the report's page for this identity, on stdout).
        #[arg(long, value_enum, default_value_t)]
        format: crate::explain::ExplainFormat,
    },
    /// A self-contained HTML investigation report (no script, nothing fetched): findings, and
    /// per identity a two-lane Entra/AWS timeline with its signals and score, source IPs.
    Report {
        /// RFC 3339 time or a duration back from now (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Only this identity (or any alias of it); may be repeated. Default: every identity
        /// with a finding in the period.
        #[arg(long = "identity", value_name = "ID")]
        identities: Vec<String>,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE.html")]
        out: PathBuf,
    },
    /// Each collector's checkpoint, the quarantine and the store's size.
    Status {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
}

/// A failure with the exit code it maps to.
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: anyhow::Error) -> Self {
        Failure { code: 2, error }
    }

    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// The reader of stdout went away (`| head`): not a failure, end quietly.
    pub fn is_broken_pipe(&self) -> bool {
        is_broken_pipe(&self.error)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure { code: 1, error }
    }
}

impl From<crosswind_store::StoreError> for Failure {
    fn from(error: crosswind_store::StoreError) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{:#}", self.error)
        } else {
            write!(f, "{}", self.error)
        }
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Validate => validate(cli.config),
        Command::Import {
            ref formats,
            no_progress,
            max_record_bytes,
            ref files,
        } => {
            let (config, config_path) = load_config(cli.config.clone())?;
            let mut options =
                ImportOptions::from_format_args(formats).map_err(|e| Failure::usage(anyhow!(e)))?;
            options.max_record_bytes = config.import.max_record_bytes();
            if let Some(n) = max_record_bytes {
                crate::config::ImportConfig::check_max_record_bytes(n)
                    .map_err(|e| Failure::usage(anyhow!("--max-record-bytes {e}")))?;
                options.max_record_bytes = usize::try_from(n).unwrap_or(usize::MAX);
            }
            let correlation = Correlation::from_config(&config, config_dir(config_path.as_deref()))
                .map_err(Failure::usage)?;
            options.splunk = config
                .splunk
                .as_ref()
                .map(|s| (crosswind_hec::Renderer::new(s), s.max_outbox_rows));
            let mut store = open_store(&cli, &config)?;
            let progress = !no_progress && io::IsTerminal::is_terminal(&io::stderr());
            let mut summary = import::import_files(&mut store, files, &options, progress)?;
            let renderer = options.splunk.as_ref().map(|(r, _)| r);
            let correlated = correlation.run_pending(&mut store, renderer)?;
            summary.correlated =
                Some((correlated.signals_new, correlated.findings_new.len() as u64));
            if options.summary_format != OutputFormat::Json
                && (correlated.signals_new > 0 || !correlated.findings_new.is_empty())
            {
                note(format_args!(
                    "correlated: {} new signals, {} new findings (see `crosswind findings`)",
                    correlated.signals_new,
                    correlated.findings_new.len()
                ));
            }
            summary
                .print(options.summary_format, &mut io::stdout().lock())
                .context("cannot write summary")?;
            if let Some(failed) = summary.files.iter().find(|f| f.error.is_some()) {
                return Err(anyhow!(
                    "{} of {} files could not be read completely (first: {})",
                    summary.files.iter().filter(|f| f.error.is_some()).count(),
                    summary.files.len(),
                    failed.path
                )
                .into());
            }
            Ok(())
        }
        Command::Hunt {
            list,
            ref name,
            ref since,
            ref until,
            ref user,
            ref level,
            ref state,
            format,
        } => {
            if list {
                let mut out = io::stdout().lock();
                for h in Hunt::ALL {
                    writeln!(out, "{:<16} {}", h.name(), h.description())
                        .context("cannot write")?;
                }
                return Ok(());
            }
            let name = name.as_deref().unwrap_or_default();
            let hunt = Hunt::parse(name).ok_or_else(|| {
                let known: Vec<_> = Hunt::ALL.iter().map(|h| h.name()).collect();
                Failure::usage(anyhow!(
                    "unknown hunt {name:?}; known: {}",
                    known.join(", ")
                ))
            })?;
            let range = parse_range(since.as_deref(), until.as_deref())?;
            let (config, _) = load_config(cli.config.clone())?;
            let store = open_store_for_reading(&cli, &config)?;
            let correlate = config
                .correlate_config()
                .map_err(|e| Failure::usage(anyhow!(e)))?;
            let takes = match hunt {
                Hunt::RiskDetections => (true, true),
                Hunt::PostCompromise => (true, false),
                _ => (false, false),
            };
            if (user.is_some() && !takes.0) || ((level.is_some() || state.is_some()) && !takes.1) {
                return Err(Failure::usage(anyhow!(
                    "hunt {}: --user is for risk-detections and post-compromise, --level and --state for risk-detections",
                    hunt.name()
                )));
            }
            let filters = crate::hunt::Filters {
                user: user.clone(),
                level: level.clone(),
                state: state.clone(),
            };
            let rows = hunt.run(&store, range, &filters, &correlate)?;
            rows.write(format, &mut io::stdout().lock())
                .context("cannot write")?;
            Ok(())
        }
        Command::Collect {
            once,
            ref collector,
            ref since,
            log_format,
        } => {
            crate::daemon::init_logging(log_format, tracing::Level::INFO)?;
            let range = parse_range(since.as_deref(), None)?;
            let (config, config_path) = load_config(cli.config.clone())?;
            let correlation = Correlation::from_config(&config, config_dir(config_path.as_deref()))
                .map_err(Failure::usage)?;
            let mut store = open_store(&cli, &config)?;
            crate::collect::collect(
                &config,
                &mut store,
                &correlation,
                collector.as_deref(),
                once,
                range.since,
            )?;
            Ok(())
        }
        Command::Forward {
            once,
            retry_dead,
            give_up_after,
            log_format,
        } => {
            crate::daemon::init_logging(log_format, tracing::Level::INFO)?;
            let (config, _) = load_config(cli.config.clone())?;
            let splunk = config.splunk.clone().ok_or_else(|| {
                Failure::usage(anyhow!(
                    "no [splunk] section in the config: nothing to forward to"
                ))
            })?;
            let store = open_store(&cli, &config)?;
            // One forwarder per outbox: a second one's crash recovery would take over the
            // running one's in-flight claims (resent as duplicates) and both would claim the same
            // rows. The daemon forwards itself and holds this lock; held here until we exit.
            let _lock = crate::daemon::lock_store(store.path()).map_err(|e| {
                anyhow!(
                    "cannot forward: {e:#}; a running daemon forwards this store's outbox itself"
                )
            })?;
            forward(splunk, store, once, retry_dead, give_up_after)
        }
        Command::Findings { ref since, format } => {
            let range = parse_range(since.as_deref(), None)?;
            let (config, _) = load_config(cli.config.clone())?;
            let store = open_store_for_reading(&cli, &config)?;
            let findings = crosswind_store::correlate::findings_since(
                &store,
                range.since.unwrap_or(i64::MIN),
            )?;
            let mut out = io::stdout().lock();
            if format == OutputFormat::Json {
                // The findings themselves (schemas/finding.schema.json), one per line.
                for f in &findings {
                    serde_json::to_writer(&mut out, f).context("cannot write")?;
                    writeln!(out).context("cannot write")?;
                }
            } else {
                crate::explain::findings_rows(&findings)
                    .write(format, &mut out)
                    .context("cannot write")?;
            }
            Ok(())
        }
        Command::Explain {
            ref identity,
            format,
        } => {
            let (config, _) = load_config(cli.config.clone())?;
            let correlate = config
                .correlate_config()
                .map_err(|e| Failure::usage(anyhow!(e)))?;
            let store = open_store_for_reading(&cli, &config)?;
            crate::explain::print_explain(&store, identity, &correlate, format)?;
            Ok(())
        }
        Command::Report {
            ref since,
            ref until,
            ref identities,
            ref out,
        } => {
            let range = parse_range(since.as_deref(), until.as_deref())?;
            let (config, _) = load_config(cli.config.clone())?;
            let correlate = config
                .correlate_config()
                .map_err(|e| Failure::usage(anyhow!(e)))?;
            let store = open_store_for_reading(&cli, &config)?;
            let options = crate::report::ReportOptions {
                range,
                identities: identities.clone(),
            };
            let stats = crate::report::write_report(&store, &correlate, &options, out)?;
            for who in &stats.unknown {
                note(format_args!(
                    "crosswind: no identity or alias {who:?} in the store"
                ));
            }
            say(format_args!(
                "wrote {} ({} bytes): {} findings, {} identities drawn",
                out.display(),
                stats.bytes,
                stats.findings,
                stats.identities
            ))
            .context("cannot write")?;
            Ok(())
        }
        Command::Simulate {
            ref scenario,
            ref out,
            ref sim,
        } => {
            let scenario: crosswind_sim::Scenario = scenario
                .parse()
                .map_err(|e| Failure::usage(anyhow!("{e}")))?;
            let files = write_scenario(scenario, sim, out)?;
            say(format_args!(
                "wrote {} record files for scenario {} under {}",
                files.len(),
                scenario.name(),
                out.display()
            ))
            .context("cannot write")?;
            Ok(())
        }
        Command::Demo { seconds } => Ok(crate::daemon::demo(seconds)?),
        Command::Run { log_format } => run_daemon(&cli, log_format),
        Command::Status { format } => {
            let (config, _) = load_config(cli.config.clone())?;
            let store = open_store(&cli, &config)?;
            status(&store, &config, format)
        }
    }
}

/// Loads the config from `--config`/`$CROSSWIND_CONFIG`, else the default path when it exists,
/// else built-in defaults. A named file that cannot be read or parsed is a usage error.
fn load_config(explicit: Option<PathBuf>) -> Result<(Config, Option<PathBuf>), Failure> {
    match explicit {
        Some(path) => {
            let config = Config::load(&path).map_err(|e| Failure::usage(e.into()))?;
            Ok((config, Some(path)))
        }
        None => {
            let path = PathBuf::from(DEFAULT_CONFIG_PATH);
            if path.exists() {
                let config = Config::load(&path).map_err(|e| Failure::usage(e.into()))?;
                Ok((config, Some(path)))
            } else {
                Ok((Config::default(), None))
            }
        }
    }
}

/// The directory relative paths in the config are resolved against.
fn config_dir(config_path: Option<&std::path::Path>) -> Option<&std::path::Path> {
    config_path.and_then(std::path::Path::parent)
}

fn open_store(cli: &Cli, config: &Config) -> Result<Store, Failure> {
    let path = cli
        .store
        .clone()
        .unwrap_or_else(|| config.store.path.clone());
    Ok(Store::open(&path)?)
}

/// The store for a command that only reads it, mapped into memory (`Store::map_for_reading`).
fn open_store_for_reading(cli: &Cli, config: &Config) -> Result<Store, Failure> {
    let store = open_store(cli, config)?;
    store.map_for_reading()?;
    Ok(store)
}

fn parse_range(since: Option<&str>, until: Option<&str>) -> Result<Range, Failure> {
    let now = crosswind_store::now_ms();
    let parse = |v: Option<&str>| {
        v.map(|v| parse_time(v, now))
            .transpose()
            .map_err(|e| Failure::usage(anyhow!(e)))
    };
    Ok(Range {
        since: parse(since)?,
        until: parse(until)?,
    })
}

/// `crosswind run`: the same checks as `validate` (exit 2 on any), then the daemon.
fn run_daemon(cli: &Cli, log_format: crate::daemon::LogFormat) -> Result<(), Failure> {
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let mut config = Config::load(&path).map_err(|e| Failure::usage(e.into()))?;
    if let Some(store) = &cli.store {
        config.store.path = store.clone();
    }
    let problems: Vec<String> = config
        .validate_in(config_dir(Some(&path)).unwrap_or(std::path::Path::new(".")))
        .iter()
        .map(ToString::to_string)
        .collect();
    print_warnings(&config, &path);
    if !problems.is_empty() {
        for p in &problems {
            note(format_args!("{}: {p}", path.display()));
        }
        return Err(Failure::usage(anyhow!(
            "{} problem(s) in {}",
            problems.len(),
            path.display()
        )));
    }
    let options = crate::daemon::RunOptions {
        log_format,
        ..Default::default()
    };
    crate::daemon::run(config, path, options)?;
    Ok(())
}

/// Insecure but valid settings and file modes: printed, never fatal.
fn print_warnings(config: &Config, path: &std::path::Path) {
    for w in crate::config_safety::warnings(config, path) {
        note(format_args!("{}: warning: {w}", path.display()));
    }
}

fn validate(explicit: Option<PathBuf>) -> Result<(), Failure> {
    let path = explicit.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let config = Config::load(&path).map_err(|e| Failure::usage(e.into()))?;
    let problems = config.validate_in(config_dir(Some(&path)).unwrap_or(std::path::Path::new(".")));
    print_warnings(&config, &path);
    if problems.is_empty() {
        say(format_args!("{}: ok", path.display())).context("cannot write")?;
        return Ok(());
    }
    for p in &problems {
        note(format_args!("{}: {p}", path.display()));
    }
    Err(Failure::usage(anyhow!(
        "{} problem(s) in {}",
        problems.len(),
        path.display()
    )))
}

fn status(store: &Store, config: &Config, format: OutputFormat) -> Result<(), Failure> {
    use serde_json::json;

    use crate::output::Rows;
    let now = chrono::Utc::now();
    let counts = store.counts()?;
    let outbox = crosswind_store::outbox::stats(store)?;
    let opt_time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or(json!(null), |t| json!(t.to_rfc3339()));
    let mut rows = Rows::new(vec![
        "item",
        "value",
        "checkpoint",
        "lag_secs",
        "last_error",
    ]);
    let mut row = |item: String, value: serde_json::Value| {
        rows.push(vec![
            json!(item),
            value,
            json!(null),
            json!(null),
            json!(null),
        ]);
    };
    row("store".into(), json!(store.path().display().to_string()));
    row("store_bytes".into(), json!(counts.file_bytes));
    row("events".into(), json!(counts.events));
    row("quarantined".into(), json!(counts.quarantined));
    row("outbox_pending".into(), json!(outbox.pending));
    row("outbox_awaiting_ack".into(), json!(outbox.awaiting_ack));
    row("outbox_dead_letters".into(), json!(outbox.dead));
    row(
        "outbox_oldest".into(),
        outbox
            .oldest_enqueued_at
            .map_or(json!(null), |t| json!(format_time(t))),
    );
    let cursor = store.checkpoint(crosswind_store::correlate::CORRELATE_CHECKPOINT)?;
    row("correlator_cursor".into(), json!(cursor.map(|c| c.value)));
    // Stored records a follower has not read yet (the daemon's gauges of the same names).
    let lag = |name: &str| crosswind_store::cursor::lag(store, name);
    row(
        "correlator_lag_records".into(),
        json!(lag(crosswind_store::correlate::CORRELATE_CHECKPOINT)?),
    );
    if config.splunk.is_some() {
        row(
            "outbox_feeder_lag_records".into(),
            json!(lag(crate::daemon::FEEDER_CHECKPOINT)?),
        );
    }
    // Per index, with Splunk's latest reason: a refused index (HEC code 7) is named here.
    for dead in crosswind_store::outbox::dead_by_index(store)? {
        let index = dead.index.as_deref().unwrap_or("(token default)");
        rows.push(vec![
            json!(format!("outbox_dead_letters index={index}")),
            json!(dead.count),
            json!(null),
            json!(null),
            json!(dead.last_error),
        ]);
    }
    for azure in &config.azure {
        let st = crosswind_azure::status(&azure.name, store, now).map_err(|e| anyhow!(e))?;
        rows.push(vec![
            json!(format!("collector {} ({})", st.name, st.kind)),
            json!(null),
            opt_time(st.checkpoint),
            json!(st.lag_secs),
            json!(st.last_error),
        ]);
        too_late_row(&mut rows, &st.name, st.too_late);
        // Risk detections: their own checkpoint, and an error (a 403 names the permission to
        // grant) that does not stop the sign-ins.
        if azure.risk_detections {
            let risk = &st.risk_detections;
            rows.push(vec![
                json!(format!("collector {} risk_detections", st.name)),
                json!(match (&risk.last_error, risk.checkpoint) {
                    (Some(_), _) => "failing",
                    (None, None) => "not read yet",
                    (None, Some(_)) => "ok",
                }),
                opt_time(risk.checkpoint),
                json!(risk.lag_secs),
                json!(risk.last_error),
            ]);
            if risk.too_late > 0 {
                too_late_row(
                    &mut rows,
                    &format!("{} risk_detections", st.name),
                    risk.too_late,
                );
            }
        }
        // A failing event-type query keeps its own checkpoint while the others go on.
        for (event_type, error) in &st.event_type_errors {
            rows.push(vec![
                json!(format!("collector {} event_type {event_type}", st.name)),
                json!("failing"),
                json!(null),
                json!(null),
                json!(error),
            ]);
        }
    }
    for aws in &config.aws {
        let st = crosswind_aws::status(&aws.name, store, now).map_err(|e| anyhow!(e))?;
        rows.push(vec![
            json!(format!("collector {} ({})", st.name, st.kind)),
            json!(match (st.files_done, st.files_failing) {
                (0, 0) => json!(null),
                (done, 0) => json!(format!("{done} trail files")),
                (done, failing) => json!(format!(
                    "{done} trail files, {failing} unreadable (tried again each poll)"
                )),
            }),
            opt_time(st.checkpoint),
            json!(st.lag_secs),
            json!(st.last_error),
        ]);
        too_late_row(&mut rows, &st.name, st.too_late);
        // One line per LookupEvents region: each has its own checkpoint, lag and error.
        if aws.mode == crosswind_aws::Mode::LookupEvents {
            for region in &aws.regions {
                let cp = st.checkpoints.iter().find(|c| &c.scope == region);
                let err = st.region_errors.iter().find(|(r, _)| r == region);
                rows.push(vec![
                    json!(format!("collector {} region {region}", st.name)),
                    json!(match (err, cp) {
                        (Some(_), _) => "failing",
                        (None, None) => "not read yet",
                        (None, Some(_)) => "ok",
                    }),
                    opt_time(cp.map(|c| c.checkpoint)),
                    json!(cp.map(|c| c.lag_secs)),
                    json!(err.map(|(_, e)| e)),
                ]);
            }
        }
    }
    rows.write(format, &mut io::stdout().lock())
        .context("cannot write")?;
    Ok(())
}

/// Records the late sweep found behind the lookback: a number that grows means `lookback_secs`
/// is too short and later records may be missed.
fn too_late_row(rows: &mut crate::output::Rows, collector: &str, n: u64) {
    use serde_json::json;
    rows.push(vec![
        json!(format!("collector {collector} records_too_late")),
        json!(n),
        json!(null),
        json!(null),
        if n > 0 {
            json!("arrived later than lookback_secs (found by the late sweep); raise lookback_secs")
        } else {
            json!(null)
        },
    ]);
}

/// `forward`: drains the outbox to Splunk; `once` exits when everything is acknowledged,
/// otherwise runs until Ctrl-C / SIGTERM.
fn forward(
    splunk: crosswind_hec::SplunkConfig,
    store: Store,
    once: bool,
    retry_dead: bool,
    give_up_after: std::time::Duration,
) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut forwarder = crosswind_hec::Forwarder::new(splunk, store)?;
        if retry_dead {
            let n = forwarder.retry_dead()?;
            note(format_args!("re-queued {n} dead-lettered events"));
        }
        if once {
            tracing::info!(
                give_up_after_secs = give_up_after.as_secs(),
                "Forwarding the outbox to Splunk until it is empty."
            );
            let mut forwarder = forwarder.give_up_after(give_up_after);
            let stats = forwarder.drain_once().await?;
            say(format_args!(
                "delivered {} events in {} batches ({} acknowledged, {} retries, {} possible duplicates, {} dead-lettered)",
                stats.events_delivered,
                stats.batches,
                stats.events_acked,
                stats.retries,
                stats.possible_duplicates,
                stats.dead_lettered
            )).context("cannot write")?;
            // A recap after the run: where the dead letters were bound and why (a refused
            // index, HEC code 7, is the usual cause), past the log lines of the run.
            if stats.dead_lettered > 0 {
                let store = forwarder.into_store();
                for dead in crosswind_store::outbox::dead_by_index(&store)? {
                    let index = dead.index.as_deref().unwrap_or("the token's default index");
                    note(format_args!(
                        "dead letters for index {}: {} ({})",
                        crate::output::terminal_safe(index),
                        dead.count,
                        crate::output::terminal_safe(&dead.last_error)
                    ));
                }
            }
            Ok::<_, anyhow::Error>(())
        } else {
            forwarder
                .run(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(())
        }
    })?;
    Ok(())
}
