//! The identity's source-IP history behind the "new source IP" modifier (×1.5 on
//! `aws_console_login_no_mfa`, `aws_recon_burst` and `aws_messaging_abuse`): source IPs of the identity's
//! **successful AWS activity** in the look-back (14 days). Entra sign-ins are no baseline for
//! AWS: an attacker's Entra sign-in just before using AWS must not make its IP "known".
//!
//! Nor does the last [`SESSION_MS`] (1 h): a stolen key's first call (GetCallerIdentity, seconds
//! before its recon or SES calls) is the same session, not history. "Known" is activity from the
//! IP between the look-back's start and an hour before.

use crate::StateMap;

use crosswind_model::{CloudProvider, Event};

use super::{Detector, Sweep};
use crate::catalog::SignalKind;
use crate::config::CorrelateConfig;
use crate::engine::trim_oldest;

const MAX_IPS_PER_IDENTITY: usize = 64;
/// Activity this recent from an IP does not make it known (see the module docs).
pub const SESSION_MS: i64 = 3_600_000;

/// One IP of an identity. Its activity as runs whose gaps are at most [`SESSION_MS`]: the
/// current run (`first`..=`last`) and the latest activity before it (`before`). That answers
/// "any activity from `t` − look-back to `t` − 1 h" exactly while the look-back is at least two
/// hours: a span of an hour or more inside a run holds some of its activity.
#[derive(Clone)]
struct Seen {
    ip: String,
    first: i64,
    last: i64,
    before: i64,
}

impl Seen {
    fn new(ip: &str, t: i64) -> Seen {
        Seen {
            ip: ip.to_owned(),
            first: t,
            last: t,
            before: i64::MIN,
        }
    }

    fn observe(&mut self, t: i64) {
        if t > self.last {
            if t - self.last > SESSION_MS {
                self.before = self.last;
                self.first = t;
            }
            self.last = t;
        } else if t < self.first {
            // Out of time order (rare: the driver replays sorted events).
            if self.first - t <= SESSION_MS {
                self.first = t;
            } else {
                self.before = self.before.max(t);
            }
        }
    }

    /// Any activity in `from..=to`.
    fn active_within(&self, from: i64, to: i64) -> bool {
        (self.before >= from && self.before <= to) || (self.first <= to && self.last >= from)
    }
}

const MAX_IDENTITIES: usize = 2_000_000;

#[derive(Clone, Default)]
pub(crate) struct IpHistory {
    /// Identity → its IPs.
    seen: StateMap<String, Vec<Seen>>,
}

impl IpHistory {
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_new(&self, identity: &str, ip: &str, t: i64, lookback_ms: i64) -> bool {
        let (from, to) = (t.saturating_sub(lookback_ms), t.saturating_sub(SESSION_MS));
        !self
            .seen
            .get(identity)
            .is_some_and(|v| v.iter().any(|s| s.ip == ip && s.active_within(from, to)))
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
        if let Some(e) = v.iter_mut().find(|s| s.ip == ip) {
            e.observe(t);
            return;
        }
        if v.len() >= MAX_IPS_PER_IDENTITY
            && let Some(pos) = v
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.last.cmp(&b.1.last).then_with(|| a.1.ip.cmp(&b.1.ip)))
                .map(|(i, _)| i)
        {
            v.swap_remove(pos);
        }
        v.push(Seen::new(ip, t));
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
            v.retain(|s| s.last >= cut);
            !v.is_empty()
        });
        trim_oldest(&mut self.seen, MAX_IDENTITIES, |v| {
            v.iter().map(|s| s.last).max().unwrap_or(i64::MIN)
        });
    }
}
