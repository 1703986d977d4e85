//! The attack scenarios, each injected into the benign stream at a chosen time with its
//! ground truth: who is compromised, from where, which records, and which signals (scored as
//! docs/detections.md says) should fire.

use serde_json::Value;

use crate::benign::Records;
use crate::cloudtrail::{self, Call, ConsoleUser, Principal};
use crate::rng::Rng;
use crate::signin::{
    self, Auth, DeviceView, MFA_DECLINED, MFA_NO_RESPONSE, NO_RISK, Risk, SignIn, Who,
};
use crate::time::{HOUR, MIN, SEC, iso};
use crate::world::{
    APP_AAD_PS, APP_AWS_SSO, APP_EXO_ROPC, APP_OFFICE, APP_OUTLOOK, APP_PORTAL, ATTACK_NETS, Aws,
    Device, FOREIGN, HOME, IamUser, Kind, User, World,
};
use crate::{ExpectedSignal, Scenario, ScenarioTruth};

mod aws_post;
mod leaked;
#[cfg(test)]
pub(crate) use aws_post::MINER_REGION;

static PY_DEVICE: Device = Device {
    os: "",
    browser: "Python Requests 2.32",
    ua: "python-requests/2.32.3",
    managed: false,
    trust: "",
};
static ROPC_DEVICE: Device = Device {
    os: "",
    browser: "",
    ua: "BAV2ROPC",
    managed: false,
    trust: "",
};
static TOR_DEVICE: Device = Device {
    os: "Windows10",
    browser: "Firefox 128.0",
    ua: "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0",
    managed: false,
    trust: "",
};
static ATTACKER_DEVICE: Device = Device {
    os: "Windows10",
    browser: "Chrome 130.0.0",
    ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    managed: false,
    trust: "",
};
const ATTACKER_CLI_UA: &str = "aws-cli/2.13.0 Python/3.11.4 Linux/6.5.0-kali3-amd64 exe/x86_64.kali.2023 prompt/off command/sts.get-caller-identity";
const ATTACKER_BOTO_UA: &str =
    "Boto3/1.28.36 Python/3.11.4 Linux/6.5.0-kali3-amd64 Botocore/1.31.36";

/// An IMAP client: Entra records no browser or user agent for basic authentication over IMAP.
static IMAP_DEVICE: Device = Device {
    os: "",
    browser: "",
    ua: "",
    managed: false,
    trust: "",
};
/// Identity Protection's real-time view of a sign-in from unfamiliar properties (a new country).
const UNFAMILIAR_MEDIUM: Risk = Risk {
    level: "medium",
    aggregated: "medium",
    state: "atRisk",
    detail: "none",
    events: &["unfamiliarFeatures"],
};
/// The attack networks the two Entra scenarios come from (indices into `ATTACK_NETS`).
const FATIGUE_NET: usize = 2;
const IMAP_NET: usize = 4;

const ANON_RISK: Risk = Risk {
    level: "high",
    aggregated: "high",
    state: "atRisk",
    detail: "none",
    events: &["anonymizedIPAddress"],
};

/// The people each scenario compromises (distinct, so `mixed` keeps them apart).
pub(crate) struct Victims {
    spray: usize,
    anonymizer: usize,
    recon: usize,
    spray_aws: usize,
    travel: usize,
    /// An Identity Center user (console via SSO): the MFA fatigue victim.
    fatigue: usize,
    /// An office user without AWS, living outside the IMAP attacker's country.
    imap: usize,
    /// A developer whose key creates a key for another user.
    persist: usize,
    /// A developer whose key launches instances in an unused region.
    region: usize,
    /// A developer whose credentials leak, key and all.
    leak: usize,
}

