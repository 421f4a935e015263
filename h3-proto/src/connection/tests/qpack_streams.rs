//! QPACK over the connection: blocked sections resume when the encoder
//! stream catches up, and each QPACK error closes with its code.

use super::*;
use crate::qpack::{Encoder, EncoderConfig};

/// An encoder allowed a dynamic table, as the real end's SETTINGS allow.
fn dynamic_encoder() -> Encoder {
    let mut encoder = Encoder::new(EncoderConfig::default());
    encoder.apply_settings(4096, 16);
    encoder
}

#[test]
fn a_blocked_section_resumes_when_the_encoder_stream_arrives() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.pump();
    let mut encoder = dynamic_encoder();
    let fields = request_fields("GET", "https", "a", "/", &[field("x-custom", "value one")]);
    let mut section = Vec::new();
    // Encoded twice: the second section references the inserted entries.
    encoder.encode(0, &fields, &mut section);
    section.clear();
    encoder.encode(0, &fields, &mut section);
    let mut instructions = Vec::new();
    encoder.poll_encoder_stream(&mut instructions);
    assert!(!instructions.is_empty());
    let mut bytes = Vec::new();
    Frame::Headers { field_section: &section }.encode(&mut bytes);
    let id = raw.request(&bytes, true);
    let events = raw.pump();
    assert!(events.is_empty(), "blocked: {events:?}");
    raw.uni(StreamType::QPACK_ENCODER, &instructions);
    let events = raw.pump();
    assert!(
        matches!(&events[..], [Event::Headers { stream, fields: got, .. }, Event::Finished(_)] if *stream == id && *got == fields),
        "{events:?}"
    );
}

//= https://www.rfc-editor.org/rfc/rfc9204#section-2.1.2
//= type=test
//# If a decoder encounters
//# more blocked streams than it promised to support, it MUST treat this as a
//# connection error of type QPACK_DECOMPRESSION_FAILED.
#[test]
fn more_blocked_streams_than_allowed_fail_decompression() {
    let mut config = Config::default();
    config.qpack(4096, 1);
    let mut raw = Raw::against(Side::Server, config);
    raw.control();
    let mut encoder = dynamic_encoder();
    let fields = request_fields("GET", "https", "a", "/", &[field("x-custom", "v")]);
    let mut section = Vec::new();
    encoder.encode(0, &fields, &mut section);
    section.clear();
    encoder.encode(0, &fields, &mut section);
    let mut bytes = Vec::new();
    Frame::Headers { field_section: &section }.encode(&mut bytes);
    raw.request(&bytes, true);
    raw.request(&bytes, true);
    raw.assert_closed(ErrorCode::QPACK_DECOMPRESSION_FAILED);
}

//= https://www.rfc-editor.org/rfc/rfc9204#section-4.3.1
//= type=test
//# The decoder MUST treat a new dynamic table capacity
//# value that exceeds this limit as a connection error of type
//# QPACK_ENCODER_STREAM_ERROR.
#[test]
fn a_capacity_above_the_limit_is_an_encoder_stream_error() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    // Set Dynamic Table Capacity 8192 > 4096: 001xxxxx with a 5-bit prefix.
    let mut instruction = Vec::new();
    qpack::encode_int(8192, 5, 0x20, &mut instruction);
    raw.uni(StreamType::QPACK_ENCODER, &instruction);
    raw.assert_closed(ErrorCode::QPACK_ENCODER_STREAM_ERROR);
}

#[test]
fn a_bad_decoder_instruction_is_a_decoder_stream_error() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    // Insert Count Increment of zero (RFC 9204 §4.4.3).
    raw.uni(StreamType::QPACK_DECODER, &[0x00]);
    raw.assert_closed(ErrorCode::QPACK_DECODER_STREAM_ERROR);
}

