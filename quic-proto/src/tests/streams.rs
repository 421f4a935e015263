//! Streams: opening and accepting within the peer's limits, frames on the
//! wrong kind of stream, reset and stop semantics, and send priorities
//! (RFC 9000 §2-§4, §19.4-§19.11).

use core::time::Duration;

use bytes::Bytes;

use super::{assert_closes_with, encode, inject_frames};
use crate::connection::{Event, ReadError, StreamEvent, TransportConfig, WriteError};
use crate::error::TransportErrorCode;
use crate::frame::{Frame, MaxStreamData, Stream};
use crate::stream_id::{Dir, Side, StreamId};
use crate::testing::pair::{Pair, StreamTransfer, payload};
use crate::varint::VarInt;

fn pair_with_server(seed: u64, f: impl FnOnce(&mut TransportConfig)) -> Pair {
    let mut server = TransportConfig::default();
    f(&mut server);
    let mut pair = Pair::builder(seed).server_transport(server).build();
    pair.handshake();
    pair
}

fn stream_frame(id: StreamId, offset: u64, data: &[u8]) -> Vec<u8> {
    encode(&[Frame::Stream(Stream {
        id,
        offset: VarInt::from_u64(offset).unwrap(),
        fin: false,
        has_length: true,
        data,
    })])
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
//= type=test
//# Endpoints MUST NOT exceed the limit set by their peer.
#[test]
fn opening_waits_for_the_peers_stream_credit() {
    let mut pair = pair_with_server(201, |c| {
        c.max_concurrent_uni_streams(VarInt::from_u32(2));
    });
    let a = pair.client().open_stream(Dir::Uni).unwrap();
    let b = pair.client().open_stream(Dir::Uni).unwrap();
    assert_eq!(pair.client().open_stream(Dir::Uni), None, "the third is over the limit");
    for id in [a, b] {
        pair.client().write(id, b"hello").unwrap();
        pair.client().finish(id).unwrap();
    }
    // The harness opens the next ones as credit comes back.
    let specs: Vec<_> =
        (0..5).map(|i| StreamTransfer::one_way(Side::Client, Dir::Uni, payload(3000, i))).collect();
    // Reading the first two to their end releases their credit.
    let mut ended = [false; 2];
    pair.drive_until(Duration::from_secs(5), |p| {
        let mut buf = [0; 64];
        while p.server().accept_stream(Dir::Uni).is_some() {}
        for (id, ended) in [a, b].iter().zip(&mut ended) {
            while !*ended {
                match p.server().read(*id, &mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => *ended = true,
                    Err(_) => break,
                }
            }
        }
        ended == [true; 2]
    });
    let results = pair.transfer_streams(&specs);
    for (spec, result) in specs.iter().zip(&results) {
        assert_eq!(result.request_received, spec.request);
        assert!(result.id.index() < 7);
    }
    assert!(pair.client_events().contains(&Event::Stream(StreamEvent::Available(Dir::Uni))));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
//= type=test
//# An endpoint that
//# receives a frame with a stream ID exceeding the limit it has sent MUST treat
//# this as a connection error of type STREAM_LIMIT_ERROR
#[test]
fn a_stream_beyond_the_limit_is_stream_limit_error() {
    let mut pair = pair_with_server(202, |c| {
        c.max_concurrent_uni_streams(VarInt::from_u32(2));
    });
    let third = StreamId::new(Side::Client, Dir::Uni, 2).unwrap();
    inject_frames(&mut pair, Side::Client, &stream_frame(third, 0, b"x"));
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::STREAM_LIMIT_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
//= type=test
//# An endpoint MUST terminate the connection with error STREAM_STATE_ERROR if it
//# receives a STREAM frame for a locally initiated stream that has not yet been
//# created, or for a send-only stream.
//
//= https://www.rfc-editor.org/rfc/rfc9000#section-19.10
//= type=test
//# An endpoint that receives a
//# MAX_STREAM_DATA frame for a receive-only stream MUST terminate the connection
//# with error STREAM_STATE_ERROR.
#[test]
fn frames_for_the_wrong_kind_of_stream_are_stream_state_errors() {
    let server_uni = StreamId::new(Side::Server, Dir::Uni, 0).unwrap();
    let server_bidi = StreamId::new(Side::Server, Dir::Bi, 0).unwrap();
    let client_uni = StreamId::new(Side::Client, Dir::Uni, 0).unwrap();
    let max_stream_data =
        encode(&[Frame::MaxStreamData(MaxStreamData { id: client_uni, maximum: VarInt::MAX })]);
    let cases = [
        // The server's own unidirectional stream: send-only for it, even
        // once it exists.
        (stream_frame(server_uni, 0, b"x"), true),
        // The server's bidirectional stream it never opened.
        (stream_frame(server_bidi, 0, b"x"), false),
        // Flow control credit for a stream the server only receives on.
        (max_stream_data, false),
    ];
    for (i, (frames, open_first)) in cases.into_iter().enumerate() {
        let mut pair = Pair::new(203 + i as u64);
        pair.handshake();
        if open_first {
            let id = pair.server().open_stream(Dir::Uni).unwrap();
            pair.server().write(id, b"mine").unwrap();
        }
        if i == 2 {
            let id = pair.client().open_stream(Dir::Uni).unwrap();
            pair.client().write(id, b"data").unwrap();
            pair.drive_for(Duration::from_millis(50));
        }
        inject_frames(&mut pair, Side::Client, &frames);
        assert_closes_with(&mut pair, Side::Server, TransportErrorCode::STREAM_STATE_ERROR);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-3.2
//= type=test
//# Receiving a RESET_STREAM frame in the "Recv" or "Size Known" state causes the
//# stream to enter the "Reset Recvd" state.  This might cause the delivery of
//# stream data to the application to be interrupted.
#[test]
fn a_reset_reaches_the_reader_with_its_code() {
    let mut pair = Pair::new(206);
    pair.handshake();
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    pair.client().write(id, &payload(10_000, 1)).unwrap();
    pair.drive_until(Duration::from_secs(2), |p| p.server().accept_stream(Dir::Uni).is_some());
    pair.client().reset(id, VarInt::from_u32(7)).unwrap();
    assert_eq!(pair.client().write(id, b"more"), Err(WriteError::ClosedStream));
    let mut got = Vec::new();
    pair.drive_until(Duration::from_secs(2), |p| {
        let mut buf = [0; 4096];
        loop {
            match p.server().read(id, &mut buf) {
                Ok(Some(n)) => got.extend_from_slice(&buf[..n]),
                Err(ReadError::Blocked) => return false,
                Err(ReadError::Reset(code)) => return code == VarInt::from_u32(7),
                other => panic!("read gave {other:?}"),
            }
        }
    });
    assert!(got.len() <= 10_000);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-3.5
//= type=test
//# An endpoint that receives a STOP_SENDING frame MUST send a RESET_STREAM
//# frame if the stream is in the "Ready" or "Send" state.
#[test]
fn stop_sending_draws_a_reset_with_the_same_code() {
    let mut pair = Pair::new(207);
    pair.handshake();
    let id = pair.client().open_stream(Dir::Bi).unwrap();
    pair.client().write(id, &payload(5_000, 1)).unwrap();
    pair.drive_until(Duration::from_secs(2), |p| p.server().accept_stream(Dir::Bi).is_some());
    pair.server().stop(id, VarInt::from_u32(9)).unwrap();
    pair.drive_until(Duration::from_secs(2), |p| {
        p.client_events().contains(&Event::Stream(StreamEvent::Stopped(id, VarInt::from_u32(9))))
    });
    assert_eq!(pair.client().write(id, b"more"), Err(WriteError::Stopped(VarInt::from_u32(9))));
    pair.drive_until(Duration::from_secs(2), |p| {
        let mut buf = [0; 4096];
        matches!(p.server().read(id, &mut buf), Err(ReadError::Reset(c)) if c == VarInt::from_u32(9))
    });
    // The other direction of the stream is untouched.
    let reply = Bytes::from_static(b"still here");
    pair.server().write(id, &reply).unwrap();
    pair.server().finish(id).unwrap();
    let mut got = Vec::new();
    pair.drive_until(Duration::from_secs(2), |p| {
        let mut buf = [0; 64];
        loop {
            match p.client().read(id, &mut buf) {
                Ok(Some(n)) => got.extend_from_slice(&buf[..n]),
                Ok(None) => return true,
                Err(ReadError::Blocked) => return false,
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(got, reply);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-2.3
//= type=test
//# A QUIC implementation SHOULD provide ways in which an application can indicate
//# the relative priority of streams.
#[test]
fn a_higher_priority_stream_is_sent_first() {
    let mut pair = Pair::new(208);
    pair.handshake();
    let low = pair.client().open_stream(Dir::Uni).unwrap();
    let high = pair.client().open_stream(Dir::Uni).unwrap();
    pair.client().set_priority(high, 10).unwrap();
    // The low-priority stream is written first: priority, not order, decides.
    for id in [low, high] {
        pair.client().write(id, &payload(60_000, 1)).unwrap();
        pair.client().finish(id).unwrap();
    }
    let (mut low_bytes, mut high_done) = (0usize, false);
    let mut low_done = false;
    pair.drive_until(Duration::from_secs(10), |p| {
        while p.server().accept_stream(Dir::Uni).is_some() {}
        let mut buf = [0; 65536];
        loop {
            match p.server().read(high, &mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => high_done = true,
                _ => break,
            }
            if high_done {
                break;
            }
        }
        let high_done_now = high_done;
        loop {
            match p.server().read(low, &mut buf) {
                Ok(Some(n)) => {
                    assert!(high_done_now, "low-priority data arrived before the high one ended");
                    low_bytes += n;
                }
                Ok(None) => {
                    low_done = true;
                    break;
                }
                _ => break,
            }
        }
        low_done
    });
    assert_eq!(low_bytes, 60_000);
}

/// Regression: an application that waits for `Writable` after a full send
/// buffer stalled, because acknowledgements freed buffer space silently
/// (only new flow-control credit produced `Writable`).
#[test]
fn acked_data_frees_buffer_space_and_says_so() {
    let mut client = TransportConfig::default();
    client.send_buffer_per_stream(8 * 1024);
    let mut pair = Pair::builder(520).client_transport(client).build();
    pair.handshake();
    let data = payload(200_000, 5);
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    let mut written = 0;
    let mut waits = 0;
    let mut received = Vec::new();
    let mut rid = None;
    while received.len() < data.len() {
        // Write until blocked, then only again once told the stream is writable.
        while written < data.len() {
            match pair.client().write_bytes(id, data.slice(written..)) {
                Ok(n) => written += n,
                Err(WriteError::Blocked) => {
                    waits += 1;
                    pair.take_events(Side::Client);
                    pair.drive_until(Duration::from_secs(10), |p| {
                        p.client_events().contains(&Event::Stream(StreamEvent::Writable(id)))
                    });
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
        if written == data.len() {
            let _ = pair.client().finish(id);
        }
        pair.step();
        if rid.is_none() {
            rid = pair.server().accept_stream(Dir::Uni);
        }
        if let Some(r) = rid {
            let mut buf = [0u8; 16384];
            while let Ok(Some(n)) = pair.server().read(r, &mut buf) {
                received.extend_from_slice(&buf[..n]);
            }
        }
    }
    assert_eq!(received, data.to_vec());
    assert!(waits > 5, "the small buffer blocked the writer ({waits} waits)");
}

/// Regression: `write(&[])` returned `Blocked`, and no `Writable` ever
/// followed, so an application that waits after `Blocked` hung.
#[test]
fn an_empty_write_returns_at_once() {
    let mut pair = Pair::new(521);
    pair.handshake();
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    assert_eq!(pair.client().write(id, &[]), Ok(0));
    assert_eq!(pair.client().write_bytes(id, Bytes::new()), Ok(0));
    pair.drive_for(Duration::from_millis(200));
    assert!(!pair.client_events().contains(&Event::Stream(StreamEvent::Writable(id))));
    assert_eq!(pair.client().write(id, b"after"), Ok(5));
    // Even on a stream whose buffer is full, an empty write is no block.
    let mut small = TransportConfig::default();
    small.send_buffer_per_stream(16);
    let mut pair = Pair::builder(522).client_transport(small).build();
    pair.handshake();
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    assert_eq!(pair.client().write(id, &[7; 16]), Ok(16));
    assert_eq!(pair.client().write(id, &[]), Ok(0));
    // Errors still win over the shortcut.
    pair.client().finish(id).unwrap();
    assert_eq!(pair.client().write(id, &[]), Err(WriteError::ClosedStream));
}

/// The `Writable` events `side` saw for `id`.
fn writable_count(pair: &Pair, side: Side, id: StreamId) -> usize {
    pair.events(side).iter().filter(|e| **e == Event::Stream(StreamEvent::Writable(id))).count()
}

/// Reads every stream the server has, accepting new ones; returns the
/// bytes read per stream ID.
fn server_reads_all(pair: &mut Pair, got: &mut std::collections::BTreeMap<StreamId, usize>) {
    while let Some(id) = pair.server().accept_stream(Dir::Uni) {
        got.entry(id).or_default();
    }
    let mut buf = [0; 16384];
    for (id, n) in got.iter_mut() {
        while let Ok(Some(k)) = pair.server().read(*id, &mut buf) {
            *n += k;
        }
    }
}

/// Regression: MAX_DATA woke every send stream, blocked or not, and a
/// stream got a `Writable` whenever an acknowledgement freed space in a
/// full buffer, whether or not its writer had been refused. Now only a
/// writer that was refused (or cut short) is woken, once per blocking.
#[test]
fn only_blocked_writers_are_woken_once_per_blocking() {
    let mut client = TransportConfig::default();
    client.send_buffer_per_stream(8 * 1024);
    let mut server = TransportConfig::default();
    // Small connection credit: MAX_DATA frames flow as the server reads.
    server.initial_max_data(VarInt::from_u32(4 * 1024));
    let mut pair = Pair::builder(523).client_transport(client).server_transport(server).build();
    pair.handshake();
    let blocked = pair.client().open_stream(Dir::Uni).unwrap();
    let idle = pair.client().open_stream(Dir::Uni).unwrap();
    let full = pair.client().open_stream(Dir::Uni).unwrap();
    let data = payload(20_000, 6);
    assert_eq!(pair.client().write(idle, &data[..100]), Ok(100));
    // Fills the buffer exactly: taken whole, so this writer waits for nothing.
    assert_eq!(pair.client().write(full, &data[..8 * 1024]), Ok(8 * 1024));
    // Cut short, then refused.
    let mut written = pair.client().write(blocked, &data).unwrap();
    assert_eq!(written, 8 * 1024);
    assert_eq!(pair.client().write(blocked, &data[written..]), Err(WriteError::Blocked));
    let mut got = std::collections::BTreeMap::new();
    let mut blockings = 1;
    while written < data.len() {
        pair.drive_until(Duration::from_secs(10), |p| {
            server_reads_all(p, &mut got);
            writable_count(p, Side::Client, blocked) == blockings
        });
        // Let more acknowledgements and MAX_DATA arrive before writing
        // again: they must not wake the stream a second time.
        pair.drive_for(Duration::from_millis(100));
        server_reads_all(&mut pair, &mut got);
        assert_eq!(writable_count(&pair, Side::Client, blocked), blockings);
        match pair.client().write(blocked, &data[written..]) {
            Ok(n) => written += n,
            Err(e) => panic!("woken, yet the write failed: {e}"),
        }
        if written < data.len() {
            blockings += 1;
        }
    }
    pair.drive_for(Duration::from_secs(1));
    server_reads_all(&mut pair, &mut got);
    assert_eq!(got.get(&blocked), Some(&data.len()));
    assert_eq!(writable_count(&pair, Side::Client, blocked), blockings);
    assert!(blockings >= 2, "the writer blocked more than once ({blockings})");
    assert_eq!(writable_count(&pair, Side::Client, idle), 0);
    assert_eq!(writable_count(&pair, Side::Client, full), 0);
}
