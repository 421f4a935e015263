//! Request and push streams: HTTP messages as frames (RFC 9114 §4.1),
//! read frame by frame with bodies handed to the application as they
//! arrive, and the state both directions are in.

use quic_proto::connection::ReadError;
use quic_proto::{Dir, Side, StreamId, VarInt};

use super::send::Outgoing;
use super::{Connection, Event, qpack_error};
use crate::error::{ErrorCode, H3Error};
use crate::frame::{Frame, FrameHeader, FrameType};
use crate::message::{self, BodyLength};
use crate::priority::Priority;
use crate::qpack::{Decoded, Field};
use crate::transport::Transport;

/// How much a stream read asks the transport for at once.
const READ_CHUNK: usize = 16 << 10;

/// Which part of the peer's message comes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A header section: the first, or the next after an interim response.
    Headers,
    /// Content (DATA) or the trailer section.
    Body,
    /// After the trailer section: only the end may follow.
    Trailers,
}

/// Where the reader is in the stream's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameState {
    /// At a frame boundary.
    Boundary,
    /// Inside a DATA frame with this much payload left.
    Data(u64),
    /// Inside an unknown frame with this much payload left to skip.
    Skip(u64),
    /// A field section waits for QPACK encoder instructions: for a
    /// PUSH_PROMISE, with its push ID; and the frame's length (qlog).
    Blocked(Option<u64>, u64),
}

/// One request or push stream.
#[derive(Debug)]
pub(super) struct Message {
    /// Bytes read from the transport and not consumed yet, from `pos`.
    buf: Vec<u8>,
    pos: usize,
    /// The transport reported the end: every byte left is in `buf`.
    fin: bool,
    /// Nothing more is read from this stream.
    recv_done: bool,
    /// This end reads the stream (false for its own push streams).
    receives: bool,
    /// This end sends on the stream (false for a peer's push stream).
    sends: bool,
    phase: Phase,
    frame: FrameState,
    body: BodyLength,
    /// An [`Event::Data`] is out and `recv_data` has not drained it.
    data_event: bool,
    /// Client: the request's method (what the response may carry
    /// depends on it).
    method: Vec<u8>,
    /// CONNECT: after a 2xx, the stream is a tunnel of DATA frames.
    connect: bool,
    tunnel: bool,
    /// Client: the push ID of a push stream.
    push_id: Option<u64>,
    /// A PRIORITY_UPDATE set the priority: the header field no longer
    /// counts (RFC 9218 §7).
    priority_updated: bool,
    pub(super) out: Outgoing,
    /// The peer stopped this end's side, or it was reset.
    pub(super) out_stopped: bool,
    pub(super) sent_final_headers: bool,
    pub(super) sent_trailers: bool,
}

