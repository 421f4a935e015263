//! Parsing received packets before header protection is removed, and
//! splitting coalesced packets (RFC 9000 §12.2, §17.2, §17.3; RFC 8999 §5-6).

use core::ops::Range;

use super::encode::retry_pseudo_packet;
use super::{
    LongType, PacketDecodeError, PacketNumber, PacketNumberLen, RETRY_INTEGRITY_TAG_LEN,
    SAMPLE_LEN, SAMPLE_PN_OFFSET, decode_packet_number,
};
use crate::cid::ConnectionId;
use crate::coding::Reader;
use crate::error::TransportError;
use crate::space::EncryptionLevel;
use crate::varint::VarInt;
use crate::version::Version;

pub(super) const LONG_FORM: u8 = 0x80;
pub(super) const FIXED_BIT: u8 = 0x40;
pub(super) const SPIN_BIT: u8 = 0x20;
pub(super) const KEY_PHASE_BIT: u8 = 0x04;
const LONG_RESERVED_BITS: u8 = 0x0c;
const SHORT_RESERVED_BITS: u8 = 0x18;

/// What a received packet's header reveals before header protection is
/// removed, by packet kind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtectedHeader<'a> {
    /// An Initial, 0-RTT or Handshake packet of a supported version.
    Long(LongHeader<'a>),
    /// A Retry packet of a supported version.
    Retry(RetryHeader<'a>),
    /// A short header (1-RTT) packet.
    Short(ShortHeader),
    /// A Version Negotiation packet (version 0).
    VersionNegotiation(VersionNegotiation<'a>),
    /// A long header packet of a version this crate does not implement; only
    /// the version-independent fields are known. A server answers it with
    /// [`super::encode_version_negotiation`].
    UnsupportedVersion(InvariantLongHeader<'a>),
}

/// The unprotected fields of an Initial, 0-RTT or Handshake packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LongHeader<'a> {
    /// The packet type: never [`LongType::Retry`].
    pub ty: LongType,
    /// QUIC version 1 or 2.
    pub version: Version,
    /// Destination Connection ID.
    pub dcid: ConnectionId,
    /// Source Connection ID.
    pub scid: ConnectionId,
    /// The Token field of an Initial packet; empty for other types.
    pub token: &'a [u8],
    /// The Length field: the bytes of packet number and payload (AEAD tag
    /// included) that follow it.
    pub length: usize,
}

/// The unprotected fields of a short header packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortHeader {
    /// The latency spin bit (RFC 9000 §17.4), which header protection does
    /// not cover.
    pub spin: bool,
    /// Destination Connection ID, of the local connection ID length.
    pub dcid: ConnectionId,
}

/// A Retry packet (RFC 9000 §17.2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryHeader<'a> {
    /// QUIC version 1 or 2.
    pub version: Version,
    /// Destination Connection ID: the client's Source Connection ID.
    pub dcid: ConnectionId,
    /// Source Connection ID: the one the client must use from now on.
    pub scid: ConnectionId,
    /// The address validation token, never empty.
    pub token: &'a [u8],
    /// The Retry Integrity Tag, to be checked by the crypto layer over
    /// [`PartialDecode::retry_pseudo_packet`].
    pub integrity_tag: [u8; RETRY_INTEGRITY_TAG_LEN],
}

/// A Version Negotiation packet (RFC 8999 §6, RFC 9000 §17.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionNegotiation<'a> {
    /// Destination Connection ID: should echo the client's Source
    /// Connection ID. Up to 255 bytes.
    pub dcid: &'a [u8],
    /// Source Connection ID: should echo the client's Destination
    /// Connection ID. Up to 255 bytes.
    pub scid: &'a [u8],
    /// The Supported Version list: a non-empty multiple of 4 bytes.
    versions: &'a [u8],
}

impl<'a> VersionNegotiation<'a> {
    /// The versions the server lists, in packet order.
    pub fn versions(&self) -> impl Iterator<Item = Version> + 'a {
        self.versions.chunks_exact(4).map(|v| Version(u32::from_be_bytes([v[0], v[1], v[2], v[3]])))
    }
}

