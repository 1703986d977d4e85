//! Correlator tests: every signal at its boundaries, tuning, identity resolution, suppression,
//! scoring and findings, restart equivalence, and order-independence properties. Events are
//! built by hand (no dependency on the normaliser).

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

// === config ===

#[test]
fn config_defaults_are_detections_md() {
    let c = cfg();
    assert_eq!(c.half_life_secs, 86_400);
    assert_eq!(c.finding_threshold, 100.0);
    let s = c.signal(SignalKind::AzurePasswordSpray);
    assert_eq!(
        (s.score, s.window_ms, s.threshold, s.lookback_ms),
        (100.0, 600_000, 10, 86_400_000)
    );
    let r = c.signal(SignalKind::AwsReconBurst);
    assert_eq!((r.score, r.window_ms, r.threshold), (56.0, 120_000, 4));
    assert_eq!(
        c.signal(SignalKind::CrossCloudRiskyThenAws).window_ms,
        8 * 3_600_000
    );
    assert_eq!(
        c.signal(SignalKind::CrossCloudImpossibleTravel).threshold,
        1000
    );
    assert_eq!(c.signal(SignalKind::AwsConsoleLoginFailures).threshold, 5);
    for k in SignalKind::ALL {
        assert_eq!(SignalKind::from_name(k.name()), Some(k));
        assert_eq!(c.signal(k).suppress_ms, 86_400_000);
    }
}

#[test]
fn config_overrides_and_errors() {
    let c = CorrelateConfig::from_toml(
        r#"
        half_life_secs = 3600
        finding_threshold = 80
        trusted_cidrs = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
        partner_tenants = ["BBBB"]
        service_accounts = ["Svc@Corp.Example"]
        [signals.aws_recon_burst]
        score = 30
        window_secs = 300
        threshold = 6
        suppress_secs = 3600
        [signals.azure_cross_tenant_sfa]
        enabled = false
        "#,
    )
    .unwrap();
    assert_eq!(c.half_life_secs, 3600);
    let r = c.signal(SignalKind::AwsReconBurst);
    assert_eq!(
        (r.score, r.window_ms, r.threshold, r.suppress_ms),
        (30.0, 300_000, 6, 3_600_000)
    );
    assert!(!c.signal(SignalKind::AzureCrossTenantSfa).enabled);
    assert!(c.is_trusted(&"10.1.2.3".parse().unwrap()));
    assert!(c.is_trusted(&"::ffff:10.1.2.3".parse().unwrap()));
    assert!(c.is_trusted(&"2001:db8:1::1".parse().unwrap()));
    assert!(c.is_trusted(&"192.0.2.7".parse().unwrap()));
    assert!(!c.is_trusted(&"192.0.2.8".parse().unwrap()));
    assert!(c.is_partner_tenant("bbbb"));
    assert!(c.service_accounts.contains("svc@corp.example"));

    let err = |s: &str| CorrelateConfig::from_toml(s).unwrap_err().to_string();
    assert!(
        err("bogus = 1").contains("unknown field `bogus`"),
        "{}",
        err("bogus = 1")
    );
    assert!(err("[signals.aws_recon_burst]\nscor = 1").contains("unknown field `scor`"));
    assert_eq!(
        err("[signals.nope]\nscore = 1"),
        "correlate.signals: unknown signal `nope`"
    );
    assert_eq!(
        err("[signals.azure_risky_event]\nwindow_secs = 5"),
        "correlate.signals.azure_risky_event.window_secs: this signal has no window"
    );
    assert_eq!(
        err("trusted_cidrs = [\"10.0.0.0/33\"]"),
        "correlate.trusted_cidrs: invalid CIDR `10.0.0.0/33`: prefix length `33` must be 0..=32"
    );
    assert_eq!(
        err("half_life_secs = 0"),
        "correlate.half_life_secs: must be at least 1"
    );
    assert_eq!(
        err("[signals.aws_recon_burst]\nscore = -1"),
        "correlate.signals.aws_recon_burst.score: must be a non-negative number"
    );
    // Deserialisable inside a larger config.
    #[derive(serde::Deserialize)]
    struct Top {
        correlate: CorrelateConfig,
    }
    let table: toml::Table =
        toml::from_str("finding_threshold = 70\ntrusted_cidrs = [\"10.0.0.0/8\"]").unwrap();
    assert_eq!(
        CorrelateConfig::from_table(table)
            .unwrap()
            .finding_threshold,
        70.0
    );
    let bad: toml::Table = toml::from_str("finding_treshold = 70").unwrap();
    assert!(
        CorrelateConfig::from_table(bad)
            .unwrap_err()
            .to_string()
            .contains("unknown field `finding_treshold`")
    );
    let top: Top = toml::from_str("[correlate]\nfinding_threshold = 50").unwrap();
    assert_eq!(top.correlate.finding_threshold, 50.0);
    assert!(toml::from_str::<Top>("[correlate]\nfinding_threshold = -5").is_err());
}

// === identity ===

#[test]
fn identity_resolution() {
    let links = IdentityLinks::default();
    let id = |e: &Event| identity_of(e, &links);
    assert_eq!(
        id(&signin("a", 0, "Alice@Corp.Example", "1.1.1.1", 0)).as_deref(),
        Some("alice@corp.example")
    );
    let mut no_upn = signin("a", 0, "x", "1.1.1.1", 0);
    no_upn.user.as_mut().unwrap().name = None;
    assert_eq!(id(&no_upn).as_deref(), Some("oid-x"));

    let ok = console("c", 0, iam_user("CATTeamIDC"), "1.1.1.1", true, Some("Yes"));
    // A failure carries what was typed, no ARN.
    let typed = User {
        name: Some("catteamidc".into()),
        kind: Some("IAMUser".into()),
        account_uid: Some(ACCT.into()),
        credential_uid: Some(String::new()),
        ..User::default()
    };
    let failed = console("d", 0, typed, "1.1.1.1", false, Some("No"));
    assert_eq!(
        id(&ok).as_deref(),
        Some("arn:aws:iam::111122223333:user/catteamidc")
    );
    assert_eq!(id(&ok), id(&failed));

    assert_eq!(
        id(&console("r", 0, root_user(), "1.1.1.1", true, None)).as_deref(),
        Some("root@111122223333")
    );
    assert_eq!(
        id(&console(
            "s",
            0,
            sso_user("Bob@Corp.Example"),
            "1.1.1.1",
            true,
            None
        ))
        .as_deref(),
        Some("bob@corp.example")
    );

    // SAML session with a UPN session name: linked; an ordinary role session: the STS ARN.
    let mut saml = User {
        name: Some("carol@corp.example".into()),
        kind: Some("AssumedRole".into()),
        arn: Some(format!(
            "arn:aws:sts::{ACCT}:assumed-role/EntraAdmins/carol@corp.example"
        )),
        ..User::default()
    };
    let mut saml_ev = console("saml", 0, saml.clone(), "1.1.1.1", true, None);
    saml_ev.aws.as_mut().unwrap().saml_provider_arn =
        Some(format!("arn:aws:iam::{ACCT}:saml-provider/Entra"));
    assert_eq!(id(&saml_ev).as_deref(), Some("carol@corp.example"));
    saml.name = Some("i-0abc".into());
    saml.arn = Some(format!("arn:aws:sts::{ACCT}:assumed-role/Ec2Role/i-0abc"));
    assert_eq!(
        id(&call("role", 0, saml, "ListBuckets", "1.1.1.1", None)).as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/Ec2Role/i-0abc")
    );

    let hidden = User {
        name: Some("HIDDEN_DUE_TO_SECURITY_REASONS".into()),
        kind: Some("IAMUser".into()),
        account_uid: Some(ACCT.into()),
        ..User::default()
    };
    assert_eq!(id(&console("h", 0, hidden, "1.1.1.1", false, None)), None);
    let svc = User {
        kind: Some("AWSService".into()),
        ..User::default()
    };
    assert_eq!(id(&call("svc", 0, svc, "Decrypt", "", None)), None);
    let mut nobody = console("n", 0, root_user(), "1.1.1.1", true, None);
    nobody.user = None;
    assert_eq!(id(&nobody), None);
}

