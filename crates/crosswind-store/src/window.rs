//! Poll-window arithmetic shared by the time-windowed collectors (Graph sign-ins, CloudTrail
//! LookupEvents), in epoch ms: re-basing a checkpoint found ahead of the host clock, and the band
//! the late sweep reads behind the lookback. The collectors keep the I/O; README ("What could
//! otherwise fall behind unseen") says what each is for.

use crate::{Result, Store};

/// Where a collector whose checkpoint is later than `now` (the host clock ran fast, then was set
/// back) takes up again: the newest event time it had collected (the source's clock, so what it
/// had really read), at least `now - initial_backfill` (as far as a first poll reads), at most
/// `now`.
pub fn rebased(newest_collected: Option<i64>, now: i64, initial_backfill: i64) -> i64 {
    let floor = now.saturating_sub(initial_backfill);
    newest_collected.map_or(floor, |t| t.max(floor)).min(now)
}

/// What the late sweep does in this poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Nothing swept yet (or the window moved back): remember this as swept.
    Start(i64),
    /// Less than a lookback to sweep yet.
    Wait,
    /// Read `[from, to]` once more; then `to` is swept.
    Read { from: i64, to: i64 },
}

/// The band behind a poll's window (`window_start`) to read again: it ends a lookback behind the
/// window, so every record in it has had at least two lookbacks to arrive, and spans at most two
/// lookbacks (a wider gap, a stopped daemon, was just read by the window that caught up).
pub fn sweep(swept: Option<i64>, window_start: i64, lookback: i64) -> Sweep {
    let to = window_start.saturating_sub(lookback);
    match swept {
        Some(t) if t <= window_start => {
            let from = t.max(to.saturating_sub(lookback.saturating_mul(2)));
            if to.saturating_sub(from) < lookback.max(1_000) {
                Sweep::Wait
            } else {
                Sweep::Read { from, to }
            }
        }
        _ => Sweep::Start(window_start),
    }
}

/// One scope's late sweep for this poll, planned from its checkpoints by [`plan_late_sweep`]:
/// the band to read again and the checkpoints that close it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateSweep {
    /// The band, epoch ms.
    pub from: i64,
    pub to: i64,
    swept_name: String,
    total_name: String,
    total_before: u64,
}

impl LateSweep {
    /// The checkpoints committed with the band's last page: the band is swept, and the
    /// collector's count of records that arrived too late grows by `found`.
    pub fn closing(&self, found: u64) -> Vec<(String, String)> {
        vec![
            (self.swept_name.clone(), checkpoint_time(self.to)),
            (
                self.total_name.clone(),
                (self.total_before + found).to_string(),
            ),
        ]
    }
}

/// Plans the late sweep of one scope (a Graph collector, a LookupEvents region) whose swept
/// position is checkpoint `swept_name` and whose too-late total is `total_name`. `None` when
/// there is nothing to read this poll; a first sweep only records `window_start` as swept.
pub fn plan_late_sweep(
    store: &mut Store,
    swept_name: &str,
    total_name: &str,
    window_start: i64,
    lookback_secs: u64,
) -> Result<Option<LateSweep>> {
    let swept = store
        .checkpoint(swept_name)?
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c.value).ok())
        .map(|t| t.timestamp_millis());
    let lookback = (lookback_secs.min(i64::MAX as u64 / 4_000) * 1_000) as i64;
    let (from, to) = match sweep(swept, window_start, lookback) {
        Sweep::Read { from, to } => (from, to),
        Sweep::Wait => return Ok(None),
        Sweep::Start(at) => {
            let mut b = store.begin()?;
            b.set_checkpoint(swept_name, &checkpoint_time(at))?;
            b.commit()?;
            return Ok(None);
        }
    };
    let total_before = store
        .checkpoint(total_name)?
        .and_then(|c| c.value.parse().ok())
        .unwrap_or(0);
    Ok(Some(LateSweep {
        from,
        to,
        swept_name: swept_name.to_owned(),
        total_name: total_name.to_owned(),
        total_before,
    }))
}

/// Epoch ms as the collectors write checkpoint times (RFC 3339, whole seconds, `Z`).
fn checkpoint_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn rebased_is_the_newest_collected_within_bounds() {
        let now = 1_000 * MIN;
        assert_eq!(rebased(Some(900 * MIN), now, 600 * MIN), 900 * MIN);
        assert_eq!(rebased(Some(100 * MIN), now, 600 * MIN), 400 * MIN);
        assert_eq!(rebased(Some(2_000 * MIN), now, 600 * MIN), now);
        assert_eq!(rebased(None, now, 600 * MIN), 400 * MIN);
    }

    #[test]
    fn sweep_bands() {
        let l = 30 * MIN;
        assert_eq!(sweep(None, 100 * MIN, l), Sweep::Start(100 * MIN));
        assert_eq!(
            sweep(Some(200 * MIN), 100 * MIN, l),
            Sweep::Start(100 * MIN)
        );
        assert_eq!(sweep(Some(100 * MIN), 150 * MIN, l), Sweep::Wait);
        assert_eq!(
            sweep(Some(100 * MIN), 160 * MIN, l),
            Sweep::Read {
                from: 100 * MIN,
                to: 130 * MIN
            }
        );
        // After a long stop: at most two lookbacks.
        assert_eq!(
            sweep(Some(100 * MIN), 1_000 * MIN, l),
            Sweep::Read {
                from: 910 * MIN,
                to: 970 * MIN
            }
        );
    }
}
