//! What a config may expose, and what `validate` warns about: errors that never quote a secret
//! (toml's own `Display` prints the offending source line, and `validate` runs before every
//! start, into the journal), secret files others can read, and settings that send secrets or
//! data in clear text.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::{Config, Problem};

/// Keys people paste a secret under; crosswind reads secrets only from `*_file` / `*_env` keys.
const PASTED_SECRET_KEYS: [&str; 7] = [
    "token",
    "hec_token",
    "client_secret",
    "certificate_password",
    "password",
    "secret",
    "api_key",
];

/// Whether `key`'s value is, or leads to, a secret: a pasted secret, any `*_file` or `*_env`.
fn holds_secret(key: &str) -> bool {
    PASTED_SECRET_KEYS.contains(&key)
        || key.ends_with("_file")
        || key.ends_with("_env")
        || ["secret", "password", "token"]
            .iter()
            .any(|word| key.contains(word))
}

/// A TOML error as `line L, column C: message`, without the source line toml's `Display`
/// quotes, and without the value of a secret key should serde have quoted it (`invalid type:
/// string "…"`).
pub fn toml_error_message(error: &toml::de::Error, text: &str) -> String {
    let mut message = error.message().trim_end().replace('\n', " ");
    let Some(start) = error.span().map(|s| s.start.min(text.len())) else {
        return message;
    };
    let Some(before) = text.get(..start) else {
        return message;
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_no = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or_default();
    let (key, value) = line.split_once('=').unwrap_or((line, ""));
    let key = key.trim().trim_matches(['"', '\'']);
    let value = value.trim().trim_matches(['"', '\'']).trim();
    if holds_secret(key) && !value.is_empty() && message.contains(value) {
        message = message.replace(value, "(value not shown)");
    }
    if PASTED_SECRET_KEYS.contains(&key) {
        message.push_str(
            "; secrets are never written in the config: put each in a file or an environment \
             variable and name it with the *_file or *_env key",
        );
    }
    let at = if line.contains('=') {
        format!("`{key}`")
    } else {
        line.trim().to_string()
    };
    format!("line {line_no}, column {column}, at {at}: {message}")
}

/// What `validate` and `run` warn about without refusing the config (exit 0): the config or a
/// secret file readable by others (or by a group other than the process's own: the package
/// gives the config to `root:crosswind` 0640, which is intended) when it names or holds
/// secrets; settings that expose the HEC token or the data: an `http://` HEC URL to another
/// host, `tls_verify = false`, credentials in the HEC URL, `[http] listen` off loopback.
pub fn warnings(config: &Config, config_path: &Path) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut warn = |key: String, message: String| out.push(Problem { key, message });
    let secret_files = secret_files(config);
    let names_secrets = !secret_files.is_empty()
        || config
            .splunk
            .as_ref()
            .is_some_and(|s| s.token_env.is_some())
        || config
            .azure
            .iter()
            .any(|a| a.client_secret_env.is_some() || a.certificate_password_env.is_some());
    if names_secrets && let Some(who) = readable_by_others(config_path) {
        warn(
            "config".into(),
            format!(
                "{} is readable by {who} and names the secrets' files or variables; \
                 make it 0600 or 0640 with the daemon's group (chmod o-rwx)",
                config_path.display()
            ),
        );
    }
    for (key, path) in secret_files {
        if let Some(who) = readable_by_others(&path) {
            warn(
                key,
                format!(
                    "{} holds a secret and is readable by {who}; make it 0600 (chmod 600)",
                    path.display()
                ),
            );
        }
    }
    if let Some(splunk) = &config.splunk
        && let Ok(url) = url::Url::parse(&splunk.url)
    {
        if url.scheme() == "http" && !url.host_str().is_some_and(is_loopback_host) {
            warn(
                "splunk.url".into(),
                "is http://: the HEC token and every event cross the network in clear text; \
                 use https://"
                    .into(),
            );
        }
        if !url.username().is_empty() || url.password().is_some() {
            warn(
                "splunk.url".into(),
                "carries a user name or password: HEC authenticates with the token \
                 (token_file / token_env); remove them from the URL"
                    .into(),
            );
        }
        if !splunk.tls_verify {
            warn(
                "splunk.tls_verify".into(),
                "is false: anyone on the path can pose as Splunk and read the HEC token and \
                 the events; trust the server's CA with ca_file instead"
                    .into(),
            );
        }
    }
    if let Some(http) = &config.http
        && !http.listen.ip().is_loopback()
    {
        warn(
            "http.listen".into(),
            format!(
                "{} is reachable from the network: /metrics and /readyz answer without \
                 authentication (collector names, errors, outbox depth); bind 127.0.0.1 or a \
                 management network",
                http.listen
            ),
        );
    }
    out
}

/// The `*_file` keys that hold a secret, with their full key. Kubernetes sets the mode of the
/// federated token file, so it is not the operator's to fix and is left out.
fn secret_files(config: &Config) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    if let Some(path) = config.splunk.as_ref().and_then(|s| s.token_file.clone()) {
        files.push(("splunk.token_file".to_string(), path));
    }
    for (i, azure) in config.azure.iter().enumerate() {
        for (key, path) in [
            ("client_secret_file", &azure.client_secret_file),
            ("certificate_file", &azure.certificate_file),
            (
                "certificate_password_file",
                &azure.certificate_password_file,
            ),
        ] {
            if let Some(path) = path {
                files.push((format!("azure[{i}].{key}"), path.clone()));
            }
        }
    }
    files
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Who besides the owner can read `path`: `"others"`, `"group <gid>"` (a group this process is
/// not running as), or `None`. A file that cannot be read is `validate`'s other concern.
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.mode();
    if mode & 0o004 != 0 {
        return Some("others".into());
    }
    if mode & 0o040 != 0 && effective_gid() != Some(meta.gid()) {
        return Some(format!("group {}", meta.gid()));
    }
    None
}

