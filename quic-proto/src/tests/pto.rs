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
