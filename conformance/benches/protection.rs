//! Packet protection throughput: seal and open 1200-byte 1-RTT packets with
//! quic-proto's packet protection (AEAD + header protection) and compare with
//! raw aws-lc-rs AES-128-GCM sealing of the same payload in the same run.
//!
//! Run: `cargo bench -p conformance --bench protection`. Prints packets/s,
//! MB/s and the ratio to the raw AEAD; the target is a ratio of at
//! most 1.15 for sealing. Figures are printed, never asserted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use quic_proto::crypto::{
    CipherSuite, DirectionalKeys, Keys, open_payload, remove_header_protection, seal_packet,
};
use quic_proto::{Side, Version};

const PACKET_LEN: usize = 1200;
/// Short header: first byte, 8-byte DCID, 2-byte packet number.
const PN_OFFSET: usize = 1 + 8;
const HEADER_LEN: usize = PN_OFFSET + 2;
const TAG_LEN: usize = 16;
const PAYLOAD_LEN: usize = PACKET_LEN - HEADER_LEN - TAG_LEN;

/// Runs `f` (which handles `batch` packets per call) for about `budget`,
/// five times, and returns the best rate in packets per second.
fn measure(batch: u64, budget: Duration, mut f: impl FnMut(u64)) -> f64 {
    let mut best = 0f64;
    let mut pn = 0u64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget {
            f(pn);
            pn += batch;
            n += batch;
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn packet_template() -> Vec<u8> {
    let mut p = vec![0u8; PACKET_LEN];
    p[0] = 0x41; // short header, fixed bit, 2-byte packet number
    p[1..PN_OFFSET].copy_from_slice(&[0x5a; 8]);
    for (i, b) in p[HEADER_LEN..PACKET_LEN - TAG_LEN].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

fn report(name: &str, pps: f64, raw_pps: f64) {
    let mbps = pps * PACKET_LEN as f64 / 1e6;
    println!("{name:<52} {pps:>10.0} pkt/s {mbps:>8.1} MB/s  {:>6.3}x raw", raw_pps / pps);
}

/// Raw aws-lc-rs sealing of the same payload and associated data: the floor.
fn raw_seal_rate(alg: &'static aead::Algorithm, budget: Duration) -> f64 {
    let key = LessSafeKey::new(UnboundKey::new(alg, &vec![7; alg.key_len()]).unwrap());
    let mut buf = packet_template();
    measure(1, budget, |pn| {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&pn.to_be_bytes());
        let (header, payload) = buf.split_at_mut(HEADER_LEN);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&*header),
                &mut payload[..PAYLOAD_LEN],
            )
            .unwrap();
        black_box(tag.as_ref());
    })
}

fn seal_rate(keys: &DirectionalKeys, budget: Duration) -> f64 {
    let template = packet_template();
    let mut buf = template.clone();
    measure(1, budget, |pn| {
        buf[..HEADER_LEN].copy_from_slice(&template[..HEADER_LEN]);
        buf[PN_OFFSET..HEADER_LEN].copy_from_slice(&(pn as u16).to_be_bytes());
        seal_packet(&keys.header, &keys.packet, pn, &mut buf, PN_OFFSET).unwrap();
        black_box(&buf);
    })
}

/// Opening, with a ring of pre-sealed packets copied into the work buffer
/// first (the copy is part of the measured time).
fn open_rate(keys: &DirectionalKeys, peer: &DirectionalKeys, budget: Duration) -> f64 {
    let template = packet_template();
    let ring: Vec<Vec<u8>> = (0..1024u64)
        .map(|pn| {
            let mut p = template.clone();
            p[PN_OFFSET..HEADER_LEN].copy_from_slice(&(pn as u16).to_be_bytes());
            seal_packet(&keys.header, &keys.packet, pn, &mut p, PN_OFFSET).unwrap();
            p
        })
        .collect();
    let mut work = template.clone();
    measure(1, budget, |pn| {
        let pn = pn % 1024;
        work.copy_from_slice(&ring[pn as usize]);
        let (pn_len, _) = remove_header_protection(&peer.header, &mut work, PN_OFFSET).unwrap();
        let len = open_payload(&peer.packet, pn, &mut work, PN_OFFSET + pn_len).unwrap();
        black_box(len);
    })
}

fn main() {
    let budget = Duration::from_millis(300);
    println!("packet protection: {PACKET_LEN}-byte 1-RTT packets, best of 5 runs");
    println!(
        "ratio = time per packet / raw aws-lc-rs AEAD seal of the same bytes (target <= 1.15)"
    );

    let suites = [
        (CipherSuite::Aes128GcmSha256, &aead::AES_128_GCM, 32),
        (CipherSuite::Aes256GcmSha384, &aead::AES_256_GCM, 48),
        (CipherSuite::ChaCha20Poly1305Sha256, &aead::CHACHA20_POLY1305, 32),
    ];
    for (suite, alg, secret_len) in suites {
        let raw = raw_seal_rate(alg, budget);
        report(&format!("raw aws-lc-rs seal, {}", suite.name()), raw, raw);
        let secret = vec![0x42u8; secret_len];
        let keys = DirectionalKeys::from_secret(suite, Version::V1, &secret).unwrap();
        let peer = DirectionalKeys::from_secret(suite, Version::V1, &secret).unwrap();
        report(&format!("seal (key-log keys), {}", suite.name()), seal_rate(&keys, budget), raw);
        report(
            &format!("open+copy (key-log keys), {}", suite.name()),
            open_rate(&keys, &peer, budget),
            raw,
        );
        if suite == CipherSuite::Aes128GcmSha256 {
            // Keys as rustls hands them over in a handshake (here: Initial keys).
            let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
            let client = Keys::initial(Version::V1, &dcid, Side::Client).unwrap();
            let server = Keys::initial(Version::V1, &dcid, Side::Server).unwrap();
            report(
                "seal (rustls keys), TLS_AES_128_GCM_SHA256",
                seal_rate(&client.local, budget),
                raw,
            );
            report(
                "open+copy (rustls keys), TLS_AES_128_GCM_SHA256",
                open_rate(&client.local, &server.remote, budget),
                raw,
            );
        }
    }
}
