//! Successful AWS console logins: `aws_console_login_no_mfa` (IAM users and root, not
//! SAML/Identity Center sessions whose MFA is at the IdP; new source IP ×1.5) and
//! `aws_root_console_login`.

use super::{Detector, AWS, Ctx, Sink};
use crate::catalog::{NEW_IP_FACTOR, SignalKind};
use crate::emit::Draft;
use crate::identity::{PrincipalKind, Resolved};
use crate::net::fmt_duration;

/// Stateless: every login is judged on its own.
#[derive(Clone, Default)]
pub(crate) struct ConsoleLogin;

impl Detector for ConsoleLogin {}

impl ConsoleLogin {
    pub fn on_success(&mut self, c: &Ctx<'_>, who: &Resolved, sink: &mut Sink<'_>) {
        let aws = c.ev.aws.as_ref();
        let ip_text = c.ip.unwrap_or("an unknown IP");
        let federated = who.kind == PrincipalKind::FederatedSession
            || aws.is_some_and(|a| a.saml_provider_arn.is_some());
        if matches!(who.kind, PrincipalKind::IamUser | PrincipalKind::Root) && !federated {
            let mfa_used = aws.and_then(|a| a.mfa_used.as_deref()).map(str::trim);
            let mfa = match mfa_used {
                Some(v) => v.eq_ignore_ascii_case("yes"),
                None => c.ev.is_mfa == Some(true),
            };
            if !mfa {
                let new_ip = c.ip_is_new(&who.name, SignalKind::AwsConsoleLoginNoMfa);
                let lookback =
                    fmt_duration(c.cfg.signal(SignalKind::AwsConsoleLoginNoMfa).lookback_ms);
                let mfa_text = mfa_used.map_or("missing".to_owned(), |v| format!("\"{v}\""));
                sink.fire(
                    c.t,
                    Draft { kind: SignalKind::AwsConsoleLoginNoMfa, risk_object: &who.name, is_service: who.is_service, score: 0.0, threat: c.ip, clouds: AWS },
                    if new_ip { NEW_IP_FACTOR } else { 1.0 },
                    || {
                        let new = if new_ip { format!("; source IP not seen for this identity in the last {lookback} (×1.5)") } else { String::new() };
                        (
                            format!("{} logged in to the AWS console from {ip_text} without MFA (MFAUsed {mfa_text}){new}", who.name),
                            vec![c.id.to_owned()],
                        )
                    },
                );
            }
            if who.kind == PrincipalKind::Root {
                sink.fire(
                    c.t,
                    Draft { kind: SignalKind::AwsRootConsoleLogin, risk_object: &who.name, is_service: who.is_service, score: 0.0, threat: c.ip, clouds: AWS },
                    1.0,
                    || (format!("the root user of account {} logged in to the AWS console from {ip_text}", who.name.trim_start_matches("root@")), vec![c.id.to_owned()]),
                );
            }
        }
    }
}
