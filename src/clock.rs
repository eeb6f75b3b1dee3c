//! The clocks the hit path checks expiry against.
//!
//! The scheduler that refreshes and retires tokens runs only while its runtime is driven; a
//! runtime kept around and driven only by `block_on(source.token())`, a suspended laptop or
//! VM, or a stalled executor must still never get an expired token. So every hit checks the
//! token's expiry itself, on two clocks:
//!
//! * wall time, which keeps counting while the machine is suspended (Linux's
//!   `CLOCK_MONOTONIC`, and so `Instant`, stops during suspend while the token's real
//!   lifetime does not), and
//! * monotonic time, which a wall clock stepped backwards cannot fool.
//!
//! A token is served only while both say it is valid. On Linux both are the *coarse*
//! clocks (`CLOCK_REALTIME_COARSE`, `CLOCK_MONOTONIC_COARSE`): a read from the vDSO page, a few
//! nanoseconds, where a precise clock read costs ~26 ns on the VMs we measured
//! (docs/benchmarks.md). They tick every 1–10 ms, so expiry is judged [`MARGIN`] early.
//! Elsewhere the precise std clocks are used.

use std::time::Duration;

/// How much earlier than its real expiry a token stops being served: covers the coarse
/// clocks' tick (at most 10 ms at HZ=100) with room to spare.
pub(crate) const MARGIN: Duration = Duration::from_millis(20);

/// A token's expiry on both clocks, in milliseconds since each clock's epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expiry {
    wall_ms: u64,
    monotonic_ms: u64,
}

impl Expiry {
    /// The expiry `remaining` from now, less [`MARGIN`].
    pub(crate) fn after(remaining: Duration) -> Self {
        let remaining = remaining.saturating_sub(MARGIN);
        let remaining_ms = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
        let (wall_ms, monotonic_ms) = now_ms();
        Self {
            wall_ms: wall_ms.saturating_add(remaining_ms),
            monotonic_ms: monotonic_ms.saturating_add(remaining_ms),
        }
    }

    /// Already expired: for a token that must not be served at all.
    pub(crate) const EXPIRED: Self = Self {
        wall_ms: 0,
        monotonic_ms: 0,
    };

    /// Whether both clocks are still before the expiry.
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        let (wall_ms, monotonic_ms) = now_ms();
        wall_ms < self.wall_ms && monotonic_ms < self.monotonic_ms
    }
}

/// Wall-clock milliseconds since the Unix epoch on the coarse clock: for comparing with a
/// JWT's `exp` on a validator's hot path.
#[cfg(feature = "validate")]
#[inline]
pub(crate) fn wall_ms() -> u64 {
    now_ms().0
}

/// (wall, monotonic) milliseconds.
#[cfg(target_os = "linux")]
#[inline]
fn now_ms() -> (u64, u64) {
    use rustix::time::{clock_gettime, ClockId};
    let ms = |t: rustix::time::Timespec| {
        u64::try_from(t.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1000)
            .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000_000)
    };
    (
        ms(clock_gettime(ClockId::RealtimeCoarse)),
        ms(clock_gettime(ClockId::MonotonicCoarse)),
    )
}

/// (wall, monotonic) milliseconds. Elsewhere than Linux: the precise std clocks, the
/// monotonic one counted from the `UNIX_EPOCH`-anchored wall reading of the first call is not
/// possible without state, so it is measured from an `Instant` taken when the cache module
/// first needed one (a clock, not state anything depends on).
#[cfg(not(target_os = "linux"))]
#[inline]
fn now_ms() -> (u64, u64) {
    use std::sync::OnceLock;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let monotonic = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    (wall, monotonic.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_judged_early_and_on_both_clocks() {
        assert!(Expiry::after(Duration::from_secs(60)).is_live());
        assert!(!Expiry::after(MARGIN).is_live(), "the margin is taken off");
        assert!(!Expiry::after(Duration::ZERO).is_live());
        assert!(!Expiry::EXPIRED.is_live());
        assert!(
            Expiry::after(Duration::MAX).is_live(),
            "saturates instead of overflowing"
        );
        let wall_only = Expiry {
            wall_ms: u64::MAX,
            monotonic_ms: 0,
        };
        assert!(!wall_only.is_live(), "a wall clock set back cannot extend a token");
        let monotonic_only = Expiry {
            wall_ms: 0,
            monotonic_ms: u64::MAX,
        };
        assert!(!monotonic_only.is_live(), "time spent suspended counts");
    }

    #[test]
    fn coarse_clocks_advance() {
        let (wall, monotonic) = now_ms();
        std::thread::sleep(Duration::from_millis(30));
        let (wall_later, monotonic_later) = now_ms();
        assert!(wall_later >= wall + 20 && monotonic_later >= monotonic + 20);
    }
}
