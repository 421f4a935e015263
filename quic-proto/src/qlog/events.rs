//! Typed qlog QUIC events (draft-ietf-quic-qlog-quic-events-13) and their
//! JSON form. Each [`Event`] variant is one event type; its `data` fields
//! carry the draft's field names and value spellings.
//!
//! Builders (`packet_sent`, `packet_received`, `connection_closed`, ...)
//! turn connection state into events, so that the connection files only
//! hold the emission points.

use super::json::JsonWriter;
use crate::cid::ConnectionId;
use crate::congestion::CongestionState;
use crate::connection::ConnectionError;
use crate::error::TransportErrorCode;
use crate::frame::{Frame, Frames};
use crate::packet::{Header, LongType};
use crate::recovery::LossTrigger;
use crate::space::{EncryptionLevel, SpaceId};
use crate::stream_id::{Dir, Side};
use crate::transport_params::TransportParameters;
use crate::version::Version;

/// Which endpoint an event concerns (qlog `Initiator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// This endpoint.
    Local,
    /// The peer.
    Remote,
}

impl Initiator {
    fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Remote => "remote",
        }
    }
}

/// qlog `$PacketType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketType {
    /// Initial.
    Initial,
    /// Handshake.
    Handshake,
    /// 0-RTT.
    ZeroRtt,
    /// 1-RTT (short header).
    OneRtt,
    /// Retry.
    Retry,
    /// Version Negotiation.
    VersionNegotiation,
    /// A stateless reset.
    StatelessReset,
    /// Not parsable.
    Unknown,
}

impl PacketType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Handshake => "handshake",
            Self::ZeroRtt => "0RTT",
            Self::OneRtt => "1RTT",
            Self::Retry => "retry",
            Self::VersionNegotiation => "version_negotiation",
            Self::StatelessReset => "stateless_reset",
            Self::Unknown => "unknown",
        }
    }

    /// The packet type that carries `level`.
    pub fn from_level(level: EncryptionLevel) -> Self {
        match level {
            EncryptionLevel::Initial => Self::Initial,
            EncryptionLevel::ZeroRtt => Self::ZeroRtt,
            EncryptionLevel::Handshake => Self::Handshake,
            EncryptionLevel::OneRtt => Self::OneRtt,
        }
    }

    /// The packet type this stack sends in `space` (no 0-RTT).
    pub fn from_space(space: SpaceId) -> Self {
        match space {
            SpaceId::Initial => Self::Initial,
            SpaceId::Handshake => Self::Handshake,
            SpaceId::Data => Self::OneRtt,
        }
    }
}

/// qlog `$PacketNumberSpace` spelling of a space.
pub fn space_name(space: SpaceId) -> &'static str {
    match space {
        SpaceId::Initial => "initial",
        SpaceId::Handshake => "handshake",
        SpaceId::Data => "application_data",
    }
}

/// qlog `PacketHeader`: the fields this stack knows at the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketHeader {
    /// `packet_type`.
    pub packet_type: PacketType,
    /// `packet_number`, once known (not for dropped undecryptable packets).
    pub packet_number: Option<u64>,
    /// `version`, for long headers.
    pub version: Option<Version>,
    /// `scid`, for long headers.
    pub scid: Option<ConnectionId>,
    /// `dcid`.
    pub dcid: Option<ConnectionId>,
    /// `key_phase_bit`, for 1-RTT packets.
    pub key_phase_bit: Option<bool>,
}

impl PacketHeader {
    /// A header with only the packet type (and number).
    pub fn new(packet_type: PacketType, packet_number: Option<u64>) -> Self {
        Self {
            packet_type,
            packet_number,
            version: None,
            scid: None,
            dcid: None,
            key_phase_bit: None,
        }
    }

    /// The header of a packet this endpoint builds.
    pub fn from_header(header: &Header, packet_number: u64) -> Self {
        let mut h = Self::new(PacketType::Unknown, Some(packet_number));
        match header {
            Header::Initial { version, dcid, scid, .. } => {
                h.packet_type = PacketType::Initial;
                (h.version, h.dcid, h.scid) = (Some(*version), Some(*dcid), Some(*scid));
            }
            Header::Long { ty, version, dcid, scid } => {
                h.packet_type = match *ty {
                    LongType::Handshake => PacketType::Handshake,
                    LongType::ZeroRtt => PacketType::ZeroRtt,
                    LongType::Initial => PacketType::Initial,
                    _ => PacketType::Unknown,
                };
                (h.version, h.dcid, h.scid) = (Some(*version), Some(*dcid), Some(*scid));
            }
            Header::Short { key_phase, dcid, .. } => {
                h.packet_type = PacketType::OneRtt;
                h.dcid = Some(*dcid);
                h.key_phase_bit = Some(*key_phase);
            }
        }
        h
    }

