//! Crosswind's deterministic scenario generator: a realistic Entra tenant (`contoso.com`) and
//! two or three AWS accounts producing Graph **beta** `signIn` records and CloudTrail records —
//! benign office traffic, the false-positive traps docs/detections.md's tuning notes describe, and
//! the attack scenarios with ground truth.
//!
//! Invariants:
//! - Same [`SimConfig`] → byte-identical [`Dataset`] and files, on every platform (own PRNG,
//!   own time formatting, `BTreeMap`-ordered JSON, gzip without timestamps).
//! - Benign output does not depend on which scenarios are injected (independent PRNG streams).
//! - No benign record uses an attack IP (or an attack /24); no record uses a private range.
//! - Data only, plus loopback simulators of the services the collectors talk to (token
//!   endpoint, Graph, managed identity, CloudTrail, HEC) and an HTTP `CONNECT` proxy.

#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod assertion;
pub(crate) mod aws_traps;
mod benign;
mod cloudtrail;
pub mod cloudtrail_api;
mod cloudtrail_post;
mod entra;
mod entra_traps;
pub mod graph;
pub mod hec;
pub mod hostile;
pub mod loopback;
pub mod msi;
mod output;
pub mod proxy;
mod risk;
mod rng;
mod scenarios;
mod signin;
mod stream;
mod time;
pub mod token;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

pub use cloudtrail::RECON_EVENT_NAMES;
pub use entra::EntraSims;
pub use output::{
    GRAPH_PAGE_SIZE, RISK_DETECTION_PAGE_SIZE, Summary, TRAIL_FILE_RECORDS, write_dataset,
};
pub use stream::{SimRecord, SimStream, stream};
pub use time::parse_iso;

use crate::rng::Rng;
use crate::time::{DAY, HOUR, MIN};
use crate::world::{ACCOUNTS, Kind, PARTNER, VPN_CIDR, World};

/// Version of the ground-truth file layout.
pub const TRUTH_SCHEMA_VERSION: u32 = 1;

/// Fewest users a tenant gets (a spray needs ≥ 20 distinct targets).
pub const MIN_USERS: usize = 40;

/// Shortest window (the spray-to-AWS scenario needs room after the spray).
pub const MIN_HOURS: u32 = 6;

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Everything derives from this.
    pub seed: u64,
    /// Window start, epoch ms (default 2026-11-30T00:00:00Z, a Monday).
    pub start: i64,
    /// Window length in hours (at least [`MIN_HOURS`], and at least [`Scenario::min_hours`] of
    /// each scenario asked for by name).
    pub hours: u32,
    /// Member users (at least [`MIN_USERS`]).
    pub users: usize,
    /// AWS accounts, 1–3.
    pub accounts: usize,
    /// Per-mille of sign-ins that arrive late (5–30 min) at the Graph simulator.
    pub late_per_mille: u32,
    /// Records [`stream`] yields.
    pub stream_records: u64,
}

/// 2026-11-30T00:00:00Z.
pub const DEFAULT_START: i64 = 1_795_996_800_000;

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            start: DEFAULT_START,
            hours: 24,
            users: 200,
            accounts: 2,
            late_per_mille: 20,
            stream_records: 1_000_000,
        }
    }
}

impl SimConfig {
    fn window(&self, scenarios: &[Scenario]) -> (i64, i64) {
        let needed = scenarios
            .iter()
            .map(|s| s.min_hours())
            .max()
            .unwrap_or(MIN_HOURS);
        let hours = i64::from(self.hours.max(MIN_HOURS).max(needed));
        (self.start, self.start + hours * HOUR)
    }
}

/// A scenario to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Benign traffic and traps only.
    Benign,
    PasswordSpray,
    AnonymizerSignin,
    CrossTenantSfa,
    AwsRecon,
    SprayToAws,
    ImpossibleTravel,
    /// Push-bombing until the user approves, then the AWS console.
    MfaFatigue,
    /// A stolen password used over IMAP from a country the user never signs in from.
    ImapNewCountry,
    /// A stolen key enumerates, then creates an access key for another IAM user.
    StolenKeyPersistence,
    /// A stolen key enumerates, then launches instances in a region the account never used;
    /// needs [`Scenario::min_hours`] of window (a week of account history first).
    UnusedRegion,
    /// Identity Protection finds a user's credentials leaked (an offline detection, hours
    /// later); the same person's AWS key then checks and unlocks SES from a new IP.
    LeakedCredentialsMessaging,
    /// Every attack in one benign tenant (those whose [`Scenario::min_hours`] fit the window).
    Mixed,
}

