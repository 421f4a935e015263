//! Packet protection against the published vectors: RFC 9001 Appendix A
//! (QUIC v1) and RFC 9369 Appendix A (QUIC v2), byte for byte.

use super::secret::{hkdf_expand_label, next_secret};
use super::vectors::{v1, v2};
use super::*;
use crate::{Side, Version};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex in a test vector");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

const DCID: &str = "8394c8f03e515708";

/// One version's vectors, so every test runs for v1 and v2 alike.
struct Vectors {
    version: Version,
    client_initial_secret: &'static str,
    client_key: &'static str,
    client_iv: &'static str,
    client_hp: &'static str,
    client_payload: &'static str,
    client_header: &'static str,
    client_protected: &'static str,
    server_initial_secret: &'static str,
    server_payload: &'static str,
    server_header: &'static str,
    server_protected: &'static str,
    retry: &'static str,
    chacha_secret: &'static str,
    chacha_key: &'static str,
    chacha_iv: &'static str,
    chacha_hp: &'static str,
    chacha_ku: &'static str,
    chacha_header: &'static str,
    chacha_payload: &'static str,
    chacha_protected: &'static str,
}

macro_rules! vectors {
    ($m:ident, $version:expr) => {
        Vectors {
            version: $version,
            client_initial_secret: $m::CLIENT_INITIAL_SECRET,
            client_key: $m::CLIENT_KEY,
            client_iv: $m::CLIENT_IV,
            client_hp: $m::CLIENT_HP,
            client_payload: $m::CLIENT_PAYLOAD,
            client_header: $m::CLIENT_HEADER,
            client_protected: $m::CLIENT_PROTECTED,
            server_initial_secret: $m::SERVER_INITIAL_SECRET,
            server_payload: $m::SERVER_PAYLOAD,
            server_header: $m::SERVER_HEADER,
            server_protected: $m::SERVER_PROTECTED,
            retry: $m::RETRY,
            chacha_secret: $m::CHACHA_SECRET,
            chacha_key: $m::CHACHA_KEY,
            chacha_iv: $m::CHACHA_IV,
            chacha_hp: $m::CHACHA_HP,
            chacha_ku: $m::CHACHA_KU,
            chacha_header: $m::CHACHA_HEADER,
            chacha_payload: $m::CHACHA_PAYLOAD,
            chacha_protected: $m::CHACHA_PROTECTED,
        }
    };
}

fn all() -> [Vectors; 2] {
    [vectors!(v1, Version::V1), vectors!(v2, Version::V2)]
}

/// Header, plaintext padded with PADDING (zero) bytes to `payload_len`, and
/// room for the tag.
fn plaintext_packet(header: &str, payload: &str, payload_len: usize) -> Vec<u8> {
    let mut p = hex(header);
    let mut body = hex(payload);
    body.resize(payload_len.max(body.len()), 0);
    p.extend_from_slice(&body);
    p.extend_from_slice(&[0; 16]);
    p
}

/// Seals with `local`, checks the bytes, then opens with `remote` and
/// checks that header and payload come back.
fn seal_check_open(
    local: &DirectionalKeys,
    remote: &DirectionalKeys,
    plain: &[u8],
    pn: u64,
    pn_offset: usize,
    expected: &[u8],
    what: &str,
) {
    let mut packet = plain.to_vec();
    seal_packet(&local.header, &local.packet, pn, &mut packet, pn_offset).unwrap();
    assert_eq!(packet, expected, "{what}: protected packet differs from the RFC");

    let (pn_len, truncated) =
        remove_header_protection(&remote.header, &mut packet, pn_offset).unwrap();
    let header_len = pn_offset + pn_len;
    assert_eq!(packet[..header_len], plain[..header_len], "{what}: header after unprotecting");
    assert_eq!(u64::from(truncated), pn & ((1 << (8 * pn_len)) - 1));
    let len = open_payload(&remote.packet, pn, &mut packet, header_len).unwrap();
    assert_eq!(
        packet[header_len..header_len + len],
        plain[header_len..plain.len() - 16],
        "{what}: payload after opening"
    );
}

