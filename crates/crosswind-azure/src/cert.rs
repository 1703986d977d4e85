//! Client certificates for `auth = "client_certificate"`: `certificate_file` holds either a
//! PKCS#12 bundle (`.pfx`/`.p12`, binary DER) or PEM text with the certificate and its private
//! key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with a
//! password), as Azure CLI and the Python SDK write it. Either way the result is the PKCS#12
//! bytes azure_identity's `ClientCertificateCredential` takes.
//!
//! Invariant: no error message or `Debug` output carries key material or the password; errors
//! name the file, the certificate's thumbprint and subject (both public) and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

use azure_core::credentials::SecretBytes;
use crosswind_model::SensitiveString;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;

/// Why a certificate file cannot be used. `Debug` prints the same text as `Display`, which never
/// shows a `certificate_file` value that does not look like a path.
#[derive(thiserror::Error)]
pub enum CertError {
    #[error("cannot read {}: {source}", crosswind_model::shown_path(path))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is neither a PKCS#12 (.pfx/.p12) file nor PEM holding a certificate and its private key"
    )]
    Format { path: PathBuf },
    #[error(
        "{path} holds {found} but no {missing}; it must hold the certificate and its private key"
    )]
    Incomplete {
        path: PathBuf,
        found: &'static str,
        missing: &'static str,
    },
    #[error(
        "{path}: cannot decrypt the {what} (wrong or missing certificate_password_file / certificate_password_env)"
    )]
    Password { path: PathBuf, what: &'static str },
    #[error(
        "{path}: PKCS#12 file cannot be opened ({reason}); files encrypted with RC2 or 3DES need re-exporting with AES (`openssl pkcs12 -export -keypbe AES-256-CBC -certpbe AES-256-CBC`) or use PEM"
    )]
    Pkcs12 { path: PathBuf, reason: String },
    #[error("{path}: the private key does not match the certificate{detail}")]
    KeyMismatch { path: PathBuf, detail: String },
    #[error(
        "{path}: the private key is {kind}; azure_identity signs client assertions with RSA keys only"
    )]
    NotRsa { path: PathBuf, kind: String },
    #[error("{path}: certificate {thumbprint} ({subject}) expired on {not_after}")]
    Expired {
        path: PathBuf,
        thumbprint: String,
        subject: String,
        not_after: String,
    },
    #[error("{path}: certificate {thumbprint} ({subject}) is not valid before {not_before}")]
    NotYetValid {
        path: PathBuf,
        thumbprint: String,
        subject: String,
        not_before: String,
    },
    #[error("{path}: cannot convert the PEM certificate and key to PKCS#12 ({reason})")]
    Convert { path: PathBuf, reason: String },
}

impl fmt::Debug for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertError({self})")
    }
}

/// The file's format, as detected from its content (not its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertFormat {
    Pkcs12,
    Pem,
}

/// A loaded client certificate: the PKCS#12 bytes for azure_identity plus the public facts
/// validation and logs use. `Debug` shows no key material and no password.
#[derive(Clone)]
pub struct ClientCertificate {
    pkcs12: SecretBytes,
    password: Option<SensitiveString>,
    format: CertFormat,
    /// SHA-1 of the certificate's DER, upper-case hex: the "Thumbprint" Entra shows.
    thumbprint: String,
    subject: String,
    not_before: String,
    not_after: String,
    /// Seconds since the epoch.
    not_before_unix: i64,
    not_after_unix: i64,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("format", &self.format)
            .field("thumbprint", &self.thumbprint)
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("password", &self.password.as_ref().map(|_| "**REDACTED**"))
            .finish_non_exhaustive()
    }
}

fn reasons(e: &ErrorStack) -> String {
    let mut out: Vec<String> = e
        .errors()
        .iter()
        .filter_map(|e| e.reason().map(str::to_owned))
        .collect();
    out.dedup();
    if out.is_empty() {
        "unknown openssl error".to_owned()
    } else {
        out.join(", ")
    }
}

fn is_bad_password(e: &ErrorStack) -> bool {
    e.errors().iter().any(|e| {
        e.reason().is_some_and(|r| {
            let r = r.to_ascii_lowercase();
            r.contains("mac verify") || r.contains("bad decrypt") || r.contains("bad password")
        })
    })
}

fn unix_of(t: &Asn1TimeRef) -> i64 {
    // `Asn1Time::from_unix(0)` then diff: days and seconds since the epoch.
    match Asn1Time::from_unix(0).and_then(|epoch| epoch.diff(t)) {
        Ok(d) => i64::from(d.days) * 86_400 + i64::from(d.secs),
        Err(_) => 0,
    }
}

