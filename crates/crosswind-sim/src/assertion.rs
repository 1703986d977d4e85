//! Client assertions (certificate credentials) as the Microsoft identity platform checks them:
//! a JWT signed with the application's private key, sent as `client_assertion` with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//! ("Microsoft identity platform application authentication certificate credentials").
//!
//! [`verify`] checks, in this order:
//! - three base64url parts, JSON header and claims (else AADSTS50027, malformed);
//! - header `alg` is `RS256` or `PS256`;
//! - header `x5t` (SHA-1 of the certificate DER) or `x5t#S256` (SHA-256) names a certificate
//!   registered for the client (else AADSTS700027, key not found). `x5t` is accepted as base64url
//!   (as documented) and as standard base64 with padding, which is what azure_identity 1.0 and
//!   several other SDKs send and Entra accepts;
//! - the signature verifies with that certificate's public key (AADSTS700027);
//! - `aud` is the token endpoint URL (AADSTS700023), `iss` and `sub` are the `client_id`
//!   (AADSTS700021), `exp` is in the future and `nbf` not in the future, each with
//!   [`CLOCK_SKEW_SECS`] of tolerance (AADSTS700024), `jti` is a non-empty string (AADSTS50027).
//!
//! Signatures are verified with rustls-webpki over aws-lc-rs (the TLS stack already in the
//! tree), not with OpenSSL, which signs on the client side: two implementations must agree.
//!
//! Federated credentials (workload identity federation): a token issued by an external OIDC
//! issuer (a Kubernetes projected service-account token) presented as `client_assertion`.
//! [`verify_federated`] checks it as Entra checks it against the application's federated
//! identity credentials: the `iss` must be a registered issuer (else AADSTS70021), the RS256
//! signature must verify with that issuer's signing key (Entra fetches it from the issuer's
//! OIDC JWKS; here it is configured: AADSTS50013), `exp` must be in the future and `nbf` (when
//! present) not in the future with [`CLOCK_SKEW_SECS`] (AADSTS700024), and one registered
//! credential must match issuer + `sub` + one of its audiences in `aud` (string or array;
//! AADSTS70021 "No matching federated identity record found for presented assertion").
//!
//! [`TestClientCert`] generates an RSA 2048 certificate and signs assertions, for tests;
//! [`TestOidcIssuer`] is an RSA key that signs service-account tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// `client_assertion_type` for a signed JWT.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Tolerance on `exp` and `nbf`.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// A certificate registered for an application (the `keyCredentials` entry).
#[derive(Clone)]
pub struct RegisteredCert {
    der: Vec<u8>,
    sha1: Vec<u8>,
    sha256: Vec<u8>,
}

impl std::fmt::Debug for RegisteredCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredCert")
            .field("sha1", &hex(&self.sha1))
            .finish_non_exhaustive()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02X}")).collect()
}

/// Why an assertion was refused: the token endpoint's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

fn reject(code: u32, description: impl Into<String>) -> Rejection {
    let status = if code == 50027 { 400 } else { 401 };
    let error = if code == 50027 {
        "invalid_request"
    } else {
        "invalid_client"
    };
    Rejection {
        status,
        error,
        code,
        description: description.into(),
    }
}

fn malformed(what: &str) -> Rejection {
    reject(50027, format!("JWT token is invalid or malformed: {what}."))
}

// === impl RegisteredCert ===

impl RegisteredCert {
    /// A certificate from DER, or from PEM (the first `CERTIFICATE` block).
    pub fn new(der_or_pem: &[u8]) -> Result<RegisteredCert, String> {
        let is_pem = der_or_pem
            .windows(b"-----BEGIN".len())
            .any(|w| w == b"-----BEGIN");
        let der = if is_pem {
            CertificateDer::from_pem_slice(der_or_pem)
                .map_err(|e| format!("not a PEM certificate: {e}"))?
                .to_vec()
        } else {
            der_or_pem.to_vec()
        };
        // Parsed once here, so a bad registration fails at start rather than per request.
        webpki::EndEntityCert::try_from(&CertificateDer::from(der.as_slice()))
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der)
            .as_ref()
            .to_vec();
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der)
            .as_ref()
            .to_vec();
        Ok(RegisteredCert { der, sha1, sha256 })
    }

    /// SHA-1 thumbprint, upper-case hex (what the portal shows).
    pub fn thumbprint(&self) -> String {
        hex(&self.sha1)
    }
}

