//! Loss recovery and congestion control over lossy links: the congestion
//! window bounds what is in flight, persistent congestion collapses it,
//! and data survives heavy loss and reordering (RFC 9002 §6, §7).

use std::cell::RefCell;
use std::rc::Rc;

use core::time::Duration;

use crate::congestion::new_reno::minimum_window;
use crate::stream_id::{Dir, Side};
use crate::testing::pair::{Direction, Pair, Verdict, payload};

//= https://www.rfc-editor.org/rfc/rfc9002#section-7
//= type=test
//# An endpoint MUST NOT send a packet if it would cause bytes_in_flight (see
//# {{vars-of-interest}}) to be larger than the congestion window, unless the packet
//# is sent on a PTO timer expiration (see {{pto}}) or when entering recovery
//# (see {{recovery-period}}).
///
/// Regression: data was sent whenever bytes in flight were below the
/// window, so each flight overshot it by up to one datagram.
#[test]
fn no_packet_overshoots_the_congestion_window_except_probes() {
    for seed in [401, 402] {
        // Loss, and a bottleneck queue that tail-drops.
        let mut pair = Pair::new(seed);
        pair.links(|l| {
            l.loss(0.05).bandwidth(Some(2_000_000)).queue_limit(30_000);
        });
        // Per side: bytes in flight at the last observation, and whether
        // probes were pending then.
        let last = Rc::new(RefCell::new([(0u64, false); 2]));
        let violations = Rc::new(RefCell::new(Vec::new()));
        let (obs_last, obs_violations) = (last.clone(), violations.clone());
        pair.set_observer(move |side, conn| {
            let i = side as usize;
            let (before, probing) = obs_last.borrow()[i];
            let in_flight = conn.bytes_in_flight();
            let cwnd = conn.congestion_window();
            if in_flight > before && in_flight > cwnd && !probing {
                obs_violations.borrow_mut().push((side, before, in_flight, cwnd));
            }
            obs_last.borrow_mut()[i] = (in_flight, conn.probes_pending());
        });
        pair.handshake();
        let data = payload(1_500_000, seed);
        assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
        assert!(pair.client().stats().packets_lost > 0, "seed {seed}: the test saw losses");
        let v = violations.borrow();
        assert!(v.is_empty(), "seed {seed}: {} sends beyond cwnd, first {:?}", v.len(), v[0]);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
//= type=test
//# When persistent congestion is declared, the sender's congestion window MUST be
//# reduced to the minimum congestion window (kMinimumWindow), similar to a TCP
//# sender's response on an RTO {{RFC5681}}.
#[test]
fn a_long_blackout_collapses_the_window_to_the_minimum() {
    let mut pair = Pair::new(403);
    pair.handshake();
    // Grow the window first.
    let warmup = payload(300_000, 1);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &warmup), warmup);
    let grown = pair.client().congestion_window();
    assert!(grown > minimum_window(1200) * 4, "window {grown}");

    let min_seen = Rc::new(RefCell::new(u64::MAX));
    let observed = min_seen.clone();
    pair.set_observer(move |side, conn| {
        if side == Side::Client {
            let mut m = observed.borrow_mut();
            *m = (*m).min(conn.congestion_window());
        }
    });
    // Every client datagram is lost for two seconds: many PTOs long.
    let until = pair.now() + Duration::from_secs(2);
    pair.set_hook(move |d| {
        if d.direction == Direction::ClientToServer && d.sent_at < until {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    let data = payload(200_000, 2);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
    // The ACK that declares persistent congestion also acknowledges the
    // probes that got through; RFC 9002 A.7 processes them after the losses
    // (OnPacketsLost, then OnPacketsAcked), in slow start from
    // kMinimumWindow. Probes carry data (RFC 9002 §6.2.4), up to two
    // datagrams of it: at most that much above the minimum when first
    // observed, far below the grown window.
    let min = *min_seen.borrow();
    assert!(min >= minimum_window(1200) && min <= minimum_window(1200) + 2 * 1200, "min {min}");
    assert!(min * 2 < grown, "min {min}, grown {grown}");
}

#[test]
fn heavy_loss_and_reordering_in_both_directions_lose_no_byte() {
    let mut pair = Pair::new(404);
    pair.links(|l| {
        l.loss(0.25).reorder(0.25, Duration::from_millis(40));
    });
    pair.handshake();
    let up = payload(150_000, 1);
    let down = payload(150_000, 2);
    assert_eq!(pair.transfer(Side::Client, Dir::Bi, &up), up);
    assert_eq!(pair.transfer(Side::Server, Dir::Uni, &down), down);
}