impl Scenario {
    pub const ALL: [Scenario; 13] = [
        Scenario::Benign,
        Scenario::PasswordSpray,
        Scenario::AnonymizerSignin,
        Scenario::CrossTenantSfa,
        Scenario::AwsRecon,
        Scenario::SprayToAws,
        Scenario::ImpossibleTravel,
        Scenario::MfaFatigue,
        Scenario::ImapNewCountry,
        Scenario::StolenKeyPersistence,
        Scenario::UnusedRegion,
        Scenario::LeakedCredentialsMessaging,
        Scenario::Mixed,
    ];

    /// The attacks, in injection order.
    pub const ATTACKS: [Scenario; 11] = [
        Scenario::PasswordSpray,
        Scenario::AnonymizerSignin,
        Scenario::CrossTenantSfa,
        Scenario::ImpossibleTravel,
        Scenario::AwsRecon,
        Scenario::SprayToAws,
        Scenario::MfaFatigue,
        Scenario::ImapNewCountry,
        Scenario::StolenKeyPersistence,
        Scenario::UnusedRegion,
        Scenario::LeakedCredentialsMessaging,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Benign => "benign",
            Scenario::PasswordSpray => "password-spray",
            Scenario::AnonymizerSignin => "anonymizer-signin",
            Scenario::CrossTenantSfa => "cross-tenant-sfa",
            Scenario::AwsRecon => "aws-recon",
            Scenario::SprayToAws => "spray-to-aws",
            Scenario::ImpossibleTravel => "impossible-travel",
            Scenario::MfaFatigue => "mfa-fatigue",
            Scenario::ImapNewCountry => "imap-new-country",
            Scenario::StolenKeyPersistence => "stolen-key-persistence",
            Scenario::UnusedRegion => "unused-region",
            Scenario::LeakedCredentialsMessaging => "leaked-credentials-messaging",
            Scenario::Mixed => "mixed",
        }
    }

    /// Where in the window the attack starts (fraction of the window).
    fn offset(self) -> f64 {
        match self {
            Scenario::PasswordSpray => 0.125,
            Scenario::AnonymizerSignin => 0.25,
            Scenario::CrossTenantSfa => 0.375,
            Scenario::ImpossibleTravel => 0.40,
            Scenario::AwsRecon => 0.46,
            Scenario::SprayToAws => 0.58,
            Scenario::MfaFatigue => 0.66,
            Scenario::ImapNewCountry => 0.75,
            Scenario::StolenKeyPersistence => 0.52,
            Scenario::UnusedRegion => 0.85,
            Scenario::LeakedCredentialsMessaging => 0.20,
            Scenario::Benign | Scenario::Mixed => 0.0,
        }
    }

    /// The earliest the attack may start after the window's start: `aws_unused_region` is
    /// silent until the account's history reaches 7 UTC days back (docs/detections.md).
    fn earliest(self) -> i64 {
        match self {
            Scenario::UnusedRegion => 7 * DAY + 10 * HOUR,
            _ => 0,
        }
    }

    /// The shortest window (hours) in which the attack raises what its truth expects; a
    /// window asked for explicitly grows to it, `mixed` leaves out what does not fit.
    pub fn min_hours(self) -> u32 {
        match self {
            Scenario::UnusedRegion => 8 * 24,
            _ => MIN_HOURS,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown scenario {0:?} (expected one of: {list})", list = Scenario::ALL.map(Scenario::name).join(", "))]
    UnknownScenario(String),
}

impl FromStr for Scenario {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| SimError::UnknownScenario(s.to_owned()))
    }
}

/// One signal the ground truth expects, scored as docs/detections.md says (before decay and the
/// both-clouds multiplier).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExpectedSignal {
    pub identity: String,
    pub signal: String,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threat_object: Option<String>,
}

/// One injected scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScenarioTruth {
    pub scenario: String,
    pub narrative: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub start: String,
    pub end: String,
    /// Canonical identity names (lower-case UPN, IAM user ARN, `root@<acct>`).
    pub identities: Vec<String>,
    pub ips: Vec<String>,
    pub expected_signals: Vec<ExpectedSignal>,
    /// Sum of the expected scores (×1.5 when they span both clouds): at least the threshold.
    pub expected_min_score: f64,
    /// Graph `id`s of this scenario's sign-ins.
    pub signin_ids: Vec<String>,
    /// CloudTrail `eventID`s of this scenario's records.
    pub cloudtrail_event_ids: Vec<String>,
    /// Graph `id`s of the risk detections the scenario raises itself (not derived from a
    /// sign-in: a leak Identity Protection found offline).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub risk_detection_ids: Vec<String>,
}

