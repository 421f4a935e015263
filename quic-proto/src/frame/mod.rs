//! QUIC frames (RFC 9000 §12.4, §19; RFC 9221 §4).
//!
//! [`Frames`] decodes a decrypted packet payload into borrowed [`Frame`]s;
//! every frame type also knows its exact encoded size and writes itself into
//! any [`BufMut`]. Senders that fill packets piecemeal use the header types
//! ([`StreamHeader`], [`CryptoHeader`], [`DatagramHeader`]) and [`AckEncoder`].
//!
//! The decoder enforces everything RFC 9000 ties to a frame's encoding
//! (lengths, range arithmetic, value bounds) and nothing that needs
//! connection state: whether a frame may appear at an encryption level is
//! [`Frame::check_allowed_at`], a separate call.

use core::iter::FusedIterator;

use bytes::BufMut;

use crate::coding::{Reader, UnexpectedEnd};
use crate::error::TransportError;
use crate::space::EncryptionLevel;
use crate::varint::VarInt;

mod ack;
mod close;
mod connection_id;
mod crypto;
mod datagram;
mod flow_control;
mod frame_type;
mod new_token;
mod path;
mod stream;
mod stream_control;

#[cfg(test)]
pub(crate) mod strategies;
#[cfg(test)]
mod tests;

pub use ack::{Ack, AckEncoder, AckRangeIter, EcnCounts};
pub use close::{ApplicationClose, ConnectionClose};
pub use connection_id::{NewConnectionId, RetireConnectionId};
pub use crypto::{Crypto, CryptoHeader};
pub use datagram::{Datagram, DatagramHeader};
pub use flow_control::{
    DataBlocked, MaxData, MaxStreamData, MaxStreams, StreamDataBlocked, StreamsBlocked,
};
pub use frame_type::FrameType;
pub use new_token::NewToken;
pub use path::{PathChallenge, PathResponse};
pub use stream::{Stream, StreamHeader};
pub use stream_control::{ResetStream, StopSending};

