//! Key derivation from raw traffic secrets with aws-lc-rs (RFC 9001 §5.1,
//! §6; RFC 9369 §3.3.2), and the packet and header keys built from them.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use rustls::quic as rq;

use super::CryptoError;
use super::keys::{CipherSuite, DirectionalKeys, HeaderKey, PacketKey, PacketKeySet};
use crate::stream_id::Side;
use crate::version::Version;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 48;

struct Labels {
    key: &'static [u8],
    iv: &'static [u8],
    hp: &'static [u8],
    ku: &'static [u8],
}

//= https://www.rfc-editor.org/rfc/rfc9369#section-3.3.2
//# The labels used in [QUIC-TLS] to derive packet protection keys (Section
//# 5.1), header protection keys (Section 5.4), Retry Integrity Tag keys
//# (Section 5.8), and key updates (Section 6.1) change from "quic key" to
//# "quicv2 key", from "quic iv" to "quicv2 iv", from "quic hp" to "quicv2
//# hp", and from "quic ku" to "quicv2 ku", to meet the guidance for new
//# versions in Section 9.6 of that document.
fn labels(version: Version) -> Result<Labels, CryptoError> {
    match version {
        Version::V1 => {
            Ok(Labels { key: b"quic key", iv: b"quic iv", hp: b"quic hp", ku: b"quic ku" })
        }
        Version::V2 => {
            Ok(Labels { key: b"quicv2 key", iv: b"quicv2 iv", hp: b"quicv2 hp", ku: b"quicv2 ku" })
        }
        _ => Err(CryptoError::UnsupportedVersion),
    }
}

struct Params {
    hkdf: hkdf::Algorithm,
    hash_len: usize,
    aead: &'static aead::Algorithm,
    hp: &'static aead::quic::Algorithm,
    key_len: usize,
    confidentiality_limit: u64,
    integrity_limit: u64,
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-6.6
//# For AEAD_AES_128_GCM and AEAD_AES_256_GCM, the confidentiality limit is
//# 2<sup>23</sup> encrypted packets; see {{gcm-bounds}}. For
//# AEAD_CHACHA20_POLY1305, the confidentiality limit is greater than the number of
//# possible packets (2<sup>62</sup>) and so can be disregarded.
//
//# For AEAD_AES_128_GCM and AEAD_AES_256_GCM, the integrity limit is 2<sup>52</sup>
//# invalid packets; see {{gcm-bounds}}. For AEAD_CHACHA20_POLY1305, the integrity
//# limit is 2<sup>36</sup> invalid packets; see {{AEBounds}}.
fn params(suite: CipherSuite) -> Params {
    match suite {
        CipherSuite::Aes128GcmSha256 => Params {
            hkdf: hkdf::HKDF_SHA256,
            hash_len: 32,
            aead: &aead::AES_128_GCM,
            hp: &aead::quic::AES_128,
            key_len: 16,
            confidentiality_limit: 1 << 23,
            integrity_limit: 1 << 52,
        },
        CipherSuite::Aes256GcmSha384 => Params {
            hkdf: hkdf::HKDF_SHA384,
            hash_len: 48,
            aead: &aead::AES_256_GCM,
            hp: &aead::quic::AES_256,
            key_len: 32,
            confidentiality_limit: 1 << 23,
            integrity_limit: 1 << 52,
        },
        CipherSuite::ChaCha20Poly1305Sha256 => Params {
            hkdf: hkdf::HKDF_SHA256,
            hash_len: 32,
            aead: &aead::CHACHA20_POLY1305,
            hp: &aead::quic::CHACHA20,
            key_len: 32,
            confidentiality_limit: u64::MAX,
            integrity_limit: 1 << 36,
        },
    }
}

struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1), as every QUIC
/// derivation uses it.
pub(crate) fn hkdf_expand_label(
    alg: hkdf::Algorithm,
    secret: &[u8],
    label: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    expand_label(&hkdf::Prk::new_less_safe(alg, secret), label, out)
}

fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    const PREFIX: &[u8] = b"tls13 ";
    let out_len = u16::try_from(out.len()).map_err(|_| CryptoError::BadKeyLength)?.to_be_bytes();
    let label_len = [(PREFIX.len() + label.len()) as u8];
    let context_len = [0u8];
    let info: [&[u8]; 5] = [&out_len, &label_len, PREFIX, label, &context_len];
    prk.expand(&info, OutLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CryptoError::BadKeyLength)
}

