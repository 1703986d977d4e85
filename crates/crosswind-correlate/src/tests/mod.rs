//! Correlator tests, split as the code is (one module per detector, the emission path, scoring):
//! every signal at its boundaries, tuning, identity resolution, repeats and habits, scoring and
//! findings, restart equivalence, and order-independence properties. Events are built by hand
//! (no dependency on the normaliser); the helpers are here.

use crosswind_model::*;
use expect_test::expect;
use proptest::prelude::*;

use crate::*;

const T0: i64 = 1_780_000_000_000; // 2026-05-28
const ACCT: &str = "111122223333";
const TENANT: &str = "aaaaaaaa-0000-0000-0000-000000000001";

// === helpers ===

fn at(secs: i64) -> i64 {
    T0 + secs * 1000
}

fn base(provider: CloudProvider, uid: &str, secs: i64, ip: &str) -> Event {
    let (product, log_name, class) = match provider {
        CloudProvider::Azure => (
            "Microsoft Entra ID",
            SourceFormat::GraphSignIn,
            CLASS_AUTHENTICATION,
        ),
        CloudProvider::Aws => (
            "AWS CloudTrail",
            SourceFormat::CloudTrail,
            CLASS_API_ACTIVITY,
        ),
    };
    Event {
        schema_version: SCHEMA_VERSION,
        class_uid: class,
        time: at(secs),
        status_id: STATUS_SUCCESS,
        status_code: None,
        status_detail: None,
        metadata: Metadata {
            uid: uid.to_owned(),
            product: product.to_owned(),
            log_name,
            correlation_uid: None,
            event_types: vec![],
        },
        cloud: Cloud {
            provider,
            account: Account {
                uid: Some(
                    if provider == CloudProvider::Azure {
                        TENANT
                    } else {
                        ACCT
                    }
                    .to_owned(),
                ),
            },
            region: None,
        },
        src_endpoint: SrcEndpoint {
            ip: (!ip.is_empty()).then(|| ip.to_owned()),
            ..SrcEndpoint::default()
        },
        user: None,
        actor: None,
        api: None,
        service: None,
        http_request: None,
        is_mfa: None,
        finding_info: None,
        entra: None,
        aws: None,
    }
}

/// An Entra sign-in; `code` 0 is a success.
fn signin(uid: &str, secs: i64, upn: &str, ip: &str, code: u32) -> Event {
    let mut e = base(CloudProvider::Azure, uid, secs, ip);
    e.status_id = if code == 0 {
        STATUS_SUCCESS
    } else {
        STATUS_FAILURE
    };
    e.status_code = Some(code.to_string());
    e.user = Some(User {
        name: Some(upn.to_owned()),
        uid: Some(format!("oid-{upn}")),
        ..User::default()
    });
    e.entra = Some(EntraDetail {
        home_tenant_id: Some(TENANT.to_owned()),
        resource_tenant_id: Some(TENANT.to_owned()),
        authentication_requirement: Some("multiFactorAuthentication".to_owned()),
        ..EntraDetail::default()
    });
    e
}

fn risky(mut e: Event, level: &str, state: &str, types: &[&str]) -> Event {
    let d = e.entra.get_or_insert_with(EntraDetail::default);
    d.risk_level_during_signin = Some(level.to_owned());
    d.risk_state = Some(state.to_owned());
    d.risk_event_types = types.iter().map(|s| (*s).to_owned()).collect();
    e
}

fn located(mut e: Event, lat: f64, long: f64) -> Event {
    e.src_endpoint.location = Some(Location {
        lat: Some(lat),
        long: Some(long),
        ..Location::default()
    });
    e
}

fn iam_user(name: &str) -> User {
    User {
        name: Some(name.to_owned()),
        kind: Some("IAMUser".to_owned()),
        arn: Some(format!("arn:aws:iam::{ACCT}:user/{name}")),
        account_uid: Some(ACCT.to_owned()),
        credential_uid: Some(format!("AKIA{}", name.to_uppercase())),
        ..User::default()
    }
}

fn root_user() -> User {
    User {
        name: Some("root".to_owned()),
        kind: Some("Root".to_owned()),
        arn: Some(format!("arn:aws:iam::{ACCT}:root")),
        account_uid: Some(ACCT.to_owned()),
        uid: Some(ACCT.to_owned()),
        ..User::default()
    }
}

