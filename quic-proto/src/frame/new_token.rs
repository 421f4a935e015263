//! NEW_TOKEN frames (RFC 9000 §19.7): an address validation token from the
//! server for the client's future connections.

use bytes::BufMut;

use super::{FrameType, len_size, len_varint, read_len_prefixed};
use crate::coding::Reader;
use crate::error::TransportError;

/// A NEW_TOKEN frame. Only servers send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewToken<'a> {
    /// The opaque token, never empty.
    pub token: &'a [u8],
}

impl<'a> NewToken<'a> {
    /// Decodes the fields after the type byte.
    pub(super) fn decode(r: &mut Reader<'a>) -> Result<Self, TransportError> {
        let token = read_len_prefixed(r)?;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.7
        //# A client MUST treat receipt of a NEW_TOKEN frame with
        //# an empty Token field as a connection error of type FRAME_ENCODING_ERROR.
        if token.is_empty() {
            return Err(TransportError::frame_encoding_error("empty NEW_TOKEN token"));
        }
        Ok(Self { token })
    }

    /// The exact number of bytes [`NewToken::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + len_size(self.token.len()) + self.token.len()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::NEW_TOKEN.0.encode(buf);
        len_varint(self.token.len()).encode(buf);
        buf.put_slice(self.token);
    }
}
