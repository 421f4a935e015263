//! Building packet headers, Version Negotiation and Retry packets
//! (RFC 9000 §17.2, §17.3; RFC 9001 §5.8; RFC 9369 §3.2).

use core::fmt;

use bytes::{BufMut, Bytes};

use super::decode::{FIXED_BIT, KEY_PHASE_BIT, LONG_FORM, SPIN_BIT};
use super::{LongType, PacketNumber, PacketNumberLen, SAMPLE_LEN, SAMPLE_PN_OFFSET};
use crate::cid::ConnectionId;
use crate::random::RandomSource;
use crate::varint::VarInt;
use crate::version::Version;

/// Bytes reserved for the Length field of long headers. Two bytes hold
/// values up to 16383, which bounds long header packets (Initial, 0-RTT,
/// Handshake) to that much packet number and payload: far above the
/// datagram sizes used during the handshake, and a fixed width lets the
/// header be written before the payload size is known.
const LENGTH_FIELD_LEN: usize = 2;

/// A packet header to send. Retry and Version Negotiation packets have no
/// packet number and are built by [`encode_retry_without_tag`] and
/// [`encode_version_negotiation`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Header {
    /// An Initial packet.
    Initial {
        /// QUIC version 1 or 2.
        version: Version,
        /// Destination Connection ID.
        dcid: ConnectionId,
        /// Source Connection ID.
        scid: ConnectionId,
        /// The token from a Retry packet or NEW_TOKEN frame; empty otherwise
        /// and always empty from servers.
        token: Bytes,
    },
    /// A 0-RTT or Handshake packet. With `ty` [`LongType::Initial`] this is
    /// an Initial packet without a token; [`LongType::Retry`] is not allowed.
    Long {
        /// The packet type.
        ty: LongType,
        /// QUIC version 1 or 2.
        version: Version,
        /// Destination Connection ID.
        dcid: ConnectionId,
        /// Source Connection ID.
        scid: ConnectionId,
    },
    /// A 1-RTT packet.
    Short {
        /// The latency spin bit (RFC 9000 §17.4).
        spin: bool,
        /// The key phase bit (RFC 9001 §6).
        key_phase: bool,
        /// Destination Connection ID.
        dcid: ConnectionId,
    },
}

impl Header {
    /// Appends the header, a Length placeholder for long headers, and the
    /// packet number `pn` truncated to `pn_len` (RFC 9000 §17.1: choose it
    /// with [`PacketNumber::encoded_len`]) to `buf`. The reserved bits are 0.
    ///
    /// Afterwards append the payload, protect it, call
    /// [`PartialEncode::set_payload_len`] (before sealing: the Length field
    /// is part of the associated data), and apply header protection using
    /// [`PartialEncode::pn_offset`].
    ///
    /// # Panics
    ///
    /// If a long header has a version other than 1 or 2, or type Retry: both
    /// are caller bugs.
    pub fn encode(
        &self,
        pn: PacketNumber,
        pn_len: PacketNumberLen,
        buf: &mut Vec<u8>,
    ) -> PartialEncode {
        let start = buf.len();
        let length_offset = match self {
            Self::Initial { version, dcid, scid, token } => {
                encode_long_start(LongType::Initial, *version, pn_len, dcid, scid, buf);
                let token_len = VarInt::try_from(token.len()).expect("a token is below 2^62 bytes");
                token_len.encode(buf);
                buf.put_slice(token);
                Some(buf.len() - start)
            }
            Self::Long { ty, version, dcid, scid } => {
                encode_long_start(*ty, *version, pn_len, dcid, scid, buf);
                if *ty == LongType::Initial {
                    VarInt::ZERO.encode(buf);
                }
                Some(buf.len() - start)
            }
            Self::Short { spin, key_phase, dcid } => {
                //= https://www.rfc-editor.org/rfc/rfc9000#section-17.3.1
                //# The value included prior to protection MUST be set to 0.
                let mut first = FIXED_BIT | pn_len.first_byte_bits();
                if *spin {
                    first |= SPIN_BIT;
                }
                if *key_phase {
                    first |= KEY_PHASE_BIT;
                }
                buf.put_u8(first);
                buf.put_slice(dcid);
                None
            }
        };
        if length_offset.is_some() {
            // Placeholder, filled by `PartialEncode::set_payload_len`.
            VarInt::ZERO.encode_with_len(LENGTH_FIELD_LEN, buf);
        }
        let pn_offset = buf.len() - start;
        pn.encode(pn_len, buf);
        PartialEncode { start, pn_offset, pn_len, length_offset }
    }