#[test]
fn identities_file_links_and_aliases() {
    let links = IdentityLinks::from_toml(&format!(
        r#"
        [[identity]]
        name = "Alice@Corp.Example"
        aws = ["arn:aws:iam::{ACCT}:user/alice", "arn:aws:iam::{ACCT}:root"]
        azure = ["0F2C9A8E-1111-4C3B-9D1A-5A6B7C8D9E0F"]
        [[identity]]
        name = "dave@corp.example"
        aws = ["DaveOps"]
        "#
    ))
    .unwrap();
    let ev = call("x", 0, iam_user("Alice"), "ListBuckets", "1.1.1.1", None);
    assert_eq!(
        identity_of(&ev, &links).as_deref(),
        Some("alice@corp.example")
    );
    assert_eq!(
        identity_of(&console("r", 0, root_user(), "1.1.1.1", true, None), &links).as_deref(),
        Some("alice@corp.example")
    );
    let mut by_oid = signin("o", 0, "x", "1.1.1.1", 0);
    by_oid.user = Some(User {
        uid: Some("0f2c9a8e-1111-4c3b-9d1a-5a6b7c8d9e0f".into()),
        ..User::default()
    });
    assert_eq!(
        identity_of(&by_oid, &links).as_deref(),
        Some("alice@corp.example")
    );
    let dave = console("d", 0, iam_user("daveops"), "1.1.1.1", true, None);
    assert_eq!(
        identity_of(&dave, &links).as_deref(),
        Some("dave@corp.example")
    );

    let aliases = aliases_of(&ev, &links);
    expect![[r#"
        [
            Alias {
                identity: "alice@corp.example",
                kind: "iam_user_arn",
                value: "arn:aws:iam::111122223333:user/Alice",
                cloud: Aws,
            },
            Alias {
                identity: "alice@corp.example",
                kind: "iam_user_name",
                value: "Alice",
                cloud: Aws,
            },
        ]
    "#]]
    .assert_debug_eq(&aliases);
    let sso = aliases_of(
        &console("s", 0, sso_user("bob@corp.example"), "1.1.1.1", true, None),
        &links,
    );
    assert_eq!(sso.len(), 1);
    assert_eq!(
        (sso[0].identity.as_str(), sso[0].kind.as_str()),
        ("bob@corp.example", "sso_session")
    );
    let entra = aliases_of(&signin("e", 0, "Eve@Corp.Example", "1.1.1.1", 0), &links);
    assert_eq!(
        entra.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
        ["upn", "object_id"]
    );

    let conflict = IdentityLinks::from_toml(
        "[[identity]]\nname = \"a\"\naws = [\"x\"]\n[[identity]]\nname = \"b\"\naws = [\"X\"]",
    );
    assert_eq!(
        conflict.unwrap_err().to_string(),
        "identities file: alias `iam-user-name:x` is linked to both `a` and `b`"
    );
    assert!(IdentityLinks::from_toml("[[identity]]\nname = \"a\"\nbogus = 1").is_err());
    assert!(IdentityLinks::from_toml("[[identity]]\nname = \" \"").is_err());
}

// === Entra signals ===

#[test]
fn entra_risk_signals() {
    let c = cfg();
    let e = risky(
        signin("e1", 0, "alice@corp.example", "203.0.113.5", 0),
        "high",
        "atRisk",
        &["AnonymizedIPAddress"],
    );
    let s = run(&c, vec![e]);
    let names: Vec<&str> = s.iter().map(|s| s.signal.as_str()).collect();
    assert_eq!(names, ["azure_high_risk_signin", "azure_risky_event"]);
    assert_eq!(s[0].risk_score, 56.0);
    assert_eq!(s[1].risk_score, 48.0);
    assert_eq!(s[0].mitre_technique_id, ["T1078.004"]);
    assert_eq!(s[0].threat_object.as_deref(), Some("203.0.113.5"));
    assert_eq!(s[0].event_ids, ["e1"]);
    assert!(
        s[1].risk_message.contains("[AnonymizedIPAddress]"),
        "{}",
        s[1].risk_message
    );

    // A failed sign-in raises nothing; a none/none sign-in raises nothing.
    let failed = risky(
        signin("e2", 0, "alice@corp.example", "203.0.113.5", 50126),
        "high",
        "atRisk",
        &["anonymizedIPAddress"],
    );
    assert!(run(&c, vec![failed]).is_empty());
    assert!(
        run(
            &c,
            vec![risky(
                signin("e3", 0, "a@corp.example", "203.0.113.5", 0),
                "none",
                "none",
                &[]
            )]
        )
        .is_empty()
    );
    // Types not in the list (generic) do not raise azure_risky_event.
    assert!(
        run(
            &c,
            vec![risky(
                signin("e4", 0, "a@corp.example", "203.0.113.5", 0),
                "low",
                "none",
                &["generic"]
            )]
        )
        .is_empty()
    );
}

#[test]
fn reviewed_risk_states() {
    let c = cfg();
    let high = |state: &str| {
        let s = run(
            &c,
            vec![risky(
                signin("e1", 0, "alice@corp.example", "203.0.113.5", 0),
                "high",
                state,
                &[],
            )],
        );
        named(&s, "azure_high_risk_signin").len()
    };
    // An admin's review clears it; a remediated account was used, so it still counts.
    assert_eq!(high("dismissed"), 0);
    assert_eq!(high("confirmedSafe"), 0);
    assert_eq!(high("remediated"), 1);
    assert_eq!(high("atRisk"), 1);
    assert_eq!(high("none"), 1);
}

#[test]
fn cross_tenant_sfa_and_partner_tenants() {
    let mk = || {
        let mut e = signin("x1", 0, "guest@partner.example", "203.0.113.9", 0);
        let d = e.entra.as_mut().unwrap();
        d.home_tenant_id = Some("BBBB".into());
        d.authentication_requirement = Some("singleFactorAuthentication".into());
        e
    };
    let s = run(&cfg(), vec![mk()]);
    assert_eq!(named(&s, "azure_cross_tenant_sfa").len(), 1);
    assert_eq!(s[0].risk_score, 40.0);
    let partner = CorrelateConfig::from_toml("partner_tenants = [\"bbbb\"]").unwrap();
    assert!(run(&partner, vec![mk()]).is_empty());
    let mut mfa = mk();
    mfa.entra.as_mut().unwrap().authentication_requirement =
        Some("multiFactorAuthentication".into());
    assert!(run(&cfg(), vec![mfa]).is_empty());
}

#[test]
fn trusted_cidrs_silence_ip_based_entra_risk_only() {
    let c = CorrelateConfig::from_toml("trusted_cidrs = [\"198.51.100.0/24\"]").unwrap();
    let vpn = risky(
        signin("v", 0, "a@corp.example", "198.51.100.20", 0),
        "medium",
        "atRisk",
        &["anonymizedIPAddress", "riskyIPAddress"],
    );
    assert!(run(&c, vec![vpn]).is_empty());
    // Risk with no IP-based explanation still fires from a trusted IP.
    let leaked = risky(
        signin("l", 0, "a@corp.example", "198.51.100.20", 0),
        "high",
        "atRisk",
        &["leakedCredentials"],
    );
    assert_eq!(run(&c, vec![leaked]).len(), 2);
    let level_only = risky(
        signin("h", 0, "a@corp.example", "198.51.100.20", 0),
        "high",
        "none",
        &[],
    );
    assert_eq!(
        named(&run(&c, vec![level_only]), "azure_high_risk_signin").len(),
        1
    );
}

#[test]
fn travel_only_low_risk_scores_half_and_is_not_risky_for_cross_cloud() {
    let c = cfg();
    let t = risky(
        signin("t1", 0, "trav@corp.example", "203.0.113.50", 0),
        "low",
        "atRisk",
        &["unfamiliarFeatures", "impossibleTravel"],
    );
    let login = console(
        "t2",
        3600,
        sso_user("trav@corp.example"),
        "203.0.113.50",
        true,
        None,
    );
    let s = run(&c, vec![t, login]);
    assert_eq!(
        s.iter()
            .map(|s| (s.signal.as_str(), s.risk_score))
            .collect::<Vec<_>>(),
        [
            ("azure_high_risk_signin", 28.0),
            ("azure_risky_event", 24.0)
        ]
    );
    assert!(s.iter().all(|s| s.threat_object.is_none()));
    // Medium risk with the same types is not halved, and does count for the cross-cloud link.
    let m = risky(
        signin("m1", 0, "trav@corp.example", "203.0.113.50", 0),
        "medium",
        "atRisk",
        &["unfamiliarFeatures"],
    );
    let login = console(
        "m2",
        3600,
        sso_user("trav@corp.example"),
        "203.0.113.50",
        true,
        None,
    );
    let s = run(&c, vec![m, login]);
    assert_eq!(named(&s, "azure_high_risk_signin")[0].risk_score, 56.0);
    assert_eq!(named(&s, "cross_cloud_risky_then_aws").len(), 1);
    // confirmedCompromised is never "travel only".
    let cc = risky(
        signin("c1", 0, "trav@corp.example", "203.0.113.50", 0),
        "low",
        "confirmedCompromised",
        &["unlikelyTravel"],
    );
    assert_eq!(run(&c, vec![cc])[0].risk_score, 56.0);
}

#[test]
fn benign_traveller_never_reaches_a_finding() {
    let c = cfg();
    let upn = "traveller@corp.example";
    let mut events = Vec::new();
    // A week of travel: several flagged sign-ins a day from hotel / airport / office IPs, each
    // followed by AWS work through IAM Identity Center.
    for day in 0..7i64 {
        for (k, ip) in ["203.0.113.10", "198.51.100.77", "192.0.2.200"]
            .iter()
            .enumerate()
        {
            let secs = day * 86_400 + k as i64 * 3 * 3600;
            let id = format!("tr-{day}-{k}");
            events.push(located(
                risky(
                    signin(&id, secs, upn, ip, 0),
                    "low",
                    "atRisk",
                    &["unlikelyTravel", "unfamiliarFeatures"],
                ),
                35.0 + k as f64,
                139.0,
            ));
            events.push(console(
                &format!("{id}-aws"),
                secs + 600,
                sso_user(upn),
                ip,
                true,
                None,
            ));
            for (j, op) in ["ListBuckets", "DescribeInstances"].iter().enumerate() {
                events.push(call(
                    &format!("{id}-c{j}"),
                    secs + 700 + j as i64,
                    sso_user(upn),
                    op,
                    ip,
                    None,
                ));
            }
        }
    }
    let signals = run(&c, events);
    let score = score_identity(upn, &signals, &[], &c);
    assert!(score.findings.is_empty(), "{:#?}", score.findings);
    let max = score.timeline.iter().map(|p| p.score).fold(0.0, f64::max);
    assert!(max < 100.0, "max {max}");
    assert!(named(&signals, "cross_cloud_risky_then_aws").is_empty());
}

#[test]
fn password_spray_nine_vs_ten_users() {
    let c = cfg();
    let s = run(&c, spray(9, "203.0.113.66", 0, 10));
    assert!(s.is_empty());
    let s = run(&c, spray(10, "203.0.113.66", 0, 10));
    assert_eq!(s.len(), 1);
    assert_eq!(
        (
            s[0].risk_object.as_str(),
            s[0].risk_object_type.as_str(),
            s[0].risk_score
        ),
        ("", "system", 0.0)
    );
    assert_eq!(s[0].threat_object.as_deref(), Some("203.0.113.66"));
    assert_eq!(s[0].event_ids.len(), 10);
    expect![[r#"password spray from 203.0.113.66: 10 failed Entra sign-ins for 10 distinct users in 90 s (50126 ×10)"#]]
        .assert_eq(&s[0].risk_message);
    // The same user failing ten times is not a spray.
    let same: Vec<Event> = (0..12)
        .map(|i| {
            signin(
                &format!("s{i}"),
                i,
                "one@corp.example",
                "203.0.113.66",
                50126,
            )
        })
        .collect();
    assert!(run(&c, same).is_empty());
    // Other failure codes (50034 user not found) do not count.
    let mut other = spray(10, "203.0.113.66", 0, 10);
    other[9].status_code = Some("50034".into());
    assert!(run(&c, other).is_empty());
}

#[test]
fn password_spray_window_boundary() {
    let c = cfg();
    // 10 users over exactly 600 s (step 600/9 is not whole: place the 10th explicitly).
    let mut ev = spray(9, "203.0.113.66", 0, 10);
    ev.push(signin(
        "last",
        600,
        "user9@corp.example",
        "203.0.113.66",
        50053,
    ));
    assert_eq!(run(&c, ev).len(), 1);
    let mut ev = spray(9, "203.0.113.66", 0, 10);
    ev.push(signin(
        "last",
        601,
        "user9@corp.example",
        "203.0.113.66",
        50053,
    ));
    assert!(run(&c, ev).is_empty());
}

#[test]
fn spray_rotated_across_a_slash_24_is_one_source_and_success_follows() {
    let c = cfg();
    let mut ev: Vec<Event> = (0..10)
        .map(|i| {
            signin(
                &format!("f{i}"),
                i * 5,
                &format!("u{i}@corp.example"),
                &format!("203.0.113.{}", 10 + i),
                50126,
            )
        })
        .collect();
    // Success from another IP of the /24 an hour later, and one after 24 h + 1 s.
    ev.push(signin(
        "win",
        3600,
        "victim@corp.example",
        "203.0.113.99",
        0,
    ));
    ev.push(signin(
        "late",
        45 + 86_401,
        "late@corp.example",
        "203.0.113.98",
        0,
    ));
    let s = run(&c, ev);
    let spray = named(&s, "azure_password_spray");
    assert_eq!(spray.len(), 2, "{spray:#?}");
    assert_eq!(spray[0].threat_object.as_deref(), Some("203.0.113.0/24"));
    assert_eq!(
        (spray[1].risk_object.as_str(), spray[1].risk_score),
        ("victim@corp.example", 100.0)
    );
    assert_eq!(spray[1].threat_object.as_deref(), Some("203.0.113.99"));
    assert_eq!(spray[1].event_ids, ["win"]);
    // IPv6: one /48.
    let v6: Vec<Event> = (0..10)
        .map(|i| {
            signin(
                &format!("g{i}"),
                i,
                &format!("u{i}@corp.example"),
                &format!("2001:db8:1:{i:x}::1"),
                50126,
            )
        })
        .collect();
    assert_eq!(
        run(&c, v6)[0].threat_object.as_deref(),
        Some("2001:db8:1::/48")
    );
}

#[test]
fn spray_success_inside_the_window_is_attributed_when_the_spray_completes() {
    let c = cfg();
    let mut ev = spray(10, "203.0.113.66", 0, 30);
    ev.push(signin("mid", 100, "weak@corp.example", "203.0.113.66", 0));
    let s = run(&c, ev);
    let hit = named(&s, "azure_password_spray")
        .into_iter()
        .find(|s| s.risk_object == "weak@corp.example")
        .unwrap();
    assert_eq!(hit.time, at(270));
    assert_eq!(hit.risk_score, 100.0);
}

#[test]
fn trusted_cidr_never_sprays() {
    let c = CorrelateConfig::from_toml("trusted_cidrs = [\"203.0.113.0/24\"]").unwrap();
    let mut ev = spray(20, "203.0.113.66", 0, 1);
    ev.push(signin("ok", 100, "v@corp.example", "203.0.113.66", 0));
    assert!(run(&c, ev).is_empty());
}

#[test]
fn spray_then_aws_console_login() {
    let c = cfg();
    let mut ev = spray(10, "203.0.113.66", 0, 1);
    ev.push(console(
        "aws",
        7200,
        iam_user("ops"),
        "203.0.113.66",
        true,
        Some("Yes"),
    ));
    let s = run(&c, ev);
    let x = named(&s, "cross_cloud_spray_then_aws_login");
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].risk_object, "arn:aws:iam::111122223333:user/ops");
    assert_eq!(x[0].risk_score, 100.0);
    assert_eq!(x[0].cloud, [CloudProvider::Azure, CloudProvider::Aws]);
    assert_eq!(x[0].mitre_technique_id, ["T1110.003", "T1078.004"]);
}

// === AWS signals ===

#[test]
fn console_login_mfa_values() {
    let c = cfg();
    let one = |mfa: Option<&str>| {
        run(
            &c,
            vec![console("c", 0, iam_user("bob"), "203.0.113.7", true, mfa)],
        )
    };
    assert!(one(Some("Yes")).is_empty());
    assert!(one(Some("YES")).is_empty());
    assert!(one(Some("yes")).is_empty());
    let no = one(Some("No"));
    assert_eq!(no.len(), 1);
    assert_eq!(no[0].signal, "aws_console_login_no_mfa");
    // First time this IP is seen for bob: ×1.5.
    assert_eq!(no[0].risk_score, 96.0);
    assert!(
        no[0].risk_message.contains("MFAUsed \"No\""),
        "{}",
        no[0].risk_message
    );
    assert!(
        no[0].risk_message.contains("not seen"),
        "{}",
        no[0].risk_message
    );
    let missing = one(None);
    assert_eq!(missing.len(), 1);
    assert!(missing[0].risk_message.contains("MFAUsed missing"));
    // Failed logins never raise it.
    assert!(
        run(
            &c,
            vec![console(
                "f",
                0,
                iam_user("bob"),
                "203.0.113.7",
                false,
                Some("No")
            )]
        )
        .is_empty()
    );
    // SSO sessions: MFA is at the IdP.
    assert!(
        run(
            &c,
            vec![console(
                "s",
                0,
                sso_user("bob@corp.example"),
                "203.0.113.7",
                true,
                Some("No")
            )]
        )
        .is_empty()
    );
}

#[test]
fn console_login_known_ip_is_not_boosted() {
    let c = cfg();
    let before = call(
        "b",
        -86_400 * 3,
        iam_user("bob"),
        "GetCallerIdentity",
        "203.0.113.7",
        None,
    );
    let s = run(
        &c,
        vec![
            before,
            console("c", 0, iam_user("bob"), "203.0.113.7", true, Some("No")),
        ],
    );
    assert_eq!(s[0].risk_score, 64.0);
    // Seen 15 days ago only: new again.
    let old = call(
        "b",
        -86_400 * 15,
        iam_user("bob"),
        "GetCallerIdentity",
        "203.0.113.7",
        None,
    );
    let s = run(
        &c,
        vec![
            old,
            console("c", 0, iam_user("bob"), "203.0.113.7", true, Some("No")),
        ],
    );
    assert_eq!(s[0].risk_score, 96.0);
    // Trusted IPs never get the new-IP modifier.
    let t = CorrelateConfig::from_toml("trusted_cidrs = [\"203.0.113.0/24\"]").unwrap();
    assert_eq!(
        run(
            &t,
            vec![console(
                "c",
                0,
                iam_user("bob"),
                "203.0.113.7",
                true,
                Some("No")
            )]
        )[0]
        .risk_score,
        64.0
    );
}

#[test]
fn root_console_login() {
    let s = run(
        &cfg(),
        vec![console(
            "r",
            0,
            root_user(),
            "203.0.113.7",
            true,
            Some("YES"),
        )],
    );
    assert_eq!(
        s.iter()
            .map(|s| (s.signal.as_str(), s.risk_score))
            .collect::<Vec<_>>(),
        [("aws_root_console_login", 50.0)]
    );
    assert_eq!(s[0].risk_object, "root@111122223333");
    let s = run(
        &cfg(),
        vec![console(
            "r",
            0,
            root_user(),
            "203.0.113.7",
            true,
            Some("No"),
        )],
    );
    assert_eq!(
        s.iter().map(|s| s.signal.as_str()).collect::<Vec<_>>(),
        ["aws_console_login_no_mfa", "aws_root_console_login"]
    );
}

#[test]
fn console_failures_four_vs_five_and_window() {
    let c = cfg();
    let hidden = || User {
        name: Some("HIDDEN_DUE_TO_SECURITY_REASONS".into()),
        kind: Some("IAMUser".into()),
        account_uid: Some(ACCT.into()),
        ..User::default()
    };
    let fails = |n: i64, step: i64| -> Vec<Event> {
        (0..n)
            .map(|i| {
                console(
                    &format!("cf{i}"),
                    i * step,
                    hidden(),
                    "198.51.100.9",
                    false,
                    None,
                )
            })
            .collect()
    };
    assert!(run(&c, fails(4, 10)).is_empty());
    let s = run(&c, fails(5, 10));
    assert_eq!(s.len(), 1);
    assert_eq!(
        (
            s[0].signal.as_str(),
            s[0].risk_object.as_str(),
            s[0].risk_score
        ),
        ("aws_console_login_failures", "", 40.0)
    );
    assert_eq!(s[0].threat_object.as_deref(), Some("198.51.100.9"));
    assert_eq!(s[0].mitre_technique_id, ["T1110"]);
    let trusted = CorrelateConfig::from_toml("trusted_cidrs = [\"198.51.100.0/24\"]").unwrap();
    assert!(run(&trusted, fails(8, 10)).is_empty());
    assert_eq!(run(&c, fails(5, 150)).len(), 1); // 600 s span
    assert!(run(&c, fails(5, 151)).is_empty()); // 604 s span
    // One user brute-forced: the risk lands on that user.
    let bob: Vec<Event> = (0..5)
        .map(|i| {
            console(
                &format!("b{i}"),
                i,
                iam_user("bob"),
                "198.51.100.9",
                false,
                Some("No"),
            )
        })
        .collect();
    let s = run(&c, bob);
    assert_eq!(s[0].risk_object, "arn:aws:iam::111122223333:user/bob");
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

#[test]
fn recon_burst_three_vs_four_distinct_calls() {
    let c = cfg();
    let u = iam_user("eve");
    assert!(
        run(
            &c,
            recon_burst(
                u.clone(),
                &[
                    "GetCallerIdentity",
                    "ListBuckets",
                    "ListUsers",
                    "ListUsers",
                    "GetCallerIdentity"
                ],
                0,
                5,
                "203.0.113.4"
            )
        )
        .is_empty()
    );
    let s = run(
        &c,
        recon_burst(
            u.clone(),
            &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
            0,
            5,
            "203.0.113.4",
        ),
    );
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].signal, "aws_recon_burst");
    assert_eq!(s[0].risk_score, 84.0); // new IP ×1.5
    assert_eq!(s[0].mitre_technique_id, ["T1087.004", "T1580", "T1069.003"]);
    assert_eq!(s[0].event_ids.len(), 4);
    // Non-recon calls do not count.
    assert!(
        run(
            &c,
            recon_burst(
                u.clone(),
                &["GetCallerIdentity", "ListBuckets", "ListUsers", "PutObject"],
                0,
                5,
                "203.0.113.4"
            )
        )
        .is_empty()
    );
    // 2 min window: 4 calls over 120 s fire, over 123 s do not.
    assert_eq!(
        run(
            &c,
            recon_burst(
                u.clone(),
                &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
                0,
                40,
                "203.0.113.4"
            )
        )
        .len(),
        1
    );
    assert!(
        run(
            &c,
            recon_burst(
                u.clone(),
                &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
                0,
                41,
                "203.0.113.4"
            )
        )
        .is_empty()
    );
    // Different user agents are different bursts.
    let mut ev = recon_burst(
        u.clone(),
        &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
        0,
        5,
        "203.0.113.4",
    );
    ev[3].http_request = Some(HttpRequest {
        user_agent: Some("aws-cli/2".into()),
    });
    assert!(run(&c, ev).is_empty());
}

#[test]
fn recon_burst_denied_and_known_ip() {
    let c = cfg();
    let u = iam_user("eve");
    let mut ev = vec![call(
        "seen",
        -3600,
        u.clone(),
        "PutObject",
        "203.0.113.4",
        None,
    )];
    ev.extend(recon_burst(
        u.clone(),
        &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
        0,
        5,
        "203.0.113.4",
    ));
    ev[2].status_id = STATUS_FAILURE;
    ev[2].status_code = Some("AccessDenied".into());
    ev[3].status_id = STATUS_FAILURE;
    ev[3].status_code = Some("Client.UnauthorizedOperation".into());
    let s = run(&c, ev);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].risk_score, 76.0); // 56 + 20, known IP
    assert!(
        s[0].risk_message.contains("2 denied (+20)"),
        "{}",
        s[0].risk_message
    );
    expect![[r#"arn:aws:iam::111122223333:user/eve made 4 distinct reconnaissance calls in 15 s from 203.0.113.4 (user agent "Boto3/1.34.0 Python/3.12") with access key AKIAEVE: GetCallerIdentity, ListBuckets, ListUsers, ListRoles; 2 denied (+20)"#]]
        .assert_eq(&s[0].risk_message);
}

/// 8 recon calls in 35 s, the `denied`-th (0-based) denied.
fn burst_with_denied(denied: usize) -> Vec<Event> {
    let mut ev = recon_burst(
        iam_user("eve"),
        &[
            "GetCallerIdentity",
            "ListBuckets",
            "ListUsers",
            "ListRoles",
            "ListAttachedUserPolicies",
            "ListGroupsForUser",
            "GetAccountSummary",
            "ListAccessKeys",
        ],
        0,
        5,
        "203.0.113.4",
    );
    ev[denied].status_id = STATUS_FAILURE;
    ev[denied].status_code = Some("AccessDenied".into());
    ev
}

#[test]
fn recon_burst_counts_every_call_of_the_window_wherever_the_denied_one_falls() {
    let c = cfg();
    let eve = "arn:aws:iam::111122223333:user/eve";
    for denied in 0..8 {
        let s = run(&c, burst_with_denied(denied));
        let total: f64 = s.iter().map(|s| s.risk_score).sum();
        assert_eq!(total, 104.0, "denied call {denied}: {s:#?}"); // 56 × 1.5 (new IP) + 20
        let found = score_identity(eve, &s, &[], &c).findings;
        assert_eq!(found.len(), 1, "denied call {denied}");
        if denied < 4 {
            assert_eq!(s.len(), 1);
            continue;
        }
        // Reported at the 4th call (84); the denied call grows it by the difference.
        assert_eq!(s.len(), 2, "{s:#?}");
        assert_eq!((s[0].risk_score, s[1].risk_score), (84.0, 20.0));
        assert_eq!(s[1].extends.as_deref(), Some(s[0].id.as_str()));
        assert_eq!(s[1].time, at(5 * denied as i64));
        assert!(
            s[1].risk_message.contains(&format!(
                "made {} distinct reconnaissance calls",
                denied + 1
            )) && s[1].risk_message.contains("; 1 denied (+20)")
                && s[1].risk_message.contains("+20 over the 84 of signal"),
            "{}",
            s[1].risk_message
        );
    }
    // Later calls that add nothing to the score add no signal.
    let mut ev = burst_with_denied(7);
    ev.extend(recon_burst(
        iam_user("eve"),
        &["ListUsers", "ListRoles"],
        36,
        1,
        "203.0.113.4",
    ));
    assert_eq!(run(&c, ev).len(), 2);
}

#[test]
fn recon_burst_growth_is_replayed_exactly() {
    let c = cfg();
    let mut all = burst_with_denied(7);
    sort_events(&mut all);
    let full = Engine::new(c.clone(), IdentityLinks::default()).process_all(all.iter());
    assert_eq!(full.len(), 2);
    // Any file order: the same signals.
    let mut reversed = burst_with_denied(7);
    reversed.reverse();
    assert_eq!(run(&c, reversed), full);
    // A re-run starting between the report and its growth: stored signals seeded, the burst
    // warmed up.
    for cut in [at(16), at(34)] {
        let mut engine = Engine::new(c.clone(), IdentityLinks::default());
        for e in all.iter().filter(|e| e.time < cut) {
            engine.warm_up(e);
        }
        engine.seed_signals(full.iter().filter(|s| s.time < cut));
        let rest = engine.process_all(all.iter().filter(|e| e.time >= cut));
        assert_eq!(rest, full[1..], "cut at {cut}");
        // Seeding what is already stored after the cut too changes nothing.
        let mut engine = Engine::new(c.clone(), IdentityLinks::default());
        for e in all.iter().filter(|e| e.time < cut) {
            engine.warm_up(e);
        }
        engine.seed_signals(full.iter());
        let rest = engine.process_all(all.iter().filter(|e| e.time >= cut));
        assert_eq!(rest, full[1..], "cut at {cut}, all seeded");
    }
}

#[test]
fn console_browsing_is_not_recon() {
    let c = cfg();
    let ops = [
        "DescribeInstances",
        "DescribeVpcs",
        "DescribeSecurityGroups",
        "DescribeRegions",
        "ListBuckets",
    ];
    let browse = |ua: &str, from_console: Option<bool>| {
        let mut ev = recon_burst(root_user(), &ops, 0, 2, "203.0.113.4");
        for e in &mut ev {
            e.http_request = Some(HttpRequest {
                user_agent: Some(ua.to_owned()),
            });
            e.aws.as_mut().unwrap().session_credential_from_console = from_console;
        }
        named(&run(&c, ev), "aws_recon_burst").len()
    };
    assert_eq!(browse("console.ec2.amazonaws.com", None), 0);
    assert_eq!(browse("s3.console.aws.amazonaws.com", None), 0);
    assert_eq!(browse("AWS Internal", None), 0);
    assert_eq!(
        browse(
            "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.10]",
            None
        ),
        0
    );
    // A browser user agent: the console's session flag tells.
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0";
    assert_eq!(browse(browser, Some(true)), 0);
    assert_eq!(browse(browser, Some(false)), 1);
    // The same calls from a script count.
    assert_eq!(browse("aws-cli/2.15.0 Python/3.11", None), 1);
    assert_eq!(browse("ec2.amazonaws.com.evil.example", None), 1);
}

#[test]
fn versioned_event_names_count_as_the_plain_name() {
    assert_eq!(plain_event_name("ListFunctions20150331"), "ListFunctions");
    assert_eq!(plain_event_name("GetFunction20150331v2"), "GetFunction");
    assert_eq!(plain_event_name("ListBuckets"), "ListBuckets");
    assert_eq!(plain_event_name("DescribeVpcs"), "DescribeVpcs");
    assert_eq!(plain_event_name("Foov2"), "Foov2");
    assert_eq!(plain_event_name("20150331"), "20150331");
    let s = run(
        &cfg(),
        recon_burst(
            iam_user("eve"),
            &[
                "GetCallerIdentity",
                "ListBuckets",
                "ListUsers",
                "ListFunctions20150331",
            ],
            0,
            5,
            "203.0.113.4",
        ),
    );
    assert_eq!(named(&s, "aws_recon_burst").len(), 1, "{s:#?}");
    assert!(
        s[0].risk_message
            .contains(": GetCallerIdentity, ListBuckets, ListUsers, ListFunctions;"),
        "{}",
        s[0].risk_message
    );
}

#[test]
fn service_accounts_score_a_quarter() {
    let c = CorrelateConfig::from_toml(&format!(
        "service_accounts = [\"arn:aws:iam::{ACCT}:user/Deploy\"]"
    ))
    .unwrap();
    let s = run(
        &c,
        vec![console(
            "c",
            0,
            iam_user("deploy"),
            "203.0.113.7",
            true,
            Some("No"),
        )],
    );
    assert_eq!(s[0].risk_score, 24.0); // 64 × 1.5 × 0.25
    assert!(
        s[0].risk_message
            .ends_with("[service account: score ×0.25]")
    );
    let c = CorrelateConfig::from_toml("service_accounts = [\"svc@corp.example\"]").unwrap();
    let s = run(
        &c,
        vec![risky(
            signin("e", 0, "SVC@corp.example", "203.0.113.5", 0),
            "high",
            "none",
            &[],
        )],
    );
    assert_eq!(s[0].risk_score, 14.0);
}

// === cross-cloud ===

#[test]
fn risky_then_aws_within_eight_hours() {
    let c = cfg();
    let upn = "alice@corp.example";
    let r = || risky(signin("r", 0, upn, "203.0.113.5", 0), "high", "atRisk", &[]);
    let s = run(
        &c,
        vec![
            r(),
            console("a", 8 * 3600, sso_user(upn), "198.51.100.3", true, None),
        ],
    );
    let x = named(&s, "cross_cloud_risky_then_aws");
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].risk_score, 80.0);
    assert_eq!(x[0].event_ids, ["r", "a"]);
    assert_eq!(x[0].threat_object.as_deref(), Some("198.51.100.3"));
    let s = run(
        &c,
        vec![
            r(),
            console("a", 8 * 3600 + 1, sso_user(upn), "198.51.100.3", true, None),
        ],
    );
    assert!(named(&s, "cross_cloud_risky_then_aws").is_empty());
    // AWS before the risky sign-in: no.
    let s = run(
        &c,
        vec![
            console("a", -60, sso_user(upn), "198.51.100.3", true, None),
            r(),
        ],
    );
    assert!(named(&s, "cross_cloud_risky_then_aws").is_empty());
    // Recon burst by a linked IAM user.
    let links = IdentityLinks::from_toml(&format!(
        "[[identity]]\nname = \"{upn}\"\naws = [\"arn:aws:iam::{ACCT}:user/alice\"]"
    ))
    .unwrap();
    let mut ev = vec![r()];
    ev.extend(recon_burst(
        iam_user("alice"),
        &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
        600,
        1,
        "198.51.100.3",
    ));
    let s = run_linked(&c, &links, ev);
    assert_eq!(named(&s, "cross_cloud_risky_then_aws").len(), 1);
    assert_eq!(named(&s, "aws_recon_burst")[0].risk_object, upn);
}

