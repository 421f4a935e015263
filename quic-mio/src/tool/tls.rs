//! TLS configurations for the `quic` tool: certificates from PEM files or
//! generated, trust roots, `--insecure`, ChaCha20, the key log; and the
//! TLS inputs a trace records and a replay gives back (docs/traces.md):
//! randomness from the endpoint's seed, the clock's readings, the server's
//! signatures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::driver::{Replay, os_seed};
use crate::insecure::AnyCertificate;
use quic_proto::crypto::seeded::endpoint_provider;
use quic_proto::crypto::session::config::{client_config, server_config};
use quic_proto::crypto::tls_inputs::{
    RecordingTime, ReplaySigningKey, ReplayTime, TlsInputLog, recording_server_resolver,
    replay_server_resolver, signing_key,
};
use quic_proto::keylog::NssKeyLog;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tool::Failure;

/// Where an endpoint's non-deterministic inputs come from.
pub(crate) enum Inputs {
    /// A run: the endpoint's seed (from the OS), and the log that TLS
    /// clock readings and signatures go to when the run is traced.
    /// `chain`: the certificate chain the server presents, for the trace.
    Live { seed: [u8; 32], log: Option<TlsInputLog>, chain: Vec<CertificateDer<'static>> },
    /// A replay: everything from the trace.
    Replay(Replay),
}

impl Inputs {
    /// A run with a seed from the OS; `traced`: record the TLS inputs.
    pub(crate) fn live(traced: bool) -> Self {
        Self::Live { seed: os_seed(), log: traced.then(TlsInputLog::new), chain: Vec::new() }
    }

    /// The endpoint's seed: its own randomness and TLS's derive from it.
    pub(crate) fn seed(&self) -> [u8; 32] {
        match self {
            Self::Live { seed, .. } => *seed,
            Self::Replay(replay) => replay.inputs().seed.unwrap_or_default(),
        }
    }

    /// The TLS input log a trace should write, when recording.
    pub(crate) fn log(&self) -> Option<&TlsInputLog> {
        match self {
            Self::Live { log, .. } => log.as_ref(),
            Self::Replay(_) => None,
        }
    }

    /// The chain a traced server presents: the trace records it, so that
    /// a replay presents the same.
    pub(crate) fn chain(&self) -> &[CertificateDer<'static>] {
        match self {
            Self::Live { chain, .. } => chain,
            Self::Replay(_) => &[],
        }
    }

    /// The replay, when replaying.
    pub(crate) fn replay(&self) -> Option<&Replay> {
        match self {
            Self::Replay(replay) => Some(replay),
            Self::Live { .. } => None,
        }
    }
}

/// aws-lc-rs with every random draw (hello randoms, key shares, ticket
/// nonces) from the endpoint's seed, optionally narrowed to
/// ChaCha20-Poly1305. One per endpoint: it leaks its random source, as
/// rustls requires.
pub(crate) fn provider(chacha20: bool, inputs: &Inputs) -> Arc<CryptoProvider> {
    let mut provider = endpoint_provider(&inputs.seed());
    if chacha20 {
        provider
            .cipher_suites
            .retain(|s| s.suite() == rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
    }
    Arc::new(provider)
}

/// The TLS clock: the system's, recorded when tracing, or the trace's.
fn time(inputs: &Inputs) -> Arc<dyn rustls::time_provider::TimeProvider> {
    let system = Arc::new(rustls::time_provider::DefaultTimeProvider);
    match inputs {
        Inputs::Live { log: Some(log), .. } => Arc::new(RecordingTime::new(system, log.clone())),
        Inputs::Live { log: None, .. } => system,
        Inputs::Replay(replay) => Arc::new(ReplayTime::new(replay.inputs().time_reads.clone())),
    }
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

    /// No certificate and no key: for a replay, whose TLS configuration
    /// presents the trace's chain and gives back the trace's signatures.
    pub(crate) fn placeholder() -> Self {
        Self { chain: Vec::new(), key: PrivateKeyDer::Pkcs8(Vec::new().into()) }
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

/// The server's TLS configuration. When tracing, its signatures are
/// recorded; when replaying, the trace's certificate chain is presented
/// and its signatures given back (`identity` is then not used).
pub(crate) fn server(
    identity: Identity,
    alpn_list: &[String],
    keylog: Option<PathBuf>,
    inputs: &mut Inputs,
) -> Result<rustls::ServerConfig, Failure> {
    let provider = provider(false, inputs);
    let tls_err = |e: rustls::Error| Failure::other(format!("TLS server configuration: {e}"));
    let resolver = match &mut *inputs {
        Inputs::Live { log: None, .. } => None,
        Inputs::Live { log: Some(log), chain, .. } => {
            let key = signing_key(&provider, identity.key.clone_key()).map_err(tls_err)?;
            chain.clone_from(&identity.chain);
            Some(recording_server_resolver(identity.chain.clone(), key, log.clone()))
        }
        Inputs::Replay(replay) => {
            let chain: Vec<CertificateDer<'static>> = replay
                .inputs()
                .certificates
                .iter()
                .map(|c| CertificateDer::from(c.clone()))
                .collect();
            if chain.is_empty() {
                return Err(Failure::other(
                    "the trace holds no server certificate chain: it cannot be replayed",
                ));
            }
            let key = Arc::new(ReplaySigningKey::new(replay.inputs().signatures.clone()));
            Some(replay_server_resolver(chain, key))
        }
    };
    let mut config = match resolver {
        None => server_config(
            provider,
            time(&*inputs),
            identity.chain,
            identity.key,
            None,
            alpn(alpn_list),
        )
        .map_err(|e| Failure::other(format!("TLS server configuration: {e}")))?,
        Some(resolver) => {
            let alpn = alpn(alpn_list);
            if alpn.is_empty() {
                return Err(Failure::other("QUIC requires at least one ALPN protocol"));
            }
            // What `server_config` builds, with the resolver for the key.
            let mut config = rustls::ServerConfig::builder_with_details(provider, time(&*inputs))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(tls_err)?
                .with_no_client_auth()
                .with_cert_resolver(resolver);
            config.alpn_protocols = alpn;
            config.max_early_data_size = 0;
            config
        }
    };
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
    inputs: &Inputs,
) -> Result<rustls::ClientConfig, Failure> {
    let provider = provider(chacha20, inputs);
    let alpn = alpn(alpn_list);
    let mut config = if let Trust::Insecure = trust {
        if alpn.is_empty() {
            return Err(Failure::other("QUIC requires at least one ALPN protocol"));
        }
        let verifier = AnyCertificate::new(&provider);
        let mut config = rustls::ClientConfig::builder_with_details(provider, time(inputs))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Failure::other(format!("TLS client configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        config.enable_early_data = false;
        config
    } else {
        client_config(provider, time(inputs), roots(trust)?, None, alpn)
            .map_err(|e| Failure::other(format!("TLS client configuration: {e}")))?
    };
    if let Some(log) = key_log(keylog)? {
        config.key_log = log;
    }
    Ok(config)
}
