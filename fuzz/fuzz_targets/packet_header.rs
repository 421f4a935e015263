//! Packet header parsing never panics, whatever the datagram, local
//! connection ID length or grease setting; every packet it yields lies
//! inside the datagram, with its header-protection sample inside the packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quic_proto::packet::{CoalescedPackets, PacketNumber, read_packet_number};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, datagram)) = data.split_first() else { return };
    let local_cid_len = usize::from(cfg % 21);
    let allow_grease_quic_bit = cfg & 0x80 != 0;
    let mut end = 0;
    for packet in CoalescedPackets::new(datagram, local_cid_len, allow_grease_quic_bit) {
        let Ok(packet) = packet else { break };
        assert_eq!(packet.range.start, end, "packets are contiguous");
        assert!(packet.range.end <= datagram.len());
        end = packet.range.end;
        let decode = &packet.decode;
        assert_eq!(decode.packet_len(), packet.range.len());
        if let Some(sample) = decode.sample_range() {
            assert!(sample.end <= decode.packet_len());
        }
        if let Some(pn_offset) = decode.pn_offset() {
            let largest = PacketNumber::new(u64::from(cfg) << 20);
            let _ = read_packet_number(decode.packet(), pn_offset, largest);
        }
    }
});
