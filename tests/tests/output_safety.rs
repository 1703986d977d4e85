//! End to end: what the CLI writes for a reader. Record fields an attacker chooses (the app
//! name, the user agent) reach a terminal without their control characters and a spreadsheet
//! without a formula it would run; a reader that closes the pipe early ends the command quietly
//! with exit 0, also when stderr is the same pipe.

#![forbid(unsafe_code)]

use std::process::{Command, Stdio};

use crosswind_tests::{crosswind, crosswind_bin, stderr, stdout};
use serde_json::json;

const USER: &str = "adelev@contoso.com";

/// A store holding one risky, successful Graph sign-in whose app name carries a terminal
/// escape sequence and a spreadsheet formula.
fn store_with_hostile_signin(dir: &std::path::Path) -> String {
    let record = json!({
        "id": "66ea54eb-6301-4ee5-be62-ff5a759b0100",
        "createdDateTime": "2025-03-04T05:06:07Z",
        "userDisplayName": "Adele Vance",
        "userPrincipalName": USER,
        "userId": "d7cc485d-2c1b-422c-98fd-5ce52859a4a3",
        "appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "appDisplayName": "=HYPERLINK(\"http://x\")\u{1b}]0;owned\u{7}\u{1b}[2J",
        "ipAddress": "203.0.113.7",
        "clientAppUsed": "Browser",
        "isInteractive": true,
        "riskLevelDuringSignIn": "high",
        "riskState": "atRisk",
        "riskEventTypes_v2": ["anonymizedIPAddress"],
        "status": {"errorCode": 0},
        "location": {"city": "Amsterdam", "countryOrRegion": "NL"},
    });
    let file = dir.join("signins.json");
    std::fs::write(&file, format!("{record}\n")).unwrap();
    let db = dir.join("cw.db").display().to_string();
    let out = crosswind(&["--store", &db, "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    db
}

#[test]
fn tables_escape_control_characters_and_csv_neutralises_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_hostile_signin(dir.path());
    let table = crosswind(&["--store", &db, "hunt", "risky-signins"]);
    let text = stdout(&table);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    assert!(text.contains(USER), "{text}");
    assert!(!text.contains(['\u{1b}', '\u{7}']), "{text:?}");
    assert!(text.contains("\\x1b]0;owned\\x07"), "{text}");
    let explain = crosswind(&["--store", &db, "explain", USER]);
    assert_eq!(explain.status.code(), Some(0), "{}", stderr(&explain));
    assert!(!stdout(&explain).contains(['\u{1b}', '\u{7}']));
    let csv = crosswind(&["--store", &db, "hunt", "risky-signins", "--format", "csv"]);
    let text = stdout(&csv);
    assert!(
        text.contains(",\"'=HYPERLINK(\"\"http://x\"\")"),
        "{text:?}"
    );
    assert!(!text.contains(",=HYPERLINK"), "{text:?}");
}

/// The reader is gone before the command writes (as after `| head -1` read its line): exit 0
/// and nothing on stderr, never "Broken pipe", never a panic.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_hostile_signin(dir.path());
    for args in [
        vec!["hunt", "--list"],
        vec!["--store", &db, "explain", USER],
        vec!["--store", &db, "hunt", "risky-signins", "--format", "json"],
        vec!["--store", &db, "status"],
    ] {
        // stdout: a pipe whose read end is closed at once; stderr captured.
        let mut child = Command::new(crosswind_bin())
            .args(&args)
            .env_remove("CROSSWIND_CONFIG")
            .env_remove("CROSSWIND_STORE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
        // stdout and stderr the same closed pipe (`2>&1 | head -1`).
        let (reader, writer) = std::io::pipe().unwrap();
        let child = Command::new(crosswind_bin())
            .args(&args)
            .env_remove("CROSSWIND_CONFIG")
            .env_remove("CROSSWIND_STORE")
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .spawn()
            .unwrap();
        drop(reader);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} with stderr on the pipe"
        );
    }
}
