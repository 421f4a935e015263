//! QPACK (RFC 9204): field compression for HTTP/3, bytes in and bytes out.
//!
//! What exists so far: the static table (Appendix A), prefixed integers
//! (§4.1.1) and the dynamic table's bookkeeping (§3.2: sizes, capacity,
//! eviction, absolute, relative and post-Base indices). Huffman coding,
//! the encoder and decoder and their instruction streams are not written
//! yet (docs/status.md).

#[allow(dead_code)] // the decoder and encoder that use it are next
mod dynamic_table;
mod int;
mod static_table;

use core::fmt;

/// Why a QPACK input was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended inside a representation.
    Truncated,
    /// An integer longer than 62 bits.
    IntegerOverflow,
    /// A static table index past its 99 entries.
    BadStaticIndex,
    /// A dynamic table index naming no entry present.
    BadDynamicIndex,
    /// A capacity above SETTINGS_QPACK_MAX_TABLE_CAPACITY.
    CapacityExceeded,
    /// An entry larger than the table's capacity.
    EntryTooLarge,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "QPACK input ends inside a representation",
            Self::IntegerOverflow => "QPACK integer longer than 62 bits",
            Self::BadStaticIndex => "QPACK static table index out of range",
            Self::BadDynamicIndex => "QPACK dynamic table index names no entry",
            Self::CapacityExceeded => "QPACK table capacity above the maximum",
            Self::EntryTooLarge => "QPACK entry larger than the table capacity",
        })
    }
}

impl std::error::Error for Error {}

/// The static table entry at `index` (RFC 9204 Appendix A): name and value.
pub fn static_entry(index: u64) -> Result<(&'static str, &'static str), Error> {
    //= https://www.rfc-editor.org/rfc/rfc9204#section-3.1
    //# When the decoder encounters an invalid static table index in a field line
    //# representation, it MUST treat this as a connection error of type
    //# QPACK_DECOMPRESSION_FAILED.
    usize::try_from(index)
        .ok()
        .and_then(|i| static_table::STATIC_TABLE.get(i))
        .copied()
        .ok_or(Error::BadStaticIndex)
}

/// Encodes `value` as a prefixed integer with an `n`-bit prefix (1 to 8),
/// `flags` in the first byte's higher bits (RFC 9204 §4.1.1).
pub fn encode_int(value: u64, n: u8, flags: u8, out: &mut Vec<u8>) {
    int::encode(value, n.clamp(1, 8), flags, out);
}

/// Decodes a prefixed integer with an `n`-bit prefix (1 to 8) from the
/// start of `buf`: the value and how many bytes it took.
pub fn decode_int(buf: &[u8], n: u8) -> Result<(u64, usize), Error> {
    int::decode(buf, n.clamp(1, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_table_matches_the_rfc_at_its_ends_and_refuses_beyond() {
        assert_eq!(static_entry(0), Ok((":authority", "")));
        assert_eq!(static_entry(1), Ok((":path", "/")));
        assert_eq!(static_entry(17), Ok((":method", "GET")));
        assert_eq!(static_entry(25), Ok((":status", "200")));
        assert_eq!(
            static_entry(85),
            Ok((
                "content-security-policy",
                "script-src 'none'; object-src 'none'; base-uri 'none'"
            ))
        );
        assert_eq!(static_entry(98), Ok(("x-frame-options", "sameorigin")));
        //= https://www.rfc-editor.org/rfc/rfc9204#section-3.1
        //= type=test
        //# When the decoder encounters an invalid static table index in a field line
        //# representation, it MUST treat this as a connection error of type
        //# QPACK_DECOMPRESSION_FAILED.
        assert_eq!(static_entry(99), Err(Error::BadStaticIndex));
        assert_eq!(static_entry(u64::MAX), Err(Error::BadStaticIndex));
    }
}