    fn write(&self, w: &mut JsonWriter<'_>) {
        w.object("header");
        w.str("packet_type", self.packet_type.as_str());
        if let Some(pn) = self.packet_number {
            w.u64("packet_number", pn);
        }
        if let Some(bit) = self.key_phase_bit {
            w.bool("key_phase_bit", bit);
        }
        if let Some(v) = self.version {
            w.hex("version", &v.0.to_be_bytes());
        }
        if let Some(scid) = &self.scid {
            w.u64("scil", scid.len() as u64);
            w.hex("scid", scid);
        }
        if let Some(dcid) = &self.dcid {
            w.u64("dcil", dcid.len() as u64);
            w.hex("dcid", dcid);
        }
        w.end_object();
    }
}

/// A frame as qlog represents it (`$QuicFrame`): owned, so an event can
/// outlive the packet buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QlogFrame {
    /// `padding`, one per run, `raw.payload_length` = the run's bytes.
    Padding {
        /// Bytes of padding.
        len: u64,
    },
    /// `ping`.
    Ping,
    /// `ack`.
    Ack {
        /// ACK Delay in microseconds (scaled by the sender's exponent).
        ack_delay_micros: u64,
        /// `acked_ranges`, smallest first, inclusive.
        acked_ranges: Vec<(u64, u64)>,
        /// ECN counts (ect0, ect1, ce), for ACK_ECN.
        ecn: Option<(u64, u64, u64)>,
    },
    /// `reset_stream`.
    ResetStream {
        /// Stream.
        stream_id: u64,
        /// Application error code.
        error_code: u64,
        /// Final size.
        final_size: u64,
    },
    /// `stop_sending`.
    StopSending {
        /// Stream.
        stream_id: u64,
        /// Application error code.
        error_code: u64,
    },
    /// `crypto`.
    Crypto {
        /// Offset.
        offset: u64,
        /// Data length (`raw.length`, as the draft requires).
        length: u64,
    },
    /// `new_token`.
    NewToken {
        /// Token length.
        length: u64,
    },
    /// `stream`.
    Stream {
        /// Stream.
        stream_id: u64,
        /// Offset.
        offset: u64,
        /// Data length (`raw.length`, as the draft requires).
        length: u64,
        /// FIN bit.
        fin: bool,
    },
    /// `max_data`.
    MaxData {
        /// Limit.
        maximum: u64,
    },
    /// `max_stream_data`.
    MaxStreamData {
        /// Stream.
        stream_id: u64,
        /// Limit.
        maximum: u64,
    },
    /// `max_streams`.
    MaxStreams {
        /// Direction.
        dir: Dir,
        /// Limit.
        maximum: u64,
    },
    /// `data_blocked`.
    DataBlocked {
        /// Limit.
        limit: u64,
    },
    /// `stream_data_blocked`.
    StreamDataBlocked {
        /// Stream.
        stream_id: u64,
        /// Limit.
        limit: u64,
    },
    /// `streams_blocked`.
    StreamsBlocked {
        /// Direction.
        dir: Dir,
        /// Limit.
        limit: u64,
    },
    /// `new_connection_id`.
    NewConnectionId {
        /// Sequence number.
        sequence_number: u64,
        /// Retire Prior To.
        retire_prior_to: u64,
        /// The connection ID.
        connection_id: ConnectionId,
        /// Its stateless reset token.
        stateless_reset_token: [u8; 16],
    },
    /// `retire_connection_id`.
    RetireConnectionId {
        /// Sequence number.
        sequence_number: u64,
    },
    /// `path_challenge`.
    PathChallenge {
        /// Data.
        data: [u8; 8],
    },
    /// `path_response`.
    PathResponse {
        /// Data.
        data: [u8; 8],
    },
    /// `connection_close` (transport or application).
    ConnectionClose {
        /// Transport (0x1c) or application (0x1d).
        application: bool,
        /// Error code.
        error_code: u64,
        /// Frame type (transport only).
        trigger_frame_type: Option<u64>,
        /// Reason phrase bytes.
        reason: Vec<u8>,
    },
    /// `handshake_done`.
    HandshakeDone,
    /// `datagram`.
    Datagram {
        /// Payload length.
        length: u64,
    },
}

