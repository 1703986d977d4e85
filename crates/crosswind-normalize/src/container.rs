//! Splitting an input stream into raw records, one at a time.
//!
//! Accepted inputs (optionally gzip-compressed, detected by the `1f 8b` magic bytes), any
//! number of them back to back, with or without whitespace between them (`zcat *.json.gz` runs
//! CloudTrail files together: they end with `}]}` and no newline):
//! - NDJSON: one record per line (a line may also hold an envelope or an array, which is
//!   expanded into its elements);
//! - JSON documents: a top-level array, a Graph page `{"@odata.context":…,"value":[…]}`, a
//!   CloudTrail file `{"Records":[…]}`, a diagnostic envelope `{"records":[…]}`, or a single
//!   record object (pretty-printed or not).
//!
//! Each [`RawRecord`] carries the record's exact bytes and where it was. Bad input never
//! panics and never loses the good records around it: a malformed line is one `Err` item (or,
//! when it is braced like one object, a record its parser rejects) and reading goes on; input
//! that ends inside a record is [`ContainerError::CutShort`]; a read error (a truncated `.gz`)
//! comes after every record read before it and ends the stream.
//!
//! Memory is bounded by the record limit ([`RecordReader::with_max_record_bytes`]), whatever
//! the input: see [`RecordReader`].

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;

use flate2::read::MultiGzDecoder;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::fields::json_error_text;

// === impl Position ===

/// Where a record was: its line (1-based) and, inside an array or envelope, its element index
/// (0-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Position {
    pub line: Option<u64>,
    pub index: Option<u64>,
}

impl Position {
    pub fn line(line: u64) -> Self {
        Position {
            line: Some(line),
            index: None,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.index) {
            (Some(l), Some(i)) => write!(f, "line {l} element {i}"),
            (Some(l), None) => write!(f, "line {l}"),
            (None, Some(i)) => write!(f, "element {i}"),
            (None, None) => f.write_str("input"),
        }
    }
}

/// One record's exact bytes (valid UTF-8) and its position in the input. Elements of arrays and
/// envelopes are valid JSON; an NDJSON line that looks like one object is passed on without a
/// validating pass, so its parser (`normalize`) is what rejects it if it is not JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    pub bytes: Vec<u8>,
    pub position: Position,
}

impl RawRecord {
    /// The record as text (the reader only yields valid UTF-8).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

/// A record with its mapping, as [`RecordReader::next_normalized`] yields it.
pub type NormalizedRecord = (RawRecord, Result<crate::Normalized, crate::Rejection>);

/// Why part of the input could not be split into records.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// A line (or the document) is not valid JSON.
    #[error("{position}: invalid json {reason}")]
    InvalidJson {
        position: Position,
        reason: String,
        /// The bytes that could not be read as records, for quarantine.
        raw: Vec<u8>,
    },
    /// A line is not valid UTF-8.
    #[error("line {line}: invalid utf-8 at byte {offset}")]
    InvalidUtf8 {
        line: u64,
        offset: usize,
        raw: Vec<u8>,
    },
    /// A line holds a JSON string, number, boolean or null.
    #[error("{position}: not a json object or array (found {found})")]
    NotARecord {
        position: Position,
        found: &'static str,
        raw: Vec<u8>,
    },
    /// A record, line or document that is not an array of records is longer than the limit;
    /// `raw` holds its first bytes.
    #[error("{position}: a record of {length} bytes is over the {max}-byte limit")]
    TooLarge {
        position: Position,
        length: u64,
        max: usize,
        raw: Vec<u8>,
    },
    /// The input ended inside a record or document (a file cut short); `raw` is what was
    /// left unfinished. The records before it are kept.
    #[error("{position}: the input ends inside a record ({reason})")]
    CutShort {
        position: Position,
        reason: String,
        raw: Vec<u8>,
    },
    /// The input ended in the middle of a record or compressed block (truncated `.gz`);
    /// `line` is the line being read.
    #[error("input is truncated at line {line}: {error}")]
    Truncated { line: u64, error: io::Error },
    /// Reading failed; `line` is the line being read.
    #[error("read failed at line {line}: {error}")]
    Io { line: u64, error: io::Error },
}

impl ContainerError {
    /// The line the problem is on (or after), when known.
    pub fn line(&self) -> Option<u64> {
        match self {
            ContainerError::InvalidJson { position, .. }
            | ContainerError::NotARecord { position, .. }
            | ContainerError::TooLarge { position, .. }
            | ContainerError::CutShort { position, .. } => position.line,
            ContainerError::InvalidUtf8 { line, .. }
            | ContainerError::Truncated { line, .. }
            | ContainerError::Io { line, .. } => Some(*line),
        }
    }

    /// The input bytes this error is about (empty for read failures), kept in quarantine so
    /// nothing read is dropped without a trace.
    pub fn raw_bytes(&self) -> &[u8] {
        match self {
            ContainerError::InvalidJson { raw, .. }
            | ContainerError::InvalidUtf8 { raw, .. }
            | ContainerError::NotARecord { raw, .. }
            | ContainerError::TooLarge { raw, .. }
            | ContainerError::CutShort { raw, .. } => raw,
            ContainerError::Truncated { .. } | ContainerError::Io { .. } => &[],
        }
    }

    /// Whether reading stops after this error (the rest of the input is unreadable).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ContainerError::Truncated { .. } | ContainerError::Io { .. }
        )
    }

    /// Whether the input was cut short (a truncated file): the records before are kept, and
    /// the import says the file is incomplete.
    pub fn is_cut_short(&self) -> bool {
        matches!(
            self,
            ContainerError::CutShort { .. } | ContainerError::Truncated { .. }
        )
    }

    /// The same problem, met because the input ended.
    fn into_cut_short(self) -> Self {
        let (position, reason, raw) = match self {
            ContainerError::InvalidJson {
                position,
                reason,
                raw,
            } => (position, format!("invalid json {reason}"), raw),
            ContainerError::InvalidUtf8 { line, offset, raw } => (
                Position::line(line),
                format!("invalid utf-8 at byte {offset}"),
                raw,
            ),
            ContainerError::NotARecord {
                position,
                found,
                raw,
            } => (position, format!("found {found}"), raw),
            ContainerError::TooLarge {
                position,
                length,
                max,
                raw,
            } => (
                position,
                format!("at least {length} bytes, over the {max}-byte limit"),
                raw,
            ),
            other => return other,
        };
        ContainerError::CutShort {
            position,
            reason,
            raw,
        }
    }

    fn from_io(line: u64, error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::InvalidData => ContainerError::Truncated { line, error },
            _ => ContainerError::Io { line, error },
        }
    }
}

