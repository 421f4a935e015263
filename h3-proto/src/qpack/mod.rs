//! QPACK (RFC 9204): field compression for HTTP/3, bytes in and bytes out.
//!
//! A [`Decoder`] takes the peer encoder's stream and encoded field sections
//! and gives field lines and the bytes of its own decoder stream; an
//! [`Encoder`] takes field lines and gives encoded field sections and the
//! bytes of its encoder stream, and reads the peer decoder's stream. Neither
//! touches a transport: the HTTP/3 layer moves the bytes.
//!
//! Parts: the static table (Appendix A), prefixed integers and string
//! literals (§4.1), Huffman coding (RFC 7541 Appendix B), the dynamic table
//! (§3.2), encoder and decoder instructions (§4.3, §4.4) and field line
//! representations (§4.5).

mod decoder;
mod dynamic_table;
mod encoder;
mod field;
mod huffman;
mod int;
pub mod qif;
mod static_table;

use core::fmt;

pub use decoder::{Decoded, Decoder};
pub use encoder::{Encoder, EncoderConfig};
pub use field::Field;

/// The QPACK error codes (RFC 9204 §6): what an [`Error`] closes the
/// connection (or, for a too-large field section, resets the stream) with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// QPACK_DECOMPRESSION_FAILED: an encoded field section was invalid.
    DecompressionFailed,
    /// QPACK_ENCODER_STREAM_ERROR: an encoder instruction was invalid.
    EncoderStream,
    /// QPACK_DECODER_STREAM_ERROR: a decoder instruction was invalid.
    DecoderStream,
}

impl ErrorCode {
    /// The code's value on the wire.
    pub fn to_u64(self) -> u64 {
        match self {
            Self::DecompressionFailed => 0x200,
            Self::EncoderStream => 0x201,
            Self::DecoderStream => 0x202,
        }
    }
}

/// Why QPACK input was refused: the code to close with and the cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// The error code the peer is told.
    pub code: ErrorCode,
    /// What was wrong.
    pub cause: Cause,
}

impl Error {
    pub(crate) fn decompression(cause: Cause) -> Self {
        Self { code: ErrorCode::DecompressionFailed, cause }
    }

    pub(crate) fn encoder_stream(cause: Cause) -> Self {
        Self { code: ErrorCode::EncoderStream, cause }
    }

    pub(crate) fn decoder_stream(cause: Cause) -> Self {
        Self { code: ErrorCode::DecoderStream, cause }
    }

    /// Whether the error concerns only the stream whose field section it
    /// was (a section larger than this decoder accepts, RFC 9204 §7.4);
    /// every other QPACK error is a connection error.
    pub fn is_stream_error(&self) -> bool {
        self.cause == Cause::FieldSectionTooLarge
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.code {
            ErrorCode::DecompressionFailed => "QPACK_DECOMPRESSION_FAILED",
            ErrorCode::EncoderStream => "QPACK_ENCODER_STREAM_ERROR",
            ErrorCode::DecoderStream => "QPACK_DECODER_STREAM_ERROR",
        };
        write!(f, "{code}: {}", self.cause)
    }
}

impl std::error::Error for Error {}

/// What was wrong with QPACK input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// The input ended inside a representation.
    Truncated,
    /// An integer longer than 62 bits.
    IntegerOverflow,
    /// A static table index past its 99 entries.
    BadStaticIndex,
    /// A dynamic table index naming no entry present, or one the field
    /// section's Required Insert Count does not cover.
    BadDynamicIndex,
    /// A capacity above SETTINGS_QPACK_MAX_TABLE_CAPACITY.
    CapacityExceeded,
    /// An entry larger than the table's capacity.
    EntryTooLarge,
    /// A Huffman-coded string with EOS or bad padding (RFC 7541 §5.2).
    Huffman,
    /// An encoded Required Insert Count no conformant encoder produces.
    BadRequiredInsertCount,
    /// A Base below zero.
    NegativeBase,
    /// More streams blocked than SETTINGS_QPACK_BLOCKED_STREAMS allows.
    TooManyBlockedStreams,
    /// A field section whose size (RFC 9114 §4.2.2) passes the decoder's
    /// SETTINGS_MAX_FIELD_SECTION_SIZE.
    FieldSectionTooLarge,
    /// A Section Acknowledgment for a stream with nothing outstanding.
    UnexpectedAcknowledgment,
    /// An Insert Count Increment of zero or past the inserts sent.
    BadIncrement,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "input ends inside a representation",
            Self::IntegerOverflow => "integer longer than 62 bits",
            Self::BadStaticIndex => "static table index out of range",
            Self::BadDynamicIndex => "dynamic table index names no usable entry",
            Self::CapacityExceeded => "table capacity above the maximum",
            Self::EntryTooLarge => "entry larger than the table capacity",
            Self::Huffman => "invalid Huffman-coded string",
            Self::BadRequiredInsertCount => "invalid Required Insert Count",
            Self::NegativeBase => "negative Base",
            Self::TooManyBlockedStreams => "more blocked streams than allowed",
            Self::FieldSectionTooLarge => "field section larger than the limit",
            Self::UnexpectedAcknowledgment => "Section Acknowledgment with nothing outstanding",
            Self::BadIncrement => "Insert Count Increment of zero or past the inserts sent",
        })
    }
}

/// The static table entry at `index` (RFC 9204 Appendix A): name and value.
pub fn static_entry(index: u64) -> Result<(&'static str, &'static str), Cause> {
    //= https://www.rfc-editor.org/rfc/rfc9204#section-3.1
    //# When the decoder encounters an invalid static table index in a field line
    //# representation, it MUST treat this as a connection error of type
    //# QPACK_DECOMPRESSION_FAILED.
    usize::try_from(index)
        .ok()
        .and_then(|i| static_table::STATIC_TABLE.get(i))
        .copied()
        .ok_or(Cause::BadStaticIndex)
}

/// Encodes `value` as a prefixed integer with an `n`-bit prefix (1 to 8),
/// `flags` in the first byte's higher bits (RFC 9204 §4.1.1).
pub fn encode_int(value: u64, n: u8, flags: u8, out: &mut Vec<u8>) {
    int::encode(value, n.clamp(1, 8), flags, out);
}

/// Decodes a prefixed integer with an `n`-bit prefix (1 to 8) from the
/// start of `buf`: the value and how many bytes it took.
pub fn decode_int(buf: &[u8], n: u8) -> Result<(u64, usize), Cause> {
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
        assert_eq!(static_entry(99), Err(Cause::BadStaticIndex));
        assert_eq!(static_entry(u64::MAX), Err(Cause::BadStaticIndex));
    }
}
