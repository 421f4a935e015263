//! A token-bucket pacer (RFC 9002 §7.7): spreads a window's worth of
//! packets over a round trip instead of sending them in one burst.
//!
//! The bucket holds bytes. It fills at `N * congestion_window /
//! smoothed_rtt` with N = 1.25, and holds at most a configurable number of
//! full-size datagrams (the burst allowance). Refills are computed in exact
//! integer arithmetic, keeping the fraction of a byte that a refill leaves
//! over, so a long run sends at the configured rate with no drift from
//! rounding.

use core::time::Duration;

use crate::time::Instant;

//= https://www.rfc-editor.org/rfc/rfc9002#section-7.7
//# Using a value for `N` that is small, but at least 1 (for example, 1.25) ensures
//# that variations in RTT do not result in underutilization of the
//# congestion window.
/// N = 1.25 as a ratio, so the rate stays an exact fraction.
const PACING_GAIN_NUM: u128 = 5;
const PACING_GAIN_DEN: u128 = 4;

/// The default burst allowance in datagrams: ten full-size datagrams, the
/// RFC 9002 §7.2 initial window for 1200-byte datagrams, which is the burst
/// limit RFC 9002 §7.7 suggests.
pub const DEFAULT_BURST_DATAGRAMS: u64 = 10;

/// The rate inputs of the last [`Pacer::delay`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Params {
    cwnd: u64,
    rtt_nanos: u128,
    mtu: u64,
}

/// A token-bucket pacer for one path.
///
/// Before sending an in-flight packet the connection asks [`Pacer::delay`]
/// when it may go; after sending it, it reports the packet with
/// [`Pacer::on_sent`]. Packets that carry only ACK frames are not paced
/// (RFC 9002 §7.7) and need not be reported.
#[derive(Clone, Debug)]
pub struct Pacer {
    burst_datagrams: u64,
    /// Whole bytes in the bucket as of `last`.
    tokens: u64,
    /// The fraction of a byte earned but not yet credited, as a numerator
    /// over `PACING_GAIN_DEN * rtt_nanos`: always below that denominator.
    remainder: u128,
    last: Option<Instant>,
    params: Option<Params>,
}

impl Pacer {
    /// A pacer whose bucket holds at most `burst_datagrams` full-size
    /// datagrams (at least one). The bucket starts full.
    pub fn new(burst_datagrams: u64) -> Self {
        Self {
            burst_datagrams: burst_datagrams.max(1),
            // Full: clamped to the capacity once the MTU is known.
            tokens: u64::MAX,
            remainder: 0,
            last: None,
            params: None,
        }
    }

    /// The burst allowance, in datagrams.
    pub fn burst_datagrams(&self) -> u64 {
        self.burst_datagrams
    }

    /// When a packet of `bytes` may be sent: `None` means now, `Some(t)`
    /// means not before `t` (the connection arms a timer for it).
    ///
    /// `cwnd` is the congestion window, `smoothed_rtt` the path's smoothed
    /// RTT and `mtu` its maximum datagram size; they may change between
    /// calls and take effect from `now` on (bytes earned before `now` were
    /// earned at the old rate). A zero RTT or window disables pacing: the
    /// congestion window alone limits sending then. A packet larger than the
    /// bucket may go once the bucket is full.
    pub fn delay(
        &mut self,
        now: Instant,
        bytes: u64,
        cwnd: u64,
        smoothed_rtt: Duration,
        mtu: u64,
    ) -> Option<Instant> {
        self.refill(now);
        let params = Params { cwnd, rtt_nanos: smoothed_rtt.as_nanos(), mtu };
        if self.params.is_some_and(|old| old.rtt_nanos != params.rtt_nanos) {
            // The remainder is a fraction over the old RTT; dropping it loses
            // less than one byte per RTT change.
            self.remainder = 0;
        }
        self.params = Some(params);
        let capacity = self.capacity(params);
        self.tokens = self.tokens.min(capacity);
        if params.cwnd == 0 || params.rtt_nanos == 0 {
            return None;
        }

        let needed = bytes.min(capacity);
        if self.tokens >= needed {
            return None;
        }
        // Time until the refill numerator reaches (needed - tokens) whole
        // bytes, rounded up so the packet is never early; the rounding
        // stays in `remainder`, it is not lost.
        let deficit = u128::from(needed - self.tokens);
        let numerator = (deficit * PACING_GAIN_DEN)
            .saturating_mul(params.rtt_nanos)
            .saturating_sub(self.remainder);
        let per_nano = PACING_GAIN_NUM * u128::from(params.cwnd);
        let nanos = numerator.div_ceil(per_nano);
        let wait = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        Some(now + wait)
    }

