//! Server and client endpoints on loopback, under async-std and under smol:
//! concurrent echo streams, unidirectional streams, closing, and the end of
//! a connection reaching pending futures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use quic_async::{Connection, Endpoint};
use quic_proto::Version;
use quic_proto::connection::{ClientConfig, ConnectionError, ServerConfig, TransportConfig};
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::varint::VarInt;

const ALPN: &[u8] = b"quic-async-test";

fn configs(transport: TransportConfig) -> (ClientConfig, ServerConfig) {
    let pki = TestPki::new(11);
    let transport = Arc::new(transport);
    let client = ClientConfig {
        tls: Arc::new(client_config(&pki, &[ALPN], 1)),
        transport: transport.clone(),
        version: Version::V1,
    };
    let server = ServerConfig { tls: Arc::new(server_config(&pki, &[ALPN], 2)), transport };
    (client, server)
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Accepts connections and echoes every bidirectional stream.
async fn echo_server(endpoint: Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let Ok(connecting) = incoming.accept() else { continue };
        let Ok(conn) = connecting.await else { continue };
        std::thread::spawn(move || {
            async_io::block_on(async move {
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    std::thread::spawn(move || {
                        async_io::block_on(async move {
                            let data = recv.read_to_end(16 << 20).await.expect("request");
                            send.write_chunk(data.into()).await.expect("echo");
                            send.finish().expect("finish");
                        });
                    });
                }
            });
        });
    }
}

fn payload(len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + salt) % 251) as u8).collect()
}

async fn echo_many(conn: &Connection, streams: usize, len: usize) {
    let mut tasks = Vec::new();
    for s in 0..streams {
        let conn = conn.clone();
        tasks.push(async move {
            let (mut send, mut recv) = conn.open_bi().await.expect("open");
            let data = payload(len, s);
            send.write_all(&data).await.expect("write");
            send.close().await.expect("finish");
            let mut back = Vec::new();
            AsyncReadExt::read_to_end(&mut recv, &mut back).await.expect("read");
            assert!(back == data, "stream {s}: echo differs");
        });
    }
    for t in tasks {
        t.await;
    }
}

/// The scenario, whatever the executor.
async fn concurrent_echo() {
    let (client, server) = configs(TransportConfig::default());
    let server = Endpoint::server(server, localhost()).unwrap();
    let addr = server.local_addr();
    std::thread::spawn(move || async_io::block_on(echo_server(server)));
    let endpoint = Endpoint::client(localhost()).unwrap();
    let conn = endpoint.connect(&client, addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
    assert_eq!(conn.alpn().as_deref(), Some(ALPN));
    let chain = conn.peer_certificates().expect("the server presented its chain");
    assert!(!chain.is_empty());
    // Sequentially polled futures still overlap on the wire: each stream's
    // request goes out before the previous echo is read.
    let many: Vec<_> = (0..40).map(|s| payload(20_000, s)).collect();
    let mut opened = Vec::new();
    for data in &many {
        let (mut send, recv) = conn.open_bi().await.unwrap();
        send.write_all(data).await.unwrap();
        send.finish().unwrap();
        opened.push(recv);
    }
    for (s, mut recv) in opened.into_iter().enumerate() {
        let back = recv.read_to_end(1 << 20).await.unwrap();
        assert!(back == many[s], "stream {s}: echo differs");
    }
    echo_many(&conn, 8, 300_000).await;
    conn.close(VarInt::from_u32(7), b"done");
    assert_eq!(conn.closed().await, ConnectionError::LocallyClosed);
}

#[test]
fn concurrent_echo_on_async_std() {
    async_std::task::block_on(async_std::future::timeout(
        Duration::from_secs(30),
        concurrent_echo(),
    ))
    .expect("within 30 s");
}

#[test]
fn concurrent_echo_on_smol() {
    smol::block_on(async {
        futures_lite::future::or(
            async {
                concurrent_echo().await;
                true
            },
            async {
                smol::Timer::after(Duration::from_secs(30)).await;
                false
            },
        )
        .await
    })
    .then_some(())
    .expect("within 30 s");
}

/// A UDP relay between a client and `server` that forwards until `cut` is
/// set, then drops everything: a peer that vanishes without a word.
fn relay(server: SocketAddr, cut: Arc<std::sync::atomic::AtomicBool>) -> SocketAddr {
    use std::sync::atomic::Ordering;
    let outer = std::net::UdpSocket::bind(localhost()).unwrap();
    let inner = std::net::UdpSocket::bind(localhost()).unwrap();
    outer.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    inner.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let addr = outer.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut client = None;
        let mut buf = [0u8; 65_536];
        let end = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < end {
            if let Ok((n, from)) = outer.recv_from(&mut buf) {
                client = Some(from);
                if !cut.load(Ordering::Relaxed) {
                    let _ = inner.send_to(&buf[..n], server);
                }
            }
            if let Ok((n, _)) = inner.recv_from(&mut buf)
                && let Some(c) = client
                && !cut.load(Ordering::Relaxed)
            {
                let _ = outer.send_to(&buf[..n], c);
            }
        }
    });
    addr
}

