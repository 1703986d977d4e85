use super::*;

fn svc(mut e: Event, source: &str) -> Event {
    e.api.as_mut().unwrap().service = Some(source.to_owned());
    e
}

fn in_region(mut e: Event, region: &str) -> Event {
    e.cloud.region = Some(region.to_owned());
    e
}

const DAY: i64 = 86_400;

#[test]
fn two_distinct_messaging_calls_within_10_min_fire_56() {
    let m = iam_user("mallory");
    let s = run(
        &cfg(),
        vec![
            svc(
                call("m1", 0, m.clone(), "GetSendQuota", "203.0.113.9", None),
                "ses.amazonaws.com",
            ),
            svc(
                call("m2", 60, m.clone(), "GetSendQuota", "203.0.113.9", None),
                "ses.amazonaws.com",
            ),
            svc(
                call("m3", 300, m.clone(), "GetAccount", "203.0.113.9", None),
                "ses.amazonaws.com",
            ),
        ],
    );
    let x = named(&s, "aws_messaging_abuse");
    assert_eq!(x.len(), 1, "{s:#?}");
    // New identity, so the IP is new: ×1.5.
    assert_eq!(x[0].risk_score, 84.0);
    assert_eq!(x[0].mitre_technique_id, ["T1496.004"]);
    let msg = &x[0].risk_message;
    assert!(
        msg.contains("2 distinct account-level messaging calls"),
        "{msg}"
    );
    assert!(
        msg.contains("GetAccount at") && msg.contains("from 203.0.113.9"),
        "{msg}"
    );
    assert!(msg.contains("(×1.5)"), "{msg}");
    assert_eq!(x[0].event_ids, ["m1", "m2", "m3"]);
}

#[test]
fn messaging_calls_from_a_known_ip_score_56_and_calls_apart_do_not_count() {
    let m = iam_user("ops");
    let mut events = vec![call(
        "k0",
        0,
        m.clone(),
        "DescribeRegions",
        "198.51.100.7",
        None,
    )];
    events.push(call(
        "a",
        3600,
        m.clone(),
        "GetSMSAttributes",
        "198.51.100.7",
        None,
    ));
    events.push(call(
        "b",
        3600 + 601,
        m.clone(),
        "SetSMSAttributes",
        "198.51.100.7",
        None,
    ));
    let s = run(&cfg(), events.clone());
    assert!(named(&s, "aws_messaging_abuse").is_empty(), "{s:#?}");
    events.push(call(
        "c",
        3600 + 700,
        m,
        "GetSMSSandboxAccountStatus",
        "198.51.100.7",
        None,
    ));
    let s = run(&cfg(), events);
    let x = named(&s, "aws_messaging_abuse");
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].risk_score, 56.0);
}

#[test]
fn the_stolen_keys_first_call_does_not_make_its_ip_known() {
    // A developer's key with two weeks of history from the office; then from a VPS:
    // GetCallerIdentity, and SES calls seconds later.
    let m = iam_user("dev");
    let mut events: Vec<Event> = (1..=14)
        .map(|d| {
            call(
                &format!("office{d}"),
                30 * DAY - d * DAY,
                m.clone(),
                "DescribeInstances",
                "198.51.100.7",
                None,
            )
        })
        .collect();
    let t = 30 * DAY;
    events.push(call(
        "who",
        t,
        m.clone(),
        "GetCallerIdentity",
        "203.0.113.9",
        None,
    ));
    events.push(svc(
        call("q", t + 20, m.clone(), "GetSendQuota", "203.0.113.9", None),
        "ses.amazonaws.com",
    ));
    events.push(svc(
        call(
            "e",
            t + 40,
            m.clone(),
            "GetAccountSendingEnabled",
            "203.0.113.9",
            None,
        ),
        "ses.amazonaws.com",
    ));
    let s = run(&cfg(), events.clone());
    let x = named(&s, "aws_messaging_abuse");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert_eq!(x[0].risk_score, 84.0, "{}", x[0].risk_message);
    // The same calls a day later from that VPS: it is known by then.
    for e in events.iter_mut().filter(|e| e.time >= at(t)) {
        e.time += DAY * 1000;
    }
    events.push(call("who0", t, m, "GetCallerIdentity", "203.0.113.9", None));
    let s = run(&cfg(), events);
    let x = named(&s, "aws_messaging_abuse");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert_eq!(x[0].risk_score, 56.0, "{}", x[0].risk_message);
}

