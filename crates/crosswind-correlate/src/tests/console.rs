//! AWS console logins: no MFA, root, failures.

use super::*;

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
