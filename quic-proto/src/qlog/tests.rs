//! qlog records: JSON-SEQ framing, the header, event names and fields
//! against draft-ietf-quic-qlog-quic-events-13, and counts against the
//! connection's own statistics over a seeded handshake and transfer.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::events::{Event, RecoveryMetrics};
use super::json::{JsonWriter, write_str};
use super::*;
use crate::stream_id::Dir;
use crate::testing::pair::{Direction, Pair, PairBuilder, Verdict, payload};

mod app;

/// A parsed JSON value (a test-only parser: enough to check qlog).
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(key),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
    fn arr(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(m) => m.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn parse(text: &[u8]) -> Result<Json, String> {
        let mut p = Parser { s: text, i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing bytes at {}", p.i));
        }
        Ok(v)
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.string()? else { unreachable!() };
                    self.eat(b':')?;
                    let v = self.value()?;
                    if m.insert(k.clone(), v).is_some() {
                        return Err(format!("duplicate key {k}"));
                    }
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(_) => self.number(),
            None => Err("unexpected end".into()),
        }
    }
    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at {}", self.i))
        }
    }
    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i > s
        };
        if !digits(self) {
            return Err(format!("bad number at {start}"));
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(format!("bad fraction at {start}"));
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(format!("bad exponent at {start}"));
            }
        }
        let text = core::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        text.parse().map(Json::Num).map_err(|e| format!("{e}"))
    }
    fn string(&mut self) -> Result<Json, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else { return Err("unterminated string".into()) };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = core::str::from_utf8(&self.s[self.i..self.i + 4])
                                .map_err(|e| e.to_string())?;
                            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            self.i += 4;
                            let ch = char::from_u32(code).ok_or("bad \\u")?;
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        _ => return Err("bad escape".into()),
                    }
                }
                c if c < 0x20 => return Err("raw control character in string".into()),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map(Json::Str).map_err(|e| e.to_string())
    }
}

/// Splits JSON-SEQ into records, checking each one's framing.
fn records(bytes: &[u8]) -> Vec<Json> {
    assert_eq!(bytes.first(), Some(&RECORD_SEPARATOR), "the log starts with a record");
    bytes[1..]
        .split(|b| *b == RECORD_SEPARATOR)
        .map(|r| {
            assert_eq!(r.last(), Some(&b'\n'), "every record ends with a line feed");
            Parser::parse(r).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(r)))
        })
        .collect()
}

#[test]
fn strings_are_escaped_as_rfc8259_requires() {
    let mut out = Vec::new();
    write_str(&mut out, "a\"b\\c\nd\u{1}e\u{7f}é😀");
    assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001e\\u007fé😀\"".as_bytes());
    assert_eq!(Parser::parse(&out).unwrap(), Json::Str("a\"b\\c\nd\u{1}e\u{7f}é😀".into()));
}

#[test]
fn numbers_and_nesting_are_valid_json() {
    let mut out = Vec::new();
    let mut w = JsonWriter::new(&mut out);
    w.begin_object();
    w.f64("a", 0.000_001);
    w.f64("b", f64::NAN);
    w.f64("c", 1e21);
    w.u64("d", u64::MAX);
    w.array("e");
    w.begin_array();
    w.u64_element(1);
    w.end_array();
    w.begin_object();
    w.end_object();
    w.end_array();
    w.end_object();
    let v = Parser::parse(&out).unwrap();
    assert_eq!(v.get("a").and_then(Json::num), Some(0.000_001));
    assert_eq!(v.get("b").and_then(Json::num), Some(0.0));
    assert_eq!(v.get("c").and_then(Json::num), Some(1e21));
    assert_eq!(v.get("e").and_then(Json::arr).map(<[Json]>::len), Some(2));
    assert_eq!(v.get("d").and_then(Json::num), Some(u64::MAX as f64));
}

#[test]
fn integers_and_milliseconds_are_written_exactly() {
    let mut out = Vec::new();
    let mut w = JsonWriter::new(&mut out);
    w.begin_object();
    for (key, v) in [("a", 0), ("b", 7), ("c", 10), ("d", 1_234_567_890)] {
        w.u64(key, v);
    }
    for (key, nanos) in [
        ("m0", 0),
        ("m1", 1),
        ("m2", 1_500_000),
        ("m3", 42_000_000),
        ("m4", 12_345_678_901),
        ("m5", 100_000),
        ("m6", u64::MAX),
    ] {
        w.millis(key, nanos);
    }
    w.end_object();
    let text = String::from_utf8(out.clone()).unwrap();
    assert_eq!(
        text,
        concat!(
            r#"{"a":0,"b":7,"c":10,"d":1234567890,"m0":0,"m1":0.000001,"m2":1.5,"m3":42,"#,
            r#""m4":12345.678901,"m5":0.1,"m6":18446744073709.551615}"#
        )
    );
    Parser::parse(&out).unwrap();
}

