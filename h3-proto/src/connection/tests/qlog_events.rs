//! The connection's HTTP/3 qlog events (draft-ietf-quic-qlog-h3-events)
//! for a whole exchange, as the transport receives them.

use super::*;

#[test]
fn an_exchange_is_logged_event_by_event() {
    let (mut ct, mut st) = memory::pair();
    ct.enable_qlog();
    st.enable_qlog();
    let mut client_config = Config::default();
    client_config.max_pushes(1);
    let mut pair = Pair {
        client: Connection::new(Side::Client, client_config, 1),
        server: Connection::new(Side::Server, Config::default(), 2),
        ct,
        st,
        client_events: vec![],
        server_events: vec![],
    };
    pair.client.open(&mut pair.ct).unwrap();
    pair.server.open(&mut pair.st).unwrap();
    pair.pump();
    let fields = request_fields("GET", "https", "example.com", "/", &[field("priority", "u=1")]);
    let id = pair.client.send_request(&mut pair.ct, &fields, true).unwrap();
    pair.pump();
    let promised = request_fields("GET", "https", "example.com", "/push", &[]);
    let (_, push) = pair.server.push_promise(&mut pair.st, id, &promised).unwrap();
    pair.server.send_response(&mut pair.st, push, &response_fields(200, &[]), true).unwrap();
    pair.server.send_response(&mut pair.st, id, &response_fields(200, &[]), false).unwrap();
    pair.server.send_data(&mut pair.st, id, b"body").unwrap();
    pair.server.finish(&mut pair.st, id).unwrap();
    pair.pump();

    let names = |t: &MemoryTransport| -> Vec<String> {
        t.qlog_events().iter().map(|(n, _)| n.clone()).collect()
    };
    let client = names(&pair.ct);
    let server = names(&pair.st);
    for (who, names, wanted) in [
        (
            "client",
            &client,
            &[
                "http3:parameters_set",
                "http3:stream_type_set",
                "http3:frame_created",
                "http3:frame_parsed",
                "http3:push_resolved",
            ][..],
        ),
        (
            "server",
            &server,
            &[
                "http3:parameters_set",
                "http3:stream_type_set",
                "http3:frame_created",
                "http3:frame_parsed",
                "http3:priority_updated",
            ][..],
        ),
    ] {
        for name in wanted {
            assert!(names.iter().any(|n| n == name), "{who} logged no {name}: {names:?}");
        }
    }
    // The request's HEADERS, parsed on the server, carries its decoded
    // fields.
    let parsed_headers = pair
        .st
        .qlog_events()
        .iter()
        .find(|(n, d)| {
            n == "http3:frame_parsed" && d.contains("\"headers\"") && d.contains(":path")
        })
        .map(|(_, d)| d.clone())
        .expect("a parsed HEADERS with its fields");
    assert!(parsed_headers.contains("\"stream_id\":0"), "{parsed_headers}");
    assert!(parsed_headers.contains("example.com"), "{parsed_headers}");
    // Both ends logged each other's SETTINGS.
    let remote = |t: &MemoryTransport| {
        t.qlog_events()
            .iter()
            .filter(|(n, d)| n == "http3:parameters_set" && d.contains("remote"))
            .count()
    };
    assert_eq!((remote(&pair.ct), remote(&pair.st)), (1, 1));
}
