//! `quic server` over HTTP/3 (RFC 9114), on h3-proto: GET and HEAD of the
//! files under the root (200 with `content-length` and `content-type`), 404
//! for anything else there, 405 with `allow` for other methods. Bodies are
//! streamed from the file a DATA frame at a time as the stream takes them;
//! request bodies are read and dropped. On shutdown: GOAWAY, then close
//! with H3_NO_ERROR once the requests in flight are answered.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::btree_map::Entry;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use h3_proto::connection::MAX_DATA_FRAME;
use h3_proto::error::{ErrorCode, H3Error};
use h3_proto::message::response_fields;
use h3_proto::qpack::Field;
use h3_proto::transport::QuicTransport;
use h3_proto::{Config, Event as H3Event, SendError};
use quic_proto::connection::{Connection, ConnectionError, Event, StreamEvent};
use quic_proto::endpoint::{ConnectionHandle, Endpoint};
use quic_proto::{Instant, Side, StreamId};

use crate::tool::client_h3::Grease;
use crate::tool::server::open;

/// The body of a 404.
const NOT_FOUND: &[u8] = b"not found\n";
/// The body of a 405.
const NOT_ALLOWED: &[u8] = b"method not allowed\n";
/// The body of a 500 (a file that cannot be read).
const INTERNAL: &[u8] = b"cannot read the file\n";

/// The HTTP/3 connections of a server.
pub(crate) struct H3Server {
    /// In handle order: shutdown walks them in an order a replay repeats.
    conns: BTreeMap<ConnectionHandle, H3Conn>,
    grease: Grease,
}

/// One HTTP/3 connection.
struct H3Conn {
    h3: h3_proto::Connection,
    /// Responses whose body is still being sent.
    bodies: HashMap<StreamId, Body>,
    /// Why this end's HTTP/3 layer closed the connection, if it did.
    error: Option<H3Error>,
    /// Shutting down: closed once idle.
    going_away: bool,
    closed: bool,
    /// Where request bodies are read to, and dropped.
    scratch: Vec<u8>,
}

/// The rest of a response body: what `send_data` has not taken of the
/// last read (`buf[pos..]`), then the rest of the file.
struct Body {
    file: Option<File>,
    buf: Vec<u8>,
    pos: usize,
}

impl H3Server {
    /// No connections yet; their grease seeds come from `grease`.
    pub(crate) fn new(grease: Grease) -> Self {
        Self { conns: BTreeMap::new(), grease }
    }

    /// Whether `h` is an HTTP/3 connection this server serves.
    pub(crate) fn contains(&self, h: ConnectionHandle) -> bool {
        self.conns.contains_key(&h)
    }

    /// Starts HTTP/3 on a connection whose handshake chose `h3`: the
    /// control stream with SETTINGS and the QPACK streams. Call from the
    /// moment the connection is accepted: the SETTINGS then go out in
    /// 0.5-RTT data with the server's handshake flight, in time for a
    /// client that sends its requests right after its handshake (as
    /// ngtcp2's does) to let its QPACK encoder use this end's table. Until
    /// the client's transport parameters allow the streams, this does
    /// nothing and is tried again with the next event.
    pub(crate) fn start(&mut self, conn: &mut Connection, h: ConnectionHandle, now: Instant) {
        let Entry::Vacant(slot) = self.conns.entry(h) else { return };
        let mut t = QuicTransport { connection: conn, now };
        let mut h3 =
            h3_proto::Connection::new(Side::Server, Config::default(), self.grease.next_seed());
        if h3.open(&mut t).is_err() {
            if t.connection.is_handshake_complete() {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2
                //# Therefore, the transport parameters sent by both clients and
                //# servers MUST allow the peer to create at least three unidirectional
                //# streams.
                let code = ErrorCode::H3_GENERAL_PROTOCOL_ERROR.to_varint();
                t.connection.close(now, code, b"fewer than 3 unidirectional streams allowed");
            }
            return;
        }
        // Streams the client opened before now raised their events before
        // this layer existed.
        h3.handle_all(&mut t);
        slot.insert(H3Conn {
            h3,
            bodies: HashMap::new(),
            error: None,
            going_away: false,
            closed: false,
            scratch: vec![0; 16 << 10],
        });
    }

