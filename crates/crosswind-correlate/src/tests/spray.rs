//! Password spray and the successes that follow it (Entra and the AWS console).

use super::*;

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