impl Message {
    fn new(receives: bool, sends: bool) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            fin: false,
            recv_done: !receives,
            receives,
            sends,
            phase: Phase::Headers,
            frame: FrameState::Boundary,
            body: BodyLength::default(),
            data_event: false,
            method: Vec::new(),
            connect: false,
            tunnel: false,
            push_id: None,
            priority_updated: false,
            out: Outgoing::default(),
            out_stopped: false,
            sent_final_headers: false,
            sent_trailers: false,
        }
    }

    /// Client: a request stream it opened.
    pub(super) fn request(method: Vec<u8>) -> Self {
        let mut m = Self::new(true, true);
        m.connect = method == b"CONNECT";
        m.method = method;
        m
    }

    /// Server: a request stream the client opened.
    fn request_in() -> Self {
        Self::new(true, true)
    }

    /// Server: a push stream it opened.
    pub(super) fn push_out() -> Self {
        Self::new(false, true)
    }

    /// Client: a push stream the server opened, with the bytes read past
    /// its header.
    pub(super) fn push_in(push_id: u64, rest: Vec<u8>) -> Self {
        let mut m = Self::new(true, false);
        m.push_id = Some(push_id);
        m.buf = rest;
        m
    }

    /// A PRIORITY_UPDATE set this stream's priority: the `priority`
    /// header field is ignored from now on.
    pub(super) fn set_priority_updated(&mut self) {
        self.priority_updated = true;
    }

    /// Stops reading (the request's rest is not wanted): whether it was
    /// still being read.
    pub(super) fn stop_reading(&mut self) -> bool {
        let was = self.receives && !self.recv_done;
        self.recv_done = true;
        was
    }

    /// Whether both directions are over.
    pub(super) fn is_done(&self, _side: Side, _id: StreamId) -> bool {
        let sent = !self.sends || self.out_stopped || (self.out.finished() && self.out.is_empty());
        let read = !self.receives || self.recv_done;
        sent && read
    }

    fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads more of the stream into `buf`.
    fn fill<T: Transport + ?Sized>(&mut self, t: &mut T, id: StreamId) -> Fill {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let result = t.read(id, &mut self.buf[start..]);
        let got = match result {
            Ok(Some(n)) => n,
            _ => 0,
        };
        self.buf.truncate(start + got);
        match result {
            Ok(Some(_)) => Fill::More,
            Ok(None) => {
                self.fin = true;
                Fill::More
            }
            Err(ReadError::Blocked) => Fill::Blocked,
            Err(ReadError::Reset(code)) => Fill::Reset(code),
            Err(_) => Fill::Gone,
        }
    }
}

/// What a read from the transport gave.
enum Fill {
    More,
    Blocked,
    Reset(VarInt),
    Gone,
}

/// What processing a frame at the boundary decided.
enum Step {
    Continue,
    Stop,
}

impl Connection {
    /// Server: the client opened request stream `id`.
    pub(super) fn on_new_request_stream<T: Transport + ?Sized>(&mut self, t: &mut T, id: StreamId) {
        if self.side == Side::Client || id.dir() != Dir::Bi {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-6.1
            //# Clients MUST treat receipt of a
            //# server-initiated bidirectional stream as a connection error of type
            //# H3_STREAM_CREATION_ERROR unless such an extension has been negotiated.
            return self
                .fail(t, H3Error::stream_creation_error("server-initiated bidirectional stream"));
        }
        let raw = id.to_varint().into_inner();
        if let Some(goaway) = self.goaway_sent
            && raw >= goaway.into_inner()
        {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
            //# Upon sending a GOAWAY frame, the endpoint SHOULD explicitly cancel
            //# (see Sections {{<request-cancellation}} and {{<frame-cancel-push}}) any requests
            //# or pushes that have identifiers greater than or equal to the one indicated, in
            //# order to clean up transport state for the affected streams.
            let _ = t.reset(id, ErrorCode::H3_REQUEST_REJECTED.to_varint());
            let _ = t.stop(id, ErrorCode::H3_REQUEST_REJECTED.to_varint());
            return;
        }
        self.next_request_id = self.next_request_id.max(raw + 4);
        let mut message = Message::request_in();
        // RFC 9218 §4: a request without priority signals has the default
        // (urgency 3, not incremental).
        let priority = match self.early_priorities.remove(&raw) {
            Some(priority) => {
                message.priority_updated = true;
                priority
            }
            None => Priority::DEFAULT,
        };
        let _ = t.set_priority(id, priority.transport_priority());
        self.messages.insert(id, message);
        self.read_message(t, id);
    }