    /// An in-flight packet of `bytes` was sent at `now`: takes its bytes
    /// from the bucket. A packet sent without waiting for [`Pacer::delay`]
    /// (a probe, say) empties the bucket rather than running into debt.
    pub fn on_sent(&mut self, now: Instant, bytes: u64) {
        self.refill(now);
        self.tokens = self.tokens.saturating_sub(bytes);
    }

    fn capacity(&self, params: Params) -> u64 {
        self.burst_datagrams.saturating_mul(params.mtu).max(params.mtu)
    }

    /// Credits the bytes earned from `last` to `now` at the current rate.
    fn refill(&mut self, now: Instant) {
        let last = self.last.replace(now);
        let (Some(last), Some(params)) = (last, self.params) else {
            return;
        };
        let capacity = self.capacity(params);
        if params.rtt_nanos == 0 || params.cwnd == 0 {
            self.tokens = capacity;
            self.remainder = 0;
            return;
        }
        let elapsed = now.saturating_duration_since(last).as_nanos();
        let denominator = PACING_GAIN_DEN * params.rtt_nanos;
        let numerator = elapsed
            .saturating_mul(PACING_GAIN_NUM * u128::from(params.cwnd))
            .saturating_add(self.remainder);
        let earned = numerator / denominator;
        let room = u128::from(capacity.saturating_sub(self.tokens));
        if earned >= room {
            // A full bucket earns nothing more: that is the burst cap.
            self.tokens = self.tokens.max(capacity);
            self.remainder = 0;
        } else {
            self.tokens += earned as u64;
            self.remainder = numerator % denominator;
        }
    }
}