#[test]
fn impossible_travel_across_clouds() {
    let c = cfg();
    let upn = "alice@corp.example";
    // Alice signs in to Entra in London; someone else's Entra sign-in locates 198.51.100.3 in
    // Sydney; an hour later Alice's SSO session calls AWS from that Sydney IP.
    let london = located(signin("l", 0, upn, "203.0.113.5", 0), 51.5, -0.12);
    let sydney = located(
        signin("s", 60, "bob@corp.example", "198.51.100.3", 0),
        -33.87,
        151.21,
    );
    let aws = call("a", 3600, sso_user(upn), "PutObject", "198.51.100.3", None);
    let s = run(&c, vec![london.clone(), sydney.clone(), aws.clone()]);
    let x = named(&s, "cross_cloud_impossible_travel");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert_eq!(x[0].risk_score, 60.0);
    assert_eq!(x[0].event_ids, ["l", "a"]);
    assert!(
        x[0].risk_message.contains("km apart"),
        "{}",
        x[0].risk_message
    );
    // Unknown location of the AWS IP: nothing.
    let s = run(
        &c,
        vec![
            london.clone(),
            call("a", 3600, sso_user(upn), "PutObject", "192.0.2.1", None),
        ],
    );
    assert!(named(&s, "cross_cloud_impossible_travel").is_empty());
    // 30 h later (beyond the 24 h pair window, and physically possible anyway): nothing.
    let mut late = aws.clone();
    late.time = at(30 * 3600);
    assert!(
        named(
            &run(&c, vec![london.clone(), sydney.clone(), late]),
            "cross_cloud_impossible_travel"
        )
        .is_empty()
    );
    // Trusted IP: nothing.
    let t = CorrelateConfig::from_toml("trusted_cidrs = [\"198.51.100.0/24\"]").unwrap();
    assert!(
        named(
            &run(&t, vec![london, sydney, aws]),
            "cross_cloud_impossible_travel"
        )
        .is_empty()
    );
}

