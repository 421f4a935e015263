//! NewReno congestion control (RFC 9002 §7 and Appendix B): slow start,
//! congestion avoidance, one window reduction per recovery period, and the
//! collapse to the minimum window on persistent congestion.
//!
//! The names follow the Appendix B pseudocode (`congestion_window`,
//! `ssthresh`, `congestion_recovery_start_time`, `in_congestion_recovery`) so
//! the code can be read against the RFC line by line. Deliberate deviations:
//!
//! - `congestion_recovery_start_time` is an `Option`, not the pseudocode's
//!   `0`: with a driver whose epoch is the connection start, a packet sent at
//!   `Instant::ZERO` would otherwise count as sent in a recovery period that
//!   never began.
//! - Congestion avoidance keeps the remainder of the integer division
//!   `max_datagram_size * acked / congestion_window` (RFC 9002 Appendix B.5
//!   points to RFC 3465 §2.1 for this), so many small acknowledgments grow
//!   the window exactly as much as one large one.

use crate::congestion::{CongestionState, Controller, ControllerFactory};
use crate::recovery::RttEstimator;
use crate::time::Instant;

/// The smallest maximum datagram size QUIC allows (RFC 9000 §14): every
/// window computation assumes at least this, so a window is never zero.
const MIN_MAX_DATAGRAM_SIZE: u64 = 1200;

/// kLossReductionFactor = 0.5, as a numerator and denominator so the window
/// stays an integer (RFC 9002 §7.3.2, Appendix B.1).
const LOSS_REDUCTION_NUM: u64 = 1;
const LOSS_REDUCTION_DEN: u64 = 2;

/// The RFC 9002 §7.2 initial window for `max_datagram_size`:
/// min(10 * max_datagram_size, max(14720, 2 * max_datagram_size)).
//= https://www.rfc-editor.org/rfc/rfc9002#section-7.2
//# Endpoints SHOULD use an initial congestion window of ten times
//# the maximum datagram size (max_datagram_size), while limiting the window to the
//# larger of 14,720 bytes or twice the maximum datagram size.
pub fn initial_window(max_datagram_size: u64) -> u64 {
    let mds = max_datagram_size.max(MIN_MAX_DATAGRAM_SIZE);
    mds.saturating_mul(10).min(mds.saturating_mul(2).max(14_720))
}

/// kMinimumWindow for `max_datagram_size`: 2 * max_datagram_size.
//= https://www.rfc-editor.org/rfc/rfc9002#section-7.2
//# The RECOMMENDED value is 2 * max_datagram_size.
pub fn minimum_window(max_datagram_size: u64) -> u64 {
    max_datagram_size.max(MIN_MAX_DATAGRAM_SIZE).saturating_mul(2)
}

/// Configuration for [`NewReno`]; also the [`ControllerFactory`] that builds
/// one per path.
///
/// Defaults: the RFC 9002 §7.2 initial window, recomputed from each path's
/// maximum datagram size.
#[derive(Clone, Debug, Default)]
pub struct NewRenoConfig {
    initial_window: Option<u64>,
}

impl NewRenoConfig {
    /// Uses a fixed initial window of `bytes` instead of the RFC 9002 §7.2
    /// value (for example on a path known to absorb larger bursts, §7.7).
    /// A value below the minimum window is raised to it when a controller
    /// is built. The window is then not recomputed when the path's maximum
    /// datagram size changes.
    pub fn initial_window(&mut self, bytes: u64) -> &mut Self {
        self.initial_window = Some(bytes);
        self
    }
}

impl ControllerFactory for NewRenoConfig {
    fn build(&self, _now: Instant, max_datagram_size: u64) -> Box<dyn Controller> {
        Box::new(NewReno::new(self, max_datagram_size))
    }
}

/// A NewReno congestion controller for one path (RFC 9002 §7, Appendix B).
///
/// Driven through the [`Controller`] trait by the recovery layer, which
/// owns bytes_in_flight; this type only holds the window state.
#[derive(Clone, Debug)]
pub struct NewReno {
    /// A fixed initial window from the configuration, if one was set.
    configured_initial_window: Option<u64>,
    max_datagram_size: u64,
    congestion_window: u64,
    /// `u64::MAX` stands for the pseudocode's "infinite".
    ssthresh: u64,
    congestion_recovery_start_time: Option<Instant>,
    /// Whether no packet sent after `congestion_recovery_start_time` has been
    /// acknowledged yet: the "Recovery Period" state of RFC 9002 §7.3.
    in_recovery: bool,
    /// `max_datagram_size * acked_bytes` accumulated in congestion avoidance
    /// and not yet turned into window: always below `congestion_window`
    /// after an acknowledgment is processed.
    bytes_acked_credit: u64,
    /// Whether the last acknowledged packet was sent while application or
    /// flow control limited.
    app_limited: bool,
}

