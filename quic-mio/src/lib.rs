//! `quic-mio`: drives a [`quic_proto::endpoint::Endpoint`] from a mio event
//! loop, and builds the `quic` command line tool.
//!
//! - [`socket::UdpSocket`]: the UDP socket, with GSO, GRO, ECN and the
//!   local address on Linux, each detected at run time and falling back
//!   cleanly (the `quic-udp` crate, shared with quic-async).
//! - [`driver::Driver`]: one endpoint on one socket, driven from a
//!   `mio::Poll` the application owns (see docs/embedding.md).
//! - [`Trace`]: a pcapng record of every datagram a driver carries, with
//!   the TLS secrets that decrypt it (docs/traces.md).
//! - [`instant_since`]: where the wall clock becomes a [`quic_proto::Instant`].

#![deny(missing_docs)]

pub mod driver;
pub mod insecure;
pub mod tool;
/// The UDP socket layer: the `quic-udp` crate, which quic-async shares.
pub use quic_udp as socket;

pub use driver::{Driver, DriverEvent, IncomingPolicy};
/// The time source the driver feeds the core (drivers, unlike the core,
/// read the clock): nanoseconds since `epoch`.
pub use quic_udp::instant_since;
pub use socket::UdpSocket;
pub use socket::trace::Trace;

#[cfg(test)]
mod tests {
    #[test]
    fn clock_maps_onto_core_instants() {
        let epoch = std::time::Instant::now();
        let a = super::instant_since(epoch);
        let b = super::instant_since(epoch);
        assert!(b >= a);
    }
}
