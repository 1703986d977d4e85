//! Compression of stored raw records and events with zstd dictionaries trained on this store's
//! own records.
//!
//! One record is a few KiB of JSON whose keys and most values repeat from record to record, so
//! compressed alone it barely shrinks (zstd level 1: 1.7× on real CloudTrail), while a dictionary
//! trained on earlier records of the same format gets 7× on the same data. Bytes are what the
//! store pays for: every byte is written to the WAL, checksummed, read back and written again by
//! the checkpoint.
//!
//! - The first [`TRAIN_AT_RECORDS`] records of each (format, part) are stored as they are and
//!   kept as samples; then a dictionary is trained, stored in `zstd_dicts` in the same
//!   transaction as the first record compressed with it, and used for the rest.
//! - A compressed value names its dictionary (`raw_records.dict`, `events.event_dict`); NULL means
//!   stored as is. Readers load dictionaries by id, so any process can read what another wrote.
//! - Frames carry their content size: decompression yields exactly that many bytes or an error.
//! - Dictionaries follow the data: after [`RETRAIN_AFTER`] values compressed with one, a key
//!   samples again (still compressing with the old one) and trains a successor, so the first
//!   records of a store do not decide its ratio for ever.
//! - A dictionary is never changed or deleted while the store lives.
//! - Compressing costs about as much CPU as the I/O it saves, so `import` does it on its reading
//!   thread with a [`Packer`], which uses the dictionaries the store has committed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crosswind_model::{Event, SourceFormat};
use rusqlite::{OptionalExtension, params};
use zstd::bulk::{Compressor, Decompressor};
use zstd::zstd_safe::CParameter;

use crate::{Result, StoreError};

/// Records of one (format, part) kept as samples before a dictionary is trained.
pub(crate) const TRAIN_AT_RECORDS: usize = 2_000;
/// Or this many sample bytes, whichever comes first (large records). About a hundred times the
/// dictionary, as zstd suggests; training takes about a tenth of a second per MiB.
const TRAIN_AT_BYTES: usize = 4 << 20;
/// Records larger than this are not used as samples (one 10 MiB record would dominate).
const MAX_SAMPLE: usize = 64 << 10;
/// zstd's guidance is a dictionary of about a hundredth of the samples.
const DICT_BYTES: usize = 32 << 10;
/// Level 1: with a dictionary it compresses about as well as level 3 on these records, faster.
const LEVEL: i32 = 1;
/// A stored value never decompresses to more than this (a corrupt size field is an error, not
/// an allocation).
const MAX_VALUE: u64 = 1 << 30;
/// Training attempts per (format, part) before giving up and storing it as is.
const MAX_ATTEMPTS: u32 = 3;
/// Values compressed with one dictionary before its key trains a successor on recent records
/// (new fields, apps and accounts arrive; a million values is about a day of a large tenant's
/// sign-ins, and a training costs well under a second).
pub(crate) const RETRAIN_AFTER: u64 = 1_000_000;

/// Which column a dictionary serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Part {
    /// `raw_records.raw`: the record as received.
    Raw,
    /// `events.event`: the normalised event's JSON.
    Event,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Raw => "raw",
            Part::Event => "event",
        }
    }
}

type Key = (SourceFormat, Part);

/// Samples gathered for one key until there are enough to train on.
#[derive(Default)]
struct Samples {
    data: Vec<u8>,
    sizes: Vec<usize>,
    attempts: u32,
    /// Train again only once this many samples are in (after a failed attempt).
    next_at: usize,
}

struct Writer {
    dict_id: i64,
    compressor: Compressor<'static>,
    /// Values compressed with it by this process.
    values: u64,
}

/// A committed dictionary: what it is for, its id, its bytes.
type Dict = (Key, i64, Arc<[u8]>);

/// Dictionaries committed so far, for [`Packer`]s on other threads.
#[derive(Default)]
struct Published {
    /// Bumped after every change, so a packer checks for news with one atomic load.
    generation: AtomicU64,
    dicts: Mutex<Vec<Dict>>,
}

