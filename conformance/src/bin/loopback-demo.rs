//! The README's main job: a QUIC server and client on loopback, over real
//! UDP, transferring a generated file that the client verifies by SHA-256,
//! with figures printed.
//!
//! Usage: `loopback-demo [--size MIB] [--seed N]` (defaults: 100 MiB, seed 1).
//!
//! Both endpoints are quic-proto `Connection`s driven by the conformance
//! crate's blocking UDP driver; the certificate is generated for the run.

use std::process::ExitCode;

use conformance::loopback::download;
use conformance::wire_transfer::hex;

fn main() -> ExitCode {
    let (size_mib, seed) = match conformance::args::size_and_seed("loopback-demo") {
        Ok(v) => v,
        Err(e) => {
            eprintln!("loopback-demo: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "loopback-demo: a {size_mib} MiB download over QUIC on 127.0.0.1 (quic-proto client and server, seed {seed})"
    );
    let r = match download(size_mib * 1024 * 1024, seed) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loopback-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs = r.transfer.as_secs_f64();
    let s = r.client_stats;
    println!("  handshake      {:>10.2} ms", r.handshake.as_secs_f64() * 1e3);
    println!("  transferred    {:>10} bytes in {secs:.3} s", r.received);
    println!(
        "  throughput     {:>10.1} MB/s ({:.2} Gbit/s)",
        r.received as f64 / secs / 1e6,
        r.received as f64 * 8.0 / secs / 1e9
    );
    println!("  smoothed RTT   {:>10.3} ms", s.smoothed_rtt.as_secs_f64() * 1e3);
    println!(
        "  packets        {:>10} sent, {} received, {} lost (client side)",
        s.packets_sent, s.packets_received, s.packets_lost
    );
    println!(
        "  sha256         {} ({})",
        hex(&r.sha256),
        if r.verified { "verified" } else { "MISMATCH" }
    );
    if !r.verified {
        eprintln!("loopback-demo: the file did not arrive intact");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
