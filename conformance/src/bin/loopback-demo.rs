//! The README's main job: a QUIC server and client on loopback, over real
//! UDP, transferring a generated file that the client verifies by SHA-256,
//! with figures printed.
//!
//! Usage: `loopback-demo [--size MIB] [--seed N]` (defaults: 100 MiB, seed 1).
//!
//! Both endpoints are quic-proto `Connection`s driven by the conformance
//! crate's blocking UDP driver; the certificate is generated for the run.

use std::net::UdpSocket;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use bytes::Bytes;
use conformance::udp::{Clock, drive, feed, wait_for_initial};
use conformance::wire_transfer::hex;
use quic_proto::connection::{
    ClientConfig, Connection, ReadError, ServerConfig, TransportConfig, WriteError,
};
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::{ConnectionId, Dir, RandomSource, SeededRandom, SystemRandom, VarInt, Version};

const ALPN: &[u8] = b"quic-proto-demo";
const LIMIT: Duration = Duration::from_secs(300);

fn parse_args() -> Result<(usize, u64), String> {
    let (mut size_mib, mut seed) = (100usize, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match arg.as_str() {
            "--size" => size_mib = value("--size")? as usize,
            "--seed" => seed = value("--seed")?,
            "-h" | "--help" => {
                println!("usage: loopback-demo [--size MIB] [--seed N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if size_mib == 0 {
        return Err("--size must be at least 1 MiB".into());
    }
    Ok((size_mib, seed))
}

/// The file: `size` bytes from a ChaCha20 stream keyed by `seed`.
fn file(size: usize, seed: u64) -> Bytes {
    let mut d = vec![0u8; size];
    SeededRandom::from_u64(seed).fill(&mut d);
    Bytes::from(d)
}

fn sha256(d: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, d).as_ref());
    out
}

/// Serves one connection: reads a request line "GET <bytes>\n" on a
/// bidirectional stream and answers with the file, then FIN.
fn serve(socket: &UdpSocket, pki: &TestPki, file: &Bytes) -> Result<(), String> {
    let clock = Clock::new();
    let config = ServerConfig {
        tls: Arc::new(server_config(pki, &[ALPN], 2)),
        transport: Arc::new(TransportConfig::default()),
    };
    let first = wait_for_initial(socket, Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let local_cid = ConnectionId::random(&mut SystemRandom, 8);
    let mut conn = Connection::accept(
        clock.now(),
        &config,
        first.version,
        first.from,
        first.dcid,
        first.scid,
        local_cid,
        None,
        Box::new(SystemRandom),
    )
    .map_err(|e| e.to_string())?;
    feed(&mut conn, &clock, first.from, &first.datagram);
    let mut stream = None;
    let mut request = Vec::new();
    let mut sent = 0usize;
    let mut finished = false;
    let mut buf = [0u8; 256];
    drive(&mut conn, socket, &clock, LIMIT, "the download", |c, _| {
        if c.is_closed() {
            return true;
        }
        if stream.is_none() {
            stream = c.accept_stream(Dir::Bi);
        }
        let Some(id) = stream else { return false };
        if !request.ends_with(b"\n") {
            match c.read(id, &mut buf) {
                Ok(Some(n)) => request.extend_from_slice(&buf[..n]),
                Ok(None) | Err(ReadError::Blocked) => {}
                Err(_) => return true,
            }
            if !request.ends_with(b"\n") {
                return false;
            }
        }
        while sent < file.len() {
            match c.write_bytes(id, file.slice(sent..)) {
                Ok(n) => sent += n,
                Err(WriteError::Blocked) => break,
                Err(_) => return true,
            }
        }
        if sent == file.len() && !finished {
            finished = c.finish(id).is_ok();
        }
        false
    })
    .map_err(|e| format!("server: {e}"))?;
    let _ =
        drive(&mut conn, socket, &clock, Duration::from_secs(3), "draining", |c, _| c.is_drained());
    Ok(())
}

fn main() -> ExitCode {
    let (size_mib, seed) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("loopback-demo: {e}");
            return ExitCode::from(2);
        }
    };
    // aws-lc-rs seeds its random generator on the first draw of the process
    // (about 30 ms here); draw once now so the handshake figure measures the
    // handshake, not a one-time start-up cost.
    SystemRandom.fill(&mut [0u8; 1]);
    let size = size_mib * 1024 * 1024;
    println!(
        "loopback-demo: a {size_mib} MiB download over QUIC on 127.0.0.1 (quic-proto client and server, seed {seed})"
    );
    let file = file(size, seed);
    let expected = sha256(&file);
    let pki = Arc::new(TestPki::new(seed));

    let server_socket = match UdpSocket::bind("127.0.0.1:0") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loopback-demo: cannot bind a UDP socket on 127.0.0.1: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server_addr = server_socket.local_addr().expect("bound socket has an address");
    let server_pki = pki.clone();
    let server = std::thread::spawn(move || serve(&server_socket, &server_pki, &file));

    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
    let clock = Clock::new();
    let config = ClientConfig {
        tls: Arc::new(client_config(&pki, &[ALPN], 3)),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    };
    let start = clock.now();
    let mut conn = match Connection::connect(
        start,
        &config,
        TestPki::SERVER_NAME,
        server_addr,
        Box::new(SystemRandom),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loopback-demo: cannot start the client: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = drive(&mut conn, &socket, &clock, LIMIT, "the handshake", |c, _| {
        c.is_handshake_complete() || c.is_closed()
    }) {
        eprintln!("loopback-demo: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(e) = conn.error() {
        eprintln!("loopback-demo: handshake failed: {e}");
        return ExitCode::FAILURE;
    }
    let handshake = clock.now() - start;

    let id = conn.open_stream(Dir::Bi).expect("a fresh connection allows a stream");
    let request = format!("GET {size}\n");
    conn.write(id, request.as_bytes()).expect("request fits");
    conn.finish(id).expect("finish request");
    let transfer_start = clock.now();
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let result = drive(&mut conn, &socket, &clock, LIMIT, "the download", |c, _| {
        loop {
            match c.read(id, &mut buf) {
                Ok(Some(n)) => {
                    ctx.update(&buf[..n]);
                    received += n;
                }
                Ok(None) => return true,
                Err(ReadError::Blocked) => return false,
                Err(e) => {
                    eprintln!("loopback-demo: read failed: {e}");
                    return true;
                }
            }
        }
    });
    let elapsed = clock.now() - transfer_start;
    let stats = conn.stats();
    conn.close(clock.now(), VarInt::from_u32(0), b"done");
    let _ = drive(&mut conn, &socket, &clock, Duration::from_secs(3), "draining", |c, _| {
        c.is_drained()
    });
    let server_result = server.join().unwrap_or_else(|_| Err("server thread panicked".into()));

    if let Err(e) = result {
        eprintln!("loopback-demo: {e} ({received} of {size} bytes arrived)");
        return ExitCode::FAILURE;
    }
    if let Err(e) = server_result {
        eprintln!("loopback-demo: {e}");
        return ExitCode::FAILURE;
    }
    let got = ctx.finish();
    let verified = received == size && got.as_ref() == expected;
    let secs = elapsed.as_secs_f64();
    println!("  handshake      {:>10.2} ms", handshake.as_secs_f64() * 1e3);
    println!("  transferred    {received:>10} bytes in {secs:.3} s");
    println!(
        "  throughput     {:>10.1} MB/s ({:.2} Gbit/s)",
        received as f64 / secs / 1e6,
        received as f64 * 8.0 / secs / 1e9
    );
    println!("  smoothed RTT   {:>10.3} ms", stats.smoothed_rtt.as_secs_f64() * 1e3);
    println!(
        "  packets        {:>10} sent, {} received, {} lost",
        stats.packets_sent, stats.packets_received, stats.packets_lost
    );
    println!("  cwnd           {:>10} bytes at the end", stats.cwnd);
    println!(
        "  sha256         {} ({})",
        hex(got.as_ref()),
        if verified { "verified" } else { "MISMATCH" }
    );
    if !verified {
        eprintln!("loopback-demo: the file did not arrive intact");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