#[test]
fn a_bad_field_section_fails_decompression() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    // Prefix 0, 0, then an indexed static line past the table (index 120).
    let section = [0x00, 0x00, 0xff, 0x39];
    let mut bytes = Vec::new();
    Frame::Headers { field_section: &section }.encode(&mut bytes);
    raw.request(&bytes, true);
    raw.assert_closed(ErrorCode::QPACK_DECOMPRESSION_FAILED);
}

#[test]
fn a_reset_blocked_stream_is_cancelled_for_the_encoder() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.pump();
    let mut encoder = dynamic_encoder();
    let fields = request_fields("GET", "https", "a", "/", &[field("x-custom", "v")]);
    let mut section = Vec::new();
    encoder.encode(0, &fields, &mut section);
    section.clear();
    encoder.encode(0, &fields, &mut section);
    let mut bytes = Vec::new();
    Frame::Headers { field_section: &section }.encode(&mut bytes);
    let id = raw.request(&bytes, false);
    raw.pump();
    raw.t.reset(id, ErrorCode::H3_REQUEST_CANCELLED.to_varint()).unwrap();
    let events = raw.pump();
    assert!(events.is_empty(), "the application never saw the request: {events:?}");
    assert_eq!(raw.reset_code(id), Some(ErrorCode::H3_REQUEST_REJECTED));
    // The real end's decoder stream carries a Stream Cancellation (01xxxxxx
    // with the stream ID) after its type byte.
    let decoder_stream = stream(11);
    let mut buf = [0u8; 64];
    let n = raw.t.read(decoder_stream, &mut buf).unwrap().unwrap();
    assert_eq!(&buf[..n], &[0x03, 0x40], "type 0x03, then Stream Cancellation of stream 0");
}

/// Regression: a client that sent requests before `open` (the server's
/// SETTINGS, sent as 0.5-RTT data, can arrive before the client's
/// handshake completes) had its encoder insert `:authority` for the second
/// request and reference it, while the insert itself was dropped for want
/// of an encoder stream: the server's request streams stayed blocked for
/// good. Field sections are now refused until `open`.
#[test]
fn sections_before_open_are_refused_rather_than_losing_their_inserts() {
    let (mut ct, mut st) = memory::pair();
    let mut client = Connection::new(Side::Client, Config::default(), 1);
    let mut server = Connection::new(Side::Server, Config::default(), 2);
    server.open(&mut st).unwrap();
    client.handle_all(&mut ct);
    assert!(matches!(client.poll_event(), Some(Event::Settings(_))), "SETTINGS first");
    let fields = request_fields("GET", "https", "example.com", "/", &[]);
    for _ in 0..2 {
        assert_eq!(
            client.send_request(&mut ct, &fields, true),
            Err(SendError::InvalidState("open() was not called"))
        );
    }
    // Once open, the second request references the table, and the server
    // gets the insert it needs.
    client.open(&mut ct).unwrap();
    let ids = [(); 2].map(|()| client.send_request(&mut ct, &fields, true).unwrap());
    let mut heads = Vec::new();
    for _ in 0..4 {
        server.handle_all(&mut st);
        while let Some(event) = server.poll_event() {
            if let Event::Headers { stream, .. } = event {
                heads.push(stream);
            }
        }
    }
    assert_eq!(heads, ids, "both requests decoded");
    assert!(server.qpack_decoder_inserts() > 0, "the table was used");
    // A server answers only once open as well.
    let (mut ct, mut st) = memory::pair();
    let mut client = Connection::new(Side::Client, Config::default(), 1);
    let mut server = Connection::new(Side::Server, Config::default(), 2);
    client.open(&mut ct).unwrap();
    let id = client.send_request(&mut ct, &fields, true).unwrap();
    server.handle_all(&mut st);
    assert!(
        std::iter::from_fn(|| server.poll_event()).any(|e| matches!(e, Event::Headers { .. })),
        "the request arrives"
    );
    let response = response_fields(200, &[]);
    assert_eq!(
        server.send_response(&mut st, id, &response, true),
        Err(SendError::InvalidState("open() was not called"))
    );
}
