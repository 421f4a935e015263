//! What qlog costs: the same seeded transfer between two quic-proto
//! endpoints in virtual time (pure computation, no sockets), with qlog off
//! and with qlog on for both sides, records going through a `WriterSink`
//! over a `BufWriter` as `quic --qlog-dir` writes them, into a writer that
//! counts bytes instead of a file (so the figure is the stack's cost, not
//! the disk's). Prints times, throughput and the ratio; never asserted.
//!
//! Run: `cargo bench -p conformance --bench qlog`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use quic_proto::qlog::{QlogSink, SinkFactory, WriterSink};
use quic_proto::testing::pair::{Pair, payload};
use quic_proto::{Dir, Side};

const SIZE: usize = 20 * 1024 * 1024;

/// A writer that only counts what it is given.
struct Counter(Arc<AtomicUsize>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the transfer; returns wall time and qlog bytes written.
fn run(qlog: bool) -> (Duration, usize) {
    let written = Arc::new(AtomicUsize::new(0));
    let mut builder = Pair::builder(5);
    if qlog {
        let w = written.clone();
        let factory: SinkFactory = Arc::new(move |_, _| {
            let writer = BufWriter::new(Counter(w.clone()));
            Some(Box::new(WriterSink::new(writer)) as Box<dyn QlogSink>)
        });
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
    drop(pair);
    (elapsed, written.load(Ordering::Relaxed))
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
