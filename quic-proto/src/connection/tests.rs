//! Two `Connection`s talking over a simulated link in virtual time.
//!
//! A minimal driver for the connection alone; the endpoint-level `Pair`
//! harness (issue: core transport) builds on the same loop.

use core::time::Duration;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::packet::{PartialDecode, ProtectedHeader};
use crate::random::SeededRandom;
use crate::testing::{TestPki, client_config, server_config};

const ALPN: &[u8] = b"test";

fn client_addr() -> SocketAddr {
    "10.0.0.1:4433".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "10.0.0.2:443".parse().unwrap()
}

/// Decides a datagram's fate: `true` drops it. Arguments: whether it goes
/// to the server, its index among datagrams in that direction, its bytes.
type DropHook = Box<dyn FnMut(bool, u64, &[u8]) -> bool>;

struct Pair {
    now: Instant,
    client: Connection,
    server: Option<Connection>,
    server_config: ServerConfig,
    seed: u64,
    delay: Duration,
    /// (arrival time, to server, bytes)
    link: VecDeque<(Instant, bool, Vec<u8>)>,
    sent: [u64; 2],
    drop: DropHook,
    /// Every datagram sent, in order, for determinism checks.
    trace: Vec<(bool, Vec<u8>)>,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
}

impl Pair {
    fn new(seed: u64) -> Self {
        Self::with_configs(seed, TransportConfig::default(), TransportConfig::default(), &[ALPN])
    }

