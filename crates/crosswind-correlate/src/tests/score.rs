//! Scoring: decay, both clouds, findings.

use super::*;

#[test]
fn decay_and_both_clouds() {
    let c = cfg();
    let s = vec![sig("a", "u", 0, 80.0, AZ)];
    assert_eq!(score_at("u", &s, at(0), &c), 80.0);
    assert!((score_at("u", &s, at(86_400), &c) - 40.0).abs() < 1e-9);
    assert!((score_at("u", &s, at(2 * 86_400), &c) - 20.0).abs() < 1e-9);
    assert_eq!(score_at("other", &s, at(0), &c), 0.0);
    let s = vec![sig("a", "u", 0, 40.0, AZ), sig("b", "u", 0, 40.0, AW)];
    assert_eq!(score_at("u", &s, at(0), &c), 120.0);
    let r = score_identity("u", &s, &[], &c);
    assert_eq!(
        r.timeline.last().map(|p| (p.score, p.both_clouds)),
        Some((120.0, true))
    );
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!((f.score, f.threshold, f.raised_at), (120.0, 100.0, at(0)));
    assert_eq!(f.clouds, [CloudProvider::Azure, CloudProvider::Aws]);
    assert_eq!(f.signals, ["a", "b"]);
    assert!(f.summary.contains("both clouds"), "{}", f.summary);
}

#[test]
fn findings_once_per_day_unless_score_grows_by_half() {
    let c = cfg();
    let mut s = vec![sig("a", "u", 0, 100.0, AZ), sig("b", "u", 60, 10.0, AZ)];
    let r = score_identity("u", &s, &[], &c);
    assert_eq!(r.findings.len(), 1);
    s.push(sig("c", "u", 120, 60.0, AZ)); // ≈170 ≥ 1.5 × 100
    let r = score_identity("u", &s, &[], &c);
    assert_eq!(r.findings.len(), 2);
    s.push(sig("d", "u", 86_400 + 120, 100.0, AZ)); // a day later: again
    let r = score_identity("u", &s, &[], &c);
    assert_eq!(r.findings.len(), 3);
    // Ids are deterministic; prior findings are not raised again.
    let again = score_identity("u", &s, &r.findings[..2], &c);
    assert_eq!(again.findings, r.findings[2..]);
    assert_eq!(score_identity("u", &s, &[], &c), r);
    // Just below the threshold: nothing.
    let r = score_identity("u", &[sig("a", "u", 0, 99.99, AZ)], &[], &c);
    assert!(r.findings.is_empty());
}

#[test]
fn spray_victim_is_a_finding_on_its_own() {
    let c = cfg();
    let mut ev = spray(10, "203.0.113.66", 0, 1);
    ev.push(signin("win", 300, "victim@corp.example", "203.0.113.66", 0));
    let s = run(&c, ev);
    let r = score_identity("victim@corp.example", &s, &[], &c);
    assert_eq!(r.findings.len(), 1);
    assert!(
        r.findings[0]
            .summary
            .starts_with("victim@corp.example reached risk 100.0"),
        "{}",
        r.findings[0].summary
    );
    let all = score_all(&s, &[], &c);
    assert_eq!(all.keys().collect::<Vec<_>>(), ["victim@corp.example"]);
}

#[test]
fn no_panics_on_odd_input() {
    let c = cfg();
    let mut e = signin("x", 0, "", "not-an-ip", 0);
    e.time = i64::MIN;
    e.entra = Some(EntraDetail {
        risk_event_types: vec![String::new(), "IMPOSSIBLETRAVEL".into()],
        ..EntraDetail::default()
    });
    let mut f = call("y", 0, User::default(), "", "", Some(""));
    f.time = i64::MAX;
    let mut g = located(signin("z", 0, "a@b", "1.2.3.4", 0), f64::NAN, f64::INFINITY);
    g.status_code = None;
    let s = run(&c, vec![e, f, g]);
    assert!(s.iter().all(|s| s.risk_score.is_finite()));
    let weird = vec![
        sig("a", "u", 0, f64::NAN, AZ),
        sig("b", "u", 1, -5.0, AW),
        sig("c", "u", 2, f64::INFINITY, AZ),
    ];
    let r = score_identity("u", &weird, &[], &c);
    assert!(
        r.timeline
            .iter()
            .all(|p| p.score.is_finite() && p.score >= 0.0)
    );
}
