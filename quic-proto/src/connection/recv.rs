//! Receiving: datagrams into packets, packets into frames, frames into state
//! (RFC 9000 §12, §13, §17, §19; RFC 9001 §5, §6).

use bytes::{Bytes, BytesMut};

use super::key_phase::KeyChoice;
use super::spaces::SentFrames;
use super::{Connection, ConnectionError, DatagramMeta, Event, State};
use crate::cid::ConnectionId;
use crate::crypto::{open_payload, remove_header_protection, verify_retry_integrity};
use crate::error::TransportError;
use crate::frame::{Frame, FrameType, Frames};
use crate::packet::{
    PacketNumber, PacketNumberLen, PartialDecode, ProtectedHeader, check_reserved_bits,
    decode_packet_number, key_phase,
};
use crate::qlog::events::{ConnectionState, DropTrigger, Initiator, PacketType};
use crate::recovery::{AckOutcome, SentPacket};
use crate::space::{EncryptionLevel, SpaceId};
use crate::time::Instant;
use crate::token::{StatelessResetToken, is_stateless_reset};
use crate::version::Version;

/// What the receive path needs from a packet header, owned so the packet
/// can be split off the datagram and decrypted in place.
enum Kind {
    Protected {
        level: EncryptionLevel,
        dcid: Option<ConnectionId>,
        scid: Option<ConnectionId>,
        pn_offset: usize,
    },
    Retry {
        scid: ConnectionId,
        token: Bytes,
    },
    VersionNegotiation {
        versions: Vec<Version>,
    },
    Other,
}

impl Connection {
    pub(super) fn on_datagram(&mut self, now: Instant, meta: DatagramMeta, mut data: BytesMut) {
        if matches!(self.state, State::Draining { .. } | State::Drained) {
            return;
        }
        let len = data.len() as u64;
        self.stats.bytes_received += len;
        self.path.bytes_received += len;
        if !self.path.validated {
            //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2.1
            //# When the server receives a datagram from the client, the amplification limit is
            //# increased and the server resets the PTO timer.
            self.loss.set_amplification_blocked(now, false);
        }
        let tail: Option<[u8; StatelessResetToken::LEN]> = data
            .len()
            .checked_sub(StatelessResetToken::LEN)
            .map(|at| data[at..].try_into().expect("16 bytes"));
        // The allocation every packet split from `data` shares: stream and
        // CRYPTO data kept without copying keep all of it alive.
        let footprint = data.capacity();
        let mut first = true;
        while !data.is_empty() {
            let parsed = PartialDecode::parse(&data, self.local_cid.len(), false)
                .map(|d| (d.packet_len(), kind_of(&d)));
            let Ok((packet_len, kind)) = parsed else {
                self.qlog_dropped(now, None, data.len(), DropTrigger::Invalid);
                if first {
                    self.check_stateless_reset(now, tail.as_ref(), len as usize);
                }
                break;
            };
            let packet = data.split_to(packet_len.min(data.len()));
            match self.on_packet(now, meta, packet, kind, footprint) {
                Ok(true) => {}
                Ok(false) if first => self.check_stateless_reset(now, tail.as_ref(), len as usize),
                Ok(false) => {}
                Err(e) => {
                    self.close_with_error(now, e);
                    return;
                }
            }
            if !self.is_open() {
                break;
            }
            first = false;
        }
        if matches!(self.state, State::Closing { .. }) {
            // Each datagram in the closing period earns one more CONNECTION_CLOSE.
            self.close_pending = true;
        }
        self.retry_undecryptable(now);
    }

    fn check_stateless_reset(&mut self, now: Instant, tail: Option<&[u8; 16]>, len: usize) {
        let (Some(token), Some(tail)) = (self.peer_reset_token, tail) else { return };
        // Rebuild a minimal view: only the length and the last 16 bytes matter.
        let mut view = vec![0u8; len.max(16)];
        let at = view.len() - 16;
        view[at..].copy_from_slice(tail);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.1
        //# If the last 16 bytes of the datagram are identical in value to a stateless reset
        //# token, the endpoint MUST enter the draining period and not send any further
        //# packets on this connection.
        if is_stateless_reset(&view, [&token]) {
            self.enter_draining(now, ConnectionError::Reset);
        }
    }

