//! Writing one packet into a datagram buffer that may already hold earlier
//! coalesced packets (RFC 9000 §12.2): header, frames, padding, Length,
//! then sealing.

use crate::crypto::{CryptoError, HeaderKey, PacketKey, seal_packet};
use crate::packet::{Header, PacketNumber, PartialEncode};

/// A packet under construction at the end of a datagram buffer.
pub(crate) struct PacketBuilder {
    partial: PartialEncode,
    pn: PacketNumber,
    /// The buffer length the frames must not pass (datagram limit minus tag).
    frames_end_limit: usize,
    tag_len: usize,
}

impl PacketBuilder {
    /// Starts a packet at the end of `buf`, or `None` if the datagram has no
    /// room left for even a minimal packet (`limit` is the datagram's
    /// largest total length). `largest_acked` decides the packet number
    /// length (RFC 9000 §17.1).
    pub(crate) fn new(
        buf: &mut Vec<u8>,
        header: &Header,
        pn: PacketNumber,
        largest_acked: Option<PacketNumber>,
        limit: usize,
        tag_len: usize,
    ) -> Option<Self> {
        let pn_len = pn.encoded_len(largest_acked);
        let header_len = header.encoded_len(pn_len);
        // Smallest packet: header, enough payload for the sample, and a tag.
        let min_payload =
            crate::packet::SAMPLE_PN_OFFSET + crate::packet::SAMPLE_LEN - pn_len.bytes();
        if buf.len() + header_len + min_payload.max(tag_len + 1) > limit {
            return None;
        }
        let partial = header.encode(pn, pn_len, buf);
        let mut frames_end_limit = limit - tag_len;
        if let Some(max_payload) = partial.max_payload_len() {
            let header_end = partial.start() + partial.header_len();
            frames_end_limit = frames_end_limit.min(header_end + max_payload - tag_len);
        }
        Some(Self { partial, pn, frames_end_limit, tag_len })
    }

    /// Bytes frames may still take in this packet.
    pub(crate) fn frame_space(&self, buf: &[u8]) -> usize {
        self.frames_end_limit.saturating_sub(buf.len())
    }

    /// Where this packet's frames start in the buffer.
    pub(crate) fn payload_start(&self) -> usize {
        self.partial.start() + self.partial.header_len()
    }

    /// Whether no frame has been written yet.
    pub(crate) fn is_empty(&self, buf: &[u8]) -> bool {
        buf.len() == self.partial.start() + self.partial.header_len()
    }