// === suppression, restarts ===

#[test]
fn daily_job_scores_full_full_then_a_quarter_and_is_never_a_finding() {
    let c = cfg();
    let u = iam_user("nightly");
    // The person below works from a known IP.
    let mut ev = vec![call(
        "seen",
        -3600,
        iam_user("ops"),
        "PutObject",
        "203.0.113.4",
        None,
    )];
    for day in 0..14 {
        // 02:00 every day with a few minutes of jitter: a run 23 h 52 min after the previous
        // one is a repeat; the next day's fires again.
        let start = day * 86_400 + (day % 3) * 240 - 120;
        ev.extend(recon_burst(
            u.clone(),
            &[
                "GetCallerIdentity",
                "ListBuckets",
                "ListUsers",
                "ListRoles",
                "GetAccountSummary",
            ],
            start,
            3,
            "203.0.113.4",
        ));
        // And a person who logs in to the console without MFA every morning.
        ev.push(console(
            &format!("login{day}"),
            start + 6 * 3600,
            iam_user("ops"),
            "203.0.113.4",
            true,
            Some("No"),
        ));
    }
    let s = run(&c, ev);
    let scores = |name| {
        named(&s, name)
            .iter()
            .map(|s| (s.risk_score, s.habitual))
            .collect::<Vec<_>>()
    };
    // First: new IP ×1.5; second: known IP; then habitual, a quarter.
    let recon = scores("aws_recon_burst");
    assert_eq!(recon[..3], [(84.0, false), (56.0, false), (14.0, true)]);
    assert!(recon[3..].iter().all(|r| *r == (14.0, true)), "{recon:?}");
    assert_eq!(recon.len(), 10, "{recon:?}");
    let login = scores("aws_console_login_no_mfa");
    assert_eq!(login[..3], [(64.0, false), (64.0, false), (16.0, true)]);
    assert!(login[3..].iter().all(|r| *r == (16.0, true)), "{login:?}");
    let habitual = named(&s, "aws_recon_burst")[2];
    assert!(
        habitual
            .risk_message
            .contains("[habitual: seen on 2 earlier days of the last 7: score ×0.25]"),
        "{}",
        habitual.risk_message
    );
    for who in ["nightly", "ops"] {
        let score = score_identity(
            &format!("arn:aws:iam::111122223333:user/{who}"),
            &s,
            &[],
            &c,
        );
        assert!(score.findings.is_empty(), "{:#?}", score.findings);
    }
}

