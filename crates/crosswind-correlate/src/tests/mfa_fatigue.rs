//! `azure_mfa_fatigue`: refused prompts, the threshold and window, growth on success,
//! cross-cloud.

use super::*;

const DECLINED: &str = "MFA denied; user declined the authentication";
const IGNORED: &str = "MFA denied; user did not respond to mobile app notification";

fn prompt(uid: &str, secs: i64, upn: &str, ip: &str, code: u32, details: Option<&str>) -> Event {
    let mut e = signin(uid, secs, upn, ip, code);
    e.entra.as_mut().unwrap().status_additional_details = details.map(str::to_owned);
    e
}

/// `n` refused prompts for `upn`, one every `step` seconds from `start`.
fn bombing(upn: &str, n: usize, start: i64, step: i64, ip: &str) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let details = if i % 2 == 0 { DECLINED } else { IGNORED };
            prompt(
                &format!("p{start}-{i}"),
                start + i as i64 * step,
                upn,
                ip,
                500121,
                Some(details),
            )
        })
        .collect()
}

const UPN: &str = "bob@corp.example";
const IP: &str = "198.51.100.66";

fn scores(s: &[Signal]) -> Vec<f64> {
    named(s, "azure_mfa_fatigue")
        .iter()
        .map(|s| s.risk_score)
        .collect()
}

#[test]
fn five_refused_prompts_within_ten_minutes() {
    let c = cfg();
    let s = run(&c, bombing(UPN, 5, 0, 120, IP));
    let f = named(&s, "azure_mfa_fatigue");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].risk_score, 24.0);
    assert_eq!(f[0].mitre_technique_id, ["T1621"]);
    assert_eq!(f[0].event_ids.len(), 5);
    assert_eq!(f[0].threat_object.as_deref(), Some(IP));
    assert_eq!(f[0].time, at(480));
    // Four, or five spread over more than ten minutes: nothing.
    assert!(scores(&run(&c, bombing(UPN, 4, 0, 60, IP))).is_empty());
    assert!(scores(&run(&c, bombing(UPN, 5, 0, 151, IP))).is_empty());
    // More prompts in the same burst: one signal.
    assert_eq!(scores(&run(&c, bombing(UPN, 12, 0, 30, IP))), [24.0]);
}

#[test]
fn only_prompts_the_user_refused_count() {
    let c = cfg();
    let with = |code: u32, details: Option<&str>| {
        let ev = (0..6)
            .map(|i| prompt(&format!("x{i}"), i * 30, UPN, IP, code, details))
            .collect();
        scores(&run(&c, ev))
    };
    assert_eq!(with(500121, Some(DECLINED)), [24.0]);
    assert_eq!(with(500121, Some(IGNORED)), [24.0]);
    assert_eq!(
        with(500121, Some("MFA denied; Phone App Reported Fraud")),
        [24.0]
    );
    // The ordinary "MFA required" interrupts every MFA sign-in starts with.
    assert!(with(50074, Some(DECLINED)).is_empty());
    assert!(with(50076, None).is_empty());
    // 500121 without a refusal (a duplicate request, a wrong code typed, no details).
    assert!(with(500121, Some("MFA denied; duplicate authentication attempt")).is_empty());
    assert!(with(500121, Some("MFA denied; invalid verification code")).is_empty());
    assert!(with(500121, None).is_empty());
}

#[test]
fn a_success_within_the_hour_grows_it_to_80() {
    let c = cfg();
    let mut ev = bombing(UPN, 6, 0, 60, IP);
    ev.push(signin("ok", 300 + 3000, UPN, IP, 0));
    let s = run(&c, ev);
    let f = named(&s, "azure_mfa_fatigue");
    assert_eq!(scores(&s), [24.0, 56.0]);
    assert_eq!(f[1].extends.as_ref(), Some(&f[0].id));
    assert_eq!(f[1].event_ids.last().map(String::as_str), Some("ok"));
    assert!(
        f[1].risk_message.contains("MFA fatigue that worked"),
        "{}",
        f[1].risk_message
    );
    // The identity's risk right after the success: 80, less the burst's decay over 50 min.
    let risk = score_at(UPN, &s, at(3300), &c);
    assert!(risk > 79.0 && risk < 80.0, "{risk}");
    // A success more than an hour after the burst, or before it: 24 only.
    let mut late = bombing(UPN, 6, 0, 60, IP);
    late.push(signin("ok", 300 + 3601, UPN, IP, 0));
    assert_eq!(scores(&run(&c, late)), [24.0]);
    let mut before = vec![signin("ok", -10, UPN, IP, 0)];
    before.extend(bombing(UPN, 6, 0, 60, IP));
    assert_eq!(scores(&run(&c, before)), [24.0]);
    // Another user's success grows nothing.
    let mut other = bombing(UPN, 6, 0, 60, IP);
    other.push(signin("ok", 600, "carol@corp.example", IP, 0));
    assert_eq!(scores(&run(&c, other)), [24.0]);
}

#[test]
fn one_or_two_denials_then_a_success_are_nothing() {
    let c = cfg();
    for day in 0..3 {
        let mut ev = bombing(UPN, 2, day * 86_400, 20, IP);
        ev.push(signin(&format!("ok{day}"), day * 86_400 + 60, UPN, IP, 0));
        assert!(scores(&run(&c, ev)).is_empty());
    }
}

#[test]
fn mfa_fatigue_that_worked_is_the_risky_side_of_cross_cloud() {
    let c = cfg();
    let login = console("aws", 2 * 3600, sso_user(UPN), "203.0.113.77", true, None);
    let mut ev = bombing(UPN, 6, 0, 60, IP);
    ev.push(signin("ok", 600, UPN, IP, 0));
    ev.push(login.clone());
    let s = run(&c, ev);
    let x = named(&s, "cross_cloud_risky_then_aws");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert!(
        x[0].risk_message
            .contains("after MFA fatigue (6 MFA prompts"),
        "{}",
        x[0].risk_message
    );
    // The burst alone (no success) is not: the push was refused.
    let mut ev = bombing(UPN, 6, 0, 60, IP);
    ev.push(login);
    assert!(named(&run(&c, ev), "cross_cloud_risky_then_aws").is_empty());
    // With the growth: 24 + 56 + 80 (+ the console login without MFA is an SSO session: none)
    // in both clouds.
    let mut ev = bombing(UPN, 6, 0, 60, IP);
    ev.push(signin("ok", 600, UPN, IP, 0));
    ev.push(console(
        "aws",
        2 * 3600,
        sso_user(UPN),
        "203.0.113.77",
        true,
        None,
    ));
    let s = run(&c, ev);
    assert_eq!(score_all(&s, &[], &c)[UPN].findings.len(), 1);
}
