//! Reading a pcapng trace (`quic_udp::trace::read`, which replay runs on
//! files users hand it) never panics, and the input records it returns
//! hold no more bytes than the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quic_udp::trace::{TraceItem, read};

fuzz_target!(|data: &[u8]| {
    let Ok(items) = read(data) else { return };
    for item in items {
        if let TraceItem::Datagram(d) = item {
            assert!(d.payload.len() <= data.len(), "a datagram longer than the file");
        }
    }
});
