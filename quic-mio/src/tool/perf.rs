//! `quic perf`: the demo's loopback transfer, measured: with GSO/GRO on and
//! with both off, the rate, each side's CPU time per GiB (each thread's own
//! CPU clock), and how many datagrams each send and receive carried.
//!
//! The measured path hashes nothing: the client checks the byte count and a
//! cheap running [`Checksum`] (not SHA-256) of what it received. It runs
//! over hq-interop, so that it measures the transport and driver alone.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::driver::DriverStats;
use quic_proto::Version;
use quic_proto::endpoint::EndpointConfig;

use crate::tool::client::{self, Options, Sink, Summary};
use crate::tool::scratch::ScratchDir;
use crate::tool::server::Server;
use crate::tool::tls::{self, Identity, Inputs, Trust};
use crate::tool::{Failure, HQ_INTEROP, PerfArgs};

/// A Fletcher-style checksum over little-endian 64-bit words with wrapping
/// sums: cheap (two additions per 8 bytes) and sensitive to the order of
/// the words, unlike a plain sum. Not a cryptographic hash. A trailing
/// partial word is zero-padded, so the length must be checked separately.
#[derive(Clone, Debug, Default)]
pub(crate) struct Checksum {
    a: u64,
    b: u64,
    partial: [u8; 8],
    filled: usize,
}

impl Checksum {
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        if self.filled > 0 {
            let take = (8 - self.filled).min(data.len());
            self.partial[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.partial));
            self.filled = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(w);
            self.word(u64::from_le_bytes(bytes));
        }
        let rest = words.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    fn word(&mut self, w: u64) {
        self.a = self.a.wrapping_add(w);
        self.b = self.b.wrapping_add(self.a);
    }

    pub(crate) fn finish(mut self) -> u64 {
        if self.filled > 0 {
            self.partial[self.filled..].fill(0);
            self.word(u64::from_le_bytes(self.partial));
        }
        self.b ^ self.a.rotate_left(32)
    }
}

/// The calling thread's CPU time (user and system) so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a live timespec the call only writes to.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

pub(crate) fn run(args: &PerfArgs) -> Result<(), Failure> {
    if args.size == 0 {
        return Err(Failure::other("--size must be at least 1 MiB"));
    }
    let size = args.size << 20;
    let dir = ScratchDir::new("quic-perf")?;
    dir.ensure_room(size)?;
    run_in(args, size, dir.path())
}

/// One measured transfer.
struct Run {
    summary: Summary,
    server: DriverStats,
    server_cpu: Duration,
    client_cpu: Duration,
}

fn run_in(args: &PerfArgs, size: u64, dir: &Path) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::other(format!("perf files in {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    // The demo's file (a ChaCha20 stream), checksummed as it is written.
    let mut expected = Checksum::default();
    crate::tool::demo::write_generated(&dir.join("perf.bin"), size, |chunk| expected.update(chunk))
        .map_err(io)?;
    let expected = expected.finish();

    println!(
        "quic perf: {} MiB over loopback per run; content checked by byte count and a \
         Fletcher-64 checksum (no SHA-256)",
        size >> 20
    );
    let modes: &[bool] = if args.no_gso { &[false] } else { &[true, false] };
    for &offload in modes {
        let run = measure(dir, offload)?;
        let s = &run.summary;
        if s.bytes != size || s.checksums != [expected] {
            return Err(Failure::other(format!(
                "perf: the download does not match the file ({} of {size} bytes, checksum {})",
                s.bytes,
                if s.checksums == [expected] { "matches" } else { "differs" },
            )));
        }
        let gib = s.bytes as f64 / f64::from(1u32 << 30);
        let per = |n: u64, calls: u64| n as f64 / calls.max(1) as f64;
        let c = &s.driver;
        println!(
            "GSO/GRO {:<4} {:.1} MB/s ({} bytes in {:.3} s); CPU s/GiB: server {:.3}, \
             client {:.3}; datagrams per send/receive: server {:.1}/{:.1}, client {:.1}/{:.1}",
            if offload { "on:" } else { "off:" },
            s.rate(),
            s.bytes,
            s.transfer.as_secs_f64(),
            run.server_cpu.as_secs_f64() / gib,
            run.client_cpu.as_secs_f64() / gib,
            per(run.server.datagrams_sent, run.server.send_calls),
            per(run.server.datagrams_received, run.server.receive_calls),
            per(c.datagrams_sent, c.send_calls),
            per(c.datagrams_received, c.receive_calls),
        );
    }
    Ok(())
}

/// One transfer of `perf.bin` from a server thread to a client thread;
/// each thread measures its own CPU time from its start to its end.
fn measure(dir: &Path, offload: bool) -> Result<Run, Failure> {
    let identity = Identity::self_signed()?;
    let chain = identity.chain.clone();
    let mut server_inputs = Inputs::live(false);
    let server_tls = tls::server(identity, &[HQ_INTEROP.to_owned()], None, &mut server_inputs)?;
    let server = Server::bind(
        ([127, 0, 0, 1], 0).into(),
        dir,
        server_tls,
        EndpointConfig::default(),
        false,
        None,
        &server_inputs,
    )?;
    if !offload {
        server.disable_offload()?;
    }
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let server_stop = stop.clone();
    let server = std::thread::spawn(move || {
        let start = thread_cpu_time();
        let stats = server.serve(&server_stop);
        (stats, thread_cpu_time().saturating_sub(start))
    });
    let client_inputs = Inputs::live(false);
    let client_tls =
        tls::client(Trust::Certs(chain), &[HQ_INTEROP.to_owned()], false, None, &client_inputs)?;
    let client = std::thread::spawn(move || {
        let start = thread_cpu_time();
        let summary = client::download(Options {
            server: addr,
            server_name: "localhost".to_owned(),
            authority: format!("localhost:{}", addr.port()),
            paths: vec!["/perf.bin".to_owned()],
            tls: client_tls,
            version: Version::V1,
            key_update: false,
            handshake_timeout: Duration::from_secs(10),
            sink: Sink::Checksum,
            trace: None,
            endpoint: EndpointConfig::default(),
            offload,
            inputs: client_inputs,
        });
        (summary, thread_cpu_time().saturating_sub(start))
    });
    let client = client.join();
    stop.store(true, Ordering::Relaxed);
    let server = server.join().map_err(|_| Failure::other("the server thread panicked"))?;
    let (summary, client_cpu) = client.map_err(|_| Failure::other("the client thread panicked"))?;
    let (server, server_cpu) = server;
    Ok(Run { summary: summary?, server: server?, server_cpu, client_cpu })
}

#[cfg(test)]
mod tests {
    use super::Checksum;

    #[test]
    fn checksum_does_not_depend_on_chunking_and_sees_order() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut whole = Checksum::default();
        whole.update(&data);
        let whole = whole.finish();
        for split in [1, 3, 7, 8, 9, 500, 999] {
            let mut parts = Checksum::default();
            for piece in data.chunks(split) {
                parts.update(piece);
            }
            assert_eq!(parts.finish(), whole, "chunks of {split}");
        }
        let mut swapped = data.clone();
        swapped[..16].rotate_left(8);
        let mut other = Checksum::default();
        other.update(&swapped);
        assert_ne!(other.finish(), whole, "the order of words counts");
    }
}