    /// Processes one packet, split from a datagram whose allocation is
    /// `footprint` bytes. `Ok(true)`: authenticated and processed.
    /// `Ok(false)`: dropped. `Err`: the connection must close.
    fn on_packet(
        &mut self,
        now: Instant,
        meta: DatagramMeta,
        mut packet: BytesMut,
        kind: Kind,
        footprint: usize,
    ) -> Result<bool, TransportError> {
        let (level, dcid, scid, pn_offset) = match kind {
            Kind::Protected { level, dcid, scid, pn_offset } => (level, dcid, scid, pn_offset),
            Kind::Retry { scid, token } => {
                let accepted = self.on_retry(now, &packet, scid, token);
                if !accepted {
                    self.qlog_dropped(
                        now,
                        Some(PacketType::Retry),
                        packet.len(),
                        DropTrigger::Rejected,
                    );
                }
                return Ok(accepted);
            }
            Kind::VersionNegotiation { versions } => {
                self.on_version_negotiation(now, &versions);
                return Ok(false);
            }
            Kind::Other => {
                self.qlog_dropped(now, None, packet.len(), DropTrigger::Unsupported);
                return Ok(false);
            }
        };
        let space = level.space();
        // 0-RTT is not supported yet: such packets are dropped (and the
        // client retransmits their data in 1-RTT packets).
        let qlog_type = Some(PacketType::from_level(level));
        if level == EncryptionLevel::ZeroRtt || self.spaces[space as usize].discarded {
            let trigger = if level == EncryptionLevel::ZeroRtt {
                DropTrigger::Unsupported
            } else {
                DropTrigger::KeyUnavailable
            };
            self.qlog_dropped(now, qlog_type, packet.len(), trigger);
            return Ok(false);
        }
        //= https://www.rfc-editor.org/rfc/rfc9001#section-5.7
        //# Even if it has 1-RTT secrets, a client MUST NOT process
        //# incoming 1-RTT protected packets before the TLS handshake is complete.
        let keys_ready = match level {
            EncryptionLevel::OneRtt => {
                self.one_rtt.is_some() && (self.side.is_server() || self.handshake_complete)
            }
            _ => self.spaces[space as usize].keys.is_some(),
        };
        if !keys_ready {
            if self.undecryptable.len() < self.config.limits.max_undecryptable_packets {
                self.qlog_buffered(now, PacketType::from_level(level), packet.len());
                self.undecryptable.push_back((meta, packet));
            } else {
                self.qlog_dropped(now, qlog_type, packet.len(), DropTrigger::KeyUnavailable);
            }
            return Ok(false);
        }
        // A client accepts the server's connection ID from its first
        // Initial and from nothing else (RFC 9000 §7.2).
        if let Some(scid) = scid
            && self.side.is_client()
            && self.remote_cid_set
            && scid != self.remote_cid
        {
            self.qlog_dropped(now, qlog_type, packet.len(), DropTrigger::Rejected);
            return Ok(false);
        }

        let hp = match level {
            EncryptionLevel::OneRtt => &self.one_rtt.as_ref().expect("checked").remote_hp,
            _ => &self.spaces[space as usize].keys.as_ref().expect("checked").remote.header,
        };
        let Ok((pn_len, truncated)) = remove_header_protection(hp, &mut packet, pn_offset) else {
            self.qlog_dropped(now, qlog_type, packet.len(), DropTrigger::Invalid);
            return Ok(false);
        };
        let largest =
            self.spaces[space as usize].ack.largest_received().and_then(PacketNumber::new);
        let pn_len_v = PacketNumberLen::new(pn_len).expect("header protection yields 1 to 4");
        let pn = decode_packet_number(largest, truncated, pn_len_v).into_inner();
        let header_len = pn_offset + pn_len;
        let first_byte = packet[0];

        let opened = match level {
            EncryptionLevel::OneRtt => {
                let keys = self.one_rtt.as_mut().expect("checked");
                let (choice, key) = keys.choose(key_phase(first_byte), pn);
                let limit = key.integrity_limit();
                match open_payload(key, pn, &mut packet, header_len) {
                    Ok(len) => Some((len, Some(choice))),
                    Err(_) => {
                        keys.failed_openings += 1;
                        //= https://www.rfc-editor.org/rfc/rfc9001#section-6.6
                        //# If the total number of received packets that fail authentication within the
                        //# connection, across all keys, exceeds the integrity limit for the selected AEAD,
                        //# the endpoint MUST immediately close the connection with a connection error of
                        //# type AEAD_LIMIT_REACHED and not process any more packets.
                        if keys.failed_openings > limit {
                            return Err(TransportError::aead_limit_reached(
                                "too many packets failed authentication",
                            ));
                        }
                        None
                    }
                }
            }
            _ => {
                let keys = self.spaces[space as usize].keys.as_ref().expect("checked");
                open_payload(&keys.remote.packet, pn, &mut packet, header_len)
                    .ok()
                    .map(|len| (len, None))
            }
        };
        let Some((plain_len, choice)) = opened else {
            self.qlog_dropped(now, qlog_type, packet.len(), DropTrigger::DecryptionFailure);
            return Ok(false);
        };
        check_reserved_bits(first_byte)?;
        if let Some(choice) = choice {
            let pto = self.loss.pto_period(SpaceId::Data);
            let keys = self.one_rtt.as_mut().expect("checked");
            keys.on_opened(choice, pn, now + 3 * pto)?;
            if choice == KeyChoice::Next {
                self.stats.key_updates += 1;
                self.qlog_key_update(now, self.stats.key_updates, false);
            }
        }
        if self.spaces[space as usize].ack.is_duplicate(pn) {
            self.qlog_dropped(now, qlog_type, packet.len(), DropTrigger::Duplicate);
            return Ok(false);
        }
        self.stats.packets_received += 1;
        if self.qlog.is_some() {
            let plain = &packet[header_len..header_len + plain_len];
            let phase_bit = key_phase(first_byte);
            self.qlog_packet_received(now, level, pn, dcid, scid, phase_bit, packet.len(), plain);
        }

        if let Some(scid) = scid
            && self.side.is_client()
            && !self.remote_cid_set
        {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-7.2
            //# When an Initial packet is sent by a client that has not previously
            //# received an Initial or Retry packet from the server, the client
            //# populates the Destination Connection ID field with an unpredictable value.
            // ...and switches to the server's choice once it hears from it.
            self.qlog_remote_cid(now, self.remote_cid, scid);
            self.remote_cid = scid;
            self.remote_cid_set = true;
        }
        if self.side.is_server() && level == EncryptionLevel::Handshake {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1
            //# In particular, receipt of a packet protected with Handshake keys
            //# confirms that the peer successfully processed an Initial packet.
            self.path.validated = true;
            self.loss.set_amplification_blocked(now, false);
            //= https://www.rfc-editor.org/rfc/rfc9001#section-4.9.1
            //# Thus, a client MUST discard Initial keys
            //# when it first sends a Handshake packet and a server MUST discard Initial keys
            //# when it first successfully processes a Handshake packet.
            self.discard_space(now, SpaceId::Initial);
        }

        let payload = packet.freeze().slice(header_len..header_len + plain_len);
        self.cids.packet_dcid = dcid;
        let ack_eliciting = self.process_frames(now, level, &payload, footprint)?;
        self.spaces[space as usize].ack.on_packet_received(now, pn, ack_eliciting, meta.ecn);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.1
        //# An endpoint restarts its idle timer when a packet from its peer is
        //# received and processed successfully.
        self.reset_idle_timer(now);
        Ok(true)
    }