    fn with_configs(
        seed: u64,
        client_transport: TransportConfig,
        server_transport: TransportConfig,
        client_alpn: &[&[u8]],
    ) -> Self {
        let pki = TestPki::new(seed);
        let client_cfg = ClientConfig {
            tls: Arc::new(client_config(&pki, client_alpn, seed)),
            transport: Arc::new(client_transport),
            version: Version::V1,
        };
        let server_config = ServerConfig {
            tls: Arc::new(server_config(&pki, &[ALPN], seed.wrapping_add(1))),
            transport: Arc::new(server_transport),
        };
        let now = Instant::from_millis(1_000);
        let rng = Box::new(SeededRandom::from_u64(seed.wrapping_add(2)));
        let client =
            Connection::connect(now, &client_cfg, TestPki::SERVER_NAME, server_addr(), rng)
                .expect("client starts");
        Self {
            now,
            client,
            server: None,
            server_config,
            seed,
            delay: Duration::from_millis(10),
            link: VecDeque::new(),
            sent: [0; 2],
            drop: Box::new(|_, _, _| false),
            trace: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    fn server(&mut self) -> &mut Connection {
        self.server.as_mut().expect("the server exists once the first Initial arrived")
    }

    /// Sends everything both sides have to send, onto the link.
    fn flush(&mut self) {
        let mut buf = Vec::new();
        loop {
            let mut any = false;
            while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
                assert_eq!(t.destination, server_addr());
                self.put(true, &buf[..t.size]);
                any = true;
            }
            if let Some(server) = self.server.as_mut() {
                let mut out = Vec::new();
                while let Some(t) = server.poll_transmit(self.now, &mut buf) {
                    assert_eq!(t.destination, client_addr());
                    out.push(buf[..t.size].to_vec());
                }
                any |= !out.is_empty();
                for d in out {
                    self.put(false, &d);
                }
            }
            if !any {
                break;
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
        if let Some(server) = self.server.as_mut() {
            while let Some(e) = server.poll_event() {
                self.server_events.push(e);
            }
        }
    }

    fn put(&mut self, to_server: bool, data: &[u8]) {
        self.trace.push((to_server, data.to_vec()));
        let index = self.sent[to_server as usize];
        self.sent[to_server as usize] += 1;
        if (self.drop)(to_server, index, data) {
            return;
        }
        self.link.push_back((self.now + self.delay, to_server, data.to_vec()));
    }

    fn deliver(&mut self, to_server: bool, data: &[u8]) {
        let now = self.now;
        if to_server {
            if self.server.is_none() {
                let Ok(d) = PartialDecode::parse(data, 0, false) else { return };
                let ProtectedHeader::Long(h) = d.header() else { return };
                let rng = Box::new(SeededRandom::from_u64(self.seed.wrapping_add(3)));
                let local_cid = ConnectionId::from_slice(&[0x5e; 8]).unwrap();
                let mut retry = None;
                if !h.token.is_empty() {
                    // Tests that exercise Retry put "odcid|retry_scid" in the token.
                    let t = h.token;
                    retry = Some((
                        ConnectionId::from_slice(&t[..8]).unwrap(),
                        ConnectionId::from_slice(&t[8..16]).unwrap(),
                    ));
                }
                let server = Connection::accept(
                    now,
                    &self.server_config,
                    h.version,
                    client_addr(),
                    h.dcid,
                    h.scid,
                    local_cid,
                    retry,
                    rng,
                )
                .expect("server accepts");
                self.server = Some(server);
            }
            let meta = DatagramMeta { remote: client_addr(), local_ip: None, ecn: None };
            self.server().handle_datagram(now, meta, BytesMut::from(data));
        } else {
            let meta = DatagramMeta { remote: server_addr(), local_ip: None, ecn: None };
            self.client.handle_datagram(now, meta, BytesMut::from(data));
        }
    }

    /// Advances virtual time to the next event and processes it. Returns
    /// `false` when nothing is left to happen.
    fn step(&mut self) -> bool {
        self.flush();
        let mut next = self.link.front().map(|(t, _, _)| *t);
        for t in [self.client.poll_timeout(), self.server.as_ref().and_then(|s| s.poll_timeout())]
            .into_iter()
            .flatten()
        {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        while self.link.front().is_some_and(|(t, _, _)| *t <= self.now) {
            let (_, to_server, data) = self.link.pop_front().expect("checked");
            self.deliver(to_server, &data);
        }
        let now = self.now;
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        if let Some(server) = self.server.as_mut()
            && server.poll_timeout().is_some_and(|t| t <= now)
        {
            server.handle_timeout(now);
        }
        self.flush();
        true
    }

    /// Steps until `done` holds, failing (with the seed) past `limit` of virtual time.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            assert!(self.now < deadline, "seed {}: condition not met within {limit:?}", self.seed);
            assert!(self.step(), "seed {}: nothing left to happen", self.seed);
        }
    }

    fn handshake(&mut self) {
        self.run_until(Duration::from_secs(10), |p| {
            p.client.is_handshake_complete()
                && p.server.as_ref().is_some_and(|s| s.is_handshake_complete())
                && p.client_events.contains(&Event::HandshakeConfirmed)
        });
    }
}

/// Sends `data` on a new stream from `from_client`'s side and reads it on
/// the other, returning what arrived.
fn transfer(pair: &mut Pair, from_client: bool, data: &Bytes) -> Vec<u8> {
    fn sender(p: &mut Pair, from_client: bool) -> &mut Connection {
        if from_client { &mut p.client } else { p.server.as_mut().unwrap() }
    }
    let id = sender(pair, from_client).open_stream(Dir::Uni).expect("stream limit allows one");
    let mut written = 0;
    let mut received = Vec::new();
    let mut peer_id = None;
    let mut finished = false;
    let deadline = pair.now + Duration::from_secs(120);
    while !finished {
        assert!(pair.now < deadline, "seed {}: transfer did not finish", pair.seed);
        while written < data.len() {
            match sender(pair, from_client).write_bytes(id, data.slice(written..)) {
                Ok(n) => written += n,
                Err(WriteError::Blocked) => break,
                Err(e) => panic!("seed {}: write failed: {e}", pair.seed),
            }
        }
        if written == data.len() {
            let _ = sender(pair, from_client).finish(id);
        }
        let receiver = if from_client { pair.server.as_mut().unwrap() } else { &mut pair.client };
        if peer_id.is_none() {
            peer_id = receiver.accept_stream(Dir::Uni);
        }
        if let Some(rid) = peer_id {
            let mut buf = [0u8; 65536];
            loop {
                match receiver.read(rid, &mut buf) {
                    Ok(Some(n)) => received.extend_from_slice(&buf[..n]),
                    Ok(None) => {
                        finished = true;
                        break;
                    }
                    Err(ReadError::Blocked) => break,
                    Err(e) => panic!("seed {}: read failed: {e}", pair.seed),
                }
            }
        }
        if !finished {
            assert!(pair.step(), "seed {}: stalled", pair.seed);
        }
    }
    received
}

fn payload(len: usize, seed: u64) -> Bytes {
    let mut data = vec![0u8; len];
    SeededRandom::from_u64(seed).fill(&mut data);
    Bytes::from(data)
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.2
//= type=test
//# the TLS handshake is considered confirmed at the
//# server when the handshake completes.
#[test]
fn handshake_completes_and_confirms() {
    let mut pair = Pair::new(1);
    pair.handshake();
    assert_eq!(pair.client.alpn(), Some(ALPN));
    assert!(pair.server_events.contains(&Event::HandshakeConfirmed));
    let params = pair.client.peer_transport_parameters().unwrap();
    assert_eq!(params.initial_source_connection_id.map(|c| c.len()), Some(8));
    //= https://www.rfc-editor.org/rfc/rfc9000#section-14.1
    //= type=test
    //# A client MUST expand the payload of all UDP datagrams carrying Initial packets
    //# to at least the smallest allowed maximum datagram size of 1200 bytes
    let first = &pair.trace.iter().find(|(to_server, _)| *to_server).unwrap().1;
    assert!(first.len() >= 1200, "client Initial datagram is {} bytes", first.len());
}

#[test]
fn stream_data_arrives_both_ways() {
    let mut pair = Pair::new(2);
    pair.handshake();
    let up = payload(1_000_000, 20);
    assert_eq!(transfer(&mut pair, true, &up), up);
    let down = payload(300_000, 21);
    assert_eq!(transfer(&mut pair, false, &down), down);
}

#[test]
fn transfer_survives_loss() {
    for seed in [3, 4] {
        let mut pair = Pair::new(seed);
        let mut rng = SeededRandom::from_u64(seed * 100);
        // Lose 10% of datagrams in each direction, handshake included.
        pair.drop = Box::new(move |_, _, _| rng.below(10) == 0);
        pair.handshake();
        let data = payload(400_000, seed);
        assert_eq!(transfer(&mut pair, true, &data), data, "seed {seed}");
        assert!(pair.client.stats().packets_lost > 0, "seed {seed}: losses were recovered");
    }
}

#[test]
fn handshake_recovers_from_lost_first_flights() {
    let mut pair = Pair::new(5);
    // Lose the client's first Initial and the server's first flight.
    pair.drop = Box::new(|to_server, index, _| index == 0 || (!to_server && index == 1));
    pair.handshake();
}

#[test]
fn runs_are_deterministic() {
    let run = |seed| {
        let mut pair = Pair::new(seed);
        pair.handshake();
        let data = payload(50_000, 9);
        assert_eq!(transfer(&mut pair, true, &data), data);
        pair.trace
    };
    let (a, b, c) = (run(6), run(6), run(7));
    assert_eq!(a, b, "same seed, same bytes on the wire");
    assert_ne!(a, c, "another seed changes the bytes");
}

#[test]
fn application_close_reaches_the_peer_and_both_drain() {
    let mut pair = Pair::new(8);
    pair.handshake();
    let now = pair.now;
    pair.client.close(now, VarInt::from_u32(42), b"bye");
    pair.run_until(Duration::from_secs(10), |p| {
        p.client.is_drained() && p.server.as_ref().unwrap().is_drained()
    });
    let expected = ConnectionError::ApplicationClosed {
        code: VarInt::from_u32(42),
        reason: Bytes::from_static(b"bye"),
    };
    assert!(pair.server_events.contains(&Event::ConnectionLost(expected)));
    assert!(pair.client_events.contains(&Event::ConnectionLost(ConnectionError::LocallyClosed)));
    assert!(pair.client_events.contains(&Event::Drained));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-10.1
//= type=test
//# If a max_idle_timeout is specified by either endpoint in its transport
//# parameters (Section 18.2), the connection is silently closed
//# and its state is discarded when it remains idle for longer than the minimum of
//# the max_idle_timeout value advertised by both endpoints.
#[test]
fn idle_connections_time_out_at_the_smaller_timeout() {
    let mut client_cfg = TransportConfig::default();
    client_cfg.max_idle_timeout(Some(Duration::from_secs(5)));
    let mut pair = Pair::with_configs(9, client_cfg, TransportConfig::default(), &[ALPN]);
    pair.handshake();
    let start = pair.now;
    pair.run_until(Duration::from_secs(60), |p| p.client.is_drained());
    let idle = pair.now - start;
    assert!(idle >= Duration::from_secs(4) && idle <= Duration::from_secs(6), "idle for {idle:?}");
    assert_eq!(pair.client.error(), Some(&ConnectionError::TimedOut));
}

#[test]
fn alpn_mismatch_closes_with_crypto_error() {
    let mut pair =
        Pair::with_configs(10, TransportConfig::default(), TransportConfig::default(), &[b"other"]);
    pair.run_until(Duration::from_secs(10), |p| p.client.is_closed());
    let Some(ConnectionError::ConnectionClosed { code, .. }) = pair.client.error() else {
        panic!("client saw {:?}", pair.client.error());
    };
    // no_application_protocol (120), RFC 9001 §8.1.
    assert_eq!(*code, crate::TransportErrorCode::crypto(120));
}

#[test]
fn key_updates_keep_the_transfer_going() {
    let mut pair = Pair::new(11);
    pair.handshake();
    let data = payload(200_000, 1);
    assert_eq!(transfer(&mut pair, true, &data), data);
    let now = pair.now;
    assert!(pair.client.force_key_update(now), "allowed after confirmation and an ACK");
    assert!(!pair.client.force_key_update(now), "not again before an ACK in the new phase");
    let data = payload(200_000, 2);
    assert_eq!(transfer(&mut pair, true, &data), data);
    assert_eq!(pair.server().stats().key_updates, 1, "the server followed the update");
    // The server has sent only ACKs (never acknowledged) in the new phase:
    // RFC 9001 §6.1 keeps it from initiating until an ack-eliciting packet
    // of this phase is acknowledged.
    let now = pair.now;
    assert!(!pair.server().force_key_update(now));
    let data = payload(100_000, 3);
    assert_eq!(transfer(&mut pair, false, &data), data);
    let now = pair.now;
    assert!(pair.server().force_key_update(now), "now the server may initiate");
    let data = payload(100_000, 4);
    assert_eq!(transfer(&mut pair, false, &data), data);
    assert_eq!(pair.client.stats().key_updates, 2, "the client initiated one and followed one");
}

#[test]
fn datagrams_are_delivered() {
    let mut pair = Pair::new(12);
    pair.handshake();
    let max = pair.client.max_datagram_size().expect("both sides enable datagrams");
    assert!(max > 1000);
    pair.client.send_datagram(Bytes::from_static(b"hello")).unwrap();
    assert_eq!(
        pair.client.send_datagram(Bytes::from(vec![0; max + 1])),
        Err(SendDatagramError::TooLarge)
    );
    pair.run_until(Duration::from_secs(1), |p| p.server_events.contains(&Event::DatagramReceived));
    assert_eq!(pair.server().read_datagram(), Some(Bytes::from_static(b"hello")));
}
