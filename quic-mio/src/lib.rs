//! `quic-mio`: drives a [`quic_proto::endpoint::Endpoint`] from a mio event
//! loop, and builds the `quic` command line tool.
//!
//! - [`socket::UdpSocket`]: the UDP socket, with GSO, GRO, ECN and the
//!   local address on Linux, each detected at run time and falling back
//!   cleanly.
//! - [`driver::Driver`]: one endpoint on one socket, driven from a
//!   `mio::Poll` the application owns (see docs/embedding.md).
//! - [`instant_since`]: where the wall clock becomes a [`quic_proto::Instant`].

#![deny(missing_docs)]

pub mod driver;
pub mod insecure;
pub mod socket;
#[cfg(target_os = "linux")]
mod sys_linux;

pub use driver::{Driver, DriverEvent, IncomingPolicy};
pub use socket::UdpSocket;

/// The time source the driver feeds the core: nanoseconds since `epoch`.
///
/// Drivers, unlike the core, read the clock; this is where wall time becomes
/// a [`quic_proto::Instant`].
pub fn instant_since(epoch: std::time::Instant) -> quic_proto::Instant {
    quic_proto::Instant::from_nanos(epoch.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64)
}

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
