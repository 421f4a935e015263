//! The peer's unidirectional streams (RFC 9114 §6.2): identified by their
//! type, then read as the control stream (SETTINGS first, then GOAWAY,
//! MAX_PUSH_ID, CANCEL_PUSH, PRIORITY_UPDATE), as QPACK encoder and
//! decoder streams, or as push streams; unknown types are refused.

use quic_proto::connection::ReadError;
use quic_proto::{Dir, Side, StreamId, VarInt};

use super::message_stream::Message;
use super::{Connection, Event};
use crate::error::{ErrorCode, H3Error};
use crate::frame::{Frame, FrameHeader, FrameType};
use crate::priority::Priority;
use crate::settings::Settings;
use crate::stream_type::UniStreamHeader;
use crate::transport::Transport;

/// How much a read asks for on the control and QPACK streams.
const READ_CHUNK: usize = 4096;

/// The most PRIORITY_UPDATEs kept for request streams not opened yet: a
/// client can only refer to streams its limit lets it open soon, and
/// each costs a few bytes; past this they are ignored.
const MAX_EARLY_PRIORITIES: usize = 256;

/// A peer unidirectional stream this layer reads.
#[derive(Debug)]
pub(super) enum Incoming {
    /// Its type has not fully arrived.
    Identifying(Vec<u8>),
    /// The peer's control stream: bytes from `pos`, and an unknown
    /// frame's payload left to skip.
    Control { buf: Vec<u8>, pos: usize, skip: u64, settings_seen: bool },
    /// The peer's QPACK encoder stream.
    Encoder,
    /// The peer's QPACK decoder stream.
    Decoder,
}

impl Incoming {
    pub(super) fn new() -> Self {
        Self::Identifying(Vec::new())
    }
}

/// What a read gave.
enum Read {
    Data(usize),
    End,
    Blocked,
    Reset,
    Gone,
}

fn read<T: Transport + ?Sized>(t: &mut T, id: StreamId, buf: &mut [u8]) -> Read {
    match t.read(id, buf) {
        Ok(Some(n)) => Read::Data(n),
        Ok(None) => Read::End,
        Err(ReadError::Blocked) => Read::Blocked,
        Err(ReadError::Reset(_)) => Read::Reset,
        Err(_) => Read::Gone,
    }
}