#[test]
fn strings_without_escapes_are_copied_whole_and_mixed_ones_in_order() {
    for s in ["", "plain", "quic:packet_sent", "\"", "a\"", "\"a", "x\ty\u{1f}z", "é\u{0}é"] {
        let mut out = Vec::new();
        write_str(&mut out, s);
        assert_eq!(Parser::parse(&out).unwrap(), Json::Str(s.into()), "{s:?}");
    }
}

#[test]
fn file_name_is_odcid_and_vantage() {
    let odcid = ConnectionId::from_slice(&[0xab, 0x01, 0xff]).unwrap();
    assert_eq!(file_name(&odcid, Side::Client), "ab01ff_client.sqlog");
    assert_eq!(file_name(&odcid, Side::Server), "ab01ff_server.sqlog");
}

#[test]
fn recovery_metrics_report_only_changes() {
    let sink = VecSink::new();
    let odcid = ConnectionId::from_slice(&[1; 8]).unwrap();
    let mut q = ConnectionQlog::new(
        Box::new(sink.clone()),
        Side::Client,
        &odcid,
        Instant::ZERO,
        QlogFormat::Draft,
    );
    let m = RecoveryMetrics {
        smoothed_rtt: Some(333.0),
        congestion_window: Some(12_000),
        bytes_in_flight: Some(0),
        ..Default::default()
    };
    let t = Instant::from_millis(1);
    q.sync_recovery(t, m, CongestionState::SlowStart, None);
    q.sync_recovery(t, m, CongestionState::SlowStart, None);
    let m2 = RecoveryMetrics { bytes_in_flight: Some(1200), ..m };
    let pto = LossTimer {
        deadline: Instant::from_millis(5),
        kind: LossTimerKind::Probe,
        space: SpaceId::Handshake,
    };
    q.sync_recovery(t, m2, CongestionState::SlowStart, Some(pto));
    q.sync_recovery(t, m2, CongestionState::SlowStart, None);
    let recs = records(&sink.contents());
    let names: Vec<_> = recs[1..].iter().map(|r| r.get("name").unwrap().str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "quic:recovery_metrics_updated",
            "quic:congestion_state_updated",
            "quic:recovery_metrics_updated",
            "quic:timer_updated",
            "quic:timer_updated",
        ]
    );
    assert_eq!(recs[3].get("data").unwrap().keys(), ["bytes_in_flight"]);
    let set = recs[4].get("data").unwrap();
    assert_eq!(set.get("event_type").and_then(Json::str), Some("set"));
    assert_eq!(set.get("delta").and_then(Json::num), Some(4.0));
    assert_eq!(set.get("timer_type").and_then(Json::str), Some("pto"));
    assert_eq!(set.get("packet_number_space").and_then(Json::str), Some("handshake"));
    let cancelled = recs[5].get("data").unwrap();
    assert_eq!(cancelled.get("event_type").and_then(Json::str), Some("cancelled"));
    assert_eq!(cancelled.get("timer_type").and_then(Json::str), Some("pto"));
    assert_eq!(cancelled.get("packet_number_space").and_then(Json::str), Some("handshake"));
    let _ = Event::ConnectionStateUpdated { old: None, new: events::ConnectionState::Closed };
}

// ----- a connection's whole log -----

fn has<'a>(data: &'a Json, key: &str) -> &'a Json {
    data.get(key).unwrap_or_else(|| panic!("missing {key} in {data:?}"))
}

fn one_of(data: &Json, key: &str, allowed: &[&str]) {
    let v = has(data, key).str().unwrap_or_else(|| panic!("{key} not a string in {data:?}"));
    assert!(allowed.contains(&v), "{key} = {v:?} is not one of {allowed:?}");
}

fn is_num(data: &Json, key: &str) {
    assert!(has(data, key).num().is_some(), "{key} is not a number in {data:?}");
}

fn is_hex(data: &Json, key: &str) {
    let v = has(data, key).str().unwrap_or_else(|| panic!("{key} not a string"));
    assert!(v.len().is_multiple_of(2) && v.bytes().all(|b| b.is_ascii_hexdigit()), "{key} = {v:?}");
}