/// Decodes base64url or standard base64, with or without padding.
fn b64_any(s: &str) -> Option<Vec<u8>> {
    let norm: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(norm).ok()
}

/// The accepted assertion's `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub jti: String,
    /// SHA-1 thumbprint (hex) of the certificate that signed it.
    pub thumbprint: String,
}

/// Verifies a client assertion for `client_id` against its registered certificates; `audience`
/// is the token endpoint URL the client posted to, `now` in seconds since the epoch.
pub fn verify(
    assertion: &str,
    client_id: &str,
    audience: &str,
    registered: &[RegisteredCert],
    now: i64,
) -> Result<Accepted, Rejection> {
    let Parsed {
        header,
        claims,
        signature,
        signed,
    } = parse(assertion)?;

    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let verify_alg = match alg {
        "RS256" => webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        "PS256" => webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        other => {
            return Err(reject(
                700027,
                format!(
                    "Client assertion failed signature validation. [Reason - The algorithm '{other}' is not supported, expected RS256 or PS256.]"
                ),
            ));
        }
    };
    let (thumb, found) = find_cert(&header, registered);
    let Some(cert) = found else {
        return Err(reject(
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]",
                thumb.as_deref().map(hex).unwrap_or_default()
            ),
        ));
    };
    let der = CertificateDer::from(cert.der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&der)
        .map_err(|_| reject(700027, "Client assertion failed signature validation."))?;
    ee.verify_signature(verify_alg, signed.as_bytes(), &signature)
        .map_err(|_| {
            reject(
                700027,
                "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]",
            )
        })?;

    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    let n = |k: &str| claims.get(k).and_then(Value::as_i64);
    if s("aud") != Some(audience) {
        return Err(reject(
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. [Reason - The audience claim '{}' does not match the token endpoint '{audience}'.]",
                s("aud").unwrap_or("")
            ),
        ));
    }
    if s("iss") != Some(client_id) || s("sub") != Some(client_id) {
        return Err(reject(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let (Some(exp), Some(nbf)) = (n("exp"), n("nbf")) else {
        return Err(malformed("exp and nbf must be numbers"));
    };
    if exp + CLOCK_SKEW_SECS <= now || nbf - CLOCK_SKEW_SECS > now {
        return Err(reject(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}."
            ),
        ));
    }
    let Some(jti) = s("jti").filter(|j| !j.is_empty()) else {
        return Err(malformed("jti is missing"));
    };
    Ok(Accepted {
        jti: jti.to_owned(),
        thumbprint: cert.thumbprint(),
    })
}

type Claims = serde_json::Map<String, Value>;

/// A JWT split into its decoded parts.
struct Parsed<'a> {
    header: Claims,
    claims: Claims,
    signature: Vec<u8>,
    /// `header.claims` as sent: the signed bytes.
    signed: &'a str,
}

fn parse(assertion: &str) -> Result<Parsed<'_>, Rejection> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, sig_b64] = parts[..] else {
        return Err(malformed("not three dot-separated parts"));
    };
    let json = |s: &str, what: &str| -> Result<Claims, Rejection> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| malformed(&format!("{what} is not base64url")))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(malformed(&format!("{what} is not a JSON object"))),
        }
    };
    let header = json(header_b64, "header")?;
    let claims = json(claims_b64, "payload")?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| malformed("signature is not base64url"))?;
    Ok(Parsed {
        header,
        claims,
        signature,
        signed: &assertion[..header_b64.len() + 1 + claims_b64.len()],
    })
}

/// The thumbprint the header names (`x5t#S256` before `x5t`) and the registered certificate
/// it matches.
fn find_cert<'r>(
    header: &Claims,
    registered: &'r [RegisteredCert],
) -> (Option<Vec<u8>>, Option<&'r RegisteredCert>) {
    let (thumb, sha256) = match (
        header.get("x5t#S256").and_then(Value::as_str),
        header.get("x5t").and_then(Value::as_str),
    ) {
        (Some(t), _) => (b64_any(t), true),
        (None, Some(t)) => (b64_any(t), false),
        (None, None) => (None, false),
    };
    let found = thumb.as_ref().and_then(|t| {
        registered
            .iter()
            .find(|c| if sha256 { &c.sha256 } else { &c.sha1 } == t)
    });
    (thumb, found)
}

/// Whether the assertion's header names (`x5t`/`x5t#S256`) one of the registered certificates:
/// such an assertion is a certificate credential, anything else may be a federated one.
pub fn names_registered_cert(assertion: &str, registered: &[RegisteredCert]) -> bool {
    parse(assertion).is_ok_and(|p| find_cert(&p.header, registered).1.is_some())
}

