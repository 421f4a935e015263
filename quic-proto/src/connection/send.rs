//! Sending: choosing frames, coalescing packets into a datagram, padding,
//! sealing, and recording what was sent (RFC 9000 §12.2, §13, §14.1;
//! RFC 9002 §6-§7).

use bytes::BufMut;

use super::packet_builder::PacketBuilder;
use super::spaces::SentFrames;
use super::{CloseFrame, Connection, State, Transmit};
use crate::error::TransportErrorCode;
use crate::frame::{
    ApplicationClose, ConnectionClose, CryptoHeader, DatagramHeader, Frame, FrameType, MaxData,
    MaxStreamData, MaxStreams, NewToken, PathResponse, StopSending,
};
use crate::packet::{Header, LongType, PacketNumber};
use crate::recovery::SentPacket;
use crate::space::SpaceId;
use crate::stream_id::Dir;
use crate::time::Instant;
use crate::varint::VarInt;

const TAG_LEN: usize = 16;

//= https://www.rfc-editor.org/rfc/rfc9000#section-14.1
//# A client MUST expand the payload of all UDP datagrams carrying Initial packets
//# to at least the smallest allowed maximum datagram size of 1200 bytes by adding
//# PADDING frames to the Initial packet or by coalescing the Initial packet; see
//# Section 12.2.
const MIN_INITIAL_DATAGRAM: usize = 1200;

/// Below this anti-amplification allowance nothing worth sending fits (a
/// header, a frame and the AEAD tag): the server is as good as blocked.
const MIN_USEFUL_DATAGRAM: u64 = 64;

impl Connection {
    pub(super) fn transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        match &self.state {
            State::Draining { .. } | State::Drained => return None,
            State::Closing { close, .. } => {
                if !self.close_pending {
                    return None;
                }
                self.close_pending = false;
                let close = close.clone();
                self.write_close_packets(now, buf, &close);
                return self.finish_datagram(buf);
            }
            State::Handshake | State::Established => {}
        }

        let mut limit = usize::from(self.path.mtu);
        if !self.path.validated {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1
            //# Prior to validating the client address, servers MUST NOT send more
            //# than three times as many bytes as the number of bytes they have
            //# received.
            let allowance = (3 * self.path.bytes_received).saturating_sub(self.path.bytes_sent);
            limit = limit.min(usize::try_from(allowance).unwrap_or(usize::MAX));
        }

        if self.one_rtt.as_ref().is_some_and(|k| k.update_due(self.config.key_update_interval)) {
            self.initiate_key_update(now);
        }
        let probing = self.spaces.iter().any(|s| s.probes > 0);
        //= https://www.rfc-editor.org/rfc/rfc9002#section-7
        //# An endpoint MUST NOT send a packet if it would cause bytes_in_flight (see
        //# {{vars-of-interest}}) to be larger than the congestion window, unless the packet
        //# is sent on a PTO timer expiration (see {{pto}}) or when entering recovery
        //# (see {{recovery-period}}).
        // A datagram is at most one MTU: only send when a full one fits.
        let cwnd_open = self.loss.bytes_in_flight() + u64::from(self.path.mtu) <= self.cc.window();
        let may_send_data = cwnd_open || probing;
        let wants = SpaceId::ALL.map(|s| self.space_wants_send(now, s, may_send_data));
        let last = wants.iter().rposition(|w| *w)?;

