//! Sealing and opening whole packets in place (RFC 9001 §5.3, §5.4).
//!
//! Sending: build the header (packet number in the clear, Length filled in)
//! and the plaintext payload in one buffer with `tag_len` spare bytes at the
//! end, then [`seal_packet`]. Receiving: [`remove_header_protection`], decode
//! the full packet number from the truncated one, pick the key (key phase),
//! then [`open_payload`].

use super::CryptoError;
use super::keys::{HeaderKey, PacketKey};

/// Bytes of ciphertext sampled for header protection, for every QUIC suite.
pub const SAMPLE_LEN: usize = 16;

//= https://www.rfc-editor.org/rfc/rfc9001#section-5.4.2
//# in sampling packet ciphertext for header protection, the Packet Number field is
//# assumed to be 4 bytes long (its maximum possible encoded length).
const SAMPLE_OFFSET: usize = 4;

/// Splits `packet` into the first byte, the 4 bytes where the packet number
/// may sit, and the sample. Fails if the packet cannot hold a full sample.
fn hp_parts(
    packet: &mut [u8],
    pn_offset: usize,
) -> Result<(&mut u8, &mut [u8], &[u8]), CryptoError> {
    //= https://www.rfc-editor.org/rfc/rfc9001#section-5.4.2
    //# An endpoint MUST discard packets that are not long enough to contain a complete
    //# sample.
    let sample_end = pn_offset
        .checked_add(SAMPLE_OFFSET + SAMPLE_LEN)
        .filter(|end| *end <= packet.len() && pn_offset > 0)
        .ok_or(CryptoError::PacketTooShort)?;
    let (head, tail) = packet[..sample_end].split_at_mut(pn_offset);
    let (pn, sample) = tail.split_at_mut(SAMPLE_OFFSET);
    Ok((&mut head[0], pn, sample))
}

/// Protects a packet in place: AEAD-seals the payload, writes the tag into
/// the last `tag_len` bytes, then applies header protection.
///
/// `packet` is the header (ending with a packet number of the length its
/// first byte's low two bits give, starting at `pn_offset`), the plaintext
/// payload, and `packet_key.tag_len()` bytes of room for the tag. Header and
/// packet keys are separate arguments because 1-RTT key updates change only
/// the packet key (RFC 9001 §6). The sender
/// pads so that the packet is at least `pn_offset + 4 + 16` bytes long
/// (RFC 9001 §5.4.2); shorter packets are refused.
pub fn seal_packet(
    header_key: &HeaderKey,
    packet_key: &PacketKey,
    packet_number: u64,
    packet: &mut [u8],
    pn_offset: usize,
) -> Result<(), CryptoError> {
    let first = *packet.first().ok_or(CryptoError::PacketTooShort)?;
    let pn_len = usize::from(first & 0x03) + 1;
    let tag_len = packet_key.tag_len();
    let header_len = pn_offset + pn_len;
    if packet.len() < header_len + tag_len || packet.len() < pn_offset + SAMPLE_OFFSET + SAMPLE_LEN
    {
        return Err(CryptoError::PacketTooShort);
    }
    let (header, rest) = packet.split_at_mut(header_len);
    let (payload, tag_room) = rest.split_at_mut(rest.len() - tag_len);
    let tag = packet_key
        .0
        .encrypt_in_place(packet_number, header, payload)
        .map_err(|_| CryptoError::EncryptFailed)?;
    tag_room.copy_from_slice(tag.as_ref());

    //= https://www.rfc-editor.org/rfc/rfc9001#section-5.4.1
    //# Header protection is applied after packet protection is applied (see {{aead}}).
    let (first, pn, sample) = hp_parts(packet, pn_offset)?;
    header_key
        .0
        .encrypt_in_place(sample, first, &mut pn[..pn_len])
        .map_err(|_| CryptoError::EncryptFailed)
}

/// Removes header protection in place and returns the packet number length
/// and the truncated packet number it encodes.
///
/// The caller then reconstructs the full packet number (RFC 9000 §17.1),
/// checks the reserved bits and chooses the packet key (by key phase for
/// short headers) before calling [`open_payload`]. On error the packet is
/// left unchanged and must be discarded.
pub fn remove_header_protection(
    key: &HeaderKey,
    packet: &mut [u8],
    pn_offset: usize,
) -> Result<(usize, u32), CryptoError> {
    let (first, pn, sample) = hp_parts(packet, pn_offset)?;
    // rustls unmasks only as many packet number bytes as the unmasked first
    // byte announces, so passing all four candidate bytes is safe.
    key.0.decrypt_in_place(sample, first, pn).map_err(|_| CryptoError::PacketTooShort)?;
    let pn_len = usize::from(*first & 0x03) + 1;
    let truncated = pn[..pn_len].iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    Ok((pn_len, truncated))
}

/// Opens the AEAD-protected payload in place and returns the plaintext
/// length: the plaintext is `packet[header_len..header_len + len]`.
///
/// `packet` is the whole packet with header protection removed; its header
/// (the first `header_len` bytes, up to and including the packet number) is
/// the associated data. A [`CryptoError::DecryptFailed`] packet must be
/// discarded and counted against the integrity limit.
pub fn open_payload(
    key: &PacketKey,
    packet_number: u64,
    packet: &mut [u8],
    header_len: usize,
) -> Result<usize, CryptoError> {
    if packet.len() < header_len + key.tag_len() {
        return Err(CryptoError::PacketTooShort);
    }
    let (header, payload) = packet.split_at_mut(header_len);
    key.0
        .decrypt_in_place(packet_number, header, payload)
        .map(<[u8]>::len)
        .map_err(|_| CryptoError::DecryptFailed)
}
