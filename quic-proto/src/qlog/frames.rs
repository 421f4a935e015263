//! qlog's `$QuicFrame` (draft-ietf-quic-qlog-quic-events-13 §8.13): frames
//! as the events `packet_sent`, `packet_received` and `packet_lost` carry
//! them, owned so that an event can outlive the packet buffer.

use super::json::JsonWriter;
use crate::cid::ConnectionId;
use crate::error::TransportErrorCode;
use crate::frame::{Frame, Frames};
use crate::stream_id::Dir;

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

    /// Writes the frame; `frame_size` (qvis's dialect) is its encoded length.
    pub(super) fn write(&self, w: &mut JsonWriter<'_>, frame_size: Option<u64>) {
        w.begin_object();
        if let Some(size) = frame_size {
            w.u64("frame_size", size);
        }
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
                w.millis("ack_delay", ack_delay_micros.saturating_mul(1000));
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
                if w.qvis() {
                    // qlog 0.3 spelled the data length `length`.
                    w.u64("length", *length);
                }
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
                if w.qvis() {
                    w.u64("length", *length);
                }
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

pub(super) fn write_raw_length(w: &mut JsonWriter<'_>, length: u64) {
    w.object("raw");
    w.u64("length", length);
    w.end_object();
}

pub(super) fn stream_type(dir: Dir) -> &'static str {
    match dir {
        Dir::Bi => "bidirectional",
        Dir::Uni => "unidirectional",
    }
}

/// Writes `key` as a `$TransportError` or `CryptoError` name, with
/// `error_code` only when the name is "unknown".
pub(super) fn write_transport_error(w: &mut JsonWriter<'_>, key: &str, code: u64) {
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

/// A packet's frames as qlog represents them, with each frame's encoded
/// length (qvis draws packets frame by frame from those).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketFrames {
    /// The frames, in packet order.
    pub frames: Vec<QlogFrame>,
    /// The encoded length of each frame, in bytes.
    pub sizes: Vec<u64>,
}

impl PacketFrames {
    /// The frames of a packet's plaintext payload. A frame that does not
    /// decode ends the list (only possible for received packets, which
    /// then close the connection).
    pub fn of(payload: &[u8], ack_delay_exponent: u8) -> Self {
        let mut out = Self::default();
        let mut frames = Frames::new(payload);
        let mut left = payload.len();
        while let Some(Ok(f)) = frames.next() {
            out.frames.push(QlogFrame::from_frame(&f, ack_delay_exponent));
            let rest = frames.remaining().len();
            out.sizes.push((left - rest) as u64);
            left = rest;
        }
        out
    }

    /// Appends `len` bytes of padding, merging with a trailing padding
    /// frame (the packet builder pads after the frames were written).
    pub fn add_padding(&mut self, len: u64) {
        if len == 0 {
            return;
        }
        if let (Some(QlogFrame::Padding { len: l }), Some(size)) =
            (self.frames.last_mut(), self.sizes.last_mut())
        {
            *l += len;
            *size += len;
        } else {
            self.frames.push(QlogFrame::Padding { len });
            self.sizes.push(len);
        }
    }

    /// The plaintext payload's length: the frames' lengths added up.
    pub fn payload_length(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Writes the `frames` array; in qvis's dialect each frame also
    /// carries its encoded length as `frame_size`.
    pub(super) fn write(&self, w: &mut JsonWriter<'_>) {
        w.array("frames");
        for (f, &size) in self.frames.iter().zip(&self.sizes) {
            f.write(w, w.qvis().then_some(size));
        }
        w.end_array();
    }
}
