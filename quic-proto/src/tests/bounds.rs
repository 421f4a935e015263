//! Bounds against hostile peers: every kind of state a peer can make this
//! endpoint hold is capped, and crossing a cap closes the connection with
//! the documented code (RFC 9000 §21; `connection::Limits`).

use std::cell::RefCell;
use std::rc::Rc;

use core::time::Duration;

use super::{assert_closes_with, encode, inject_frames};
use crate::connection::{Limits, ReadError, TransportConfig};
use crate::error::TransportErrorCode;
use crate::frame::{AckEncoder, Crypto, Frame, PathChallenge, ResetStream, StopSending, Stream};
use crate::packet::{PartialDecode, ProtectedHeader};
use crate::stream_id::{Dir, Side, StreamId};
use crate::streams::recv::PIN_FACTOR;
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

//= https://www.rfc-editor.org/rfc/rfc9000#section-21.7
//= type=test
//# An adversarial sender might intentionally not send portions of the stream data,
//# causing the receiver to commit resources for the unsent data. This could
//# cause a disproportionate receive buffer memory commitment and/or the creation of
//# a large and inefficient data structure at the receiver.
#[test]
fn tiny_fragments_in_full_datagrams_pin_a_bounded_multiple_of_the_window() {
    const WINDOW: u32 = 64 * 1024;
    let mut server = TransportConfig::default();
    server.initial_max_stream_data(VarInt::from_u32(WINDOW)).max_stream_data_window(WINDOW.into());
    let mut pair = Pair::builder(1109).server_transport(server).build();
    pair.handshake();
    let most = Rc::new(RefCell::new((0, 0)));
    let observed = most.clone();
    pair.set_observer(move |side, conn| {
        if side == Side::Server {
            let (buffered, pinned) = conn.stream_receive_memory();
            let mut m = observed.borrow_mut();
            *m = (m.0.max(buffered), m.1.max(pinned));
            // At every step, not just at the end.
            assert!(pinned <= PIN_FACTOR * buffered, "{pinned} pinned for {buffered}");
        }
    });
    // One-byte fragments with a hole before each, up to the fragment cap,
    // each padded out to a full datagram.
    let id = StreamId::new(Side::Client, Dir::Uni, 0).unwrap();
    let room = pair.client().forge_capacity();
    let fragments = Limits::default().max_stream_fragments as u64;
    for i in 0..fragments {
        let mut frame = encode(&[Frame::Stream(Stream {
            id,
            offset: VarInt::from_u64(1 + 2 * i).unwrap(),
            fin: false,
            has_length: true,
            data: b"x",
        })]);
        frame.resize(room, 0);
        inject_frames(&mut pair, Side::Client, &frame);
        if i % 64 == 0 {
            pair.drive_for(Duration::from_millis(5));
        }
    }
    pair.drive_for(Duration::from_millis(100));
    assert!(!pair.server().is_closed(), "{:?}", pair.server().error());
    let (buffered, pinned) = *most.borrow();
    assert_eq!(buffered, fragments, "every fragment is held");
    // Held as datagram slices, they would pin over a megabyte.
    assert!(pinned <= PIN_FACTOR * u64::from(WINDOW), "{pinned} bytes pinned");
    assert!(pinned <= PIN_FACTOR * fragments, "{pinned} bytes pinned");
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

/// A pair whose server has `limits` and lets the client keep
/// `concurrent` unidirectional and bidirectional streams open.
fn server_with_streams(seed: u64, concurrent: u32, f: impl FnOnce(&mut Limits)) -> Pair {
    let mut limits = Limits::default();
    f(&mut limits);
    let mut server = TransportConfig::default();
    server
        .limits(limits)
        .max_concurrent_uni_streams(VarInt::from_u32(concurrent))
        .max_concurrent_bidi_streams(VarInt::from_u32(concurrent));
    let mut pair = Pair::builder(seed).server_transport(server).build();
    pair.handshake();
    pair
}

fn reset(id: StreamId) -> Frame<'static> {
    Frame::ResetStream(ResetStream {
        id,
        error_code: VarInt::from_u32(1),
        final_size: VarInt::ZERO,
    })
}

fn stop(id: StreamId) -> Frame<'static> {
    Frame::StopSending(StopSending { id, error_code: VarInt::from_u32(2) })
}

fn uni(index: u64) -> StreamId {
    StreamId::new(Side::Client, Dir::Uni, index).unwrap()
}

fn bidi(index: u64) -> StreamId {
    StreamId::new(Side::Client, Dir::Bi, index).unwrap()
}