    /// One event of a connection whose handshake chose `h3`.
    pub(crate) fn handle_event(
        &mut self,
        conn: &mut Connection,
        h: ConnectionHandle,
        now: Instant,
        event: &Event,
        root: &Path,
    ) {
        self.start(conn, h, now);
        let Some(c) = self.conns.get_mut(&h) else { return };
        let mut t = QuicTransport { connection: conn, now };
        if let Event::Stream(e) = event {
            // First: what HTTP/3 queued on a writable stream goes before
            // more of the body.
            c.h3.handle_stream_event(&mut t, e);
        }
        while let Some(event) = c.h3.poll_event() {
            c.on_h3_event(&mut t, event, root);
        }
        if let Event::Stream(StreamEvent::Writable(stream)) = event {
            c.send_body(&mut t, *stream);
        }
        if c.going_away && c.h3.is_idle() {
            c.close(&mut t);
        }
    }

    /// Forgets a connection that ended (with `error`, if known). For an
    /// HTTP/3 connection, the end of its log line: why it ended (this
    /// end's HTTP/3 error, if it closed with one) and what QPACK did.
    pub(crate) fn end(
        &mut self,
        h: ConnectionHandle,
        error: Option<&ConnectionError>,
    ) -> Option<String> {
        let c = self.conns.remove(&h)?;
        let reason = match (&c.error, error) {
            (Some(e), _) => format!("closed by this endpoint: {} ({})", e.reason, e.code),
            (None, Some(e)) => describe_end(e),
            (None, None) => "drained".to_owned(),
        };
        Some(format!(
            "{reason}; h3, qpack: encoder table {} bytes, decoder inserts {}",
            c.h3.qpack_encoder_capacity(),
            c.h3.qpack_decoder_inserts()
        ))
    }

    /// Shutting down: sends GOAWAY on every HTTP/3 connection (RFC 9114
    /// §5.2): requests in flight are answered, later ones refused.
    pub(crate) fn goaway(&mut self, endpoint: &mut Endpoint, now: Instant) {
        for (&h, c) in &mut self.conns {
            let Some(conn) = endpoint.connection(h) else { continue };
            let mut t = QuicTransport { connection: conn, now };
            c.going_away = true;
            if c.h3.goaway(&mut t).is_err() || c.h3.is_idle() {
                c.close(&mut t);
            }
        }
    }

    /// Closes the HTTP/3 connections still open, answered or not.
    pub(crate) fn close_all(&mut self, endpoint: &mut Endpoint, now: Instant) {
        for (&h, c) in &mut self.conns {
            let Some(conn) = endpoint.connection(h) else { continue };
            c.close(&mut QuicTransport { connection: conn, now });
        }
    }
}

impl H3Conn {
    fn on_h3_event(&mut self, t: &mut QuicTransport<'_>, event: H3Event, root: &Path) {
        match event {
            H3Event::Headers { stream, fields, .. } => self.respond(t, stream, &fields, root),
            H3Event::Data(stream) => while self.h3.recv_data(t, stream, &mut self.scratch) > 0 {},
            H3Event::Reset { stream, .. } => {
                // The request was abandoned: so is its answer, if still
                // being sent.
                let sending = self.bodies.remove(&stream).is_some();
                if sending {
                    self.h3.cancel(t, stream, ErrorCode::H3_REQUEST_CANCELLED);
                }
            }
            H3Event::Stopped { stream, .. } | H3Event::StreamFailed { stream, .. } => {
                self.bodies.remove(&stream);
            }
            H3Event::Closed(error) => {
                self.error = Some(error);
                self.bodies.clear();
            }
            // The end of a request (its answer does not wait for it),
            // SETTINGS, trailers, a client's GOAWAY (it allows no pushes
            // this server would make anyway).
            _ => {}
        }
    }

