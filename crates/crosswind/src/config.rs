//! Configuration: TOML parsed raw, then validated into typed form. `crosswind validate` runs the
//! same step systemd runs as `ExecStartPre`, and prints every problem with its key.
//!
//! Each section's typed config and checks live with its component (`crosswind-azure`,
//! `crosswind-aws`, `crosswind-correlate`, `crosswind-hec`); this module gathers them and
//! prefixes every problem with its full key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the config is read from when `--config` and `$CROSSWIND_CONFIG` are unset.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/crosswind/crosswind.toml";
/// Where the store lives when `[store] path` is unset.
pub const DEFAULT_STORE_PATH: &str = "/var/lib/crosswind/crosswind.db";

/// The whole file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub azure: Vec<crosswind_azure::AzureConfig>,
    #[serde(default)]
    pub aws: Vec<crosswind_aws::AwsConfig>,
    /// Checked and typed by [`Config::correlate_config`].
    #[serde(default)]
    pub correlate: Option<toml::Table>,
    #[serde(default)]
    pub splunk: Option<crosswind_hec::SplunkConfig>,
    #[serde(default)]
    pub http: Option<HttpConfig>,
    #[serde(default)]
    pub import: ImportConfig,
}

/// `[import]`: how `crosswind import` reads its files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// The largest record (or line, or document that is not an array of records) read whole;
    /// a longer one is quarantined with its first bytes and its length. Default 16 MiB.
    pub max_record_bytes: Option<u64>,
}

impl ImportConfig {
    /// The smallest `max_record_bytes` accepted.
    pub const MIN_RECORD_BYTES: u64 = 1024;

    /// The limit (`validate` reports one out of range; here it is brought into range).
    pub fn max_record_bytes(&self) -> usize {
        let ceiling = crate::import::MAX_RECORD_BYTES_CEILING as u64;
        self.max_record_bytes
            .map(|n| n.clamp(Self::MIN_RECORD_BYTES, ceiling))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(crosswind_normalize::DEFAULT_MAX_RECORD_BYTES)
    }

    /// Why `n` is not an acceptable record limit.
    pub fn check_max_record_bytes(n: u64) -> Result<(), String> {
        let ceiling = crate::import::MAX_RECORD_BYTES_CEILING as u64;
        if (Self::MIN_RECORD_BYTES..=ceiling).contains(&n) {
            Ok(())
        } else {
            Err(format!(
                "must be between {} and {ceiling} bytes",
                Self::MIN_RECORD_BYTES
            ))
        }
    }
}

/// `[http]`: where the daemon serves `/healthz`, `/readyz` and `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port, `"127.0.0.1:9187"`. Plain HTTP: bind it to loopback or a management
    /// network.
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|e| {
        serde::de::Error::custom(format!(
            "{s:?} is not an address and port such as \"127.0.0.1:9187\": {e}"
        ))
    })
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite file; its directory must exist and be writable.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// Days of events kept; older ones are removed by the retention job.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store_path(),
            retention_days: default_retention_days(),
        }
    }
}

fn default_store_path() -> PathBuf {
    PathBuf::from(DEFAULT_STORE_PATH)
}

fn default_retention_days() -> u32 {
    90
}