/// The client sends `frames`, as many to a packet as fit.
fn inject_all(pair: &mut Pair, frames: &[Frame<'_>]) {
    let room = pair.client().forge_capacity();
    let mut packet = Vec::new();
    for f in frames {
        let one = encode(core::slice::from_ref(f));
        if packet.len() + one.len() > room {
            inject_frames(pair, Side::Client, &packet);
            packet.clear();
        }
        packet.extend_from_slice(&one);
    }
    if !packet.is_empty() {
        inject_frames(pair, Side::Client, &packet);
    }
}

/// The server application reads every unidirectional stream the client
/// opened: a reset stream closes once its reset is read, and its credit
/// goes back to the client.
fn server_reads_resets(pair: &mut Pair, accepted: &mut Vec<StreamId>) {
    while let Some(id) = pair.server().accept_stream(Dir::Uni) {
        accepted.push(id);
    }
    let mut buf = [0; 64];
    accepted.retain(|id| matches!(pair.server().read(*id, &mut buf), Err(ReadError::Blocked)));
}

/// Client-initiated unidirectional streams opened and reset in batches of
/// `batch` every `every`, the server reading them between batches, for
/// `batches` rounds or until the server closes. Returns how many resets
/// the server took.
fn reset_cycling(pair: &mut Pair, batch: u64, every: Duration, batches: u64) -> u64 {
    let mut next = 0;
    let mut accepted = Vec::new();
    for _ in 0..batches {
        let frames: Vec<Frame<'_>> = (next..next + batch).map(|i| reset(uni(i))).collect();
        next += batch;
        inject_all(pair, &frames);
        pair.drive_for(every);
        if pair.server().is_closed() {
            break;
        }
        server_reads_resets(pair, &mut accepted);
    }
    next
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-21.9
//= type=test
//# While there are legitimate uses for all messages, implementations SHOULD track
//# cost of processing relative to progress and treat excessive quantities of any
//# non-productive packets as indicative of an attack.  Endpoints MAY respond to
//# this condition with a connection error or by dropping packets.
#[test]
fn a_sustained_reset_flood_is_a_protocol_violation() {
    // Default limits; twice the default rate, sustained ("Rapid Reset").
    let mut pair = server_with_streams(1105, 2_000, |_| {});
    let defaults = Limits::default();
    let per_batch = defaults.stream_aborts_per_second / 4;
    let sent = reset_cycling(&mut pair, per_batch, Duration::from_millis(125), 400);
    assert!(pair.server().is_closed(), "{sent} resets in {:?}", pair.now());
    // The burst and the rate both had their due before the close.
    assert!(sent > defaults.stream_abort_burst, "{sent}");
    assert!(sent < 4 * defaults.stream_abort_burst, "{sent}");
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::PROTOCOL_VIOLATION);
}

/// Regression: RESET_STREAM was capped by a lifetime count (65,536,
/// repeats included) that a long HTTP/3 connection reaches in normal use.
#[test]
fn many_resets_spread_over_a_long_connection_are_fine() {
    let mut pair = server_with_streams(1107, 2_000, |_| {});
    // Half the default rate, for 72,000 resets in all.
    let sent = reset_cycling(&mut pair, 1_000, Duration::from_millis(500), 72);
    assert_eq!(sent, 72_000);
    assert!(!pair.server().is_closed(), "{:?}", pair.server().error());
}

#[test]
fn repeated_resets_and_stop_sendings_are_free() {
    // Four aborts in all; the rate refills one a second, and the test
    // takes well under a second.
    let mut pair = server_with_streams(1108, 100, |l| {
        l.stream_abort_burst = 4;
        l.stream_aborts_per_second = 1;
    });
    // The client knows the bidirectional streams, as the server's resets
    // in answer to STOP_SENDING reach it.
    for i in 0..3 {
        assert_eq!(pair.client().open_stream(Dir::Bi), Some(bidi(i)));
    }
    let first: Vec<Frame<'_>> = vec![reset(uni(0)), reset(uni(1)), stop(bidi(0)), stop(bidi(1))];
    inject_all(&mut pair, &first);
    pair.drive_for(Duration::from_millis(20));
    // Repeats while the streams are open, then after they closed.
    let repeats: Vec<Frame<'_>> = (0..500).map(|i| first[i % 4]).collect();
    inject_all(&mut pair, &repeats);
    pair.drive_for(Duration::from_millis(20));
    let mut accepted = Vec::new();
    server_reads_resets(&mut pair, &mut accepted);
    assert!(accepted.is_empty(), "both resets were read and the streams closed");
    inject_all(&mut pair, &repeats);
    pair.drive_for(Duration::from_millis(20));
    assert!(!pair.server().is_closed(), "{:?}", pair.server().error());
    // The limit still holds for a fifth stream.
    inject_all(&mut pair, &[stop(bidi(2))]);
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::PROTOCOL_VIOLATION);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-7.5
//= type=test
//# Implementations MUST support buffering at least 4096 bytes of data received in
//# out-of-order CRYPTO frames.
#[test]
fn crypto_buffer_holds_4096_bytes_whatever_the_setting_and_caps_fragments() {
    let crypto = |offset: u32, data: &[u8]| {
        encode(&[Frame::Crypto(Crypto { offset: VarInt::from_u32(offset), data })])
    };
    // The setting asks for 100 bytes; 4095 bytes behind a one-byte hole
    // are kept all the same.
    let mut pair = server_limits(1110, |l| l.max_crypto_buffer = 100);
    let data = [0u8; 819];
    for i in 0..5 {
        inject_frames(&mut pair, Side::Client, &crypto(1 + 819 * i, &data));
    }
    pair.drive_for(Duration::from_millis(50));
    assert!(!pair.server().is_closed(), "{:?}", pair.server().error());
    // A byte beyond them is too far ahead.
    inject_frames(&mut pair, Side::Client, &crypto(4096, b"x"));
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::CRYPTO_BUFFER_EXCEEDED);

    // 64 disjoint ranges are kept; a 65th is a peer fragmenting on purpose.
    let mut pair = server_limits(1111, |_| {});
    for i in 0..64 {
        inject_frames(&mut pair, Side::Client, &crypto(1 + 2 * i, b"x"));
    }
    pair.drive_for(Duration::from_millis(50));
    assert!(!pair.server().is_closed(), "{:?}", pair.server().error());
    inject_frames(&mut pair, Side::Client, &crypto(1 + 2 * 64, b"x"));
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::CRYPTO_BUFFER_EXCEEDED);
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

