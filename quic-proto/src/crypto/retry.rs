//! The Retry packet's integrity tag (RFC 9001 §5.8, RFC 9369 §3.3.3).

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::CryptoError;
use crate::version::Version;

/// Length of the Retry Integrity Tag.
pub const RETRY_TAG_LEN: usize = 16;

fn key_and_nonce(version: Version) -> Result<([u8; 16], [u8; 12]), CryptoError> {
    match version {
        //= https://www.rfc-editor.org/rfc/rfc9001#section-5.8
        //# - The secret key, K, is 128 bits equal to 0xbe0c690b9f66575a1d766b54e368c84e.
        //# - The nonce, N, is 96 bits equal to 0x461599d35d632bf2239825bb.
        Version::V1 => Ok((
            [
                0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a, 0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68,
                0xc8, 0x4e,
            ],
            [0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63, 0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb],
        )),
        //= https://www.rfc-editor.org/rfc/rfc9369#section-3.3.3
        //# key = 0x8fb4b01b56ac48e260fbcbcead7ccc92
        //# nonce = 0xd86969bc2d7c6d9990efb04a
        Version::V2 => Ok((
            [
                0x8f, 0xb4, 0xb0, 0x1b, 0x56, 0xac, 0x48, 0xe2, 0x60, 0xfb, 0xcb, 0xce, 0xad, 0x7c,
                0xcc, 0x92,
            ],
            [0xd8, 0x69, 0x69, 0xbc, 0x2d, 0x7c, 0x6d, 0x99, 0x90, 0xef, 0xb0, 0x4a],
        )),
        _ => Err(CryptoError::UnsupportedVersion),
    }
}

/// The Retry Integrity Tag for a Retry packet.
///
/// `original_dcid` is the Destination Connection ID of the client's Initial
/// that the Retry answers; `retry_without_tag` is the Retry packet up to,
/// not including, the tag. The tag is AES-128-GCM over an empty plaintext
/// with the Retry Pseudo-Packet (ODCID length, ODCID, Retry packet) as the
/// associated data.
pub fn retry_integrity_tag(
    version: Version,
    original_dcid: &[u8],
    retry_without_tag: &[u8],
) -> Result<[u8; RETRY_TAG_LEN], CryptoError> {
    let (key, nonce) = key_and_nonce(version)?;
    let odcid_len = u8::try_from(original_dcid.len()).map_err(|_| CryptoError::BadKeyLength)?;
    let mut pseudo = Vec::with_capacity(1 + original_dcid.len() + retry_without_tag.len());
    pseudo.push(odcid_len);
    pseudo.extend_from_slice(original_dcid);
    pseudo.extend_from_slice(retry_without_tag);
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_128_GCM, &key).expect("AES-128 key is 16 bytes long"),
    );
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&pseudo[..]),
            &mut [],
        )
        .map_err(|_| CryptoError::EncryptFailed)?;
    let mut out = [0; RETRY_TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Whether a received Retry packet (tag included) carries a valid tag for
/// the Initial whose Destination Connection ID was `original_dcid`.
///
/// A client discards a Retry packet that fails this check (RFC 9000 §17.2.5.2).
pub fn verify_retry_integrity(version: Version, original_dcid: &[u8], retry_packet: &[u8]) -> bool {
    let Some(body_len) = retry_packet.len().checked_sub(RETRY_TAG_LEN) else {
        return false;
    };
    let (body, tag) = retry_packet.split_at(body_len);
    match retry_integrity_tag(version, original_dcid, body) {
        Ok(expected) => aws_lc_rs::constant_time::verify_slices_are_equal(&expected, tag).is_ok(),
        Err(_) => false,
    }
}