/// One decoded frame, borrowing any payload from the packet it came from.
///
/// Build one to send and write it with [`Frame::encode`]; or obtain them from
/// [`Frames`] when processing a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// `len` consecutive PADDING bytes (type 0x00), folded into one frame.
    Padding {
        /// The number of padding bytes, at least 1 when decoded.
        len: usize,
    },
    /// PING (0x01): elicits an acknowledgment, nothing more.
    Ping,
    /// ACK or ACK_ECN (0x02, 0x03).
    Ack(Ack<'a>),
    /// RESET_STREAM (0x04).
    ResetStream(ResetStream),
    /// STOP_SENDING (0x05).
    StopSending(StopSending),
    /// CRYPTO (0x06).
    Crypto(Crypto<'a>),
    /// NEW_TOKEN (0x07).
    NewToken(NewToken<'a>),
    /// STREAM (0x08-0x0f).
    Stream(Stream<'a>),
    /// MAX_DATA (0x10).
    MaxData(MaxData),
    /// MAX_STREAM_DATA (0x11).
    MaxStreamData(MaxStreamData),
    /// MAX_STREAMS (0x12 bidirectional, 0x13 unidirectional).
    MaxStreams(MaxStreams),
    /// DATA_BLOCKED (0x14).
    DataBlocked(DataBlocked),
    /// STREAM_DATA_BLOCKED (0x15).
    StreamDataBlocked(StreamDataBlocked),
    /// STREAMS_BLOCKED (0x16 bidirectional, 0x17 unidirectional).
    StreamsBlocked(StreamsBlocked),
    /// NEW_CONNECTION_ID (0x18).
    NewConnectionId(NewConnectionId),
    /// RETIRE_CONNECTION_ID (0x19).
    RetireConnectionId(RetireConnectionId),
    /// PATH_CHALLENGE (0x1a).
    PathChallenge(PathChallenge),
    /// PATH_RESPONSE (0x1b).
    PathResponse(PathResponse),
    /// CONNECTION_CLOSE carrying a transport error (0x1c).
    ConnectionClose(ConnectionClose<'a>),
    /// CONNECTION_CLOSE carrying an application error (0x1d).
    ApplicationClose(ApplicationClose<'a>),
    /// HANDSHAKE_DONE (0x1e).
    HandshakeDone,
    /// DATAGRAM (0x30 without a Length field, 0x31 with one; RFC 9221 §4).
    Datagram(Datagram<'a>),
}

impl<'a> Frame<'a> {
    /// Decodes one frame from `r`, leaving `r` just past it.
    ///
    /// A PADDING byte absorbs all PADDING bytes that directly follow it. On
    /// error `r` is left somewhere inside the frame; the packet must be
    /// abandoned (the connection closes with the returned error).
    pub fn decode(r: &mut Reader<'a>) -> Result<Self, TransportError> {
        let (value, len) = VarInt::decode_with_len(r)
            .map_err(|_| TransportError::frame_encoding_error("truncated frame type"))?;
        let ty = FrameType(value);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-12.4
        //# To ensure simple and efficient
        //# implementations of frame parsing, a frame type MUST use the shortest
        //# possible encoding.
        //
        //= https://www.rfc-editor.org/rfc/rfc9000#section-12.4
        //# An endpoint
        //# MAY treat the receipt of a frame type that uses a longer encoding than
        //# necessary as a connection error of type PROTOCOL_VIOLATION.
        if len != value.size() {
            return Err(TransportError::protocol_violation("frame type not minimally encoded")
                .with_frame(ty));
        }
        Self::decode_body(ty, r).map_err(|e| e.with_frame(ty))
    }

    fn decode_body(ty: FrameType, r: &mut Reader<'a>) -> Result<Self, TransportError> {
        Ok(match ty {
            FrameType::PADDING => {
                let more = r.peek_rest().iter().take_while(|&&b| b == 0).count();
                r.skip(more).map_err(truncated)?;
                Frame::Padding { len: 1 + more }
            }
            FrameType::PING => Frame::Ping,
            FrameType::ACK | FrameType::ACK_ECN => Frame::Ack(Ack::decode(r, ty)?),
            FrameType::RESET_STREAM => Frame::ResetStream(ResetStream::decode(r)?),
            FrameType::STOP_SENDING => Frame::StopSending(StopSending::decode(r)?),
            FrameType::CRYPTO => Frame::Crypto(Crypto::decode(r)?),
            FrameType::NEW_TOKEN => Frame::NewToken(NewToken::decode(r)?),
            _ if ty.is_stream() => Frame::Stream(Stream::decode(r, ty)?),
            FrameType::MAX_DATA => Frame::MaxData(MaxData::decode(r)?),
            FrameType::MAX_STREAM_DATA => Frame::MaxStreamData(MaxStreamData::decode(r)?),
            FrameType::MAX_STREAMS_BIDI | FrameType::MAX_STREAMS_UNI => {
                Frame::MaxStreams(MaxStreams::decode(r, ty)?)
            }
            FrameType::DATA_BLOCKED => Frame::DataBlocked(DataBlocked::decode(r)?),
            FrameType::STREAM_DATA_BLOCKED => {
                Frame::StreamDataBlocked(StreamDataBlocked::decode(r)?)
            }
            FrameType::STREAMS_BLOCKED_BIDI | FrameType::STREAMS_BLOCKED_UNI => {
                Frame::StreamsBlocked(StreamsBlocked::decode(r, ty)?)
            }
            FrameType::NEW_CONNECTION_ID => Frame::NewConnectionId(NewConnectionId::decode(r)?),
            FrameType::RETIRE_CONNECTION_ID => {
                Frame::RetireConnectionId(RetireConnectionId::decode(r)?)
            }
            FrameType::PATH_CHALLENGE => Frame::PathChallenge(PathChallenge::decode(r)?),
            FrameType::PATH_RESPONSE => Frame::PathResponse(PathResponse::decode(r)?),
            FrameType::CONNECTION_CLOSE => Frame::ConnectionClose(ConnectionClose::decode(r)?),
            FrameType::APPLICATION_CLOSE => Frame::ApplicationClose(ApplicationClose::decode(r)?),
            FrameType::HANDSHAKE_DONE => Frame::HandshakeDone,
            FrameType::DATAGRAM | FrameType::DATAGRAM_WITH_LEN => {
                Frame::Datagram(Datagram::decode(r, ty)?)
            }
            //= https://www.rfc-editor.org/rfc/rfc9000#section-12.4
            //# An endpoint MUST treat the receipt of a frame of unknown type as a
            //# connection error of type FRAME_ENCODING_ERROR.
            _ => return Err(TransportError::frame_encoding_error("unknown frame type")),
        })
    }

    /// The frame's type as it goes on the wire, including the flag bits of
    /// STREAM, ACK, MAX_STREAMS, STREAMS_BLOCKED, CONNECTION_CLOSE and DATAGRAM.
    pub fn ty(&self) -> FrameType {
        match self {
            Frame::Padding { .. } => FrameType::PADDING,
            Frame::Ping => FrameType::PING,
            Frame::Ack(f) => f.ty(),
            Frame::ResetStream(_) => FrameType::RESET_STREAM,
            Frame::StopSending(_) => FrameType::STOP_SENDING,
            Frame::Crypto(_) => FrameType::CRYPTO,
            Frame::NewToken(_) => FrameType::NEW_TOKEN,
            Frame::Stream(f) => f.ty(),
            Frame::MaxData(_) => FrameType::MAX_DATA,
            Frame::MaxStreamData(_) => FrameType::MAX_STREAM_DATA,
            Frame::MaxStreams(f) => f.ty(),
            Frame::DataBlocked(_) => FrameType::DATA_BLOCKED,
            Frame::StreamDataBlocked(_) => FrameType::STREAM_DATA_BLOCKED,
            Frame::StreamsBlocked(f) => f.ty(),
            Frame::NewConnectionId(_) => FrameType::NEW_CONNECTION_ID,
            Frame::RetireConnectionId(_) => FrameType::RETIRE_CONNECTION_ID,
            Frame::PathChallenge(_) => FrameType::PATH_CHALLENGE,
            Frame::PathResponse(_) => FrameType::PATH_RESPONSE,
            Frame::ConnectionClose(_) => FrameType::CONNECTION_CLOSE,
            Frame::ApplicationClose(_) => FrameType::APPLICATION_CLOSE,
            Frame::HandshakeDone => FrameType::HANDSHAKE_DONE,
            Frame::Datagram(f) => f.ty(),
        }
    }

    /// The exact number of bytes [`Frame::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Padding { len } => *len,
            Frame::Ping | Frame::HandshakeDone => 1,
            Frame::Ack(f) => f.encoded_len(),
            Frame::ResetStream(f) => f.encoded_len(),
            Frame::StopSending(f) => f.encoded_len(),
            Frame::Crypto(f) => f.encoded_len(),
            Frame::NewToken(f) => f.encoded_len(),
            Frame::Stream(f) => f.encoded_len(),
            Frame::MaxData(f) => f.encoded_len(),
            Frame::MaxStreamData(f) => f.encoded_len(),
            Frame::MaxStreams(f) => f.encoded_len(),
            Frame::DataBlocked(f) => f.encoded_len(),
            Frame::StreamDataBlocked(f) => f.encoded_len(),
            Frame::StreamsBlocked(f) => f.encoded_len(),
            Frame::NewConnectionId(f) => f.encoded_len(),
            Frame::RetireConnectionId(f) => f.encoded_len(),
            Frame::PathChallenge(f) => f.encoded_len(),
            Frame::PathResponse(f) => f.encoded_len(),
            Frame::ConnectionClose(f) => f.encoded_len(),
            Frame::ApplicationClose(f) => f.encoded_len(),
            Frame::Datagram(f) => f.encoded_len(),
        }
    }

    /// Writes the frame. `Padding { len }` writes `len` zero bytes.
    ///
    /// A STREAM or DATAGRAM frame without a Length field extends to the end
    /// of the packet, so it must be the last frame written into it.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            Frame::Padding { len } => buf.put_bytes(0, *len),
            Frame::Ping | Frame::HandshakeDone => self.ty().0.encode(buf),
            Frame::Ack(f) => f.encode(buf),
            Frame::ResetStream(f) => f.encode(buf),
            Frame::StopSending(f) => f.encode(buf),
            Frame::Crypto(f) => f.encode(buf),
            Frame::NewToken(f) => f.encode(buf),
            Frame::Stream(f) => f.encode(buf),
            Frame::MaxData(f) => f.encode(buf),
            Frame::MaxStreamData(f) => f.encode(buf),
            Frame::MaxStreams(f) => f.encode(buf),
            Frame::DataBlocked(f) => f.encode(buf),
            Frame::StreamDataBlocked(f) => f.encode(buf),
            Frame::StreamsBlocked(f) => f.encode(buf),
            Frame::NewConnectionId(f) => f.encode(buf),
            Frame::RetireConnectionId(f) => f.encode(buf),
            Frame::PathChallenge(f) => f.encode(buf),
            Frame::PathResponse(f) => f.encode(buf),
            Frame::ConnectionClose(f) => f.encode(buf),
            Frame::ApplicationClose(f) => f.encode(buf),
            Frame::Datagram(f) => f.encode(buf),
        }
    }

    /// Whether this frame makes its packet ack-eliciting (RFC 9002 §2); see
    /// [`FrameType::is_ack_eliciting`].
    pub fn is_ack_eliciting(&self) -> bool {
        self.ty().is_ack_eliciting()
    }

    /// Whether this frame makes its packet count toward bytes in flight
    /// (RFC 9002 §2); see [`FrameType::counts_in_flight`].
    pub fn counts_in_flight(&self) -> bool {
        self.ty().counts_in_flight()
    }

    /// Whether this is a probing frame (RFC 9000 §9.1); see
    /// [`FrameType::is_probing`].
    pub fn is_probing(&self) -> bool {
        self.ty().is_probing()
    }

    /// Whether this frame may appear in a packet protected at `level`
    /// (RFC 9000 §12.4 Table 3); see [`FrameType::is_allowed_at`].
    pub fn is_allowed_at(&self, level: EncryptionLevel) -> bool {
        self.ty().is_allowed_at(level)
    }

    /// `Ok` if this frame may appear at `level`, else the PROTOCOL_VIOLATION
    /// to close the connection with; see [`FrameType::check_allowed_at`].
    pub fn check_allowed_at(&self, level: EncryptionLevel) -> Result<(), TransportError> {
        self.ty().check_allowed_at(level)
    }
}

/// The frames of a decrypted packet payload, in order.
///
/// Yields `Err` at most once, for the first frame that fails to decode, and
/// then stops: the rest of the payload cannot be framed. An empty payload
/// yields nothing; the caller treats a packet without frames as a
/// PROTOCOL_VIOLATION (RFC 9000 §12.4).
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> Frames<'a> {
    /// An iterator over the frames in `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        Self { r: Reader::new(payload), failed: false }
    }

    /// The bytes not yet decoded.
    pub fn remaining(&self) -> &'a [u8] {
        self.r.peek_rest()
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, TransportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        let frame = Frame::decode(&mut self.r);
        self.failed = frame.is_err();
        Some(frame)
    }
}

