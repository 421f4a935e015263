//! Server push (refused by default, handled when enabled) and GOAWAY's
//! graceful drain.

use super::*;

#[test]
fn push_is_refused_without_max_push_id() {
    let mut pair = Pair::new();
    let id = pair.get("/");
    let promised = request_fields("GET", "https", "example.com", "/style.css", &[]);
    assert_eq!(
        pair.server.push_promise(&mut pair.st, id, &promised),
        Err(SendError::InvalidState("the client allows no more pushes"))
    );
}

#[test]
fn push_when_the_client_enables_it() {
    let mut client = Config::default();
    client.max_pushes(2);
    let mut pair = Pair::with(client, Config::default());
    let id = pair.get("/");
    let promised = request_fields("GET", "https", "example.com", "/style.css", &[]);
    let (push_id, push_stream) = pair.server.push_promise(&mut pair.st, id, &promised).unwrap();
    assert_eq!(push_id, 0);
    pair.server
        .send_response(&mut pair.st, push_stream, &response_fields(200, &[]), false)
        .unwrap();
    pair.server.send_data(&mut pair.st, push_stream, b"body{}").unwrap();
    pair.server.finish(&mut pair.st, push_stream).unwrap();
    pair.server.send_response(&mut pair.st, id, &response_fields(200, &[]), true).unwrap();
    pair.pump();
    let events = pair.take_client_events();
    assert!(
        events.contains(&Event::PushPromise { stream: id, push_id: 0, fields: promised.clone() }),
        "{events:?}"
    );
    assert!(events.contains(&Event::PushStream { push_id: 0, stream: push_stream }), "{events:?}");
    assert_eq!(pair.read_body(Side::Client, push_stream), b"body{}");
    assert!(pair.take_client_events().contains(&Event::Finished(push_stream)));

    pair.server.push_promise(&mut pair.st, id, &promised).map(drop).unwrap_or_else(|e| {
        // The request stream finished: the second push needs another one.
        assert_eq!(e, SendError::InvalidState("no such stream"));
    });
    let id = pair.get("/again");
    assert!(pair.server.push_promise(&mut pair.st, id, &promised).is_ok(), "push ID 1 is allowed");
    assert_eq!(
        pair.server.push_promise(&mut pair.st, id, &promised),
        Err(SendError::InvalidState("the client allows no more pushes"))
    );
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.6
//= type=test
//# A client MUST
//# treat receipt of a push stream as a connection error of type H3_ID_ERROR
//# when no MAX_PUSH_ID frame has been sent or when the stream
//# references a push ID that is greater than the maximum push ID.
#[test]
fn a_push_stream_beyond_max_push_id_is_an_id_error() {
    let mut raw = Raw::against(Side::Client, Config::default());
    raw.control();
    raw.uni(StreamType::PUSH, &[0x00]);
    raw.assert_closed(ErrorCode::H3_ID_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.5
//= type=test
//# A client MUST treat receipt of a
//# PUSH_PROMISE frame that contains a larger push ID than the client has advertised
//# as a connection error of H3_ID_ERROR.
#[test]
fn a_promise_beyond_max_push_id_is_an_id_error() {
    let mut config = Config::default();
    config.max_pushes(1);
    let mut raw = Raw::against(Side::Client, config);
    raw.control();
    raw.pump();
    let id = raw.conn.send_request(&mut raw.ct, &get_fields(), true).unwrap();
    raw.pump();
    let section = raw.section(&get_fields());
    let mut bytes = Vec::new();
    Frame::PushPromise { push_id: varint(1), field_section: &section }.encode(&mut bytes);
    raw.t.write(id, &bytes).unwrap();
    raw.assert_closed(ErrorCode::H3_ID_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.2
//= type=test
//# If a client detects
//# that a push stream header includes a push ID that was used in another push
//# stream header, the client MUST treat this as a connection error of type
//# H3_ID_ERROR.
#[test]
fn a_second_push_stream_for_one_push_id_is_an_id_error() {
    let mut config = Config::default();
    config.max_pushes(4);
    let mut raw = Raw::against(Side::Client, config);
    raw.control();
    raw.uni(StreamType::PUSH, &[0x02]);
    raw.uni(StreamType::PUSH, &[0x02]);
    raw.assert_closed(ErrorCode::H3_ID_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.2
//= type=test
//# Only servers can push; if a server receives a client-initiated push stream, this
//# MUST be treated as a connection error of type H3_STREAM_CREATION_ERROR.
#[test]
fn a_client_push_stream_is_a_creation_error() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.uni(StreamType::PUSH, &[0x00]);
    raw.assert_closed(ErrorCode::H3_STREAM_CREATION_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.7
//= type=test
//# A server MUST NOT send a MAX_PUSH_ID frame.  A client MUST treat the receipt of a
//# MAX_PUSH_ID frame as a connection error of type H3_FRAME_UNEXPECTED.
#[test]
fn max_push_id_from_a_server_is_unexpected() {
    let mut raw = Raw::against(Side::Client, Config::default());
    raw.control();
    raw.control_frame(&Frame::MaxPushId(varint(3)));
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.7
//= type=test
//# A MAX_PUSH_ID frame cannot reduce the maximum push ID; receipt of a MAX_PUSH_ID
//# frame that contains a smaller value than previously received MUST be treated as
//# a connection error of type H3_ID_ERROR.
#[test]
fn a_reduced_max_push_id_is_an_id_error() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.control_frame(&Frame::MaxPushId(varint(5)));
    raw.control_frame(&Frame::MaxPushId(varint(4)));
    raw.assert_closed(ErrorCode::H3_ID_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.3
//= type=test
//# If a
//# server receives a CANCEL_PUSH frame for a push ID that has not yet been
//# mentioned by a PUSH_PROMISE frame, this MUST be treated as a connection error of
//# type H3_ID_ERROR.
#[test]
fn cancel_push_for_an_unpromised_push_is_an_id_error() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.control_frame(&Frame::MaxPushId(varint(5)));
    raw.control_frame(&Frame::CancelPush(varint(0)));
    raw.assert_closed(ErrorCode::H3_ID_ERROR);
}

#[test]
fn a_client_cancels_a_push_before_its_stream_arrives() {
    let mut client = Config::default();
    client.max_pushes(1);
    let mut pair = Pair::with(client, Config::default());
    let id = pair.get("/");
    let promised = request_fields("GET", "https", "example.com", "/x", &[]);
    let (push_id, _) = pair.server.push_promise(&mut pair.st, id, &promised).unwrap();
    pair.client.cancel_push(&mut pair.ct, push_id).unwrap();
    pair.pump();
    assert!(pair.take_server_events().contains(&Event::PushCancelled { push_id }));
    assert!(pair.client.error().is_none() && pair.server.error().is_none());
}

#[test]
fn goaway_drains_gracefully() {
    let mut pair = Pair::new();
    let first = pair.get("/1");
    pair.server.goaway(&mut pair.st).unwrap();
    pair.pump();
    let events = pair.take_client_events();
    let limit = first.to_varint().into_inner() + 4;
    assert!(events.contains(&Event::GoAway { id: varint(limit) }), "{events:?}");
    //= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
    //= type=test
    //# Endpoints MUST NOT initiate new requests or promise new pushes on the connection
    //# after receipt of a GOAWAY frame from the peer.
    assert_eq!(
        pair.client.send_request(&mut pair.ct, &get_fields(), true),
        Err(SendError::GoingAway)
    );
    // The request already accepted completes.
    pair.server.send_response(&mut pair.st, first, &response_fields(200, &[]), true).unwrap();
    pair.pump();
    assert!(pair.take_client_events().contains(&Event::Finished(first)));
    assert!(pair.server.is_idle());
    pair.server.close(&mut pair.st);
    assert_eq!(pair.ct.closed().map(|c| c.1), Some(ErrorCode::H3_NO_ERROR.to_varint()));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
//= type=test
//# Upon sending a GOAWAY frame, the endpoint SHOULD explicitly cancel
//# (see Sections {{<request-cancellation}} and {{<frame-cancel-push}}) any requests
//# or pushes that have identifiers greater than or equal to the one indicated, in
//# order to clean up transport state for the affected streams.
#[test]
fn requests_past_the_goaway_are_rejected() {
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.pump();
    raw.conn.goaway(&mut raw.ct).unwrap();
    let bytes = raw.headers(&get_fields());
    let id = raw.request(&bytes, true);
    let events = raw.pump();
    assert!(
        events.is_empty() || !events.iter().any(|e| matches!(e, Event::Headers { .. })),
        "{events:?}"
    );
    assert_eq!(raw.reset_code(id), Some(ErrorCode::H3_REQUEST_REJECTED));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
//= type=test
//# Receiving a GOAWAY containing a larger identifier than
//# previously received MUST be treated as a connection error of type H3_ID_ERROR.
#[test]
fn a_larger_goaway_is_an_id_error() {
    let mut raw = Raw::against(Side::Client, Config::default());
    raw.control();
    raw.control_frame(&Frame::Goaway(varint(4)));
    raw.control_frame(&Frame::Goaway(varint(8)));
    raw.assert_closed(ErrorCode::H3_ID_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
//= type=test
//# A client MUST treat receipt of a
//# GOAWAY frame containing a stream ID of any other type as a connection error of
//# type H3_ID_ERROR.
#[test]
fn a_goaway_naming_no_request_stream_is_an_id_error() {
    let mut raw = Raw::against(Side::Client, Config::default());
    raw.control();
    raw.control_frame(&Frame::Goaway(varint(3)));
    raw.assert_closed(ErrorCode::H3_ID_ERROR);
}

#[test]
fn priority_update_rules() {
    // RFC 9218 §7: only clients send it.
    let mut raw = Raw::against(Side::Client, Config::default());
    raw.control();
    raw.control_frame(&Frame::PriorityUpdate {
        element_id: varint(0),
        field_value: b"u=1",
        push: false,
    });
    raw.assert_closed(ErrorCode::H3_FRAME_UNEXPECTED);
    // RFC 9218 §7.1: the element must be a request stream.
    let mut raw = Raw::against(Side::Server, Config::default());
    raw.control();
    raw.control_frame(&Frame::PriorityUpdate {
        element_id: varint(2),
        field_value: b"u=1",
        push: false,
    });
    raw.assert_closed(ErrorCode::H3_ID_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.5
//= type=test
//# If a client receives a push ID that has already been promised and detects
//# a mismatch, it MUST respond with a connection error of type
//# H3_GENERAL_PROTOCOL_ERROR.
#[test]
fn one_push_id_promising_two_requests_is_an_error() {
    let mut config = Config::default();
    config.max_pushes(2);
    let mut raw = Raw::against(Side::Client, config);
    raw.control();
    raw.pump();
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(raw.conn.send_request(&mut raw.ct, &get_fields(), true).unwrap());
    }
    raw.pump();
    for (id, path) in ids.into_iter().zip(["/a", "/b"]) {
        let section = raw.section(&request_fields("GET", "https", "a", path, &[]));
        let mut bytes = Vec::new();
        Frame::PushPromise { push_id: varint(0), field_section: &section }.encode(&mut bytes);
        raw.t.write(id, &bytes).unwrap();
    }
    raw.assert_closed(ErrorCode::H3_GENERAL_PROTOCOL_ERROR);
}

#[test]
fn one_push_id_promised_twice_alike_is_announced_once() {
    let mut config = Config::default();
    config.max_pushes(2);
    let mut raw = Raw::against(Side::Client, config);
    raw.control();
    raw.pump();
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(raw.conn.send_request(&mut raw.ct, &get_fields(), true).unwrap());
    }
    raw.pump();
    let promised = request_fields("GET", "https", "a", "/same", &[]);
    for id in ids {
        let section = raw.section(&promised);
        let mut bytes = Vec::new();
        Frame::PushPromise { push_id: varint(1), field_section: &section }.encode(&mut bytes);
        raw.t.write(id, &bytes).unwrap();
    }
    let events = raw.pump();
    assert_eq!(raw.closed_with(), None);
    let promises = events.iter().filter(|e| matches!(e, Event::PushPromise { .. })).count();
    assert_eq!(promises, 1, "{events:?}");
}
