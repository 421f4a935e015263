//! Flow control and stream limit frames (RFC 9000 §19.9-§19.14): MAX_DATA,
//! MAX_STREAM_DATA, MAX_STREAMS, DATA_BLOCKED, STREAM_DATA_BLOCKED and
//! STREAMS_BLOCKED.

use bytes::BufMut;

use super::{FrameType, read_varint};
use crate::coding::Reader;
use crate::error::TransportError;
use crate::stream_id::{Dir, StreamId};
use crate::varint::VarInt;

/// The largest stream count a MAX_STREAMS or STREAMS_BLOCKED frame can
/// carry: 2^60 streams of one type use every stream ID below 2^62.
const MAX_STREAM_COUNT: u64 = 1 << 60;

/// A MAX_DATA frame: the connection-wide flow control limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxData {
    /// The total number of stream bytes the peer may send.
    pub maximum: VarInt,
}

impl MaxData {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { maximum: read_varint(r)? })
    }

    /// The exact number of bytes [`MaxData::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.maximum.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::MAX_DATA.0.encode(buf);
        self.maximum.encode(buf);
    }
}

/// A MAX_STREAM_DATA frame: one stream's flow control limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxStreamData {
    /// The stream.
    pub id: StreamId,
    /// The stream offset the peer may send up to.
    pub maximum: VarInt,
}

impl MaxStreamData {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { id: read_varint(r)?.into(), maximum: read_varint(r)? })
    }

    /// The exact number of bytes [`MaxStreamData::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.id.to_varint().size() + self.maximum.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::MAX_STREAM_DATA.0.encode(buf);
        self.id.to_varint().encode(buf);
        self.maximum.encode(buf);
    }
}

/// A MAX_STREAMS frame: how many streams of one direction the peer may open
/// over the connection's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxStreams {
    /// Bidirectional (type 0x12) or unidirectional (0x13) streams.
    pub dir: Dir,
    /// The cumulative stream count, at most 2^60.
    pub maximum: VarInt,
}

impl MaxStreams {
    pub(super) fn decode(r: &mut Reader<'_>, ty: FrameType) -> Result<Self, TransportError> {
        let maximum = read_varint(r)?;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.11
        //# Receipt of a frame that permits opening of a stream larger
        //# than this limit MUST be treated as a connection error of type
        //# FRAME_ENCODING_ERROR.
        if maximum.into_inner() > MAX_STREAM_COUNT {
            return Err(TransportError::frame_encoding_error("MAX_STREAMS above 2^60"));
        }
        let dir = if ty == FrameType::MAX_STREAMS_BIDI { Dir::Bi } else { Dir::Uni };
        Ok(Self { dir, maximum })
    }

    /// MAX_STREAMS_BIDI or MAX_STREAMS_UNI.
    pub fn ty(&self) -> FrameType {
        match self.dir {
            Dir::Bi => FrameType::MAX_STREAMS_BIDI,
            Dir::Uni => FrameType::MAX_STREAMS_UNI,
        }
    }

    /// The exact number of bytes [`MaxStreams::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.maximum.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.ty().0.encode(buf);
        self.maximum.encode(buf);
    }
}

/// A DATA_BLOCKED frame: the sender has data it cannot send because of the
/// connection-wide limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataBlocked {
    /// The connection-wide limit at which the sender is blocked.
    pub limit: VarInt,
}

impl DataBlocked {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { limit: read_varint(r)? })
    }

    /// The exact number of bytes [`DataBlocked::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.limit.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::DATA_BLOCKED.0.encode(buf);
        self.limit.encode(buf);
    }
}

/// A STREAM_DATA_BLOCKED frame: the sender has data for a stream it cannot
/// send because of that stream's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamDataBlocked {
    /// The blocked stream.
    pub id: StreamId,
    /// The stream offset at which the sender is blocked.
    pub limit: VarInt,
}

impl StreamDataBlocked {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { id: read_varint(r)?.into(), limit: read_varint(r)? })
    }

    /// The exact number of bytes [`StreamDataBlocked::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.id.to_varint().size() + self.limit.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::STREAM_DATA_BLOCKED.0.encode(buf);
        self.id.to_varint().encode(buf);
        self.limit.encode(buf);
    }
}

/// A STREAMS_BLOCKED frame: the sender wants to open a stream of `dir` but
/// the peer's stream limit forbids it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamsBlocked {
    /// Bidirectional (type 0x16) or unidirectional (0x17) streams.
    pub dir: Dir,
    /// The stream limit at which the sender is blocked, at most 2^60.
    pub limit: VarInt,
}

impl StreamsBlocked {
    pub(super) fn decode(r: &mut Reader<'_>, ty: FrameType) -> Result<Self, TransportError> {
        let limit = read_varint(r)?;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.14
        //# Receipt of
        //# a frame that encodes a larger stream ID MUST be treated as a connection error
        //# of type STREAM_LIMIT_ERROR or FRAME_ENCODING_ERROR.
        if limit.into_inner() > MAX_STREAM_COUNT {
            return Err(TransportError::frame_encoding_error("STREAMS_BLOCKED above 2^60"));
        }
        let dir = if ty == FrameType::STREAMS_BLOCKED_BIDI { Dir::Bi } else { Dir::Uni };
        Ok(Self { dir, limit })
    }

    /// STREAMS_BLOCKED_BIDI or STREAMS_BLOCKED_UNI.
    pub fn ty(&self) -> FrameType {
        match self.dir {
            Dir::Bi => FrameType::STREAMS_BLOCKED_BIDI,
            Dir::Uni => FrameType::STREAMS_BLOCKED_UNI,
        }
    }

    /// The exact number of bytes [`StreamsBlocked::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.limit.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.ty().0.encode(buf);
        self.limit.encode(buf);
    }
}
