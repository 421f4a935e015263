//! Two drivers in one mio loop on loopback: a handshake and a 2 MB upload,
//! with and without GSO, and with a Retry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use quic_proto::connection::{ReadError, StreamEvent, TransportConfig, WriteError};
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::{Dir, Version};

use super::*;

const ALPN: &[u8] = b"quic-mio-test";
const SERVER: mio::Token = mio::Token(0);
const CLIENT: mio::Token = mio::Token(1);

struct Outcome {
    received: Vec<u8>,
    server: DriverStats,
    client: DriverStats,
    retried: bool,
}

fn upload(ip: IpAddr, size: usize, gso: bool, policy: IncomingPolicy) -> Outcome {
    upload_with(ip, size, gso, policy, |_, _| {})
}

/// `upload`, with `setup` applied to the client's and the server's
/// drivers first.
fn upload_with(
    ip: IpAddr,
    size: usize,
    gso: bool,
    policy: IncomingPolicy,
    setup: impl FnOnce(&mut Driver, &mut Driver),
) -> Outcome {
    let pki = TestPki::new(7);
    let server_config = ServerConfig {
        tls: Arc::new(server_config(&pki, &[ALPN], 1)),
        transport: Arc::new(TransportConfig::default()),
    };
    let client_config = ClientConfig {
        tls: Arc::new(client_config(&pki, &[ALPN], 2)),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    };
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(64);
    let mut server =
        Driver::bind(SocketAddr::new(ip, 0), EndpointConfig::default(), Some(server_config))
            .unwrap();
    server.set_incoming_policy(policy);
    let mut client = Driver::bind(SocketAddr::new(ip, 0), EndpointConfig::default(), None).unwrap();
    if !gso {
        client.socket().disable_gso();
        server.socket().disable_gso();
    }
    setup(&mut client, &mut server);
    server.register(poll.registry(), SERVER).unwrap();
    client.register(poll.registry(), CLIENT).unwrap();
    let data = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let now = client.now();
    let handle = client.connect(now, &client_config, "localhost", server.local_addr()).unwrap();
    let (mut stream, mut sent, mut finished) = (None, 0usize, false);
    let mut received = Vec::new();
    let mut done = false;
    let mut retried = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done && std::time::Instant::now() < deadline {
        let timeout = [server.timeout(server.now()), client.timeout(client.now())]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.min(Duration::from_millis(100)));
        poll.poll(&mut events, timeout).unwrap();
        for event in events.iter() {
            match event.token() {
                SERVER => server.handle_mio_event(server.now(), event),
                _ => client.handle_mio_event(client.now(), event),
            }
        }
        let now = server.now();
        server.process(now, |endpoint, event| match event {
            DriverEvent::Incoming(incoming) => {
                if incoming.is_address_validated() {
                    retried = incoming.is_retried();
                    endpoint.accept(now, incoming).unwrap();
                } else {
                    endpoint.retry(now, incoming).unwrap();
                }
            }
            DriverEvent::Connection(h, Event::Stream(StreamEvent::Opened(Dir::Bi)))
            | DriverEvent::Connection(h, Event::Stream(StreamEvent::Readable(_)))
                if !done =>
            {
                let conn = endpoint.connection(h).unwrap();
                while let Some(id) = conn.accept_stream(Dir::Bi) {
                    let _ = id;
                }
                let id = quic_proto::StreamId::new(quic_proto::Side::Client, Dir::Bi, 0).unwrap();
                loop {
                    match conn.read_chunk(id, usize::MAX) {
                        Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                        Ok(None) => {
                            done = true;
                            break;
                        }
                        Err(ReadError::Blocked) => break,
                        Err(e) => panic!("server read: {e}"),
                    }
                }
            }
            _ => {}
        });
        let now = client.now();
        client.process(now, |endpoint, event| {
            let DriverEvent::Connection(h, event) = event else { return };
            assert_eq!(h, handle);
            let conn = endpoint.connection(h).unwrap();
            if let Event::ConnectionLost(e) = &event {
                panic!("client connection lost: {e}");
            }
            if matches!(event, Event::HandshakeCompleted) {
                stream = conn.open_stream(Dir::Bi);
            }
        });
        // Writes are retried on every wake-up, which also proves nothing
        // is lost by writing when not told to (`Writable` would do).
        if let Some(id) = stream
            && let Some(conn) = client.connection(handle)
        {
            while sent < data.len() {
                match conn.write_bytes(id, data.slice(sent..)) {
                    Ok(n) => sent += n,
                    Err(WriteError::Blocked) => break,
                    Err(e) => panic!("client write: {e}"),
                }
            }
            if sent == data.len() && !finished {
                conn.finish(id).unwrap();
                finished = true;
            }
            client.flush(now);
        }
    }
    assert!(done, "the upload completes ({} of {size} bytes arrived)", received.len());
    Outcome { received, server: server.stats(), client: client.stats(), retried }
}