impl Victims {
    pub(crate) fn pick(world: &World) -> Victims {
        let plain: Vec<usize> = (0..world.users.len())
            .filter(|&i| {
                world.users[i].kind == Kind::Office && matches!(world.users[i].aws, Aws::None)
            })
            .collect();
        let keys: Vec<usize> = (0..world.users.len())
            .filter(|&i| matches!(world.users[i].aws, Aws::IamKey(_)))
            .collect();
        let european = |i: &usize| {
            crate::world::COUNTRIES
                .iter()
                .any(|c| c.europe && c.code == world.users[*i].net.place.country)
        };
        let travel = keys
            .iter()
            .copied()
            .find(european)
            .or(keys.first().copied())
            .unwrap_or(0);
        let mut rest = keys.iter().copied().filter(|&i| i != travel);
        let recon = rest.next().unwrap_or(0);
        let spray_aws = rest.next().unwrap_or(0);
        let persist = rest.next().unwrap_or(0);
        let region = rest.next().unwrap_or(0);
        let leak = rest.next().unwrap_or(0);
        let spray = plain.get(plain.len() / 3).copied().unwrap_or(0);
        let anonymizer = plain.get(2 * plain.len() / 3).copied().unwrap_or(0);
        let fatigue = sso_office_users(world).next().unwrap_or(0);
        let imap = plain
            .iter()
            .copied()
            .skip(plain.len() / 2)
            .find(|&i| {
                i != spray
                    && i != anonymizer
                    && world.users[i].net.place.country != ATTACK_NETS[IMAP_NET].place.country
            })
            .unwrap_or(0);
        Victims {
            spray,
            anonymizer,
            recon,
            spray_aws,
            travel,
            fatigue,
            imap,
            persist,
            region,
            leak,
        }
    }
}

/// Office users (not VPN, not travellers) who reach AWS through Identity Center, in order.
pub(crate) fn sso_office_users(world: &World) -> impl Iterator<Item = usize> + '_ {
    (0..world.users.len()).filter(|&i| {
        world.users[i].kind == Kind::Office && matches!(world.users[i].aws, Aws::Sso(_))
    })
}

struct Sc<'a> {
    rng: Rng,
    out: &'a mut Records,
    truth: ScenarioTruth,
}

impl Sc<'_> {
    fn signin(&mut self, s: &SignIn<'_>) {
        let v = signin::build(&mut self.rng, s);
        self.note(s.time, &v, "id");
        self.out.signins.push((s.time, v));
    }

    fn ct(&mut self, t: i64, v: Value) {
        self.note(t, &v, "eventID");
        self.out.cloudtrail.push((t, v));
    }

    /// A successful API call by the intruder's tooling (boto3) with `p`'s credentials.
    fn attacker_call(&mut self, t: i64, p: &Principal<'_>, ip: &str, call: Call) {
        let rec = cloudtrail::api_call(&mut self.rng, t, p, ip, ATTACKER_BOTO_UA, call, false);
        self.ct(t, rec);
    }

    fn note(&mut self, t: i64, v: &Value, key: &str) {
        let id = v
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if key == "id" {
            self.truth.signin_ids.push(id);
        } else {
            self.truth.cloudtrail_event_ids.push(id);
        }
        if self.truth.signin_ids.len() + self.truth.cloudtrail_event_ids.len() == 1 {
            self.truth.start_ms = t;
        }
        self.truth.start_ms = self.truth.start_ms.min(t);
        self.truth.end_ms = self.truth.end_ms.max(t);
    }

    fn expect(&mut self, identity: &str, signal: &str, score: f64, threat: Option<&str>) {
        self.truth.expected_signals.push(ExpectedSignal {
            identity: identity.to_owned(),
            signal: signal.to_owned(),
            score,
            threat_object: threat.map(str::to_owned),
        });
    }

    fn finish(mut self, both_clouds: bool) -> ScenarioTruth {
        let sum: f64 = self.truth.expected_signals.iter().map(|s| s.score).sum();
        self.truth.expected_min_score = if both_clouds { sum * 1.5 } else { sum };
        self.truth.start = iso(self.truth.start_ms);
        self.truth.end = iso(self.truth.end_ms);
        self.truth.ips.sort();
        self.truth.ips.dedup();
        self.truth
    }
}

fn attack_ip(rng: &mut Rng, net: usize) -> String {
    format!("{}.{}", ATTACK_NETS[net].prefix, rng.range(2, 255))
}

fn who(u: &User) -> Who<'_> {
    Who {
        upn: &u.upn,
        display: &u.display,
        user_id: &u.user_id,
        guest: false,
        home_tenant: &HOME,
    }
}

