use proptest::prelude::*;

use super::*;
use crate::error::ErrorCode;

const LIMIT: u64 = 1 << 16;

fn v(x: u64) -> VarInt {
    VarInt::from_u64(x).unwrap()
}

fn encode(frame: &Frame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    assert_eq!(out.len(), frame.encoded_len(), "encoded_len of {frame:?}");
    out
}

fn parse_error(bytes: &[u8]) -> (ErrorCode, Option<FrameType>) {
    let err = Frame::parse(bytes, LIMIT).expect_err("an error");
    (err.code, err.frame_type)
}

/// A variable-length integer with every encoding length equally likely.
pub(crate) fn varint() -> impl Strategy<Value = VarInt> {
    prop_oneof![0u64..1 << 6, 1u64..1 << 14, 1u64..1 << 30, 1u64..1 << 62].prop_map(v)
}

fn unknown_type() -> impl Strategy<Value = FrameType> {
    varint().prop_map(FrameType).prop_filter("a type this layer does not know", |ty| {
        ty.name().is_none() && !ty.is_h2_reserved()
    })
}

fn frame(bytes: &[u8]) -> impl Strategy<Value = Frame<'_>> {
    let section = (0..=bytes.len()).prop_map(move |n| &bytes[..n]);
    prop_oneof![
        (0u64..1 << 62).prop_map(|len| Frame::Data { len }),
        section.clone().prop_map(|field_section| Frame::Headers { field_section }),
        varint().prop_map(Frame::CancelPush),
        crate::settings::tests::settings().prop_map(Frame::Settings),
        (varint(), section.clone())
            .prop_map(|(push_id, field_section)| Frame::PushPromise { push_id, field_section }),
        varint().prop_map(Frame::Goaway),
        varint().prop_map(Frame::MaxPushId),
        (varint(), section, any::<bool>()).prop_map(|(element_id, field_value, push)| {
            Frame::PriorityUpdate { element_id, field_value, push }
        }),
        (unknown_type(), 0u64..1 << 62).prop_map(|(ty, len)| Frame::Unknown { ty, len }),
    ]
}

static BYTES: [u8; 300] = {
    let mut b = [0; 300];
    let mut i = 0;
    while i < b.len() {
        b[i] = (i * 7) as u8;
        i += 1;
    }
    b
};