    /// Processes a packet's frames; returns whether any was ack-eliciting.
    /// `footprint`: the size of the allocation `payload` is a slice of.
    fn process_frames(
        &mut self,
        now: Instant,
        level: EncryptionLevel,
        payload: &Bytes,
        footprint: usize,
    ) -> Result<bool, TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-12.4
        //# An endpoint MUST treat receipt of a packet containing no frames as a
        //# connection error of type PROTOCOL_VIOLATION.
        if payload.is_empty() {
            return Err(TransportError::protocol_violation("packet without frames"));
        }
        let space = level.space();
        let mut ack_eliciting = false;
        let mut ping_only = true;
        for frame in Frames::new(payload) {
            let frame = frame?;
            frame.check_allowed_at(level)?;
            ack_eliciting |= frame.is_ack_eliciting();
            ping_only &= matches!(frame, Frame::Padding { .. } | Frame::Ping);
            match frame {
                Frame::Padding { .. } | Frame::Ping => {}
                Frame::Ack(ack) => {
                    let outcome = self.loss.on_ack_received(now, space, &ack, &mut *self.cc)?;
                    self.on_ack_outcome(now, space, outcome);
                }
                Frame::Crypto(c) => {
                    let end = c.end();
                    let s = &mut self.spaces[space as usize];
                    if end > s.crypto_recv.consumed() + s.crypto_limit {
                        //= https://www.rfc-editor.org/rfc/rfc9000#section-7.5
                        //# If an endpoint does not expand its buffer, it MUST close
                        //# the connection with a CRYPTO_BUFFER_EXCEEDED error code.
                        return Err(TransportError::crypto_buffer_exceeded(
                            "CRYPTO data too far ahead",
                        ));
                    }
                    s.crypto_recv
                        .insert_in(
                            c.offset.into_inner(),
                            payload.slice_ref(c.data),
                            false,
                            footprint,
                        )
                        .map_err(|_| {
                            TransportError::crypto_buffer_exceeded("CRYPTO data too fragmented")
                        })?;
                    self.on_crypto_data(now, level)?;
                }
                Frame::NewToken(t) => {
                    //= https://www.rfc-editor.org/rfc/rfc9000#section-19.7
                    //# A server MUST treat receipt
                    //# of a NEW_TOKEN frame as a connection error of type PROTOCOL_VIOLATION.
                    if self.side.is_server() {
                        return Err(TransportError::protocol_violation("NEW_TOKEN from a client")
                            .with_frame(FrameType::NEW_TOKEN));
                    }
                    // The application keeps it for the next connection to this server.
                    self.events.push_back(Event::NewToken(payload.slice_ref(t.token)));
                }
                Frame::Stream(s) => {
                    let data = payload.slice_ref(s.data);
                    let offset = s.offset.into_inner();
                    self.streams.on_stream_frame(s.id, offset, data, s.fin, footprint)?;
                }
                Frame::ResetStream(r) => {
                    let size = r.final_size.into_inner();
                    self.streams.on_reset_stream(now, r.id, r.error_code, size)?
                }
                Frame::StopSending(s) => self.streams.on_stop_sending(now, s.id, s.error_code)?,
                Frame::MaxData(m) => self.streams.on_max_data(m.maximum),
                Frame::MaxStreamData(m) => self.streams.on_max_stream_data(m.id, m.maximum)?,
                Frame::MaxStreams(m) => self.streams.on_max_streams(m.dir, m.maximum)?,
                Frame::DataBlocked(_) | Frame::StreamsBlocked(_) => {}
                Frame::StreamDataBlocked(b) => self.streams.on_stream_data_blocked(b.id)?,
                Frame::NewConnectionId(n) => self.on_new_connection_id(&n)?,
                Frame::RetireConnectionId(r) => self.on_retire_connection_id(r.sequence)?,
                Frame::PathChallenge(c) => {
                    // Bounded: a peer flooding challenges gets answers to the latest ones.
                    if self.path_responses.len() >= self.config.limits.max_pending_path_responses {
                        self.path_responses.pop_front();
                    }
                    self.path_responses.push_back(c.data);
                }
                Frame::PathResponse(_) => {}
                Frame::ConnectionClose(c) => {
                    let error = ConnectionError::ConnectionClosed {
                        code: c.error_code,
                        frame_type: (c.frame_type != FrameType::PADDING).then_some(c.frame_type),
                        reason: payload.slice_ref(c.reason),
                    };
                    self.enter_draining(now, error);
                    return Ok(ack_eliciting);
                }
                Frame::ApplicationClose(c) => {
                    let error = ConnectionError::ApplicationClosed {
                        code: c.error_code,
                        reason: payload.slice_ref(c.reason),
                    };
                    self.enter_draining(now, error);
                    return Ok(ack_eliciting);
                }
                Frame::HandshakeDone => {
                    //= https://www.rfc-editor.org/rfc/rfc9000#section-19.20
                    //# A server MUST
                    //# treat receipt of a HANDSHAKE_DONE frame as a connection error of type
                    //# PROTOCOL_VIOLATION.
                    if self.side.is_server() {
                        return Err(TransportError::protocol_violation(
                            "HANDSHAKE_DONE from a client",
                        )
                        .with_frame(FrameType::HANDSHAKE_DONE));
                    }
                    self.on_handshake_confirmed(now);
                }
                Frame::Datagram(d) => self.on_datagram_frame(d.data)?,
            }
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-21.9
        //# While there are legitimate uses for all messages, implementations SHOULD track
        //# cost of processing relative to progress and treat excessive quantities of any
        //# non-productive packets as indicative of an attack.
        //
        // Handshake-level probes are PING-only by design and few; in 1-RTT
        // a flood of them is a peer burning this endpoint's time.
        if ping_only && level == EncryptionLevel::OneRtt && !self.ping_only_limit.take(now) {
            return Err(TransportError::protocol_violation("excessive PING-only packets"));
        }
        Ok(ack_eliciting)
    }

