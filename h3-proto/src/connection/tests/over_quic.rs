//! HTTP/3 over real quic-proto connections (the `Pair` harness: virtual
//! time, a lossy link): flow control blocks the sender, `Writable` resumes
//! it, and every byte arrives in order.

use std::time::Duration;

use quic_proto::connection::Event as QuicEvent;
use quic_proto::testing::pair::{Pair as QuicPair, seed_from_env};

use super::*;
use crate::transport::QuicTransport;

/// Feeds `side`'s transport events to its HTTP/3 connection; returns the
/// HTTP/3 events and the streams that became writable.
fn feed(pair: &mut QuicPair, side: Side, h3: &mut Connection) -> (Vec<Event>, Vec<StreamId>) {
    let now = pair.now();
    let events = pair.take_events(side);
    let mut t = QuicTransport { connection: pair.conn(side), now };
    let mut writable = Vec::new();
    for event in events {
        if let QuicEvent::Stream(e) = event {
            h3.handle_stream_event(&mut t, &e);
            if let StreamEvent::Writable(id) = e {
                writable.push(id);
            }
        }
    }
    (std::iter::from_fn(|| h3.poll_event()).collect(), writable)
}

#[test]
fn a_large_response_survives_flow_control_and_loss() {
    let seed = seed_from_env(0x4833);
    let mut pair = QuicPair::builder(seed)
        .links(|l| {
            l.latency(Duration::from_millis(10)).loss(0.02);
        })
        .build();
    pair.handshake();
    let mut client = Connection::new(Side::Client, Config::default(), seed);
    let mut server = Connection::new(Side::Server, Config::default(), seed ^ 1);
    let now = pair.now();
    client.open(&mut QuicTransport { connection: pair.client(), now }).unwrap();
    server.open(&mut QuicTransport { connection: pair.server(), now }).unwrap();
    let fields = request_fields("GET", "https", "example.com", "/big", &[]);
    let id = client
        .send_request(&mut QuicTransport { connection: pair.client(), now }, &fields, true)
        .unwrap();

    let body: Vec<u8> =
        (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut sent = None::<usize>;
    let mut received = Vec::new();
    let mut finished = false;
    let mut blocked = 0;
    let mut buf = vec![0u8; 50_000];
    for _ in 0..20_000 {
        pair.drive_for(Duration::from_millis(1));
        let (events, writable) = feed(&mut pair, Side::Server, &mut server);
        for event in events {
            if let Event::Headers { stream, .. } = event {
                assert_eq!(stream, id);
                let response =
                    response_fields(200, &[field("content-length", &body.len().to_string())]);
                let now = pair.now();
                server
                    .send_response(
                        &mut QuicTransport { connection: pair.server(), now },
                        id,
                        &response,
                        false,
                    )
                    .unwrap();
                sent = Some(0);
            }
        }
        // Writable streams had their queued frame bytes flushed by the
        // layer; the application's own writes resume now.
        let _ = writable;
        if let Some(offset) = sent.as_mut()
            && *offset < body.len()
        {
            let now = pair.now();
            let mut t = QuicTransport { connection: pair.server(), now };
            while *offset < body.len() {
                match server.send_data(&mut t, id, &body[*offset..]) {
                    Ok(n) => *offset += n,
                    Err(SendError::Blocked) => {
                        blocked += 1;
                        break;
                    }
                    Err(e) => panic!("seed {seed}: {e}"),
                }
            }
            if *offset == body.len() {
                server.finish(&mut t, id).unwrap();
            }
        }
        let (events, _) = feed(&mut pair, Side::Client, &mut client);
        for event in events {
            match event {
                Event::Headers { fields, .. } => assert_eq!(fields[0], field(":status", "200")),
                Event::Data(stream) => {
                    let now = pair.now();
                    let mut t = QuicTransport { connection: pair.client(), now };
                    loop {
                        let n = client.recv_data(&mut t, stream, &mut buf);
                        if n == 0 {
                            break;
                        }
                        received.extend_from_slice(&buf[..n]);
                    }
                }
                Event::Finished(stream) if stream == id => finished = true,
                Event::Settings(_) => {}
                other => panic!("seed {seed}: unexpected {other:?}"),
            }
        }
        // Events the recv_data calls raised.
        while let Some(event) = client.poll_event() {
            match event {
                Event::Finished(stream) if stream == id => finished = true,
                Event::Data(_) => {}
                other => panic!("seed {seed}: unexpected {other:?}"),
            }
        }
        if finished {
            break;
        }
    }
    assert!(finished, "seed {seed}: the response did not complete ({} bytes)", received.len());
    assert_eq!(received.len(), body.len(), "seed {seed}");
    assert!(received == body, "seed {seed}: body differs");
    assert!(client.error().is_none() && server.error().is_none());
    assert!(blocked > 0, "seed {seed}: the send buffer never filled: the test proves nothing");
}
