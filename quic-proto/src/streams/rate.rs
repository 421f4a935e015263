//! A token bucket over injected time: the rate limit on stream aborts a
//! peer may cause (RESET_STREAM, STOP_SENDING; RFC 9000 §21.9).
//!
//! A lifetime count would close a long, healthy connection once it had
//! seen enough aborts; a rate only closes one whose peer keeps aborting
//! faster than any real application does (DESIGN.md, "Hostile input":
//! counters that limit abuse are rates, not lifetime totals).

use crate::time::Instant;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Allows `burst` events at once and `per_second` events per second
/// sustained. Integer arithmetic only: a recorded run replays exactly.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    per_second: u64,
    burst: u64,
    /// Tokens, in units of 1/10^9 token (so that refills of a few
    /// nanoseconds are not rounded away). At most `burst * 10^9`.
    level: u128,
    /// When `level` was last brought up to date; `None` before the first
    /// event (the bucket starts full).
    updated: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket. `per_second == 0` makes `burst` a lifetime total;
    /// `u64::MAX` for both never refuses.
    pub fn new(per_second: u64, burst: u64) -> Self {
        Self { per_second, burst, level: u128::from(burst) * NANOS_PER_SEC, updated: None }
    }

    /// Takes one token at `now`; `false` if the bucket is empty (the event
    /// exceeds the rate). Time going backwards refills nothing.
    pub fn take(&mut self, now: Instant) -> bool {
        let cap = u128::from(self.burst) * NANOS_PER_SEC;
        if let Some(updated) = self.updated {
            let elapsed = u128::from(now.as_nanos().saturating_sub(updated.as_nanos()));
            let refill = elapsed.saturating_mul(u128::from(self.per_second));
            self.level = self.level.saturating_add(refill).min(cap);
        }
        self.updated = Some(self.updated.map_or(now, |u| u.max(now)));
        if self.level < NANOS_PER_SEC {
            return false;
        }
        self.level -= NANOS_PER_SEC;
        true
    }

    /// Whole tokens left as of the last [`take`](Self::take).
    pub fn available(&self) -> u64 {
        u64::try_from(self.level / NANOS_PER_SEC).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = TokenBucket::new(10, 5);
        assert!((0..5).all(|_| b.take(ms(0))));
        assert!(!b.take(ms(0)));
        // 10 per second: one token per 100 ms, fractions kept.
        assert!(!b.take(ms(99)));
        assert!(b.take(ms(100)));
        assert!(!b.take(ms(150)));
        assert!(b.take(ms(200)));
        // A long pause refills up to the burst and no further.
        assert!((0..5).all(|_| b.take(ms(60_000))));
        assert!(!b.take(ms(60_000)));
    }

    #[test]
    fn refused_events_cost_nothing() {
        let mut b = TokenBucket::new(1, 1);
        assert!(b.take(ms(0)));
        assert!((0..1000).all(|_| !b.take(ms(500))));
        assert!(b.take(ms(1000)));
    }

    #[test]
    fn sustained_below_the_rate_never_refuses() {
        let mut b = TokenBucket::new(1000, 10);
        // 999 per second for an hour.
        assert!((0..3_600_000u64).all(|i| b.take(Instant::from_nanos(i * 1_001_002))));
    }

    #[test]
    fn time_going_backwards_and_extremes_are_safe() {
        let mut b = TokenBucket::new(u64::MAX, u64::MAX);
        assert!(b.take(Instant::from_nanos(u64::MAX)));
        assert!(b.take(ms(0)));
        assert!(b.take(Instant::from_nanos(u64::MAX)));
        let mut b = TokenBucket::new(0, 2);
        assert!(b.take(ms(5)) && b.take(ms(0)) && !b.take(ms(1_000_000)));
        assert_eq!(b.available(), 0);
    }
}
