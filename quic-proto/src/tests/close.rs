//! Closing: transport errors close with CONNECTION_CLOSE, the closing
//! endpoint repeats it in answer to packets, and the draining endpoint
//! stays silent (RFC 9000 §10.2).

use core::time::Duration;

use super::{assert_closes_with, encode, inject_frames};
use crate::connection::{ConnectionError, Event};
use crate::error::TransportErrorCode;
use crate::frame::Frame;
use crate::stream_id::{Dir, Side};
use crate::testing::pair::{Direction, Pair, Verdict, payload};
use crate::varint::VarInt;

#[test]
fn a_protocol_violation_closes_both_sides_and_both_drain() {
    let mut pair = Pair::new(701);
    pair.handshake();
    // HANDSHAKE_DONE from a client (RFC 9000 §19.20).
    inject_frames(&mut pair, Side::Client, &encode(&[Frame::HandshakeDone]));
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::PROTOCOL_VIOLATION);
    let Some(ConnectionError::TransportError(e)) = pair.server().error().cloned() else {
        panic!("server error {:?}", pair.server().error())
    };
    assert_eq!(e.frame_type, Some(crate::FrameType::HANDSHAKE_DONE));
    pair.drive_until_drained(Duration::from_secs(10));
    assert!(pair.server_events().contains(&Event::Drained));
    assert!(pair.client_events().contains(&Event::Drained));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-10.2.2
//= type=test
//# While otherwise
//# identical to the closing state, an endpoint in the draining state MUST NOT send
//# any packets.
#[test]
fn a_draining_endpoint_sends_nothing() {
    let mut pair = Pair::new(702);
    pair.handshake();
    let now = pair.now();
    pair.client().close(now, VarInt::from_u32(1), b"bye");
    pair.drive_until(Duration::from_secs(2), |p| p.server().is_closed());
    let sent = pair.link_stats(Direction::ServerToClient).sent;
    // The peer keeps talking (as if its CONNECTION_CLOSE crossed our data).
    for _ in 0..5 {
        inject_frames(&mut pair, Side::Client, &encode(&[Frame::Ping]));
        pair.drive_for(Duration::from_millis(20));
    }
    pair.drive_until_drained(Duration::from_secs(10));
    assert_eq!(pair.link_stats(Direction::ServerToClient).sent, sent);
    assert!(matches!(
        pair.server().error(),
        Some(ConnectionError::ApplicationClosed { code, .. }) if *code == VarInt::from_u32(1)
    ));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-10.2.1
//= type=test
//# An endpoint in the closing state sends a packet containing a
//# CONNECTION_CLOSE frame in response to any incoming packet that it attributes to
//# the connection.
#[test]
fn a_closing_endpoint_repeats_its_close_until_the_peer_hears() {
    let mut pair = Pair::new(703);
    pair.handshake();
    // The server is busy sending when the client closes.
    let id = pair.server().open_stream(Dir::Uni).unwrap();
    pair.server().write(id, &payload(200_000, 1)).unwrap();
    pair.drive_for(Duration::from_millis(30));
    let now = pair.now();
    pair.client().close(now, VarInt::from_u32(3), b"");
    // The first CONNECTION_CLOSE is lost.
    let closed_at = pair.link_stats(Direction::ClientToServer).sent;
    pair.set_hook(move |d| {
        let first_close = d.direction == Direction::ClientToServer && d.index == closed_at;
        if first_close { Verdict::Drop } else { Verdict::Deliver }
    });
    pair.drive_until_drained(Duration::from_secs(10));
    assert_eq!(pair.link_stats(Direction::ClientToServer).dropped_by_hook, 1);
    assert!(matches!(
        pair.server().error(),
        Some(ConnectionError::ApplicationClosed { code, .. }) if *code == VarInt::from_u32(3)
    ));
}
