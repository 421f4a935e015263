use core::ops::RangeInclusive;

use proptest::prelude::*;

use super::strategies;
use super::*;
use crate::cid::ConnectionId;
use crate::error::TransportErrorCode;
use crate::stream_id::{Dir, Side, StreamId};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn v(x: u64) -> VarInt {
    VarInt::from_u64(x).unwrap()
}

fn decode_one(bytes: &[u8]) -> Result<Frame<'_>, TransportError> {
    let mut frames = Frames::new(bytes);
    let frame = frames.next().expect("at least one frame")?;
    assert!(frames.remaining().is_empty(), "trailing bytes after {frame:?}");
    Ok(frame)
}

fn encode(frame: &Frame<'_>) -> Vec<u8> {
    let mut buf = Vec::new();
    frame.encode(&mut buf);
    assert_eq!(buf.len(), frame.encoded_len(), "encoded_len of {frame:?}");
    buf
}

/// Decodes `bytes` as one frame, checks it is `expected`, and checks that
/// `expected` encodes back to `bytes`.
fn check(bytes: &[u8], expected: Frame<'_>) {
    assert_eq!(decode_one(bytes), Ok(expected));
    assert_eq!(encode(&expected), bytes, "encoding of {expected:?}");
}

fn check_error(bytes: &[u8], code: TransportErrorCode, ty: Option<FrameType>) {
    let err = Frames::new(bytes)
        .find_map(Result::err)
        .unwrap_or_else(|| panic!("{bytes:02x?} decoded without error"));
    assert_eq!((err.code, err.frame_type), (code, ty), "{err}");
}

fn ranges(ack: &Ack<'_>) -> Vec<RangeInclusive<u64>> {
    ack.ranges().collect()
}

fn ack_of(bytes: &[u8]) -> Ack<'_> {
    match decode_one(bytes) {
        Ok(Frame::Ack(ack)) => ack,
        other => panic!("not an ACK: {other:?}"),
    }
}

const FEE: TransportErrorCode = TransportErrorCode::FRAME_ENCODING_ERROR;

// ---- RFC examples ----

//= https://www.rfc-editor.org/rfc/rfc9001#appendix-A.2
//= type=test
//# The unprotected payload of this packet
//# contains the following CRYPTO frame, plus enough PADDING frames to make a
//# 1162-byte payload:
#[test]
fn rfc9001_client_initial_payload() {
    let mut payload = hex("060040f1010000ed0303ebf8fa56f129 39b9584a3896472ec40bb863cfd3e868
         04fe3a47f06a2b69484c000004130113 02010000c000000010000e00000b6578
         616d706c652e636f6dff01000100000a 00080006001d00170018001000070005
         04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba
         baf4559fedba753de171fa71f50f1ce1 5d43e994ec74d748002b000302030400
         0d0010000e0403050306030203080408 050806002d00020101001c0002400100
         3900320408ffffffffffffffff050480 00ffff07048000ffff08011001048000
         75300901100f088394c8f03e51570806 048000ffff");
    let crypto_len = payload.len();
    payload.resize(1162, 0);
    let frames: Vec<_> = Frames::new(&payload).collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 2);
    let Frame::Crypto(crypto) = frames[0] else { panic!("{:?}", frames[0]) };
    assert_eq!((crypto.offset, crypto.data.len()), (VarInt::ZERO, 241));
    // The RFC encodes the 241-byte length in two bytes, as this encoder does.
    assert_eq!(encode(&frames[0]), payload[..crypto_len]);
    assert_eq!(frames[1], Frame::Padding { len: 1162 - crypto_len });
    assert_eq!(frames.iter().map(Frame::encoded_len).sum::<usize>(), 1162);
}

//= https://www.rfc-editor.org/rfc/rfc9001#appendix-A.3
//= type=test
//# The server sends the following payload in response, including an ACK frame, a
//# CRYPTO frame, and no PADDING frames:
#[test]
fn rfc9001_server_initial_payload() {
    let payload = hex("02000000000600405a020000560303ee fce7f7b37ba1d1632e96677825ddf739
         88cfc79825df566dc5430b9a045a1200 130100002e00330024001d00209d3c94
         0d89690b84d08a60993c144eca684d10 81287c834d5311bcf32bb9da1a002b00
         020304");
    let frames: Vec<_> = Frames::new(&payload).collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 2);
    let Frame::Ack(ack) = frames[0] else { panic!("{:?}", frames[0]) };
    assert_eq!((ack.largest(), ack.ack_delay(), ack.ecn()), (0, VarInt::ZERO, None));
    assert_eq!(ranges(&ack), [0..=0]);
    let Frame::Crypto(crypto) = frames[1] else { panic!("{:?}", frames[1]) };
    assert_eq!((crypto.offset, crypto.data.len()), (VarInt::ZERO, 90));
    let mut out = Vec::new();
    frames.iter().for_each(|f| f.encode(&mut out));
    assert_eq!(out, payload);
}

