//! Leaked credentials, then messaging abuse (docs/detections.md, "Identity Protection risk
//! detections" and "Across clouds"): Identity Protection finds a developer's credentials in a
//! leak — an offline `leakedCredentials` detection of no sign-in, dated when the leak was found
//! and raised hours later — and the same person's long-term AWS key (linked to them by the
//! identities file), leaked with it, checks and unlocks SES from a VPS the identity never used:
//! what a spammer does before sending from the account.

use serde_json::json;

use super::{ATTACKER_BOTO_UA, Sc, Victims, attack_ip, iam};
use crate::cloudtrail::{Call, Principal};
use crate::cloudtrail_post::{Actor, ses_call};
use crate::risk::{self, Detection};
use crate::time::{HOUR, MIN, SEC};
use crate::world::World;

/// The attack network (the VPS range of the AWS-only attacks: never seen in Entra, so nothing
/// places it for travel).
const NET: usize = 3;
/// Where spammers ask SES first.
const SES_REGION: &str = "us-east-1";
/// The sender address the attacker has SES verify.
const SPAM_SENDER: &str = "billing-notice@contoso-invoices.top";

pub(super) fn leaked_credentials_messaging(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.leak];
    let Some(user) = iam(victim) else { return };

    // The leak, found at `at`; Entra raises it hours later, and the SOC confirms it within the
    // hour (all of it inside a six-hour window: a simulator serving each detection's latest
    // state would otherwise serve a confirmation dated after the window's end, which no
    // collector asks for yet, instead of the detection).
    let detected = at + sc.rng.range(2 * HOUR, 3 * HOUR);
    let id = sc.rng.hex(64);
    let first = risk::leaked_credentials(
        &id,
        (&victim.user_id, &victim.display, &victim.upn),
        "high",
        at,
        detected,
    );
    let reviewed = detected + sc.rng.range(30 * MIN, HOUR);
    let confirmed = risk::updated(
        &first,
        "confirmedCompromised",
        "adminConfirmedUserCompromised",
        reviewed,
    );
    for (state, t) in [(first, detected), (confirmed, reviewed)] {
        let visible_ms = t + sc.rng.range(30 * SEC, 5 * MIN);
        sc.out.risk_detections.push(Detection {
            visible_ms,
            value: state,
        });
    }
    sc.truth.risk_detection_ids.push(id);

    // Before Entra has raised it, the key is used: who am I, then SES's quota, whether sending
    // is on, which identities are verified (three recon-like calls: no recon burst), then a
    // sender address of the attacker's and sending switched on.
    let ip = attack_ip(&mut sc.rng, NET);
    let p = Principal::IamKey(user);
    let who = Actor::of(&p);
    let mut t = at + 100 * MIN + sc.rng.range(0, 30 * MIN);
    sc.attacker_call(t, &p, &ip, Call::GetCallerIdentity);
    let calls = [
        ("GetSendQuota", json!(null)),
        ("GetAccountSendingEnabled", json!(null)),
        (
            "ListIdentities",
            json!({ "identityType": "EmailAddress", "maxItems": 100 }),
        ),
        (
            "VerifyEmailIdentity",
            json!({ "emailAddress": SPAM_SENDER }),
        ),
        ("UpdateAccountSendingEnabled", json!({ "enabled": true })),
    ];
    for (name, request) in calls {
        t += sc.rng.range(6 * SEC, 40 * SEC);
        let rec = ses_call(
            &mut sc.rng,
            t,
            &who,
            &ip,
            ATTACKER_BOTO_UA,
            SES_REGION,
            name,
            request,
        );
        sc.ct(t, rec);
    }

    // The attack starts when the leak was found.
    sc.truth.start_ms = sc.truth.start_ms.min(at);
    let name = user.canonical();
    sc.truth.identities.push(name.clone());
    sc.truth.ips.push(ip.clone());
    // High level: the full score, at the time the leak was found (no IP: it names none).
    sc.expect(&name, "azure_risk_detection", 64.0, None);
    // Two distinct account-level calls within 10 min, from an IP new for the identity (×1.5):
    // the GetCallerIdentity seconds before is the same session, not history (docs/detections.md).
    sc.expect(&name, "aws_messaging_abuse", 56.0 * 1.5, Some(&ip));
    // The detection (high) is the risky Entra side, the messaging burst the AWS side, < 8 h.
    sc.expect(&name, "cross_cloud_risky_then_aws", 80.0, Some(&ip));
}
