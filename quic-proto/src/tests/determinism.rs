//! Determinism: one seed, one run, byte for byte on the wire, including
//! under loss, reordering and ECN marks (docs/architecture.md: time and
//! randomness are inputs, so a recorded run replays exactly).

use core::time::Duration;

use crate::stream_id::{Dir, Side};
use crate::testing::SeededGroup;
use crate::testing::pair::{
    Pair, PairBuilder, StreamTransfer, TraceRecord, payload, seed_from_env,
};

/// A busy run: a HelloRetryRequest, lossy reordering links, several
/// streams each way and a key update. Returns every datagram sent.
fn busy_run(seed: u64, configure: impl Fn(&mut PairBuilder)) -> Vec<TraceRecord> {
    let mut builder = Pair::builder(seed);
    builder
        .client_groups(&[SeededGroup::X25519, SeededGroup::Secp256r1])
        .server_groups(&[SeededGroup::Secp256r1])
        .links(|l| {
            l.loss(0.05).reorder(0.1, Duration::from_millis(15)).ce_marking(0.02);
        });
    configure(&mut builder);
    let mut pair = builder.build();
    pair.handshake();
    let specs: Vec<StreamTransfer> = (0..6)
        .map(|i| StreamTransfer {
            opener: if i % 2 == 0 { Side::Client } else { Side::Server },
            dir: if i % 3 == 0 { Dir::Uni } else { Dir::Bi },
            request: payload(20_000 + 7_000 * i, i as u64),
            response: if i % 3 == 0 { Default::default() } else { payload(9_000, 100 + i as u64) },
        })
        .collect();
    let results = pair.transfer_streams(&specs);
    for (spec, r) in specs.iter().zip(&results) {
        assert_eq!(r.request_received, spec.request);
        assert_eq!(r.response_received, spec.response);
    }
    let now = pair.now();
    pair.client().force_key_update(now);
    let more = payload(50_000, 9);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &more), more);
    let now = pair.now();
    pair.client().close(now, crate::VarInt::from_u32(0), b"done");
    pair.drive_until_drained(Duration::from_secs(60));
    pair.take_trace()
}

/// Fails at the first datagram where two traces differ, without printing
/// megabytes of trace.
fn assert_same(seed: u64, a: &[TraceRecord], b: &[TraceRecord]) {
    if let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) {
        panic!(
            "seed {seed}: runs diverge at datagram {i} of {}: sent at {:?} vs {:?}, {} vs {} bytes",
            a.len(),
            a[i].time,
            b[i].time,
            a[i].data.len(),
            b[i].data.len()
        );
    }
    assert_eq!(a.len(), b.len(), "seed {seed}: one run sent more");
}

#[test]
fn one_seed_replays_byte_for_byte() {
    let seed = seed_from_env(601);
    let a = busy_run(seed, |_| {});
    let b = busy_run(seed, |_| {});
    assert!(a.len() > 100, "{} datagrams", a.len());
    assert!(a.iter().any(|r| matches!(r.fate, crate::testing::pair::Fate::Dropped(_))));
    assert_same(seed, &a, &b);
}

#[test]
fn another_seed_changes_the_run() {
    let a = busy_run(602, |_| {});
    let b = busy_run(603, |_| {});
    assert!(a != b, "seeds 602 and 603 gave the same run");
}

#[test]
fn a_slow_bottleneck_replays_too() {
    let run = || {
        busy_run(604, |b| {
            b.links(|l| {
                l.bandwidth(Some(1_000_000)).queue_limit(20_000);
            });
        })
    };
    assert_same(604, &run(), &run());
}

/// Regression: MAX_STREAM_DATA and STOP_SENDING frames were written in
/// hash-set order, which differs between runs, so runs with several
/// window updates at once did not replay.
#[test]
fn several_window_updates_in_one_packet_replay() {
    // Small stream windows put several MAX_STREAM_DATA frames in one packet.
    let run = || {
        busy_run(605, |b| {
            let mut t = crate::connection::TransportConfig::default();
            t.initial_max_stream_data(crate::VarInt::from_u32(2048));
            b.client_transport(t.clone()).server_transport(t);
        })
    };
    assert_same(605, &run(), &run());
}
