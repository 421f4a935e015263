//! Each builder's data, as exact JSON text against the draft's CDDL; no
//! work when qlog is off; and the events reaching a real connection's qlog
//! file in both formats.

use std::time::Duration;

use quic_proto::qlog::{
    HTTP3_EVENT_SCHEMA, QUIC_EVENT_SCHEMA, QlogFormat, RECORD_SEPARATOR, VecSink,
};
use quic_proto::testing::pair::{Pair, seed_from_env};
use quic_proto::{Dir, Side, VarInt};

use super::*;
use crate::frame::FrameType;
use crate::stream_type::StreamType;
use crate::transport::QuicTransport;
use crate::transport::memory::{MemoryTransport, pair};

/// A client end that keeps its qlog events.
fn logged() -> MemoryTransport {
    let (mut client, _server) = pair();
    client.enable_qlog();
    client
}

/// The events logged so far, as (name, data) pairs of `&str`.
fn events(t: &MemoryTransport) -> Vec<(&str, &str)> {
    t.qlog_events().iter().map(|(n, d)| (n.as_str(), d.as_str())).collect()
}

fn id(side: Side, dir: Dir, index: u64) -> StreamId {
    StreamId::new(side, dir, index).unwrap()
}

fn v(x: u32) -> VarInt {
    VarInt::from_u32(x)
}

fn all_settings() -> Settings {
    Settings {
        qpack_max_table_capacity: v(4096),
        max_field_section_size: Some(v(16384)),
        qpack_blocked_streams: v(16),
        enable_connect_protocol: true,
        h3_datagram: true,
    }
}

/// Calls every builder once.
fn log_one_of_each(t: &mut MemoryTransport) {
    let stream = id(Side::Client, Dir::Bi, 0);
    parameters_set(t, true, &Settings::default(), Some(false));
    stream_type_set(t, stream, None);
    frame_created(t, stream, &Frame::Data { len: 1 }, 3, None);
    frame_parsed(t, stream, &Frame::Data { len: 1 }, 3, None);
    priority_updated(t, PriorityElement::Stream(stream), None, b"u=1", None, None);
    push_resolved(t, Some(0), None, PushDecision::Claimed);
}

#[test]
fn nothing_is_logged_or_built_when_qlog_is_off() {
    let (mut client, _server) = pair();
    assert!(!client.qlog_enabled());
    log_one_of_each(&mut client);
    assert!(client.qlog_events().is_empty());

    let mut client = logged();
    assert!(client.qlog_enabled());
    log_one_of_each(&mut client);
    let names: Vec<&str> = events(&client).iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "http3:parameters_set",
            "http3:stream_type_set",
            "http3:frame_created",
            "http3:frame_parsed",
            "http3:priority_updated",
            "http3:push_resolved"
        ]
    );
}

//= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-3.1
//= type=test
//# The "initiator" field reflects how Settings are exchanged on a connection.
#[test]
fn parameters_set_carries_the_settings_in_force() {
    let mut t = logged();
    parameters_set(&mut t, true, &Settings::default(), Some(false));
    parameters_set(&mut t, false, &all_settings(), None);
    assert_eq!(
        events(&t),
        [
            (
                "http3:parameters_set",
                concat!(
                    r#"{"initiator":"local","max_table_capacity":0,"blocked_streams_count":0,"#,
                    r#""extended_connect":0,"h3_datagram":0,"waits_for_settings":false}"#
                )
            ),
            (
                "http3:parameters_set",
                concat!(
                    r#"{"initiator":"remote","max_field_section_size":16384,"#,
                    r#""max_table_capacity":4096,"blocked_streams_count":16,"#,
                    r#""extended_connect":1,"h3_datagram":1}"#
                )
            ),
        ]
    );
}

//= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-3.3
//= type=test
//# Client bidirectional streams always have a stream_type value of "request".
//
//= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-3.3
//= type=test
//# Where the type is not known, the stream_type value of "unknown"
//# type can be used and the value captured in the stream_type_bytes field; a
//# numerical value without variable-length integer encoding.
#[test]
fn stream_type_set_names_every_stream_type() {
    let mut t = logged();
    let cases: [(StreamId, Option<UniStreamHeader>, &str); 7] = [
        (
            id(Side::Client, Dir::Bi, 0),
            None,
            r#"{"initiator":"local","stream_id":0,"stream_type":"request"}"#,
        ),
        (
            id(Side::Server, Dir::Uni, 0),
            Some(UniStreamHeader::Control),
            r#"{"initiator":"remote","stream_id":3,"stream_type":"control"}"#,
        ),
        (
            id(Side::Server, Dir::Uni, 1),
            Some(UniStreamHeader::Push { push_id: v(5) }),
            r#"{"initiator":"remote","stream_id":7,"stream_type":"push","associated_push_id":5}"#,
        ),
        (
            id(Side::Client, Dir::Uni, 0),
            Some(UniStreamHeader::QpackEncoder),
            r#"{"initiator":"local","stream_id":2,"stream_type":"qpack_encode"}"#,
        ),
        (
            id(Side::Client, Dir::Uni, 1),
            Some(UniStreamHeader::QpackDecoder),
            r#"{"initiator":"local","stream_id":6,"stream_type":"qpack_decode"}"#,
        ),
        (
            id(Side::Server, Dir::Uni, 2),
            Some(UniStreamHeader::Unknown(StreamType(v(0x21)))),
            r#"{"initiator":"remote","stream_id":11,"stream_type":"reserved"}"#,
        ),
        (
            id(Side::Server, Dir::Uni, 3),
            Some(UniStreamHeader::Unknown(StreamType(v(0x1234)))),
            r#"{"initiator":"remote","stream_id":15,"stream_type":"unknown","stream_type_bytes":4660}"#,
        ),
    ];
    for (stream, header, _) in &cases {
        stream_type_set(&mut t, *stream, header.as_ref());
    }
    let want: Vec<(&str, &str)> =
        cases.iter().map(|(_, _, d)| ("http3:stream_type_set", *d)).collect();
    assert_eq!(events(&t), want);
}

//= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-4.2.2
//= type=test
//# An instance of `HTTP3HTTPField` MUST include either the `name` or `name_bytes`
//# field and MAY include both. An `HTTP3HTTPField` MAY include a `value` or
//# `value_bytes` field or neither.
#[test]
fn header_fields_are_text_when_safe_and_bytes_otherwise() {
    let mut t = logged();
    let fields = [
        Field::new(":method", "GET"),
        Field::new(":path", "/"),
        Field::new("accept", ""),
        Field::new("x-quote", "a\"b\\c"),
        Field::new("x-utf8", "café"),
        Field::new("Bad Name", "a\tb c"),
        Field::new("x-ctl", b"a\r\nb".to_vec()),
    ];
    let stream = id(Side::Client, Dir::Bi, 0);
    frame_created(&mut t, stream, &Frame::Headers { field_section: &[0; 40] }, 42, Some(&fields));
    let want = concat!(
        r#"{"stream_id":0,"frame":{"frame_type":"headers","headers":["#,
        r#"{"name":":method","value":"GET"},{"name":":path","value":"/"},"#,
        r#"{"name":"accept","value":""},{"name":"x-quote","value":"a\"b\\c"},"#,
        r#"{"name":"x-utf8","value_bytes":"636166c3a9"},"#,
        r#"{"name_bytes":"426164204e616d65","value":"a\tb c"},"#,
        r#"{"name":"x-ctl","value_bytes":"610d0a62"}"#,
        r#"],"raw":{"length":42,"payload_length":40}}}"#
    );
    assert_eq!(events(&t), [("http3:frame_created", want)]);
}

/// A frame logged on a stream with its wire length and fields, and the
/// data expected.
type FrameCase<'a> = (StreamId, Frame<'a>, u64, Option<&'a [Field]>, &'static str);

//= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-4.2.8
//= type=test
//# The frame_type_bytes field is the numerical value without variable-length
//# integer encoding.
#[test]
fn every_frame_is_written_as_the_draft_defines_it() {
    let request = id(Side::Client, Dir::Bi, 0);
    let control = id(Side::Client, Dir::Uni, 0);
    let path = [Field::new(":path", "/x")];
    let cases: Vec<FrameCase<'_>> = vec![
        (
            request,
            Frame::Data { len: 100 },
            102,
            None,
            r#"{"stream_id":0,"frame":{"frame_type":"data","raw":{"length":102,"payload_length":100}}}"#,
        ),
        (
            request,
            Frame::Headers { field_section: &[0; 3] },
            5,
            None,
            r#"{"stream_id":0,"frame":{"frame_type":"headers","headers":[],"raw":{"length":5,"payload_length":3}}}"#,
        ),
        (
            control,
            Frame::CancelPush(v(3)),
            3,
            None,
            r#"{"stream_id":2,"frame":{"frame_type":"cancel_push","push_id":3,"raw":{"length":3,"payload_length":1}}}"#,
        ),
        (
            control,
            Frame::Settings(all_settings()),
            22,
            None,
            concat!(
                r#"{"stream_id":2,"frame":{"frame_type":"settings","settings":["#,
                r#"{"name":"settings_qpack_max_table_capacity","value":4096},"#,
                r#"{"name":"settings_max_field_section_size","value":16384},"#,
                r#"{"name":"settings_qpack_blocked_streams","value":16},"#,
                r#"{"name":"settings_enable_connect_protocol","value":1},"#,
                r#"{"name":"settings_h3_datagram","value":1}"#,
                r#"],"raw":{"length":22}}}"#
            ),
        ),
        (
            request,
            Frame::PushPromise { push_id: v(2), field_section: &[0; 4] },
            7,
            Some(&path),
            concat!(
                r#"{"stream_id":0,"frame":{"frame_type":"push_promise","push_id":2,"#,
                r#""headers":[{"name":":path","value":"/x"}],"raw":{"length":7,"payload_length":5}}}"#
            ),
        ),
        (
            control,
            Frame::Goaway(v(8)),
            3,
            None,
            r#"{"stream_id":2,"frame":{"frame_type":"goaway","id":8,"raw":{"length":3,"payload_length":1}}}"#,
        ),
        (
            control,
            Frame::MaxPushId(v(10)),
            3,
            None,
            r#"{"stream_id":2,"frame":{"frame_type":"max_push_id","push_id":10,"raw":{"length":3,"payload_length":1}}}"#,
        ),
        (
            control,
            Frame::PriorityUpdate { element_id: v(4), field_value: b"u=1, i", push: false },
            12,
            None,
            concat!(
                r#"{"stream_id":2,"frame":{"frame_type":"priority_update","stream_id":4,"#,
                r#""priority_field_value":"u=1, i","raw":{"length":12,"payload_length":7}}}"#
            ),
        ),
        (
            control,
            Frame::PriorityUpdate { element_id: v(1), field_value: b"u=\xff", push: true },
            9,
            None,
            concat!(
                r#"{"stream_id":2,"frame":{"frame_type":"priority_update","push_id":1,"#,
                "\"priority_field_value\":\"u=\u{fffd}\",\"raw\":{\"length\":9,\"payload_length\":4}}}"
            ),
        ),
        (
            request,
            Frame::Unknown { ty: FrameType(v(0x21)), len: 3 },
            6,
            None,
            concat!(
                r#"{"stream_id":0,"frame":{"frame_type":"reserved","frame_type_bytes":33,"#,
                r#""raw":{"length":6,"payload_length":3}}}"#
            ),
        ),
        (
            request,
            Frame::Unknown { ty: FrameType(v(0x1234)), len: 0 },
            3,
            None,
            concat!(
                r#"{"stream_id":0,"frame":{"frame_type":"unknown","frame_type_bytes":4660,"#,
                r#""raw":{"length":3,"payload_length":0}}}"#
            ),
        ),
    ];
    for name in ["http3:frame_created", "http3:frame_parsed"] {
        let mut t = logged();
        for &(stream, ref frame, raw_len, fields, _) in &cases {
            if name == "http3:frame_created" {
                frame_created(&mut t, stream, frame, raw_len, fields);
            } else {
                frame_parsed(&mut t, stream, frame, raw_len, fields);
            }
        }
        let want: Vec<(&str, &str)> = cases.iter().map(|c| (name, c.4)).collect();
        assert_eq!(events(&t), want);
    }
}

#[test]
fn settings_the_model_does_not_name_fall_back_to_reserved_and_unknown() {
    let mut out = Vec::new();
    let mut w = JsonWriter::new(&mut out);
    w.begin_array();
    for id in [SettingId::H3_DATAGRAM, SettingId(v(0x21)), SettingId(v(0x1234))] {
        w.begin_object();
        write_setting_name(&mut w, id);
        w.end_object();
    }
    w.end_array();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"[{"name":"settings_h3_datagram"},{"name":"reserved"},{"name":"unknown","name_bytes":4660}]"#
    );
}