impl QlogFrame {
    /// The qlog representation of a decoded frame; `ack_delay_exponent`
    /// is the sender's (3 in Initial and Handshake packets).
    pub fn from_frame(frame: &Frame<'_>, ack_delay_exponent: u8) -> Self {
        match frame {
            Frame::Padding { len } => Self::Padding { len: *len as u64 },
            Frame::Ping => Self::Ping,
            Frame::Ack(ack) => {
                let mut acked_ranges: Vec<(u64, u64)> =
                    ack.ranges().map(|r| (*r.start(), *r.end())).collect();
                acked_ranges.reverse();
                Self::Ack {
                    ack_delay_micros: ack.ack_delay_micros(ack_delay_exponent),
                    acked_ranges,
                    ecn: ack
                        .ecn()
                        .map(|e| (e.ect0.into_inner(), e.ect1.into_inner(), e.ce.into_inner())),
                }
            }
            Frame::ResetStream(r) => Self::ResetStream {
                stream_id: r.id.to_varint().into_inner(),
                error_code: r.error_code.into_inner(),
                final_size: r.final_size.into_inner(),
            },
            Frame::StopSending(s) => Self::StopSending {
                stream_id: s.id.to_varint().into_inner(),
                error_code: s.error_code.into_inner(),
            },
            Frame::Crypto(c) => {
                Self::Crypto { offset: c.offset.into_inner(), length: c.data.len() as u64 }
            }
            Frame::NewToken(t) => Self::NewToken { length: t.token.len() as u64 },
            Frame::Stream(s) => Self::Stream {
                stream_id: s.id.to_varint().into_inner(),
                offset: s.offset.into_inner(),
                length: s.data.len() as u64,
                fin: s.fin,
            },
            Frame::MaxData(m) => Self::MaxData { maximum: m.maximum.into_inner() },
            Frame::MaxStreamData(m) => Self::MaxStreamData {
                stream_id: m.id.to_varint().into_inner(),
                maximum: m.maximum.into_inner(),
            },
            Frame::MaxStreams(m) => {
                Self::MaxStreams { dir: m.dir, maximum: m.maximum.into_inner() }
            }
            Frame::DataBlocked(b) => Self::DataBlocked { limit: b.limit.into_inner() },
            Frame::StreamDataBlocked(b) => Self::StreamDataBlocked {
                stream_id: b.id.to_varint().into_inner(),
                limit: b.limit.into_inner(),
            },
            Frame::StreamsBlocked(b) => {
                Self::StreamsBlocked { dir: b.dir, limit: b.limit.into_inner() }
            }
            Frame::NewConnectionId(n) => Self::NewConnectionId {
                sequence_number: n.sequence.into_inner(),
                retire_prior_to: n.retire_prior_to.into_inner(),
                connection_id: n.id,
                stateless_reset_token: *n.reset_token.as_bytes(),
            },
            Frame::RetireConnectionId(r) => {
                Self::RetireConnectionId { sequence_number: r.sequence.into_inner() }
            }
            Frame::PathChallenge(c) => Self::PathChallenge { data: c.data },
            Frame::PathResponse(r) => Self::PathResponse { data: r.data },
            Frame::ConnectionClose(c) => Self::ConnectionClose {
                application: false,
                error_code: c.error_code.to_varint().into_inner(),
                trigger_frame_type: Some(c.frame_type.0.into_inner()),
                reason: c.reason.to_vec(),
            },
            Frame::ApplicationClose(c) => Self::ConnectionClose {
                application: true,
                error_code: c.error_code.into_inner(),
                trigger_frame_type: None,
                reason: c.reason.to_vec(),
            },
            Frame::HandshakeDone => Self::HandshakeDone,
            Frame::Datagram(d) => Self::Datagram { length: d.data.len() as u64 },
        }
    }

