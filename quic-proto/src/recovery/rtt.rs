//! RTT estimation (RFC 9002 §5, Appendix A.7).

use core::time::Duration;

use crate::time::Instant;

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2
//# When no previous RTT is available, the initial RTT SHOULD be set to 333 milliseconds.
/// kInitialRtt: the RTT assumed before the first sample (RFC 9002 §6.2.2).
pub const INITIAL_RTT: Duration = Duration::from_millis(333);

/// kGranularity: the timer granularity (RFC 9002 §6.1.2, recommended 1 ms).
pub const GRANULARITY: Duration = Duration::from_millis(1);

/// One path's RTT estimate: latest, minimum, smoothed and variation.
///
/// Congestion controllers and loss detection read it; only
/// [`RttEstimator::update`] changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttEstimator {
    latest_rtt: Duration,
    min_rtt: Duration,
    smoothed_rtt: Duration,
    rttvar: Duration,
    first_sample: Option<Instant>,
}

impl RttEstimator {
    /// An estimator that assumes `initial_rtt` until the first sample
    /// (RFC 9002 §5.3: smoothed_rtt = kInitialRtt, rttvar = kInitialRtt / 2).
    pub fn new(initial_rtt: Duration) -> Self {
        Self {
            latest_rtt: initial_rtt,
            min_rtt: initial_rtt,
            smoothed_rtt: initial_rtt,
            rttvar: initial_rtt / 2,
            first_sample: None,
        }
    }

    /// The most recent RTT sample (`initial_rtt` before any).
    pub fn latest_rtt(&self) -> Duration {
        self.latest_rtt
    }

    /// The minimum RTT seen, ignoring ACK delays (`initial_rtt` before any sample).
    pub fn min_rtt(&self) -> Duration {
        self.min_rtt
    }

    /// The smoothed RTT.
    pub fn smoothed_rtt(&self) -> Duration {
        self.smoothed_rtt
    }

    /// The RTT variation.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// When the first sample was taken, if one was.
    pub fn first_sample_time(&self) -> Option<Instant> {
        self.first_sample
    }

    /// Whether at least one RTT sample has been taken.
    pub fn has_sample(&self) -> bool {
        self.first_sample.is_some()
    }

    /// The PTO period without max_ack_delay: smoothed_rtt + max(4 * rttvar,
    /// kGranularity) (RFC 9002 §6.2.1). The caller adds max_ack_delay in the
    /// application data space.
    pub fn pto_base(&self) -> Duration {
        self.smoothed_rtt + (4 * self.rttvar).max(GRANULARITY)
    }

    /// The time-threshold loss delay: max(kTimeThreshold * max(smoothed_rtt,
    /// latest_rtt), kGranularity), with kTimeThreshold = 9/8 (RFC 9002 §6.1.2).
    pub fn loss_delay(&self) -> Duration {
        (self.smoothed_rtt.max(self.latest_rtt) * 9 / 8).max(GRANULARITY)
    }

