//! A rustls crypto provider whose every random draw comes from one
//! [`RandomSource`], so a handshake driven by a seeded endpoint replays byte
//! for byte from its trace (RFC 9001 §4; RFC 8446 §4.1.2, §4.2.8).
//!
//! rustls takes all of its own randomness (hello randoms, session tickets)
//! from the provider's `secure_random`, and the ephemeral key-exchange key
//! from the provider's key-exchange groups; both draw from the same source
//! here. The other primitives are aws-lc-rs'. Signatures are the signing
//! key's business: Ed25519 is deterministic, ECDSA and RSA-PSS are not, so
//! a trace records them ([`super::tls_inputs`]).

use core::fmt;
use std::sync::{Arc, Mutex};

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::hkdf;
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

/// The key-exchange groups of [`endpoint_provider`] (and of the `testing`
/// feature's `seeded_provider`), most preferred first. A client sends a key
/// share for the first only.
pub const DEFAULT_SEEDED_GROUPS: &[SeededGroup] = &[SeededGroup::X25519, SeededGroup::Secp256r1];

/// A provider with aws-lc-rs cipher suites, signature verification and key
/// loading, whose hello randoms, session-ticket material and ephemeral
/// key-exchange keys all draw from `random`, with the key-exchange `groups`
/// in order of preference (a client offering a group the server lacks
/// first draws a HelloRetryRequest).
///
/// Draws continue across every connection that shares the provider, in the
/// order rustls makes them.
///
/// rustls 0.23 holds a provider's random source and groups as `&'static`
/// references, so each call leaks them (a few hundred bytes): build one per
/// endpoint, or per test, not one per connection of a long-running server.
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

/// The HKDF-Extract salt of [`tls_seed`]: a fixed label, so the TLS key is
/// bound to this derivation and to nothing else keyed by the same seed.
const TLS_SEED_SALT: &[u8] = b"quic-proto endpoint seed v1";

/// The HKDF-Expand info of [`tls_seed`].
const TLS_SEED_INFO: &[u8] = b"quic-proto tls randomness";

/// The seed of an endpoint's TLS random stream, derived from the seed of
/// its own [`SeededRandom`] by HKDF-SHA256 (RFC 5869) with a fixed salt and
/// the info `"quic-proto tls randomness"`.
///
/// Connection IDs, tokens and the other draws of the endpoint's own stream
/// and rustls' draws then come from independent streams: the number of
/// draws TLS makes never shifts the endpoint's, and no TLS output reveals
/// the endpoint's stream (HKDF is a PRF, ChaCha20 a PRG).
pub fn tls_seed(endpoint_seed: &[u8; 32]) -> [u8; 32] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, TLS_SEED_SALT).extract(endpoint_seed);
    let mut out = [0u8; 32];
    // HKDF-SHA256 expands to at most 255 * 32 bytes (RFC 5869 §2.3); 32 is
    // the hash length, so neither step can fail.
    prk.expand(&[TLS_SEED_INFO], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF-SHA256 always expands to one hash length");
    out
}

/// The crypto provider of an endpoint whose randomness is keyed by
/// `endpoint_seed`: [`provider_with_random`] over a [`SeededRandom`] keyed by
/// [`tls_seed`]`(endpoint_seed)`, with [`DEFAULT_SEEDED_GROUPS`].
///
/// Cipher suites, certificate verification and private-key loading are
/// aws-lc-rs'. The same seed gives the same ClientHello and ServerHello
/// randoms, session-ticket material and key shares, so with the signatures
/// and clock reads of [`super::tls_inputs`] a recorded handshake replays.
///
/// Build it once per endpoint and share it (`Arc`) across the endpoint's
/// client and server configurations: it leaks its `&'static` random source
/// and key-exchange groups, as rustls 0.23 requires of a provider.
///
/// The stream erases its key as it goes ([`KeyErasingRandom`]): the
/// ephemeral key-exchange keys of past handshakes cannot be recomputed from
/// the process's memory later, which keeps TLS's forward secrecy as a
/// provider reading the OS generator would. (The endpoint seed itself, if
/// kept, still yields them: guard it like the traces that record it.)
pub fn endpoint_provider(endpoint_seed: &[u8; 32]) -> CryptoProvider {
    provider_with_random(
        Box::new(KeyErasingRandom::new(tls_seed(endpoint_seed))),
        DEFAULT_SEEDED_GROUPS,
    )
}

