//! The identity's source-IP history behind the "new source IP" modifier (×1.5 on
//! `aws_console_login_no_mfa`, `aws_recon_burst` and `aws_messaging_abuse`): source IPs of the identity's
//! **successful AWS activity** in the look-back (14 days). Entra sign-ins are no baseline for
//! AWS: an attacker's Entra sign-in just before using AWS must not make its IP "known".

use crate::StateMap;

use crosswind_model::{CloudProvider, Event};

use super::{Detector, Sweep};
use crate::catalog::SignalKind;
use crate::config::CorrelateConfig;
use crate::engine::trim_oldest;

const MAX_IPS_PER_IDENTITY: usize = 64;
const MAX_IDENTITIES: usize = 2_000_000;

#[derive(Clone, Default)]
pub(crate) struct IpHistory {
    /// Identity → (IP, last seen).
    seen: StateMap<String, Vec<(String, i64)>>,
}

impl IpHistory {
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_new(&self, identity: &str, ip: &str, t: i64, lookback_ms: i64) -> bool {
        !self.seen.get(identity).is_some_and(|v| {
            v.iter()
                .any(|(i, seen)| i == ip && *seen <= t && t.saturating_sub(*seen) <= lookback_ms)
        })
    }

    /// After the detectors have seen the event (a call does not make its own IP known).
    pub fn on_event(&mut self, ev: &Event, identity: &str, ip: &str, t: i64) {
        if ev.is_success() && ev.provider() == CloudProvider::Aws {
            self.remember(identity, ip, t);
        }
    }

    fn remember(&mut self, identity: &str, ip: &str, t: i64) {
        let v = match self.seen.get_mut(identity) {
            Some(v) => v,
            None => self.seen.entry(identity.to_owned()).or_default(),
        };
        if let Some(e) = v.iter_mut().find(|(i, _)| i == ip) {
            e.1 = e.1.max(t);
            return;
        }
        if v.len() >= MAX_IPS_PER_IDENTITY
            && let Some(pos) = v
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.1.cmp(&b.1.1).then_with(|| a.1.0.cmp(&b.1.0)))
                .map(|(i, _)| i)
        {
            v.swap_remove(pos);
        }
        v.push((ip.to_owned(), t));
    }

    /// The longest look-back any user of the history reads.
    pub fn lookback_ms(cfg: &CorrelateConfig) -> i64 {
        Self::USERS
            .iter()
            .map(|k| cfg.signal(*k).lookback_ms)
            .max()
            .unwrap_or(0)
    }

    /// The signals whose `lookback_secs` is this history's.
    pub const USERS: [SignalKind; 3] = [
        SignalKind::AwsConsoleLoginNoMfa,
        SignalKind::AwsReconBurst,
        SignalKind::AwsMessagingAbuse,
    ];
}

impl Detector for IpHistory {
    const SWEEP: Sweep = Sweep::Hourly;

    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let cut = now.saturating_sub(Self::lookback_ms(cfg));
        self.seen.retain(|_, v| {
            v.retain(|(_, t)| *t >= cut);
            !v.is_empty()
        });
        trim_oldest(&mut self.seen, MAX_IDENTITIES, |v| {
            v.iter().map(|e| e.1).max().unwrap_or(i64::MIN)
        });
    }
}
