//! quic-async records traces as quic-mio's driver does: every datagram in
//! and out, the secrets that decrypt them, the endpoint's seed, the clock's
//! origin and the driver's wake-ups.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::io::AsyncWriteExt;
use quic_async::Endpoint;
use quic_async::trace::{Direction, InputRecord, Trace, TraceItem, read};
use quic_proto::Version;
use quic_proto::connection::{ClientConfig, ServerConfig, TransportConfig};
use quic_proto::endpoint::EndpointConfig;
use quic_proto::testing::{TestPki, client_config, server_config};

const ALPN: &[u8] = b"quic-async-trace";

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_traced_endpoint_records_datagrams_secrets_seed_and_wakeups() {
    let pki = TestPki::new(5);
    let transport = Arc::new(TransportConfig::default());
    let server_cfg = ServerConfig { tls: Arc::new(server_config(&pki, &[ALPN], 2)), transport };
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Endpoint::server(server_cfg, local).unwrap();
    let addr = server.local_addr();
    std::thread::spawn(move || {
        async_io::block_on(async move {
            while let Some(incoming) = server.accept().await {
                let Ok(connecting) = incoming.accept() else { continue };
                let Ok(conn) = connecting.await else { continue };
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let data = recv.read_to_end(1 << 20).await.unwrap();
                    send.write_chunk(data.into()).await.unwrap();
                    send.finish().unwrap();
                }
            }
        });
    });
    let seed = [9; 32];
    let client = Endpoint::with_seed(EndpointConfig::default(), None, local, seed).unwrap();
    assert_eq!(client.seed(), seed);
    let sink = Sink::default();
    let trace = Trace::new(Box::new(sink.clone())).unwrap();
    let mut tls = client_config(&pki, &[ALPN], 1);
    tls.key_log = trace.key_log(tls.key_log.clone());
    client.set_trace(trace);
    let config =
        ClientConfig { tls: Arc::new(tls), transport: Arc::default(), version: Version::V1 };
    async_io::block_on(async {
        let conn = client.connect(&config, addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&[7; 50_000]).await.unwrap();
        send.close().await.unwrap();
        assert_eq!(recv.read_to_end(1 << 20).await.unwrap().len(), 50_000);
        conn.close(0u32.into(), b"done");
        async_io::Timer::after(Duration::from_millis(50)).await;
    });
    let trace = client.take_trace().expect("the trace comes back");
    drop(trace);
    let items = read(&sink.0.lock().unwrap()).unwrap();
    let Some(TraceItem::Inputs(start)) = items.first() else { panic!("{:?}", items.first()) };
    assert!(matches!(start[0], InputRecord::ClockOrigin(_)), "{start:?}");
    assert!(start.contains(&InputRecord::EndpointSeed(seed)), "{start:?}");
    let count = |dir| {
        items.iter().filter(|i| matches!(i, TraceItem::Datagram(d) if d.direction == dir)).count()
    };
    let (inbound, outbound) = (count(Direction::Inbound), count(Direction::Outbound));
    assert!(outbound >= 40 && inbound >= 3, "{outbound} out, {inbound} in");
    for item in &items {
        if let TraceItem::Datagram(d) = item {
            assert!(d.payload.len() <= 1500, "one record per datagram: {}", d.payload.len());
            assert_eq!(d.remote, addr);
        }
    }
    let secrets: String = items
        .iter()
        .filter_map(|i| if let TraceItem::Secrets(s) = i { Some(s.as_str()) } else { None })
        .collect();
    assert!(secrets.contains("CLIENT_TRAFFIC_SECRET_0"), "{secrets}");
    let wakeups = items
        .iter()
        .filter(|i| {
            matches!(i, TraceItem::Inputs(r) if r.iter().any(|r| matches!(r, InputRecord::Wakeup(_))))
        })
        .count();
    assert!(wakeups > 0, "wake-ups recorded");
    // The first Initial is from the client and precedes everything inbound.
    let first = items.iter().find_map(|i| match i {
        TraceItem::Datagram(d) => Some(d),
        _ => None,
    });
    assert_eq!(first.map(|d| d.direction), Some(Direction::Outbound));
}