/// A deterministic stream with backtracking resistance ("fast key
/// erasure"): ChaCha20 keyed by a 32-byte key; each draw takes its output
/// from the stream and then replaces the key with the next 32 bytes of
/// the same stream, so the state kept after a draw cannot reproduce it
/// (the replaced state is dropped; Rust does not zero freed memory). The
/// same seed gives the same draws, so a trace replays.
pub struct KeyErasingRandom {
    rng: SeededRandom,
}

impl KeyErasingRandom {
    /// A stream keyed by `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self { rng: SeededRandom::from_seed(seed) }
    }
}

impl fmt::Debug for KeyErasingRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyErasingRandom(..)")
    }
}

impl RandomSource for KeyErasingRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        self.rng.fill(dest);
        let mut next = [0u8; 32];
        self.rng.fill(&mut next);
        self.rng = SeededRandom::from_seed(next);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_erasing_stream_is_deterministic_and_rekeys_after_each_draw() {
        let draws = |seed| {
            let mut r = KeyErasingRandom::new(seed);
            [1usize, 32, 7, 64].map(|n| {
                let mut b = vec![0; n];
                r.fill(&mut b);
                b
            })
        };
        assert_eq!(draws([1; 32]), draws([1; 32]));
        assert_ne!(draws([1; 32]), draws([2; 32]));
        // Not the plain stream: after the first draw the key has changed.
        let mut plain = SeededRandom::from_seed([1; 32]);
        let mut p = [vec![0u8; 1], vec![0u8; 32]];
        for b in &mut p {
            plain.fill(b);
        }
        let d = draws([1; 32]);
        assert_eq!(d[0], p[0], "the first draw is the stream's first bytes");
        assert_ne!(d[1], p[1], "the second comes from the new key");
    }

    fn random_bytes(provider: &CryptoProvider) -> [u8; 48] {
        let mut out = [0; 48];
        provider.secure_random.fill(&mut out).unwrap();
        out
    }

    fn key_share(provider: &CryptoProvider) -> Vec<u8> {
        provider.kx_groups[0].start().unwrap().pub_key().to_vec()
    }

    #[test]
    fn endpoint_provider_replays_per_seed() {
        let (a, b, c) =
            (endpoint_provider(&[1; 32]), endpoint_provider(&[1; 32]), endpoint_provider(&[2; 32]));
        let (ra, rb, rc) = (random_bytes(&a), random_bytes(&b), random_bytes(&c));
        assert_eq!(ra, rb);
        assert_ne!(ra, rc);
        let (ka, kb, kc) = (key_share(&a), key_share(&b), key_share(&c));
        assert_eq!(ka, kb);
        assert_ne!(ka, kc);
        assert_eq!(a.kx_groups[0].name(), NamedGroup::X25519);
        assert_eq!(ka.len(), 32);
    }

    #[test]
    fn tls_stream_is_not_the_endpoint_stream() {
        let seed = [7u8; 32];
        let derived = tls_seed(&seed);
        assert_ne!(derived, seed);
        assert_eq!(derived, tls_seed(&seed));
        assert_ne!(derived, tls_seed(&[8; 32]));

        // The provider's first bytes are not the endpoint's first bytes.
        let mut endpoint = [0u8; 48];
        SeededRandom::from_seed(seed).fill(&mut endpoint);
        assert_ne!(random_bytes(&endpoint_provider(&seed)), endpoint);
        // They are the derived stream's.
        let mut tls = [0u8; 48];
        SeededRandom::from_seed(derived).fill(&mut tls);
        assert_eq!(random_bytes(&endpoint_provider(&seed)), tls);
    }

    #[test]
    fn tls_seed_is_hkdf_sha256_with_the_documented_info() {
        // An independent computation through HMAC: PRK = HMAC(salt, ikm);
        // OKM = HMAC(PRK, info || 0x01) for one block (RFC 5869 §2.2, §2.3).
        use aws_lc_rs::hmac;
        let seed = [0x42u8; 32];
        let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, TLS_SEED_SALT), &seed);
        let mut block = b"quic-proto tls randomness".to_vec();
        block.push(1);
        let okm = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &block);
        assert_eq!(tls_seed(&seed).as_slice(), okm.as_ref());
    }
}
