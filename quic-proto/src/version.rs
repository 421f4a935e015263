//! QUIC version numbers (RFC 8999 §5.1, RFC 9000 §15, RFC 9369).

use core::fmt;

/// A 32-bit QUIC version number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub u32);

impl Version {
    /// Version Negotiation packets carry version 0 (RFC 9000 §17.2.1).
    pub const NEGOTIATION: Self = Self(0);
    /// QUIC version 1 (RFC 9000).
    pub const V1: Self = Self(0x0000_0001);
    /// QUIC version 2 (RFC 9369 §3.1).
    pub const V2: Self = Self(0x6b33_43cf);

    //= https://www.rfc-editor.org/rfc/rfc9000#section-15
    //# Versions that follow the pattern 0x?a?a?a?a are reserved for use in
    //# forcing version negotiation to be exercised
    /// Whether this is a reserved (greasing) version of the form `0x?a?a?a?a`.
    pub const fn is_reserved(self) -> bool {
        self.0 & 0x0f0f_0f0f == 0x0a0a_0a0a
    }

    /// The versions this crate implements, most preferred first.
    pub const SUPPORTED: &'static [Self] = &[Self::V1, Self::V2];

    /// Whether this crate implements the version.
    pub fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V1 => f.write_str("v1"),
            Self::V2 => f.write_str("v2"),
            Self::NEGOTIATION => f.write_str("negotiation"),
            Self(x) => write!(f, "{x:#010x}"),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_pattern() {
        assert!(Version(0x1a2a3a4a).is_reserved());
        assert!(Version(0xfafafafa).is_reserved());
        assert!(!Version::V1.is_reserved());
        assert!(!Version::V2.is_reserved());
        assert!(Version::V2.is_supported());
        assert_eq!(Version(0xff00001d).to_string(), "0xff00001d");
    }
}
