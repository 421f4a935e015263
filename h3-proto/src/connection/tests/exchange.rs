//! Whole exchanges between two connections: requests, responses, bodies,
//! trailers, interim responses, priorities, CONNECT, cancellation.

use super::*;

#[test]
fn settings_are_exchanged_first() {
    let mut pair = Pair::new();
    let settings = pair.client.peer_settings().copied().expect("server SETTINGS arrived");
    assert_eq!(settings.qpack_max_table_capacity.into_inner(), 4096);
    assert_eq!(settings.max_field_section_size, Some(varint(64 << 10)));
    assert!(matches!(pair.take_client_events().as_slice(), [Event::Settings(_)]));
    assert!(matches!(pair.take_server_events().as_slice(), [Event::Settings(_)]));
}

#[test]
fn get_with_body_and_trailers() {
    let mut pair = Pair::new();
    pair.take_client_events();
    pair.take_server_events();
    let id = pair.get("/index.html");
    let events = pair.take_server_events();
    let [Event::Headers { stream, fields, .. }, Event::Finished(done)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!((*stream, *done), (id, id));
    assert_eq!(fields[0], field(":method", "GET"));
    assert!(fields.contains(&field(":path", "/index.html")));

    let response = response_fields(200, &[field("content-length", "11")]);
    pair.server.send_response(&mut pair.st, id, &response, false).unwrap();
    assert_eq!(pair.server.send_data(&mut pair.st, id, b"hello ").unwrap(), 6);
    assert_eq!(pair.server.send_data(&mut pair.st, id, b"world").unwrap(), 5);
    pair.server.send_trailers(&mut pair.st, id, &[field("x-checksum", "abc")]).unwrap();
    pair.pump();
    let events = pair.take_client_events();
    assert!(
        matches!(&events[0], Event::Headers { stream, fields, end: false }
        if *stream == id && fields[0] == field(":status", "200")),
        "{events:?}"
    );
    assert_eq!(events[1], Event::Data(id));
    assert_eq!(pair.read_body(Side::Client, id), b"hello world");
    let events = pair.take_client_events();
    assert_eq!(
        events,
        vec![
            Event::Trailers { stream: id, fields: vec![field("x-checksum", "abc")] },
            Event::Finished(id)
        ]
    );
    assert!(pair.client.is_idle() && pair.server.is_idle(), "both directions done: state dropped");
}

#[test]
fn post_body_arrives_in_order_across_many_frames() {
    let mut pair = Pair::new();
    let fields = request_fields(
        "POST",
        "https",
        "example.com",
        "/upload",
        &[field("content-length", "300000")],
    );
    let id = pair.client.send_request(&mut pair.ct, &fields, false).unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut sent = 0;
    while sent < body.len() {
        sent += pair.client.send_data(&mut pair.ct, id, &body[sent..]).unwrap();
    }
    pair.client.finish(&mut pair.ct, id).unwrap();
    pair.pump();
    assert_eq!(pair.read_body(Side::Server, id), body);
    assert!(pair.take_server_events().contains(&Event::Finished(id)));
}

#[test]
fn interim_responses_come_before_the_final_one() {
    let mut pair = Pair::new();
    let id = pair.get("/");
    pair.server
        .send_response(&mut pair.st, id, &response_fields(103, &[field("link", "</a.css>")]), false)
        .unwrap();
    assert_eq!(
        pair.server.send_response(&mut pair.st, id, &response_fields(100, &[]), true),
        Err(SendError::InvalidState("an interim response cannot end the stream"))
    );
    assert!(matches!(
        pair.server.send_data(&mut pair.st, id, b"x"),
        Err(SendError::InvalidState(_))
    ));
    pair.server.send_response(&mut pair.st, id, &response_fields(204, &[]), true).unwrap();
    pair.pump();
    let statuses: Vec<Vec<u8>> = pair
        .take_client_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Headers { fields, .. } => Some(fields[0].value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![b"103".to_vec(), b"204".to_vec()]);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
//= type=test
//# A response that is defined as never having content, even
//# when a Content-Length is present, can have a non-zero Content-Length header
//# field even though no content is included in DATA frames.
#[test]
fn head_response_may_declare_a_length_without_content() {
    let mut pair = Pair::new();
    let fields = request_fields("HEAD", "https", "example.com", "/big", &[]);
    let id = pair.client.send_request(&mut pair.ct, &fields, true).unwrap();
    pair.pump();
    let response = response_fields(200, &[field("content-length", "1000000")]);
    pair.server.send_response(&mut pair.st, id, &response, true).unwrap();
    pair.pump();
    let events = pair.take_client_events();
    assert!(events.contains(&Event::Finished(id)), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::StreamFailed { .. })));
}