impl Default for Pacer {
    /// A pacer with [`DEFAULT_BURST_DATAGRAMS`].
    fn default() -> Self {
        Self::new(DEFAULT_BURST_DATAGRAMS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MTU: u64 = 1200;
    const MICRO: Duration = Duration::from_micros(1);

    /// Sends `packet`-byte packets as fast as the pacer allows from `start`
    /// until `end`; returns the bytes sent and the time of the last send.
    fn run(
        pacer: &mut Pacer,
        start: Instant,
        end: Instant,
        packet: u64,
        cwnd: u64,
        rtt: Duration,
    ) -> (u64, Instant) {
        let mut now = start;
        let mut sent = 0;
        loop {
            if let Some(t) = pacer.delay(now, packet, cwnd, rtt, MTU) {
                assert!(t > now);
                now = t;
            }
            if now > end {
                return (sent, now);
            }
            pacer.on_sent(now, packet);
            sent += packet;
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.7
    //= type=test
    //# A sender SHOULD pace sending of all in-flight packets based on input from the
    //# congestion controller.
    #[test]
    fn steady_state_rate_is_five_quarters_cwnd_per_rtt() {
        for (cwnd, rtt_nanos, packet) in [
            (120_000u64, 100_000_000u64, 1200u64),
            (77_777, 33_333_337, 1199),
            (2400, 1_000_001, 1200),
            (10_000_000, 250_000_000, 1200),
        ] {
            let rtt = Duration::from_nanos(rtt_nanos);
            let mut pacer = Pacer::default();
            let start = Instant::from_millis(1);
            let end = start + Duration::from_secs(100);
            let (sent, _) = run(&mut pacer, start, end, packet, cwnd, rtt);
            let burst = DEFAULT_BURST_DATAGRAMS * MTU;
            let expected = 5 * u128::from(cwnd) * 100_000_000_000 / (4 * u128::from(rtt_nanos));
            let paced = u128::from(sent - burst.min(sent));
            // Within 1%, as required; in fact within a packet, since no
            // rounding error accumulates.
            let diff = paced.abs_diff(expected);
            assert!(diff * 100 <= expected, "cwnd {cwnd}: {paced} vs {expected}");
            assert!(diff <= 2 * u128::from(packet), "cwnd {cwnd}: {paced} vs {expected}");
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.7
    //= type=test
    //# Senders MUST
    //# either use pacing or limit such bursts.
    #[test]
    fn bursts_are_capped_after_idle() {
        let rtt = Duration::from_millis(100);
        let mut pacer = Pacer::new(4);
        let mut now = Instant::ZERO;
        // The bucket starts full: four datagrams go at once, the fifth waits.
        for _ in 0..4 {
            assert_eq!(pacer.delay(now, MTU, 120_000, rtt, MTU), None);
            pacer.on_sent(now, MTU);
        }
        let next = pacer.delay(now, MTU, 120_000, rtt, MTU).unwrap();
        // 1200 bytes at 1.5 MB/s: 800 us.
        assert_eq!(next - now, Duration::from_micros(800));
        // After a long idle period, still only four.
        now += Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(pacer.delay(now, MTU, 120_000, rtt, MTU), None);
            pacer.on_sent(now, MTU);
        }
        assert!(pacer.delay(now, MTU, 120_000, rtt, MTU).is_some());
        // A packet larger than the bucket goes once the bucket is full.
        assert!(pacer.delay(now, 100_000, 120_000, rtt, MTU).unwrap() - now <= 4 * 800 * MICRO);
        now += Duration::from_secs(1);
        assert_eq!(pacer.delay(now, 100_000, 120_000, rtt, MTU), None);
    }

    #[test]
    fn rate_follows_rtt_and_cwnd_changes() {
        let mut pacer = Pacer::new(1);
        let start = Instant::from_millis(1000);
        let rtt = Duration::from_millis(100);
        let (a, t) = run(&mut pacer, start, start + Duration::from_secs(10), MTU, 60_000, rtt);
        // Half the RTT, twice the rate.
        let (b, t) = run(&mut pacer, t, t + Duration::from_secs(10), MTU, 60_000, rtt / 2);
        // Then double the window too.
        let (c, _) = run(&mut pacer, t, t + Duration::from_secs(10), MTU, 120_000, rtt / 2);
        assert!(a.abs_diff(7_500_000) <= 2 * MTU, "{a}");
        assert!(b.abs_diff(15_000_000) <= 2 * MTU, "{b}");
        assert!(c.abs_diff(30_000_000) <= 2 * MTU, "{c}");
        // A smaller MTU shrinks the bucket.
        let mut pacer = Pacer::new(2);
        assert_eq!(pacer.delay(Instant::ZERO, 1500, 60_000, rtt, 1500), None);
        for _ in 0..2 {
            assert_eq!(pacer.delay(Instant::ZERO, 1000, 60_000, rtt, 1000), None);
            pacer.on_sent(Instant::ZERO, 1000);
        }
        // 1000 bytes at 750 kB/s.
        let next = pacer.delay(Instant::ZERO, 1000, 60_000, rtt, 1000);
        assert_eq!(next, Some(Instant::ZERO + 1333 * MICRO + Duration::from_nanos(334)));
    }

    #[test]
    fn zero_rtt_or_window_disables_pacing() {
        let mut pacer = Pacer::new(1);
        for _ in 0..100 {
            assert_eq!(pacer.delay(Instant::ZERO, MTU, 12_000, Duration::ZERO, MTU), None);
            pacer.on_sent(Instant::ZERO, MTU);
        }
        assert_eq!(pacer.delay(Instant::ZERO, MTU, 0, Duration::from_millis(1), MTU), None);
        // Extreme values saturate rather than overflow.
        let mut pacer = Pacer::new(u64::MAX);
        pacer.on_sent(Instant::ZERO, u64::MAX);
        let t = pacer.delay(Instant::from_nanos(u64::MAX), u64::MAX, 1, Duration::MAX, u64::MAX);
        assert_eq!(t, Some(Instant::from_nanos(u64::MAX)));
    }
}