impl Published {
    fn add(&self, key: Key, id: i64, dict: Arc<[u8]>) {
        self.dicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key, id, dict));
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// The store's compression state: a compressor per key that has a dictionary, samples for the
/// keys that have none yet, and decompressors by dictionary id.
pub(crate) struct Codecs {
    writers: HashMap<Key, Writer>,
    published: Arc<Published>,
    samples: HashMap<Key, Samples>,
    /// Dictionaries created in the open transaction: forgotten if it rolls back, published when
    /// it commits.
    uncommitted: Vec<Dict>,
    /// The committed writers that dictionaries of the open transaction replaced: back in use if
    /// it rolls back.
    replaced: HashMap<Key, Writer>,
    readers: RefCell<HashMap<i64, Decompressor<'static>>>,
    train_at: usize,
    retrain_after: u64,
}

/// Why a stored value could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("dictionary {0} is missing from zstd_dicts")]
    MissingDictionary(i64),
    #[error("zstd frame declares no usable content size")]
    BadSize,
    #[error("zstd: {0}")]
    Zstd(#[source] std::io::Error),
}

impl Codecs {
    /// Loads the newest dictionary of each key, so a restarted process goes on compressing
    /// without training again.
    pub(crate) fn load(conn: &rusqlite::Connection) -> Result<Codecs> {
        let mut codecs = Codecs {
            writers: HashMap::new(),
            published: Arc::default(),
            samples: HashMap::new(),
            uncommitted: Vec::new(),
            replaced: HashMap::new(),
            readers: RefCell::new(HashMap::new()),
            train_at: TRAIN_AT_RECORDS,
            retrain_after: RETRAIN_AFTER,
        };
        let mut stmt = conn.prepare(
            "SELECT id, format, part, dict FROM zstd_dicts
             WHERE id IN (SELECT max(id) FROM zstd_dicts GROUP BY format, part)",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (id, format, part): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let part = match part.as_str() {
                "raw" => Part::Raw,
                "event" => Part::Event,
                _ => continue,
            };
            let Some(format) = SourceFormat::parse(&format) else {
                continue;
            };
            let dict = row.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
            codecs
                .writers
                .insert((format, part), Writer::new(id, dict).map_err(codec_err)?);
            codecs.published.add((format, part), id, dict.into());
        }
        Ok(codecs)
    }

    /// A packer for another thread, using the dictionaries committed so far and from now on.
    pub(crate) fn packer(&self) -> Packer {
        Packer {
            published: Arc::clone(&self.published),
            seen: u64::MAX,
            writers: HashMap::new(),
            json: Vec::with_capacity(4096),
        }
    }

    /// Records per key before training, and values per dictionary before retraining (tests
    /// lower them).
    #[cfg(test)]
    pub(crate) fn set_train_at(&mut self, records: usize, retrain_after: u64) {
        self.train_at = records;
        self.retrain_after = retrain_after;
    }

    /// `value` as it is to be stored for `key`: compressed into `out` with the key's dictionary
    /// (returns its id), or `None` when it is stored as is. Trains the key's dictionary (or its
    /// successor), in `tx`, once enough samples are in.
    pub(crate) fn pack(
        &mut self,
        stats: &mut crate::BatchStats,
        tx: &rusqlite::Transaction<'_>,
        key: Key,
        value: &[u8],
        now: i64,
        out: &mut Vec<u8>,
    ) -> Result<Option<i64>> {
        let retrain_after = self.retrain_after;
        let sampling = self
            .writers
            .get(&key)
            .is_none_or(|w| w.values >= retrain_after);
        if sampling && self.sample(tx, key, value, now)? {
            stats.dictionaries += 1;
        }
        let Some(writer) = self.writers.get_mut(&key) else {
            return Ok(None);
        };
        writer.values += 1;
        writer.compress_into(value, out)?;
        Ok(Some(writer.dict_id))
    }

    /// Whether `key` has a dictionary that has compressed enough values to want a successor.
    pub(crate) fn due(&self, key: Key) -> bool {
        self.writers
            .get(&key)
            .is_some_and(|w| w.values >= self.retrain_after)
    }

    /// A value a [`Packer`] compressed for `key`: counted like one compressed here, and `plain`
    /// (its uncompressed form, given when [`Codecs::due`]) kept as a sample for the successor.
    pub(crate) fn observe_packed(
        &mut self,
        stats: &mut crate::BatchStats,
        tx: &rusqlite::Transaction<'_>,
        key: Key,
        plain: Option<&[u8]>,
        now: i64,
    ) -> Result<()> {
        let due = self.due(key);
        if let Some(writer) = self.writers.get_mut(&key) {
            writer.values += 1;
        }
        if let Some(plain) = plain.filter(|_| due)
            && self.sample(tx, key, plain, now)?
        {
            stats.dictionaries += 1;
        }
        Ok(())
    }

    /// Keeps `value` as a sample; trains when there are enough. Returns whether it trained one.
    fn sample(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        key: Key,
        value: &[u8],
        now: i64,
    ) -> Result<bool> {
        let train_at = self.train_at;
        let samples = self.samples.entry(key).or_insert_with(|| Samples {
            next_at: train_at,
            ..Samples::default()
        });
        if samples.attempts >= MAX_ATTEMPTS {
            return Ok(false);
        }
        if value.len() <= MAX_SAMPLE {
            samples.data.extend_from_slice(value);
            samples.sizes.push(value.len());
        }
        if samples.sizes.len() < samples.next_at && samples.data.len() < TRAIN_AT_BYTES {
            return Ok(false);
        }
        samples.attempts += 1;
        let dict = match zstd::dict::from_continuous(&samples.data, &samples.sizes, DICT_BYTES) {
            Ok(dict) => dict,
            // Too few or too uniform samples: try again with twice as many, then give up.
            Err(_) => {
                samples.next_at = samples.sizes.len() * 2;
                if samples.attempts >= MAX_ATTEMPTS {
                    *samples = Samples {
                        attempts: MAX_ATTEMPTS,
                        ..Samples::default()
                    };
                }
                return Ok(false);
            }
        };
        tx.prepare_cached(
            "INSERT INTO zstd_dicts (format, part, created_at, samples, dict)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            key.0.as_str(),
            key.1.as_str(),
            now,
            samples.sizes.len() as i64,
            dict
        ])?;
        let id = tx.last_insert_rowid();
        self.samples.remove(&key);
        let writer = Writer::new(id, &dict).map_err(codec_err)?;
        if let Some(old) = self.writers.insert(key, writer) {
            // Keep the one from before this transaction, should it roll back.
            self.replaced.entry(key).or_insert(old);
        }
        self.uncommitted.push((key, id, dict.into()));
        Ok(true)
    }

    /// The open transaction committed: its dictionaries are now stored, and packers may use them.
    pub(crate) fn committed(&mut self) {
        for (key, id, dict) in self.uncommitted.drain(..) {
            self.published.add(key, id, dict);
        }
        self.replaced.clear();
    }

    /// The open transaction rolled back: its dictionaries are gone, so stop using them and go
    /// back to the committed ones they replaced. (Their samples are gone too; the key starts
    /// sampling again.)
    pub(crate) fn rolled_back(&mut self) {
        for (key, _, _) in self.uncommitted.drain(..) {
            self.writers.remove(&key);
        }
        for (key, old) in self.replaced.drain() {
            self.writers.insert(key, old);
        }
    }

    /// The stored `value`, decompressed with dictionary `dict` when it names one, into `out`.
    /// Returns `value` itself when it was stored as is.
    pub(crate) fn unpack<'v>(
        &self,
        conn: &rusqlite::Connection,
        dict: Option<i64>,
        value: &'v [u8],
        out: &'v mut Vec<u8>,
    ) -> Result<&'v [u8], UnpackError> {
        let Some(dict) = dict else {
            return Ok(value);
        };
        let mut readers = self.readers.borrow_mut();
        let reader = match readers.entry(dict) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(decompressor(&dictionary(conn, dict)?)?)
            }
        };
        decompress(reader, value, out)?;
        Ok(out)
    }
}

