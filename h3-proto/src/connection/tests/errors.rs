//! Each error the RFC names, provoked by a raw peer: frames on the wrong
//! streams or in the wrong order, critical streams duplicated or closed,
//! bad SETTINGS, malformed messages (the h3spec checklist).

use super::*;

/// A raw client with its control stream open against a real server.
fn server() -> Raw {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.pump();
    raw
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
//= type=test
//# Receipt of an invalid sequence of frames MUST be treated as a connection error
//# of type H3_FRAME_UNEXPECTED.  In particular, a DATA frame before
//# any HEADERS frame, or a HEADERS or DATA frame after the trailing HEADERS frame,
//# is considered invalid.
#[test]
fn data_before_headers_is_unexpected() {
    let mut raw = server();
    raw.request(&frame_bytes(FrameType::DATA, b""), true);
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

#[test]
fn data_after_trailers_is_unexpected() {
    let mut raw = server();
    let mut bytes = raw.headers(&get_fields());
    bytes.extend(raw.headers(&[field("x-t", "1")]));
    bytes.extend(frame_bytes(FrameType::DATA, b"x"));
    raw.request(&bytes, true);
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

#[test]
fn headers_after_trailers_is_unexpected() {
    let mut raw = server();
    let mut bytes = raw.headers(&get_fields());
    bytes.extend(raw.headers(&[field("x-t", "1")]));
    bytes.extend(raw.headers(&[field("x-t", "2")]));
    raw.request(&bytes, true);
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.3
//= type=test
//# Receiving a CANCEL_PUSH
//# frame on a stream other than the control stream MUST be treated as a connection
//# error of type H3_FRAME_UNEXPECTED.
#[test]
fn control_frames_on_a_request_stream_are_unexpected() {
    // h3spec sends these with empty payloads: the stream decides, not the
    // length.
    for ty in [
        FrameType::CANCEL_PUSH,
        FrameType::SETTINGS,
        FrameType::GOAWAY,
        FrameType::MAX_PUSH_ID,
        FrameType::PRIORITY_UPDATE_REQUEST,
    ] {
        let mut raw = server();
        let mut bytes = frame_bytes(ty, b"");
        bytes.extend(raw.headers(&get_fields()));
        raw.request(&bytes, true);
        raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.5
//= type=test
//# A client MUST NOT send a PUSH_PROMISE frame.  A server MUST treat the receipt of
//# a PUSH_PROMISE frame as a connection error of type H3_FRAME_UNEXPECTED.
#[test]
fn push_promise_to_a_server_is_unexpected() {
    let mut raw = server();
    let section = raw.section(&get_fields());
    let mut bytes = raw.headers(&get_fields());
    Frame::PushPromise { push_id: varint(0), field_section: &section }.encode(&mut bytes);
    raw.request(&bytes, true);
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.1
//= type=test
//# If
//# the first frame of the control stream is any other frame type, this MUST be
//# treated as a connection error of type H3_MISSING_SETTINGS.
#[test]
fn control_stream_must_start_with_settings() {
    for first in [frame_bytes(FrameType::DATA, b""), frame_bytes(FrameType::GOAWAY, &[0])] {
        let mut raw = Raw::against(Side::Server, Config::default());
        raw.uni(StreamType::CONTROL, &first);
        raw.assert_closed(ErrorCode::H3_MISSING_SETTINGS);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.1
//= type=test
//# If
//# a DATA frame is received on a control stream, the recipient MUST respond with a
//# connection error of type H3_FRAME_UNEXPECTED.
#[test]
fn data_on_the_control_stream_is_unexpected() {
    let mut raw = server();
    raw.t.write(raw.control.unwrap(), &frame_bytes(FrameType::DATA, b"")).unwrap();
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.2
//= type=test
//# If a
//# HEADERS frame is received on a control stream, the recipient MUST respond with a
//# connection error of type H3_FRAME_UNEXPECTED.
#[test]
fn headers_on_the_control_stream_are_unexpected() {
    let mut raw = server();
    raw.t.write(raw.control.unwrap(), &frame_bytes(FrameType::HEADERS, b"")).unwrap();
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4
//= type=test
//# If an endpoint receives a second SETTINGS
//# frame on the control stream, the endpoint MUST respond with a connection error
//# of type H3_FRAME_UNEXPECTED.
#[test]
fn a_second_settings_is_unexpected() {
    let mut raw = server();
    raw.t.write(raw.control.unwrap(), &frame_bytes(FrameType::SETTINGS, b"")).unwrap();
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4.1
//= type=test
//# Setting identifiers that were defined in {{RFC9113}} where there is no
//# corresponding HTTP/3 setting have also been reserved ({{iana-settings}}). These
//# reserved settings MUST NOT be sent, and their receipt MUST be treated as a
//# connection error of type H3_SETTINGS_ERROR.
#[test]
fn http2_settings_and_duplicates_are_settings_errors() {
    // SETTINGS_ENABLE_PUSH (0x02) from HTTP/2; then a duplicate 0x06.
    for payload in [vec![0x02, 0x00], vec![0x06, 0x10, 0x06, 0x10]] {
        let mut raw = Raw::against(Side::Server, Config::default());
        raw.uni(StreamType::CONTROL, &frame_bytes(FrameType::SETTINGS, &payload));
        raw.assert_closed(ErrorCode::H3_SETTINGS_ERROR);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4
//= type=test
//# An implementation MUST ignore any parameter with an identifier it does
//# not understand.
#[test]
fn grease_and_unknown_settings_are_ignored() {
    let mut raw = Raw::against(Side::Server, Config::default());
    // A reserved identifier (0x21) and an unknown one (0x4242).
    let payload = [0x21, 0x05, 0x40, 0x42, 0x01];
    raw.uni(StreamType::CONTROL, &frame_bytes(FrameType::SETTINGS, &payload));
    let events = raw.pump();
    assert!(matches!(events.as_slice(), [Event::Settings(_)]), "{events:?}");
    assert_eq!(raw.closed_with(), None);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.1
//= type=test
//# Only one control stream per peer is permitted;
//# receipt of a second stream claiming to be a control stream MUST be treated as a
//# connection error of type H3_STREAM_CREATION_ERROR.
#[test]
fn second_critical_streams_are_creation_errors() {
    for ty in [StreamType::CONTROL, StreamType::QPACK_ENCODER, StreamType::QPACK_DECODER] {
        let mut raw = server();
        let mut settings = Vec::new();
        Settings::default().encode(&mut settings);
        let payload = if ty == StreamType::CONTROL { settings } else { Vec::new() };
        raw.uni(ty, &payload);
        raw.uni(ty, &payload);
        raw.assert_closed(ErrorCode::H3_STREAM_CREATION_ERROR);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.1
//= type=test
//# If either
//# control stream is closed at any point, this MUST be treated as a connection
//# error of type H3_CLOSED_CRITICAL_STREAM.
#[test]
fn closing_a_critical_stream_is_an_error() {
    let mut raw = server();
    raw.t.finish(raw.control.unwrap()).unwrap();
    raw.assert_closed(ErrorCode::H3_CLOSED_CRITICAL_STREAM);

    let mut raw = server();
    raw.t.reset(raw.control.unwrap(), varint(0x100)).unwrap();
    raw.assert_closed(ErrorCode::H3_CLOSED_CRITICAL_STREAM);

    //= https://www.rfc-editor.org/rfc/rfc9204#section-4.2
    //= type=test
    //# Closure of either unidirectional stream type MUST be treated as a connection
    //# error of type H3_CLOSED_CRITICAL_STREAM.
    for ty in [StreamType::QPACK_ENCODER, StreamType::QPACK_DECODER] {
        let mut raw = server();
        let id = raw.uni(ty, &[]);
        raw.pump();
        raw.t.finish(id).unwrap();
        raw.assert_closed(ErrorCode::H3_CLOSED_CRITICAL_STREAM);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-6.2
//= type=test
//# Recipients of unknown stream types MUST either abort reading of the
//# stream or discard incoming data without further processing.
#[test]
fn unknown_stream_types_are_stopped_not_fatal() {
    let mut raw = server();
    let grease = raw.uni(StreamType::grease(3), b"anything at all");
    let unknown = raw.uni(StreamType(varint(0x54)), b"more");
    raw.pump();
    assert_eq!(raw.closed_with(), None);
    for id in [grease, unknown] {
        assert_eq!(raw.t.stopped(id), Some(ErrorCode::H3_STREAM_CREATION_ERROR.to_varint()));
    }
    // A stream closed before its type arrived is tolerated too.
    let id = raw.t.open(Dir::Uni).unwrap();
    raw.t.finish(id).unwrap();
    raw.pump();
    assert_eq!(raw.closed_with(), None);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-9
//= type=test
//# Implementations MUST ignore unknown or unsupported values in all extensible
//# protocol elements.
#[test]
fn unknown_frames_are_skipped_everywhere() {
    let mut raw = server();
    let grease = FrameType::grease(9);
    raw.t.write(raw.control.unwrap(), &frame_bytes(grease, &[0xaa; 40])).unwrap();
    let mut bytes = frame_bytes(grease, b"before");
    bytes.extend(raw.headers(&get_fields()));
    bytes.extend(frame_bytes(grease, b"between"));
    raw.request(&bytes, true);
    let events = raw.pump();
    assert_eq!(raw.closed_with(), None, "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Finished(_))), "{events:?}");
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.8
//= type=test
//# These frame types MUST NOT be
//# sent, and their receipt MUST be treated as a connection error of type
//# H3_FRAME_UNEXPECTED.
#[test]
fn http2_frame_types_are_unexpected() {
    let mut raw = server();
    let mut bytes = raw.headers(&get_fields());
    bytes.extend(frame_bytes(FrameType::H2_PING, &[0; 8]));
    raw.request(&bytes, true);
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.1
//= type=test
//# When a stream terminates cleanly, if the last frame on the stream was truncated,
//# this MUST be treated as a connection error of type H3_FRAME_ERROR.
#[test]
fn a_truncated_frame_is_a_frame_error() {
    let mut raw = server();
    let mut bytes = raw.headers(&get_fields());
    bytes.extend(&frame_bytes(FrameType::DATA, b"0123456789")[..6]);
    let id = raw.request(&bytes, true);
    raw.pump();
    let mut buf = [0u8; 64];
    assert_eq!(raw.conn.recv_data(&mut raw.ct, id, &mut buf), 4, "what arrived is read");
    raw.assert_closed(ErrorCode::H3_FRAME_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.1
//= type=test
//# A frame payload that contains additional bytes after the
//# identified fields or a frame payload that terminates before the end of the
//# identified fields MUST be treated as a connection error of type
//# H3_FRAME_ERROR.
#[test]
fn a_goaway_with_extra_bytes_is_a_frame_error() {
    let mut raw = server();
    raw.t.write(raw.control.unwrap(), &frame_bytes(FrameType::GOAWAY, &[0x00, 0x00])).unwrap();
    raw.assert_closed(ErrorCode::H3_FRAME_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-10.5
//= type=test
//# An endpoint MAY treat activity that is suspicious as a connection error of type
//# H3_EXCESSIVE_LOAD
#[test]
fn a_control_frame_above_the_buffer_limit_is_excessive_load() {
    let mut raw = server();
    let mut bytes = Vec::new();
    crate::frame::FrameHeader::encode(FrameType::PRIORITY_UPDATE_REQUEST, 1 << 20, &mut bytes);
    raw.t.write(raw.control.unwrap(), &bytes).unwrap();
    raw.assert_closed(ErrorCode::H3_EXCESSIVE_LOAD);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-6.1
//= type=test
//# Clients MUST treat receipt of a
//# server-initiated bidirectional stream as a connection error of type
//# H3_STREAM_CREATION_ERROR unless such an extension has been negotiated.
#[test]
fn a_server_bidirectional_stream_is_a_creation_error() {
    let mut raw = Raw::against(Side::Client, Config::default());
    raw.control();
    let id = raw.t.open(Dir::Bi).unwrap();
    raw.t.write(id, b"x").unwrap();
    raw.assert_closed(ErrorCode::H3_STREAM_CREATION_ERROR);
}

/// Malformed requests: each resets its stream with H3_MESSAGE_ERROR and
/// leaves the connection up.
//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
//= type=test
//# Malformed requests or responses that are detected MUST be treated as a stream
//# error of type H3_MESSAGE_ERROR.
#[test]
fn malformed_requests_are_stream_errors() {
    let cases: Vec<(&str, Vec<Field>)> = vec![
        ("uppercase name", request_fields("GET", "https", "a", "/", &[field("X-Upper", "1")])),
        (
            "pseudo after regular",
            vec![
                field(":method", "GET"),
                field("x", "1"),
                field(":scheme", "https"),
                field(":authority", "a"),
                field(":path", "/"),
            ],
        ),
        (
            "missing :method",
            vec![field(":scheme", "https"), field(":authority", "a"), field(":path", "/")],
        ),
        (
            "missing :path",
            vec![field(":method", "GET"), field(":scheme", "https"), field(":authority", "a")],
        ),
        ("empty :path", request_fields("GET", "https", "a", "", &[])),
        (
            "connection-specific",
            request_fields("GET", "https", "a", "/", &[field("connection", "close")]),
        ),
        (
            "te other than trailers",
            request_fields("GET", "https", "a", "/", &[field("te", "gzip")]),
        ),
        (
            "unknown pseudo",
            request_fields("GET", "https", "a", "/", &[])
                .into_iter()
                .chain([field(":foo", "1")])
                .collect(),
        ),
        ("response pseudo", vec![field(":status", "200")]),
        (
            "duplicate :method",
            vec![
                field(":method", "GET"),
                field(":method", "GET"),
                field(":scheme", "https"),
                field(":authority", "a"),
                field(":path", "/"),
            ],
        ),
        (
            "CONNECT with :path",
            vec![field(":method", "CONNECT"), field(":authority", "a:1"), field(":path", "/")],
        ),
        ("value with CR LF", request_fields("GET", "https", "a", "/", &[field("x", "a\r\nb")])),
        (
            ":protocol without extended CONNECT",
            request_fields("CONNECT", "https", "a", "/", &[])
                .into_iter()
                .chain([field(":protocol", "websocket")])
                .collect(),
        ),
    ];
    for (name, fields) in cases {
        let mut raw = server();
        let bytes = raw.headers(&fields);
        let id = raw.request(&bytes, true);
        let events = raw.pump();
        assert_eq!(raw.closed_with(), None, "{name}: connection stays up");
        assert_eq!(raw.reset_code(id), Some(ErrorCode::H3_MESSAGE_ERROR), "{name}: {events:?}");
        assert_eq!(raw.t.stopped(id), Some(ErrorCode::H3_MESSAGE_ERROR.to_varint()), "{name}");
        assert!(
            events.iter().any(|e| matches!(e, Event::StreamFailed { stream, error } if *stream == id && error.code == ErrorCode::H3_MESSAGE_ERROR)),
            "{name}: {events:?}"
        );
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
//= type=test
//# A request or response that is defined as having content when it contains a
//# Content-Length header field ({{Section 8.6 of RFC9110}}) is malformed if the
//# value of the Content-Length header field does not equal the sum of the DATA
//# frame lengths received.
#[test]
fn content_length_must_match_the_data() {
    for (declared, body) in [("5", &b"abc"[..]), ("2", &b"abc"[..])] {
        let mut raw = server();
        let fields =
            request_fields("POST", "https", "a", "/", &[field("content-length", declared)]);
        let mut bytes = raw.headers(&fields);
        bytes.extend(frame_bytes(FrameType::DATA, body));
        let id = raw.request(&bytes, true);
        let mut events = raw.pump();
        // The body is read as the application asks for it.
        let mut buf = [0u8; 16];
        while raw.conn.recv_data(&mut raw.ct, id, &mut buf) > 0 {}
        events.extend(raw.pump());
        assert_eq!(raw.reset_code(id), Some(ErrorCode::H3_MESSAGE_ERROR), "{declared}: {events:?}");
        assert_eq!(raw.closed_with(), None);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
//= type=test
//# If a client-initiated stream terminates without enough of the HTTP
//# message to provide a complete response, the server SHOULD abort its response
//# stream with the error code H3_REQUEST_INCOMPLETE.
#[test]
fn a_request_stream_ended_before_headers_is_incomplete() {
    let mut raw = server();
    let id = raw.request(&frame_bytes(FrameType::grease(1), b""), true);
    raw.pump();
    assert_eq!(raw.reset_code(id), Some(ErrorCode::H3_REQUEST_INCOMPLETE));
}

#[test]
fn a_malformed_response_is_a_stream_error_for_the_client() {
    let mut raw = Raw::against(Side::Client, Config::default());
    raw.control();
    raw.pump();
    let id = raw.conn.send_request(&mut raw.ct, &get_fields(), true).unwrap();
    raw.pump();
    let bytes = raw.headers(&[field(":status", "2000")]);
    raw.t.write(id, &bytes).unwrap();
    raw.t.finish(id).unwrap();
    let events = raw.pump();
    assert!(
        events.iter().any(|e| matches!(e, Event::StreamFailed { error, .. } if error.code == ErrorCode::H3_MESSAGE_ERROR)),
        "{events:?}"
    );
    assert_eq!(raw.closed_with(), None);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.2.2
//= type=test
//# An HTTP/3 implementation MAY impose a limit on the maximum size of the message
//# header it will accept on an individual HTTP message.
#[test]
fn a_field_section_above_the_limit_is_refused_on_its_stream() {
    let mut config = Config::default();
    config.max_field_section_size(200);
    let mut raw = Raw::against(Side::Server, config);
    raw.control();
    let big = "v".repeat(300);
    let bytes = raw.headers(&request_fields("GET", "https", "a", "/", &[field("x-big", &big)]));
    let id = raw.request(&bytes, true);
    raw.pump();
    assert_eq!(raw.reset_code(id), Some(ErrorCode::H3_EXCESSIVE_LOAD));
    assert_eq!(raw.closed_with(), None);
}
