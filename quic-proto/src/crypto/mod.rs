//! Packet protection (RFC 9001 §5, §6; RFC 9369 §3.3): keys, AEAD sealing
//! and opening in place, header protection, key updates and the Retry
//! integrity tag.
//!
//! Keys negotiated by TLS come from `rustls::quic` on the aws-lc-rs provider;
//! [`Keys::initial`] derives Initial keys for QUIC v1 and v2 through rustls.
//! [`DirectionalKeys::from_secret`] derives keys from a raw traffic secret
//! (as a key log records it) with aws-lc-rs directly, which trace decryption
//! and the RFC test vectors use.
//!
//! [`seeded`] and [`tls_inputs`] make the TLS handshake replayable: a
//! provider whose randomness comes from the endpoint's seed, and the
//! signatures and clock reads a trace records and a replay feeds back.

mod keys;
mod protect;
mod retry;
mod secret;
pub mod seeded;
pub mod session;
#[cfg(test)]
mod tests;
pub mod tls_inputs;
#[cfg(test)]
pub(crate) mod vectors;

use core::fmt;

pub use keys::{CipherSuite, DirectionalKeys, HeaderKey, Keys, PacketKey, PacketKeySet, Secrets};
pub use protect::{SAMPLE_LEN, open_payload, remove_header_protection, seal_packet};
pub use retry::{RETRY_TAG_LEN, retry_integrity_tag, verify_retry_integrity};
pub(crate) use secret::initial_client_keys;
pub use session::{KeyChange, TlsConfigError, TlsSession};

/// Why a packet could not be protected or unprotected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The packet is too short to hold the header-protection sample or the
    /// AEAD tag. Received packets like this are discarded (RFC 9001 §5.4.2).
    PacketTooShort,
    /// The AEAD tag did not verify: the packet is discarded, and counts
    /// toward the integrity limit (RFC 9001 §6.6).
    DecryptFailed,
    /// Sealing failed (payload too long for the AEAD).
    EncryptFailed,
    /// The QUIC version has no packet protection defined here.
    UnsupportedVersion,
    /// A key or secret had the wrong length for its cipher suite.
    BadKeyLength,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PacketTooShort => "packet too short for header protection sample or AEAD tag",
            Self::DecryptFailed => "packet failed AEAD authentication",
            Self::EncryptFailed => "packet could not be sealed",
            Self::UnsupportedVersion => "no packet protection for this QUIC version",
            Self::BadKeyLength => "key or secret of the wrong length for the cipher suite",
        })
    }
}

impl std::error::Error for CryptoError {}