    fn write(&self, w: &mut JsonWriter<'_>) {
        w.begin_object();
        match self {
            Self::Padding { len } => {
                w.str("frame_type", "padding");
                w.object("raw");
                w.u64("length", *len);
                w.u64("payload_length", *len);
                w.end_object();
            }
            Self::Ping => w.str("frame_type", "ping"),
            Self::Ack { ack_delay_micros, acked_ranges, ecn } => {
                w.str("frame_type", "ack");
                w.f64("ack_delay", *ack_delay_micros as f64 / 1000.0);
                w.array("acked_ranges");
                for (lo, hi) in acked_ranges {
                    w.begin_array();
                    w.u64_element(*lo);
                    if hi != lo {
                        w.u64_element(*hi);
                    }
                    w.end_array();
                }
                w.end_array();
                if let Some((ect0, ect1, ce)) = ecn {
                    w.u64("ect1", *ect1);
                    w.u64("ect0", *ect0);
                    w.u64("ce", *ce);
                }
            }
            Self::ResetStream { stream_id, error_code, final_size } => {
                w.str("frame_type", "reset_stream");
                w.u64("stream_id", *stream_id);
                w.str("error", "unknown");
                w.u64("error_code", *error_code);
                w.u64("final_size", *final_size);
            }
            Self::StopSending { stream_id, error_code } => {
                w.str("frame_type", "stop_sending");
                w.u64("stream_id", *stream_id);
                w.str("error", "unknown");
                w.u64("error_code", *error_code);
            }
            Self::Crypto { offset, length } => {
                w.str("frame_type", "crypto");
                w.u64("offset", *offset);
                write_raw_length(w, *length);
            }
            Self::NewToken { length } => {
                w.str("frame_type", "new_token");
                w.object("token");
                w.object("raw");
                w.u64("length", *length);
                w.end_object();
                w.end_object();
            }
            Self::Stream { stream_id, offset, length, fin } => {
                w.str("frame_type", "stream");
                w.u64("stream_id", *stream_id);
                w.u64("offset", *offset);
                w.bool("fin", *fin);
                write_raw_length(w, *length);
            }
            Self::MaxData { maximum } => {
                w.str("frame_type", "max_data");
                w.u64("maximum", *maximum);
            }
            Self::MaxStreamData { stream_id, maximum } => {
                w.str("frame_type", "max_stream_data");
                w.u64("stream_id", *stream_id);
                w.u64("maximum", *maximum);
            }
            Self::MaxStreams { dir, maximum } => {
                w.str("frame_type", "max_streams");
                w.str("stream_type", stream_type(*dir));
                w.u64("maximum", *maximum);
            }
            Self::DataBlocked { limit } => {
                w.str("frame_type", "data_blocked");
                w.u64("limit", *limit);
            }
            Self::StreamDataBlocked { stream_id, limit } => {
                w.str("frame_type", "stream_data_blocked");
                w.u64("stream_id", *stream_id);
                w.u64("limit", *limit);
            }
            Self::StreamsBlocked { dir, limit } => {
                w.str("frame_type", "streams_blocked");
                w.str("stream_type", stream_type(*dir));
                w.u64("limit", *limit);
            }
            Self::NewConnectionId {
                sequence_number,
                retire_prior_to,
                connection_id,
                stateless_reset_token,
            } => {
                w.str("frame_type", "new_connection_id");
                w.u64("sequence_number", *sequence_number);
                w.u64("retire_prior_to", *retire_prior_to);
                w.u64("connection_id_length", connection_id.len() as u64);
                w.hex("connection_id", connection_id);
                w.hex("stateless_reset_token", stateless_reset_token);
            }
            Self::RetireConnectionId { sequence_number } => {
                w.str("frame_type", "retire_connection_id");
                w.u64("sequence_number", *sequence_number);
            }
            Self::PathChallenge { data } => {
                w.str("frame_type", "path_challenge");
                w.hex("data", data);
            }
            Self::PathResponse { data } => {
                w.str("frame_type", "path_response");
                w.hex("data", data);
            }
            Self::ConnectionClose { application, error_code, trigger_frame_type, reason } => {
                w.str("frame_type", "connection_close");
                if *application {
                    w.str("error_space", "application");
                    w.str("error", "unknown");
                    w.u64("error_code", *error_code);
                } else {
                    w.str("error_space", "transport");
                    write_transport_error(w, "error", *error_code);
                }
                match core::str::from_utf8(reason) {
                    Ok(text) => w.str("reason", text),
                    Err(_) => w.hex("reason_bytes", reason),
                }
                if let Some(ty) = trigger_frame_type {
                    w.u64("trigger_frame_type", *ty);
                }
            }
            Self::HandshakeDone => w.str("frame_type", "handshake_done"),
            Self::Datagram { length } => {
                w.str("frame_type", "datagram");
                write_raw_length(w, *length);
            }
        }
        w.end_object();
    }
}

fn write_raw_length(w: &mut JsonWriter<'_>, length: u64) {
    w.object("raw");
    w.u64("length", length);
    w.end_object();
}

fn stream_type(dir: Dir) -> &'static str {
    match dir {
        Dir::Bi => "bidirectional",
        Dir::Uni => "unidirectional",
    }
}

/// Writes `key` as a `$TransportError` or `CryptoError` name, with
/// `error_code` only when the name is "unknown".
fn write_transport_error(w: &mut JsonWriter<'_>, key: &str, code: u64) {
    let tec = TransportErrorCode::from(crate::varint::VarInt::saturating_from_u64(code));
    if let Some(alert) = tec.tls_alert() {
        w.str(key, &format!("crypto_error_0x1{alert:02x}"));
        return;
    }
    match tec.name().filter(|n| *n != "VERSION_NEGOTIATION_ERROR") {
        Some(name) => w.str(key, &name.to_ascii_lowercase()),
        None => {
            w.str(key, "unknown");
            w.u64("error_code", code);
        }
    }
}

/// Frames of a packet's plaintext payload, as qlog represents them. A
/// frame that does not decode ends the list (only possible for received
/// packets, which then close the connection).
pub fn frames_of(payload: &[u8], ack_delay_exponent: u8) -> Vec<QlogFrame> {
    Frames::new(payload)
        .map_while(Result::ok)
        .map(|f| QlogFrame::from_frame(&f, ack_delay_exponent))
        .collect()
}

/// Appends `len` bytes of padding to `frames`, merging with a trailing
/// padding frame (the packet builder pads after the frames were written).
pub fn add_padding(frames: &mut Vec<QlogFrame>, len: u64) {
    if len == 0 {
        return;
    }
    if let Some(QlogFrame::Padding { len: l }) = frames.last_mut() {
        *l += len;
    } else {
        frames.push(QlogFrame::Padding { len });
    }
}

/// `packet_sent` / `packet_received` data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketEvent {
    /// `header`.
    pub header: PacketHeader,
    /// `frames`.
    pub frames: Vec<QlogFrame>,
    /// `raw.length`: the packet's bytes on the wire.
    pub length: u64,
}

impl PacketEvent {
    fn write(&self, w: &mut JsonWriter<'_>) {
        self.header.write(w);
        w.array("frames");
        for f in &self.frames {
            f.write(w);
        }
        w.end_array();
        write_raw_length(w, self.length);
    }
}

