//! Connection-level behaviour by topic, over the `Pair` harness
//! (`crate::testing::pair`): a client and a server endpoint in virtual
//! time, one connection between them, a link model per direction, and a
//! per-datagram hook. Each test quotes the requirement it proves in duvet
//! form (`//= type=test`).
//!
//! A hostile peer is played with `Connection::forge_packet` (a test-only
//! hook in `connection/tests.rs`): a correctly protected 1-RTT packet
//! carrying whatever frames the test encodes, put on the link with
//! `Pair::inject`.

mod bounds;
mod close;
mod datagrams;
mod determinism;
mod endpoint;
mod flow_control;
mod handshake;
mod idle;
mod key_update;
mod loss;
mod properties;
mod pto;
mod streams;
mod timers;
mod tracing_events;

use core::time::Duration;

use crate::connection::{ConnectionError, Event};
use crate::error::TransportErrorCode;
use crate::frame::Frame;
use crate::stream_id::Side;
use crate::testing::pair::Pair;

/// Encodes `frames` back to back, as a packet payload.
pub(crate) fn encode(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut buf = Vec::new();
    for f in frames {
        f.encode(&mut buf);
    }
    buf
}

/// `from` sends a 1-RTT packet carrying exactly `frames` (already encoded).
pub(crate) fn inject_frames(pair: &mut Pair, from: Side, frames: &[u8]) {
    pair.inject_frames(from, frames);
}

/// The transport error `side` closed the connection with, if it did.
pub(crate) fn local_error_code(pair: &Pair, side: Side) -> Option<TransportErrorCode> {
    match pair.connection(side)?.error()? {
        ConnectionError::TransportError(e) => Some(e.code),
        _ => None,
    }
}

/// Drives until `victim` closes, then checks that it closed with `code`
/// and that the offender learns the code from CONNECTION_CLOSE.
pub(crate) fn assert_closes_with(pair: &mut Pair, victim: Side, code: TransportErrorCode) {
    pair.drive_until(Duration::from_secs(5), |p| {
        p.connection(victim).is_some_and(|c| c.is_closed())
    });
    assert_eq!(
        local_error_code(pair, victim),
        Some(code),
        "{victim:?} closed with {:?}",
        pair.connection(victim).and_then(|c| c.error())
    );
    let offender = !victim;
    pair.drive_until(Duration::from_secs(5), |p| p.conn(offender).is_closed());
    let lost = pair.events(offender).iter().find_map(|e| match e {
        Event::ConnectionLost(err) => Some(err.clone()),
        _ => None,
    });
    let Some(ConnectionError::ConnectionClosed { code: seen, .. }) = lost else {
        panic!("{offender:?} saw {lost:?}");
    };
    assert_eq!(seen, code);
}