fn attacker_view(d: &'static Device) -> DeviceView<'static> {
    DeviceView {
        device: d,
        device_id: "",
        name: "",
        ua: d.ua,
    }
}

fn iam(u: &User) -> Option<&IamUser> {
    match &u.aws {
        Aws::IamKey(i) | Aws::IamConsole(i) => Some(i),
        _ => None,
    }
}

/// Distinct user indices, deterministic, excluding `skip`.
fn targets(rng: &mut Rng, n_users: usize, count: usize, skip: &[usize]) -> Vec<usize> {
    let mut pool: Vec<usize> = (0..n_users).filter(|i| !skip.contains(i)).collect();
    let count = count.min(pool.len());
    for k in 0..count {
        let j = k + rng.index(pool.len() - k);
        pool.swap(k, j);
    }
    pool.truncate(count);
    pool
}

fn new_truth(s: Scenario, narrative: &str) -> ScenarioTruth {
    ScenarioTruth {
        scenario: s.name().to_owned(),
        narrative: narrative.to_owned(),
        ..ScenarioTruth::default()
    }
}

/// Injects one scenario starting at `at`; returns its ground truth.
pub(crate) fn inject(
    world: &World,
    v: &Victims,
    seed: u64,
    s: Scenario,
    at: i64,
    window: i64,
    out: &mut Records,
) -> Option<ScenarioTruth> {
    let rng = Rng::derive(seed, s.name());
    let narrative = match s {
        Scenario::PasswordSpray => {
            "one /24 sprays Entra with ROPC from a legacy client, then one victim's password works"
        }
        Scenario::AnonymizerSignin => {
            "a stolen session is replayed through a Tor exit; Identity Protection rates it high"
        }
        Scenario::CrossTenantSfa => {
            "a guest from a non-partner tenant signs in single-factor, then logs in to AWS as the linked IAM user without MFA from the same IP"
        }
        Scenario::AwsRecon => {
            "a developer's long-term access key is used from a never-seen IP for an IAM/S3/EC2 enumeration, some calls denied"
        }
        Scenario::SprayToAws => {
            "an IP sprays Entra, then logs in to the AWS console as a sprayed user's IAM user without MFA and enumerates"
        }
        Scenario::ImpossibleTravel => {
            "a European user signs in at home; 30 min later their IAM user logs in to the console from Vietnam, an IP Entra saw fail against them"
        }
        Scenario::MfaFatigue => {
            "an attacker with a user's password push-bombs them until they approve, then opens the AWS console through Identity Center"
        }
        Scenario::ImapNewCountry => {
            "a stolen password is used over IMAP (no MFA possible) from a country the user never signs in from; Identity Protection rates it medium"
        }
        Scenario::StolenKeyPersistence => {
            "a developer's stolen long-term key enumerates IAM from a never-seen IP, then creates an access key for a service user (a way back in) and tries it"
        }
        Scenario::UnusedRegion => {
            "a developer's stolen long-term key checks regions and network from a never-seen IP, then launches eight large instances in a region the account has not used in the week of history"
        }
        Scenario::LeakedCredentialsMessaging => {
            "Identity Protection finds a developer's credentials in a leak (offline, raised hours later); meanwhile their leaked AWS key checks SES's quota and verified identities from a never-seen IP, verifies a sender and switches sending on"
        }
        Scenario::Benign | Scenario::Mixed => return None,
    };
    let mut sc = Sc {
        rng,
        out,
        truth: new_truth(s, narrative),
    };
    match s {
        Scenario::PasswordSpray => password_spray(world, v, &mut sc, at),
        Scenario::AnonymizerSignin => anonymizer(world, v, &mut sc, at),
        Scenario::CrossTenantSfa => cross_tenant(&mut sc, at, seed),
        Scenario::AwsRecon => aws_recon(world, v, &mut sc, at),
        Scenario::SprayToAws => spray_to_aws(world, v, &mut sc, at, window),
        Scenario::ImpossibleTravel => impossible_travel(world, v, &mut sc, at),
        Scenario::MfaFatigue => mfa_fatigue(world, v, &mut sc, at),
        Scenario::ImapNewCountry => imap_new_country(world, v, &mut sc, at),
        Scenario::StolenKeyPersistence => aws_post::key_persistence(world, v, &mut sc, at),
        Scenario::UnusedRegion => aws_post::unused_region(world, v, &mut sc, at),
        Scenario::LeakedCredentialsMessaging => {
            leaked::leaked_credentials_messaging(world, v, &mut sc, at)
        }
        Scenario::Benign | Scenario::Mixed => {}
    }
    let both = matches!(
        s,
        Scenario::CrossTenantSfa
            | Scenario::SprayToAws
            | Scenario::ImpossibleTravel
            | Scenario::MfaFatigue
            | Scenario::LeakedCredentialsMessaging
    );
    Some(sc.finish(both))
}

fn spray_attempt<'a>(
    t: i64,
    u: &'a User,
    ip: &'a str,
    net: usize,
    dev: &'static Device,
    app: &'a crate::world::App,
    error: u32,
) -> SignIn<'a> {
    SignIn {
        time: t,
        who: who(u),
        app,
        ip,
        asn: ATTACK_NETS[net].asn,
        place: &ATTACK_NETS[net].place,
        device: attacker_view(dev),
        client_app: "Other clients",
        protocol: "ropc",
        interactive: true,
        error,
        auth: Auth::PasswordOnly,
        risk: NO_RISK,
    }
}

