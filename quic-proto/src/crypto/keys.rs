//! Packet and header protection keys, and where they come from.

use rustls::crypto::aws_lc_rs::cipher_suite;
use rustls::quic as rq;

use super::CryptoError;
use super::secret::{self, RawSecrets};
use crate::stream_id::Side;
use crate::version::Version;

/// A TLS 1.3 cipher suite QUIC can protect packets with (RFC 9001 §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherSuite {
    /// TLS_AES_128_GCM_SHA256: AEAD_AES_128_GCM, AES-128 header protection.
    Aes128GcmSha256,
    /// TLS_AES_256_GCM_SHA384: AEAD_AES_256_GCM, AES-256 header protection.
    Aes256GcmSha384,
    /// TLS_CHACHA20_POLY1305_SHA256: AEAD_CHACHA20_POLY1305, ChaCha20 header protection.
    ChaCha20Poly1305Sha256,
}

impl CipherSuite {
    /// All suites, in rustls' default order of preference.
    pub const ALL: [Self; 3] =
        [Self::Aes256GcmSha384, Self::Aes128GcmSha256, Self::ChaCha20Poly1305Sha256];

    /// The rustls (aws-lc-rs provider) suite.
    pub fn rustls_suite(self) -> rustls::SupportedCipherSuite {
        match self {
            Self::Aes128GcmSha256 => cipher_suite::TLS13_AES_128_GCM_SHA256,
            Self::Aes256GcmSha384 => cipher_suite::TLS13_AES_256_GCM_SHA384,
            Self::ChaCha20Poly1305Sha256 => cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        }
    }

    /// The suite rustls negotiated, if QUIC can use it.
    pub fn from_rustls(suite: rustls::CipherSuite) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.rustls_suite().suite() == suite)
    }

    /// The TLS code point name, as key logs and qlog spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128GcmSha256 => "TLS_AES_128_GCM_SHA256",
            Self::Aes256GcmSha384 => "TLS_AES_256_GCM_SHA384",
            Self::ChaCha20Poly1305Sha256 => "TLS_CHACHA20_POLY1305_SHA256",
        }
    }
}

/// The QUIC-specific key-derivation labels differ between versions
/// (RFC 9369 §3.3.2); rustls knows both.
pub(crate) fn rustls_version(version: Version) -> Result<rq::Version, CryptoError> {
    match version {
        Version::V1 => Ok(rq::Version::V1),
        Version::V2 => Ok(rq::Version::V2),
        _ => Err(CryptoError::UnsupportedVersion),
    }
}

/// Seals or opens packet payloads for one direction and key phase.
pub struct PacketKey(pub(crate) Box<dyn rq::PacketKey>);

impl PacketKey {
    /// Wraps a key rustls produced during the handshake.
    pub fn from_rustls(key: Box<dyn rq::PacketKey>) -> Self {
        Self(key)
    }

    /// Bytes the AEAD adds to every packet (16 for all QUIC suites).
    pub fn tag_len(&self) -> usize {
        self.0.tag_len()
    }

    /// Packets this key may seal before a key update is due (RFC 9001 §6.6).
    pub fn confidentiality_limit(&self) -> u64 {
        self.0.confidentiality_limit()
    }

    /// Failed openings, across all keys of a connection, after which the
    /// connection must close with AEAD_LIMIT_REACHED (RFC 9001 §6.6).
    pub fn integrity_limit(&self) -> u64 {
        self.0.integrity_limit()
    }
}

impl core::fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PacketKey(..)")
    }
}

/// Adds or removes header protection for one direction (RFC 9001 §5.4).
/// Header protection keys do not change on key update (RFC 9001 §6).
pub struct HeaderKey(pub(crate) Box<dyn rq::HeaderProtectionKey>);

impl HeaderKey {
    /// Wraps a key rustls produced during the handshake.
    pub fn from_rustls(key: Box<dyn rq::HeaderProtectionKey>) -> Self {
        Self(key)
    }
}

impl core::fmt::Debug for HeaderKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HeaderKey(..)")
    }
}

/// The header and packet keys for one direction.
#[derive(Debug)]
pub struct DirectionalKeys {
    /// Header protection.
    pub header: HeaderKey,
    /// Payload protection.
    pub packet: PacketKey,
}

