//! `conformance`: checks of the stack against the RFCs and other
//! implementations, and its benchmarks.
//!
//! Today: [`wire_transfer`] (the `wire-demo` main job: a verified transfer
//! through the wire format and packet protection) and the packet-protection
//! and frame-codec benchmarks in `benches/`. To come: the network simulator,
//! the interop-runner test cases, interop with quinn, aioquic and ngtcp2,
//! trace replay and RFC coverage counting.

#![deny(missing_docs)]

pub mod udp;
pub mod wire_transfer;
