//! `conformance`: checks of the stack against the RFCs and other
//! implementations, and its benchmarks.
//!
//! Today: [`loopback`] (the README's main job: a verified download between
//! a quic-proto server and client over UDP), [`wire_transfer`] (the wire
//! layers alone, in memory), [`udp`] (a minimal blocking driver for tests),
//! [`flood`] (hostile traffic at a server while genuine clients connect),
//! [`relay`] (an impairment relay between a client and a server on
//! loopback), the quinn interop tests, [`matrix`] (the QUIC interop
//! runner's test cases for every pair of self, quinn, aioquic and ngtcp2,
//! run by `conformance matrix`; see docs/interop.md), and the benchmarks
//! in `benches/`. To come: the network simulator, trace replay and RFC
//! coverage counting.

#![deny(missing_docs)]

pub mod args;
pub mod flood;
pub mod loopback;
pub mod matrix;
pub mod peers;
pub mod relay;
pub mod replay;
pub mod traces;
pub mod udp;
pub mod wire_transfer;
