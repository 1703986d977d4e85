//! Helpers shared by the end-to-end tests: the built `crosswind` binary, the public sample data
//! in `../shared/data`, and unwrapping its test-only wrappers.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::value::RawValue;

/// `../shared/data` beside the repository, or `$CROSSWIND_SHARED_DATA`.
pub fn shared_data_dir() -> PathBuf {
    std::env::var_os("CROSSWIND_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// The `crosswind` binary cargo built for this test run (`$CROSSWIND_BIN` overrides).
pub fn crosswind_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CROSSWIND_BIN") {
        return PathBuf::from(bin);
    }
    // Test executables live in <target>/<profile>/deps; the binary in <target>/<profile>.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable sits in <profile>/deps");
    let bin = profile_dir.join("crosswind");
    assert!(
        bin.exists(),
        "{} not built: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Runs `crosswind ARGS` with no config file and returns its output.
pub fn crosswind(args: &[&str]) -> Output {
    Command::new(crosswind_bin())
        .args(args)
        .env_remove("CROSSWIND_CONFIG")
        .env_remove("CROSSWIND_STORE")
        .output()
        .expect("crosswind runs")
}

/// Runs `crosswind ARGS` with extra environment variables (e.g. the AWS SDK's credentials).
pub fn crosswind_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(crosswind_bin())
        .args(args)
        .env_remove("CROSSWIND_CONFIG")
        .env_remove("CROSSWIND_STORE")
        .envs(env.iter().copied())
        .output()
        .expect("crosswind runs")
}

/// `crosswind --config CONFIG forward --once`, run on a blocking-capable thread so a loopback
/// HEC simulator on the test's runtime keeps answering (multi-thread runtime only).
pub fn forward_once(config: &str) -> Output {
    let args = ["--config", config, "forward", "--once"];
    tokio::task::block_in_place(|| crosswind(&args))
}

/// How many events each sourcetype got, from HEC events as received.
pub fn count_by_sourcetype(
    events: &[serde_json::Value],
) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for e in events {
        *counts
            .entry(e["sourcetype"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    counts
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    event: &'a RawValue,
}

/// One line of a shared data file with its test wrapper removed: "wrapped" lines
/// (`{"_source":…,"event":<record>}`) give the record's exact bytes, "inline" lines (the record
/// plus `_source`) give the record without that key. The wrapper is not a real format.
pub fn unwrap_test_line(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    if line.starts_with("{\"_source\"")
        && let Ok(w) = serde_json::from_str::<Wrapped<'_>>(line)
    {
        return Some(w.event.get().to_string());
    }
    if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(line)
        && map.remove("_source").is_some()
    {
        return Some(serde_json::Value::Object(map).to_string());
    }
    Some(line.to_string())
}

/// A shared data file as NDJSON of native records, written into `dir`.
pub fn unwrapped_copy(rel: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(shared_data_dir().join(rel))
        .unwrap_or_else(|e| panic!("read {rel}: {e}"));
    let mut out = String::with_capacity(text.len());
    for line in text.lines().filter_map(unwrap_test_line) {
        out.push_str(&line);
        out.push('\n');
    }
    let path = dir.join(rel.replace('/', "__"));
    std::fs::write(&path, out).expect("write unwrapped copy");
    path
}

/// Every `.ndjson` file under the shared data folder, relative paths, sorted.
pub fn shared_data_files() -> Vec<String> {
    let root = shared_data_dir();
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let dir = dir.expect("dir entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("read dir") {
            let f = f.expect("entry").path();
            if f.extension().is_some_and(|e| e == "ndjson") {
                files.push(
                    f.strip_prefix(&root)
                        .expect("under root")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    files.sort();
    files
}

/// Every file under `dir`, recursively (a `simulate --out` tree, say).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