fn sso_user(upn: &str) -> User {
    let role = "AWSReservedSSO_AdministratorAccess_0123456789abcdef";
    User {
        name: Some(upn.to_owned()),
        kind: Some("AssumedRole".to_owned()),
        arn: Some(format!("arn:aws:sts::{ACCT}:assumed-role/{role}/{upn}")),
        account_uid: Some(ACCT.to_owned()),
        credential_uid: Some("ASIAEXAMPLE".to_owned()),
        session: Some(Session {
            issuer_arn: Some(format!(
                "arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/{role}"
            )),
            issuer_name: Some(role.to_owned()),
            mfa_authenticated: Some(false),
            is_federated: true,
        }),
        ..User::default()
    }
}

/// An AWS `ConsoleLogin`; `mfa` is `additionalEventData.MFAUsed`.
fn console(uid: &str, secs: i64, user: User, ip: &str, success: bool, mfa: Option<&str>) -> Event {
    let mut e = base(CloudProvider::Aws, uid, secs, ip);
    e.class_uid = CLASS_AUTHENTICATION;
    e.status_id = if success {
        STATUS_SUCCESS
    } else {
        STATUS_FAILURE
    };
    e.status_code = Some(if success { "Success" } else { "Failure" }.to_owned());
    e.user = Some(user);
    e.api = Some(Api {
        operation: "ConsoleLogin".to_owned(),
        service: Some("signin.amazonaws.com".to_owned()),
        request_uid: None,
    });
    e.aws = Some(AwsDetail {
        event_type: Some("AwsConsoleSignIn".to_owned()),
        mfa_used: mfa.map(str::to_owned),
        console_login: Some(if success { "Success" } else { "Failure" }.to_owned()),
        ..AwsDetail::default()
    });
    e
}

/// An AWS API call; `error` is the CloudTrail `errorCode`.
fn call(uid: &str, secs: i64, user: User, op: &str, ip: &str, error: Option<&str>) -> Event {
    let mut e = base(CloudProvider::Aws, uid, secs, ip);
    e.status_id = if error.is_some() {
        STATUS_FAILURE
    } else {
        STATUS_SUCCESS
    };
    e.status_code = error.map(str::to_owned);
    e.actor = Some(Actor {
        user,
        invoked_by: None,
    });
    e.api = Some(Api {
        operation: op.to_owned(),
        service: None,
        request_uid: None,
    });
    e.http_request = Some(HttpRequest {
        user_agent: Some("Boto3/1.34.0 Python/3.12".to_owned()),
    });
    e.aws = Some(AwsDetail {
        event_type: Some("AwsApiCall".to_owned()),
        ..AwsDetail::default()
    });
    e
}

fn cfg() -> CorrelateConfig {
    CorrelateConfig::default()
}

fn run(cfg: &CorrelateConfig, events: Vec<Event>) -> Vec<Signal> {
    run_linked(cfg, &IdentityLinks::default(), events)
}

fn run_linked(cfg: &CorrelateConfig, links: &IdentityLinks, mut events: Vec<Event>) -> Vec<Signal> {
    correlate(cfg, links, &mut events)
}

fn named<'a>(signals: &'a [Signal], name: &str) -> Vec<&'a Signal> {
    signals.iter().filter(|s| s.signal == name).collect()
}

/// Failed sign-ins (50126) for `n` distinct users from `ip`, one every `step` seconds.
fn spray(n: usize, ip: &str, start: i64, step: i64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            signin(
                &format!("f{ip}-{i}"),
                start + i as i64 * step,
                &format!("user{i}@corp.example"),
                ip,
                50126,
            )
        })
        .collect()
}

fn recon_burst(user: User, ops: &[&str], start: i64, step: i64, ip: &str) -> Vec<Event> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            call(
                &format!("r{start}-{i}"),
                start + i as i64 * step,
                user.clone(),
                op,
                ip,
                None,
            )
        })
        .collect()
}

fn sig(id: &str, who: &str, secs: i64, score: f64, clouds: &[CloudProvider]) -> Signal {
    Signal {
        schema_version: SCHEMA_VERSION,
        id: id.to_owned(),
        signal: "test_signal".to_owned(),
        time: at(secs),
        risk_object: who.to_owned(),
        risk_object_type: "user".to_owned(),
        risk_score: score,
        risk_message: format!("test {id}"),
        threat_object: None,
        threat_object_type: None,
        mitre_technique_id: vec![],
        cloud: clouds.to_vec(),
        event_ids: vec![],
        habitual: false,
        extends: None,
    }
}

const AZ: &[CloudProvider] = &[CloudProvider::Azure];
const AW: &[CloudProvider] = &[CloudProvider::Aws];

mod aws_post;
mod config;
mod console;
mod cross_cloud;
mod emission;
mod entra_risk;
mod legacy_auth;
mod mfa_fatigue;
mod persistence;
mod properties;
mod recon;
mod risk_detection;
mod score;
mod spray;