// === impl MaybeGz ===

type Prefixed<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// A reader that is transparently gunzipped when its first bytes are the gzip magic.
pub enum MaybeGz<R: Read> {
    Plain(BufReader<Prefixed<R>>),
    Gzip(BufReader<MultiGzDecoder<Prefixed<R>>>),
}

impl<R: Read> MaybeGz<R> {
    pub fn is_gzip(&self) -> bool {
        matches!(self, MaybeGz::Gzip(_))
    }
}

/// Wraps `reader`, decompressing it (all concatenated gzip members) when it starts with
/// `1f 8b`. Reads the first two bytes only.
pub fn open_maybe_gz<R: Read>(mut reader: R) -> io::Result<MaybeGz<R>> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let prefixed = io::Cursor::new(head[..n].to_vec()).chain(reader);
    const CAPACITY: usize = 256 * 1024;
    Ok(if n == 2 && head == [0x1f, 0x8b] {
        MaybeGz::Gzip(BufReader::with_capacity(
            CAPACITY,
            MultiGzDecoder::new(prefixed),
        ))
    } else {
        MaybeGz::Plain(BufReader::with_capacity(CAPACITY, prefixed))
    })
}

impl<R: Read> Read for MaybeGz<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeGz::Plain(r) => r.read(buf),
            MaybeGz::Gzip(r) => r.read(buf),
        }
    }
}

impl<R: Read> BufRead for MaybeGz<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            MaybeGz::Plain(r) => r.fill_buf(),
            MaybeGz::Gzip(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match self {
            MaybeGz::Plain(r) => r.consume(amt),
            MaybeGz::Gzip(r) => r.consume(amt),
        }
    }
}

// === impl Source ===

/// The input, with bytes put back in front of it: a unit over the size limit is read again
/// record by record, and the lines after a broken first line are read again as NDJSON.
struct Source<R> {
    back: Vec<u8>,
    back_pos: usize,
    inner: R,
}

impl<R: BufRead> Source<R> {
    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.back_pos < self.back.len() {
            return Ok(self.back.get(self.back_pos..).unwrap_or_default());
        }
        loop {
            match self.inner.fill_buf() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
                // Asked again: returning this borrow from inside the loop does not compile.
                Ok(_) => break,
            }
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.back_pos < self.back.len() {
            self.back_pos += n;
            if self.back_pos >= self.back.len() {
                self.back = Vec::new();
                self.back_pos = 0;
            }
        } else {
            self.inner.consume(n);
        }
    }

    /// Puts `bytes` in front of what is left to read.
    fn put_back(&mut self, mut bytes: Vec<u8>) {
        bytes.extend_from_slice(self.back.get(self.back_pos..).unwrap_or_default());
        self.back = bytes;
        self.back_pos = 0;
    }
}

// === impl RecordReader ===

/// The default largest record (or line, or document that is not an array of records) read:
/// anything longer is quarantined with its first bytes and its length.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 << 20;
/// How many leading bytes of a record over the limit are kept for quarantine.
pub const KEPT_BYTES: usize = 4096;

/// Yields the records of an input one at a time (see the module docs).
///
/// Memory stays within a few times the record limit whatever the input: whitespace between
/// records is skipped without being kept, a document over the limit that is an array of records
/// (or an envelope of one) is read again record by record, and a record, line or other document
/// over the limit is skipped to its end, keeping its first [`KEPT_BYTES`].
pub struct RecordReader<R> {
    source: Source<R>,
    max: usize,
    /// Line of the next byte to read (1-based).
    line: u64,
    mode: Mode,
    batch: Option<Batch>,
    queue: std::collections::VecDeque<Result<RawRecord, ContainerError>>,
    unit: Option<Unit>,
    bom_checked: bool,
    /// Lines [`RecordReader::next_normalized`] parsed once (its fast path).
    plain_lines: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Deciding between NDJSON and documents spanning lines from the first unit.
    Start,
    /// NDJSON: a unit still open at the end of its line is broken.
    Lines,
    /// Documents: newlines are whitespace.
    Document,
    Done,
}

/// The array or object being read.
struct Unit {
    scan: Scanner,
    first_line: u64,
    buf: Vec<u8>,
    /// Unit offset of `buf[0]`.
    buf_base: u64,
    state: UnitState,
    /// A document spanning lines, in NDJSON: newlines inside it are whitespace.
    spans_lines: bool,
}

enum UnitState {
    /// Held whole in `buf` (up to the limit).
    Whole,
    /// Start mode: the first line ended inside the unit, at `buf[..line1_end]`; the next
    /// non-blank line decides between a broken NDJSON line and a document.
    SecondLine { line1_end: usize },
    /// Over the limit: read again, its array's records handed out one at a time and the
    /// rest skipped. `head` is the unit's first bytes, `index` the next record's.
    Streaming {
        head: Vec<u8>,
        index: u64,
        /// First bytes of the record in progress, once it is over the limit.
        oversized: Option<Vec<u8>>,
    },
}

