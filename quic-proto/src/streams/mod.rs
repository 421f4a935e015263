//! Streams (RFC 9000 §2-§4): flow control and stream limits.

pub mod flow_control;
pub mod recv;
pub mod send;
pub mod state;
