//! The loopback download through quic-mio's driver and through quic-async:
//! the server answers a request with the generated file on the same
//! bidirectional stream; the client hashes what it reads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use conformance::loopback::file;
use futures_lite::io::AsyncWriteExt;
use quic_mio::{Driver, DriverEvent};
use quic_proto::connection::{
    ClientConfig, Event, ReadError, ServerConfig, StreamEvent, TransportConfig, WriteError,
};
use quic_proto::endpoint::EndpointConfig;
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::{Dir, Side, StreamId, Version};

use super::ALPN;

fn configs(seed: u64) -> (ClientConfig, ServerConfig) {
    let pki = TestPki::new(seed);
    let transport = Arc::new(TransportConfig::default());
    let client = ClientConfig {
        tls: Arc::new(client_config(&pki, &[ALPN], seed)),
        transport: transport.clone(),
        version: Version::V1,
    };
    let server = ServerConfig { tls: Arc::new(server_config(&pki, &[ALPN], seed + 1)), transport };
    (client, server)
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Both drivers in one mio loop on this thread.
pub(crate) fn quic_mio_download(size: usize, seed: u64) -> Duration {
    const SERVER: mio::Token = mio::Token(0);
    const CLIENT: mio::Token = mio::Token(1);
    let (client_config, server_config) = configs(seed);
    let data = file(size, seed);
    let expected = digest::digest(&digest::SHA256, &data);
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(64);
    let mut server =
        Driver::bind(localhost(), EndpointConfig::default(), Some(server_config)).unwrap();
    let mut client = Driver::bind(localhost(), EndpointConfig::default(), None).unwrap();
    server.register(poll.registry(), SERVER).unwrap();
    client.register(poll.registry(), CLIENT).unwrap();
    let now = client.now();
    let h = client.connect(now, &client_config, TestPki::SERVER_NAME, server.local_addr()).unwrap();
    let id = StreamId::new(Side::Client, Dir::Bi, 0).unwrap();
    let (mut sent, mut requested, mut received) = (0usize, false, 0usize);
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut start = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received < size {
        assert!(Instant::now() < deadline, "quic-mio download stalled");
        let timeout = [server.timeout(server.now()), client.timeout(client.now())]
            .into_iter()
            .flatten()
            .min();
        poll.poll(&mut events, timeout).unwrap();
        for event in events.iter() {
            let d = if event.token() == SERVER { &mut server } else { &mut client };
            let now = d.now();
            d.handle_mio_event(now, event);
        }
        let now = server.now();
        server.process(now, |endpoint, event| {
            let DriverEvent::Connection(h, Event::Stream(e)) = event else { return };
            let conn = endpoint.connection(h).unwrap();
            if let StreamEvent::Opened(_) = e {
                while conn.accept_stream(Dir::Bi).is_some() {}
            }
            while sent < data.len() {
                match conn.write_bytes(id, data.slice(sent..)) {
                    Ok(n) => sent += n,
                    Err(WriteError::Blocked) => break,
                    Err(e) => panic!("server write: {e}"),
                }
            }
            if sent == data.len() {
                let _ = conn.finish(id);
            }
        });
        let now = client.now();
        client.process(now, |endpoint, event| {
            let DriverEvent::Connection(_, event) = event else { return };
            let conn = endpoint.connection(h).unwrap();
            if event == Event::HandshakeCompleted && !requested {
                requested = true;
                conn.open_stream(Dir::Bi).unwrap();
                conn.write(id, b"GET\n").unwrap();
                conn.finish(id).unwrap();
                start = Some(Instant::now());
            }
            loop {
                match conn.read_chunk(id, usize::MAX) {
                    Ok(Some(chunk)) => {
                        ctx.update(&chunk);
                        received += chunk.len();
                    }
                    Ok(None) | Err(ReadError::Blocked) | Err(ReadError::ClosedStream) => break,
                    Err(e) => panic!("client read: {e}"),
                }
            }
        });
    }
    let elapsed = start.expect("requested").elapsed();
    assert_eq!(ctx.finish().as_ref(), expected.as_ref(), "quic-mio download verified");
    elapsed
}

/// quic-async endpoints (each with its driver thread); the client awaits
/// on this thread.
pub(crate) fn quic_async_download(size: usize, seed: u64) -> Duration {
    let (client_config, server_config) = configs(seed);
    let data = file(size, seed);
    let expected = digest::digest(&digest::SHA256, &data);
    let server = quic_async::Endpoint::server(server_config, localhost()).unwrap();
    let addr = server.local_addr();
    let server_side = std::thread::spawn(move || {
        async_io::block_on(async move {
            let conn = server.accept().await.unwrap().accept().unwrap().await.unwrap();
            let (mut send, mut recv) = conn.accept_bi().await.unwrap();
            let _request = recv.read_to_end(64).await.unwrap();
            send.write_chunk(data).await.unwrap();
            send.finish().unwrap();
            conn.closed().await
        })
    });
    let elapsed = async_io::block_on(async move {
        let endpoint = quic_async::Endpoint::client(localhost()).unwrap();
        let conn =
            endpoint.connect(&client_config, addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(b"GET\n").await.unwrap();
        send.close().await.unwrap();
        let start = Instant::now();
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut received = 0;
        while let Some(chunk) = recv.read_chunk().await.unwrap() {
            ctx.update(&chunk);
            received += chunk.len();
        }
        let elapsed = start.elapsed();
        assert_eq!(received, size);
        assert_eq!(ctx.finish().as_ref(), expected.as_ref(), "quic-async download verified");
        conn.close(quic_proto::varint::VarInt::from_u32(0), b"done");
        elapsed
    });
    let _ = server_side.join();
    elapsed
}
