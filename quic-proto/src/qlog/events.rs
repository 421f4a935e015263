//! Typed qlog QUIC events (draft-ietf-quic-qlog-quic-events-13) and their
//! JSON form. Each [`Event`] variant is one event type; its `data` fields
//! carry the draft's field names and value spellings.
//!
//! Builders (`packet_sent`, `packet_received`, `connection_closed`, ...)
//! turn connection state into events, so that the connection files only
//! hold the emission points.

pub use super::frames::{PacketFrames, QlogFrame};
use super::frames::{stream_type, write_raw_length, write_transport_error};
use super::json::JsonWriter;
use crate::cid::ConnectionId;
use crate::congestion::CongestionState;
use crate::connection::ConnectionError;
use crate::error::TransportErrorCode;
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
    pub(super) fn as_str(self) -> &'static str {
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

/// `packet_sent` / `packet_received` data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketEvent {
    /// `header`.
    pub header: PacketHeader,
    /// `frames`, and the plaintext payload's length
    /// (`raw.payload_length`).
    pub frames: PacketFrames,
    /// `raw.length`: the packet's bytes on the wire.
    pub length: u64,
}

impl PacketEvent {
    fn write(&self, w: &mut JsonWriter<'_>) {
        self.header.write(w);
        self.frames.write(w);
        w.object("raw");
        w.u64("length", self.length);
        let payload = self.frames.payload_length();
        if w.qvis() {
            // qvis counts the AEAD tag in the payload (it subtracts 16 to
            // find where the frames end).
            w.u64("payload_length", payload + AEAD_TAG_LEN);
        } else {
            // The draft's payload: the frames, without header or tag.
            w.u64("payload_length", payload);
        }
        w.end_object();
    }
}

/// A duration in whole nanoseconds, saturating.
fn nanos(d: core::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The AEAD tag every QUIC packet protection algorithm adds (RFC 9001 §5.3).
const AEAD_TAG_LEN: u64 = 16;

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
    /// `quic:recovery_parameters_set`: the loss detection and congestion
    /// control constants (RFC 9002 Appendix A.2, B.2) a connection starts
    /// with.
    RecoveryParametersSet {
        /// `initial_rtt`.
        initial_rtt: core::time::Duration,
        /// `max_datagram_size`.
        max_datagram_size: u64,
        /// `initial_congestion_window`.
        initial_congestion_window: u64,
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
        /// `delta` (written in ms), for `set`.
        delta: Option<core::time::Duration>,
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
            Self::RecoveryParametersSet { .. } => "quic:recovery_parameters_set",
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
            Self::RecoveryParametersSet {
                initial_rtt,
                max_datagram_size,
                initial_congestion_window,
            } => {
                use crate::recovery::loss::{PACKET_THRESHOLD, PERSISTENT_CONGESTION_THRESHOLD};
                w.u64("reordering_threshold", PACKET_THRESHOLD);
                // kTimeThreshold, 9/8 (RtTEstimator::loss_delay).
                w.f64("time_threshold", 1.125);
                w.millis("timer_granularity", nanos(crate::recovery::rtt::GRANULARITY));
                w.millis("initial_rtt", nanos(*initial_rtt));
                w.u64("max_datagram_size", *max_datagram_size);
                w.u64("initial_congestion_window", *initial_congestion_window);
                w.u64("persistent_congestion_threshold", PERSISTENT_CONGESTION_THRESHOLD.into());
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
                    w.millis("delta", u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
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
