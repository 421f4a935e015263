//! QUIC variable-length integers (RFC 9000 §16).

use core::fmt;

use bytes::BufMut;

use crate::coding::{Reader, UnexpectedEnd};

/// An integer in `0..2^62`, encoded on the wire in 1, 2, 4 or 8 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VarInt(u64);

/// A value was too large to be a [`VarInt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarIntBoundsExceeded;

impl fmt::Display for VarIntBoundsExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("value too large for a QUIC variable-length integer (max 2^62-1)")
    }
}

impl std::error::Error for VarIntBoundsExceeded {}

impl VarInt {
    /// The largest representable value, 2^62 - 1.
    pub const MAX: Self = Self((1 << 62) - 1);
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// The longest encoding, in bytes.
    pub const MAX_SIZE: usize = 8;

    /// Any `u32` fits.
    pub const fn from_u32(x: u32) -> Self {
        Self(x as u64)
    }

    /// `x` as a `VarInt`, or an error if it is 2^62 or more.
    pub const fn from_u64(x: u64) -> Result<Self, VarIntBoundsExceeded> {
        if x <= Self::MAX.0 { Ok(Self(x)) } else { Err(VarIntBoundsExceeded) }
    }

    /// `x` as a `VarInt`, clamped to [`VarInt::MAX`].
    pub const fn saturating_from_u64(x: u64) -> Self {
        if x <= Self::MAX.0 { Self(x) } else { Self::MAX }
    }

    /// The value.
    pub const fn into_inner(self) -> u64 {
        self.0
    }

    /// The length of the shortest encoding of this value.
    pub const fn size(self) -> usize {
        Self::size_of(self.0)
    }

    /// The shortest encoding length of `x`, which must be at most [`VarInt::MAX`].
    pub const fn size_of(x: u64) -> usize {
        if x < (1 << 6) {
            1
        } else if x < (1 << 14) {
            2
        } else if x < (1 << 30) {
            4
        } else {
            8
        }
    }

    /// Writes the shortest encoding.
    pub fn encode<B: BufMut>(self, buf: &mut B) {
        let x = self.0;
        match self.size() {
            1 => buf.put_u8(x as u8),
            2 => buf.put_u16(0x4000 | x as u16),
            4 => buf.put_u32(0x8000_0000 | x as u32),
            _ => buf.put_u64(0xc000_0000_0000_0000 | x),
        }
    }

    /// Writes the value in exactly `len` bytes (1, 2, 4 or 8), as used when a
    /// length field is reserved before its value is known.
    ///
    /// Panics if `len` is not one of those or is too short for the value:
    /// both are caller bugs, never peer input.
    pub fn encode_with_len<B: BufMut>(self, len: usize, buf: &mut B) {
        assert!(len >= self.size(), "VarInt {} does not fit in {len} bytes", self.0);
        let x = self.0;
        match len {
            1 => buf.put_u8(x as u8),
            2 => buf.put_u16(0x4000 | x as u16),
            4 => buf.put_u32(0x8000_0000 | x as u32),
            8 => buf.put_u64(0xc000_0000_0000_0000 | x),
            _ => panic!("invalid VarInt encoding length {len}"),
        }
    }

    /// Reads one variable-length integer (any of the four lengths).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, UnexpectedEnd> {
        Self::decode_with_len(r).map(|(v, _)| v)
    }

    /// Reads one variable-length integer and the number of bytes it took, for
    /// fields that must use the shortest encoding (frame types, RFC 9000 §12.4).
    pub fn decode_with_len(r: &mut Reader<'_>) -> Result<(Self, usize), UnexpectedEnd> {
        let first = r.peek_u8()?;
        let len = 1usize << (first >> 6);
        let bytes = r.bytes(len)?;
        let mut x = u64::from(first & 0x3f);
        for b in &bytes[1..] {
            x = (x << 8) | u64::from(*b);
        }
        Ok((Self(x), len))
    }
}

impl From<u8> for VarInt {
    fn from(x: u8) -> Self {
        Self(x.into())
    }
}

impl From<u16> for VarInt {
    fn from(x: u16) -> Self {
        Self(x.into())
    }
}

impl From<u32> for VarInt {
    fn from(x: u32) -> Self {
        Self(x.into())
    }
}

impl TryFrom<u64> for VarInt {
    type Error = VarIntBoundsExceeded;
    fn try_from(x: u64) -> Result<Self, VarIntBoundsExceeded> {
        Self::from_u64(x)
    }
}

impl TryFrom<usize> for VarInt {
    type Error = VarIntBoundsExceeded;
    fn try_from(x: usize) -> Result<Self, VarIntBoundsExceeded> {
        Self::from_u64(x as u64)
    }
}

impl From<VarInt> for u64 {
    fn from(x: VarInt) -> u64 {
        x.0
    }
}

impl fmt::Debug for VarInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for VarInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(bytes: &[u8]) -> Result<(VarInt, usize), UnexpectedEnd> {
        VarInt::decode_with_len(&mut Reader::new(bytes))
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#appendix-A.1
    //= type=test
    //# For example, the eight-byte sequence 0xc2197c5eff14e88c decodes to
    //# the decimal value 151,288,809,941,952,652; the four-byte sequence
    //# 0x9d7f3e7d decodes to 494,878,333; the two-byte sequence 0x7bbd
    //# decodes to 15,293; and the single byte 0x25 decodes to 37 (as does
    //# the two-byte sequence 0x4025).
    #[test]
    fn rfc9000_sample_decodings() {
        let cases: &[(&[u8], u64)] = &[
            (&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
            (&[0x40, 0x25], 37),
        ];
        for (bytes, value) in cases {
            assert_eq!(decode_all(bytes), Ok((VarInt(*value), bytes.len())));
        }
        let mut out = Vec::new();
        VarInt(151_288_809_941_952_652).encode(&mut out);
        assert_eq!(out, [0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]);
    }

    #[test]
    fn bounds() {
        assert_eq!(VarInt::from_u64(1 << 62), Err(VarIntBoundsExceeded));
        assert_eq!(VarInt::from_u64((1 << 62) - 1), Ok(VarInt::MAX));
        assert_eq!(decode_all(&[0xc0, 0, 0]), Err(UnexpectedEnd));
        assert_eq!(decode_all(&[]), Err(UnexpectedEnd));
        let mut out = Vec::new();
        VarInt(37).encode_with_len(4, &mut out);
        assert_eq!(out, [0x80, 0, 0, 0x25]);
    }

    proptest! {
        #[test]
        fn round_trip(x in 0..=VarInt::MAX.0) {
            let v = VarInt(x);
            let mut out = Vec::new();
            v.encode(&mut out);
            prop_assert_eq!(out.len(), v.size());
            prop_assert_eq!(decode_all(&out), Ok((v, out.len())));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            if let Ok((_, len)) = decode_all(&bytes) {
                prop_assert!(len <= bytes.len());
            }
        }
    }
}