/// This process's effective group id, from `/proc/self/status` (`Gid: real effective ...`).
fn effective_gid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Gid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Xq48Q~s0me.Secret_value-Z1";

    fn parse_error(text: &str) -> String {
        let e = toml::from_str::<crate::config::Config>(text).unwrap_err();
        toml_error_message(&e, text)
    }

    #[test]
    fn toml_errors_name_the_place_but_never_a_secret_line() {
        for (text, line, expect) in [
            (
                format!("[splunk]\nurl = \"https://s:8088\"\ntoken = \"{SECRET}\"\n"),
                3,
                "unknown field `token`",
            ),
            (
                format!("[[azure]]\nname = \"corp\"\nclient_secret = \"{SECRET}\"\n"),
                3,
                "unknown field `client_secret`",
            ),
            // A syntax error on the secret's own line: an unterminated string.
            (
                format!("[splunk]\nurl = \"https://s:8088\"\ntoken_env = \"{SECRET}\n"),
                3,
                "",
            ),
            (
                format!("[[azure]]\nname = \"corp\"\nclient_secret_file = [\"{SECRET}\"]\n"),
                3,
                "at `client_secret_file`",
            ),
        ] {
            let message = parse_error(&text);
            assert!(!message.contains(SECRET), "{message}");
            assert!(!message.contains("Xq48Q"), "{message}");
            assert!(
                message.starts_with(&format!("line {line}, column ")),
                "{message}"
            );
            assert!(message.contains(expect), "{message}");
        }
        let pasted = parse_error(&format!("[splunk]\ntoken = \"{SECRET}\"\n"));
        assert!(pasted.contains("*_file or *_env"), "{pasted}");
    }

    /// serde quotes a string given where another type belongs; under a secret key it is cut.
    #[test]
    fn a_quoted_value_of_a_secret_key_is_cut_from_the_message() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Probe {
            token_file: u32,
            retention_days: Option<u32>,
        }
        let text = format!("token_file = \"{SECRET}\"\n");
        let e = toml::from_str::<Probe>(&text).unwrap_err();
        assert!(e.message().contains(SECRET), "the probe must quote it");
        let message = toml_error_message(&e, &text);
        assert!(!message.contains(SECRET), "{message}");
        assert!(message.contains("(value not shown)"), "{message}");
        // Not a secret key: the value stays, it is what the reader needs.
        let text = "token_file = 1\nretention_days = \"ninety\"\n";
        let e = toml::from_str::<Probe>(text).unwrap_err();
        assert!(toml_error_message(&e, text).contains("ninety"));
    }

    fn warning_keys(text: &str, config_path: &Path) -> Vec<String> {
        std::fs::write(config_path, text).unwrap();
        let config = crate::config::Config::load(config_path).unwrap();
        warnings(&config, config_path)
            .into_iter()
            .map(|w| w.key)
            .collect()
    }

    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn readable_secrets_and_insecure_settings_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("crosswind.toml");
        let token = dir.path().join("hec-token");
        std::fs::write(&token, "t").unwrap();
        let splunk = |url: &str, extra: &str| {
            format!(
                "[splunk]\nurl = \"{url}\"\ntoken_file = \"{}\"\n{extra}",
                token.display()
            )
        };
        chmod(&token, 0o600);
        let safe = splunk("https://splunk.example.com:8088", "");
        std::fs::write(&config, &safe).unwrap();
        chmod(&config, 0o600);
        assert_eq!(warning_keys(&safe, &config), Vec::<String>::new());
        // The package's layout: group-readable by the daemon's own group.
        chmod(&config, 0o640);
        chmod(&token, 0o640);
        assert_eq!(warning_keys(&safe, &config), Vec::<String>::new());
        chmod(&config, 0o644);
        chmod(&token, 0o604);
        assert_eq!(
            warning_keys(&safe, &config),
            ["config", "splunk.token_file"]
        );
        chmod(&config, 0o600);
        chmod(&token, 0o600);
        // A world-readable config that names no secret is fine.
        chmod(&config, 0o644);
        assert_eq!(
            warning_keys("[store]\nretention_days = 30\n", &config),
            Vec::<String>::new()
        );
        chmod(&config, 0o600);
        for (text, expect) in [
            (
                splunk("http://splunk.example.com:8088", ""),
                vec!["splunk.url"],
            ),
            (splunk("http://127.0.0.1:8088", ""), vec![]),
            (
                splunk("https://admin:hunter2@splunk.example.com:8088", ""),
                vec!["splunk.url"],
            ),
            (
                splunk("https://splunk.example.com:8088", "tls_verify = false\n"),
                vec!["splunk.tls_verify"],
            ),
            (
                format!("{safe}\n[http]\nlisten = \"0.0.0.0:9187\"\n"),
                vec!["http.listen"],
            ),
            (
                format!("{safe}\n[http]\nlisten = \"127.0.0.1:9187\"\n"),
                vec![],
            ),
        ] {
            assert_eq!(warning_keys(&text, &config), expect, "{text}");
        }
        let text = splunk("https://admin:hunter2@splunk.example.com:8088", "");
        std::fs::write(&config, &text).unwrap();
        let loaded = crate::config::Config::load(&config).unwrap();
        for w in warnings(&loaded, &config) {
            assert!(!w.message.contains("hunter2"), "{w}");
        }
    }
}
