//! The seeded rustls provider of the tests: [`crate::crypto::seeded`]
//! keyed by a printable 64-bit seed.
//!
//! The provider itself (its seeded random source and key-exchange groups)
//! is production code now, since endpoints that record traces use it; the
//! items are re-exported here so `quic_proto::testing::*` paths keep
//! working. Replayable test runs use the Ed25519 certificates of
//! [`super::TestPki`], whose signatures are deterministic.

use rustls::crypto::CryptoProvider;

pub use crate::crypto::seeded::{DEFAULT_SEEDED_GROUPS, SeededGroup, provider_with_random};
use crate::random::SeededRandom;

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
