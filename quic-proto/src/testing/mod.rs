//! Deterministic TLS for tests and trace replay (the `testing` feature): a
//! rustls crypto provider drawing all randomness from a seed, a seeded
//! Ed25519 test PKI, a fixed clock for certificate checks, and QUIC client
//! and server configurations built from them (RFC 9001 §4, §8.1).
//!
//! With one seed, two runs of the same handshake produce byte-identical
//! TLS messages on both sides; nothing here reads the clock or the OS
//! random generator.

pub mod pair;
mod pki;
mod provider;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, ServerConfig};

pub use pki::TestPki;
pub use provider::{DEFAULT_SEEDED_GROUPS, SeededGroup, provider_with_random, seeded_provider};

use crate::crypto::session::config;

/// A clock stopped at one instant, for certificate validity checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedTime(pub UnixTime);

impl FixedTime {
    /// 2026-01-01T00:00:00Z, inside the test PKI's validity (1975 to 4096).
    pub const DEFAULT: Self = Self(UnixTime::since_unix_epoch(Duration::from_secs(1_767_225_600)));
}

impl Default for FixedTime {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// A QUIC client configuration trusting `pki`'s CA, offering `alpn`, with
/// [`seeded_provider`]`(seed)` and [`FixedTime::DEFAULT`]. Connect to
/// [`TestPki::SERVER_NAME`].
pub fn client_config(pki: &TestPki, alpn: &[&[u8]], seed: u64) -> ClientConfig {
    client_config_with(pki, alpn, seeded_provider(seed), false)
}

/// A QUIC server configuration presenting `pki`'s "localhost" certificate,
/// accepting `alpn`, with [`seeded_provider`]`(seed)` and
/// [`FixedTime::DEFAULT`]. Asks for no client certificate.
pub fn server_config(pki: &TestPki, alpn: &[&[u8]], seed: u64) -> ServerConfig {
    server_config_with(pki, alpn, seeded_provider(seed), false)
}

/// Like [`client_config`] with a given provider; with `present_client_cert`
/// the client answers a certificate request with `pki`'s client
/// certificate.
///
/// Panics if `alpn` is empty: tests must say which protocol they speak.
pub fn client_config_with(
    pki: &TestPki,
    alpn: &[&[u8]],
    provider: CryptoProvider,
    present_client_cert: bool,
) -> ClientConfig {
    let auth = present_client_cert.then(|| (pki.client_cert_chain(), pki.client_key()));
    config::client_config(
        Arc::new(provider),
        Arc::new(FixedTime::DEFAULT),
        pki.roots(),
        auth,
        alpn_list(alpn),
    )
    .expect("the test PKI and seeded provider make a valid QUIC client configuration")
}

/// Like [`server_config`] with a given provider; with
/// `require_client_cert` the server demands a client certificate issued by
/// `pki`'s CA.
///
/// Panics if `alpn` is empty: tests must say which protocol they speak.
pub fn server_config_with(
    pki: &TestPki,
    alpn: &[&[u8]],
    provider: CryptoProvider,
    require_client_cert: bool,
) -> ServerConfig {
    config::server_config(
        Arc::new(provider),
        Arc::new(FixedTime::DEFAULT),
        pki.server_cert_chain(),
        pki.server_key(),
        require_client_cert.then(|| pki.roots()),
        alpn_list(alpn),
    )
    .expect("the test PKI and seeded provider make a valid QUIC server configuration")
}

fn alpn_list(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    alpn.iter().map(|p| p.to_vec()).collect()
}
