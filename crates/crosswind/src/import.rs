//! `crosswind import`: exported files → normalise → store, in batched transactions. Records
//! that cannot be mapped are quarantined with the reason; good records around them are kept.

use std::fs::File;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use crosswind_hec::Renderer;
use crosswind_normalize::{FormatFamily, FormatHint, RecordReader, normalize};
use crosswind_store::outbox::Quota;
use crosswind_store::{BatchStats, Inserted, NewRecord, QuarantineRecord, Store};
use serde_json::json;

use crate::output::OutputFormat;

/// Records per transaction: large enough to amortise the commit, small enough to bound the
/// work redone after a crash.
const BATCH_RECORDS: usize = 10_000;

/// How `import` reads its input and prints its summary.
#[derive(Clone, Default)]
pub struct ImportOptions {
    pub family: FormatFamily,
    pub summary_format: OutputFormat,
    /// When `[splunk]` is configured: raw records (and events, if forwarded) are queued for
    /// Splunk in the transaction that stores them.
    pub splunk: Option<(Renderer, u64)>,
}

impl ImportOptions {
    /// `--format` values: input shapes and/or the summary format, at most one of each.
    pub fn from_format_args(values: &[String]) -> Result<ImportOptions, String> {
        let mut options = ImportOptions::default();
        let (mut family_set, mut output_set) = (false, false);
        for value in values {
            if let Some(family) = FormatFamily::parse(value) {
                if std::mem::replace(&mut family_set, true) {
                    return Err("--format names two input formats".into());
                }
                options.family = family;
            } else if let Some(format) = match value.as_str() {
                "table" => Some(OutputFormat::Table),
                "json" => Some(OutputFormat::Json),
                _ => None,
            } {
                if std::mem::replace(&mut output_set, true) {
                    return Err("--format names two summary formats".into());
                }
                options.summary_format = format;
            } else {
                return Err(format!(
                    "invalid --format {value:?}: use auto, graph, signinlogs, diagnostic, cloudtrail, table or json"
                ));
            }
        }
        Ok(options)
    }
}

/// What happened to one input file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSummary {
    pub path: String,
    pub read: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    /// Why reading stopped early (unreadable file, truncated gzip); records before it are kept.
    pub error: Option<String>,
}

/// Totals over all files of one import.
#[derive(Clone, Debug, Default)]
pub struct ImportSummary {
    pub files: Vec<FileSummary>,
    /// Event-time range of newly stored events (for the correlator).
    pub new_time_range: Option<(i64, i64)>,
    /// Set once the correlator has run over what was stored: (new signals, new findings).
    pub correlated: Option<(u64, u64)>,
}

impl ImportSummary {
    pub fn total(&self) -> FileSummary {
        let mut t = FileSummary::default();
        for f in &self.files {
            t.read += f.read;
            t.stored += f.stored;
            t.duplicates += f.duplicates;
            t.quarantined += f.quarantined;
        }
        t
    }

    pub fn print(&self, format: OutputFormat, out: &mut impl Write) -> io::Result<()> {
        let t = self.total();
        match format {
            OutputFormat::Json => {
                let per_file: Vec<_> = self
                    .files
                    .iter()
                    .map(|f| {
                        json!({"path": f.path, "read": f.read, "stored": f.stored,
                               "duplicates": f.duplicates, "quarantined": f.quarantined,
                               "error": f.error})
                    })
                    .collect();
                let mut summary = json!({"read": t.read, "stored": t.stored, "duplicates": t.duplicates,
                                     "quarantined": t.quarantined, "files": self.files.len(),
                                     "per_file": per_file});
                if let Some((signals, findings)) = self.correlated {
                    summary["signals"] = json!(signals);
                    summary["findings"] = json!(findings);
                }
                writeln!(out, "{summary}")
            }
            OutputFormat::Table | OutputFormat::Csv => writeln!(
                out,
                "read {}, stored {}, duplicates {}, quarantined {}",
                t.read, t.stored, t.duplicates, t.quarantined
            ),
        }
    }
}

