//! HTTP/3 frames (RFC 9114 §7; PRIORITY_UPDATE from RFC 9218 §7.2), sans
//! I/O: bytes in, typed frames out, and back.
//!
//! A stream's bytes arrive in pieces, so reading is two steps.
//! [`FrameHeader::decode`] reads the Type and Length fields from whatever
//! the stream has delivered, answering `Ok(None)` until both are there,
//! and refuses early what can be refused from the header alone. Then the
//! connection layer either buffers the payload and calls
//! [`Frame::decode_payload`] (SETTINGS, GOAWAY, HEADERS, ...), streams it
//! (DATA), or skips it (unknown and reserved types). [`Frame::parse`] does
//! both steps for input that is already in one slice.
//!
//! What this layer does not judge: which stream a frame may arrive on,
//! ordering (SETTINGS first on the control stream), and identifier
//! semantics (push ID limits, GOAWAY's stream ID type). Those need
//! connection state.

use quic_proto::VarInt;
use quic_proto::coding::Reader;

use crate::error::H3Error;
use crate::settings::Settings;

mod frame_type;
#[cfg(test)]
pub(crate) mod tests;

pub use frame_type::FrameType;

/// The Type and Length fields that start every HTTP/3 frame (RFC 9114
/// §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame type.
    pub ty: FrameType,
    /// The payload length in bytes, as declared.
    pub len: u64,
    /// How many bytes the Type and Length fields took.
    pub header_len: usize,
}

impl FrameHeader {
    /// Reads a frame header from the start of `buf`: `Ok(None)` if `buf`
    /// ends before the Length field does (call again with more bytes),
    /// otherwise the header, with `header_len` bytes to consume before the
    /// payload.
    ///
    /// `max_buffered_len` bounds the payload of frames the layer must hold
    /// whole before decoding ([`FrameType::is_buffered`]); a larger one is
    /// refused here, before any of it is buffered. DATA and unknown types
    /// are streamed or skipped and may be any length.
    pub fn decode(buf: &[u8], max_buffered_len: u64) -> Result<Option<Self>, H3Error> {
        let mut r = Reader::new(buf);
        let Ok(ty) = VarInt::decode(&mut r).map(FrameType) else { return Ok(None) };
        // Refused as soon as the type is known: no need to wait for a
        // length that does not matter.
        check_type(ty)?;
        let Ok(len) = VarInt::decode(&mut r).map(VarInt::into_inner) else { return Ok(None) };

        //= https://www.rfc-editor.org/rfc/rfc9114#section-7.1
        //# Each frame's payload MUST contain exactly the fields identified in its
        //# description.  A frame payload that contains additional bytes after the
        //# identified fields or a frame payload that terminates before the end of the
        //# identified fields MUST be treated as a connection error of type
        //# H3_FRAME_ERROR.
        //
        // A payload of one variable-length integer is 1 to 8 bytes whatever
        // its value, so any other length is wrong before a byte of it is seen.
        if ty.is_single_varint() && !(1..=VarInt::MAX_SIZE as u64).contains(&len) {
            return Err(
                H3Error::frame_error("payload length is not that of one integer").with_frame(ty)
            );
        }

        //= https://www.rfc-editor.org/rfc/rfc9114#section-10.5
        //# An endpoint MAY treat activity that is suspicious as a connection error of type
        //# H3_EXCESSIVE_LOAD, but
        //# false positives will result in disrupting valid connections and requests.
        //
        // H3_EXCESSIVE_LOAD, not H3_FRAME_ERROR: a frame above our limit
        // still satisfies every layout and size rule of RFC 9114 §7 (no
        // frame type has a maximum length there), so the peer broke no
        // framing rule; it asked us to commit more memory than we will.
        // The limit exists because these payloads are held whole before
        // decoding: without it one Length field could make us buffer up
        // to 2^62 bytes.
        if ty.is_buffered() && len > max_buffered_len {
            return Err(
                H3Error::excessive_load("frame longer than the buffering limit").with_frame(ty)
            );
        }
        Ok(Some(Self { ty, len, header_len: r.position() }))
    }

    /// Writes a frame header: `ty` and a payload length of `len` bytes.
    ///
    /// Panics if `len` is 2^62 or more, which no payload in memory reaches
    /// (a caller bug, never peer input).
    pub fn encode(ty: FrameType, len: u64, out: &mut Vec<u8>) {
        ty.0.encode(out);
        varint(len).encode(out);
    }

    /// The number of bytes [`FrameHeader::encode`] writes for `ty` and `len`.
    pub fn encoded_len(ty: FrameType, len: u64) -> usize {
        ty.0.size() + VarInt::size_of(len)
    }
}

/// The checks that need only a frame's type.
fn check_type(ty: FrameType) -> Result<(), H3Error> {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.8
    //# Frame types that were used in HTTP/2 where there is no corresponding HTTP/3
    //# frame have also been reserved ({{iana-frames}}).  These frame types MUST NOT be
    //# sent, and their receipt MUST be treated as a connection error of type
    //# H3_FRAME_UNEXPECTED.
    if ty.is_h2_reserved() {
        return Err(H3Error::frame_unexpected("HTTP/2 frame type").with_frame(ty));
    }
    Ok(())
}

