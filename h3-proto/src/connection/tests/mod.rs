//! HTTP/3 connection tests over the in-memory transport: whole exchanges
//! between two [`Connection`]s, and a raw peer that writes frames by hand
//! to prove each error case the RFC names (the h3spec checklist).

use quic_proto::connection::ReadError;
use quic_proto::{Dir, Side, StreamId, VarInt};

use super::*;
use crate::frame::{Frame, FrameType};
use crate::message::{request_fields, response_fields};
use crate::stream_type::{StreamType, UniStreamHeader};
use crate::transport::memory::{self, MemoryTransport};

mod errors;
mod exchange;
mod over_quic;
mod push_goaway;
mod qlog_events;
mod qpack_streams;

/// A client and a server connection over an in-memory pair.
struct Pair {
    client: Connection,
    server: Connection,
    ct: MemoryTransport,
    st: MemoryTransport,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
}

impl Pair {
    fn new() -> Self {
        Self::with(Config::default(), Config::default())
    }

    fn with(client: Config, server: Config) -> Self {
        let (mut ct, mut st) = memory::pair();
        let mut client = Connection::new(Side::Client, client, 1);
        let mut server = Connection::new(Side::Server, server, 2);
        client.open(&mut ct).unwrap();
        server.open(&mut st).unwrap();
        let mut pair =
            Self { client, server, ct, st, client_events: vec![], server_events: vec![] };
        pair.pump();
        pair
    }

    /// Moves bytes until both sides are quiet, collecting events.
    fn pump(&mut self) {
        for _ in 0..8 {
            self.client.handle_all(&mut self.ct);
            self.server.handle_all(&mut self.st);
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
        }
    }

    fn get(&mut self, path: &str) -> StreamId {
        let fields = request_fields("GET", "https", "example.com", path, &[]);
        let id = self.client.send_request(&mut self.ct, &fields, true).unwrap();
        self.pump();
        id
    }

    /// Reads a body on `side`'s connection to the end of what is there.
    fn read_body(&mut self, side: Side, id: StreamId) -> Vec<u8> {
        let mut body = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let n = match side {
                Side::Client => self.client.recv_data(&mut self.ct, id, &mut buf),
                Side::Server => self.server.recv_data(&mut self.st, id, &mut buf),
            };
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        self.pump();
        body
    }

    fn take_client_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.client_events)
    }

    fn take_server_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.server_events)
    }
}

/// A peer that writes HTTP/3 by hand, against one real [`Connection`].
struct Raw {
    /// The raw peer's transport.
    t: MemoryTransport,
    /// The connection under test and its transport.
    conn: Connection,
    ct: MemoryTransport,
    control: Option<StreamId>,
    encoder: qpack::Encoder,
}

impl Raw {
    /// A raw client against a real server (`side` is the real one's).
    fn against(side: Side, config: Config) -> Self {
        let (client_t, server_t) = memory::pair();
        let (t, ct) = match side {
            Side::Server => (client_t, server_t),
            Side::Client => (server_t, client_t),
        };
        let mut conn = Connection::new(side, config, 7);
        let mut ct = ct;
        conn.open(&mut ct).unwrap();
        let encoder = qpack::Encoder::new(qpack::EncoderConfig::default());
        Self { t, conn, ct, control: None, encoder }
    }

    /// The real end processes everything; its events.
    fn pump(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..4 {
            self.conn.handle_all(&mut self.ct);
            while let Some(e) = self.conn.poll_event() {
                events.push(e);
            }
        }
        events
    }

    /// Opens a unidirectional stream of type `ty` and writes `bytes`.
    fn uni(&mut self, ty: StreamType, bytes: &[u8]) -> StreamId {
        let id = self.t.open(Dir::Uni).unwrap();
        let mut out = Vec::new();
        ty.encode(&mut out);
        out.extend_from_slice(bytes);
        self.t.write(id, &out).unwrap();
        id
    }

    /// Opens the raw peer's control stream with default SETTINGS.
    fn control(&mut self) -> StreamId {
        let mut bytes = Vec::new();
        Settings::default().encode(&mut bytes);
        let id = self.uni(StreamType::CONTROL, &bytes);
        self.control = Some(id);
        id
    }

    /// Writes `frame` on the control stream.
    fn control_frame(&mut self, frame: &Frame<'_>) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let id = self.control.expect("control stream open");
        self.t.write(id, &bytes).unwrap();
    }

    /// A static-only encoded field section.
    fn section(&mut self, fields: &[Field]) -> Vec<u8> {
        let mut out = Vec::new();
        self.encoder.encode(0, fields, &mut out);
        out
    }

    /// HEADERS with `fields` as bytes.
    fn headers(&mut self, fields: &[Field]) -> Vec<u8> {
        let section = self.section(fields);
        let mut out = Vec::new();
        Frame::Headers { field_section: &section }.encode(&mut out);
        out
    }

    /// Opens a request stream with `bytes` and optionally FIN.
    fn request(&mut self, bytes: &[u8], fin: bool) -> StreamId {
        let id = self.t.open(Dir::Bi).unwrap();
        self.t.write(id, bytes).unwrap();
        if fin {
            self.t.finish(id).unwrap();
        }
        id
    }

    /// The connection error the real end closed with, if any.
    fn closed_with(&self) -> Option<ErrorCode> {
        self.t.closed().map(|(_, code, _)| ErrorCode::from(code))
    }

    /// Asserts the real end closed the connection with `code`.
    #[track_caller]
    fn assert_closed(&mut self, code: ErrorCode) {
        let events = self.pump();
        assert_eq!(self.closed_with(), Some(code), "events: {events:?}");
        assert!(
            matches!(events.last(), Some(Event::Closed(e)) if e.code == code),
            "events: {events:?}"
        );
    }

    /// How the real end answered on request stream `id`: the reset code
    /// read there.
    fn reset_code(&mut self, id: StreamId) -> Option<ErrorCode> {
        let mut buf = [0u8; 4096];
        loop {
            match self.t.read(id, &mut buf) {
                Ok(Some(_)) => continue,
                Err(ReadError::Reset(code)) => return Some(code.into()),
                _ => return None,
            }
        }
    }
}

fn get_fields() -> Vec<Field> {
    request_fields("GET", "https", "example.com", "/", &[])
}

fn field(name: &str, value: &str) -> Field {
    Field::new(name.as_bytes(), value.as_bytes())
}

fn varint(v: u64) -> VarInt {
    VarInt::from_u64(v).unwrap()
}

fn stream(v: u64) -> StreamId {
    StreamId::from(varint(v))
}

#[allow(dead_code)]
fn uni_header(h: UniStreamHeader) -> Vec<u8> {
    let mut out = Vec::new();
    h.encode(&mut out);
    out
}

#[allow(dead_code)]
fn frame_bytes(ty: FrameType, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::frame::FrameHeader::encode(ty, payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}
