//! `h3-proto`: sans-I/O HTTP/3 (RFC 9114) and QPACK (RFC 9204).
//!
//! What exists: [`qpack`], a complete QPACK encoder and decoder (bytes in,
//! bytes out) with the QPACK offline interop formats; the HTTP/3 wire
//! layer: [`frame`]s, [`settings`], unidirectional [`stream_type`]s and
//! [`error`] codes (RFC 9114 §6.2, §7, §8); the [`transport::Transport`]
//! trait HTTP/3 will run on, implemented for `quic_proto::Connection` and
//! in memory. Not written yet: the HTTP/3 connection logic; until then HTTP/3 entry
//! points return [`NotImplemented`], so that nothing can mistake the crate
//! for a working HTTP/3 layer.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod frame;
mod grease;
pub mod message;
pub mod priority;
pub(crate) mod qlog;
pub mod qpack;
pub mod settings;
pub mod stream_type;
pub mod transport;

/// The error every HTTP/3 entry point returns until the layer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotImplemented;

impl core::fmt::Display for NotImplemented {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HTTP/3 is not implemented yet (see docs/status.md)")
    }
}

impl std::error::Error for NotImplemented {}

/// The HTTP/3 ALPN token this crate will serve (RFC 9114 §3.1).
pub const ALPN_H3: &[u8] = b"h3";

/// Starting an HTTP/3 connection is not implemented yet.
pub fn connect() -> Result<(), NotImplemented> {
    Err(NotImplemented)
}
