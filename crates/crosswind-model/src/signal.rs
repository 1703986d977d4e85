//! What the correlator produces: signals (one suspicious observation, a Splunk ES-style risk
//! event) and findings (an identity whose decayed risk crossed the threshold).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::CloudProvider;

/// One suspicious observation. Scores follow Splunk's `impact × confidence / 100` convention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Signal {
    pub schema_version: u32,
    /// Stable id: the same observation always gets the same id, so a rebuild never doubles it.
    pub id: String,
    /// Signal name from docs/detections.md (`azure_high_risk_signin`, `aws_recon_burst`, …).
    pub signal: String,
    /// When it happened (epoch ms): the time of the event that completed it.
    pub time: i64,
    /// The identity (risk object): a canonical identity name such as `alice@corp.example`,
    /// `arn:aws:iam::111122223333:user/bob` or `root@111122223333`. Empty for threat-only signals.
    pub risk_object: String,
    /// `user` for identities, `system` for threat-only observations.
    pub risk_object_type: String,
    /// Final score after modifiers and tuning.
    pub risk_score: f64,
    /// Why, in one sentence a human can act on.
    pub risk_message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_object_type: Option<String>,
    pub mitre_technique_id: Vec<String>,
    /// Clouds whose events made the signal.
    pub cloud: Vec<CloudProvider>,
    /// `metadata.uid` of the events behind the signal.
    pub event_ids: Vec<String>,
    /// A pattern already seen on two or more earlier days of the previous week (a daily job, an
    /// owner's habit): scored a quarter, and never a finding on its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub habitual: bool,
    /// The id of the signal this one adds to: an observation that grew after it was reported
    /// (a recon burst whose later calls were denied) carries only the difference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
}

/// An identity whose decayed risk reached the finding threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub schema_version: u32,
    pub id: String,
    pub identity: String,
    pub score: f64,
    pub threshold: f64,
    pub clouds: Vec<CloudProvider>,
    /// Ids of the signals that made the score.
    pub signals: Vec<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// When it was raised (epoch ms, event time of the signal that crossed the threshold).
    pub raised_at: i64,
    pub summary: String,
}
