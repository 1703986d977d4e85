//! End to end: `crosswind collect --once` behind an HTTP `CONNECT` proxy (the loopback one in
//! `crosswind_sim::proxy`), configured the way a corporate host does it: `HTTPS_PROXY` in the
//! environment of the crosswind process. The variables are set on the child process only
//! (the tests never call `set_var`).
//!
//! reqwest (0.13, without the `system-proxy` feature) reads `HTTPS_PROXY`/`https_proxy`,
//! `ALL_PROXY`/`all_proxy` and `NO_PROXY`/`no_proxy` itself and does not exempt loopback
//! addresses: only what `NO_PROXY` lists bypasses the proxy. So the simulators on `127.0.0.1`
//! are reached through the proxy as long as the child's `NO_PROXY` is empty (it is forced empty
//! here, whatever the developer's shell has), and bypass it when `NO_PROXY=127.0.0.1`.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crosswind_model::RecordSource;
use crosswind_sim::graph::GraphSim;
use crosswind_sim::proxy::ConnectProxy;
use crosswind_sim::token::{TokenSim, TokenSimConfig};
use crosswind_sim::{Dataset, EntraSims, Scenario, SimConfig, generate};
use crosswind_store::Store;

/// Proxy variables a developer's shell may carry; the child gets none of them but ours.
const PROXY_VARS: [&str; 9] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

const PROXY_USER: &str = "svc-egress";
const PROXY_PASSWORD: &str = "pr0xy-Pa55-9d1f";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    token: TokenSim,
    graph: GraphSim,
    data: Dataset,
    client_secret: String,
}

async fn start() -> Env {
    let sim = SimConfig {
        users: 40,
        hours: 6,
        ..SimConfig::default()
    };
    let data = generate(&sim, &[Scenario::Mixed]);
    let token_cfg = TokenSimConfig {
        // Tokens die after 3 Graph calls: azure_identity asks the token endpoint again, mid-run.
        max_uses: Some(3),
        ..TokenSimConfig::default()
    };
    let EntraSims { ca, token, graph } = EntraSims::start(&data, token_cfg.clone())
        .await
        .expect("entra sims");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    ca.write_ca_file(&ca_file).expect("ca file");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{}\n", token_cfg.client_secret)).expect("secret");
    let db = dir.path().join("cw.db");
    let config = dir.path().join("crosswind.toml");
    std::fs::write(
        &config,
        format!(
            r#"[store]
path = "{db}"

[[azure]]
name = "corp"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_file = "{secret}"
graph_url = "{graph}"
authority_host = "{authority}"
ca_file = "{ca}"
page_size = 5
max_requests_per_10s = 0
max_retries = 3
request_timeout_secs = 10
"#,
            db = db.display(),
            tenant = token_cfg.tenant_id,
            client = token_cfg.client_id,
            secret = secret_file.display(),
            graph = graph.url(),
            authority = token.authority_host(),
            ca = ca_file.display(),
        ),
    )
    .expect("config");
    Env {
        dir,
        config,
        db,
        token,
        graph,
        data,
        client_secret: token_cfg.client_secret,
    }
}

/// `crosswind --config … collect --once` with exactly `env` as its proxy environment.
async fn collect(config: &Path, env: &[(&str, &str)]) -> Output {
    let config = config.to_str().expect("utf-8 path").to_owned();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(crosswind_tests::crosswind_bin());
        cmd.args([
            "--config",
            &config,
            "collect",
            "--once",
            "--since",
            "2026-11-29T00:00:00Z",
        ])
        .env_remove("CROSSWIND_CONFIG")
        .env_remove("CROSSWIND_STORE");
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(env).output().expect("crosswind runs")
    })
    .await
    .expect("join")
}

fn stored_ids(path: &Path) -> BTreeSet<String> {
    if !path.exists() {
        return BTreeSet::new();
    }
    let store = Store::open(path).expect("open store");
    let ids = store
        .record_ids(RecordSource::EntraSignIn)
        .expect("record ids");
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "an id stored twice");
    set
}

fn data_ids(data: &Dataset) -> BTreeSet<String> {
    data.signins
        .iter()
        .filter_map(|s| s.get("id").and_then(|v| v.as_str()).map(str::to_owned))
        .collect()
}