#[test]
fn other_services_and_console_calls_are_not_messaging() {
    let m = iam_user("dev");
    let mut console_call = svc(
        call("c2", 20, m.clone(), "ListIdentities", "203.0.113.9", None),
        "ses.amazonaws.com",
    );
    console_call
        .aws
        .as_mut()
        .unwrap()
        .session_credential_from_console = Some(true);
    let s = run(
        &cfg(),
        vec![
            svc(
                call("g1", 0, m.clone(), "GetAccount", "203.0.113.9", None),
                "apigateway.amazonaws.com",
            ),
            svc(
                call("g2", 10, m.clone(), "ListIdentities", "203.0.113.9", None),
                "cognito-identity.amazonaws.com",
            ),
            console_call,
            svc(
                call("g3", 30, m.clone(), "GetSendQuota", "203.0.113.9", None),
                "ses.amazonaws.com",
            ),
        ],
    );
    assert!(named(&s, "aws_messaging_abuse").is_empty(), "{s:#?}");
    // Unknown source counts; a versioned name is the plain one.
    let s = run(
        &cfg(),
        vec![
            call("u1", 0, m.clone(), "GetAccount", "203.0.113.9", None),
            call(
                "u2",
                10,
                m,
                "VerifyEmailIdentity20101201",
                "203.0.113.9",
                None,
            ),
        ],
    );
    assert_eq!(named(&s, "aws_messaging_abuse").len(), 1, "{s:#?}");
}

#[test]
fn messaging_after_a_risky_signin_is_cross_cloud() {
    let upn = "bob@corp.example";
    let s = run(
        &cfg(),
        vec![
            risky(
                signin("s1", 0, upn, "203.0.113.50", 0),
                "high",
                "atRisk",
                &[],
            ),
            call(
                "m1",
                600,
                sso_user(upn),
                "GetSendQuota",
                "203.0.113.9",
                None,
            ),
            call(
                "m2",
                660,
                sso_user(upn),
                "ListIdentities",
                "203.0.113.9",
                None,
            ),
        ],
    );
    let x = named(&s, "cross_cloud_risky_then_aws");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert!(
        x[0].risk_message.contains("messaging calls"),
        "{}",
        x[0].risk_message
    );
}

#[test]
fn persistence_after_a_risky_signin_is_cross_cloud() {
    let upn = "bob@corp.example";
    let s = run(
        &cfg(),
        vec![
            risky(
                signin("s1", 0, upn, "203.0.113.50", 0),
                "high",
                "atRisk",
                &[],
            ),
            call(
                "p1",
                600,
                sso_user(upn),
                "CreateAccessKey",
                "203.0.113.9",
                None,
            ),
        ],
    );
    let x = named(&s, "cross_cloud_risky_then_aws");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert!(
        x[0].risk_message.contains("created an access key"),
        "{}",
        x[0].risk_message
    );
}

/// Daily activity of the account in `region` for `days` days before `end` (seconds).
fn daily(region: &str, days: i64, end: i64) -> Vec<Event> {
    (1..=days)
        .map(|d| {
            in_region(
                call(
                    &format!("d{region}{d}"),
                    end - d * DAY,
                    iam_user("ci"),
                    "DescribeInstances",
                    "198.51.100.7",
                    None,
                ),
                region,
            )
        })
        .collect()
}

#[test]
fn run_instances_in_a_region_unused_for_14_days_fires_40() {
    let t = 30 * DAY;
    let mut events = daily("eu-west-1", 10, t);
    events.push(in_region(
        call(
            "x1",
            t,
            iam_user("mallory"),
            "RunInstances",
            "203.0.113.9",
            None,
        ),
        "ap-southeast-3",
    ));
    // Used region: nothing.
    events.push(in_region(
        call(
            "x2",
            t + 10,
            iam_user("mallory"),
            "CreateStack",
            "203.0.113.9",
            None,
        ),
        "eu-west-1",
    ));
    let s = run(&cfg(), events);
    let x = named(&s, "aws_unused_region");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert_eq!(x[0].risk_score, 40.0);
    assert_eq!(x[0].mitre_technique_id, ["T1535"]);
    let msg = &x[0].risk_message;
    assert!(
        msg.contains("RunInstances in ap-southeast-3") && msg.contains("regions in use: eu-west-1"),
        "{msg}"
    );
}

#[test]
fn a_region_used_more_than_14_days_ago_is_unused_again_and_versioned_names_count() {
    let t = 40 * DAY;
    let mut events = daily("eu-west-1", 10, t);
    events.push(in_region(
        call(
            "old",
            t - 15 * DAY,
            iam_user("ci"),
            "DescribeInstances",
            "198.51.100.7",
            None,
        ),
        "us-west-2",
    ));
    events.push(in_region(
        call(
            "x",
            t,
            iam_user("mallory"),
            "CreateFunction20150331",
            "203.0.113.9",
            None,
        ),
        "us-west-2",
    ));
    let s = run(&cfg(), events.clone());
    assert_eq!(named(&s, "aws_unused_region").len(), 1, "{s:#?}");
    // Used 13 days ago: not unused.
    events.push(in_region(
        call(
            "recent",
            t - 13 * DAY,
            iam_user("ci"),
            "DescribeInstances",
            "198.51.100.7",
            None,
        ),
        "us-west-2",
    ));
    let s = run(&cfg(), events);
    assert!(named(&s, "aws_unused_region").is_empty(), "{s:#?}");
}

