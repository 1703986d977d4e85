//! The binary's command-line contract: help, exit codes, clear one-line errors.

use std::process::Command;

fn crosswind(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crosswind"))
        .args(args)
        .env_remove("CROSSWIND_CONFIG")
        .env_remove("CROSSWIND_STORE")
        .output()
        .expect("crosswind runs")
}

#[test]
fn help_and_usage_exit_codes() {
    let help = crosswind(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("import"));
    assert_eq!(crosswind(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        crosswind(&["import"]).status.code(),
        Some(2),
        "import needs a file"
    );
}

#[test]
fn hunt_list_and_unknown_hunt() {
    let list = crosswind(&["hunt", "--list"]);
    assert_eq!(list.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&list.stdout).contains("risky-signins"));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cw.db");
    let unknown = crosswind(&["--store", store.to_str().unwrap(), "hunt", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown hunt"));
    let bad_time = crosswind(&[
        "--store",
        store.to_str().unwrap(),
        "hunt",
        "risky-signins",
        "--since",
        "soon",
    ]);
    assert_eq!(bad_time.status.code(), Some(2));
}

#[test]
fn unreadable_store_path_is_a_one_line_runtime_error() {
    let out = crosswind(&["--store", "/nonexistent/dir/cw.db", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot open store at /nonexistent/dir/cw.db"),
        "{err}"
    );
}

#[test]
fn validate_reports_problems_with_keys_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[store]\npath = \"/nonexistent/dir/cw.db\"\nretention_days = 0\n",
    )
    .unwrap();
    let out = crosswind(&["--config", cfg.to_str().unwrap(), "validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store.path") && err.contains("store.retention_days"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        format!("[store]\npath = \"{}/cw.db\"\n", dir.path().display()),
    )
    .unwrap();
    let ok = crosswind(&["--config", cfg.to_str().unwrap(), "validate"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    std::fs::write(&cfg, "[store\n").unwrap();
    let broken = crosswind(&["--config", cfg.to_str().unwrap(), "validate"]);
    assert_eq!(broken.status.code(), Some(2));
}
