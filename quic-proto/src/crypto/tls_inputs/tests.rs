//! The input log's bounds, the recording key and clock, and their replay
//! counterparts. The full record-then-replay handshake is in
//! `crypto::session::tests`.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use rustls::pki_types::PrivatePkcs8KeyDer;

use super::*;
use crate::testing::{FixedTime, TestPki, seeded_provider};

const MESSAGE: &[u8] = b"TLS 1.3, server CertificateVerify\0transcript hash";

fn ecdsa_key() -> (rcgen::KeyPair, Arc<dyn SigningKey>) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pair.serialize_der()));
    let key = signing_key(&seeded_provider(1), der).unwrap();
    (pair, key)
}

fn ed25519_key() -> Arc<dyn SigningKey> {
    signing_key(&seeded_provider(1), TestPki::new(1).server_key()).unwrap()
}

fn time(secs: u64) -> Option<UnixTime> {
    Some(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

fn signature(len: usize) -> TlsInput {
    TlsInput::Signature {
        scheme: u16::from(SignatureScheme::RSA_PSS_SHA256),
        message_sha256: [0; 32],
        signature: vec![0xab; len],
    }
}

#[test]
fn log_drains_in_order_and_clones_share_it() {
    let log = TlsInputLog::new();
    let writer = log.clone();
    writer.push(TlsInput::Time { unix_secs: 1 });
    writer.push(signature(3));
    writer.push(TlsInput::Time { unix_secs: 2 });
    assert_eq!(
        log.take(),
        [TlsInput::Time { unix_secs: 1 }, signature(3), TlsInput::Time { unix_secs: 2 }]
    );
    assert_eq!(log.take(), []);
    assert!(!log.overflowed());
}

#[test]
fn log_is_bounded_by_count() {
    let log = TlsInputLog::new();
    for secs in 0..5000 {
        log.push(TlsInput::Time { unix_secs: secs });
    }
    assert!(log.overflowed());
    let kept = log.take();
    assert_eq!(kept.len(), MAX_PENDING_INPUTS);
    // The first inputs are kept; the late ones are the ones dropped.
    assert_eq!(kept.last(), Some(&TlsInput::Time { unix_secs: MAX_PENDING_INPUTS as u64 - 1 }));
    // Taking makes room again, but the gap stays on record.
    log.push(TlsInput::Time { unix_secs: 9 });
    assert_eq!(log.take(), [TlsInput::Time { unix_secs: 9 }]);
    assert!(log.overflowed());
}

#[test]
fn log_is_bounded_by_signature_bytes() {
    let log = TlsInputLog::new();
    // Ten 100 KiB signatures fit in 1 MiB; the eleventh does not.
    for _ in 0..11 {
        log.push(signature(100 * 1024));
    }
    assert!(log.overflowed());
    assert_eq!(log.take().len(), 10);
    // A clock read carries no signature bytes and still fits while
    // signatures are at their limit.
    for _ in 0..10 {
        log.push(signature(100 * 1024));
    }
    log.push(TlsInput::Time { unix_secs: 5 });
    assert_eq!(log.take().len(), 11);
    // One signature bigger than the whole budget is dropped, not kept.
    let log = TlsInputLog::new();
    log.push(signature(MAX_PENDING_SIGNATURE_BYTES + 1));
    assert!(log.overflowed());
    assert_eq!(log.take(), []);
}

#[test]
fn recording_key_records_verifiable_ecdsa_signatures() {
    let (pair, inner) = ecdsa_key();
    let log = TlsInputLog::new();
    let key = RecordingSigningKey::new(inner.clone(), log.clone());
    assert_eq!(key.algorithm(), SignatureAlgorithm::ECDSA);
    assert_eq!(key.public_key(), inner.public_key());
    assert!(key.public_key().is_some());

    // Nothing offered that the key can make: no signer, nothing recorded.
    assert!(key.choose_scheme(&[SignatureScheme::ED25519]).is_none());
    let signer = key
        .choose_scheme(&[SignatureScheme::ED25519, SignatureScheme::ECDSA_NISTP256_SHA256])
        .unwrap();
    assert_eq!(signer.scheme(), SignatureScheme::ECDSA_NISTP256_SHA256);
    let sig = signer.sign(MESSAGE).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, pair.public_key_raw())
        .verify(MESSAGE, &sig)
        .unwrap();

    let recorded = log.take();
    assert_eq!(
        recorded,
        [TlsInput::Signature {
            scheme: 0x0403,
            message_sha256: sha256(MESSAGE),
            signature: sig.clone(),
        }]
    );
    // The digest is SHA-256 of the message itself.
    assert_eq!(sha256(MESSAGE).as_slice(), digest::digest(&digest::SHA256, MESSAGE).as_ref());
    // ECDSA draws a fresh nonce: a second signature differs, which is why
    // traces must record them.
    let again = signer.sign(MESSAGE).unwrap();
    assert_ne!(again, sig);
    assert_eq!(log.take().len(), 1);
}

#[test]
fn replay_key_hands_back_recorded_signatures_for_the_same_messages() {
    let (_, inner) = ecdsa_key();
    let log = TlsInputLog::new();
    let recorder = RecordingSigningKey::new(inner, log.clone());
    let offered = [SignatureScheme::ECDSA_NISTP256_SHA256];
    let first = recorder.choose_scheme(&offered).unwrap().sign(b"one").unwrap();
    let second = recorder.choose_scheme(&offered).unwrap().sign(b"two").unwrap();

    let replay = ReplaySigningKey::from_inputs(&log.take());
    assert_eq!(replay.remaining(), 2);
    assert_eq!(replay.algorithm(), SignatureAlgorithm::ECDSA);
    assert!(replay.public_key().is_none());
    let signer = replay.choose_scheme(&offered).unwrap();
    assert_eq!(signer.scheme(), SignatureScheme::ECDSA_NISTP256_SHA256);
    assert_eq!(signer.sign(b"one").unwrap(), first);
    assert_eq!(replay.choose_scheme(&offered).unwrap().sign(b"two").unwrap(), second);
    assert_eq!(replay.remaining(), 0);

    // Used up: no scheme to choose, and a signer still held fails.
    assert!(replay.choose_scheme(&offered).is_none());
    let err = signer.sign(b"three").unwrap_err();
    assert!(matches!(&err, rustls::Error::General(m) if m.starts_with("replay:")), "{err}");
    // The algorithm stays that of the recording.
    assert_eq!(replay.algorithm(), SignatureAlgorithm::ECDSA);
}

#[test]
fn replay_key_refuses_a_different_message() {
    let sig = vec![1, 2, 3];
    let replay = ReplaySigningKey::new(vec![(0x0807, sha256(b"recorded"), sig.clone())]);
    let signer = replay.choose_scheme(&[SignatureScheme::ED25519]).unwrap();
    let err = signer.sign(b"something else").unwrap_err();
    assert!(
        matches!(&err, rustls::Error::General(m) if m.contains("differs from the recorded")),
        "{err}"
    );
    assert_eq!(replay.remaining(), 0);
}

#[test]
fn replay_key_offers_only_the_recorded_scheme() {
    let replay = ReplaySigningKey::new(vec![(0x0807, sha256(MESSAGE), vec![7; 64])]);
    assert_eq!(replay.algorithm(), SignatureAlgorithm::ED25519);
    assert!(
        replay
            .choose_scheme(&[
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::RSA_PSS_SHA256
            ])
            .is_none()
    );
    // Declining takes nothing from the queue.
    assert_eq!(replay.remaining(), 1);
    let signer = replay.choose_scheme(&[SignatureScheme::ED25519]).unwrap();
    assert_eq!(signer.sign(MESSAGE).unwrap(), vec![7; 64]);
}

#[test]
fn replay_key_algorithms_follow_the_scheme() {
    let algorithm = |scheme: SignatureScheme| {
        ReplaySigningKey::new(vec![(u16::from(scheme), [0; 32], Vec::new())]).algorithm()
    };
    assert_eq!(algorithm(SignatureScheme::ECDSA_NISTP384_SHA384), SignatureAlgorithm::ECDSA);
    assert_eq!(algorithm(SignatureScheme::RSA_PSS_SHA512), SignatureAlgorithm::RSA);
    assert_eq!(algorithm(SignatureScheme::RSA_PKCS1_SHA256), SignatureAlgorithm::RSA);
    assert_eq!(algorithm(SignatureScheme::ED25519), SignatureAlgorithm::ED25519);
    assert_eq!(algorithm(SignatureScheme::ED448), SignatureAlgorithm::ED448);
    assert_eq!(ReplaySigningKey::new(Vec::new()).algorithm(), SignatureAlgorithm::ECDSA);
    assert!(ReplaySigningKey::new(Vec::new()).choose_scheme(&[SignatureScheme::ED25519]).is_none());
}

#[test]
fn deterministic_keys_record_and_replay_too() {
    let log = TlsInputLog::new();
    let key = RecordingSigningKey::new(ed25519_key(), log.clone());
    assert_eq!(key.algorithm(), SignatureAlgorithm::ED25519);
    let sig = key.choose_scheme(&[SignatureScheme::ED25519]).unwrap().sign(MESSAGE).unwrap();
    let replay = ReplaySigningKey::from_inputs(&log.take());
    let replayed = replay.choose_scheme(&[SignatureScheme::ED25519]).unwrap().sign(MESSAGE);
    assert_eq!(replayed.unwrap(), sig);
}

#[derive(Debug)]
struct Ticking(Mutex<u64>);

impl TimeProvider for Ticking {
    fn current_time(&self) -> Option<UnixTime> {
        let mut secs = self.0.lock().unwrap();
        *secs += 10;
        time(*secs)
    }
}

#[test]
fn recording_time_records_each_read() {
    let log = TlsInputLog::new();
    let clock = RecordingTime::new(Arc::new(Ticking(Mutex::new(1_000))), log.clone());
    assert_eq!(clock.current_time(), time(1_010));
    assert_eq!(clock.current_time(), time(1_020));
    log.push(signature(1));
    assert_eq!(clock.current_time(), time(1_030));
    let recorded = log.take();
    assert_eq!(
        recorded,
        [
            TlsInput::Time { unix_secs: 1_010 },
            TlsInput::Time { unix_secs: 1_020 },
            signature(1),
            TlsInput::Time { unix_secs: 1_030 },
        ]
    );

    let replay = ReplayTime::from_inputs(&recorded);
    assert_eq!(replay.remaining(), 3);
    assert_eq!(replay.current_time(), time(1_010));
    assert_eq!(replay.current_time(), time(1_020));
    assert_eq!(replay.current_time(), time(1_030));
    assert_eq!(replay.remaining(), 0);
}

#[test]
fn recording_time_records_a_fixed_clock_as_it_reads() {
    let log = TlsInputLog::new();
    let clock = RecordingTime::new(Arc::new(FixedTime::DEFAULT), log.clone());
    assert_eq!(clock.current_time(), Some(FixedTime::DEFAULT.0));
    assert_eq!(log.take(), [TlsInput::Time { unix_secs: FixedTime::DEFAULT.0.as_secs() }]);
}

#[test]
fn replay_time_repeats_the_last_read_once_used_up() {
    let replay = ReplayTime::new(vec![5, 3, 8]);
    assert_eq!(replay.current_time(), time(5));
    assert_eq!(replay.current_time(), time(3));
    assert_eq!(replay.current_time(), time(8));
    assert_eq!(replay.current_time(), time(8));
    assert_eq!(replay.current_time(), time(8));
    assert_eq!(ReplayTime::new(Vec::new()).current_time(), None);
}

#[test]
fn resolvers_present_the_chain_with_the_wrapped_key() {
    let chain = TestPki::new(2).server_cert_chain();
    let log = TlsInputLog::new();
    // The resolvers are `Debug`, as rustls requires of its configuration.
    let recording = recording_server_resolver(chain.clone(), ed25519_key(), log);
    assert!(format!("{recording:?}").contains("RecordingSigningKey"));
    let replay = replay_server_resolver(chain, Arc::new(ReplaySigningKey::new(Vec::new())));
    assert!(format!("{replay:?}").contains("ReplaySigningKey"));
}