#[test]
fn the_intruders_own_preparation_in_the_region_is_no_prior_use() {
    // The usual way in: look up an AMI and make a key pair and a security group in the new
    // region, then RunInstances minutes later.
    let t = 30 * DAY;
    let prep = |uid: &str, secs: i64, op: &str| {
        in_region(
            call(uid, secs, iam_user("mallory"), op, "203.0.113.9", None),
            "ap-southeast-1",
        )
    };
    let mut events = daily("eu-west-1", 10, t);
    events.push(prep("p1", t - 300, "DescribeImages"));
    events.push(prep("p2", t - 240, "CreateKeyPair"));
    events.push(prep("p3", t - 180, "CreateSecurityGroup"));
    events.push(prep("x", t, "RunInstances"));
    let s = run(&cfg(), events.clone());
    let x = named(&s, "aws_unused_region");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert_eq!(x[0].risk_score, 40.0);
    assert!(
        x[0].risk_message.contains(&format!(
            "none before {}",
            crate::net::fmt_time(at(t - 300))
        )),
        "{}",
        x[0].risk_message
    );
    // Used by the team 25 hours before (outside the last 24 h, inside the 14 days): used.
    events.push(in_region(
        call(
            "team",
            t - 25 * 3600,
            iam_user("ci"),
            "DescribeInstances",
            "198.51.100.7",
            None,
        ),
        "ap-southeast-1",
    ));
    let s = run(&cfg(), events);
    assert!(named(&s, "aws_unused_region").is_empty(), "{s:#?}");
}

#[test]
fn an_account_with_less_than_7_days_of_history_is_silent() {
    let t = 30 * DAY;
    let mut events = daily("eu-west-1", 6, t);
    events.push(in_region(
        call("x", t, iam_user("ci"), "CreateStack", "198.51.100.7", None),
        "eu-central-1",
    ));
    let s = run(&cfg(), events.clone());
    assert!(named(&s, "aws_unused_region").is_empty(), "{s:#?}");
    // One more day of history: it fires.
    events.extend(daily("eu-west-1", 7, t).into_iter().skip(6));
    let s = run(&cfg(), events);
    assert_eq!(named(&s, "aws_unused_region").len(), 1, "{s:#?}");
}

#[test]
fn denied_calls_neither_fire_nor_make_a_region_used() {
    let t = 30 * DAY;
    let mut events = daily("eu-west-1", 10, t);
    events.push(in_region(
        call(
            "d",
            t,
            iam_user("mallory"),
            "RunInstances",
            "203.0.113.9",
            Some("UnauthorizedOperation"),
        ),
        "sa-east-1",
    ));
    events.push(in_region(
        call(
            "ok",
            t + 60,
            iam_user("mallory"),
            "RunInstances",
            "203.0.113.9",
            None,
        ),
        "sa-east-1",
    ));
    let s = run(&cfg(), events);
    let x = named(&s, "aws_unused_region");
    assert_eq!(x.len(), 1, "{s:#?}");
    assert_eq!(x[0].event_ids, ["ok"]);
}

#[test]
fn the_warm_up_covers_the_unused_region_look_back() {
    let e = Engine::new(cfg(), IdentityLinks::default());
    assert!(e.max_lookback_ms() >= (14 + 1 + 8) * DAY * 1000);
}

/// The one-lookup routing table agrees with every detector's own list, including names on two
/// lists (SES `ListIdentities` is recon and messaging).
#[test]
fn aws_call_roles_index_each_detectors_list() {
    use crate::catalog::{
        AwsCallRoles, MESSAGING_CALLS, PERSISTENCE_CALLS, RECON_CALLS, UNUSED_REGION_CALLS,
        aws_call_roles,
    };
    for (i, name) in RECON_CALLS.iter().enumerate() {
        assert_eq!(aws_call_roles(name).recon, Some(i as u8), "{name}");
    }
    for (i, (name, _)) in MESSAGING_CALLS.iter().enumerate() {
        assert_eq!(aws_call_roles(name).messaging, Some(i as u8), "{name}");
    }
    for (i, (name, _)) in PERSISTENCE_CALLS.iter().enumerate() {
        assert_eq!(aws_call_roles(name).persistence, Some(i as u8), "{name}");
    }
    for name in UNUSED_REGION_CALLS {
        assert!(aws_call_roles(name).unused_region, "{name}");
    }
    let both = aws_call_roles("ListIdentities");
    assert!(both.recon.is_some() && both.messaging.is_some());
    assert_eq!(aws_call_roles("PutObject"), AwsCallRoles::default());
    // Versioned names are looked up after plain_event_name, never raw.
    assert_eq!(
        aws_call_roles("CreateFunction20150331"),
        AwsCallRoles::default()
    );
}