fn password_spray(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.spray];
    let ips: Vec<String> = (0..3).map(|_| attack_ip(&mut sc.rng, 0)).collect();
    let ts = targets(&mut sc.rng, world.users.len(), 24, &[v.spray]);
    for (k, &i) in ts.iter().enumerate() {
        let t = at + (k as i64) * 11 * SEC + sc.rng.range(0, 4 * SEC);
        let error = if k % 7 == 3 { 50053 } else { 50126 };
        let ip = &ips[k % ips.len()];
        sc.signin(
            &spray_attempt(t, &world.users[i], ip, 0, &PY_DEVICE, &APP_AAD_PS, 0).with_error(error),
        );
    }
    let t = at + 5 * MIN + 30 * SEC;
    sc.signin(&spray_attempt(
        t,
        victim,
        &ips[0],
        0,
        &PY_DEVICE,
        &APP_AAD_PS,
        0,
    ));
    sc.truth.identities.push(victim.upn.clone());
    sc.truth.ips.extend(ips.iter().cloned());
    sc.expect(&victim.upn, "azure_password_spray", 100.0, Some(&ips[0]));
    // ROPC from "Other clients": a legacy protocol, no MFA.
    sc.expect(&victim.upn, "azure_legacy_auth_signin", 32.0, Some(&ips[0]));
}

fn anonymizer(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.anonymizer];
    let ip = attack_ip(&mut sc.rng, 1);
    for (k, app) in [&APP_OFFICE, &APP_OUTLOOK].into_iter().enumerate() {
        let s = SignIn {
            time: at + (k as i64) * 3 * MIN,
            who: who(victim),
            app,
            ip: &ip,
            asn: ATTACK_NETS[1].asn,
            place: &ATTACK_NETS[1].place,
            device: attacker_view(&TOR_DEVICE),
            client_app: "Browser",
            protocol: "none",
            interactive: true,
            error: 0,
            auth: Auth::Token,
            risk: ANON_RISK,
        };
        sc.signin(&s);
        sc.expect(&victim.upn, "azure_high_risk_signin", 56.0, Some(&ip));
        sc.expect(&victim.upn, "azure_risky_event", 48.0, Some(&ip));
    }
    sc.truth.identities.push(victim.upn.clone());
    sc.truth.ips.push(ip);
}

/// The foreign guest and its linked IAM user (only exists when the scenario runs).
pub(crate) struct ForeignGuest {
    pub upn: String,
    pub display: String,
    pub user_id: String,
    pub iam: IamUser,
}

pub(crate) fn foreign_guest(seed: u64) -> ForeignGuest {
    let mut rng = Rng::derive(seed, "foreign-guest");
    let upn = format!("morgan.reyes@{}", FOREIGN.domain);
    ForeignGuest {
        display: "Morgan Reyes (Northwind Advisory)".to_owned(),
        user_id: rng.uuid(),
        iam: IamUser::new(
            &mut rng,
            0,
            "ext-morgan.reyes".to_owned(),
            Some(upn.clone()),
            false,
        ),
        upn,
    }
}

