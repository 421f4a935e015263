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
