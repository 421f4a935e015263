//! Flow control: limits enforced on a peer that exceeds them, credit
//! returned only as the application reads, and window auto-tuning
//! (RFC 9000 §4).

use core::time::Duration;

use super::{assert_closes_with, encode, inject_frames};
use crate::connection::{ReadError, TransportConfig};
use crate::error::TransportErrorCode;
use crate::frame::{Frame, Stream};
use crate::stream_id::{Dir, Side, StreamId};
use crate::testing::pair::{Direction, Pair, payload};
use crate::varint::VarInt;

fn server_with(seed: u64, f: impl FnOnce(&mut TransportConfig)) -> Pair {
    let mut server = TransportConfig::default();
    f(&mut server);
    Pair::builder(seed).server_transport(server).build()
}

fn stream_frame(index: u64, offset: u64, data: &[u8]) -> Vec<u8> {
    encode(&[Frame::Stream(Stream {
        id: StreamId::new(Side::Client, Dir::Uni, index).unwrap(),
        offset: VarInt::from_u64(offset).unwrap(),
        fin: false,
        has_length: true,
        data,
    })])
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
//= type=test
//# A receiver MUST close the connection with an error of type FLOW_CONTROL_ERROR if
//# the sender violates the advertised connection or stream data limits
#[test]
fn data_beyond_the_stream_limit_is_flow_control_error() {
    let mut pair = server_with(301, |c| {
        c.initial_max_stream_data(VarInt::from_u32(1000));
    });
    pair.handshake();
    // Ends at 1001: one byte over.
    inject_frames(&mut pair, Side::Client, &stream_frame(0, 991, &[0; 10]));
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::FLOW_CONTROL_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
//= type=test
//# A receiver MUST close the connection with an error of type FLOW_CONTROL_ERROR if
//# the sender violates the advertised connection or stream data limits
#[test]
fn data_beyond_the_connection_limit_is_flow_control_error() {
    let mut pair = server_with(302, |c| {
        c.initial_max_data(VarInt::from_u32(800)).initial_max_stream_data(VarInt::from_u32(600));
    });
    pair.handshake();
    // Each stream is within its own limit; together they exceed the connection's.
    let mut frames = stream_frame(0, 0, &[0; 500]);
    frames.extend(stream_frame(1, 0, &[0; 500]));
    inject_frames(&mut pair, Side::Client, &frames);
    assert_closes_with(&mut pair, Side::Server, TransportErrorCode::FLOW_CONTROL_ERROR);
}

fn read_available(pair: &mut Pair, id: StreamId) -> usize {
    let mut buf = [0; 65536];
    let mut total = 0;
    loop {
        match pair.server().read(id, &mut buf) {
            Ok(Some(n)) => total += n,
            Ok(None) | Err(ReadError::Blocked) => return total,
            Err(e) => panic!("{e}"),
        }
    }
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
//= type=test
//# Senders MUST NOT send data in excess of either limit.
#[test]
fn credit_comes_back_only_as_the_application_reads() {
    const WINDOW: u32 = 16 * 1024;
    let mut pair = server_with(303, |c| {
        c.initial_max_stream_data(VarInt::from_u32(WINDOW));
    });
    pair.handshake();
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    let data = payload(200_000, 1);
    let written = pair.client().write(id, &data).unwrap();
    assert_eq!(written, data.len(), "the send buffer takes it all");
    // The server's application does not read: the window fills and stays full.
    pair.drive_for(Duration::from_secs(3));
    assert_eq!(pair.server().accept_stream(Dir::Uni), Some(id));
    let sent_while_blocked = pair.link_stats(Direction::ClientToServer).sent_bytes;
    pair.drive_for(Duration::from_secs(3));
    let sent_later = pair.link_stats(Direction::ClientToServer).sent_bytes;
    // Blocked: at most STREAM_DATA_BLOCKED or ACK-sized datagrams since.
    assert!(sent_later - sent_while_blocked < 1000, "{sent_while_blocked} then {sent_later}");
    assert_eq!(read_available(&mut pair, id), WINDOW as usize);
    // Reading returns credit: more data comes.
    pair.drive_for(Duration::from_secs(1));
    let more = read_available(&mut pair, id);
    assert!(more > 0 && more <= 2 * WINDOW as usize, "{more} more bytes");
}

#[test]
fn receive_windows_grow_when_the_reader_keeps_up() {
    const INITIAL: u32 = 32 * 1024;
    let mut pair = server_with(304, |c| {
        c.initial_max_data(VarInt::from_u32(INITIAL))
            .initial_max_stream_data(VarInt::from_u32(INITIAL));
    });
    // A long path, so that a small window limits throughput.
    pair.links(|l| {
        l.latency(Duration::from_millis(50));
    });
    pair.handshake();
    let data = payload(3_000_000, 2);
    assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
    let window = pair.server().receive_window();
    assert!(window >= 4 * u64::from(INITIAL), "connection window {window}");
    assert!(pair.client().peer_max_data() >= 3_000_000);
}

/// Writes `len` bytes in one call, finishes, and reads on the server
/// without the client writing again: only a credit update can resume it.
fn one_write_transfer(pair: &mut Pair, len: usize) {
    pair.handshake();
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    let data = payload(len, 3);
    assert_eq!(pair.client().write(id, &data).unwrap(), len);
    pair.client().finish(id).unwrap();
    let mut got = Vec::new();
    pair.drive_until(Duration::from_secs(20), |p| {
        let mut buf = [0; 65536];
        while p.server().accept_stream(Dir::Uni).is_some() {}
        loop {
            match p.server().read(id, &mut buf) {
                Ok(Some(n)) => got.extend_from_slice(&buf[..n]),
                Ok(None) => return true,
                Err(ReadError::Blocked | ReadError::ClosedStream) => return false,
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(got, data);
}

/// Regression: the stream's credit was never counted as used, so
/// MAX_STREAM_DATA never found the stream blocked and never put it back in
/// the send queue; a stream written in one go stalled at the first limit.
#[test]
fn max_stream_data_wakes_a_stream_blocked_on_its_credit() {
    let mut pair = server_with(305, |c| {
        c.initial_max_stream_data(VarInt::from_u32(8 * 1024));
    });
    one_write_transfer(&mut pair, 100_000);
}

/// Regression: MAX_DATA raised `Writable` events but left streams that had
/// run out of connection credit out of the send queue.
#[test]
fn max_data_wakes_a_stream_blocked_on_connection_credit() {
    let mut pair = server_with(306, |c| {
        c.initial_max_data(VarInt::from_u32(8 * 1024));
    });
    one_write_transfer(&mut pair, 100_000);
}

/// The blocked frames (`data_blocked`, `stream_data_blocked`) in the
/// client's sent packets, from its qlog: (frame type, limit), in order.
fn blocked_frames_sent(log: &[u8]) -> Vec<(String, u64)> {
    let text = String::from_utf8_lossy(log);
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.contains("\"name\":\"quic:packet_sent\"")) {
        for kind in ["stream_data_blocked", "data_blocked", "streams_blocked"] {
            let needle = format!("\"frame_type\":\"{kind}\"");
            let mut rest = line;
            while let Some(at) = rest.find(&needle) {
                rest = &rest[at + needle.len()..];
                let limit = rest.split("\"limit\":").nth(1).expect("a limit");
                let digits: String = limit.chars().take_while(char::is_ascii_digit).collect();
                out.push((kind.to_owned(), digits.parse().unwrap()));
            }
        }
    }
    out
}

/// A pair whose client logs qlog into `sink`, with the server's transport
/// configured by `server`.
fn logged_client(
    seed: u64,
    sink: &crate::qlog::VecSink,
    server: impl FnOnce(&mut TransportConfig),
) -> Pair {
    let mut config = TransportConfig::default();
    server(&mut config);
    let s = sink.clone();
    Pair::builder(seed)
        .server_transport(config)
        .client_endpoint(move |config| {
            let sink = s.clone();
            config.qlog(std::sync::Arc::new(move |_, _| {
                Some(Box::new(sink.clone()) as Box<dyn crate::qlog::QlogSink>)
            }));
        })
        .build()
}

/// `logged_client` with a server granting `stream` bytes per stream and
/// `conn` bytes per connection.
fn logged_windows(seed: u64, sink: &crate::qlog::VecSink, stream: u32, conn: u32) -> Pair {
    logged_client(seed, sink, |c| {
        c.initial_max_stream_data(VarInt::from_u32(stream))
            .initial_max_data(VarInt::from_u32(conn));
    })
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
//= type=test
//# A sender SHOULD send a STREAM_DATA_BLOCKED or
//# DATA_BLOCKED frame to indicate to the receiver that it has data to write but is
//# blocked by flow control limits.
#[test]
fn a_sender_blocked_by_flow_control_says_so_once_per_limit() {
    const WINDOW: u32 = 16 * 1024;
    let sink = crate::qlog::VecSink::new();
    let mut pair = logged_windows(307, &sink, WINDOW, 1 << 20);
    pair.handshake();
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    let data = payload(100_000, 4);
    pair.client().write(id, &data).unwrap();
    pair.drive_for(Duration::from_secs(3));
    assert_eq!(
        blocked_frames_sent(&sink.contents()),
        [("stream_data_blocked".to_owned(), u64::from(WINDOW))],
        "one STREAM_DATA_BLOCKED at the stream limit, however long it stays blocked"
    );
    // Reading returns credit; blocked again at the next limit, reported again.
    assert_eq!(pair.server().accept_stream(Dir::Uni), Some(id));
    read_available(&mut pair, id);
    pair.drive_for(Duration::from_secs(3));
    let frames = blocked_frames_sent(&sink.contents());
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(frames[1].1 > u64::from(WINDOW), "{frames:?}");
}

#[test]
fn a_sender_out_of_connection_credit_sends_data_blocked() {
    const CONN: u32 = 24 * 1024;
    let sink = crate::qlog::VecSink::new();
    let mut pair = logged_windows(308, &sink, 1 << 20, CONN);
    pair.handshake();
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    pair.client().write(id, &payload(100_000, 5)).unwrap();
    pair.drive_for(Duration::from_secs(3));
    assert_eq!(
        blocked_frames_sent(&sink.contents()),
        [("data_blocked".to_owned(), u64::from(CONN))]
    );
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.3
//= type=test
//# A new frame is sent if a packet containing the most recent frame for a scope
//# is lost, but only while the endpoint is blocked on the corresponding limit.
#[test]
fn a_lost_blocked_frame_is_sent_again_while_still_blocked() {
    // Small enough that the first packet of data already hits the limit.
    const WINDOW: u32 = 1000;
    let sink = crate::qlog::VecSink::new();
    let mut pair = logged_windows(309, &sink, WINDOW, 1 << 20);
    pair.handshake();
    let id = pair.client().open_stream(Dir::Uni).unwrap();
    pair.client().write(id, &payload(100_000, 6)).unwrap();
    // Lose every client datagram for a while: the STREAM_DATA_BLOCKED
    // (and the data before it) goes missing, and comes again.
    pair.link(Direction::ClientToServer).loss(1.0);
    pair.drive_for(Duration::from_millis(200));
    pair.link(Direction::ClientToServer).loss(0.0);
    pair.drive_for(Duration::from_secs(5));
    let frames = blocked_frames_sent(&sink.contents());
    assert!(frames.len() >= 2, "sent again after the loss: {frames:?}");
    assert!(frames.iter().all(|f| f == &("stream_data_blocked".to_owned(), u64::from(WINDOW))));
    // Once delivered, it is not repeated while the limit stays.
    let before = frames.len();
    pair.drive_for(Duration::from_secs(3));
    assert_eq!(blocked_frames_sent(&sink.contents()).len(), before);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
//= type=test
//# An endpoint that is unable to open a new stream due to the peer's limits SHOULD
//# send a STREAMS_BLOCKED frame ({{frame-streams-blocked}}).
#[test]
fn an_endpoint_out_of_streams_sends_streams_blocked_once_per_limit() {
    let sink = crate::qlog::VecSink::new();
    let mut pair = logged_client(310, &sink, |c| {
        c.max_concurrent_uni_streams(VarInt::from_u32(2));
    });
    pair.handshake();
    assert!(pair.client().open_stream(Dir::Uni).is_some());
    assert!(pair.client().open_stream(Dir::Uni).is_some());
    for _ in 0..3 {
        assert_eq!(pair.client().open_stream(Dir::Uni), None, "the peer allows two");
        pair.drive_for(Duration::from_millis(200));
    }
    assert_eq!(blocked_frames_sent(&sink.contents()), [("streams_blocked".to_owned(), 2)]);
}
