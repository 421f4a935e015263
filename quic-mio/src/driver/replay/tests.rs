//! A client driver's trace, recorded against a live server on loopback,
//! replayed through a fresh driver with the same application code: every
//! datagram identical; and a replay whose TLS randomness differs names the
//! first datagram.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quic_proto::connection::{
    ClientConfig, Event, ReadError, ServerConfig, StreamEvent, TransportConfig, WriteError,
};
use quic_proto::endpoint::{ConnectionHandle, EndpointConfig};
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::{Dir, StreamId, Version};

use crate::{Driver, DriverEvent, Trace};

use super::Replay;

const ALPN: &[u8] = b"quic-mio-replay";

#[derive(Clone, Default)]
struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The client's application: opens a stream once the handshake is done,
/// writes `data` on every wake-up as far as flow control lets it, then
/// finishes the stream. The same code runs live and in replay.
struct Uploader {
    handle: ConnectionHandle,
    data: Bytes,
    stream: Option<StreamId>,
    sent: usize,
    finished: bool,
}

impl Uploader {
    fn wake(&mut self, client: &mut Driver) {
        let now = client.now();
        let stream = &mut self.stream;
        client.process(now, |endpoint, event| {
            let DriverEvent::Connection(h, Event::HandshakeCompleted) = event else { return };
            *stream = endpoint.connection(h).and_then(|c| c.open_stream(Dir::Bi));
        });
        let (Some(id), Some(conn)) = (self.stream, client.connection(self.handle)) else { return };
        while self.sent < self.data.len() {
            match conn.write_bytes(id, self.data.slice(self.sent..)) {
                Ok(n) => self.sent += n,
                Err(WriteError::Blocked) => break,
                Err(e) => panic!("client write: {e}"),
            }
        }
        if self.sent == self.data.len() && !self.finished {
            conn.finish(id).unwrap();
            self.finished = true;
        }
        client.flush(now);
    }
}

fn client_tls(pki: &TestPki, seed: u64) -> ClientConfig {
    ClientConfig {
        tls: Arc::new(client_config(pki, &[ALPN], seed)),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    }
}

/// Records a 300 kB upload from a traced client (sends blocking now and
/// then) to a live server; returns the trace and the server's address.
fn record(pki: &TestPki) -> (Vec<u8>, SocketAddr) {
    let server_config = ServerConfig {
        tls: Arc::new(server_config(pki, &[ALPN], 1)),
        transport: Arc::new(TransportConfig::default()),
    };
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let mut server = Driver::bind(local, EndpointConfig::default(), Some(server_config)).unwrap();
    let mut client = Driver::bind(local, EndpointConfig::default(), None).unwrap();
    let sink = Sink::default();
    client.set_trace(Trace::new(Box::new(sink.clone())).unwrap());
    client.socket().block_every_nth_send(7);
    let mut poll = mio::Poll::new().unwrap();
    server.register(poll.registry(), mio::Token(0)).unwrap();
    client.register(poll.registry(), mio::Token(1)).unwrap();
    let mut events = mio::Events::with_capacity(64);
    let now = client.now();
    let handle =
        client.connect(now, &client_tls(pki, 2), "localhost", server.local_addr()).unwrap();
    let data = Bytes::from((0..300_000).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let mut app = Uploader { handle, data, stream: None, sent: 0, finished: false };
    let (mut received, mut done) = (0, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done && std::time::Instant::now() < deadline {
        let timeout = [server.timeout(server.now()), client.timeout(client.now())]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.min(Duration::from_millis(50)));
        poll.poll(&mut events, timeout).unwrap();
        for event in events.iter() {
            if event.token() == mio::Token(0) {
                server.handle_mio_event(server.now(), event);
            } else {
                client.handle_mio_event(client.now(), event);
            }
        }
        let now = server.now();
        server.process(now, |endpoint, event| {
            let (DriverEvent::Connection(h, Event::Stream(StreamEvent::Opened(Dir::Bi)))
            | DriverEvent::Connection(h, Event::Stream(StreamEvent::Readable(_)))) = event
            else {
                return;
            };
            let conn = endpoint.connection(h).unwrap();
            while conn.accept_stream(Dir::Bi).is_some() {}
            let id = StreamId::new(quic_proto::Side::Client, Dir::Bi, 0).unwrap();
            loop {
                match conn.read_chunk(id, usize::MAX) {
                    Ok(Some(chunk)) => received += chunk.len(),
                    Ok(None) => {
                        done = true;
                        break;
                    }
                    Err(ReadError::Blocked) => break,
                    Err(e) => panic!("server read: {e}"),
                }
            }
        });
        app.wake(&mut client);
    }
    assert!(done, "the upload completes ({received} bytes arrived)");
    assert!(client.stats().send_blocked > 0, "sends blocked: {:?}", client.stats());
    drop(client);
    let file = sink.0.lock().unwrap().clone();
    (file, server.local_addr())
}

/// Replays `file` through a fresh client driver whose TLS randomness is
/// seeded with `tls_seed`, running the same application.
fn replay(pki: &TestPki, file: &[u8], server: SocketAddr, tls_seed: u64) -> Replay {
    let replay = Replay::from_bytes(file).unwrap();
    let mut client = Driver::replay(replay.clone(), EndpointConfig::default(), None).unwrap();
    let now = client.now();
    let handle = client.connect(now, &client_tls(pki, tls_seed), "localhost", server).unwrap();
    let data = Bytes::from((0..300_000).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let mut app = Uploader { handle, data, stream: None, sent: 0, finished: false };
    for _ in 0..1_000_000 {
        if replay.ended() {
            break;
        }
        app.wake(&mut client);
    }
    assert!(replay.ended(), "the replay ends");
    replay
}

#[test]
fn a_client_trace_replays_byte_for_byte_blocked_sends_included() {
    let pki = TestPki::new(11);
    let (file, server) = record(&pki);
    let replay = replay(&pki, &file, server, 2);
    let report = replay.report();
    assert!(report.identical(), "{report}");
    assert!(report.matched > 200 && report.inbound >= 3, "{report:?}");
    assert!(report.to_string().starts_with("identical: "), "{report}");
}

#[test]
fn a_replay_with_other_tls_randomness_names_the_first_datagram() {
    let pki = TestPki::new(11);
    let (file, server) = record(&pki);
    let report = replay(&pki, &file, server, 3).report();
    assert!(!report.identical());
    let d = report.divergence.as_ref().expect("a difference");
    assert_eq!((d.outbound_index, report.matched), (1, 0), "{report}");
    assert!(d.expected.is_some() && d.actual.is_some(), "{report}");
    assert!(report.to_string().contains("differs at outbound datagram 1"), "{report}");
}

#[test]
fn traces_that_are_not_pcapng_or_lack_records_are_refused() {
    assert!(Replay::from_bytes(b"not a trace").is_err());
    assert!(Replay::from_bytes(&[]).is_err());
    // A trace with the origin but no calls recorded (begun, nothing done).
    let sink = Sink::default();
    let mut trace = Trace::new(Box::new(sink.clone())).unwrap();
    trace.begin(quic_proto::Instant::ZERO, &[]).unwrap();
    drop(trace);
    let file = sink.0.lock().unwrap().clone();
    let err = Replay::from_bytes(&file).unwrap_err();
    assert!(err.to_string().contains("no wake-up or flush"), "{err}");
}
