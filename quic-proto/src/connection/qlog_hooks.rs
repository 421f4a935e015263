//! qlog emission points of the connection: each is one cheap `Option`
//! check; events are built (in `crate::qlog::events`) only when a sink is
//! set.

use super::{Connection, ConnectionError};
use crate::cid::ConnectionId;
use crate::packet::Header;
use crate::qlog::events::{
    ConnectionState, DropTrigger, Event, Initiator, KeyTrigger, KeyType, PacketEvent, PacketFrames,
    PacketHeader, PacketType, RecoveryMetrics,
};
use crate::qlog::{ConnectionQlog, QlogFormat, QlogSink};
use crate::recovery::{LossTimerKind, SentPacket};
use crate::space::{EncryptionLevel, SpaceId};
use crate::stream_id::Side;
use crate::time::Instant;

use super::spaces::SentFrames;

fn ms(d: core::time::Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

impl Connection {
    /// Emits the event `build` makes, if qlog is on.
    #[inline]
    pub(super) fn qlog_event<'e>(&mut self, now: Instant, build: impl FnOnce() -> Event<'e>) {
        if let Some(q) = &mut self.qlog {
            q.emit(now, &build());
        }
    }

    /// `parameters_set` for our (`Local`) or the peer's parameters.
    #[inline]
    pub(super) fn qlog_params(&mut self, now: Instant, initiator: Initiator) {
        let Some(mut q) = self.qlog.take() else { return };
        let params = match initiator {
            Initiator::Local => Some(&self.local_params),
            Initiator::Remote => self.peer_params.as_ref(),
        };
        if let Some(params) = params {
            q.emit(now, &Event::ParametersSet { initiator, params });
        }
        self.qlog = Some(q);
    }

    /// Starts logging: the file header, then what happened before the
    /// sink was set (start, local parameters, Initial keys).
    pub(super) fn qlog_start(&mut self, sink: Box<dyn QlogSink>, format: QlogFormat) {
        let now = self.latest_now;
        let (side, odcid, start) = (self.side, &self.original_dcid, self.start);
        self.qlog = Some(Box::new(ConnectionQlog::new(sink, side, odcid, start, format)));
        self.streams.state_log = Some(Vec::new());
        let (remote, local_cid, remote_cid) = (self.path.remote, self.local_cid, self.remote_cid);
        self.qlog_event(now, || Event::ConnectionStarted {
            local: None,
            remote,
            local_cid,
            remote_cid,
        });
        self.qlog_event(now, || Event::ConnectionStateUpdated {
            old: None,
            new: ConnectionState::Attempted,
        });
        let version = [self.version];
        let client = self.side.is_client();
        self.qlog_event(now, || Event::VersionInformation {
            client_versions: if client { &version } else { &[] },
            server_versions: &[],
            chosen_version: Some(version[0]),
        });
        self.qlog_params(now, Initiator::Local);
        let (initial_rtt, mtu, window) =
            (self.loss.rtt().smoothed_rtt(), self.path.mtu, self.cc.window());
        self.qlog_event(now, || Event::RecoveryParametersSet {
            initial_rtt,
            max_datagram_size: u64::from(mtu),
            initial_congestion_window: window,
        });
        if self.spaces[SpaceId::Initial as usize].keys.is_some() {
            self.qlog_keys_installed(now, EncryptionLevel::Initial);
        }
        self.qlog_sync(now);
    }

    /// Recovery metrics, congestion state and loss timer, after an input.
    #[inline]
    pub(super) fn qlog_sync(&mut self, now: Instant) {
        if self.qlog.is_none() {
            return;
        }
        let changes = self.streams.state_log.as_mut().map(std::mem::take).unwrap_or_default();
        for c in changes {
            // The qlog draft: "QUIC implementations SHOULD mainly log the
            // simplified BaseStreamStates": open when a stream side (RFC
            // 9000 §3) is created, closed when it is gone.
            self.qlog_event(now, || Event::StreamStateUpdated {
                stream_id: c.id.to_varint().into_inner(),
                dir: c.id.dir(),
                new: if c.open { "open" } else { "closed" },
                sending: c.sending,
                initiator: if c.local { Initiator::Local } else { Initiator::Remote },
            });
        }
        let Some(q) = &mut self.qlog else { return };
        let rtt = self.loss.rtt();
        let sampled = rtt.has_sample();
        let metrics = RecoveryMetrics {
            min_rtt: sampled.then(|| ms(rtt.min_rtt())),
            smoothed_rtt: Some(ms(rtt.smoothed_rtt())),
            latest_rtt: sampled.then(|| ms(rtt.latest_rtt())),
            rtt_variance: Some(ms(rtt.rttvar())),
            pto_count: Some(u64::from(self.loss.pto_count())),
            congestion_window: Some(self.cc.window()),
            bytes_in_flight: Some(self.loss.bytes_in_flight()),
            ssthresh: self.cc.ssthresh(),
        };
        q.sync_recovery(now, metrics, self.cc.state(), self.loss.timer_detail());
    }

    /// The loss detection timer fired.
    #[inline]
    pub(super) fn qlog_loss_timer_expired(
        &mut self,
        now: Instant,
        kind: LossTimerKind,
        space: SpaceId,
    ) {
        if let Some(q) = &mut self.qlog {
            q.loss_timer_expired(now, kind, space);
        }
    }

    /// Keys for `level` arrived (both directions).
    #[inline]
    pub(super) fn qlog_keys_installed(&mut self, now: Instant, level: EncryptionLevel) {
        if self.qlog.is_none() {
            return;
        }
        let key_phase = (level == EncryptionLevel::OneRtt).then_some(0);
        for side in [Side::Client, Side::Server] {
            self.qlog_event(now, || Event::KeyUpdated {
                key_type: KeyType { side, level },
                key_phase,
                trigger: KeyTrigger::Tls,
            });
        }
        if level == EncryptionLevel::Handshake {
            self.qlog_state(now, ConnectionState::HandshakeStarted);
        }
    }

    /// A space's keys were discarded (both directions).
    #[inline]
    /// The peer's 1-RTT key of the previous key phase was dropped, about
    /// three PTOs after the update that retired it (RFC 9001 §6.5).
    pub(super) fn qlog_previous_1rtt_key_discarded(&mut self, now: Instant) {
        if self.qlog.is_none() {
            return;
        }
        let phase = self.stats.key_updates.saturating_sub(1);
        let side = !self.side;
        let trigger = if self.last_key_update_local {
            KeyTrigger::LocalUpdate
        } else {
            KeyTrigger::RemoteUpdate
        };
        self.qlog_event(now, || Event::KeyDiscarded {
            key_type: KeyType { side, level: EncryptionLevel::OneRtt },
            key_phase: Some(phase),
            trigger,
        });
    }

    pub(super) fn qlog_keys_discarded(&mut self, now: Instant, space: SpaceId) {
        if self.qlog.is_none() {
            return;
        }
        let level = match space {
            SpaceId::Initial => EncryptionLevel::Initial,
            SpaceId::Handshake => EncryptionLevel::Handshake,
            SpaceId::Data => EncryptionLevel::OneRtt,
        };
        for side in [Side::Client, Side::Server] {
            self.qlog_event(now, || Event::KeyDiscarded {
                key_type: KeyType { side, level },
                key_phase: None,
                trigger: KeyTrigger::Tls,
            });
        }
    }

    /// A 1-RTT key update to `phase` (counting updates), by either side.
    #[inline]
    pub(super) fn qlog_key_update(&mut self, now: Instant, phase: u64, local: bool) {
        self.last_key_update_local = local;
        if self.qlog.is_none() {
            return;
        }
        let trigger = if local { KeyTrigger::LocalUpdate } else { KeyTrigger::RemoteUpdate };
        for side in [Side::Client, Side::Server] {
            self.qlog_event(now, || Event::KeyUpdated {
                key_type: KeyType { side, level: EncryptionLevel::OneRtt },
                key_phase: Some(phase),
                trigger,
            });
        }
    }

    #[inline]
    pub(super) fn qlog_state(&mut self, now: Instant, new: ConnectionState) {
        self.qlog_event(now, || Event::ConnectionStateUpdated { old: None, new });
    }

    /// The connection ended (`initiator` closed it) and is now `state`.
    #[inline]
    pub(super) fn qlog_closed(
        &mut self,
        now: Instant,
        initiator: Initiator,
        error: &ConnectionError,
        state: ConnectionState,
    ) {
        if self.qlog.is_none() {
            return;
        }
        self.qlog_event(now, || Event::ConnectionClosed { initiator, error });
        self.qlog_state(now, state);
    }

    /// The peer's connection ID changed.
    #[inline]
    pub(super) fn qlog_remote_cid(&mut self, now: Instant, old: ConnectionId, new: ConnectionId) {
        self.qlog_event(now, || Event::ConnectionIdUpdated {
            initiator: Initiator::Remote,
            old: Some(old),
            new: Some(new),
        });
    }

    /// The plaintext frames of a packet being built, read before sealing;
    /// `None` (and no work) when qlog is off.
    #[inline]
    pub(super) fn qlog_frames(&self, plaintext: &[u8], space: SpaceId) -> Option<PacketFrames> {
        self.qlog.as_ref()?;
        let exponent = if space == SpaceId::Data { self.config.ack_delay_exponent } else { 3 };
        Some(PacketFrames::of(plaintext, exponent))
    }

    /// A packet was sent: `frames` from [`Self::qlog_frames`], `padding`
    /// the bytes sealing added, `size` its length on the wire.
    #[inline]
    pub(super) fn qlog_packet_sent(
        &mut self,
        now: Instant,
        header: &Header,
        pn: u64,
        frames: Option<PacketFrames>,
        padding: usize,
        size: usize,
    ) {
        let Some(mut frames) = frames else { return };
        frames.add_padding(padding as u64);
        let header = PacketHeader::from_header(header, pn);
        self.qlog_event(now, || {
            Event::PacketSent(PacketEvent { header, frames, length: size as u64 })
        });
    }

    /// A packet was authenticated and is about to be processed.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn qlog_packet_received(
        &mut self,
        now: Instant,
        level: EncryptionLevel,
        pn: u64,
        dcid: Option<ConnectionId>,
        scid: Option<ConnectionId>,
        key_phase_bit: bool,
        size: usize,
        payload: &[u8],
    ) {
        if self.qlog.is_none() {
            return;
        }
        let exponent = match level {
            EncryptionLevel::OneRtt | EncryptionLevel::ZeroRtt => {
                self.peer_params.as_ref().map_or(3, |p| p.ack_delay_exponent)
            }
            _ => 3,
        };
        let frames = PacketFrames::of(payload, exponent);
        let mut header = PacketHeader::new(PacketType::from_level(level), Some(pn));
        header.dcid = dcid;
        header.scid = scid;
        if level == EncryptionLevel::OneRtt {
            header.key_phase_bit = Some(key_phase_bit);
        } else {
            header.version = Some(self.version);
        }
        self.qlog_event(now, || {
            Event::PacketReceived(PacketEvent { header, frames, length: size as u64 })
        });
    }

    /// A packet (or an unparsable rest of a datagram) was dropped.
    #[inline]
    pub(super) fn qlog_dropped(
        &mut self,
        now: Instant,
        packet_type: Option<PacketType>,
        size: usize,
        trigger: DropTrigger,
    ) {
        self.qlog_event(now, || Event::PacketDropped {
            header: packet_type.map(|t| PacketHeader::new(t, None)),
            length: size as u64,
            trigger,
        });
    }

    /// A packet was kept until its keys arrive.
    #[inline]
    pub(super) fn qlog_buffered(&mut self, now: Instant, packet_type: PacketType, size: usize) {
        self.qlog_event(now, || Event::PacketBuffered { packet_type, length: size as u64 });
    }

    /// Packets of `space` were newly acknowledged.
    #[inline]
    pub(super) fn qlog_acked(
        &mut self,
        now: Instant,
        space: SpaceId,
        acked: &[SentPacket<SentFrames>],
    ) {
        if acked.is_empty() {
            return;
        }
        self.qlog_event(now, || Event::PacketsAcked {
            space,
            packet_numbers: acked.iter().map(|p| p.packet_number).collect(),
        });
    }

    /// Packets of `space` were declared lost.
    #[inline]
    pub(super) fn qlog_lost(
        &mut self,
        now: Instant,
        space: SpaceId,
        lost: &[SentPacket<SentFrames>],
    ) {
        if self.qlog.is_none() {
            return;
        }
        for p in lost {
            let header = PacketHeader::new(PacketType::from_space(space), Some(p.packet_number));
            let trigger = self.loss.loss_trigger(space, p.packet_number);
            self.qlog_event(now, || Event::PacketLost { header, trigger });
        }
    }
}
