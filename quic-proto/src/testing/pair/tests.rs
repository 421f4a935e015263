//! The harness itself: the link model, the hook, seeds and transfers.

use core::time::Duration;

use bytes::Bytes;

use super::link::LinkState;
use super::*;
use crate::random::SeededRandom;
use crate::stream_id::Dir;

#[test]
fn seeds_parse_in_decimal_and_hex() {
    assert_eq!(parse_seed("42"), Some(42));
    assert_eq!(parse_seed(" 0x2a "), Some(42));
    assert_eq!(parse_seed("forty-two"), None);
}

#[test]
fn mtu_drops_large_datagrams_and_counts_them() {
    let mut pair = Pair::new(1);
    // Client Initials are padded to 1200 bytes: none fit.
    pair.link(Direction::ClientToServer).mtu(1199);
    pair.drive_for(Duration::from_secs(2));
    let stats = pair.link_stats(Direction::ClientToServer);
    assert!(stats.sent > 1);
    assert_eq!(stats.dropped_too_big, stats.sent);
    assert_eq!(stats.delivered, 0);
    assert!(!pair.has_server());
    assert!(pair.trace().iter().all(|r| r.fate == Fate::Dropped(DropReason::TooBig)));
}

#[test]
fn bandwidth_serialises_and_a_full_queue_tail_drops() {
    let mut link = LinkState::new(Link::default(), SeededRandom::from_u64(1), Instant::ZERO);
    link.config.bandwidth(Some(1_000_000)).queue_limit(2_500).latency(Duration::ZERO);
    let mut ecn = None;
    let t0 = Instant::from_millis(1);
    // 1000 bytes at 1 MB/s: 1 ms each, back to back.
    assert_eq!(link.carry(t0, 1000, Duration::ZERO, &mut ecn), Ok(Instant::from_millis(2)));
    assert_eq!(link.carry(t0, 1000, Duration::ZERO, &mut ecn), Ok(Instant::from_millis(3)));
    assert_eq!(link.carry(t0, 1000, Duration::ZERO, &mut ecn), Err(DropReason::QueueFull));
    // Once the first has left, there is room again.
    let t = Instant::from_millis(2);
    assert_eq!(link.carry(t, 1000, Duration::ZERO, &mut ecn), Ok(Instant::from_millis(4)));
}

#[test]
fn hook_sees_every_datagram_and_can_drop_delay_and_rewrite() {
    let mut pair = Pair::new(2);
    pair.set_hook(|d| match (d.direction, d.index) {
        (Direction::ClientToServer, 0) => Verdict::Drop,
        (Direction::ServerToClient, 0) => Verdict::Delay(Duration::from_millis(5)),
        (Direction::ServerToClient, 1) => {
            // A rewritten byte fails authentication: as good as lost.
            let last = d.data.len() - 1;
            d.data[last] ^= 1;
            Verdict::Deliver
        }
        _ => Verdict::Deliver,
    });
    pair.handshake();
    let up = pair.link_stats(Direction::ClientToServer);
    assert_eq!(up.dropped_by_hook, 1);
    let first_down =
        pair.trace().iter().find(|r| r.direction == Direction::ServerToClient).unwrap();
    let Fate::Delivered { at, .. } = first_down.fate else { panic!("delivered") };
    assert_eq!(at - first_down.time, Duration::from_millis(15));
}

#[test]
fn ce_marks_reach_the_receiver_and_the_transfer_still_completes() {
    let mut pair = Pair::new(3);
    pair.link(Direction::ClientToServer).ce_marking(0.2);
    pair.handshake();
    let data = payload(100_000, 3);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
    let marked = pair.link_stats(Direction::ClientToServer).ce_marked;
    assert!(marked > 0);
    let traced = pair
        .trace()
        .iter()
        .filter(|r| matches!(r.fate, Fate::Delivered { ecn: Some(EcnCodepoint::Ce), .. }))
        .count() as u64;
    assert_eq!(traced, marked);
}

#[test]
fn reordering_lets_later_datagrams_overtake() {
    let mut pair = Pair::new(4);
    pair.links(|l| {
        l.reorder(0.3, Duration::from_millis(30));
    });
    pair.handshake();
    let data = payload(200_000, 4);
    assert_eq!(pair.transfer(Side::Client, Dir::Bi, &data), data);
    let arrivals: Vec<Instant> = pair
        .trace()
        .iter()
        .filter(|r| r.direction == Direction::ClientToServer)
        .filter_map(|r| match r.fate {
            Fate::Delivered { at, .. } => Some(at),
            Fate::Dropped(_) => None,
        })
        .collect();
    assert!(arrivals.windows(2).any(|w| w[1] < w[0]), "some datagram was overtaken");
    assert!(pair.link_stats(Direction::ClientToServer).reordered > 0);
}

#[test]
fn streams_flow_both_ways_at_once() {
    let mut pair = Pair::new(5);
    pair.handshake();
    let specs = [
        StreamTransfer {
            opener: Side::Client,
            dir: Dir::Bi,
            request: payload(30_000, 1),
            response: payload(50_000, 2),
        },
        StreamTransfer::one_way(Side::Server, Dir::Uni, payload(20_000, 3)),
        StreamTransfer::one_way(Side::Client, Dir::Uni, Bytes::new()),
    ];
    let results = pair.transfer_streams(&specs);
    for (spec, result) in specs.iter().zip(&results) {
        assert_eq!(result.request_received, spec.request);
        assert_eq!(result.response_received, spec.response);
    }
}
