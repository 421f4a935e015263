//! Congestion control (RFC 9002 §7): the [`Controller`] trait the recovery
//! layer drives, and its implementations.
//!
//! Controllers are `dyn` so that the choice is a runtime configuration and
//! does not become a generic parameter of `Connection` (compile times stay
//! short). The recovery layer owns bytes_in_flight and the sent-packet
//! records; a controller only reacts to events and answers with a window.

use core::fmt;

use crate::recovery::RttEstimator;
use crate::time::Instant;

pub mod new_reno;
pub mod pacer;

pub use new_reno::{NewReno, NewRenoConfig};
pub use pacer::Pacer;

/// The phase a controller is in, for qlog's congestion_state_updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CongestionState {
    /// Growing the window by the bytes acknowledged.
    SlowStart,
    /// Growing the window by about one datagram per RTT.
    CongestionAvoidance,
    /// In a recovery period after a congestion event (RFC 9002 §7.3.2).
    Recovery,
    /// Limited by the application, not by the window.
    ApplicationLimited,
}

/// A congestion controller for one path.
///
/// The recovery layer calls these in the order RFC 9002 Appendix B does:
/// `on_packet_sent` for every in-flight packet, `on_packet_acked` for every
/// newly acknowledged in-flight packet, `on_congestion_event` once per loss
/// or ECN-CE signal (with `persistent` set when the lost packets establish
/// persistent congestion, §7.6).
pub trait Controller: Send + fmt::Debug {
    /// An in-flight packet of `bytes` bytes was sent.
    fn on_packet_sent(&mut self, now: Instant, bytes: u64);

    /// An in-flight packet of `bytes` bytes, sent at `sent_time`, was newly
    /// acknowledged. `app_limited` says the sender was limited by the
    /// application or flow control, not the window, when it was sent
    /// (RFC 9002 §7.8: the window does not grow then).
    fn on_packet_acked(
        &mut self,
        now: Instant,
        sent_time: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    );

    /// Packets were declared lost, or an ACK reported new ECN-CE marks.
    /// `sent_time` is when the newest affected packet was sent; a controller
    /// enters at most one recovery period per round trip by comparing it
    /// with the start of the current one (RFC 9002 §7.3.2). `persistent` is
    /// set when the loss establishes persistent congestion (§7.6).
    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent_time: Instant,
        persistent: bool,
        lost_bytes: u64,
    );

    /// The path's maximum datagram size changed (PMTU discovery).
    fn on_max_datagram_size(&mut self, max_datagram_size: u64);

    /// The congestion window in bytes: no ack-eliciting packet is sent while
    /// bytes_in_flight is at or above it, except probes.
    fn window(&self) -> u64;

    /// The current phase.
    fn state(&self) -> CongestionState;

    /// The slow start threshold, if one has been set.
    fn ssthresh(&self) -> Option<u64>;

    /// A boxed copy, for a new path that starts from this one's state.
    fn clone_box(&self) -> Box<dyn Controller>;
}

/// Builds a controller for each new path.
pub trait ControllerFactory: Send + Sync + fmt::Debug {
    /// A controller for a path whose datagrams are `max_datagram_size` bytes.
    fn build(&self, now: Instant, max_datagram_size: u64) -> Box<dyn Controller>;
}