//= https://www.rfc-editor.org/rfc/rfc9000#section-21.9
//= type=test
//# While there are legitimate uses for all messages, implementations SHOULD track
//# cost of processing relative to progress and treat excessive quantities of any
//# non-productive packets as indicative of an attack.
#[test]
fn a_stream_of_tiny_frames_queues_one_event_per_kind_and_stream() {
    let mut pair = Pair::new(1110);
    pair.handshake();
    let id = StreamId::new(Side::Client, Dir::Uni, 0).unwrap();
    let bytes = [b'x'; 200];
    let frames: Vec<Frame<'_>> = (0..200u64)
        .map(|i| {
            Frame::Stream(Stream {
                id,
                offset: VarInt::from_u64(i).unwrap(),
                fin: false,
                has_length: true,
                data: &bytes[..1],
            })
        })
        .collect();
    let now = pair.now();
    let packet = pair.client().forge_packet(now, &encode(&frames));
    let meta = crate::connection::DatagramMeta {
        remote: crate::testing::pair::client_addr(),
        local_ip: None,
        ecn: None,
    };
    let server = pair.server();
    while server.poll_event().is_some() {}
    for _ in 0..3 {
        // The same packet again is a duplicate; the events stay as they are.
        server.handle_datagram(now, meta, bytes::BytesMut::from(&packet[..]));
    }
    assert_eq!(server.queued_stream_events(), 2, "one Opened and one Readable");
    let mut events = Vec::new();
    while let Some(e) = server.poll_event() {
        events.push(e);
    }
    assert_eq!(
        events,
        [
            crate::connection::Event::Stream(crate::connection::StreamEvent::Opened(Dir::Uni)),
            crate::connection::Event::Stream(crate::connection::StreamEvent::Readable(id)),
        ]
    );
}

/// `count` PING-only packets from the client, `every` apart.
fn ping_only_packets(pair: &mut Pair, count: u32, every: Duration) {
    let ping = encode(&[Frame::Ping]);
    for _ in 0..count {
        if pair.server().is_closed() {
            break;
        }
        inject_frames(pair, Side::Client, &ping);
        pair.drive_for(every);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-21.9
//= type=test
//# While there are legitimate uses for all messages, implementations SHOULD track
//# cost of processing relative to progress and treat excessive quantities of any
//# non-productive packets as indicative of an attack.
#[test]
fn a_flood_of_ping_only_packets_is_a_protocol_violation() {
    let mut pair = server_limits(1111, |l| {
        l.ping_only_packets_per_second = 100;
        l.ping_only_packet_burst = 50;
    });
    // 1,000 per second against a rate of 100: the burst lasts ~55 packets.
    ping_only_packets(&mut pair, 200, Duration::from_millis(1));
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::PROTOCOL_VIOLATION);
}

#[test]
fn keep_alive_pings_within_the_rate_are_fine_for_ever() {
    let mut pair = server_limits(1112, |l| {
        l.ping_only_packets_per_second = 100;
        l.ping_only_packet_burst = 50;
    });
    // 90 per second for 20 s.
    ping_only_packets(&mut pair, 1_800, Duration::from_micros(11_111));
    assert!(!pair.server().is_closed(), "{:?}", pair.server().error());
}
