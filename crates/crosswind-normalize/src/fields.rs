//! Typed, forgiving field access over `serde_json` values: numbers accepted where text is
//! expected, JSON held in strings (Log Analytics columns) parsed, empty strings treated as
//! absent, and every type mismatch turned into a [`Rejection`] naming the field.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::Rejection;

// === impl Obj ===

/// A JSON object parsed one level deep: keys borrowed from the input where they have no escapes,
/// values left as raw JSON text until a mapping asks for them. Records are wide and the
/// mappings read a few dozen fields, so most of a record is only scanned, never built.
pub(crate) struct Obj<'a> {
    /// Sorted by [`key_order`] (length first: most comparisons never reach `memcmp`).
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// What a top-level JSON text turned out to be.
pub(crate) enum Parsed<'a> {
    Object(Obj<'a>),
    Other(&'static str),
}

impl<'a> Obj<'a> {
    /// Parses `text` as one JSON value; objects are split into their members.
    pub(crate) fn parse(text: &'a [u8]) -> Result<Parsed<'a>, serde_json::Error> {
        match std::str::from_utf8(text) {
            Ok(text) => Obj::parse_str(text),
            // Let the slice reader find the bad byte, so the error names its column.
            Err(_) => {
                let mut de = serde_json::Deserializer::from_slice(text);
                let parsed = de.deserialize_any(TopVisitor)?;
                de.end()?;
                Ok(parsed)
            }
        }
    }

    /// Parses text already known to be UTF-8. The text reader borrows members and keys without
    /// validating each one again (the slice reader re-checks every raw member it hands out).
    fn parse_str(text: &'a str) -> Result<Parsed<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = de.deserialize_any(TopVisitor)?;
        de.end()?;
        Ok(parsed)
    }

    /// Parses a nested object given as raw JSON; `None` when it is not an object.
    pub(crate) fn nested(raw: &'a RawValue) -> Result<Option<Obj<'a>>, serde_json::Error> {
        match Obj::parse_str(raw.get())? {
            Parsed::Object(o) => Ok(Some(o)),
            Parsed::Other(_) => Ok(None),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<J<'a>> {
        self.entries
            .binary_search_by(|(k, _)| key_order(k, key))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| J::Raw(v))
    }

    /// A key, falling back to an ASCII case-insensitive match (Panther lower-cases diagnostic
    /// record keys: `resulttype`, `tenantid`).
    pub(crate) fn get_ci(&self, key: &str) -> Option<J<'a>> {
        self.get(key).or_else(|| {
            self.entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| J::Raw(v))
        })
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A member that is a JSON string, as text (escapes resolved).
    pub(crate) fn str_of(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key).and_then(J::as_str)
    }

    pub(crate) fn str_ci(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get_ci(key).and_then(J::as_str)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the container's scan would take this object, as one NDJSON line, for one
    /// record: no top-level key is escaped or names an envelope array (`Records`, `records`,
    /// `value`; see `container::is_plain_object_line`). Escaped keys are the owned ones.
    pub(crate) fn is_plain_record(&self) -> bool {
        self.entries.iter().all(|(k, _)| match k {
            Cow::Borrowed(k) => !matches!(*k, "Records" | "records" | "value"),
            Cow::Owned(_) => false,
        })
    }

    /// Keys in alphabetical order.
    pub(crate) fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.entries.iter().map(|(k, _)| k.as_ref()).collect();
        keys.sort_unstable();
        keys
    }
}

fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed<'de>, A::Error> {
        let mut entries: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(64);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            entries.push((key, value));
        }
        entries.sort_unstable_by(|a, b| key_order(&a.0, &b.0));
        Ok(Parsed::Object(Obj { entries }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Parsed::Other("an array"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Parsed<'de>, E> {
        Ok(Parsed::Other("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Parsed<'de>, E> {
        Ok(Parsed::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Parsed<'de>, E> {
        Ok(Parsed::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Parsed<'de>, E> {
        Ok(Parsed::Other("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Parsed<'de>, E> {
        Ok(Parsed::Other("a string"))
    }

    fn visit_unit<E>(self) -> Result<Parsed<'de>, E> {
        Ok(Parsed::Other("null"))
    }
}

struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(CowStr)
    }
}

struct CowStr;

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

// === impl J ===

/// One JSON value: raw text from a lazily parsed [`Obj`], or a built `serde_json::Value` (nested
/// structures and JSON-in-string columns).
#[derive(Clone, Copy)]
pub(crate) enum J<'a> {
    Raw(&'a RawValue),
    Val(&'a Value),
}

impl<'a> J<'a> {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            J::Val(v) => kind_of(v),
            J::Raw(r) => match r.get().as_bytes().first() {
                Some(b'n') => "null",
                Some(b't' | b'f') => "a boolean",
                Some(b'"') => "a string",
                Some(b'[') => "an array",
                Some(b'{') => "an object",
                _ => "a number",
            },
        }
    }

    pub(crate) fn is_null(self) -> bool {
        match self {
            J::Val(v) => v.is_null(),
            J::Raw(r) => r.get() == "null",
        }
    }

    /// The value when it is a JSON string (escapes resolved).
    pub(crate) fn as_str(self) -> Option<Cow<'a, str>> {
        match self {
            J::Val(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            J::Val(_) => None,
            J::Raw(r) => raw_str(r.get()),
        }
    }

    /// The value as a built `serde_json::Value`.
    pub(crate) fn to_value(self) -> Result<Cow<'a, Value>, serde_json::Error> {
        match self {
            J::Val(v) => Ok(Cow::Borrowed(v)),
            J::Raw(r) => serde_json::from_str(r.get()).map(Cow::Owned),
        }
    }
}

/// `"…"` → its content, borrowed when it has no escapes.
fn raw_str(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// `invalid json at column 12: expected value` (the line is named only when not the first).
pub(crate) fn json_rejection(e: &serde_json::Error) -> Rejection {
    Rejection::new(format!("invalid json {}", json_error_text(e)))
}

/// `at column 12: expected value`, `at line 3 column 1: …`.
pub(crate) fn json_error_text(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full);
    if e.line() <= 1 {
        format!("at column {}: {msg}", e.column())
    } else {
        format!("at line {} column {}: {msg}", e.line(), e.column())
    }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_kind(field: impl fmt::Display + Copy, expected: &str, found: J<'_>) -> Rejection {
    Rejection::new(format!(
        "invalid {field}: expected {expected}, found {}",
        found.kind()
    ))
}

/// Text: strings as they are, numbers and booleans as their JSON text; missing, null and ""
/// are `None`; objects and arrays are a rejection naming `field`.
pub(crate) fn text<'a>(
    v: Option<J<'a>>,
    field: impl fmt::Display + Copy,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    let Some(v) = v else { return Ok(None) };
    match v {
        J::Val(Value::Null) => Ok(None),
        J::Val(Value::String(s)) => Ok((!s.is_empty()).then_some(Cow::Borrowed(s.as_str()))),
        J::Val(Value::Number(n)) => Ok(Some(Cow::Owned(n.to_string()))),
        J::Val(Value::Bool(b)) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
        J::Val(_) => Err(wrong_kind(field, "a string", v)),
        J::Raw(r) => {
            let t = r.get();
            match t.as_bytes().first() {
                Some(b'"') => match raw_str(t) {
                    Some(s) => Ok((!s.is_empty()).then_some(s)),
                    None => Err(wrong_kind(field, "a string", v)),
                },
                Some(b'n') => Ok(None),
                Some(b'{' | b'[') => Err(wrong_kind(field, "a string", v)),
                // Numbers and booleans: their JSON text is their text.
                _ => Ok(Some(Cow::Borrowed(t))),
            }
        }
    }
}

/// [`text`], owned.
pub(crate) fn owned(
    v: Option<J<'_>>,
    field: impl fmt::Display + Copy,
) -> Result<Option<String>, Rejection> {
    Ok(text(v, field)?.map(Cow::into_owned))
}

/// A boolean: `true`, `"true"`, `"TRUE"`, `"True"` (and the same for false), 0/1; "" is absent.
pub(crate) fn flag(
    v: Option<J<'_>>,
    field: impl fmt::Display + Copy,
) -> Result<Option<bool>, Rejection> {
    let Some(v) = v else { return Ok(None) };
    if let J::Raw(r) = v {
        match r.get() {
            "true" => return Ok(Some(true)),
            "false" => return Ok(Some(false)),
            "null" => return Ok(None),
            _ => {}
        }
    }
    match v.to_value().as_deref() {
        Ok(Value::Null) => Ok(None),
        Ok(Value::Bool(b)) => Ok(Some(*b)),
        Ok(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if s.eq_ignore_ascii_case("true") {
                Ok(Some(true))
            } else if s.eq_ignore_ascii_case("false") {
                Ok(Some(false))
            } else {
                Err(Rejection::new(format!(
                    "invalid {field}: expected true or false, found {s:?}"
                )))
            }
        }
        Ok(Value::Number(n)) => match n.as_u64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(Rejection::new(format!(
                "invalid {field}: expected true or false, found {n}"
            ))),
        },
        _ => Err(wrong_kind(field, "a boolean", v)),
    }
}

/// An object or array, or a string holding one as JSON text (Log Analytics `dynamic` columns
/// exported as strings). Missing, null, "" are `None`.
pub(crate) fn structured<'a>(
    v: Option<J<'a>>,
    field: impl fmt::Display + Copy,
) -> Result<Option<Cow<'a, Value>>, Rejection> {
    let Some(v) = v else { return Ok(None) };
    if let Some(s) = v.as_str() {
        let t = s.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if !(t.starts_with('{') || t.starts_with('[')) {
            return Err(Rejection::new(format!(
                "invalid {field}: expected an object or array, found a string"
            )));
        }
        return match serde_json::from_str::<Value>(t) {
            Ok(Value::Null) => Ok(None),
            Ok(v) => Ok(Some(Cow::Owned(v))),
            Err(e) => Err(Rejection::new(format!(
                "invalid {field}: json text {}",
                json_error_text(&e)
            ))),
        };
    }
    match v.kind() {
        "null" => Ok(None),
        "an object" | "an array" => v
            .to_value()
            .map(Some)
            .map_err(|e| Rejection::new(format!("invalid {field}: {}", json_error_text(&e)))),
        _ => Err(wrong_kind(field, "an object or array", v)),
    }
}

