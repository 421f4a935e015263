//! An upper layer's events (`Connection::qlog_app_event`): where they land,
//! under which name in each format, the header's schema list, and the
//! framing check on their data.

use super::*;

/// A handshaken pair whose client logs in `format` into the returned sink.
fn logged_client(seed: u64, format: QlogFormat) -> (Pair, VecSink) {
    let sink = VecSink::new();
    let s = sink.clone();
    let mut pair = Pair::builder(seed)
        .client_endpoint(move |config| {
            let sink = s.clone();
            config.qlog(Arc::new(move |_, _| Some(Box::new(sink.clone()) as Box<dyn QlogSink>)));
            config.qlog_format(format);
        })
        .build();
    pair.handshake();
    (pair, sink)
}

const FRAME: &str = r#"{"stream_id":0,"frame":{"frame_type":"headers","headers":[{"name":":method","value":"GET"}],"raw":{"length":9}}}"#;

//= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-2.1
//= type=test
//# Implementations of draft versions of the event schema MUST append the string
//# "-" and the corresponding draft number to the URI.
//
//= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-main-schema-14#section-8
//= type=test
//# Implementations that record concrete event types SHOULD list all event schemas
//# in use in a specific trace.
#[test]
fn an_app_event_lands_among_the_transports_with_its_schema_listed() {
    let seed = crate::testing::pair::seed_from_env(4260);
    let (mut pair, sink) = logged_client(seed, QlogFormat::Draft);
    let now = pair.now();
    assert!(pair.client().qlog_enabled());
    assert!(pair.client().qlog_app_event(now, "http3:frame_created", FRAME));
    pair.drive_for(core::time::Duration::from_millis(50));
    let recs = records(&sink.contents());
    let times: Vec<f64> = recs[1..].iter().map(|r| has(r, "time").num().unwrap()).collect();
    assert!(times.is_sorted(), "times never decrease");
    let schemas = has(has(&recs[0], "trace"), "event_schemas").arr().unwrap();
    assert!(schemas.contains(&Json::Str(HTTP3_EVENT_SCHEMA.into())));
    assert_eq!(HTTP3_EVENT_SCHEMA, "urn:ietf:params:qlog:events:http3-13");
    let at =
        recs.iter().position(|r| r.get("name").and_then(Json::str) == Some("http3:frame_created"));
    let at = at.expect("the event is in the log");
    assert_eq!(has(&recs[at], "data"), &Parser::parse(FRAME.as_bytes()).unwrap());
    assert!(at > 1 && at + 1 < recs.len(), "between transport events");
    // Copied verbatim, within the usual record framing.
    let text = String::from_utf8(sink.contents()).unwrap();
    assert!(text.contains(&format!(r#""name":"http3:frame_created","data":{FRAME}}}"#)));
}

#[test]
fn the_qvis_format_files_http3_events_under_its_http_category() {
    let seed = crate::testing::pair::seed_from_env(4261);
    let (mut pair, sink) = logged_client(seed, QlogFormat::Qvis);
    let now = pair.now();
    assert!(pair.client().qlog_app_event(now, "http3:frame_created", FRAME));
    assert!(pair.client().qlog_app_event(now, "loglevel:info", r#"{"message":"hi"}"#));
    let recs = records(&sink.contents());
    assert!(has(&recs[0], "trace").get("event_schemas").is_none());
    let names: Vec<&str> = recs[1..].iter().filter_map(|r| has(r, "name").str()).collect();
    assert_eq!(&names[names.len() - 2..], ["http:frame_created", "loglevel:info"]);
    let last = &recs[recs.len() - 2];
    assert_eq!(has(last, "data"), &Parser::parse(FRAME.as_bytes()).unwrap());
}

#[test]
fn without_a_sink_app_events_cost_nothing_and_say_so() {
    let mut pair = Pair::new(crate::testing::pair::seed_from_env(4262));
    pair.handshake();
    let now = pair.now();
    assert!(!pair.client().qlog_enabled());
    assert!(!pair.client().qlog_app_event(now, "http3:frame_created", FRAME));
}

#[test]
fn data_that_would_break_the_records_is_dropped() {
    let good = [
        "{}",
        FRAME,
        r#"{"a":[[],{}],"b":"} ] { [ \" \\","c":{"d":[1,2.5e3,-0,true,null]}}"#,
        "{ \"a\" :\t1,\r\n\"b\":\"é😀\\u001e\" }",
    ];
    for data in good {
        assert!(json::is_object_text(data), "{data:?}");
    }
    let deep_ok = format!("{{\"a\":{}{}}}", "[".repeat(127), "]".repeat(127));
    assert!(json::is_object_text(&deep_ok));
    let too_deep = format!("{{\"a\":{}{}}}", "[".repeat(128), "]".repeat(128));
    let bad = [
        "",
        "[]",
        "\"x\"",
        " {}",
        "{} ",
        "{}{}",
        "{}\u{1e}{}",
        "{",
        "{\"a\":[}",
        "{\"a\":{]}",
        "{\"a\":\"}",
        "{\"a\":\"\\\"}",
        "{\"a\":\"\n\"}",
        "{\"a\":\"\u{1e}\"}",
        "{\"a\":1}\n",
        "{\"é\":1,é:2}",
        "{\"a\":\u{7f}}",
        too_deep.as_str(),
    ];
    for data in bad {
        assert!(!json::is_object_text(data), "{data:?}");
    }

    let (mut pair, sink) =
        logged_client(crate::testing::pair::seed_from_env(4263), QlogFormat::Draft);
    let before = sink.contents();
    let now = pair.now();
    for data in bad {
        assert!(!pair.client().qlog_app_event(now, "http3:frame_created", data), "{data:?}");
    }
    assert_eq!(sink.contents(), before, "nothing written");
}

#[test]
fn keys_and_names_are_escaped_like_any_string() {
    let mut out = Vec::new();
    let mut w = JsonWriter::new(&mut out);
    w.begin_object();
    w.u64("a\"b", 1);
    w.end_object();
    assert_eq!(out, br#"{"a\"b":1}"#);

    let (mut pair, sink) =
        logged_client(crate::testing::pair::seed_from_env(4264), QlogFormat::Draft);
    let now = pair.now();
    assert!(pair.client().qlog_app_event(now, "x:\"odd\"\n", "{}"));
    let recs = records(&sink.contents());
    assert_eq!(has(recs.last().unwrap(), "name").str(), Some("x:\"odd\"\n"));
}
