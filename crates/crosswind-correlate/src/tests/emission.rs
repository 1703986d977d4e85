//! The emission path: repeats, habits, disabled signals, restarts.

use super::*;

#[test]
fn daily_job_scores_full_full_then_a_quarter_and_is_never_a_finding() {
    let c = cfg();
    let u = iam_user("nightly");
    // The person below works from a known IP.
    let mut ev = vec![call(
        "seen",
        -3600,
        iam_user("ops"),
        "PutObject",
        "203.0.113.4",
        None,
    )];
    for day in 0..14 {
        // 02:00 every day with a few minutes of jitter: a run 23 h 52 min after the previous
        // one is a repeat; the next day's fires again.
        let start = day * 86_400 + (day % 3) * 240 - 120;
        ev.extend(recon_burst(
            u.clone(),
            &[
                "GetCallerIdentity",
                "ListBuckets",
                "ListUsers",
                "ListRoles",
                "GetAccountSummary",
            ],
            start,
            3,
            "203.0.113.4",
        ));
        // And a person who logs in to the console without MFA every morning.
        ev.push(console(
            &format!("login{day}"),
            start + 6 * 3600,
            iam_user("ops"),
            "203.0.113.4",
            true,
            Some("No"),
        ));
    }
    let s = run(&c, ev);
    let scores = |name| {
        named(&s, name)
            .iter()
            .map(|s| (s.risk_score, s.habitual))
            .collect::<Vec<_>>()
    };
    // First: new IP ×1.5; second: known IP; then habitual, a quarter.
    let recon = scores("aws_recon_burst");
    assert_eq!(recon[..3], [(84.0, false), (56.0, false), (14.0, true)]);
    assert!(recon[3..].iter().all(|r| *r == (14.0, true)), "{recon:?}");
    assert_eq!(recon.len(), 10, "{recon:?}");
    let login = scores("aws_console_login_no_mfa");
    assert_eq!(login[..3], [(64.0, false), (64.0, false), (16.0, true)]);
    assert!(login[3..].iter().all(|r| *r == (16.0, true)), "{login:?}");
    let habitual = named(&s, "aws_recon_burst")[2];
    assert!(
        habitual
            .risk_message
            .contains("[habitual: seen on 2 earlier days of the last 7: score ×0.25]"),
        "{}",
        habitual.risk_message
    );
    for who in ["nightly", "ops"] {
        let score = score_identity(
            &format!("arn:aws:iam::111122223333:user/{who}"),
            &s,
            &[],
            &c,
        );
        assert!(score.findings.is_empty(), "{:#?}", score.findings);
    }
}

#[test]
fn a_habit_fades_after_a_week_without_it() {
    let c = cfg();
    let login = |day: i64| {
        console(
            &format!("l{day}"),
            day * 86_400 + 3600,
            root_user(),
            "203.0.113.9",
            true,
            Some("No"),
        )
    };
    // Days 0, 1, 2 (habitual on day 2), then nothing until day 10: days 0–2 are more than
    // 7 days back, so day 10 scores full again.
    let s = run(&c, vec![login(0), login(1), login(2), login(10)]);
    let habitual: Vec<bool> = named(&s, "aws_root_console_login")
        .iter()
        .map(|s| s.habitual)
        .collect();
    assert_eq!(habitual, [false, false, true, false]);
}

#[test]
fn habitual_signals_alone_never_raise_a_finding() {
    let c = cfg();
    let mut habit = sig("h", "eve", 0, 120.0, AW);
    habit.habitual = true;
    assert!(
        score_identity("eve", &[habit.clone()], &[], &c)
            .findings
            .is_empty()
    );
    // A fresh signal on top of it does.
    let fresh = sig("f", "eve", 60, 10.0, AW);
    let found = score_identity("eve", &[habit, fresh], &[], &c).findings;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].raised_at, at(60));
}

