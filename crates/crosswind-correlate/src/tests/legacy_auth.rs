//! `azure_legacy_auth_signin`: legacy protocols, unknown values, habits, cross-cloud.

use super::*;

fn legacy(uid: &str, secs: i64, upn: &str, ip: &str, code: u32, app: Option<&str>) -> Event {
    let mut e = signin(uid, secs, upn, ip, code);
    e.entra.as_mut().unwrap().client_app_used = app.map(str::to_owned);
    e.service = Some(Service {
        name: Some("Office 365 Exchange Online".to_owned()),
        uid: None,
    });
    e
}

#[test]
fn legacy_protocols_fire_and_modern_or_unknown_clients_do_not() {
    let c = cfg();
    let upn = "ann@corp.example";
    let fired = |app: Option<&str>, code: u32| {
        named(
            &run(&c, vec![legacy("s", 0, upn, "198.51.100.20", code, app)]),
            "azure_legacy_auth_signin",
        )
        .iter()
        .map(|s| (s.risk_score, s.mitre_technique_id.clone()))
        .collect::<Vec<_>>()
    };
    for app in [
        "IMAP4",
        "POP3",
        "Exchange ActiveSync",
        "Authenticated SMTP",
        "Exchange Web Services",
        "AutoDiscover",
        "MAPI Over HTTP",
        "Other clients",
        "some protocol added next year",
    ] {
        assert_eq!(
            fired(Some(app), 0),
            [(32.0, vec!["T1078.004".to_owned()])],
            "{app}"
        );
        // Failed: nothing got in.
        assert!(fired(Some(app), 50126).is_empty(), "{app}");
    }
    for app in [
        Some("Browser"),
        Some("mobile apps and desktop clients"),
        Some(""),
        Some("  "),
        Some("Unknown"),
        None,
    ] {
        assert!(fired(app, 0).is_empty(), "{app:?}");
    }
}

#[test]
fn the_message_names_the_protocol_and_where_from() {
    let mut e = legacy(
        "s",
        0,
        "ann@corp.example",
        "198.51.100.20",
        0,
        Some("IMAP4"),
    );
    e.src_endpoint.location = Some(Location {
        country: Some("RO".to_owned()),
        ..Location::default()
    });
    let s = run(&cfg(), vec![e]);
    expect![[r#"ann@corp.example signed in to Office 365 Exchange Online over the legacy protocol `IMAP4` (no MFA possible) from 198.51.100.20 (RO)"#]]
        .assert_eq(&named(&s, "azure_legacy_auth_signin")[0].risk_message);
}

#[test]
fn a_mail_room_device_on_activesync_every_day_is_a_habit_never_a_finding() {
    let c = cfg();
    let upn = "mailroom@corp.example";
    let mut ev = Vec::new();
    for day in 0..14 {
        // Every morning, several syncs, from the office.
        for k in 0..6 {
            ev.push(legacy(
                &format!("eas-{day}-{k}"),
                day * 86_400 + 7 * 3600 + k * 1800,
                upn,
                "203.0.113.50",
                0,
                Some("Exchange ActiveSync"),
            ));
        }
    }
    let s = run(&c, ev);
    let got: Vec<(f64, bool)> = named(&s, "azure_legacy_auth_signin")
        .iter()
        .map(|s| (s.risk_score, s.habitual))
        .collect();
    // Once a day (repeats), full on the first two days, then a quarter.
    assert_eq!(got.len(), 14, "{got:?}");
    assert_eq!(got[..3], [(32.0, false), (32.0, false), (8.0, true)]);
    assert!(got[2..].iter().all(|g| *g == (8.0, true)), "{got:?}");
    assert!(score_all(&s, &[], &c)[upn].findings.is_empty());
}

#[test]
fn a_legacy_sign_in_is_the_risky_side_of_cross_cloud_unless_habitual() {
    let c = cfg();
    let upn = "ann@corp.example";
    let s = run(
        &c,
        vec![
            legacy("imap", 0, upn, "198.51.100.20", 0, Some("IMAP4")),
            console("aws", 3600, sso_user(upn), "198.51.100.20", true, None),
        ],
    );
    let x = named(&s, "cross_cloud_risky_then_aws");
    assert_eq!(x.len(), 1);
    assert!(
        x[0].risk_message
            .contains("after a legacy-protocol Entra sign-in (`IMAP4` from 198.51.100.20)"),
        "{}",
        x[0].risk_message
    );
    // The mail-room habit: on the third day its sign-in is habitual and no longer risky.
    let mut ev: Vec<Event> = (0..3)
        .map(|d| {
            legacy(
                &format!("eas{d}"),
                d * 86_400,
                upn,
                "203.0.113.50",
                0,
                Some("Exchange ActiveSync"),
            )
        })
        .collect();
    ev.push(console(
        "aws",
        2 * 86_400 + 600,
        sso_user(upn),
        "203.0.113.50",
        true,
        None,
    ));
    assert!(named(&run(&c, ev), "cross_cloud_risky_then_aws").is_empty());
}

#[test]
fn a_habitual_legacy_sign_in_is_no_context_for_key_creation() {
    let c = cfg();
    let upn = "mailroom@corp.example";
    let key = |uid: &str, secs: i64| {
        call(
            uid,
            secs,
            sso_user(upn),
            "CreateAccessKey",
            "203.0.113.50",
            None,
        )
    };
    let mut ev: Vec<Event> = (0..3)
        .map(|d| {
            legacy(
                &format!("eas{d}"),
                d * 86_400 + 7 * 3600,
                upn,
                "203.0.113.50",
                0,
                Some("Exchange ActiveSync"),
            )
        })
        .collect();
    // An hour after the first day's sync (full score: context) and after the third's (a
    // habit: no context).
    ev.push(key("k-day1", 8 * 3600));
    ev.push(key("k-day3", 2 * 86_400 + 8 * 3600));
    let s = run(&c, ev);
    let p = named(&s, "aws_credential_persistence");
    let got: Vec<(i64, f64)> = p.iter().map(|s| (s.time, s.risk_score)).collect();
    assert_eq!(
        got,
        [(at(8 * 3600), 48.0), (at(2 * 86_400 + 8 * 3600), 16.0)],
        "{s:#?}"
    );
    assert!(
        p[1].risk_message
            .contains("no other signal of the identity"),
        "{}",
        p[1].risk_message
    );
}
