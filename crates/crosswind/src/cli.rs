//! Command-line surface (INTERFACES.md "Command line") and dispatch to the commands.

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
use crate::output::OutputFormat;
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
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Write a simulated scenario's records as files (Graph pages, CloudTrail `.json.gz`),
    /// with `truth.json`, `identities.toml` and `correlate.toml` beside them.
    Simulate {
        /// benign, mixed, password-spray, anonymizer-signin, cross-tenant-sfa, aws-recon,
        /// spray-to-aws or impossible-travel.
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
        #[command(flatten)]
        sim: SimArgs,
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
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
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
            ref files,
        } => {
            let (config, config_path) = load_config(cli.config.clone())?;
            let mut options =
                ImportOptions::from_format_args(formats).map_err(|e| Failure::usage(anyhow!(e)))?;
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
                eprintln!(
                    "correlated: {} new signals, {} new findings (see `crosswind findings`)",
                    correlated.signals_new,
                    correlated.findings_new.len()
                );
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
            let store = open_store(&cli, &config)?;
            let correlate = config
                .correlate_config()
                .map_err(|e| Failure::usage(anyhow!(e)))?;
            let rows = hunt.run(&store, range, &correlate)?;
            rows.write(format, &mut io::stdout().lock())
                .context("cannot write")?;
            Ok(())
        }
        Command::Findings { ref since, format } => {
            let range = parse_range(since.as_deref(), None)?;
            let (config, _) = load_config(cli.config.clone())?;
            let store = open_store(&cli, &config)?;
            crate::explain::findings(&store, range.since)?
                .write(format, &mut io::stdout().lock())
                .context("cannot write")?;
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
            let store = open_store(&cli, &config)?;
            crate::explain::print_explain(&store, identity, &correlate, format)?;
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
            println!(
                "wrote {} record files for scenario {} under {}",
                files.len(),
                scenario.name(),
                out.display()
            );
            Ok(())
        }
        Command::Demo { ref sim } => demo(sim),
        Command::Status { format } => {
            let (config, _) = load_config(cli.config.clone())?;
            let store = open_store(&cli, &config)?;
            status(&store, format)
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

fn validate(explicit: Option<PathBuf>) -> Result<(), Failure> {
    let path = explicit.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let config = Config::load(&path).map_err(|e| Failure::usage(e.into()))?;
    let problems = config.validate_in(config_dir(Some(&path)).unwrap_or(std::path::Path::new(".")));
    if problems.is_empty() {
        println!("{}: ok", path.display());
        return Ok(());
    }
    for p in &problems {
        eprintln!("{}: {p}", path.display());
    }
    Err(Failure::usage(anyhow!(
        "{} problem(s) in {}",
        problems.len(),
        path.display()
    )))
}

fn status(store: &Store, format: OutputFormat) -> Result<(), Failure> {
    use serde_json::json;

    use crate::output::Rows;
    let counts = store.counts()?;
    let mut rows = Rows::new(vec!["item", "value", "updated"]);
    rows.push(vec![
        json!("store"),
        json!(store.path().display().to_string()),
        json!(null),
    ]);
    rows.push(vec![
        json!("store_bytes"),
        json!(counts.file_bytes),
        json!(null),
    ]);
    rows.push(vec![json!("events"), json!(counts.events), json!(null)]);
    rows.push(vec![
        json!("quarantined"),
        json!(counts.quarantined),
        json!(null),
    ]);
    for cp in store.checkpoints()? {
        rows.push(vec![
            json!(format!("checkpoint {}", cp.name)),
            json!(cp.value),
            json!(format_time(cp.updated_at)),
        ]);
    }
    rows.write(format, &mut io::stdout().lock())
        .context("cannot write")?;
    Ok(())
}

/// The foundation demo: every attack scenario in a benign tenant, through the real import path
/// into a store that is kept for exploring afterwards.
fn demo(sim: &SimArgs) -> Result<(), Failure> {
    let dir = tempfile::Builder::new()
        .prefix("crosswind-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?
        .keep();
    let data = dir.join("data");
    let files = write_scenario(crosswind_sim::Scenario::Mixed, sim, &data)?;
    // The generator writes the tuning its tenant needs (VPN egress, partner tenant, automation
    // accounts, identity links), exactly as an operator would configure it.
    let config_path = data.join("correlate.toml");
    let config = Config::load(&config_path).map_err(|e| anyhow!(e))?;
    let correlation = Correlation::from_config(&config, Some(&data))?;
    let store_path = dir.join("crosswind.db");
    let mut store = Store::open(&store_path)?;
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let summary = import::import_files(&mut store, &paths, &ImportOptions::default(), false)?;
    let correlated = correlation.run_pending(&mut store, None)?;
    let mut out = io::stdout().lock();
    let w = |e: io::Error| anyhow!(e).context("cannot write");
    writeln!(
        out,
        "simulated tenant and AWS accounts: {} files under {}",
        files.len(),
        data.display()
    )
    .map_err(w)?;
    summary.print(OutputFormat::Table, &mut out).map_err(w)?;
    writeln!(
        out,
        "correlated {} events: {} signals, {} findings",
        correlated.events,
        correlated.signals_new,
        correlated.findings_new.len()
    )
    .map_err(w)?;
    writeln!(out, "\nfindings:").map_err(w)?;
    let findings = crosswind_store::correlate::findings_since(&store, i64::MIN)?;
    crate::explain::findings_rows(&findings)
        .write(OutputFormat::Table, &mut out)
        .map_err(w)?;
    if let Some(top) = findings.iter().max_by(|a, b| a.score.total_cmp(&b.score)) {
        writeln!(out, "\nexplain {}:", top.identity).map_err(w)?;
        crate::explain::explain(
            &store,
            &top.identity,
            correlation.config(),
            OutputFormat::Table,
            &mut out,
        )?;
    }
    writeln!(out, "\nground truth: {}", data.join("truth.json").display()).map_err(w)?;
    writeln!(
        out,
        "store: {} (try: crosswind --store {} hunt --list)",
        store_path.display(),
        store_path.display()
    )
    .map_err(w)?;
    Ok(())
}