/// `packet_dropped` trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropTrigger {
    /// `internal_error`.
    InternalError,
    /// `rejected`: a policy refused it (e.g. an unexpected connection ID).
    Rejected,
    /// `unsupported`: 0-RTT, an unknown packet type.
    Unsupported,
    /// `invalid`: unparsable, or header protection failed.
    Invalid,
    /// `duplicate`.
    Duplicate,
    /// `decryption_failure`.
    DecryptionFailure,
    /// `key_unavailable`: keys not yet there, or discarded.
    KeyUnavailable,
    /// `general`.
    General,
}

impl DropTrigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::InternalError => "internal_error",
            Self::Rejected => "rejected",
            Self::Unsupported => "unsupported",
            Self::Invalid => "invalid",
            Self::Duplicate => "duplicate",
            Self::DecryptionFailure => "decryption_failure",
            Self::KeyUnavailable => "key_unavailable",
            Self::General => "general",
        }
    }
}

/// qlog `$ConnectionState` values this stack reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// `attempted`: Initial sent or received.
    Attempted,
    /// `handshake_started`: Handshake keys available.
    HandshakeStarted,
    /// `handshake_complete`.
    HandshakeComplete,
    /// `handshake_confirmed`.
    HandshakeConfirmed,
    /// `closing`: CONNECTION_CLOSE sent.
    Closing,
    /// `draining`: CONNECTION_CLOSE or a stateless reset received.
    Draining,
    /// `closed`: state discarded.
    Closed,
}

impl ConnectionState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Attempted => "attempted",
            Self::HandshakeStarted => "handshake_started",
            Self::HandshakeComplete => "handshake_complete",
            Self::HandshakeConfirmed => "handshake_confirmed",
            Self::Closing => "closing",
            Self::Draining => "draining",
            Self::Closed => "closed",
        }
    }
}

/// qlog `$KeyType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyType {
    /// Whose secret.
    pub side: Side,
    /// Which level.
    pub level: EncryptionLevel,
}

impl KeyType {
    fn as_str(self) -> &'static str {
        match (self.side, self.level) {
            (Side::Server, EncryptionLevel::Initial) => "server_initial_secret",
            (Side::Client, EncryptionLevel::Initial) => "client_initial_secret",
            (Side::Server, EncryptionLevel::Handshake) => "server_handshake_secret",
            (Side::Client, EncryptionLevel::Handshake) => "client_handshake_secret",
            (Side::Server, EncryptionLevel::ZeroRtt) => "server_0rtt_secret",
            (Side::Client, EncryptionLevel::ZeroRtt) => "client_0rtt_secret",
            (Side::Server, EncryptionLevel::OneRtt) => "server_1rtt_secret",
            (Side::Client, EncryptionLevel::OneRtt) => "client_1rtt_secret",
        }
    }
}

/// `key_updated` / `key_discarded` trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTrigger {
    /// `tls`: keys from the handshake.
    Tls,
    /// `remote_update`: the peer started a key update.
    RemoteUpdate,
    /// `local_update`: this endpoint started a key update.
    LocalUpdate,
}

impl KeyTrigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::RemoteUpdate => "remote_update",
            Self::LocalUpdate => "local_update",
        }
    }
}

/// `timer_updated` event_type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerEventType {
    /// `set`.
    Set,
    /// `expired`.
    Expired,
    /// `cancelled`.
    Cancelled,
}

/// `recovery_metrics_updated` data: only the fields that changed are `Some`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RecoveryMetrics {
    /// `min_rtt` in ms.
    pub min_rtt: Option<f64>,
    /// `smoothed_rtt` in ms.
    pub smoothed_rtt: Option<f64>,
    /// `latest_rtt` in ms.
    pub latest_rtt: Option<f64>,
    /// `rtt_variance` in ms.
    pub rtt_variance: Option<f64>,
    /// `pto_count`.
    pub pto_count: Option<u64>,
    /// `congestion_window` in bytes.
    pub congestion_window: Option<u64>,
    /// `bytes_in_flight`.
    pub bytes_in_flight: Option<u64>,
    /// `ssthresh` in bytes.
    pub ssthresh: Option<u64>,
}

impl RecoveryMetrics {
    /// The fields of `self` that differ from `last`; `None` if none do.
    pub fn changed_since(&self, last: &Self) -> Option<Self> {
        fn pick<T: PartialEq + Copy>(new: Option<T>, old: Option<T>) -> Option<T> {
            if new != old { new } else { None }
        }
        let d = Self {
            min_rtt: pick(self.min_rtt, last.min_rtt),
            smoothed_rtt: pick(self.smoothed_rtt, last.smoothed_rtt),
            latest_rtt: pick(self.latest_rtt, last.latest_rtt),
            rtt_variance: pick(self.rtt_variance, last.rtt_variance),
            pto_count: pick(self.pto_count, last.pto_count),
            congestion_window: pick(self.congestion_window, last.congestion_window),
            bytes_in_flight: pick(self.bytes_in_flight, last.bytes_in_flight),
            ssthresh: pick(self.ssthresh, last.ssthresh),
        };
        (d != Self::default()).then_some(d)
    }