#[test]
fn a_habit_fades_after_a_week_without_it() {
    let c = cfg();
    let login = |day: i64| {
        console(
            &format!("l{day}"),
            day * 86_400 + 3600,
            root_user(),
            "203.0.113.9",
            true,
            Some("No"),
        )
    };
    // Days 0, 1, 2 (habitual on day 2), then nothing until day 10: days 0–2 are more than
    // 7 days back, so day 10 scores full again.
    let s = run(&c, vec![login(0), login(1), login(2), login(10)]);
    let habitual: Vec<bool> = named(&s, "aws_root_console_login")
        .iter()
        .map(|s| s.habitual)
        .collect();
    assert_eq!(habitual, [false, false, true, false]);
}

#[test]
fn habitual_signals_alone_never_raise_a_finding() {
    let c = cfg();
    let mut habit = sig("h", "eve", 0, 120.0, AW);
    habit.habitual = true;
    assert!(
        score_identity("eve", &[habit.clone()], &[], &c)
            .findings
            .is_empty()
    );
    // A fresh signal on top of it does.
    let fresh = sig("f", "eve", 60, 10.0, AW);
    let found = score_identity("eve", &[habit, fresh], &[], &c).findings;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].raised_at, at(60));
}

#[test]
fn repeats_count_from_the_last_signal_that_fired() {
    let c = cfg();
    // Root logs in without MFA at 0 h, 20 h and 34 h: 20 h is a repeat (suppressed); 34 h is
    // 34 h after the last signal that fired, so it fires although the last login was 14 h
    // before it.
    let logins: Vec<Event> = [0, 20, 34]
        .iter()
        .map(|h| {
            console(
                &format!("root{h}"),
                h * 3600,
                root_user(),
                "203.0.113.7",
                true,
                Some("No"),
            )
        })
        .collect();
    let s = run(&c, logins);
    let times: Vec<i64> = named(&s, "aws_console_login_no_mfa")
        .iter()
        .map(|s| s.time)
        .collect();
    assert_eq!(times, [at(0), at(34 * 3600)]);
    assert_eq!(named(&s, "aws_root_console_login").len(), 2);

    let u = iam_user("eve");
    let ops = ["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"];
    let mut ev = recon_burst(u.clone(), &ops, 0, 1, "203.0.113.4");
    ev.extend(recon_burst(u.clone(), &ops, 20 * 3600, 1, "203.0.113.4")); // a repeat
    ev.extend(recon_burst(
        u.clone(),
        &ops,
        24 * 3600 + 10,
        1,
        "203.0.113.4",
    ));
    let s = run(&c, ev);
    assert_eq!(named(&s, "aws_recon_burst").len(), 2);
    // suppress_secs = 0 turns suppression off.
    let off = CorrelateConfig::from_toml("[signals.aws_recon_burst]\nsuppress_secs = 0").unwrap();
    let s = run(
        &off,
        recon_burst(
            u,
            &[
                "GetCallerIdentity",
                "ListBuckets",
                "ListUsers",
                "ListRoles",
                "GetUser",
            ],
            0,
            1,
            "203.0.113.4",
        ),
    );
    assert_eq!(named(&s, "aws_recon_burst").len(), 2);
}

