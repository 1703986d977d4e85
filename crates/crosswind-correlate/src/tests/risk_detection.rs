//! `azure_risk_detection`: Identity Protection detections (OCSF 2004), their later states, and
//! detections tied to a sign-in that already counted.

use super::*;

#[allow(clippy::too_many_arguments)]
/// One state of a risk detection: dated at its activity, id `<id>@<version>` (as the
/// normaliser makes it).
fn detection(
    id: &str,
    activity_secs: i64,
    version_secs: i64,
    upn: Option<&str>,
    level: &str,
    state: &str,
    kind: &str,
    ip: &str,
) -> Event {
    let mut e = base(CloudProvider::Azure, "", activity_secs, ip);
    e.class_uid = CLASS_DETECTION_FINDING;
    e.status_id = STATUS_UNKNOWN;
    e.metadata.uid = format!("{id}@{:015}", at(version_secs));
    e.metadata.log_name = SourceFormat::GraphRiskDetection;
    e.metadata.product = "Microsoft Entra ID Protection".to_owned();
    e.user = upn.map(|u| User {
        name: Some(u.to_owned()),
        uid: Some(format!("oid-{u}")),
        ..User::default()
    });
    e.finding_info = Some(FindingInfo {
        uid: id.to_owned(),
        title: kind.to_owned(),
        types: vec![kind.to_owned()],
        created_time: Some(at(version_secs)),
        modified_time: at(version_secs),
    });
    e.entra = Some(EntraDetail {
        risk_state: Some(state.to_owned()),
        risk_level: Some(level.to_owned()),
        risk_event_types: vec![kind.to_owned()],
        detection_timing_type: Some("realtime".to_owned()),
        risk_activity: Some("signin".to_owned()),
        ..EntraDetail::default()
    });
    e
}

fn tied(mut e: Event, request_id: &str) -> Event {
    e.entra.as_mut().unwrap().request_id = Some(request_id.to_owned());
    e
}

const UPN: &str = "alice@corp.example";

fn total(signals: &[Signal], name: &str) -> f64 {
    named(signals, name).iter().map(|s| s.risk_score).sum()
}

#[test]
fn scored_by_level_in_the_states_that_count_at_the_activity_time() {
    let c = cfg();
    let one = |level: &str, state: &str, kind: &str| {
        // Offline: detected six hours after the activity.
        let s = run(
            &c,
            vec![detection(
                "d1",
                0,
                6 * 3600,
                Some(UPN),
                level,
                state,
                kind,
                "198.51.100.7",
            )],
        );
        named(&s, "azure_risk_detection")
            .iter()
            .map(|s| (s.risk_score, s.time, s.mitre_technique_id.clone()))
            .collect::<Vec<_>>()
    };
    let t1078 = vec!["T1078.004".to_owned()];
    assert_eq!(
        one("high", "atRisk", "anonymizedIPAddress"),
        [(64.0, at(0), t1078.clone())]
    );
    assert_eq!(
        one("medium", "confirmedCompromised", "unfamiliarFeatures"),
        [(40.0, at(0), t1078.clone())]
    );
    assert_eq!(
        one("Low", "AtRisk", "suspiciousBrowser"),
        [(16.0, at(0), t1078.clone())]
    );
    assert_eq!(
        one("high", "atRisk", "leakedCredentials"),
        [(64.0, at(0), vec!["T1586.003".to_owned()])]
    );
    // A type this build has never heard of is scored by its level like any other.
    assert_eq!(
        one("medium", "atRisk", "someFutureDetection"),
        [(40.0, at(0), t1078)]
    );
    for (level, state) in [
        ("hidden", "atRisk"),
        ("none", "atRisk"),
        ("high", "dismissed"),
        ("high", "confirmedSafe"),
        ("high", "remediated"),
        ("high", "none"),
    ] {
        assert!(
            one(level, state, "leakedCredentials").is_empty(),
            "{level} {state}"
        );
    }
}