/// One problem found by validation, with the key it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a config could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Parses TOML text; `path` only names the file in errors, which never quote the text.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: crate::config_safety::toml_error_message(&e, text),
        })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// The `[correlate]` section, typed (defaults when absent).
    pub fn correlate_config(&self) -> Result<crosswind_correlate::CorrelateConfig, String> {
        crosswind_correlate::CorrelateConfig::from_table(self.correlate.clone().unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    /// Checks what parsing cannot: values in range, files and directories that must exist.
    /// Relative paths in the config are resolved against `base` (the config file's directory).
    pub fn validate(&self) -> Vec<Problem> {
        self.validate_in(Path::new("."))
    }

    pub fn validate_in(&self, base: &Path) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(Problem {
                key: key.to_string(),
                message,
            })
        };
        if self.store.path.as_os_str().is_empty() {
            problem("store.path", "must not be empty".into());
        } else {
            let dir = self
                .store
                .path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                problem(
                    "store.path",
                    format!("directory {} does not exist", dir.display()),
                );
            }
        }
        if self.store.retention_days == 0 {
            problem("store.retention_days", "must be at least 1".into());
        }
        if let Some(Err(e)) = self
            .import
            .max_record_bytes
            .map(ImportConfig::check_max_record_bytes)
        {
            problem("import.max_record_bytes", e);
        }
        let mut names = std::collections::HashSet::new();
        for (i, azure) in self.azure.iter().enumerate() {
            for p in azure.validate() {
                problem(&format!("azure[{i}].{}", p.key), p.message);
            }
            if !names.insert(azure.name.clone()) {
                problem(
                    &format!("azure[{i}].name"),
                    format!("collector name {:?} is used twice", azure.name),
                );
            }
        }
        for (i, aws) in self.aws.iter().enumerate() {
            for p in aws.validate() {
                problem(&format!("aws[{i}].{}", p.key), p.message);
            }
            if !names.insert(aws.name.clone()) {
                problem(
                    &format!("aws[{i}].name"),
                    format!("collector name {:?} is used twice", aws.name),
                );
            }
        }
        match self.correlate_config() {
            Ok(correlate) => {
                if let Some(file) = &correlate.identities_file {
                    let path = base.join(file);
                    match std::fs::read_to_string(&path) {
                        Ok(text) => {
                            if let Err(e) = crosswind_correlate::IdentityLinks::from_toml(&text) {
                                problem(
                                    "correlate.identities_file",
                                    format!("{}: {e}", path.display()),
                                );
                            }
                        }
                        Err(e) => problem(
                            "correlate.identities_file",
                            format!("cannot read {}: {e}", path.display()),
                        ),
                    }
                }
            }
            Err(message) => problem("correlate", message),
        }
        if let Some(splunk) = &self.splunk {
            for p in splunk.validate(&crosswind_hec::ProcessEnv) {
                problem(&p.key, p.message);
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_validates_its_store_section() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/crosswind.toml"
        ));
        let config = Config::load(path).unwrap();
        assert_eq!(config.store.retention_days, 90);
        assert_eq!(config.azure.len(), 1);
        assert_eq!(config.aws.len(), 1);
        // On a build machine only what the example points at on a real host may be missing:
        // the store directory and the credential files under /run/credentials.
        for p in config.validate() {
            assert!(
                p.key == "store.path" || p.message.contains("/run/credentials/"),
                "unexpected problem in the example config: {p}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_with_their_key() {
        let err = Config::parse("[store]\npaht = \"x\"\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("paht"), "{err}");
        let err = Config::parse("[stroe]\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("stroe"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[store]\npath = \"{}/x.db\"\nretention_days = 0\n[correlate]\nidentities_file = \"nope.toml\"\n[correlate.signals.aws_recon_burst]\nscore = 10\n",
            dir.path().display()
        );
        let config = Config::parse(&text, Path::new("t.toml")).unwrap();
        let keys: Vec<_> = config
            .validate_in(dir.path())
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(keys, ["store.retention_days", "correlate.identities_file"]);
        // Typed sections reject what they do not know, naming it.
        let err = Config::parse("[[azure]]\ntenant_id = \"t\"\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
        let bad =
            Config::parse("[correlate]\nfinding_threshhold = 5\n", Path::new("t.toml")).unwrap();
        let keys: Vec<_> = bad.validate().into_iter().map(|p| p.key).collect();
        assert_eq!(keys.last().map(String::as_str), Some("correlate"));
        let err = Config::parse("[http]\nlisten = \"nonsense\"\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listen") && err.contains("\"nonsense\" is not an address and port"),
            "{err}"
        );
        let err = Config::parse(
            "[http]\nlisten = \"127.0.0.1:9187\"\nport = 1\n",
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        assert!(Config::parse("[http]\n", Path::new("t.toml")).is_err());
        let ok = Config::parse("[http]\nlisten = \"[::1]:9187\"\n", Path::new("t.toml")).unwrap();
        assert_eq!(ok.http.map(|h| h.listen.port()), Some(9187));
    }
}
