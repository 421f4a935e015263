//! QUIC packet headers: parsing received packets before header protection is
//! removed, splitting coalesced packets, building headers, Version
//! Negotiation and Retry packets, and packet number encoding (RFC 9000 §12.2,
//! §12.3, §17, Appendix A.2-A.3; RFC 8999 §5-6; RFC 9369 §3.2; the layout
//! facts RFC 9001 §5.4 and §5.8 depend on).
//!
//! # Receiving
//!
//! [`CoalescedPackets`] (or [`PartialDecode::parse`] in a loop) walks a
//! datagram. Each [`PartialDecode`] exposes what is readable before header
//! protection is removed: the form, version, connection IDs, token, the Length
//! field and the offsets the packet protection layer needs:
//!
//! ```text
//! packet:  | first | ... header ... | pn (1-4) | payload ... AEAD tag |
//!          0                        pn_offset                         packet_len
//! sample:                           pn_offset + 4 .. pn_offset + 4 + SAMPLE_LEN
//! ```
//!
//! After the crypto layer has unmasked the first byte and the packet number
//! in place, [`read_packet_number`] recovers the full packet number and the
//! header length (`pn_offset + pn_len`, the end of the AEAD associated data),
//! and [`check_reserved_bits`] is applied once the payload has been
//! authenticated.
//!
//! # Sending
//!
//! [`Header::encode`] writes a header with a packet number and, for long
//! headers, a 2-byte Length placeholder; [`PartialEncode::set_payload_len`]
//! fills it in once the payload is known. Header protection is then applied
//! at [`PartialEncode::pn_offset`].

mod decode;
mod encode;
mod long_type;
mod number;
#[cfg(test)]
mod tests;

use core::fmt;

use crate::coding::UnexpectedEnd;

pub use decode::{
    CoalescedPacket, CoalescedPackets, InvariantLongHeader, LongHeader, PartialDecode,
    ProtectedHeader, RetryHeader, ShortHeader, VersionNegotiation, check_reserved_bits, key_phase,
    read_packet_number,
};
pub use encode::{
    Header, PartialEncode, PayloadTooLong, encode_retry_without_tag, encode_version_negotiation,
    retry_pseudo_packet,
};
pub use long_type::LongType;
pub use number::{PacketNumber, PacketNumberLen, decode_packet_number};

/// Bytes of ciphertext sampled for header protection. Every header
/// protection algorithm RFC 9001 §5.4 defines (AES and ChaCha20) samples 16.
pub const SAMPLE_LEN: usize = 16;

/// Offset of the header protection sample from the start of the Packet
/// Number field: the sampler assumes the field is 4 bytes long.
pub const SAMPLE_PN_OFFSET: usize = 4;

/// Length of the Retry Integrity Tag (RFC 9001 §5.8).
pub const RETRY_INTEGRITY_TAG_LEN: usize = 16;

/// Why a packet, and whatever follows it in its datagram, was dropped.
///
/// These are never connection errors: RFC 9000 §17.2 and RFC 9001 §5.4.2
/// require such packets to be discarded, and an unparseable packet cannot be
/// attributed to a connection with confidence anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketDecodeError {
    /// The packet ended inside a header field.
    UnexpectedEnd,
    /// The Fixed Bit (0x40) of a version 1 or 2 packet is zero and the
    /// endpoint did not advertise `grease_quic_bit` (RFC 9287).
    FixedBitZero,
    /// A version 1 or 2 long header announced a connection ID longer than 20
    /// bytes, or the local connection ID length passed for short headers is.
    CidTooLong,
    /// The Length field points past the end of the datagram.
    LengthExceedsDatagram,
    /// The packet is too short to contain a header protection sample.
    TooShortForSample,
    /// A Version Negotiation packet listed no versions or a truncated one.
    InvalidVersionNegotiation,
    /// A Retry packet carried an empty Retry Token.
    EmptyRetryToken,
    /// A packet coalesced after the first one in a datagram has a different
    /// Destination Connection ID.
    DcidMismatch,
    /// A Retry, Version Negotiation or unsupported-version packet followed
    /// another packet in the same datagram.
    UnexpectedCoalescedPacket,
}

impl fmt::Display for PacketDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnexpectedEnd => "packet header truncated",
            Self::FixedBitZero => "fixed bit is zero",
            Self::CidTooLong => "connection ID longer than 20 bytes",
            Self::LengthExceedsDatagram => "Length field exceeds the datagram",
            Self::TooShortForSample => "packet too short for a header protection sample",
            Self::InvalidVersionNegotiation => "malformed supported versions list",
            Self::EmptyRetryToken => "Retry packet with an empty token",
            Self::DcidMismatch => "coalesced packet with a different Destination Connection ID",
            Self::UnexpectedCoalescedPacket => "packet type that cannot be coalesced",
        })
    }
}

impl std::error::Error for PacketDecodeError {}

impl From<UnexpectedEnd> for PacketDecodeError {
    fn from(_: UnexpectedEnd) -> Self {
        Self::UnexpectedEnd
    }
}