    /// The number of bytes [`Header::encode`] writes with `pn_len`.
    pub fn encoded_len(&self, pn_len: PacketNumberLen) -> usize {
        let long = |dcid: &ConnectionId, scid: &ConnectionId| {
            1 + 4 + 1 + dcid.len() + 1 + scid.len() + LENGTH_FIELD_LEN
        };
        pn_len.bytes()
            + match self {
                Self::Initial { dcid, scid, token, .. } => {
                    long(dcid, scid) + VarInt::size_of(token.len() as u64) + token.len()
                }
                Self::Long { ty, dcid, scid, .. } => {
                    long(dcid, scid) + usize::from(*ty == LongType::Initial)
                }
                Self::Short { dcid, .. } => 1 + dcid.len(),
            }
    }

    /// The Destination Connection ID.
    pub fn dcid(&self) -> &ConnectionId {
        match self {
            Self::Initial { dcid, .. } | Self::Long { dcid, .. } | Self::Short { dcid, .. } => dcid,
        }
    }

    /// The version of a long header; `None` for short headers.
    pub fn version(&self) -> Option<Version> {
        match self {
            Self::Initial { version, .. } | Self::Long { version, .. } => Some(*version),
            Self::Short { .. } => None,
        }
    }

    /// Whether this is a long header.
    pub fn is_long(&self) -> bool {
        !matches!(self, Self::Short { .. })
    }
}

/// Writes the long header up to and including the Source Connection ID.
fn encode_long_start(
    ty: LongType,
    version: Version,
    pn_len: PacketNumberLen,
    dcid: &ConnectionId,
    scid: &ConnectionId,
    buf: &mut Vec<u8>,
) {
    assert!(ty.has_packet_number(), "Header::Long cannot encode a Retry packet");
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
    //# The value included prior to protection MUST be set to 0.
    let first = LONG_FORM | FIXED_BIT | type_bits(ty, version) << 4 | pn_len.first_byte_bits();
    buf.put_u8(first);
    encode_version_and_cids(version, dcid, scid, buf);
}

fn type_bits(ty: LongType, version: Version) -> u8 {
    ty.to_bits(version).unwrap_or_else(|| panic!("no long header packet types for {version}"))
}

fn encode_version_and_cids(version: Version, dcid: &[u8], scid: &[u8], buf: &mut Vec<u8>) {
    buf.put_u32(version.0);
    for cid in [dcid, scid] {
        let len = u8::try_from(cid.len()).expect("a connection ID is at most 255 bytes");
        buf.put_u8(len);
        buf.put_slice(cid);
    }
}

/// A header written by [`Header::encode`], awaiting its payload.
///
/// Offsets are relative to [`PartialEncode::start`], the packet's first
/// byte in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "the Length field of a long header must be filled in"]
pub struct PartialEncode {
    start: usize,
    pn_offset: usize,
    pn_len: PacketNumberLen,
    length_offset: Option<usize>,
}

impl PartialEncode {
    /// The largest Length a long header can carry: the placeholder is a
    /// 2-byte variable-length integer.
    pub const MAX_LENGTH: usize = (1 << 14) - 1;

    /// Where the packet starts in the buffer passed to [`Header::encode`].
    pub fn start(&self) -> usize {
        self.start
    }

    /// Where the Packet Number field starts: header protection masks
    /// `pn_len` bytes from here.
    pub fn pn_offset(&self) -> usize {
        self.pn_offset
    }

    /// The length of the Packet Number field.
    pub fn pn_len(&self) -> PacketNumberLen {
        self.pn_len
    }

    /// The length of the whole header, packet number included: the AEAD
    /// associated data is the packet's first `header_len()` bytes and the
    /// payload starts here.
    pub fn header_len(&self) -> usize {
        self.pn_offset + self.pn_len.bytes()
    }

    /// Where header protection takes its sample (RFC 9001 §5.4.2).
    pub fn sample_offset(&self) -> usize {
        self.pn_offset + SAMPLE_PN_OFFSET
    }

    /// The smallest protected payload (AEAD tag included) that leaves room
    /// for the header protection sample; pad up to it.
    pub fn min_payload_len(&self) -> usize {
        //= https://www.rfc-editor.org/rfc/rfc9001#section-5.4.2
        //# To ensure that sufficient data is available for sampling, packets are padded so
        //# that the combined lengths of the encoded packet number and protected payload is
        //# at least 4 bytes longer than the sample required for header protection.
        SAMPLE_PN_OFFSET + SAMPLE_LEN - self.pn_len.bytes()
    }

