//! Order independence and odd input (proptest).

use super::*;

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
