//! DATAGRAM frames (RFC 9221 §4): unreliable application datagrams.

use bytes::BufMut;

use super::{FrameType, fit_payload, len_size, len_varint, read_len_prefixed};
use crate::coding::Reader;
use crate::error::TransportError;

/// A DATAGRAM frame carrying one application datagram, possibly empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Whether the frame carries a Length field (type 0x31). Without one
    /// (0x30) the data runs to the end of the packet, so the frame must be
    /// the packet's last.
    pub has_length: bool,
    /// The datagram.
    pub data: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Decodes the fields after the type byte; `ty` is 0x30 or 0x31.
    pub(super) fn decode(r: &mut Reader<'a>, ty: FrameType) -> Result<Self, TransportError> {
        let has_length = ty == FrameType::DATAGRAM_WITH_LEN;
        let data = if has_length { read_len_prefixed(r)? } else { r.rest() };
        Ok(Self { has_length, data })
    }

    /// DATAGRAM_WITH_LEN (0x31) or DATAGRAM (0x30).
    pub fn ty(&self) -> FrameType {
        self.header().ty()
    }

    /// The header that precedes `data`.
    pub fn header(&self) -> DatagramHeader {
        DatagramHeader { data_len: self.has_length.then_some(self.data.len()) }
    }

    /// The exact number of bytes [`Datagram::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        self.header().encoded_len() + self.data.len()
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.header().encode(buf);
        buf.put_slice(self.data);
    }
}

/// The fields of a DATAGRAM frame before its data, for a sender that writes
/// the data itself right after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramHeader {
    /// `Some(n)` writes a Length field for `n` bytes; `None` omits it, and
    /// the data must fill the rest of the packet.
    pub data_len: Option<usize>,
}

impl DatagramHeader {
    /// DATAGRAM_WITH_LEN (0x31) or DATAGRAM (0x30).
    pub fn ty(&self) -> FrameType {
        if self.data_len.is_some() { FrameType::DATAGRAM_WITH_LEN } else { FrameType::DATAGRAM }
    }

    /// The exact number of bytes [`DatagramHeader::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.data_len.map_or(0, len_size)
    }

    /// Writes the header; the caller writes the data bytes next.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.ty().0.encode(buf);
        if let Some(len) = self.data_len {
            len_varint(len).encode(buf);
        }
    }

    /// The largest datagram a DATAGRAM frame can carry in `space` bytes,
    /// header included, with or without a Length field; `None` if not even
    /// an empty one fits.
    pub fn max_data_len(space: usize, with_length: bool) -> Option<usize> {
        fit_payload(1, space, with_length)
    }
}
