//! Risky Entra sign-in then AWS; impossible travel across clouds.

use super::*;

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
