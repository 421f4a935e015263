//! The HTTP/3 half of `fetch`: GET requests, all at once on one
//! connection, with h3-proto's sans-I/O HTTP/3 running on the quic-proto
//! connection through quic-async's `Connection::with_proto` and
//! `Connection::stream_events`.
//!
//! The loop: hand the stream events that came to HTTP/3 inside one
//! `with_proto` (which also sends the requests the server's stream limit
//! lets out and reads the responses), then wait for the next events.
//! quic-async's driver does the I/O and the timers meanwhile. HTTP/3
//! owns every stream of the connection: its control and QPACK streams,
//! the server's, and the request streams.

use std::collections::HashMap;
use std::hash::BuildHasher;

use h3_proto::error::ErrorCode;
use h3_proto::message::request_fields;
use h3_proto::transport::QuicTransport;
use h3_proto::{Event, SendError};
use quic_async::Connection;
use quic_proto::connection::StreamEvent;
use quic_proto::{Side, StreamId};

/// A response: its final status and its body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// What [`get_all`] brings back.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// Per path, in order: the response, or why there is none.
    pub(crate) responses: Vec<Result<Response, String>>,
    /// Entries the server's QPACK encoder put in this end's dynamic table.
    pub(crate) qpack_inserts: u64,
}

/// GETs every path of `https://{authority}` at once on `conn` (whose ALPN
/// is `h3`), each body up to `max_body` bytes, then closes the connection
/// with H3_NO_ERROR.
pub(crate) async fn get_all(
    conn: &Connection,
    authority: &str,
    paths: &[&str],
    max_body: usize,
) -> Fetched {
    // From here on the server's streams are HTTP/3's to accept.
    let mut events = conn.stream_events();
    // Seeds the grease values HTTP/3 sends (RFC 9114 §7.2.8): any number.
    let seed = std::hash::RandomState::new().hash_one(0u8);
    let mut client = Client {
        h3: h3_proto::Connection::new(Side::Client, h3_proto::Config::default(), seed),
        opened: false,
        authority,
        max_body,
        requests: paths.iter().map(|p| Request::new(p)).collect(),
        sent: 0,
        streams: HashMap::new(),
        buf: vec![0; 64 << 10],
    };
    let mut batch = Vec::new();
    loop {
        let step = conn.with_proto(|c, now| {
            client.step(&mut QuicTransport { connection: c, now }, &batch);
        });
        if let Err(e) = step {
            client.fail_all(&format!("connection lost: {e}"));
        }
        if client.is_done() {
            let _ = conn.with_proto(|c, now| {
                client.h3.close(&mut QuicTransport { connection: c, now });
            });
            break;
        }
        batch = match events.next().await {
            Ok(batch) => batch,
            Err(e) => {
                client.fail_all(&format!("connection lost: {e}"));
                Vec::new()
            }
        };
    }
    Fetched {
        qpack_inserts: client.h3.qpack_decoder_inserts(),
        responses: client.requests.into_iter().map(|r| r.outcome.expect("is_done")).collect(),
    }
}

/// One GET, and once it is over, how it went.
struct Request {
    path: String,
    status: Option<u16>,
    body: Vec<u8>,
    outcome: Option<Result<Response, String>>,
}

impl Request {
    fn new(path: &str) -> Self {
        Self { path: path.to_owned(), status: None, body: Vec::new(), outcome: None }
    }

    fn fail(&mut self, why: String) {
        if self.outcome.is_none() {
            self.outcome = Some(Err(why));
        }
    }

    fn finish(&mut self) {
        let outcome = match self.status {
            Some(status) => Ok(Response { status, body: std::mem::take(&mut self.body) }),
            None => Err("the response ended before its header section".to_owned()),
        };
        self.outcome.get_or_insert(outcome);
    }
}

/// The HTTP/3 client and its requests.
struct Client<'a> {
    h3: h3_proto::Connection,
    opened: bool,
    authority: &'a str,
    max_body: usize,
    requests: Vec<Request>,
    /// Requests sent (in order, as the server's stream limit allows).
    sent: usize,
    /// The request on each stream still in flight.
    streams: HashMap<StreamId, usize>,
    buf: Vec<u8>,
}