    /// Pads, fills in the Length field, and seals the packet. `pad_to`
    /// pads the whole datagram to that length (a client's Initial, RFC 9000
    /// §14.1, or a path probe); padding is PADDING frames (zero bytes) inside
    /// this packet. Returns the packet's length.
    pub(crate) fn finish(
        self,
        buf: &mut Vec<u8>,
        pad_to: usize,
        header_key: &HeaderKey,
        packet_key: &PacketKey,
    ) -> Result<usize, CryptoError> {
        let start = self.partial.start();
        let payload_start = start + self.partial.header_len();
        // Room for the header protection sample (RFC 9001 §5.4.2)...
        let min_end = payload_start + self.partial.min_payload_len().saturating_sub(self.tag_len);
        // ...and for the datagram padding, within this packet's limit.
        let pad_end = pad_to.saturating_sub(self.tag_len).min(self.frames_end_limit);
        let end = buf.len().max(min_end).max(pad_end);
        buf.resize(end, 0);
        let payload_len = end - payload_start + self.tag_len;
        self.partial.set_payload_len(buf, payload_len).map_err(|_| CryptoError::EncryptFailed)?;
        buf.resize(end + self.tag_len, 0);
        seal_packet(
            header_key,
            packet_key,
            self.pn.into_inner(),
            &mut buf[start..],
            self.partial.pn_offset(),
        )?;
        Ok(buf.len() - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keys, open_payload, remove_header_protection};
    use crate::frame::{Frame, Frames};
    use crate::packet::{CoalescedPackets, PacketNumberLen, decode_packet_number};
    use crate::{ConnectionId, Side, Version};
    use bytes::Bytes;

    fn cid(b: u8) -> ConnectionId {
        ConnectionId::from_slice(&[b; 8]).unwrap()
    }

    #[test]
    fn coalesced_initial_is_padded_and_every_packet_opens() {
        let client = Keys::initial(Version::V1, &cid(1), Side::Client).unwrap();
        let server = Keys::initial(Version::V1, &cid(1), Side::Server).unwrap();
        let mut buf = Vec::new();
        let initial = Header::Initial {
            version: Version::V1,
            dcid: cid(1),
            scid: cid(2),
            token: Bytes::new(),
        };
        // A small Initial with one PING, then a second Initial (as if it were
        // another space) padding the datagram to 1200 bytes.
        let b =
            PacketBuilder::new(&mut buf, &initial, PacketNumber::new(0).unwrap(), None, 1200, 16)
                .unwrap();
        assert!(b.is_empty(&buf));
        Frame::Ping.encode(&mut buf);
        let first_len = b.finish(&mut buf, 0, &client.local.header, &client.local.packet).unwrap();
        assert_eq!(first_len, buf.len());
        let b =
            PacketBuilder::new(&mut buf, &initial, PacketNumber::new(1).unwrap(), None, 1200, 16)
                .unwrap();
        Frame::Ping.encode(&mut buf);
        b.finish(&mut buf, 1200, &client.local.header, &client.local.packet).unwrap();
        assert_eq!(buf.len(), 1200, "padded to the client minimum");

        let ranges: Vec<_> =
            CoalescedPackets::new(&buf, 8, false).map(|p| p.unwrap().range).collect();
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0].len(), first_len);
        for (i, range) in ranges.into_iter().enumerate() {
            let pn_offset = crate::packet::PartialDecode::parse(&buf[range.clone()], 8, false)
                .unwrap()
                .pn_offset()
                .unwrap();
            let packet = &mut buf[range];
            let (pn_len, truncated) =
                remove_header_protection(&server.remote.header, packet, pn_offset).unwrap();
            let pn = decode_packet_number(None, truncated, PacketNumberLen::new(pn_len).unwrap());
            assert_eq!(pn.into_inner(), i as u64);
            let len =
                open_payload(&server.remote.packet, pn.into_inner(), packet, pn_offset + pn_len)
                    .unwrap();
            let payload = &packet[pn_offset + pn_len..pn_offset + pn_len + len];
            let frames: Vec<_> = Frames::new(payload).collect::<Result<_, _>>().unwrap();
            assert_eq!(frames[0], Frame::Ping);
            assert!(frames[1..].iter().all(|f| matches!(f, Frame::Padding { .. })));
        }
    }

    #[test]
    fn tiny_packets_are_padded_for_the_sample_and_full_datagrams_refuse_more() {
        let keys = Keys::initial(Version::V1, &cid(1), Side::Client).unwrap();
        let short = Header::Short { spin: false, key_phase: false, dcid: ConnectionId::EMPTY };
        let mut buf = Vec::new();
        let b = PacketBuilder::new(&mut buf, &short, PacketNumber::new(5).unwrap(), None, 1200, 16)
            .unwrap();
        Frame::Ping.encode(&mut buf);
        let len = b.finish(&mut buf, 0, &keys.local.header, &keys.local.packet).unwrap();
        // 1 byte of header, 1 byte of packet number: 20 bytes from the pn
        // offset are needed for the sample.
        assert_eq!(len, 1 + 20);
        let mut full = vec![0; 1190];
        assert!(
            PacketBuilder::new(&mut full, &short, PacketNumber::new(6).unwrap(), None, 1200, 16)
                .is_none()
        );
        assert_eq!(full.len(), 1190, "nothing written when nothing fits");
    }
}