/// `host:port` of an `https://host:port` URL.
fn authority(url: &str) -> String {
    url.trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn assert_no_secrets(env: &Env, out: &str) {
    for secret in [PROXY_PASSWORD, env.client_secret.as_str()] {
        assert!(!out.contains(secret), "a secret leaked: {out}");
    }
    // Nor the Basic header value built from the credentials.
    assert!(
        !out.contains("c3ZjLWVncmVzczpwcjB4eS1QYTU1LTlkMWY"),
        "{out}"
    );
}

/// Through an authenticating proxy from `HTTPS_PROXY` (credentials in the URL): both the
/// token requests azure_identity makes and the Graph requests go through the tunnel, TLS to the
/// simulators is verified end to end with `ca_file`, and the store holds exactly what Graph
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collects_through_an_authenticating_https_proxy() {
    let env = start().await;
    let proxy = ConnectProxy::start(Some((PROXY_USER, PROXY_PASSWORD)))
        .await
        .expect("proxy");
    let url = proxy.url_with_credentials(PROXY_USER, PROXY_PASSWORD);
    let out = collect(
        &env.config,
        &[("HTTPS_PROXY", url.as_str()), ("NO_PROXY", "")],
    )
    .await;
    let (so, se) = (crosswind_tests::stdout(&out), crosswind_tests::stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    assert_no_secrets(&env, &format!("{so}\n{se}"));

    let served = env.graph.served_ids();
    assert!(!served.is_empty(), "graph served nothing");
    assert_eq!(stored_ids(&env.db), served, "stored != served");
    assert_eq!(served, data_ids(&env.data), "every generated sign-in, once");
    assert!(
        env.token.issued() >= 2,
        "the token never came back after 401"
    );
    assert!(
        env.graph.statuses().contains(&401),
        "no token expired mid-run"
    );

    let token_host = authority(&env.token.authority_host());
    let graph_host = authority(&env.graph.url());
    assert_ne!(token_host, graph_host);
    assert_eq!(
        proxy.tunnelled_targets(),
        [token_host, graph_host].into_iter().collect(),
        "the proxy did not carry both the token and the Graph traffic"
    );
    assert_eq!(proxy.refused(), 0, "{:?}", proxy.attempts());
    assert!(proxy.bytes_tunnelled() > 0);
    println!(
        "proxy e2e: {} sign-ins, {} graph requests, {} tokens, {} CONNECTs",
        served.len(),
        env.graph.requests(),
        env.token.issued(),
        proxy.attempts().len()
    );
}

/// `ALL_PROXY` (lower case) is used when no `HTTPS_PROXY` is set, and `NO_PROXY=127.0.0.1`
/// exempts the simulators: loopback is not bypassed unless listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_proxy_is_honoured_and_no_proxy_bypasses_it() {
    let env = start().await;
    let proxy = ConnectProxy::start(None).await.expect("proxy");
    let url = proxy.url();
    let out = collect(
        &env.config,
        &[("all_proxy", url.as_str()), ("NO_PROXY", "127.0.0.1")],
    )
    .await;
    let (so, se) = (crosswind_tests::stdout(&out), crosswind_tests::stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    assert!(proxy.attempts().is_empty(), "{:?}", proxy.attempts());
    assert_eq!(stored_ids(&env.db), env.graph.served_ids());

    // Same again without NO_PROXY, into a fresh store: all through the proxy.
    std::fs::remove_file(&env.db).expect("remove db");
    let out = collect(&env.config, &[("all_proxy", url.as_str())]).await;
    let (so, se) = (crosswind_tests::stdout(&out), crosswind_tests::stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{so}\n{se}");
    assert_eq!(proxy.tunnelled_targets().len(), 2, "{:?}", proxy.attempts());
    assert_eq!(stored_ids(&env.db), data_ids(&env.data));
}

/// A proxy that refuses (407 without credentials; wrong credentials) or is not there fails the
/// run with an error that names the proxy problem, leaks no credential, and stores nothing.
/// TLS stays verified through the tunnel: without `ca_file` the run fails on the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_or_missing_proxy_fails_clearly_and_stores_nothing() {
    let env = start().await;
    let proxy = ConnectProxy::start(Some((PROXY_USER, PROXY_PASSWORD)))
        .await
        .expect("proxy");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let cases = [
        (
            "no credentials",
            proxy.url(),
            "proxy authorization required",
        ),
        (
            "wrong credentials",
            proxy.url_with_credentials(PROXY_USER, "not-the-password"),
            "proxy authorization required",
        ),
        (
            "nothing listening",
            format!("http://{PROXY_USER}:{PROXY_PASSWORD}@{dead}"),
            "proxy",
        ),
    ];
    for (case, url, want) in cases {
        let out = collect(&env.config, &[("HTTPS_PROXY", url.as_str())]).await;
        let (so, se) = (crosswind_tests::stdout(&out), crosswind_tests::stderr(&out));
        let all = format!("{so}\n{se}");
        assert_ne!(out.status.code(), Some(0), "{case}: {all}");
        assert!(all.contains(want), "{case}: no {want:?} in {all}");
        assert!(all.contains("token request failed"), "{case}: {all}");
        assert_no_secrets(&env, &all);
        assert!(!all.contains("not-the-password"), "{case}: {all}");
        assert!(stored_ids(&env.db).is_empty(), "{case}");
        println!("{case}: {}", se.trim_end());
    }
    assert_eq!(env.token.requests(), 0, "the token endpoint was reached");
    assert_eq!(env.graph.requests(), 0, "graph was reached");
    assert!(proxy.refused() >= 2);
    assert!(proxy.tunnelled_targets().is_empty());

    // The tunnel does not switch TLS verification off: the same proxy, right credentials, but a
    // config without the simulators' CA fails on the certificate and stores nothing.
    let text = std::fs::read_to_string(&env.config).expect("config");
    let no_ca: String = text
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    let no_ca_config = env.dir.path().join("no-ca.toml");
    std::fs::write(&no_ca_config, no_ca).expect("config");
    let url = proxy.url_with_credentials(PROXY_USER, PROXY_PASSWORD);
    let out = collect(&no_ca_config, &[("HTTPS_PROXY", url.as_str())]).await;
    let (so, se) = (crosswind_tests::stdout(&out), crosswind_tests::stderr(&out));
    assert_ne!(out.status.code(), Some(0), "{so}\n{se}");
    assert!(
        se.to_ascii_lowercase().contains("certificate"),
        "no certificate error in {se}"
    );
    assert_no_secrets(&env, &format!("{so}\n{se}"));
    assert!(stored_ids(&env.db).is_empty());
    assert_eq!(env.token.issued(), 0);
    assert!(
        !proxy.tunnelled_targets().is_empty(),
        "the tunnel was not used"
    );
    println!("without ca_file: {}", se.trim_end());
}