const PACKET_TYPES: &[&str] = &[
    "initial",
    "handshake",
    "0RTT",
    "1RTT",
    "retry",
    "version_negotiation",
    "stateless_reset",
    "unknown",
];
const KEY_TYPES: &[&str] = &[
    "server_initial_secret",
    "client_initial_secret",
    "server_handshake_secret",
    "client_handshake_secret",
    "server_0rtt_secret",
    "client_0rtt_secret",
    "server_1rtt_secret",
    "client_1rtt_secret",
];
const FRAME_TYPES: &[&str] = &[
    "padding",
    "ping",
    "ack",
    "reset_stream",
    "stop_sending",
    "crypto",
    "new_token",
    "stream",
    "max_data",
    "max_stream_data",
    "max_streams",
    "data_blocked",
    "stream_data_blocked",
    "streams_blocked",
    "new_connection_id",
    "retire_connection_id",
    "path_challenge",
    "path_response",
    "connection_close",
    "handshake_done",
    "datagram",
];

fn check_header(data: &Json) {
    let h = has(data, "header");
    one_of(h, "packet_type", PACKET_TYPES);
    if let Some(pn) = h.get("packet_number") {
        assert!(pn.num().is_some());
    }
}

fn check_frame(f: &Json) {
    one_of(f, "frame_type", FRAME_TYPES);
    match has(f, "frame_type").str().unwrap() {
        "stream" => {
            is_num(f, "stream_id");
            is_num(f, "offset");
            assert!(matches!(has(f, "fin"), Json::Bool(_)));
            is_num(has(f, "raw"), "length");
        }
        "crypto" => {
            is_num(f, "offset");
            is_num(has(f, "raw"), "length");
        }
        "ack" => {
            let ranges = has(f, "acked_ranges").arr().unwrap();
            assert!(!ranges.is_empty());
            for r in ranges {
                let r = r.arr().unwrap();
                assert!((1..=2).contains(&r.len()) && r.iter().all(|n| n.num().is_some()));
            }
            is_num(f, "ack_delay");
        }
        "max_data" | "max_stream_data" | "max_streams" => is_num(f, "maximum"),
        "new_connection_id" => {
            is_num(f, "sequence_number");
            is_num(f, "retire_prior_to");
            is_hex(f, "connection_id");
        }
        "connection_close" => one_of(f, "error_space", &["transport", "application"]),
        _ => {}
    }
}

