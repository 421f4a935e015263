//! A hook for tests and fuzzing (`testing` feature): a hostile peer's
//! authenticated packet, so that whatever frames it carries reach the
//! connection's frame processing past packet protection.

#![cfg(any(test, feature = "testing"))]

use super::Connection;
use super::packet_builder::PacketBuilder;
use super::spaces::SentFrames;
use crate::packet::{Header, PacketNumber};
use crate::recovery::SentPacket;
use crate::space::SpaceId;
use crate::time::Instant;

impl Connection {
    /// A hostile peer's packet: a 1-RTT datagram carrying exactly `frames`
    /// (encoded), sealed with this connection's current keys and the next
    /// packet number, recorded as sent (ack-eliciting, in flight) so that
    /// the peer's acknowledgment of it is in order. The caller puts it on
    /// the link with `Pair::inject`.
    ///
    /// Panics if the handshake has not completed or `frames` do not fit in
    /// one packet ([`Connection::forge_capacity`]).
    pub fn forge_packet(&mut self, now: Instant, frames: &[u8]) -> Vec<u8> {
        let phase = self.one_rtt.as_ref().expect("1-RTT keys: the handshake completed").phase();
        let header = Header::Short { spin: false, key_phase: phase, dcid: self.remote_cid };
        let pn =
            self.loss.next_packet_number(SpaceId::Data, &mut *self.rng).expect("pn space left");
        let pn_v = PacketNumber::new(pn).expect("valid packet number");
        let largest_acked = self.loss.largest_acked(SpaceId::Data).and_then(PacketNumber::new);
        let mut buf = Vec::new();
        let mtu = usize::from(self.path.mtu);
        let builder = PacketBuilder::new(&mut buf, &header, pn_v, largest_acked, mtu, 16)
            .expect("an empty datagram has room for a packet");
        assert!(frames.len() <= builder.frame_space(&buf), "forged frames exceed one packet");
        buf.extend_from_slice(frames);
        let keys = self.one_rtt.as_mut().expect("checked");
        keys.seal_key(pn);
        let keys = self.one_rtt.as_ref().expect("checked");
        let size = builder.finish(&mut buf, 0, &keys.local_hp, keys.seal_key_ref()).expect("seals");
        let packet = SentPacket {
            packet_number: pn,
            time_sent: now,
            sent_bytes: size as u64,
            ack_eliciting: true,
            in_flight: true,
            app_limited: false,
            payload: SentFrames { ping: true, ..SentFrames::default() },
        };
        self.loss.on_packet_sent(SpaceId::Data, packet, &mut *self.cc);
        buf
    }

    /// How many bytes of frames [`Connection::forge_packet`] can carry.
    pub fn forge_capacity(&self) -> usize {
        // Short header (1 + CID + up to 4 bytes of packet number) and tag.
        usize::from(self.path.mtu) - (1 + self.remote_cid.len() + 4) - 16
    }
}

#[cfg(test)]
impl Connection {
    /// Stream events waiting to be polled.
    pub(crate) fn queued_stream_events(&self) -> usize {
        self.streams.queued_events()
    }
}
