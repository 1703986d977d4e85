use super::*;

fn grant(uid: &str, secs: i64, user: User, op: &str, admin: bool) -> Event {
    let mut e = call(uid, secs, user, op, "198.51.100.7", None);
    e.aws.as_mut().unwrap().grants_admin = Some(admin);
    e
}

#[test]
fn key_rotation_with_no_other_signal_scores_16_only() {
    let admin = iam_user("admin");
    let s = run(
        &cfg(),
        vec![
            call(
                "k1",
                0,
                admin.clone(),
                "CreateAccessKey",
                "198.51.100.7",
                None,
            ),
            call(
                "k2",
                60,
                admin.clone(),
                "DeleteAccessKey",
                "198.51.100.7",
                None,
            ),
        ],
    );
    let p = named(&s, "aws_credential_persistence");
    assert_eq!(p.len(), 1, "{s:#?}");
    assert_eq!(p[0].risk_score, 16.0);
    assert_eq!(p[0].mitre_technique_id, ["T1098.001", "T1136.003"]);
    assert!(
        p[0].risk_message
            .contains("created an access key (CreateAccessKey)"),
        "{}",
        p[0].risk_message
    );
}

#[test]
fn another_signal_of_the_identity_within_8h_makes_it_48() {
    let mallory = iam_user("mallory");
    let mut events = recon_burst(
        mallory.clone(),
        &["GetCallerIdentity", "ListUsers", "ListRoles", "ListBuckets"],
        0,
        5,
        "203.0.113.9",
    );
    events.push(call(
        "k1",
        3600,
        mallory.clone(),
        "CreateUser",
        "203.0.113.9",
        None,
    ));
    // Another identity's burst is no context for alice.
    events.push(call(
        "k2",
        3600,
        iam_user("alice"),
        "CreateAccessKey",
        "198.51.100.1",
        None,
    ));
    let s = run(&cfg(), events);
    let p = named(&s, "aws_credential_persistence");
    assert_eq!(p.len(), 2, "{s:#?}");
    let m = p
        .iter()
        .find(|x| x.risk_object.contains("mallory"))
        .unwrap();
    assert_eq!(m.risk_score, 48.0);
    assert!(
        m.risk_message
            .contains("raised aws_recon_burst 60 min earlier")
            && m.risk_message.ends_with("(×3)"),
        "{}",
        m.risk_message
    );
    let a = p.iter().find(|x| x.risk_object.contains("alice")).unwrap();
    assert_eq!(a.risk_score, 16.0);
}

#[test]
fn a_signal_more_than_8h_before_is_no_context() {
    let mallory = iam_user("mallory");
    let mut events = recon_burst(
        mallory.clone(),
        &["GetCallerIdentity", "ListUsers", "ListRoles", "ListBuckets"],
        0,
        5,
        "203.0.113.9",
    );
    events.push(call(
        "k1",
        8 * 3600 + 60,
        mallory,
        "CreateLoginProfile",
        "203.0.113.9",
        None,
    ));
    let s = run(&cfg(), events);
    let p = named(&s, "aws_credential_persistence");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].risk_score, 16.0);
}

#[test]
fn grants_count_only_when_they_give_admin_and_denied_calls_never() {
    let u = iam_user("ops");
    let s = run(
        &cfg(),
        vec![
            grant("g1", 0, u.clone(), "AttachUserPolicy", false),
            grant("g2", 10, u.clone(), "AddUserToGroup", false),
            call(
                "g3",
                20,
                u.clone(),
                "AttachUserPolicy",
                "198.51.100.7",
                None,
            ),
            call(
                "d1",
                30,
                u.clone(),
                "CreateAccessKey",
                "198.51.100.7",
                Some("AccessDenied"),
            ),
        ],
    );
    assert!(named(&s, "aws_credential_persistence").is_empty(), "{s:#?}");
    let s = run(&cfg(), vec![grant("g4", 0, u, "PutUserPolicy", true)]);
    let p = named(&s, "aws_credential_persistence");
    assert_eq!(p.len(), 1);
    assert!(p[0].risk_message.contains("allowing every action"));
}

#[test]
fn persistence_with_later_context_fires_the_difference() {
    // 16 reported for the key; the same call again after a recon burst the same day: +32.
    let m = iam_user("mallory");
    let mut events = vec![call(
        "k1",
        0,
        m.clone(),
        "CreateAccessKey",
        "203.0.113.9",
        None,
    )];
    events.extend(recon_burst(
        m.clone(),
        &["GetCallerIdentity", "ListUsers", "ListRoles", "ListBuckets"],
        600,
        5,
        "203.0.113.9",
    ));
    events.push(call("k2", 1200, m, "CreateAccessKey", "203.0.113.9", None));
    let s = run(&cfg(), events);
    let p = named(&s, "aws_credential_persistence");
    assert_eq!(p.len(), 2, "{s:#?}");
    assert_eq!(p[0].risk_score, 16.0);
    assert_eq!(p[1].risk_score, 32.0);
    assert_eq!(p[1].extends.as_deref(), Some(p[0].id.as_str()));
}