// === federated credentials ===

/// The audience Entra expects in a federated token unless the credential says otherwise.
pub const DEFAULT_FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// An OIDC issuer's RSA signing key: the `RSAPublicKey` (PKCS#1 DER) that the issuer's JWKS
/// publishes as `n` and `e`.
#[derive(Clone)]
pub struct IssuerKey {
    rsa_public_key: Vec<u8>,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("bytes", &self.rsa_public_key.len())
            .finish()
    }
}

impl IssuerKey {
    /// A key from its PKCS#1 `RSAPublicKey` DER.
    pub fn from_rsa_public_key_der(der: &[u8]) -> IssuerKey {
        IssuerKey {
            rsa_public_key: der.to_vec(),
        }
    }
}

/// A federated identity credential registered on the application
/// (`federatedIdentityCredentials`: issuer, subject, audiences) with the issuer's signing key.
#[derive(Clone, Debug)]
pub struct FederatedCredential {
    /// `iss` of the presented token, e.g. the cluster's OIDC issuer URL.
    pub issuer: String,
    /// `sub`, e.g. `system:serviceaccount:<namespace>:<name>`.
    pub subject: String,
    /// Accepted `aud` values; usually only [`DEFAULT_FEDERATED_AUDIENCE`].
    pub audiences: Vec<String>,
    /// The issuer's signing key.
    pub key: IssuerKey,
}

impl FederatedCredential {
    /// A credential for `issuer` and `subject` with the default audience.
    pub fn new(issuer: &str, subject: &str, key: IssuerKey) -> FederatedCredential {
        FederatedCredential {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audiences: vec![DEFAULT_FEDERATED_AUDIENCE.to_owned()],
            key,
        }
    }
}

/// An accepted federated token: who it was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedAccepted {
    pub issuer: String,
    pub subject: String,
    /// `jti` when the token carries one (Kubernetes service-account tokens do).
    pub jti: Option<String>,
}

/// Verifies a federated token presented as `client_assertion` against the application's
/// federated identity credentials; `now` in seconds since the epoch.
pub fn verify_federated(
    assertion: &str,
    credentials: &[FederatedCredential],
    now: i64,
) -> Result<FederatedAccepted, Rejection> {
    let Parsed {
        header,
        claims,
        signature,
        signed,
    } = parse(assertion)?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let no_match = || {
        reject(
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: '{}'.",
                s("iss"),
                s("sub"),
                audiences.join(",")
            ),
        )
    };
    let by_issuer: Vec<&FederatedCredential> = credentials
        .iter()
        .filter(|c| c.issuer == s("iss"))
        .collect();
    if by_issuer.is_empty() {
        return Err(no_match());
    }
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(reject(
            50013,
            "Assertion failed signature validation. [Reason - The algorithm is not supported, expected RS256.]",
        ));
    }
    let signature_ok = by_issuer.iter().any(|c| {
        webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256
            .verify_signature(&c.key.rsa_public_key, signed.as_bytes(), &signature)
            .is_ok()
    });
    if !signature_ok {
        return Err(reject(
            50013,
            "Assertion failed signature validation. [Reason - The key was not found in the issuer's signing keys.]",
        ));
    }
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(malformed("exp must be a number"));
    };
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    if exp + CLOCK_SKEW_SECS <= now || nbf.is_some_and(|nbf| nbf - CLOCK_SKEW_SECS > now) {
        return Err(reject(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, expiry time of assertion {exp}."
            ),
        ));
    }
    let matched = by_issuer.iter().any(|c| {
        c.subject == s("sub")
            && audiences
                .iter()
                .any(|a| c.audiences.iter().any(|want| want == a))
    });
    if !matched {
        return Err(no_match());
    }
    Ok(FederatedAccepted {
        issuer: s("iss").to_owned(),
        subject: s("sub").to_owned(),
        jti: claims.get("jti").and_then(Value::as_str).map(str::to_owned),
    })
}

/// An OIDC issuer's RSA 2048 signing key, for tests: signs service-account tokens as the
/// Kubernetes API server does (RS256 with a `kid`, no `x5t`).
pub struct TestOidcIssuer {
    issuer: String,
    key: rcgen::KeyPair,
}