impl<R: Read> RecordReader<MaybeGz<R>> {
    /// A reader over `reader`, gunzipping it when it is gzip.
    pub fn from_read(reader: R) -> io::Result<Self> {
        Ok(RecordReader::new(open_maybe_gz(reader)?))
    }
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R) -> Self {
        RecordReader {
            source: Source {
                back: Vec::new(),
                back_pos: 0,
                inner: input,
            },
            max: DEFAULT_MAX_RECORD_BYTES,
            line: 1,
            mode: Mode::Start,
            batch: None,
            queue: std::collections::VecDeque::new(),
            unit: None,
            bom_checked: false,
            plain_lines: 0,
        }
    }

    /// Sets the largest record, line or document kept whole (at least 2 bytes).
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max = max.max(2);
        self
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.source.inner
    }

    /// The next record with its mapping ([`crate::normalize`]), or what could not be read: the
    /// same items as this iterator followed by `normalize`. Once the input is known to be
    /// NDJSON, a line that holds one plain object is parsed once, for both: its end is found by
    /// a search for the newline instead of the scan, and the object's parse (which validates
    /// it) shows that it is one record. Any other line, or one the parse rejects, takes the
    /// scan as before, so records, positions and errors do not change.
    pub fn next_normalized(
        &mut self,
        hint: Option<crate::FormatHint>,
    ) -> Option<Result<NormalizedRecord, ContainerError>> {
        if let Some(done) = self.plain_line(hint) {
            return Some(Ok(done));
        }
        self.next().map(|item| {
            item.map(|record| {
                let normalized = crate::normalize(&record.bytes, hint);
                (record, normalized)
            })
        })
    }

    /// The fast path of [`RecordReader::next_normalized`]: the next line, when it is one plain
    /// object held whole in the read buffer and within the limit; `None` leaves the line to
    /// the scan.
    fn plain_line(&mut self, hint: Option<crate::FormatHint>) -> Option<NormalizedRecord> {
        if self.mode != Mode::Lines || self.unit.is_some() || !self.queue.is_empty() {
            return None;
        }
        match &self.batch {
            Some(batch) if !batch.is_done() => return None,
            Some(_) => self.batch = None,
            None => {}
        }
        match self.skip_ws() {
            Ok(Some(b'{')) => {}
            Ok(_) => return None,
            Err(e) => {
                self.push(Err(ContainerError::from_io(self.line, e)));
                self.mode = Mode::Done;
                return None;
            }
        }
        let max = self.max;
        let chunk = self.source.fill().ok()?;
        let end = memchr::memchr(b'\n', chunk).filter(|&end| end <= max)?;
        let line = chunk.get(..end)?;
        let crate::fields::Parsed::Object(obj) = crate::fields::Obj::parse(line).ok()? else {
            return None;
        };
        if !obj.is_plain_record() {
            return None;
        }
        // What the scan keeps of the line: from its `{` (whitespace before it was skipped) to
        // its last non-blank byte.
        let body = line.get(..line.iter().rposition(|c| !is_json_ws(c))? + 1)?;
        let normalized = crate::normalize_object(body, &obj, hint);
        let record = RawRecord {
            bytes: body.to_vec(),
            position: Position::line(self.line),
        };
        self.source.consume(end + 1);
        self.line += 1;
        self.plain_lines += 1;
        Some((record, normalized))
    }

    /// How many lines [`RecordReader::next_normalized`] parsed once.
    pub fn plain_lines(&self) -> u64 {
        self.plain_lines
    }

    fn push(&mut self, item: Result<RawRecord, ContainerError>) {
        self.queue.push_back(item);
    }

    /// Drops a leading byte order mark.
    fn skip_bom(&mut self) -> io::Result<()> {
        self.bom_checked = true;
        let mut head = Vec::with_capacity(BOM.len());
        while head.len() < BOM.len() {
            let chunk = self.source.fill()?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len().min(BOM.len() - head.len());
            head.extend_from_slice(chunk.get(..n).unwrap_or_default());
            self.source.consume(n);
            if !BOM.starts_with(&head) {
                break;
            }
        }
        if head != BOM {
            self.source.put_back(head);
        }
        Ok(())
    }

    /// Skips whitespace (counting lines); the next byte, `None` at the end of the input.
    fn skip_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            let chunk = self.source.fill()?;
            if chunk.is_empty() {
                return Ok(None);
            }
            let n = chunk.iter().position(|c| !is_json_ws(c));
            let skipped = chunk.get(..n.unwrap_or(chunk.len())).unwrap_or_default();
            self.line += memchr::memchr_iter(b'\n', skipped).count() as u64;
            let next = n.and_then(|n| chunk.get(n).copied());
            let len = skipped.len();
            self.source.consume(len);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Reads on until something is ready or the input ends.
    fn step(&mut self) {
        if self.unit.is_some() {
            self.read_unit();
            return;
        }
        if !self.bom_checked
            && let Err(e) = self.skip_bom()
        {
            self.push(Err(ContainerError::from_io(self.line, e)));
            self.mode = Mode::Done;
            return;
        }
        match self.skip_ws() {
            Err(e) => {
                self.push(Err(ContainerError::from_io(self.line, e)));
                self.mode = Mode::Done;
            }
            Ok(None) => self.mode = Mode::Done,
            Ok(Some(b @ (b'{' | b'['))) => {
                self.unit = Some(Unit {
                    scan: Scanner::new(b, false),
                    first_line: self.line,
                    buf: Vec::new(),
                    buf_base: 0,
                    state: UnitState::Whole,
                    spans_lines: false,
                });
                self.read_unit();
            }
            Ok(Some(_)) => {
                if self.mode == Mode::Start {
                    self.mode = Mode::Lines;
                }
                self.junk_line();
            }
        }
    }

    /// Reads text that is not an object or array up to the end of its line: it is reported
    /// as what it is (a scalar, invalid JSON, invalid UTF-8).
    fn junk_line(&mut self) {
        let line = self.line;
        let (mut kept, mut length) = (Vec::new(), 0u64);
        let mut error = None;
        loop {
            let chunk = match self.source.fill() {
                Ok(c) => c,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            if chunk.is_empty() {
                break;
            }
            let end = memchr::memchr(b'\n', chunk);
            let part = chunk.get(..end.unwrap_or(chunk.len())).unwrap_or_default();
            let room = (self.max + 1).saturating_sub(kept.len()).min(part.len());
            kept.extend_from_slice(part.get(..room).unwrap_or_default());
            length += part.len() as u64;
            let n = part.len() + usize::from(end.is_some());
            self.source.consume(n);
            if end.is_some() {
                self.line += 1;
                break;
            }
        }
        if length > self.max as u64 {
            kept.truncate(KEPT_BYTES);
            self.push(Err(ContainerError::TooLarge {
                position: Position::line(line),
                length,
                max: self.max,
                raw: kept,
            }));
        } else {
            self.batch = Some(Batch::scan_unit(kept, line, false, false));
        }
        if let Some(e) = error {
            self.mode = Mode::Done;
            self.push(Err(ContainerError::from_io(self.line, e)));
        }
    }

    /// Reads the current unit on until it ends, a record of it is ready, or its line breaks.
    fn read_unit(&mut self) {
        loop {
            let Some(unit) = self.unit.as_mut() else {
                return;
            };
            let streaming = matches!(unit.state, UnitState::Streaming { .. });
            let line_bound = !unit.spans_lines
                && match self.mode {
                    Mode::Lines => true,
                    Mode::Start => !streaming,
                    Mode::Document | Mode::Done => false,
                };
            let chunk = match self.source.fill() {
                Ok(c) => c,
                Err(e) => {
                    self.end_unit_early(Some(e));
                    return;
                }
            };
            if chunk.is_empty() {
                self.end_unit_early(None);
                return;
            }
            let (n, ev) = unit.scan.feed(chunk, &mut self.line, line_bound);
            let taken = chunk.get(..n).unwrap_or_default();
            match &mut unit.state {
                UnitState::Whole | UnitState::SecondLine { .. } => {
                    unit.buf.extend_from_slice(taken)
                }
                UnitState::Streaming { oversized, .. } => {
                    if oversized.is_none() {
                        unit.buf.extend_from_slice(taken);
                    } else {
                        unit.buf_base = unit.scan.pos;
                    }
                }
            }
            self.source.consume(n);
            if self.check_size() {
                // Over the limit: read again from its start, record by record.
                continue;
            }
            match ev {
                Ev::More => {}
                Ev::End => {
                    self.end_unit();
                    return;
                }
                Ev::Newline => {
                    if self.newline_in_unit() {
                        return;
                    }
                    continue;
                }
                Ev::Elem => {
                    if self.element_ended() {
                        return;
                    }
                }
            }
        }
    }

    /// Keeps a unit within the limit: a whole one over it is read again record by record
    /// (`true`: it starts again); a record over it is skipped to its end.
    fn check_size(&mut self) -> bool {
        let max = self.max as u64;
        let Some(unit) = self.unit.as_mut() else {
            return false;
        };
        match &mut unit.state {
            UnitState::Whole | UnitState::SecondLine { .. } => {
                if unit.buf.len() as u64 <= max {
                    return false;
                }
                // Read it again from its start, handing out its records one at a time.
                let buf = std::mem::take(&mut unit.buf);
                let head = buf
                    .get(..KEPT_BYTES.min(buf.len()))
                    .unwrap_or_default()
                    .to_vec();
                self.line = unit.first_line;
                if matches!(unit.state, UnitState::SecondLine { .. }) {
                    unit.spans_lines = true;
                }
                unit.scan = Scanner::new(unit.scan.top, true);
                unit.buf_base = 0;
                unit.state = UnitState::Streaming {
                    head,
                    index: 0,
                    oversized: None,
                };
                if self.mode == Mode::Start {
                    self.mode = Mode::Document;
                }
                self.source.put_back(buf);
                true
            }
            UnitState::Streaming { oversized, .. } => {
                match unit.scan.elem {
                    Some((start, _)) if oversized.is_none() && unit.scan.pos - start > max => {
                        let from = (start - unit.buf_base) as usize;
                        let kept = unit.buf.get(from..).unwrap_or_default();
                        *oversized = Some(
                            kept.get(..KEPT_BYTES.min(kept.len()))
                                .unwrap_or_default()
                                .to_vec(),
                        );
                        unit.buf = Vec::new();
                        unit.buf_base = unit.scan.pos;
                    }
                    None if unit.buf.len() > KEPT_BYTES && unit.scan.ended.is_none() => {
                        // Between records: nothing here is kept.
                        unit.buf.clear();
                        unit.buf_base = unit.scan.pos;
                    }
                    _ => {}
                }
                false
            }
        }
    }

    /// A record of a streamed unit ended. `true` when it was handed out.
    fn element_ended(&mut self) -> bool {
        let Some(unit) = self.unit.as_mut() else {
            return false;
        };
        let UnitState::Streaming {
            index, oversized, ..
        } = &mut unit.state
        else {
            return false;
        };
        let Some((range, line)) = unit.scan.ended.take() else {
            return false;
        };
        let position = Position {
            line: Some(line),
            index: Some(*index),
        };
        *index += 1;
        let length = range.end - range.start;
        let from = (range.start.saturating_sub(unit.buf_base)) as usize;
        let to = (range.end.saturating_sub(unit.buf_base)) as usize;
        let item = match oversized.take() {
            Some(raw) => Err(ContainerError::TooLarge {
                position,
                length,
                max: self.max,
                raw,
            }),
            // Over the limit, though it came in one chunk.
            None if length > self.max as u64 => {
                let kept = unit.buf.get(from..to).unwrap_or_default();
                Err(ContainerError::TooLarge {
                    position,
                    length,
                    max: self.max,
                    raw: kept
                        .get(..KEPT_BYTES.min(kept.len()))
                        .unwrap_or_default()
                        .to_vec(),
                })
            }
            None => {
                let bytes = unit.buf.get(from..to).unwrap_or_default().to_vec();
                record_or_utf8_error(bytes, position)
            }
        };
        unit.buf.clear();
        unit.buf_base = unit.scan.pos;
        self.push(item);
        true
    }

    /// A newline inside a unit when lines matter. `true` when something is ready.
    fn newline_in_unit(&mut self) -> bool {
        let Some(unit) = self.unit.as_mut() else {
            return false;
        };
        if self.mode != Mode::Document && !unit.spans_lines {
            match unit.state {
                UnitState::Whole => {
                    let t = trim(&unit.buf);
                    let incomplete =
                        std::str::from_utf8(t).is_ok() && matches!(scan(t), Err(e) if e.is_eof());
                    if incomplete {
                        // First line: inside an array (of records, most likely) the next line
                        // is part of the document; inside the top object, it may be the next
                        // NDJSON line. After NDJSON lines, the next line decides.
                        if self.mode == Mode::Start
                            && (unit.scan.top == b'[' || unit.scan.depth > 1)
                        {
                            self.spans_lines();
                        } else if let Some(unit) = self.unit.as_mut() {
                            unit.state = UnitState::SecondLine {
                                line1_end: unit.buf.len(),
                            };
                        }
                        self.take_newline();
                        return false;
                    }
                    // A broken line: NDJSON.
                    if self.mode == Mode::Start {
                        self.mode = Mode::Lines;
                    }
                }
                UnitState::SecondLine { line1_end } => {
                    let line2 = unit.buf.get(line1_end..).unwrap_or_default();
                    if trim(line2).is_empty() {
                        self.take_newline();
                        return false;
                    }
                    if self.second_line_is_ndjson() {
                        return true;
                    }
                    self.spans_lines();
                    self.take_newline();
                    return false;
                }
                UnitState::Streaming { .. } => {}
            }
        }
        // The line ends inside the unit: what it holds is reported, reading goes on at the
        // next line.
        let Some(unit) = self.unit.take() else {
            return false;
        };
        self.take_newline();
        match unit.state {
            UnitState::Whole | UnitState::SecondLine { .. } => {
                self.batch = Some(Batch::scan_unit(unit.buf, unit.first_line, false, false));
            }
            UnitState::Streaming {
                head,
                index,
                oversized,
            } => {
                let item = Self::unfinished(
                    &unit.scan,
                    unit.buf,
                    unit.buf_base,
                    head,
                    index,
                    oversized,
                    self.max,
                    "the line ends inside it",
                );
                self.push(Err(item));
            }
        }
        true
    }

    /// The unit is a document spanning lines: newlines inside it are whitespace (and, when it
    /// is the first, so they are in the rest of the input).
    fn spans_lines(&mut self) {
        if let Some(unit) = self.unit.as_mut() {
            unit.spans_lines = true;
            if let UnitState::SecondLine { .. } = unit.state {
                unit.state = UnitState::Whole;
            }
        }
        if self.mode == Mode::Start {
            self.mode = Mode::Document;
        }
    }

    /// Consumes the newline a [`Ev::Newline`] stopped at.
    fn take_newline(&mut self) {
        if let Some(unit) = self.unit.as_mut() {
            unit.scan.pos += 1;
            if matches!(unit.state, UnitState::Whole | UnitState::SecondLine { .. }) {
                unit.buf.push(b'\n');
            }
        }
        self.source.consume(1);
        self.line += 1;
    }

    /// The second non-blank line of a unit its first line left open: when it is a whole object
    /// on its own (or, after NDJSON lines, does not go on as valid JSON), the first line was a
    /// broken NDJSON line. `true` when so (that line is reported and the rest read again).
    fn second_line_is_ndjson(&mut self) -> bool {
        let Some(unit) = self.unit.as_mut() else {
            return false;
        };
        let UnitState::SecondLine { line1_end } = unit.state else {
            return false;
        };
        let line2 = trim(unit.buf.get(line1_end..).unwrap_or_default());
        let whole_object = line2.first() == Some(&b'{')
            && std::str::from_utf8(line2).is_ok()
            && scan(line2).is_ok();
        // After NDJSON lines, a document spanning lines must go on as valid JSON.
        let breaks_off =
            self.mode == Mode::Lines && !matches!(scan(trim(&unit.buf)), Err(e) if e.is_eof());
        if !whole_object && !breaks_off {
            return false;
        }
        let Some(mut unit) = self.unit.take() else {
            return false;
        };
        let rest = unit.buf.split_off(line1_end);
        self.batch = Some(Batch::scan_unit(unit.buf, unit.first_line, false, false));
        self.line = unit.first_line;
        self.source.put_back(rest);
        self.mode = Mode::Lines;
        true
    }

    /// The unit is complete.
    fn end_unit(&mut self) {
        let Some(unit) = self.unit.take() else {
            return;
        };
        let spans_lines = unit.spans_lines || matches!(unit.state, UnitState::SecondLine { .. });
        if self.mode == Mode::Start {
            self.mode = if spans_lines {
                Mode::Document
            } else {
                Mode::Lines
            };
        }
        let multiline = self.mode == Mode::Document || spans_lines;
        match unit.state {
            UnitState::Whole | UnitState::SecondLine { .. } => {
                let plain = unit.scan.top == b'{' && !unit.scan.not_plain;
                self.batch = Some(Batch::scan_unit(
                    unit.buf,
                    unit.first_line,
                    multiline,
                    plain && !multiline,
                ));
            }
            UnitState::Streaming { head, index, .. } => {
                if index == 0 && !unit.scan.arrays_seen {
                    // Not an array of records: one record (or document) over the limit.
                    self.push(Err(ContainerError::TooLarge {
                        position: Position::line(unit.first_line),
                        length: unit.scan.pos,
                        max: self.max,
                        raw: head,
                    }));
                }
            }
        }
    }

    /// The input ended (or failed: `error`) inside the unit: its whole records are kept, and
    /// what was left unfinished is reported as cut short.
    fn end_unit_early(&mut self, error: Option<io::Error>) {
        if self.mode != Mode::Document && error.is_none() && self.second_line_is_ndjson() {
            return;
        }
        self.mode = Mode::Done;
        let Some(unit) = self.unit.take() else {
            return;
        };
        let fatal = error.map(|e| ContainerError::from_io(self.line, e));
        match unit.state {
            UnitState::Whole | UnitState::SecondLine { .. } => {
                let multiline = unit.buf.contains(&b'\n');
                let mut batch = Batch::scan_unit(unit.buf, unit.first_line, multiline, false);
                // A record cut short is not a record.
                batch.whole = None;
                batch.trailer = match (fatal, batch.trailer.take()) {
                    (Some(fatal), _) => Some(fatal),
                    (None, Some(e)) => Some(e.into_cut_short()),
                    (None, None) => Some(ContainerError::CutShort {
                        position: Position::line(self.line),
                        reason: "EOF while parsing".to_owned(),
                        raw: Vec::new(),
                    }),
                };
                if batch.ranges.is_empty()
                    && batch
                        .trailer
                        .as_ref()
                        .is_some_and(|t| t.raw_bytes().is_empty())
                {
                    batch.buf = Vec::new();
                }
                self.batch = Some(batch);
            }
            UnitState::Streaming {
                head,
                index,
                oversized,
            } => match fatal {
                Some(fatal) => self.push(Err(fatal)),
                None => {
                    let item = Self::unfinished(
                        &unit.scan,
                        unit.buf,
                        unit.buf_base,
                        head,
                        index,
                        oversized,
                        self.max,
                        "the input ends inside it",
                    );
                    self.push(Err(item.into_cut_short()));
                }
            },
        }
    }

    /// What is left of a streamed unit its line or input ended inside of.
    #[allow(clippy::too_many_arguments)]
    fn unfinished(
        scan: &Scanner,
        buf: Vec<u8>,
        buf_base: u64,
        head: Vec<u8>,
        index: u64,
        oversized: Option<Vec<u8>>,
        max: usize,
        why: &str,
    ) -> ContainerError {
        match (scan.elem, oversized) {
            (Some((start, line)), Some(raw)) => ContainerError::TooLarge {
                position: Position {
                    line: Some(line),
                    index: Some(index),
                },
                length: scan.pos - start,
                max,
                raw,
            },
            (Some((start, line)), None) => {
                let from = (start.saturating_sub(buf_base)) as usize;
                ContainerError::InvalidJson {
                    position: Position {
                        line: Some(line),
                        index: Some(index),
                    },
                    reason: format!("of a record: {why}"),
                    raw: buf.get(from..).unwrap_or_default().to_vec(),
                }
            }
            (None, _) if index == 0 && !scan.arrays_seen => ContainerError::TooLarge {
                position: Position::line(scan.first_line),
                length: scan.pos,
                max,
                raw: head,
            },
            (None, _) => ContainerError::InvalidJson {
                position: Position::line(scan.first_line),
                reason: format!("of a document after its records: {why}"),
                raw: Vec::new(),
            },
        }
    }
}