fn cross_tenant(sc: &mut Sc<'_>, at: i64, seed: u64) {
    let g = foreign_guest(seed);
    let ip = attack_ip(&mut sc.rng, 2);
    let s = SignIn {
        time: at,
        who: Who {
            upn: &g.upn,
            display: &g.display,
            user_id: &g.user_id,
            guest: true,
            home_tenant: &FOREIGN,
        },
        app: &APP_PORTAL,
        ip: &ip,
        asn: ATTACK_NETS[2].asn,
        place: &ATTACK_NETS[2].place,
        device: attacker_view(&ATTACKER_DEVICE),
        client_app: "Browser",
        protocol: "none",
        interactive: true,
        error: 0,
        auth: Auth::PasswordOnly,
        risk: NO_RISK,
    };
    sc.signin(&s);
    let login = at + 41 * MIN + 12 * SEC;
    let rec = cloudtrail::console_login(
        &mut sc.rng,
        login,
        &ConsoleUser::Iam(&g.iam),
        &ip,
        ATTACKER_DEVICE.ua,
        true,
        false,
    );
    sc.ct(login, rec);
    let key = format!("ASIA{}", sc.rng.base32(16));
    let p = Principal::IamConsole {
        user: &g.iam,
        key: &key,
        created: login,
        mfa: false,
    };
    for (off, call) in [
        (3 * MIN, Call::ListBuckets),
        (5 * MIN, Call::GetObject),
        (6 * MIN, Call::GetObject),
    ] {
        let t = login + off + sc.rng.range(0, 20 * SEC);
        let rec = cloudtrail::api_call(&mut sc.rng, t, &p, &ip, ATTACKER_DEVICE.ua, call, false);
        sc.ct(t, rec);
    }
    sc.truth.identities.push(g.upn.clone());
    sc.truth.ips.push(ip.clone());
    sc.expect(&g.upn, "azure_cross_tenant_sfa", 40.0, Some(&ip));
    sc.expect(&g.upn, "aws_console_login_no_mfa", 96.0, Some(&ip));
    sc.expect(&g.upn, "cross_cloud_risky_then_aws", 80.0, Some(&ip));
}

fn aws_recon(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.recon];
    let Some(user) = iam(victim) else { return };
    let ip = attack_ip(&mut sc.rng, 3);
    let p = Principal::IamKey(user);
    let first: [(Call, bool); 6] = [
        (Call::GetCallerIdentity, false),
        (Call::ListAttachedUserPolicies, false),
        (Call::ListGroupsForUser, false),
        (Call::ListUsers, true),
        (Call::ListBuckets, false),
        (Call::DescribeInstances, true),
    ];
    let mut t = at;
    for (call, denied) in first {
        let rec = cloudtrail::api_call(&mut sc.rng, t, &p, &ip, ATTACKER_CLI_UA, call, denied);
        sc.ct(t, rec);
        t += sc.rng.range(6 * SEC, 18 * SEC);
    }
    // A few minutes later, a second pass with a script (pacu-style): another burst.
    let mut t = at + 7 * MIN;
    let second: [(Call, bool); 4] = [
        (Call::GetAccountAuthorizationDetails, true),
        (Call::ListRoles, true),
        (Call::ListUserPolicies, false),
        (Call::GetAccountSummary, true),
    ];
    for (call, denied) in second {
        let rec = cloudtrail::api_call(&mut sc.rng, t, &p, &ip, ATTACKER_BOTO_UA, call, denied);
        sc.ct(t, rec);
        t += sc.rng.range(2 * SEC, 9 * SEC);
    }
    let name = user.canonical();
    sc.truth.identities.push(name.clone());
    sc.truth.ips.push(ip.clone());
    sc.expect(&name, "aws_recon_burst", 56.0 * 1.5 + 20.0, Some(&ip));
    sc.expect(&name, "aws_recon_burst", 56.0 + 20.0, Some(&ip));
}