/// What a correct correlator should conclude.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroundTruth {
    pub schema_version: u32,
    pub seed: u64,
    pub tenant_id: String,
    pub accounts: Vec<String>,
    pub scenarios: Vec<ScenarioTruth>,
    pub malicious_identities: BTreeSet<String>,
    pub malicious_ips: BTreeSet<String>,
    /// Benign identities built to look suspicious (must not reach a finding).
    pub benign_traps: BTreeSet<String>,
    /// Trap identity → kind (`vpn`, `traveller`, `partner_guest`, `service_account`,
    /// `mfa_denier`, `mail_room`, `key_rotation`, `ci_new_region`, `ses_sender`).
    pub benign_trap_kinds: BTreeMap<String, String>,
}

/// Everything one generation produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    /// Graph beta `signIn` objects, oldest first.
    pub signins: Vec<Value>,
    /// Parallel to `signins`: how late (ms) each one becomes visible in Graph (0 = on time).
    pub signin_arrival_delay_ms: Vec<i64>,
    /// Identity Protection risk detection states (Graph `riskDetection` objects), by
    /// `lastUpdatedDateTime`; a detection reviewed later appears once per state, same `id`.
    pub risk_detections: Vec<Value>,
    /// Parallel to `risk_detections`: how long (ms) after its `lastUpdatedDateTime` each state
    /// becomes visible in Graph.
    pub risk_detection_arrival_delay_ms: Vec<i64>,
    /// CloudTrail records, oldest first.
    pub cloudtrail: Vec<Value>,
    pub truth: GroundTruth,
    /// The identities file (`[[identity]] name/aws/azure`).
    pub identities_toml: String,
    /// A `[correlate]` table: identities file, trusted CIDRs, partner tenants, service accounts.
    pub correlate_toml: String,
}

/// The attacks to inject: those named, and for `mixed` every attack that fits `hours`.
fn expand(scenarios: &[Scenario], hours: i64) -> Vec<Scenario> {
    let mut wanted = BTreeSet::new();
    for s in scenarios {
        match s {
            Scenario::Mixed => wanted.extend(
                Scenario::ATTACKS
                    .into_iter()
                    .filter(|a| i64::from(a.min_hours()) <= hours),
            ),
            Scenario::Benign => {}
            other => {
                wanted.insert(*other);
            }
        }
    }
    Scenario::ATTACKS
        .into_iter()
        .filter(|s| wanted.contains(s))
        .collect()
}

/// Generates benign traffic for the window plus the given scenarios.
pub fn generate(cfg: &SimConfig, scenarios: &[Scenario]) -> Dataset {
    let world = World::build(cfg);
    let (start, end) = cfg.window(scenarios);
    let mut recs = benign::Records::default();
    benign::generate(&world, cfg.seed, start, end, &mut recs);
    let mut traps = entra_traps::generate(&world, cfg.seed, start, end, &mut recs);
    traps.extend(aws_traps::generate(&world, cfg.seed, start, end, &mut recs));

    let attacks = expand(scenarios, (end - start) / HOUR);
    let victims = scenarios::Victims::pick(&world);
    let mut truths = Vec::new();
    for s in &attacks {
        let at = (start + ((end - start) as f64 * s.offset()) as i64).max(start + s.earliest());
        let at = at - at.rem_euclid(MIN) + 17_000;
        if let Some(t) =
            scenarios::inject(&world, &victims, cfg.seed, *s, at, end - start, &mut recs)
        {
            truths.push(t);
        }
    }

    recs.signins.sort_by_key(|(t, _)| *t);
    recs.cloudtrail.sort_by_key(|(t, _)| *t);
    let mut late = Rng::derive(cfg.seed, "arrival");
    let delays: Vec<i64> = recs
        .signins
        .iter()
        .map(|_| {
            if late.below(1000) < u64::from(cfg.late_per_mille) {
                late.range(5 * MIN, 30 * MIN + 1)
            } else {
                0
            }
        })
        .collect();

    let attack_signins: BTreeSet<&str> = truths
        .iter()
        .flat_map(|t| t.signin_ids.iter().map(String::as_str))
        .collect();
    // Offline detections Entra raises hours later on attack sign-ins that carried no risk event
    // when made: atypical travel on the impossible-travel attacker's password-correct attempt.
    let offline: BTreeMap<&str, (&'static str, &'static str)> = truths
        .iter()
        .filter(|t| t.scenario == Scenario::ImpossibleTravel.name())
        .flat_map(|t| t.signin_ids.iter().map(String::as_str))
        .filter(|id| {
            recs.signins
                .iter()
                .any(|(_, s)| s["id"].as_str() == Some(*id) && s["status"]["errorCode"] == 50074)
        })
        .map(|id| (id, ("unlikelyTravel", "medium")))
        .collect();
    let mut detections = risk::derive(cfg.seed, &recs.signins, &|id| risk::Known {
        malicious: attack_signins.contains(id),
        offline: offline.get(id).copied(),
    });
    // Detections of no sign-in (leaked credentials), raised by the scenarios themselves.
    detections.append(&mut recs.risk_detections);
    detections.sort_by_key(|d| (risk::updated_ms(&d.value), d.visible_ms));
    let risk_detection_arrival_delay_ms = detections
        .iter()
        .map(|d| d.visible_ms - risk::updated_ms(&d.value))
        .collect();
    let risk_detections = detections.into_iter().map(|d| d.value).collect();

    let with_guest = attacks.contains(&Scenario::CrossTenantSfa);
    let mut truth = ground_truth(&world, cfg, truths);
    for (identity, kind) in traps {
        if !truth.malicious_identities.contains(&identity) {
            truth.benign_traps.insert(identity.clone());
            truth.benign_trap_kinds.insert(identity, kind.to_owned());
        }
    }
    Dataset {
        signins: recs.signins.into_iter().map(|(_, v)| v).collect(),
        signin_arrival_delay_ms: delays,
        risk_detections,
        risk_detection_arrival_delay_ms,
        cloudtrail: recs.cloudtrail.into_iter().map(|(_, v)| v).collect(),
        identities_toml: identities_toml(&world, cfg.seed, with_guest),
        correlate_toml: correlate_toml(&world),
        truth,
    }
}

