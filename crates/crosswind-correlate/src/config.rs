//! `[correlate]` configuration: parsed raw (serde, unknown keys rejected), then validated into
//! [`CorrelateConfig`] — CIDRs parsed, names lower-cased, per-signal overrides resolved against
//! the catalogue. Defaults are docs/detections.md's numbers.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::catalog::SignalKind;
use crate::net::Cidr;

/// Default repeat-suppression window: the same signal for the same risk and threat object fires
/// at most once per day.
pub const DEFAULT_SUPPRESS_SECS: u64 = 86_400;

/// Why a `[correlate]` table is invalid. Each message names the key.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("correlate: {0}")]
    Toml(String),
    #[error("correlate.trusted_cidrs: invalid CIDR `{value}`: {reason}")]
    InvalidCidr { value: String, reason: String },
    #[error("correlate.signals: unknown signal `{0}`")]
    UnknownSignal(String),
    #[error("correlate.{key}: {reason}")]
    InvalidValue { key: String, reason: String },
}

/// The `[correlate]` table as written (before validation).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCorrelateConfig {
    /// Extra alias links (`[[identity]] name / aws / azure`); read by the driver, parsed by
    /// [`crate::IdentityLinks::from_toml`].
    #[serde(default)]
    pub identities_file: Option<PathBuf>,
    /// Half-life of a signal's weight in an identity's risk, seconds.
    #[serde(default = "default_half_life_secs")]
    pub half_life_secs: u64,
    /// Risk at which a finding is raised.
    #[serde(default = "default_finding_threshold")]
    pub finding_threshold: f64,
    /// Corporate VPN / proxy egress: never raise IP-based signals.
    #[serde(default)]
    pub trusted_cidrs: Vec<String>,
    /// B2B tenants allowed to sign in single-factor (never raise `azure_cross_tenant_sfa`).
    #[serde(default)]
    pub partner_tenants: Vec<String>,
    /// Entra UPNs or IAM user ARNs whose signals score a quarter.
    #[serde(default)]
    pub service_accounts: Vec<String>,
    /// `[correlate.signals.<name>]` overrides.
    #[serde(default)]
    pub signals: BTreeMap<String, SignalOverride>,
}

/// `[correlate.signals.<name>]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignalOverride {
    pub score: Option<f64>,
    pub enabled: Option<bool>,
    /// The signal's correlation window (only for signals that have one).
    pub window_secs: Option<u64>,
    /// The signal's count / speed threshold (only for signals that have one).
    pub threshold: Option<u32>,
    /// Look-back (spray follow-up, new-IP history) for signals that have one.
    pub lookback_secs: Option<u64>,
    /// Repeat suppression: the same signal for the same risk object and threat object fires at
    /// most once per `suppress_secs` (default 86400).
    pub suppress_secs: Option<u64>,
}

fn default_half_life_secs() -> u64 {
    86_400
}

fn default_finding_threshold() -> f64 {
    100.0
}

/// Effective settings of one signal.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalSettings {
    pub enabled: bool,
    pub score: f64,
    pub window_ms: i64,
    pub threshold: u32,
    pub lookback_ms: i64,
    pub suppress_ms: i64,
}

/// Validated `[correlate]` configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawCorrelateConfig")]
pub struct CorrelateConfig {
    pub identities_file: Option<PathBuf>,
    pub half_life_secs: u64,
    pub finding_threshold: f64,
    pub trusted_cidrs: Vec<Cidr>,
    /// Lower-cased tenant ids.
    pub partner_tenants: HashSet<String>,
    /// Lower-cased UPNs / ARNs.
    pub service_accounts: HashSet<String>,
    signals: Vec<SignalSettings>,
}

