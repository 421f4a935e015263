//! `quic-async`: QUIC for async Rust, on quic-proto's sans-I/O state
//! machine and async-io, so the same code runs under async-std and smol.
//!
//! An [`Endpoint`] binds a UDP socket (the `quic-udp` socket layer, shared
//! with quic-mio: GSO, GRO, ECN, packet info where the kernel has them) and starts its driver: one
//! task, on a thread of its own, that owns the sans-I/O endpoint, reads
//! and sends datagrams, runs timers, and wakes exactly the futures each
//! event concerns (a stream's reader or writer, an `accept`, a
//! `closed`). Handles talk to it through a short lock and never block an
//! executor. The driving contract is quic-proto's (its crate docs).
//!
//! ```no_run
//! # async fn demo(client: quic_proto::connection::ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
//! let endpoint = quic_async::Endpoint::client("[::]:0".parse()?)?;
//! let conn = endpoint.connect(&client, "127.0.0.1:4433".parse()?, "localhost")?.await?;
//! let (mut send, mut recv) = conn.open_bi().await?;
//! send.write_all(b"hello").await?;
//! send.close().await?;
//! let mut reply = Vec::new();
//! AsyncReadExt::read_to_end(&mut recv, &mut reply).await?;
//! # Ok(()) }
//! ```
//!
//! A sans-I/O application protocol (HTTP/3 from h3-proto, say) runs on
//! the quic-proto connection itself rather than on stream objects:
//! [`Connection::with_proto`] runs it on the connection, and
//! [`Connection::stream_events`] wakes it with the connection's stream
//! events; the peer's streams are then the protocol's to accept (the
//! rule is on `stream_events`).
//!
//! What exists and what is missing: docs/status.md.

#![deny(missing_docs)]

mod app;
mod connection;
mod endpoint;
mod shared;
mod streams;

pub use app::StreamEvents;
pub use connection::{Closed, Connecting, Connection, ReadDatagram, SendDatagramError};
pub use endpoint::{Accept, Endpoint, Incoming};
pub use quic_proto;
/// Traces ([`Endpoint::set_trace`]): the pcapng writer and reader quic-mio uses.
pub use quic_udp::trace;
pub use quic_udp::trace::Trace;
pub use streams::{ReadToEndError, RecvStream, SendStream};