/// Imports every file in order; a file that fails midway keeps what was read before the failure
/// and the others still run. Store failures abort (nothing half-committed: batches are atomic).
pub fn import_files(
    store: &mut Store,
    paths: &[String],
    options: &ImportOptions,
    progress: bool,
) -> anyhow::Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    for path in paths {
        let mut file = FileSummary {
            path: path.clone(),
            ..FileSummary::default()
        };
        let input: io::Result<Box<dyn Read>> = if path == "-" {
            Ok(Box::new(io::stdin().lock()))
        } else {
            File::open(path).map(|f| Box::new(f) as Box<dyn Read>)
        };
        match input {
            Ok(input) => {
                let range = import_one(store, input, options, &mut file, progress)
                    .with_context(|| format!("import of {path} failed"))?;
                if let Some((lo, hi)) = range {
                    summary.new_time_range = Some(match summary.new_time_range {
                        Some((a, b)) => (a.min(lo), b.max(hi)),
                        None => (lo, hi),
                    });
                }
            }
            Err(e) => file.error = Some(format!("cannot open: {e}")),
        }
        if let Some(error) = &file.error {
            eprintln!("crosswind: {path}: {error}");
        }
        summary.files.push(file);
    }
    Ok(summary)
}

fn import_one(
    store: &mut Store,
    input: Box<dyn Read>,
    options: &ImportOptions,
    file: &mut FileSummary,
    progress: bool,
) -> anyhow::Result<Option<(i64, i64)>> {
    let origin = file.path.clone();
    let mut range: Option<(i64, i64)> = None;
    let mut add = |file: &mut FileSummary, stats: BatchStats| {
        file.stored += stats.stored;
        file.duplicates += stats.duplicates;
        file.quarantined += stats.quarantined;
        if let (Some(lo), Some(hi)) = (stats.min_new_time, stats.max_new_time) {
            range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
    };
    let started = Instant::now();
    let mut last_progress = started;
    let mut batch = store.begin()?;
    // Outbox room, counted once per batch.
    let mut quota: Option<Quota> = None;
    let mut in_batch = 0usize;
    let records = match RecordReader::from_read(input) {
        Ok(records) => records,
        Err(e) => {
            file.error = Some(format!("cannot read: {e}"));
            return Ok(None);
        }
    };
    let hint = Some(FormatHint::Family(options.family));
    for item in records {
        match item {
            Ok(record) => {
                file.read += 1;
                match normalize(&record.bytes, hint) {
                    Ok(normalized) => {
                        let new = NewRecord {
                            event: &normalized.event,
                            format: normalized.format,
                            raw: &record.bytes,
                            origin: &origin,
                        };
                        if let (Inserted::New(_), Some((renderer, max_rows))) =
                            (batch.insert(&new)?, &options.splunk)
                        {
                            if quota.is_none() {
                                quota = Some(Quota::check(&batch, *max_rows)?);
                            }
                            let rendered = [
                                renderer.raw(new.format, new.raw, new.event, "import"),
                                renderer.event(new.event, "import"),
                            ];
                            for r in rendered.iter().flatten() {
                                if let Some(quota) = quota.as_mut() {
                                    crosswind_hec::enqueue(&batch, quota, r)?;
                                }
                            }
                        }
                    }
                    Err(rejection) => {
                        batch.quarantine(&QuarantineRecord {
                            origin: &origin,
                            position: Some(&record.position.to_string()),
                            reason: &rejection.reason,
                            raw: &record.bytes,
                        })?;
                    }
                }
            }
            Err(error) if error.is_fatal() => {
                file.error = Some(error.to_string());
                break;
            }
            Err(error) => {
                // A line that is not a record (malformed JSON, invalid UTF-8): kept with the
                // reason so nothing read is ever silently dropped.
                file.read += 1;
                let position = error.line().map(|l| format!("line {l}"));
                batch.quarantine(&QuarantineRecord {
                    origin: &origin,
                    position: position.as_deref(),
                    reason: &error.to_string(),
                    raw: error.raw_bytes(),
                })?;
            }
        }
        in_batch += 1;
        if in_batch >= BATCH_RECORDS {
            add(file, batch.commit()?);
            batch = store.begin()?;
            quota = None;
            in_batch = 0;
            if progress && last_progress.elapsed() >= Duration::from_millis(500) {
                last_progress = Instant::now();
                let rate = file.read as f64 / started.elapsed().as_secs_f64().max(1e-3);
                eprint!("\r{origin}: {} records ({rate:.0}/s)   ", file.read);
            }
        }
    }
    add(file, batch.commit()?);
    if progress && started.elapsed() >= Duration::from_millis(500) {
        eprintln!();
    }
    Ok(range)
}
