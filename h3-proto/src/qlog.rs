//! qlog events of HTTP/3 (draft-ietf-quic-qlog-h3-events-13, the `http3`
//! namespace), for the connection layer to call where things happen:
//! SETTINGS exchanged ([`parameters_set`]), a stream's type known
//! ([`stream_type_set`]), a frame written or read ([`frame_created`],
//! [`frame_parsed`]), a priority changed ([`priority_updated`]), a push
//! claimed or abandoned ([`push_resolved`]).
//!
//! Each asks [`Transport::qlog_enabled`] first and does nothing else, not
//! even allocate, when qlog is off. Otherwise it writes the event's data
//! with quic-proto's [`JsonWriter`] and hands it to
//! [`Transport::qlog_event`]; over QUIC that puts it into the connection's
//! qlog file among the transport's events, whose header lists the schema
//! `urn:ietf:params:qlog:events:http3-13`
//! ([`quic_proto::qlog::HTTP3_EVENT_SCHEMA`]).
//!
//! Crate-private: the events are the connection layer's to emit, and their
//! arguments are its internal state. Field names and shapes are the
//! draft's CDDL, quoted beside the code that writes them.

use quic_proto::StreamId;
use quic_proto::qlog::JsonWriter;

use crate::frame::Frame;
use crate::qpack::Field;
use crate::settings::{SettingId, Settings};
use crate::stream_type::UniStreamHeader;
use crate::transport::Transport;

#[cfg(test)]
mod tests;

/// The event names (draft-ietf-quic-qlog-h3-events §1, Table 1).
pub(crate) const PARAMETERS_SET: &str = "http3:parameters_set";
pub(crate) const STREAM_TYPE_SET: &str = "http3:stream_type_set";
pub(crate) const PRIORITY_UPDATED: &str = "http3:priority_updated";
pub(crate) const FRAME_CREATED: &str = "http3:frame_created";
pub(crate) const FRAME_PARSED: &str = "http3:frame_parsed";
pub(crate) const PUSH_RESOLVED: &str = "http3:push_resolved";

/// What a [`priority_updated`] event is about: a request stream or a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PriorityElement {
    /// A request stream.
    Stream(StreamId),
    /// A push, by push ID.
    Push(u64),
}

/// Why a priority changed (the draft's `trigger`): the draft's whole
/// vocabulary, some of which this layer never has a reason to say.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PriorityTrigger {
    /// A client's signal arrived (HEADERS' Priority field, PRIORITY_UPDATE).
    ClientSignalReceived,
    /// This endpoint's own decision.
    Local,
    /// Anything else.
    Other,
}

/// How the new priority was chosen (the draft's `reason`): the draft's
/// whole vocabulary.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PriorityReason {
    /// The client's signal, as it is.
    ClientSignalOnly,
    /// The client's signal merged with the server's.
    ClientServerMerged,
    /// A local policy.
    LocalPolicy,
    /// Anything else.
    Other,
}

/// What the application did with a pushed resource (`HTTP3PushDecision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushDecision {
    /// Claimed (used).
    Claimed,
    /// Abandoned (rejected).
    Abandoned,
}

/// Builds an event's data object with `write` and hands it to `t`: only
/// called once `t.qlog_enabled()` said yes.
fn emit<T: Transport + ?Sized>(
    t: &mut T,
    name: &'static str,
    write: impl FnOnce(&mut JsonWriter<'_>),
) {
    let mut buf = Vec::with_capacity(128);
    let mut w = JsonWriter::new(&mut buf);
    w.begin_object();
    write(&mut w);
    w.end_object();
    // JsonWriter writes `&str` pieces and ASCII only, so nothing is lost.
    t.qlog_event(name, &String::from_utf8_lossy(&buf));
}

/// The draft's `Initiator` (§4.1): "local" / "remote".
fn initiator(local: bool) -> &'static str {
    if local { "local" } else { "remote" }
}