/// The bytes of dictionary `id`.
pub(crate) fn dictionary(conn: &rusqlite::Connection, id: i64) -> Result<Vec<u8>, UnpackError> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT dict FROM zstd_dicts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(bytes.ok_or(CodecError::MissingDictionary(id))?)
}

/// A decompressor for values made with dictionary `dict`.
pub(crate) fn decompressor(dict: &[u8]) -> Result<Decompressor<'static>, CodecError> {
    Decompressor::with_dictionary(dict).map_err(CodecError::Zstd)
}

/// Decompresses one stored frame into `out`, which then holds exactly the size the frame
/// declares (or it is an error).
pub(crate) fn decompress(
    reader: &mut Decompressor<'static>,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let size = match zstd::zstd_safe::get_frame_content_size(value) {
        Ok(Some(size)) if size <= MAX_VALUE => size as usize,
        _ => return Err(CodecError::BadSize),
    };
    out.clear();
    out.reserve(size);
    let n = reader
        .decompress_to_buffer(value, out)
        .map_err(CodecError::Zstd)?;
    if n != size {
        return Err(CodecError::BadSize);
    }
    Ok(())
}

/// A failure reading a stored value: the database, or the value itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnpackError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A record's event JSON and raw bytes as they will be stored: compressed when the store had
/// committed a dictionary for them, as is otherwise (then the batch samples them for training).
#[derive(Debug, Default)]
pub struct PackedRecord {
    /// The event's JSON, compressed with `event_dict` when that is set.
    pub(crate) event: Vec<u8>,
    pub(crate) event_dict: Option<i64>,
    /// The raw record compressed with `raw_dict`; empty when that is unset (the batch takes the
    /// record's own bytes).
    pub(crate) raw: Vec<u8>,
    pub(crate) raw_dict: Option<i64>,
}