#[test]
fn the_qpack_dynamic_table_carries_repeated_fields() {
    let mut pair = Pair::new();
    for i in 0..5 {
        let extra =
            [field("user-agent", "quic-proto-test/1.0"), field("x-request", "same every time")];
        let fields = request_fields("GET", "https", "example.com", &format!("/{i}"), &extra);
        let id = pair.client.send_request(&mut pair.ct, &fields, true).unwrap();
        pair.pump();
        pair.server.send_response(&mut pair.st, id, &response_fields(200, &extra), true).unwrap();
        pair.pump();
    }
    assert!(pair.client.qpack_encoder_capacity() > 0 && pair.server.qpack_encoder_capacity() > 0);
    assert!(pair.server.qpack_decoder_inserts() > 0, "the client's encoder inserted");
    assert!(pair.client.qpack_decoder_inserts() > 0, "the server's encoder inserted");
    let ok = pair.take_client_events().iter().filter(|e| matches!(e, Event::Finished(_))).count();
    assert_eq!(ok, 5);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.1
//= type=test
//# Client SHOULD use the error code H3_REQUEST_CANCELLED to cancel requests.
#[test]
fn client_cancel_resets_both_ways_with_request_cancelled() {
    let mut pair = Pair::new();
    let fields = request_fields("POST", "https", "example.com", "/", &[]);
    let id = pair.client.send_request(&mut pair.ct, &fields, false).unwrap();
    pair.pump();
    pair.client.cancel(&mut pair.ct, id, ErrorCode::H3_REQUEST_CANCELLED);
    pair.pump();
    let events = pair.take_server_events();
    assert!(
        events.contains(&Event::Reset { stream: id, code: ErrorCode::H3_REQUEST_CANCELLED }),
        "{events:?}"
    );
    assert_eq!(pair.st.stopped(id), Some(ErrorCode::H3_REQUEST_CANCELLED.to_varint()));
}

#[test]
fn stop_sending_resets_the_response_and_is_reported() {
    let mut pair = Pair::new();
    let id = pair.get("/");
    pair.server.send_response(&mut pair.st, id, &response_fields(200, &[]), false).unwrap();
    pair.server.handle_stopped(&mut pair.st, id, ErrorCode::H3_REQUEST_CANCELLED.to_varint());
    let events: Vec<Event> = std::iter::from_fn(|| pair.server.poll_event()).collect();
    assert!(events.contains(&Event::Stopped { stream: id, code: ErrorCode::H3_REQUEST_CANCELLED }));
    assert!(pair.server.is_idle());
}

#[test]
fn priorities_from_the_field_and_from_priority_update() {
    let mut pair = Pair::new();
    let fields = request_fields("GET", "https", "example.com", "/", &[field("priority", "u=0")]);
    let id = pair.client.send_request(&mut pair.ct, &fields, false).unwrap();
    pair.pump();
    assert_eq!(pair.st.priority(id), Some(7), "urgency 0 is the highest transport priority");
    pair.client.set_priority(&mut pair.ct, id, Priority { urgency: 6, incremental: true }).unwrap();
    pair.pump();
    assert_eq!(pair.st.priority(id), Some(1));
}

#[test]
fn priority_update_before_its_request_applies_when_it_opens() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.control_frame(&Frame::PriorityUpdate {
        element_id: varint(0),
        field_value: b"u=1",
        push: false,
    });
    raw.pump();
    let bytes = raw.headers(&request_fields("GET", "https", "a", "/", &[field("priority", "u=7")]));
    let id = raw.request(&bytes, true);
    raw.pump();
    assert_eq!(raw.ct.priority(id), Some(6), "the PRIORITY_UPDATE wins over the field");
}

