//! Connection tests over the `Pair` harness (`crate::testing::pair`), and
//! the test-only views and hooks on [`Connection`] that the topic suites in
//! `crate::tests` use to check invariants and to play a hostile peer.
//!
//! The hooks live here, in a child module of `connection`, so that they can
//! reach private state without adding test code to the connection itself.

use core::time::Duration;

use bytes::Bytes;

use super::*;
use crate::testing::pair::{DEFAULT_ALPN as ALPN, Direction, Pair, Verdict, payload};

/// Test-only views and hooks (`crate::tests` uses them).
impl Connection {
    /// Bytes in flight (RFC 9002 Appendix B.2).
    pub(crate) fn bytes_in_flight(&self) -> u64 {
        self.loss.bytes_in_flight()
    }

    /// The congestion window.
    pub(crate) fn congestion_window(&self) -> u64 {
        self.cc.window()
    }

    /// Whether a PTO asked for probe packets that are not sent yet.
    pub(crate) fn probes_pending(&self) -> bool {
        self.spaces.iter().any(|s| s.probes > 0)
    }

    /// Consecutive PTO expiries without an acknowledgment.
    pub(crate) fn pto_count(&self) -> u32 {
        self.loss.pto_count()
    }

    /// The current PTO period of the application data space, without backoff.
    pub(crate) fn pto_period(&self) -> Duration {
        self.loss.pto_period(SpaceId::Data)
    }

    /// PATH_RESPONSE payloads waiting to be sent.
    pub(crate) fn pending_path_responses(&self) -> Vec<[u8; 8]> {
        self.path_responses.iter().copied().collect()
    }

    /// Stream data received and not yet read, and the memory it keeps
    /// alive (`RecvBuffer::buffered`, `RecvBuffer::pinned`), summed over
    /// the streams.
    pub(crate) fn stream_receive_memory(&self) -> (u64, u64) {
        self.streams.receive_memory()
    }

    /// Packets buffered because their keys are not available yet.
    pub(crate) fn undecryptable_len(&self) -> usize {
        self.undecryptable.len()
    }

    /// Whether TLS needed a HelloRetryRequest, once the handshake is done.
    pub(crate) fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        self.tls.handshake_kind()
    }

    /// The connection-level send limit the peer granted (MAX_DATA).
    pub(crate) fn peer_max_data(&self) -> u64 {
        self.streams.conn_send.max().into_inner()
    }

    /// The connection-level receive window this endpoint currently offers.
    pub(crate) fn receive_window(&self) -> u64 {
        self.streams.conn_recv.window()
    }

    /// Counts enough failed 1-RTT openings that one more reaches the AEAD
    /// integrity limit (RFC 9001 §6.6), which no test could reach honestly.
    pub(crate) fn exhaust_integrity_limit(&mut self) {
        let keys = self.one_rtt.as_mut().expect("1-RTT keys: the handshake completed");
        let limit = keys.choose(keys.phase(), 0).1.integrity_limit();
        keys.failed_openings = limit;
    }
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.2
//= type=test
//# the TLS handshake is considered confirmed at the
//# server when the handshake completes.
#[test]
fn handshake_completes_and_confirms() {
    let mut pair = Pair::new(1);
    pair.handshake();
    assert_eq!(pair.client().alpn(), Some(ALPN));
    assert!(pair.server_events().contains(&Event::HandshakeConfirmed));
    let params = pair.client().peer_transport_parameters().unwrap();
    assert_eq!(params.initial_source_connection_id.map(|c| c.len()), Some(8));
    //= https://www.rfc-editor.org/rfc/rfc9000#section-14.1
    //= type=test
    //# A client MUST expand the payload of all UDP datagrams carrying Initial packets
    //# to at least the smallest allowed maximum datagram size of 1200 bytes
    let first =
        &pair.trace().iter().find(|r| r.direction == Direction::ClientToServer).unwrap().data;
    assert!(first.len() >= 1200, "client Initial datagram is {} bytes", first.len());
}

#[test]
fn stream_data_arrives_both_ways() {
    let mut pair = Pair::new(2);
    pair.handshake();
    let up = payload(1_000_000, 20);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &up), up);
    let down = payload(300_000, 21);
    assert_eq!(pair.transfer(Side::Server, Dir::Uni, &down), down);
}

#[test]
fn transfer_survives_loss() {
    for seed in [3, 4] {
        let mut pair = Pair::new(seed);
        // Lose 10% of datagrams in each direction, handshake included.
        pair.links(|l| {
            l.loss(0.1);
        });
        pair.handshake();
        let data = payload(400_000, seed);
        assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data, "seed {seed}");
        assert!(pair.client().stats().packets_lost > 0, "seed {seed}: losses were recovered");
    }
}