fn ground_truth(world: &World, cfg: &SimConfig, scenarios: Vec<ScenarioTruth>) -> GroundTruth {
    let mut t = GroundTruth {
        schema_version: TRUTH_SCHEMA_VERSION,
        seed: cfg.seed,
        tenant_id: world::HOME.id.to_owned(),
        accounts: ACCOUNTS[..world.accounts]
            .iter()
            .map(|a| a.id.to_owned())
            .collect(),
        ..GroundTruth::default()
    };
    for s in &scenarios {
        t.malicious_identities.extend(s.identities.iter().cloned());
        t.malicious_ips.extend(s.ips.iter().cloned());
    }
    t.scenarios = scenarios;
    for u in &world.users {
        let kind = match u.kind {
            Kind::Vpn => "vpn",
            Kind::Traveller(_) => "traveller",
            Kind::Office => continue,
        };
        if !t.malicious_identities.contains(&u.upn) {
            t.benign_trap_kinds.insert(u.upn.clone(), kind.to_owned());
        }
    }
    for g in &world.guests {
        t.benign_trap_kinds
            .insert(g.upn.clone(), "partner_guest".to_owned());
    }
    for a in &world.automation {
        t.benign_trap_kinds
            .insert(a.user.arn(), "service_account".to_owned());
    }
    t.benign_traps = t.benign_trap_kinds.keys().cloned().collect();
    t
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn identities_toml(world: &World, seed: u64, with_guest: bool) -> String {
    let mut out = format!(
        "# Identities file written by crosswind-sim (seed {seed}): Entra UPN ↔ IAM users.\n"
    );
    let mut entry = |name: &str, arn: String, azure: &str| {
        out.push_str(&format!(
            "\n[[identity]]\nname = {}\naws = {}\nazure = {}\n",
            toml_str(name),
            toml_list(&[arn]),
            toml_list(&[azure.to_owned()])
        ));
    };
    for (u, iam) in world.linked_iam_users() {
        entry(&u.upn, iam.arn(), &u.user_id);
    }
    if with_guest {
        let g = scenarios::foreign_guest(seed);
        entry(&g.upn, g.iam.arn(), &g.user_id);
    }
    out
}

fn correlate_toml(world: &World) -> String {
    let services: Vec<String> = world.automation.iter().map(|a| a.user.arn()).collect();
    format!(
        "# Correlator settings for this simulated tenant (crosswind-sim).\n[correlate]\nidentities_file = {}\nhalf_life_secs = 86400\nfinding_threshold = 100\ntrusted_cidrs = {}\npartner_tenants = {}\nservice_accounts = {}\n",
        toml_str("identities.toml"),
        toml_list(&[VPN_CIDR.to_owned()]),
        toml_list(&[PARTNER.id.to_owned()]),
        toml_list(&services),
    )
}

#[cfg(test)]
mod tests;