    /// The largest protected payload (AEAD tag included) the header can
    /// announce; `None` for short headers, which have no Length field.
    pub fn max_payload_len(&self) -> Option<usize> {
        self.length_offset.map(|_| Self::MAX_LENGTH - self.pn_len.bytes())
    }

    /// Fills in the Length field of a long header in `buf` (the buffer the
    /// header was written to) for a protected payload of `payload_len` bytes,
    /// AEAD tag included: Length covers the packet number and the payload.
    /// Call before sealing the payload, as the field is authenticated. Does
    /// nothing for short headers.
    ///
    /// Fails, leaving `buf` unchanged, if the payload exceeds
    /// [`Self::max_payload_len`].
    pub fn set_payload_len(
        &self,
        buf: &mut [u8],
        payload_len: usize,
    ) -> Result<(), PayloadTooLong> {
        let Some(length_offset) = self.length_offset else { return Ok(()) };
        let length = payload_len
            .checked_add(self.pn_len.bytes())
            .filter(|&len| len <= Self::MAX_LENGTH)
            .ok_or(PayloadTooLong)?;
        let at = self.start + length_offset;
        let mut field = &mut buf[at..at + LENGTH_FIELD_LEN];
        VarInt::try_from(length)
            .expect("bounded by MAX_LENGTH")
            .encode_with_len(LENGTH_FIELD_LEN, &mut field);
        Ok(())
    }
}

/// A long header payload exceeded what the 2-byte Length field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadTooLong;

impl fmt::Display for PayloadTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("long header packet longer than 16383 bytes")
    }
}

impl std::error::Error for PayloadTooLong {}

/// Appends a Version Negotiation packet answering a long header packet whose
/// Destination and Source Connection IDs were `received_dcid` and
/// `received_scid` (they are swapped here), listing `supported` versions
/// (which must not be empty; a reserved version may be added to exercise
/// negotiation). `rng` draws the unused bits of the first byte.
///
/// # Panics
///
/// If a connection ID is longer than 255 bytes, which no parsed packet has.
pub fn encode_version_negotiation(
    received_dcid: &[u8],
    received_scid: &[u8],
    supported: &[Version],
    rng: &mut dyn RandomSource,
    buf: &mut Vec<u8>,
) {
    let mut unused = [0];
    rng.fill(&mut unused);
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.1
    //# servers SHOULD set the most significant
    //# bit of this field (0x40) to 1 so that Version Negotiation packets appear to have
    //# the Fixed Bit field.
    buf.put_u8(LONG_FORM | FIXED_BIT | unused[0]);
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.1
    //# The Version field of a Version Negotiation packet MUST be set to 0x00000000.
    //
    //= https://www.rfc-editor.org/rfc/rfc8999#section-6
    //# An endpoint MUST include the value from the Source Connection ID field of the
    //# packet it receives in the Destination Connection ID field.  The value for the
    //# Source Connection ID field MUST be copied from the Destination Connection ID
    //# field of the received packet, which is initially randomly selected by a client.
    encode_version_and_cids(Version::NEGOTIATION, received_scid, received_dcid, buf);
    for version in supported {
        buf.put_u32(version.0);
    }
}

/// Appends a Retry packet (RFC 9000 §17.2.5) up to, not including, its
/// Retry Integrity Tag. `unused` supplies the four unused bits of the first
/// byte (higher bits are ignored). The tag is computed by the crypto layer
/// over [`retry_pseudo_packet`] of the bytes written, then appended.
///
/// # Panics
///
/// If `version` is not 1 or 2.
pub fn encode_retry_without_tag(
    version: Version,
    dcid: &ConnectionId,
    scid: &ConnectionId,
    token: &[u8],
    unused: u8,
    buf: &mut Vec<u8>,
) {
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.5
    //# The value in the Unused field is set to an arbitrary value by the
    //# server; a client MUST ignore these bits.
    let first = LONG_FORM | FIXED_BIT | type_bits(LongType::Retry, version) << 4 | (unused & 0x0f);
    buf.put_u8(first);
    encode_version_and_cids(version, dcid, scid, buf);
    buf.put_slice(token);
}

/// The Retry Pseudo-Packet (RFC 9001 §5.8): the ODCID Length and Original
/// Destination Connection ID (the client's first Initial's Destination
/// Connection ID) followed by the Retry packet without its integrity tag.
/// The Retry Integrity Tag is the AEAD tag over it.
pub fn retry_pseudo_packet(odcid: &ConnectionId, retry_without_tag: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + odcid.len() + retry_without_tag.len());
    // A ConnectionId holds at most 20 bytes.
    out.put_u8(odcid.len() as u8);
    out.put_slice(odcid);
    out.put_slice(retry_without_tag);
    out
}
