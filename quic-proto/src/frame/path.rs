//! Path validation frames (RFC 9000 §19.17, §19.18): PATH_CHALLENGE and
//! PATH_RESPONSE.

use bytes::BufMut;

use super::{FrameType, truncated};
use crate::coding::Reader;
use crate::error::TransportError;

/// A PATH_CHALLENGE frame: 8 unpredictable bytes the peer must echo in a
/// PATH_RESPONSE on the same path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathChallenge {
    /// The challenge data.
    pub data: [u8; 8],
}

impl PathChallenge {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { data: r.array().map_err(truncated)? })
    }

    /// The exact number of bytes [`PathChallenge::encode`] writes: 9.
    pub fn encoded_len(&self) -> usize {
        1 + self.data.len()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::PATH_CHALLENGE.0.encode(buf);
        buf.put_slice(&self.data);
    }

    /// The PATH_RESPONSE that answers this challenge.
    pub fn response(&self) -> PathResponse {
        PathResponse { data: self.data }
    }
}

/// A PATH_RESPONSE frame: echoes the data of a PATH_CHALLENGE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathResponse {
    /// The echoed challenge data.
    pub data: [u8; 8],
}

impl PathResponse {
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { data: r.array().map_err(truncated)? })
    }

    /// The exact number of bytes [`PathResponse::encode`] writes: 9.
    pub fn encoded_len(&self) -> usize {
        1 + self.data.len()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::PATH_RESPONSE.0.encode(buf);
        buf.put_slice(&self.data);
    }
}
