//! `conformance`: checks of the stack against the RFCs and other
//! implementations, and its benchmarks.
//!
//! Today: the packet-protection and frame-codec benchmarks (`benches/`) and
//! the `quic-vectors` self-check. To come: the network simulator, the
//! interop-runner test cases, interop with quinn, aioquic and ngtcp2, trace
//! replay and RFC coverage counting.

#![deny(missing_docs)]
