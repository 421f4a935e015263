//! Connection ID management frames (RFC 9000 §19.15, §19.16):
//! NEW_CONNECTION_ID and RETIRE_CONNECTION_ID.

use bytes::BufMut;

use super::{FrameType, read_varint, truncated};
use crate::cid::ConnectionId;
use crate::coding::Reader;
use crate::error::TransportError;
use crate::token::StatelessResetToken;
use crate::varint::VarInt;

/// A NEW_CONNECTION_ID frame: a connection ID the peer may use to address
/// the sender, with its stateless reset token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewConnectionId {
    /// The sequence number the sender assigned to `id`.
    pub sequence: VarInt,
    /// The receiver must retire all connection IDs with a lower sequence
    /// number. At most `sequence`.
    pub retire_prior_to: VarInt,
    /// The connection ID, 1 to 20 bytes.
    pub id: ConnectionId,
    /// The stateless reset token for `id`.
    pub reset_token: StatelessResetToken,
}

impl NewConnectionId {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        let sequence = read_varint(r)?;
        let retire_prior_to = read_varint(r)?;
        let len = r.u8().map_err(truncated)?;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
        //# Values
        //# less than 1 and greater than 20 are invalid and MUST be treated as a
        //# connection error of type FRAME_ENCODING_ERROR.
        if len < 1 || usize::from(len) > ConnectionId::MAX_LEN {
            return Err(TransportError::frame_encoding_error(
                "NEW_CONNECTION_ID length outside 1..=20",
            ));
        }
        let id = ConnectionId::from_slice(r.bytes(len.into()).map_err(truncated)?)
            .ok_or(TransportError::frame_encoding_error("NEW_CONNECTION_ID too long"))?;
        let reset_token = StatelessResetToken::new(r.array().map_err(truncated)?);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
        //# Receiving a value in the Retire
        //# Prior To field that is greater than that in the Sequence Number field MUST be
        //# treated as a connection error of type FRAME_ENCODING_ERROR.
        if retire_prior_to > sequence {
            return Err(TransportError::frame_encoding_error(
                "NEW_CONNECTION_ID retire_prior_to above sequence number",
            ));
        }
        Ok(Self { sequence, retire_prior_to, id, reset_token })
    }

    /// The exact number of bytes [`NewConnectionId::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.sequence.size() + self.retire_prior_to.size() + 1 + self.id.len() + 16
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::NEW_CONNECTION_ID.0.encode(buf);
        self.sequence.encode(buf);
        self.retire_prior_to.encode(buf);
        buf.put_u8(self.id.len() as u8);
        buf.put_slice(&self.id);
        buf.put_slice(self.reset_token.as_bytes());
    }
}

/// A RETIRE_CONNECTION_ID frame: the sender stops using the connection ID
/// the peer issued with this sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetireConnectionId {
    /// The sequence number of the retired connection ID.
    pub sequence: VarInt,
}

impl RetireConnectionId {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { sequence: read_varint(r)? })
    }

    /// The exact number of bytes [`RetireConnectionId::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.sequence.size()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::RETIRE_CONNECTION_ID.0.encode(buf);
        self.sequence.encode(buf);
    }
}