impl FusedIterator for Frames<'_> {}

/// The error for a frame whose fields run past the end of the payload.
fn truncated(_: UnexpectedEnd) -> TransportError {
    TransportError::frame_encoding_error("frame truncated")
}

/// Reads a variable-length integer field of a frame.
fn read_varint(r: &mut Reader<'_>) -> Result<VarInt, TransportError> {
    VarInt::decode(r).map_err(truncated)
}

/// Reads a variable-length Length field and the bytes it announces.
fn read_len_prefixed<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], TransportError> {
    let len = read_varint(r)?.into_inner();
    // A length beyond `usize` cannot fit in the payload either.
    let len = usize::try_from(len).map_err(|_| truncated(UnexpectedEnd))?;
    r.bytes(len).map_err(truncated)
}

/// A payload length as a variable-length integer.
fn len_varint(len: usize) -> VarInt {
    VarInt::try_from(len).expect("a buffer length is below 2^62")
}

/// The encoded size of a length field for `len` bytes.
fn len_size(len: usize) -> usize {
    len_varint(len).size()
}

/// The most payload bytes that fit in `avail` bytes when preceded by their
/// own variable-length Length field, or `None` if not even an empty Length
/// field fits.
fn fit_with_len_field(avail: usize) -> Option<usize> {
    if avail == 0 {
        return None;
    }
    // For each Length field size, the payload is capped both by the space
    // left and by the largest value that size can express.
    const SIZES: [(usize, u64); 4] = [(1, 63), (2, 16_383), (4, (1 << 30) - 1), (8, (1 << 62) - 1)];
    let best = SIZES
        .iter()
        .filter(|&&(size, _)| avail >= size)
        .map(|&(size, max)| (avail - size).min(usize::try_from(max).unwrap_or(usize::MAX)))
        .max()
        .unwrap_or(0);
    Some(best)
}

/// Payload bytes that fit in `space` after a header of `header_len` bytes,
/// with or without a Length field between them.
fn fit_payload(header_len: usize, space: usize, with_len_field: bool) -> Option<usize> {
    let avail = space.checked_sub(header_len)?;
    if with_len_field { fit_with_len_field(avail) } else { Some(avail) }
}