/// The version-independent fields of a long header (RFC 8999 §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantLongHeader<'a> {
    /// The Version field: neither 0 nor a version this crate implements.
    pub version: Version,
    /// Destination Connection ID, up to 255 bytes.
    pub dcid: &'a [u8],
    /// Source Connection ID, up to 255 bytes.
    pub scid: &'a [u8],
}

/// One received packet, parsed up to the protected fields.
///
/// Offsets are relative to the start of this packet. A packet protection
/// layer unmasks `packet()[0]` and the packet number at [`Self::pn_offset`]
/// using the sample at [`Self::sample_range`], then calls
/// [`read_packet_number`]; the AEAD covers `packet()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialDecode<'a> {
    packet: &'a [u8],
    header: ProtectedHeader<'a>,
    pn_offset: Option<usize>,
}

impl<'a> PartialDecode<'a> {
    /// Parses the packet at the start of `buf`, the unread rest of a
    /// datagram. Call for each packet of a datagram (or use
    /// [`CoalescedPackets`]); the packet occupies `buf[..packet_len()]`.
    ///
    /// `local_cid_len` is the length of the connection IDs this endpoint
    /// issues: short headers do not encode it. With `allow_grease_quic_bit`
    /// set, as when this endpoint advertised the `grease_quic_bit` transport
    /// parameter (RFC 9287), packets of versions 1 and 2 with a zero Fixed
    /// Bit are accepted; otherwise they are rejected here. Reserved bits are
    /// protected and so left to [`check_reserved_bits`].
    ///
    /// Client- and server-specific rules stay with the caller: a client drops
    /// server Initials with a token (RFC 9000 §17.2.2), a server drops
    /// Initials in datagrams under 1200 bytes (§14.1), and a failed parse
    /// still warrants a Stateless Reset check (§10.3.1).
    pub fn parse(
        buf: &'a [u8],
        local_cid_len: usize,
        allow_grease_quic_bit: bool,
    ) -> Result<Self, PacketDecodeError> {
        let mut r = Reader::new(buf);
        let first = r.u8()?;
        if first & LONG_FORM == 0 {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-17.3.1
            //# Packets containing a zero value
            //# for this bit are not valid packets in this version and MUST be discarded.
            check_fixed_bit(first, allow_grease_quic_bit)?;
            let dcid = r.bytes(local_cid_len)?;
            let dcid = ConnectionId::from_slice(dcid).ok_or(PacketDecodeError::CidTooLong)?;
            let pn_offset = r.position();
            check_sample(r.remaining())?;
            let header = ProtectedHeader::Short(ShortHeader { spin: first & SPIN_BIT != 0, dcid });
            return Ok(Self { packet: buf, header, pn_offset: Some(pn_offset) });
        }

        let version = Version(r.u32()?);
        if version == Version::NEGOTIATION {
            //= https://www.rfc-editor.org/rfc/rfc8999#section-6
            //# The remaining 7 bits, labeled "Unused", can be set to
            //# any value when sending and MUST be ignored on receipt.
            let dcid = read_invariant_cid(&mut r)?;
            let scid = read_invariant_cid(&mut r)?;
            let versions = r.rest();
            //= https://www.rfc-editor.org/rfc/rfc8999#section-6
            //# An endpoint MUST ignore a packet that contains no Supported Version
            //# fields or contains a truncated Supported Version value.
            if versions.is_empty() || !versions.len().is_multiple_of(4) {
                return Err(PacketDecodeError::InvalidVersionNegotiation);
            }
            let header =
                ProtectedHeader::VersionNegotiation(VersionNegotiation { dcid, scid, versions });
            return Ok(Self { packet: buf, header, pn_offset: None });
        }

        let Some(ty) = LongType::from_bits(version, first >> 4) else {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
            //# In order to properly form a Version Negotiation packet,
            //# servers SHOULD be able to read longer connection IDs from other QUIC versions.
            //
            // Nothing past the invariant fields is interpreted: the rest of
            // the first byte and of the packet is version specific.
            let dcid = read_invariant_cid(&mut r)?;
            let scid = read_invariant_cid(&mut r)?;
            let header =
                ProtectedHeader::UnsupportedVersion(InvariantLongHeader { version, dcid, scid });
            return Ok(Self { packet: buf, header, pn_offset: None });
        };

        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
        //# Packets containing a zero value for this bit are not
        //# valid packets in this version and MUST be discarded.
        check_fixed_bit(first, allow_grease_quic_bit)?;
        let dcid = read_cid(&mut r)?;
        let scid = read_cid(&mut r)?;

        if ty == LongType::Retry {
            let rest = r.rest();
            let Some(token_len) = rest.len().checked_sub(RETRY_INTEGRITY_TAG_LEN) else {
                return Err(PacketDecodeError::UnexpectedEnd);
            };
            let (token, tag) = rest.split_at(token_len);
            //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.5.2
            //# A client MUST discard a Retry packet with a zero-length Retry
            //# Token field.
            //
            // Only clients act on Retry packets; a server drops them whatever
            // their contents.
            if token.is_empty() {
                return Err(PacketDecodeError::EmptyRetryToken);
            }
            let mut integrity_tag = [0; RETRY_INTEGRITY_TAG_LEN];
            integrity_tag.copy_from_slice(tag);
            let header =
                ProtectedHeader::Retry(RetryHeader { version, dcid, scid, token, integrity_tag });
            return Ok(Self { packet: buf, header, pn_offset: None });
        }

        let token = if ty == LongType::Initial {
            let len = VarInt::decode(&mut r)?.into_inner();
            // A length beyond the address space is beyond the datagram too.
            r.bytes(usize::try_from(len).unwrap_or(usize::MAX))?
        } else {
            &[]
        };
        let length = VarInt::decode(&mut r)?.into_inner();
        let pn_offset = r.position();
        let length = match usize::try_from(length) {
            Ok(length) if length <= r.remaining() => length,
            _ => return Err(PacketDecodeError::LengthExceedsDatagram),
        };
        check_sample(length)?;
        let header = ProtectedHeader::Long(LongHeader { ty, version, dcid, scid, token, length });
        Ok(Self { packet: &buf[..pn_offset + length], header, pn_offset: Some(pn_offset) })
    }