impl NewReno {
    /// A controller in slow start with the initial window for
    /// `max_datagram_size` (or the configured one) and an infinite ssthresh
    /// (RFC 9002 Appendix B.3).
    pub fn new(config: &NewRenoConfig, max_datagram_size: u64) -> Self {
        let max_datagram_size = max_datagram_size.max(MIN_MAX_DATAGRAM_SIZE);
        let mut this = Self {
            configured_initial_window: config.initial_window,
            max_datagram_size,
            congestion_window: 0,
            ssthresh: u64::MAX,
            congestion_recovery_start_time: None,
            in_recovery: false,
            bytes_acked_credit: 0,
            app_limited: false,
        };
        this.congestion_window = this.initial_window();
        this
    }

    /// kInitialWindow for the current maximum datagram size.
    fn initial_window(&self) -> u64 {
        match self.configured_initial_window {
            Some(w) => w.max(self.minimum_window()),
            None => initial_window(self.max_datagram_size),
        }
    }

    /// kMinimumWindow for the current maximum datagram size, in bytes.
    pub fn minimum_window(&self) -> u64 {
        minimum_window(self.max_datagram_size)
    }

    /// The maximum datagram size the window computations use.
    pub fn max_datagram_size(&self) -> u64 {
        self.max_datagram_size
    }

    /// When the current (or last) recovery period started; `None` before
    /// the first congestion event and after persistent congestion.
    pub fn congestion_recovery_start_time(&self) -> Option<Instant> {
        self.congestion_recovery_start_time
    }

    /// Whether a packet sent at `sent_time` was sent before the current
    /// recovery period began (RFC 9002 Appendix B.5 `InCongestionRecovery`):
    /// its acknowledgment does not grow the window and its loss does not
    /// reduce it again.
    pub fn in_congestion_recovery(&self, sent_time: Instant) -> bool {
        self.congestion_recovery_start_time.is_some_and(|start| sent_time <= start)
    }
}

impl Controller for NewReno {
    fn on_packet_sent(&mut self, _now: Instant, _bytes: u64) {
        // bytes_in_flight lives in the recovery layer (OnPacketSentCC only
        // adds to it); NewReno's window does not depend on sends.
    }