fn check(outcome: &Outcome, size: usize) {
    assert_eq!(outcome.received.len(), size);
    assert!(outcome.received.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn upload_over_ipv4_with_gso_batches() {
    let outcome = upload(IpAddr::V4(Ipv4Addr::LOCALHOST), 2 << 20, true, IncomingPolicy::Accept);
    check(&outcome, 2 << 20);
    let c = outcome.client;
    eprintln!("client {c:?}\nserver {:?}", outcome.server);
    if UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap().max_gso_segments() > 1 {
        assert!(c.send_calls < c.datagrams_sent, "GSO batches datagrams: {c:?}");
    }
}

#[test]
fn upload_over_ipv6_without_gso() {
    let outcome = upload(IpAddr::V6(Ipv6Addr::LOCALHOST), 1 << 20, false, IncomingPolicy::Accept);
    check(&outcome, 1 << 20);
    assert_eq!(outcome.client.send_calls, outcome.client.datagrams_sent);
}

#[test]
fn retry_policy_validates_then_accepts() {
    check(&upload(IpAddr::V4(Ipv4Addr::LOCALHOST), 10_000, true, IncomingPolicy::Retry), 10_000);
}

#[test]
fn manual_policy_hands_attempts_to_the_application() {
    let outcome = upload(IpAddr::V4(Ipv4Addr::LOCALHOST), 10_000, true, IncomingPolicy::Manual);
    check(&outcome, 10_000);
    assert!(outcome.retried, "the accepted attempt came back after the Retry");
}

/// A full send buffer (`WouldBlock`) keeps the transmit, whole GSO batch or
/// the rest of one, and sends it later: nothing is lost or sent twice.
#[test]
fn would_block_keeps_the_transmit_for_later() {
    let size = 1 << 20;
    let outcome = upload_with(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        size,
        true,
        IncomingPolicy::Accept,
        |client, _| client.socket().block_every_nth_send(4),
    );
    check(&outcome, size);
    let c = outcome.client;
    assert!(c.send_blocked >= 3, "the client's sends blocked: {c:?}");
    assert_eq!(c.send_errors, 0, "{c:?}");
}

/// The same when GSO is refused at run time and batches go out one datagram
/// at a time: a batch that blocks midway resumes from the datagram it
/// stopped at.
#[test]
fn would_block_midway_through_a_batch_resumes_where_it_stopped() {
    let size = 1 << 20;
    let outcome = upload_with(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        size,
        true,
        IncomingPolicy::Accept,
        |client, _| {
            client.socket().fail_gso_sends();
            client.socket().block_every_nth_send(3);
        },
    );
    check(&outcome, size);
    let c = outcome.client;
    assert!(c.send_blocked > 10, "the client's sends blocked: {c:?}");
    assert_eq!(c.send_errors, 0, "{c:?}");
}

/// A trace sink the test reads back.
#[derive(Clone, Default)]
struct SharedSink(Arc<std::sync::Mutex<Vec<u8>>>);

impl io::Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One block of a trace, in file order: a datagram (direction inbound,
/// timestamp in nanoseconds) or one of replay's input records.
#[derive(Debug)]
enum Item {
    Datagram { inbound: bool, time: u64 },
    Input(InputRecord),
}

impl SharedSink {
    /// The datagrams and input records, in file order.
    fn items(&self) -> Vec<Item> {
        let file = self.0.lock().unwrap();
        let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
        let (mut items, mut at) = (Vec::new(), 0);
        while at < file.len() {
            let (kind, total) = (u32_at(at), u32_at(at + 4) as usize);
            if kind == 6 {
                let captured = u32_at(at + 20) as usize;
                let options = at + 28 + captured.next_multiple_of(4);
                let time = (u64::from(u32_at(at + 12)) << 32) | u64::from(u32_at(at + 16));
                let inbound = u32_at(options + 4) & 0b11 == 0b01;
                items.push(Item::Datagram { inbound, time });
            } else if kind == 0x0BAD && u32_at(at + 8) == crate::socket::trace::TRACE_PEN {
                let records = InputRecord::decode_all(&file[at + 12..at + total - 4]);
                items.extend(records.into_iter().map(Item::Input));
            }
            at += total;
        }
        items
    }

    /// The UDP payload lengths of the Enhanced Packet Blocks, inbound and
    /// outbound (raw IPv4 packets: 28 bytes of headers).
    fn datagram_lengths(&self) -> (Vec<usize>, Vec<usize>) {
        let file = self.0.lock().unwrap();
        let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
        let (mut inbound, mut outbound) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < file.len() {
            let (kind, total) = (u32_at(at), u32_at(at + 4) as usize);
            if kind == 6 {
                let captured = u32_at(at + 20) as usize;
                let options = at + 28 + captured.next_multiple_of(4);
                // epb_flags (code 2) comes first: bits 0-1 are the direction.
                assert_eq!(u32_at(options) & 0xffff, 2, "epb_flags");
                match u32_at(options + 4) & 0b11 {
                    0b01 => inbound.push(captured - 28),
                    0b10 => outbound.push(captured - 28),
                    other => panic!("direction {other}"),
                }
            }
            at += total;
        }
        (inbound, outbound)
    }
}

/// A traced driver records each datagram once, as the core saw it: a GSO
/// batch as its datagrams, a GRO buffer split at its stride, a send that
/// blocked and went out later not twice.
#[test]
fn traces_record_each_datagram_once_gso_batches_split() {
    let size = 1 << 20;
    let (client_sink, server_sink) = (SharedSink::default(), SharedSink::default());
    let sinks = (client_sink.clone(), server_sink.clone());
    let outcome = upload_with(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        size,
        true,
        IncomingPolicy::Accept,
        move |client, server| {
            client.set_trace(Trace::new(Box::new(sinks.0)).unwrap());
            server.set_trace(Trace::new(Box::new(sinks.1)).unwrap());
            client.socket().block_every_nth_send(5);
        },
    );
    check(&outcome, size);
    let (c, s) = (outcome.client, outcome.server);
    let (client_in, client_out) = client_sink.datagram_lengths();
    let (server_in, server_out) = server_sink.datagram_lengths();
    assert_eq!(client_in.len() as u64, c.datagrams_received, "{c:?}");
    assert_eq!(server_in.len() as u64, s.datagrams_received, "{s:?}");
    assert_eq!(server_out.len() as u64, s.datagrams_sent + s.send_errors, "{s:?}");
    // A batch blocked when the loop ended was recorded (the core made it)
    // but never sent; one batch at most.
    let unsent = client_out.len() as u64 - c.datagrams_sent - c.send_errors;
    assert!(unsent <= 64, "{} recorded, {c:?}", client_out.len());
    assert!(c.send_blocked > 0, "{c:?}");
    // Replay's inputs: every datagram the core made is timed by the
    // wake-up (or the application's flush) that polled it, and every
    // send that blocked is marked where the driver stopped polling.
    for (sink, stats) in [(&client_sink, c), (&server_sink, s)] {
        let items = sink.items();
        let Some(Item::Input(InputRecord::ClockOrigin(origin))) = items.first() else {
            panic!("the trace starts with the clock origin: {:?}", items.first());
        };
        let mut polled_at = None;
        let (mut wakeups, mut blocked) = (0, 0);
        for item in &items {
            match item {
                Item::Input(InputRecord::Wakeup(t)) => {
                    wakeups += 1;
                    polled_at = Some(*t);
                }
                Item::Input(InputRecord::Flush(t)) => polled_at = Some(*t),
                Item::Input(InputRecord::SendBlocked(t)) => {
                    blocked += 1;
                    assert_eq!(Some(*t), polled_at, "blocked during the last poll");
                }
                Item::Datagram { inbound: false, time } => {
                    assert_eq!(Some(time - origin), polled_at, "sent at the poll's time");
                }
                _ => {}
            }
        }
        assert!(wakeups > 0, "{stats:?}");
        assert_eq!(blocked, stats.send_blocked, "{stats:?}");
    }
    let largest = client_out.iter().chain(&server_out).chain(&client_in).max().copied();
    assert!(largest.is_some_and(|l| l <= 1500), "one record per datagram: {largest:?}");
    if UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap().max_gso_segments() > 1 {
        assert!(c.send_calls < c.datagrams_sent, "GSO batched datagrams: {c:?}");
    }
}

/// A driver that made its endpoint records the endpoint's seed and its
/// clock's origin in the trace, ahead of the first datagram.
#[test]
fn a_trace_starts_with_the_endpoint_seed_and_the_clock_origin() {
    let seed = [7; 32];
    let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut driver = Driver::with_seed(socket, EndpointConfig::default(), None, seed);
    assert_eq!(driver.seed(), Some(seed));
    let sink = SharedSink::default();
    driver.set_trace(Trace::new(Box::new(sink.clone())).unwrap());
    drop(driver);
    let file = sink.0.lock().unwrap().clone();
    let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
    let (mut at, mut records) = (0, Vec::new());
    while at < file.len() {
        let (kind, total) = (u32_at(at), u32_at(at + 4) as usize);
        if kind == 0x0BAD && u32_at(at + 8) == crate::socket::trace::TRACE_PEN {
            records.extend(InputRecord::decode_all(&file[at + 12..at + total - 4]));
        }
        at += total;
    }
    assert!(
        matches!(
            records[..],
            [InputRecord::ClockOrigin(_), InputRecord::EndpointSeed(s), InputRecord::GsoSegments(_)]
                if s == seed
        ),
        "{records:?}"
    );
    let made = Driver::new(
        UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap(),
        Endpoint::new(EndpointConfig::default(), None, Box::new(SystemRandom)),
    );
    assert_eq!(made.seed(), None, "an endpoint made elsewhere: no seed to record");
}

/// One wake-up of a loop over `drivers`: waits as the drivers ask, feeds
/// them, and processes them. Returns whether anything was ready.
fn wake(poll: &mut mio::Poll, events: &mut mio::Events, drivers: &mut [&mut Driver]) -> bool {
    let timeout = drivers.iter_mut().filter_map(|d| d.timeout(d.now())).min();
    // Bounded so a test cannot hang; a quiet loop waits the whole period.
    let timeout = timeout.map_or(Duration::from_millis(250), |t| t.min(Duration::from_millis(250)));
    poll.poll(events, Some(timeout)).unwrap();
    let ready = !events.is_empty();
    for event in events.iter() {
        let d = &mut drivers[event.token().0];
        let now = d.now();
        d.handle_mio_event(now, event);
    }
    for d in drivers.iter_mut() {
        let now = d.now();
        d.process(now, |endpoint, event| {
            if let DriverEvent::Incoming(incoming) = event {
                let _ = endpoint.accept(now, incoming);
            }
        });
    }
    ready
}

#[test]
fn a_quiet_second_after_a_forged_initial_flood_costs_few_wake_ups() {
    let pki = TestPki::new(8);
    let server_config = ServerConfig {
        tls: Arc::new(server_config(&pki, &[ALPN], 3)),
        transport: Arc::new(TransportConfig::default()),
    };
    let client_config = ClientConfig {
        tls: Arc::new(client_config(&pki, &[ALPN], 4)),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    };
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(64);
    let mut server =
        Driver::bind(SocketAddr::new(ip, 0), EndpointConfig::default(), Some(server_config))
            .unwrap();
    let mut client = Driver::bind(SocketAddr::new(ip, 0), EndpointConfig::default(), None).unwrap();
    server.register(poll.registry(), SERVER).unwrap();
    client.register(poll.registry(), CLIENT).unwrap();
    let now = client.now();
    let handle = client.connect(now, &client_config, "localhost", server.local_addr()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !client.connection(handle).is_some_and(|c| c.is_handshake_complete()) {
        assert!(std::time::Instant::now() < deadline, "no handshake");
        wake(&mut poll, &mut events, &mut [&mut server, &mut client]);
    }
    // 300 forged Initials (random protection) from a plain socket.
    let attacker = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut forged = [0u8; 1200];
    for i in 0..300u32 {
        for (j, b) in forged.iter_mut().enumerate() {
            *b = (i.wrapping_mul(2_654_435_761).wrapping_add(j as u32 * 40_503) >> 13) as u8;
        }
        forged[0] = 0xc3;
        forged[1..5].copy_from_slice(&1u32.to_be_bytes());
        forged[5] = 8;
        attacker.send_to(&forged, server.local_addr()).unwrap();
    }
    // Let the flood be read and the handshake settle (ACKs, HANDSHAKE_DONE).
    let settle = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < settle {
        wake(&mut poll, &mut events, &mut [&mut server, &mut client]);
    }
    assert_eq!(server.endpoint().connection_count(), 1, "a forged Initial made a connection");
    assert_eq!(server.endpoint().incoming_count(), 0);
    assert!(server.endpoint().stats().initials_unauthenticated > 0, "the flood was read");
    // A quiet second: an idle connection and nothing arriving.
    let end = std::time::Instant::now() + Duration::from_secs(1);
    let mut wake_ups = 0;
    while std::time::Instant::now() < end {
        wake(&mut poll, &mut events, &mut [&mut server, &mut client]);
        wake_ups += 1;
    }
    // A spinning loop wakes thousands of times; a quiet one a handful
    // (each 250 ms cap, plus whatever timer the idle connection has).
    assert!(wake_ups <= 12, "{wake_ups} wake-ups in a quiet second");
}

/// Regression: a read that stopped at its batch limit was only resumed by
/// the next readiness event (mio is edge-triggered), so under a flood the
/// loop spun on empty polls and read one batch per new arrival.
#[test]
fn a_read_stopped_at_the_batch_limit_resumes_without_a_readiness_event() {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(64);
    let mut server = Driver::bind(SocketAddr::new(ip, 0), EndpointConfig::default(), None).unwrap();
    server.register(poll.registry(), SERVER).unwrap();
    let sender = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    // Alternating sizes, so that GRO cannot merge them: one receive call each.
    let total = 8 * READ_BATCH as u64;
    for i in 0..total {
        let len = 60 + (i % 2) as usize;
        sender.send_to(&vec![0x40; len], server.local_addr()).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.stats().datagrams_received == 0 {
        assert!(std::time::Instant::now() < deadline, "nothing arrived");
        poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
        for event in events.iter() {
            let now = server.now();
            server.handle_mio_event(now, event);
        }
    }
    assert!(server.stats().datagrams_received < total, "one wake-up read everything");
    assert_eq!(server.timeout(server.now()), Some(Duration::ZERO), "a backlog asks for no wait");
    // No readiness event comes for what is queued: process alone reads on.
    for _ in 0..total {
        if server.stats().datagrams_received == total {
            break;
        }
        let now = server.now();
        server.process(now, |_, _| {});
    }
    assert_eq!(server.stats().datagrams_received, total);
}