/// A record, or the error for its invalid UTF-8.
fn record_or_utf8_error(bytes: Vec<u8>, position: Position) -> Result<RawRecord, ContainerError> {
    match std::str::from_utf8(&bytes) {
        Ok(_) => Ok(RawRecord { bytes, position }),
        Err(e) => Err(ContainerError::InvalidUtf8 {
            line: position.line.unwrap_or_default(),
            offset: e.valid_up_to(),
            raw: bytes,
        }),
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<RawRecord, ContainerError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = &mut self.batch {
                if let Some(item) = batch.next_item() {
                    return Some(item);
                }
                self.batch = None;
            }
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.mode == Mode::Done {
                return None;
            }
            self.step();
        }
    }
}

// === impl Scanner ===

/// What stopped [`Scanner::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    /// The chunk is used up.
    More,
    /// The unit's closing bracket was the last byte taken.
    End,
    /// A newline inside the unit, not taken (only when lines matter).
    Newline,
    /// A record of the unit's array ended (only when streaming): see `ended`.
    Elem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ElemKind {
    Container,
    String,
    Scalar,
}

/// The structure of one array or object read a chunk at a time: where it ends, where the
/// records of its array are (a top-level array, or the `Records`/`records`/`value` array of an
/// envelope) and whether it is a plain object. It tracks nesting and strings only; it is not a
/// validation (the records' parser is).
struct Scanner {
    top: u8,
    first_line: u64,
    /// Unit offset of the next byte.
    pos: u64,
    depth: u64,
    in_string: bool,
    escape: bool,
    /// At depth 1 of an object: the next string is a key.
    expect_key: bool,
    in_key: bool,
    key: [u8; 8],
    key_len: usize,
    key_escaped: bool,
    /// The last depth-1 key names an envelope array.
    envelope_key: bool,
    /// At depth 1 of an object, after `:`.
    value_next: bool,
    /// A depth-1 key is an envelope name or escaped: not known to be one plain record.
    not_plain: bool,
    /// Depth of the records of the unit's array (0: not inside it); one array per unit.
    elems_at: u64,
    arrays_seen: bool,
    /// The record in progress: (offset, line).
    elem: Option<(u64, u64)>,
    elem_kind: ElemKind,
    /// Report each record's end (and stop there).
    streaming: bool,
    /// The last record ended: its offsets and line.
    ended: Option<(Range<u64>, u64)>,
}

