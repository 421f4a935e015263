//! `quic-async`: an async driver for quic-proto.
//!
//! Not implemented yet. It will run one driver task per endpoint on
//! `async_io::Async<UdpSocket>` and `async_io::Timer`, and give users
//! `Connection`, `SendStream` (`AsyncWrite`) and `RecvStream` (`AsyncRead`)
//! under async-std or smol. See docs/status.md.

#![deny(missing_docs)]

pub use quic_proto;