/// [`structured`], but only an object.
pub(crate) fn object<'a>(
    v: Option<J<'a>>,
    field: impl fmt::Display + Copy,
) -> Result<Option<Cow<'a, Value>>, Rejection> {
    match structured(v, field)? {
        None => Ok(None),
        Some(c) if c.is_object() => Ok(Some(c)),
        Some(c) => Err(wrong_kind(field, "an object", J::Val(&c))),
    }
}

/// A list of strings: a JSON array, a string holding a JSON array (`"[]"`,
/// `"[\"unfamiliarFeatures\"]"`), or a comma-separated string.
pub(crate) fn string_list(
    v: Option<J<'_>>,
    field: impl fmt::Display + Copy,
) -> Result<Vec<String>, Rejection> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if let J::Raw(r) = v
        && r.get() == "[]"
    {
        return Ok(Vec::new());
    }
    let value = v
        .to_value()
        .map_err(|e| Rejection::new(format!("invalid {field}: {}", json_error_text(&e))))?;
    let items = match value.as_ref() {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => return Ok(collect_strings(a)),
        Value::String(s) => s.trim(),
        other => return Err(wrong_kind(field, "a list of strings", J::Val(other))),
    };
    if items.starts_with('[') {
        match serde_json::from_str::<Value>(items) {
            Ok(Value::Array(a)) => Ok(collect_strings(&a)),
            Ok(other) => Err(wrong_kind(field, "a list of strings", J::Val(&other))),
            Err(e) => Err(Rejection::new(format!(
                "invalid {field}: json text {}",
                json_error_text(&e)
            ))),
        }
    } else {
        Ok(items
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

fn collect_strings(a: &[Value]) -> Vec<String> {
    a.iter()
        .filter_map(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

/// A non-negative integer that fits `u32`, as a number or numeric string; "" is absent.
pub(crate) fn small_uint(
    v: Option<J<'_>>,
    field: impl fmt::Display + Copy,
) -> Result<Option<u32>, Rejection> {
    let Some(v) = v else { return Ok(None) };
    match v.kind() {
        "a number" | "a string" => {
            let t = text(Some(v), field)?;
            let Some(t) = t.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
                return Ok(None);
            };
            t.parse::<u32>().map(Some).map_err(|_| {
                Rejection::new(format!("invalid {field}: {t:?} is not a valid number"))
            })
        }
        "null" => Ok(None),
        _ => Err(wrong_kind(field, "a number", v)),
    }
}

/// A coordinate: a number or numeric string; anything unparsable is absent (coordinates are
/// decoration, not worth rejecting a sign-in for).
pub(crate) fn coordinate(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// An error/result code as text: `0`, `"50126"`, `"Success"`.
pub(crate) fn code(
    v: Option<J<'_>>,
    field: impl fmt::Display + Copy,
) -> Result<Option<String>, Rejection> {
    Ok(text(v, field)?
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty()))
}

/// A member of a built object, as a [`J`].
pub(crate) fn member<'a>(v: &'a Value, key: &str) -> Option<J<'a>> {
    v.get(key).map(J::Val)
}

/// Splits a caller address into an IP (when it parses as IPv4/IPv6) or a domain/label.
pub(crate) fn ip_or_domain(addr: Option<String>) -> (Option<String>, Option<String>) {
    match addr {
        None => (None, None),
        Some(a) => {
            if a.parse::<IpAddr>().is_ok() {
                (Some(a), None)
            } else {
                (None, Some(a))
            }
        }
    }
}

/// The tenant id in an Azure resource id `/tenants/<tid>/providers/…`.
pub(crate) fn tenant_from_resource_id(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("/tenants/").or_else(|| {
        s.get(..9)
            .filter(|p| p.eq_ignore_ascii_case("/tenants/"))
            .and_then(|_| s.get(9..))
    })?;
    let tid = rest.split('/').next()?;
    (!tid.is_empty()).then_some(tid)
}

/// `sha256:<hex>` of the record's canonical JSON (keys sorted, no whitespace): the same record
/// exported compact or pretty-printed, in any key order, gets the same id.
pub(crate) fn content_id(raw: &[u8]) -> String {
    let mut hasher = Sha256::new();
    let mut buf = Vec::with_capacity(raw.len());
    match serde_json::from_slice::<Value>(raw) {
        Ok(record) => write_canonical(&record, &mut buf),
        // Unreachable for records that were parsed to get here; hash the bytes as they are.
        Err(_) => buf.extend_from_slice(raw),
    }
    hasher.update(&buf);
    let digest = hasher.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(k, out);
                out.push(b':');
                if let Some(val) = m.get(k) {
                    write_canonical(val, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, val) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(val, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_json_string(s, out),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
    }
}

fn write_json_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping; writing into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}