async fn vanishing_peer() {
    let mut transport = TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_millis(600)));
    let (client, server) = configs(transport);
    let server = Endpoint::server(server, localhost()).unwrap();
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = relay(server.local_addr(), cut.clone());
    let server_side = std::thread::spawn(move || {
        async_io::block_on(async move {
            // The cut may come before the client's Finished arrives: then
            // the handshake itself times out.
            match server.accept().await.unwrap().accept().unwrap().await {
                Ok(conn) => conn.closed().await,
                Err(e) => e,
            }
        })
    });
    let endpoint = Endpoint::client(localhost()).unwrap();
    let conn = endpoint.connect(&client, addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(b"are you there?").await.unwrap();
    cut.store(true, std::sync::atomic::Ordering::Relaxed);
    // Every pending future learns of the end.
    let read = recv.read_chunk();
    let accept = conn.accept_uni();
    let (read, accept) = futures_lite::future::zip(read, accept).await;
    assert!(
        matches!(
            read,
            Err(quic_proto::connection::ReadError::ConnectionLost(ConnectionError::TimedOut))
        ),
        "{read:?}"
    );
    assert!(matches!(accept, Err(ConnectionError::TimedOut)), "{accept:?}");
    assert_eq!(conn.closed().await, ConnectionError::TimedOut);
    assert_eq!(server_side.join().unwrap(), ConnectionError::TimedOut);
}

#[test]
fn a_vanished_peer_ends_every_pending_future_on_async_std() {
    async_std::task::block_on(async_std::future::timeout(
        Duration::from_secs(30),
        vanishing_peer(),
    ))
    .expect("within 30 s");
}

#[test]
fn a_vanished_peer_ends_every_pending_future_on_smol() {
    smol::block_on(vanishing_peer());
}

