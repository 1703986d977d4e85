//! Tests over the public sample records in `../shared/data` (never copied into the repository:
//! the goldens hold our normalised output only) and hand-written Graph records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{FormatHint, Normalized, Rejection, normalize};

mod container_tests;
mod mapping_tests;

/// `../shared/data` beside the repository, or `$CROSSWIND_SHARED_DATA`.
pub(crate) fn shared_data() -> PathBuf {
    match std::env::var_os("CROSSWIND_SHARED_DATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

/// Removes the test-only wrappers: `{"_source":…,"event":<record>}` (the record's bytes are kept
/// exactly) and inline records carrying a `_source` key (re-serialised without it).
pub(crate) fn unwrap_line(line: &[u8]) -> Vec<u8> {
    #[derive(serde::Deserialize)]
    struct Wrapped<'a> {
        #[serde(rename = "_source")]
        _source: &'a serde_json::value::RawValue,
        #[serde(borrow)]
        event: &'a serde_json::value::RawValue,
    }
    if let Ok(w) = serde_json::from_slice::<Wrapped<'_>>(line) {
        return w.event.get().as_bytes().to_vec();
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(mut o)) if o.contains_key("_source") => {
            o.remove("_source");
            serde_json::to_vec(&Value::Object(o)).unwrap_or_default()
        }
        _ => line.to_vec(),
    }
}

/// Every record of one data file, unwrapped, with its line number.
pub(crate) fn records(rel: &str) -> Vec<(u64, Vec<u8>)> {
    let path = shared_data().join(rel);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i as u64 + 1, unwrap_line(l)))
        .collect()
}

pub(crate) fn norm(raw: &[u8]) -> Result<Normalized, Rejection> {
    normalize(raw, None::<FormatHint>)
}

/// The event as pretty JSON (what the goldens hold).
pub(crate) fn pretty(n: &Normalized) -> String {
    let mut s = serde_json::to_string_pretty(&n.event).unwrap_or_default();
    s.push('\n');
    s
}

fn ndjson_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            ndjson_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "ndjson") {
            out.push(p);
        }
    }
}

#[test]
fn every_shared_file_counts() {
    let root = shared_data();
    let mut files = Vec::new();
    ndjson_files(&root, &mut files);
    files.sort();
    let mut got = BTreeMap::new();
    let mut reasons: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f).to_string_lossy().replace('\\', "/");
        let (mut ok, mut rejected) = (0usize, 0usize);
        for (_, raw) in records(&rel) {
            match norm(&raw) {
                Ok(_) => ok += 1,
                Err(r) => {
                    rejected += 1;
                    *reasons.entry(rel.clone()).or_default().entry(r.reason).or_default() += 1;
                }
            }
        }
        got.insert(rel, (ok, rejected));
    }
    for (f, rs) in &reasons {
        eprintln!("{f}");
        for (r, n) in rs {
            eprintln!("  {n:4} {r}");
        }
    }
    for (f, (ok, rej)) in &got {
        eprintln!("(\"{f}\", {ok}, {rej}),");
    }
}
