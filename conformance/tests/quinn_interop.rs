//! Interop with quinn (crates.io) over real UDP on loopback: a handshake
//! and a 10 MB echo on one bidirectional stream (10 MB each way), with our
//! stack as client against a quinn server, and as server for a quinn
//! client. The data is checked by SHA-256.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use aws_lc_rs::digest;
use bytes::Bytes;
use conformance::udp::{Clock, accept_first, drive};
use quic_proto::connection::{
    ClientConfig, Connection, ReadError, ServerConfig, TransportConfig, WriteError,
};
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::{Dir, SeededRandom, SystemRandom, VarInt, Version};

const ALPN: &[u8] = b"quic-proto-interop";
const SIZE: usize = 10 * 1024 * 1024;
const LIMIT: Duration = Duration::from_secs(60);

fn data() -> Bytes {
    let mut d = vec![0u8; SIZE];
    quic_proto::RandomSource::fill(&mut SeededRandom::from_u64(99), &mut d);
    Bytes::from(d)
}

fn sha256(d: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, d).as_ref().to_vec()
}

fn quinn_server_crypto(pki: &TestPki) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(pki.server_cert_chain(), pki.server_key())
        .expect("test certificate");
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg
}

fn quinn_client_crypto(pki: &TestPki) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg
}

/// Our side of the echo: write `data` on `id` and read back what arrives
/// until FIN. Returns the echoed bytes.
fn echo_as_client(
    conn: &mut Connection,
    socket: &UdpSocket,
    clock: &Clock,
    data: &Bytes,
) -> Vec<u8> {
    let id = conn.open_stream(Dir::Bi).expect("the peer allows a bidirectional stream");
    let mut written = 0;
    let mut finished = false;
    let mut echoed = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 65536];
    drive(conn, socket, clock, LIMIT, "the echo", |conn, _| {
        while written < data.len() {
            match conn.write_bytes(id, data.slice(written..)) {
                Ok(n) => written += n,
                Err(WriteError::Blocked) => break,
                Err(e) => panic!("write failed: {e}"),
            }
        }
        if written == data.len() && !finished {
            conn.finish(id).expect("finish");
            finished = true;
        }
        loop {
            match conn.read(id, &mut buf) {
                Ok(Some(n)) => echoed.extend_from_slice(&buf[..n]),
                Ok(None) => return true,
                Err(ReadError::Blocked) => return false,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "echo: {e}; wrote {written}/{} bytes, got {} back; {:?}",
            data.len(),
            echoed.len(),
            conn.stats()
        )
    });
    echoed
}

fn close_and_drain(conn: &mut Connection, socket: &UdpSocket, clock: &Clock) {
    conn.close(clock.now(), VarInt::from_u32(0), b"done");
    // Draining takes three PTOs; a second is plenty on loopback.
    let _ = drive(conn, socket, clock, Duration::from_secs(3), "draining", |c, _| c.is_drained());
}

#[test]
fn our_client_echoes_10mb_with_a_quinn_server() {
    let pki = TestPki::new(1);
    let crypto = quinn_server_crypto(&pki);
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(crypto).unwrap();
            let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
            let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
            addr_tx.send(endpoint.local_addr().unwrap()).unwrap();
            let conn = endpoint.accept().await.expect("a connection").await.expect("handshake");
            let (mut send, mut recv) = conn.accept_bi().await.expect("a stream");
            let got = recv.read_to_end(SIZE * 2).await.expect("read to end");
            send.write_all(&got).await.expect("echo");
            send.finish().expect("finish");
            conn.closed().await;
            endpoint.wait_idle().await;
            got.len()
        })
    });
    let server_addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("quinn server started");

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let clock = Clock::new();
    let config = ClientConfig {
        tls: Arc::new(client_config(&pki, &[ALPN], 7)),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    };
    let mut conn = Connection::connect(
        clock.now(),
        &config,
        TestPki::SERVER_NAME,
        server_addr,
        Box::new(SystemRandom),
    )
    .expect("client starts");
    drive(&mut conn, &socket, &clock, LIMIT, "the handshake with quinn", |c, _| {
        assert!(c.error().is_none(), "connection failed: {:?}", c.error());
        c.is_handshake_complete()
    })
    .expect("handshake with quinn");
    assert_eq!(conn.alpn(), Some(ALPN));

    let data = data();
    let echoed = echo_as_client(&mut conn, &socket, &clock, &data);
    assert_eq!(echoed.len(), data.len());
    assert_eq!(sha256(&echoed), sha256(&data), "the echo matches what was sent");
    let stats = conn.stats();
    close_and_drain(&mut conn, &socket, &clock);
    assert_eq!(server.join().expect("quinn server thread"), SIZE);
    eprintln!("our client <-> quinn server: {stats:?}");
}

