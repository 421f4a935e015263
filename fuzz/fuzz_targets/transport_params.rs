//! Transport parameter decoding never panics, and an accepted set
//! re-encodes to `encoded_len()` bytes that decode to the same set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quic_proto::Side;
use quic_proto::transport_params::TransportParameters;

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else { return };
    let sender = if first & 1 == 0 { Side::Client } else { Side::Server };
    if let Ok(params) = TransportParameters::decode(sender, data) {
        let mut out = Vec::new();
        params.encode(&mut out);
        assert_eq!(out.len(), params.encoded_len());
        assert_eq!(TransportParameters::decode(sender, &out).expect("re-decode"), params);
    }
});
