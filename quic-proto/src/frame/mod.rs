//! QUIC frames (RFC 9000 §12.4, §19; RFC 9221 §4).

mod frame_type;

pub use frame_type::FrameType;