fn subject_of(cert: &X509) -> String {
    let parts: Vec<String> = cert
        .subject_name()
        .entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = e.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect();
    if parts.is_empty() {
        "no subject".to_owned()
    } else {
        parts.join(", ")
    }
}

fn key_kind(key: &PKey<Private>) -> String {
    match key.id() {
        Id::EC => "an EC key".to_owned(),
        Id::ED25519 => "an Ed25519 key".to_owned(),
        Id::DSA => "a DSA key".to_owned(),
        other => format!("key type {}", other.as_raw()),
    }
}

/// The certificate among `certs` whose public key is `key`'s; the others stay as the chain.
fn split_leaf(key: &PKey<Private>, certs: Vec<X509>) -> Option<(X509, Vec<X509>)> {
    let pos = certs.iter().position(|c| {
        c.public_key()
            .map(|pubkey| pubkey.public_eq(key))
            .unwrap_or(false)
    })?;
    let mut certs = certs;
    let leaf = certs.remove(pos);
    Some((leaf, certs))
}

// === impl ClientCertificate ===

impl ClientCertificate {
    /// Reads and checks `path` (PKCS#12 or PEM, detected from the content). Expiry is not
    /// checked here: see [`ClientCertificate::check_validity`].
    pub fn load(
        path: &Path,
        password: Option<&SensitiveString>,
    ) -> Result<ClientCertificate, CertError> {
        let bytes = std::fs::read(path).map_err(|source| CertError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ClientCertificate::from_bytes(path, &bytes, password)
    }

    /// As [`ClientCertificate::load`], from bytes already read; `path` only names the file.
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        password: Option<&SensitiveString>,
    ) -> Result<ClientCertificate, CertError> {
        let is_pem = bytes
            .windows(b"-----BEGIN ".len())
            .any(|w| w == b"-----BEGIN ");
        if is_pem {
            ClientCertificate::from_pem(path, bytes, password)
        } else {
            ClientCertificate::from_pkcs12(path, bytes, password)
        }
    }

    fn from_pkcs12(
        path: &Path,
        der: &[u8],
        password: Option<&SensitiveString>,
    ) -> Result<ClientCertificate, CertError> {
        let p12 = Pkcs12::from_der(der).map_err(|_| CertError::Format {
            path: path.to_path_buf(),
        })?;
        let pass = password.map(SensitiveString::expose).unwrap_or("");
        let parsed = p12.parse2(pass).map_err(|e| {
            if is_bad_password(&e) {
                CertError::Password {
                    path: path.to_path_buf(),
                    what: "PKCS#12 file",
                }
            } else {
                CertError::Pkcs12 {
                    path: path.to_path_buf(),
                    reason: reasons(&e),
                }
            }
        })?;
        let (key, cert) = match (parsed.pkey, parsed.cert) {
            (Some(k), Some(c)) => (k, c),
            (None, _) => {
                return Err(CertError::Incomplete {
                    path: path.to_path_buf(),
                    found: "a certificate",
                    missing: "private key",
                });
            }
            (Some(_), None) => {
                return Err(CertError::Incomplete {
                    path: path.to_path_buf(),
                    found: "a private key",
                    missing: "certificate",
                });
            }
        };
        check_key(path, &key, &cert)?;
        ClientCertificate::finish(
            SecretBytes::new(der.to_vec()),
            password.cloned(),
            CertFormat::Pkcs12,
            &cert,
        )
    }