impl DirectionalKeys {
    /// Keys derived from a raw TLS traffic secret with HKDF-Expand-Label and
    /// the labels of `version` (RFC 9001 §5.1, RFC 9369 §3.3.2).
    ///
    /// Use this where a secret is known without a TLS session: a key log
    /// being replayed against a packet trace, or the RFC test vectors.
    pub fn from_secret(
        suite: CipherSuite,
        version: Version,
        secret: &[u8],
    ) -> Result<Self, CryptoError> {
        secret::directional_keys(suite, version, secret)
    }

    /// Converts rustls' keys.
    pub fn from_rustls(keys: rq::DirectionalKeys) -> Self {
        Self { header: HeaderKey(keys.header), packet: PacketKey(keys.packet) }
    }
}

/// Keys for both directions at one encryption level.
#[derive(Debug)]
pub struct Keys {
    /// Protects packets this endpoint sends.
    pub local: DirectionalKeys,
    /// Unprotects packets the peer sends.
    pub remote: DirectionalKeys,
}

impl Keys {
    //= https://www.rfc-editor.org/rfc/rfc9001#section-5.2
    //# Initial packets apply the packet protection process, but use a secret
    //# derived from the Destination Connection ID field from the client's
    //# first Initial packet.
    /// Initial keys for `side`, from the Destination Connection ID of the
    /// client's first Initial packet and the version's salt (RFC 9001 §5.2,
    /// RFC 9369 §3.3.1). Always AES-128-GCM.
    pub fn initial(
        version: Version,
        client_dst_connection_id: &[u8],
        side: Side,
    ) -> Result<Self, CryptoError> {
        let version = rustls_version(version)?;
        let suite = initial_suite();
        let side = match side {
            Side::Client => rustls::Side::Client,
            Side::Server => rustls::Side::Server,
        };
        Ok(Self::from_rustls(suite.keys(client_dst_connection_id, side, version)))
    }

    /// Converts the keys rustls hands over in a `KeyChange`.
    pub fn from_rustls(keys: rq::Keys) -> Self {
        Self {
            local: DirectionalKeys::from_rustls(keys.local),
            remote: DirectionalKeys::from_rustls(keys.remote),
        }
    }
}

fn initial_suite() -> rq::Suite {
    // Initial packets always use AES-128-GCM (RFC 9001 §5.2); the aws-lc-rs
    // provider always defines its QUIC algorithms, so neither lookup fails.
    cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|s| s.quic_suite())
        .expect("aws-lc-rs TLS13_AES_128_GCM_SHA256 supports QUIC")
}

/// The packet keys for one 1-RTT key phase, both directions.
#[derive(Debug)]
pub struct PacketKeySet {
    /// Seals packets this endpoint sends.
    pub local: PacketKey,
    /// Opens packets the peer sends.
    pub remote: PacketKey,
}

/// The 1-RTT secrets from which each next key phase is derived (RFC 9001 §6).
pub struct Secrets(SecretsInner);

enum SecretsInner {
    Rustls(rq::Secrets),
    Raw(RawSecrets),
}

impl Secrets {
    /// Wraps the secrets rustls hands over with the 1-RTT keys
    /// (`KeyChange::OneRtt::next`). rustls has already advanced them, so the
    /// first [`Secrets::next_packet_keys`] gives the keys of key phase 1.
    pub fn from_rustls(secrets: rq::Secrets) -> Self {
        Self(SecretsInner::Rustls(secrets))
    }

    /// Secrets from raw client and server traffic secrets (from a key log).
    /// `side` says which of the two this endpoint's own is. The first
    /// [`Secrets::next_packet_keys`] gives the keys of these very secrets,
    /// so pass the secrets of the first key phase wanted.
    pub fn from_raw(
        suite: CipherSuite,
        version: Version,
        side: Side,
        client_secret: &[u8],
        server_secret: &[u8],
    ) -> Result<Self, CryptoError> {
        let raw = RawSecrets::new(suite, version, side, client_secret, server_secret)?;
        Ok(Self(SecretsInner::Raw(raw)))
    }

    //= https://www.rfc-editor.org/rfc/rfc9001#section-6.1
    //# The header protection key is not updated.
    /// The packet keys of the secrets held, after which the held secrets
    /// move one key phase on
    /// (`secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku", "", Hash.length)`).
    pub fn next_packet_keys(&mut self) -> PacketKeySet {
        match &mut self.0 {
            SecretsInner::Rustls(s) => {
                let keys = s.next_packet_keys();
                PacketKeySet { local: PacketKey(keys.local), remote: PacketKey(keys.remote) }
            }
            SecretsInner::Raw(s) => s.next_packet_keys(),
        }
    }
}

impl core::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secrets(..)")
    }
}