impl Client<'_> {
    /// One turn: `events` into HTTP/3, requests out, responses in.
    fn step(&mut self, t: &mut QuicTransport<'_>, events: &[StreamEvent]) {
        if !self.opened {
            // Control stream with SETTINGS, QPACK encoder and decoder streams.
            if let Err(e) = self.h3.open(t) {
                return self.fail_all(&format!("cannot open HTTP/3's streams: {e}"));
            }
            self.opened = true;
        }
        for event in events {
            self.h3.handle_stream_event(t, event);
        }
        self.send_requests(t);
        self.take_events(t);
    }

    fn send_requests(&mut self, t: &mut QuicTransport<'_>) {
        while let Some(request) = self.requests.get_mut(self.sent) {
            let fields = request_fields("GET", "https", self.authority, &request.path, &[]);
            match self.h3.send_request(t, &fields, true) {
                Ok(stream) => {
                    self.streams.insert(stream, self.sent);
                }
                // The server's limit: an `Available(Bi)` event comes when
                // it lets more streams open, and with it the next step.
                Err(SendError::StreamLimit) => return,
                Err(e) => request.fail(format!("not sent: {e}")),
            }
            self.sent += 1;
        }
    }

    fn take_events(&mut self, t: &mut QuicTransport<'_>) {
        while let Some(event) = self.h3.poll_event() {
            match event {
                Event::Headers { stream, fields, .. } => {
                    // h3-proto checked the section: `:status` comes first.
                    let status = fields
                        .first()
                        .filter(|f| f.name == b":status")
                        .and_then(|f| std::str::from_utf8(&f.value).ok()?.parse::<u16>().ok());
                    match status {
                        // 1xx are interim; the final response follows.
                        Some(s) if s < 200 => {}
                        Some(s) => self.on_request(stream, |r| r.status = Some(s)),
                        None => self.end(stream, Err("a response without :status".into())),
                    }
                }
                Event::Data(stream) => self.read_body(t, stream),
                Event::Finished(stream) => self.end(stream, Ok(())),
                Event::Reset { stream, code } => {
                    self.end(stream, Err(format!("the server reset the stream: {code}")));
                }
                Event::StreamFailed { stream, error } => {
                    self.end(stream, Err(format!("bad response: {error}")));
                }
                Event::GoAway { id } => {
                    // Requests at or above the ID will not be processed
                    // (RFC 9114 §5.2); the ones below still get answers.
                    let dropped: Vec<StreamId> =
                        self.streams.keys().copied().filter(|s| s.to_varint() >= id).collect();
                    for stream in dropped {
                        self.end(stream, Err("not processed: the server is going away".into()));
                    }
                }
                Event::Closed(error) => self.fail_all(&format!("HTTP/3 error: {error}")),
                _ => {}
            }
        }
    }

    /// Reads what body bytes are there (after `Event::Data`).
    fn read_body(&mut self, t: &mut QuicTransport<'_>, stream: StreamId) {
        loop {
            let n = self.h3.recv_data(t, stream, &mut self.buf);
            if n == 0 {
                return;
            }
            let Some(&i) = self.streams.get(&stream) else { continue };
            let request = &mut self.requests[i];
            if request.body.len() + n > self.max_body {
                self.h3.cancel(t, stream, ErrorCode::H3_REQUEST_CANCELLED);
                let why = format!("body longer than {} bytes", self.max_body);
                return self.end(stream, Err(why));
            }
            request.body.extend_from_slice(&self.buf[..n]);
        }
    }

    fn on_request(&mut self, stream: StreamId, f: impl FnOnce(&mut Request)) {
        if let Some(&i) = self.streams.get(&stream) {
            f(&mut self.requests[i]);
        }
    }

    /// The request on `stream` is over: `Ok` when its response ended.
    fn end(&mut self, stream: StreamId, how: Result<(), String>) {
        if let Some(i) = self.streams.remove(&stream) {
            match how {
                Ok(()) => self.requests[i].finish(),
                Err(why) => self.requests[i].fail(why),
            }
        }
    }

    fn fail_all(&mut self, why: &str) {
        self.streams.clear();
        for request in &mut self.requests {
            request.fail(why.to_owned());
        }
    }

    fn is_done(&self) -> bool {
        self.requests.iter().all(|r| r.outcome.is_some())
    }
}