#[test]
fn handshake_recovers_from_lost_first_flights() {
    let mut pair = Pair::new(5);
    // Lose the client's first Initial and the server's first flight.
    pair.set_hook(|d| {
        let server_flight = d.direction == Direction::ServerToClient && d.index == 1;
        if d.index == 0 || server_flight { Verdict::Drop } else { Verdict::Deliver }
    });
    pair.handshake();
}

#[test]
fn runs_are_deterministic() {
    let run = |seed| {
        let mut pair = Pair::new(seed);
        pair.handshake();
        let data = payload(50_000, 9);
        assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
        pair.take_trace()
    };
    let (a, b, c) = (run(6), run(6), run(7));
    assert_eq!(a, b, "same seed, same bytes on the wire");
    assert_ne!(a, c, "another seed changes the bytes");
}

#[test]
fn application_close_reaches_the_peer_and_both_drain() {
    let mut pair = Pair::new(8);
    pair.handshake();
    let now = pair.now();
    pair.client().close(now, VarInt::from_u32(42), b"bye");
    pair.drive_until(Duration::from_secs(10), |p| {
        p.client().is_drained() && p.server().is_drained()
    });
    let expected = ConnectionError::ApplicationClosed {
        code: VarInt::from_u32(42),
        reason: Bytes::from_static(b"bye"),
    };
    assert!(pair.server_events().contains(&Event::ConnectionLost(expected)));
    assert!(pair.client_events().contains(&Event::ConnectionLost(ConnectionError::LocallyClosed)));
    assert!(pair.client_events().contains(&Event::Drained));
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
    let mut pair = Pair::builder(9).client_transport(client_cfg).build();
    pair.handshake();
    let start = pair.now();
    pair.drive_until(Duration::from_secs(60), |p| p.client().is_drained());
    let idle = pair.now() - start;
    assert!(idle >= Duration::from_secs(4) && idle <= Duration::from_secs(6), "idle for {idle:?}");
    assert_eq!(pair.client().error(), Some(&ConnectionError::TimedOut));
}

#[test]
fn alpn_mismatch_closes_with_crypto_error() {
    let mut pair = Pair::builder(10).client_alpn(&[b"other"]).build();
    pair.drive_until(Duration::from_secs(10), |p| p.client().is_closed());
    let Some(ConnectionError::ConnectionClosed { code, .. }) = pair.client().error() else {
        panic!("client saw {:?}", pair.client().error());
    };
    // no_application_protocol (120), RFC 9001 §8.1.
    assert_eq!(*code, crate::TransportErrorCode::crypto(120));
}

#[test]
fn key_updates_keep_the_transfer_going() {
    let mut pair = Pair::new(11);
    pair.handshake();
    let data = payload(200_000, 1);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
    let now = pair.now();
    assert!(pair.client().force_key_update(now), "allowed after confirmation and an ACK");
    assert!(!pair.client().force_key_update(now), "not again before an ACK in the new phase");
    let data = payload(200_000, 2);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
    assert_eq!(pair.server().stats().key_updates, 1, "the server followed the update");
    // The server has sent only ACKs (never acknowledged) in the new phase:
    // RFC 9001 §6.1 keeps it from initiating until an ack-eliciting packet
    // of this phase is acknowledged.
    let now = pair.now();
    assert!(!pair.server().force_key_update(now));
    let data = payload(100_000, 3);
    assert_eq!(pair.transfer(Side::Server, Dir::Uni, &data), data);
    let now = pair.now();
    assert!(pair.server().force_key_update(now), "now the server may initiate");
    let data = payload(100_000, 4);
    assert_eq!(pair.transfer(Side::Server, Dir::Uni, &data), data);
    assert_eq!(pair.client().stats().key_updates, 2, "the client initiated one and followed one");
}

#[test]
fn datagrams_are_delivered() {
    let mut pair = Pair::new(12);
    pair.handshake();
    let max = pair.client().max_datagram_size().expect("both sides enable datagrams");
    assert!(max > 1000);
    pair.client().send_datagram(Bytes::from_static(b"hello")).unwrap();
    assert_eq!(
        pair.client().send_datagram(Bytes::from(vec![0; max + 1])),
        Err(SendDatagramError::TooLarge)
    );
    pair.drive_until(Duration::from_secs(1), |p| {
        p.server_events().contains(&Event::DatagramReceived)
    });
    assert_eq!(pair.server().read_datagram(), Some(Bytes::from_static(b"hello")));
}