//= https://www.rfc-editor.org/rfc/rfc9001#appendix-A.2
//= type=test
//# The client sends an Initial packet.
#[test]
fn client_initial_matches_rfc_vectors() {
    for v in all() {
        let client = Keys::initial(v.version, &hex(DCID), Side::Client).unwrap();
        let server = Keys::initial(v.version, &hex(DCID), Side::Server).unwrap();
        let plain = plaintext_packet(v.client_header, v.client_payload, 1162);
        let expected = hex(v.client_protected);
        assert_eq!(expected.len(), 1200);
        let what = format!("{} client Initial", v.version);
        seal_check_open(&client.local, &server.remote, &plain, 2, 18, &expected, &what);
    }
}

/// The server's check of a client Initial derives the client's keys alone;
/// they open the RFC's protected client Initial like `Keys::initial` does.
#[test]
fn initial_client_keys_alone_open_the_rfc_client_initial() {
    for v in all() {
        let client = Keys::initial(v.version, &hex(DCID), Side::Client).unwrap();
        let alone = initial_client_keys(v.version, &hex(DCID)).unwrap();
        let plain = plaintext_packet(v.client_header, v.client_payload, 1162);
        let what = format!("{} client Initial, client keys alone", v.version);
        seal_check_open(&client.local, &alone, &plain, 2, 18, &hex(v.client_protected), &what);
    }
    assert!(initial_client_keys(Version(0x1a2a_3a4a), &[1; 8]).is_err());
}