/// Checks one event's `data` against the draft's definition of `name`.
fn check_event(name: &str, data: &Json) {
    match name {
        "quic:connection_started" => {
            assert!(matches!(has(data, "local"), Json::Obj(_)));
            assert!(matches!(has(data, "remote"), Json::Obj(_)));
        }
        "quic:connection_state_updated" => one_of(
            data,
            "new",
            &[
                "attempted",
                "handshake_started",
                "handshake_complete",
                "handshake_confirmed",
                "closing",
                "draining",
                "closed",
            ],
        ),
        "quic:parameters_set" => {
            one_of(data, "initiator", &["local", "remote"]);
            is_num(data, "initial_max_data");
            is_hex(data, "initial_source_connection_id");
        }
        "quic:version_information" => is_hex(data, "chosen_version"),
        "quic:alpn_information" => is_hex(has(data, "chosen_alpn"), "byte_value"),
        "quic:packet_sent" | "quic:packet_received" => {
            check_header(data);
            is_num(has(data, "header"), "packet_number");
            is_num(has(data, "raw"), "length");
            // The payload (frames only) leaves room for a header and the
            // 16-byte AEAD tag.
            let raw = has(data, "raw");
            let (length, payload) = (raw.get("length"), raw.get("payload_length"));
            let (length, payload) = (length.and_then(Json::num), payload.and_then(Json::num));
            let header = length.unwrap() - payload.expect("raw.payload_length") - 16.0;
            assert!((1.0..=200.0).contains(&header), "header length {header}");
            let frames = has(data, "frames").arr().unwrap();
            assert!(!frames.is_empty(), "a packet carries frames");
            frames.iter().for_each(check_frame);
        }
        "quic:packet_dropped" => {
            if data.get("header").is_some() {
                check_header(data);
            }
            one_of(
                data,
                "trigger",
                &[
                    "internal_error",
                    "rejected",
                    "unsupported",
                    "invalid",
                    "duplicate",
                    "connection_unknown",
                    "decryption_failure",
                    "key_unavailable",
                    "general",
                ],
            );
        }
        "quic:packets_acked" => {
            one_of(data, "packet_number_space", &["initial", "handshake", "application_data"]);
            assert!(!has(data, "packet_numbers").arr().unwrap().is_empty());
        }
        "quic:packet_lost" => {
            check_header(data);
            is_num(has(data, "header"), "packet_number");
            one_of(data, "trigger", &["reordering_threshold", "time_threshold", "pto_expired"]);
        }
        "quic:packet_buffered" => {
            check_header(data);
            is_num(has(data, "raw"), "length");
            one_of(data, "trigger", &["backpressure", "keys_unavailable"]);
        }
        "quic:recovery_parameters_set" => {
            assert_eq!(has(data, "reordering_threshold").num(), Some(3.0));
            assert_eq!(has(data, "time_threshold").num(), Some(1.125));
            assert_eq!(has(data, "timer_granularity").num(), Some(1.0));
            assert_eq!(has(data, "initial_rtt").num(), Some(333.0));
            for k in ["max_datagram_size", "initial_congestion_window"] {
                is_num(data, k);
            }
            assert_eq!(has(data, "persistent_congestion_threshold").num(), Some(3.0));
        }
        "quic:recovery_metrics_updated" => {
            const FIELDS: &[&str] = &[
                "min_rtt",
                "smoothed_rtt",
                "latest_rtt",
                "rtt_variance",
                "pto_count",
                "congestion_window",
                "bytes_in_flight",
                "ssthresh",
                "packets_in_flight",
                "pacing_rate",
            ];
            let keys = data.keys();
            assert!(!keys.is_empty(), "at least one metric");
            for k in keys {
                assert!(FIELDS.contains(&k), "unknown metric {k}");
                is_num(data, k);
            }
        }
        "quic:congestion_state_updated" => {
            has(data, "new").str().unwrap();
        }
        "quic:key_updated" | "quic:key_discarded" => {
            one_of(data, "key_type", KEY_TYPES);
            one_of(data, "trigger", &["tls", "remote_update", "local_update"]);
        }
        "quic:connection_id_updated" => one_of(data, "initiator", &["local", "remote"]),
        "quic:stream_state_updated" => {
            is_num(data, "stream_id");
            one_of(data, "new", &["idle", "open", "closed"]);
            one_of(data, "stream_side", &["sending", "receiving"]);
            if data.get("stream_type").is_some() {
                one_of(data, "stream_type", &["unidirectional", "bidirectional"]);
            }
            if data.get("trigger").is_some() {
                one_of(data, "trigger", &["local", "remote"]);
            }
        }
        "quic:timer_updated" => {
            one_of(data, "event_type", &["set", "expired", "cancelled"]);
            one_of(data, "timer_type", &["ack", "pto"]);
            one_of(data, "packet_number_space", &["initial", "handshake", "application_data"]);
            if data.get("event_type").and_then(Json::str) == Some("set") {
                is_num(data, "delta");
            }
        }
        "quic:connection_closed" => {
            if data.get("initiator").is_some() {
                one_of(data, "initiator", &["local", "remote"]);
            }
            one_of(
                data,
                "trigger",
                &[
                    "idle_timeout",
                    "application",
                    "error",
                    "version_mismatch",
                    "stateless_reset",
                    "aborted",
                    "unspecified",
                ],
            );
        }
        other => panic!("unexpected event {other}"),
    }
}

/// What qvis needs to accept a file: `qlog_version` one of the versions it
/// knows, `qlog_format` "JSON-SEQ" and `trace` in the header, and (for a
/// file renamed to .qlog or .json, typed by its start) both field names
/// and "JSON-SEQ" within the first 1024 characters.
fn check_qvis_header(bytes: &[u8], header: &Json) {
    let version = has(header, "qlog_version").str().unwrap();
    assert!(["draft-02", "draft-02-RC1", "qlog-03-WIP", "0.3"].contains(&version));
    assert_eq!(has(header, "qlog_format").str(), Some("JSON-SEQ"));
    assert!(matches!(has(header, "trace"), Json::Obj(_)));
    let start = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).into_owned();
    for needle in ["qlog_version", "qlog_format", "JSON-SEQ"] {
        assert!(start.contains(needle), "{needle} in the first 1024 characters");
    }
}

