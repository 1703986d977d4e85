//! Model tests: secrets stay hidden, source formats round-trip their names.

use crate::*;

#[test]
fn sensitive_string_hides_itself() {
    let s = SensitiveString::new("hunter2");
    assert_eq!(format!("{s:?} {s}"), "**REDACTED** **REDACTED**");
    assert_eq!(s.expose(), "hunter2");
}

#[test]
fn source_format_names_round_trip() {
    for f in SourceFormat::ALL {
        assert_eq!(SourceFormat::parse(f.as_str()), Some(f));
        let src = f.record_source();
        assert_eq!(RecordSource::parse(src.as_str()), Some(src));
    }
}

#[test]
fn principal_is_user_or_actor() {
    let mut e = Event {
        schema_version: SCHEMA_VERSION,
        class_uid: CLASS_API_ACTIVITY,
        time: 0,
        status_id: STATUS_SUCCESS,
        status_code: None,
        status_detail: None,
        metadata: Metadata {
            uid: "x".into(),
            product: "AWS CloudTrail".into(),
            log_name: SourceFormat::CloudTrail,
            correlation_uid: None,
            event_types: vec![],
        },
        cloud: Cloud { provider: CloudProvider::Aws, account: Account::default(), region: None },
        src_endpoint: SrcEndpoint::default(),
        user: None,
        actor: Some(Actor { user: User { name: Some("bob".into()), ..User::default() }, invoked_by: None }),
        api: None,
        service: None,
        http_request: None,
        is_mfa: None,
        entra: None,
        aws: None,
    };
    assert_eq!(e.principal().and_then(|u| u.name.as_deref()), Some("bob"));
    e.actor = None;
    assert!(e.principal().is_none());
}
