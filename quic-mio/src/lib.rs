//! `quic-mio`: drives a `quic_proto::Endpoint` from a mio event loop.
//!
//! Not implemented yet: the endpoint state machine it drives is still being
//! built. This crate will own the UDP socket (GSO, GRO, ECN and packet-info on
//! Linux), wait with the core's deadline, and hand datagrams in and out; it
//! will also build the `quic` command line tool. See docs/status.md.

#![deny(missing_docs)]

/// The time source the driver will feed the core: nanoseconds since `epoch`.
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
