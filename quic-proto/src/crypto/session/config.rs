//! rustls configurations fit for QUIC (RFC 9001 §4.2, §4.6.1, §8.1): TLS 1.3
//! only, ALPN required, early data off unless asked for.
//!
//! The crypto provider and the time source are arguments: the core never
//! reads the clock, so a driver passes rustls' `DefaultTimeProvider` (or its
//! own) and tests pass a fixed time. User-built configurations work too, as
//! long as they list ALPN protocols.

use core::fmt;
use std::sync::Arc;

use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a TLS configuration or session could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The configuration lists no ALPN protocols, or an empty or over-long
    /// (more than 255 bytes) one; QUIC requires ALPN (RFC 9001 §8.1).
    NoAlpnProtocols,
    /// The QUIC version has no TLS binding here (RFC 9001, RFC 9369 only).
    UnsupportedVersion,
    /// The server name is neither a valid DNS name nor an IP address.
    InvalidServerName,
    /// rustls refused the configuration (no TLS 1.3 or QUIC-capable suite,
    /// an unusable key or certificate, a `max_early_data_size` other than 0
    /// or `u32::MAX`).
    Tls(rustls::Error),
    /// A certificate verifier could not be built (an empty root store).
    Verifier(VerifierBuilderError),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAlpnProtocols => f.write_str("QUIC requires at least one ALPN protocol"),
            Self::UnsupportedVersion => f.write_str("no TLS binding for this QUIC version"),
            Self::InvalidServerName => f.write_str("invalid server name"),
            Self::Tls(e) => write!(f, "TLS configuration rejected: {e}"),
            Self::Verifier(e) => write!(f, "certificate verifier rejected: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Tls(e) => Some(e),
            Self::Verifier(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsConfigError {
    fn from(e: rustls::Error) -> Self {
        Self::Tls(e)
    }
}

impl From<VerifierBuilderError> for TlsConfigError {
    fn from(e: VerifierBuilderError) -> Self {
        Self::Verifier(e)
    }
}

/// A client configuration for QUIC: TLS 1.3 only, the given ALPN protocols
/// in order of preference, server certificates checked by WebPKI against
/// `roots` with the provider's signature algorithms and `time`, early data
/// off (set `enable_early_data` on the result to attempt 0-RTT on
/// resumption). For another verifier, build the `ClientConfig` directly.
///
/// `client_auth` is a certificate chain and its key, for servers that ask.
pub fn client_config(
    provider: Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
    roots: Arc<RootCertStore>,
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: Vec<Vec<u8>>,
) -> Result<ClientConfig, TlsConfigError> {
    check_alpn(&alpn)?;
    //= https://www.rfc-editor.org/rfc/rfc9001#section-4.2
    //# Clients MUST NOT offer TLS versions older than 1.3.
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build()?;
    let builder = ClientConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_webpki_verifier(verifier);
    let mut config = match client_auth {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn;
    config.enable_early_data = false;
    Ok(config)
}

/// A server configuration for QUIC: TLS 1.3 only, presenting `cert_chain`
/// (end entity first) signed for by `key`, the given ALPN protocols in
/// order of preference, early data off. With `client_roots`, the server
/// requires a client certificate and checks it by WebPKI against them;
/// without, it asks for none.
///
/// To accept 0-RTT, set `max_early_data_size` on the result to `u32::MAX`:
/// RFC 9001 §4.6.1 requires exactly that value when early data is on.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<Arc<RootCertStore>>,
    alpn: Vec<Vec<u8>>,
) -> Result<ServerConfig, TlsConfigError> {
    check_alpn(&alpn)?;
    let client_verifier = match client_roots {
        Some(roots) => {
            Some(WebPkiClientVerifier::builder_with_provider(roots, provider.clone()).build()?)
        }
        None => None,
    };
    let builder = ServerConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(cert_chain, key)?;
    config.alpn_protocols = alpn;
    config.max_early_data_size = 0;
    Ok(config)
}

fn check_alpn(alpn: &[Vec<u8>]) -> Result<(), TlsConfigError> {
    super::check_alpn(alpn)
}
