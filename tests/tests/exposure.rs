//! End to end: what crosswind could expose. `validate` (which systemd runs before every start,
//! into the journal) and a SIGHUP reload never print a secret pasted into the config or where a
//! file's path or a variable's name belongs; `validate` warns, exit 0, about readable secret
//! files and insecure settings; the daemon's store, WAL, shared memory and lock file are 0600
//! even under umask 000.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crosswind_tests::{crosswind, crosswind_bin, stderr, stdout};

/// An Entra client secret's shape, and a HEC token's (a GUID).
const SECRET: &str = "Xq48Q~s0me.Secret_value-Z1";
const TOKEN: &str = "6f0d0c2e-1f7b-4c55-9a8e-7d1b2c3a4f5e";

fn validate(config: &Path) -> std::process::Output {
    crosswind(&["--config", config.to_str().unwrap(), "validate"])
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn validate_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crosswind.toml");
    let store = format!("[store]\npath = \"{}/cw.db\"\n", dir.path().display());
    let azure = "[[azure]]\nname = \"corp\"\ntenant_id = \"00000000-0000-0000-0000-000000000000\"\n\
                 client_id = \"11111111-1111-1111-1111-111111111111\"\n";
    for (text, key) in [
        // Pasted into the config itself: toml's error would quote the line.
        (
            format!("{store}[splunk]\nurl = \"https://s:8088\"\ntoken = \"{TOKEN}\"\n"),
            "`token`",
        ),
        (
            format!("{store}{azure}client_secret = \"{SECRET}\"\n"),
            "`client_secret`",
        ),
        // Pasted where a path or a variable name belongs.
        (
            format!("{store}[splunk]\nurl = \"https://s:8088\"\ntoken_file = \"{TOKEN}\"\n"),
            "splunk.token_file",
        ),
        (
            format!("{store}[splunk]\nurl = \"https://s:8088\"\ntoken_env = \"{TOKEN}\"\n"),
            "splunk.token_env",
        ),
        (
            format!("{store}{azure}client_secret_file = \"{SECRET}\"\n"),
            "client_secret_file",
        ),
        (
            format!("{store}{azure}client_secret_env = \"{SECRET}\"\n"),
            "client_secret_env",
        ),
        (
            format!(
                "{store}{azure}certificate_file = \"/nonexistent/c.pem\"\n\
                 certificate_password_env = \"{SECRET}\"\n"
            ),
            "certificate_password_env",
        ),
    ] {
        std::fs::write(&config, &text).unwrap();
        let out = validate(&config);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(2), "{text}\n{all}");
        assert!(all.contains(key), "{text}\n{all}");
        for secret in [SECRET, TOKEN, "Xq48Q", "6f0d0c2e"] {
            assert!(!all.contains(secret), "{text}\n{all}");
        }
    }
}

#[test]
fn validate_warns_about_readable_secrets_and_insecure_settings_but_passes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crosswind.toml");
    let token = dir.path().join("hec-token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}/cw.db\"\n[splunk]\nurl = \"http://admin:hunter2@splunk.example.com:8088\"\n\
             token_file = \"{}\"\ntls_verify = false\n[http]\nlisten = \"0.0.0.0:9187\"\n",
            dir.path().display(),
            token.display()
        ),
    )
    .unwrap();
    chmod(&config, 0o644);
    chmod(&token, 0o644);
    let out = validate(&config);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for key in [
        ": warning: config:",
        ": warning: splunk.token_file:",
        ": warning: splunk.url: is http://",
        ": warning: splunk.url: carries a user name or password",
        ": warning: splunk.tls_verify:",
        ": warning: http.listen:",
    ] {
        assert!(err.contains(key), "{key}\n{err}");
    }
    assert!(!err.contains("hunter2") && !err.contains(TOKEN), "{err}");
    assert!(stdout(&out).contains(": ok"), "{}", stdout(&out));
    // Fixed: silent.
    chmod(&config, 0o600);
    chmod(&token, 0o600);
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}/cw.db\"\n[splunk]\nurl = \"https://splunk.example.com:8088\"\n\
             token_file = \"{}\"\n[http]\nlisten = \"127.0.0.1:9187\"\n",
            dir.path().display(),
            token.display()
        ),
    )
    .unwrap();
    let out = validate(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(s, "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200")
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig}");
}

#[test]
fn daemon_files_are_private_under_umask_000_and_reload_errors_never_print_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crosswind.toml");
    let db = dir.path().join("cw.db");
    let log = dir.path().join("run.log");
    let port = free_port();
    let base = format!(
        "[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
        db.display()
    );
    std::fs::write(&config, &base).unwrap();
    chmod(&config, 0o600);
    // `umask 000` then exec: what the daemon creates gets exactly the mode it asks for.
    let child = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" --config \"$1\" run --log-format json")
        .arg(crosswind_bin())
        .arg(&config)
        .env_remove("CROSSWIND_STORE")
        .env_remove("NOTIFY_SOCKET")
        .env("CROSSWIND_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let daemon = Daemon(child);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(60), || healthy(port)),
        "never healthy\n{}",
        read_log()
    );
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let file = dir.path().join(format!("cw.db{suffix}"));
        assert!(
            wait_until(Duration::from_secs(30), || file.exists()),
            "{}",
            file.display()
        );
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // Reloads of configs that would echo a secret are refused without printing it.
    for (n, extra) in [
        format!("[splunk]\nurl = \"https://s:8088\"\ntoken = \"{TOKEN}\"\n"),
        format!("[splunk]\nurl = \"https://s:8088\"\ntoken_file = \"{TOKEN}\"\n"),
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(&config, format!("{base}{extra}")).unwrap();
        signal(&daemon.0, "HUP");
        assert!(
            wait_until(Duration::from_secs(30), || {
                read_log().matches("Config reload refused").count() > n
            }),
            "reload {n} not refused\n{}",
            read_log()
        );
    }
    let text = read_log();
    assert!(
        text.contains("token_file") && text.contains("`token`"),
        "{text}"
    );
    assert!(
        !text.contains(TOKEN) && !text.contains("6f0d0c2e"),
        "{text}"
    );
    signal(&daemon.0, "TERM");
}
