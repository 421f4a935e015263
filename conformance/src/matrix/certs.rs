//! The interop runner's long certificate chain for the amplificationlimit
//! case (its `certs.sh`): a root CA, intermediates, and a leaf inflated
//! with 20 long DNS names, so that the server's Handshake flight is far
//! more than three times the client's first Initial and the
//! anti-amplification limit (RFC 9000 §8.1) must hold it back until the
//! client's address is validated.
//!
//! The runner asks for a chain of 9 (8 intermediates); the matrix uses
//! [`CHAIN_LEN`] = 7 (6 intermediates), the deepest path WebPKI verifiers
//! accept (rustls, so our client and quinn's, refuse deeper ones with
//! `MaximumPathDepthExceeded`; the runner's clients mostly do not verify).
//! The leaf's names keep the flight above the runner's 7,500 bytes.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};

/// Certificates in the matrix's chain: leaf and intermediates.
pub const CHAIN_LEN: usize = 7;

/// Where a generated chain's files are.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The root CA (PEM): what clients trust.
    pub ca: PathBuf,
    /// The leaf, then the intermediates up to the root (PEM): what the
    /// server presents.
    pub cert: PathBuf,
    /// The leaf's private key (PEM, PKCS #8).
    pub key: PathBuf,
}

/// Characters of the fake DNS names (the runner's are 250 random
/// alphanumerics; these are split into labels of at most 63 so that they
/// are valid names, which WebPKI verifiers insist on).
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A 250-character DNS name drawn from `state` (a xorshift generator).
fn fake_name(state: &mut u64) -> String {
    let mut name = String::with_capacity(250);
    for i in 0..250 {
        if i % 63 == 62 {
            name.push('.');
            continue;
        }
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        name.push(ALNUM[(*state % ALNUM.len() as u64) as usize] as char);
    }
    name
}

fn dn(organization: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization);
    dn
}

/// Writes a chain of `len` certificates below a root CA into `dir` (`len`
/// 1: the leaf alone, signed by the root). The leaf names localhost,
/// 127.0.0.1 and ::1, and (for `len` > 1) 20 fake 250-character names
/// drawn from `seed`. Keys are ECDSA P-256, as the runner's.
pub fn long_chain(dir: &Path, len: usize, seed: u64) -> Result<Chain, String> {
    let err = |e: rcgen::Error| format!("certificate chain: {e}");
    let ca_params = {
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.distinguished_name = dn("interop runner Root Certificate Authority");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let root =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(err)?).map_err(err)?;
    let mut issuers = vec![root];
    for i in 1..len.max(1) {
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.distinguished_name = dn(&format!("interop runner intermediate {i}"));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let parent = issuers.last().ok_or("no issuer")?;
        let issued = CertifiedIssuer::signed_by(p, KeyPair::generate().map_err(err)?, parent)
            .map_err(err)?;
        issuers.push(issued);
    }
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if len > 1 {
        let mut state = seed | 1;
        names.extend((0..20).map(|_| fake_name(&mut state)));
    }
    let mut leaf_params = CertificateParams::new(names).map_err(err)?;
    leaf_params.distinguished_name = dn("interop runner leaf");
    let leaf_key = KeyPair::generate().map_err(err)?;
    let parent = issuers.last().ok_or("no issuer")?;
    let leaf = leaf_params.signed_by(&leaf_key, parent).map_err(err)?;

    let mut chain_pem = leaf.pem();
    for issuer in issuers.iter().skip(1).rev() {
        chain_pem.push_str(&issuer.pem());
    }
    let files =
        Chain { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    let write = |path: &Path, text: &str| {
        fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(&files.ca, &issuers[0].pem())?;
    write(&files.cert, &chain_pem)?;
    write(&files.key, &leaf_key.serialize_pem())?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_chain_outweighs_the_runners_threshold_and_verifies() {
        let dir = crate::peers::ScratchDir::new("chain").unwrap();
        let chain = long_chain(dir.path(), CHAIN_LEN, 7).unwrap();
        let pem = fs::read_to_string(&chain.cert).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), CHAIN_LEN);
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<rustls::pki_types::CertificateDer<'static>> =
            rustls::pki_types::CertificateDer::pem_file_iter(&chain.cert)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let total: usize = certs.iter().map(|c| c.len()).sum();
        assert!(total > 7500, "the chain is {total} bytes");
        let roots: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&chain.ca)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut store = rustls::RootCertStore::empty();
        store.add_parsable_certificates(roots);
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(store),
            provider,
        )
        .build()
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let now = rustls::pki_types::UnixTime::now();
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            &certs[0],
            &certs[1..],
            &name,
            &[],
            now,
        )
        .expect("the chain verifies for localhost");
    }
}