    /// The header fields.
    pub fn header(&self) -> &ProtectedHeader<'a> {
        &self.header
    }

    /// This packet's bytes: up to the end of its Length field for Initial,
    /// 0-RTT and Handshake packets, the rest of the datagram otherwise.
    pub fn packet(&self) -> &'a [u8] {
        self.packet
    }

    /// The length of [`Self::packet`]: where the next coalesced packet starts.
    pub fn packet_len(&self) -> usize {
        self.packet.len()
    }

    /// Where the (protected) Packet Number field starts; `None` for Retry,
    /// Version Negotiation and unsupported-version packets, which have none.
    pub fn pn_offset(&self) -> Option<usize> {
        self.pn_offset
    }

    /// The bytes header protection samples (RFC 9001 §5.4.2), always within
    /// the packet; `None` for packets without a packet number.
    pub fn sample_range(&self) -> Option<Range<usize>> {
        let start = self.pn_offset? + SAMPLE_PN_OFFSET;
        Some(start..start + SAMPLE_LEN)
    }

    /// The Destination Connection ID: what the endpoint routes on.
    pub fn dcid(&self) -> &[u8] {
        match &self.header {
            ProtectedHeader::Long(h) => &h.dcid,
            ProtectedHeader::Retry(h) => &h.dcid,
            ProtectedHeader::Short(h) => &h.dcid,
            ProtectedHeader::VersionNegotiation(h) => h.dcid,
            ProtectedHeader::UnsupportedVersion(h) => h.dcid,
        }
    }

    /// The Source Connection ID; `None` for short headers.
    pub fn scid(&self) -> Option<&[u8]> {
        match &self.header {
            ProtectedHeader::Long(h) => Some(&h.scid),
            ProtectedHeader::Retry(h) => Some(&h.scid),
            ProtectedHeader::Short(_) => None,
            ProtectedHeader::VersionNegotiation(h) => Some(h.scid),
            ProtectedHeader::UnsupportedVersion(h) => Some(h.scid),
        }
    }

    /// The Version field; `None` for short headers.
    pub fn version(&self) -> Option<Version> {
        match &self.header {
            ProtectedHeader::Long(h) => Some(h.version),
            ProtectedHeader::Retry(h) => Some(h.version),
            ProtectedHeader::Short(_) => None,
            ProtectedHeader::VersionNegotiation(_) => Some(Version::NEGOTIATION),
            ProtectedHeader::UnsupportedVersion(h) => Some(h.version),
        }
    }

    /// Whether this is a long header packet.
    pub fn is_long(&self) -> bool {
        !matches!(self.header, ProtectedHeader::Short(_))
    }

    /// Whether the packet has a Length field, so that another packet may
    /// follow it in the datagram (RFC 9000 §12.2).
    pub fn has_length(&self) -> bool {
        matches!(self.header, ProtectedHeader::Long(_))
    }

    /// The keys that protect the packet; `None` for Retry, Version
    /// Negotiation and unsupported-version packets.
    pub fn encryption_level(&self) -> Option<EncryptionLevel> {
        match &self.header {
            ProtectedHeader::Long(h) => h.ty.encryption_level(),
            ProtectedHeader::Short(_) => Some(EncryptionLevel::OneRtt),
            _ => None,
        }
    }

    /// For a Retry packet, the Retry Pseudo-Packet the integrity tag is
    /// computed over (RFC 9001 §5.8), given `odcid`, the Destination
    /// Connection ID of the client's first Initial. `None` for other packets.
    pub fn retry_pseudo_packet(&self, odcid: &ConnectionId) -> Option<Vec<u8>> {
        let ProtectedHeader::Retry(_) = self.header else { return None };
        // The parser checked that the tag fits.
        let without_tag = &self.packet[..self.packet.len() - RETRY_INTEGRITY_TAG_LEN];
        Some(retry_pseudo_packet(odcid, without_tag))
    }
}