impl Scanner {
    fn new(top: u8, streaming: bool) -> Self {
        Scanner {
            top,
            first_line: 0,
            pos: 0,
            depth: 0,
            in_string: false,
            escape: false,
            expect_key: false,
            in_key: false,
            key: [0; 8],
            key_len: 0,
            key_escaped: false,
            envelope_key: false,
            value_next: false,
            not_plain: false,
            elems_at: 0,
            arrays_seen: false,
            elem: None,
            elem_kind: ElemKind::Container,
            streaming,
            ended: None,
        }
    }

    fn key_bytes(&mut self, bytes: &[u8]) {
        if self.in_key {
            if let Some(dst) = self.key.get_mut(self.key_len..self.key_len + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            self.key_len += bytes.len();
        }
    }

    fn end_elem(&mut self, end: u64) -> bool {
        if let Some((start, line)) = self.elem.take() {
            self.ended = Some((start..end, line));
            return self.streaming;
        }
        false
    }

    fn at_elems(&self) -> bool {
        self.elems_at > 0 && self.depth == self.elems_at
    }

    /// Scans `chunk` (the bytes after `pos`); returns how many bytes were taken and why it
    /// stopped. `line` counts the newlines taken.
    fn feed(&mut self, chunk: &[u8], line: &mut u64, line_bound: bool) -> (usize, Ev) {
        if self.pos == 0 {
            self.first_line = *line;
        }
        let base = self.pos;
        let mut i = 0;
        let ret = |s: &mut Scanner, i: usize, ev: Ev| {
            s.pos = base + i as u64;
            (i, ev)
        };
        while let Some(&b) = chunk.get(i) {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    if b != b'\n' {
                        i += 1;
                        continue;
                    }
                }
                let rest = chunk.get(i..).unwrap_or_default();
                let Some(k) = memchr::memchr3(b'"', b'\\', b'\n', rest) else {
                    self.key_bytes(rest);
                    i = chunk.len();
                    break;
                };
                self.key_bytes(rest.get(..k).unwrap_or_default());
                let at = i + k;
                match chunk.get(at) {
                    Some(b'"') => {
                        self.in_string = false;
                        i = at + 1;
                        if self.in_key {
                            self.in_key = false;
                            let key = self.key.get(..self.key_len).unwrap_or_default();
                            self.envelope_key = !self.key_escaped
                                && matches!(key, b"Records" | b"records" | b"value");
                            if self.key_escaped || self.envelope_key {
                                self.not_plain = true;
                            }
                        } else if self.elem_kind == ElemKind::String
                            && self.at_elems()
                            && self.end_elem(base + i as u64)
                        {
                            return ret(self, i, Ev::Elem);
                        }
                    }
                    Some(b'\\') => {
                        self.escape = true;
                        if self.in_key {
                            self.key_escaped = true;
                        }
                        i = at + 1;
                    }
                    _ => {
                        if line_bound {
                            return ret(self, at, Ev::Newline);
                        }
                        *line += 1;
                        i = at + 1;
                    }
                }
                continue;
            }
            if self.elem.is_some()
                && self.elem_kind == ElemKind::Scalar
                && self.at_elems()
                && matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n')
                && self.end_elem(base + i as u64)
            {
                return ret(self, i, Ev::Elem);
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    if self.depth == 1 && self.top == b'{' && self.expect_key {
                        self.expect_key = false;
                        self.in_key = true;
                        self.key_len = 0;
                        self.key_escaped = false;
                    } else {
                        if self.depth == 1 {
                            self.value_next = false;
                        }
                        if self.at_elems() && self.elem.is_none() {
                            self.elem = Some((base + i as u64, *line));
                            self.elem_kind = ElemKind::String;
                        }
                    }
                }
                b'{' | b'[' => {
                    if self.at_elems() && self.elem.is_none() {
                        self.elem = Some((base + i as u64, *line));
                        self.elem_kind = ElemKind::Container;
                    }
                    if self.depth == 1 && self.top == b'{' && self.value_next {
                        self.value_next = false;
                        if b == b'[' && self.envelope_key && !self.arrays_seen {
                            self.elems_at = 2;
                            self.arrays_seen = true;
                        }
                    }
                    self.depth += 1;
                    if self.depth == 1 {
                        if b == b'{' {
                            self.expect_key = true;
                        } else {
                            self.elems_at = 1;
                            self.arrays_seen = true;
                        }
                    }
                }
                b'}' | b']' => {
                    if self.at_elems() {
                        self.elems_at = 0;
                    }
                    self.depth = self.depth.saturating_sub(1);
                    i += 1;
                    if self.depth == 0 {
                        return ret(self, i, Ev::End);
                    }
                    if self.elem_kind == ElemKind::Container
                        && self.at_elems()
                        && self.end_elem(base + i as u64)
                    {
                        return ret(self, i, Ev::Elem);
                    }
                    continue;
                }
                b',' => {
                    if self.depth == 1 && self.top == b'{' {
                        self.expect_key = true;
                        self.value_next = false;
                    }
                }
                b':' => {
                    if self.depth == 1 && self.top == b'{' {
                        self.value_next = true;
                    }
                }
                b'\n' => {
                    if line_bound {
                        return ret(self, i, Ev::Newline);
                    }
                    *line += 1;
                }
                b' ' | b'\t' | b'\r' => {}
                _ => {
                    if self.depth == 1 {
                        self.value_next = false;
                    }
                    if self.at_elems() && self.elem.is_none() {
                        self.elem = Some((base + i as u64, *line));
                        self.elem_kind = ElemKind::Scalar;
                    }
                }
            }
            i += 1;
        }
        ret(self, i, Ev::More)
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn is_json_ws(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !is_json_ws(c)).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !is_json_ws(c))
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