impl Connection {
    /// Reads a peer unidirectional stream as far as it goes.
    pub(super) fn read_uni<T: Transport + ?Sized>(&mut self, t: &mut T, id: StreamId) {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if self.error.is_some() {
                return;
            }
            let Some(incoming) = self.incoming.get_mut(&id) else { return };
            match incoming {
                Incoming::Identifying(buf) => {
                    // The header is at most two integers: read no further
                    // than it can reach, so that nothing past it is taken
                    // for a stream that turns out to be unwanted.
                    let want = 16usize.saturating_sub(buf.len()).max(1);
                    match read(t, id, &mut chunk[..want]) {
                        Read::Data(n) => buf.extend_from_slice(&chunk[..n]),
                        //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2
                        //# A receiver MUST tolerate unidirectional streams being closed or reset prior to
                        //# the reception of the unidirectional stream header.
                        Read::End | Read::Reset | Read::Gone => {
                            self.incoming.remove(&id);
                            return;
                        }
                        Read::Blocked => return,
                    }
                    let Some((header, len)) = UniStreamHeader::decode(buf) else { continue };
                    let rest = buf.split_off(len);
                    self.on_stream_type(t, id, header, rest);
                }
                Incoming::Control { .. } => return self.read_control(t, id),
                Incoming::Encoder | Incoming::Decoder => {
                    let is_encoder = matches!(incoming, Incoming::Encoder);
                    match read(t, id, &mut chunk) {
                        Read::Data(n) => self.on_qpack_bytes(t, is_encoder, &chunk[..n]),
                        Read::Blocked | Read::Gone => return,
                        Read::End | Read::Reset => return self.on_critical_closed(t),
                    }
                }
            }
        }
    }

    /// A peer unidirectional stream's type arrived; `rest` is what was
    /// read past it.
    fn on_stream_type<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        id: StreamId,
        header: UniStreamHeader,
        rest: Vec<u8>,
    ) {
        crate::qlog::stream_type_set(t, id, Some(&header));
        let slot = match header {
            UniStreamHeader::Control => &mut self.peer_control,
            UniStreamHeader::QpackEncoder => &mut self.peer_encoder,
            UniStreamHeader::QpackDecoder => &mut self.peer_decoder,
            UniStreamHeader::Push { push_id } => {
                self.incoming.remove(&id);
                return self.on_push_stream(t, id, push_id.into_inner(), rest);
            }
            _ => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2
                //# Recipients of unknown stream types MUST either abort reading of the
                //# stream or discard incoming data without further processing.  If reading is
                //# aborted, the recipient SHOULD use the H3_STREAM_CREATION_ERROR error code or a
                //# reserved error code ({{http-error-codes}}).
                self.incoming.remove(&id);
                let _ = t.stop(id, ErrorCode::H3_STREAM_CREATION_ERROR.to_varint());
                return;
            }
        };
        if slot.is_some() {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.1
            //# Only one control stream per peer is permitted;
            //# receipt of a second stream claiming to be a control stream MUST be treated as a
            //# connection error of type H3_STREAM_CREATION_ERROR.
            //
            //= https://www.rfc-editor.org/rfc/rfc9204#section-4.2
            //# Receipt of a second instance of either stream type MUST be
            //# treated as a connection error of type H3_STREAM_CREATION_ERROR.
            return self
                .fail(t, H3Error::stream_creation_error("a second critical stream of one type"));
        }
        *slot = Some(id);
        match header {
            UniStreamHeader::Control => {
                let incoming =
                    Incoming::Control { buf: rest, pos: 0, skip: 0, settings_seen: false };
                self.incoming.insert(id, incoming);
            }
            UniStreamHeader::QpackEncoder => {
                self.incoming.insert(id, Incoming::Encoder);
                self.on_qpack_bytes(t, true, &rest);
            }
            _ => {
                self.incoming.insert(id, Incoming::Decoder);
                self.on_qpack_bytes(t, false, &rest);
            }
        }
    }

    /// Bytes on the peer's QPACK encoder or decoder stream.
    fn on_qpack_bytes<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        encoder_stream: bool,
        bytes: &[u8],
    ) {
        if bytes.is_empty() {
            return;
        }
        if encoder_stream {
            if let Err(e) = self.decoder.handle_encoder_stream(bytes) {
                return self.fail(t, super::qpack_error(e));
            }
            self.on_unblocked(t);
            // Insert Count Increment for what arrived.
            self.flush_decoder_stream(t);
        } else if let Err(e) = self.encoder.handle_decoder_stream(bytes) {
            self.fail(t, super::qpack_error(e));
        }
    }

    /// A critical stream ended or was reset.
    fn on_critical_closed<T: Transport + ?Sized>(&mut self, t: &mut T) {
        //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.1
        //# If either
        //# control stream is closed at any point, this MUST be treated as a connection
        //# error of type H3_CLOSED_CRITICAL_STREAM.
        //
        //= https://www.rfc-editor.org/rfc/rfc9204#section-4.2
        //# Closure of either unidirectional stream type MUST be treated as a connection
        //# error of type H3_CLOSED_CRITICAL_STREAM.
        self.fail(
            t,
            H3Error::new(ErrorCode::H3_CLOSED_CRITICAL_STREAM, "the peer closed a critical stream"),
        );
    }

    /// Client: a push stream for `push_id` arrived.
    fn on_push_stream<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        id: StreamId,
        push_id: u64,
        rest: Vec<u8>,
    ) {
        if self.side == Side::Server {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.2
            //# Only servers can push; if a server receives a client-initiated push stream, this
            //# MUST be treated as a connection error of type H3_STREAM_CREATION_ERROR.
            return self.fail(t, H3Error::stream_creation_error("client-initiated push stream"));
        }
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.6
        //# A client MUST
        //# treat receipt of a push stream as a connection error of type H3_ID_ERROR
        //# when no MAX_PUSH_ID frame has been sent or when the stream
        //# references a push ID that is greater than the maximum push ID.
        if self.max_push_id.is_none_or(|max| push_id > max) {
            return self.fail(t, H3Error::id_error("push stream above MAX_PUSH_ID"));
        }
        //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.2
        //# If a client detects
        //# that a push stream header includes a push ID that was used in another push
        //# stream header, the client MUST treat this as a connection error of type
        //# H3_ID_ERROR.
        if self.push_streams_seen.insert(push_id, id).is_some() {
            return self.fail(t, H3Error::id_error("a second push stream for one push ID"));
        }
        if self.goaway_sent.is_some_and(|g| push_id >= g.into_inner()) {
            let _ = t.stop(id, ErrorCode::H3_REQUEST_CANCELLED.to_varint());
            return;
        }
        self.messages.insert(id, Message::push_in(push_id, rest));
        crate::qlog::push_resolved(t, Some(push_id), Some(id), crate::qlog::PushDecision::Claimed);
        self.events.push_back(Event::PushStream { push_id, stream: id });
        self.read_message(t, id);
    }

    /// Reads the peer's control stream.
    fn read_control<T: Transport + ?Sized>(&mut self, t: &mut T, id: StreamId) {
        let limit = self.config.max_frame_buffer;
        loop {
            if self.error.is_some() {
                return;
            }
            let Some(Incoming::Control { buf, pos, skip, settings_seen }) =
                self.incoming.get_mut(&id)
            else {
                return;
            };
            let available = buf.len() - *pos;
            if *skip > 0 && available > 0 {
                let n = (*skip).min(available as u64);
                *skip -= n;
                *pos += n as usize;
                continue;
            }
            // The type alone decides some errors, before the length is
            // judged.
            if *skip == 0
                && let Some(ty) = super::peek_type(&buf[*pos..])
            {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-6.2.1
                //# If
                //# the first frame of the control stream is any other frame type, this MUST be
                //# treated as a connection error of type H3_MISSING_SETTINGS.
                if !*settings_seen && ty != FrameType::SETTINGS {
                    return self.fail(
                        t,
                        H3Error::missing_settings(
                            "the control stream does not start with SETTINGS",
                        )
                        .with_frame(ty),
                    );
                }
                //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.1
                //# If
                //# a DATA frame is received on a control stream, the recipient MUST respond with a
                //# connection error of type H3_FRAME_UNEXPECTED.
                //
                //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.2
                //# If a
                //# HEADERS frame is received on a control stream, the recipient MUST respond with a
                //# connection error of type H3_FRAME_UNEXPECTED.
                //
                //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.5
                //# If a PUSH_PROMISE frame is received on the control stream, the client MUST
                //# respond with a connection error of type H3_FRAME_UNEXPECTED.
                if matches!(ty, FrameType::DATA | FrameType::HEADERS | FrameType::PUSH_PROMISE) {
                    return self.fail(
                        t,
                        H3Error::frame_unexpected("a message frame on the control stream")
                            .with_frame(ty),
                    );
                }
            }
            let header = if *skip > 0 {
                None
            } else {
                match FrameHeader::decode(&buf[*pos..], limit) {
                    Ok(header) => header,
                    Err(e) => return self.fail(t, e),
                }
            };
            if let Some(header) = header {
                let first = !*settings_seen;
                if !header.ty.is_buffered() {
                    *pos += header.header_len;
                    *skip = header.len;
                    crate::qlog::frame_parsed(
                        t,
                        id,
                        &Frame::Unknown { ty: header.ty, len: header.len },
                        header.header_len as u64 + header.len,
                        None,
                    );
                    continue;
                }
                let total = header.header_len + header.len as usize;
                if available >= total {
                    let start = *pos + header.header_len;
                    let end = *pos + total;
                    let payload = buf[start..end].to_vec();
                    *pos = end;
                    *settings_seen = true;
                    if *pos == buf.len() {
                        buf.clear();
                        *pos = 0;
                    }
                    self.on_control_frame(t, id, header.ty, &payload, total as u64, first);
                    continue;
                }
            }
            // More bytes needed.
            let Some(Incoming::Control { buf, pos, .. }) = self.incoming.get_mut(&id) else {
                return;
            };
            if *pos > 0 {
                buf.drain(..*pos);
                *pos = 0;
            }
            let start = buf.len();
            buf.resize(start + READ_CHUNK, 0);
            let result = read(t, id, &mut buf[start..]);
            let got = if let Read::Data(n) = result { n } else { 0 };
            buf.truncate(start + got);
            match result {
                Read::Data(_) => {}
                Read::Blocked | Read::Gone => return,
                Read::End | Read::Reset => return self.on_critical_closed(t),
            }
        }
    }

    /// One whole frame on the peer's control stream.
    fn on_control_frame<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        id: StreamId,
        ty: FrameType,
        payload: &[u8],
        raw_len: u64,
        first: bool,
    ) {
        let frame = match Frame::decode_payload(ty, payload) {
            Ok(frame) => frame,
            Err(e) => return self.fail(t, e),
        };
        crate::qlog::frame_parsed(t, id, &frame, raw_len, None);
        match frame {
            Frame::Settings(settings) => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4
                //# If an endpoint receives a second SETTINGS
                //# frame on the control stream, the endpoint MUST respond with a connection error
                //# of type H3_FRAME_UNEXPECTED.
                if !first {
                    return self.fail(
                        t,
                        H3Error::frame_unexpected("a second SETTINGS frame").with_frame(ty),
                    );
                }
                self.on_settings(t, settings);
            }
            Frame::Goaway(id) => self.on_goaway(t, id),
            Frame::MaxPushId(max) => self.on_max_push_id(t, max.into_inner()),
            Frame::CancelPush(push_id) => self.on_cancel_push(t, push_id.into_inner()),
            Frame::PriorityUpdate { element_id, field_value, push } => {
                self.on_priority_update(t, element_id.into_inner(), field_value, push);
            }
            _ => self.fail(
                t,
                H3Error::frame_unexpected("a message frame on the control stream").with_frame(ty),
            ),
        }
    }

    fn on_settings<T: Transport + ?Sized>(&mut self, t: &mut T, settings: Settings) {
        crate::qlog::parameters_set(t, false, &settings, None);
        self.encoder.apply_settings(
            settings.qpack_max_table_capacity.into_inner(),
            settings.qpack_blocked_streams.into_inner(),
        );
        self.peer_settings = Some(settings);
        self.events.push_back(Event::Settings(settings));
    }

    fn on_goaway<T: Transport + ?Sized>(&mut self, t: &mut T, id: VarInt) {
        if self.side == Side::Client {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
            //# A client MUST treat receipt of a
            //# GOAWAY frame containing a stream ID of any other type as a connection error of
            //# type H3_ID_ERROR.
            let stream = StreamId::from(id);
            if stream.initiator() != Side::Client || stream.dir() != Dir::Bi {
                return self.fail(
                    t,
                    H3Error::id_error("GOAWAY names no client request stream")
                        .with_frame(FrameType::GOAWAY),
                );
            }
        }
        //= https://www.rfc-editor.org/rfc/rfc9114#section-5.2
        //# Receiving a GOAWAY containing a larger identifier than
        //# previously received MUST be treated as a connection error of type H3_ID_ERROR.
        if self.goaway_received.is_some_and(|earlier| id > earlier) {
            return self.fail(
                t,
                H3Error::id_error("GOAWAY with a larger identifier").with_frame(FrameType::GOAWAY),
            );
        }
        self.goaway_received = Some(id);
        self.events.push_back(Event::GoAway { id });
    }

    fn on_max_push_id<T: Transport + ?Sized>(&mut self, t: &mut T, max: u64) {
        //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.7
        //# Receipt of a MAX_PUSH_ID frame on any other stream MUST be treated
        //# as a connection error of type H3_FRAME_UNEXPECTED.
        //
        //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.7
        //# A server MUST NOT send a MAX_PUSH_ID frame.  A client MUST treat the receipt of a
        //# MAX_PUSH_ID frame as a connection error of type H3_FRAME_UNEXPECTED.
        if self.side == Side::Client {
            return self.fail(
                t,
                H3Error::frame_unexpected("MAX_PUSH_ID from a server")
                    .with_frame(FrameType::MAX_PUSH_ID),
            );
        }
        //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.7
        //# A MAX_PUSH_ID frame cannot reduce the maximum push ID; receipt of a MAX_PUSH_ID
        //# frame that contains a smaller value than previously received MUST be treated as
        //# a connection error of type H3_ID_ERROR.
        if self.max_push_id.is_some_and(|earlier| max < earlier) {
            return self.fail(
                t,
                H3Error::id_error("MAX_PUSH_ID reduced").with_frame(FrameType::MAX_PUSH_ID),
            );
        }
        self.max_push_id = Some(max);
    }

    fn on_cancel_push<T: Transport + ?Sized>(&mut self, t: &mut T, push_id: u64) {
        //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.3
        //# If a CANCEL_PUSH frame is received that
        //# references a push ID greater than currently allowed on the connection, this MUST
        //# be treated as a connection error of type H3_ID_ERROR.
        if self.max_push_id.is_none_or(|max| push_id > max) {
            return self.fail(
                t,
                H3Error::id_error("CANCEL_PUSH above MAX_PUSH_ID")
                    .with_frame(FrameType::CANCEL_PUSH),
            );
        }
        match self.side {
            Side::Server => {
                //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.3
                //# If a
                //# server receives a CANCEL_PUSH frame for a push ID that has not yet been
                //# mentioned by a PUSH_PROMISE frame, this MUST be treated as a connection error of
                //# type H3_ID_ERROR.
                if push_id >= self.next_push_id {
                    return self.fail(
                        t,
                        H3Error::id_error("CANCEL_PUSH for a push never promised")
                            .with_frame(FrameType::CANCEL_PUSH),
                    );
                }
                if let Some(stream) = self.pushes.remove(&push_id)
                    && self.messages.remove(&stream).is_some()
                {
                    let _ = t.reset(stream, ErrorCode::H3_REQUEST_CANCELLED.to_varint());
                }
            }
            Side::Client => {
                self.promises.remove(&push_id);
                if let Some(stream) = self.push_streams_seen.get(&push_id).copied()
                    && self.messages.remove(&stream).is_some()
                {
                    let _ = t.stop(stream, ErrorCode::H3_REQUEST_CANCELLED.to_varint());
                    self.decoder.cancel_stream(stream.to_varint().into_inner());
                    self.flush_decoder_stream(t);
                }
            }
        }
        crate::qlog::push_resolved(t, Some(push_id), None, crate::qlog::PushDecision::Abandoned);
        self.events.push_back(Event::PushCancelled { push_id });
    }

    fn on_priority_update<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        element: u64,
        value: &[u8],
        push: bool,
    ) {
        // RFC 9218 §7: PRIORITY_UPDATE goes from client to server only; a
        // client receiving one treats it as H3_FRAME_UNEXPECTED.
        if self.side == Side::Client {
            return self.fail(
                t,
                H3Error::frame_unexpected("PRIORITY_UPDATE from a server")
                    .with_frame(FrameType::PRIORITY_UPDATE_REQUEST),
            );
        }
        // RFC 9218 §7.1: an unparsable Priority Field Value changes nothing.
        let Ok(priority) = Priority::parse(value) else { return };
        if push {
            // RFC 9218 §7.2: a push ID above the maximum is H3_ID_ERROR.
            if self.max_push_id.is_none_or(|max| element > max) {
                return self
                    .fail(t, H3Error::id_error("PRIORITY_UPDATE for a push ID above MAX_PUSH_ID"));
            }
            if let Some(stream) = self.pushes.get(&element) {
                let _ = t.set_priority(*stream, priority.transport_priority());
                crate::qlog::priority_updated(
                    t,
                    crate::qlog::PriorityElement::Push(element),
                    None,
                    value,
                    Some(crate::qlog::PriorityTrigger::ClientSignalReceived),
                    Some(crate::qlog::PriorityReason::ClientSignalOnly),
                );
            }
            return;
        }
        // RFC 9218 §7.1: an element ID that is not a client-initiated
        // bidirectional stream is H3_ID_ERROR.
        let stream = StreamId::from(super::varint(element));
        if stream.initiator() != Side::Client || stream.dir() != Dir::Bi {
            return self.fail(t, H3Error::id_error("PRIORITY_UPDATE for a non-request stream"));
        }
        if let Some(message) = self.messages.get_mut(&stream) {
            message.set_priority_updated();
            let _ = t.set_priority(stream, priority.transport_priority());
            crate::qlog::priority_updated(
                t,
                crate::qlog::PriorityElement::Stream(stream),
                None,
                value,
                Some(crate::qlog::PriorityTrigger::ClientSignalReceived),
                Some(crate::qlog::PriorityReason::ClientSignalOnly),
            );
        } else if element >= self.next_request_id
            && self.early_priorities.len() < MAX_EARLY_PRIORITIES
        {
            self.early_priorities.insert(element, priority);
        }
    }
}
