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

/// A secret pasted where its file's path or variable's name belongs is not echoed by
/// validation or by the secret reader (`validate` runs before every start, into the journal).
#[test]
fn a_pasted_secret_is_never_echoed() {
    const SECRET: &str = "Xq48Q~s0me.Secret_value-Z1";
    let env = FakeEnv(HashMap::new());
    for key in [
        "client_secret_file",
        "client_secret_env",
        "certificate_file",
        "federated_token_file",
    ] {
        let mut extra = format!("{key} = \"{SECRET}\"");
        if key == "federated_token_file" {
            extra.push_str("\nauth = \"workload_identity\"");
        }
        let c = cfg(&extra);
        let problems = c.validate_with_env(&env);
        assert!(!problems.is_empty(), "{key}");
        for p in &problems {
            assert!(!p.message.contains(SECRET), "{key}: {}", p.message);
        }
        if key.starts_with("client_secret") {
            let e = crate::token::read_client_secret(&c, &env).unwrap_err();
            assert!(!format!("{e} {e:?}").contains(SECRET), "{e}");
        }
    }
    let c = cfg(&format!(
        "certificate_file = \"/nonexistent/c.pem\"\ncertificate_password_env = \"{SECRET}\""
    ));
    for p in c.validate_with_env(&env) {
        assert!(!p.message.contains(SECRET), "{}", p.message);
    }
    let c = cfg(&format!(
        "certificate_file = \"/nonexistent/c.pem\"\ncertificate_password_file = \"{SECRET}\""
    ));
    let e = crate::config::read_certificate_password(&c, &env).unwrap_err();
    assert!(!e.1.contains(SECRET), "{}", e.1);
    // Paths and variable names that look like ones are still shown.
    let c = cfg("client_secret_env = \"AZ_SECRET\"");
    assert!(c.validate_with_env(&env)[0].message.contains("AZ_SECRET"));
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
fn workload_identity_needs_a_readable_token_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n").expect("write");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    let none = FakeEnv(HashMap::new());
    let from_env = |p: &std::path::Path| {
        FakeEnv(HashMap::from([(
            "AZURE_FEDERATED_TOKEN_FILE".to_owned(),
            p.display().to_string(),
        )]))
    };
    let wi = |extra: &str| cfg(&format!("auth = \"workload_identity\"\n{extra}"));
    let key = |extra: &str| format!("federated_token_file = \"{extra}\"");
    // The key, or the webhook's environment variable.
    assert_eq!(
        keys(&wi(&key(&token.display().to_string())), &none),
        Vec::<&str>::new()
    );
    assert_eq!(keys(&wi(""), &from_env(&token)), Vec::<&str>::new());
    // Neither: the message names both.
    let c = wi("");
    let probs = c.validate_with_env(&none);
    assert_eq!(probs.len(), 1, "{probs:?}");
    assert_eq!(probs[0].key, "auth");
    assert!(
        probs[0].message.contains("federated_token_file"),
        "{probs:?}"
    );
    assert!(
        probs[0].message.contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{probs:?}"
    );
    // A missing, a directory or an empty file, through the key or the variable.
    for bad in [
        dir.path().join("missing"),
        dir.path().to_path_buf(),
        empty.clone(),
    ] {
        let c = wi(&key(&bad.display().to_string()));
        let probs = c.validate_with_env(&from_env(&token));
        assert_eq!(probs.len(), 1, "{probs:?}");
        assert_eq!(probs[0].key, "federated_token_file");
        assert!(
            probs[0].message.contains(&bad.display().to_string()),
            "{probs:?}"
        );
        assert_eq!(keys(&wi(""), &from_env(&bad)), vec!["federated_token_file"]);
    }
    // Only with workload identity.
    assert_eq!(
        keys(
            &cfg(&format!(
                "client_secret_env = \"S\"\n{}",
                key(&token.display().to_string())
            )),
            &FakeEnv(HashMap::from([("S".to_owned(), "x".to_owned())]))
        ),
        vec!["federated_token_file"]
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

// === client certificates ===

mod cert {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use crosswind_model::SensitiveString;
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkcs12::Pkcs12;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::symm::Cipher;
    use openssl::x509::{X509, X509NameBuilder};

    use super::{FakeEnv, cfg, keys};
    use crate::{CertError, CertFormat, ClientCertificate, ProcessEnv, TokenSource};

    const DAY: i64 = 86_400;

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    fn rsa_key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey")
    }

    /// A self-signed certificate for `key`, valid from `from` to `to` (unix seconds).
    fn self_signed(key: &PKey<Private>, cn: &str, from: i64, to: i64) -> X509 {
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_nid(Nid::COMMONNAME, cn).expect("cn");
        let name = name.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("version");
        let serial = BigNum::from_u32(7).and_then(|n| n.to_asn1_integer());
        b.set_serial_number(&serial.expect("serial"))
            .expect("serial");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(key).expect("pubkey");
        b.set_not_before(&Asn1Time::from_unix(from).expect("nb"))
            .expect("nb");
        b.set_not_after(&Asn1Time::from_unix(to).expect("na"))
            .expect("na");
        b.sign(key, MessageDigest::sha256()).expect("sign");
        b.build()
    }

    fn valid_cert(key: &PKey<Private>) -> X509 {
        self_signed(key, "crosswind-test", now() - DAY, now() + 365 * DAY)
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    fn pkcs12(key: &PKey<Private>, cert: &X509, password: &str) -> Vec<u8> {
        let mut b = Pkcs12::builder();
        b.name("t").pkey(key).cert(cert);
        b.build2(password).expect("p12").to_der().expect("der")
    }

    fn thumbprint(cert: &X509) -> String {
        cert.digest(MessageDigest::sha1())
            .expect("sha1")
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// The PKCS#12 azure_identity will get opens with its password and holds this cert and key.
    fn assert_bundle(c: &ClientCertificate, key: &PKey<Private>, cert: &X509) {
        let pass = c.password().map(SensitiveString::expose).unwrap_or("");
        let parsed = Pkcs12::from_der(c.pkcs12().bytes())
            .and_then(|p| p.parse2(pass))
            .expect("bundle opens");
        let k = parsed.pkey.expect("key in bundle");
        assert!(k.public_eq(key));
        assert_eq!(
            parsed.cert.expect("cert in bundle").to_der().expect("der"),
            cert.to_der().expect("der")
        );
        assert_eq!(c.thumbprint(), thumbprint(cert));
    }

    #[test]
    fn pem_pkcs8_pkcs1_and_either_order_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rsa_key();
        let cert = valid_cert(&key);
        let cert_pem = cert.to_pem().expect("pem");
        let pkcs8 = key.private_key_to_pem_pkcs8().expect("pkcs8");
        let pkcs1 = key
            .rsa()
            .and_then(|r| r.private_key_to_pem())
            .expect("pkcs1");
        assert!(String::from_utf8_lossy(&pkcs8).contains("BEGIN PRIVATE KEY"));
        assert!(String::from_utf8_lossy(&pkcs1).contains("BEGIN RSA PRIVATE KEY"));
        for (name, bytes) in [
            (
                "cert-then-pkcs8.pem",
                [cert_pem.clone(), pkcs8.clone()].concat(),
            ),
            (
                "pkcs8-then-cert.pem",
                [pkcs8.clone(), cert_pem.clone()].concat(),
            ),
            ("pkcs1.pem", [cert_pem.clone(), pkcs1.clone()].concat()),
        ] {
            let path = write(dir.path(), name, &bytes);
            let c = ClientCertificate::load(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.format(), CertFormat::Pem, "{name}");
            assert!(c.password().is_none());
            assert_bundle(&c, &key, &cert);
            c.check_validity(&path, now()).expect("valid now");
            assert!(c.subject().contains("CN=crosswind-test"), "{}", c.subject());
        }
    }

    #[test]
    fn pem_with_chain_picks_the_certificate_of_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rsa_key();
        let cert = valid_cert(&key);
        let other = valid_cert(&rsa_key());
        let bytes = [
            other.to_pem().expect("pem"),
            cert.to_pem().expect("pem"),
            key.private_key_to_pem_pkcs8().expect("pkcs8"),
        ]
        .concat();
        let path = write(dir.path(), "chain.pem", &bytes);
        let c = ClientCertificate::load(&path, None).expect("loads");
        assert_bundle(&c, &key, &cert);
    }

    #[test]
    fn pkcs12_with_and_without_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rsa_key();
        let cert = valid_cert(&key);
        let plain = write(dir.path(), "plain.pfx", &pkcs12(&key, &cert, ""));
        let c = ClientCertificate::load(&plain, None).expect("plain pfx");
        assert_eq!(c.format(), CertFormat::Pkcs12);
        assert_bundle(&c, &key, &cert);

        let locked = write(
            dir.path(),
            "locked.p12",
            &pkcs12(&key, &cert, "pfx-pass-42"),
        );
        let pw = SensitiveString::new("pfx-pass-42");
        let c = ClientCertificate::load(&locked, Some(&pw)).expect("locked pfx");
        assert_bundle(&c, &key, &cert);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pfx-pass-42"), "{dbg}");
        assert!(dbg.contains(&thumbprint(&cert)), "{dbg}");

        for pw in [None, Some(SensitiveString::new("wrong-pass-17"))] {
            let e = ClientCertificate::load(&locked, pw.as_ref()).expect_err("needs password");
            assert!(matches!(e, CertError::Password { .. }), "{e}");
            let msg = e.to_string();
            assert!(msg.contains("certificate_password_file"), "{msg}");
            assert!(!msg.contains("wrong-pass-17"), "{msg}");
        }
    }

    #[test]
    fn encrypted_pem_key_needs_its_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rsa_key();
        let cert = valid_cert(&key);
        let enc = key
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"pem-pass-9")
            .expect("encrypted key");
        let path = write(
            dir.path(),
            "enc.pem",
            &[cert.to_pem().expect("pem"), enc].concat(),
        );
        let e = ClientCertificate::load(&path, None).expect_err("no password");
        assert!(matches!(e, CertError::Password { .. }), "{e}");
        let pw = SensitiveString::new("pem-pass-9");
        let c = ClientCertificate::load(&path, Some(&pw)).expect("with password");
        // Converted to a PKCS#12 without password: the password is not needed any more.
        assert!(c.password().is_none());
        assert_bundle(&c, &key, &cert);
    }

    #[test]
    fn bad_files_are_named_and_leak_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rsa_key();
        let cert = valid_cert(&key);
        let key_pem = key.private_key_to_pem_pkcs8().expect("pkcs8");
        let key_text = String::from_utf8_lossy(&key_pem).into_owned();
        // A line of the key's base64 body: must never show up in a message.
        let key_line = key_text.lines().nth(3).expect("key body").to_owned();
        type Case = (&'static str, Vec<u8>, fn(&CertError) -> bool);
        let cases: Vec<Case> = vec![
            ("empty.pem", Vec::new(), |e| {
                matches!(e, CertError::Format { .. })
            }),
            ("junk.pfx", b"\x30\x82junk that is not DER".to_vec(), |e| {
                matches!(e, CertError::Format { .. })
            }),
            ("text.pem", b"hello\n".to_vec(), |e| {
                matches!(e, CertError::Format { .. })
            }),
            ("cert-only.pem", cert.to_pem().expect("pem"), |e| {
                matches!(e, CertError::Incomplete { .. })
            }),
            ("key-only.pem", key_pem.clone(), |e| {
                matches!(e, CertError::Incomplete { .. })
            }),
            (
                "mismatch.pem",
                [
                    valid_cert(&rsa_key()).to_pem().expect("pem"),
                    key_pem.clone(),
                ]
                .concat(),
                |e| matches!(e, CertError::KeyMismatch { .. }),
            ),
            (
                "garbled-key.pem",
                [
                    cert.to_pem().expect("pem"),
                    b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
                ]
                .concat(),
                |e| matches!(e, CertError::Format { .. }),
            ),
        ];
        for (name, bytes, expected) in cases {
            let path = write(dir.path(), name, &bytes);
            let e = ClientCertificate::load(&path, None).expect_err(name);
            assert!(expected(&e), "{name}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains(name), "{name}: {msg}");
            assert!(!msg.contains(&key_line), "{name}: key material in {msg}");
            assert!(!format!("{e:?}").contains(&key_line), "{name}");
        }
        let e =
            ClientCertificate::load(&dir.path().join("missing.pem"), None).expect_err("missing");
        assert!(matches!(e, CertError::Read { .. }), "{e}");

        // A mismatched PKCS#12 cannot even be built by OpenSSL, so only PEM is checked above;
        // an EC key is refused because azure_identity signs with RSA only.
        let ec = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group"))
                .expect("ec"),
        )
        .expect("pkey");
        let ec_cert = valid_cert(&ec);
        let path = write(
            dir.path(),
            "ec.pem",
            &[
                ec_cert.to_pem().expect("pem"),
                ec.private_key_to_pem_pkcs8().expect("pkcs8"),
            ]
            .concat(),
        );
        let e = ClientCertificate::load(&path, None).expect_err("ec");
        assert!(matches!(e, CertError::NotRsa { .. }), "{e}");
        let path = write(dir.path(), "ec.pfx", &pkcs12(&ec, &ec_cert, ""));
        let e = ClientCertificate::load(&path, None).expect_err("ec pfx");
        assert!(matches!(e, CertError::NotRsa { .. }), "{e}");
    }

    #[test]
    fn expired_and_not_yet_valid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rsa_key();
        let key_pem = key.private_key_to_pem_pkcs8().expect("pkcs8");
        let expired = self_signed(&key, "old", now() - 30 * DAY, now() - DAY);
        let path = write(
            dir.path(),
            "expired.pem",
            &[expired.to_pem().expect("pem"), key_pem.clone()].concat(),
        );
        let c = ClientCertificate::load(&path, None).expect("loads");
        let e = c.check_validity(&path, now()).expect_err("expired");
        assert!(matches!(e, CertError::Expired { .. }), "{e}");
        assert!(e.to_string().contains("expired on"), "{e}");
        assert!(e.to_string().contains(&thumbprint(&expired)), "{e}");
        let future = self_signed(&key, "new", now() + DAY, now() + 30 * DAY);
        let path = write(
            dir.path(),
            "future.pem",
            &[future.to_pem().expect("pem"), key_pem].concat(),
        );
        let c = ClientCertificate::load(&path, None).expect("loads");
        let e = c.check_validity(&path, now()).expect_err("not yet valid");
        assert!(matches!(e, CertError::NotYetValid { .. }), "{e}");
    }

    #[test]
    fn validate_reports_certificate_problems_per_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rsa_key();
        let good = write(
            dir.path(),
            "good.pem",
            &[
                valid_cert(&key).to_pem().expect("pem"),
                key.private_key_to_pem_pkcs8().expect("pkcs8"),
            ]
            .concat(),
        );
        let mismatch = write(
            dir.path(),
            "mismatch.pem",
            &[
                valid_cert(&rsa_key()).to_pem().expect("pem"),
                key.private_key_to_pem_pkcs8().expect("pkcs8"),
            ]
            .concat(),
        );
        let expired = write(
            dir.path(),
            "expired.pem",
            &[
                self_signed(&key, "old", now() - 30 * DAY, now() - DAY)
                    .to_pem()
                    .expect("pem"),
                key.private_key_to_pem_pkcs8().expect("pkcs8"),
            ]
            .concat(),
        );
        let locked = write(
            dir.path(),
            "locked.pfx",
            &pkcs12(&key, &valid_cert(&key), "hunter22"),
        );
        let pw_file = write(dir.path(), "pw", b"hunter22\n");
        let env = FakeEnv(HashMap::from([(
            "PFX_PW".to_owned(),
            "hunter22".to_owned(),
        )]));
        let none: Vec<&str> = Vec::new();
        let f = |p: &Path| format!("certificate_file = \"{}\"", p.display());

        // certificate_file alone selects certificate auth.
        let c = cfg(&f(&good));
        assert_eq!(c.auth_kind(), crate::AuthKind::ClientCertificate);
        assert_eq!(keys(&c, &env), none);
        assert_eq!(
            keys(
                &cfg(&format!("{}\nauth = \"client_certificate\"", f(&good))),
                &env
            ),
            none
        );
        assert_eq!(
            keys(&cfg("auth = \"client_certificate\""), &env),
            vec!["certificate_file"]
        );
        for (file, needle) in [
            (dir.path().join("nope.pem"), "cannot read"),
            (mismatch, "does not match"),
            (expired, "expired on"),
            (locked.clone(), "cannot decrypt"),
        ] {
            let problems = cfg(&f(&file)).validate_with_env(&env);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].key, "certificate_file");
            assert!(problems[0].message.contains(needle), "{problems:?}");
            assert!(!problems[0].message.contains("hunter22"));
        }
        let pwf = format!("certificate_password_file = \"{}\"", pw_file.display());
        assert_eq!(keys(&cfg(&format!("{}\n{pwf}", f(&locked))), &env), none);
        assert_eq!(
            keys(
                &cfg(&format!(
                    "{}\ncertificate_password_env = \"PFX_PW\"",
                    f(&locked)
                )),
                &env
            ),
            none
        );
        assert_eq!(
            keys(
                &cfg(&format!(
                    "{}\ncertificate_password_env = \"NOPE\"",
                    f(&locked)
                )),
                &env
            ),
            vec!["certificate_password_env", "certificate_file"]
        );
        assert_eq!(
            keys(
                &cfg(&format!(
                    "{}\n{pwf}\ncertificate_password_env = \"PFX_PW\"",
                    f(&locked)
                )),
                &env
            ),
            vec!["certificate_password_file", "certificate_file"]
        );
        // Password keys without certificate auth are a mistake.
        assert_eq!(
            keys(
                &cfg("client_secret_env = \"PFX_PW\"\ncertificate_password_env = \"PFX_PW\""),
                &env
            ),
            vec!["certificate_password_env"]
        );
        // The config's Debug names files and variables only.
        let c = cfg(&format!("{}\n{pwf}", f(&locked)));
        assert!(!format!("{c:?}").contains("hunter22"));
    }

    /// azure_identity's own PKCS#12 parser accepts what we hand it (PEM converted in memory,
    /// and a password-protected PFX), and the token source's Debug shows no secret.
    #[test]
    fn azure_identity_accepts_the_converted_bundle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rsa_key();
        let cert = valid_cert(&key);
        let pem = write(
            dir.path(),
            "c.pem",
            &[
                cert.to_pem().expect("pem"),
                key.rsa()
                    .and_then(|r| r.private_key_to_pem())
                    .expect("pkcs1"),
            ]
            .concat(),
        );
        let pfx = write(dir.path(), "c.pfx", &pkcs12(&key, &cert, "hunter22"));
        let pw_file = write(dir.path(), "pw", b"hunter22");
        let http = reqwest::Client::new();
        for extra in [
            format!("certificate_file = \"{}\"", pem.display()),
            format!(
                "certificate_file = \"{}\"\ncertificate_password_file = \"{}\"",
                pfx.display(),
                pw_file.display()
            ),
        ] {
            let c = cfg(&extra);
            let ts = TokenSource::from_config(&c, &ProcessEnv, &http)
                .unwrap_or_else(|e| panic!("{extra}: {e}"));
            assert!(!format!("{ts:?}").contains("hunter22"));
        }
        // Wrong password: the token source refuses to start, naming the file and not the secret.
        let bad_pw = write(dir.path(), "bad", b"not-it-31");
        let c = cfg(&format!(
            "certificate_file = \"{}\"\ncertificate_password_file = \"{}\"",
            pfx.display(),
            bad_pw.display()
        ));
        let e = TokenSource::from_config(&c, &ProcessEnv, &http).expect_err("wrong password");
        assert!(e.to_string().contains("c.pfx"), "{e}");
        assert!(!e.to_string().contains("not-it-31"), "{e}");
        assert_eq!(e.kind(), "certificate");
        assert!(!e.is_retriable());
    }
}
