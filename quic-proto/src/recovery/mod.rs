//! Loss recovery (RFC 9002): RTT estimation, acknowledgment tracking, sent
//! packet tracking, loss detection and the probe timeout.

pub mod rtt;

pub use rtt::RttEstimator;