fn spray_to_aws(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64, window: i64) {
    let victim = &world.users[v.spray_aws];
    let Some(user) = iam(victim) else { return };
    let ip = attack_ip(&mut sc.rng, 4);
    let mut ts = targets(&mut sc.rng, world.users.len(), 13, &[v.spray_aws]);
    ts.insert(6, v.spray_aws);
    for (k, &i) in ts.iter().enumerate() {
        let t = at + (k as i64) * 33 * SEC + sc.rng.range(0, 5 * SEC);
        sc.signin(&spray_attempt(
            t,
            &world.users[i],
            &ip,
            4,
            &ROPC_DEVICE,
            &APP_EXO_ROPC,
            50126,
        ));
    }
    let login = at + (2 * HOUR).min(window * 3 / 10) + sc.rng.range(0, 5 * MIN);
    let rec = cloudtrail::console_login(
        &mut sc.rng,
        login,
        &ConsoleUser::Iam(user),
        &ip,
        ATTACKER_DEVICE.ua,
        true,
        false,
    );
    sc.ct(login, rec);
    let key = format!("ASIA{}", sc.rng.base32(16));
    let p = Principal::IamConsole {
        user,
        key: &key,
        created: login,
        mfa: false,
    };
    let mut t = login + 50 * SEC;
    for (call, denied) in [
        (Call::GetAccountSummary, false),
        (Call::ListUsers, false),
        (Call::ListRoles, true),
        (Call::ListBuckets, false),
        (Call::DescribeInstances, true),
    ] {
        let rec = cloudtrail::api_call(&mut sc.rng, t, &p, &ip, ATTACKER_DEVICE.ua, call, denied);
        sc.ct(t, rec);
        t += sc.rng.range(8 * SEC, 16 * SEC);
    }
    let name = user.canonical();
    sc.truth.identities.push(name.clone());
    sc.truth.ips.push(ip.clone());
    sc.expect(&name, "cross_cloud_spray_then_aws_login", 100.0, Some(&ip));
    sc.expect(&name, "aws_console_login_no_mfa", 96.0, Some(&ip));
    sc.expect(&name, "aws_recon_burst", 56.0 + 20.0, Some(&ip));
}

fn impossible_travel(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.travel];
    let Some(user) = iam(victim) else { return };
    let ip = attack_ip(&mut sc.rng, 5);
    let net = &ATTACK_NETS[5];
    // The attacker's password attempts against the victim: wrong, then right but MFA-blocked.
    for (off, error) in [(12 * MIN, 50126), (10 * MIN, 50074)] {
        let s = SignIn {
            time: at - off,
            who: who(victim),
            app: &APP_OFFICE,
            ip: &ip,
            asn: net.asn,
            place: &net.place,
            device: attacker_view(&ATTACKER_DEVICE),
            client_app: "Browser",
            protocol: "none",
            interactive: true,
            error,
            auth: Auth::PasswordOnly,
            risk: NO_RISK,
        };
        sc.signin(&s);
    }
    // The real user, at home in Europe.
    let home = SignIn {
        time: at,
        who: who(victim),
        app: &APP_OFFICE,
        ip: &victim.net.ip,
        asn: victim.net.asn,
        place: victim.net.place,
        device: DeviceView {
            device: victim.device,
            device_id: &victim.device_id,
            name: &victim.device_name,
            ua: victim.device.ua,
        },
        client_app: "Browser",
        protocol: "none",
        interactive: true,
        error: 0,
        auth: Auth::FreshMfa(victim.mfa_method),
        risk: NO_RISK,
    };
    sc.signin(&home);
    let login = at + 30 * MIN;
    let rec = cloudtrail::console_login(
        &mut sc.rng,
        login,
        &ConsoleUser::Iam(user),
        &ip,
        ATTACKER_DEVICE.ua,
        true,
        false,
    );
    sc.ct(login, rec);
    let key = format!("ASIA{}", sc.rng.base32(16));
    let p = Principal::IamConsole {
        user,
        key: &key,
        created: login,
        mfa: false,
    };
    for (off, call) in [
        (4 * MIN, Call::DescribeInstances),
        (9 * MIN, Call::ListBuckets),
    ] {
        let t = login + off;
        let rec = cloudtrail::api_call(&mut sc.rng, t, &p, &ip, ATTACKER_DEVICE.ua, call, false);
        sc.ct(t, rec);
    }
    let name = user.canonical();
    sc.truth.identities.push(name.clone());
    sc.truth.ips.push(ip.clone());
    sc.expect(&name, "cross_cloud_impossible_travel", 60.0, Some(&ip));
    sc.expect(&name, "aws_console_login_no_mfa", 96.0, Some(&ip));
}