    /// Takes an RTT sample: `latest_rtt` measured locally for the largest
    /// newly acknowledged, ack-eliciting packet, and the peer's reported
    /// `ack_delay`. After handshake confirmation the delay is capped at the
    /// peer's `max_ack_delay` (pass `None` before).
    ///
    /// The caller decides whether an ACK yields a sample at all (RFC 9002
    /// §5.1: only when the largest acknowledged is newly acknowledged and an
    /// ack-eliciting packet is newly acknowledged).
    pub fn update(
        &mut self,
        now: Instant,
        latest_rtt: Duration,
        ack_delay: Duration,
        max_ack_delay: Option<Duration>,
    ) {
        self.latest_rtt = latest_rtt;
        //= https://www.rfc-editor.org/rfc/rfc9002#section-5.2
        //# min_rtt MUST be set to the latest_rtt on the first RTT sample. min_rtt MUST be
        //# set to the lesser of min_rtt and latest_rtt ({{latest-rtt}}) on all other
        //# samples.
        if self.first_sample.is_none() {
            self.first_sample = Some(now);
            self.min_rtt = latest_rtt;
            self.smoothed_rtt = latest_rtt;
            self.rttvar = latest_rtt / 2;
            return;
        }
        self.min_rtt = self.min_rtt.min(latest_rtt);

        //= https://www.rfc-editor.org/rfc/rfc9002#section-5.3
        //# - MUST use the lesser of the acknowledgment delay and the peer's max_ack_delay
        //#   after the handshake is confirmed; and
        let ack_delay = match max_ack_delay {
            Some(max) => ack_delay.min(max),
            None => ack_delay,
        };
        //= https://www.rfc-editor.org/rfc/rfc9002#section-5.3
        //# - MUST NOT subtract the acknowledgment delay from the RTT sample if the
        //#   resulting value is smaller than the min_rtt.
        let adjusted = if latest_rtt >= self.min_rtt + ack_delay {
            latest_rtt - ack_delay
        } else {
            latest_rtt
        };
        // Appendix A.7's order (as RFC 6298): rttvar from the old smoothed_rtt.
        let deviation = self.smoothed_rtt.abs_diff(adjusted);
        self.rttvar = (self.rttvar * 3 + deviation) / 4;
        self.smoothed_rtt = (self.smoothed_rtt * 7 + adjusted) / 8;
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-5.2
    //# Endpoints SHOULD set the min_rtt to the newest RTT sample after persistent
    //# congestion is established.
    /// Resets min_rtt to the latest sample, after persistent congestion.
    pub fn reset_min_rtt(&mut self) {
        self.min_rtt = self.latest_rtt;
    }
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new(INITIAL_RTT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_sample_resets_the_estimator() {
        let mut rtt = RttEstimator::default();
        assert_eq!((rtt.smoothed_rtt(), rtt.rttvar()), (333 * MS, Duration::from_micros(166_500)));
        rtt.update(Instant::from_millis(100), 100 * MS, 50 * MS, None);
        assert_eq!(
            (rtt.min_rtt(), rtt.smoothed_rtt(), rtt.rttvar()),
            (100 * MS, 100 * MS, 50 * MS)
        );
        assert!(rtt.has_sample());
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-5.3
    //= type=test
    //# - MUST NOT subtract the acknowledgment delay from the RTT sample if the
    //#   resulting value is smaller than the min_rtt.
    #[test]
    fn ack_delay_is_capped_and_never_pushes_below_min_rtt() {
        let mut rtt = RttEstimator::default();
        rtt.update(Instant::ZERO, 100 * MS, Duration::ZERO, None);
        // 120 ms sample with a 30 ms delay capped to max_ack_delay 10 ms: adjusted 110 ms.
        rtt.update(Instant::ZERO, 120 * MS, 30 * MS, Some(10 * MS));
        assert_eq!(rtt.rttvar(), (50 * MS * 3 + 10 * MS) / 4);
        assert_eq!(rtt.smoothed_rtt(), (100 * MS * 7 + 110 * MS) / 8);
        // A delay that would take the sample under min_rtt is ignored.
        let before = rtt;
        rtt.update(Instant::ZERO, 105 * MS, 20 * MS, None);
        assert_eq!(rtt.smoothed_rtt(), (before.smoothed_rtt() * 7 + 105 * MS) / 8);
        assert_eq!(rtt.min_rtt(), 100 * MS);
        rtt.update(Instant::ZERO, 80 * MS, Duration::ZERO, None);
        assert_eq!(rtt.min_rtt(), 80 * MS);
    }

    #[test]
    fn pto_and_loss_delay() {
        let mut rtt = RttEstimator::default();
        rtt.update(Instant::ZERO, 80 * MS, Duration::ZERO, None);
        assert_eq!(rtt.pto_base(), 80 * MS + 4 * 40 * MS);
        assert_eq!(rtt.loss_delay(), 90 * MS);
        let mut tiny = RttEstimator::new(Duration::from_micros(10));
        tiny.update(Instant::ZERO, Duration::from_micros(10), Duration::ZERO, None);
        assert_eq!(tiny.loss_delay(), GRANULARITY);
        assert_eq!(tiny.pto_base(), Duration::from_micros(10) + GRANULARITY);
    }
}