#[test]
fn dropping_the_last_handle_closes_the_connection() {
    smol::block_on(async {
        let (client, server) = configs(TransportConfig::default());
        let server = Endpoint::server(server, localhost()).unwrap();
        let addr = server.local_addr();
        let server_side = std::thread::spawn(move || {
            async_io::block_on(async move {
                let conn = server.accept().await.unwrap().accept().unwrap().await.unwrap();
                conn.closed().await
            })
        });
        let endpoint = Endpoint::client(localhost()).unwrap();
        let conn = endpoint.connect(&client, addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
        let (send, recv) = conn.open_bi().await.unwrap();
        drop(conn);
        drop(recv);
        // A stream still holds the connection open.
        std::thread::sleep(Duration::from_millis(100));
        assert!(!server_side.is_finished());
        drop(send);
        let end = server_side.join().unwrap();
        assert!(
            matches!(end, ConnectionError::ApplicationClosed { code, .. } if code == VarInt::from_u32(0)),
            "{end:?}"
        );
    });
}

async fn datagram_round_trip() {
    let (client, server) = configs(TransportConfig::default());
    let server = Endpoint::server(server, localhost()).unwrap();
    let addr = server.local_addr();
    std::thread::spawn(move || {
        async_io::block_on(async move {
            let conn = server.accept().await.unwrap().accept().unwrap().await.unwrap();
            while let Ok(d) = conn.read_datagram().await {
                let _ = conn.send_datagram(d);
            }
        })
    });
    let endpoint = Endpoint::client(localhost()).unwrap();
    let conn = endpoint.connect(&client, addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
    // Unreliable: send until an echo comes back (on loopback, the first).
    let reply = futures_lite::future::or(conn.read_datagram(), async {
        loop {
            conn.send_datagram(bytes::Bytes::from_static(b"ping")).unwrap();
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(&reply[..], b"ping");
}

#[test]
fn datagrams_go_both_ways_on_async_std() {
    async_std::task::block_on(async_std::future::timeout(
        Duration::from_secs(30),
        datagram_round_trip(),
    ))
    .expect("within 30 s");
}

#[test]
fn datagrams_go_both_ways_on_smol() {
    smol::block_on(datagram_round_trip());
}

/// A connected pair; the server's connection comes back through a channel.
async fn pair() -> (Endpoint, Connection, Connection) {
    let (client, server) = configs(TransportConfig::default());
    let server = Endpoint::server(server, localhost()).unwrap();
    let addr = server.local_addr();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        async_io::block_on(async move {
            let conn = server.accept().await.unwrap().accept().unwrap().await.unwrap();
            tx.send(conn).unwrap();
            // Keep the endpoint alive for the connection's lifetime.
            async_io::Timer::after(Duration::from_secs(60)).await;
        });
    });
    let endpoint = Endpoint::client(localhost()).unwrap();
    let conn = endpoint.connect(&client, addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
    let server_conn = rx.recv().unwrap();
    (endpoint, conn, server_conn)
}

async fn slow_reader_and_cancellation() {
    let (_endpoint, conn, server_conn) = pair().await;
    // Back-pressure: the server does not read; the client's writes stop
    // once the receive window and the send buffer are full.
    let mut send = conn.open_uni().await.unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    let writing = async {
        loop {
            send.write_all(&chunk).await.unwrap();
            written += chunk.len();
        }
    };
    let stalled = futures_lite::future::or(
        async {
            writing.await;
            false
        },
        async {
            async_io::Timer::after(Duration::from_millis(500)).await;
            true
        },
    )
    .await;
    assert!(stalled, "the writes never blocked");
    // At most the receive window (it grows only as the reader reads, to
    // 8 MiB at the most) plus the 1 MiB send buffer and one chunk.
    assert!(
        written <= (8 << 20) + (1 << 20) + chunk.len(),
        "{written} bytes written to a reader that reads nothing"
    );
    assert!(written >= 64 * 1024, "nothing was written");
    // The cancelled write left the stream usable: finish it and read all.
    send.finish().unwrap();
    let mut recv = server_conn.accept_uni().await.unwrap();
    // Cancelling a pending read: nothing was lost when it was dropped.
    let total = recv.read_to_end(64 << 20).await.unwrap().len();
    assert!(total >= written && total <= written + chunk.len(), "{total} read of {written}");
    let (mut send2, mut recv2) = conn.open_bi().await.unwrap();
    send2.write_all(b"x").await.unwrap();
    let (mut back, mut recv_s) = server_conn.accept_bi().await.unwrap();
    let pending =
        futures_lite::future::or(async { recv_s.read_chunk().await.ok().flatten() }, async {
            async_io::Timer::after(Duration::from_millis(100)).await;
            None
        })
        .await;
    // Either the byte came, or the read was cancelled while pending.
    let mut got = pending.map(|b| b.to_vec()).unwrap_or_default();
    send2.write_all(b"yz").await.unwrap();
    send2.finish().unwrap();
    got.extend(recv_s.read_to_end(1024).await.unwrap());
    assert_eq!(got, b"xyz");
    back.write_all(&got).await.unwrap();
    back.finish().unwrap();
    assert_eq!(recv2.read_to_end(1024).await.unwrap(), b"xyz");
}

#[test]
fn a_slow_reader_holds_the_writer_back_and_cancelled_futures_lose_nothing_on_async_std() {
    async_std::task::block_on(async_std::future::timeout(
        Duration::from_secs(60),
        slow_reader_and_cancellation(),
    ))
    .expect("within 60 s");
}

#[test]
fn a_slow_reader_holds_the_writer_back_and_cancelled_futures_lose_nothing_on_smol() {
    smol::block_on(slow_reader_and_cancellation());
}

#[test]
fn accept_ends_on_a_client_endpoint_and_after_stop_accepting() {
    smol::block_on(async {
        let client = Endpoint::client(localhost()).unwrap();
        assert!(client.accept().await.is_none());
        let (_, server) = configs(TransportConfig::default());
        let server = Endpoint::server(server, localhost()).unwrap();
        let stopper = server.clone();
        let waiting = futures_lite::future::zip(server.accept(), async move {
            async_io::Timer::after(Duration::from_millis(50)).await;
            stopper.stop_accepting();
        });
        assert!(waiting.await.0.is_none(), "a pending accept ends when accepting stops");
    });
}