#[test]
fn connect_tunnels_data_both_ways() {
    let mut pair = Pair::new();
    let fields = vec![field(":method", "CONNECT"), field(":authority", "example.com:443")];
    let id = pair.client.send_request(&mut pair.ct, &fields, false).unwrap();
    pair.pump();
    let events = pair.take_server_events();
    assert!(events.iter().any(|e| matches!(e, Event::Headers { stream, .. } if *stream == id)));
    pair.server.send_response(&mut pair.st, id, &response_fields(200, &[]), false).unwrap();
    pair.client.send_data(&mut pair.ct, id, b"ping").unwrap();
    pair.pump();
    pair.server.send_data(&mut pair.st, id, b"pong").unwrap();
    pair.pump();
    assert_eq!(pair.read_body(Side::Server, id), b"ping");
    assert_eq!(pair.read_body(Side::Client, id), b"pong");
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.4
//= type=test
//# Receipt of any other known frame type MUST be
//# treated as a connection error of type H3_FRAME_UNEXPECTED.
#[test]
fn headers_inside_a_connect_tunnel_are_unexpected() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    let mut bytes = raw.headers(&[field(":method", "CONNECT"), field(":authority", "a:1")]);
    bytes.extend(frame_bytes(FrameType::DATA, b"tunnel"));
    bytes.extend(raw.headers(&[field("x-trailer", "1")]));
    let id = raw.request(&bytes, false);
    raw.pump();
    let mut buf = [0u8; 64];
    assert_eq!(raw.conn.recv_data(&mut raw.ct, id, &mut buf), 6);
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

#[test]
fn send_calls_refuse_what_does_not_fit() {
    let mut pair = Pair::new();
    assert!(matches!(
        pair.server.send_request(&mut pair.st, &get_fields(), true),
        Err(SendError::InvalidState(_))
    ));
    let bad = vec![field(":method", "GET"), field(":path", "/")];
    assert!(matches!(
        pair.client.send_request(&mut pair.ct, &bad, true),
        Err(SendError::Malformed(_))
    ));
    assert!(matches!(
        pair.client.send_response(&mut pair.ct, stream(0), &response_fields(200, &[]), true),
        Err(SendError::InvalidState(_))
    ));
    let id = pair.get("/");
    pair.server.send_response(&mut pair.st, id, &response_fields(200, &[]), true).unwrap();
    assert!(matches!(
        pair.server.send_data(&mut pair.st, id, b"late"),
        Err(SendError::InvalidState(_))
    ));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
//= type=test
//# The error
//# code H3_NO_ERROR SHOULD be used when requesting that the client stop sending on
//# the request stream.
#[test]
fn a_response_finished_before_the_request_stops_its_reading() {
    let mut pair = Pair::new();
    let fields = request_fields("POST", "https", "example.com", "/", &[]);
    let id = pair.client.send_request(&mut pair.ct, &fields, false).unwrap();
    pair.client.send_data(&mut pair.ct, id, b"part of a body").unwrap();
    pair.pump();
    pair.server.send_response(&mut pair.st, id, &response_fields(413, &[]), true).unwrap();
    assert!(pair.server.is_idle(), "nothing more is read or sent");
    assert_eq!(pair.ct.stopped(id), Some(ErrorCode::H3_NO_ERROR.to_varint()));
    pair.pump();
    // The client still gets the whole response.
    let events = pair.take_client_events();
    assert!(events.contains(&Event::Finished(id)), "{events:?}");
}

#[test]
fn critical_streams_go_before_requests_of_any_urgency() {
    let mut pair = Pair::new();
    let id = pair.get("/");
    assert_eq!(pair.st.priority(id), Some(Priority::DEFAULT.transport_priority()));
    for index in 0..3 {
        let critical = StreamId::new(Side::Server, Dir::Uni, index).unwrap();
        assert!(
            pair.st.priority(critical)
                > Some(Priority { urgency: 0, incremental: false }.transport_priority())
        );
    }
}