/// The keys of a client's Initial packets to `client_dcid`, alone: what a
/// server needs to check that an Initial authenticates, for half the work
/// of deriving both directions (`Keys::initial`). Every forged Initial of
/// a flood costs this.
pub(crate) fn initial_client_keys(
    version: Version,
    client_dcid: &[u8],
) -> Result<DirectionalKeys, CryptoError> {
    //= https://www.rfc-editor.org/rfc/rfc9001#section-5.2
    //# initial_salt = 0x38762cf7f55934b34d179ae6a4c80cadccbb7f0a
    const SALT_V1: [u8; 20] = [
        0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c,
        0xad, 0xcc, 0xbb, 0x7f, 0x0a,
    ];
    //= https://www.rfc-editor.org/rfc/rfc9369#section-3.3.1
    //# initial_salt = 0x0dede3def700a6db819381be6e269dcbf9bd2ed9
    const SALT_V2: [u8; 20] = [
        0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d,
        0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
    ];
    let salt = match version {
        Version::V1 => &SALT_V1,
        Version::V2 => &SALT_V2,
        _ => return Err(CryptoError::UnsupportedVersion),
    };
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(client_dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, b"client in", &mut client)?;
    directional_keys(CipherSuite::Aes128GcmSha256, version, &client)
}

pub(crate) fn directional_keys(
    suite: CipherSuite,
    version: Version,
    secret: &[u8],
) -> Result<DirectionalKeys, CryptoError> {
    let labels = labels(version)?;
    let p = params(suite);
    if secret.len() != p.hash_len {
        return Err(CryptoError::BadKeyLength);
    }
    let mut hp = [0u8; 32];
    let hp = &mut hp[..p.key_len];
    hkdf_expand_label(p.hkdf, secret, labels.hp, hp)?;
    let header =
        aead::quic::HeaderProtectionKey::new(p.hp, hp).map_err(|_| CryptoError::BadKeyLength)?;
    Ok(DirectionalKeys {
        header: HeaderKey(Box::new(AwsLcHeaderKey(header))),
        packet: packet_key(suite, version, secret)?,
    })
}

fn packet_key(
    suite: CipherSuite,
    version: Version,
    secret: &[u8],
) -> Result<PacketKey, CryptoError> {
    let labels = labels(version)?;
    let p = params(suite);
    let mut key = [0u8; 32];
    let key = &mut key[..p.key_len];
    let mut iv = [0u8; NONCE_LEN];
    hkdf_expand_label(p.hkdf, secret, labels.key, key)?;
    hkdf_expand_label(p.hkdf, secret, labels.iv, &mut iv)?;
    let key = UnboundKey::new(p.aead, key).map_err(|_| CryptoError::BadKeyLength)?;
    Ok(PacketKey(Box::new(AwsLcPacketKey {
        key: LessSafeKey::new(key),
        iv,
        confidentiality_limit: p.confidentiality_limit,
        integrity_limit: p.integrity_limit,
    })))
}

/// The key update secret: HKDF-Expand-Label(secret, "quic ku", "", Hash.length).
pub(crate) fn next_secret(
    suite: CipherSuite,
    version: Version,
    secret: &mut [u8],
) -> Result<(), CryptoError> {
    let p = params(suite);
    let mut next = [0u8; MAX_SECRET_LEN];
    let next = &mut next[..p.hash_len];
    hkdf_expand_label(p.hkdf, secret, labels(version)?.ku, next)?;
    secret.copy_from_slice(next);
    Ok(())
}

/// 1-RTT secrets for both directions, from raw secrets.
pub(crate) struct RawSecrets {
    suite: CipherSuite,
    version: Version,
    side: Side,
    client: [u8; MAX_SECRET_LEN],
    server: [u8; MAX_SECRET_LEN],
    len: usize,
}

impl RawSecrets {
    pub(crate) fn new(
        suite: CipherSuite,
        version: Version,
        side: Side,
        client: &[u8],
        server: &[u8],
    ) -> Result<Self, CryptoError> {
        labels(version)?;
        let len = params(suite).hash_len;
        if client.len() != len || server.len() != len {
            return Err(CryptoError::BadKeyLength);
        }
        let mut out = Self {
            suite,
            version,
            side,
            client: [0; MAX_SECRET_LEN],
            server: [0; MAX_SECRET_LEN],
            len,
        };
        out.client[..len].copy_from_slice(client);
        out.server[..len].copy_from_slice(server);
        Ok(out)
    }