#[test]
fn repeats_count_from_the_last_signal_that_fired() {
    let c = cfg();
    // Root logs in without MFA at 0 h, 20 h and 34 h: 20 h is a repeat (suppressed); 34 h is
    // 34 h after the last signal that fired, so it fires although the last login was 14 h
    // before it.
    let logins: Vec<Event> = [0, 20, 34]
        .iter()
        .map(|h| {
            console(
                &format!("root{h}"),
                h * 3600,
                root_user(),
                "203.0.113.7",
                true,
                Some("No"),
            )
        })
        .collect();
    let s = run(&c, logins);
    let times: Vec<i64> = named(&s, "aws_console_login_no_mfa")
        .iter()
        .map(|s| s.time)
        .collect();
    assert_eq!(times, [at(0), at(34 * 3600)]);
    assert_eq!(named(&s, "aws_root_console_login").len(), 2);

    let u = iam_user("eve");
    let ops = ["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"];
    let mut ev = recon_burst(u.clone(), &ops, 0, 1, "203.0.113.4");
    ev.extend(recon_burst(u.clone(), &ops, 20 * 3600, 1, "203.0.113.4")); // a repeat
    ev.extend(recon_burst(
        u.clone(),
        &ops,
        24 * 3600 + 10,
        1,
        "203.0.113.4",
    ));
    let s = run(&c, ev);
    assert_eq!(named(&s, "aws_recon_burst").len(), 2);
    // suppress_secs = 0 turns suppression off.
    let off = CorrelateConfig::from_toml("[signals.aws_recon_burst]\nsuppress_secs = 0").unwrap();
    let s = run(
        &off,
        recon_burst(
            u,
            &[
                "GetCallerIdentity",
                "ListBuckets",
                "ListUsers",
                "ListRoles",
                "GetUser",
            ],
            0,
            1,
            "203.0.113.4",
        ),
    );
    assert_eq!(named(&s, "aws_recon_burst").len(), 2);
}

#[test]
fn disabled_signals_do_not_fire() {
    let c =
        CorrelateConfig::from_toml("[signals.aws_root_console_login]\nenabled = false").unwrap();
    let s = run(
        &c,
        vec![console(
            "r",
            0,
            root_user(),
            "203.0.113.7",
            true,
            Some("Yes"),
        )],
    );
    assert!(s.is_empty());
}

/// A mixed scenario used by the restart and order tests.
fn scenario() -> Vec<Event> {
    let upn = "alice@corp.example";
    let mut ev = spray(12, "203.0.113.66", 0, 20);
    ev.push(signin("win", 400, upn, "203.0.113.66", 0));
    ev.push(console(
        "aws-login",
        4000,
        sso_user(upn),
        "203.0.113.66",
        true,
        None,
    ));
    ev.push(risky(
        signin("risk", 5000, "bob@corp.example", "198.51.100.5", 0),
        "high",
        "atRisk",
        &["maliciousIPAddress"],
    ));
    ev.extend(recon_burst(
        sso_user("bob@corp.example"),
        &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
        6000,
        2,
        "198.51.100.5",
    ));
    for day in 0..3 {
        ev.extend(recon_burst(
            iam_user("nightly"),
            &["GetCallerIdentity", "ListBuckets", "ListUsers", "ListRoles"],
            day * 86_400 + 7200,
            2,
            "192.0.2.10",
        ));
        ev.push(console(
            &format!("root{day}"),
            day * 86_400 + 9000,
            root_user(),
            &format!("192.0.2.{}", 20 + day),
            true,
            Some("No"),
        ));
    }
    ev.extend((0..6).map(|i| {
        console(
            &format!("cf{i}"),
            20_000 + i,
            iam_user("bob"),
            "198.51.100.9",
            false,
            Some("No"),
        )
    }));
    ev
}

#[test]
fn restart_reproduces_the_same_signals() {
    let c = cfg();
    let mut all = scenario();
    sort_events(&mut all);
    let full = Engine::new(c.clone(), IdentityLinks::default()).process_all(all.iter());
    assert!(full.len() >= 8, "{full:#?}");
    for cut in [at(300), at(4500), at(86_400 + 7201), at(2 * 86_400)] {
        // Before the cut: what the store holds. Re-run from the cut with warm-up + prior signals.
        let prior: Vec<Signal> = full.iter().filter(|s| s.time < cut).cloned().collect();
        let mut engine = Engine::new(c.clone(), IdentityLinks::default());
        let from = cut - engine.max_lookback_ms();
        for e in all.iter().filter(|e| e.time >= from && e.time < cut) {
            engine.warm_up(e);
        }
        engine.seed_signals(&prior);
        let rest = engine.process_all(all.iter().filter(|e| e.time >= cut));
        let expected: Vec<&Signal> = full.iter().filter(|s| s.time >= cut).collect();
        assert_eq!(rest.iter().collect::<Vec<_>>(), expected, "cut at {cut}");
        // Re-processing an overlap (events before the cut again) only re-emits existing ids.
        let mut again = Engine::new(c.clone(), IdentityLinks::default());
        let overlap = again.process_all(all.iter());
        assert!(overlap.iter().all(|s| full.iter().any(|f| f.id == s.id)));
    }
}