/// One HTTP/3 frame, borrowing any field section or field value from the
/// buffer it was decoded from.
///
/// DATA and unknown frames carry only their length: their payloads are
/// never copied by this layer (the connection layer streams DATA to the
/// application and skips unknown payloads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// DATA (0x00), whose `len` payload bytes follow the header.
    Data {
        /// The payload length.
        len: u64,
    },
    /// HEADERS (0x01): an encoded field section for the QPACK decoder.
    Headers {
        /// The QPACK-encoded field section.
        field_section: &'a [u8],
    },
    /// CANCEL_PUSH (0x03) with the push ID being cancelled.
    CancelPush(VarInt),
    /// SETTINGS (0x04).
    Settings(Settings),
    /// PUSH_PROMISE (0x05).
    PushPromise {
        /// The push ID the promise is for.
        push_id: VarInt,
        /// The QPACK-encoded promised request field section.
        field_section: &'a [u8],
    },
    /// GOAWAY (0x07) with a stream ID (from a server) or push ID (from a
    /// client).
    Goaway(VarInt),
    /// MAX_PUSH_ID (0x0d) with the largest push ID the server may use.
    MaxPushId(VarInt),
    /// PRIORITY_UPDATE (0xf0700 for a request, 0xf0701 for a push,
    /// RFC 9218 §7.2).
    PriorityUpdate {
        /// The request stream ID or push ID whose priority changes.
        element_id: VarInt,
        /// The Priority Field Value (an ASCII structured field dictionary,
        /// RFC 9218 §5), unparsed.
        field_value: &'a [u8],
        /// Whether this is the push variant (0xf0701).
        push: bool,
    },
    /// A frame of a type this layer does not know, reserved ones included;
    /// its `len` payload bytes follow the header and are to be skipped.
    Unknown {
        /// The frame type.
        ty: FrameType,
        /// The payload length.
        len: u64,
    },
}

impl<'a> Frame<'a> {
    /// Reads one frame from the start of `buf`: `Ok(None)` if more bytes
    /// are needed, else the frame and how many bytes of `buf` it took.
    ///
    /// For [`Frame::Data`] and [`Frame::Unknown`] only the header is taken:
    /// the caller streams or skips the `len` payload bytes that follow.
    /// Every other frame is taken whole, and `Ok(None)` until all of its
    /// payload is in `buf`. `max_buffered_len` is as for
    /// [`FrameHeader::decode`].
    pub fn parse(buf: &'a [u8], max_buffered_len: u64) -> Result<Option<(Self, usize)>, H3Error> {
        let Some(header) = FrameHeader::decode(buf, max_buffered_len)? else { return Ok(None) };
        match header.ty {
            FrameType::DATA => {
                return Ok(Some((Self::Data { len: header.len }, header.header_len)));
            }
            ty if !ty.is_buffered() => {
                let frame = Self::Unknown { ty, len: header.len };
                return Ok(Some((frame, header.header_len)));
            }
            _ => {}
        }
        // A buffered frame's length is at most `max_buffered_len`, which
        // a caller sizes to memory; one that does not fit `usize` cannot be
        // in `buf` either.
        let Ok(len) = usize::try_from(header.len) else { return Ok(None) };
        let Some(payload) = buf[header.header_len..].get(..len) else { return Ok(None) };
        let frame = Self::decode_payload(header.ty, payload)?;
        Ok(Some((frame, header.header_len + len)))
    }

    /// Decodes the complete payload of a frame of type `ty`, exactly the
    /// Length field's bytes. For DATA and unknown types this only records
    /// `payload.len()`.
    pub fn decode_payload(ty: FrameType, payload: &'a [u8]) -> Result<Self, H3Error> {
        check_type(ty)?;
        let mut r = Reader::new(payload);
        let frame = match ty {
            FrameType::DATA => Self::Data { len: payload.len() as u64 },
            FrameType::HEADERS => Self::Headers { field_section: payload },
            FrameType::SETTINGS => Self::Settings(Settings::decode_payload(payload)?),
            FrameType::CANCEL_PUSH => Self::CancelPush(only_varint(ty, &mut r)?),
            FrameType::GOAWAY => Self::Goaway(only_varint(ty, &mut r)?),
            FrameType::MAX_PUSH_ID => Self::MaxPushId(only_varint(ty, &mut r)?),
            FrameType::PUSH_PROMISE => {
                Self::PushPromise { push_id: leading_varint(ty, &mut r)?, field_section: r.rest() }
            }
            FrameType::PRIORITY_UPDATE_REQUEST | FrameType::PRIORITY_UPDATE_PUSH => {
                Self::PriorityUpdate {
                    element_id: leading_varint(ty, &mut r)?,
                    field_value: r.rest(),
                    push: ty == FrameType::PRIORITY_UPDATE_PUSH,
                }
            }
            ty => Self::Unknown { ty, len: payload.len() as u64 },
        };
        Ok(frame)
    }

