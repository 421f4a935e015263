//! The HTTP/3 connection (RFC 9114), sans I/O, over any [`Transport`]:
//! control and QPACK streams, SETTINGS, requests and responses, server
//! push, GOAWAY, and extensible priorities (RFC 9218).
//!
//! Driving: after the transport's handshake, call [`Connection::open`]
//! once. Then hand over what the transport reports:
//! [`Connection::handle_accept`] when the peer opened streams,
//! [`Connection::handle_readable`] and [`Connection::handle_writable`]
//! per stream, [`Connection::handle_stopped`] on STOP_SENDING (or
//! [`Connection::handle_stream_event`] with quic-proto's events, or
//! [`Connection::handle_all`] for a transport without events), and take
//! [`Event`]s from [`Connection::poll_event`]. A client sends requests with
//! [`Connection::send_request`]; a server answers with
//! [`Connection::send_response`]; both send bodies with
//! [`Connection::send_data`], end them with [`Connection::finish`] or
//! [`Connection::send_trailers`], and read them with
//! [`Connection::recv_data`] after [`Event::Data`].
//!
//! A protocol violation by the peer closes the transport with the RFC's
//! error code and queues [`Event::Closed`]; a malformed message resets its
//! stream with H3_MESSAGE_ERROR and queues [`Event::StreamFailed`].

use std::collections::{HashMap, VecDeque};

use quic_proto::connection::{StreamEvent, WriteError};
use quic_proto::{Dir, Side, StreamId, VarInt};

use crate::error::{ErrorCode, H3Error};
use crate::message::{self, Malformed};
use crate::priority::Priority;
use crate::qpack::{self, Field};
use crate::settings::Settings;
use crate::transport::Transport;

mod message_stream;
mod send;
#[cfg(test)]
mod tests;
mod uni;

use message_stream::Message;
use send::Outgoing;
use uni::Incoming;

/// How an HTTP/3 [`Connection`] behaves; every limit has a default.
#[derive(Clone, Debug)]
pub struct Config {
    max_field_section_size: u64,
    qpack_max_table_capacity: u64,
    qpack_blocked_streams: u64,
    max_pushes: u64,
    enable_connect_protocol: bool,
    grease: bool,
    max_frame_buffer: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_field_section_size: 64 << 10,
            qpack_max_table_capacity: 4096,
            qpack_blocked_streams: 16,
            max_pushes: 0,
            enable_connect_protocol: false,
            grease: true,
            max_frame_buffer: 16 << 10,
        }
    }
}

impl Config {
    /// The largest field section accepted, decoded (RFC 9114 §4.2.2),
    /// announced as SETTINGS_MAX_FIELD_SECTION_SIZE. Default 64 KiB. A
    /// larger section resets its stream with H3_EXCESSIVE_LOAD; the
    /// encoded section is bounded by the same number before decoding.
    pub fn max_field_section_size(&mut self, bytes: u64) -> &mut Self {
        self.max_field_section_size = bytes;
        self
    }

    /// The dynamic table this end's QPACK decoder accepts
    /// (SETTINGS_QPACK_MAX_TABLE_CAPACITY) and the most streams it lets
    /// block (SETTINGS_QPACK_BLOCKED_STREAMS). Default 4096 bytes, 16
    /// streams; 0 turns the peer encoder's dynamic table off. The same
    /// capacity caps this end's own encoder.
    pub fn qpack(&mut self, max_table_capacity: u64, blocked_streams: u64) -> &mut Self {
        self.qpack_max_table_capacity = max_table_capacity;
        self.qpack_blocked_streams = blocked_streams;
        self
    }

    /// Client: how many server pushes to allow (MAX_PUSH_ID is this minus
    /// one). Default 0: no MAX_PUSH_ID is sent, so the server cannot push
    /// (RFC 9114 §4.6).
    pub fn max_pushes(&mut self, count: u64) -> &mut Self {
        self.max_pushes = count.min(VarInt::MAX.into_inner());
        self
    }

    /// Server: accept extended CONNECT (`:protocol`, RFC 9220), announced
    /// with SETTINGS_ENABLE_CONNECT_PROTOCOL. Default off.
    pub fn enable_connect_protocol(&mut self, enabled: bool) -> &mut Self {
        self.enable_connect_protocol = enabled;
        self
    }

    /// Send reserved ("grease") settings, frames and stream types, which
    /// peers must ignore (RFC 9114 §6.2.3, §7.2.8, §7.2.4.1). Default on.
    pub fn grease(&mut self, enabled: bool) -> &mut Self {
        self.grease = enabled;
        self
    }

    /// The largest control-stream frame (SETTINGS, GOAWAY,
    /// PRIORITY_UPDATE, ...) held whole before decoding. Default 16 KiB;
    /// a longer one closes the connection with H3_EXCESSIVE_LOAD.
    pub fn max_frame_buffer(&mut self, bytes: u64) -> &mut Self {
        self.max_frame_buffer = bytes.max(64);
        self
    }
}

