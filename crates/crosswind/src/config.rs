//! Configuration: TOML parsed raw, then validated into typed form. `crosswind validate` runs the
//! same step systemd runs as `ExecStartPre`, and prints every problem with its key.
//!
//! NOTE: the `[[azure]]`, `[[aws]]`, `[splunk]` and `[http]` sections are accepted as tables and
//! checked only for shape until the collectors, HEC sink and daemon land with their own typed
//! configs.

use std::fmt;
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
    pub azure: Vec<toml::Table>,
    #[serde(default)]
    pub aws: Vec<toml::Table>,
    #[serde(default)]
    pub correlate: Option<toml::Table>,
    #[serde(default)]
    pub splunk: Option<toml::Table>,
    #[serde(default)]
    pub http: Option<toml::Table>,
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
    /// Parses TOML text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Checks what parsing cannot: values in range, files and directories that must exist.
    pub fn validate(&self) -> Vec<Problem> {
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
        for (section, tables) in [("azure", &self.azure), ("aws", &self.aws)] {
            for (i, table) in tables.iter().enumerate() {
                match table.get("name") {
                    Some(toml::Value::String(name)) if !name.trim().is_empty() => {}
                    _ => problem(
                        &format!("{section}[{i}].name"),
                        "every collector needs a non-empty name".into(),
                    ),
                }
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
        let problems = config.validate();
        assert!(
            problems.iter().all(|p| p.key == "store.path"),
            "only the store directory (absent here) may be reported: {problems:?}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_with_their_key() {
        let err = Config::parse("[store]\npaht = \"x\"\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("paht"), "{err}");
        let err = Config::parse("[stroe]\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("stroe"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[store]\npath = \"{}/x.db\"\nretention_days = 0\n[[azure]]\ntenant_id = \"t\"\n",
            dir.path().display()
        );
        let problems = Config::parse(&text, Path::new("t.toml"))
            .unwrap()
            .validate();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["store.retention_days", "azure[0].name"]);
    }
}