impl std::fmt::Debug for TestOidcIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestOidcIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TestOidcIssuer {
    /// A fresh key for the issuer URL `issuer`.
    pub fn generate(issuer: &str) -> Result<TestOidcIssuer, String> {
        use rcgen::{KeyPair, PKCS_RSA_SHA256, RsaKeySize};
        let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
            .map_err(|e| e.to_string())?;
        Ok(TestOidcIssuer {
            issuer: issuer.to_owned(),
            key,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public key as the token endpoint is told it (from the JWKS, in reality).
    pub fn key(&self) -> IssuerKey {
        IssuerKey::from_rsa_public_key_der(self.key.public_key_raw())
    }

    /// A federated credential for `subject` with the default audience.
    pub fn credential(&self, subject: &str) -> FederatedCredential {
        FederatedCredential::new(&self.issuer, subject, self.key())
    }

    /// A projected service-account token: `sub`, `aud` (array), `iat`/`nbf` now, `exp` after
    /// `ttl_secs` (negative: already expired), `jti`.
    pub fn service_account_token(
        &self,
        subject: &str,
        audiences: &[&str],
        ttl_secs: i64,
        jti: &str,
    ) -> String {
        use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
        let now = chrono::Utc::now().timestamp();
        let header = serde_json::json!({"alg": "RS256", "kid": "sim-oidc-key-1"});
        let claims = serde_json::json!({
            "aud": audiences, "exp": now + ttl_secs, "iat": now, "nbf": now,
            "iss": self.issuer, "jti": jti, "sub": subject,
            "kubernetes.io": {"namespace": "security", "serviceaccount": {"name": "crosswind"}},
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let kp = RsaKeyPair::from_pkcs8(&self.key.serialize_der())
            .unwrap_or_else(|e| unreachable!("rcgen RSA key: {e}"));
        let mut sig = vec![0u8; kp.public_modulus_len()];
        kp.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap_or_else(|e| unreachable!("rsa sign: {e}"));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// An RSA 2048 self-signed client certificate with its key, for tests: PEM out, assertions
/// signed the way SDKs sign them.
pub struct TestClientCert {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl std::fmt::Debug for TestClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClientCert").finish_non_exhaustive()
    }
}

impl TestClientCert {
    /// A fresh key and a certificate for `common_name`, valid from an hour ago for a year.
    pub fn generate(common_name: &str) -> Result<TestClientCert, String> {
        use rcgen::{CertificateParams, DnType, KeyPair, PKCS_RSA_SHA256, RsaKeySize};
        let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
            .map_err(|e| e.to_string())?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(3600)).into();
        params.not_after = (now + std::time::Duration::from_secs(365 * 86_400)).into();
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok(TestClientCert { key, cert })
    }

    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The private key as PKCS#8 PEM (`PRIVATE KEY`).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    pub fn registered(&self) -> RegisteredCert {
        // The DER came from rcgen; it parses.
        RegisteredCert::new(&self.cert_der()).unwrap_or_else(|e| unreachable!("{e}"))
    }

    /// `x5t`: base64url SHA-1 of the DER.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.registered().sha1)
    }

    /// `x5t#S256`: base64url SHA-256 of the DER.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.registered().sha256)
    }

    /// `header.claims.signature`, signed with `alg` (`RS256` or `PS256`; anything else signs
    /// RS256 but keeps the header as given).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair};
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let kp = RsaKeyPair::from_pkcs8(&self.key.serialize_der())
            .unwrap_or_else(|e| unreachable!("rcgen RSA key: {e}"));
        let mut sig = vec![0u8; kp.public_modulus_len()];
        let alg: &'static dyn aws_lc_rs::signature::RsaEncoding =
            if header.get("alg").and_then(Value::as_str) == Some("PS256") {
                &RSA_PSS_SHA256
            } else {
                &RSA_PKCS1_SHA256
            };
        kp.sign(
            alg,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap_or_else(|e| unreachable!("rsa sign: {e}"));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// A valid RS256 assertion as azure_identity builds it (x5t in standard base64).
    pub fn assertion(&self, client_id: &str, audience: &str, now: i64) -> String {
        let x5t = base64::engine::general_purpose::STANDARD.encode(self.registered().sha1);
        self.sign(
            &serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": x5t}),
            &serde_json::json!({
                "aud": audience, "exp": now + 300, "iss": client_id,
                "jti": format!("jti-{now}-{}", fastish(now)), "nbf": now, "sub": client_id,
            }),
        )
    }
}

fn fastish(salt: i64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (salt as u64).rotate_left(17)
}
