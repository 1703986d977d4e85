//! Splitting an input stream into raw records, one at a time.
//!
//! Accepted inputs (optionally gzip-compressed, detected by the `1f 8b` magic bytes):
//! - NDJSON: one record per line, streamed line by line (a line may also hold an envelope or an
//!   array, which is expanded into its elements);
//! - one JSON document: a top-level array, a Graph page `{"@odata.context":…,"value":[…]}`, a
//!   CloudTrail file `{"Records":[…]}`, a diagnostic envelope `{"records":[…]}`, or a single
//!   record object (pretty-printed or not).
//!
//! Each [`RawRecord`] carries the record's exact bytes (the trimmed line, or the element's bytes
//! inside the document) and where it was. Bad input never panics and never loses the good
//! records around it: a malformed line is one `Err` item (or, when it is braced like one
//! object, a record its parser rejects) and reading goes on; a read error
//! (a truncated `.gz`) comes after every record read before it and ends the stream.

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
            | ContainerError::NotARecord { position, .. } => position.line,
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
            | ContainerError::NotARecord { raw, .. } => raw,
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

// === impl RecordReader ===

/// Yields the records of an input one at a time (see the module docs).
pub struct RecordReader<R> {
    input: R,
    /// Number of the last line read.
    line: u64,
    mode: Mode,
    batch: Option<Batch>,
    /// Lines read ahead while deciding between NDJSON and one document.
    pending: std::collections::VecDeque<(u64, Vec<u8>)>,
    /// A read error met while reading ahead, reported after the pending lines.
    pending_error: Option<ContainerError>,
    /// The incomplete line a read error interrupted (its whole elements are salvaged).
    partial: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Start,
    Lines,
    Done,
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
            input,
            line: 0,
            mode: Mode::Start,
            batch: None,
            pending: std::collections::VecDeque::new(),
            pending_error: None,
            partial: Vec::new(),
        }
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.input
    }

    /// The next raw line (without its `\n`), from the read-ahead first.
    fn read_line(&mut self) -> Result<Option<(u64, Vec<u8>)>, ContainerError> {
        if let Some(l) = self.pending.pop_front() {
            return Ok(Some(l));
        }
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        let mut buf = Vec::new();
        match self.input.read_until(b'\n', &mut buf) {
            Ok(0) => Ok(None),
            Ok(_) => {
                self.line += 1;
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if self.line == 1 && buf.starts_with(BOM) {
                    buf.drain(..BOM.len());
                }
                Ok(Some((self.line, buf)))
            }
            // The partial line is kept: a truncated one-line document still has whole elements.
            Err(e) => {
                self.partial = buf;
                Err(ContainerError::from_io(self.line + 1, e))
            }
        }
    }

    /// Ends the stream with `e`, after the whole elements of an interrupted envelope line.
    fn fail(&mut self, e: ContainerError) {
        self.mode = Mode::Done;
        let partial = std::mem::take(&mut self.partial);
        let mut batch = if trim(&partial).is_empty() {
            Batch::error(e)
        } else {
            let mut b = Batch::scan_unit(partial, self.line + 1, false);
            // A cut-short single record is not a record.
            b.whole = None;
            b.trailer = Some(e);
            b
        };
        if batch.ranges.is_empty() {
            batch.buf = Vec::new();
        }
        self.batch = Some(batch);
    }

    /// Decides between NDJSON and one JSON document from the first non-blank line(s).
    fn start(&mut self) {
        let mut spill: Vec<(u64, Vec<u8>)> = Vec::new();
        let Some((n1, l1)) = self.next_non_blank(&mut spill) else {
            return;
        };
        let t1 = trim(&l1);
        let incomplete = std::str::from_utf8(t1).is_ok()
            && matches!(t1.first(), Some(b'{' | b'['))
            && matches!(scan(t1), Err(e) if e.is_eof());
        if !incomplete {
            self.mode = Mode::Lines;
            self.pending.push_back((n1, l1));
            return;
        }
        let opens_array = t1.first() == Some(&b'[');
        spill.push((n1, l1));
        if !opens_array {
            // `{…` cut short on line 1, then a complete object on the next line: NDJSON whose
            // first line is broken, not a pretty-printed document.
            let mut spill2 = Vec::new();
            match self.next_non_blank(&mut spill2) {
                None if self.mode == Mode::Done => {
                    // Read error: report the first line, then the error.
                    if let Some(b) = self.batch.take() {
                        self.pending_error = b.trailer;
                    }
                    self.mode = Mode::Lines;
                    self.pending.extend(spill);
                    return;
                }
                None => {
                    self.mode = Mode::Lines;
                    self.pending.extend(spill);
                    return;
                }
                Some((n2, l2)) => {
                    let t2 = trim(&l2);
                    let complete_object = t2.first() == Some(&b'{')
                        && std::str::from_utf8(t2).is_ok()
                        && scan(t2).is_ok();
                    spill.extend(spill2);
                    spill.push((n2, l2));
                    if complete_object {
                        self.mode = Mode::Lines;
                        self.pending.extend(spill);
                        return;
                    }
                }
            }
        }
        self.read_document(spill);
    }

    /// The next non-blank line; blank ones go to `spill`. `None` at the end of input or on a
    /// read error (then `self.batch` holds the error and the mode is `Done`).
    fn next_non_blank(&mut self, spill: &mut Vec<(u64, Vec<u8>)>) -> Option<(u64, Vec<u8>)> {
        loop {
            match self.read_line() {
                Ok(None) => {
                    self.mode = Mode::Done;
                    return None;
                }
                Err(e) => {
                    self.fail(e);
                    return None;
                }
                Ok(Some((n, l))) if trim(&l).is_empty() => spill.push((n, l)),
                Ok(Some(l)) => return Some(l),
            }
        }
    }

    /// Reads the rest of the input as one JSON document whose first lines are `head`.
    fn read_document(&mut self, head: Vec<(u64, Vec<u8>)>) {
        self.mode = Mode::Done;
        let first_line = head.first().map_or(self.line + 1, |(n, _)| *n);
        let mut doc = Vec::new();
        for (_, l) in head {
            doc.extend_from_slice(&l);
            doc.push(b'\n');
        }
        // Lines read ahead were all moved into `head` by `start`.
        for (_, l) in self.pending.drain(..) {
            doc.extend_from_slice(&l);
            doc.push(b'\n');
        }
        let read_error = self.input.read_to_end(&mut doc).err();
        let mut batch = Batch::scan_unit(doc, first_line, true);
        if let Some(e) = read_error {
            let last_line = first_line + count_newlines(&batch.buf) as u64;
            // The read error explains a parse failure at the end; report it instead.
            batch.whole = None;
            batch.trailer = Some(ContainerError::from_io(last_line, e));
        }
        self.batch = Some(batch);
    }

    fn next_line_unit(&mut self) {
        match self.read_line() {
            Ok(None) => self.mode = Mode::Done,
            Err(e) => self.fail(e),
            Ok(Some((n, line))) => {
                if trim(&line).is_empty() {
                    return;
                }
                self.batch = Some(Batch::scan_unit(line, n, false));
            }
        }
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
            match self.mode {
                Mode::Done => return None,
                Mode::Start => self.start(),
                Mode::Lines => self.next_line_unit(),
            }
        }
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
    fn scan_unit(buf: Vec<u8>, first_line: u64, multiline: bool) -> Self {
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
        if !multiline && is_plain_object_line(body) {
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
