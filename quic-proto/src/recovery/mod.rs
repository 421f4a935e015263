//! Loss recovery (RFC 9002): RTT estimation, acknowledgment tracking, sent
//! packet tracking, loss detection and the probe timeout.
//!
//! The receiver side is [`AckTracker`] (one per packet number space); the
//! sender side is [`LossDetection`] (one per path, covering the three
//! spaces), which drives a [`crate::congestion::Controller`].

pub mod ack_tracker;
pub mod loss;
pub mod rtt;
pub mod sent;

pub use ack_tracker::{AckTracker, EcnCodepoint};
pub use loss::{AckOutcome, LossDetection, LossTimeout, LossTimer, LossTimerKind, LossTrigger};
pub use rtt::RttEstimator;
pub use sent::SentPacket;