#[test]
fn disabled_signals_do_not_fire() {
    let c =
        CorrelateConfig::from_toml("[signals.aws_root_console_login]\nenabled = false").unwrap();
    let s = run(
        &c,
        vec![console(
            "r",
            0,
            root_user(),
            "203.0.113.7",
            true,
            Some("Yes"),
        )],
    );
    assert!(s.is_empty());
}

/// A mixed scenario used by the restart and order tests.
fn scenario() -> Vec<Event> {
    let upn = "alice@corp.example";
    let mut ev = spray(12, "203.0.113.66", 0, 20);
    ev.push(signin("win", 400, upn, "203.0.113.66", 0));
    ev.push(console(
        "aws-login",
        4000,
        sso_user(upn),
        "203.0.113.66",
        true,
        None,
    ));
    ev.push(risky(
        signin("risk", 5000, "bob@corp.example", "198.51.100.5", 0),
        "high",
        "atRisk",
        &["maliciousIPAddress"],
    ));
    ev.extend(recon_burst(
        sso_user("bob@corp.example"),
        &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
        6000,
        2,
        "198.51.100.5",
    ));
    for day in 0..3 {
        ev.extend(recon_burst(
            iam_user("nightly"),
            &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
            day * 86_400 + 7200,
            2,
            "192.0.2.10",
        ));
        ev.push(console(
            &format!("root{day}"),
            day * 86_400 + 9000,
            root_user(),
            &format!("192.0.2.{}", 20 + day),
            true,
            Some("No"),
        ));
    }
    ev.extend((0..6).map(|i| {
        console(
            &format!("cf{i}"),
            20_000 + i,
            iam_user("bob"),
            "198.51.100.9",
            false,
            Some("No"),
        )
    }));
    ev
}