fn mfa_fatigue(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.fatigue];
    let Aws::Sso(role) = &victim.aws else { return };
    let net = &ATTACK_NETS[FATIGUE_NET];
    let ip = attack_ip(&mut sc.rng, FATIGUE_NET);
    let attempt = |t: i64, error: u32, auth: Auth, app| SignIn {
        time: t,
        who: who(victim),
        app,
        ip: &ip,
        asn: net.asn,
        place: &net.place,
        device: attacker_view(&ATTACKER_DEVICE),
        client_app: "Browser",
        protocol: "none",
        interactive: true,
        error,
        auth,
        risk: NO_RISK,
    };
    // Eight pushes in about seven minutes, ignored or declined, until one is approved.
    let mut t = at;
    for k in 0..8 {
        let why = if k % 3 == 1 {
            MFA_DECLINED
        } else {
            MFA_NO_RESPONSE
        };
        let s = attempt(t, 500121, Auth::MfaRefused(why), &APP_OFFICE);
        sc.signin(&s);
        t += sc.rng.range(40 * SEC, 65 * SEC);
    }
    let approved = t + 20 * SEC;
    let s = attempt(approved, 0, Auth::FreshMfa(victim.mfa_method), &APP_OFFICE);
    sc.signin(&s);
    // Into AWS through Identity Center with the session just won.
    let sso = approved + 31 * MIN + sc.rng.range(0, 2 * MIN);
    let s = attempt(sso, 0, Auth::Token, &APP_AWS_SSO);
    sc.signin(&s);
    let login = sso + sc.rng.range(20 * SEC, 60 * SEC);
    let rec = cloudtrail::console_login(
        &mut sc.rng,
        login,
        &ConsoleUser::Sso {
            role,
            session: &victim.upn,
        },
        &ip,
        ATTACKER_DEVICE.ua,
        true,
        false,
    );
    sc.ct(login, rec);
    let key = format!("ASIA{}", sc.rng.base32(16));
    let p = Principal::Sso {
        role,
        session: &victim.upn,
        key: &key,
        created: login,
    };
    for (off, call) in [(2 * MIN, Call::ListBuckets), (6 * MIN, Call::GetObject)] {
        let t = login + off + sc.rng.range(0, 20 * SEC);
        let rec = cloudtrail::api_call(&mut sc.rng, t, &p, &ip, ATTACKER_DEVICE.ua, call, false);
        sc.ct(t, rec);
    }
    sc.truth.identities.push(victim.upn.clone());
    sc.truth.ips.push(ip.clone());
    sc.expect(&victim.upn, "azure_mfa_fatigue", 24.0, Some(&ip));
    // The approval grows it to 80 (an escalation carrying the difference).
    sc.expect(&victim.upn, "azure_mfa_fatigue", 56.0, Some(&ip));
    sc.expect(&victim.upn, "cross_cloud_risky_then_aws", 80.0, Some(&ip));
}

fn imap_new_country(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.imap];
    let net = &ATTACK_NETS[IMAP_NET];
    let ip = attack_ip(&mut sc.rng, IMAP_NET);
    // The first sign-in is rated; the mail client then syncs every twenty minutes or so.
    let mut t = at;
    for k in 0..4 {
        let s = SignIn {
            time: t,
            who: who(victim),
            app: &APP_EXO_ROPC,
            ip: &ip,
            asn: net.asn,
            place: &net.place,
            device: attacker_view(&IMAP_DEVICE),
            client_app: "IMAP4",
            protocol: "none",
            interactive: false,
            error: 0,
            auth: Auth::PasswordOnly,
            risk: if k == 0 { UNFAMILIAR_MEDIUM } else { NO_RISK },
        };
        sc.signin(&s);
        t += sc.rng.range(17 * MIN, 24 * MIN);
    }
    sc.truth.identities.push(victim.upn.clone());
    sc.truth.ips.push(ip.clone());
    sc.expect(&victim.upn, "azure_high_risk_signin", 56.0, Some(&ip));
    sc.expect(&victim.upn, "azure_risky_event", 48.0, Some(&ip));
    sc.expect(&victim.upn, "azure_legacy_auth_signin", 32.0, Some(&ip));
}

// === impl SignIn (scenario helpers) ===

impl SignIn<'_> {
    fn with_error(self, error: u32) -> Self {
        SignIn { error, ..self }
    }
}
