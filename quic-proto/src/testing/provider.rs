//! A rustls crypto provider whose every random draw comes from one
//! [`RandomSource`], so a seeded handshake replays byte for byte.
//!
//! rustls takes all of its own randomness (hello randoms, session tickets)
//! from the provider's `secure_random`, and the ephemeral key-exchange key
//! from the provider's key-exchange groups; both draw from the same source
//! here. The other primitives are aws-lc-rs'. Signatures are the signing
//! key's business: Ed25519 is deterministic, ECDSA and RSA-PSS are not, so
//! replayable runs use the Ed25519 certificates of [`super::TestPki`].

use core::fmt;
use std::sync::{Arc, Mutex};

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret,
    SupportedKxGroup,
};
use rustls::{NamedGroup, PeerMisbehaved};

use crate::random::{RandomSource, SeededRandom};

/// The random source shared by a provider's parts, in draw order.
type SharedRandom = Arc<Mutex<Box<dyn RandomSource>>>;

/// A key-exchange group whose ephemeral private keys come from the seeded
/// source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SeededGroup {
    /// X25519 (RFC 7748): any 32 bytes are a private key.
    X25519,
    /// secp256r1 (NIST P-256) ECDHE.
    Secp256r1,
    /// secp384r1 (NIST P-384) ECDHE.
    Secp384r1,
}

impl SeededGroup {
    fn algorithm(self) -> &'static agreement::Algorithm {
        match self {
            Self::X25519 => &agreement::X25519,
            Self::Secp256r1 => &agreement::ECDH_P256,
            Self::Secp384r1 => &agreement::ECDH_P384,
        }
    }

    fn private_key_len(self) -> usize {
        match self {
            Self::X25519 | Self::Secp256r1 => 32,
            Self::Secp384r1 => 48,
        }
    }

    fn named_group(self) -> NamedGroup {
        match self {
            Self::X25519 => NamedGroup::X25519,
            Self::Secp256r1 => NamedGroup::secp256r1,
            Self::Secp384r1 => NamedGroup::secp384r1,
        }
    }
}

/// The key-exchange groups of [`seeded_provider`], most preferred first.
/// A client sends a key share for the first only.
pub const DEFAULT_SEEDED_GROUPS: &[SeededGroup] = &[SeededGroup::X25519, SeededGroup::Secp256r1];

/// A provider with aws-lc-rs cipher suites, signature verification and key
/// loading, whose randomness and ephemeral X25519 and P-256 keys all come
/// from a [`SeededRandom`] keyed by `seed`.
///
/// Two providers with one seed, driven through the same handshake, produce
/// the same bytes. Draws continue across connections that share the
/// provider, so build one per connection for runs that replay per
/// connection. Leaks a few hundred bytes (see [`provider_with_random`]).
pub fn seeded_provider(seed: u64) -> CryptoProvider {
    provider_with_random(Box::new(SeededRandom::from_u64(seed)), DEFAULT_SEEDED_GROUPS)
}

/// Like [`seeded_provider`], with any random source and the key-exchange
/// `groups` in order of preference (a client offering a group the server
/// lacks first draws a HelloRetryRequest).
///
/// rustls 0.23 holds a provider's random source and groups as `&'static`
/// references, so each call leaks them: fine for tests and trace replay,
/// not for a long-running server.
pub fn provider_with_random(
    random: Box<dyn RandomSource>,
    groups: &[SeededGroup],
) -> CryptoProvider {
    let random: SharedRandom = Arc::new(Mutex::new(random));
    let base = rustls::crypto::aws_lc_rs::default_provider();
    let secure_random: &'static SeededSecureRandom =
        Box::leak(Box::new(SeededSecureRandom(random.clone())));
    let kx_groups = groups
        .iter()
        .map(|&group| {
            let kx: &'static SeededKxGroup =
                Box::leak(Box::new(SeededKxGroup { group, random: random.clone() }));
            kx as &'static dyn SupportedKxGroup
        })
        .collect();
    CryptoProvider {
        cipher_suites: base.cipher_suites,
        kx_groups,
        signature_verification_algorithms: base.signature_verification_algorithms,
        secure_random,
        key_provider: base.key_provider,
    }
}

struct SeededSecureRandom(SharedRandom);

impl fmt::Debug for SeededSecureRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededSecureRandom")
    }
}

impl SecureRandom for SeededSecureRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        // A poisoned lock means another thread panicked mid-draw: the
        // sequence is no longer reproducible, so refuse rather than guess.
        self.0.lock().map_err(|_| GetRandomFailed)?.fill(buf);
        Ok(())
    }
}

struct SeededKxGroup {
    group: SeededGroup,
    random: SharedRandom,
}

impl fmt::Debug for SeededKxGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeededKxGroup({:?})", self.group)
    }
}

/// Draws for a NIST-curve scalar before giving up. A 256-bit draw falls
/// outside [1, n) with probability about 2^-32, so more than one retry
/// practically never happens.
const KEY_ATTEMPTS: usize = 8;

impl SupportedKxGroup for SeededKxGroup {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let alg = self.group.algorithm();
        let mut bytes = [0u8; 48];
        let bytes = &mut bytes[..self.group.private_key_len()];
        for _ in 0..KEY_ATTEMPTS {
            self.random.lock().map_err(|_| rustls::Error::FailedToGetRandomBytes)?.fill(bytes);
            let Ok(private) = PrivateKey::from_private_key(alg, bytes) else { continue };
            let public = private
                .compute_public_key()
                .map_err(|_| rustls::Error::General("key-exchange public key".into()))?;
            return Ok(Box::new(SeededKeyExchange {
                group: self.group,
                public: public.as_ref().to_vec(),
                private,
            }));
        }
        Err(rustls::Error::General("no valid key-exchange key from the seeded source".into()))
    }

    fn name(&self) -> NamedGroup {
        self.group.named_group()
    }
}

struct SeededKeyExchange {
    group: SeededGroup,
    private: PrivateKey,
    public: Vec<u8>,
}

impl ActiveKeyExchange for SeededKeyExchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, rustls::Error> {
        // aws-lc-rs rejects malformed points, points off the curve and
        // X25519 agreements that come out all zero.
        agreement::agree(
            &self.private,
            UnparsedPublicKey::new(self.group.algorithm(), peer_pub_key),
            rustls::Error::from(PeerMisbehaved::InvalidKeyShare),
            |secret| Ok(SharedSecret::from(secret)),
        )
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        self.group.named_group()
    }
}