#[test]
fn restart_reproduces_the_same_signals() {
    let c = cfg();
    let mut all = scenario();
    sort_events(&mut all);
    let full = Engine::new(c.clone(), IdentityLinks::default()).process_all(all.iter());
    assert!(full.len() >= 8, "{full:#?}");
    for cut in [at(300), at(4500), at(86_400 + 7201), at(2 * 86_400)] {
        // Before the cut: what the store holds. Re-run from the cut with warm-up + prior signals.
        let prior: Vec<Signal> = full.iter().filter(|s| s.time < cut).cloned().collect();
        let mut engine = Engine::new(c.clone(), IdentityLinks::default());
        let from = cut - engine.max_lookback_ms();
        for e in all.iter().filter(|e| e.time >= from && e.time < cut) {
            engine.warm_up(e);
        }
        engine.seed_signals(&prior);
        let rest = engine.process_all(all.iter().filter(|e| e.time >= cut));
        let expected: Vec<&Signal> = full.iter().filter(|s| s.time >= cut).collect();
        assert_eq!(rest.iter().collect::<Vec<_>>(), expected, "cut at {cut}");
        // Re-processing an overlap (events before the cut again) only re-emits existing ids.
        let mut again = Engine::new(c.clone(), IdentityLinks::default());
        let overlap = again.process_all(all.iter());
        assert!(overlap.iter().all(|s| full.iter().any(|f| f.id == s.id)));
    }
}

// === scoring ===

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

#[test]
fn decay_and_both_clouds() {
    let c = cfg();
    let s = vec![sig("a", "u", 0, 80.0, AZ)];
    assert_eq!(score_at("u", &s, at(0), &c), 80.0);
    assert!((score_at("u", &s, at(86_400), &c) - 40.0).abs() < 1e-9);
    assert!((score_at("u", &s, at(2 * 86_400), &c) - 20.0).abs() < 1e-9);
    assert_eq!(score_at("other", &s, at(0), &c), 0.0);
    let s = vec![sig("a", "u", 0, 40.0, AZ), sig("b", "u", 0, 40.0, AW)];
    assert_eq!(score_at("u", &s, at(0), &c), 120.0);
    let r = score_identity("u", &s, &[], &c);
    assert_eq!(
        r.timeline.last().map(|p| (p.score, p.both_clouds)),
        Some((120.0, true))
    );
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!((f.score, f.threshold, f.raised_at), (120.0, 100.0, at(0)));
    assert_eq!(f.clouds, [CloudProvider::Azure, CloudProvider::Aws]);
    assert_eq!(f.signals, ["a", "b"]);
    assert!(f.summary.contains("both clouds"), "{}", f.summary);
}

#[test]
fn findings_once_per_day_unless_score_grows_by_half() {
    let c = cfg();
    let mut s = vec![sig("a", "u", 0, 100.0, AZ), sig("b", "u", 60, 10.0, AZ)];
    let r = score_identity("u", &s, &[], &c);
    assert_eq!(r.findings.len(), 1);
    s.push(sig("c", "u", 120, 60.0, AZ)); // ≈170 ≥ 1.5 × 100
    let r = score_identity("u", &s, &[], &c);
    assert_eq!(r.findings.len(), 2);
    s.push(sig("d", "u", 86_400 + 120, 100.0, AZ)); // a day later: again
    let r = score_identity("u", &s, &[], &c);
    assert_eq!(r.findings.len(), 3);
    // Ids are deterministic; prior findings are not raised again.
    let again = score_identity("u", &s, &r.findings[..2], &c);
    assert_eq!(again.findings, r.findings[2..]);
    assert_eq!(score_identity("u", &s, &[], &c), r);
    // Just below the threshold: nothing.
    let r = score_identity("u", &[sig("a", "u", 0, 99.99, AZ)], &[], &c);
    assert!(r.findings.is_empty());
}

