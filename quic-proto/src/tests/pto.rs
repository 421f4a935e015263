//! Probe timeouts: probes on every expiry, exponential backoff, and the
//! client's anti-deadlock probes during the handshake (RFC 9002 §6.2;
//! RFC 9000 §8.1).

use std::cell::Cell;
use std::rc::Rc;

use core::time::Duration;

use crate::stream_id::{Dir, Side};
use crate::testing::pair::{Direction, Pair, Verdict, payload};

/// Send times of the client's datagrams from `from` on, grouped into bursts
/// (datagrams sent at one instant).
fn client_bursts(pair: &Pair, from: crate::Instant) -> Vec<(crate::Instant, usize)> {
    let mut bursts: Vec<(crate::Instant, usize)> = Vec::new();
    for r in pair.trace() {
        if r.direction != Direction::ClientToServer || r.time < from {
            continue;
        }
        match bursts.last_mut() {
            Some((t, n)) if *t == r.time => *n += 1,
            _ => bursts.push((r.time, 1)),
        }
    }
    bursts
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.4
//= type=test
//# When a PTO timer expires, a sender MUST send at least one ack-eliciting packet
//# in the packet number space as a probe.
//
//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
//= type=test
//# When a PTO timer expires, the PTO backoff MUST be increased, resulting in the
//# PTO period being set to twice its current value.
#[test]
fn probes_go_out_on_every_expiry_with_doubling_intervals() {
    let mut pair = Pair::new(501);
    pair.handshake();
    let warm = payload(20_000, 1);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &warm), warm);
    pair.drive_for(Duration::from_secs(1));
    let start = pair.now();
    let cut = Rc::new(Cell::new(true));
    let hook_cut = cut.clone();
    pair.set_hook(move |d| {
        let lost = hook_cut.get() && d.direction == Direction::ClientToServer;
        if lost { Verdict::Drop } else { Verdict::Deliver }
    });
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    pair.client().write(id, &payload(3000, 2)).unwrap();
    pair.drive_for(Duration::from_secs(6));
    let bursts = client_bursts(&pair, start);
    // The data, then at least four probe bursts.
    assert!(bursts.len() >= 5, "{bursts:?}");
    assert!(bursts[1..].iter().all(|(_, n)| *n >= 1));
    let gaps: Vec<Duration> = bursts.windows(2).map(|w| w[1].0 - w[0].0).collect();
    for w in gaps.windows(2) {
        assert_eq!(w[1], 2 * w[0], "backoff doubles: {gaps:?}");
    }
    assert!(pair.client().pto_count() >= 4);
    // Once probes get through, the data arrives and the backoff resets.
    cut.set(false);
    let mut got = 0;
    pair.drive_until(Duration::from_secs(20), |p| {
        while p.server().accept_stream(Dir::Uni).is_some() {}
        let mut buf = [0; 4096];
        while let Ok(Some(n)) = p.server().read(id, &mut buf) {
            got += n;
        }
        got == 3000
    });
    pair.drive_for(Duration::from_millis(200));
    assert_eq!(pair.client().pto_count(), 0);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-8.1
//= type=test
//# Specifically, the client MUST send an Initial
//# packet in a UDP datagram that contains at least 1200 bytes if it does not have
//# Handshake keys, and otherwise send a Handshake packet.
#[test]
fn a_client_unheard_during_the_handshake_keeps_probing() {
    let mut pair = Pair::new(502);
    let cut = Rc::new(Cell::new(true));
    let hook_cut = cut.clone();
    // Nothing from the server arrives for a while.
    pair.set_hook(move |d| {
        let lost = hook_cut.get() && d.direction == Direction::ServerToClient;
        if lost { Verdict::Drop } else { Verdict::Deliver }
    });
    let start = pair.now();
    pair.drive_for(Duration::from_secs(4));
    let bursts = client_bursts(&pair, start);
    assert!(bursts.len() >= 3, "the first Initial and probes: {bursts:?}");
    for r in pair.trace().iter().filter(|r| r.direction == Direction::ClientToServer) {
        assert!(r.data.len() >= 1200);
    }
    cut.set(false);
    pair.handshake();
}

/// Packets of `packet_type` in the `quic:packet_sent` events of `log`: for
/// each, whether it carried a CRYPTO frame.
fn sent_with_crypto(log: &[u8], packet_type: &str) -> Vec<bool> {
    let text = String::from_utf8_lossy(log);
    let ty = format!("\"packet_type\":\"{packet_type}\"");
    text.lines()
        .filter(|l| l.contains("\"name\":\"quic:packet_sent\"") && l.contains(&ty))
        .map(|l| l.contains("\"frame_type\":\"crypto\""))
        .collect()
}

fn logged(seed: u64, client: &crate::qlog::VecSink, server: &crate::qlog::VecSink) -> Pair {
    let (c, s) = (client.clone(), server.clone());
    Pair::builder(seed)
        .client_endpoint(move |config| {
            let sink = c.clone();
            config.qlog(std::sync::Arc::new(move |_, _| {
                Some(Box::new(sink.clone()) as Box<dyn crate::qlog::QlogSink>)
            }));
        })
        .server_endpoint(move |config| {
            let sink = s.clone();
            config.qlog(std::sync::Arc::new(move |_, _| {
                Some(Box::new(sink.clone()) as Box<dyn crate::qlog::QlogSink>)
            }));
        })
        .build()
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.4
//= type=test
//# An endpoint SHOULD include new data in packets that are sent on PTO expiration.
//# Previously sent data MAY be sent if no new data can be sent.
//
// Both packets a PTO sends in a handshake space repeat the CRYPTO data
// still unacknowledged: whichever arrives is useful (a server that sees
// a PING-only Initial first learns nothing, and aioquic's closes on it).
#[test]
fn handshake_probes_all_carry_the_unacknowledged_crypto_data() {
    let (client_log, server_log) = (crate::qlog::VecSink::new(), crate::qlog::VecSink::new());
    let mut pair = logged(503, &client_log, &server_log);
    // The client's first flight and two PTOs' probes are lost.
    let cut = Rc::new(Cell::new(true));
    let hook_cut = cut.clone();
    pair.set_hook(move |d| {
        let lost = hook_cut.get() && d.direction == Direction::ClientToServer;
        if lost { Verdict::Drop } else { Verdict::Deliver }
    });
    pair.drive_for(Duration::from_millis(3500));
    let client_initials = sent_with_crypto(&client_log.contents(), "initial");
    assert!(client_initials.len() >= 5, "the first Initial and two PTOs: {client_initials:?}");
    assert!(client_initials.iter().all(|&c| c), "every client Initial: {client_initials:?}");
    // Then the server's flight is lost twice over; its probes repeat it.
    cut.set(false);
    let server_cut = Rc::new(Cell::new(true));
    let hook_cut = server_cut.clone();
    pair.set_hook(move |d| {
        let lost = hook_cut.get() && d.direction == Direction::ServerToClient;
        if lost { Verdict::Drop } else { Verdict::Deliver }
    });
    // The client's next probe leaves at 7 s; the server's answer and
    // its probes a second and three seconds later are lost.
    pair.drive_for(Duration::from_secs(7));
    let server_handshakes = sent_with_crypto(&server_log.contents(), "handshake");
    assert!(server_handshakes.len() >= 3, "{server_handshakes:?}");
    assert!(server_handshakes.iter().all(|&c| c), "every server Handshake: {server_handshakes:?}");
    server_cut.set(false);
    pair.handshake();
}