    /// Reads frames on a request or push stream until it blocks, the
    /// application must read a body, or the message ends.
    pub(super) fn read_message<T: Transport + ?Sized>(&mut self, t: &mut T, id: StreamId) {
        loop {
            if self.error.is_some() {
                return;
            }
            let Some(m) = self.messages.get_mut(&id) else { return };
            if m.recv_done {
                return;
            }
            match m.frame {
                FrameState::Blocked(..) => {
                    // Read on only to notice a reset, which cancels the
                    // section; at most one chunk is held meanwhile.
                    if m.fin || m.buffered() >= READ_CHUNK {
                        return;
                    }
                    match m.fill(t, id) {
                        Fill::More => continue,
                        Fill::Reset(code) => return self.on_peer_reset(t, id, code),
                        Fill::Blocked | Fill::Gone => return,
                    }
                }
                FrameState::Data(remaining) if remaining > 0 => {
                    if m.buffered() == 0 && m.fin {
                        return self.on_truncated(t);
                    }
                    // The body is read by `recv_data`, straight from the
                    // transport: one event until it drains.
                    if !m.data_event {
                        m.data_event = true;
                        self.events.push_back(Event::Data(id));
                    }
                    return;
                }
                FrameState::Data(_) => m.frame = FrameState::Boundary,
                FrameState::Skip(remaining) => {
                    let skip = (m.buffered() as u64).min(remaining);
                    m.pos += skip as usize;
                    let left = remaining - skip;
                    m.frame = if left == 0 { FrameState::Boundary } else { FrameState::Skip(left) };
                    if left > 0 {
                        if m.fin {
                            return self.on_truncated(t);
                        }
                        match m.fill(t, id) {
                            Fill::More => {}
                            Fill::Blocked => return,
                            Fill::Reset(code) => return self.on_peer_reset(t, id, code),
                            Fill::Gone => return,
                        }
                    }
                    continue;
                }
                FrameState::Boundary => {}
            }
            match self.step_frame(t, id) {
                Step::Continue => {}
                Step::Stop => return,
            }
        }
    }