    fn write(&self, w: &mut JsonWriter<'_>) {
        let floats = [
            ("min_rtt", self.min_rtt),
            ("smoothed_rtt", self.smoothed_rtt),
            ("latest_rtt", self.latest_rtt),
            ("rtt_variance", self.rtt_variance),
        ];
        for (k, v) in floats {
            if let Some(v) = v {
                w.f64(k, v);
            }
        }
        let ints = [
            ("pto_count", self.pto_count),
            ("congestion_window", self.congestion_window),
            ("bytes_in_flight", self.bytes_in_flight),
            ("ssthresh", self.ssthresh),
        ];
        for (k, v) in ints {
            if let Some(v) = v {
                w.u64(k, v);
            }
        }
    }
}

/// qlog's name for a congestion controller phase.
pub fn congestion_state_name(state: CongestionState) -> &'static str {
    match state {
        CongestionState::SlowStart => "slow_start",
        CongestionState::CongestionAvoidance => "congestion_avoidance",
        CongestionState::Recovery => "recovery",
        CongestionState::ApplicationLimited => "application_limited",
    }
}

/// One qlog QUIC event: the `name` and `data` of a record.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// `quic:connection_started`.
    ConnectionStarted {
        /// Local address (`local.ip_v4`/`ip_v6`, ports), if known.
        local: Option<std::net::SocketAddr>,
        /// The peer's address.
        remote: std::net::SocketAddr,
        /// This endpoint's connection ID.
        local_cid: ConnectionId,
        /// The peer's connection ID (the client's first: a random one).
        remote_cid: ConnectionId,
    },
    /// `quic:connection_state_updated`.
    ConnectionStateUpdated {
        /// `old`.
        old: Option<ConnectionState>,
        /// `new`.
        new: ConnectionState,
    },
    /// `quic:parameters_set` from transport parameters.
    ParametersSet {
        /// `local` for ours, `remote` for the peer's.
        initiator: Initiator,
        /// The parameters.
        params: &'a TransportParameters,
    },
    /// `quic:version_information`.
    VersionInformation {
        /// `client_versions`.
        client_versions: &'a [Version],
        /// `server_versions`.
        server_versions: &'a [Version],
        /// `chosen_version`.
        chosen_version: Option<Version>,
    },
    /// `quic:alpn_information` (`chosen_alpn`).
    AlpnInformation {
        /// The negotiated protocol.
        chosen_alpn: &'a [u8],
    },
    /// `quic:packet_sent`.
    PacketSent(PacketEvent),
    /// `quic:packet_received`.
    PacketReceived(PacketEvent),
    /// `quic:packet_dropped`.
    PacketDropped {
        /// `header`, if the packet type is known.
        header: Option<PacketHeader>,
        /// `raw.length`.
        length: u64,
        /// `trigger`.
        trigger: DropTrigger,
    },
    /// `quic:packet_buffered`: a packet kept until its keys arrive
    /// (trigger `keys_unavailable`).
    PacketBuffered {
        /// `header.packet_type`.
        packet_type: PacketType,
        /// `raw.length`.
        length: u64,
    },
    /// `quic:packets_acked`.
    PacketsAcked {
        /// `packet_number_space`.
        space: SpaceId,
        /// `packet_numbers`.
        packet_numbers: Vec<u64>,
    },
    /// `quic:packet_lost`.
    PacketLost {
        /// `header` (packet_type, packet_number).
        header: PacketHeader,
        /// `trigger`.
        trigger: LossTrigger,
    },
    /// `quic:recovery_metrics_updated`.
    RecoveryMetricsUpdated(RecoveryMetrics),
    /// `quic:congestion_state_updated`.
    CongestionStateUpdated {
        /// `old`.
        old: Option<&'static str>,
        /// `new`.
        new: &'static str,
    },
    /// `quic:key_updated`.
    KeyUpdated {
        /// `key_type`.
        key_type: KeyType,
        /// `key_phase` (1-RTT only).
        key_phase: Option<u64>,
        /// `trigger`.
        trigger: KeyTrigger,
    },
    /// `quic:key_discarded`.
    KeyDiscarded {
        /// `key_type`.
        key_type: KeyType,
        /// `key_phase` (1-RTT only).
        key_phase: Option<u64>,
        /// `trigger`.
        trigger: KeyTrigger,
    },
    /// `quic:connection_id_updated`.
    ConnectionIdUpdated {
        /// Whose connection ID changed.
        initiator: Initiator,
        /// `old`.
        old: Option<ConnectionId>,
        /// `new`.
        new: Option<ConnectionId>,
    },
    /// `quic:stream_state_updated`.
    StreamStateUpdated {
        /// `stream_id`.
        stream_id: u64,
        /// `stream_type`.
        dir: Dir,
        /// `new` (a `$StreamState` spelling).
        new: &'static str,
        /// `stream_side`: sending (true) or receiving.
        sending: bool,
        /// `trigger`.
        initiator: Initiator,
    },
    /// `quic:timer_updated` for the loss detection timer.
    TimerUpdated {
        /// `timer_type`: `"ack"` (time-threshold loss timeout) or `"pto"`.
        timer_type: Option<&'static str>,
        /// `packet_number_space`, if known.
        space: Option<SpaceId>,
        /// `event_type`.
        event_type: TimerEventType,
        /// `delta` in ms, for `set`.
        delta: Option<f64>,
    },
    /// `quic:connection_closed`.
    ConnectionClosed {
        /// Who closed.
        initiator: Initiator,
        /// Why.
        error: &'a ConnectionError,
    },
}

