//! qlog: structured event logs of connections (draft-ietf-quic-qlog-main-schema-14,
//! draft-ietf-quic-qlog-quic-events-13, and a way in for an upper layer's
//! events such as draft-ietf-quic-qlog-h3-events-13), in the JSON Text
//! Sequences format (RFC 7464) qvis and other tools read.
//!
//! The core stays sans-I/O: a connection hands each finished record (an
//! ASCII Record Separator, one JSON object, a line feed) to a [`QlogSink`].
//! A driver gives each connection a sink, usually through
//! [`EndpointConfig::qlog`](crate::endpoint::EndpointConfig::qlog), and
//! writes the records to a file named by [`file_name`]
//! (`<odcid>_<client|server>.sqlog`) in the directory from `QLOGDIR` or
//! `--qlog-dir`, for example with a [`WriterSink`] over a buffered file:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use quic_proto::qlog::{self, QlogSink, WriterSink};
//! # let dir = std::path::PathBuf::from("/tmp");
//! let mut config = quic_proto::endpoint::EndpointConfig::default();
//! config.qlog(Arc::new(move |odcid, side| {
//!     let file = std::fs::File::create(dir.join(qlog::file_name(odcid, side))).ok()?;
//!     Some(Box::new(WriterSink::new(std::io::BufWriter::new(file))) as Box<dyn QlogSink>)
//! }));
//! ```
//!
//! With no sink set, a connection does no qlog work beyond one `Option`
//! check per emission point.
//!
//! An upper layer logs its own events into the same file through
//! [`Connection::qlog_app_event`](crate::connection::Connection::qlog_app_event),
//! writing their data with [`JsonWriter`]. The header always lists the
//! HTTP/3 event schema ([`HTTP3_EVENT_SCHEMA`]) beside QUIC's: it is
//! written before any such event could be, and the main schema lets a
//! trace list schemas it has no events of (draft-ietf-quic-qlog-main-schema
//! §8: "not all event types associated with an event schema listed in
//! `event_schemas` are guaranteed to be logged").

pub mod events;
mod frames;
mod json;
mod qvis;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use crate::cid::ConnectionId;
use crate::congestion::CongestionState;
use crate::recovery::{LossTimer, LossTimerKind};
use crate::space::SpaceId;
use crate::stream_id::Side;
use crate::time::Instant;
use events::{Event, RecoveryMetrics, TimerEventType};
pub use json::JsonWriter;

/// The QlogFileSeq schema (draft-ietf-quic-qlog-main-schema §5).
pub const FILE_SCHEMA: &str = "urn:ietf:params:qlog:file:sequential";
/// The JSON-SEQ media type (draft-ietf-quic-qlog-main-schema §11.2).
pub const SERIALIZATION_FORMAT: &str = "application/qlog+json-seq";
/// The QUIC event schema of the draft implemented: draft implementations
/// append "-" and the draft number (draft-ietf-quic-qlog-quic-events §2.1).
pub const QUIC_EVENT_SCHEMA: &str = "urn:ietf:params:qlog:events:quic-13";
/// The HTTP/3 event schema of the draft an upper layer logs by
/// (draft-ietf-quic-qlog-h3-events-13, the `http3` namespace), with the
/// same draft-number suffix (draft-ietf-quic-qlog-h3-events §2.1).
pub const HTTP3_EVENT_SCHEMA: &str = "urn:ietf:params:qlog:events:http3-13";
/// The ASCII Record Separator that starts every JSON-SEQ record.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// How a qlog file names its events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QlogFormat {
    /// The current drafts: events in the `quic` namespace
    /// (`quic:packet_sent`, `quic:recovery_metrics_updated`, ...), event
    /// schema `urn:ietf:params:qlog:events:quic-13`; an upper layer's in
    /// its own (`http3:frame_created`, schema
    /// `urn:ietf:params:qlog:events:http3-13`).
    #[default]
    Draft,
    /// For qvis, whose sequence diagram and congestion graph look events up
    /// by the category names of qlog 0.3: the same data under
    /// `transport:packet_sent`, `recovery:metrics_updated`,
    /// `recovery:loss_timer_updated`, ..., and `parameters_set` with
    /// `owner` beside `initiator`; an upper layer's HTTP/3 events under
    /// qvis's `http` category (`http:frame_created`), their data as given.
    /// Files of either format load in qvis; only this one fills its
    /// diagrams.
    Qvis,
}

/// Where a connection's qlog records go. Each call receives one complete
/// record: `0x1E`, a JSON object, `\n`.
pub trait QlogSink: Send {
    /// Takes one record. Must not block for long: it runs inside the
    /// connection's input and output calls.
    fn write(&mut self, record: &[u8]);
}

/// Makes a sink for each new connection of an endpoint, from its original
/// destination connection ID and side; `None` logs nothing for it.
pub type SinkFactory = Arc<dyn Fn(&ConnectionId, Side) -> Option<Box<dyn QlogSink>> + Send + Sync>;

