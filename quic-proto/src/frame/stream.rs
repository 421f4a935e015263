//! STREAM frames (RFC 9000 §19.8), and the header-only encoding a sender
//! uses to write stream data straight from its send buffer.

use bytes::BufMut;

use super::{FrameType, fit_payload, len_size, len_varint, read_len_prefixed, read_varint};
use crate::coding::Reader;
use crate::error::TransportError;
use crate::stream_id::StreamId;
use crate::varint::VarInt;

/// A STREAM frame: `data` at `offset` of stream `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream<'a> {
    /// The stream the data belongs to.
    pub id: StreamId,
    /// The stream offset of the first byte of `data`.
    pub offset: VarInt,
    /// Whether this frame ends the stream: its final size is
    /// `offset + data.len()`.
    pub fin: bool,
    /// Whether the frame carries a Length field. Without one, the data runs
    /// to the end of the packet, so the frame must be the packet's last.
    pub has_length: bool,
    /// The stream data.
    pub data: &'a [u8],
}

impl<'a> Stream<'a> {
    /// Decodes the fields after the type byte; `ty` is one of 0x08-0x0f.
    pub(super) fn decode(r: &mut Reader<'a>, ty: FrameType) -> Result<Self, TransportError> {
        let bits = ty.0.into_inner();
        let id = StreamId::from(read_varint(r)?);
        let offset =
            if bits & FrameType::STREAM_OFF_BIT != 0 { read_varint(r)? } else { VarInt::ZERO };
        let has_length = bits & FrameType::STREAM_LEN_BIT != 0;
        let data = if has_length { read_len_prefixed(r)? } else { r.rest() };
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
        //# Receipt of a frame that exceeds this limit MUST be treated as a
        //# connection error of type FRAME_ENCODING_ERROR or FLOW_CONTROL_ERROR.
        end_offset(offset, data.len())
            .ok_or(TransportError::frame_encoding_error("STREAM data beyond offset 2^62-1"))?;
        let fin = bits & FrameType::STREAM_FIN_BIT != 0;
        Ok(Self { id, offset, fin, has_length, data })
    }

    /// The header that precedes `data`.
    pub fn header(&self) -> StreamHeader {
        StreamHeader {
            id: self.id,
            offset: self.offset,
            data_len: self.has_length.then_some(self.data.len()),
            fin: self.fin,
        }
    }

    /// The frame type, one of 0x08-0x0f.
    pub fn ty(&self) -> FrameType {
        self.header().ty()
    }

    /// The stream offset just past `data` (the final size if `fin`). At
    /// most 2^62-1 for a decoded frame.
    pub fn end(&self) -> u64 {
        self.offset.into_inner() + self.data.len() as u64
    }

    /// The exact number of bytes [`Stream::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        self.header().encoded_len() + self.data.len()
    }

    /// Writes the frame. The OFF bit is set only for a nonzero offset.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.header().encode(buf);
        buf.put_slice(self.data);
    }
}

/// `offset + len` if it stays within 2^62-1, the largest stream offset.
fn end_offset(offset: VarInt, len: usize) -> Option<u64> {
    let end = offset.into_inner().checked_add(u64::try_from(len).ok()?)?;
    (end <= VarInt::MAX.into_inner()).then_some(end)
}

/// The fields of a STREAM frame before its data, for a sender that writes
/// the data itself (straight from its send buffer) right after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// The stream the data belongs to.
    pub id: StreamId,
    /// The stream offset of the first data byte. Zero omits the Offset field.
    pub offset: VarInt,
    /// `Some(n)` writes a Length field for `n` data bytes; `None` omits it,
    /// and the data must fill the rest of the packet.
    pub data_len: Option<usize>,
    /// Whether the frame ends the stream.
    pub fin: bool,
}

impl StreamHeader {
    /// The frame type, with the OFF, LEN and FIN bits this header implies.
    pub fn ty(&self) -> FrameType {
        let mut bits = FrameType::STREAM.0.into_inner();
        if self.offset != VarInt::ZERO {
            bits |= FrameType::STREAM_OFF_BIT;
        }
        if self.data_len.is_some() {
            bits |= FrameType::STREAM_LEN_BIT;
        }
        if self.fin {
            bits |= FrameType::STREAM_FIN_BIT;
        }
        FrameType(VarInt::from_u32(bits as u32))
    }

    /// The exact number of bytes [`StreamHeader::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let offset_len = if self.offset == VarInt::ZERO { 0 } else { self.offset.size() };
        1 + self.id.to_varint().size() + offset_len + self.data_len.map_or(0, len_size)
    }

    /// Writes the header; the caller writes the data bytes next.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.ty().0.encode(buf);
        self.id.to_varint().encode(buf);
        if self.offset != VarInt::ZERO {
            self.offset.encode(buf);
        }
        if let Some(len) = self.data_len {
            len_varint(len).encode(buf);
        }
    }

    /// How many data bytes a STREAM frame for `id` at `offset` can carry in
    /// `space` bytes, header included, with or without a Length field.
    /// `None` if not even a frame with no data fits. Never more than the
    /// offset limit of 2^62-1 allows.
    pub fn max_data_len(
        id: StreamId,
        offset: VarInt,
        space: usize,
        with_length: bool,
    ) -> Option<usize> {
        let header = StreamHeader { id, offset, data_len: None, fin: false };
        let fits = fit_payload(header.encoded_len(), space, with_length)?;
        let room = VarInt::MAX.into_inner() - offset.into_inner();
        Some(fits.min(usize::try_from(room).unwrap_or(usize::MAX)))
    }
}