#[test]
fn known_encodings() {
    let cases: &[(&[u8], Frame<'_>)] = &[
        (&[0x00, 0x05], Frame::Data { len: 5 }),
        (&[0x01, 0x02, 0x00, 0x00], Frame::Headers { field_section: &[0, 0] }),
        (&[0x03, 0x01, 0x07], Frame::CancelPush(v(7))),
        (&[0x07, 0x02, 0x40, 0x40], Frame::Goaway(v(64))),
        (&[0x0d, 0x01, 0x00], Frame::MaxPushId(v(0))),
        (
            &[0x05, 0x03, 0x02, 0xaa, 0xbb],
            Frame::PushPromise { push_id: v(2), field_section: &[0xaa, 0xbb] },
        ),
        (
            &[0x80, 0x0f, 0x07, 0x00, 0x04, 0x04, b'u', b'=', b'2'],
            Frame::PriorityUpdate { element_id: v(4), field_value: b"u=2", push: false },
        ),
        (
            &[0x80, 0x0f, 0x07, 0x01, 0x01, 0x00],
            Frame::PriorityUpdate { element_id: v(0), field_value: b"", push: true },
        ),
        (&[0x21, 0x40, 0x80], Frame::Unknown { ty: FrameType(v(0x21)), len: 0x80 }),
    ];
    for (bytes, frame) in cases {
        // DATA and unknown frames are header-only here: the whole input.
        assert_eq!(Frame::parse(bytes, LIMIT), Ok(Some((*frame, bytes.len()))), "{bytes:02x?}");
        assert_eq!(encode(frame), *bytes, "{frame:?}");
    }
}

#[test]
fn header_waits_for_both_fields_and_reports_its_length() {
    // HEADERS with a two-byte Length of 0x100.
    let bytes = [0x01, 0x41, 0x00];
    for end in 0..bytes.len() {
        assert_eq!(FrameHeader::decode(&bytes[..end], LIMIT), Ok(None), "{end}");
    }
    let header = FrameHeader { ty: FrameType::HEADERS, len: 0x100, header_len: 3 };
    assert_eq!(FrameHeader::decode(&bytes, LIMIT), Ok(Some(header)));
    // The payload has not arrived: `parse` waits too.
    assert_eq!(Frame::parse(&bytes, LIMIT), Ok(None));
}

#[test]
fn non_minimal_integers_are_accepted() {
    // GOAWAY, Length 8 in two bytes, stream ID 4 in eight bytes: RFC 9000
    // §16 lets any integer use a longer encoding, and RFC 9114 asks no
    // shortest form of frame fields.
    let bytes = [0x07, 0x40, 0x08, 0xc0, 0, 0, 0, 0, 0, 0, 0x04];
    assert_eq!(Frame::parse(&bytes, LIMIT), Ok(Some((Frame::Goaway(v(4)), bytes.len()))));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.8
//= type=test
//# Frame types that were used in HTTP/2 where there is no corresponding HTTP/3
//# frame have also been reserved ({{iana-frames}}).  These frame types MUST NOT be
//# sent, and their receipt MUST be treated as a connection error of type
//# H3_FRAME_UNEXPECTED.
#[test]
fn http2_frame_types_are_unexpected() {
    for ty in [0x02, 0x06, 0x08, 0x09] {
        let ty = FrameType(v(ty));
        assert!(ty.is_h2_reserved());
        // Refused from the type alone, before the Length field arrives.
        assert_eq!(
            parse_error(&[ty.0.into_inner() as u8]),
            (ErrorCode::H3_FRAME_UNEXPECTED, Some(ty))
        );
        assert_eq!(
            parse_error(&[ty.0.into_inner() as u8, 0x00]),
            (ErrorCode::H3_FRAME_UNEXPECTED, Some(ty))
        );
        let err = Frame::decode_payload(ty, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::H3_FRAME_UNEXPECTED);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.8
//= type=test
//# Endpoints MUST NOT consider these frames to have any
//# meaning upon receipt.
#[test]
fn reserved_frame_types_are_skipped_whatever_their_length() {
    for n in [0, 1, 1000, crate::grease::MAX_INDEX] {
        let ty = FrameType::reserved(n).unwrap();
        assert!(ty.is_reserved() && !ty.is_buffered());
        let mut bytes = Vec::new();
        FrameHeader::encode(ty, VarInt::MAX.into_inner(), &mut bytes);
        let len = VarInt::MAX.into_inner();
        assert_eq!(Frame::parse(&bytes, 0), Ok(Some((Frame::Unknown { ty, len }, bytes.len()))));
    }
    // DATA is streamed, so no limit applies either.
    assert_eq!(Frame::parse(&[0x00, 0x44, 0x00], 0), Ok(Some((Frame::Data { len: 0x400 }, 3))));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.1
//= type=test
//# Each frame's payload MUST contain exactly the fields identified in its
//# description.  A frame payload that contains additional bytes after the
//# identified fields or a frame payload that terminates before the end of the
//# identified fields MUST be treated as a connection error of type
//# H3_FRAME_ERROR.
#[test]
fn payloads_must_hold_exactly_their_fields() {
    let frame_error = ErrorCode::H3_FRAME_ERROR;
    for ty in [FrameType::CANCEL_PUSH, FrameType::GOAWAY, FrameType::MAX_PUSH_ID] {
        let t = ty.0.into_inner() as u8;
        let some = Some(ty);
        // Lengths no single integer has, refused at the header.
        assert_eq!(parse_error(&[t, 0x00]), (frame_error, some));
        assert_eq!(parse_error(&[t, 0x09]), (frame_error, some));
        assert_eq!(FrameHeader::decode(&[t, 0x09], LIMIT).unwrap_err().code, frame_error);
        // A byte after the integer.
        assert_eq!(parse_error(&[t, 0x02, 0x05, 0x00]), (frame_error, some));
        // The integer announces two bytes; the payload has one.
        assert_eq!(parse_error(&[t, 0x01, 0x40]), (frame_error, some));
        // Eight bytes announced, four present.
        assert_eq!(parse_error(&[t, 0x04, 0xc0, 0, 0, 0]), (frame_error, some));
        assert_eq!(Frame::decode_payload(ty, &[]).unwrap_err().code, frame_error);
    }
    for ty in [FrameType::PUSH_PROMISE, FrameType::PRIORITY_UPDATE_REQUEST] {
        // No room for the leading ID.
        assert_eq!(Frame::decode_payload(ty, &[]).unwrap_err().code, frame_error);
        assert_eq!(Frame::decode_payload(ty, &[0x80, 0x01]).unwrap_err().code, frame_error);
    }
    // SETTINGS ending between an identifier and its value.
    assert_eq!(parse_error(&[0x04, 0x01, 0x06]), (frame_error, Some(FrameType::SETTINGS)));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-10.8
//= type=test
//# An implementation MUST
//# ensure that the length of a frame exactly matches the length of the fields it
//# contains.
#[test]
fn a_payload_cut_anywhere_is_a_frame_error_not_a_panic() {
    let frame = Frame::PushPromise { push_id: v(1 << 40), field_section: &[] };
    let bytes = encode(&frame);
    let payload = &bytes[FrameHeader::encoded_len(FrameType::PUSH_PROMISE, 8)..];
    for end in 0..payload.len() {
        let err = Frame::decode_payload(FrameType::PUSH_PROMISE, &payload[..end]).unwrap_err();
        assert_eq!(err.code, ErrorCode::H3_FRAME_ERROR, "{end}");
    }
    assert_eq!(Frame::decode_payload(FrameType::PUSH_PROMISE, payload), Ok(frame));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-10.5
//= type=test
//# An endpoint MAY treat activity that is suspicious as a connection error of type
//# H3_EXCESSIVE_LOAD, but
//# false positives will result in disrupting valid connections and requests.
#[test]
fn buffered_frames_above_the_limit_are_refused_from_the_header() {
    for ty in [
        FrameType::HEADERS,
        FrameType::SETTINGS,
        FrameType::PUSH_PROMISE,
        FrameType::PRIORITY_UPDATE_REQUEST,
        FrameType::PRIORITY_UPDATE_PUSH,
    ] {
        let mut bytes = Vec::new();
        FrameHeader::encode(ty, 101, &mut bytes);
        let err = Frame::parse(&bytes, 100).unwrap_err();
        assert_eq!((err.code, err.frame_type), (ErrorCode::H3_EXCESSIVE_LOAD, Some(ty)));
        // At the limit: waits for the payload.
        bytes.clear();
        FrameHeader::encode(ty, 100, &mut bytes);
        assert_eq!(Frame::parse(&bytes, 100), Ok(None));
    }
    // GOAWAY's eight bytes above a limit of four: one integer still fits
    // no more than eight, but the caller said four.
    assert_eq!(Frame::parse(&[0x07, 0x08], 4).unwrap_err().code, ErrorCode::H3_EXCESSIVE_LOAD);
}

#[test]
fn grease_frames_are_reserved_and_skippable() {
    for random in [0, 1, 0x1234_5678_9abc_def0, u64::MAX, 7 << 61] {
        let mut out = Vec::new();
        encode_grease_frame(random, &mut out);
        let (frame, consumed) = Frame::parse(&out, 0).unwrap().unwrap();
        let Frame::Unknown { ty, len } = frame else { panic!("{frame:?}") };
        assert!(ty.is_reserved());
        assert!(len <= MAX_GREASE_PAYLOAD as u64);
        assert_eq!(consumed as u64 + len, out.len() as u64);
    }
}

#[test]
fn names() {
    assert_eq!(FrameType::PRIORITY_UPDATE_PUSH.0.into_inner(), 0xf0701);
    assert_eq!(FrameType::MAX_PUSH_ID.to_string(), "MAX_PUSH_ID");
    assert_eq!(FrameType(v(0x21)).to_string(), "reserved frame type 0x21");
    assert_eq!(FrameType(v(0x22)).to_string(), "unknown frame type 0x22");
    assert_eq!(FrameType::reserved(u64::MAX), None);
}

proptest! {
    #[test]
    fn frames_round_trip_with_exact_sizes(frame in frame(&BYTES)) {
        let bytes = encode(&frame);
        let (decoded, consumed) = Frame::parse(&bytes, LIMIT).unwrap().unwrap();
        prop_assert_eq!(decoded, frame);
        prop_assert_eq!(consumed, bytes.len());
        prop_assert_eq!(
            frame.encoded_len() as u64,
            match frame {
                Frame::Data { .. } | Frame::Unknown { .. } =>
                    FrameHeader::encoded_len(frame.ty(), frame.payload_len()) as u64,
                _ => FrameHeader::encoded_len(frame.ty(), frame.payload_len()) as u64
                    + frame.payload_len(),
            }
        );
    }

    #[test]
    fn every_truncation_of_a_buffered_frame_waits(frame in frame(&BYTES)) {
        // For DATA and unknown frames `bytes` is the header alone.
        let bytes = encode(&frame);
        for cut in 0..bytes.len() {
            prop_assert_eq!(Frame::parse(&bytes[..cut], LIMIT), Ok(None), "cut at {}", cut);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes: Vec<u8>, limit: u64) {
        let mut rest = &bytes[..];
        while let Ok(Some((frame, consumed))) = Frame::parse(rest, limit) {
            prop_assert!(consumed > 0 && consumed <= rest.len());
            if let Frame::Data { len } | Frame::Unknown { len, .. } = frame {
                let skip = usize::try_from(len).unwrap_or(usize::MAX);
                rest = rest.get(consumed.saturating_add(skip)..).unwrap_or(&[]);
            } else {
                rest = &rest[consumed..];
            }
        }
        if let Ok((ty, _)) = VarInt::decode_with_len(&mut Reader::new(&bytes)) {
            let _ = Frame::decode_payload(FrameType(ty), &bytes);
        }
    }
}
