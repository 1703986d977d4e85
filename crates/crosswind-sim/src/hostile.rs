//! Attacker-chosen text in records: the password-spray scenario with markup planted where an
//! attacker picks the value — the user name typed into a sign-in and the user agent. Whatever
//! renders records (the HTML report) is tested with it: the markup must stay text.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{Dataset, Scenario, SimConfig, generate};

/// The victim's sign-in name: breaks out of an attribute and adds an element with a handler.
pub const MARKUP_UPN: &str = r#""><img src=x onerror="document.title='XSS'">@contoso.com"#;
/// The name typed into one failed sign-in of the spray: an element that would be created.
pub const MARKUP_SPRAYED_UPN: &str = r#"<b id="planted">planted</b>@contoso.com"#;
/// Every attack sign-in's user agent: a script element.
pub const MARKUP_USER_AGENT: &str = "<script>document.title='XSS'</script>";

/// The password-spray scenario in a small tenant (40 users, six hours from `start`), its
/// victim signing in as [`MARKUP_UPN`], one sprayed name replaced by [`MARKUP_SPRAYED_UPN`] and
/// every attack sign-in carrying [`MARKUP_USER_AGENT`]. Returns the dataset and the victim's
/// canonical identity (Entra names are lower-cased).
pub fn markup_spray(start: i64) -> (Dataset, String) {
    let mut data = generate(
        &SimConfig {
            users: 40,
            hours: 6,
            start,
            ..SimConfig::default()
        },
        &[Scenario::PasswordSpray],
    );
    let spray = &data.truth.scenarios[0];
    let victim = spray.identities[0].clone();
    let attack: BTreeSet<String> = spray.signin_ids.iter().cloned().collect();
    let mut sprayed: Option<String> = None;
    for r in &mut data.signins {
        let upn = r["userPrincipalName"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        let in_attack = attack.contains(r["id"].as_str().unwrap_or_default());
        if upn == victim {
            r["userPrincipalName"] = Value::from(MARKUP_UPN);
        } else if in_attack && sprayed.get_or_insert_with(|| upn.clone()) == &upn {
            r["userPrincipalName"] = Value::from(MARKUP_SPRAYED_UPN);
        }
        if in_attack {
            r["userAgent"] = Value::from(MARKUP_USER_AGENT);
        }
    }
    (data, MARKUP_UPN.to_lowercase())
}