fn check_fixed_bit(first: u8, allow_grease_quic_bit: bool) -> Result<(), PacketDecodeError> {
    if first & FIXED_BIT == 0 && !allow_grease_quic_bit {
        return Err(PacketDecodeError::FixedBitZero);
    }
    Ok(())
}

/// `after_pn_offset`: the bytes of the packet from the Packet Number field on.
fn check_sample(after_pn_offset: usize) -> Result<(), PacketDecodeError> {
    //= https://www.rfc-editor.org/rfc/rfc9001#section-5.4.2
    //# An endpoint MUST discard packets that are not long enough to contain a complete
    //# sample.
    if after_pn_offset < SAMPLE_PN_OFFSET + SAMPLE_LEN {
        return Err(PacketDecodeError::TooShortForSample);
    }
    Ok(())
}

/// A version 1 or 2 connection ID: at most 20 bytes.
fn read_cid(r: &mut Reader<'_>) -> Result<ConnectionId, PacketDecodeError> {
    let len = usize::from(r.u8()?);
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
    //# Endpoints that receive a version 1 long header with a value larger than 20
    //# MUST drop the packet.
    //
    // RFC 9369 §3 carries the rule over to version 2.
    if len > ConnectionId::MAX_LEN {
        return Err(PacketDecodeError::CidTooLong);
    }
    let bytes = r.bytes(len)?;
    ConnectionId::from_slice(bytes).ok_or(PacketDecodeError::CidTooLong)
}

/// A connection ID of any version: up to 255 bytes (RFC 8999 §5.1).
fn read_invariant_cid<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], PacketDecodeError> {
    let len = usize::from(r.u8()?);
    Ok(r.bytes(len)?)
}

/// Recovers the packet number of a packet whose header protection has been
/// removed in place, given its `pn_offset` from [`PartialDecode::pn_offset`]
/// and `largest_pn`, the largest packet number successfully processed in the
/// packet's space. Returns the full number and the field's length; the
/// header (the AEAD associated data) is `packet[..pn_offset + len.bytes()]`
/// and the payload the rest.
pub fn read_packet_number(
    packet: &[u8],
    pn_offset: usize,
    largest_pn: Option<PacketNumber>,
) -> Result<(PacketNumber, PacketNumberLen), PacketDecodeError> {
    let first = *packet.first().ok_or(PacketDecodeError::UnexpectedEnd)?;
    let len = PacketNumberLen::from_first_byte(first);
    let field = packet.get(pn_offset..).ok_or(PacketDecodeError::UnexpectedEnd)?;
    let truncated = len.read(&mut Reader::new(field))?;
    Ok((decode_packet_number(largest_pn, truncated, len), len))
}

