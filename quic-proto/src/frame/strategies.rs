//! Proptest strategies for frames, for this crate's tests.
//!
//! Payload bytes are leaked to give `Frame<'static>` values; the leak is a
//! few bytes per case and only in tests.

use core::ops::RangeInclusive;

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::cid::ConnectionId;
use crate::coding::Reader;
use crate::error::TransportErrorCode;
use crate::stream_id::{Dir, StreamId};
use crate::varint::VarInt;

/// A value up to 2^62-1, spread over all four encoding lengths.
pub(crate) fn varint_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..64u64,
        64..16_384u64,
        16_384..(1u64 << 30),
        (1u64 << 30)..=VarInt::MAX.into_inner(),
    ]
}

/// A [`VarInt`] of any encoding length.
pub(crate) fn varint() -> impl Strategy<Value = VarInt> {
    varint_value().prop_map(|x| VarInt::from_u64(x).expect("strategy stays below 2^62"))
}

/// A small or occasionally huge ACK gap or range length.
fn ack_step() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0..10u64, 1 => 0..100_000u64, 1 => 0..=VarInt::MAX.into_inner()]
}

/// Valid ACK ranges, largest first, separated by gaps of at least one packet.
pub(crate) fn ack_ranges() -> impl Strategy<Value = Vec<RangeInclusive<u64>>> {
    (varint_value(), ack_step(), vec((ack_step(), ack_step()), 0..24)).prop_map(
        |(largest, first, pairs)| {
            let mut out = vec![largest.saturating_sub(first)..=largest];
            for (gap, len) in pairs {
                let prev = *out.last().expect("starts non-empty").start();
                let Some(hi) = prev.checked_sub(gap).and_then(|x| x.checked_sub(2)) else {
                    break;
                };
                out.push(hi.saturating_sub(len)..=hi);
            }
            out
        },
    )
}

/// ECN counts.
pub(crate) fn ecn_counts() -> impl Strategy<Value = EcnCounts> {
    (varint(), varint(), varint()).prop_map(|(ect0, ect1, ce)| EcnCounts { ect0, ect1, ce })
}

/// An ACK frame built through [`AckEncoder`] and decoded back.
pub(crate) fn ack() -> impl Strategy<Value = Ack<'static>> {
    (ack_ranges(), varint(), proptest::option::of(ecn_counts())).prop_map(|(ranges, delay, ecn)| {
        let mut enc = AckEncoder::new(ranges.into_iter(), delay).expect("non-empty ranges");
        if let Some(ecn) = ecn {
            enc = enc.with_ecn(ecn);
        }
        let mut buf = Vec::new();
        enc.encode(&mut buf);
        let buf: &'static [u8] = buf.leak();
        match Frame::decode(&mut Reader::new(buf)) {
            Ok(Frame::Ack(ack)) => ack,
            other => panic!("encoder produced an undecodable ACK: {other:?}"),
        }
    })
}

/// Payload bytes, usually short.
pub(crate) fn bytes() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![4 => vec(any::<u8>(), 0..16), 1 => vec(any::<u8>(), 0..400)]
        .prop_map(|v| -> &'static [u8] { v.leak() })
}

fn stream_id() -> impl Strategy<Value = StreamId> {
    varint().prop_map(StreamId::from)
}

fn dir() -> impl Strategy<Value = Dir> {
    prop_oneof![Just(Dir::Bi), Just(Dir::Uni)]
}

fn stream_count() -> impl Strategy<Value = VarInt> {
    prop_oneof![0..64u64, 0..=(1u64 << 60)].prop_map(|x| VarInt::from_u64(x).expect("below 2^60"))
}

/// An offset such that `len` more bytes stay within 2^62-1.
fn clamp_offset(offset: VarInt, len: usize) -> VarInt {
    let room = VarInt::MAX.into_inner() - len as u64;
    VarInt::from_u64(offset.into_inner().min(room)).expect("clamped below 2^62")
}

/// A STREAM frame, with or without a Length field.
pub(crate) fn stream() -> impl Strategy<Value = Stream<'static>> {
    (stream_id(), varint(), any::<bool>(), any::<bool>(), bytes()).prop_map(
        |(id, offset, fin, has_length, data)| Stream {
            id,
            offset: clamp_offset(offset, data.len()),
            fin,
            has_length,
            data,
        },
    )
}