    /// The frame's type.
    pub fn ty(&self) -> FrameType {
        match self {
            Self::Data { .. } => FrameType::DATA,
            Self::Headers { .. } => FrameType::HEADERS,
            Self::CancelPush(_) => FrameType::CANCEL_PUSH,
            Self::Settings(_) => FrameType::SETTINGS,
            Self::PushPromise { .. } => FrameType::PUSH_PROMISE,
            Self::Goaway(_) => FrameType::GOAWAY,
            Self::MaxPushId(_) => FrameType::MAX_PUSH_ID,
            Self::PriorityUpdate { push: false, .. } => FrameType::PRIORITY_UPDATE_REQUEST,
            Self::PriorityUpdate { push: true, .. } => FrameType::PRIORITY_UPDATE_PUSH,
            Self::Unknown { ty, .. } => *ty,
        }
    }

    /// The payload length the frame's Length field declares.
    pub fn payload_len(&self) -> u64 {
        match self {
            Self::Data { len } | Self::Unknown { len, .. } => *len,
            Self::Headers { field_section } => field_section.len() as u64,
            Self::CancelPush(id) | Self::Goaway(id) | Self::MaxPushId(id) => id.size() as u64,
            Self::Settings(settings) => settings.payload_len() as u64,
            Self::PushPromise { push_id, field_section } => {
                (push_id.size() + field_section.len()) as u64
            }
            Self::PriorityUpdate { element_id, field_value, .. } => {
                (element_id.size() + field_value.len()) as u64
            }
        }
    }

    /// Appends the frame to `out`: exactly [`Frame::encoded_len`] bytes.
    ///
    /// For [`Frame::Data`] and [`Frame::Unknown`] that is the header
    /// alone; the caller appends the `len` payload bytes. Panics if such a
    /// `len` is 2^62 or more (a caller bug).
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Self::Settings(settings) = self {
            return settings.encode(out);
        }
        FrameHeader::encode(self.ty(), self.payload_len(), out);
        match self {
            Self::Data { .. } | Self::Unknown { .. } | Self::Settings(_) => {}
            Self::Headers { field_section } => out.extend_from_slice(field_section),
            Self::CancelPush(id) | Self::Goaway(id) | Self::MaxPushId(id) => id.encode(out),
            Self::PushPromise { push_id, field_section } => {
                push_id.encode(out);
                out.extend_from_slice(field_section);
            }
            Self::PriorityUpdate { element_id, field_value, .. } => {
                element_id.encode(out);
                out.extend_from_slice(field_value);
            }
        }
    }

    /// The number of bytes [`Frame::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let len = self.payload_len();
        let header = FrameHeader::encoded_len(self.ty(), len);
        match self {
            Self::Data { .. } | Self::Unknown { .. } => header,
            // Buffered payloads are in memory, so their length fits usize.
            _ => header + len as usize,
        }
    }
}

/// The largest payload [`encode_grease_frame`] writes: enough to exercise
/// a peer's skipping, small enough to cost nothing.
pub const MAX_GREASE_PAYLOAD: usize = 7;

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.8
//# These frames have no semantics, and they MAY be sent on any
//# stream where frames are allowed to be sent.
/// Appends a reserved frame (type `0x1f * N + 0x21`) with 0 to
/// [`MAX_GREASE_PAYLOAD`] payload bytes, type, length and content all
/// drawn from the caller's `random`. Peers must skip it; sending one now
/// and then keeps them honest about that.
pub fn encode_grease_frame(random: u64, out: &mut Vec<u8>) {
    let len = (random >> 61) as usize;
    FrameHeader::encode(FrameType::grease(random), len as u64, out);
    out.extend_from_slice(&random.to_le_bytes()[..len]);
}

/// The payload's one integer, with nothing after it.
fn only_varint(ty: FrameType, r: &mut Reader<'_>) -> Result<VarInt, H3Error> {
    let value = leading_varint(ty, r)?;
    //= https://www.rfc-editor.org/rfc/rfc9114#section-7.1
    //# A frame payload that contains additional bytes after the
    //# identified fields or a frame payload that terminates before the end of the
    //# identified fields MUST be treated as a connection error of type
    //# H3_FRAME_ERROR.
    if !r.is_empty() {
        return Err(H3Error::frame_error("bytes after the payload's fields").with_frame(ty));
    }
    Ok(value)
}

/// An integer that starts the payload.
fn leading_varint(ty: FrameType, r: &mut Reader<'_>) -> Result<VarInt, H3Error> {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-10.8
    //# An implementation MUST
    //# ensure that the length of a frame exactly matches the length of the fields it
    //# contains.
    VarInt::decode(r)
        .map_err(|_| H3Error::frame_error("payload ends inside an integer").with_frame(ty))
}

/// `x` as a length field, which every in-memory length fits.
fn varint(x: u64) -> VarInt {
    VarInt::from_u64(x).expect("a frame length is below 2^62 (caller invariant)")
}