/// What the connection reports; take them with [`Connection::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer's SETTINGS arrived.
    Settings(Settings),
    /// A header section: a request (server), an interim or final response
    /// (client, on a request or push stream). `end` says the message has
    /// no body or trailers: [`Event::Finished`] follows.
    Headers {
        /// The stream.
        stream: StreamId,
        /// The field lines, pseudo-headers first, as checked by
        /// [`crate::message`].
        fields: Vec<Field>,
        /// Whether the stream ended right after the section.
        end: bool,
    },
    /// Body bytes are ready: call [`Connection::recv_data`] until it
    /// returns 0. One event stands for everything until then.
    Data(StreamId),
    /// The trailer section.
    Trailers {
        /// The stream.
        stream: StreamId,
        /// The field lines.
        fields: Vec<Field>,
    },
    /// The peer's message on the stream is complete.
    Finished(StreamId),
    /// The peer reset its side of the stream (the message is incomplete).
    Reset {
        /// The stream.
        stream: StreamId,
        /// The code it gave (H3_REQUEST_REJECTED: not processed, may be
        /// retried; RFC 9114 §4.1.1).
        code: ErrorCode,
    },
    /// The peer asked this end to stop sending on the stream
    /// (STOP_SENDING); the layer reset its side with the same code.
    Stopped {
        /// The stream.
        stream: StreamId,
        /// The code it gave.
        code: ErrorCode,
    },
    /// This end reset a stream because the peer broke a rule that concerns
    /// the stream alone (a malformed message, a section too large, a
    /// request after GOAWAY).
    StreamFailed {
        /// The stream.
        stream: StreamId,
        /// The code the stream was reset with, and why.
        error: H3Error,
    },
    /// The peer sent GOAWAY (RFC 9114 §5.2). From a server: requests on
    /// streams at or above `id` were not and will not be processed (retry
    /// them elsewhere); no new requests go out. From a client: the push ID
    /// pushes stop below.
    GoAway {
        /// The stream ID (from a server) or push ID (from a client).
        id: VarInt,
    },
    /// Client: the server promised a push on `stream` (the request it
    /// belongs to); the response comes on the push stream,
    /// [`Event::PushStream`].
    PushPromise {
        /// The request stream the promise came on.
        stream: StreamId,
        /// The push ID.
        push_id: u64,
        /// The promised request's field lines.
        fields: Vec<Field>,
    },
    /// Client: the push stream for `push_id` opened; its response's events
    /// carry `stream`.
    PushStream {
        /// The push ID.
        push_id: u64,
        /// The push stream.
        stream: StreamId,
    },
    /// The peer cancelled a push (CANCEL_PUSH).
    PushCancelled {
        /// The push ID.
        push_id: u64,
    },
    /// The connection was closed by this layer: the peer broke the
    /// protocol (the error says how). Nothing more happens on it.
    Closed(H3Error),
}

/// Why a send call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The stream's send buffer is full: try again after it is writable.
    Blocked,
    /// The peer's stream limit is reached: try again when it raises it.
    StreamLimit,
    /// A GOAWAY forbids new requests or pushes on this connection.
    GoingAway,
    /// The call does not fit the stream's state: an unknown or finished
    /// stream, a body before the headers, a client sending a response, ...
    InvalidState(&'static str),
    /// The fields would make a malformed message (RFC 9114 §4.1.2).
    Malformed(Malformed),
    /// The peer stopped the stream (STOP_SENDING) with this code.
    Stopped(ErrorCode),
    /// The connection is closed.
    Closed,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Blocked => f.write_str("stream blocked"),
            Self::StreamLimit => f.write_str("the peer's stream limit is reached"),
            Self::GoingAway => f.write_str("the connection is going away (GOAWAY)"),
            Self::InvalidState(why) => write!(f, "invalid call: {why}"),
            Self::Malformed(m) => write!(f, "malformed message: {m}"),
            Self::Stopped(code) => write!(f, "the peer stopped the stream with {code}"),
            Self::Closed => f.write_str("the connection is closed"),
        }
    }
}

impl std::error::Error for SendError {}

impl From<WriteError> for SendError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Blocked => Self::Blocked,
            WriteError::Stopped(code) => Self::Stopped(code.into()),
            WriteError::ConnectionLost(_) => Self::Closed,
            _ => Self::InvalidState("the transport stream is closed"),
        }
    }
}

/// One of this end's unidirectional streams: control, QPACK encoder or
/// decoder.
#[derive(Debug)]
struct LocalUni {
    id: StreamId,
    out: Outgoing,
}