/// `parameters_set` (draft-ietf-quic-qlog-h3-events §3.1): the settings
/// this endpoint sent (`local`) or the peer's, as they now apply; call
/// when SETTINGS is sent or received. `waits_for_settings` says whether
/// this endpoint holds requests until the peer's SETTINGS arrive, for the
/// local event.
///
/// Settings are logged at their values in force, defaults included, but
/// an unlimited field section size is left out (the field is a number).
/// Reserved and unknown settings are not kept by [`Settings`], so not
/// logged either.
pub(crate) fn parameters_set<T: Transport + ?Sized>(
    t: &mut T,
    local: bool,
    settings: &Settings,
    waits_for_settings: Option<bool>,
) {
    if !t.qlog_enabled() {
        return;
    }
    emit(t, PARAMETERS_SET, |w| {
        //= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-3.1
        //# The "initiator" field reflects how Settings are exchanged on a connection. Sent
        //# settings have the value "local" and received settings have the value
        //# "received".
        //
        // "received" is no value of `Initiator` (§4.1), which the CDDL
        // gives the field: received settings are "remote".
        w.str("initiator", initiator(local));
        if let Some(size) = settings.max_field_section_size {
            w.u64("max_field_section_size", size.into_inner());
        }
        w.u64("max_table_capacity", settings.qpack_max_table_capacity.into_inner());
        w.u64("blocked_streams_count", settings.qpack_blocked_streams.into_inner());
        w.u64("extended_connect", u64::from(settings.enable_connect_protocol));
        w.u64("h3_datagram", u64::from(settings.h3_datagram));
        if let Some(waits) = waits_for_settings {
            w.bool("waits_for_settings", waits);
        }
    });
}

/// `stream_type_set` (§3.3): the type of `stream` became known, from
/// the unidirectional stream `header` this endpoint wrote or read, or
/// `None` for a bidirectional (request) stream. The initiator is the
/// endpoint that opened the stream.
pub(crate) fn stream_type_set<T: Transport + ?Sized>(
    t: &mut T,
    stream: StreamId,
    header: Option<&UniStreamHeader>,
) {
    if !t.qlog_enabled() {
        return;
    }
    let local = stream.initiator() == t.side();
    emit(t, STREAM_TYPE_SET, |w| {
        w.str("initiator", initiator(local));
        w.u64("stream_id", stream.to_varint().into_inner());
        //= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-3.3
        //# Client bidirectional streams always have a stream_type value of "request".
        let Some(header) = header else {
            w.str("stream_type", "request");
            return;
        };
        match header {
            UniStreamHeader::Control => w.str("stream_type", "control"),
            UniStreamHeader::Push { push_id } => {
                w.str("stream_type", "push");
                w.u64("associated_push_id", push_id.into_inner());
            }
            UniStreamHeader::QpackEncoder => w.str("stream_type", "qpack_encode"),
            UniStreamHeader::QpackDecoder => w.str("stream_type", "qpack_decode"),
            UniStreamHeader::Unknown(ty) if ty.is_reserved() => w.str("stream_type", "reserved"),
            //= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-3.3
            //# Where the type is not known, the stream_type value of "unknown"
            //# type can be used and the value captured in the stream_type_bytes field; a
            //# numerical value without variable-length integer encoding.
            UniStreamHeader::Unknown(ty) => {
                w.str("stream_type", "unknown");
                w.u64("stream_type_bytes", ty.0.into_inner());
            }
        }
    });
}

/// `frame_created` (§3.5): this endpoint wrote `frame` on `stream`,
/// `raw_len` bytes on the wire with its header (for DATA and unknown
/// frames, with the payload that follows). `fields` is the field section
/// of a HEADERS or PUSH_PROMISE frame before QPACK encoding.
pub(crate) fn frame_created<T: Transport + ?Sized>(
    t: &mut T,
    stream: StreamId,
    frame: &Frame<'_>,
    raw_len: u64,
    fields: Option<&[Field]>,
) {
    if t.qlog_enabled() {
        emit(t, FRAME_CREATED, |w| write_frame_event(w, stream, frame, raw_len, fields));
    }
}

/// `frame_parsed` (§3.6): this endpoint read `frame` on `stream`, as for
/// [`frame_created`]; `fields` is the decoded field section of a HEADERS
/// or PUSH_PROMISE frame (`None` logs an empty list: call after QPACK
/// decoding where it can wait).
pub(crate) fn frame_parsed<T: Transport + ?Sized>(
    t: &mut T,
    stream: StreamId,
    frame: &Frame<'_>,
    raw_len: u64,
    fields: Option<&[Field]>,
) {
    if t.qlog_enabled() {
        emit(t, FRAME_PARSED, |w| write_frame_event(w, stream, frame, raw_len, fields));
    }
}