fn count_newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

// === impl Batch ===

/// The records of one line or one document, handed out one at a time.
struct Batch {
    buf: Vec<u8>,
    /// The unit is one record: `buf[whole]`.
    whole: Option<Range<usize>>,
    /// Elements of an array or envelope.
    ranges: Vec<Range<usize>>,
    next: usize,
    first_line: u64,
    /// Whether the unit spans lines (element positions get their own line numbers).
    multiline: bool,
    /// Line counting state for multiline units: (byte offset, line at that offset).
    cursor: (usize, u64),
    trailer: Option<ContainerError>,
}

impl Batch {
    fn error(e: ContainerError) -> Self {
        Batch {
            buf: Vec::new(),
            whole: None,
            ranges: Vec::new(),
            next: 0,
            first_line: 0,
            multiline: false,
            cursor: (0, 0),
            trailer: Some(e),
        }
    }

    /// Splits one line (or document) starting at `first_line` into records.
    fn scan_unit(buf: Vec<u8>, first_line: u64, multiline: bool, known_plain: bool) -> Self {
        let mut batch = Batch::error(ContainerError::NotARecord {
            position: Position::line(first_line),
            found: "nothing",
            raw: Vec::new(),
        });
        batch.first_line = first_line;
        batch.multiline = multiline;
        batch.cursor = (0, first_line);
        batch.trailer = None;

        let start = buf.iter().position(|c| !is_json_ws(c)).unwrap_or(buf.len());
        let end = buf
            .iter()
            .rposition(|c| !is_json_ws(c))
            .map_or(start, |e| e + 1);
        let body = buf.get(start..end).unwrap_or_default();
        let body_line = first_line + count_newlines(buf.get(..start).unwrap_or_default()) as u64;

        if let Err(e) = std::str::from_utf8(body) {
            let offset = start + e.valid_up_to();
            batch.trailer = Some(ContainerError::InvalidUtf8 {
                line: first_line + count_newlines(buf.get(..offset).unwrap_or_default()) as u64,
                offset: if multiline { offset } else { e.valid_up_to() },
                raw: body.to_vec(),
            });
            return batch;
        }

        // The common case, one record per NDJSON line, skips the validating pass: the record's
        // one parse (in `normalize`) rejects it if it is not JSON after all.
        if !multiline && (known_plain || is_plain_object_line(body)) {
            batch.whole = Some(start..end);
            batch.buf = buf;
            return batch;
        }

        let mut c = Collector {
            base: start,
            origin: Some(body.as_ptr() as usize),
            ..Collector::default()
        };
        let result = {
            let mut de = serde_json::Deserializer::from_slice(body);
            Top { c: &mut c }
                .deserialize(&mut de)
                .and_then(|()| de.end())
        };
        let keep_elements = c.top == TopKind::Array || c.envelope;
        match &result {
            Ok(()) => match c.top {
                TopKind::Scalar(found) => {
                    batch.trailer = Some(ContainerError::NotARecord {
                        position: Position::line(body_line),
                        found,
                        raw: body.to_vec(),
                    });
                }
                TopKind::Object if !c.envelope => batch.whole = Some(start..end),
                _ => {}
            },
            Err(e) => {
                let position = if multiline {
                    Position::line(body_line + e.line().saturating_sub(1) as u64)
                } else {
                    Position::line(first_line)
                };
                // What follows the last whole element is what could not be read.
                let tail_from = if keep_elements {
                    c.ranges.last().map_or(start, |r| r.end)
                } else {
                    start
                };
                batch.trailer = Some(ContainerError::InvalidJson {
                    position,
                    reason: json_error_text(e),
                    raw: buf.get(tail_from..end).unwrap_or_default().to_vec(),
                });
            }
        }
        if keep_elements {
            batch.ranges = c.ranges;
        }
        batch.buf = buf;
        batch
    }