/// An HTTP/3 connection's state; see the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    side: Side,
    config: Config,
    /// Randomness for grease values (an input: sans-I/O).
    random: u64,
    opened: bool,
    control: Option<LocalUni>,
    encoder_stream: Option<LocalUni>,
    decoder_stream: Option<LocalUni>,
    /// Request and push streams.
    messages: HashMap<StreamId, Message>,
    /// Peer unidirectional streams: being identified, or critical.
    incoming: HashMap<StreamId, Incoming>,
    peer_control: Option<StreamId>,
    peer_encoder: Option<StreamId>,
    peer_decoder: Option<StreamId>,
    peer_settings: Option<Settings>,
    encoder: qpack::Encoder,
    decoder: qpack::Decoder,
    events: VecDeque<Event>,
    error: Option<H3Error>,
    /// GOAWAY this end sent, and the one it received.
    goaway_sent: Option<VarInt>,
    goaway_received: Option<VarInt>,
    /// Server: the next request stream ID a GOAWAY would name (one past
    /// the largest seen).
    next_request_id: u64,
    /// Server: the peer's MAX_PUSH_ID; client: the one sent.
    max_push_id: Option<u64>,
    /// Server: the next push ID to promise.
    next_push_id: u64,
    /// Client: promised pushes' request fields, by push ID (RFC 9114 §4.6:
    /// a push promised twice must promise the same request).
    promises: HashMap<u64, Vec<Field>>,
    /// Client: push IDs whose push stream arrived.
    push_streams_seen: HashMap<u64, StreamId>,
    /// Server: push IDs cancelled, or promised streams, by push ID.
    pushes: HashMap<u64, StreamId>,
    /// Server: priorities from PRIORITY_UPDATE frames for request streams
    /// not opened yet (RFC 9218 §7.1), bounded.
    early_priorities: HashMap<u64, Priority>,
}

impl Connection {
    /// A connection for `side`, with `random` seeding its grease values.
    pub fn new(side: Side, config: Config, random: u64) -> Self {
        let mut encoder_config = qpack::EncoderConfig::default();
        encoder_config.max_table_capacity(config.qpack_max_table_capacity);
        let decoder = qpack::Decoder::new(
            config.qpack_max_table_capacity,
            config.qpack_blocked_streams,
            config.max_field_section_size,
        );
        Self {
            side,
            random,
            opened: false,
            control: None,
            encoder_stream: None,
            decoder_stream: None,
            messages: HashMap::new(),
            incoming: HashMap::new(),
            peer_control: None,
            peer_encoder: None,
            peer_decoder: None,
            peer_settings: None,
            encoder: qpack::Encoder::new(encoder_config),
            decoder,
            events: VecDeque::new(),
            error: None,
            goaway_sent: None,
            goaway_received: None,
            next_request_id: 0,
            max_push_id: None,
            next_push_id: 0,
            promises: HashMap::new(),
            push_streams_seen: HashMap::new(),
            pushes: HashMap::new(),
            early_priorities: HashMap::new(),
            config,
        }
    }

    /// Which end this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The peer's settings, once its SETTINGS frame arrived.
    pub fn peer_settings(&self) -> Option<&Settings> {
        self.peer_settings.as_ref()
    }