/// Checks a whole log; returns the count of each event name.
fn check_log(bytes: &[u8], side: Side) -> BTreeMap<String, usize> {
    let recs = records(bytes);
    let header = &recs[0];
    assert_eq!(header.get("file_schema").and_then(Json::str), Some(FILE_SCHEMA));
    assert_eq!(
        header.get("serialization_format").and_then(Json::str),
        Some("application/qlog+json-seq")
    );
    check_qvis_header(bytes, header);
    let trace = has(header, "trace");
    let schemas = has(trace, "event_schemas").arr().unwrap();
    assert_eq!(
        schemas,
        [
            Json::Str("urn:ietf:params:qlog:events:quic-13".into()),
            Json::Str("urn:ietf:params:qlog:events:http3-13".into())
        ]
    );
    let vp = if side.is_client() { "client" } else { "server" };
    assert_eq!(has(trace, "vantage_point").get("type").and_then(Json::str), Some(vp));
    let reference = has(has(trace, "common_fields"), "reference_time");
    assert_eq!(reference.get("clock_type").and_then(Json::str), Some("monotonic"));
    assert_eq!(reference.get("epoch").and_then(Json::str), Some("unknown"));

    let mut counts = BTreeMap::new();
    let mut last = 0.0;
    for r in &recs[1..] {
        let time = has(r, "time").num().expect("time is a number");
        assert!(time >= last, "times never decrease: {time} after {last}");
        last = time;
        let name = has(r, "name").str().expect("name is a string");
        let data = has(r, "data");
        assert!(matches!(data, Json::Obj(_)));
        check_event(name, data);
        *counts.entry(name.to_owned()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn a_handshake_and_transfer_log_conforms_to_the_draft() {
    let seed = crate::testing::pair::seed_from_env(4242);
    let client_sink = VecSink::new();
    let server_sink = VecSink::new();
    let (c, s) = (client_sink.clone(), server_sink.clone());
    let mut pair = Pair::builder(seed)
        .client_endpoint(move |config| {
            let sink = c.clone();
            config.qlog(Arc::new(move |_, side| {
                assert_eq!(side, Side::Client);
                Some(Box::new(sink.clone()) as Box<dyn QlogSink>)
            }));
        })
        .server_endpoint(move |config| {
            let sink = s.clone();
            config.qlog(Arc::new(move |_, _| Some(Box::new(sink.clone()) as Box<dyn QlogSink>)));
        })
        .build();
    pair.handshake();
    let data = payload(200_000, seed);
    assert_eq!(pair.transfer(Side::Client, Dir::Bi, &data), data.to_vec());
    let data = payload(50_000, seed + 1);
    assert_eq!(pair.transfer(Side::Server, Dir::Uni, &data), data.to_vec());
    let now = pair.now();
    pair.client().close(now, crate::VarInt::from_u32(7), b"done \"now\"");
    pair.drive_until_drained(core::time::Duration::from_secs(60));

    for (side, sink) in [(Side::Client, &client_sink), (Side::Server, &server_sink)] {
        let counts = check_log(&sink.contents(), side);
        let stats = pair.conn(side).stats();
        let count = |n: &str| counts.get(n).copied().unwrap_or(0) as u64;
        assert_eq!(count("quic:packet_sent"), stats.packets_sent, "{side:?} packets sent");
        assert_eq!(count("quic:packet_received"), stats.packets_received, "{side:?} received");
        for name in [
            "quic:connection_started",
            "quic:parameters_set",
            "quic:version_information",
            "quic:alpn_information",
            "quic:recovery_parameters_set",
            "quic:recovery_metrics_updated",
            "quic:congestion_state_updated",
            "quic:key_updated",
            "quic:key_discarded",
            "quic:packets_acked",
            "quic:timer_updated",
            "quic:connection_closed",
            "quic:connection_state_updated",
        ] {
            assert!(count(name) > 0, "{side:?} logged no {name}");
        }
        assert_eq!(count("quic:parameters_set"), 2, "local and remote");
        assert_eq!(count("quic:connection_closed"), 1);
    }
    // The client saw the server's connection ID replace its random one.
    let client_log = String::from_utf8(client_sink.contents()).unwrap();
    assert!(client_log.contains("quic:connection_id_updated"));
    assert!(client_log.contains("\"reason\":\"done \\\"now\\\"\""));
}

#[test]
fn stream_frames_carry_id_offset_length_and_fin() {
    let seed = 4243;
    let sink = VecSink::new();
    let s2 = sink.clone();
    let mut pair = Pair::builder(seed)
        .client_endpoint(move |config| {
            let sink = s2.clone();
            config.qlog(Arc::new(move |_, _| Some(Box::new(sink.clone()) as Box<dyn QlogSink>)));
        })
        .build();
    pair.handshake();
    let data = Bytes::from_static(b"hello qlog");
    pair.transfer(Side::Client, Dir::Uni, &data);
    let recs = records(&sink.contents());
    let stream = recs
        .iter()
        .filter(|r| r.get("name").and_then(Json::str) == Some("quic:packet_sent"))
        .flat_map(|r| has(has(r, "data"), "frames").arr().unwrap().to_vec())
        .find(|f| f.get("frame_type").and_then(Json::str) == Some("stream"))
        .expect("a STREAM frame was sent");
    assert_eq!(stream.get("offset").and_then(Json::num), Some(0.0));
    assert_eq!(stream.get("fin"), Some(&Json::Bool(true)));
    assert_eq!(has(&stream, "raw").get("length").and_then(Json::num), Some(data.len() as f64));
}

#[test]
fn a_connection_without_a_sink_logs_nothing_and_still_works() {
    let mut pair = Pair::new(4244);
    pair.handshake();
    let data = payload(10_000, 1);
    assert_eq!(pair.transfer(Side::Client, Dir::Bi, &data), data.to_vec());
}

#[test]
fn stream_sides_log_open_and_closed() {
    let sink = VecSink::new();
    let s2 = sink.clone();
    let mut pair = Pair::builder(4245)
        .client_endpoint(move |config| {
            let sink = s2.clone();
            config.qlog(Arc::new(move |_, _| Some(Box::new(sink.clone()) as Box<dyn QlogSink>)));
        })
        .build();
    pair.handshake();
    let data = payload(3_000, 2);
    pair.transfer(Side::Client, Dir::Uni, &data);
    pair.drive_for(core::time::Duration::from_millis(500));
    let states: Vec<(String, String, String)> = records(&sink.contents())
        .iter()
        .filter(|r| r.get("name").and_then(Json::str) == Some("quic:stream_state_updated"))
        .map(|r| {
            let d = has(r, "data");
            one_of(d, "stream_type", &["unidirectional", "bidirectional"]);
            one_of(d, "trigger", &["local", "remote"]);
            is_num(d, "stream_id");
            let field = |k| has(d, k).str().unwrap().to_owned();
            (field("new"), field("stream_side"), field("trigger"))
        })
        .collect();
    let expect = |new: &str| (new.to_owned(), "sending".to_owned(), "local".to_owned());
    assert_eq!(states, vec![expect("open"), expect("closed")], "the client's uni stream");
}

#[test]
fn old_1rtt_keys_are_logged_as_discarded_after_a_key_update() {
    let sink = VecSink::new();
    let s2 = sink.clone();
    let mut pair = Pair::builder(4246)
        .client_endpoint(move |config| {
            let sink = s2.clone();
            config.qlog(Arc::new(move |_, _| Some(Box::new(sink.clone()) as Box<dyn QlogSink>)));
        })
        .build();
    pair.handshake();
    let data = payload(20_000, 3);
    pair.transfer(Side::Client, Dir::Uni, &data);
    let now = pair.now();
    assert!(pair.client().force_key_update(now));
    pair.transfer(Side::Client, Dir::Uni, &data);
    // The previous key goes about three PTOs after the update.
    pair.drive_for(core::time::Duration::from_secs(3));
    let discarded: Vec<Json> = records(&sink.contents())
        .into_iter()
        .filter(|r| r.get("name").and_then(Json::str) == Some("quic:key_discarded"))
        .filter(|r| has(has(r, "data"), "key_type").str() == Some("server_1rtt_secret"))
        .collect();
    assert_eq!(discarded.len(), 1, "the server's phase-0 key, once");
    let d = has(&discarded[0], "data");
    assert_eq!(d.get("key_phase").and_then(Json::num), Some(0.0));
    assert_eq!(has(d, "trigger").str(), Some("local_update"));
}

/// The events of `name` in a log, as their `data` objects.
fn data_of(bytes: &[u8], name: &str) -> Vec<Json> {
    records(bytes)
        .into_iter()
        .filter(|r| r.get("name").and_then(Json::str) == Some(name))
        .map(|r| has(&r, "data").clone())
        .collect()
}

fn logged_pair(seed: u64, sink: &VecSink, side: Side) -> PairBuilder {
    let mut builder = Pair::builder(seed);
    let s = sink.clone();
    let setup = move |config: &mut crate::endpoint::EndpointConfig| {
        let sink = s.clone();
        config.qlog(Arc::new(move |_, _| Some(Box::new(sink.clone()) as Box<dyn QlogSink>)));
    };
    match side {
        Side::Client => builder.client_endpoint(setup),
        Side::Server => builder.server_endpoint(setup),
    };
    builder
}

#[test]
fn losses_carry_their_trigger_and_timers_their_type_and_space() {
    let seed = crate::testing::pair::seed_from_env(4247);
    let sink = VecSink::new();
    let mut builder = logged_pair(seed, &sink, Side::Server);
    builder.links(|l| {
        l.latency(core::time::Duration::from_millis(20)).loss(0.05);
    });
    let mut pair = builder.build();
    pair.handshake();
    let data = payload(400_000, seed);
    assert_eq!(pair.transfer(Side::Server, Dir::Uni, &data), data.to_vec(), "seed {seed}");
    // Every event conforms (timer_updated with timer_type and space,
    // packet_lost with a trigger), and the counts still match the stats.
    let counts = check_log(&sink.contents(), Side::Server);
    let stats = pair.conn(Side::Server).stats();
    assert_eq!(counts.get("quic:packet_sent").copied().unwrap_or(0) as u64, stats.packets_sent);
    let lost = data_of(&sink.contents(), "quic:packet_lost");
    assert_eq!(lost.len() as u64, stats.packets_lost, "one packet_lost per loss, seed {seed}");
    let triggers: Vec<&str> = lost.iter().map(|d| has(d, "trigger").str().unwrap()).collect();
    assert!(triggers.contains(&"reordering_threshold"), "seed {seed}: {triggers:?}");
    let timers = data_of(&sink.contents(), "quic:timer_updated");
    let kinds = |ty: &str, event: &str| {
        timers.iter().any(|d| {
            d.get("timer_type").and_then(Json::str) == Some(ty)
                && d.get("event_type").and_then(Json::str) == Some(event)
        })
    };
    assert!(kinds("pto", "set"), "the probe timeout was armed");
    assert!(kinds("ack", "set"), "a time-threshold loss timer was armed, seed {seed}");
}

#[test]
fn packets_ahead_of_their_keys_are_logged_as_buffered_then_received() {
    let seed = 4248;
    let sink = VecSink::new();
    let mut pair = logged_pair(seed, &sink, Side::Client).build();
    // Strip the Initial from the server's first datagram: the Handshake
    // packet coalesced behind it reaches the client before the keys to
    // read it, which come with the server's retransmitted Initial.
    pair.set_hook(|d| {
        if d.direction == Direction::from_sender(Side::Server) && d.index == 0 {
            let initial = crate::packet::PartialDecode::parse(&d.data, 0, false).unwrap();
            let len = initial.packet_len();
            assert!(len < d.data.len(), "the server's first datagram coalesces its Handshake");
            d.data.drain(..len);
        }
        Verdict::Deliver
    });
    pair.handshake();
    let bytes = sink.contents();
    let counts = check_log(&bytes, Side::Client);
    let buffered = data_of(&bytes, "quic:packet_buffered");
    assert!(!buffered.is_empty(), "the early Handshake packets were buffered");
    for d in &buffered {
        assert_eq!(has(d, "header").get("packet_type").and_then(Json::str), Some("handshake"));
        assert_eq!(has(d, "trigger").str(), Some("keys_unavailable"));
    }
    // Buffered packets are logged again when they are finally read.
    let stats = pair.conn(Side::Client).stats();
    assert_eq!(counts["quic:packet_received"] as u64, stats.packets_received);
}

/// Checks and removes what qvis's dialect adds to a packet event: each
/// frame's `frame_size` (adding up to the payload qvis derives from
/// `raw.payload_length`, which counts the 16-byte AEAD tag), and `length`
/// beside `raw.length` in STREAM and CRYPTO frames.
fn undo_qvis_packet_fields(data: &mut BTreeMap<String, Json>) {
    let Some(Json::Obj(raw)) = data.get_mut("raw") else { panic!("raw") };
    let Some(Json::Num(payload)) = raw.get_mut("payload_length") else { panic!("payload_length") };
    *payload -= 16.0;
    let payload = *payload;
    let Some(Json::Arr(frames)) = data.get_mut("frames") else { panic!("frames") };
    let mut total = 0.0;
    for frame in frames {
        let Json::Obj(f) = frame else { panic!("frame object") };
        let Some(Json::Num(size)) = f.remove("frame_size") else { panic!("frame_size in {f:?}") };
        total += size;
        if matches!(f.get("frame_type").and_then(Json::str), Some("stream" | "crypto")) {
            let length = f.remove("length").expect("qvis's length");
            assert_eq!(Some(&length), f.get("raw").and_then(|r| r.get("length")));
        }
    }
    assert_eq!(total, payload, "frame sizes fill the payload");
}

/// A seeded handshake, transfers and close, logged by the client in `format`.
fn client_log(seed: u64, format: QlogFormat) -> Vec<u8> {
    let sink = VecSink::new();
    let s = sink.clone();
    let mut pair = Pair::builder(seed)
        .client_endpoint(move |config| {
            let sink = s.clone();
            config.qlog(Arc::new(move |_, _| Some(Box::new(sink.clone()) as Box<dyn QlogSink>)));
            config.qlog_format(format);
        })
        .links(|l| {
            l.latency(core::time::Duration::from_millis(10)).loss(0.03);
        })
        .build();
    pair.handshake();
    let data = payload(150_000, seed);
    assert_eq!(pair.transfer(Side::Server, Dir::Uni, &data), data.to_vec(), "seed {seed}");
    let now = pair.now();
    pair.client().close(now, crate::VarInt::from_u32(0), b"");
    pair.drive_until_drained(core::time::Duration::from_secs(60));
    sink.contents()
}

#[test]
fn the_qvis_format_is_the_same_log_under_qvis_names() {
    let seed = crate::testing::pair::seed_from_env(4249);
    let draft = records(&client_log(seed, QlogFormat::Draft));
    let bytes = client_log(seed, QlogFormat::Qvis);
    let qvis = records(&bytes);
    check_qvis_header(&bytes, &qvis[0]);
    assert!(qvis[0].get("trace").unwrap().get("event_schemas").is_none());
    // The same seeded run: record for record the same times and data,
    // under the qlog 0.3 names.
    assert_eq!(draft.len(), qvis.len(), "seed {seed}");
    let rename = |name: &str| -> &'static str {
        match name.strip_prefix("quic:").unwrap() {
            "connection_started" => "connectivity:connection_started",
            "connection_state_updated" => "connectivity:connection_state_updated",
            "connection_id_updated" => "connectivity:connection_id_updated",
            "connection_closed" => "connectivity:connection_closed",
            "parameters_set" => "transport:parameters_set",
            "version_information" => "transport:version_information",
            "alpn_information" => "transport:alpn_information",
            "packet_sent" => "transport:packet_sent",
            "packet_received" => "transport:packet_received",
            "packet_dropped" => "transport:packet_dropped",
            "packet_buffered" => "transport:packet_buffered",
            "packets_acked" => "transport:packets_acked",
            "stream_state_updated" => "transport:stream_state_updated",
            "packet_lost" => "recovery:packet_lost",
            "recovery_metrics_updated" => "recovery:metrics_updated",
            "recovery_parameters_set" => "recovery:parameters_set",
            "congestion_state_updated" => "recovery:congestion_state_updated",
            "timer_updated" => "recovery:loss_timer_updated",
            "key_updated" => "security:key_updated",
            "key_discarded" => "security:key_discarded",
            other => panic!("no qvis name for {other}"),
        }
    };
    let mut seen = BTreeMap::new();
    for (d, q) in draft[1..].iter().zip(&qvis[1..]) {
        let name = has(d, "name").str().unwrap();
        assert_eq!(has(q, "name").str(), Some(rename(name)));
        assert_eq!(has(q, "time"), has(d, "time"));
        let (Json::Obj(dd), Json::Obj(mut qd)) = (has(d, "data").clone(), has(q, "data").clone())
        else {
            panic!("data objects")
        };
        if name == "quic:parameters_set" {
            // qvis reads the side as `owner`.
            assert_eq!(qd.remove("owner"), dd.get("initiator").cloned());
        }
        if matches!(name, "quic:packet_sent" | "quic:packet_received") {
            undo_qvis_packet_fields(&mut qd);
        }
        assert_eq!(dd, qd, "{name}");
        *seen.entry(rename(name)).or_insert(0) += 1;
    }
    // What qvis's sequence diagram and congestion graph look up.
    for name in [
        "transport:packet_sent",
        "transport:packet_received",
        "transport:parameters_set",
        "recovery:metrics_updated",
        "recovery:packet_lost",
    ] {
        assert!(seen.contains_key(name), "seed {seed}: no {name}");
    }
}

/// A writer that takes `room` bytes, then fails; its flush fails if told.
struct Failing {
    room: usize,
    flush_fails: bool,
}

impl std::io::Write for Failing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::Error::other("disk full"));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.flush_fails { Err(std::io::Error::other("flush failed")) } else { Ok(()) }
    }
}

#[test]
fn writer_sink_reports_its_first_error_once_and_stops() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let mut sink = WriterSink::new(Failing { room: 10, flush_fails: true })
        .on_error(move |e| seen.lock().unwrap().push(e.to_string()));
    sink.write(b"\x1e{\"a\":1}\n");
    assert!(sink.error().is_none(), "the first record fits");
    sink.write(b"\x1e{\"b\":2}\n");
    sink.write(b"\x1e{\"c\":3}\n");
    assert_eq!(sink.error().map(ToString::to_string).as_deref(), Some("disk full"));
    drop(sink);
    // Once failed, the sink neither writes nor flushes again.
    assert_eq!(*errors.lock().unwrap(), ["disk full"]);

    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let mut sink = WriterSink::new(Failing { room: 100, flush_fails: true })
        .on_error(move |e| seen.lock().unwrap().push(e.to_string()));
    sink.write(b"\x1e{}\n");
    drop(sink);
    assert_eq!(*errors.lock().unwrap(), ["flush failed"], "the flush on drop is checked");
}