/// Any frame. STREAM and DATAGRAM frames may lack a Length field, so such a
/// frame is only valid last in a packet; see [`packet`].
pub(crate) fn frame() -> impl Strategy<Value = Frame<'static>> {
    prop_oneof![
        (1..50usize).prop_map(|len| Frame::Padding { len }),
        Just(Frame::Ping),
        ack().prop_map(Frame::Ack),
        (stream_id(), varint(), varint()).prop_map(|(id, error_code, final_size)| {
            Frame::ResetStream(ResetStream { id, error_code, final_size })
        }),
        (stream_id(), varint())
            .prop_map(|(id, error_code)| Frame::StopSending(StopSending { id, error_code })),
        (varint(), bytes()).prop_map(|(offset, data)| Frame::Crypto(Crypto {
            offset: clamp_offset(offset, data.len()),
            data
        })),
        bytes()
            .prop_filter("tokens are never empty", |t| !t.is_empty())
            .prop_map(|token| Frame::NewToken(NewToken { token })),
        stream().prop_map(Frame::Stream),
        varint().prop_map(|maximum| Frame::MaxData(MaxData { maximum })),
        (stream_id(), varint())
            .prop_map(|(id, maximum)| Frame::MaxStreamData(MaxStreamData { id, maximum })),
        (dir(), stream_count())
            .prop_map(|(dir, maximum)| Frame::MaxStreams(MaxStreams { dir, maximum })),
        varint().prop_map(|limit| Frame::DataBlocked(DataBlocked { limit })),
        (stream_id(), varint())
            .prop_map(|(id, limit)| Frame::StreamDataBlocked(StreamDataBlocked { id, limit })),
        (dir(), stream_count())
            .prop_map(|(dir, limit)| Frame::StreamsBlocked(StreamsBlocked { dir, limit })),
        (varint(), varint(), vec(any::<u8>(), 1..=20), any::<[u8; 16]>()).prop_map(
            |(sequence, retire, cid, reset_token)| {
                let retire = retire.into_inner() % (sequence.into_inner() + 1);
                Frame::NewConnectionId(NewConnectionId {
                    sequence,
                    retire_prior_to: VarInt::from_u64(retire).expect("below sequence"),
                    id: ConnectionId::from_slice(&cid).expect("at most 20 bytes"),
                    reset_token: reset_token.into(),
                })
            }
        ),
        varint().prop_map(|sequence| Frame::RetireConnectionId(RetireConnectionId { sequence })),
        any::<[u8; 8]>().prop_map(|data| Frame::PathChallenge(PathChallenge { data })),
        any::<[u8; 8]>().prop_map(|data| Frame::PathResponse(PathResponse { data })),
        (varint(), varint(), bytes()).prop_map(|(code, ty, reason)| {
            Frame::ConnectionClose(ConnectionClose {
                error_code: TransportErrorCode::from(code),
                frame_type: FrameType(ty),
                reason,
            })
        }),
        (varint(), bytes()).prop_map(|(error_code, reason)| {
            Frame::ApplicationClose(ApplicationClose { error_code, reason })
        }),
        Just(Frame::HandshakeDone),
        (any::<bool>(), bytes())
            .prop_map(|(has_length, data)| Frame::Datagram(Datagram { has_length, data })),
    ]
}

/// The frames of one packet, as a decoder would return them: only the last
/// frame may lack a Length field, and PADDING runs are folded.
pub(crate) fn packet() -> impl Strategy<Value = Vec<Frame<'static>>> {
    vec(frame(), 1..12).prop_map(|frames| {
        let last = frames.len() - 1;
        let mut out: Vec<Frame<'static>> = Vec::with_capacity(frames.len());
        for (i, mut frame) in frames.into_iter().enumerate() {
            if i != last {
                match &mut frame {
                    Frame::Stream(f) => f.has_length = true,
                    Frame::Datagram(f) => f.has_length = true,
                    _ => {}
                }
            }
            match (out.last_mut(), &frame) {
                (Some(Frame::Padding { len }), Frame::Padding { len: more }) => *len += more,
                _ => out.push(frame),
            }
        }
        out
    })
}