    /// Why this layer closed the connection, if it did.
    pub fn error(&self) -> Option<&H3Error> {
        self.error.as_ref()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The QPACK encoder's dynamic table capacity in use (0 until the
    /// peer's SETTINGS allow one).
    pub fn qpack_encoder_capacity(&self) -> u64 {
        self.encoder.capacity()
    }

    /// Entries the peer's encoder inserted into this end's QPACK decoder.
    pub fn qpack_decoder_inserts(&self) -> u64 {
        self.decoder.insert_count()
    }

    /// Whether no request or push stream is open: after a GOAWAY, the
    /// moment to close (RFC 9114 §5.2).
    pub fn is_idle(&self) -> bool {
        self.messages.is_empty()
    }

    /// Opens this end's control stream with SETTINGS (and MAX_PUSH_ID when
    /// pushes are enabled) and its QPACK encoder and decoder streams. Call
    /// once, as soon as the transport can open streams.
    pub fn open<T: Transport + ?Sized>(&mut self, t: &mut T) -> Result<(), SendError> {
        if self.opened {
            return Err(SendError::InvalidState("already open"));
        }
        self.check_open()?;
        //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.1
        //# Each side MUST initiate a single control stream at the beginning of the
        //# connection and send its SETTINGS frame as the first frame on this stream.
        let control = t.open(Dir::Uni).ok_or(SendError::StreamLimit)?;
        let encoder = t.open(Dir::Uni).ok_or(SendError::StreamLimit)?;
        let decoder = t.open(Dir::Uni).ok_or(SendError::StreamLimit)?;
        self.opened = true;
        let mut bytes = Vec::new();
        crate::stream_type::UniStreamHeader::Control.encode(&mut bytes);
        let settings = self.local_settings();
        if self.config.grease {
            settings.encode_with_grease(self.next_random(), &mut bytes);
            crate::frame::encode_grease_frame(self.next_random(), &mut bytes);
        } else {
            settings.encode(&mut bytes);
        }
        crate::qlog::stream_type_set(
            t,
            control,
            Some(&crate::stream_type::UniStreamHeader::Control),
        );
        crate::qlog::parameters_set(t, true, &settings, None);
        if self.side == Side::Client && self.config.max_pushes > 0 {
            let max = VarInt::from_u64(self.config.max_pushes - 1).unwrap_or(VarInt::MAX);
            crate::frame::Frame::MaxPushId(max).encode(&mut bytes);
            self.max_push_id = Some(max.into_inner());
        }
        self.control = Some(LocalUni { id: control, out: Outgoing::default() });
        self.send_uni(t, UniKind::Control, &bytes);
        let mut bytes = Vec::new();
        crate::stream_type::UniStreamHeader::QpackEncoder.encode(&mut bytes);
        self.encoder_stream = Some(LocalUni { id: encoder, out: Outgoing::default() });
        self.send_uni(t, UniKind::Encoder, &bytes);
        let mut bytes = Vec::new();
        crate::stream_type::UniStreamHeader::QpackDecoder.encode(&mut bytes);
        self.decoder_stream = Some(LocalUni { id: decoder, out: Outgoing::default() });
        self.send_uni(t, UniKind::Decoder, &bytes);
        for (id, header) in [
            (encoder, crate::stream_type::UniStreamHeader::QpackEncoder),
            (decoder, crate::stream_type::UniStreamHeader::QpackDecoder),
        ] {
            crate::qlog::stream_type_set(t, id, Some(&header));
        }
        // The critical streams go before any request: a request's field
        // section can wait on encoder instructions, and the peer's encoder
        // on this end's acknowledgments.
        for id in [control, encoder, decoder] {
            let _ = t.set_priority(id, CRITICAL_PRIORITY);
        }
        if self.config.grease {
            self.send_grease_stream(t);
        }
        Ok(())
    }

    /// The SETTINGS this end sends.
    fn local_settings(&self) -> Settings {
        Settings {
            qpack_max_table_capacity: varint(self.config.qpack_max_table_capacity),
            qpack_blocked_streams: varint(self.config.qpack_blocked_streams),
            max_field_section_size: Some(varint(self.config.max_field_section_size)),
            enable_connect_protocol: self.side == Side::Server
                && self.config.enable_connect_protocol,
            ..Settings::default()
        }
    }

    /// A new grease value (a xorshift step over the caller's seed).
    fn next_random(&mut self) -> u64 {
        let mut x = self.random | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }

    /// Client: sends a request's header section on a new stream and, with
    /// `end`, ends the request there; only after [`Connection::open`]
    /// (`InvalidState` before). The fields must make a valid request
    /// ([`crate::message::request_fields`] builds one); a `priority`
    /// field among them is what the server schedules by (RFC 9218).
    pub fn send_request<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        fields: &[Field],
        end: bool,
    ) -> Result<StreamId, SendError> {
        self.check_ready()?;
        if self.side != Side::Client {
            return Err(SendError::InvalidState("only clients send requests"));
        }
        //= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
        //# Endpoints MUST NOT initiate new requests or promise new pushes on the connection
        //# after receipt of a GOAWAY frame from the peer.
        if self.goaway_received.is_some() {
            return Err(SendError::GoingAway);
        }
        let head = message::check_request(fields, self.peer_allows_extended_connect())
            .map_err(SendError::Malformed)?;
        let id = t.open(Dir::Bi).ok_or(SendError::StreamLimit)?;
        let mut stream = Message::request(head.method.clone());
        stream.sent_final_headers = true;
        self.messages.insert(id, stream);
        self.write_section(t, id, fields)?;
        if end {
            self.finish(t, id)?;
        }
        Ok(id)
    }

    /// Whether the peer (a server) announced extended CONNECT.
    fn peer_allows_extended_connect(&self) -> bool {
        self.peer_settings.is_some_and(|s| s.enable_connect_protocol)
    }

