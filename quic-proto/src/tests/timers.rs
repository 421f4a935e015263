//! The driving contract's promise that a driver never spins: once
//! `handle_timeout(now)` has run and transmits are drained,
//! `poll_timeout()` is later than `now` (DESIGN.md, "Hostile input").
//!
//! `Pair::step` and `Pair::wake_late` assert it after every timer run, so
//! every Pair test checks it; these property tests go looking for the
//! sequences that would break it: random application commands, hostile
//! frames, garbage datagrams, lossy and reordering links, and a driver
//! that wakes late, for a connection pair and for a server endpoint fed
//! datagrams from many addresses.
//!
//! Seeds: the proptest RNG seed is `QUIC_TEST_SEED` when set (else
//! fixed); each case carries the pair's seed, which a failure prints.

use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::encode;
use crate::connection::{DatagramMeta, TransportConfig};
use crate::endpoint::{DatagramEvent, Endpoint, EndpointConfig};
use crate::frame::{Frame, MaxData, PathChallenge, ResetStream, StopSending};
use crate::random::{RandomSource, SeededRandom};
use crate::stream_id::{Dir, Side, StreamId};
use crate::testing::pair::{Direction, Pair, seed_from_env};
use crate::time::Instant;
use crate::varint::VarInt;

#[derive(Clone, Debug)]
enum Op {
    /// A side opens a stream and writes this many bytes (and maybe finishes).
    Write(bool, Dir, usize, bool),
    /// A side queues a datagram of this size.
    Datagram(bool, usize),
    /// Random bytes arrive at a side, as if from its peer.
    Garbage(bool, usize),
    /// A side receives a hostile frame from its authenticated peer.
    Hostile(bool, u8, u64),
    /// The links start losing and reordering this percentage of datagrams.
    Weather(u8),
    /// The driver runs this many steps.
    Steps(u8),
    /// The driver wakes this many milliseconds late.
    Late(u16),
    /// A side closes the connection.
    Close(bool),
    /// A side starts a key update.
    KeyUpdate(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), any::<bool>(), 0usize..60_000, any::<bool>())
            .prop_map(|(c, bi, n, fin)| Op::Write(c, if bi { Dir::Bi } else { Dir::Uni }, n, fin)),
        (any::<bool>(), 0usize..1100).prop_map(|(c, n)| Op::Datagram(c, n)),
        (any::<bool>(), 1usize..1400).prop_map(|(c, n)| Op::Garbage(c, n)),
        (any::<bool>(), 0u8..5, any::<u64>()).prop_map(|(c, k, v)| Op::Hostile(c, k, v)),
        (0u8..40).prop_map(Op::Weather),
        (1u8..30).prop_map(Op::Steps),
        (0u16..5_000).prop_map(Op::Late),
        any::<bool>().prop_map(Op::Close),
        any::<bool>().prop_map(Op::KeyUpdate),
    ]
}

fn side(client: bool) -> Side {
    if client { Side::Client } else { Side::Server }
}

fn hostile_frame(kind: u8, v: u64) -> Vec<u8> {
    let initiator = if v & 1 == 0 { Side::Client } else { Side::Server };
    let dir = if v & 2 == 0 { Dir::Bi } else { Dir::Uni };
    let id = StreamId::new(initiator, dir, (v >> 2) % 16).expect("small index");
    let varint = VarInt::from_u64(v % (1 << 40)).expect("in range");
    let frame = match kind {
        0 => Frame::Ping,
        1 => Frame::PathChallenge(PathChallenge { data: v.to_be_bytes() }),
        2 => Frame::ResetStream(ResetStream { id, error_code: varint, final_size: varint }),
        3 => Frame::StopSending(StopSending { id, error_code: varint }),
        _ => Frame::MaxData(MaxData { maximum: varint }),
    };
    encode(&[frame])
}