/// A sink that keeps records in memory, shared between clones (tests,
/// tools that post-process).
#[derive(Clone, Debug, Default)]
pub struct VecSink(Arc<Mutex<Vec<u8>>>);

impl VecSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl QlogSink for VecSink {
    fn write(&mut self, record: &[u8]) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(record);
    }
}

/// A sink over any [`std::io::Write`] a driver opened (a buffered file).
/// The first write error stops further writes (a partial record would
/// corrupt the JSON-SEQ stream) and goes to the [`WriterSink::on_error`]
/// handler, if any; the writer is flushed when the sink is dropped (when its
/// connection goes), and a failure there is reported the same way.
pub struct WriterSink<W: std::io::Write> {
    writer: W,
    error: Option<std::io::Error>,
    on_error: Option<ErrorHandler>,
}

type ErrorHandler = Box<dyn FnMut(&std::io::Error) + Send>;

impl<W: std::io::Write + Send> WriterSink<W> {
    /// A sink writing to `writer`.
    pub fn new(writer: W) -> Self {
        Self { writer, error: None, on_error: None }
    }

    /// Calls `handler` with the first write or flush error: the rest of the
    /// connection's log is lost then, and the handler can say so.
    pub fn on_error(mut self, handler: impl FnMut(&std::io::Error) + Send + 'static) -> Self {
        self.on_error = Some(Box::new(handler));
        self
    }

    /// The first write error, if any.
    pub fn error(&self) -> Option<&std::io::Error> {
        self.error.as_ref()
    }

    fn fail(&mut self, e: std::io::Error) {
        if let Some(handler) = &mut self.on_error {
            handler(&e);
        }
        self.error = Some(e);
    }
}

impl<W: std::io::Write + Send> QlogSink for WriterSink<W> {
    fn write(&mut self, record: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.writer.write_all(record)
        {
            self.fail(e);
        }
    }
}

impl<W: std::io::Write> Drop for WriterSink<W> {
    fn drop(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.writer.flush()
            && let Some(handler) = &mut self.on_error
        {
            handler(&e);
        }
    }
}

impl<W: std::io::Write> core::fmt::Debug for WriterSink<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WriterSink").field("error", &self.error).finish_non_exhaustive()
    }
}

/// The conventional file name of a connection's qlog:
/// `<odcid in hex>_<client|server>.sqlog`.
pub fn file_name(odcid: &ConnectionId, side: Side) -> String {
    let mut name = String::with_capacity(odcid.len() * 2 + 14);
    for b in odcid.iter() {
        name.push_str(&format!("{b:02x}"));
    }
    name.push('_');
    name.push_str(vantage(side));
    name.push_str(".sqlog");
    name
}

fn vantage(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Server => "server",
    }
}

/// One connection's qlog writer: the sink, the time epoch, and what was
/// last reported for the metrics only logged when they change.
pub(crate) struct ConnectionQlog {
    sink: Box<dyn QlogSink>,
    format: QlogFormat,
    epoch: Instant,
    /// The latest event time: times never go backwards in the log.
    last: Instant,
    buf: Vec<u8>,
    metrics: RecoveryMetrics,
    congestion: Option<CongestionState>,
    loss_timer: Option<LossTimer>,
}

impl ConnectionQlog {
    /// Writes the file header; event times count from `epoch` (the
    /// connection's start).
    pub(crate) fn new(
        sink: Box<dyn QlogSink>,
        side: Side,
        odcid: &ConnectionId,
        epoch: Instant,
        format: QlogFormat,
    ) -> Self {
        let mut q = Self {
            sink,
            format,
            epoch,
            last: epoch,
            buf: Vec::with_capacity(512),
            metrics: RecoveryMetrics::default(),
            congestion: None,
            loss_timer: None,
        };
        q.buf.clear();
        q.buf.push(RECORD_SEPARATOR);
        let mut w = JsonWriter::new(&mut q.buf);
        w.begin_object();
        w.str("file_schema", FILE_SCHEMA);
        w.str("serialization_format", SERIALIZATION_FORMAT);
        // qvis reads a JSON-SEQ file only if its header names the qlog
        // version and format of the drafts before the main schema's
        // file_schema; unknown header fields are ignored by today's readers.
        w.str("qlog_version", qvis::QLOG_VERSION);
        w.str("qlog_format", qvis::QLOG_FORMAT);
        w.str("title", "quic-proto qlog");
        w.object("trace");
        w.object("common_fields");
        w.hex("group_id", odcid);
        w.str("time_format", "relative_to_epoch");
        w.object("reference_time");
        // Time is the connection's own `Instant`: monotonic, epoch unknown.
        w.str("clock_type", "monotonic");
        w.str("epoch", "unknown");
        w.end_object();
        w.end_object();
        w.object("vantage_point");
        w.str("name", "quic-proto");
        w.str("type", vantage(side));
        w.end_object();
        // The qvis format's event names belong to no registered schema.
        if format == QlogFormat::Draft {
            w.array("event_schemas");
            w.str_element(QUIC_EVENT_SCHEMA);
            w.str_element(HTTP3_EVENT_SCHEMA);
            w.end_array();
        }
        w.end_object();
        w.end_object();
        q.buf.push(b'\n');
        q.sink.write(&q.buf);
        q
    }

