//! Unreliable DATAGRAM frames (RFC 9221).

use core::time::Duration;

use bytes::Bytes;

use super::{assert_closes_with, inject_frames};
use crate::connection::{Event, SendDatagramError, TransportConfig};
use crate::error::TransportErrorCode;
use crate::frame::{Datagram, Frame};
use crate::stream_id::Side;
use crate::testing::pair::{Direction, Pair, Verdict};

//= https://www.rfc-editor.org/rfc/rfc9221#section-3
//= type=test
//# An endpoint that receives a DATAGRAM frame when
//# it has not indicated support via the transport parameter MUST terminate the
//# connection with an error of type PROTOCOL_VIOLATION.
#[test]
fn a_datagram_the_receiver_did_not_enable_is_a_protocol_violation() {
    let mut server = TransportConfig::default();
    server.datagram_receive_buffer(None);
    let mut pair = Pair::builder(1001).server_transport(server).build();
    pair.handshake();
    //= https://www.rfc-editor.org/rfc/rfc9221#section-3
    //= type=test
    //# An endpoint MUST NOT send DATAGRAM frames until it has received the
    //# max_datagram_frame_size transport parameter with a non-zero value during the
    //# handshake
    assert_eq!(
        pair.client().send_datagram(Bytes::from_static(b"hi")),
        Err(SendDatagramError::UnsupportedByPeer)
    );
    let mut frame = Vec::new();
    Frame::Datagram(Datagram { data: b"hi", has_length: true }).encode(&mut frame);
    inject_frames(&mut pair, Side::Client, &frame);
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::PROTOCOL_VIOLATION);
}

#[test]
fn lost_datagrams_stay_lost_and_later_ones_arrive() {
    let mut pair = Pair::new(1002);
    pair.handshake();
    let first = pair.link_stats(Direction::ClientToServer).sent;
    pair.set_hook(move |d| {
        let lost = d.direction == Direction::ClientToServer && d.index == first;
        if lost { Verdict::Drop } else { Verdict::Deliver }
    });
    pair.client().send_datagram(Bytes::from_static(b"one")).unwrap();
    pair.flush();
    pair.client().send_datagram(Bytes::from_static(b"two")).unwrap();
    pair.drive_for(Duration::from_secs(3));
    assert_eq!(pair.server().read_datagram(), Some(Bytes::from_static(b"two")));
    assert_eq!(pair.server().read_datagram(), None, "\"one\" is not retransmitted");
    assert_eq!(pair.server_events().iter().filter(|e| **e == Event::DatagramReceived).count(), 1);
}

#[test]
fn a_full_receive_buffer_drops_the_oldest() {
    let mut server = TransportConfig::default();
    server.datagram_receive_buffer(Some(100));
    let mut pair = Pair::builder(1003).server_transport(server).build();
    pair.handshake();
    for i in 0..5u8 {
        pair.client().send_datagram(Bytes::from(vec![i; 40])).unwrap();
    }
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.server().read_datagram(), Some(Bytes::from(vec![3; 40])));
    assert_eq!(pair.server().read_datagram(), Some(Bytes::from(vec![4; 40])));
    assert_eq!(pair.server().read_datagram(), None);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-21.9
//= type=test
//# While there are legitimate uses for all messages, implementations SHOULD track
//# cost of processing relative to progress and treat excessive quantities of any
//# non-productive packets as indicative of an attack.
#[test]
fn a_flood_of_empty_datagrams_is_bounded_in_number_and_events() {
    let mut server = TransportConfig::default();
    server.limits(crate::connection::Limits { max_received_datagrams: 100, ..Default::default() });
    let mut pair = Pair::builder(1004).server_transport(server).build();
    pair.handshake();
    pair.take_events(Side::Server);
    let mut frames = Vec::new();
    let capacity = pair.client().forge_capacity();
    while frames.len() + 2 <= capacity {
        Frame::Datagram(Datagram { data: b"", has_length: true }).encode(&mut frames);
    }
    let per_packet = frames.len() / 2;
    for _ in 0..10 {
        inject_frames(&mut pair, Side::Client, &frames);
    }
    pair.drive_for(Duration::from_millis(200));
    let server = pair.server();
    assert_eq!(server.datagrams_queued(), 100);
    assert_eq!(server.stats().datagrams_dropped, (10 * per_packet - 100) as u64);
    // At most one event waits at a time: the harness polls after each
    // packet, so one per packet, not one per frame.
    let events = pair.server_events().iter().filter(|e| **e == Event::DatagramReceived).count();
    assert_eq!(events, 10, "one event per polled batch, not per datagram");
    while pair.server().read_datagram().is_some() {}
    pair.client().send_datagram(Bytes::from_static(b"next")).unwrap();
    pair.drive_for(Duration::from_millis(200));
    let events = pair.server_events().iter().filter(|e| **e == Event::DatagramReceived).count();
    assert_eq!(events, 11);
    assert_eq!(pair.server().read_datagram(), Some(Bytes::from_static(b"next")));
}

#[test]
fn datagrams_arriving_between_polls_share_one_event() {
    let mut pair = Pair::new(1005);
    pair.handshake();
    let now = pair.now();
    let mut frames = Vec::new();
    for _ in 0..50 {
        Frame::Datagram(Datagram { data: b"x", has_length: true }).encode(&mut frames);
    }
    let packet = pair.client().forge_packet(now, &frames);
    let meta = crate::connection::DatagramMeta {
        remote: crate::testing::pair::client_addr(),
        local_ip: None,
        ecn: None,
    };
    let server = pair.server();
    server.handle_datagram(now, meta, bytes::BytesMut::from(&packet[..]));
    server.handle_datagram(now, meta, bytes::BytesMut::from(&packet[..]));
    let mut events = Vec::new();
    while let Some(e) = server.poll_event() {
        events.push(e);
    }
    assert_eq!(events.iter().filter(|e| **e == Event::DatagramReceived).count(), 1);
    assert_eq!(server.datagrams_queued(), 50, "the replayed packet is a duplicate");
}
