//! Named hunts over the store (`crosswind hunt NAME`). Each hunt reads events in a time range
//! and returns rows; printing is the caller's.

mod events;
mod post_compromise;
mod risk_detections;
mod risky_signins;
mod signals;

use crosswind_correlate::CorrelateConfig;
use crosswind_store::Store;

use crate::output::Rows;

pub use risky_signins::{SeedDimensions, seed_dimensions};
pub use signals::{IdentityRisk, identity_risks};

/// Time range a hunt covers (epoch ms; `until` exclusive).
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Narrowing options some hunts take (`--user`, `--level`, `--state`).
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// A user (UPN or object id) or, for `post-compromise`, an identity; case-insensitive.
    pub user: Option<String>,
    /// A risk level (`high`, `medium`, `low`).
    pub level: Option<String>,
    /// A risk state (`atRisk`, `confirmedCompromised`, `dismissed`, `remediated`, …).
    pub state: Option<String>,
}

/// The built-in hunts, a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hunt {
    RiskySignins,
    SpraySources,
    ConsoleNoMfa,
    ReconBursts,
    CrossCloudIps,
    IdentityRisk,
    RiskDetections,
    PostCompromise,
}

impl Hunt {
    pub const ALL: [Hunt; 8] = [
        Hunt::RiskySignins,
        Hunt::SpraySources,
        Hunt::ConsoleNoMfa,
        Hunt::ReconBursts,
        Hunt::CrossCloudIps,
        Hunt::IdentityRisk,
        Hunt::RiskDetections,
        Hunt::PostCompromise,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hunt::RiskySignins => "risky-signins",
            Hunt::SpraySources => "spray-sources",
            Hunt::ConsoleNoMfa => "console-no-mfa",
            Hunt::ReconBursts => "recon-bursts",
            Hunt::CrossCloudIps => "cross-cloud-ips",
            Hunt::IdentityRisk => "identity-risk",
            Hunt::RiskDetections => "risk-detections",
            Hunt::PostCompromise => "post-compromise",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Hunt::RiskySignins => {
                "successful Entra sign-ins with high/medium or at-risk Identity Protection risk, a risky event type, or a cross-tenant single-factor sign-in, scored by how many of the three they meet"
            }
            Hunt::SpraySources => {
                "sources (IP or rotated /24) that password-sprayed Entra or failed AWS console logins, and who then signed in from them"
            }
            Hunt::ConsoleNoMfa => {
                "successful AWS console logins by IAM users and root without MFA (SSO/SAML sessions excluded)"
            }
            Hunt::ReconBursts => {
                "bursts of 4+ distinct reconnaissance calls from one access key, IP and client within 2 minutes"
            }
            Hunt::CrossCloudIps => "source IPs seen in both Entra sign-ins and AWS CloudTrail",
            Hunt::IdentityRisk => {
                "identities with signals, their decayed cross-cloud risk score, clouds, signal and finding counts"
            }
            Hunt::RiskDetections => {
                "Identity Protection risk detections whose activity is in the range, each in its latest state (--user, --level, --state narrow it)"
            }
            Hunt::PostCompromise => {
                "per identity: AWS messaging abuse, credential persistence and unused-region signals, with its risky Entra evidence of the week before (--user narrows it)"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Hunt> {
        Hunt::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Runs the hunt; `correlate` is the `[correlate]` config (for scoring hunts).
    pub fn run(
        self,
        store: &Store,
        range: Range,
        filters: &Filters,
        correlate: &CorrelateConfig,
    ) -> anyhow::Result<Rows> {
        match self {
            Hunt::RiskySignins => risky_signins::run(store, range),
            Hunt::SpraySources => signals::spray_sources(store, range),
            Hunt::ConsoleNoMfa => events::console_no_mfa(store, range),
            Hunt::ReconBursts => signals::recon_bursts(store, range),
            Hunt::CrossCloudIps => events::cross_cloud(store, range),
            Hunt::IdentityRisk => signals::identity_risk(store, range, correlate),
            Hunt::RiskDetections => risk_detections::run(store, range, filters),
            Hunt::PostCompromise => post_compromise::run(store, range, filters),
        }
    }
}