impl Event<'_> {
    /// The event's qlog `name` (namespace `quic`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ConnectionStarted { .. } => "quic:connection_started",
            Self::ConnectionStateUpdated { .. } => "quic:connection_state_updated",
            Self::ParametersSet { .. } => "quic:parameters_set",
            Self::VersionInformation { .. } => "quic:version_information",
            Self::AlpnInformation { .. } => "quic:alpn_information",
            Self::PacketSent(_) => "quic:packet_sent",
            Self::PacketReceived(_) => "quic:packet_received",
            Self::PacketDropped { .. } => "quic:packet_dropped",
            Self::PacketBuffered { .. } => "quic:packet_buffered",
            Self::PacketsAcked { .. } => "quic:packets_acked",
            Self::PacketLost { .. } => "quic:packet_lost",
            Self::RecoveryMetricsUpdated(_) => "quic:recovery_metrics_updated",
            Self::CongestionStateUpdated { .. } => "quic:congestion_state_updated",
            Self::KeyUpdated { .. } => "quic:key_updated",
            Self::KeyDiscarded { .. } => "quic:key_discarded",
            Self::ConnectionIdUpdated { .. } => "quic:connection_id_updated",
            Self::StreamStateUpdated { .. } => "quic:stream_state_updated",
            Self::TimerUpdated { .. } => "quic:timer_updated",
            Self::ConnectionClosed { .. } => "quic:connection_closed",
        }
    }

    /// Writes the `data` object's members.
    pub(crate) fn write_data(&self, w: &mut JsonWriter<'_>) {
        match self {
            Self::ConnectionStarted { local, remote, local_cid, remote_cid } => {
                w.object("local");
                if let Some(a) = local {
                    write_addr(w, a);
                }
                w.array("connection_ids");
                w.hex_element(local_cid);
                w.end_array();
                w.end_object();
                w.object("remote");
                write_addr(w, remote);
                w.array("connection_ids");
                w.hex_element(remote_cid);
                w.end_array();
                w.end_object();
            }
            Self::ConnectionStateUpdated { old, new } => {
                if let Some(old) = old {
                    w.str("old", old.as_str());
                }
                w.str("new", new.as_str());
            }
            Self::ParametersSet { initiator, params } => write_params(w, *initiator, params),
            Self::VersionInformation { client_versions, server_versions, chosen_version } => {
                for (key, list) in
                    [("server_versions", server_versions), ("client_versions", client_versions)]
                {
                    if !list.is_empty() {
                        w.array(key);
                        for v in list.iter() {
                            w.hex_element(&v.0.to_be_bytes());
                        }
                        w.end_array();
                    }
                }
                if let Some(v) = chosen_version {
                    w.hex("chosen_version", &v.0.to_be_bytes());
                }
            }
            Self::AlpnInformation { chosen_alpn } => {
                w.object("chosen_alpn");
                w.hex("byte_value", chosen_alpn);
                if let Ok(s) = core::str::from_utf8(chosen_alpn) {
                    w.str("string_value", s);
                }
                w.end_object();
            }
            Self::PacketSent(p) | Self::PacketReceived(p) => p.write(w),
            Self::PacketDropped { header, length, trigger } => {
                if let Some(h) = header {
                    h.write(w);
                }
                write_raw_length(w, *length);
                w.str("trigger", trigger.as_str());
            }
            Self::PacketBuffered { packet_type, length } => {
                PacketHeader::new(*packet_type, None).write(w);
                write_raw_length(w, *length);
                w.str("trigger", "keys_unavailable");
            }
            Self::PacketsAcked { space, packet_numbers } => {
                w.str("packet_number_space", space_name(*space));
                w.array("packet_numbers");
                for pn in packet_numbers {
                    w.u64_element(*pn);
                }
                w.end_array();
            }
            Self::PacketLost { header, trigger } => {
                header.write(w);
                //= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-quic-events-13#name-packet_lost
                //# It is RECOMMENDED to populate the optional `trigger` field in order to help
                //# disambiguate among the various possible causes of a loss declaration.
                w.str(
                    "trigger",
                    match trigger {
                        LossTrigger::ReorderingThreshold => "reordering_threshold",
                        LossTrigger::TimeThreshold => "time_threshold",
                    },
                );
            }
            Self::RecoveryMetricsUpdated(m) => m.write(w),
            Self::CongestionStateUpdated { old, new } => {
                if let Some(old) = old {
                    w.str("old", old);
                }
                w.str("new", new);
            }
            Self::KeyUpdated { key_type, key_phase, trigger }
            | Self::KeyDiscarded { key_type, key_phase, trigger } => {
                w.str("key_type", key_type.as_str());
                if let Some(p) = key_phase {
                    w.u64("key_phase", *p);
                }
                w.str("trigger", trigger.as_str());
            }
            Self::ConnectionIdUpdated { initiator, old, new } => {
                w.str("initiator", initiator.as_str());
                if let Some(old) = old {
                    w.hex("old", old);
                }
                if let Some(new) = new {
                    w.hex("new", new);
                }
            }
            Self::StreamStateUpdated { stream_id, dir, new, sending, initiator } => {
                w.u64("stream_id", *stream_id);
                w.str("stream_type", stream_type(*dir));
                w.str("new", new);
                w.str("stream_side", if *sending { "sending" } else { "receiving" });
                w.str("trigger", initiator.as_str());
            }
            Self::TimerUpdated { timer_type, space, event_type, delta } => {
                if let Some(t) = timer_type {
                    w.str("timer_type", t);
                }
                if let Some(s) = space {
                    w.str("packet_number_space", space_name(*s));
                }
                w.str(
                    "event_type",
                    match event_type {
                        TimerEventType::Set => "set",
                        TimerEventType::Expired => "expired",
                        TimerEventType::Cancelled => "cancelled",
                    },
                );
                if let Some(d) = delta {
                    w.f64("delta", *d);
                }
            }
            Self::ConnectionClosed { initiator, error } => {
                write_connection_closed(w, *initiator, error)
            }
        }
    }
}

