//! `quic client` over HTTP/3 (RFC 9114), on h3-proto: each URL is a GET on
//! its own request stream of the one connection, as many at once as the
//! server's stream limit allows. A 200's body is the file (stored like
//! hq-interop's); any other final status, a reset or a malformed response
//! fails the run.

use std::collections::HashMap;
use std::time::Duration;

use h3_proto::message::request_fields;
use h3_proto::qpack::Field;
use h3_proto::transport::QuicTransport;
use h3_proto::{Config, Event as H3Event, SendError};
use quic_proto::connection::{Connection, Event, StreamEvent};
use quic_proto::{Dir, Instant, Side, StreamId};

use crate::tool::Failure;
use crate::tool::client::Downloads;

/// The `user-agent` of every request.
const USER_AGENT: &str = concat!("quic/", env!("CARGO_PKG_VERSION"));

/// The shortest wait for the server's SETTINGS before the requests go
/// out anyway (it grows to 3 RTTs on slower paths). Requests sent before
/// the SETTINGS arrive cannot use the QPACK dynamic table (RFC 9204 §3.2.3:
/// the encoder's capacity is 0 until then); a server that sends no
/// SETTINGS at all costs this much, once.
const SETTINGS_WAIT: Duration = Duration::from_millis(250);

/// Body bytes read per `recv_data` call.
const READ_BUF: usize = 64 << 10;

/// What a run over HTTP/3 did, for the summary line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct H3Figures {
    /// The QPACK encoder's dynamic table capacity: what the server's
    /// SETTINGS allowed (0: requests used the static table only).
    pub(crate) encoder_capacity: u64,
    /// Entries the server's encoder inserted into this end's decoder.
    pub(crate) decoder_inserts: u64,
}

/// One request in flight.
struct Request {
    /// Its download.
    index: usize,
    /// The final response was 200: its body is the file.
    ok: bool,
}

/// The HTTP/3 side of a download.
pub(crate) struct H3Client {
    h3: h3_proto::Connection,
    authority: String,
    requests: HashMap<StreamId, Request>,
    /// The next download to request.
    next: usize,
    /// Until the server's SETTINGS arrive, or this moment passes, no
    /// request goes out.
    settings_deadline: Option<Instant>,
    first_request: Option<Instant>,
    /// The server sent GOAWAY: no new requests.
    going_away: bool,
    buf: Vec<u8>,
}

impl H3Client {
    /// Opens HTTP/3 on a connection whose handshake chose `h3`: the
    /// control and QPACK streams go out, the requests once the server's
    /// SETTINGS arrive.
    pub(crate) fn new(
        conn: &mut Connection,
        now: Instant,
        authority: &str,
        downloads: &mut Downloads,
        grease_seed: u64,
    ) -> Self {
        let wait = (conn.stats().smoothed_rtt * 3).max(SETTINGS_WAIT);
        let mut h3 = h3_proto::Connection::new(Side::Client, Config::default(), grease_seed);
        let mut t = QuicTransport { connection: conn, now };
        if let Err(e) = h3.open(&mut t) {
            downloads.fail(Failure::other(format!("cannot open HTTP/3's control streams: {e}")));
        }
        // Streams the server opened before the handshake completed (its
        // control stream can come in 0.5-RTT data) raised their events
        // before this layer existed.
        h3.handle_all(&mut t);
        let mut client = Self {
            h3,
            authority: authority.to_owned(),
            requests: HashMap::new(),
            next: 0,
            settings_deadline: Some(now + wait),
            first_request: None,
            going_away: false,
            buf: vec![0; READ_BUF],
        };
        client.drain_events(&mut t, downloads);
        client
    }