#[test]
fn spray_victim_is_a_finding_on_its_own() {
    let c = cfg();
    let mut ev = spray(10, "203.0.113.66", 0, 1);
    ev.push(signin("win", 300, "victim@corp.example", "203.0.113.66", 0));
    let s = run(&c, ev);
    let r = score_identity("victim@corp.example", &s, &[], &c);
    assert_eq!(r.findings.len(), 1);
    assert!(
        r.findings[0]
            .summary
            .starts_with("victim@corp.example reached risk 100.0"),
        "{}",
        r.findings[0].summary
    );
    let all = score_all(&s, &[], &c);
    assert_eq!(all.keys().collect::<Vec<_>>(), ["victim@corp.example"]);
}

#[test]
fn no_panics_on_odd_input() {
    let c = cfg();
    let mut e = signin("x", 0, "", "not-an-ip", 0);
    e.time = i64::MIN;
    e.entra = Some(EntraDetail {
        risk_event_types: vec![String::new(), "IMPOSSIBLETRAVEL".into()],
        ..EntraDetail::default()
    });
    let mut f = call("y", 0, User::default(), "", "", Some(""));
    f.time = i64::MAX;
    let mut g = located(signin("z", 0, "a@b", "1.2.3.4", 0), f64::NAN, f64::INFINITY);
    g.status_code = None;
    let s = run(&c, vec![e, f, g]);
    assert!(s.iter().all(|s| s.risk_score.is_finite()));
    let weird = vec![
        sig("a", "u", 0, f64::NAN, AZ),
        sig("b", "u", 1, -5.0, AW),
        sig("c", "u", 2, f64::INFINITY, AZ),
    ];
    let r = score_identity("u", &weird, &[], &c);
    assert!(
        r.timeline
            .iter()
            .all(|p| p.score.is_finite() && p.score >= 0.0)
    );
}

// === properties ===

/// One generated event: (kind, seconds, user, ip, op/code selector).
fn build(i: usize, (kind, secs, user, ip, sel): (u8, u32, u8, u8, u8)) -> Event {
    let secs = i64::from(secs);
    let ip = format!("203.0.113.{}", ip % 6);
    let upn = format!("u{}@corp.example", user % 12);
    let id = format!("ev{i:04}");
    match kind % 6 {
        0 => signin(
            &id,
            secs,
            &upn,
            &ip,
            [50126, 50053, 0, 50057][usize::from(sel % 4)],
        ),
        1 => located(
            risky(
                signin(&id, secs, &upn, &ip, 0),
                ["high", "low", "none"][usize::from(sel % 3)],
                "atRisk",
                &[[
                    "unfamiliarFeatures",
                    "anonymizedIPAddress",
                    "leakedCredentials",
                ][usize::from(sel % 3)]],
            ),
            f64::from(sel % 90),
            f64::from(user) * 10.0,
        ),
        2 => console(
            &id,
            secs,
            iam_user(&format!("iam{}", user % 4)),
            &ip,
            sel % 3 != 0,
            [Some("No"), Some("Yes"), None][usize::from(sel % 3)],
        ),
        3 => console(&id, secs, sso_user(&upn), &ip, true, None),
        4 => call(
            &id,
            secs,
            iam_user(&format!("iam{}", user % 4)),
            RECON_CALLS[usize::from(sel) % 8],
            &ip,
            (sel % 5 == 0).then_some("AccessDenied"),
        ),
        _ => call(
            &id,
            secs,
            sso_user(&upn),
            RECON_CALLS[usize::from(sel) % 6],
            &ip,
            None,
        ),
    }
}

fn events_strategy() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        (
            any::<u8>(),
            0u32..20_000,
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
        ),
        1..120,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, r)| build(i, r))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn shuffled_input_gives_identical_signals_and_findings(
        (events, shuffled) in events_strategy().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let c = cfg();
        let a = run(&c, events);
        let b = run(&c, shuffled);
        prop_assert_eq!(&a, &b);
        let fa = score_all(&a, &[], &c);
        let mut rev = b.clone();
        rev.reverse();
        prop_assert_eq!(fa, score_all(&rev, &[], &c));
        for s in &a {
            prop_assert!(s.risk_score.is_finite() && s.risk_score >= 0.0);
        }
    }

    #[test]
    fn scores_finite_nonnegative_and_decay_monotone(
        raw in prop::collection::vec((0i64..1_000_000, -50.0f64..500.0, any::<bool>()), 1..40),
        probes in prop::collection::vec(0i64..5_000_000, 2..10),
    ) {
        let c = cfg();
        let signals: Vec<Signal> = raw.iter().enumerate()
            .map(|(i, (t, s, az))| sig(&format!("s{i}"), "u", *t, *s, if *az { AZ } else { AW }))
            .collect();
        let r = score_identity("u", &signals, &[], &c);
        for p in &r.timeline {
            prop_assert!(p.score.is_finite() && p.score >= 0.0);
        }
        // After the last signal the score only decays.
        let last = raw.iter().map(|r| r.0).max().unwrap_or(0);
        let mut probes: Vec<i64> = probes.into_iter().map(|p| at(last + p)).collect();
        probes.sort();
        let scores: Vec<f64> = probes.iter().map(|p| score_at("u", &signals, *p, &c)).collect();
        for w in scores.windows(2) {
            prop_assert!(w[1] <= w[0] + 1e-9, "{:?}", scores);
            prop_assert!(w[1].is_finite() && w[1] >= 0.0);
        }
    }
}

#[test]
fn user_agent_family_drops_the_per_call_command() {
    use crate::engine::user_agent_family;
    let a = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/sts.get-caller-identity";
    let b = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/iam.list-groups-for-user";
    assert_eq!(user_agent_family(a), user_agent_family(b));
    let c = "aws-cli/2.22.0 md/awscrt#0.22.0 ua/2.0 os/linux#6.8 md/command#s3.ls";
    assert_eq!(
        user_agent_family(c),
        "aws-cli/2.22.0 md/awscrt#0.22.0 ua/2.0 os/linux#6.8"
    );
    assert_eq!(
        user_agent_family(
            "[Boto3/1.26.165 Python/3.10.6 Linux/5.19.0-46-generic Botocore/1.29.165]"
        ),
        user_agent_family("Boto3/1.26.165 Python/3.10.6 Linux/5.19.0-46-generic Botocore/1.29.165")
    );
    assert_ne!(
        user_agent_family(a),
        user_agent_family("Boto3/1.26.165 Python/3.10.6")
    );
}

#[test]
fn signals_of_one_instant_raise_one_finding() {
    use crosswind_model::{CloudProvider, SCHEMA_VERSION, Signal};
    let cfg = CorrelateConfig::from_toml("").unwrap();
    let signal = |id: &str, score: f64, cloud: CloudProvider| Signal {
        schema_version: SCHEMA_VERSION,
        id: id.into(),
        signal: "test".into(),
        time: 1_000,
        risk_object: "alice@corp.example".into(),
        risk_object_type: "user".into(),
        risk_score: score,
        risk_message: "m".into(),
        threat_object: None,
        threat_object_type: None,
        mitre_technique_id: vec![],
        cloud: vec![cloud],
        event_ids: vec![],
        habitual: false,
        extends: None,
    };
    let signals = [
        signal("a", 120.0, CloudProvider::Azure),
        signal("b", 100.0, CloudProvider::Aws),
    ];
    let scored = crate::score_identity("alice@corp.example", &signals, &[], &cfg);
    assert_eq!(scored.findings.len(), 1, "{:?}", scored.findings);
    assert_eq!(
        scored.findings[0].score, 330.0,
        "both signals, ×1.5 for two clouds"
    );
}
