//! A throwaway certificate authority with Ed25519 server and client
//! certificates, all derived from a seed so that two runs with one seed are
//! byte-identical (RFC 8032 signatures are deterministic; rcgen's validity
//! dates are fixed and its serial numbers hash the public key).

use std::sync::Arc;

use aws_lc_rs::signature::Ed25519KeyPair;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::random::{RandomSource, SeededRandom};

/// A CA and the server and client certificates it issued, with their keys.
#[derive(Debug)]
pub struct TestPki {
    ca: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: PrivatePkcs8KeyDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key: PrivatePkcs8KeyDer<'static>,
}

impl TestPki {
    /// The DNS name the server certificate is valid for.
    pub const SERVER_NAME: &'static str = "localhost";
    /// The DNS name in the client certificate.
    pub const CLIENT_NAME: &'static str = "client.localhost";

    /// Generates the PKI. Keys come from a [`SeededRandom`] keyed by `seed`:
    /// one seed, same bytes; another seed, a PKI the first does not trust.
    pub fn new(seed: u64) -> Self {
        let mut random = SeededRandom::from_u64(seed);
        let ca_key = ed25519_key(&mut random);
        let server_key = ed25519_key(&mut random);
        let client_key = ed25519_key(&mut random);

        let mut ca_params = CertificateParams::default();
        // The seed in the name keeps CAs of different seeds apart: a chain
        // from another seed's PKI then has an unknown issuer, not one whose
        // signature fails.
        ca_params.distinguished_name.push(DnType::CommonName, format!("quic-proto test CA {seed}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params
            .self_signed(&ca_key.0)
            .expect("an Ed25519 CA over fixed parameters always signs");
        let issuer = Issuer::from_params(&ca_params, &ca_key.0);

        let leaf = |name: &str, usage: ExtendedKeyUsagePurpose, key: &KeyPair| {
            let mut params = CertificateParams::new(vec![name.to_owned()])
                .expect("the test names are valid DNS names");
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            params.use_authority_key_identifier_extension = true;
            params
                .signed_by(key, &issuer)
                .expect("an Ed25519 leaf over fixed parameters always signs")
                .der()
                .clone()
        };
        let server_cert =
            leaf(Self::SERVER_NAME, ExtendedKeyUsagePurpose::ServerAuth, &server_key.0);
        let client_cert =
            leaf(Self::CLIENT_NAME, ExtendedKeyUsagePurpose::ClientAuth, &client_key.0);

        Self {
            ca: ca.der().clone(),
            server_cert,
            server_key: server_key.1,
            client_cert,
            client_key: client_key.1,
        }
    }

    /// The CA certificate: the one trust anchor.
    pub fn ca_cert(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    /// A root store holding only the CA.
    pub fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("the test CA certificate parses");
        Arc::new(roots)
    }

    /// The server's chain for "localhost": its end-entity certificate.
    pub fn server_cert_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.server_cert.clone()]
    }

    /// The server's private key (PKCS#8 Ed25519).
    pub fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.server_key.clone_key())
    }

    /// The client's chain: its end-entity certificate.
    pub fn client_cert_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.client_cert.clone()]
    }

    /// The client's private key (PKCS#8 Ed25519).
    pub fn client_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.client_key.clone_key())
    }
}

/// An Ed25519 key from 32 seeded bytes, for rcgen and as PKCS#8 for rustls.
fn ed25519_key(random: &mut SeededRandom) -> (KeyPair, PrivatePkcs8KeyDer<'static>) {
    let mut seed = [0u8; 32];
    random.fill(&mut seed);
    // Any 32 bytes are an Ed25519 private key (RFC 8032 §5.1.5).
    let pkcs8 = Ed25519KeyPair::from_seed_unchecked(&seed)
        .expect("every 32-byte string is an Ed25519 seed")
        .to_pkcs8()
        .expect("an Ed25519 key serializes to PKCS#8");
    let der = PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec());
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
        .expect("aws-lc-rs' Ed25519 PKCS#8 loads in rcgen");
    (key, der)
}