/// Serialises and compresses records off the writer's thread ([`crate::Store::packer`]). Uses
/// only dictionaries already committed, so a packed value never names one that a crash or a
/// rollback could take away.
pub struct Packer {
    published: Arc<Published>,
    /// The generation of `published` last looked at.
    seen: u64,
    writers: HashMap<Key, Writer>,
    /// Reused serialisation buffer.
    json: Vec<u8>,
}

impl Packer {
    /// `event` as JSON and `raw`, each compressed if `compress` is set and a dictionary for
    /// `format` is committed. Left uncompressed, the batch compresses them: a caller balancing
    /// two threads decides where that work goes.
    pub fn pack(
        &mut self,
        event: &Event,
        format: SourceFormat,
        raw: &[u8],
        compress: bool,
    ) -> Result<PackedRecord> {
        self.refresh()?;
        self.json.clear();
        serde_json::to_writer(&mut self.json, event).map_err(StoreError::Serialize)?;
        let writers = &mut self.writers;
        let (event, event_dict) = match writers.get_mut(&(format, Part::Event)) {
            Some(writer) if compress => (compress_with(writer, &self.json)?, Some(writer.dict_id)),
            _ => (self.json.clone(), None),
        };
        let (raw, raw_dict) = match writers.get_mut(&(format, Part::Raw)) {
            Some(writer) if compress => (compress_with(writer, raw)?, Some(writer.dict_id)),
            _ => (Vec::new(), None),
        };
        Ok(PackedRecord {
            event,
            event_dict,
            raw,
            raw_dict,
        })
    }

    /// Picks up dictionaries committed since the last look.
    fn refresh(&mut self) -> Result<()> {
        let generation = self.published.generation.load(Ordering::Acquire);
        if generation == self.seen {
            return Ok(());
        }
        let dicts = self
            .published
            .dicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (key, id, dict) in dicts {
            if self.writers.get(&key).is_none_or(|w| w.dict_id < id) {
                self.writers
                    .insert(key, Writer::new(id, &dict).map_err(codec_err)?);
            }
        }
        self.seen = generation;
        Ok(())
    }
}

fn compress_with(writer: &mut Writer, value: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    writer.compress_into(value, &mut out)?;
    Ok(out)
}

impl Writer {
    /// `value` compressed into `out` (replacing what it held).
    fn compress_into(&mut self, value: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(value.len()));
        self.compressor
            .compress_to_buffer(value, out)
            .map_err(codec_err)?;
        Ok(())
    }

    fn new(dict_id: i64, dict: &[u8]) -> std::io::Result<Writer> {
        let mut compressor = Compressor::with_dictionary(LEVEL, dict)?;
        // The reader checks the decompressed length against it.
        compressor.set_parameter(CParameter::ContentSizeFlag(true))?;
        // No frame checksum: it cost 12% of compression time, and a plain value has none either
        // (SQLite keeps no checksum of page content). The id is in the row: four more bytes.
        compressor.set_parameter(CParameter::ChecksumFlag(false))?;
        compressor.set_parameter(CParameter::DictIdFlag(false))?;
        // Matches of at least 7 bytes: JSON keys and values are longer than that, and the match
        // finder does less work (5-9% faster on Graph and CloudTrail records, ratio unchanged).
        compressor.set_parameter(CParameter::MinMatch(7))?;
        Ok(Writer {
            dict_id,
            compressor,
            values: 0,
        })
    }
}

fn codec_err(e: std::io::Error) -> StoreError {
    StoreError::Codec(CodecError::Zstd(e))
}

#[cfg(test)]
pub(crate) mod tests;
