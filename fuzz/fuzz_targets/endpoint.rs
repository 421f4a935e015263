//! Datagrams from anywhere: a server `Endpoint` and a client `Endpoint`
//! (one connection under way) are fed arbitrary datagrams from arbitrary
//! addresses, some of them Initials sealed with genuine Initial keys so
//! that they get past packet protection into the TLS and connection code.
//! After every input: no panic, connections and pending attempts within
//! their caps, the bytes attempts hold within theirs, and a deadline that
//! is later than `now` once `handle_timeout(now)` has run.
//!
//! Input: chunks of `[op, addr, len_lo, len_hi, bytes...]`. `op` bit 0
//! picks the endpoint (0: server); bits 1-2 the kind: 0 raw datagram,
//! 1 a v1 Initial carrying `bytes` as frames (DCID from the first 8 bytes)
//! padded to 1200, 2 time passes (`addr` x 10 ms) and timers run, 3 the
//! server accepts nothing new (the application stops deciding).

#![no_main]

use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use quic_proto::connection::{ClientConfig, DatagramMeta, ServerConfig, TransportConfig};
use quic_proto::crypto::{Keys, seal_packet};
use quic_proto::endpoint::{DatagramEvent, Endpoint, EndpointConfig};
use quic_proto::random::SeededRandom;
use quic_proto::testing::{TestPki, client_config, server_config};
use quic_proto::{Instant, Side, Version};

const MAX_CONNECTIONS: usize = 8;
const MAX_INCOMING: usize = 4;
/// An attempt keeps four datagrams, each at most a jumbo UDP payload.
const MAX_INCOMING_BYTES: usize = MAX_INCOMING * 4 * 65_535;

fn addr(b: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, b >> 4, b & 0x0f], 4433 + u16::from(b & 3)))
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 1, 0, 1], 443))
}

/// A v1 client Initial to `dcid` carrying `frames`, sealed and padded.
fn sealed_initial(dcid: &[u8], frames: &[u8]) -> Option<Vec<u8>> {
    let keys = Keys::initial(Version::V1, dcid, Side::Client).ok()?;
    let mut p = vec![0xc3];
    p.extend_from_slice(&1u32.to_be_bytes());
    p.push(dcid.len() as u8);
    p.extend_from_slice(dcid);
    p.push(8);
    p.extend_from_slice(&[0x5c; 8]);
    p.push(0); // no token
    let frames = &frames[..frames.len().min(1100)];
    let payload_len = (1200 - p.len() - 2).max(4 + frames.len() + 16);
    p.extend_from_slice(&(0x4000 | payload_len as u16).to_be_bytes());
    let pn_offset = p.len();
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(frames);
    p.resize(pn_offset + payload_len, 0); // PADDING, then room for the tag
    seal_packet(&keys.local.header, &keys.local.packet, 0, &mut p, pn_offset).ok()?;
    Some(p)
}

fuzz_target!(|data: &[u8]| {
    let pki = TestPki::new(1);
    let server_tls = ServerConfig {
        tls: Arc::new(server_config(&pki, &[b"f"], 1)),
        transport: Arc::new(TransportConfig::default()),
    };
    let client_tls = ClientConfig {
        tls: Arc::new(client_config(&pki, &[b"f"], 2)),
        transport: Arc::new(TransportConfig::default()),
        version: Version::V1,
    };
    let mut config = EndpointConfig::default();
    config.max_connections(MAX_CONNECTIONS).max_incoming(MAX_INCOMING).retry_under_load(Some(3));
    let mut server = Endpoint::new(config, Some(server_tls), Box::new(SeededRandom::from_u64(3)));
    let mut client =
        Endpoint::new(EndpointConfig::default(), None, Box::new(SeededRandom::from_u64(4)));
    let mut now = Instant::from_millis(1_000);
    client.connect(now, &client_tls, TestPki::SERVER_NAME, server_addr()).expect("connects");
    let mut accepting = true;
    let mut buf = Vec::new();
    let mut rest = data;
    while let [op, from, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let ep = if op & 1 == 0 { &mut server } else { &mut client };
        let meta = DatagramMeta { remote: addr(*from), local_ip: None, ecn: None };
        let datagram = match (op >> 1) & 3 {
            0 => Some(bytes.to_vec()),
            1 if bytes.len() >= 8 => sealed_initial(&bytes[..8], &bytes[8..]),
            2 => {
                now += Duration::from_millis(10 * u64::from(*from));
                ep.handle_timeout(now);
                while ep.poll_transmit(now, &mut buf).is_some() {}
                let deadline = ep.poll_timeout();
                assert!(deadline.is_none_or(|t| t > now), "deadline {deadline:?} at {now:?}");
                None
            }
            _ => {
                accepting = false;
                None
            }
        };
        if let Some(d) = datagram {
            let event = ep.handle_datagram(now, meta, BytesMut::from(&d[..]));
            if let Some(DatagramEvent::Incoming(incoming)) = event
                && accepting
            {
                let _ = ep.accept(now, incoming);
            }
        }
        while ep.poll_transmit(now, &mut buf).is_some() {}
        while ep.poll_event().is_some() {}
        assert!(server.connection_count() <= MAX_CONNECTIONS);
        assert!(server.incoming_count() <= MAX_INCOMING);
        assert!(server.incoming_buffered_bytes() <= MAX_INCOMING_BYTES);
        assert!(client.connection_count() <= 1);
        assert_eq!(client.incoming_count(), 0, "a client endpoint accepts nothing");
    }
});
