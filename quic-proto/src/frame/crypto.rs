//! CRYPTO frames (RFC 9000 §19.6): the TLS handshake byte stream of one
//! encryption level.

use bytes::BufMut;

use super::{FrameType, fit_payload, len_size, len_varint, read_len_prefixed, read_varint};
use crate::coding::Reader;
use crate::error::TransportError;
use crate::varint::VarInt;

/// A CRYPTO frame: handshake `data` at `offset` of its level's crypto stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crypto<'a> {
    /// The crypto stream offset of the first byte of `data`.
    pub offset: VarInt,
    /// The handshake bytes.
    pub data: &'a [u8],
}

impl<'a> Crypto<'a> {
    /// Decodes the fields after the type byte.
    pub(super) fn decode(r: &mut Reader<'a>) -> Result<Self, TransportError> {
        let offset = read_varint(r)?;
        let data = read_len_prefixed(r)?;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.6
        //# Receipt of a frame that exceeds this limit MUST be treated as a
        //# connection error of type FRAME_ENCODING_ERROR or
        //# CRYPTO_BUFFER_EXCEEDED.
        //
        // The codec reports the encoding error; a buffer limit far below
        // 2^62 is the crypto stream's business.
        let end = offset.into_inner().checked_add(data.len() as u64);
        if end.is_none_or(|end| end > VarInt::MAX.into_inner()) {
            return Err(TransportError::frame_encoding_error("CRYPTO data beyond offset 2^62-1"));
        }
        Ok(Self { offset, data })
    }

    /// The header that precedes `data`.
    pub fn header(&self) -> CryptoHeader {
        CryptoHeader { offset: self.offset, data_len: self.data.len() }
    }

    /// The crypto stream offset just past `data`.
    pub fn end(&self) -> u64 {
        self.offset.into_inner() + self.data.len() as u64
    }

    /// The exact number of bytes [`Crypto::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        self.header().encoded_len() + self.data.len()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.header().encode(buf);
        buf.put_slice(self.data);
    }
}

/// The fields of a CRYPTO frame before its data, for a sender that writes
/// the data itself right after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CryptoHeader {
    /// The crypto stream offset of the first data byte.
    pub offset: VarInt,
    /// The number of data bytes that follow.
    pub data_len: usize,
}

impl CryptoHeader {
    /// The exact number of bytes [`CryptoHeader::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.offset.size() + len_size(self.data_len)
    }

    /// Writes the header; the caller writes the data bytes next.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        FrameType::CRYPTO.0.encode(buf);
        self.offset.encode(buf);
        len_varint(self.data_len).encode(buf);
    }

    /// How many data bytes a CRYPTO frame at `offset` can carry in `space`
    /// bytes, header included; `None` if not even an empty one fits.
    pub fn max_data_len(offset: VarInt, space: usize) -> Option<usize> {
        fit_payload(1 + offset.size(), space, true)
    }
}