//= https://www.rfc-editor.org/rfc/rfc9001#appendix-A.3
//= type=test
//# The server sends the following payload in response, including an ACK frame, a
//# CRYPTO frame, and no PADDING frames:
#[test]
fn server_initial_matches_rfc_vectors() {
    for v in all() {
        let client = Keys::initial(v.version, &hex(DCID), Side::Client).unwrap();
        let server = Keys::initial(v.version, &hex(DCID), Side::Server).unwrap();
        let plain = plaintext_packet(v.server_header, v.server_payload, 0);
        let what = format!("{} server Initial", v.version);
        let expected = hex(v.server_protected);
        seal_check_open(&server.local, &client.remote, &plain, 1, 18, &expected, &what);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9001#appendix-A.1
//= type=test
//# The secrets for protecting client packets are:
#[test]
fn key_derivation_from_secrets_matches_rfc_vectors() {
    for v in all() {
        let labels: &[&[u8]] = if v.version == Version::V1 {
            &[b"quic key", b"quic iv", b"quic hp", b"quic ku"]
        } else {
            &[b"quicv2 key", b"quicv2 iv", b"quicv2 hp", b"quicv2 ku"]
        };
        let sha256 = aws_lc_rs::hkdf::HKDF_SHA256;
        let derive = |secret: &str, label: &[u8], len: usize| {
            let mut out = vec![0; len];
            hkdf_expand_label(sha256, &hex(secret), label, &mut out).unwrap();
            out
        };
        assert_eq!(derive(v.client_initial_secret, labels[0], 16), hex(v.client_key));
        assert_eq!(derive(v.client_initial_secret, labels[1], 12), hex(v.client_iv));
        assert_eq!(derive(v.client_initial_secret, labels[2], 16), hex(v.client_hp));
        assert_eq!(derive(v.chacha_secret, labels[0], 32), hex(v.chacha_key));
        assert_eq!(derive(v.chacha_secret, labels[1], 12), hex(v.chacha_iv));
        assert_eq!(derive(v.chacha_secret, labels[2], 32), hex(v.chacha_hp));
        let mut ku = hex(v.chacha_secret);
        next_secret(CipherSuite::ChaCha20Poly1305Sha256, v.version, &mut ku).unwrap();
        assert_eq!(ku, hex(v.chacha_ku), "{} key update secret", v.version);

        // Keys built from the raw Initial secrets (as a key log gives them)
        // protect exactly as the rustls-derived Initial keys do.
        let aes = CipherSuite::Aes128GcmSha256;
        // The receiver of a client packet derives the same (client) keys.
        let client = DirectionalKeys::from_secret(aes, v.version, &hex(v.client_initial_secret));
        let receiver = DirectionalKeys::from_secret(aes, v.version, &hex(v.client_initial_secret));
        let plain = plaintext_packet(v.client_header, v.client_payload, 1162);
        let expected = hex(v.client_protected);
        let what = format!("{} client Initial from raw secret", v.version);
        seal_check_open(&client.unwrap(), &receiver.unwrap(), &plain, 2, 18, &expected, &what);
        let server = DirectionalKeys::from_secret(aes, v.version, &hex(v.server_initial_secret));
        let receiver = DirectionalKeys::from_secret(aes, v.version, &hex(v.server_initial_secret));
        let plain = plaintext_packet(v.server_header, v.server_payload, 0);
        let expected = hex(v.server_protected);
        let what = format!("{} server Initial from raw secret", v.version);
        seal_check_open(&server.unwrap(), &receiver.unwrap(), &plain, 1, 18, &expected, &what);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9001#appendix-A.5
//= type=test
//# This example shows some of the steps required to protect a packet with
//# a short header.  This example uses AEAD_CHACHA20_POLY1305.
#[test]
fn chacha20_short_header_matches_rfc_vectors() {
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    for v in all() {
        let secret = hex(v.chacha_secret);
        let sender = DirectionalKeys::from_secret(suite, v.version, &secret).unwrap();
        let receiver = DirectionalKeys::from_secret(suite, v.version, &secret).unwrap();
        let plain = plaintext_packet(v.chacha_header, v.chacha_payload, 0);
        let expected = hex(v.chacha_protected);
        assert_eq!(expected.len(), 21, "the smallest possible packet");
        let what = format!("{} ChaCha20 short header", v.version);
        seal_check_open(&sender, &receiver, &plain, 654_360_564, 1, &expected, &what);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-6.1
//= type=test
//# The header protection key is not updated.
#[test]
fn key_update_derives_next_phase_from_ku_secret() {
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    for v in all() {
        let secret = hex(v.chacha_secret);
        let ku = hex(v.chacha_ku);
        let mut server = Secrets::from_raw(suite, v.version, Side::Server, &ku, &secret).unwrap();
        let mut client = Secrets::from_raw(suite, v.version, Side::Client, &ku, &secret).unwrap();
        let phase0 = server.next_packet_keys();
        let phase1 = server.next_packet_keys();
        let client0 = client.next_packet_keys();
        let client1 = client.next_packet_keys();
        let header = DirectionalKeys::from_secret(suite, v.version, &secret).unwrap().header;

        // Phase 0 seals with `secret` itself: the RFC's packet comes out.
        let phase0_keys = DirectionalKeys { header, packet: phase0.local };
        let mut packet = plaintext_packet(v.chacha_header, v.chacha_payload, 0);
        seal_packet(&phase0_keys.header, &phase0_keys.packet, 654_360_564, &mut packet, 1).unwrap();
        assert_eq!(packet, hex(v.chacha_protected));

        // Phase 1 seals with the "ku" secret: different bytes, same header
        // key, and only the peer's phase 1 key opens it.
        let phase1_keys = DirectionalKeys { header: phase0_keys.header, packet: phase1.local };
        let mut packet = plaintext_packet(v.chacha_header, v.chacha_payload, 0);
        seal_packet(&phase1_keys.header, &phase1_keys.packet, 654_360_564, &mut packet, 1).unwrap();
        assert_ne!(packet, hex(v.chacha_protected));
        let (pn_len, _) = remove_header_protection(&phase1_keys.header, &mut packet, 1).unwrap();
        let mut stale = packet.clone();
        assert_eq!(
            open_payload(&client0.remote, 654_360_564, &mut stale, 1 + pn_len),
            Err(CryptoError::DecryptFailed)
        );
        assert_eq!(open_payload(&client1.remote, 654_360_564, &mut packet, 1 + pn_len), Ok(1));
    }
}

//= https://www.rfc-editor.org/rfc/rfc9001#appendix-A.4
//= type=test
//# This shows a Retry packet that might be sent in response to the Initial packet
//# in {{sample-client-initial}}.
#[test]
fn retry_integrity_matches_rfc_vectors() {
    for v in all() {
        let retry = hex(v.retry);
        let (body, tag) = retry.split_at(retry.len() - RETRY_TAG_LEN);
        assert_eq!(retry_integrity_tag(v.version, &hex(DCID), body).unwrap(), tag);
        assert!(verify_retry_integrity(v.version, &hex(DCID), &retry));

        let mut corrupted = retry.clone();
        corrupted[10] ^= 1;
        assert!(!verify_retry_integrity(v.version, &hex(DCID), &corrupted));
        assert!(!verify_retry_integrity(v.version, &hex("8394c8f03e515709"), &retry));
        assert!(!verify_retry_integrity(v.version, &hex(DCID), &retry[..10]));
        let other = if v.version == Version::V1 { Version::V2 } else { Version::V1 };
        assert!(!verify_retry_integrity(other, &hex(DCID), &retry));
    }
    assert_eq!(
        retry_integrity_tag(Version(0xff00_001d), &[], &[]),
        Err(CryptoError::UnsupportedVersion)
    );
}

#[test]
fn malformed_packets_are_errors_not_panics() {
    let keys = Keys::initial(Version::V1, &hex(DCID), Side::Client).unwrap();
    let peer = Keys::initial(Version::V1, &hex(DCID), Side::Server).unwrap();
    assert!(Keys::initial(Version(0x1a2a_3a4a), &[], Side::Client).is_err());

    // Too short for a sample: refused on both sides, packet untouched.
    let mut short = vec![0xc3; 30];
    assert_eq!(
        seal_packet(&keys.local.header, &keys.local.packet, 0, &mut short, 18),
        Err(CryptoError::PacketTooShort)
    );
    assert_eq!(
        remove_header_protection(&peer.remote.header, &mut short, 18),
        Err(CryptoError::PacketTooShort)
    );
    assert_eq!(short, vec![0xc3; 30]);
    assert_eq!(
        remove_header_protection(&peer.remote.header, &mut short, usize::MAX),
        Err(CryptoError::PacketTooShort)
    );
    assert_eq!(
        seal_packet(&keys.local.header, &keys.local.packet, 0, &mut [], 0),
        Err(CryptoError::PacketTooShort)
    );
    assert_eq!(
        open_payload(&peer.remote.packet, 0, &mut [0; 20], 10),
        Err(CryptoError::PacketTooShort)
    );

    // A flipped ciphertext bit fails authentication.
    let plain = plaintext_packet(v1::CLIENT_HEADER, v1::CLIENT_PAYLOAD, 1162);
    let mut packet = plain.clone();
    seal_packet(&keys.local.header, &keys.local.packet, 2, &mut packet, 18).unwrap();
    packet[100] ^= 0x80;
    let (pn_len, _) = remove_header_protection(&peer.remote.header, &mut packet, 18).unwrap();
    assert_eq!(
        open_payload(&peer.remote.packet, 2, &mut packet, 18 + pn_len),
        Err(CryptoError::DecryptFailed)
    );

    // Raw secrets must match the suite's hash length.
    assert_eq!(
        DirectionalKeys::from_secret(CipherSuite::Aes256GcmSha384, Version::V1, &[0; 32]).err(),
        Some(CryptoError::BadKeyLength)
    );
}

#[test]
fn suites_map_to_rustls_and_limits_follow_rfc9001() {
    for suite in CipherSuite::ALL {
        assert_eq!(CipherSuite::from_rustls(suite.rustls_suite().suite()), Some(suite));
        assert!(suite.name().starts_with("TLS_"));
    }
    let aes = DirectionalKeys::from_secret(CipherSuite::Aes128GcmSha256, Version::V1, &[1; 32]);
    let aes = aes.unwrap().packet;
    assert_eq!((aes.confidentiality_limit(), aes.integrity_limit()), (1 << 23, 1 << 52));
    let chacha =
        DirectionalKeys::from_secret(CipherSuite::ChaCha20Poly1305Sha256, Version::V1, &[1; 32]);
    assert_eq!(chacha.unwrap().packet.integrity_limit(), 1 << 36);
}
