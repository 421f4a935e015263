//! Long header packet types and their version-specific codepoints
//! (RFC 9000 §17.2 Table 5, RFC 9369 §3.2).

use crate::space::EncryptionLevel;
use crate::version::Version;

/// The type of a long header packet of a version this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LongType {
    /// An Initial packet: the first CRYPTO frames, under Initial keys.
    Initial,
    /// A 0-RTT packet: early data from the client.
    ZeroRtt,
    /// A Handshake packet: CRYPTO frames under handshake keys.
    Handshake,
    /// A Retry packet: an address validation token and no packet number.
    Retry,
}

impl LongType {
    /// All types, in v1 codepoint order.
    pub const ALL: [Self; 4] = [Self::Initial, Self::ZeroRtt, Self::Handshake, Self::Retry];

    /// The type whose Long Packet Type codepoint in `version` is `bits` (the
    /// 0x30 bits of the first byte, shifted down: `0..=3`), or `None` for a
    /// version without known codepoints. Higher bits of `bits` are ignored.
    pub const fn from_bits(version: Version, bits: u8) -> Option<Self> {
        let bits = bits & 0x03;
        match version {
            Version::V1 => Some(match bits {
                0 => Self::Initial,
                1 => Self::ZeroRtt,
                2 => Self::Handshake,
                _ => Self::Retry,
            }),
            //= https://www.rfc-editor.org/rfc/rfc9369#section-3.2
            //# All version 2 Long Header packet types are different.
            Version::V2 => Some(match bits {
                1 => Self::Initial,
                2 => Self::ZeroRtt,
                3 => Self::Handshake,
                _ => Self::Retry,
            }),
            _ => None,
        }
    }

    /// The two-bit Long Packet Type codepoint of this type in `version`, or
    /// `None` for a version without known codepoints.
    pub const fn to_bits(self, version: Version) -> Option<u8> {
        match version {
            Version::V1 => Some(match self {
                Self::Initial => 0,
                Self::ZeroRtt => 1,
                Self::Handshake => 2,
                Self::Retry => 3,
            }),
            Version::V2 => Some(match self {
                Self::Initial => 0b01,
                Self::ZeroRtt => 0b10,
                Self::Handshake => 0b11,
                Self::Retry => 0b00,
            }),
            _ => None,
        }
    }

    /// The keys that protect packets of this type; `None` for Retry, which
    /// carries an integrity tag instead.
    pub const fn encryption_level(self) -> Option<EncryptionLevel> {
        match self {
            Self::Initial => Some(EncryptionLevel::Initial),
            Self::ZeroRtt => Some(EncryptionLevel::ZeroRtt),
            Self::Handshake => Some(EncryptionLevel::Handshake),
            Self::Retry => None,
        }
    }

    /// Whether the packet carries Length and Packet Number fields (every
    /// type but Retry), so that more packets may follow it in a datagram.
    pub const fn has_packet_number(self) -> bool {
        !matches!(self, Self::Retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codepoints() {
        let v1 = [0, 1, 2, 3];
        //= https://www.rfc-editor.org/rfc/rfc9369#section-3.2
        //= type=test
        //# All version 2 Long Header packet types are different.
        let v2 = [0b01, 0b10, 0b11, 0b00];
        for (i, ty) in LongType::ALL.into_iter().enumerate() {
            assert_eq!(ty.to_bits(Version::V1), Some(v1[i]));
            assert_eq!(ty.to_bits(Version::V2), Some(v2[i]));
            assert_eq!(LongType::from_bits(Version::V1, v1[i]), Some(ty));
            assert_eq!(LongType::from_bits(Version::V2, v2[i]), Some(ty));
            assert_eq!(ty.to_bits(Version(0x1a2a_3a4a)), None);
            assert_eq!(ty.encryption_level().is_some(), ty.has_packet_number());
        }
        assert_eq!(LongType::from_bits(Version::NEGOTIATION, 0), None);
        assert_eq!(LongType::from_bits(Version::V1, 0xff), Some(LongType::Retry));
    }
}
