//! A QUIC download between a quic-proto server and client on loopback
//! over real UDP, driven by [`crate::udp`]: the README's main job, and the
//! quic-proto side of the loopback benchmark.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use bytes::Bytes;
use quic_proto::connection::{
    ClientConfig, Connection, ConnectionStats, ReadError, ServerConfig, TransportConfig, WriteError,
};
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::{Dir, RandomSource, SeededRandom, SystemRandom, VarInt, Version};

use crate::udp::{Clock, accept_first, drive};

const ALPN: &[u8] = b"quic-proto-demo";
const LIMIT: Duration = Duration::from_secs(300);

/// What a download measured.
#[derive(Clone, Debug)]
pub struct DownloadReport {
    /// Bytes received.
    pub received: usize,
    /// Handshake time, as the client saw it.
    pub handshake: Duration,
    /// From the request to the last byte.
    pub transfer: Duration,
    /// Whether the SHA-256 of what arrived matches the file.
    pub verified: bool,
    /// SHA-256 of what arrived.
    pub sha256: [u8; 32],
    /// The client connection's figures at the end.
    pub client_stats: ConnectionStats,
}

/// The file: `size` bytes from a ChaCha20 stream keyed by `seed`.
pub fn file(size: usize, seed: u64) -> Bytes {
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
    let mut conn = accept_first(socket, &config, &clock, Duration::from_secs(30))?;
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

/// Downloads `size` bytes generated from `seed` from a quic-proto server to
/// a quic-proto client over UDP on 127.0.0.1, and verifies them.
pub fn download(size: usize, seed: u64) -> Result<DownloadReport, String> {
    // aws-lc-rs seeds its random generator on the first draw of the process
    // (about 30 ms here); draw once now so the handshake figure measures the
    // handshake, not a one-time start-up cost.
    SystemRandom.fill(&mut [0u8; 1]);
    let file = file(size, seed);
    let expected = sha256(&file);
    let pki = Arc::new(TestPki::new(seed));
    let server_socket = UdpSocket::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind a UDP socket on 127.0.0.1: {e}"))?;
    let server_addr = server_socket.local_addr().map_err(|e| e.to_string())?;
    let server_pki = pki.clone();
    let server = std::thread::spawn(move || serve(&server_socket, &server_pki, &file));

    let socket =
        UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("cannot bind a UDP socket: {e}"))?;
    let clock = Clock::new();
    let config = ClientConfig {
        tls: Arc::new(client_config(&pki, &[ALPN], 3)),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    };
    let start = clock.now();
    let mut conn = Connection::connect(
        start,
        &config,
        TestPki::SERVER_NAME,
        server_addr,
        Box::new(SystemRandom),
    )
    .map_err(|e| format!("cannot start the client: {e}"))?;
    drive(&mut conn, &socket, &clock, LIMIT, "the handshake", |c, _| {
        c.is_handshake_complete() || c.is_closed()
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = conn.error() {
        return Err(format!("handshake failed: {e}"));
    }
    let handshake = clock.now() - start;

    let id = conn.open_stream(Dir::Bi).ok_or("a fresh connection allows a stream")?;
    let request = format!("GET {size}\n");
    conn.write(id, request.as_bytes()).map_err(|e| e.to_string())?;
    conn.finish(id).map_err(|e| e.to_string())?;
    let transfer_start = clock.now();
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut received = 0usize;
    let mut read_error = None;
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
                    read_error = Some(e.to_string());
                    return true;
                }
            }
        }
    });
    let transfer = clock.now() - transfer_start;
    let client_stats = conn.stats();
    conn.close(clock.now(), VarInt::from_u32(0), b"done");
    let _ = drive(&mut conn, &socket, &clock, Duration::from_secs(3), "draining", |c, _| {
        c.is_drained()
    });
    let server_result = server.join().unwrap_or_else(|_| Err("server thread panicked".into()));
    result.map_err(|e| format!("{e} ({received} of {size} bytes arrived)"))?;
    if let Some(e) = read_error {
        return Err(format!("read failed: {e}"));
    }
    server_result?;
    let got = ctx.finish();
    let mut sha = [0u8; 32];
    sha.copy_from_slice(got.as_ref());
    Ok(DownloadReport {
        received,
        handshake,
        transfer,
        verified: received == size && sha == expected,
        sha256: sha,
        client_stats,
    })
}
