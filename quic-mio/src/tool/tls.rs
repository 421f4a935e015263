//! TLS configurations for the `quic` tool: certificates from PEM files or
//! generated, trust roots, `--insecure`, ChaCha20, the key log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::insecure::AnyCertificate;
use quic_proto::crypto::session::config::{client_config, server_config};
use quic_proto::keylog::NssKeyLog;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tool::Failure;

/// aws-lc-rs, optionally narrowed to ChaCha20-Poly1305.
pub(crate) fn provider(chacha20: bool) -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if chacha20 {
        provider
            .cipher_suites
            .retain(|s| s.suite() == rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
    }
    Arc::new(provider)
}

fn time() -> Arc<dyn rustls::time_provider::TimeProvider> {
    Arc::new(rustls::time_provider::DefaultTimeProvider)
}

fn alpn(list: &[String]) -> Vec<Vec<u8>> {
    list.iter().filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect()
}

/// A certificate chain and its key.
pub(crate) struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads a PEM chain and key.
    pub(crate) fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, Failure> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| Failure::other(format!("cannot read {}: {e}", cert.display())))?;
        if chain.is_empty() {
            return Err(Failure::other(format!("no certificate in {}", cert.display())));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| Failure::other(format!("cannot read {}: {e}", key.display())))?;
        Ok(Self { chain, key })
    }

    /// A self-signed certificate for localhost, 127.0.0.1 and ::1.
    pub(crate) fn self_signed() -> Result<Self, Failure> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| Failure::other(format!("cannot generate a certificate: {e}")))?;
        let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        Ok(Self { chain: vec![certified.cert.der().clone()], key })
    }

    /// The SHA-256 fingerprint of the end-entity certificate, as colon-separated hex.
    pub(crate) fn fingerprint(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.chain[0]);
        digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    }
}

fn key_log(path: Option<PathBuf>) -> Result<Option<Arc<NssKeyLog>>, Failure> {
    let Some(path) = path else { return Ok(None) };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Failure::other(format!("cannot open key log {}: {e}", path.display())))?;
    Ok(Some(Arc::new(NssKeyLog::new(Box::new(file)))))
}

/// The server's TLS configuration.
pub(crate) fn server(
    identity: Identity,
    alpn_list: &[String],
    keylog: Option<PathBuf>,
) -> Result<rustls::ServerConfig, Failure> {
    let mut config =
        server_config(provider(false), time(), identity.chain, identity.key, None, alpn(alpn_list))
            .map_err(|e| Failure::other(format!("TLS server configuration: {e}")))?;
    if let Some(log) = key_log(keylog)? {
        config.key_log = log;
    }
    Ok(config)
}

/// Whom the client trusts.
pub(crate) enum Trust {
    /// The system's roots.
    System,
    /// The certificates of a PEM file.
    File(PathBuf),
    /// These certificates.
    Certs(Vec<CertificateDer<'static>>),
    /// Anyone (signatures still checked).
    Insecure,
}

/// Where distributions keep their CA bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

fn roots(trust: Trust) -> Result<Arc<RootCertStore>, Failure> {
    let certs = match trust {
        Trust::Certs(certs) => certs,
        Trust::File(path) => CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| Failure::other(format!("cannot read {}: {e}", path.display())))?,
        Trust::System => {
            let path = std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .or_else(|| SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| p.exists()))
                .ok_or_else(|| {
                    Failure::other("no system CA bundle found: pass --ca FILE or --insecure")
                })?;
            return roots(Trust::File(path));
        }
        Trust::Insecure => Vec::new(),
    };
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Failure::other("no usable CA certificate to trust"));
    }
    Ok(Arc::new(store))
}

/// The client's TLS configuration.
pub(crate) fn client(
    trust: Trust,
    alpn_list: &[String],
    chacha20: bool,
    keylog: Option<PathBuf>,
) -> Result<rustls::ClientConfig, Failure> {
    let provider = provider(chacha20);
    let alpn = alpn(alpn_list);
    let mut config = if let Trust::Insecure = trust {
        if alpn.is_empty() {
            return Err(Failure::other("QUIC requires at least one ALPN protocol"));
        }
        let verifier = AnyCertificate::new(&provider);
        let mut config = rustls::ClientConfig::builder_with_details(provider, time())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Failure::other(format!("TLS client configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        config.enable_early_data = false;
        config
    } else {
        client_config(provider, time(), roots(trust)?, None, alpn)
            .map_err(|e| Failure::other(format!("TLS client configuration: {e}")))?
    };
    if let Some(log) = key_log(keylog)? {
        config.key_log = log;
    }
    Ok(config)
}
