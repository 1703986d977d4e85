//! A string that never shows itself in Debug or Display output (tokens, client secrets).

use std::fmt;

/// A secret. `Debug` and `Display` print `**REDACTED**`; read it with [`SensitiveString::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SensitiveString(String);

impl SensitiveString {
    pub fn new(secret: impl Into<String>) -> Self {
        SensitiveString(secret.into())
    }

    /// The secret itself; call only where it is sent to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SensitiveString {
    fn from(s: String) -> Self {
        SensitiveString(s)
    }
}

impl fmt::Debug for SensitiveString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl fmt::Display for SensitiveString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

/// What a message may say about the value of a `*_file` key: the path when it looks like one,
/// else nothing of it (a secret pasted where its file's path belongs must not reach a log).
pub fn shown_path(path: &std::path::Path) -> String {
    let s = path.to_string_lossy();
    if looks_like_path(&s) {
        s.into_owned()
    } else {
        "(the value is not shown: it does not look like a path; is it the secret itself?)".into()
    }
}

/// What a message may say about the value of a `*_env` key: the variable name when it looks
/// like one, else nothing of it.
pub fn shown_env_name(name: &str) -> String {
    if looks_like_env_name(name) {
        name.to_string()
    } else {
        "(the value is not shown: it does not look like a variable name; is it the secret itself?)"
            .into()
    }
}

/// A path has a directory part (`/etc/x`, `./x`, `dir/x`) and none of the marks of a secret:
/// no whitespace or control characters, no `+` or `=` (base64), no `:` or `@`.
fn looks_like_path(s: &str) -> bool {
    s.contains('/')
        && s.len() <= 4096
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '+' | '=' | ':' | '@'))
}

/// An environment variable name as shells write them: `HEC_TOKEN` (upper case, digits and
/// `_`), or letters and `_` without digits (`hec_token`); lower-case letters mixed with digits
/// (hex, base32, random strings) are what secrets look like.
fn looks_like_env_name(s: &str) -> bool {
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let charset = s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let lower = s.chars().any(|c| c.is_ascii_lowercase());
    let digits = s.chars().any(|c| c.is_ascii_digit());
    first_ok && charset && s.len() <= 64 && !(lower && digits)
}