impl Default for CorrelateConfig {
    fn default() -> Self {
        RawCorrelateConfig {
            half_life_secs: default_half_life_secs(),
            finding_threshold: default_finding_threshold(),
            ..RawCorrelateConfig::default()
        }
        .validate()
        .unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

impl TryFrom<RawCorrelateConfig> for CorrelateConfig {
    type Error = ConfigError;
    fn try_from(raw: RawCorrelateConfig) -> Result<Self, ConfigError> {
        raw.validate()
    }
}

impl RawCorrelateConfig {
    /// Check every value and resolve the per-signal settings.
    pub fn validate(self) -> Result<CorrelateConfig, ConfigError> {
        if self.half_life_secs == 0 {
            return Err(invalid("half_life_secs", "must be at least 1"));
        }
        if !self.finding_threshold.is_finite() || self.finding_threshold <= 0.0 {
            return Err(invalid("finding_threshold", "must be a positive number"));
        }
        let trusted_cidrs = self
            .trusted_cidrs
            .iter()
            .map(|c| {
                Cidr::parse(c).map_err(|reason| ConfigError::InvalidCidr {
                    value: c.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lower = |v: &[String]| {
            v.iter()
                .map(|s| s.trim().to_lowercase())
                .collect::<HashSet<_>>()
        };
        let mut signals: Vec<SignalSettings> = SignalKind::ALL
            .into_iter()
            .map(|k| {
                let s = k.spec();
                SignalSettings {
                    enabled: true,
                    score: s.score,
                    window_ms: secs_to_ms(s.window_secs.unwrap_or(0)),
                    threshold: s.threshold.unwrap_or(0),
                    lookback_ms: secs_to_ms(s.lookback_secs.unwrap_or(0)),
                    suppress_ms: secs_to_ms(DEFAULT_SUPPRESS_SECS),
                }
            })
            .collect();
        for (name, o) in &self.signals {
            let kind = SignalKind::from_name(name)
                .ok_or_else(|| ConfigError::UnknownSignal(name.clone()))?;
            let spec = kind.spec();
            let key = |k: &str| format!("signals.{name}.{k}");
            let set = &mut signals[kind.index()];
            if let Some(score) = o.score {
                if !score.is_finite() || score < 0.0 {
                    return Err(invalid(&key("score"), "must be a non-negative number"));
                }
                set.score = score;
            }
            if let Some(e) = o.enabled {
                set.enabled = e;
            }
            if let Some(w) = o.window_secs {
                if spec.window_secs.is_none() {
                    return Err(invalid(&key("window_secs"), "this signal has no window"));
                }
                if w == 0 {
                    return Err(invalid(&key("window_secs"), "must be at least 1"));
                }
                set.window_ms = secs_to_ms(w);
            }
            if let Some(t) = o.threshold {
                if spec.threshold.is_none() {
                    return Err(invalid(&key("threshold"), "this signal has no threshold"));
                }
                if t == 0 {
                    return Err(invalid(&key("threshold"), "must be at least 1"));
                }
                set.threshold = t;
            }
            if let Some(l) = o.lookback_secs {
                if spec.lookback_secs.is_none() {
                    return Err(invalid(
                        &key("lookback_secs"),
                        "this signal has no look-back",
                    ));
                }
                set.lookback_ms = secs_to_ms(l);
            }
            if let Some(s) = o.suppress_secs {
                set.suppress_ms = secs_to_ms(s);
            }
        }
        Ok(CorrelateConfig {
            identities_file: self.identities_file,
            half_life_secs: self.half_life_secs,
            finding_threshold: self.finding_threshold,
            trusted_cidrs,
            partner_tenants: lower(&self.partner_tenants),
            service_accounts: lower(&self.service_accounts),
            signals,
        })
    }
}

fn invalid(key: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

impl CorrelateConfig {
    /// Parse the body of a `[correlate]` table (not the whole config file).
    pub fn from_toml(table: &str) -> Result<CorrelateConfig, ConfigError> {
        let raw: RawCorrelateConfig =
            toml::from_str(table).map_err(|e| ConfigError::Toml(e.to_string()))?;
        raw.validate()
    }

    /// From an already parsed `[correlate]` table (the binary's config keeps it as a table).
    pub fn from_table(table: toml::Table) -> Result<CorrelateConfig, ConfigError> {
        let raw: RawCorrelateConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.to_string()))?;
        raw.validate()
    }

    /// How far back from the earliest new signal an identity's stored signals must be read for
    /// [`crate::score_identity`] to be exact to ~1e-5: sixteen half-lives.
    pub fn score_lookback_ms(&self) -> i64 {
        self.half_life_ms().saturating_mul(16)
    }

    pub fn signal(&self, kind: SignalKind) -> &SignalSettings {
        &self.signals[kind.index()]
    }

    pub fn half_life_ms(&self) -> i64 {
        secs_to_ms(self.half_life_secs)
    }

    pub fn is_trusted(&self, ip: &IpAddr) -> bool {
        self.trusted_cidrs.iter().any(|c| c.contains(ip))
    }

    pub fn is_partner_tenant(&self, tenant: &str) -> bool {
        self.partner_tenants.contains(&tenant.trim().to_lowercase())
    }
}
