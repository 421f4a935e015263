//! CONNECTION_CLOSE frames (RFC 9000 §19.19): type 0x1c for transport
//! errors, 0x1d for application errors.

use bytes::BufMut;

use super::{FrameType, len_size, len_varint, read_len_prefixed, read_varint};
use crate::coding::Reader;
use crate::error::{TransportError, TransportErrorCode};
use crate::varint::VarInt;

/// A CONNECTION_CLOSE frame of type 0x1c: the connection ends because of a
/// transport error (or NO_ERROR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionClose<'a> {
    /// The transport error code.
    pub error_code: TransportErrorCode,
    /// The type of the frame that caused the error; PADDING (0) when
    /// unknown or not tied to a frame.
    pub frame_type: FrameType,
    /// The reason phrase, which should be UTF-8 but is not checked.
    pub reason: &'a [u8],
}

impl<'a> ConnectionClose<'a> {
    pub(super) fn decode(r: &mut Reader<'a>) -> Result<Self, TransportError> {
        Ok(Self {
            error_code: read_varint(r)?.into(),
            frame_type: FrameType(read_varint(r)?),
            reason: read_len_prefixed(r)?,
        })
    }

    /// The exact number of bytes [`ConnectionClose::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.error_code.to_varint().size()
            + self.frame_type.0.size()
            + len_size(self.reason.len())
            + self.reason.len()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::CONNECTION_CLOSE.0.encode(buf);
        self.error_code.to_varint().encode(buf);
        self.frame_type.0.encode(buf);
        len_varint(self.reason.len()).encode(buf);
        buf.put_slice(self.reason);
    }
}

impl From<&TransportError> for ConnectionClose<'static> {
    /// The frame that reports `error` to the peer.
    fn from(error: &TransportError) -> Self {
        Self {
            error_code: error.code,
            frame_type: error.frame_type.unwrap_or(FrameType::PADDING),
            reason: error.reason.as_bytes(),
        }
    }
}

/// A CONNECTION_CLOSE frame of type 0x1d: the application closes the
/// connection. Sent only in 0-RTT and 1-RTT packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplicationClose<'a> {
    /// The application protocol error code.
    pub error_code: VarInt,
    /// The reason phrase, which should be UTF-8 but is not checked.
    pub reason: &'a [u8],
}

impl<'a> ApplicationClose<'a> {
    pub(super) fn decode(r: &mut Reader<'a>) -> Result<Self, TransportError> {
        Ok(Self { error_code: read_varint(r)?, reason: read_len_prefixed(r)? })
    }

    /// The exact number of bytes [`ApplicationClose::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.error_code.size() + len_size(self.reason.len()) + self.reason.len()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::APPLICATION_CLOSE.0.encode(buf);
        self.error_code.encode(buf);
        len_varint(self.reason.len()).encode(buf);
        buf.put_slice(self.reason);
    }
}