#[test]
fn the_message_says_what_was_detected_and_when() {
    let s = run(
        &cfg(),
        vec![detection(
            "det-9",
            0,
            6 * 3600,
            Some(UPN),
            "high",
            "atRisk",
            "leakedCredentials",
            "",
        )],
    );
    let d = named(&s, "azure_risk_detection");
    expect![[r#"Entra ID Protection raised leakedCredentials (high risk, atRisk, realtime) on alice@corp.example at 2026-05-28T20:26:40Z, detected 2026-05-29T02:26:40Z (detection det-9)"#]]
        .assert_eq(&d[0].risk_message);
    assert_eq!(d[0].threat_object, None);
}

#[test]
fn a_dismissed_detection_no_longer_counts_whatever_order_its_states_arrive_in() {
    let c = cfg();
    let original = || {
        detection(
            "d1",
            0,
            0,
            Some(UPN),
            "high",
            "atRisk",
            "anonymizedIPAddress",
            "198.51.100.7",
        )
    };
    for closed in ["dismissed", "confirmedSafe", "remediated"] {
        // Reviewed a day later: the update is dated at the same activity, later version.
        let update = detection(
            "d1",
            0,
            86_400,
            Some(UPN),
            "high",
            closed,
            "anonymizedIPAddress",
            "198.51.100.7",
        );
        for events in [
            vec![original(), update.clone()],
            vec![update.clone(), original()],
        ] {
            let s = run(&c, events);
            let d = named(&s, "azure_risk_detection");
            assert_eq!(d.len(), 2, "{closed}: {s:#?}");
            assert_eq!(d[0].risk_score, 64.0);
            assert_eq!(d[1].risk_score, -64.0);
            assert_eq!(d[1].extends.as_ref(), Some(&d[0].id));
            assert!(d[1].risk_message.contains(closed), "{}", d[1].risk_message);
            assert_eq!(score_at(UPN, &s, at(60), &c), 0.0);
        }
    }
    // Live: the original was correlated (and stored) first; the update alone in the next run
    // replays from the activity time with the original, reproducing its id and taking it back.
    let first = run(&c, vec![original()]);
    let update = detection(
        "d1",
        0,
        86_400,
        Some(UPN),
        "high",
        "dismissed",
        "anonymizedIPAddress",
        "198.51.100.7",
    );
    let mut engine = Engine::new(c.clone(), IdentityLinks::default());
    engine.seed_signals(first.iter());
    let second = engine.process_all([original(), update].iter());
    assert_eq!(second[0].id, first[0].id);
    let mut stored = first.clone();
    stored.extend(second.iter().filter(|s| s.id != first[0].id).cloned());
    assert_eq!(stored.len(), 2);
    assert_eq!(score_at(UPN, &stored, at(3600), &c), 0.0);
}

#[test]
fn an_update_seen_before_its_original_is_kept_and_raises_nothing() {
    let c = cfg();
    // The collector read the dismissed state first (the original is fetched later, or never).
    let mut engine = Engine::new(c.clone(), IdentityLinks::default());
    let update = detection(
        "d1",
        0,
        7200,
        Some(UPN),
        "medium",
        "dismissed",
        "unfamiliarFeatures",
        "198.51.100.7",
    );
    assert!(engine.process_all([update.clone()].iter()).is_empty());
    assert_eq!(engine.state_sizes().risk_detections, 1);
    // An older state met after the newer one (records dated differently) changes nothing.
    let mut older = detection(
        "d1",
        0,
        0,
        Some(UPN),
        "medium",
        "atRisk",
        "unfamiliarFeatures",
        "198.51.100.7",
    );
    older.time = at(3600);
    assert!(engine.process_all([older].iter()).is_empty());
}

#[test]
fn a_withdrawn_detection_does_not_silence_the_next_one() {
    let c = cfg();
    let ip = "198.51.100.7";
    let s = run(
        &c,
        vec![
            detection(
                "d1",
                0,
                0,
                Some(UPN),
                "high",
                "atRisk",
                "anonymizedIPAddress",
                ip,
            ),
            detection(
                "d1",
                0,
                600,
                Some(UPN),
                "high",
                "dismissed",
                "anonymizedIPAddress",
                ip,
            ),
            detection(
                "d2",
                3600,
                3600,
                Some(UPN),
                "high",
                "atRisk",
                "maliciousIPAddress",
                ip,
            ),
            // Not withdrawn: a repeat of d2 within the day.
            detection(
                "d3",
                7200,
                7200,
                Some(UPN),
                "high",
                "atRisk",
                "maliciousIPAddress",
                ip,
            ),
        ],
    );
    let d: Vec<f64> = named(&s, "azure_risk_detection")
        .iter()
        .map(|s| s.risk_score)
        .collect();
    assert_eq!(d, [64.0, -64.0, 64.0]);
}

#[test]
fn a_detection_of_a_sign_in_that_already_counted_adds_nothing() {
    let c = cfg();
    let ip = "198.51.100.7";
    let signin_of = |uid: &str| {
        risky(
            signin(uid, 0, UPN, ip, 0),
            "high",
            "atRisk",
            &["anonymizedIPAddress"],
        )
    };
    // Real-time detections share their sign-in's time; which comes first depends on the ids.
    for signin_id in ["0-signin", "z-signin"] {
        let s = run(
            &c,
            vec![
                signin_of(signin_id),
                tied(
                    detection(
                        "m-det",
                        0,
                        0,
                        Some(UPN),
                        "high",
                        "atRisk",
                        "anonymizedIPAddress",
                        ip,
                    ),
                    signin_id,
                ),
            ],
        );
        assert_eq!(named(&s, "azure_high_risk_signin").len(), 1);
        assert_eq!(
            total(&s, "azure_risk_detection"),
            0.0,
            "{signin_id}: {s:#?}"
        );
        assert_eq!(
            score_at(UPN, &s, at(0), &c),
            56.0 + 48.0,
            "{signin_id}: only the sign-in's own signals count"
        );
    }
    // Tied by correlation id instead.
    let mut si = signin_of("si");
    si.metadata.correlation_uid = Some("corr-1".to_owned());
    let mut det = detection(
        "m-det",
        0,
        0,
        Some(UPN),
        "high",
        "atRisk",
        "anonymizedIPAddress",
        ip,
    );
    det.metadata.correlation_uid = Some("corr-1".to_owned());
    assert_eq!(total(&run(&c, vec![si, det]), "azure_risk_detection"), 0.0);
    // A sign-in that raised no risk of its own: the detection counts (an offline detection).
    let s = run(
        &c,
        vec![
            signin("plain", 0, UPN, ip, 0),
            tied(
                detection(
                    "m-det",
                    0,
                    9000,
                    Some(UPN),
                    "high",
                    "atRisk",
                    "anomalousToken",
                    ip,
                ),
                "plain",
            ),
        ],
    );
    assert_eq!(total(&s, "azure_risk_detection"), 64.0);
}

#[test]
fn service_principals_and_unattributed_detections() {
    let c = cfg();
    let mut sp = detection(
        "sp-1",
        0,
        0,
        None,
        "high",
        "atRisk",
        "investigationsThreatIntelligence",
        "",
    );
    sp.user = Some(User {
        name: Some("billing-sync".to_owned()),
        uid: Some("11111111-2222-3333-4444-555555555555".to_owned()),
        kind: Some("servicePrincipal".to_owned()),
        ..User::default()
    });
    let nobody = detection("n-1", 0, 0, None, "high", "atRisk", "leakedCredentials", "");
    let mut no_info = detection(
        "x-1",
        0,
        0,
        Some(UPN),
        "high",
        "atRisk",
        "leakedCredentials",
        "",
    );
    no_info.finding_info = None;
    no_info.entra = None;
    let s = run(&c, vec![sp, nobody, no_info]);
    let d = named(&s, "azure_risk_detection");
    assert_eq!(d.len(), 1, "{s:#?}");
    assert_eq!(d[0].risk_object, "11111111-2222-3333-4444-555555555555");
}

#[test]
fn high_or_medium_detections_are_the_risky_side_of_cross_cloud() {
    let c = cfg();
    let login = || console("a", 4 * 3600, sso_user(UPN), "203.0.113.9", true, None);
    for (level, fires) in [("high", true), ("medium", true), ("low", false)] {
        let s = run(
            &c,
            vec![
                detection(
                    "d",
                    0,
                    3 * 3600,
                    Some(UPN),
                    level,
                    "atRisk",
                    "leakedCredentials",
                    "",
                ),
                login(),
            ],
        );
        let x = named(&s, "cross_cloud_risky_then_aws");
        assert_eq!(x.len(), usize::from(fires), "{level}");
        if fires {
            assert!(
                x[0].risk_message
                    .contains("after an Identity Protection risk detection (leakedCredentials at"),
                "{}",
                x[0].risk_message
            );
            assert_eq!(x[0].event_ids[0], format!("d@{:015}", at(3 * 3600)));
        }
    }
}

#[test]
fn a_dismissal_takes_the_detection_out_of_the_identitys_next_finding() {
    let c = cfg();
    let ip = "198.51.100.7";
    let two = |second_state: &str| {
        run(
            &c,
            vec![
                detection(
                    "d1",
                    0,
                    0,
                    Some(UPN),
                    "high",
                    "atRisk",
                    "leakedCredentials",
                    "",
                ),
                detection(
                    "d1",
                    0,
                    60,
                    Some(UPN),
                    "high",
                    second_state,
                    "leakedCredentials",
                    "",
                ),
                detection(
                    "d2",
                    600,
                    600,
                    Some(UPN),
                    "high",
                    "atRisk",
                    "anonymizedIPAddress",
                    ip,
                ),
            ],
        )
    };
    let kept = score_all(&two("atRisk"), &[], &c);
    assert_eq!(kept[UPN].findings.len(), 1, "64 + 64 reaches 100");
    let dismissed = two("dismissed");
    let scored = score_all(&dismissed, &[], &c);
    assert!(
        scored[UPN].findings.is_empty(),
        "{:?}",
        scored[UPN].timeline
    );
}

#[test]
fn a_dismissed_detection_is_no_cross_cloud_or_persistence_context() {
    let c = cfg();
    let leaked = |version_secs: i64, state: &str| {
        detection(
            "d1",
            0,
            version_secs,
            Some(UPN),
            "high",
            state,
            "leakedCredentials",
            "",
        )
    };
    let aws = || {
        vec![
            console("aws", 2 * 3600, sso_user(UPN), "203.0.113.9", true, None),
            call(
                "key",
                2 * 3600 + 60,
                sso_user(UPN),
                "CreateAccessKey",
                "203.0.113.9",
                None,
            ),
        ]
    };
    // Still at risk: both rules read it.
    let mut ev = vec![leaked(0, "atRisk")];
    ev.extend(aws());
    let s = run(&c, ev);
    assert_eq!(named(&s, "cross_cloud_risky_then_aws").len(), 1, "{s:#?}");
    assert_eq!(named(&s, "aws_credential_persistence")[0].risk_score, 48.0);
    for closed in ["dismissed", "confirmedSafe", "remediated"] {
        // Closed an hour after it was raised, before the AWS activity.
        let mut ev = vec![leaked(0, "atRisk"), leaked(3600, closed)];
        ev.extend(aws());
        let s = run(&c, ev);
        assert!(
            named(&s, "cross_cloud_risky_then_aws").is_empty(),
            "{closed}: {s:#?}"
        );
        let p = named(&s, "aws_credential_persistence");
        assert_eq!(p.len(), 1, "{closed}: {s:#?}");
        assert_eq!(p[0].risk_score, 16.0, "{closed}: {}", p[0].risk_message);
        // An earlier risky sign-in of the same person still counts for both.
        let mut ev = vec![
            risky(
                signin("s1", -600, UPN, "198.51.100.7", 0),
                "high",
                "atRisk",
                &["unfamiliarFeatures"],
            ),
            leaked(0, "atRisk"),
            leaked(3600, closed),
        ];
        ev.extend(aws());
        let s = run(&c, ev);
        let x = named(&s, "cross_cloud_risky_then_aws");
        assert_eq!(x.len(), 1, "{closed}: {s:#?}");
        assert!(
            x[0].risk_message.contains("after a risky Entra sign-in"),
            "{}",
            x[0].risk_message
        );
        assert_eq!(named(&s, "aws_credential_persistence")[0].risk_score, 48.0);
    }
}
