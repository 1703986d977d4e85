//! `crosswind import`: exported files → normalise → store, in batched transactions. Records
//! that cannot be mapped are quarantined with the reason; good records around them are kept.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crosswind_hec::Renderer;
use crosswind_normalize::{
    ContainerError, DEFAULT_MAX_RECORD_BYTES, FormatFamily, FormatHint, KEPT_BYTES, Normalized,
    RawRecord, RecordReader, Rejection,
};
use crosswind_store::outbox::Quota;
use crosswind_store::{
    BatchStats, Inserted, NewRecord, PackedRecord, Packer, QuarantineRecord, Store,
};
use serde_json::json;

use crate::output::OutputFormat;

/// Records per transaction: large enough to amortise the commit, small enough to bound the
/// work redone after a crash. Each commit rewrites every index page its inserts touched, and
/// record ids and user names land all over their indexes, so small batches write those pages
/// many times over (10,000 per batch wrote 20 KB per 4.6 KB record at 500k records; 100,000
/// wrote 14.7 KB, and imported 22% faster).
const BATCH_RECORDS: usize = 100_000;
/// Raw bytes per transaction, so a file of very large records still commits regularly.
const BATCH_BYTES: usize = 256 << 20;

/// How `import` reads its input and prints its summary.
#[derive(Clone)]
pub struct ImportOptions {
    pub family: FormatFamily,
    pub summary_format: OutputFormat,
    /// When `[splunk]` is configured: raw records (and events, if forwarded) are queued for
    /// Splunk in the transaction that stores them.
    pub splunk: Option<(Renderer, u64)>,
    /// The largest record (or line, or document that is not an array of records) read; a
    /// longer one is quarantined with its first bytes and its length.
    pub max_record_bytes: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            family: FormatFamily::default(),
            summary_format: OutputFormat::default(),
            splunk: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// The largest `max_record_bytes` accepted: memory stays bounded (a few times the limit), and
/// far below SQLite's largest value (1 GB by default).
pub const MAX_RECORD_BYTES_CEILING: usize = 128 << 20;

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
/// and the others still run. A record the store refuses is quarantined; a store failure that
/// ends the transaction loses that batch only (batches are atomic) and the file is reported
/// as incomplete.
pub fn import_files(
    store: &mut Store,
    paths: &[String],
    options: &ImportOptions,
    progress: bool,
) -> anyhow::Result<ImportSummary> {
    store.bulk_import_cache(true)?;
    let imported = import_each(store, paths, options, progress);
    // Back to the usual cache before the correlator builds its state, whatever happened.
    store.bulk_import_cache(false)?;
    imported
}

fn import_each(
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
        let input: io::Result<Box<dyn Read + Send>> = if path == "-" {
            Ok(Box::new(io::stdin()))
        } else {
            File::open(path).map(|f| Box::new(f) as Box<dyn Read + Send>)
        };
        match input {
            Ok(input) => match import_one(store, input, options, &mut file, progress) {
                Ok(range) => {
                    if let Some((lo, hi)) = range {
                        summary.new_time_range = Some(match summary.new_time_range {
                            Some((a, b)) => (a.min(lo), b.max(hi)),
                            None => (lo, hi),
                        });
                    }
                }
                Err(e) => file.error = Some(format!("{e:#}")),
            },
            Err(e) => file.error = Some(format!("cannot open: {e}")),
        }
        if let Some(error) = &file.error {
            crate::output::note(format_args!("crosswind: {path}: {error}"));
        }
        summary.files.push(file);
    }
    Ok(summary)
}

