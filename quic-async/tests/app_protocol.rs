//! Sans-I/O application protocols on quic-async connections
//! (`Connection::with_proto`, `Connection::stream_events`), on loopback
//! under async-std and smol: a tiny echo protocol driven by stream events
//! against a client on stream objects; HTTP/3 with h3-proto at both ends
//! (the client is the `fetch` example's); and the stream ownership rule.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use h3_proto::message::response_fields;
use h3_proto::qpack::Field;
use h3_proto::transport::QuicTransport;
use h3_proto::{Event, SendError};
use quic_async::{Connection, Endpoint};
use quic_proto::Version;
use quic_proto::connection::{
    ClientConfig, ReadError, ServerConfig, StreamEvent, TransportConfig, WriteError,
};
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::varint::VarInt;
use quic_proto::{Dir, Side, StreamId};

#[path = "../examples/fetch/h3.rs"]
mod fetch_h3;

fn configs(alpn: &[u8], server_transport: TransportConfig) -> (ClientConfig, ServerConfig) {
    let pki = TestPki::new(11);
    let client = ClientConfig {
        tls: Arc::new(client_config(&pki, &[alpn], 1)),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    };
    let server = ServerConfig {
        tls: Arc::new(server_config(&pki, &[alpn], 2)),
        transport: Arc::new(server_transport),
    };
    (client, server)
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A client connection to a server on a thread of its own that runs
/// `serve` on the connection it accepts. Keep the endpoints to keep the
/// connection.
async fn pair<F, Fut>(
    alpn: &[u8],
    server_transport: TransportConfig,
    serve: F,
) -> (Endpoint, Connection)
where
    F: FnOnce(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (client, server) = configs(alpn, server_transport);
    let server = Endpoint::server(server, localhost()).unwrap();
    let addr = server.local_addr();
    std::thread::spawn(move || {
        async_io::block_on(async move {
            let conn = server.accept().await.unwrap().accept().unwrap().await.unwrap();
            serve(conn).await;
        });
    });
    let endpoint = Endpoint::client(localhost()).unwrap();
    let conn = endpoint.connect(&client, addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
    (endpoint, conn)
}

fn payload(len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + salt) % 251) as u8).collect()
}

/// Runs `scenario` under async-std and under smol, each within 30 s (a
/// hang fails; how long it takes otherwise decides nothing).
fn on_both_runtimes<Fut: Future<Output = ()>>(scenario: impl Fn() -> Fut) {
    async_std::task::block_on(async_std::future::timeout(Duration::from_secs(30), scenario()))
        .expect("within 30 s on async-std");
    smol::block_on(futures_lite::future::or(
        async {
            scenario().await;
            Some(())
        },
        async {
            async_io::Timer::after(Duration::from_secs(30)).await;
            None
        },
    ))
    .expect("within 30 s on smol");
}

/// The tiny sans-I/O protocol: every bidirectional stream the peer opens
/// is echoed back and finished when the peer's side ends; on start it
/// opens one unidirectional stream carrying a greeting. It sees the
/// connection only through stream calls and events, as h3-proto does.
#[derive(Default)]
struct Echo {
    streams: HashMap<StreamId, EchoStream>,
}

#[derive(Default)]
struct EchoStream {
    /// Read and not yet written back.
    pending: Vec<u8>,
    written: usize,
    /// The peer's side ended.
    fin: bool,
}

impl Echo {
    fn start(&mut self, c: &mut quic_proto::connection::Connection) {
        let id = c.open_stream(Dir::Uni).expect("the client allows uni streams");
        assert_eq!(c.write(id, b"hello"), Ok(5));
        c.finish(id).unwrap();
    }

    fn handle(&mut self, c: &mut quic_proto::connection::Connection, event: StreamEvent) {
        match event {
            StreamEvent::Opened(Dir::Bi) => {
                while let Some(id) = c.accept_stream(Dir::Bi) {
                    self.streams.insert(id, EchoStream::default());
                    self.read(c, id);
                }
            }
            StreamEvent::Readable(id) => self.read(c, id),
            StreamEvent::Writable(id) => self.flush(c, id),
            _ => {}
        }
    }

