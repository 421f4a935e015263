//! Removing header protection and opening arbitrary packets never panics,
//! whatever the claimed packet-number offset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quic_proto::crypto::{Keys, open_payload, remove_header_protection};
use quic_proto::{Side, Version};

fuzz_target!(|data: &[u8]| {
    let Some((&offset, packet)) = data.split_first() else { return };
    let version = if offset & 0x80 == 0 { Version::V1 } else { Version::V2 };
    let keys = Keys::initial(version, &[0x83, 0x94, 0xc8, 0xf0], Side::Server).expect("v1/v2");
    let mut packet = packet.to_vec();
    let pn_offset = usize::from(offset & 0x7f);
    if let Ok((pn_len, truncated)) =
        remove_header_protection(&keys.remote.header, &mut packet, pn_offset)
    {
        assert!((1..=4).contains(&pn_len));
        let _ = open_payload(
            &keys.remote.packet,
            u64::from(truncated),
            &mut packet,
            pn_offset + pn_len,
        );
    }
});