#[test]
fn priority_updated_and_push_resolved_carry_their_optional_fields() {
    let mut t = logged();
    let stream = id(Side::Client, Dir::Bi, 1);
    priority_updated(
        &mut t,
        PriorityElement::Stream(stream),
        None,
        b"u=3",
        Some(PriorityTrigger::ClientSignalReceived),
        Some(PriorityReason::ClientSignalOnly),
    );
    priority_updated(&mut t, PriorityElement::Push(2), Some(b"u=3"), b"u=1,i", None, None);
    priority_updated(
        &mut t,
        PriorityElement::Push(0),
        None,
        b"u=7",
        Some(PriorityTrigger::Local),
        Some(PriorityReason::LocalPolicy),
    );
    priority_updated(
        &mut t,
        PriorityElement::Stream(stream),
        Some(b"u=7"),
        b"u=5",
        Some(PriorityTrigger::Other),
        Some(PriorityReason::ClientServerMerged),
    );
    push_resolved(&mut t, Some(1), None, PushDecision::Claimed);
    push_resolved(&mut t, None, Some(id(Side::Server, Dir::Uni, 3)), PushDecision::Abandoned);
    assert_eq!(
        events(&t),
        [
            (
                "http3:priority_updated",
                r#"{"stream_id":4,"new":"u=3","trigger":"client_signal_received","reason":"client_signal_only"}"#
            ),
            ("http3:priority_updated", r#"{"push_id":2,"old":"u=3","new":"u=1,i"}"#),
            (
                "http3:priority_updated",
                r#"{"push_id":0,"new":"u=7","trigger":"local","reason":"local_policy"}"#
            ),
            (
                "http3:priority_updated",
                r#"{"stream_id":4,"old":"u=7","new":"u=5","trigger":"other","reason":"client_server_merged"}"#
            ),
            ("http3:push_resolved", r#"{"push_id":1,"decision":"claimed"}"#),
            ("http3:push_resolved", r#"{"stream_id":15,"decision":"abandoned"}"#),
        ]
    );
}

/// The records of a JSON-SEQ log, as text without their framing.
fn records(log: &[u8]) -> Vec<String> {
    assert_eq!(log.first(), Some(&RECORD_SEPARATOR));
    log[1..]
        .split(|&b| b == RECORD_SEPARATOR)
        .map(|r| {
            let r = r.strip_suffix(b"\n").expect("a record ends with a line feed");
            String::from_utf8(r.to_vec()).unwrap()
        })
        .collect()
}

/// HTTP/3 events given to a `QuicTransport` land in the connection's
/// qlog beside the transport's, under the http3 schema the header lists
/// (the Draft format) or qvis's `http` category (the Qvis format).
#[test]
fn events_over_quic_land_in_the_connections_qlog_in_both_formats() {
    for (seed, format) in [(4270, QlogFormat::Draft), (4271, QlogFormat::Qvis)] {
        let mut pair = Pair::new(seed_from_env(seed));
        pair.handshake();
        let sink = VecSink::new();
        pair.client().set_qlog(Box::new(sink.clone()), format);
        let now = pair.now();
        let mut client = QuicTransport { connection: pair.client(), now };
        assert!(client.qlog_enabled());
        let control = client.open(Dir::Uni).unwrap();
        let header = UniStreamHeader::Control;
        stream_type_set(&mut client, control, Some(&header));
        let settings = Settings::default();
        frame_created(
            &mut client,
            control,
            &Frame::Settings(settings),
            settings.encoded_len() as u64,
            None,
        );
        parameters_set(&mut client, true, &settings, Some(false));
        pair.drive_for(Duration::from_millis(50));

        let records = records(&sink.contents());
        let schemas = format!(r#""event_schemas":["{QUIC_EVENT_SCHEMA}","{HTTP3_EVENT_SCHEMA}"]"#);
        assert_eq!(records[0].contains(&schemas), format == QlogFormat::Draft, "{}", records[0]);
        assert_eq!(HTTP3_EVENT_SCHEMA, "urn:ietf:params:qlog:events:http3-13");
        let ns = if format == QlogFormat::Draft { "http3" } else { "http" };
        let want = [
            format!(
                r#""name":"{ns}:stream_type_set","data":{{"initiator":"local","stream_id":2,"stream_type":"control"}}}}"#
            ),
            format!(
                r#""name":"{ns}:frame_created","data":{{"stream_id":2,"frame":{{"frame_type":"settings","settings":[],"raw":{{"length":2}}}}}}}}"#
            ),
            format!(r#""name":"{ns}:parameters_set","data":{{"initiator":"local","#),
        ];
        let at: Vec<usize> = want
            .iter()
            .map(|w| {
                records
                    .iter()
                    .position(|r| r.contains(w.as_str()))
                    .unwrap_or_else(|| panic!("{format:?}: no record with {w} in {records:#?}"))
            })
            .collect();
        assert!(at.is_sorted() && at[0] > 1, "{format:?}: in order, after the transport's start");
        assert!(records.iter().all(|r| r.starts_with('{') && r.ends_with('}')));
    }
}