fn import_one(
    store: &mut Store,
    input: Box<dyn Read + Send>,
    options: &ImportOptions,
    file: &mut FileSummary,
    progress: bool,
) -> anyhow::Result<Option<(i64, i64)>> {
    let records = match RecordReader::from_read(input) {
        Ok(records) => records.with_max_record_bytes(options.max_record_bytes),
        Err(e) => {
            file.error = Some(format!("cannot read: {e}"));
            return Ok(None);
        }
    };
    let hint = Some(FormatHint::Family(options.family));
    // Reading, normalising and serialising run on their own thread (compressing too, while the
    // store is behind), storing on this one: on two cores the import takes as long as the
    // slower half. The channel is bounded, so a slow store holds the reader back instead of
    // buffering.
    let (tx, rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    // Stored chunks go back to the reading thread, which frees them: memory is freed fastest
    // by the thread that allocated it (mimalloc), and that thread is the less busy one.
    let (stored_tx, stored_rx) = mpsc::channel();
    let packer = store.packer();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let handover = Handover {
        tx,
        stored: stored_rx,
        in_flight: Arc::clone(&in_flight),
    };
    let reader = std::thread::Builder::new()
        .name("import-read".to_owned())
        .spawn(move || read_and_normalize(records, hint, packer, handover))
        .context("cannot start the reading thread")?;
    // On a store error `rx` is dropped and the reader stops at its next hand-over; it is not
    // waited for (it may be blocked reading stdin).
    let chunks = rx.into_iter().inspect(|_| {
        in_flight.fetch_sub(1, Ordering::Relaxed);
    });
    let range = store_items(store, chunks, &stored_tx, options, file, progress)?;
    // A reader that died early would look like the end of the input: say so instead.
    if reader.join().is_err() {
        anyhow::bail!("reading {} failed unexpectedly", file.path);
    }
    Ok(range)
}

/// A record as the reading thread hands it over.
// Nearly every item is a record: boxing it would cost an allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
enum Item {
    Record {
        record: RawRecord,
        normalized: Result<Normalized, Rejection>,
        /// The event and raw bytes as they will be stored; `None` if packing failed (the store
        /// then packs, and reports the failure).
        packed: Option<PackedRecord>,
    },
    /// Input that is not a record (malformed JSON, invalid UTF-8) or a read failure.
    Unreadable(ContainerError),
}

/// Items per hand-over between the threads, and hand-overs in flight (a few MiB at most: a
/// chunk is handed over early once its records hold `CHUNK_BYTES`, so large records do not
/// pile up 256 to a chunk).
const CHUNK: usize = 256;
const CHUNK_BYTES: usize = 2 << 20;
const CHUNKS_IN_FLIGHT: usize = 8;

/// The reading thread's end of the hand-over, with a count of chunks not yet taken.
struct Handover {
    tx: mpsc::SyncSender<Vec<Item>>,
    /// Chunks the store is done with.
    stored: mpsc::Receiver<Vec<Item>>,
    in_flight: Arc<AtomicUsize>,
}

impl Handover {
    fn send(&self, chunk: Vec<Item>) -> bool {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.tx.send(chunk).is_ok()
    }

    /// An empty chunk to fill: one the store is done with (its items freed here), else new.
    fn next_chunk(&self) -> Vec<Item> {
        let mut reused = None;
        while let Ok(mut chunk) = self.stored.try_recv() {
            chunk.clear();
            reused = Some(chunk);
        }
        reused.unwrap_or_else(|| Vec::with_capacity(CHUNK))
    }

    /// Compressing is about a fifth of the reading thread's work, and the storing thread
    /// compresses whatever arrives uncompressed. The reading thread takes it on while chunks
    /// pile up (the store is the slower half) and leaves it while they don't, so on two cores
    /// both halves stay busy whichever is slower for this input.
    fn store_is_behind(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= CHUNKS_IN_FLIGHT / 2
    }
}

fn read_and_normalize<R: io::BufRead>(
    mut records: RecordReader<R>,
    hint: Option<FormatHint>,
    mut packer: Packer,
    handover: Handover,
) {
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut chunk_bytes = 0;
    let mut compress = false;
    while let Some(item) = records.next_normalized(hint) {
        chunk.push(match item {
            Ok((record, normalized)) => {
                chunk_bytes += record.bytes.len();
                let packed = normalized.as_ref().ok().and_then(|n| {
                    packer
                        .pack(&n.event, n.format, &record.bytes, compress)
                        .ok()
                });
                Item::Record {
                    record,
                    normalized,
                    packed,
                }
            }
            Err(error) => {
                chunk_bytes += error.raw_bytes().len();
                Item::Unreadable(error)
            }
        });
        if chunk.len() == CHUNK || chunk_bytes >= CHUNK_BYTES {
            chunk_bytes = 0;
            if !handover.send(std::mem::replace(&mut chunk, handover.next_chunk())) {
                return;
            }
            compress = handover.store_is_behind();
        }
    }
    if !chunk.is_empty() {
        handover.send(chunk);
    }
}

/// Stores what the reading thread produced, in batches; returns the event-time range stored.
fn store_items(
    store: &mut Store,
    chunks: impl Iterator<Item = Vec<Item>>,
    stored: &mpsc::Sender<Vec<Item>>,
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
    let (mut in_batch, mut batch_bytes) = (0usize, 0usize);
    'chunks: for chunk in chunks {
        for item in &chunk {
            match item {
                Item::Record {
                    record,
                    normalized,
                    packed,
                } => {
                    file.read += 1;
                    batch_bytes += record.bytes.len();
                    match normalized {
                        Ok(normalized) => {
                            let new = NewRecord {
                                event: &normalized.event,
                                format: normalized.format,
                                raw: &record.bytes,
                                origin: &origin,
                            };
                            let inserted = match packed {
                                Some(packed) => batch.insert_packed(&new, packed),
                                None => batch.insert(&new),
                            };
                            let inserted = match inserted {
                                Ok(inserted) => inserted,
                                // Refused by the store (the transaction goes on): quarantined, its
                                // neighbours kept.
                                Err(e) if batch.is_open() => {
                                    let reason =
                                        format!("cannot store ({} bytes): {e}", record.bytes.len());
                                    batch.quarantine(&QuarantineRecord {
                                        origin: &origin,
                                        position: Some(&record.position.to_string()),
                                        reason: &reason,
                                        raw: record
                                            .bytes
                                            .get(..KEPT_BYTES.min(record.bytes.len()))
                                            .unwrap_or_default(),
                                    })?;
                                    continue;
                                }
                                Err(e) => return Err(e.into()),
                            };
                            if let (Inserted::New(_), Some((renderer, max_rows))) =
                                (inserted, &options.splunk)
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
                Item::Unreadable(error) if error.is_fatal() => {
                    file.error = Some(error.to_string());
                    break 'chunks;
                }
                Item::Unreadable(error) if error.raw_bytes().is_empty() && error.is_cut_short() => {
                    file.error = Some(error.to_string());
                }
                Item::Unreadable(error) => {
                    if error.is_cut_short() {
                        // The file is incomplete: its records are kept, the import says so.
                        file.error = Some(error.to_string());
                    }
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
            // A new dictionary reaches the reading thread's packer only once committed: commit
            // early rather than compress the rest of the batch on this thread.
            if in_batch >= BATCH_RECORDS
                || batch_bytes >= BATCH_BYTES
                || batch.stats().dictionaries > 0
            {
                add(file, batch.commit()?);
                batch = store.begin()?;
                quota = None;
                (in_batch, batch_bytes) = (0, 0);
            }
            // Batches take seconds; the progress line moves more often than they commit.
            if progress
                && in_batch % 1_000 == 0
                && last_progress.elapsed() >= Duration::from_millis(500)
            {
                last_progress = Instant::now();
                let rate = file.read as f64 / started.elapsed().as_secs_f64().max(1e-3);
                let _ = write!(
                    std::io::stderr(),
                    "\r{origin}: {} records ({rate:.0}/s)   ",
                    file.read
                );
            }
        }
        // Freed on the reading thread (see `Handover::next_chunk`); gone if it has ended.
        let _ = stored.send(chunk);
    }
    add(file, batch.commit()?);
    if progress && started.elapsed() >= Duration::from_millis(500) {
        crate::output::note(format_args!(""));
    }
    Ok(range)
}
