//! Bounds against hostile peers: every kind of state a peer can make this
//! endpoint hold is capped, and crossing a cap closes the connection with
//! the documented code (RFC 9000 §21; `connection::Limits`).

use std::cell::RefCell;
use std::rc::Rc;

use core::time::Duration;

use super::{assert_closes_with, encode, inject_frames};
use crate::connection::{Limits, TransportConfig};
use crate::error::TransportErrorCode;
use crate::frame::{AckEncoder, Crypto, Frame, PathChallenge, ResetStream, Stream};
use crate::packet::{PartialDecode, ProtectedHeader};
use crate::stream_id::{Dir, Side, StreamId};
use crate::testing::pair::{Direction, Pair};
use crate::varint::VarInt;

fn server_limits(seed: u64, f: impl FnOnce(&mut Limits)) -> Pair {
    let mut limits = Limits::default();
    f(&mut limits);
    let mut server = TransportConfig::default();
    server.limits(limits);
    let mut pair = Pair::builder(seed).server_transport(server).build();
    pair.handshake();
    pair
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-21.9
//= type=test
//# While there are legitimate uses for all messages, implementations SHOULD track
//# cost of processing relative to progress and treat excessive quantities of any
//# non-productive packets as indicative of an attack.
#[test]
fn pending_path_responses_are_bounded() {
    let mut pair = server_limits(1101, |l| l.max_pending_path_responses = 8);
    let challenges: Vec<[u8; 8]> = (0..40u8).map(|i| [i; 8]).collect();
    let frames: Vec<Frame<'_>> =
        challenges.iter().map(|c| Frame::PathChallenge(PathChallenge { data: *c })).collect();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let observed = seen.clone();
    pair.set_observer(move |side, conn| {
        if side == Side::Server {
            observed.borrow_mut().push(conn.pending_path_responses());
        }
    });
    inject_frames(&mut pair, Side::Client, &encode(&frames));
    pair.drive_for(Duration::from_millis(100));
    let seen = seen.borrow();
    assert!(seen.iter().all(|p| p.len() <= 8));
    // Right after the packet: the latest eight challenges wait for answers.
    assert!(seen.iter().any(|p| *p == challenges[32..]), "{seen:?}");
    assert!(!pair.server().is_closed());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-21.7
//= type=test
//# QUIC deployments SHOULD provide mitigations for stream fragmentation attacks.
#[test]
fn too_many_stream_fragments_close_with_internal_error() {
    let mut pair = server_limits(1102, |l| l.max_stream_fragments = 8);
    let id = StreamId::new(Side::Client, Dir::Uni, 0).unwrap();
    // Nine one-byte fragments with holes between them.
    let frames: Vec<Frame<'_>> = (0..9u64)
        .map(|i| {
            Frame::Stream(Stream {
                id,
                offset: VarInt::from_u64(10 + 20 * i).unwrap(),
                fin: false,
                has_length: true,
                data: b"x",
            })
        })
        .collect();
    inject_frames(&mut pair, Side::Client, &encode(&frames));
    // The documented code: see `streams::recv` (the peer broke no rule).
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::INTERNAL_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.4
//= type=test
//# While waiting for TLS processing to complete, an endpoint SHOULD
//# buffer received packets if they might be processed using keys that aren't yet
//# available.
#[test]
fn packets_ahead_of_their_keys_are_buffered_up_to_the_limit() {
    let mut pair = Pair::new(1103);
    pair.flush();
    let first = &pair.trace()[0].data;
    let d = PartialDecode::parse(first, 0, false).unwrap();
    let ProtectedHeader::Long(h) = d.header() else { panic!("the client's Initial") };
    let client_cid = h.scid;
    let most = Rc::new(RefCell::new(0));
    let observed = most.clone();
    pair.set_observer(move |side, conn| {
        if side == Side::Client {
            let mut m = observed.borrow_mut();
            *m = (*m).max(conn.undecryptable_len());
        }
    });
    // 1-RTT packets the client cannot open before its handshake completes.
    for i in 0..40u8 {
        let mut datagram = vec![0x41];
        datagram.extend_from_slice(&client_cid);
        datagram.extend_from_slice(&[i; 60]);
        pair.inject(Direction::ServerToClient, datagram);
    }
    pair.drive_for(Duration::from_millis(15));
    assert_eq!(*most.borrow(), Limits::default().max_undecryptable_packets);
    // The garbage is dropped when the keys come; the handshake goes on.
    pair.handshake();
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.1
//= type=test
//# An endpoint SHOULD treat receipt of an acknowledgment for a packet it did not
//# send as a connection error of type PROTOCOL_VIOLATION, if it is able to detect
//# the condition.
#[test]
fn acknowledging_a_packet_never_sent_is_a_protocol_violation() {
    let mut pair = Pair::new(1104);
    pair.handshake();
    let mut frame = Vec::new();
    AckEncoder::new([1_000_000..=1_000_000].into_iter(), VarInt::ZERO).unwrap().encode(&mut frame);
    inject_frames(&mut pair, Side::Client, &frame);
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::PROTOCOL_VIOLATION);
}

#[test]
fn too_many_resets_are_a_protocol_violation() {
    let mut pair = server_limits(1105, |l| l.max_stream_resets = 4);
    let frames: Vec<Frame<'_>> = (0..5u64)
        .map(|i| {
            Frame::ResetStream(ResetStream {
                id: StreamId::new(Side::Client, Dir::Bi, i).unwrap(),
                error_code: VarInt::from_u32(1),
                final_size: VarInt::ZERO,
            })
        })
        .collect();
    inject_frames(&mut pair, Side::Client, &encode(&frames[..4]));
    pair.drive_for(Duration::from_millis(50));
    assert!(!pair.server().is_closed(), "four are within the limit");
    inject_frames(&mut pair, Side::Client, &encode(&frames[4..]));
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::PROTOCOL_VIOLATION);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-7.5
//= type=test
//# If an endpoint does not expand its buffer, it MUST close
//# the connection with a CRYPTO_BUFFER_EXCEEDED error code.
#[test]
fn crypto_data_far_ahead_is_crypto_buffer_exceeded() {
    let mut pair = Pair::new(1106);
    pair.handshake();
    let frame = encode(&[Frame::Crypto(Crypto { offset: VarInt::from_u32(1 << 20), data: b"x" })]);
    inject_frames(&mut pair, Side::Client, &frame);
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::CRYPTO_BUFFER_EXCEEDED);
}
