use proptest::prelude::*;

use super::*;
use crate::error::ErrorCode;
use crate::frame::Frame;
use crate::frame::tests::varint;

fn v(x: u64) -> VarInt {
    VarInt::from_u64(x).unwrap()
}

pub(crate) fn settings() -> impl Strategy<Value = Settings> {
    (varint(), proptest::option::of(varint()), varint(), any::<bool>(), any::<bool>()).prop_map(
        |(capacity, field_section, blocked, connect, datagram)| Settings {
            qpack_max_table_capacity: capacity,
            max_field_section_size: field_section,
            qpack_blocked_streams: blocked,
            enable_connect_protocol: connect,
            h3_datagram: datagram,
        },
    )
}

/// A SETTINGS payload of `(id, value)` pairs, each in its shortest form.
fn payload(pairs: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(id, value) in pairs {
        v(id).encode(&mut out);
        v(value).encode(&mut out);
    }
    out
}

fn error(pairs: &[(u64, u64)]) -> ErrorCode {
    let err = Settings::decode_payload(&payload(pairs)).expect_err("an error");
    assert_eq!(err.frame_type, Some(FrameType::SETTINGS));
    err.code
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4.1
//= type=test
//# SETTINGS_MAX_FIELD_SECTION_SIZE (0x06):
//# : The default value is unlimited.
#[test]
fn defaults_and_an_empty_frame() {
    let default = Settings::default();
    assert_eq!(default.max_field_section_size, None);
    assert_eq!(default.max_field_section_size_or_max(), u64::MAX);
    // RFC 9204 §5: both QPACK settings default to zero.
    assert_eq!(default.qpack_max_table_capacity, VarInt::ZERO);
    assert_eq!(default.qpack_blocked_streams, VarInt::ZERO);
    assert!(!default.enable_connect_protocol && !default.h3_datagram);
    assert_eq!(Settings::decode_payload(&[]), Ok(default));
    let mut out = Vec::new();
    default.encode(&mut out);
    assert_eq!(out, [0x04, 0x00], "defaults are omitted");
}

#[test]
fn known_encoding() {
    let settings = Settings {
        qpack_max_table_capacity: v(4096),
        max_field_section_size: Some(v(16384)),
        qpack_blocked_streams: v(16),
        enable_connect_protocol: true,
        h3_datagram: true,
    };
    let bytes = [
        0x04, 0x0e, // SETTINGS, 14 bytes
        0x01, 0x50, 0x00, // QPACK_MAX_TABLE_CAPACITY 4096
        0x06, 0x80, 0x00, 0x40, 0x00, // MAX_FIELD_SECTION_SIZE 16384
        0x07, 0x10, // QPACK_BLOCKED_STREAMS 16
        0x08, 0x01, // ENABLE_CONNECT_PROTOCOL
        0x33, 0x01, // H3_DATAGRAM
    ];
    let mut out = Vec::new();
    settings.encode(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(out.len(), settings.encoded_len());
    assert_eq!(Frame::parse(&bytes, 1024), Ok(Some((Frame::Settings(settings), bytes.len()))));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4
//= type=test
//# The same setting identifier MUST NOT occur more than once in the SETTINGS frame.
//# A receiver MAY treat the presence of duplicate setting identifiers as a
//# connection error of type H3_SETTINGS_ERROR.
#[test]
fn duplicates_are_settings_errors_known_or_not() {
    assert_eq!(error(&[(0x06, 100), (0x01, 0), (0x06, 100)]), ErrorCode::H3_SETTINGS_ERROR);
    assert_eq!(error(&[(0x1234, 1), (0x1234, 2)]), ErrorCode::H3_SETTINGS_ERROR);
    assert_eq!(error(&[(0x21, 1), (0x21, 1)]), ErrorCode::H3_SETTINGS_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4.1
//= type=test
//# Setting identifiers that were defined in {{RFC9113}} where there is no
//# corresponding HTTP/3 setting have also been reserved ({{iana-settings}}). These
//# reserved settings MUST NOT be sent, and their receipt MUST be treated as a
//# connection error of type H3_SETTINGS_ERROR.
#[test]
fn http2_identifiers_are_settings_errors() {
    for id in [0x00, 0x02, 0x03, 0x04, 0x05] {
        assert!(SettingId(v(id)).is_h2_reserved());
        assert_eq!(error(&[(id, 0)]), ErrorCode::H3_SETTINGS_ERROR, "{id:#x}");
        assert_eq!(error(&[(0x06, 1), (id, 1)]), ErrorCode::H3_SETTINGS_ERROR, "{id:#x}");
    }
    // 0x01 and 0x06 kept their HTTP/2 numbers and are HTTP/3 settings.
    assert!(Settings::decode_payload(&payload(&[(0x01, 0), (0x06, 0)])).is_ok());
}

#[test]
fn boolean_settings_are_zero_or_one() {
    for id in [0x08, 0x33] {
        assert_eq!(error(&[(id, 2)]), ErrorCode::H3_SETTINGS_ERROR);
        assert_eq!(error(&[(id, (1 << 62) - 1)]), ErrorCode::H3_SETTINGS_ERROR);
    }
    let s = Settings::decode_payload(&payload(&[(0x08, 1), (0x33, 0)])).unwrap();
    assert!(s.enable_connect_protocol && !s.h3_datagram);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4
//= type=test
//# An implementation MUST ignore any parameter with an identifier it does
//# not understand.
#[test]
fn unknown_and_reserved_identifiers_are_ignored() {
    let s = Settings::decode_payload(&payload(&[
        (0x21, 7),
        (0x06, 1000),
        (0x2b60_3742, 1),
        (0x3fff_ffff_ffff_fffe, (1 << 62) - 1),
    ]))
    .unwrap();
    assert_eq!(s, Settings { max_field_section_size: Some(v(1000)), ..Settings::default() });
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-10.5
//= type=test
//# The ability to send undefined protocol elements that the peer is required to
//# ignore can be abused to cause a peer to expend additional processing time.  This
//# might be done by setting multiple undefined SETTINGS parameters, unknown frame
//# types, or unknown stream types.
#[test]
fn more_than_max_entries_is_excessive_load() {
    let mut pairs: Vec<(u64, u64)> =
        (0..Settings::MAX_ENTRIES as u64).map(|i| (0x100 + i, i)).collect();
    assert_eq!(Settings::decode_payload(&payload(&pairs)), Ok(Settings::default()));
    pairs.push((0x06, 1));
    assert_eq!(error(&pairs), ErrorCode::H3_EXCESSIVE_LOAD);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.1
//= type=test
//# A frame payload that contains additional bytes after the
//# identified fields or a frame payload that terminates before the end of the
//# identified fields MUST be treated as a connection error of type
//# H3_FRAME_ERROR.
#[test]
fn a_payload_cut_inside_a_setting_is_a_frame_error() {
    let pairs = [(0x01, 1 << 20), (0x3fff_ffff_ffff_fffe, 3)];
    let bytes = payload(&pairs);
    let boundaries = [0, 5, bytes.len()];
    for end in 0..=bytes.len() {
        let result = Settings::decode_payload(&bytes[..end]);
        if boundaries.contains(&end) {
            assert!(result.is_ok(), "{end}");
        } else {
            assert_eq!(result.unwrap_err().code, ErrorCode::H3_FRAME_ERROR, "{end}");
        }
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4.1
//= type=test
//# Endpoints SHOULD include at
//# least one such setting in their SETTINGS frame.
#[test]
fn grease_adds_one_reserved_setting_anywhere() {
    let settings =
        Settings { qpack_blocked_streams: v(3), h3_datagram: true, ..Settings::default() };
    let mut positions = std::collections::HashSet::new();
    for random in [0, u64::MAX, 1 << 56, 2 << 56, 0x0123_4567_89ab_cdef] {
        let mut out = Vec::new();
        settings.encode_with_grease(random, &mut out);
        assert_eq!(Frame::parse(&out, 1024), Ok(Some((Frame::Settings(settings), out.len()))));
        let payload = &out[FrameHeader::decode(&out, 1024).unwrap().unwrap().header_len..];
        let mut r = Reader::new(payload);
        let mut index = 0;
        while !r.is_empty() {
            let id = SettingId(VarInt::decode(&mut r).unwrap());
            VarInt::decode(&mut r).unwrap();
            if id.is_reserved() {
                positions.insert(index);
            }
            index += 1;
        }
        assert_eq!(index, 3);
    }
    assert_eq!(positions.len(), 3, "first, middle and last all occur");
}

proptest! {
    #[test]
    fn round_trip_with_exact_sizes(settings in settings(), random: u64) {
        let mut out = Vec::new();
        settings.encode(&mut out);
        prop_assert_eq!(out.len(), settings.encoded_len());
        let header = FrameHeader::decode(&out, u64::MAX).unwrap().unwrap();
        prop_assert_eq!(header.len as usize, settings.payload_len());
        prop_assert_eq!(Settings::decode_payload(&out[header.header_len..]), Ok(settings));

        out.clear();
        settings.encode_with_grease(random, &mut out);
        // Payloads stay below 64 bytes, so the Length field keeps its size.
        let grease_value = VarInt::from_u32((random >> 32) as u32 & 0x3fff);
        let grease = SettingId::grease(random).0.size() + grease_value.size();
        prop_assert_eq!(out.len() - settings.encoded_len(), grease);
        prop_assert_eq!(Frame::parse(&out, u64::MAX), Ok(Some((Frame::Settings(settings), out.len()))));
    }

    #[test]
    fn arbitrary_payloads_never_panic(bytes: Vec<u8>) {
        let _ = Settings::decode_payload(&bytes);
    }
}