/// `priority_updated` (§3.4): `element`'s priority was set (`old` is
/// `None`) or changed; priorities are Priority Field Values (RFC 9218
/// §5) as text, bytes from the wire taken lossily.
pub(crate) fn priority_updated<T: Transport + ?Sized>(
    t: &mut T,
    element: PriorityElement,
    old: Option<&[u8]>,
    new: &[u8],
    trigger: Option<PriorityTrigger>,
    reason: Option<PriorityReason>,
) {
    if !t.qlog_enabled() {
        return;
    }
    emit(t, PRIORITY_UPDATED, |w| {
        match element {
            PriorityElement::Stream(id) => w.u64("stream_id", id.to_varint().into_inner()),
            PriorityElement::Push(id) => w.u64("push_id", id),
        }
        if let Some(old) = old {
            w.str("old", &String::from_utf8_lossy(old));
        }
        w.str("new", &String::from_utf8_lossy(new));
        if let Some(trigger) = trigger {
            let trigger = match trigger {
                PriorityTrigger::ClientSignalReceived => "client_signal_received",
                PriorityTrigger::Local => "local",
                PriorityTrigger::Other => "other",
            };
            w.str("trigger", trigger);
        }
        if let Some(reason) = reason {
            let reason = match reason {
                PriorityReason::ClientSignalOnly => "client_signal_only",
                PriorityReason::ClientServerMerged => "client_server_merged",
                PriorityReason::LocalPolicy => "local_policy",
                PriorityReason::Other => "other",
            };
            w.str("reason", reason);
        }
    });
}

/// `push_resolved` (§3.9): the application claimed or abandoned the push
/// `push_id`, or the one on `stream` where the push ID is not at hand.
pub(crate) fn push_resolved<T: Transport + ?Sized>(
    t: &mut T,
    push_id: Option<u64>,
    stream: Option<StreamId>,
    decision: PushDecision,
) {
    if !t.qlog_enabled() {
        return;
    }
    emit(t, PUSH_RESOLVED, |w| {
        if let Some(id) = push_id {
            w.u64("push_id", id);
        }
        if let Some(stream) = stream {
            w.u64("stream_id", stream.to_varint().into_inner());
        }
        let decision = match decision {
            PushDecision::Claimed => "claimed",
            PushDecision::Abandoned => "abandoned",
        };
        w.str("decision", decision);
    });
}

/// The data of `frame_created` and `frame_parsed`:
///
/// ```cddl
/// HTTP3FrameCreated = {
///     stream_id: uint64
///     frame: $HTTP3Frame
/// ```
fn write_frame_event(
    w: &mut JsonWriter<'_>,
    stream: StreamId,
    frame: &Frame<'_>,
    raw_len: u64,
    fields: Option<&[Field]>,
) {
    w.u64("stream_id", stream.to_varint().into_inner());
    w.object("frame");
    write_frame(w, frame, fields);
    w.object("raw");
    w.u64("length", raw_len);
    // SETTINGS as `Settings` holds them may be shorter than on the wire
    // (reserved and unknown entries are not kept), so only its full
    // length, from the caller, is known.
    if !matches!(frame, Frame::Settings(_)) {
        w.u64("payload_length", frame.payload_len());
    }
    w.end_object();
    w.end_object();
}

