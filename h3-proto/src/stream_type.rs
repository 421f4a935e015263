//! Unidirectional stream types (RFC 9114 §6.2, §11.2.4; QPACK's from
//! RFC 9204 §4.2): the integer that opens every unidirectional stream,
//! and the push stream's Push ID after it.

use core::fmt;

use quic_proto::VarInt;
use quic_proto::coding::Reader;

use crate::grease;

/// A unidirectional stream type. Any value may arrive; the named ones
/// are associated consts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamType(pub VarInt);

macro_rules! stream_types {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl StreamType {
            $($(#[$doc])* pub const $name: Self = Self(VarInt::from_u32($value));)*

            /// The registered name of a stream type this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0.into_inner() {
                    $(x if x == $value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

stream_types! {
    /// The control stream (0x00, RFC 9114 §6.2.1).
    CONTROL = 0x00;
    /// A push stream (0x01, RFC 9114 §6.2.2), from servers only.
    PUSH = 0x01;
    /// The QPACK encoder stream (0x02, RFC 9204 §4.2).
    QPACK_ENCODER = 0x02;
    /// The QPACK decoder stream (0x03, RFC 9204 §4.2).
    QPACK_DECODER = 0x03;
}

impl StreamType {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.3
    //# Stream types of the format `0x1f * N + 0x21` for non-negative integer values of
    //# `N` are reserved to exercise the requirement that unknown types be ignored.
    /// Whether this is a reserved (greasing) type `0x1f * N + 0x21`.
    pub fn is_reserved(self) -> bool {
        grease::is_reserved(self.0.into_inner())
    }

    /// The reserved type `0x1f * n + 0x21`, or `None` if it would not fit
    /// a variable-length integer.
    pub fn reserved(n: u64) -> Option<Self> {
        grease::nth(n).map(Self)
    }

    /// A reserved type chosen by the caller's `random`.
    pub fn grease(random: u64) -> Self {
        Self(grease::pick(random))
    }

    /// Reads the stream type from the start of a unidirectional stream's
    /// bytes: `None` until the whole integer has arrived, then the type
    /// and the bytes it took. Every value is a valid type, so this never
    /// fails.
    pub fn decode(buf: &[u8]) -> Option<(Self, usize)> {
        let mut r = Reader::new(buf);
        VarInt::decode_with_len(&mut r).ok().map(|(ty, len)| (Self(ty), len))
    }

    /// Appends the stream type.
    pub fn encode(self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
}

impl fmt::Debug for StreamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for StreamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name() {
            f.write_str(name)
        } else if self.is_reserved() {
            write!(f, "reserved stream type {:#x}", self.0.into_inner())
        } else {
            write!(f, "unknown stream type {:#x}", self.0.into_inner())
        }
    }
}

/// The header of a unidirectional stream: its type and, for a push
/// stream, the push ID (RFC 9114 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UniStreamHeader {
    /// The peer's control stream.
    Control,
    /// A push stream fulfilling the promise of `push_id`.
    Push {
        /// The push ID from the push stream header.
        push_id: VarInt,
    },
    /// The peer's QPACK encoder stream.
    QpackEncoder,
    /// The peer's QPACK decoder stream.
    QpackDecoder,
    /// A type this layer does not know, reserved ones included.
    Unknown(StreamType),
}

impl UniStreamHeader {
    /// Reads a unidirectional stream's header from the start of its bytes:
    /// `None` until all of it has arrived (call again with more), then
    /// the header and the bytes it took. Never fails: every type is
    /// valid here, and what an unknown one means is the caller's choice.
    //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2
    //# The recipient MUST NOT consider
    //# unknown stream types to be a connection error of any kind.
    pub fn decode(buf: &[u8]) -> Option<(Self, usize)> {
        let (ty, len) = StreamType::decode(buf)?;
        let header = match ty {
            StreamType::CONTROL => Self::Control,
            StreamType::PUSH => {
                let mut r = Reader::new(&buf[len..]);
                let (push_id, id_len) = VarInt::decode_with_len(&mut r).ok()?;
                return Some((Self::Push { push_id }, len + id_len));
            }
            StreamType::QPACK_ENCODER => Self::QpackEncoder,
            StreamType::QPACK_DECODER => Self::QpackDecoder,
            ty => Self::Unknown(ty),
        };
        Some((header, len))
    }

    /// The stream type.
    pub fn stream_type(&self) -> StreamType {
        match self {
            Self::Control => StreamType::CONTROL,
            Self::Push { .. } => StreamType::PUSH,
            Self::QpackEncoder => StreamType::QPACK_ENCODER,
            Self::QpackDecoder => StreamType::QPACK_DECODER,
            Self::Unknown(ty) => *ty,
        }
    }

    /// Appends the header: exactly [`UniStreamHeader::encoded_len`] bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.stream_type().encode(out);
        if let Self::Push { push_id } = self {
            push_id.encode(out);
        }
    }

    /// The number of bytes [`UniStreamHeader::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let push_id = match self {
            Self::Push { push_id } => push_id.size(),
            _ => 0,
        };
        self.stream_type().0.size() + push_id
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::tests::varint;

    #[test]
    fn known_types_and_the_push_header() {
        let cases: &[(&[u8], UniStreamHeader)] = &[
            (&[0x00], UniStreamHeader::Control),
            (&[0x01, 0x40, 0x05], UniStreamHeader::Push { push_id: VarInt::from_u32(5) }),
            (&[0x02], UniStreamHeader::QpackEncoder),
            (&[0x03], UniStreamHeader::QpackDecoder),
            (&[0x40, 0x21], UniStreamHeader::Unknown(StreamType(VarInt::from_u32(0x21)))),
        ];
        for (bytes, header) in cases {
            assert_eq!(UniStreamHeader::decode(bytes), Some((*header, bytes.len())));
            for end in 0..bytes.len() {
                assert_eq!(
                    UniStreamHeader::decode(&bytes[..end]),
                    None,
                    "{bytes:02x?} cut at {end}"
                );
            }
        }
        // What follows the header is not taken.
        assert_eq!(
            UniStreamHeader::decode(&[0x00, 0x04, 0x00]),
            Some((UniStreamHeader::Control, 1))
        );
        assert_eq!(StreamType::QPACK_DECODER.to_string(), "QPACK_DECODER");
        assert_eq!(StreamType(VarInt::from_u32(0x40)).to_string(), "reserved stream type 0x40");
    }

    //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2
    //= type=test
    //# The recipient MUST NOT consider
    //# unknown stream types to be a connection error of any kind.
    //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.3
    //= type=test
    //# Stream types of the format `0x1f * N + 0x21` for non-negative integer values of
    //# `N` are reserved to exercise the requirement that unknown types be ignored.
    #[test]
    fn reserved_types_decode_as_unknown() {
        for random in [0, 1, u64::MAX] {
            let ty = StreamType::grease(random);
            assert!(ty.is_reserved() && ty.name().is_none());
            let mut out = Vec::new();
            UniStreamHeader::Unknown(ty).encode(&mut out);
            assert_eq!(
                UniStreamHeader::decode(&out),
                Some((UniStreamHeader::Unknown(ty), out.len()))
            );
        }
        assert_eq!(StreamType::reserved(0), Some(StreamType(VarInt::from_u32(0x21))));
    }

    fn header() -> impl Strategy<Value = UniStreamHeader> {
        prop_oneof![
            Just(UniStreamHeader::Control),
            varint().prop_map(|push_id| UniStreamHeader::Push { push_id }),
            Just(UniStreamHeader::QpackEncoder),
            Just(UniStreamHeader::QpackDecoder),
            varint()
                .prop_filter("unknown", |x| x.into_inner() > 3)
                .prop_map(|x| UniStreamHeader::Unknown(StreamType(x))),
        ]
    }

    proptest! {
        #[test]
        fn headers_round_trip_with_exact_sizes(header in header(), tail: Vec<u8>) {
            let mut out = Vec::new();
            header.encode(&mut out);
            prop_assert_eq!(out.len(), header.encoded_len());
            for end in 0..out.len() {
                prop_assert_eq!(UniStreamHeader::decode(&out[..end]), None);
            }
            let len = out.len();
            out.extend_from_slice(&tail);
            prop_assert_eq!(UniStreamHeader::decode(&out), Some((header, len)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes: Vec<u8>) {
            if let Some((_, len)) = UniStreamHeader::decode(&bytes) {
                prop_assert!(len <= bytes.len());
            }
        }
    }
}