    /// Everything has been handed out.
    fn is_done(&self) -> bool {
        self.whole.is_none() && self.next >= self.ranges.len() && self.trailer.is_none()
    }

    fn next_item(&mut self) -> Option<Result<RawRecord, ContainerError>> {
        if let Some(whole) = self.whole.take() {
            let position = Position::line(self.first_line);
            let mut bytes = std::mem::take(&mut self.buf);
            bytes.truncate(whole.end);
            if whole.start > 0 {
                bytes.drain(..whole.start);
            }
            return Some(Ok(RawRecord { bytes, position }));
        }
        if let Some(range) = self.ranges.get(self.next).cloned() {
            let index = self.next as u64;
            self.next += 1;
            let line = if self.multiline {
                let (off, line) = self.cursor;
                let upto = range.start.max(off);
                let l = line + count_newlines(self.buf.get(off..upto).unwrap_or_default()) as u64;
                self.cursor = (upto, l);
                l
            } else {
                self.first_line
            };
            let bytes = self.buf.get(range).unwrap_or_default().to_vec();
            return Some(Ok(RawRecord {
                bytes,
                position: Position {
                    line: Some(line),
                    index: Some(index),
                },
            }));
        }
        self.trailer.take().map(Err)
    }
}

// === scanning ===

/// Whether a one-line text looks like one object that is not an envelope: it is `{…}` and no
/// top-level key is `Records`, `records` or `value`. A quick pass that tracks only strings and
/// nesting, not a validation; whenever in doubt (escapes in a key, unbalanced text) it answers
/// `false` and the full scan decides.
pub(crate) fn is_plain_object_line(body: &[u8]) -> bool {
    if body.first() != Some(&b'{') || body.last() != Some(&b'}') {
        return false;
    }
    let mut depth = 0usize;
    // At depth 1, right after `{` or `,`: the next string is a key.
    let mut key_next = false;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match b {
            b'"' => {
                let Some((end, escaped)) = string_end(body, i + 1) else {
                    return false;
                };
                if depth == 1 && key_next {
                    let key = body.get(i + 1..end).unwrap_or_default();
                    if escaped || matches!(key, b"Records" | b"records" | b"value") {
                        return false;
                    }
                }
                key_next = false;
                i = end;
            }
            b'{' => {
                depth += 1;
                key_next = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => {
                let Some(d) = depth.checked_sub(1) else {
                    return false;
                };
                depth = d;
                if depth == 0 && i + 1 != body.len() {
                    return false;
                }
            }
            b',' => key_next = depth == 1,
            _ => {}
        }
        i += 1;
    }
    depth == 0
}

