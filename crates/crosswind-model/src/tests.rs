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

#[test]
fn secret_looking_values_are_not_shown_as_paths_or_variable_names() {
    use std::path::Path;
    for path in [
        "/run/credentials/crosswind.service/hec-token",
        "./hec-token",
        "conf/t",
    ] {
        assert_eq!(shown_path(Path::new(path)), path);
    }
    // A HEC token (GUID), an Entra client secret, a base64 secret, a bare file name.
    for secret in [
        "6f0d0c2e-1f7b-4c55-9a8e-7d1b2c3a4f5e",
        "Xq48Q~s0me.Secret_value-Z1",
        "kJ8f/2Ab+x9==",
        "hec token with spaces/x",
        "hec-token",
    ] {
        let shown = shown_path(Path::new(secret));
        assert!(
            !shown.contains(secret) && shown.contains("not shown"),
            "{shown}"
        );
    }
    for name in ["HEC_TOKEN", "AZURE_CLIENT_SECRET", "hec_token", "Token"] {
        assert_eq!(shown_env_name(name), name);
    }
    for secret in [
        "6f0d0c2e-1f7b-4c55-9a8e-7d1b2c3a4f5e",
        "Xq48Q~s0me.Secret_value-Z1",
        "3f9a0c1d2e4b5a6978",
        "aB3dE5fG7hJ9kL1mN3",
    ] {
        let shown = shown_env_name(secret);
        assert!(
            !shown.contains(secret) && shown.contains("not shown"),
            "{shown}"
        );
    }
}