#[test]
fn quinn_client_echoes_10mb_with_our_server() {
    let pki = TestPki::new(2);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_addr = socket.local_addr().unwrap();
    let client_crypto = quinn_client_crypto(&pki);
    let data = data();
    let client_data = data.clone();
    let client = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_crypto).unwrap();
            let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
            let conn = endpoint
                .connect(server_addr, TestPki::SERVER_NAME)
                .unwrap()
                .await
                .expect("handshake with our server");
            let (mut send, mut recv) = conn.open_bi().await.expect("open a stream");
            let writer = async {
                send.write_all(&client_data).await.expect("write");
                send.finish().expect("finish");
            };
            let reader = async { recv.read_to_end(SIZE * 2).await.expect("read the echo") };
            let ((), echoed) = tokio::join!(writer, reader);
            conn.close(0u32.into(), b"done");
            endpoint.wait_idle().await;
            echoed
        })
    });

    let clock = Clock::new();
    let config = ServerConfig {
        tls: Arc::new(server_config(&pki, &[ALPN], 8)),
        transport: Arc::new(TransportConfig::default()),
    };
    let mut conn = accept_first(&socket, &config, &clock, Duration::from_secs(20))
        .expect("quinn's first Initial, accepted");

    // Echo: read the client's stream to its end, writing everything back.
    let mut stream = None;
    let mut pending: std::collections::VecDeque<Bytes> = Default::default();
    let mut received = 0usize;
    let mut fin_seen = false;
    let mut finished = false;
    let mut buf = vec![0u8; 65536];
    drive(&mut conn, &socket, &clock, LIMIT, "quinn's echo", |c, _| {
        if let Some(e) = c.error() {
            // quinn closes once it has the echo back; earlier is a failure.
            assert!(finished, "connection failed early: {e}");
            return true;
        }
        if stream.is_none() {
            stream = c.accept_stream(Dir::Bi);
        }
        let Some(id) = stream else { return false };
        while !fin_seen {
            match c.read(id, &mut buf) {
                Ok(Some(n)) => {
                    received += n;
                    pending.push_back(Bytes::copy_from_slice(&buf[..n]));
                }
                Ok(None) => fin_seen = true,
                Err(ReadError::Blocked) => break,
                Err(e) => panic!("read failed: {e}"),
            }
        }
        while let Some(chunk) = pending.pop_front() {
            match c.write_bytes(id, chunk.clone()) {
                Ok(n) if n == chunk.len() => {}
                Ok(n) => {
                    pending.push_front(chunk.slice(n..));
                    break;
                }
                Err(WriteError::Blocked) => {
                    pending.push_front(chunk);
                    break;
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
        if fin_seen && pending.is_empty() && !finished {
            c.finish(id).expect("finish");
            finished = true;
        }
        c.is_closed()
    })
    .unwrap_or_else(|e| {
        panic!("serving quinn: {e}; received {received} bytes; {:?}", conn.stats())
    });
    let _ = drive(&mut conn, &socket, &clock, Duration::from_secs(3), "draining", |c, _| {
        c.is_drained()
    });

    let echoed = client.join().expect("quinn client thread");
    assert_eq!(received, SIZE);
    assert_eq!(echoed.len(), data.len());
    assert_eq!(sha256(&echoed), sha256(&data), "quinn got back what it sent");
}