/// The index of the quote closing the string whose text starts at `from`, and whether the
/// string holds escapes; `None` when it is not closed.
fn string_end(body: &[u8], mut from: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', body.get(from..)?)?;
        if body.get(at) == Some(&b'"') {
            return Some((at, escaped));
        }
        escaped = true;
        from = at + 2;
    }
}

/// Validates one JSON text (used to decide how the input is laid out).
fn scan(body: &[u8]) -> Result<(), serde_json::Error> {
    let mut c = Collector::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    Top { c: &mut c }
        .deserialize(&mut de)
        .and_then(|()| de.end())
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum TopKind {
    #[default]
    Unknown,
    Object,
    Array,
    Scalar(&'static str),
}

/// What one pass over a JSON text found: the element ranges of a top-level array or envelope,
/// relative to the start of the buffer (`base` is the offset of the parsed slice).
#[derive(Default)]
struct Collector {
    base: usize,
    top: TopKind,
    /// The elements collected belong to an envelope (`Records`, `records`, Graph `value`).
    envelope: bool,
    ranges: Vec<Range<usize>>,
    /// Address of the parsed slice, to turn borrowed elements into offsets (`None` when only
    /// validating).
    origin: Option<usize>,
}

struct Top<'c> {
    c: &'c mut Collector,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

enum Key {
    Records,
    Value,
    OData,
    Other,
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Key, E> {
        Ok(match k {
            "Records" | "records" => Key::Records,
            "value" => Key::Value,
            _ if k.starts_with("@odata.") => Key::OData,
            _ => Key::Other,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

macro_rules! scalar_visits {
    ($($name:ident: $ty:ty => $found:expr),* $(,)?) => {
        $(
            fn $name<E: serde::de::Error>(self, _: $ty) -> Result<(), E> {
                self.c.top = TopKind::Scalar($found);
                Ok(())
            }
        )*
    };
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json object or array")
    }

    scalar_visits! {
        visit_bool: bool => "a boolean",
        visit_i64: i64 => "a number",
        visit_u64: u64 => "a number",
        visit_f64: f64 => "a number",
        visit_str: &str => "a string",
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.c.top = TopKind::Scalar("null");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.c.top = TopKind::Array;
        while seq.next_element_seed(Element { c: self.c })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.c;
        c.top = TopKind::Object;
        let mut keys = 0usize;
        let mut odata = false;
        let mut value_array = false;
        let mut collected = false;
        while let Some(key) = map.next_key::<Key>()? {
            keys += 1;
            match key {
                Key::Records if !collected => {
                    c.envelope = true;
                    collected = true;
                    if !map.next_value_seed(Elements { c: &mut *c })? {
                        c.envelope = false;
                        collected = false;
                    }
                }
                Key::Value if !collected => {
                    c.envelope = odata;
                    collected = true;
                    value_array = map.next_value_seed(Elements { c: &mut *c })?;
                    if !value_array {
                        c.envelope = false;
                        collected = false;
                    }
                }
                Key::OData => {
                    odata = true;
                    if value_array {
                        c.envelope = true;
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if value_array && keys == 1 {
            c.envelope = true;
        }
        if !c.envelope {
            c.ranges.clear();
        }
        Ok(())
    }
}

/// An envelope's array: collects its elements; `false` (and nothing collected) when the value
/// is not an array.
struct Elements<'c> {
    c: &'c mut Collector,
}

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! not_array {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(
            fn $name<E: serde::de::Error>(self, _: $ty) -> Result<bool, E> {
                Ok(false)
            }
        )*
    };
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }

    not_array! { visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq
            .next_element_seed(Element { c: &mut *self.c })?
            .is_some()
        {}
        Ok(true)
    }
}

/// One element: its bytes, borrowed from the input, become an offset range.
struct Element<'c> {
    c: &'c mut Collector,
}

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let raw = <&'de RawValue as serde::Deserialize>::deserialize(d)?;
        let text = raw.get();
        let addr = text.as_ptr() as usize;
        // The element borrows from the parsed slice, so it lies inside it.
        if let Some(off) = self.c.origin.and_then(|origin| addr.checked_sub(origin)) {
            let start = self.c.base + off;
            self.c.ranges.push(start..start + text.len());
        }
        Ok(())
    }
}
