//! What qlog costs: the same seeded transfer between two quic-proto
//! endpoints in virtual time (pure computation, no sockets), with qlog off
//! and with qlog on for both sides (records kept in memory). Prints times,
//! throughput and the ratio; never asserted.
//!
//! Run: `cargo bench -p conformance --bench qlog`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quic_proto::qlog::{QlogSink, SinkFactory, VecSink};
use quic_proto::testing::pair::{Pair, payload};
use quic_proto::{Dir, Side};

const SIZE: usize = 20 * 1024 * 1024;

/// Runs the transfer; returns wall time and qlog bytes written.
fn run(qlog: bool) -> (Duration, usize) {
    let sink = VecSink::new();
    let mut builder = Pair::builder(5);
    if qlog {
        let s = sink.clone();
        let factory: SinkFactory =
            Arc::new(move |_, _| Some(Box::new(s.clone()) as Box<dyn QlogSink>));
        let f2 = factory.clone();
        builder.client_endpoint(move |c| {
            c.qlog(factory.clone());
        });
        builder.server_endpoint(move |c| {
            c.qlog(f2.clone());
        });
    }
    let mut pair = builder.build();
    let data = payload(SIZE, 1);
    let start = Instant::now();
    pair.handshake();
    let got = pair.transfer(Side::Client, Dir::Uni, &data);
    let elapsed = start.elapsed();
    assert_eq!(got.len(), SIZE, "transfer complete");
    (elapsed, sink.contents().len())
}

fn main() {
    println!("qlog cost: {} MiB client->server in virtual time, best of 3", SIZE >> 20);
    let best = |qlog| (0..3).map(|_| run(qlog)).min_by_key(|r| r.0).expect("three runs");
    let (off, _) = best(false);
    let (on, bytes) = best(true);
    let rate = |d: Duration| SIZE as f64 / d.as_secs_f64() / 1e6;
    println!("qlog off  {:>8.3} s  {:>8.1} MB/s", off.as_secs_f64(), rate(off));
    println!(
        "qlog on   {:>8.3} s  {:>8.1} MB/s  ({:.1} MB of qlog)",
        on.as_secs_f64(),
        rate(on),
        bytes as f64 / 1e6
    );
    println!("on / off  {:>8.2}x time", on.as_secs_f64() / off.as_secs_f64());
}
