//! Recon bursts: distinct calls, window, denied calls, growth, console browsing, versioned names.

use super::*;

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