    /// At a frame boundary: reads and handles the next frame header (and
    /// payload, for HEADERS and PUSH_PROMISE).
    fn step_frame<T: Transport + ?Sized>(&mut self, t: &mut T, id: StreamId) -> Step {
        let limit = self.config.max_field_section_size;
        let Some(m) = self.messages.get_mut(&id) else { return Step::Stop };
        // A frame that has no place on a message stream is refused on its
        // type alone, before its length is judged: the peer's mistake is
        // where it sent the frame, whatever its payload.
        if let Some(ty) = super::peek_type(&m.buf[m.pos..])
            && ty.is_buffered()
            && ty != FrameType::HEADERS
            && ty != FrameType::PUSH_PROMISE
        {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4
            //# If an endpoint receives a SETTINGS frame on a different
            //# stream, the endpoint MUST respond with a connection error of type
            //# H3_FRAME_UNEXPECTED.
            //
            //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.3
            //# Receiving a CANCEL_PUSH
            //# frame on a stream other than the control stream MUST be treated as a connection
            //# error of type H3_FRAME_UNEXPECTED.
            //
            // The same holds for GOAWAY (§7.2.6), MAX_PUSH_ID (§7.2.7) and
            // PRIORITY_UPDATE (RFC 9218 §7.1).
            self.fail(
                t,
                H3Error::frame_unexpected("control frame on a request stream").with_frame(ty),
            );
            return Step::Stop;
        }
        // Field sections are bounded below as a stream error.
        let header = match FrameHeader::decode(&m.buf[m.pos..], u64::MAX) {
            Err(e) => {
                self.fail(t, e);
                return Step::Stop;
            }
            Ok(None) => {
                if m.buffered() == 0 && m.fin {
                    self.on_message_end(t, id);
                    return Step::Stop;
                }
                if m.fin {
                    self.on_truncated(t);
                    return Step::Stop;
                }
                return match m.fill(t, id) {
                    Fill::More => Step::Continue,
                    Fill::Blocked | Fill::Gone => Step::Stop,
                    Fill::Reset(code) => {
                        self.on_peer_reset(t, id, code);
                        Step::Stop
                    }
                };
            }
            Ok(Some(header)) => header,
        };
        match header.ty {
            FrameType::DATA => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
                //# Receipt of an invalid sequence of frames MUST be treated as a connection error
                //# of type H3_FRAME_UNEXPECTED.  In particular, a DATA frame before
                //# any HEADERS frame, or a HEADERS or DATA frame after the trailing HEADERS frame,
                //# is considered invalid.
                if m.phase != Phase::Body {
                    self.fail(
                        t,
                        H3Error::frame_unexpected("DATA outside a message body")
                            .with_frame(header.ty),
                    );
                    return Step::Stop;
                }
                m.pos += header.header_len;
                crate::qlog::frame_parsed(
                    t,
                    id,
                    &Frame::Data { len: header.len },
                    header.header_len as u64 + header.len,
                    None,
                );
                if let Err(malformed) = m.body.on_data(header.len) {
                    self.fail_stream(t, id, malformed.into());
                    return Step::Stop;
                }
                m.frame = FrameState::Data(header.len);
                Step::Continue
            }
            FrameType::HEADERS | FrameType::PUSH_PROMISE => {
                if m.tunnel {
                    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.4
                    //# Once the CONNECT method has completed, only DATA frames are permitted to be sent
                    //# on the stream.  Extension frames MAY be used if specifically permitted by the
                    //# definition of the extension.  Receipt of any other known frame type MUST be
                    //# treated as a connection error of type H3_FRAME_UNEXPECTED.
                    self.fail(
                        t,
                        H3Error::frame_unexpected("a field section in a CONNECT tunnel")
                            .with_frame(header.ty),
                    );
                    return Step::Stop;
                }
                if header.ty == FrameType::PUSH_PROMISE
                    && (self.side == Side::Server || m.push_id.is_some())
                {
                    //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.5
                    //# A client MUST NOT send a PUSH_PROMISE frame.  A server MUST treat the receipt of
                    //# a PUSH_PROMISE frame as a connection error of type H3_FRAME_UNEXPECTED.
                    //
                    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
                    //# PUSH_PROMISE frames are not permitted on push streams; a pushed
                    //# response that includes PUSH_PROMISE frames MUST be treated as a connection error
                    //# of type H3_FRAME_UNEXPECTED.
                    self.fail(
                        t,
                        H3Error::frame_unexpected("PUSH_PROMISE where none may be")
                            .with_frame(header.ty),
                    );
                    return Step::Stop;
                }
                if header.ty == FrameType::HEADERS && m.phase == Phase::Trailers {
                    self.fail(
                        t,
                        H3Error::frame_unexpected("HEADERS after the trailers")
                            .with_frame(header.ty),
                    );
                    return Step::Stop;
                }
                if header.len > limit {
                    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.2.2
                    //# An HTTP/3 implementation MAY impose a limit on the maximum size of the message
                    //# header it will accept on an individual HTTP message.
                    self.fail_stream(
                        t,
                        id,
                        H3Error::excessive_load(
                            "field section longer than SETTINGS_MAX_FIELD_SECTION_SIZE",
                        )
                        .with_frame(header.ty),
                    );
                    return Step::Stop;
                }
                let total = header.header_len + header.len as usize;
                if m.buffered() < total {
                    if m.fin {
                        self.on_truncated(t);
                        return Step::Stop;
                    }
                    return match m.fill(t, id) {
                        Fill::More => Step::Continue,
                        Fill::Blocked | Fill::Gone => Step::Stop,
                        Fill::Reset(code) => {
                            self.on_peer_reset(t, id, code);
                            Step::Stop
                        }
                    };
                }
                let payload_start = m.pos + header.header_len;
                let payload = &m.buf[payload_start..m.pos + total];
                let frame = match Frame::decode_payload(header.ty, payload) {
                    Ok(frame) => frame,
                    Err(e) => {
                        self.fail(t, e);
                        return Step::Stop;
                    }
                };
                let (promise, section) = match frame {
                    Frame::PushPromise { push_id, field_section } => {
                        (Some(push_id.into_inner()), field_section)
                    }
                    Frame::Headers { field_section } => (None, field_section),
                    _ => unreachable!("decode_payload keeps the type it was given"),
                };
                if let Some(push_id) = promise {
                    //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.5
                    //# A client MUST treat receipt of a
                    //# PUSH_PROMISE frame that contains a larger push ID than the client has advertised
                    //# as a connection error of H3_ID_ERROR.
                    if self.max_push_id.is_none_or(|max| push_id > max) {
                        self.fail(
                            t,
                            H3Error::id_error("push ID above MAX_PUSH_ID").with_frame(header.ty),
                        );
                        return Step::Stop;
                    }
                }
                let decoded = self.decoder.decode_section(id.to_varint().into_inner(), section);
                m.pos += total;
                match decoded {
                    Ok(Decoded::Fields(fields)) => {
                        self.flush_decoder_stream(t);
                        self.on_section(t, id, promise, total as u64, fields);
                        Step::Continue
                    }
                    Ok(Decoded::Blocked) => {
                        m.frame = FrameState::Blocked(promise, total as u64);
                        Step::Stop
                    }
                    Err(e) if e.is_stream_error() => {
                        self.flush_decoder_stream(t);
                        self.fail_stream(t, id, qpack_error(e).with_frame(header.ty));
                        Step::Stop
                    }
                    Err(e) => {
                        self.fail(t, qpack_error(e));
                        Step::Stop
                    }
                }
            }
            ty if ty.is_buffered() => unreachable!("refused by type above"),
            ty => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-9
                //# Implementations MUST ignore unknown or unsupported values in all extensible
                //# protocol elements.
                m.pos += header.header_len;
                m.frame = FrameState::Skip(header.len);
                crate::qlog::frame_parsed(
                    t,
                    id,
                    &Frame::Unknown { ty, len: header.len },
                    header.header_len as u64 + header.len,
                    None,
                );
                Step::Continue
            }
        }
    }

    /// A field section on `id` was decoded: a promise, a message's header
    /// section, or its trailers.
    pub(super) fn on_section<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        id: StreamId,
        promise: Option<u64>,
        raw_len: u64,
        fields: Vec<Field>,
    ) {
        let Some(m) = self.messages.get_mut(&id) else { return };
        m.frame = FrameState::Boundary;
        if let Some(push_id) = promise {
            let frame = Frame::PushPromise { push_id: super::varint(push_id), field_section: &[] };
            crate::qlog::frame_parsed(t, id, &frame, raw_len, Some(&fields));
            if let Err(malformed) = message::check_request(&fields, false) {
                self.fail_stream(t, id, malformed.into());
                return;
            }
            if let Some(earlier) = self.promises.get(&push_id) {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-4.6
                //# When the same push ID is promised on multiple
                //# request streams, the decompressed request field sections MUST contain the same
                //# fields in the same order, and both the name and the value in each field MUST be
                //# identical.
                //
                //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.5
                //# If a client receives a push ID that has already been promised and detects
                //# a mismatch, it MUST respond with a connection error of type
                //# H3_GENERAL_PROTOCOL_ERROR.
                if *earlier != fields {
                    self.fail(
                        t,
                        H3Error::general_protocol_error("one push ID promised two requests"),
                    );
                }
                return;
            }
            self.promises.insert(push_id, fields.clone());
            self.events.push_back(Event::PushPromise { stream: id, push_id, fields });
            return;
        }
        let frame = Frame::Headers { field_section: &[] };
        crate::qlog::frame_parsed(t, id, &frame, raw_len, Some(&fields));
        let end = m.buffered() == 0 && m.fin;
        match m.phase {
            Phase::Headers if self.side == Side::Server => {
                let head =
                    match message::check_request(&fields, self.config.enable_connect_protocol) {
                        Ok(head) => head,
                        Err(malformed) => return self.fail_stream(t, id, malformed.into()),
                    };
                m.connect = head.method == b"CONNECT";
                m.tunnel = m.connect;
                m.body = head.body_length();
                m.phase = Phase::Body;
                if !m.priority_updated {
                    let mut values = fields
                        .iter()
                        .filter(|f| f.name == b"priority")
                        .map(|f| f.value.as_slice())
                        .peekable();
                    // Without the field the stream keeps the default it
                    // opened with.
                    if values.peek().is_some()
                        && let Ok(priority) = Priority::from_fields(values)
                    {
                        let _ = t.set_priority(id, priority.transport_priority());
                        crate::qlog::priority_updated(
                            t,
                            crate::qlog::PriorityElement::Stream(id),
                            None,
                            priority.to_field_value().as_bytes(),
                            Some(crate::qlog::PriorityTrigger::ClientSignalReceived),
                            Some(crate::qlog::PriorityReason::ClientSignalOnly),
                        );
                    }
                }
                self.events.push_back(Event::Headers { stream: id, fields, end });
            }
            Phase::Headers => {
                let head = match message::check_response(&fields) {
                    Ok(head) => head,
                    Err(malformed) => return self.fail_stream(t, id, malformed.into()),
                };
                if !head.is_informational() {
                    m.tunnel = m.connect && (200..300).contains(&head.status);
                    m.body = head.body_length(&m.method);
                    m.phase = Phase::Body;
                }
                self.events.push_back(Event::Headers { stream: id, fields, end });
            }
            Phase::Body => {
                if let Err(malformed) = message::check_trailers(&fields) {
                    return self.fail_stream(t, id, malformed.into());
                }
                m.phase = Phase::Trailers;
                self.events.push_back(Event::Trailers { stream: id, fields });
            }
            Phase::Trailers => {
                self.fail(t, H3Error::frame_unexpected("HEADERS after the trailers"));
            }
        }
    }

    /// QPACK sections that were blocked are decoded: carry on with their
    /// streams.
    pub(super) fn on_unblocked<T: Transport + ?Sized>(&mut self, t: &mut T) {
        while let Some((raw, result)) = self.decoder.poll_unblocked() {
            if self.error.is_some() {
                return;
            }
            let id = StreamId::from(super::varint(raw));
            let (promise, raw_len) = match self.messages.get(&id).map(|m| m.frame) {
                Some(FrameState::Blocked(promise, raw_len)) => (promise, raw_len),
                _ => continue,
            };
            match result {
                Ok(fields) => {
                    self.flush_decoder_stream(t);
                    self.on_section(t, id, promise, raw_len, fields);
                    self.read_message(t, id);
                }
                Err(e) if e.is_stream_error() => {
                    self.flush_decoder_stream(t);
                    self.fail_stream(t, id, qpack_error(e));
                }
                Err(e) => return self.fail(t, qpack_error(e)),
            }
        }
    }

    /// The stream ended cleanly at a frame boundary.
    fn on_message_end<T: Transport + ?Sized>(&mut self, t: &mut T, id: StreamId) {
        let Some(m) = self.messages.get_mut(&id) else { return };
        m.recv_done = true;
        match m.phase {
            Phase::Headers if self.side == Side::Server => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
                //# If a client-initiated stream terminates without enough of the HTTP
                //# message to provide a complete response, the server SHOULD abort its response
                //# stream with the error code H3_REQUEST_INCOMPLETE.
                let error = H3Error::new(
                    ErrorCode::H3_REQUEST_INCOMPLETE,
                    "the request stream ended before its header section",
                );
                return self.fail_stream(t, id, error);
            }
            Phase::Headers => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
                //# Malformed requests or responses that are detected MUST be treated as a stream
                //# error of type H3_MESSAGE_ERROR.
                return self.fail_stream(
                    t,
                    id,
                    H3Error::new(
                        ErrorCode::H3_MESSAGE_ERROR,
                        "the stream ended without a final response",
                    ),
                );
            }
            Phase::Body => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
                //# A request or response that is defined as having content when it contains a
                //# Content-Length header field ({{Section 8.6 of RFC9110}}) is malformed if the
                //# value of the Content-Length header field does not equal the sum of the DATA
                //# frame lengths received.
                if let Err(malformed) = m.body.on_end() {
                    return self.fail_stream(t, id, malformed.into());
                }
            }
            Phase::Trailers => {}
        }
        self.events.push_back(Event::Finished(id));
        self.forget_if_done(id);
    }

    /// The stream ended inside a frame.
    fn on_truncated<T: Transport + ?Sized>(&mut self, t: &mut T) {
        //= https://www.rfc-editor.org/rfc/rfc9114#section-7.1
        //# When a stream terminates cleanly, if the last frame on the stream was truncated,
        //# this MUST be treated as a connection error of type H3_FRAME_ERROR.
        self.fail(t, H3Error::frame_error("the stream ended inside a frame"));
    }

    /// The peer reset its side of a message stream.
    pub(super) fn on_peer_reset<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        id: StreamId,
        code: VarInt,
    ) {
        let Some(m) = self.messages.get_mut(&id) else { return };
        m.recv_done = true;
        let unseen = m.phase == Phase::Headers;
        if matches!(m.frame, FrameState::Blocked(..)) || unseen {
            self.decoder.cancel_stream(id.to_varint().into_inner());
            self.flush_decoder_stream(t);
        }
        if self.side == Side::Server && unseen {
            // The application never saw this request: nothing was
            // processed, so the stream goes without a word to it.
            //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.1
            //# Upon
            //# receipt of this error code, a server MAY abruptly terminate the response using
            //# the error code H3_REQUEST_REJECTED if no processing was performed.
            self.messages.remove(&id);
            let _ = t.reset(id, ErrorCode::H3_REQUEST_REJECTED.to_varint());
            return;
        }
        self.events.push_back(Event::Reset { stream: id, code: ErrorCode::from(code) });
        self.forget_if_done(id);
    }

    /// Reads body bytes for the application (after [`Event::Data`]),
    /// across DATA frames, straight from the transport where it can.
    pub(super) fn read_body<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        id: StreamId,
        buf: &mut [u8],
    ) -> usize {
        let mut n = 0;
        loop {
            let Some(m) = self.messages.get_mut(&id) else { return n };
            let FrameState::Data(remaining) = m.frame else { break };
            if remaining == 0 {
                // On to the next frame, without announcing the body anew:
                // the application is reading it now.
                m.frame = FrameState::Boundary;
                m.data_event = true;
                self.read_message(t, id);
                continue;
            }
            if n == buf.len() {
                // More may follow: the application calls again until 0,
                // so the event it is answering still stands.
                return n;
            }
            let want = (remaining.min((buf.len() - n) as u64)) as usize;
            if m.buffered() > 0 {
                let k = want.min(m.buffered());
                buf[n..n + k].copy_from_slice(&m.buf[m.pos..m.pos + k]);
                m.pos += k;
                n += k;
                m.frame = FrameState::Data(remaining - k as u64);
                continue;
            }
            if m.fin {
                break;
            }
            match t.read(id, &mut buf[n..n + want]) {
                Ok(Some(k)) if k > 0 => {
                    n += k;
                    m.frame = FrameState::Data(remaining - k as u64);
                }
                Ok(Some(_)) | Err(ReadError::Blocked) => break,
                Ok(None) => {
                    m.fin = true;
                    break;
                }
                Err(ReadError::Reset(code)) => {
                    self.on_peer_reset(t, id, code);
                    return n;
                }
                Err(_) => return n,
            }
        }
        // Drained: the next `Event::Data` comes when more arrives.
        if let Some(m) = self.messages.get_mut(&id) {
            m.data_event = false;
            if m.fin && m.buffered() == 0 || m.frame == FrameState::Boundary {
                // The end of the message, or a frame cut short.
                self.read_message(t, id);
            }
        }
        n
    }
}
