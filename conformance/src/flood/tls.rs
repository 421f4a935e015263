//! The flood's clients' TLS: whom they trust, and the QUIC client
//! configuration (ALPN hq-interop, TLS 1.3, aws-lc-rs).

use std::path::Path;
use std::sync::Arc;

use quic_mio::insecure::AnyCertificate;
use quic_proto::Version;
use quic_proto::connection::{ClientConfig, TransportConfig};
use quic_proto::crypto::session::config;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The ALPN of the interop runner's HTTP/0.9, which `quic server` speaks.
pub(super) const HQ_INTEROP: &[u8] = b"hq-interop";

/// Whose certificates the flood's clients accept.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Any certificate (the handshake signature is still checked): for a
    /// server with a self-signed certificate, like `quic server` without
    /// `--cert`.
    Any,
    /// Certificates issued by these roots.
    Roots(Arc<RootCertStore>),
}

impl Trust {
    /// Trusts the certificates of a PEM file.
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("no usable CA certificate in {}", path.display()));
        }
        Ok(Self::Roots(Arc::new(store)))
    }
}

/// A QUIC v1 client configuration offering hq-interop, trusting `trust`.
pub(super) fn client_config(trust: &Trust) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let time = Arc::new(rustls::time_provider::DefaultTimeProvider);
    let alpn = vec![HQ_INTEROP.to_vec()];
    let tls = match trust {
        Trust::Roots(roots) => config::client_config(provider, time, roots.clone(), None, alpn)
            .map_err(|e| format!("TLS client configuration: {e}"))?,
        Trust::Any => {
            let verifier = AnyCertificate::new(&provider);
            let mut tls = rustls::ClientConfig::builder_with_details(provider, time)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| format!("TLS client configuration: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            tls.alpn_protocols = alpn;
            tls.enable_early_data = false;
            tls
        }
    };
    Ok(ClientConfig {
        tls: Arc::new(tls),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    })
}

/// The aws-lc-rs provider, for the in-process server.
pub(super) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
