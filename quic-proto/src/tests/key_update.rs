//! 1-RTT key updates during long transfers, and the AEAD limits
//! (RFC 9001 §6).

use core::time::Duration;

use super::assert_closes_with;
use crate::connection::TransportConfig;
use crate::error::TransportErrorCode;
use crate::stream_id::{Dir, Side};
use crate::testing::pair::{Direction, Pair, StreamTransfer, Verdict, payload};

//= https://www.rfc-editor.org/rfc/rfc9001#section-6.6
//= type=test
//# Endpoints MUST initiate a key update before sending more protected packets
//# than the confidentiality limit for the selected AEAD permits.
#[test]
fn many_updates_during_a_long_lossy_transfer() {
    // A tiny interval stands in for the confidentiality limit.
    let mut config = TransportConfig::default();
    config.key_update_interval(200);
    let mut pair = Pair::builder(901)
        .client_transport(config.clone())
        .server_transport(config)
        .links(|l| {
            l.loss(0.02).reorder(0.05, Duration::from_millis(20));
        })
        .build();
    pair.handshake();
    let specs = [
        StreamTransfer::one_way(Side::Client, Dir::Uni, payload(1_200_000, 1)),
        StreamTransfer::one_way(Side::Server, Dir::Uni, payload(1_200_000, 2)),
    ];
    let results = pair.transfer_streams(&specs);
    for (spec, r) in specs.iter().zip(&results) {
        assert_eq!(r.request_received, spec.request);
    }
    let (c, s) = (pair.client().stats(), pair.server().stats());
    assert!(c.key_updates >= 4 && s.key_updates >= 4, "{} and {}", c.key_updates, s.key_updates);
    assert!(c.packets_lost > 0 && s.packets_lost > 0);
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-6.1
//= type=test
//# An endpoint MUST NOT initiate a key update prior to having confirmed the
//# handshake ({{handshake-confirmed}}).
#[test]
fn no_update_before_the_handshake_is_confirmed() {
    let mut pair = Pair::new(902);
    // Hold HANDSHAKE_DONE back: the client completes but is not confirmed.
    pair.set_hook(|d| {
        if d.direction == Direction::ServerToClient && d.index >= 1 && d.index < 6 {
            Verdict::Delay(Duration::from_millis(500))
        } else {
            Verdict::Deliver
        }
    });
    pair.drive_until(Duration::from_secs(5), |p| p.client().is_handshake_complete());
    let now = pair.now();
    assert!(!pair.client_events().contains(&crate::connection::Event::HandshakeConfirmed));
    assert!(!pair.client().force_key_update(now));
    pair.handshake();
    let data = payload(5_000, 1);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
    // Confirmed, and a packet of this phase acknowledged: now it may.
    pair.drive_for(Duration::from_millis(200));
    let now = pair.now();
    assert!(pair.client().force_key_update(now));
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-6.6
//= type=test
//# If the total number of received packets that fail authentication within the
//# connection, across all keys, exceeds the integrity limit for the selected AEAD,
//# the endpoint MUST immediately close the connection with a connection error of
//# type AEAD_LIMIT_REACHED and not process any more packets.
#[test]
fn the_integrity_limit_closes_the_connection() {
    let mut pair = Pair::new(903);
    pair.handshake();
    // 2^52 forgeries would take a while: start the count at the limit.
    pair.server().exhaust_integrity_limit();
    let from = pair.link_stats(Direction::ClientToServer).sent;
    pair.set_hook(move |d| {
        if d.direction == Direction::ClientToServer && d.index == from {
            let last = d.data.len() - 1;
            d.data[last] ^= 0x80;
        }
        Verdict::Deliver
    });
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    pair.client().write(id, b"one forgery too many").unwrap();
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::AEAD_LIMIT_REACHED);
}
