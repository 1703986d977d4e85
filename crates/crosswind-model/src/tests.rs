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
        assert_eq!(
            serde_json::to_value(f).unwrap(),
            f.as_str(),
            "serde name = as_str"
        );
        let src = f.record_source();
        assert_eq!(RecordSource::parse(src.as_str()), Some(src));
        assert_eq!(serde_json::to_value(src).unwrap(), src.as_str());
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
        cloud: Cloud {
            provider: CloudProvider::Aws,
            account: Account::default(),
            region: None,
        },
        src_endpoint: SrcEndpoint::default(),
        user: None,
        actor: Some(Actor {
            user: User {
                name: Some("bob".into()),
                ..User::default()
            },
            invoked_by: None,
        }),
        api: None,
        service: None,
        http_request: None,
        is_mfa: None,
        finding_info: None,
        entra: None,
        aws: None,
    };
    assert_eq!(e.principal().and_then(|u| u.name.as_deref()), Some("bob"));
    e.actor = None;
    assert!(e.principal().is_none());
}

/// The JSON Schemas in `schemas/` are generated from these types; this fails when they are
/// stale. Regenerate with `UPDATE_SCHEMAS=1 cargo test -p crosswind-model`.
#[test]
fn json_schemas_are_up_to_date() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for (name, schema) in json_schemas() {
        let text = serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n";
        let path = dir.join(name);
        if update {
            std::fs::write(&path, &text).expect("write schema");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas {stale:?}: run `UPDATE_SCHEMAS=1 cargo test -p crosswind-model`"
    );
}
