//! The flood's clients' TLS: whom they trust, and the QUIC client
//! configuration (ALPN hq-interop, TLS 1.3, aws-lc-rs).

use std::path::Path;
use std::sync::Arc;

use quic_proto::Version;
use quic_proto::connection::{ClientConfig, TransportConfig};
use quic_proto::crypto::session::config;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

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
            let verifier = Arc::new(AnyCertificate(provider.signature_verification_algorithms));
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

/// [`Trust::Any`]: any certificate, but the handshake signature must verify
/// with it.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The aws-lc-rs provider, for the in-process server.
pub(super) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