    /// Server: sends a response's header section on request (or push)
    /// stream `stream`: interim (1xx) ones any number of times, then the
    /// final one; with `end`, the response ends there. Only after
    /// [`Connection::open`] (`InvalidState` before).
    pub fn send_response<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        fields: &[Field],
        end: bool,
    ) -> Result<(), SendError> {
        self.check_ready()?;
        if self.side != Side::Server {
            return Err(SendError::InvalidState("only servers send responses"));
        }
        let head = message::check_response(fields).map_err(SendError::Malformed)?;
        let message =
            self.messages.get_mut(&stream).ok_or(SendError::InvalidState("no such stream"))?;
        if message.sent_final_headers {
            return Err(SendError::InvalidState("the final response was sent"));
        }
        if head.is_informational() && end {
            return Err(SendError::InvalidState("an interim response cannot end the stream"));
        }
        message.sent_final_headers = !head.is_informational();
        self.write_section(t, stream, fields)?;
        if end {
            self.finish(t, stream)?;
        }
        Ok(())
    }

    /// Encodes `fields` as a HEADERS frame on `stream`, with the encoder
    /// instructions they need sent first.
    fn write_section<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        fields: &[Field],
    ) -> Result<(), SendError> {
        let mut section = Vec::new();
        self.encoder.encode(stream.to_varint().into_inner(), fields, &mut section);
        let mut instructions = Vec::new();
        self.encoder.poll_encoder_stream(&mut instructions);
        if !instructions.is_empty() {
            self.send_uni(t, UniKind::Encoder, &instructions);
        }
        let frame = crate::frame::Frame::Headers { field_section: &section };
        let mut bytes = Vec::with_capacity(section.len() + 16);
        frame.encode(&mut bytes);
        crate::qlog::frame_created(t, stream, &frame, bytes.len() as u64, Some(fields));
        self.write_on(t, stream, &bytes)
    }

    /// Queues `bytes` (whole frames) on a message stream and flushes.
    fn write_on<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        let message =
            self.messages.get_mut(&stream).ok_or(SendError::InvalidState("no such stream"))?;
        if message.out.fin_requested() {
            return Err(SendError::InvalidState("the stream is finished"));
        }
        if message.out.is_empty() {
            message.out.write_frame(t, stream, bytes, &[])?;
        } else {
            message.out.push(bytes);
        }
        Ok(())
    }

    /// Sends body bytes on `stream` as one DATA frame: as many of `data`
    /// as fit now (at most [`MAX_DATA_FRAME`]), returning how many. Err
    /// `Blocked` when the stream cannot take any; call again once the
    /// transport says it is writable.
    pub fn send_data<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        data: &[u8],
    ) -> Result<usize, SendError> {
        self.check_open()?;
        let message =
            self.messages.get_mut(&stream).ok_or(SendError::InvalidState("no such stream"))?;
        if !message.sent_final_headers {
            return Err(SendError::InvalidState("the body goes after the final header section"));
        }
        if message.out.fin_requested() || message.sent_trailers {
            return Err(SendError::InvalidState("the stream is finished"));
        }
        if !message.out.flush(t, stream)? {
            return Err(SendError::Blocked);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let payload = &data[..data.len().min(MAX_DATA_FRAME)];
        let frame = crate::frame::Frame::Data { len: payload.len() as u64 };
        let mut header = Vec::with_capacity(16);
        frame.encode(&mut header);
        let raw_len = (header.len() + payload.len()) as u64;
        crate::qlog::frame_created(t, stream, &frame, raw_len, None);
        message.out.write_frame(t, stream, &header, payload)?;
        Ok(payload.len())
    }

    /// Ends the message on `stream` with a trailer section.
    pub fn send_trailers<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        fields: &[Field],
    ) -> Result<(), SendError> {
        self.check_ready()?;
        message::check_trailers(fields).map_err(SendError::Malformed)?;
        let message =
            self.messages.get_mut(&stream).ok_or(SendError::InvalidState("no such stream"))?;
        if !message.sent_final_headers || message.sent_trailers {
            return Err(SendError::InvalidState("trailers go once, after the header section"));
        }
        message.sent_trailers = true;
        self.write_section(t, stream, fields)?;
        self.finish(t, stream)
    }

    /// Ends the message on `stream` (FIN after what is queued). A server
    /// that ends its response before the request's end was read stops
    /// reading it (STOP_SENDING with H3_NO_ERROR): the rest of the request
    /// is not wanted, and the stream's state can go.
    pub fn finish<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
    ) -> Result<(), SendError> {
        self.check_open()?;
        let message =
            self.messages.get_mut(&stream).ok_or(SendError::InvalidState("no such stream"))?;
        if !message.sent_final_headers {
            return Err(SendError::InvalidState("the header section was not sent"));
        }
        message.out.request_fin();
        message.out.flush(t, stream)?;
        if self.side == Side::Server && message.stop_reading() {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
            //# When the server does not need to receive the
            //# remainder of the request, it MAY abort reading the request stream, send a
            //# complete response, and cleanly close the sending part of the stream.  The error
            //# code H3_NO_ERROR SHOULD be used when requesting that the client stop sending on
            //# the request stream.
            let _ = t.stop(stream, ErrorCode::H3_NO_ERROR.to_varint());
            self.decoder.cancel_stream(stream.to_varint().into_inner());
        }
        self.forget_if_done(stream);
        Ok(())
    }

    /// Abandons `stream` both ways: resets this end's side and asks the
    /// peer to stop, with `code` (H3_REQUEST_CANCELLED from a client,
    /// H3_REQUEST_REJECTED from a server that did not process the request;
    /// RFC 9114 §4.1.1).
    pub fn cancel<T: Transport + ?Sized>(&mut self, t: &mut T, stream: StreamId, code: ErrorCode) {
        if self.messages.remove(&stream).is_some() {
            self.abort_stream(t, stream, code);
        }
    }

    /// Resets and stops a stream this layer keeps no more state for.
    fn abort_stream<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        code: ErrorCode,
    ) {
        let _ = t.reset(stream, code.to_varint());
        let _ = t.stop(stream, code.to_varint());
        self.decoder.cancel_stream(stream.to_varint().into_inner());
        self.flush_decoder_stream(t);
    }

    /// Reads body bytes of `stream` into `buf` after [`Event::Data`]: how
    /// many were read, 0 when none are ready (another event follows when
    /// some are).
    pub fn recv_data<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        buf: &mut [u8],
    ) -> usize {
        if self.error.is_some() {
            return 0;
        }
        self.read_body(t, stream, buf)
    }

    /// Sends GOAWAY (RFC 9114 §5.2): a server names the first request it
    /// will not process (every later request is rejected with
    /// H3_REQUEST_REJECTED); a client the first push ID it will not
    /// accept. Once [`Connection::is_idle`], close with
    /// [`Connection::close`].
    pub fn goaway<T: Transport + ?Sized>(&mut self, t: &mut T) -> Result<(), SendError> {
        self.check_open()?;
        if !self.opened {
            return Err(SendError::InvalidState("the control stream is not open"));
        }
        let id = match self.side {
            Side::Server => self.next_request_id,
            Side::Client => self.next_push_id_allowed(),
        };
        //= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
        //# An endpoint MAY send multiple GOAWAY frames indicating different identifiers,
        //# but the identifier in each frame MUST NOT be greater than the identifier in any
        //# previous frame
        let id = self.goaway_sent.map_or(id, |sent| sent.into_inner().min(id));
        let id = varint(id);
        self.goaway_sent = Some(id);
        let frame = crate::frame::Frame::Goaway(id);
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let control = self.control.as_ref().map_or(id_zero(), |c| c.id);
        crate::qlog::frame_created(t, control, &frame, bytes.len() as u64, None);
        self.send_uni(t, UniKind::Control, &bytes);
        Ok(())
    }

    /// Client: the push ID a GOAWAY names: one past the largest push
    /// allowed so far, so promised pushes may still complete.
    fn next_push_id_allowed(&self) -> u64 {
        self.max_push_id.map_or(0, |m| m + 1)
    }

    /// Closes the connection with H3_NO_ERROR (after a graceful drain).
    pub fn close<T: Transport + ?Sized>(&mut self, t: &mut T) {
        t.close(ErrorCode::H3_NO_ERROR.to_varint(), b"");
        self.messages.clear();
    }

    /// Sets a request's priority (RFC 9218): a client sends
    /// PRIORITY_UPDATE, a server applies it to the transport stream.
    pub fn set_priority<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        priority: Priority,
    ) -> Result<(), SendError> {
        self.check_open()?;
        match self.side {
            Side::Server => {
                t.set_priority(stream, priority.transport_priority())?;
                crate::qlog::priority_updated(
                    t,
                    crate::qlog::PriorityElement::Stream(stream),
                    None,
                    priority.to_field_value().as_bytes(),
                    Some(crate::qlog::PriorityTrigger::Local),
                    Some(crate::qlog::PriorityReason::LocalPolicy),
                );
                Ok(())
            }
            Side::Client => {
                self.check_ready()?;
                if !self.messages.contains_key(&stream) {
                    return Err(SendError::InvalidState("no such stream"));
                }
                let value = priority.to_field_value();
                let frame = crate::frame::Frame::PriorityUpdate {
                    element_id: stream.to_varint(),
                    field_value: value.as_bytes(),
                    push: false,
                };
                let mut bytes = Vec::new();
                frame.encode(&mut bytes);
                let control = self.control.as_ref().map_or(id_zero(), |c| c.id);
                crate::qlog::frame_created(t, control, &frame, bytes.len() as u64, None);
                self.send_uni(t, UniKind::Control, &bytes);
                Ok(())
            }
        }
    }

    /// Server: promises a push on request stream `stream` (PUSH_PROMISE
    /// with `request`) and opens its push stream; answer on the returned
    /// stream with [`Connection::send_response`] and the body calls.
    /// Fails with `InvalidState` while the client allows no more pushes.
    pub fn push_promise<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        request: &[Field],
    ) -> Result<(u64, StreamId), SendError> {
        self.check_ready()?;
        if self.side != Side::Server {
            return Err(SendError::InvalidState("only servers push"));
        }
        if self.goaway_received.is_some_and(|g| self.next_push_id >= g.into_inner()) {
            return Err(SendError::GoingAway);
        }
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.6
        //# In particular, a server is not
        //# able to push until after the client sends a MAX_PUSH_ID frame.
        if self.max_push_id.is_none_or(|max| self.next_push_id > max) {
            return Err(SendError::InvalidState("the client allows no more pushes"));
        }
        message::check_request(request, false).map_err(SendError::Malformed)?;
        if !self.messages.contains_key(&stream) {
            return Err(SendError::InvalidState("no such stream"));
        }
        let push_stream = t.open(Dir::Uni).ok_or(SendError::StreamLimit)?;
        let push_id = self.next_push_id;
        self.next_push_id += 1;
        let mut section = Vec::new();
        let mut push = Message::push_out();
        push.sent_final_headers = false;
        self.messages.insert(push_stream, push);
        self.pushes.insert(push_id, push_stream);
        // The promise is encoded against the request stream: its
        // references are acknowledged with that stream's sections.
        self.encoder.encode(stream.to_varint().into_inner(), request, &mut section);
        let mut instructions = Vec::new();
        self.encoder.poll_encoder_stream(&mut instructions);
        if !instructions.is_empty() {
            self.send_uni(t, UniKind::Encoder, &instructions);
        }
        let frame =
            crate::frame::Frame::PushPromise { push_id: varint(push_id), field_section: &section };
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        crate::qlog::frame_created(t, stream, &frame, bytes.len() as u64, Some(request));
        self.write_on(t, stream, &bytes)?;
        let mut header = Vec::new();
        let push_header = crate::stream_type::UniStreamHeader::Push { push_id: varint(push_id) };
        push_header.encode(&mut header);
        crate::qlog::stream_type_set(t, push_stream, Some(&push_header));
        self.write_on(t, push_stream, &header)?;
        Ok((push_id, push_stream))
    }

    /// Client: declines a promised push (CANCEL_PUSH, and stops its
    /// stream if open).
    pub fn cancel_push<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        push_id: u64,
    ) -> Result<(), SendError> {
        self.check_ready()?;
        if let Some(stream) = self.push_streams_seen.get(&push_id).copied() {
            if self.messages.remove(&stream).is_some() {
                let _ = t.stop(stream, ErrorCode::H3_REQUEST_CANCELLED.to_varint());
                self.decoder.cancel_stream(stream.to_varint().into_inner());
            }
        } else {
            let frame = crate::frame::Frame::CancelPush(varint(push_id));
            let mut bytes = Vec::new();
            frame.encode(&mut bytes);
            self.send_uni(t, UniKind::Control, &bytes);
        }
        self.promises.remove(&push_id);
        crate::qlog::push_resolved(t, Some(push_id), None, crate::qlog::PushDecision::Abandoned);
        Ok(())
    }

    /// Fails calls on a closed connection.
    fn check_open(&self) -> Result<(), SendError> {
        if self.error.is_some() { Err(SendError::Closed) } else { Ok(()) }
    }

    /// Fails calls that send a field section before [`Connection::open`]:
    /// the QPACK encoder may insert into its dynamic table and reference
    /// the entries at once, and with no encoder stream yet the inserts
    /// would be lost while the peer waits for them, its streams blocked
    /// for good. (A client can see the server's SETTINGS, sent as 0.5-RTT
    /// data, before its own handshake completes.)
    fn check_ready(&self) -> Result<(), SendError> {
        self.check_open()?;
        if !self.opened {
            return Err(SendError::InvalidState("open() was not called"));
        }
        Ok(())
    }

    /// The peer opened streams: accepts and reads them.
    pub fn handle_accept<T: Transport + ?Sized>(&mut self, t: &mut T) {
        while self.error.is_none() {
            let Some(id) = t.accept(Dir::Uni) else { break };
            self.incoming.insert(id, Incoming::new());
            self.read_uni(t, id);
        }
        while self.error.is_none() {
            let Some(id) = t.accept(Dir::Bi) else { break };
            self.on_new_request_stream(t, id);
        }
    }

    /// Data, the end, or a reset arrived on `stream`.
    pub fn handle_readable<T: Transport + ?Sized>(&mut self, t: &mut T, stream: StreamId) {
        if self.error.is_some() {
            return;
        }
        if self.incoming.contains_key(&stream) {
            self.read_uni(t, stream);
        } else if self.messages.contains_key(&stream) {
            self.read_message(t, stream);
        }
    }

    /// `stream` can take more data: sends what is queued on it. The
    /// application's own writes (bodies) resume after this.
    pub fn handle_writable<T: Transport + ?Sized>(&mut self, t: &mut T, stream: StreamId) {
        if self.error.is_some() {
            return;
        }
        for kind in [UniKind::Control, UniKind::Encoder, UniKind::Decoder] {
            if self.local_uni(kind).is_some_and(|u| u.id == stream) {
                self.send_uni(t, kind, &[]);
                return;
            }
        }
        if let Some(message) = self.messages.get_mut(&stream) {
            if let Err(e) = message.out.flush(t, stream) {
                self.on_write_error(stream, &e);
            }
            self.forget_if_done(stream);
        }
    }

    /// The peer sent STOP_SENDING on `stream` with `code`.
    pub fn handle_stopped<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        stream: StreamId,
        code: VarInt,
    ) {
        if self.error.is_some() {
            return;
        }
        for kind in [UniKind::Control, UniKind::Encoder, UniKind::Decoder] {
            if self.local_uni(kind).is_some_and(|u| u.id == stream) {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.1
                //# If either
                //# control stream is closed at any point, this MUST be treated as a connection
                //# error of type H3_CLOSED_CRITICAL_STREAM.
                return self.fail(
                    t,
                    H3Error::new(
                        ErrorCode::H3_CLOSED_CRITICAL_STREAM,
                        "the peer stopped a critical stream",
                    ),
                );
            }
        }
        if let Some(message) = self.messages.get_mut(&stream) {
            message.out = Outgoing::default();
            message.out_stopped = true;
            let _ = t.reset(stream, code);
            self.events.push_back(Event::Stopped { stream, code: code.into() });
            self.forget_if_done(stream);
        }
    }

    /// Passes one of quic-proto's stream events to the right handler.
    pub fn handle_stream_event<T: Transport + ?Sized>(&mut self, t: &mut T, event: &StreamEvent) {
        match *event {
            StreamEvent::Opened(_) => self.handle_accept(t),
            StreamEvent::Readable(id) => self.handle_readable(t, id),
            StreamEvent::Writable(id) => self.handle_writable(t, id),
            StreamEvent::Stopped(id, code) => self.handle_stopped(t, id, code),
            _ => {}
        }
    }

    /// For transports without events: accepts new streams, then reads and
    /// flushes every stream this layer knows.
    pub fn handle_all<T: Transport + ?Sized>(&mut self, t: &mut T) {
        self.handle_accept(t);
        let mut ids: Vec<StreamId> = self.incoming.keys().copied().collect();
        ids.extend(self.messages.keys().copied());
        ids.sort_unstable();
        for id in ids {
            self.handle_readable(t, id);
            self.handle_writable(t, id);
        }
        for kind in [UniKind::Control, UniKind::Encoder, UniKind::Decoder] {
            if let Some(id) = self.local_uni(kind).map(|u| u.id) {
                self.handle_writable(t, id);
            }
        }
    }

    /// A write failed on a message stream: the peer stopped it or the
    /// transport is gone.
    fn on_write_error(&mut self, stream: StreamId, e: &WriteError) {
        if let Some(message) = self.messages.get_mut(&stream) {
            message.out = Outgoing::default();
            message.out_stopped = true;
            if let WriteError::Stopped(code) = *e {
                self.events.push_back(Event::Stopped { stream, code: code.into() });
            }
        }
    }

    /// Drops a message stream once both directions are done.
    fn forget_if_done(&mut self, stream: StreamId) {
        if let Some(message) = self.messages.get(&stream)
            && message.is_done(self.side, stream)
        {
            self.messages.remove(&stream);
        }
    }

    /// A local unidirectional stream.
    fn local_uni(&mut self, kind: UniKind) -> Option<&mut LocalUni> {
        match kind {
            UniKind::Control => self.control.as_mut(),
            UniKind::Encoder => self.encoder_stream.as_mut(),
            UniKind::Decoder => self.decoder_stream.as_mut(),
        }
    }

    /// Queues `bytes` on a local unidirectional stream and flushes it. A
    /// critical stream the peer stopped or closed is a connection error.
    fn send_uni<T: Transport + ?Sized>(&mut self, t: &mut T, kind: UniKind, bytes: &[u8]) {
        let Some(uni) = self.local_uni(kind) else { return };
        uni.out.push(bytes);
        let id = uni.id;
        if let Err(e) = uni.out.flush(t, id) {
            match e {
                WriteError::ConnectionLost(_) => {}
                _ => self.fail(
                    t,
                    H3Error::new(
                        ErrorCode::H3_CLOSED_CRITICAL_STREAM,
                        "a critical stream was closed by the peer",
                    ),
                ),
            }
        }
    }

    /// Sends what the QPACK decoder has to say on the decoder stream.
    fn flush_decoder_stream<T: Transport + ?Sized>(&mut self, t: &mut T) {
        let mut bytes = Vec::new();
        self.decoder.poll_decoder_stream(&mut bytes);
        if !bytes.is_empty() {
            self.send_uni(t, UniKind::Decoder, &bytes);
        }
    }

    /// Opens a reserved-type stream carrying a few bytes and ends it, so
    /// that peers that choke on unknown stream types are found (RFC 9114
    /// §6.2.3).
    fn send_grease_stream<T: Transport + ?Sized>(&mut self, t: &mut T) {
        let Some(id) = t.open(Dir::Uni) else { return };
        let mut bytes = Vec::new();
        crate::stream_type::StreamType::grease(self.next_random()).encode(&mut bytes);
        bytes.extend_from_slice(b"grease");
        let mut out = Outgoing::default();
        out.request_fin();
        out.push(&bytes);
        let _ = out.flush(t, id);
    }

    /// A connection error: closes the transport with the error's code.
    fn fail<T: Transport + ?Sized>(&mut self, t: &mut T, error: H3Error) {
        if self.error.is_some() {
            return;
        }
        t.close(error.code.to_varint(), error.reason.as_bytes());
        self.error = Some(error.clone());
        self.messages.clear();
        self.incoming.clear();
        self.events.push_back(Event::Closed(error));
    }

    /// A stream error: resets `stream` both ways with the error's code.
    fn fail_stream<T: Transport + ?Sized>(&mut self, t: &mut T, stream: StreamId, error: H3Error) {
        self.messages.remove(&stream);
        self.abort_stream(t, stream, error.code);
        self.events.push_back(Event::StreamFailed { stream, error });
    }
}

