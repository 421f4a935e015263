//! Hostile input at the endpoint (DESIGN.md, "Hostile input"): forged
//! Initials cost no state, load turns on Retry, connections are capped,
//! stale attempts and stale handles hold nothing.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::random::RandomSource;

/// A 1200-byte datagram that looks like a v1 client Initial to `dcid` but
/// whose protection is random bytes: what a flood sprays.
fn forged_initial(rng: &mut SeededRandom, dcid_len: usize) -> (ConnectionId, BytesMut) {
    let mut d = vec![0u8; 1200];
    rng.fill(&mut d);
    let mut cid = [0u8; 20];
    rng.fill(&mut cid);
    let dcid = ConnectionId::from_slice(&cid[..dcid_len]).unwrap();
    // Long header, fixed bit, Initial, 4-byte packet number.
    d[0] = 0xc3;
    d[1..5].copy_from_slice(&1u32.to_be_bytes());
    d[5] = dcid_len as u8;
    d[6..6 + dcid_len].copy_from_slice(&dcid);
    let mut at = 6 + dcid_len;
    d[at] = 8; // SCID length
    at += 9;
    d[at] = 0; // no token
    at += 1;
    // Length: the rest of the datagram, as a 2-byte varint.
    let rest = (1200 - at - 2) as u16;
    d[at..at + 2].copy_from_slice(&(0x4000 | rest).to_be_bytes());
    (dcid, BytesMut::from(&d[..]))
}

fn is_retry(d: &[u8]) -> bool {
    PartialDecode::parse(d, 8, false).is_ok_and(|p| matches!(p.header(), ProtectedHeader::Retry(_)))
}

fn meta_at(i: usize) -> DatagramMeta {
    let remote = format!("10.1.{}.{}:{}", i / 250, i % 250 + 1, 1000 + i).parse().unwrap();
    DatagramMeta { remote, local_ip: None, ecn: None }
}

#[test]
fn forged_initials_cost_no_incoming_slot_no_tls_and_no_qlog() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let mut config = EndpointConfig::default();
    config.qlog(Arc::new(move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
        None
    }));
    let mut ep = lone_server(config);
    let now = Instant::from_millis(1_000);
    let mut rng = SeededRandom::from_u64(7);
    for i in 0..2_000 {
        let len = 8 + (i % 13);
        let (_, d) = forged_initial(&mut rng, len);
        assert!(ep.handle_datagram(now, meta_at(i), d).is_none(), "forged Initial {i} got in");
    }
    assert_eq!(ep.incoming_count(), 0);
    assert_eq!(ep.connection_count(), 0);
    assert!(drain(&mut ep).is_empty(), "a forged Initial was answered");
    assert_eq!(ep.poll_timeout(), None, "a forged Initial set a timer");
    assert_eq!(ep.stats().initials_unauthenticated, 2_000);

    // A genuine Initial with one ciphertext bit flipped fails the same way.
    let mut bad = initial_datagram(dcid(1), &[], 1200);
    bad[100] ^= 1;
    assert!(ep.handle_datagram(now, meta(1), bad).is_none());
    // The genuine one still gets in, and only its connection logs.
    let Some(DatagramEvent::Incoming(i)) =
        ep.handle_datagram(now, meta(1), initial_datagram(dcid(1), &[], 1200))
    else {
        panic!("a genuine Initial was dropped");
    };
    assert_eq!(made.load(Ordering::Relaxed), 0);
    ep.accept(now, i).unwrap();
    assert_eq!(made.load(Ordering::Relaxed), 1);
}

#[test]
fn forged_datagrams_for_a_pending_attempt_are_not_buffered() {
    let mut ep = lone_server(EndpointConfig::default());
    let now = Instant::from_millis(1_000);
    let first = ep.handle_datagram(now, meta(1), initial_datagram(dcid(1), &[], 1200));
    assert!(matches!(first, Some(DatagramEvent::Incoming(_))));
    let mut rng = SeededRandom::from_u64(8);
    // Forged Initials to the same address and DCID: dropped, not kept.
    for _ in 0..10 {
        let (_, mut d) = forged_initial(&mut rng, 8);
        d[6..14].copy_from_slice(&dcid(1));
        assert!(ep.handle_datagram(now, meta(1), d).is_none());
    }
    assert_eq!(ep.incoming.buffered_datagrams(), 1);
    // Genuine retransmissions are kept, four datagrams in all.
    for _ in 0..10 {
        ep.handle_datagram(now, meta(1), initial_datagram(dcid(1), &[], 1200));
    }
    assert_eq!(ep.incoming.buffered_datagrams(), 4);
}