/// Checks the reserved bits of a first byte from which header protection has
/// been removed (0x0c in long headers, 0x18 in short headers). Call only
/// after the packet has also been successfully decrypted; an error closes
/// the connection.
pub fn check_reserved_bits(first: u8) -> Result<(), TransportError> {
    let reserved = if first & LONG_FORM != 0 { LONG_RESERVED_BITS } else { SHORT_RESERVED_BITS };
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
    //# An endpoint MUST treat receipt of a packet that has a non-zero value for these
    //# bits after removing both packet and header protection as a connection error
    //# of type PROTOCOL_VIOLATION.
    //
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.3.1
    //# An endpoint MUST treat
    //# receipt of a packet that has a non-zero value for these bits, after removing
    //# both packet and header protection, as a connection error of type
    //# PROTOCOL_VIOLATION.
    if first & reserved != 0 {
        return Err(TransportError::protocol_violation("reserved header bits set"));
    }
    Ok(())
}

/// The Key Phase bit of a short header first byte from which header
/// protection has been removed.
pub fn key_phase(first: u8) -> bool {
    first & KEY_PHASE_BIT != 0
}

/// One packet of a datagram, as yielded by [`CoalescedPackets`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoalescedPacket<'a> {
    /// Where the packet lies in the datagram.
    pub range: Range<usize>,
    /// The packet's header.
    pub decode: PartialDecode<'a>,
}

/// The packets of one datagram, in order (RFC 9000 §12.2).
///
/// Yields each packet's byte range and header. Iteration ends after a packet
/// without a Length field (a short header packet extends to the end of the
/// datagram), or after yielding the error that made the rest of the datagram
/// undecodable: packets already yielded stay valid and must still be
/// processed. An empty datagram yields nothing.
///
/// The iterator borrows the datagram; to remove header protection in place,
/// collect the ranges first or loop over [`PartialDecode::parse`] with an
/// offset.
#[derive(Clone, Debug)]
pub struct CoalescedPackets<'a> {
    datagram: &'a [u8],
    offset: usize,
    local_cid_len: usize,
    allow_grease_quic_bit: bool,
    first_dcid: Option<ConnectionId>,
    done: bool,
}

impl<'a> CoalescedPackets<'a> {
    /// An iterator over the packets of `datagram`; the parameters are those
    /// of [`PartialDecode::parse`].
    pub fn new(datagram: &'a [u8], local_cid_len: usize, allow_grease_quic_bit: bool) -> Self {
        Self {
            datagram,
            offset: 0,
            local_cid_len,
            allow_grease_quic_bit,
            first_dcid: None,
            done: false,
        }
    }

    fn check_follower(&self, packet: &PartialDecode<'_>) -> Result<(), PacketDecodeError> {
        if !matches!(packet.header, ProtectedHeader::Long(_) | ProtectedHeader::Short(_)) {
            return Err(PacketDecodeError::UnexpectedCoalescedPacket);
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-12.2
        //# Receivers SHOULD ignore any subsequent packets
        //# with a different Destination Connection ID than the first packet in the
        //# datagram.
        //
        // Senders must not coalesce packets of different connections, so
        // whatever follows such a packet is ignored too.
        if self.first_dcid.as_deref() != Some(packet.dcid()) {
            return Err(PacketDecodeError::DcidMismatch);
        }
        Ok(())
    }
}

impl<'a> Iterator for CoalescedPackets<'a> {
    type Item = Result<CoalescedPacket<'a>, PacketDecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-12.2
        //# Receivers MUST be able to process coalesced packets.
        let rest = self.datagram.get(self.offset..).filter(|rest| !rest.is_empty());
        let rest = match rest {
            Some(rest) if !self.done => rest,
            _ => return None,
        };
        let parsed = PartialDecode::parse(rest, self.local_cid_len, self.allow_grease_quic_bit)
            .and_then(|packet| {
                if self.offset == 0 {
                    self.first_dcid = ConnectionId::from_slice(packet.dcid());
                } else {
                    self.check_follower(&packet)?;
                }
                Ok(packet)
            });
        match parsed {
            Ok(decode) => {
                let start = self.offset;
                self.offset += decode.packet_len();
                // Without a Length field, a packet runs to the end of the
                // datagram (RFC 9000 §12.2).
                self.done = !decode.has_length();
                Some(Ok(CoalescedPacket { range: start..self.offset, decode }))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for CoalescedPackets<'_> {}