/// The transport priority of the control and QPACK streams: above that of
/// any request (urgency 0 maps to 7).
const CRITICAL_PRIORITY: i32 = Priority::MAX_URGENCY as i32 + 1;

/// The most body bytes [`Connection::send_data`] frames at once: the bound
/// on what a stream queues beyond the transport's buffer.
pub const MAX_DATA_FRAME: usize = 64 << 10;

/// Which of this end's unidirectional streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UniKind {
    Control,
    Encoder,
    Decoder,
}

/// `value` as a VarInt, saturating (config values beyond 2^62 mean "no
/// limit").
fn varint(value: u64) -> VarInt {
    VarInt::from_u64(value).unwrap_or(VarInt::MAX)
}

/// Stream 0, for qlog lines before a stream exists.
fn id_zero() -> StreamId {
    StreamId::from(VarInt::ZERO)
}

/// Converts a QPACK error into the HTTP/3 error it is.
fn qpack_error(e: qpack::Error) -> H3Error {
    if e.is_stream_error() {
        return H3Error::excessive_load(
            "field section larger than SETTINGS_MAX_FIELD_SECTION_SIZE",
        );
    }
    H3Error::new(e.code.into(), "QPACK")
}

/// The type of the frame starting `buf`, once its Type field is there.
fn peek_type(buf: &[u8]) -> Option<crate::frame::FrameType> {
    let mut r = quic_proto::coding::Reader::new(buf);
    VarInt::decode(&mut r).ok().map(crate::frame::FrameType)
}