    fn on_packet_acked(
        &mut self,
        _now: Instant,
        sent_time: Instant,
        bytes: u64,
        app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        //= https://www.rfc-editor.org/rfc/rfc9002#section-7.3.2
        //# A recovery period ends and the sender enters congestion avoidance when a packet
        //# sent during the recovery period is acknowledged.
        if self.in_recovery && !self.in_congestion_recovery(sent_time) {
            self.in_recovery = false;
        }
        self.app_limited = app_limited;

        //= https://www.rfc-editor.org/rfc/rfc9002#section-7.8
        //# When this occurs,
        //# the congestion window SHOULD NOT be increased in either slow start or
        //# congestion avoidance.
        if app_limited {
            return;
        }
        // Do not increase congestion_window in a recovery period.
        if self.in_congestion_recovery(sent_time) {
            return;
        }
        if self.congestion_window < self.ssthresh {
            // Slow start: grow by the bytes acknowledged (Appendix B.5; like
            // the pseudocode, the last increment may overshoot ssthresh).
            self.congestion_window = self.congestion_window.saturating_add(bytes);
        } else {
            //= https://www.rfc-editor.org/rfc/rfc9002#section-7.3.3
            //# A sender in congestion avoidance uses an Additive Increase Multiplicative
            //# Decrease (AIMD) approach that MUST limit the increase to the congestion window
            //# to at most one maximum datagram size for each congestion window that is
            //# acknowledged.
            self.bytes_acked_credit = self
                .bytes_acked_credit
                .saturating_add(self.max_datagram_size.saturating_mul(bytes));
            // congestion_window >= minimum window > 0: the division is safe.
            let increase = self.bytes_acked_credit / self.congestion_window;
            self.bytes_acked_credit -= increase * self.congestion_window;
            self.congestion_window = self.congestion_window.saturating_add(increase);
        }
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent_time: Instant,
        persistent: bool,
        _lost_bytes: u64,
    ) {
        //= https://www.rfc-editor.org/rfc/rfc9002#section-7.3.2
        //# The recovery period aims to limit congestion window reduction to once per round
        //# trip. Therefore, during a recovery period, the congestion window does not change
        //# in response to new losses or increases in the ECN-CE count.
        if !self.in_congestion_recovery(sent_time) {
            //= https://www.rfc-editor.org/rfc/rfc9002#section-7.3.2
            //# On entering a recovery period, a sender MUST set the slow start threshold to
            //# half the value of the congestion window when loss is detected. The congestion
            //# window MUST be set to the reduced value of the slow start threshold before
            //# exiting the recovery period.
            // The window is reduced immediately (the MAY in the same section);
            // the connection may send one packet beyond it to speed recovery.
            self.congestion_recovery_start_time = Some(now);
            self.in_recovery = true;
            self.ssthresh = self.congestion_window / LOSS_REDUCTION_DEN * LOSS_REDUCTION_NUM;
            self.congestion_window = self.ssthresh.max(self.minimum_window());
            self.bytes_acked_credit = 0;
        }

        if persistent {
            //= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
            //# When persistent congestion is declared, the sender's congestion window MUST be
            //# reduced to the minimum congestion window (kMinimumWindow), similar to a TCP
            //# sender's response on an RTO {{RFC5681}}.
            self.congestion_window = self.minimum_window();
            // Appendix B.8 resets congestion_recovery_start_time to 0: the
            // sender is back in slow start (window below ssthresh), and any
            // later acknowledgment grows the window.
            self.congestion_recovery_start_time = None;
            self.in_recovery = false;
            self.bytes_acked_credit = 0;
        }
    }

    fn on_max_datagram_size(&mut self, max_datagram_size: u64) {
        let max_datagram_size = max_datagram_size.max(MIN_MAX_DATAGRAM_SIZE);
        let untouched =
            self.ssthresh == u64::MAX && self.congestion_window == self.initial_window();
        self.max_datagram_size = max_datagram_size;
        //= https://www.rfc-editor.org/rfc/rfc9002#section-7.2
        //# If the maximum datagram size changes during the connection, the initial
        //# congestion window SHOULD be recalculated with the new size.  If the maximum
        //# datagram size is decreased in order to complete the handshake, the
        //# congestion window SHOULD be set to the new initial congestion window.
        // A window that nothing has changed yet (no acknowledgment has grown
        // it, no loss has cut it) is still the initial window, in either
        // direction; any other keeps what it learned, within the new minimum.
        if untouched {
            self.congestion_window = self.initial_window();
        } else {
            self.congestion_window = self.congestion_window.max(self.minimum_window());
        }
    }

    fn window(&self) -> u64 {
        self.congestion_window
    }

    fn state(&self) -> CongestionState {
        if self.in_recovery {
            CongestionState::Recovery
        } else if self.app_limited {
            CongestionState::ApplicationLimited
        } else if self.congestion_window < self.ssthresh {
            CongestionState::SlowStart
        } else {
            CongestionState::CongestionAvoidance
        }
    }