        let pad_datagram = wants[SpaceId::Initial as usize]
            && (self.side.is_client()
                || self.spaces[0].has_crypto_to_send()
                || self.spaces[0].probes > 0);
        if pad_datagram && limit < MIN_INITIAL_DATAGRAM {
            // The server cannot send a full-size Initial within its
            // anti-amplification allowance: wait for more from the client.
            self.loss.set_amplification_blocked(now, true);
            return None;
        }
        for space in SpaceId::ALL {
            if !wants[space as usize] {
                continue;
            }
            let pad_to =
                if pad_datagram && space as usize == last { MIN_INITIAL_DATAGRAM } else { 0 };
            if !self.write_packet(now, buf, space, limit, pad_to, may_send_data) {
                break;
            }
        }
        if buf.is_empty() {
            if !self.path.validated {
                self.loss.set_amplification_blocked(now, true);
            }
            return None;
        }
        let transmit = self.finish_datagram(buf);
        if !self.path.validated
            && (3 * self.path.bytes_received).saturating_sub(self.path.bytes_sent)
                < MIN_USEFUL_DATAGRAM
        {
            //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2.1
            //# If no additional data can be
            //# sent, the server's PTO timer MUST NOT be armed until datagrams have been
            //# received from the client because packets sent on PTO count against the
            //# anti-amplification limit.
            //
            // Found at once rather than by the next attempt to send: a
            // probe timer left armed would be due (perhaps in the past)
            // with nothing able to go out, and a driver would spin on it.
            self.loss.set_amplification_blocked(now, true);
        }
        transmit
    }

    fn finish_datagram(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        if buf.is_empty() {
            return None;
        }
        self.path.bytes_sent += buf.len() as u64;
        self.stats.bytes_sent += buf.len() as u64;
        Some(Transmit {
            destination: self.path.remote,
            ecn: None,
            size: buf.len(),
            segment_size: None,
            src_ip: None,
        })
    }

    fn has_send_keys(&self, space: SpaceId) -> bool {
        let s = &self.spaces[space as usize];
        !s.discarded
            && match space {
                SpaceId::Data => self.one_rtt.is_some(),
                _ => s.keys.is_some(),
            }
    }

    /// Whether `space` has anything to send now.
    fn space_wants_send(&self, now: Instant, space: SpaceId, may_send_data: bool) -> bool {
        if !self.has_send_keys(space) {
            return false;
        }
        let s = &self.spaces[space as usize];
        if s.ack.has_unreported() && s.ack.is_ack_due(now) {
            return true;
        }
        if s.probes > 0 {
            return true;
        }
        if !may_send_data {
            return false;
        }
        if s.has_crypto_to_send() {
            return true;
        }
        space == SpaceId::Data
            && (self.handshake_done_pending
                || !self.path_responses.is_empty()
                || self.streams.pending_max_data
                || !self.streams.pending_max_stream_data.is_empty()
                || !self.streams.pending_stop.is_empty()
                || self.streams.pending_max_streams.iter().any(|p| *p)
                || !self.datagrams_out.is_empty()
                || self.ping_pending
                || (self.handshake_confirmed && self.new_token_pending.is_some())
                || self.cids.wants_send()
                || self.streams.has_pending()
                || self.streams.blocked_frames_pending())
    }

    fn header(&self, space: SpaceId) -> Header {
        match space {
            SpaceId::Initial => Header::Initial {
                version: self.version,
                dcid: self.remote_cid,
                scid: self.local_cid,
                token: if self.side.is_client() { self.token.clone() } else { bytes::Bytes::new() },
            },
            SpaceId::Handshake => Header::Long {
                ty: LongType::Handshake,
                version: self.version,
                dcid: self.remote_cid,
                scid: self.local_cid,
            },
            SpaceId::Data => Header::Short {
                spin: false,
                key_phase: self.one_rtt.as_ref().is_some_and(|k| k.phase()),
                dcid: self.remote_cid,
            },
        }
    }

    /// Writes one packet of `space`; returns whether one was written.
    fn write_packet(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        space: SpaceId,
        limit: usize,
        pad_to: usize,
        may_send_data: bool,
    ) -> bool {
        let header = self.header(space);
        let Some(pn) = self.loss.next_packet_number(space, &mut *self.rng) else {
            // 2^62 packets: the connection cannot go on (RFC 9000 §12.3).
            return false;
        };
        let pn = PacketNumber::new(pn).expect("loss detection issues valid packet numbers");
        let largest_acked = self.loss.largest_acked(space).and_then(PacketNumber::new);
        let start = buf.len();
        let Some(builder) = PacketBuilder::new(buf, &header, pn, largest_acked, limit, TAG_LEN)
        else {
            return false;
        };
        let mut sent = SentFrames::default();
        let end = buf.len() + builder.frame_space(buf);

        // ACK first: it is small and the peer's loss recovery depends on it.
        let exponent = if space == SpaceId::Data { self.config.ack_delay_exponent } else { 3 };
        let s = &mut self.spaces[space as usize];
        let mut wrote_ack = false;
        if s.ack.has_unreported()
            && let Some(mut ack) = s.ack.ack_frame(now, exponent)
            && ack.fit_to(end - buf.len())
        {
            ack.encode(buf);
            wrote_ack = true;
        }
        if wrote_ack {
            sent.largest_acked = s.ack.on_ack_sent();
        }

        if may_send_data {
            // Every probe in a handshake space carries the unacknowledged
            // CRYPTO data, not only the first of a PTO's two: either may be
            // the one that arrives, and a PING-only Initial is useless to a
            // server that has yet to see the ClientHello (aioquic closes
            // the connection on one).
            if space != SpaceId::Data
                && self.spaces[space as usize].probes > 0
                && !self.spaces[space as usize].has_crypto_to_send()
            {
                self.requeue_for_probe(space, 1);
            }
            // CRYPTO data: retransmissions first, then new (the buffer's order).
            let s = &mut self.spaces[space as usize];
            if let Some(offset) = s.crypto_send.next_transmit_offset(u64::MAX) {
                let offset_v = VarInt::saturating_from_u64(offset);
                if let Some(max) = CryptoHeader::max_data_len(offset_v, end - buf.len())
                    && let Some(chunk) = s.crypto_send.poll_transmit(max, u64::MAX)
                {
                    CryptoHeader {
                        offset: VarInt::saturating_from_u64(chunk.offset),
                        data_len: chunk.data.len(),
                    }
                    .encode(buf);
                    buf.put_slice(&chunk.data);
                    sent.crypto = Some(chunk.offset..chunk.end());
                }
            }
            if space == SpaceId::Data {
                self.write_data_space_frames(buf, end, &mut sent);
            }
        }
        let s = &mut self.spaces[space as usize];
        if s.probes > 0 {
            s.probes -= 1;
            if !sent.is_ack_eliciting() && end > buf.len() {
                Frame::Ping.encode(buf);
                sent.ping = true;
            }
        }
        if builder.is_empty(buf) {
            // Nothing fitted after all: take the header back.
            buf.truncate(start);
            return false;
        }

        // qlog: the frames as written, read before sealing (None when off).
        let qlog_frames = self.qlog_frames(&buf[builder.payload_start()..], space);
        let plain_len = buf.len() - start;
        let ack_eliciting = sent.is_ack_eliciting();
        let carried_ack = sent.largest_acked.is_some();
        let (hp, key) = match space {
            SpaceId::Data => {
                let keys = self.one_rtt.as_mut().expect("has_send_keys checked");
                keys.seal_key(pn.into_inner());
                let keys = self.one_rtt.as_ref().expect("has_send_keys checked");
                (&keys.local_hp, keys.seal_key_ref())
            }
            _ => {
                let keys =
                    self.spaces[space as usize].keys.as_ref().expect("has_send_keys checked");
                (&keys.local.header, &keys.local.packet)
            }
        };
        let Ok(size) = builder.finish(buf, pad_to, hp, key) else {
            buf.truncate(start);
            return false;
        };
        if space == SpaceId::Data && carried_ack {
            self.one_rtt.as_mut().expect("checked").on_ack_sent();
        }
        let padded = pad_to > 0;
        let packet = SentPacket {
            packet_number: pn.into_inner(),
            time_sent: now,
            sent_bytes: size as u64,
            ack_eliciting,
            in_flight: ack_eliciting || padded,
            app_limited: false,
            payload: sent,
        };
        self.loss.on_packet_sent(space, packet, &mut *self.cc);
        self.stats.packets_sent += 1;
        let padding = size.saturating_sub(TAG_LEN + plain_len);
        self.qlog_packet_sent(now, &header, pn.into_inner(), qlog_frames, padding, size);
        if ack_eliciting {
            self.last_ack_eliciting_sent = Some(now);
            self.restart_idle_on_send(now);
        }
        if space == SpaceId::Handshake && self.side.is_client() {
            //= https://www.rfc-editor.org/rfc/rfc9001#section-4.9.1
            //# Thus, a client MUST discard Initial keys
            //# when it first sends a Handshake packet and a server MUST discard Initial keys
            //# when it first successfully processes a Handshake packet.
            self.discard_space(now, SpaceId::Initial);
        }
        true
    }

    fn write_data_space_frames(&mut self, buf: &mut Vec<u8>, end: usize, sent: &mut SentFrames) {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.7
        //# A client MUST NOT send a NEW_TOKEN frame.
        // (Only servers queue tokens; they go out once the handshake is confirmed.)
        if self.handshake_confirmed
            && let Some(token) = &self.new_token_pending
        {
            let frame = NewToken { token };
            if buf.len() + frame.encoded_len() <= end {
                frame.encode(buf);
                sent.new_token = self.new_token_pending.take();
            }
        }
        if self.handshake_done_pending && buf.len() < end {
            Frame::HandshakeDone.encode(buf);
            self.handshake_done_pending = false;
            sent.handshake_done = true;
        }
        while let Some(data) = self.path_responses.front() {
            let frame = PathResponse { data: *data };
            if buf.len() + frame.encoded_len() > end {
                break;
            }
            frame.encode(buf);
            self.path_responses.pop_front();
        }
        if self.streams.pending_max_data {
            let frame = MaxData { maximum: self.streams.conn_recv.max_data() };
            if buf.len() + frame.encoded_len() <= end {
                frame.encode(buf);
                self.streams.pending_max_data = false;
                sent.max_data = true;
            }
        }
        for (i, dir) in [Dir::Bi, Dir::Uni].into_iter().enumerate() {
            if !self.streams.pending_max_streams[i] {
                continue;
            }
            let frame = MaxStreams { dir, maximum: self.streams.max_streams(dir) };
            if buf.len() + frame.encoded_len() <= end {
                frame.encode(buf);
                self.streams.pending_max_streams[i] = false;
                if dir == Dir::Bi {
                    sent.max_streams_bidi = true;
                } else {
                    sent.max_streams_uni = true;
                }
            }
        }
        // Sets iterate in a per-process random order: sort, so that a
        // recorded run replays byte for byte.
        let mut ids: Vec<_> = self.streams.pending_max_stream_data.iter().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(maximum) = self.streams.max_stream_data(id) else {
                self.streams.pending_max_stream_data.remove(&id);
                continue;
            };
            let frame = MaxStreamData { id, maximum };
            if buf.len() + frame.encoded_len() > end {
                break;
            }
            frame.encode(buf);
            self.streams.pending_max_stream_data.remove(&id);
            sent.max_stream_data.push(id);
        }
        let mut ids: Vec<_> = self.streams.pending_stop.iter().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(code) = self.streams.stop_code(id) else {
                self.streams.pending_stop.remove(&id);
                continue;
            };
            let frame = StopSending { id, error_code: code };
            if buf.len() + frame.encoded_len() > end {
                break;
            }
            frame.encode(buf);
            self.streams.pending_stop.remove(&id);
            sent.stop_sending.push((id, code));
        }
        self.write_cid_frames(buf, end, sent);
        // Datagrams are not retransmitted: a lost one is gone (RFC 9221 §5.2).
        while let Some(d) = self.datagrams_out.front() {
            let header = DatagramHeader { data_len: Some(d.len()) };
            if buf.len() + header.encoded_len() + d.len() > end {
                break;
            }
            let d = self.datagrams_out.pop_front().expect("checked");
            self.datagrams_out_bytes -= d.len();
            header.encode(buf);
            buf.put_slice(&d);
            sent.ping = true; // ack-eliciting, counted in flight
        }
        self.streams.write_frames(buf, end, &mut sent.stream, &mut sent.reset_stream);
        // After the STREAM frames: sending them is what uses up credit.
        self.streams.write_blocked_frames(
            buf,
            end,
            &mut sent.data_blocked,
            &mut sent.stream_data_blocked,
        );
        self.streams.write_streams_blocked_frames(buf, end, &mut sent.streams_blocked);
        if self.ping_pending && buf.len() < end {
            Frame::Ping.encode(buf);
            self.ping_pending = false;
            sent.ping = true;
        }
    }

    /// Writes CONNECTION_CLOSE in every space that has keys (RFC 9000
    /// §10.2.3), coalesced into one datagram.
    fn write_close_packets(&mut self, now: Instant, buf: &mut Vec<u8>, close: &CloseFrame) {
        let limit = usize::from(self.path.mtu);
        let spaces: Vec<SpaceId> =
            SpaceId::ALL.into_iter().filter(|s| self.has_send_keys(*s)).collect();
        let Some(&last) = spaces.last() else { return };
        let pad_initial = self.side.is_client() && spaces.contains(&SpaceId::Initial);
        for space in spaces {
            let header = self.header(space);
            let Some(pn) = self.loss.next_packet_number(space, &mut *self.rng) else { return };
            let pn = PacketNumber::new(pn).expect("valid packet number");
            let Some(builder) = PacketBuilder::new(buf, &header, pn, None, limit, TAG_LEN) else {
                return;
            };
            let room = builder.frame_space(buf);
            //= https://www.rfc-editor.org/rfc/rfc9000#section-10.2.3
            //# When sending a CONNECTION_CLOSE frame in an Initial or Handshake packet, an
            //# endpoint MUST NOT use CONNECTION_CLOSE of type 0x1d and MUST instead use type
            //# 0x1c with an error code of APPLICATION_ERROR (0x0c).
            match (close, space) {
                (CloseFrame::Application { code, reason }, SpaceId::Data) => {
                    let max = room.saturating_sub(1 + code.size() + 2);
                    ApplicationClose {
                        error_code: *code,
                        reason: &reason[..reason.len().min(max)],
                    }
                    .encode(buf);
                }
                (CloseFrame::Application { .. }, _) => ConnectionClose {
                    error_code: TransportErrorCode::APPLICATION_ERROR,
                    frame_type: FrameType::PADDING,
                    reason: &[],
                }
                .encode(buf),
                (CloseFrame::Transport { code, frame_type, reason }, _) => {
                    let max = room.saturating_sub(1 + 8 + 8 + 2);
                    ConnectionClose {
                        error_code: *code,
                        frame_type: frame_type.unwrap_or(FrameType::PADDING),
                        reason: &reason[..reason.len().min(max)],
                    }
                    .encode(buf)
                }
            }
            let pad_to = if pad_initial && space == last { MIN_INITIAL_DATAGRAM } else { 0 };
            let start = builder.payload_start();
            // qlog: the frames as written, read before sealing (None when off).
            let qlog_frames = self.qlog_frames(&buf[start..], space);
            let plain_len = buf.len() - start;
            let (hp, key) = match space {
                SpaceId::Data => {
                    let keys = self.one_rtt.as_ref().expect("checked");
                    (&keys.local_hp, keys.seal_key_ref())
                }
                _ => {
                    let keys = self.spaces[space as usize].keys.as_ref().expect("checked");
                    (&keys.local.header, &keys.local.packet)
                }
            };
            let Ok(size) = builder.finish(buf, pad_to, hp, key) else { return };
            self.stats.packets_sent += 1;
            let header_len = size.saturating_sub(buf.len() - start);
            let padding = size.saturating_sub(TAG_LEN + plain_len + header_len);
            self.qlog_packet_sent(now, &header, pn.into_inner(), qlog_frames, padding, size);
        }
    }
}