fn write_addr(w: &mut JsonWriter<'_>, addr: &std::net::SocketAddr) {
    match addr {
        std::net::SocketAddr::V4(a) => {
            w.str("ip_v4", &a.ip().to_string());
            w.u64("port_v4", u64::from(a.port()));
        }
        std::net::SocketAddr::V6(a) => {
            w.str("ip_v6", &a.ip().to_string());
            w.u64("port_v6", u64::from(a.port()));
        }
    }
}

fn write_params(w: &mut JsonWriter<'_>, initiator: Initiator, p: &TransportParameters) {
    w.str("initiator", initiator.as_str());
    if let Some(c) = &p.original_destination_connection_id {
        w.hex("original_destination_connection_id", c);
    }
    if let Some(c) = &p.initial_source_connection_id {
        w.hex("initial_source_connection_id", c);
    }
    if let Some(c) = &p.retry_source_connection_id {
        w.hex("retry_source_connection_id", c);
    }
    if let Some(t) = &p.stateless_reset_token {
        w.hex("stateless_reset_token", t.as_bytes());
    }
    w.bool("disable_active_migration", p.disable_active_migration);
    w.u64("max_idle_timeout", duration_ms(p.max_idle_timeout));
    w.u64("max_udp_payload_size", p.max_udp_payload_size.into_inner());
    w.u64("ack_delay_exponent", u64::from(p.ack_delay_exponent));
    w.u64("max_ack_delay", duration_ms(p.max_ack_delay));
    w.u64("active_connection_id_limit", p.active_connection_id_limit.into_inner());
    w.u64("initial_max_data", p.initial_max_data.into_inner());
    w.u64("initial_max_stream_data_bidi_local", p.initial_max_stream_data_bidi_local.into_inner());
    w.u64(
        "initial_max_stream_data_bidi_remote",
        p.initial_max_stream_data_bidi_remote.into_inner(),
    );
    w.u64("initial_max_stream_data_uni", p.initial_max_stream_data_uni.into_inner());
    w.u64("initial_max_streams_bidi", p.initial_max_streams_bidi.into_inner());
    w.u64("initial_max_streams_uni", p.initial_max_streams_uni.into_inner());
    if let Some(m) = p.max_datagram_frame_size {
        w.u64("max_datagram_frame_size", m.into_inner());
    }
    if p.grease_quic_bit {
        w.bool("grease_quic_bit", true);
    }
}

fn duration_ms(d: core::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn write_connection_closed(w: &mut JsonWriter<'_>, initiator: Initiator, error: &ConnectionError) {
    w.str("initiator", initiator.as_str());
    let (trigger, reason): (&str, Option<&[u8]>) = match error {
        ConnectionError::TransportError(e) => {
            write_transport_error(w, "connection_error", e.code.to_varint().into_inner());
            ("error", Some(e.reason.as_bytes()))
        }
        ConnectionError::ConnectionClosed { code, reason, .. } => {
            write_transport_error(w, "connection_error", code.to_varint().into_inner());
            let trigger =
                if *code == TransportErrorCode::NO_ERROR { "unspecified" } else { "error" };
            (trigger, Some(&reason[..]))
        }
        ConnectionError::ApplicationClosed { code, reason } => {
            w.str("application_error", "unknown");
            w.u64("error_code", code.into_inner());
            ("application", Some(&reason[..]))
        }
        ConnectionError::LocallyClosed => ("application", None),
        ConnectionError::Reset => ("stateless_reset", None),
        ConnectionError::TimedOut => ("idle_timeout", None),
        ConnectionError::VersionMismatch => ("version_mismatch", None),
    };
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        w.str("reason", &String::from_utf8_lossy(r));
    }
    w.str("trigger", trigger);
}