#[test]
fn load_turns_on_retry_and_spoofed_initials_cost_no_state() {
    let mut config = EndpointConfig::default();
    config.retry_under_load(Some(4));
    let mut ep = lone_server(config);
    let now = Instant::from_millis(1_000);
    let mut accepted = 0;
    // Genuine Initials from 20 (spoofed) addresses that never come back.
    for i in 0..20 {
        match ep.handle_datagram(now, meta_at(i), initial_datagram(dcid(i as u8 + 1), &[], 1200)) {
            Some(DatagramEvent::Incoming(inc)) => {
                ep.accept(now, inc).unwrap();
                accepted += 1;
            }
            None => {}
        }
    }
    assert_eq!(accepted, 4, "only the threshold's worth of handshakes hold state");
    assert_eq!(ep.handshakes_in_progress(), 4);
    let sent = drain(&mut ep);
    assert_eq!(sent.iter().filter(|d| is_retry(d)).count(), 16);
    assert_eq!(ep.stats().retries_under_load, 16);
    assert_eq!(ep.connection_count(), 4);
}

#[test]
fn a_genuine_client_gets_in_through_retry_while_spoofed_handshakes_hold_the_threshold() {
    let mut config = EndpointConfig::default();
    config.retry_under_load(Some(2));
    let mut net = Net::with_server(61, 1, config);
    // Two handshakes in progress from addresses that never answer.
    let now = net.now;
    for i in 0..2 {
        let inc = net.nodes[SERVER].ep.handle_datagram(
            now,
            meta_at(i),
            initial_datagram(dcid(0x70 + i as u8), &[], 1200),
        );
        let Some(DatagramEvent::Incoming(inc)) = inc else { panic!("attempt {i} dropped") };
        net.nodes[SERVER].ep.accept(now, inc).unwrap();
    }
    net.hook = Box::new(|d| !d.dst.to_string().starts_with("10.1."));
    let h = net.connect(1);
    net.handshake(1, h);
    assert_eq!(net.seen.len(), 1);
    assert!(net.seen[0].retried && net.seen[0].validated, "the client came in through a Retry");
    assert_eq!(net.nodes[SERVER].ep.stats().retries_under_load, 1);
}

#[test]
fn connections_beyond_the_cap_are_refused() {
    let mut config = EndpointConfig::default();
    config.max_connections(2);
    let mut ep = lone_server(config);
    let now = Instant::from_millis(1_000);
    for i in 1..=2 {
        let Some(DatagramEvent::Incoming(inc)) =
            ep.handle_datagram(now, meta(i), initial_datagram(dcid(i as u8), &[], 1200))
        else {
            panic!("attempt {i} dropped");
        };
        ep.accept(now, inc).unwrap();
    }
    drain(&mut ep);
    assert!(ep.handle_datagram(now, meta(3), initial_datagram(dcid(3), &[], 1200)).is_none());
    let sent = drain(&mut ep);
    assert_eq!(sent.len(), 1);
    assert!(is_initial_close(&sent[0], dcid(3), TransportErrorCode::CONNECTION_REFUSED));
    assert_eq!(ep.stats().refused_at_capacity, 1);
    assert_eq!(ep.connection_count(), 2);
}

#[test]
fn a_table_of_stale_attempts_never_blocks_a_new_one() {
    let mut config = EndpointConfig::default();
    config.max_incoming(2).incoming_lifetime(Duration::from_secs(1));
    let mut ep = lone_server(config);
    let now = Instant::from_millis(1_000);
    for b in 1..=2 {
        let event = ep.handle_datagram(now, meta(b), initial_datagram(dcid(b as u8), &[], 1200));
        // Dropped undecided: the application forgot them.
        assert!(matches!(event, Some(DatagramEvent::Incoming(_))));
    }
    // Later, before any timer ran, a new attempt takes an expired place.
    let later = now + Duration::from_secs(2);
    let event = ep.handle_datagram(later, meta(3), initial_datagram(dcid(3), &[], 1200));
    assert!(matches!(event, Some(DatagramEvent::Incoming(_))), "stale attempts blocked a new one");
    assert_eq!(ep.incoming_count(), 1);
    assert_eq!(ep.stats().incoming_expired, 2);
    // Fresh attempts fill it; then an unvalidated client gets a Retry, not silence.
    ep.handle_datagram(later, meta(4), initial_datagram(dcid(4), &[], 1200));
    assert!(ep.handle_datagram(later, meta(5), initial_datagram(dcid(5), &[], 1200)).is_none());
    assert!(drain(&mut ep).iter().any(|d| is_retry(d)));
}

