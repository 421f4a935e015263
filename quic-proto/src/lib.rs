//! `quic-proto`: a sans-I/O QUIC transport.
//!
//! The protocol core is a pure state machine: datagrams and timer expiries
//! go in, datagrams, one absolute deadline and events come out. The crate
//! owns no socket, reads no clock and draws no OS randomness: time arrives as
//! an [`Instant`] argument and randomness from an injected [`RandomSource`],
//! so any run, including a recorded packet trace, replays deterministically.
//!
//! This release holds the foundation: the wire format (variable-length
//! integers, connection and stream IDs, packet headers, every RFC 9000 frame
//! plus DATAGRAM, transport parameters, error codes) and packet protection
//! (RFC 9001 §5 and RFC 9369 through `rustls::quic` on aws-lc-rs). The
//! `Connection` and `Endpoint` state machines build on these; see
//! `docs/architecture.md` for the driving contract and what is still missing.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod cid;
pub mod coding;
pub mod congestion;
pub mod connection;
pub mod crypto;
pub mod endpoint;
pub mod error;
pub mod frame;
mod hash;
pub mod keylog;
pub mod packet;
pub mod qlog;
pub mod random;
pub mod range_set;
pub mod recovery;
pub mod space;
pub mod stream_id;
pub mod streams;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod time;
pub mod token;
pub mod transport_params;
pub mod varint;
pub mod version;

pub use cid::ConnectionId;
pub use error::{TransportError, TransportErrorCode};
pub use frame::FrameType;
pub use random::{RandomSource, SeededRandom, SystemRandom};
pub use space::{EncryptionLevel, SpaceId};
pub use stream_id::{Dir, Side, StreamId};
pub use time::Instant;
pub use token::StatelessResetToken;
pub use varint::VarInt;
pub use version::Version;
