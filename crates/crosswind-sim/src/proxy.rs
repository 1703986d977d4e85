//! A loopback HTTP `CONNECT` proxy for tests, the kind a corporate egress proxy is: it accepts
//! `CONNECT host:port HTTP/1.1`, optionally demands `Proxy-Authorization: Basic …` (407
//! otherwise), answers `200 Connection established` and then tunnels bytes both ways without
//! looking at them (TLS stays end to end between the client and the target).
//!
//! Every `CONNECT` target is recorded, refused or not, so a test can prove which hosts a client
//! reached through the proxy. Only loopback targets are tunnelled (403 otherwise); a target
//! nothing listens on is 502; anything but `CONNECT` is 405.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;

/// One `CONNECT` the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectAttempt {
    /// The request target, `host:port`, as sent.
    pub target: String,
    /// The status the proxy answered (200, 403, 407, 502).
    pub status: u16,
}

#[derive(Default)]
struct State {
    attempts: Mutex<Vec<ConnectAttempt>>,
    bytes_tunnelled: AtomicU64,
}

/// A running proxy on `127.0.0.1:PORT`; stops when dropped.
pub struct ConnectProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ConnectProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectProxy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ConnectProxy {
    /// Starts the proxy; with `credentials = Some((user, password))` a `CONNECT` without that
    /// `Proxy-Authorization: Basic` header is answered 407. Needs a tokio runtime.
    pub async fn start(credentials: Option<(&str, &str)>) -> io::Result<ConnectProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let expected = credentials.map(|(user, pass)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            )
        });
        let state = Arc::new(State::default());
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                let expected = expected.clone();
                tokio::spawn(async move {
                    let _ = handle(conn, expected.as_deref(), &st).await;
                });
            }
        });
        Ok(ConnectProxy { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT` (no percent-encoding: keep them URL-safe).
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every `CONNECT` so far, in arrival order.
    pub fn attempts(&self) -> Vec<ConnectAttempt> {
        lock(&self.state.attempts).clone()
    }

    /// The distinct targets of `CONNECT`s that got a tunnel.
    pub fn tunnelled_targets(&self) -> std::collections::BTreeSet<String> {
        lock(&self.state.attempts)
            .iter()
            .filter(|a| a.status == 200)
            .map(|a| a.target.clone())
            .collect()
    }

    /// `CONNECT`s answered with anything but 200.
    pub fn refused(&self) -> usize {
        lock(&self.state.attempts)
            .iter()
            .filter(|a| a.status != 200)
            .count()
    }

    /// Bytes copied through finished tunnels, both directions.
    pub fn bytes_tunnelled(&self) -> u64 {
        self.state.bytes_tunnelled.load(Ordering::Relaxed)
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn answer(conn: &mut TcpStream, status: u16, reason: &str, extra: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await?;
    conn.shutdown().await
}

async fn handle(mut conn: TcpStream, expected: Option<&str>, st: &State) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() >= MAX_HEAD {
            return answer(&mut conn, 431, "Request Header Fields Too Large", "").await;
        }
        let mut chunk = [0u8; 1024];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let early = buf[head_end..].to_vec();
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (request.next().unwrap_or_default(), request.next());
    let Some(target) = target.filter(|_| method == "CONNECT") else {
        return answer(&mut conn, 405, "Method Not Allowed", "Allow: CONNECT\r\n").await;
    };
    let target = target.to_owned();
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, v)| v.trim().to_owned());
    let record = |status: u16| {
        lock(&st.attempts).push(ConnectAttempt {
            target: target.clone(),
            status,
        });
    };
    if let Some(expected) = expected
        && authorization.as_deref() != Some(expected)
    {
        record(407);
        return answer(
            &mut conn,
            407,
            "Proxy Authentication Required",
            "Proxy-Authenticate: Basic realm=\"crosswind-sim\"\r\n",
        )
        .await;
    }
    let loopback = match target.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    };
    if !loopback {
        record(403);
        return answer(&mut conn, 403, "Forbidden", "").await;
    }
    let mut upstream = match TcpStream::connect(target.as_str()).await {
        Ok(u) => u,
        Err(_) => {
            record(502);
            return answer(&mut conn, 502, "Bad Gateway", "").await;
        }
    };
    record(200);
    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    if !early.is_empty() {
        upstream.write_all(&early).await?;
    }
    if let Ok((a, b)) = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await {
        st.bytes_tunnelled.fetch_add(a + b, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server: answers every chunk with the same bytes.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = c.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// Sends `head` and reads the proxy's answer head; returns the status line and the stream.
    async fn connect(proxy: &ConnectProxy, head: &str) -> (String, TcpStream) {
        let mut c = TcpStream::connect(proxy.addr()).await.expect("connect");
        c.write_all(head.as_bytes()).await.expect("write");
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if c.read(&mut b).await.expect("read") == 0 {
                break;
            }
            got.push(b[0]);
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let status = text.lines().next().unwrap_or_default().to_owned();
        (status, c)
    }

    async fn roundtrip(c: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
        c.write_all(msg).await.expect("write");
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back).await.expect("echo");
        back
    }

    #[tokio::test]
    async fn tunnels_both_ways_and_records_the_target() {
        let target = echo().await;
        let proxy = ConnectProxy::start(None).await.expect("proxy");
        let (status, mut c) = connect(
            &proxy,
            &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        )
        .await;
        assert_eq!(status, "HTTP/1.1 200 Connection established");
        assert_eq!(roundtrip(&mut c, b"hello through").await, b"hello through");
        assert_eq!(
            roundtrip(&mut c, &[0u8, 255, 13, 10]).await,
            [0u8, 255, 13, 10]
        );
        drop(c);
        assert_eq!(
            proxy.attempts(),
            vec![ConnectAttempt {
                target: target.to_string(),
                status: 200
            }]
        );
        assert_eq!(proxy.refused(), 0);
    }

    #[tokio::test]
    async fn demands_basic_credentials_when_configured() {
        let target = echo().await;
        let proxy = ConnectProxy::start(Some(("alice", "s3cret")))
            .await
            .expect("proxy");
        let good = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let bad = base64::engine::general_purpose::STANDARD.encode("alice:wrong");
        for auth in [
            "".to_owned(),
            format!("Proxy-Authorization: Basic {bad}\r\n"),
        ] {
            let (status, mut c) =
                connect(&proxy, &format!("CONNECT {target} HTTP/1.1\r\n{auth}\r\n")).await;
            assert_eq!(status, "HTTP/1.1 407 Proxy Authentication Required");
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).await.expect("closed");
        }
        let (status, mut c) = connect(
            &proxy,
            &format!("CONNECT {target} HTTP/1.1\r\nproxy-authorization: Basic {good}\r\n\r\n"),
        )
        .await;
        assert_eq!(status, "HTTP/1.1 200 Connection established");
        assert_eq!(roundtrip(&mut c, b"authorised").await, b"authorised");
        let statuses: Vec<u16> = proxy.attempts().iter().map(|a| a.status).collect();
        assert_eq!(statuses, vec![407, 407, 200]);
        assert_eq!(proxy.refused(), 2);
        assert_eq!(
            proxy.tunnelled_targets(),
            [target.to_string()].into_iter().collect()
        );
    }

    #[tokio::test]
    async fn refuses_what_it_cannot_tunnel() {
        let proxy = ConnectProxy::start(None).await.expect("proxy");
        // Nothing listens there (bound, then closed).
        let dead = {
            let l = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
            l.local_addr().expect("addr")
        };
        let (status, _) = connect(&proxy, &format!("CONNECT {dead} HTTP/1.1\r\n\r\n")).await;
        assert_eq!(status, "HTTP/1.1 502 Bad Gateway");
        let (status, _) = connect(&proxy, "CONNECT example.com:443 HTTP/1.1\r\n\r\n").await;
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        let (status, _) = connect(&proxy, "GET http://127.0.0.1/ HTTP/1.1\r\n\r\n").await;
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
        let statuses: Vec<u16> = proxy.attempts().iter().map(|a| a.status).collect();
        assert_eq!(statuses, vec![502, 403], "a GET is not a CONNECT");
        assert_eq!(proxy.refused(), 2);
        assert!(proxy.tunnelled_targets().is_empty());
    }
}