#[test]
fn a_stale_handle_finds_nothing_after_its_slot_is_reused() {
    let mut net = Net::new(62, 1);
    let h = net.connect(1);
    net.handshake(1, h);
    let now = net.now;
    net.conn(1, h).close(now, VarInt::from_u32(0), b"");
    net.run_until(Duration::from_secs(10), |n| n.has_event(1, h, &Event::Drained));
    net.flush();
    assert!(net.nodes[1].ep.connection(h).is_none());
    let h2 = net.connect(1);
    assert_eq!(h2.index(), h.index(), "the slot is reused");
    assert_ne!(h2, h);
    assert!(net.nodes[1].ep.connection(h).is_none(), "the stale handle found the new connection");
    assert!(net.nodes[1].ep.connection(h2).is_some());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.4
//= type=test
//# Tokens that are provided in NEW_TOKEN frames ({{frame-new-token}}) need to be
//# valid for longer but SHOULD NOT be accepted multiple times.
#[test]
fn a_new_token_token_validates_once() {
    let mut ep = lone_server(EndpointConfig::default());
    let now = Instant::from_millis(1_000);
    let token = ep.token_key.seal_new_token(&mut *ep.rng, addr(2), now);
    let first = ep.handle_datagram(now, meta(2), initial_datagram(dcid(1), &token, 1200));
    let Some(DatagramEvent::Incoming(i)) = first else { panic!("first use dropped") };
    assert!(i.is_address_validated());
    ep.accept(now, i).unwrap();
    // The same token again, on a new attempt (another DCID): no longer
    // proof of the address.
    let later = now + Duration::from_secs(60);
    let again = ep.handle_datagram(later, meta(2), initial_datagram(dcid(2), &token, 1200));
    let Some(DatagramEvent::Incoming(i)) = again else { panic!("replay dropped") };
    assert!(!i.is_address_validated(), "a replayed NEW_TOKEN token validated the address");
    assert_eq!(ep.stats().tokens_replayed, 1);
}

#[test]
fn a_retry_token_is_spent_only_when_it_lets_an_attempt_in() {
    let mut config = EndpointConfig::default();
    config.max_connections(1);
    let mut ep = lone_server(config);
    let now = Instant::from_millis(1_000);
    // Take the only place.
    let Some(DatagramEvent::Incoming(i)) =
        ep.handle_datagram(now, meta(1), initial_datagram(dcid(1), &[], 1200))
    else {
        panic!("dropped");
    };
    let h = ep.accept(now, i).unwrap();
    drain(&mut ep);
    let token = ep.token_key.seal_retry(&mut *ep.rng, addr(2), &dcid(0x21), &dcid(0x22), now);
    // Refused at capacity: the token is not spent.
    assert!(ep.handle_datagram(now, meta(2), initial_datagram(dcid(0x22), &token, 1200)).is_none());
    assert_eq!(ep.stats().refused_at_capacity, 1);
    drain(&mut ep);
    // A place frees up; the client's retransmission gets in with the token.
    ep.connection(h).unwrap().close(now, VarInt::from_u32(0), b"");
    let mut t = now;
    while ep.connection_count() > 0 {
        t += Duration::from_millis(100);
        ep.handle_timeout(t);
        drain(&mut ep);
        assert!(t < now + Duration::from_secs(30), "the connection never drained");
    }
    let back = ep.handle_datagram(t, meta(2), initial_datagram(dcid(0x22), &token, 1200));
    let Some(DatagramEvent::Incoming(i)) = back else { panic!("the token was spent") };
    assert!(i.is_retried());
    ep.ignore(i);
    drain(&mut ep);
    // Now it is spent: presented again, it is refused with INVALID_TOKEN.
    let replay = ep.handle_datagram(t, meta(2), initial_datagram(dcid(0x22), &token, 1200));
    assert!(replay.is_none());
    let sent = drain(&mut ep);
    assert!(sent.iter().any(|d| is_initial_close(
        d,
        dcid(0x22),
        TransportErrorCode::INVALID_TOKEN
    )));
    assert_eq!(ep.stats().tokens_replayed, 1);
}