// ---- each frame by hand ----

#[test]
fn padding_runs_fold_into_one_frame() {
    let frames: Vec<_> = Frames::new(&[0, 0, 0, 1, 0]).collect();
    assert_eq!(
        frames,
        [Ok(Frame::Padding { len: 3 }), Ok(Frame::Ping), Ok(Frame::Padding { len: 1 })]
    );
    assert_eq!(encode(&Frame::Padding { len: 4 }), [0, 0, 0, 0]);
}

#[test]
fn ping_and_handshake_done() {
    check(&[0x01], Frame::Ping);
    check(&[0x1e], Frame::HandshakeDone);
}

#[test]
fn ack_with_ranges() {
    // Largest 10, delay 3, one more range, first range 1 -> 9..=10;
    // gap 2 -> largest 5, length 3 -> 2..=5.
    let bytes = [0x02, 10, 3, 1, 1, 2, 3];
    let ack = ack_of(&bytes);
    assert_eq!(ranges(&ack), [9..=10, 2..=5]);
    assert_eq!((ack.largest(), ack.range_count(), ack.ranges().len()), (10, 2, 2));
    assert_eq!(ack.ack_delay_micros(3), 24);
    assert_eq!(encode(&Frame::Ack(ack)), bytes);
}

#[test]
fn ack_ecn() {
    let bytes = [0x03, 0x40, 100, 0, 0, 5, 1, 2, 3];
    let ack = ack_of(&bytes);
    assert_eq!(ranges(&ack), [95..=100]);
    assert_eq!(ack.ecn(), Some(EcnCounts { ect0: v(1), ect1: v(2), ce: v(3) }));
    assert_eq!(ack.ty(), FrameType::ACK_ECN);
    assert_eq!(encode(&Frame::Ack(ack)), bytes);
    check_error(&[0x03, 10, 0, 0, 0, 1, 2], FEE, Some(FrameType::ACK_ECN));
}

