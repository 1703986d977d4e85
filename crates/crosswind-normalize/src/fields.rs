//! Typed, forgiving field access over `serde_json` values: numbers accepted where text is
//! expected, JSON held in strings (Log Analytics columns) parsed, empty strings treated as
//! absent, and every type mismatch turned into a [`Rejection`] naming the field.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Rejection;

pub(crate) type Obj = Map<String, Value>;

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

fn wrong_type(field: &str, expected: &str, found: &Value) -> Rejection {
    Rejection::new(format!("invalid {field}: expected {expected}, found {}", kind_of(found)))
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

/// A key, falling back to an ASCII case-insensitive match (Panther lower-cases diagnostic
/// record keys: `resulttype`, `tenantid`).
pub(crate) fn get_ci<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Text: strings as they are, numbers and booleans as their JSON text; missing, null and ""
/// are `None`; objects and arrays are a rejection naming `field`.
pub(crate) fn text<'a>(v: Option<&'a Value>, field: &str) -> Result<Option<Cow<'a, str>>, Rejection> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s.as_str()))),
        Some(Value::Number(n)) => Ok(Some(Cow::Owned(n.to_string()))),
        Some(Value::Bool(b)) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

/// [`text`], owned.
pub(crate) fn owned(v: Option<&Value>, field: &str) -> Result<Option<String>, Rejection> {
    Ok(text(v, field)?.map(Cow::into_owned))
}

/// A boolean: `true`, `"true"`, `"TRUE"`, `"True"` (and the same for false); "" is absent.
pub(crate) fn flag(v: Option<&Value>, field: &str) -> Result<Option<bool>, Rejection> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if s.eq_ignore_ascii_case("true") {
                Ok(Some(true))
            } else if s.eq_ignore_ascii_case("false") {
                Ok(Some(false))
            } else {
                Err(Rejection::new(format!("invalid {field}: expected true or false, found {s:?}")))
            }
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(Rejection::new(format!("invalid {field}: expected true or false, found {n}"))),
        },
        Some(other) => Err(wrong_type(field, "a boolean", other)),
    }
}

/// An object or array, or a string holding one as JSON text (Log Analytics `dynamic` columns
/// exported as strings). Missing, null, "" are `None`.
pub(crate) fn structured<'a>(
    v: Option<&'a Value>,
    field: &str,
) -> Result<Option<Cow<'a, Value>>, Rejection> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v @ (Value::Object(_) | Value::Array(_))) => Ok(Some(Cow::Borrowed(v))),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            if !(t.starts_with('{') || t.starts_with('[')) {
                return Err(Rejection::new(format!(
                    "invalid {field}: expected an object or array, found a string"
                )));
            }
            match serde_json::from_str::<Value>(t) {
                Ok(Value::Null) => Ok(None),
                Ok(v) => Ok(Some(Cow::Owned(v))),
                Err(e) => Err(Rejection::new(format!(
                    "invalid {field}: json text {}",
                    json_error_text(&e)
                ))),
            }
        }
        Some(other) => Err(wrong_type(field, "an object or array", other)),
    }
}

/// [`structured`], but only an object.
pub(crate) fn object<'a>(v: Option<&'a Value>, field: &str) -> Result<Option<Cow<'a, Value>>, Rejection> {
    match structured(v, field)? {
        None => Ok(None),
        Some(c) if c.is_object() => Ok(Some(c)),
        Some(c) => Err(wrong_type(field, "an object", &c)),
    }
}

/// A list of strings: a JSON array, a string holding a JSON array (`"[]"`,
/// `"[\"unfamiliarFeatures\"]"`), or a comma-separated string.
pub(crate) fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, Rejection> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => return Ok(collect_strings(a)),
        Some(Value::String(s)) => s.trim(),
        Some(other) => return Err(wrong_type(field, "a list of strings", other)),
    };
    if items.starts_with('[') {
        match serde_json::from_str::<Value>(items) {
            Ok(Value::Array(a)) => Ok(collect_strings(&a)),
            Ok(other) => Err(wrong_type(field, "a list of strings", &other)),
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
pub(crate) fn small_uint(v: Option<&Value>, field: &str) -> Result<Option<u32>, Rejection> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Rejection::new(format!("invalid {field}: {n} is not a valid number"))),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<u32>()
                .map(Some)
                .map_err(|_| Rejection::new(format!("invalid {field}: {t:?} is not a number")))
        }
        Some(other) => Err(wrong_type(field, "a number", other)),
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
pub(crate) fn code(v: Option<&Value>, field: &str) -> Result<Option<String>, Rejection> {
    Ok(text(v, field)?.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()))
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
pub(crate) fn content_id(record: &Value) -> String {
    let mut hasher = Sha256::new();
    let mut buf = Vec::with_capacity(1024);
    write_canonical(record, &mut buf);
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