    /// Writes one event at `now`.
    pub(crate) fn emit(&mut self, now: Instant, event: &Event<'_>) {
        let qvis = self.format == QlogFormat::Qvis;
        let name = if qvis { qvis::legacy_name(event) } else { event.name() };
        self.record(now, name, |w| {
            w.object("data");
            event.write_data(w);
            if qvis {
                qvis::write_legacy_fields(event, w);
            }
            w.end_object();
        });
    }

    /// Writes an upper layer's event `name` at `now` with `data`, one
    /// JSON object copied as it is; `false` (and nothing written) if
    /// `data` fails the framing check of [`json::is_object_text`].
    pub(crate) fn emit_app(&mut self, now: Instant, name: &str, data: &str) -> bool {
        if !json::is_object_text(data) {
            return false;
        }
        let name = match self.format {
            QlogFormat::Draft => std::borrow::Cow::Borrowed(name),
            QlogFormat::Qvis => qvis::legacy_app_name(name),
        };
        self.record(now, &name, |w| w.raw("data", data));
        true
    }

    /// Writes one record: `time` (milliseconds since the epoch, exact to
    /// the nanosecond), `name`, then what `body` adds.
    fn record(&mut self, now: Instant, name: &str, body: impl FnOnce(&mut JsonWriter<'_>)) {
        self.last = self.last.max(now);
        let since = self.last.saturating_duration_since(self.epoch);
        self.buf.clear();
        self.buf.push(RECORD_SEPARATOR);
        let mut w = JsonWriter::new(&mut self.buf);
        w.set_qvis(self.format == QlogFormat::Qvis);
        w.begin_object();
        w.millis("time", u64::try_from(since.as_nanos()).unwrap_or(u64::MAX));
        w.str("name", name);
        body(&mut w);
        w.end_object();
        self.buf.push(b'\n');
        self.sink.write(&self.buf);
    }

    /// Logs what changed in the recovery state since the last call:
    /// `recovery_metrics_updated` (changed fields only),
    /// `congestion_state_updated`, and `timer_updated` for the loss
    /// detection timer.
    pub(crate) fn sync_recovery(
        &mut self,
        now: Instant,
        metrics: RecoveryMetrics,
        congestion: CongestionState,
        loss_timer: Option<LossTimer>,
    ) {
        if let Some(changed) = metrics.changed_since(&self.metrics) {
            self.metrics = metrics;
            self.emit(now, &Event::RecoveryMetricsUpdated(changed));
        }
        if self.congestion != Some(congestion) {
            let old = self.congestion.map(events::congestion_state_name);
            self.congestion = Some(congestion);
            let new = events::congestion_state_name(congestion);
            self.emit(now, &Event::CongestionStateUpdated { old, new });
        }
        if self.loss_timer != loss_timer {
            let previous = self.loss_timer;
            self.loss_timer = loss_timer;
            // A timer that changes mode (time threshold to probe timeout,
            // or to another space) is logged as the old one cancelled and
            // the new one set.
            if let Some(old) = previous
                && loss_timer.is_none_or(|t| (t.kind, t.space) != (old.kind, old.space))
            {
                self.emit(
                    now,
                    &Event::TimerUpdated {
                        timer_type: Some(timer_type(old.kind)),
                        space: Some(old.space),
                        event_type: TimerEventType::Cancelled,
                        delta: None,
                    },
                );
            }
            if let Some(t) = loss_timer {
                let delta = t.deadline.saturating_duration_since(now.max(self.last));
                self.emit(
                    now,
                    &Event::TimerUpdated {
                        timer_type: Some(timer_type(t.kind)),
                        space: Some(t.space),
                        event_type: TimerEventType::Set,
                        delta: Some(delta),
                    },
                );
            }
        }
    }

    /// The loss detection timer fired in `space`, armed for `kind`.
    pub(crate) fn loss_timer_expired(&mut self, now: Instant, kind: LossTimerKind, space: SpaceId) {
        self.loss_timer = None;
        self.emit(
            now,
            &Event::TimerUpdated {
                timer_type: Some(timer_type(kind)),
                space: Some(space),
                event_type: TimerEventType::Expired,
                delta: None,
            },
        );
    }
}

/// The draft's `$TimerType` for a mode of the loss detection timer: `ack`
/// for the time-threshold loss timeout (RFC 9002 §6.1.2), `pto` for the
/// probe timeout (§6.2).
fn timer_type(kind: LossTimerKind) -> &'static str {
    match kind {
        LossTimerKind::TimeThreshold => "ack",
        LossTimerKind::Probe => "pto",
    }
}

impl core::fmt::Debug for ConnectionQlog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnectionQlog").field("epoch", &self.epoch).finish_non_exhaustive()
    }
}