    /// When the wait for the server's SETTINGS ends, while it lasts.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.settings_deadline
    }

    /// When the first request went out.
    pub(crate) fn first_request(&self) -> Option<Instant> {
        self.first_request
    }

    pub(crate) fn figures(&self) -> H3Figures {
        H3Figures {
            encoder_capacity: self.h3.qpack_encoder_capacity(),
            decoder_inserts: self.h3.qpack_decoder_inserts(),
        }
    }

    /// Sends the requests once the wait for SETTINGS is over.
    pub(crate) fn handle_timeout(
        &mut self,
        conn: &mut Connection,
        now: Instant,
        downloads: &mut Downloads,
    ) {
        if self.settings_deadline.is_some_and(|d| now >= d) {
            self.settings_deadline = None;
            let mut t = QuicTransport { connection: conn, now };
            self.send_requests(&mut t, downloads);
        }
    }

    /// Passes one of the connection's events to HTTP/3 and acts on what
    /// HTTP/3 makes of it.
    pub(crate) fn handle_event(
        &mut self,
        conn: &mut Connection,
        now: Instant,
        event: &Event,
        downloads: &mut Downloads,
    ) {
        let mut t = QuicTransport { connection: conn, now };
        if let Event::Stream(e) = event {
            self.h3.handle_stream_event(&mut t, e);
            if let StreamEvent::Available(Dir::Bi) = e {
                self.send_requests(&mut t, downloads);
            }
        }
        self.drain_events(&mut t, downloads);
    }

    fn drain_events(&mut self, t: &mut QuicTransport<'_>, downloads: &mut Downloads) {
        while let Some(event) = self.h3.poll_event() {
            self.on_h3_event(t, event, downloads);
        }
    }

    /// Requests what is left to request, until the stream limit.
    fn send_requests(&mut self, t: &mut QuicTransport<'_>, downloads: &mut Downloads) {
        if self.settings_deadline.is_some() || self.going_away {
            return;
        }
        while self.next < downloads.list.len() {
            let path = &downloads.list[self.next].path;
            let extra = [Field::new("user-agent", USER_AGENT)];
            let fields = request_fields("GET", "https", &self.authority, path, &extra);
            match self.h3.send_request(t, &fields, true) {
                Ok(stream) => {
                    self.requests.insert(stream, Request { index: self.next, ok: false });
                    self.next += 1;
                    self.first_request.get_or_insert(t.now);
                }
                // More when the server raises its limit (`Available`).
                Err(SendError::StreamLimit) => return,
                Err(e) => {
                    let message = format!("GET {path}: cannot send the request: {e}");
                    return downloads.fail(Failure::other(message));
                }
            }
        }
    }

    fn on_h3_event(
        &mut self,
        t: &mut QuicTransport<'_>,
        event: H3Event,
        downloads: &mut Downloads,
    ) {
        let path = |downloads: &Downloads, index: usize| downloads.list[index].path.clone();
        match event {
            H3Event::Settings(_) => {
                self.settings_deadline = None;
                self.send_requests(t, downloads);
            }
            H3Event::Headers { stream, fields, end } => {
                let Some(request) = self.requests.get_mut(&stream) else { return };
                match status(&fields) {
                    // Interim: the final response follows.
                    Some(100..=199) => {}
                    Some(200) => {
                        request.ok = true;
                        if end {
                            let index = request.index;
                            self.requests.remove(&stream);
                            downloads.complete(index, t.now);
                        }
                    }
                    Some(code) => {
                        let path = path(downloads, request.index);
                        let message = format!("GET {path}: {} (status {code})", reason(code));
                        downloads.fail(Failure::new(Failure::FILE, message));
                    }
                    None => {
                        let path = path(downloads, request.index);
                        downloads.fail(Failure::other(format!("GET {path}: no :status")));
                    }
                }
            }
            H3Event::Data(stream) => {
                let index = self.requests.get(&stream).filter(|r| r.ok).map(|r| r.index);
                loop {
                    let n = self.h3.recv_data(t, stream, &mut self.buf);
                    if n == 0 {
                        break;
                    }
                    if let Some(index) = index {
                        downloads.receive(index, &self.buf[..n]);
                    }
                }
            }
            H3Event::Finished(stream) => {
                if let Some(request) = self.requests.remove(&stream)
                    && request.ok
                {
                    downloads.complete(request.index, t.now);
                }
            }
            H3Event::Reset { stream, code } => {
                let Some(request) = self.requests.remove(&stream) else { return };
                let path = path(downloads, request.index);
                let message = format!("GET {path}: refused (the server reset the stream, {code})");
                downloads.fail(Failure::new(Failure::FILE, message));
            }
            H3Event::StreamFailed { stream, error } => {
                let Some(request) = self.requests.remove(&stream) else { return };
                let path = path(downloads, request.index);
                let message = format!(
                    "GET {path}: bad response, stream reset: {} ({})",
                    error.reason, error.code
                );
                downloads.fail(Failure::other(message));
            }
            H3Event::GoAway { id } => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
                //# Endpoints MUST NOT initiate new requests or promise new pushes on the connection
                //# after receipt of a GOAWAY frame from the peer.
                self.going_away = true;
                let unanswered = self
                    .requests
                    .iter()
                    .filter(|(s, _)| s.to_varint() >= id)
                    .map(|(_, r)| r.index)
                    .min();
                let unsent = (self.next < downloads.list.len()).then_some(self.next);
                if let Some(index) = unanswered.or(unsent) {
                    let path = path(downloads, index);
                    let message = format!("GET {path}: the server is going away (GOAWAY)");
                    downloads.fail(Failure::new(Failure::REFUSED, message));
                }
            }
            H3Event::Closed(error) => {
                let message = format!(
                    "the server broke HTTP/3: {} ({}); connection closed",
                    error.reason, error.code
                );
                downloads.fail(Failure::other(message));
            }
            // Trailers carry nothing a download needs; pushes are never
            // allowed (no MAX_PUSH_ID); STOP_SENDING on a request already
            // sent whole changes nothing.
            _ => {}
        }
    }
}

/// The `:status` of a response section.
fn status(fields: &[Field]) -> Option<u16> {
    let field = fields.iter().find(|f| f.name == b":status")?;
    std::str::from_utf8(&field.value).ok()?.parse().ok()
}

/// What a status says about the file, in a few words.
fn reason(status: u16) -> &'static str {
    match status {
        404 => "not found",
        403 => "forbidden",
        400 => "bad request",
        405 => "method not allowed",
        300..=399 => "redirected (not followed)",
        500..=599 => "server error",
        _ => "refused",
    }
}

/// Seeds for h3-proto's grease values (reserved setting, frame and stream
/// types), one per connection: unpredictable values are what keeps peers
/// from depending on particular ones (RFC 9114 §7.2.8). They derive from
/// the endpoint's seed, so a replay greases as the original did.
#[derive(Debug)]
pub(crate) struct Grease(quic_proto::SeededRandom);

impl Grease {
    /// A source keyed by SHA-256 of a label and the endpoint's seed: not
    /// the endpoint's own stream, which the seed keys directly.
    pub(crate) fn new(endpoint_seed: &[u8; 32]) -> Self {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"quic tool h3 grease");
        ctx.update(endpoint_seed);
        let mut key = [0; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        Self(quic_proto::SeededRandom::from_seed(key))
    }

    /// The next connection's grease seed.
    pub(crate) fn next_seed(&mut self) -> u64 {
        use quic_proto::RandomSource as _;
        self.0.next_u64()
    }
}