    fn on_datagram_frame(&mut self, data: &[u8]) -> Result<(), TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9221#section-3
        //# An endpoint that receives a DATAGRAM frame when it has not indicated support via
        //# the transport parameter MUST terminate the connection with an error of type
        //# PROTOCOL_VIOLATION.
        let Some(buffer) = self.config.datagram_receive_buffer else {
            return Err(TransportError::protocol_violation("DATAGRAM frames were not enabled")
                .with_frame(FrameType::DATAGRAM));
        };
        // Unreliable by design: when the application falls behind, the
        // oldest datagrams go. Bounded in bytes and in number, so that a
        // flood of empty datagrams (whose queue entries cost memory but
        // no bytes) is bounded like a flood of full ones.
        let max_count = self.config.limits.max_received_datagrams;
        while self.datagrams_in_bytes + data.len() > buffer || self.datagrams_in.len() >= max_count
        {
            let Some(old) = self.datagrams_in.pop_front() else { return Ok(()) };
            self.datagrams_in_bytes -= old.len();
            self.stats.datagrams_dropped += 1;
        }
        // Copied out, so that a small datagram does not keep the whole
        // received packet alive while it waits.
        let data = Bytes::copy_from_slice(data);
        self.datagrams_in_bytes += data.len();
        self.datagrams_in.push_back(data);
        // One event for any number of datagrams waiting: the application
        // reads until `read_datagram` says none are left.
        if !self.datagram_event_pending {
            self.datagram_event_pending = true;
            self.events.push_back(Event::DatagramReceived);
        }
        Ok(())
    }

    /// Acts on newly acknowledged and lost packets.
    pub(super) fn on_ack_outcome(
        &mut self,
        now: Instant,
        space: SpaceId,
        outcome: AckOutcome<SentFrames>,
    ) {
        self.qlog_acked(now, space, &outcome.acked);
        for packet in outcome.acked {
            self.on_packet_acked(space, packet);
        }
        self.qlog_lost(now, space, &outcome.lost);
        self.on_packets_lost(space, outcome.lost);
        let _ = now;
    }

    fn on_packet_acked(&mut self, space: SpaceId, packet: SentPacket<SentFrames>) {
        let f = packet.payload;
        self.cids.on_acked(&f);
        if let Some(range) = f.crypto {
            self.spaces[space as usize].crypto_send.on_ack(range, false);
        }
        if let Some(largest) = f.largest_acked {
            self.spaces[space as usize].ack.on_ack_of_ack(largest);
        }
        for (id, range, fin) in f.stream {
            self.streams.on_stream_acked(id, range, fin);
        }
        for (id, _, _) in f.reset_stream {
            self.streams.on_reset_acked(id);
        }
        if f.handshake_done {
            self.handshake_done_pending = false;
        }
    }

    pub(super) fn on_packets_lost(&mut self, space: SpaceId, lost: Vec<SentPacket<SentFrames>>) {
        self.stats.packets_lost += lost.len() as u64;
        for packet in lost {
            self.requeue_frames(space, packet.payload);
        }
    }

    /// Queues what a packet carried to be sent again: after its loss, or in
    /// a PTO probe while it may still be in flight (RFC 9002 §6.2.4).
    /// Repeating a frame the peer did get is harmless: every frame here is
    /// idempotent.
    pub(super) fn requeue_frames(&mut self, space: SpaceId, f: SentFrames) {
        {
            self.cids.on_lost(&f);
            if f.new_token.is_some() && self.new_token_pending.is_none() {
                self.new_token_pending = f.new_token.clone();
            }
            if let Some(range) = f.crypto {
                self.spaces[space as usize].crypto_send.on_lost(range, false);
            }
            for (id, range, fin) in f.stream {
                self.streams.on_stream_lost(id, range, fin);
            }
            for (id, code, final_size) in f.reset_stream {
                self.streams.on_reset_lost(id, code, final_size);
            }
            for id in f.max_stream_data {
                self.streams.pending_max_stream_data.insert(id);
            }
            for (id, _) in f.stop_sending {
                self.streams.pending_stop.insert(id);
            }
            if let Some(limit) = f.data_blocked {
                self.streams.on_data_blocked_lost(limit);
            }
            for (id, limit) in f.stream_data_blocked {
                self.streams.on_stream_data_blocked_lost(id, limit);
            }
            for (dir, limit) in f.streams_blocked {
                self.streams.on_streams_blocked_lost(dir, limit);
            }
            self.streams.pending_max_data |= f.max_data;
            self.streams.pending_max_streams[0] |= f.max_streams_bidi;
            self.streams.pending_max_streams[1] |= f.max_streams_uni;
            self.handshake_done_pending |= f.handshake_done && self.side.is_server();
        }
    }

    fn on_retry(&mut self, now: Instant, packet: &[u8], scid: ConnectionId, token: Bytes) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.5.2
        //# A client MUST accept and process at most one Retry packet for each
        //# connection attempt.  After the client has received and processed an
        //# Initial or Retry packet from the server, it MUST discard any
        //# subsequent Retry packets that it receives.
        if self.side.is_server() || self.retry_received || self.remote_cid_set {
            return false;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.5.2
        //# Clients MUST discard Retry packets that have a Retry Integrity Tag that
        //# cannot be validated; see Section 5.8 of [QUIC-TLS].
        if !verify_retry_integrity(self.version, &self.original_dcid, packet) {
            return false;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.5.2
        //# A client MUST discard a Retry packet that contains a Source
        //# Connection ID field that is identical to the Destination Connection
        //# ID field of its Initial packet.
        if scid == self.remote_cid {
            return false;
        }
        self.retry_received = true;
        self.retry_scid = Some(scid);
        self.qlog_remote_cid(now, self.remote_cid, scid);
        self.remote_cid = scid;
        self.token = token;
        if self.install_initial_keys(&scid).is_err() {
            return false;
        }
        // Everything sent in Initial packets goes again, under the new keys.
        // A Retry is not loss: requeue without counting packets as lost
        // (RFC 9002 §6.3 resets recovery for the new Initials instead).
        for (space, packet) in self.loss.on_retry(now) {
            self.requeue_frames(space, packet.payload);
        }
        true
    }

    fn on_version_negotiation(&mut self, now: Instant, versions: &[Version]) {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-6.2
        //# A client MUST discard any Version Negotiation packet if it has
        //# received and successfully processed any other packet, including an
        //# earlier Version Negotiation packet.  A client MUST discard a Version
        //# Negotiation packet that lists the QUIC version selected by the
        //# client.
        if self.side.is_server() || self.remote_cid_set || versions.contains(&self.version) {
            return;
        }
        self.remote_cid_set = true;
        self.enter_draining(now, ConnectionError::VersionMismatch);
        // Nothing was agreed: there is no peer state to drain.
        self.state = State::Drained;
        self.qlog_state(now, ConnectionState::Closed);
        self.events.push_back(Event::Drained);
    }

    /// Retries packets that arrived before their keys.
    fn retry_undecryptable(&mut self, now: Instant) {
        if self.undecryptable.is_empty() || !self.is_open() {
            return;
        }
        let pending = std::mem::take(&mut self.undecryptable);
        let mut retried = Vec::new();
        for (meta, packet) in pending {
            let ready = PartialDecode::parse(&packet, self.local_cid.len(), false)
                .ok()
                .and_then(|d| d.encryption_level())
                .is_some_and(|level| match level {
                    EncryptionLevel::OneRtt => {
                        self.one_rtt.is_some() && (self.side.is_server() || self.handshake_complete)
                    }
                    l => self.spaces[l.space() as usize].keys.is_some(),
                });
            if ready {
                retried.push((meta, packet));
            } else {
                self.undecryptable.push_back((meta, packet));
            }
        }
        for (meta, packet) in retried {
            // Counted already when the datagram arrived.
            let len = packet.len() as u64;
            self.stats.bytes_received -= len;
            self.path.bytes_received -= len;
            self.on_datagram(now, meta, packet);
        }
    }

    /// The peer closed: stay silent for three PTOs, then drain.
    pub(super) fn enter_draining(&mut self, now: Instant, error: ConnectionError) {
        if matches!(self.state, State::Draining { .. } | State::Drained) {
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.2.2
        //# An endpoint that receives a CONNECTION_CLOSE frame MAY send a single packet
        //# containing a CONNECTION_CLOSE frame before entering the draining state, using a
        //# NO_ERROR code if appropriate.
        // (This endpoint does not: it goes silent at once.)
        let until = now + 3 * self.loss.pto_period(SpaceId::Data);
        self.state = State::Draining { until };
        self.qlog_closed(now, Initiator::Remote, &error, ConnectionState::Draining);
        if self.error.is_none() {
            self.error = Some(error.clone());
            self.events.push_back(Event::ConnectionLost(error));
        }
    }
}

/// Extracts what the receive path needs from a parsed header.
fn kind_of(d: &PartialDecode<'_>) -> Kind {
    match d.header() {
        ProtectedHeader::Long(h) => Kind::Protected {
            level: h.ty.encryption_level().expect("long packets with a packet number have a level"),
            dcid: Some(h.dcid),
            scid: Some(h.scid),
            pn_offset: d.pn_offset().expect("long packets with a packet number have an offset"),
        },
        ProtectedHeader::Short(h) => Kind::Protected {
            level: EncryptionLevel::OneRtt,
            dcid: Some(h.dcid),
            scid: None,
            pn_offset: d.pn_offset().expect("short packets have a packet number offset"),
        },
        ProtectedHeader::Retry(r) => {
            Kind::Retry { scid: r.scid, token: Bytes::copy_from_slice(r.token) }
        }
        ProtectedHeader::VersionNegotiation(vn) => {
            Kind::VersionNegotiation { versions: vn.versions().collect() }
        }
        _ => Kind::Other,
    }
}