    fn from_pem(
        path: &Path,
        pem: &[u8],
        password: Option<&SensitiveString>,
    ) -> Result<ClientCertificate, CertError> {
        let certs = X509::stack_from_pem(pem).unwrap_or_default();
        let has_key_block = [
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----BEGIN EC PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        ]
        .iter()
        .any(|h| pem.windows(h.len()).any(|w| w == h.as_bytes()));
        if !has_key_block {
            return Err(if certs.is_empty() {
                CertError::Format {
                    path: path.to_path_buf(),
                }
            } else {
                CertError::Incomplete {
                    path: path.to_path_buf(),
                    found: "a certificate",
                    missing: "private key",
                }
            });
        }
        // The callback keeps OpenSSL from prompting on a terminal for an encrypted key.
        let key = PKey::private_key_from_pem_callback(pem, |buf| {
            let Some(p) = password else { return Ok(0) };
            let p = p.expose().as_bytes();
            let n = p.len().min(buf.len());
            buf[..n].copy_from_slice(&p[..n]);
            Ok(n)
        })
        .map_err(|e| {
            let encrypted = pem.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED");
            if encrypted || is_bad_password(&e) {
                CertError::Password {
                    path: path.to_path_buf(),
                    what: "private key",
                }
            } else {
                CertError::Format {
                    path: path.to_path_buf(),
                }
            }
        })?;
        if certs.is_empty() {
            return Err(CertError::Incomplete {
                path: path.to_path_buf(),
                found: "a private key",
                missing: "certificate",
            });
        }
        let n = certs.len();
        let Some((leaf, chain)) = split_leaf(&key, certs) else {
            return Err(CertError::KeyMismatch {
                path: path.to_path_buf(),
                detail: if n == 1 {
                    String::new()
                } else {
                    format!(" (none of the {n} certificates in the file)")
                },
            });
        };
        check_key(path, &key, &leaf)?;
        let pkcs12 = {
            let mut b = Pkcs12::builder();
            b.name("crosswind").pkey(&key).cert(&leaf);
            if !chain.is_empty() {
                let mut stack =
                    openssl::stack::Stack::new().map_err(|e| convert_error(path, &e))?;
                for c in chain {
                    stack.push(c).map_err(|e| convert_error(path, &e))?;
                }
                b.ca(stack);
            }
            // Empty password: azure_identity opens it with "" when no password is given. The
            // bytes never leave this process.
            b.build2("").map_err(|e| convert_error(path, &e))?
        };
        let der = pkcs12.to_der().map_err(|e| convert_error(path, &e))?;
        ClientCertificate::finish(SecretBytes::new(der), None, CertFormat::Pem, &leaf)
    }

    fn finish(
        pkcs12: SecretBytes,
        password: Option<SensitiveString>,
        format: CertFormat,
        cert: &X509,
    ) -> Result<ClientCertificate, CertError> {
        let thumbprint = cert
            .digest(MessageDigest::sha1())
            .map(|d| d.iter().map(|b| format!("{b:02X}")).collect::<String>())
            .unwrap_or_default();
        Ok(ClientCertificate {
            pkcs12,
            password,
            format,
            thumbprint,
            subject: subject_of(cert),
            not_before: cert.not_before().to_string(),
            not_after: cert.not_after().to_string(),
            not_before_unix: unix_of(cert.not_before()),
            not_after_unix: unix_of(cert.not_after()),
        })
    }

    /// An error when the certificate is expired or not yet valid at `now_unix` (seconds).
    /// Entra refuses assertions signed with a key credential outside its validity, so either
    /// is an error, not a warning.
    pub fn check_validity(&self, path: &Path, now_unix: i64) -> Result<(), CertError> {
        if now_unix >= self.not_after_unix {
            return Err(CertError::Expired {
                path: path.to_path_buf(),
                thumbprint: self.thumbprint.clone(),
                subject: self.subject.clone(),
                not_after: self.not_after.clone(),
            });
        }
        if now_unix < self.not_before_unix {
            return Err(CertError::NotYetValid {
                path: path.to_path_buf(),
                thumbprint: self.thumbprint.clone(),
                subject: self.subject.clone(),
                not_before: self.not_before.clone(),
            });
        }
        Ok(())
    }

    /// The PKCS#12 bytes for `ClientCertificateCredential::new`.
    pub fn pkcs12(&self) -> &SecretBytes {
        &self.pkcs12
    }

    /// The PKCS#12 password, if any (PEM input is converted without one).
    pub fn password(&self) -> Option<&SensitiveString> {
        self.password.as_ref()
    }

    pub fn format(&self) -> CertFormat {
        self.format
    }

    /// SHA-1 thumbprint, upper-case hex (as the Entra portal shows it).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `notAfter`, as OpenSSL prints it (`Dec  1 04:03:00 2027 GMT`).
    pub fn not_after(&self) -> &str {
        &self.not_after
    }

    /// `notAfter` in seconds since the epoch.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after_unix
    }
}

fn convert_error(path: &Path, e: &ErrorStack) -> CertError {
    CertError::Convert {
        path: path.to_path_buf(),
        reason: reasons(e),
    }
}

fn check_key(path: &Path, key: &PKey<Private>, cert: &X509) -> Result<(), CertError> {
    let matches = cert.public_key().map(|p| p.public_eq(key)).unwrap_or(false);
    if !matches {
        return Err(CertError::KeyMismatch {
            path: path.to_path_buf(),
            detail: String::new(),
        });
    }
    if key.id() != Id::RSA {
        return Err(CertError::NotRsa {
            path: path.to_path_buf(),
            kind: key_kind(key),
        });
    }
    Ok(())
}