#[test]
fn ack_reencodes_non_minimal_ranges_as_received() {
    // Gap 0 written in two bytes: equal ranges, same bytes back.
    let bytes = [0x02, 10, 0, 1, 0, 0x40, 0, 0];
    let ack = ack_of(&bytes);
    assert_eq!(ranges(&ack), [10..=10, 8..=8]);
    assert_eq!(encode(&Frame::Ack(ack)), bytes);
    assert_eq!(ack, ack_of(&[0x02, 10, 0, 1, 0, 0, 0]));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.3.1
//= type=test
//# If any computed packet number is negative, an endpoint MUST generate a
//# connection error of type FRAME_ENCODING_ERROR.
#[test]
fn ack_with_negative_packet_number_is_rejected() {
    let ack = Some(FrameType::ACK);
    // First ACK Range larger than Largest Acknowledged.
    check_error(&[0x02, 5, 0, 0, 6], FEE, ack);
    // smallest 9; gap 8 -> largest 9 - 8 - 2 = -1.
    check_error(&[0x02, 10, 0, 1, 1, 8, 0], FEE, ack);
    // gap 0 -> largest 7; length 8 -> smallest -1.
    check_error(&[0x02, 10, 0, 1, 1, 0, 8], FEE, ack);
    // A later range underflows after valid ones.
    check_error(&[0x02, 10, 0, 2, 1, 0, 0, 6, 0], FEE, ack);
    assert_eq!(ranges(&ack_of(&[0x02, 10, 0, 2, 1, 0, 0, 5, 0])), [9..=10, 7..=7, 0..=0]);
    // Boundaries: gap 7 reaches packet 0 exactly, and a 0..=0 range is fine.
    assert_eq!(ranges(&ack_of(&[0x02, 10, 0, 1, 1, 7, 0])), [9..=10, 0..=0]);
    assert_eq!(ranges(&ack_of(&[0x02, 5, 0, 0, 5])), [0..=5]);
}

#[test]
fn ack_range_count_beyond_input_is_truncation() {
    // ACK Range Count 2^62-1 with no ranges: an error, promptly.
    let mut bytes = vec![0x02, 10, 0];
    VarInt::MAX.encode(&mut bytes);
    bytes.push(0);
    check_error(&bytes, FEE, Some(FrameType::ACK));
}

#[test]
fn reset_stream_and_stop_sending() {
    let id = StreamId::new(Side::Client, Dir::Bi, 1).unwrap();
    check(
        &[0x04, 4, 0x41, 0x00, 0x80, 0, 0x40, 0],
        Frame::ResetStream(ResetStream { id, error_code: v(0x100), final_size: v(0x4000) }),
    );
    check(&[0x05, 4, 7], Frame::StopSending(StopSending { id, error_code: v(7) }));
}

#[test]
fn crypto_frame() {
    check(
        &[0x06, 0x40, 0x80, 3, 1, 2, 3],
        Frame::Crypto(Crypto { offset: v(128), data: &[1, 2, 3] }),
    );
    check(&[0x06, 0, 0], Frame::Crypto(Crypto { offset: v(0), data: &[] }));
}

#[test]
fn new_token_frame() {
    check(&[0x07, 2, 0xaa, 0xbb], Frame::NewToken(NewToken { token: &[0xaa, 0xbb] }));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.7
//= type=test
//# A client MUST treat receipt of a NEW_TOKEN frame with
//# an empty Token field as a connection error of type FRAME_ENCODING_ERROR.
#[test]
fn empty_new_token_is_rejected() {
    check_error(&[0x07, 0], FEE, Some(FrameType::NEW_TOKEN));
}

#[test]
fn stream_frames_of_all_eight_types() {
    let id = StreamId::from(v(6));
    let data: &[u8] = b"hi";
    for ty in 0x08u8..=0x0f {
        let off = ty & 0x04 != 0;
        let has_length = ty & 0x02 != 0;
        let fin = ty & 0x01 != 0;
        let mut bytes = vec![ty, 6];
        if off {
            bytes.extend([0x40, 0x64]);
        }
        if has_length {
            bytes.push(2);
        }
        bytes.extend(data);
        let offset = if off { v(100) } else { VarInt::ZERO };
        let frame = Stream { id, offset, fin, has_length, data };
        check(&bytes, Frame::Stream(frame));
        assert_eq!(frame.ty(), FrameType(v(ty.into())));
        assert_eq!(frame.end(), offset.into_inner() + 2);
    }
    // An explicit zero offset decodes like an absent one; the encoder omits it.
    let with_zero_off = [0x0c, 6, 0, 9];
    let Ok(Frame::Stream(f)) = decode_one(&with_zero_off) else { panic!() };
    assert_eq!((f.offset, f.data), (VarInt::ZERO, &[9][..]));
    assert_eq!(encode(&Frame::Stream(f)), [0x08, 6, 9]);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
//= type=test
//# Receipt of a frame that exceeds this limit MUST be treated as a
//# connection error of type FRAME_ENCODING_ERROR or FLOW_CONTROL_ERROR.
#[test]
fn stream_data_beyond_max_offset_is_rejected() {
    let mut max_off = Vec::new();
    VarInt::MAX.encode(&mut max_off);
    // OFF|LEN, offset 2^62-1, one byte.
    let bytes = [&[0x0e, 0][..], &max_off, &[1, 0xaa]].concat();
    check_error(&bytes, FEE, Some(FrameType(v(0x0e))));
    // Without LEN, the data to the end of the packet counts the same way.
    let bytes = [&[0x0d, 0][..], &max_off, &[0xaa]].concat();
    check_error(&bytes, FEE, Some(FrameType(v(0x0d))));
    // An empty frame at 2^62-1 reaches the limit without exceeding it.
    let bytes = [&[0x0f, 0][..], &max_off, &[0]].concat();
    let Ok(Frame::Stream(f)) = decode_one(&bytes) else { panic!() };
    assert_eq!(f.end(), VarInt::MAX.into_inner());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.6
//= type=test
//# Receipt of a frame that exceeds this limit MUST be treated as a
//# connection error of type FRAME_ENCODING_ERROR or
//# CRYPTO_BUFFER_EXCEEDED.
#[test]
fn crypto_data_beyond_max_offset_is_rejected() {
    let mut bytes = vec![0x06];
    v(VarInt::MAX.into_inner() - 1).encode(&mut bytes);
    bytes.extend([2, 0xaa, 0xbb]);
    check_error(&bytes, FEE, Some(FrameType::CRYPTO));
    let last = bytes.len() - 3;
    bytes.truncate(last);
    bytes.extend([1, 0xaa]);
    assert!(decode_one(&bytes).is_ok());
}

#[test]
fn flow_control_frames() {
    let id = StreamId::from(v(3));
    check(&[0x10, 0x44, 0x00], Frame::MaxData(MaxData { maximum: v(0x400) }));
    check(&[0x11, 3, 9], Frame::MaxStreamData(MaxStreamData { id, maximum: v(9) }));
    check(&[0x12, 5], Frame::MaxStreams(MaxStreams { dir: Dir::Bi, maximum: v(5) }));
    check(&[0x13, 6], Frame::MaxStreams(MaxStreams { dir: Dir::Uni, maximum: v(6) }));
    check(&[0x14, 7], Frame::DataBlocked(DataBlocked { limit: v(7) }));
    check(&[0x15, 3, 8], Frame::StreamDataBlocked(StreamDataBlocked { id, limit: v(8) }));
    check(&[0x16, 9], Frame::StreamsBlocked(StreamsBlocked { dir: Dir::Bi, limit: v(9) }));
    check(&[0x17, 10], Frame::StreamsBlocked(StreamsBlocked { dir: Dir::Uni, limit: v(10) }));
}

fn with_count(ty: u8, count: u64) -> Vec<u8> {
    let mut bytes = vec![ty];
    v(count).encode(&mut bytes);
    bytes
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.11
//= type=test
//# Receipt of a frame that permits opening of a stream larger
//# than this limit MUST be treated as a connection error of type
//# FRAME_ENCODING_ERROR.
#[test]
fn max_streams_above_2_pow_60_is_rejected() {
    for ty in [0x12, 0x13] {
        assert!(decode_one(&with_count(ty, 1 << 60)).is_ok());
        check_error(&with_count(ty, (1 << 60) + 1), FEE, Some(FrameType(v(ty.into()))));
    }
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.14
//= type=test
//# Receipt of
//# a frame that encodes a larger stream ID MUST be treated as a connection error
//# of type STREAM_LIMIT_ERROR or FRAME_ENCODING_ERROR.
#[test]
fn streams_blocked_above_2_pow_60_is_rejected() {
    for ty in [0x16, 0x17] {
        assert!(decode_one(&with_count(ty, 1 << 60)).is_ok());
        check_error(&with_count(ty, VarInt::MAX.into_inner()), FEE, Some(FrameType(v(ty.into()))));
    }
}

#[test]
fn connection_id_frames() {
    let token = [0x11; 16];
    let mut bytes = vec![0x18, 2, 1, 4, 0xde, 0xad, 0xbe, 0xef];
    bytes.extend(token);
    check(
        &bytes,
        Frame::NewConnectionId(NewConnectionId {
            sequence: v(2),
            retire_prior_to: v(1),
            id: ConnectionId::from_slice(&[0xde, 0xad, 0xbe, 0xef]).unwrap(),
            reset_token: token.into(),
        }),
    );
    check(&[0x19, 0x40, 0x41], Frame::RetireConnectionId(RetireConnectionId { sequence: v(0x41) }));
}

fn new_cid_bytes(seq: u8, retire: u8, cid_len: u8) -> Vec<u8> {
    let mut bytes = vec![0x18, seq, retire, cid_len];
    bytes.extend(core::iter::repeat_n(7, cid_len.into()));
    bytes.extend([0; 16]);
    bytes
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
//= type=test
//# Values
//# less than 1 and greater than 20 are invalid and MUST be treated as a
//# connection error of type FRAME_ENCODING_ERROR.
#[test]
fn new_connection_id_length_outside_1_to_20_is_rejected() {
    let ty = Some(FrameType::NEW_CONNECTION_ID);
    check_error(&new_cid_bytes(1, 0, 0), FEE, ty);
    check_error(&new_cid_bytes(1, 0, 21), FEE, ty);
    check_error(&new_cid_bytes(1, 0, 255), FEE, ty);
    assert!(decode_one(&new_cid_bytes(1, 0, 1)).is_ok());
    assert!(decode_one(&new_cid_bytes(1, 0, 20)).is_ok());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
//= type=test
//# Receiving a value in the Retire
//# Prior To field that is greater than that in the Sequence Number field MUST be
//# treated as a connection error of type FRAME_ENCODING_ERROR.
#[test]
fn new_connection_id_retiring_beyond_its_sequence_is_rejected() {
    check_error(&new_cid_bytes(3, 4, 8), FEE, Some(FrameType::NEW_CONNECTION_ID));
    assert!(decode_one(&new_cid_bytes(3, 3, 8)).is_ok());
}

#[test]
fn path_frames() {
    let data = *b"12345678";
    check(&[&[0x1a][..], &data].concat(), Frame::PathChallenge(PathChallenge { data }));
    check(&[&[0x1b][..], &data].concat(), Frame::PathResponse(PathResponse { data }));
    assert_eq!(PathChallenge { data }.response(), PathResponse { data });
}

#[test]
fn connection_close_frames() {
    check(
        &[0x1c, 0x07, 0x08, 2, b'h', b'i'],
        Frame::ConnectionClose(ConnectionClose {
            error_code: TransportErrorCode::FRAME_ENCODING_ERROR,
            frame_type: FrameType::STREAM,
            reason: b"hi",
        }),
    );
    check(
        &[0x1d, 0x41, 0x00, 0],
        Frame::ApplicationClose(ApplicationClose { error_code: v(0x100), reason: b"" }),
    );
    let err = TransportError::protocol_violation("bad").with_frame(FrameType::ACK);
    let close = ConnectionClose::from(&err);
    assert_eq!(encode(&Frame::ConnectionClose(close)), [0x1c, 0x0a, 0x02, 3, b'b', b'a', b'd']);
    let close = ConnectionClose::from(&TransportError::internal_error(""));
    assert_eq!(close.frame_type, FrameType::PADDING);
}

#[test]
fn datagram_frames() {
    check(&[0x30, 1, 2, 3], Frame::Datagram(Datagram { has_length: false, data: &[1, 2, 3] }));
    check(&[0x31, 2, 1, 2], Frame::Datagram(Datagram { has_length: true, data: &[1, 2] }));
    // Empty datagrams are allowed, with or without a Length field.
    check(&[0x30], Frame::Datagram(Datagram { has_length: false, data: &[] }));
    check(&[0x31, 0], Frame::Datagram(Datagram { has_length: true, data: &[] }));
}

// ---- frame type errors ----

//= https://www.rfc-editor.org/rfc/rfc9000#section-12.4
//= type=test
//# An endpoint MUST treat the receipt of a frame of unknown type as a
//# connection error of type FRAME_ENCODING_ERROR.
#[test]
fn unknown_frame_types_are_rejected() {
    for bytes in
        [&[0x1f][..], &[0x20], &[0x2f], &[0x32], &[0x3f], &[0x40, 0x40], &[0x80, 0, 0x40, 0]]
    {
        let ty = FrameType(VarInt::decode(&mut Reader::new(bytes)).unwrap());
        check_error(bytes, FEE, Some(ty));
    }
    check_error(&[0x40], FEE, None);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-12.4
//= type=test
//# An endpoint
//# MAY treat the receipt of a frame type that uses a longer encoding than
//# necessary as a connection error of type PROTOCOL_VIOLATION.
#[test]
fn non_minimal_frame_type_is_protocol_violation() {
    let pv = TransportErrorCode::PROTOCOL_VIOLATION;
    check_error(&[0x40, 0x01], pv, Some(FrameType::PING));
    check_error(&[0x40, 0x00], pv, Some(FrameType::PADDING));
    check_error(&[0x80, 0, 0, 0x30], pv, Some(FrameType::DATAGRAM));
    check_error(&[0xc0, 0, 0, 0, 0, 0, 0, 0x08, 0, 1], pv, Some(FrameType::STREAM));
    // A valid frame first is still returned.
    let frames: Vec<_> = Frames::new(&[0x01, 0x40, 0x01, 0x01]).collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0], Ok(Frame::Ping));
}

#[test]
fn iteration_stops_after_first_error() {
    let mut frames = Frames::new(&[0x01, 0x1f, 0x01, 0x01]);
    assert_eq!(frames.next(), Some(Ok(Frame::Ping)));
    assert!(matches!(frames.next(), Some(Err(_))));
    assert_eq!(frames.next(), None);
    assert_eq!(frames.next(), None);
    assert_eq!(Frames::new(&[]).next(), None);
}

// ---- frame properties ----

//= https://www.rfc-editor.org/rfc/rfc9000#section-12.4
//= type=test
//# An endpoint MUST treat receipt of a
//# frame in a packet type that is not permitted as a connection error of type
//# PROTOCOL_VIOLATION.
#[test]
fn frame_type_properties() {
    use EncryptionLevel::*;
    // (type, Pkts column of RFC 9000 Table 3 / RFC 9221 §4, ack-eliciting, probing)
    let table: &[(u64, &str, bool, bool)] = &[
        (0x00, "IH01", false, true),
        (0x01, "IH01", true, false),
        (0x02, "IH_1", false, false),
        (0x03, "IH_1", false, false),
        (0x04, "__01", true, false),
        (0x05, "__01", true, false),
        (0x06, "IH_1", true, false),
        (0x07, "___1", true, false),
        (0x08, "__01", true, false),
        (0x0f, "__01", true, false),
        (0x10, "__01", true, false),
        (0x11, "__01", true, false),
        (0x12, "__01", true, false),
        (0x13, "__01", true, false),
        (0x14, "__01", true, false),
        (0x15, "__01", true, false),
        (0x16, "__01", true, false),
        (0x17, "__01", true, false),
        (0x18, "__01", true, true),
        (0x19, "__01", true, false),
        (0x1a, "__01", true, true),
        (0x1b, "___1", true, true),
        (0x1c, "IH01", false, false),
        (0x1d, "__01", false, false),
        (0x1e, "___1", true, false),
        (0x30, "__01", true, false),
        (0x31, "__01", true, false),
        (0x1f, "____", true, false),
    ];
    for &(value, pkts, eliciting, probing) in table {
        let ty = FrameType(v(value));
        let pkts = pkts.as_bytes();
        for (level, i, c) in
            [(Initial, 0, b'I'), (Handshake, 1, b'H'), (ZeroRtt, 2, b'0'), (OneRtt, 3, b'1')]
        {
            assert_eq!(ty.is_allowed_at(level), pkts[i] == c, "{ty} at {level:?}");
            assert_eq!(ty.check_allowed_at(level).is_ok(), pkts[i] == c);
        }
        assert_eq!(ty.is_ack_eliciting(), eliciting, "{ty}");
        assert_eq!(ty.counts_in_flight(), eliciting || value == 0, "{ty}");
        assert_eq!(ty.is_probing(), probing, "{ty}");
    }
    let err = FrameType::HANDSHAKE_DONE.check_allowed_at(Handshake).unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION);
    assert_eq!(err.frame_type, Some(FrameType::HANDSHAKE_DONE));
    assert!(Frame::Padding { len: 3 }.counts_in_flight());
    assert!(!Frame::Padding { len: 3 }.is_ack_eliciting());
    assert!(Frame::Ping.is_allowed_at(ZeroRtt));
}

// ---- sender helpers ----

#[test]
fn ack_encoder_writes_ranges_largest_first() {
    let enc = AckEncoder::new([9..=10, 2..=5].into_iter(), v(3)).unwrap();
    let mut buf = Vec::new();
    enc.encode(&mut buf);
    assert_eq!(buf, [0x02, 10, 3, 1, 1, 2, 3]);
    assert_eq!(buf.len(), enc.encoded_len());

    let ecn = EcnCounts { ect0: v(1), ect1: v(0), ce: v(0x40) };
    let enc = enc.with_ecn(ecn);
    let mut buf = Vec::new();
    enc.encode(&mut buf);
    assert_eq!(buf, [0x03, 10, 3, 1, 1, 2, 3, 1, 0, 0x40, 0x40]);
    assert_eq!(buf.len(), enc.encoded_len());
    assert!(AckEncoder::new(core::iter::empty(), v(0)).is_none());
}

#[test]
fn ack_encoder_merges_adjacent_and_overlapping_ranges() {
    let input = [10..=10, 9..=9, 5..=7, 4..=6, 1..=1];
    let enc = AckEncoder::new(input.into_iter(), v(0)).unwrap();
    assert_eq!(enc.range_count(), 3);
    let mut buf = Vec::new();
    enc.encode(&mut buf);
    assert_eq!(ranges(&ack_of(&buf)), [9..=10, 4..=7, 1..=1]);
}

#[test]
#[should_panic(expected = "largest first")]
fn ack_encoder_rejects_ascending_ranges() {
    let enc = AckEncoder::new([1..=2, 5..=6].into_iter(), v(0)).unwrap();
    enc.encoded_len();
}

#[test]
fn ack_encoder_caps_ranges() {
    let input: Vec<_> = (0..100u64).rev().map(|i| 3 * i..=3 * i + 1).collect();
    let enc = AckEncoder::new(input.iter().cloned(), v(0)).unwrap().with_max_ranges(10);
    assert_eq!(enc.range_count(), 10);
    let mut buf = Vec::new();
    enc.encode(&mut buf);
    assert_eq!(buf.len(), enc.encoded_len());
    assert_eq!(ranges(&ack_of(&buf)), input[..10]);
    // Zero still writes the largest range.
    assert_eq!(enc.with_max_ranges(0).range_count(), 1);
}

#[test]
fn ack_encoder_fit_to() {
    let input: Vec<_> = (0..100u64).rev().map(|i| 3 * i..=3 * i + 1).collect();
    let mut enc = AckEncoder::new(input.iter().cloned(), v(0)).unwrap();
    // Header: type, largest (2 bytes), delay, count, first range = 6; each pair 2.
    assert!(enc.fit_to(6 + 2 * 5 + 1));
    assert_eq!(enc.range_count(), 6);
    assert!(enc.encoded_len() <= 17);
    assert!(!enc.fit_to(5));
    assert_eq!(enc.range_count(), 6, "a failed fit leaves the encoder unchanged");
}

#[test]
fn stream_header_max_data_len() {
    let id = StreamId::from(v(4));
    // Type, id, 2-byte offset: 4 bytes of header.
    let off = v(1000);
    assert_eq!(StreamHeader::max_data_len(id, off, 100, false), Some(96));
    // A Length field for 95 bytes takes 2, so 94 fit; 63 + 1 would leave one spare.
    assert_eq!(StreamHeader::max_data_len(id, off, 100, true), Some(94));
    assert_eq!(StreamHeader::max_data_len(id, off, 68, true), Some(63));
    assert_eq!(StreamHeader::max_data_len(id, off, 69, true), Some(63));
    assert_eq!(StreamHeader::max_data_len(id, off, 70, true), Some(64));
    assert_eq!(StreamHeader::max_data_len(id, off, 4, false), Some(0));
    assert_eq!(StreamHeader::max_data_len(id, off, 4, true), None);
    assert_eq!(StreamHeader::max_data_len(id, off, 3, false), None);
    // Offset 0 omits the Offset field.
    assert_eq!(StreamHeader::max_data_len(id, VarInt::ZERO, 10, false), Some(8));
    // Never past the largest offset.
    assert_eq!(
        StreamHeader::max_data_len(id, v(VarInt::MAX.into_inner() - 3), 100, false),
        Some(3)
    );

    let header = StreamHeader { id, offset: off, data_len: Some(94), fin: true };
    let mut buf = Vec::new();
    header.encode(&mut buf);
    assert_eq!(buf, [0x0f, 4, 0x43, 0xe8, 0x40, 94]);
    assert_eq!(buf.len(), header.encoded_len());
}

#[test]
fn crypto_and_datagram_headers() {
    assert_eq!(CryptoHeader::max_data_len(v(0), 1200), Some(1196));
    assert_eq!(CryptoHeader::max_data_len(v(0), 2), None);
    assert_eq!(CryptoHeader::max_data_len(v(0), 3), Some(0));
    let header = CryptoHeader { offset: v(5), data_len: 300 };
    let mut buf = Vec::new();
    header.encode(&mut buf);
    assert_eq!(buf, [0x06, 5, 0x41, 0x2c]);
    assert_eq!(header.encoded_len(), 4);

    assert_eq!(DatagramHeader::max_data_len(1200, false), Some(1199));
    assert_eq!(DatagramHeader::max_data_len(1200, true), Some(1197));
    assert_eq!(DatagramHeader::max_data_len(0, false), None);
    assert_eq!(DatagramHeader::max_data_len(1, true), None);
    let header = DatagramHeader { data_len: Some(3) };
    assert_eq!((header.ty(), header.encoded_len()), (FrameType::DATAGRAM_WITH_LEN, 2));
}

// ---- properties ----

/// A copy of `frame` whose encoding is delimited even mid-packet.
fn with_lengths(mut frame: Frame<'static>) -> Frame<'static> {
    match &mut frame {
        Frame::Stream(f) => f.has_length = true,
        Frame::Datagram(f) => f.has_length = true,
        _ => {}
    }
    frame
}

proptest! {
    #[test]
    fn every_frame_round_trips(frame in strategies::frame()) {
        let bytes = encode(&frame);
        prop_assert_eq!(decode_one(&bytes), Ok(frame));
    }

    #[test]
    fn packets_round_trip(frames in strategies::packet()) {
        let mut payload = Vec::new();
        for f in &frames {
            f.encode(&mut payload);
        }
        prop_assert_eq!(payload.len(), frames.iter().map(Frame::encoded_len).sum::<usize>());
        let decoded: Vec<_> = Frames::new(&payload).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded, frames);
    }

    /// Every strict prefix of a self-delimiting frame is a truncated frame.
    #[test]
    fn truncation_is_frame_encoding_error(frame in strategies::frame().prop_map(with_lengths)) {
        prop_assume!(!matches!(frame, Frame::Padding { .. }));
        let bytes = encode(&frame);
        for cut in 1..bytes.len() {
            let err = Frame::decode(&mut Reader::new(&bytes[..cut])).unwrap_err();
            prop_assert_eq!(err.code, FEE);
            prop_assert_eq!(err.frame_type, Some(frame.ty()));
        }
    }

    #[test]
    fn ack_ranges_round_trip(
        input in strategies::ack_ranges(),
        delay in strategies::varint(),
        max in 1..30usize,
    ) {
        let enc = AckEncoder::new(input.iter().cloned(), delay).unwrap().with_max_ranges(max);
        let mut buf = Vec::new();
        enc.encode(&mut buf);
        prop_assert_eq!(buf.len(), enc.encoded_len());
        let ack = ack_of(&buf);
        prop_assert_eq!(ranges(&ack), &input[..input.len().min(max)]);
        prop_assert_eq!(ack.ranges().len(), enc.range_count());
        prop_assert_eq!(ack.ack_delay(), delay);
    }

    #[test]
    fn ack_fit_to_is_tight(input in strategies::ack_ranges(), space in 0..120usize) {
        let mut enc = AckEncoder::new(input.iter().cloned(), VarInt::ZERO).unwrap();
        let full = enc.clone();
        if enc.fit_to(space) {
            prop_assert!(enc.encoded_len() <= space);
            let n = enc.range_count();
            if n < input.len() {
                prop_assert!(full.with_max_ranges(n + 1).encoded_len() > space);
            }
        } else {
            prop_assert!(full.with_max_ranges(1).encoded_len() > space);
        }
    }

    #[test]
    fn max_data_len_is_tight(
        id in strategies::varint(),
        offset in strategies::varint(),
        space in 0..20_000usize,
        with_length: bool,
        fin: bool,
    ) {
        let id = StreamId::from(id);
        let header = |n| StreamHeader { id, offset, data_len: with_length.then_some(n), fin };
        match StreamHeader::max_data_len(id, offset, space, with_length) {
            Some(n) => {
                prop_assert!(header(n).encoded_len() + n <= space);
                let at_limit = offset.into_inner() + n as u64 == VarInt::MAX.into_inner();
                prop_assert!(at_limit || header(n + 1).encoded_len() + n + 1 > space);
            }
            None => prop_assert!(header(0).encoded_len() > space),
        }
        let crypto = |n| CryptoHeader { offset, data_len: n };
        match CryptoHeader::max_data_len(offset, space) {
            Some(n) => {
                prop_assert!(crypto(n).encoded_len() + n <= space);
                prop_assert!(crypto(n + 1).encoded_len() + n + 1 > space);
            }
            None => prop_assert!(crypto(0).encoded_len() > space),
        }
        let dgram = |n| DatagramHeader { data_len: with_length.then_some(n) };
        match DatagramHeader::max_data_len(space, with_length) {
            Some(n) => {
                prop_assert!(dgram(n).encoded_len() + n <= space);
                prop_assert!(dgram(n + 1).encoded_len() + n + 1 > space);
            }
            None => prop_assert!(dgram(0).encoded_len() > space),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut total = 0;
        for frame in Frames::new(&bytes) {
            let Ok(frame) = frame else { break };
            // Whatever decodes re-encodes to the same size, unless the peer
            // used longer encodings than ours.
            prop_assert!(frame.encoded_len() <= bytes.len());
            let _ = (frame.is_ack_eliciting(), frame.is_probing(), frame.counts_in_flight());
            if let Frame::Ack(ack) = frame {
                prop_assert_eq!(ack.ranges().count() as u64, ack.range_count());
            }
            total += 1;
        }
        prop_assert!(total <= bytes.len());
    }

    /// Random bytes behind every frame type reach deep into each decoder.
    #[test]
    fn typed_garbage_never_panics(
        ty in prop_oneof![0x00..=0x1fu8, 0x30..=0x31u8],
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = [&[ty][..], &body].concat();
        if let Some(Err(err)) = Frames::new(&bytes).next() {
            prop_assert!(err.frame_type.is_some());
        }
    }

}