    fn ssthresh(&self) -> Option<u64> {
        (self.ssthresh != u64::MAX).then_some(self.ssthresh)
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MDS: u64 = 1200;

    fn ms(x: u64) -> Instant {
        Instant::from_millis(x)
    }

    fn reno() -> NewReno {
        NewReno::new(&NewRenoConfig::default(), MDS)
    }

    fn ack(cc: &mut NewReno, now: Instant, sent: Instant, bytes: u64) {
        cc.on_packet_acked(now, sent, bytes, false, &RttEstimator::default());
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.2
    //= type=test
    //# Endpoints SHOULD use an initial congestion window of ten times
    //# the maximum datagram size (max_datagram_size), while limiting the window to the
    //# larger of 14,720 bytes or twice the maximum datagram size.
    #[test]
    fn initial_and_minimum_windows() {
        assert_eq!(initial_window(1200), 12_000);
        assert_eq!(initial_window(1472), 14_720);
        assert_eq!(initial_window(1500), 14_720);
        assert_eq!(initial_window(9000), 18_000);
        assert_eq!(minimum_window(1200), 2400);
        // A nonsensical size is treated as QUIC's minimum.
        assert_eq!(initial_window(0), 12_000);
        let cc = reno();
        assert_eq!(cc.window(), 12_000);
        assert_eq!(cc.ssthresh(), None);
        assert_eq!(cc.state(), CongestionState::SlowStart);
        let mut cfg = NewRenoConfig::default();
        assert_eq!(cfg.initial_window(100_000).build(Instant::ZERO, MDS).window(), 100_000);
        assert_eq!(cfg.initial_window(1).build(Instant::ZERO, MDS).window(), 2400);
    }

    #[test]
    fn slow_start_grows_by_bytes_acked() {
        let mut cc = reno();
        for i in 0..10 {
            ack(&mut cc, ms(100 + i), ms(i), MDS);
        }
        assert_eq!(cc.window(), 24_000);
        assert_eq!(cc.state(), CongestionState::SlowStart);
        // A packet sent at the epoch is not "in recovery" before any loss.
        ack(&mut cc, ms(200), Instant::ZERO, MDS);
        assert_eq!(cc.window(), 25_200);
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.3.3
    //= type=test
    //# A sender in congestion avoidance uses an Additive Increase Multiplicative
    //# Decrease (AIMD) approach that MUST limit the increase to the congestion window
    //# to at most one maximum datagram size for each congestion window that is
    //# acknowledged.
    #[test]
    fn congestion_avoidance_adds_one_datagram_per_window() {
        let mut cc = reno();
        cc.on_congestion_event(ms(10), ms(5), false, MDS);
        assert_eq!((cc.window(), cc.ssthresh()), (6000, Some(6000)));
        assert_eq!(cc.state(), CongestionState::Recovery);
        // A packet sent after recovery began ends it; CA from here.
        ack(&mut cc, ms(20), ms(11), 1000);
        assert_eq!(cc.state(), CongestionState::CongestionAvoidance);
        // 1200 * 1000 / 6000 = 200 exactly.
        assert_eq!(cc.window(), 6200);
        // Ack 1-byte packets: the pseudocode's integer division would add 0
        // each time; the remainder carries, so the window tracks the exact
        // real-valued growth w += 1200 / w to within a byte.
        let mut exact = 6200f64;
        for _ in 0..6200 {
            ack(&mut cc, ms(30), ms(21), 1);
            exact += 1200.0 / exact;
        }
        assert_eq!(cc.window(), 7302);
        assert!((cc.window() as f64 - exact).abs() < 1.0, "{} vs {exact}", cc.window());
        // One full window acknowledged in MDS-sized packets adds at most
        // one MDS.
        let w = cc.window();
        for _ in 0..w / MDS {
            ack(&mut cc, ms(40), ms(31), MDS);
        }
        assert!(cc.window() - w <= MDS, "grew {}", cc.window() - w);
        assert!(cc.window() - w >= MDS - 200);
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.3.2
    //= type=test
    //# The recovery period aims to limit congestion window reduction to once per round
    //# trip. Therefore, during a recovery period, the congestion window does not change
    //# in response to new losses or increases in the ECN-CE count.
    #[test]
    fn one_reduction_per_recovery_period() {
        let mut cc = reno();
        for i in 0..10 {
            ack(&mut cc, ms(100), ms(i), MDS);
        }
        assert_eq!(cc.window(), 24_000);
        cc.on_congestion_event(ms(200), ms(150), false, MDS);
        assert_eq!((cc.window(), cc.ssthresh()), (12_000, Some(12_000)));
        assert_eq!(cc.congestion_recovery_start_time(), Some(ms(200)));
        // More losses of packets sent before recovery began: no change.
        cc.on_congestion_event(ms(210), ms(160), false, MDS);
        cc.on_congestion_event(ms(220), ms(200), false, MDS);
        assert_eq!(cc.window(), 12_000);
        // Acks of packets sent before recovery began neither grow the
        // window nor end recovery.
        ack(&mut cc, ms(230), ms(199), MDS);
        assert_eq!((cc.window(), cc.state()), (12_000, CongestionState::Recovery));
        // A packet sent during recovery is acknowledged: recovery ends, and
        // that packet counts towards congestion avoidance.
        ack(&mut cc, ms(300), ms(201), MDS);
        assert_eq!(cc.state(), CongestionState::CongestionAvoidance);
        assert_eq!(cc.window(), 12_000 + MDS * MDS / 12_000);
        // A loss of a packet sent after the recovery start is a new event.
        cc.on_congestion_event(ms(400), ms(250), false, MDS);
        assert_eq!(cc.window(), 6060);
        // ECN-CE uses the same path, with no lost bytes.
        cc.on_congestion_event(ms(500), ms(450), false, 0);
        assert_eq!(cc.window(), 3030);
        // Never below the minimum window; ssthresh itself is not clamped.
        cc.on_congestion_event(ms(600), ms(550), false, 0);
        assert_eq!((cc.window(), cc.ssthresh()), (2400, Some(1515)));
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
    //= type=test
    //# When persistent congestion is declared, the sender's congestion window MUST be
    //# reduced to the minimum congestion window (kMinimumWindow), similar to a TCP
    //# sender's response on an RTO {{RFC5681}}.
    #[test]
    fn persistent_congestion_collapses_to_minimum_window() {
        let mut cc = reno();
        for i in 0..20 {
            ack(&mut cc, ms(100), ms(i), MDS);
        }
        assert_eq!(cc.window(), 36_000);
        cc.on_congestion_event(ms(500), ms(400), true, 10 * MDS);
        assert_eq!((cc.window(), cc.ssthresh()), (2400, Some(18_000)));
        assert_eq!(cc.congestion_recovery_start_time(), None);
        // Back in slow start (window below ssthresh).
        assert_eq!(cc.state(), CongestionState::SlowStart);
        ack(&mut cc, ms(600), ms(550), MDS);
        assert_eq!(cc.window(), 3600);
        // Persistent congestion declared while already in recovery still
        // collapses the window.
        cc.on_congestion_event(ms(700), ms(650), false, MDS);
        assert_eq!(cc.window(), 2400);
        cc.on_congestion_event(ms(710), ms(640), true, MDS);
        assert_eq!(cc.window(), 2400);
        assert_eq!(cc.ssthresh(), Some(1800));
    }

    /// The timeline of the RFC 9002 §7.6.3 example, as the recovery layer
    /// would report it to the controller (time unit: 1 s; packets of MDS).
    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
    //= type=test
    //# When persistent congestion is declared, the sender's congestion window MUST be
    //# reduced to the minimum congestion window (kMinimumWindow), similar to a TCP
    //# sender's response on an RTO {{RFC5681}}.
    #[test]
    fn rfc9002_persistent_congestion_example() {
        let t = |tenths: u64| Instant::from_millis(tenths * 100);
        let mut cc = reno();
        // t=1.2: #1 (sent t=0) acknowledged.
        ack(&mut cc, t(12), t(0), MDS);
        assert_eq!(cc.window(), 13_200);
        // t=12.2: #9 (sent t=12) acknowledged; #2-#8 (sent t=1..8) are lost
        // and establish persistent congestion (8 - 1 = 7 > 2 * 3 = 6).
        // Appendix A.7 processes losses before the newly acked packets.
        cc.on_congestion_event(t(122), t(80), true, 7 * MDS);
        assert_eq!(cc.window(), minimum_window(MDS));
        ack(&mut cc, t(122), t(120), MDS);
        // The recovery start was reset, so #9's ack is slow start growth.
        assert_eq!(cc.window(), minimum_window(MDS) + MDS);
        assert_eq!(cc.ssthresh(), Some(6600));
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.8
    //= type=test
    //# When this occurs,
    //# the congestion window SHOULD NOT be increased in either slow start or
    //# congestion avoidance.
    #[test]
    fn app_limited_acks_do_not_grow_the_window() {
        let rtt = RttEstimator::default();
        let mut cc = reno();
        cc.on_packet_acked(ms(100), ms(0), MDS, true, &rtt);
        assert_eq!(cc.window(), 12_000);
        assert_eq!(cc.state(), CongestionState::ApplicationLimited);
        cc.on_congestion_event(ms(200), ms(150), false, MDS);
        ack(&mut cc, ms(300), ms(250), MDS);
        let w = cc.window();
        for _ in 0..100 {
            cc.on_packet_acked(ms(400), ms(350), MDS, true, &rtt);
        }
        assert_eq!(cc.window(), w);
        // App-limited acks still end a recovery period.
        cc.on_congestion_event(ms(500), ms(450), false, MDS);
        assert_eq!(cc.state(), CongestionState::Recovery);
        cc.on_packet_acked(ms(600), ms(550), MDS, true, &rtt);
        assert_eq!(cc.state(), CongestionState::ApplicationLimited);
        ack(&mut cc, ms(700), ms(650), MDS);
        assert_eq!(cc.state(), CongestionState::CongestionAvoidance);
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.2
    //= type=test
    //# If the maximum datagram size changes during the connection, the initial
    //# congestion window SHOULD be recalculated with the new size.  If the maximum
    //# datagram size is decreased in order to complete the handshake, the
    //# congestion window SHOULD be set to the new initial congestion window.
    #[test]
    fn max_datagram_size_changes() {
        let mut cc = NewReno::new(&NewRenoConfig::default(), 1500);
        assert_eq!(cc.window(), 14_720);
        // Before anything happened: the window follows the initial window.
        cc.on_max_datagram_size(1200);
        assert_eq!(cc.window(), 12_000);
        cc.on_max_datagram_size(9000);
        assert_eq!((cc.window(), cc.max_datagram_size()), (18_000, 9000));
        // After a loss the window keeps what it learned, within the new
        // minimum window.
        cc.on_congestion_event(ms(10), ms(5), false, 9000);
        assert_eq!(cc.window(), 18_000);
        cc.on_max_datagram_size(1200);
        assert_eq!((cc.window(), cc.minimum_window()), (18_000, 2400));
        cc.on_congestion_event(ms(20), ms(15), true, 9000);
        assert_eq!(cc.window(), 2400);
        cc.on_max_datagram_size(1500);
        assert_eq!(cc.window(), 3000);
        // Congestion avoidance uses the new size.
        let mut cc = reno();
        cc.on_congestion_event(ms(10), ms(5), false, MDS);
        cc.on_max_datagram_size(3000);
        ack(&mut cc, ms(20), ms(15), 6000);
        assert_eq!(cc.window(), 6000 + 3000);
        // A fixed configured initial window is not recomputed.
        let mut cc = NewRenoConfig::default().initial_window(50_000).build(ms(0), MDS);
        cc.on_max_datagram_size(1500);
        assert_eq!(cc.window(), 50_000);
    }

    #[test]
    fn clone_box_copies_state() {
        let mut cc = reno();
        cc.on_congestion_event(ms(10), ms(5), false, MDS);
        let copy = cc.clone_box();
        assert_eq!((copy.window(), copy.ssthresh(), copy.state()), (6000, Some(6000), cc.state()));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Sent(u64),
        Acked { age: u64, bytes: u64, app_limited: bool },
        Congestion { age: u64, persistent: bool },
        Mtu(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..70_000u64).prop_map(Op::Sent),
            (0..500u64, 0..70_000u64, any::<bool>())
                .prop_map(|(age, bytes, app_limited)| Op::Acked { age, bytes, app_limited }),
            (0..500u64, any::<bool>())
                .prop_map(|(age, persistent)| Op::Congestion { age, persistent }),
            (0..70_000u64).prop_map(Op::Mtu),
        ]
    }

    proptest! {
        /// Whatever the events, the window never drops below the minimum
        /// window, a congestion event never grows it, and a recovery period
        /// reduces it at most once.
        #[test]
        fn window_never_below_minimum(ops in proptest::collection::vec(op(), 0..300)) {
            let mut cc = reno();
            let rtt = RttEstimator::default();
            let mut now = 1000u64;
            for op in ops {
                now += 7;
                let before = cc.window();
                match op {
                    Op::Sent(b) => cc.on_packet_sent(ms(now), b),
                    Op::Acked { age, bytes, app_limited } => {
                        cc.on_packet_acked(ms(now), ms(now - age), bytes, app_limited, &rtt);
                        prop_assert!(cc.window() >= before);
                    }
                    Op::Congestion { age, persistent } => {
                        let was_in_recovery = cc.in_congestion_recovery(ms(now - age));
                        cc.on_congestion_event(ms(now), ms(now - age), persistent, 0);
                        prop_assert!(cc.window() <= before.max(cc.minimum_window()));
                        if was_in_recovery && !persistent {
                            prop_assert_eq!(cc.window(), before);
                        }
                    }
                    Op::Mtu(m) => cc.on_max_datagram_size(m),
                }
                prop_assert!(cc.window() >= cc.minimum_window());
                prop_assert!(cc.window() >= 2 * MIN_MAX_DATAGRAM_SIZE);
            }
        }
    }
}