fn run_pair(seed: u64, ops: &[Op]) {
    let mut transport = TransportConfig::default();
    transport.datagram_receive_buffer(Some(64 * 1024));
    let mut pair =
        Pair::builder(seed).client_transport(transport.clone()).server_transport(transport).build();
    pair.handshake();
    let mut rng = SeededRandom::from_u64(seed);
    for op in ops {
        let open = |p: &mut Pair, s| p.connection(s).is_some_and(|c| !c.is_closed());
        match *op {
            Op::Write(c, dir, n, fin) if open(&mut pair, side(c)) => {
                let conn = pair.conn(side(c));
                if let Some(id) = conn.open_stream(dir) {
                    let _ = conn.write(id, &vec![0x5a; n]);
                    if fin {
                        let _ = conn.finish(id);
                    }
                }
            }
            Op::Datagram(c, n) if open(&mut pair, side(c)) => {
                let _ = pair.conn(side(c)).send_datagram(Bytes::from(vec![7; n]));
            }
            Op::Garbage(c, n) => {
                let mut d = vec![0u8; n];
                rng.fill(&mut d);
                pair.inject(Direction::from_sender(!side(c)), d);
            }
            Op::Hostile(c, kind, v) if open(&mut pair, side(c)) && open(&mut pair, !side(c)) => {
                pair.inject_frames(!side(c), &hostile_frame(kind, v));
            }
            Op::Weather(pct) => {
                let f = f64::from(pct) / 100.0;
                pair.links(|l| {
                    l.loss(f).reorder(f, Duration::from_millis(20));
                });
            }
            Op::Steps(n) => {
                for _ in 0..n {
                    if !pair.step() {
                        break;
                    }
                }
            }
            Op::Late(ms) => pair.wake_late(Duration::from_millis(u64::from(ms))),
            Op::Close(c) if open(&mut pair, side(c)) => {
                let now = pair.now();
                pair.conn(side(c)).close(now, VarInt::from_u32(0), b"");
            }
            Op::KeyUpdate(c) if open(&mut pair, side(c)) => {
                let now = pair.now();
                pair.conn(side(c)).force_key_update(now);
            }
            _ => {}
        }
    }
    // Whatever happened, time runs out cleanly: both sides end up drained
    // or idle, with every timer run leaving a later deadline behind.
    pair.links(|l| {
        l.loss(0.0).reorder(0.0, Duration::ZERO);
    });
    pair.drive_for(Duration::from_secs(120));
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed_from_env(0x71_3e25)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Datagrams a server endpoint sees from the internet: forged and genuine
/// Initials, short-header garbage, random bytes, from a few addresses.
#[derive(Clone, Debug)]
enum Arrival {
    ForgedInitial(u8, u64),
    GenuineInitial(u8),
    ShortGarbage(u8, u64),
    Random(u8, usize),
    Late(u16),
}

fn arrival() -> impl Strategy<Value = Arrival> {
    prop_oneof![
        (any::<u8>(), any::<u64>()).prop_map(|(a, s)| Arrival::ForgedInitial(a, s)),
        any::<u8>().prop_map(Arrival::GenuineInitial),
        (any::<u8>(), any::<u64>()).prop_map(|(a, s)| Arrival::ShortGarbage(a, s)),
        (any::<u8>(), 1usize..1500).prop_map(|(a, n)| Arrival::Random(a, n)),
        (0u16..20_000).prop_map(Arrival::Late),
    ]
}

fn from(a: u8) -> DatagramMeta {
    let remote: SocketAddr = format!("10.9.{}.{}:443", a / 16, a % 16 + 1).parse().expect("addr");
    DatagramMeta { remote, local_ip: None, ecn: None }
}

/// A genuine client Initial, from a client endpoint of our own.
fn genuine_initial(seed: u64, client: &crate::connection::ClientConfig) -> BytesMut {
    let mut ep =
        Endpoint::new(EndpointConfig::default(), None, Box::new(SeededRandom::from_u64(seed)));
    let now = Instant::from_millis(1_000);
    let server: SocketAddr = "10.0.0.1:443".parse().expect("addr");
    ep.connect(now, client, crate::testing::TestPki::SERVER_NAME, server).expect("connects");
    let mut buf = Vec::new();
    let t = ep.poll_transmit(now, &mut buf).expect("an Initial");
    BytesMut::from(&buf[..t.size])
}

fn run_endpoint(seed: u64, arrivals: &[Arrival]) {
    let pki = crate::testing::TestPki::new(seed);
    let server = crate::connection::ServerConfig {
        tls: Arc::new(crate::testing::server_config(&pki, &[b"t"], seed)),
        transport: Arc::new(TransportConfig::default()),
    };
    let client = crate::connection::ClientConfig {
        tls: Arc::new(crate::testing::client_config(&pki, &[b"t"], seed)),
        transport: Arc::new(TransportConfig::default()),
        version: crate::version::Version::V1,
    };
    let mut config = EndpointConfig::default();
    config.max_connections(6).max_incoming(4).retry_under_load(Some(3));
    let mut ep = Endpoint::new(config, Some(server), Box::new(SeededRandom::from_u64(seed)));
    let mut now = Instant::from_millis(1_000);
    let mut buf = Vec::new();
    for (i, a) in arrivals.iter().enumerate() {
        let mut rng = SeededRandom::from_u64(seed ^ i as u64);
        let event = match *a {
            Arrival::ForgedInitial(addr, s) => {
                let mut d = vec![0u8; 1200];
                SeededRandom::from_u64(s).fill(&mut d);
                d[0] = 0xc3;
                d[1..5].copy_from_slice(&1u32.to_be_bytes());
                d[5] = 8;
                ep.handle_datagram(now, from(addr), BytesMut::from(&d[..]))
            }
            Arrival::GenuineInitial(addr) => {
                let d = genuine_initial(seed.wrapping_add(u64::from(addr)), &client);
                ep.handle_datagram(now, from(addr), d)
            }
            Arrival::ShortGarbage(addr, s) => {
                let mut d = vec![0u8; 60];
                SeededRandom::from_u64(s).fill(&mut d);
                d[0] = 0x40 | (d[0] & 0x3f);
                ep.handle_datagram(now, from(addr), BytesMut::from(&d[..]))
            }
            Arrival::Random(addr, n) => {
                let mut d = vec![0u8; n];
                rng.fill(&mut d);
                ep.handle_datagram(now, from(addr), BytesMut::from(&d[..]))
            }
            Arrival::Late(ms) => {
                now += Duration::from_millis(u64::from(ms));
                ep.handle_timeout(now);
                None
            }
        };
        if let Some(DatagramEvent::Incoming(incoming)) = event {
            let _ = ep.accept(now, incoming);
        }
        while ep.poll_transmit(now, &mut buf).is_some() {}
        while ep.poll_event().is_some() {}
        if matches!(a, Arrival::Late(_)) {
            let deadline = ep.poll_timeout();
            assert!(
                deadline.is_none_or(|t| t > now),
                "seed {seed}: endpoint deadline {deadline:?} not after handle_timeout({now:?})"
            );
        }
        assert!(ep.connection_count() <= 6, "seed {seed}: connection cap exceeded");
        assert!(ep.incoming_count() <= 4, "seed {seed}: incoming cap exceeded");
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn a_pair_never_leaves_a_deadline_at_or_before_now(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run_pair(seed, &ops);
    }

    #[test]
    fn a_server_endpoint_never_leaves_a_deadline_at_or_before_now(
        seed in any::<u64>(),
        arrivals in proptest::collection::vec(arrival(), 1..60),
    ) {
        run_endpoint(seed, &arrivals);
    }
}
