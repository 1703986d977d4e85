//! The Entra risk detector: high risk, risky events, cross-tenant, reviewed states, tuning.

use super::*;

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
