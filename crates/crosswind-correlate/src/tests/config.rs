//! Configuration defaults and errors; identity resolution and links.

use super::*;

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

/// Issue 16, suspected: service-principal sign-ins were keyed by display name, so two apps of
/// one name merged and an app named like a user joined that user. Keyed by object id now.
#[test]
fn service_principals_are_their_object_ids() {
    let links = IdentityLinks::default();
    let app = |oid: &str, name: &str| {
        let mut e = signin(oid, 0, "x", "1.1.1.1", 0);
        e.user = Some(User {
            name: Some(name.to_owned()),
            uid: Some(oid.to_owned()),
            kind: Some("servicePrincipal".to_owned()),
            ..User::default()
        });
        e
    };
    let a = app("11111111-AAAA-4000-8000-000000000001", "Backup Job");
    let b = app("22222222-bbbb-4000-8000-000000000002", "Backup Job");
    let like_user = app("33333333-cccc-4000-8000-000000000003", "alice@corp.example");
    let alice = signin("u", 0, "alice@corp.example", "1.1.1.1", 0);
    assert_eq!(
        identity_of(&a, &links).as_deref(),
        Some("11111111-aaaa-4000-8000-000000000001")
    );
    assert_ne!(identity_of(&a, &links), identity_of(&b, &links));
    assert_ne!(identity_of(&like_user, &links), identity_of(&alice, &links));
    let aliases: Vec<(String, String)> = aliases_of(&a, &links)
        .into_iter()
        .map(|al| (al.kind, al.value))
        .collect();
    assert!(aliases.contains(&("service_principal_name".to_owned(), "backup job".to_owned())));
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
