//! Poll-window arithmetic shared by the time-windowed collectors (Graph sign-ins, CloudTrail
//! LookupEvents), in epoch ms: re-basing a checkpoint found ahead of the host clock, and the band
//! the late sweep reads behind the lookback. The collectors keep the I/O; README ("What could
//! otherwise fall behind unseen") says what each is for.

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
