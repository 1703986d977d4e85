//! Unit tests: config validation per key, the Graph URL and filter, Retry-After parsing,
//! backoff bounds, error hints.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use crate::client::parse_retry_after;
use crate::config::{AzureConfig, Env};
use crate::{RetryTuning, graph_scope};

struct FakeEnv(HashMap<String, String>);

impl Env for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

fn cfg(extra: &str) -> AzureConfig {
    let toml = format!(
        "name = \"corp\"\ntenant_id = \"00000000-0000-0000-0000-000000000000\"\nclient_id = \"11111111-1111-1111-1111-111111111111\"\n{extra}"
    );
    toml::from_str(&toml).unwrap_or_else(|e| panic!("config: {e}"))
}

fn keys(c: &AzureConfig, env: &FakeEnv) -> Vec<&'static str> {
    c.validate_with_env(env)
        .into_iter()
        .map(|p| p.key)
        .collect()
}

#[test]
fn validation_names_each_bad_key() {
    let env = FakeEnv(HashMap::from([(
        "AZ_SECRET".to_owned(),
        "s3cret".to_owned(),
    )]));
    assert_eq!(
        keys(&cfg("client_secret_env = \"AZ_SECRET\""), &env),
        Vec::<&str>::new()
    );
    assert_eq!(
        keys(&cfg("client_secret_env = \"MISSING\""), &env),
        vec!["client_secret_env"]
    );
    assert_eq!(
        keys(&cfg("client_secret_file = \"/nonexistent/secret\""), &env),
        vec!["client_secret_file"]
    );
    let c = cfg(
        "client_secret_env = \"AZ_SECRET\"\ngraph_url = \"http://graph.example\"\nauthority_host = \"not a url\"\napi_version = \"v2\"\nca_file = \"/nonexistent/ca.pem\"\npage_size = 5000\nsign_in_event_types = [\"bogus\"]",
    );
    assert_eq!(
        keys(&c, &env),
        vec![
            "graph_url",
            "authority_host",
            "api_version",
            "ca_file",
            "sign_in_event_types",
            "page_size"
        ]
    );
    let mut bad_ids = cfg("client_secret_env = \"AZ_SECRET\"");
    bad_ids.tenant_id = "contoso".to_owned();
    bad_ids.client_id = Some("123".to_owned());
    assert_eq!(keys(&bad_ids, &env), vec!["tenant_id", "client_id"]);
    // Certificate auth is reported, not silently ignored.
    assert_eq!(
        keys(&cfg("certificate_file = \"/x.pem\""), &env),
        vec!["certificate_file"]
    );
    // Managed identity needs no secret and no client id.
    let mut mi = cfg("auth = \"managed_identity\"");
    mi.client_id = None;
    assert_eq!(keys(&mi, &env), Vec::<&str>::new());
    // Unknown keys are rejected by serde.
    let unknown = toml::from_str::<AzureConfig>(
        "name = \"x\"\ntenant_id = \"00000000-0000-0000-0000-000000000000\"\nclient_secrett = \"x\"",
    );
    assert!(unknown.is_err());
}

#[test]
fn empty_secret_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("secret");
    std::fs::write(&f, "\n").unwrap_or_else(|e| panic!("{e}"));
    let c = cfg(&format!("client_secret_file = \"{}\"", f.display()));
    assert_eq!(
        keys(&c, &FakeEnv(HashMap::new())),
        vec!["client_secret_file"]
    );
}

#[test]
fn graph_url_and_filter() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("secret");
    std::fs::write(&f, "s").unwrap_or_else(|e| panic!("{e}"));
    let c = cfg(&format!(
        "client_secret_file = \"{}\"\ngraph_url = \"https://graph.microsoft.us/\"",
        f.display()
    ));
    let col = crate::AzureCollector::new(c).unwrap_or_else(|e| panic!("{e}"));
    let start = Utc
        .with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let end = Utc
        .with_ymd_and_hms(2026, 11, 30, 1, 0, 0)
        .single()
        .unwrap_or_default();
    let u = col.first_url(start, end, Some("nonInteractiveUser"));
    assert_eq!(u.path(), "/beta/auditLogs/signIns");
    let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    assert_eq!(
        q,
        vec![
            (
                "$filter".to_owned(),
                "createdDateTime ge 2026-11-30T00:00:00Z and createdDateTime le 2026-11-30T01:00:00Z and signInEventTypes/any(t: t eq 'nonInteractiveUser')".to_owned()
            ),
            ("$top".to_owned(), "1000".to_owned()),
        ]
    );
    assert_eq!(
        graph_scope("https://graph.microsoft.us/"),
        "https://graph.microsoft.us/.default"
    );
}

#[test]
fn retry_after_and_backoff() {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
        .single()
        .unwrap_or_default();
    assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
    assert_eq!(
        parse_retry_after("Mon, 30 Nov 2026 00:00:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(parse_retry_after("soon", now), None);
    let t = RetryTuning::default();
    for attempt in 0..20 {
        let d = t.backoff(attempt);
        assert!(d <= t.cap, "{d:?}");
        assert!(d >= (t.base * (1 << attempt.min(16))).min(t.cap) / 2);
    }
}

/// The binary spawns polls on tokio tasks: the future must be `Send`.
#[allow(dead_code)]
fn poll_future_is_send(c: &mut crate::AzureCollector, store: &mut crosswind_store::Store) {
    fn assert_send<T: Send>(_: T) {}
    assert_send(c.poll_once(store, Utc::now()));
}
