//! `quic-proto`: a sans-I/O QUIC transport.
//!
//! The protocol core is a pure state machine: datagrams and timer expiries
//! go in, datagrams, one absolute deadline and events come out. The crate
//! owns no socket, reads no clock and draws no OS randomness, so any run,
//! including a recorded packet trace, replays deterministically.
//!
//! # The driving contract
//!
//! This is the one statement of it; the guides (`docs/architecture.md`,
//! `docs/embedding.md` for quic-mio, `docs/async.md` for quic-async) link
//! here.
//!
//! - **Time is an input.** [`Instant`] is a nanosecond count from an epoch
//!   the driver chooses (`Instant::from_nanos`, `from_millis`); its
//!   arithmetic saturates. Time never goes backwards. A driver maps its
//!   clock onto it (`quic_mio::instant_since`).
//! - **Randomness is an input.** [`RandomSource`] feeds connection IDs,
//!   tokens, packet-number skips and greasing. [`SeededRandom`] (ChaCha20
//!   from a seed) replays; [`SystemRandom`] is the only caller of the OS
//!   generator, and a driver constructs it. TLS draws from a stream derived
//!   from the endpoint's seed ([`crypto::seeded::endpoint_provider`]);
//!   signatures and TLS clock reads are recorded and replayed through
//!   [`crypto::tls_inputs`]. With the `testing` feature a seeded provider
//!   and Ed25519 test certificates make a whole handshake replay byte for
//!   byte with nothing recorded.
//! - **Inputs:** `handle_datagram(now, meta, bytes)` (a `BytesMut` of its own
//!   allocation, decrypted in place; stream data is handed on as zero-copy
//!   slices of it), `handle_timeout(now)` (a no-op when nothing is due),
//!   and application commands through [`connection::Connection`]
//!   (`open_stream`, `accept_stream`, `write`, `write_bytes`, `finish`,
//!   `reset`, `stop`, `read`, `read_chunk`, `send_datagram`,
//!   `read_datagram`, `close`).
//! - **Outputs:** `poll_transmit(now, buf)` (one datagram, or a GSO batch,
//!   with destination and ECN), `poll_timeout()` (one absolute deadline)
//!   and `poll_event()`. "Nothing to do" is `None`, never an error.
//! - **Order:** after any input, drain `poll_transmit`, then read
//!   `poll_timeout`, then drain `poll_event`. With an
//!   [`endpoint::Endpoint`], polling transmits can move a connection's
//!   events into the endpoint's queue, so a driver repeats "events, then
//!   transmits" until neither yields anything.
//! - **No spin:** once `handle_timeout(now)` has run and transmits are
//!   drained, `poll_timeout()` is later than `now`.
//! - **Bounded work:** each call does a bounded amount of work; every
//!   queue a peer can fill is bounded by count and bytes (docs/security.md).
//! - **Handles:** an [`endpoint::ConnectionHandle`] carries a generation;
//!   once its connection has drained it finds nothing, even if its slot is
//!   reused.
//! - **Events** are edge-like: `Readable` means read until `Blocked`,
//!   `Opened` accept until none is left, `DatagramReceived` read until
//!   none is left, `Writable` follows a write that was refused or took
//!   less than offered, once.
//!
//! The modules, bottom up: the wire format (`varint`, `coding`, `packet`,
//! `frame`, `transport_params`), packet protection (`crypto`, through
//! `rustls::quic` on aws-lc-rs), `recovery` and `congestion`, `streams`,
//! the [`connection::Connection`] state machine and the
//! [`endpoint::Endpoint`] that routes datagrams to many connections.

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
