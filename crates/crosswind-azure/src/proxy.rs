//! The HTTPS proxy the collector's requests go through, for logs and error messages only.
//!
//! reqwest picks the proxy itself: `ClientBuilder::build` adds its "system" proxy matcher
//! unless a proxy was configured explicitly (reqwest 0.13 `src/async_impl/client.rs`,
//! `auto_sys_proxy`), and that matcher reads the environment whether or not reqwest's
//! `system-proxy` feature is on (the feature only adds the macOS and Windows settings;
//! hyper-util 0.1 `src/client/proxy/matcher.rs`, `Builder::from_env`/`from_system`/`build`).
//! For an `https://` URL it uses `HTTPS_PROXY` (else `https_proxy`) if that parses, otherwise
//! `ALL_PROXY` (else `all_proxy`); `NO_PROXY`/`no_proxy` lists hosts, domains and CIDRs that
//! bypass it (loopback is *not* exempt unless listed); with `REQUEST_METHOD` set (a CGI
//! process) the environment is ignored. Credentials in the URL become
//! `Proxy-Authorization: Basic` on the `CONNECT`.
//!
//! This module mirrors that choice so a failure can say which proxy failed, with any user name
//! and password in its URL replaced by `***`.

use std::error::Error as StdError;

use crate::config::Env;

/// The proxy reqwest will tunnel `https://` requests through, as configured in the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EnvProxy {
    /// The variable it came from.
    pub var: &'static str,
    /// The URL, credentials redacted.
    pub redacted: String,
    /// `None` if reqwest can use it; otherwise why not.
    pub unusable: Option<&'static str>,
}

fn first_set(env: &dyn Env, names: [&'static str; 2]) -> Option<(&'static str, String)> {
    names
        .into_iter()
        .find_map(|n| env.var(n).map(|v| (n, v.trim().to_owned())))
}

/// `scheme://[***@]host[:port]`, or `None` if it is not a URL with a host.
fn redact(raw: &str) -> Option<(String, String)> {
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let url = reqwest::Url::parse(&with_scheme).ok()?;
    let host = url.host_str()?;
    let creds = if url.username().is_empty() && url.password().is_none() {
        ""
    } else {
        "***@"
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some((
        url.scheme().to_owned(),
        format!("{}://{creds}{host}{port}", url.scheme()),
    ))
}

/// Which proxy `https://` requests will use, per the rules above (`NO_PROXY` aside).
pub(crate) fn https_proxy(env: &dyn Env) -> Option<EnvProxy> {
    if env.var("REQUEST_METHOD").is_some() {
        return None;
    }
    let candidates = [
        first_set(env, ["HTTPS_PROXY", "https_proxy"]),
        first_set(env, ["ALL_PROXY", "all_proxy"]),
    ];
    let mut unparsable = None;
    for (var, raw) in candidates.into_iter().flatten() {
        if raw.is_empty() {
            continue;
        }
        match redact(&raw) {
            Some((scheme, redacted)) => {
                let unusable = match scheme.as_str() {
                    "http" | "https" => None,
                    s if s.starts_with("socks") => {
                        Some("SOCKS proxies are not supported (an HTTP CONNECT proxy is)")
                    }
                    _ => Some("unsupported proxy scheme (use http://)"),
                };
                return Some(EnvProxy {
                    var,
                    redacted,
                    unusable,
                });
            }
            None => {
                unparsable.get_or_insert(var);
            }
        }
    }
    unparsable.map(|var| EnvProxy {
        var,
        redacted: "<unparsable>".to_owned(),
        unusable: Some("not a proxy URL; requests go direct"),
    })
}

/// `e` and its causes, each once: reqwest's own message says only "error sending request",
/// the reason (a refused tunnel, a certificate, a reset) is further down the chain. When the
/// proxy tunnel failed, names the proxy (redacted) and the variable it came from.
pub(crate) fn describe(e: &(dyn StdError + 'static), env: &dyn Env) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let msg = c.to_string();
        if !msg.is_empty() && !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cause = c.source();
    }
    if out.contains("tunnel error")
        && let Some(p) = https_proxy(env)
    {
        out.push_str(&format!(
            " (HTTPS proxy {} from {}: check that it is reachable, that it accepts the \
             credentials in the URL and allows CONNECT to this host, or list the host in NO_PROXY)",
            p.redacted, p.var
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, &'static str>);
    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| (*v).to_owned())
        }
    }
    fn vars(v: &[(&'static str, &'static str)]) -> Vars {
        Vars(v.iter().copied().collect())
    }

    #[test]
    fn picks_the_variable_reqwest_uses_and_redacts_credentials() {
        let p = https_proxy(&vars(&[
            ("https_proxy", "http://bob:hunter2@proxy.corp:3128"),
            ("ALL_PROXY", "http://all.corp:8080"),
        ]))
        .expect("proxy");
        assert_eq!(p.var, "https_proxy");
        assert_eq!(p.redacted, "http://***@proxy.corp:3128");
        assert_eq!(p.unusable, None);
        assert!(!format!("{p:?}").contains("hunter2"));

        // Upper case first; no scheme means http; ALL_PROXY when HTTPS_PROXY is unusable.
        let p = https_proxy(&vars(&[
            ("HTTPS_PROXY", "proxy.corp:3128"),
            ("https_proxy", "http://other:1"),
        ]))
        .expect("proxy");
        assert_eq!(
            (p.var, p.redacted.as_str()),
            ("HTTPS_PROXY", "http://proxy.corp:3128")
        );
        let p = https_proxy(&vars(&[
            ("HTTPS_PROXY", ""),
            ("all_proxy", "http://user@all.corp:8080"),
        ]))
        .expect("proxy");
        assert_eq!(
            (p.var, p.redacted.as_str()),
            ("all_proxy", "http://***@all.corp:8080")
        );

        let p = https_proxy(&vars(&[("HTTPS_PROXY", "socks5://s:9050")])).expect("proxy");
        assert!(p.unusable.is_some());
        let p = https_proxy(&vars(&[("HTTPS_PROXY", "http://")])).expect("proxy");
        assert_eq!(p.redacted, "<unparsable>");
        assert!(p.unusable.is_some());

        assert_eq!(https_proxy(&vars(&[("HTTP_PROXY", "http://p:1")])), None);
        assert_eq!(
            https_proxy(&vars(&[
                ("HTTPS_PROXY", "http://p:1"),
                ("REQUEST_METHOD", "GET")
            ])),
            None
        );
    }

    #[test]
    fn describe_walks_the_chain_and_names_the_proxy() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl StdError for E {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "error sending request",
            Some(Box::new(E(
                "client error (Connect)",
                Some(Box::new(E(
                    "tunnel error: proxy authorization required",
                    None,
                ))),
            ))),
        );
        let env = vars(&[("HTTPS_PROXY", "http://u:pw-123@127.0.0.1:3128")]);
        let s = describe(&e, &env);
        assert!(
            s.starts_with(
                "error sending request: client error (Connect): tunnel error: proxy authorization required (HTTPS proxy http://***@127.0.0.1:3128 from HTTPS_PROXY"
            ),
            "{s}"
        );
        assert!(!s.contains("pw-123"), "{s}");
        // No proxy named when the tunnel is not the problem.
        let e = E("error sending request", Some(Box::new(E("reset", None))));
        assert_eq!(describe(&e, &env), "error sending request: reset");
    }
}
