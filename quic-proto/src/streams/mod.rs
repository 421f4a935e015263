//! Streams (RFC 9000 §2-§4): flow control and stream limits, and the
//! rate limit on stream aborts (§21.9).

pub mod flow_control;
pub mod rate;
pub mod recv;
pub mod send;
pub mod state;