    /// Answers a request.
    fn respond(
        &mut self,
        t: &mut QuicTransport<'_>,
        stream: StreamId,
        fields: &[Field],
        root: &Path,
    ) {
        let value = |name: &[u8]| fields.iter().find(|f| f.name == name).map(|f| &f.value[..]);
        let head = match value(b":method") {
            Some(b"GET") => false,
            Some(b"HEAD") => true,
            _ => {
                let allow = Field::new("allow", "GET, HEAD");
                return self.small(t, stream, 405, NOT_ALLOWED, false, allow);
            }
        };
        let path = value(b":path").and_then(|p| std::str::from_utf8(p).ok()).unwrap_or("");
        let Some(file) = open(root, path) else {
            let text = Field::new("content-type", "text/plain");
            return self.small(t, stream, 404, NOT_FOUND, head, text);
        };
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            let text = Field::new("content-type", "text/plain");
            return self.small(t, stream, 500, INTERNAL, head, text);
        };
        let response = response_fields(
            200,
            &[
                Field::new("content-length", len.to_string()),
                Field::new("content-type", content_type(path)),
            ],
        );
        let end = head || len == 0;
        if self.h3.send_response(t, stream, &response, end).is_ok() && !end {
            let body = Body { file: Some(file), buf: Vec::new(), pos: 0 };
            self.bodies.insert(stream, body);
            self.send_body(t, stream);
        }
    }

    /// Answers with `status`, a short text body (none for HEAD) and the
    /// field `extra`.
    fn small(
        &mut self,
        t: &mut QuicTransport<'_>,
        stream: StreamId,
        status: u16,
        body: &[u8],
        head: bool,
        extra: Field,
    ) {
        let response =
            response_fields(status, &[Field::new("content-length", body.len().to_string()), extra]);
        if self.h3.send_response(t, stream, &response, head).is_ok() && !head {
            self.bodies.insert(stream, Body { file: None, buf: body.to_vec(), pos: 0 });
            self.send_body(t, stream);
        }
    }

    /// Sends as much of a response body as the stream takes now; the rest
    /// on its next `Writable` event.
    fn send_body(&mut self, t: &mut QuicTransport<'_>, stream: StreamId) {
        let Some(body) = self.bodies.get_mut(&stream) else { return };
        loop {
            if body.pos == body.buf.len() {
                let read = match &mut body.file {
                    None => Ok(0),
                    Some(file) => {
                        // A frame's worth at a time: memory per response
                        // stays one frame, however large the file.
                        body.buf.resize(MAX_DATA_FRAME, 0);
                        body.pos = 0;
                        file.read(&mut body.buf)
                    }
                };
                match read {
                    Ok(0) => {
                        self.bodies.remove(&stream);
                        let _ = self.h3.finish(t, stream);
                        return;
                    }
                    Ok(n) => body.buf.truncate(n),
                    Err(_) => {
                        // The header promised a content-length: the only
                        // honest end is an abort.
                        self.bodies.remove(&stream);
                        self.h3.cancel(t, stream, ErrorCode::H3_INTERNAL_ERROR);
                        return;
                    }
                }
            }
            match self.h3.send_data(t, stream, &body.buf[body.pos..]) {
                Ok(n) => body.pos += n,
                Err(SendError::Blocked) => return,
                Err(_) => {
                    self.bodies.remove(&stream);
                    return;
                }
            }
        }
    }

    /// Closes the connection with H3_NO_ERROR, once.
    fn close(&mut self, t: &mut QuicTransport<'_>) {
        if !self.closed {
            self.closed = true;
            let code = ErrorCode::H3_NO_ERROR.to_varint();
            t.connection.close(t.now, code, b"server shutting down");
        }
    }
}

/// The `content-type` of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
    match extension {
        "html" | "htm" => "text/html",
        "txt" => "text/plain",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Why a connection ended, with the peer's application error code named
/// as HTTP/3 names it (`code 0x100 (H3_NO_ERROR)`).
pub(crate) fn describe_end(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ApplicationClosed { code, reason } => {
            let mut text = format!(
                "closed by the peer's application: code {:#x} ({})",
                code.into_inner(),
                ErrorCode::from(*code)
            );
            if !reason.is_empty() {
                text.push_str(": ");
                text.push_str(&String::from_utf8_lossy(reason));
            }
            text
        }
        e => e.to_string(),
    }
}