    fn read(&mut self, c: &mut quic_proto::connection::Connection, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else { return };
        let mut buf = [0; 4096];
        loop {
            match c.read(id, &mut buf) {
                Ok(Some(n)) => s.pending.extend_from_slice(&buf[..n]),
                Ok(None) => {
                    s.fin = true;
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(e) => panic!("stream {id:?}: {e:?}"),
            }
        }
        self.flush(c, id);
    }

    fn flush(&mut self, c: &mut quic_proto::connection::Connection, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else { return };
        while s.written < s.pending.len() {
            match c.write(id, &s.pending[s.written..]) {
                Ok(n) if n > 0 => s.written += n,
                // A Writable event comes once acknowledgements free space
                // (after a write that took nothing or less than offered).
                Ok(_) | Err(WriteError::Blocked) => return,
                Err(e) => panic!("stream {id:?}: {e:?}"),
            }
        }
        if s.fin {
            c.finish(id).unwrap();
            self.streams.remove(&id);
        }
    }
}

/// The server: accepts one unidirectional stream through quic-async first
/// (allowed before the switch), then hands the connection to `Echo`.
async fn echo_server(conn: Connection) {
    let mut go = conn.accept_uni().await.unwrap();
    assert_eq!(go.read_to_end(16).await.unwrap(), b"go");
    let mut events = conn.stream_events();
    let mut echo = Echo::default();
    conn.with_proto(|c, _| echo.start(c)).unwrap();
    while let Ok(batch) = events.next().await {
        let handled = conn.with_proto(|c, _| {
            for event in batch {
                echo.handle(c, event);
            }
        });
        if handled.is_err() {
            break;
        }
    }
}

async fn sans_io_echo() {
    // A small send buffer: the server's writes block, and Writable events
    // resume them.
    let mut transport = TransportConfig::default();
    transport.send_buffer_per_stream(16 << 10);
    let (_endpoint, conn) = pair(b"echo", transport, echo_server).await;
    // Streams opened before the server's protocol takes over: their data
    // may be waiting when it starts, and is served all the same.
    let mut early = Vec::new();
    for s in 0..3 {
        let (mut send, recv) = conn.open_bi().await.unwrap();
        send.write_all(&payload(1000, s)).await.unwrap();
        send.finish().unwrap();
        early.push((s, recv));
    }
    let mut go = conn.open_uni().await.unwrap();
    go.write_all(b"go").await.unwrap();
    go.finish().unwrap();
    let mut greeting = conn.accept_uni().await.unwrap();
    assert_eq!(greeting.read_to_end(64).await.unwrap(), b"hello");
    for (s, mut recv) in early {
        assert!(recv.read_to_end(1 << 20).await.unwrap() == payload(1000, s), "stream {s}");
    }
    // Later streams, all written before any echo is read, two larger than
    // a stream's receive window. The echoes read one stream after the
    // other, so together they stay within this end's connection window:
    // more and the server could fill it with streams not read yet while
    // the one being read starves (an application-level deadlock).
    let mut later = Vec::new();
    for s in 3..11 {
        let data = payload(if s % 4 == 0 { 300_000 } else { 10 }, s);
        let (mut send, recv) = conn.open_bi().await.unwrap();
        send.write_all(&data).await.unwrap();
        send.finish().unwrap();
        later.push((data, recv));
    }
    for (s, (data, mut recv)) in later.into_iter().enumerate() {
        assert!(recv.read_to_end(1 << 20).await.unwrap() == data, "stream {}", s + 3);
    }
    conn.close(VarInt::from_u32(0), b"");
}

#[test]
fn a_sans_io_protocol_serves_the_peers_streams_through_stream_events() {
    on_both_runtimes(sans_io_echo);
}

#[test]
#[should_panic(expected = "application protocol")]
fn accept_bi_panics_once_an_application_protocol_owns_the_streams() {
    async_io::block_on(async {
        let (_endpoint, conn) = pair(b"echo", TransportConfig::default(), |conn| async move {
            let _ = conn.closed().await;
        })
        .await;
        let _events = conn.stream_events();
        let _ = conn.accept_bi().await;
    });
}

/// An HTTP/3 server on h3-proto: `/size/N` answers N bytes, anything else
/// 404.
struct H3Server {
    h3: h3_proto::Connection,
    opened: bool,
    /// Bodies being sent, and how far.
    bodies: HashMap<StreamId, (Vec<u8>, usize)>,
}

impl H3Server {
    fn step(&mut self, t: &mut QuicTransport<'_>, events: &[StreamEvent]) {
        if !self.opened {
            self.h3.open(t).unwrap();
            self.opened = true;
        }
        for event in events {
            self.h3.handle_stream_event(t, event);
        }
        while let Some(event) = self.h3.poll_event() {
            let Event::Headers { stream, fields, .. } = event else { continue };
            let path = fields.iter().find(|f| f.name == b":path").map(|f| f.value.clone());
            let size = path.as_deref().and_then(|p| p.strip_prefix(b"/size/"));
            match size.and_then(|s| std::str::from_utf8(s).ok()?.parse::<usize>().ok()) {
                Some(len) => {
                    let length = Field::new("content-length", len.to_string());
                    let head = response_fields(200, &[length]);
                    self.h3.send_response(t, stream, &head, false).unwrap();
                    self.bodies.insert(stream, (payload(len, len), 0));
                }
                None => self.h3.send_response(t, stream, &response_fields(404, &[]), true).unwrap(),
            }
        }
        let h3 = &mut self.h3;
        self.bodies.retain(|&stream, (body, sent)| {
            loop {
                if *sent == body.len() {
                    h3.finish(t, stream).unwrap();
                    return false;
                }
                match h3.send_data(t, stream, &body[*sent..]) {
                    Ok(n) => *sent += n,
                    // Resumed after the stream's Writable event.
                    Err(SendError::Blocked) => return true,
                    Err(e) => panic!("{stream:?}: {e}"),
                }
            }
        });
    }
}

async fn h3_server(conn: Connection) {
    let mut events = conn.stream_events();
    let h3 = h3_proto::Connection::new(Side::Server, h3_proto::Config::default(), 7);
    let mut server = H3Server { h3, opened: false, bodies: HashMap::new() };
    let mut batch = Vec::new();
    loop {
        let step = conn
            .with_proto(|c, now| server.step(&mut QuicTransport { connection: c, now }, &batch));
        if step.is_err() {
            return;
        }
        match events.next().await {
            Ok(next) => batch = next,
            Err(_) => return,
        }
    }
}

async fn h3_exchange() {
    // Four request streams at a time: the client runs into the limit and
    // sends the rest as the server raises it. A small send buffer: the
    // bodies go out as Writable events let them.
    let mut transport = TransportConfig::default();
    transport.max_concurrent_bidi_streams(VarInt::from_u32(4)).send_buffer_per_stream(16 << 10);
    let (_endpoint, conn) = pair(h3_proto::ALPN_H3, transport, h3_server).await;
    let sizes = [0, 1, 1000, 70_000, 2_000_000, 5, 300_000, 64, 100_000, 7, 1 << 16, 3];
    let mut paths: Vec<String> = sizes.iter().map(|n| format!("/size/{n}")).collect();
    paths.push("/missing".into());
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let fetched = fetch_h3::get_all(&conn, "localhost", &paths, 4 << 20).await;
    for (i, response) in fetched.responses.into_iter().enumerate() {
        let response = response.unwrap_or_else(|e| panic!("{}: {e}", paths[i]));
        match sizes.get(i) {
            Some(&len) => {
                assert_eq!(response.status, 200, "{}", paths[i]);
                assert!(response.body == payload(len, len), "{}: body differs", paths[i]);
            }
            None => assert_eq!(response.status, 404),
        }
    }
    println!("QPACK: {} dynamic table entries from the server", fetched.qpack_inserts);
    // The client closed HTTP/3 with H3_NO_ERROR.
    let _ = conn.closed().await;
}

#[test]
fn h3_requests_and_responses_between_h3_proto_ends_on_quic_async() {
    on_both_runtimes(h3_exchange);
}
