//! qvis compatibility. qvis (the qlog visualiser) reads a JSON-SEQ file
//! only if its header carries `qlog_version` and `qlog_format`, and its
//! sequence diagram and congestion graph look events up by the category
//! names of qlog 0.3 (draft-ietf-quic-qlog-quic-events-03):
//! `transport:packet_sent`, `recovery:metrics_updated`, and so on. The
//! data of our events is already what those diagrams read (`header`,
//! `raw.length`, `frames`, the metrics), so [`QlogFormat::Qvis`] only
//! renames events and adds `owner` to `parameters_set`. An upper layer's
//! HTTP/3 events move from the `http3` namespace to qvis's `http`
//! category, which its sequence diagram, statistics and packetization
//! views look up; their data is the caller's and stays as it is.
//!
//! [`QlogFormat::Qvis`]: super::QlogFormat::Qvis

use std::borrow::Cow;

use super::events::Event;
use super::json::JsonWriter;

/// The header's `qlog_version`: the newest version qvis accepts.
pub(super) const QLOG_VERSION: &str = "0.3";
/// The header's `qlog_format` for JSON-SEQ.
pub(super) const QLOG_FORMAT: &str = "JSON-SEQ";

/// The qlog 0.3 name of `event`.
pub(super) fn legacy_name(event: &Event<'_>) -> &'static str {
    match event {
        Event::ConnectionStarted { .. } => "connectivity:connection_started",
        Event::ConnectionStateUpdated { .. } => "connectivity:connection_state_updated",
        Event::ConnectionIdUpdated { .. } => "connectivity:connection_id_updated",
        Event::ConnectionClosed { .. } => "connectivity:connection_closed",
        Event::ParametersSet { .. } => "transport:parameters_set",
        Event::VersionInformation { .. } => "transport:version_information",
        Event::AlpnInformation { .. } => "transport:alpn_information",
        Event::PacketSent(_) => "transport:packet_sent",
        Event::PacketReceived(_) => "transport:packet_received",
        Event::PacketDropped { .. } => "transport:packet_dropped",
        Event::PacketBuffered { .. } => "transport:packet_buffered",
        Event::PacketsAcked { .. } => "transport:packets_acked",
        Event::StreamStateUpdated { .. } => "transport:stream_state_updated",
        Event::PacketLost { .. } => "recovery:packet_lost",
        Event::RecoveryParametersSet { .. } => "recovery:parameters_set",
        Event::RecoveryMetricsUpdated(_) => "recovery:metrics_updated",
        Event::CongestionStateUpdated { .. } => "recovery:congestion_state_updated",
        Event::TimerUpdated { .. } => "recovery:loss_timer_updated",
        Event::KeyUpdated { .. } => "security:key_updated",
        Event::KeyDiscarded { .. } => "security:key_discarded",
    }
}

/// The qlog 0.3 name of an upper layer's event: `http3:x` becomes
/// `http:x`; other names stay.
pub(super) fn legacy_app_name(name: &str) -> Cow<'_, str> {
    match name.strip_prefix("http3:") {
        Some(event) => Cow::Owned(format!("http:{event}")),
        None => Cow::Borrowed(name),
    }
}

/// Fields qlog 0.3 spelled differently, written after the event's own:
/// `parameters_set` names its side `owner` (qvis draws the peer's flow
/// control limits from the `owner: "remote"` event).
pub(super) fn write_legacy_fields(event: &Event<'_>, w: &mut JsonWriter<'_>) {
    if let Event::ParametersSet { initiator, .. } = event {
        w.str("owner", initiator.as_str());
    }
}
