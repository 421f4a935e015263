//! Abrupt stream termination frames (RFC 9000 §19.4, §19.5): RESET_STREAM
//! and STOP_SENDING.

use bytes::BufMut;

use super::{FrameType, read_varint};
use crate::coding::Reader;
use crate::error::TransportError;
use crate::stream_id::StreamId;
use crate::varint::VarInt;

/// A RESET_STREAM frame: the sender abandons the sending part of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetStream {
    /// The stream being reset.
    pub id: StreamId,
    /// The application protocol error code.
    pub error_code: VarInt,
    /// The stream's final size in bytes.
    pub final_size: VarInt,
}

impl ResetStream {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self {
            id: read_varint(r)?.into(),
            error_code: read_varint(r)?,
            final_size: read_varint(r)?,
        })
    }

    /// The exact number of bytes [`ResetStream::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.id.to_varint().size() + self.error_code.size() + self.final_size.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::RESET_STREAM.0.encode(buf);
        self.id.to_varint().encode(buf);
        self.error_code.encode(buf);
        self.final_size.encode(buf);
    }
}

/// A STOP_SENDING frame: the sender discards incoming data on a stream and
/// asks the peer to stop sending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopSending {
    /// The stream whose data is being discarded.
    pub id: StreamId,
    /// The application protocol error code.
    pub error_code: VarInt,
}

impl StopSending {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { id: read_varint(r)?.into(), error_code: read_varint(r)? })
    }

    /// The exact number of bytes [`StopSending::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.id.to_varint().size() + self.error_code.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::STOP_SENDING.0.encode(buf);
        self.id.to_varint().encode(buf);
        self.error_code.encode(buf);
    }
}