    pub(crate) fn next_packet_keys(&mut self) -> PacketKeySet {
        let (suite, version, len) = (self.suite, self.version, self.len);
        // Lengths, suite and version were all checked in `new`, so these
        // derivations cannot fail.
        let derive =
            |s: &[u8]| packet_key(suite, version, s).expect("validated in RawSecrets::new");
        let client = derive(&self.client[..len]);
        let server = derive(&self.server[..len]);
        next_secret(suite, version, &mut self.client[..len]).expect("validated in RawSecrets::new");
        next_secret(suite, version, &mut self.server[..len]).expect("validated in RawSecrets::new");
        match self.side {
            Side::Client => PacketKeySet { local: client, remote: server },
            Side::Server => PacketKeySet { local: server, remote: client },
        }
    }
}

struct AwsLcPacketKey {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    confidentiality_limit: u64,
    integrity_limit: u64,
}

impl AwsLcPacketKey {
    //= https://www.rfc-editor.org/rfc/rfc9001#section-5.3
    //# The exclusive OR of the padded packet number and the IV forms the AEAD
    //# nonce.
    fn nonce(&self, packet_number: u64) -> Nonce {
        let mut nonce = self.iv;
        for (n, p) in nonce[NONCE_LEN - 8..].iter_mut().zip(packet_number.to_be_bytes()) {
            *n ^= p;
        }
        Nonce::assume_unique_for_key(nonce)
    }
}

impl rq::PacketKey for AwsLcPacketKey {
    fn encrypt_in_place(
        &self,
        packet_number: u64,
        header: &[u8],
        payload: &mut [u8],
    ) -> Result<rq::Tag, rustls::Error> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(packet_number), Aad::from(header), payload)
            .map_err(|_| rustls::Error::EncryptError)?;
        Ok(rq::Tag::from(tag.as_ref()))
    }

    fn decrypt_in_place<'a>(
        &self,
        packet_number: u64,
        header: &[u8],
        payload: &'a mut [u8],
    ) -> Result<&'a [u8], rustls::Error> {
        let plain = self
            .key
            .open_in_place(self.nonce(packet_number), Aad::from(header), payload)
            .map_err(|_| rustls::Error::DecryptError)?;
        Ok(plain)
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn confidentiality_limit(&self) -> u64 {
        self.confidentiality_limit
    }

    fn integrity_limit(&self) -> u64 {
        self.integrity_limit
    }
}

struct AwsLcHeaderKey(aead::quic::HeaderProtectionKey);

impl AwsLcHeaderKey {
    //= https://www.rfc-editor.org/rfc/rfc9001#section-5.4.1
    //# mask = header_protection(hp_key, sample)
    //#
    //# pn_length = (packet[0] & 0x03) + 1
    //# if (packet[0] & 0x80) == 0x80:
    //#    # Long header: 4 bits masked
    //#    packet[0] ^= mask[0] & 0x0f
    //# else:
    //#    # Short header: 5 bits masked
    //#    packet[0] ^= mask[0] & 0x1f
    //#
    //# # pn_offset is the start of the Packet Number field.
    //# packet[pn_offset:pn_offset+pn_length] ^= mask[1:1+pn_length]
    fn apply(
        &self,
        sample: &[u8],
        first: &mut u8,
        packet_number: &mut [u8],
        unmasking: bool,
    ) -> Result<(), rustls::Error> {
        let mask = self.0.new_mask(sample).map_err(|_| {
            rustls::Error::General("header protection sample of wrong length".into())
        })?;
        if packet_number.len() > 4 {
            return Err(rustls::Error::General("packet number longer than 4 bytes".into()));
        }
        let bits = if *first & 0x80 != 0 { 0x0f } else { 0x1f };
        // The packet number length is read from the unprotected first byte:
        // after unmasking on receipt, before masking on send.
        let plain_first = if unmasking { *first ^ (mask[0] & bits) } else { *first };
        let pn_len = usize::from(plain_first & 0x03) + 1;
        *first ^= mask[0] & bits;
        for (b, m) in packet_number.iter_mut().zip(&mask[1..]).take(pn_len) {
            *b ^= m;
        }
        Ok(())
    }
}

impl rq::HeaderProtectionKey for AwsLcHeaderKey {
    fn encrypt_in_place(
        &self,
        sample: &[u8],
        first: &mut u8,
        packet_number: &mut [u8],
    ) -> Result<(), rustls::Error> {
        self.apply(sample, first, packet_number, false)
    }

    fn decrypt_in_place(
        &self,
        sample: &[u8],
        first: &mut u8,
        packet_number: &mut [u8],
    ) -> Result<(), rustls::Error> {
        self.apply(sample, first, packet_number, true)
    }

    fn sample_len(&self) -> usize {
        super::SAMPLE_LEN
    }
}
