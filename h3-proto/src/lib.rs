//! `h3-proto`: sans-I/O HTTP/3 (RFC 9114) and QPACK (RFC 9204).
//!
//! Parts: [`connection`], the HTTP/3 connection (control and QPACK
//! streams, SETTINGS, requests and responses, server push, GOAWAY,
//! priorities) over any [`transport::Transport`]; [`message`] checks of
//! requests, responses and trailers; [`priority`], RFC 9218's priority
//! parameters; [`qpack`], a complete QPACK encoder and decoder (bytes in,
//! bytes out) with the QPACK offline interop formats; the wire layer:
//! [`frame`]s, [`settings`], unidirectional [`stream_type`]s and [`error`]
//! codes (RFC 9114 §6.2, §7, §8). HTTP/3 events go into the transport's
//! qlog (draft-ietf-quic-qlog-h3-events) when it keeps one.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod connection;
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

/// The HTTP/3 ALPN token (RFC 9114 §3.1).
pub const ALPN_H3: &[u8] = b"h3";

pub use connection::{Config, Connection, Event, SendError};