/// One `$HTTP3Frame` (§4.2), without `raw`.
fn write_frame(w: &mut JsonWriter<'_>, frame: &Frame<'_>, fields: Option<&[Field]>) {
    match frame {
        Frame::Data { .. } => w.str("frame_type", "data"),
        Frame::Headers { .. } => {
            w.str("frame_type", "headers");
            write_fields(w, fields.unwrap_or_default());
        }
        Frame::CancelPush(push_id) => {
            w.str("frame_type", "cancel_push");
            w.u64("push_id", push_id.into_inner());
        }
        Frame::Settings(settings) => {
            w.str("frame_type", "settings");
            w.array("settings");
            settings.for_each(|id, value| {
                w.begin_object();
                write_setting_name(w, id);
                w.u64("value", value.into_inner());
                w.end_object();
            });
            w.end_array();
        }
        Frame::PushPromise { push_id, .. } => {
            w.str("frame_type", "push_promise");
            w.u64("push_id", push_id.into_inner());
            write_fields(w, fields.unwrap_or_default());
        }
        Frame::Goaway(id) => {
            w.str("frame_type", "goaway");
            w.u64("id", id.into_inner());
        }
        Frame::MaxPushId(push_id) => {
            w.str("frame_type", "max_push_id");
            w.u64("push_id", push_id.into_inner());
        }
        Frame::PriorityUpdate { element_id, field_value, push } => {
            w.str("frame_type", "priority_update");
            w.u64(if *push { "push_id" } else { "stream_id" }, element_id.into_inner());
            // The draft has no bytes form for `HTTP3Priority = text`; a
            // valid value is ASCII (RFC 9218 §5), so only a broken one is
            // altered.
            w.str("priority_field_value", &String::from_utf8_lossy(field_value));
        }
        //= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-4.2.8
        //# The frame_type_bytes field is the numerical value without variable-length
        //# integer encoding.
        Frame::Unknown { ty, .. } => {
            w.str("frame_type", if ty.is_reserved() { "reserved" } else { "unknown" });
            w.u64("frame_type_bytes", ty.0.into_inner());
        }
    }
}

/// A setting's `name` (§4.2.4): its registered name, else "reserved" or
/// "unknown" with the identifier in `name_bytes` (only for "unknown", as
/// the CDDL has it).
fn write_setting_name(w: &mut JsonWriter<'_>, id: SettingId) {
    let name = match id {
        SettingId::QPACK_MAX_TABLE_CAPACITY => "settings_qpack_max_table_capacity",
        SettingId::MAX_FIELD_SECTION_SIZE => "settings_max_field_section_size",
        SettingId::QPACK_BLOCKED_STREAMS => "settings_qpack_blocked_streams",
        SettingId::ENABLE_CONNECT_PROTOCOL => "settings_enable_connect_protocol",
        SettingId::H3_DATAGRAM => "settings_h3_datagram",
        id if id.is_reserved() => "reserved",
        id => {
            w.str("name", "unknown");
            w.u64("name_bytes", id.0.into_inner());
            return;
        }
    };
    w.str("name", name);
}

/// `headers: [* HTTP3HTTPField]` (§4.2.2).
fn write_fields(w: &mut JsonWriter<'_>, fields: &[Field]) {
    w.array("headers");
    for field in fields {
        w.begin_object();
        //= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-4.2.2
        //# Characters in the allowed range can be safely logged by the text type used in the
        //# `name` and `value` fields of `HTTP3HTTPField`. Characters outside the range are
        //# unsafe for the text type and need to be logged using the `name_bytes` and
        //# `value_bytes` fields.
        //
        // The allowed range: a name is a token (RFC 9110 §5.1), so visible
        // ASCII; a value is visible ASCII with spaces and tabs inside
        // (RFC 9110 §5.5). obs-text (0x80 and up) and controls go as bytes.
        //
        //= https://datatracker.ietf.org/doc/html/draft-ietf-quic-qlog-h3-events-13#section-4.2.2
        //# An instance of `HTTP3HTTPField` MUST include either the `name` or `name_bytes`
        //# field and MAY include both. An `HTTP3HTTPField` MAY include a `value` or
        //# `value_bytes` field or neither.
        match text(&field.name, |b| b.is_ascii_graphic()) {
            Some(name) => w.str("name", name),
            None => w.hex("name_bytes", &field.name),
        }
        match text(&field.value, |b| b.is_ascii_graphic() || b == b' ' || b == b'\t') {
            Some(value) => w.str("value", value),
            None => w.hex("value_bytes", &field.value),
        }
        w.end_object();
    }
    w.end_array();
}

/// `bytes` as text if every byte is `allowed` (all ASCII).
fn text(bytes: &[u8], allowed: impl Fn(u8) -> bool) -> Option<&str> {
    if bytes.iter().all(|&b| allowed(b)) { core::str::from_utf8(bytes).ok() } else { None }
}
