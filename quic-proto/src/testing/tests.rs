//! The seeded provider, test PKI and fixed clock replay exactly.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;

use super::*;
use crate::SeededRandom;

fn random_bytes(provider: &CryptoProvider) -> [u8; 48] {
    let mut out = [0; 48];
    provider.secure_random.fill(&mut out).unwrap();
    out
}

#[test]
fn seeded_random_replays() {
    let (a, b, c) = (seeded_provider(1), seeded_provider(1), seeded_provider(2));
    assert_eq!(random_bytes(&a), random_bytes(&b));
    assert_ne!(random_bytes(&a), random_bytes(&c));
    // Draws move the one shared stream on.
    assert_ne!(random_bytes(&a), random_bytes(&seeded_provider(1)));
}

#[test]
fn seeded_key_exchange_replays_and_agrees() {
    for group in [SeededGroup::X25519, SeededGroup::Secp256r1, SeededGroup::Secp384r1] {
        let provider =
            |seed| provider_with_random(Box::new(SeededRandom::from_u64(seed)), &[group]);
        let (a, b, c) = (provider(3), provider(3), provider(4));
        let ka = a.kx_groups[0].start().unwrap();
        let kb = b.kx_groups[0].start().unwrap();
        let kc = c.kx_groups[0].start().unwrap();
        assert_eq!(ka.pub_key(), kb.pub_key(), "{group:?}");
        assert_ne!(ka.pub_key(), kc.pub_key(), "{group:?}");
        assert_eq!(ka.group(), a.kx_groups[0].name());

        let c_pub = kc.pub_key().to_vec();
        let a_pub = ka.pub_key().to_vec();
        let s1 = ka.complete(&c_pub).unwrap();
        let s2 = kc.complete(&a_pub).unwrap();
        assert_eq!(s1.secret_bytes(), s2.secret_bytes(), "{group:?}");
        assert!(kb.complete(&[4; 3]).is_err(), "{group:?}: a malformed share is refused");
    }
}

#[test]
fn default_groups_lead_with_x25519() {
    let provider = seeded_provider(5);
    let names: Vec<_> = provider.kx_groups.iter().map(|g| g.name()).collect();
    assert_eq!(names, [rustls::NamedGroup::X25519, rustls::NamedGroup::secp256r1]);
    assert!(provider.cipher_suites.iter().all(|s| s.version() == &rustls::version::TLS13));
}

#[test]
fn test_pki_replays_per_seed() {
    let (a, b, c) = (TestPki::new(6), TestPki::new(6), TestPki::new(7));
    assert_eq!(a.ca_cert(), b.ca_cert());
    assert_eq!(a.server_cert_chain(), b.server_cert_chain());
    assert_eq!(a.client_cert_chain(), b.client_cert_chain());
    assert_eq!(a.server_key().secret_der(), b.server_key().secret_der());
    assert_eq!(a.client_key().secret_der(), b.client_key().secret_der());
    assert_ne!(a.ca_cert(), c.ca_cert());
    assert_ne!(a.server_key().secret_der(), c.server_key().secret_der());
    assert_ne!(a.server_key().secret_der(), a.client_key().secret_der());
}

#[test]
fn fixed_time_is_fixed() {
    let t = FixedTime::default();
    assert_eq!(
        t.current_time(),
        Some(UnixTime::since_unix_epoch(Duration::from_secs(1_767_225_600)))
    );
    assert_eq!(t.current_time(), t.current_time());
}

#[test]
fn configs_are_quic_ready() {
    let pki = TestPki::new(8);
    let client = client_config(&pki, &[b"h3"], 8);
    let server = server_config(&pki, &[b"h3"], 9);
    assert_eq!(client.alpn_protocols, [b"h3".to_vec()]);
    assert_eq!(server.alpn_protocols, [b"h3".to_vec()]);
    assert!(!client.enable_early_data);
    assert_eq!(server.max_early_data_size, 0);
    assert_eq!(client.time_provider.current_time(), FixedTime::DEFAULT.current_time());
    let _ = (Arc::new(client), Arc::new(server));
}
