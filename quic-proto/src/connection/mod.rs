//! The per-connection state machine (RFC 9000, RFC 9001, RFC 9002).
//!
//! Driven as docs/architecture.md says: [`Connection::handle_datagram`],
//! [`Connection::handle_timeout`] and application commands in;
//! [`Connection::poll_transmit`], [`Connection::poll_timeout`] and
//! [`Connection::poll_event`] out. After any input, drain `poll_transmit`,
//! then read `poll_timeout`, then drain `poll_event`.
//!
//! This file is the public API; the logic sits in sibling `impl Connection`
//! blocks: `handshake.rs` (TLS and keys), `recv.rs` (packets and frames in),
//! `send.rs` (packets out), `timers.rs` (timers and closing), `streams.rs`.

mod cids;
pub mod config;
mod handshake;
mod key_phase;
pub(crate) mod packet_builder;
mod qlog_hooks;
mod recv;
mod send;
mod spaces;
mod streams;
mod testing_hooks;
#[cfg(test)]
mod tests;
mod timers;
pub mod types;
mod version_info;

use core::time::Duration;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

pub use cids::EndpointEvent;
pub use config::{Limits, TransportConfig};
pub use types::{
    ConnectionError, DatagramMeta, EcnCodepoint, Event, ReadError, StreamEvent, Transmit,
    WriteError,
};

use crate::cid::ConnectionId;
use crate::congestion::{Controller, Pacer};
use crate::crypto::TlsSession;
use crate::random::RandomSource;
use crate::recovery::LossDetection;
use crate::space::SpaceId;
use crate::stream_id::{Dir, Side, StreamId};
use crate::time::Instant;
use crate::token::StatelessResetToken;
use crate::transport_params::TransportParameters;
use crate::varint::VarInt;
use crate::version::Version;
use key_phase::OneRttKeys;
use spaces::{SentFrames, Space};
use streams::Streams;

/// Everything a client needs to start a connection.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// TLS configuration (TLS 1.3, ALPN set); see `crypto::session::config`.
    pub tls: Arc<rustls::ClientConfig>,
    /// Transport settings.
    pub transport: Arc<TransportConfig>,
    /// The QUIC version to offer.
    pub version: Version,
}

/// Everything a server needs to accept connections.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// TLS configuration (TLS 1.3, ALPN set, certificate).
    pub tls: Arc<rustls::ServerConfig>,
    /// Transport settings.
    pub transport: Arc<TransportConfig>,
}

/// What a server knows of a client's first Initial when it accepts the
/// connection, and the connection ID it chose (see [`Connection::accept`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptParams {
    /// The version of the client's Initial.
    pub version: Version,
    /// The client's address.
    pub remote: SocketAddr,
    /// The Destination Connection ID of the client's current Initial (after
    /// a Retry: the Retry's Source Connection ID).
    pub client_dcid: ConnectionId,
    /// The Source Connection ID of the client's Initial.
    pub client_scid: ConnectionId,
    /// The connection ID this server chose (sequence number 0).
    pub local_cid: ConnectionId,
    /// The stateless reset token for `local_cid`, sent in the
    /// stateless_reset_token transport parameter. An endpoint derives it
    /// from its `ResetKey`, so that it can reset the connection after
    /// losing its state (RFC 9000 §10.3.2).
    pub reset_token: StatelessResetToken,
    /// When the client's address was validated with Retry: the Destination
    /// Connection ID of its first Initial and the Retry's Source Connection ID.
    pub retry: Option<(ConnectionId, ConnectionId)>,
}

/// Why a connection could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TLS configuration or server name was refused.
    Tls(crate::crypto::TlsConfigError),
    /// The version has no packet protection here.
    UnsupportedVersion(Version),
}

impl core::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Tls(e) => write!(f, "TLS configuration refused: {e}"),
            Self::UnsupportedVersion(v) => write!(f, "QUIC version {v} is not supported"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Why a datagram could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendDatagramError {
    /// The peer did not enable DATAGRAM frames (no max_datagram_frame_size).
    UnsupportedByPeer,
    /// Larger than the peer accepts or than fits in one packet.
    TooLarge,
    /// The connection is closing or closed.
    ConnectionClosed,
}

impl core::fmt::Display for SendDatagramError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::UnsupportedByPeer => "the peer does not accept DATAGRAM frames",
            Self::TooLarge => "datagram too large for the peer or the path",
            Self::ConnectionClosed => "connection closed",
        })
    }
}

impl std::error::Error for SendDatagramError {}

/// Connection figures for logs and tools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received and authenticated.
    pub packets_received: u64,
    /// Packets declared lost.
    pub packets_lost: u64,
    /// UDP payload bytes sent.
    pub bytes_sent: u64,
    /// UDP payload bytes received.
    pub bytes_received: u64,
    /// Smoothed RTT.
    pub smoothed_rtt: Duration,
    /// Congestion window.
    pub cwnd: u64,
    /// Key updates completed.
    pub key_updates: u64,
    /// Received DATAGRAM frames dropped because the application's queue
    /// was full (by count or bytes).
    pub datagrams_dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Handshake,
    Established,
    /// This endpoint closed: answer with CONNECTION_CLOSE until `until`.
    Closing {
        until: Instant,
        close: CloseFrame,
    },
    /// The peer closed, or a stateless reset: silent until `until`.
    Draining {
        until: Instant,
    },
    Drained,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum CloseFrame {
    Transport {
        code: crate::TransportErrorCode,
        frame_type: Option<crate::FrameType>,
        reason: Bytes,
    },
    Application {
        code: VarInt,
        reason: Bytes,
    },
}

/// The single network path (connection migration extends this).
#[derive(Debug)]
struct Path {
    remote: SocketAddr,
    /// Address validated (RFC 9000 §8.1): no anti-amplification limit.
    validated: bool,
    bytes_received: u64,
    bytes_sent: u64,
    mtu: u16,
}

/// One QUIC connection. Create with [`Connection::connect`] (client) or
/// [`Connection::accept`] (server), then drive it.
pub struct Connection {
    side: Side,
    version: Version,
    config: Arc<TransportConfig>,
    rng: Box<dyn RandomSource>,
    tls: TlsSession,
    state: State,
    /// Our connection ID (the Source Connection ID of our long headers).
    local_cid: ConnectionId,
    /// Where our packets go (the peer's connection ID).
    remote_cid: ConnectionId,
    /// The Destination Connection ID of the client's first Initial.
    original_dcid: ConnectionId,
    /// The Source Connection ID of a Retry (client: received; server: sent).
    retry_scid: Option<ConnectionId>,
    /// Client: the token to put in Initial packets (from Retry).
    token: Bytes,
    /// The peer's stateless reset token (from its transport parameters).
    peer_reset_token: Option<StatelessResetToken>,
    spaces: [Space; 3],
    one_rtt: Option<OneRttKeys>,
    loss: LossDetection<SentFrames>,
    cc: Box<dyn Controller>,
    #[allow(dead_code)]
    pacer: Pacer,
    path: Path,
    streams: Streams,
    local_params: TransportParameters,
    peer_params: Option<TransportParameters>,
    handshake_complete: bool,
    handshake_confirmed: bool,
    /// Server: HANDSHAKE_DONE still to be sent (or resent).
    handshake_done_pending: bool,
    /// Client: a packet from the server has set `remote_cid`.
    remote_cid_set: bool,
    /// Client: a Retry was processed (only one is allowed).
    retry_received: bool,
    idle_timeout: Option<Duration>,
    idle_deadline: Option<Instant>,
    last_ack_eliciting_sent: Option<Instant>,
    /// An ack-eliciting packet was sent since the last packet was received.
    ack_eliciting_since_receive: bool,
    ping_pending: bool,
    /// The latest time an input brought (for calls that take no time).
    latest_now: Instant,
    /// Whether the latest 1-RTT key update was this endpoint's (qlog).
    last_key_update_local: bool,
    /// Server: a NEW_TOKEN token to send once the handshake is confirmed.
    new_token_pending: Option<Bytes>,
    /// Connection IDs issued in both directions (RFC 9000 §5.1).
    cids: cids::CidState,
    /// Packets that arrived before their keys, retried once keys arrive.
    undecryptable: VecDeque<(DatagramMeta, BytesMut)>,
    datagrams_in: VecDeque<Bytes>,
    datagrams_in_bytes: usize,
    /// The rate of 1-RTT packets carrying only PING and PADDING.
    ping_only_limit: crate::streams::rate::TokenBucket,
    /// A `DatagramReceived` event is queued and not yet polled.
    datagram_event_pending: bool,
    datagrams_out: VecDeque<Bytes>,
    datagrams_out_bytes: usize,
    path_responses: VecDeque<[u8; 8]>,
    /// Closing state: send CONNECTION_CLOSE again on the next poll.
    close_pending: bool,
    /// A TLS or transport parameter error found while driving TLS.
    pending_tls_error: Option<crate::error::TransportError>,
    events: VecDeque<Event>,
    /// `tracing` span for everything this connection logs.
    span: tracing::Span,
    /// qlog writer, when a sink is set; the epoch of its times is `start`.
    qlog: Option<Box<crate::qlog::ConnectionQlog>>,
    /// When the connection was created.
    start: Instant,
    stats: ConnectionStats,
    error: Option<ConnectionError>,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("side", &self.side)
            .field("state", &self.state)
            .field("local_cid", &self.local_cid)
            .field("remote_cid", &self.remote_cid)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts a client connection to `remote` for `server_name`. The first
    /// `poll_transmit` yields the Initial packet.
    pub fn connect(
        now: Instant,
        config: &ClientConfig,
        server_name: &str,
        remote: SocketAddr,
        rng: Box<dyn RandomSource>,
    ) -> Result<Self, ConnectError> {
        Self::connect_with_cid(now, config, server_name, remote, None, Bytes::new(), rng)
    }

    /// [`Connection::connect`] presenting an address validation `token` a
    /// previous connection to this server received ([`Event::NewToken`]):
    /// a server that accepts it skips address validation (RFC 9000 §8.1.3).
    pub fn connect_with_token(
        now: Instant,
        config: &ClientConfig,
        server_name: &str,
        remote: SocketAddr,
        token: Bytes,
        rng: Box<dyn RandomSource>,
    ) -> Result<Self, ConnectError> {
        Self::connect_with_cid(now, config, server_name, remote, None, token, rng)
    }

    /// [`Connection::connect`] with the connection ID this client chose
    /// (an endpoint's, so that it can route the server's packets); `None`
    /// draws a random 8-byte one.
    pub(crate) fn connect_with_cid(
        now: Instant,
        config: &ClientConfig,
        server_name: &str,
        remote: SocketAddr,
        local_cid: Option<ConnectionId>,
        token: Bytes,
        mut rng: Box<dyn RandomSource>,
    ) -> Result<Self, ConnectError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-7.2
        //# When an Initial packet is sent by a client that has not previously
        //# received an Initial or Retry packet from the server, the client
        //# populates the Destination Connection ID field with an unpredictable value.
        //# This Destination Connection ID MUST be at least 8 bytes in length.
        let original_dcid = ConnectionId::random(&mut *rng, 8);
        let local_cid = local_cid.unwrap_or_else(|| ConnectionId::random(&mut *rng, 8));
        let params =
            local_params(&config.transport, Side::Client, config.version, &local_cid, None, None);
        let tls = TlsSession::client(config.tls.clone(), server_name, &params, config.version)
            .map_err(ConnectError::Tls)?;
        let mut conn = Self::new(
            now,
            Side::Client,
            config.version,
            config.transport.clone(),
            rng,
            tls,
            local_cid,
            original_dcid,
            original_dcid,
            remote,
            params,
        )?;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.3
        //# In a future connection, the client includes this token in Initial
        //# packets to provide address validation.  The client MUST include the token in all
        //# Initial packets it sends, unless a Retry replaces the token with a newer one.
        conn.token = token;
        conn.drive_tls(now);
        Ok(conn)
    }

    /// Accepts a client's connection, described by `accept` (the
    /// connection IDs of its Initial, the ID and reset token this server
    /// chose, and the Retry that validated the client's address, if any).
    /// Feed the client's datagram to [`Connection::handle_datagram`] next.
    pub fn accept(
        now: Instant,
        config: &ServerConfig,
        accept: AcceptParams,
        rng: Box<dyn RandomSource>,
    ) -> Result<Self, ConnectError> {
        let AcceptParams {
            version,
            remote,
            client_dcid,
            client_scid,
            local_cid,
            reset_token,
            retry,
        } = accept;
        let original_dcid = retry.map_or(client_dcid, |(odcid, _)| odcid);
        let mut params = local_params(
            &config.transport,
            Side::Server,
            version,
            &local_cid,
            Some(&original_dcid),
            Some(reset_token),
        );
        params.retry_source_connection_id = retry.map(|(_, scid)| scid);
        let tls =
            TlsSession::server(config.tls.clone(), &params, version).map_err(ConnectError::Tls)?;
        let mut conn = Self::new(
            now,
            Side::Server,
            version,
            config.transport.clone(),
            rng,
            tls,
            local_cid,
            client_scid,
            original_dcid,
            remote,
            params,
        )?;
        conn.retry_scid = retry.map(|(_, scid)| scid);
        // Initial keys come from the DCID of the client's current Initial.
        conn.install_initial_keys(&client_dcid)?;
        conn.remote_cid_set = true;
        if retry.is_some() {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.2
            //# A server MAY send a Retry packet in response to an Initial packet.
            // A valid Retry token proves the client's address.
            conn.path.validated = true;
        }
        Ok(conn)
    }

    /// Server: a NEW_TOKEN token from the client's address proved it
    /// (RFC 9000 §8.1.3), so the anti-amplification limit does not apply.
    pub(crate) fn set_address_validated(&mut self) {
        self.path.validated = true;
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        now: Instant,
        side: Side,
        version: Version,
        config: Arc<TransportConfig>,
        mut rng: Box<dyn RandomSource>,
        tls: TlsSession,
        local_cid: ConnectionId,
        remote_cid: ConnectionId,
        original_dcid: ConnectionId,
        remote: SocketAddr,
        params: TransportParameters,
    ) -> Result<Self, ConnectError> {
        let mtu = config.initial_mtu.max(1200);
        let cc = config.congestion_controller.build(now, u64::from(mtu));
        let stream_config = streams::StreamConfig {
            stream_window: config.initial_max_stream_data,
            max_stream_window: config.max_stream_data_window,
            send_buffer: config.send_buffer_per_stream,
            max_fragments: config.limits.max_stream_fragments,
        };
        let streams = Streams::new(
            side,
            stream_config,
            &params,
            config.initial_max_data,
            config.max_data_window,
            crate::streams::rate::TokenBucket::new(
                config.limits.stream_aborts_per_second,
                config.limits.stream_abort_burst,
            ),
            &mut *rng,
        );
        let ping_only_limit = crate::streams::rate::TokenBucket::new(
            config.limits.ping_only_packets_per_second,
            config.limits.ping_only_packet_burst,
        );
        let max_crypto = config.limits.max_crypto_buffer;
        let mut spaces = SpaceId::ALL.map(|id| Space::new(id, max_crypto));
        for space in &mut spaces {
            space
                .ack
                .set_max_ranges(config.limits.max_ack_ranges)
                .set_ack_eliciting_threshold(config.ack_eliciting_threshold)
                .set_max_ack_delay(config.max_ack_delay);
        }
        let handshake_cids = cids::CidState::new(local_cid, params.stateless_reset_token);
        let mut conn = Self {
            side,
            version,
            loss: LossDetection::new(side, config.initial_rtt),
            config,
            rng,
            tls,
            state: State::Handshake,
            local_cid,
            remote_cid,
            original_dcid,
            retry_scid: None,
            token: Bytes::new(),
            peer_reset_token: None,
            spaces,
            one_rtt: None,
            cc,
            pacer: Pacer::default(),
            path: Path {
                remote,
                validated: side.is_client(),
                bytes_received: 0,
                bytes_sent: 0,
                mtu,
            },
            streams,
            local_params: params,
            peer_params: None,
            handshake_complete: false,
            handshake_confirmed: false,
            handshake_done_pending: false,
            remote_cid_set: false,
            retry_received: false,
            idle_timeout: None,
            idle_deadline: None,
            last_ack_eliciting_sent: None,
            ack_eliciting_since_receive: false,
            ping_pending: false,
            latest_now: now,
            last_key_update_local: false,
            new_token_pending: None,
            undecryptable: VecDeque::new(),
            datagrams_in: VecDeque::new(),
            datagrams_in_bytes: 0,
            ping_only_limit,
            datagram_event_pending: false,
            datagrams_out: VecDeque::new(),
            datagrams_out_bytes: 0,
            path_responses: VecDeque::new(),
            cids: handshake_cids,
            close_pending: false,
            pending_tls_error: None,
            events: VecDeque::new(),
            span: tracing::debug_span!(
                "quic_connection",
                side = ?side,
                odcid = %original_dcid,
            ),
            qlog: None,
            start: now,
            stats: ConnectionStats::default(),
            error: None,
        };
        if side.is_client() {
            let dcid = conn.remote_cid;
            conn.install_initial_keys(&dcid)?;
        }
        conn.idle_timeout = conn.config.max_idle_timeout;
        conn.reset_idle_timer(now);
        Ok(conn)
    }

    // ----- driving -----

    /// Feeds a datagram received from the peer. Bounded work; never fails:
    /// undecodable or unauthenticated packets are dropped, protocol
    /// violations close the connection (see [`Event::ConnectionLost`]).
    ///
    /// Stream data is kept as slices of `data` where that wastes little
    /// memory, with `data.capacity()` counted as what each slice keeps
    /// alive. Give each datagram an allocation of its own (as the
    /// adapters do): an allocation shared with other datagrams cannot be
    /// seen, and would be kept alive whole.
    pub fn handle_datagram(&mut self, now: Instant, meta: DatagramMeta, data: BytesMut) {
        let span = self.span.clone();
        let _entered = span.enter();
        self.latest_now = self.latest_now.max(now);
        self.on_datagram(now, meta, data);
        self.qlog_sync(now);
    }

    /// Processes timer expiries due at `now`; a no-op if nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let span = self.span.clone();
        let _entered = span.enter();
        self.latest_now = self.latest_now.max(now);
        self.on_timeout(now);
        self.qlog_sync(now);
    }

    /// Writes the next datagram to send into `buf` (cleared first) and
    /// says where it goes, or `None` if nothing is to be sent now.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.latest_now = self.latest_now.max(now);
        let transmit = self.transmit(now, buf);
        self.qlog_sync(now);
        transmit
    }

    /// Logs this connection's events as qlog records in `format` into
    /// `sink`, starting with the file header and the events so far (start,
    /// versions, local transport parameters, Initial keys). Call right
    /// after creating the connection; an `Endpoint` does it for its
    /// connections when its configuration has a factory
    /// (`EndpointConfig::qlog`).
    pub fn set_qlog(
        &mut self,
        sink: Box<dyn crate::qlog::QlogSink>,
        format: crate::qlog::QlogFormat,
    ) {
        self.qlog_start(sink, format);
    }

    /// Whether this connection writes qlog (a sink was set with
    /// [`Connection::set_qlog`]): an upper layer asks before building the
    /// data of an event for [`Connection::qlog_app_event`].
    pub fn qlog_enabled(&self) -> bool {
        self.qlog.is_some()
    }

    /// Logs an upper layer's event into this connection's qlog, among the
    /// transport's events, at `now` (times never go backwards in the
    /// log). `name` is the full event name in the current drafts' form,
    /// `namespace:event` (`"http3:frame_created"`); `data_json` is the
    /// event's `data`, one JSON object (RFC 8259), copied verbatim, best
    /// written with [`crate::qlog::JsonWriter`].
    ///
    /// The caller guarantees that `data_json` is valid JSON; only what
    /// keeps the JSON-SEQ records intact is checked (one balanced object,
    /// no control characters), and data failing that is dropped. In the
    /// [`crate::qlog::QlogFormat::Qvis`] format, `http3:` names are
    /// written under qvis's `http:` category. The header lists the
    /// `http3` event schema ([`crate::qlog::HTTP3_EVENT_SCHEMA`]); events
    /// of other namespaces are written but their schemas are not listed.
    ///
    /// Returns whether the event was written: `false` when qlog is off or
    /// the data was dropped.
    pub fn qlog_app_event(&mut self, now: Instant, name: &str, data_json: &str) -> bool {
        let Some(q) = &mut self.qlog else { return false };
        let written = q.emit_app(now, name, data_json);
        if !written {
            tracing::warn!(name, "qlog: dropped an event whose data is not one JSON object");
        }
        written
    }

    /// The next time `handle_timeout` must be called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(e) = self.streams.poll_event() {
            return Some(Event::Stream(e));
        }
        let event = self.events.pop_front()?;
        let _entered = self.span.enter();
        match &event {
            Event::HandshakeCompleted => tracing::debug!(
                alpn = ?self.tls.alpn().map(String::from_utf8_lossy),
                "handshake complete"
            ),
            Event::HandshakeConfirmed => tracing::debug!("handshake confirmed"),
            Event::DatagramReceived => self.datagram_event_pending = false,
            Event::ConnectionLost(ConnectionError::TransportError(e)) => {
                tracing::warn!(error = %e, "closing: the peer violated the protocol")
            }
            Event::ConnectionLost(e) => tracing::info!(error = %e, "connection lost"),
            Event::Drained => tracing::debug!(
                packets_sent = self.stats.packets_sent,
                packets_lost = self.stats.packets_lost,
                "drained"
            ),
            _ => {}
        }
        Some(event)
    }

    // ----- application commands -----

    /// Opens a stream, or `None` if the peer's stream limit is reached
    /// (`StreamEvent::Available` says when to try again) or the connection
    /// is closed.
    pub fn open_stream(&mut self, dir: Dir) -> Option<StreamId> {
        if !self.is_open() {
            return None;
        }
        self.streams.open(dir)
    }

    /// The next stream the peer opened in `dir`, if any.
    pub fn accept_stream(&mut self, dir: Dir) -> Option<StreamId> {
        self.streams.accept(dir)
    }

    /// Writes data (copied once). Returns how much was accepted: `Ok(0)`
    /// at once for empty `data`. A write refused (`WriteError::Blocked`)
    /// or cut short is followed by one `StreamEvent::Writable`.
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError> {
        self.check_open_for_write()?;
        self.streams.write(id, data)
    }

    /// Writes owned data without copying. Returns how much was accepted;
    /// the rest stays with the caller.
    pub fn write_bytes(&mut self, id: StreamId, data: Bytes) -> Result<usize, WriteError> {
        self.check_open_for_write()?;
        self.streams.write_bytes(id, data)
    }

    /// Ends the stream after the data written so far.
    pub fn finish(&mut self, id: StreamId) -> Result<(), WriteError> {
        self.check_open_for_write()?;
        self.streams.finish(id)
    }

    /// Abandons sending on the stream (RESET_STREAM with `code`).
    pub fn reset(&mut self, id: StreamId, code: VarInt) -> Result<(), WriteError> {
        self.check_open_for_write()?;
        self.streams.reset(id, code)
    }

    /// Asks the peer to stop sending (STOP_SENDING with `code`); data
    /// already buffered is discarded and its flow-control credit returned.
    pub fn stop(&mut self, id: StreamId, code: VarInt) -> Result<(), ReadError> {
        if let Some(e) = &self.error {
            return Err(ReadError::ConnectionLost(e.clone()));
        }
        self.streams.stop(id, code)
    }

    /// Sets the stream's send priority: higher goes first; equal
    /// priorities share round-robin. Default 0.
    pub fn set_priority(&mut self, id: StreamId, priority: i32) -> Result<(), WriteError> {
        self.streams.set_priority(id, priority)
    }

    /// Reads data in order into `buf`. `Ok(None)` means the stream ended.
    pub fn read(&mut self, id: StreamId, buf: &mut [u8]) -> Result<Option<usize>, ReadError> {
        if buf.is_empty() {
            return Ok(Some(0));
        }
        self.read_with(id, |b| {
            let n = b.read(buf);
            (n > 0).then_some((n, n))
        })
    }

    /// Reads the next in-order chunk of at most `max` bytes without
    /// copying. `Ok(None)` means the stream ended.
    pub fn read_chunk(&mut self, id: StreamId, max: usize) -> Result<Option<Bytes>, ReadError> {
        self.read_with(id, |b| b.read_chunk(max).map(|c| (c.clone(), c.len())))
    }

    /// Reads the next received chunk in whatever order data arrived, with
    /// its stream offset, without copying. Once a stream is read unordered
    /// it cannot be read in order. `Ok(None)` means the stream ended.
    pub fn read_unordered(&mut self, id: StreamId) -> Result<Option<(u64, Bytes)>, ReadError> {
        self.read_with(id, |b| b.read_unordered().map(|(off, c)| ((off, c.clone()), c.len())))
    }

    fn read_with<T>(
        &mut self,
        id: StreamId,
        take: impl FnOnce(&mut crate::streams::recv::RecvBuffer) -> Option<(T, usize)>,
    ) -> Result<Option<T>, ReadError> {
        // Reads carry no time of their own: receive-window tuning uses the
        // latest time any input brought.
        let now = self.latest_now;
        let srtt = self.loss.rtt().smoothed_rtt();
        match self.streams.read_with(id, now, srtt, take) {
            Err(ReadError::Blocked) | Err(ReadError::ClosedStream) if self.error.is_some() => {
                Err(ReadError::ConnectionLost(self.error.clone().expect("checked")))
            }
            other => other,
        }
    }

    /// Queues an unreliable DATAGRAM frame (RFC 9221). If the queue is
    /// full, the oldest queued datagrams are dropped to make room.
    pub fn send_datagram(&mut self, data: Bytes) -> Result<(), SendDatagramError> {
        if !self.is_open() {
            return Err(SendDatagramError::ConnectionClosed);
        }
        let max = self.max_datagram_size().ok_or(SendDatagramError::UnsupportedByPeer)?;
        if data.len() > max {
            return Err(SendDatagramError::TooLarge);
        }
        while self.datagrams_out_bytes + data.len() > self.config.datagram_send_buffer {
            let Some(old) = self.datagrams_out.pop_front() else { break };
            self.datagrams_out_bytes -= old.len();
        }
        self.datagrams_out_bytes += data.len();
        self.datagrams_out.push_back(data);
        Ok(())
    }

    /// Received DATAGRAM payloads waiting for [`Connection::read_datagram`].
    pub fn datagrams_queued(&self) -> usize {
        self.datagrams_in.len()
    }

    /// The next received DATAGRAM payload, if any.
    pub fn read_datagram(&mut self) -> Option<Bytes> {
        let d = self.datagrams_in.pop_front()?;
        self.datagrams_in_bytes -= d.len();
        Some(d)
    }

    /// The largest DATAGRAM payload the peer accepts that also fits in a
    /// packet on this path, or `None` if the peer does not accept them.
    pub fn max_datagram_size(&self) -> Option<usize> {
        let peer_max = self.peer_params.as_ref()?.max_datagram_frame_size?.into_inner();
        // Short header (1 + CID + 4-byte pn), frame type and length, AEAD tag.
        let overhead = 1 + self.remote_cid.len() + 4 + 1 + 2 + 16;
        let path_max = usize::from(self.path.mtu).saturating_sub(overhead);
        Some(path_max.min(usize::try_from(peer_max).unwrap_or(usize::MAX).saturating_sub(3)))
    }

    /// Closes the connection with an application error code (RFC 9000
    /// §10.2). Pending data is abandoned; drain `poll_transmit` to send the
    /// CONNECTION_CLOSE, then wait for `Event::Drained`.
    pub fn close(&mut self, now: Instant, code: VarInt, reason: &[u8]) {
        if !self.is_open() {
            return;
        }
        let close = CloseFrame::Application { code, reason: Bytes::copy_from_slice(reason) };
        self.enter_closing(now, close, ConnectionError::LocallyClosed);
    }

    // ----- state -----

    /// Which side this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The negotiated ALPN protocol, once the handshake got far enough.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tls.alpn()
    }

    /// The certificate chain the peer presented, end entity first (a
    /// client's only when the server asked for one), once the handshake got
    /// far enough.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.tls.peer_certificates()
    }

    /// Whether the TLS handshake completed.
    pub fn is_handshake_complete(&self) -> bool {
        self.handshake_complete
    }

    /// Whether the connection is closed or closing.
    pub fn is_closed(&self) -> bool {
        !self.is_open()
    }

    /// Whether all state can be dropped.
    pub fn is_drained(&self) -> bool {
        self.state == State::Drained
    }

    /// Why the connection ended, once it has.
    pub fn error(&self) -> Option<&ConnectionError> {
        self.error.as_ref()
    }

    /// The peer's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.path.remote
    }

    /// Figures for logs and tools.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            smoothed_rtt: self.loss.rtt().smoothed_rtt(),
            cwnd: self.cc.window(),
            ..self.stats
        }
    }

    /// The transport parameters this endpoint sent.
    pub fn local_transport_parameters(&self) -> &TransportParameters {
        &self.local_params
    }

    /// The peer's transport parameters, once received.
    pub fn peer_transport_parameters(&self) -> Option<&TransportParameters> {
        self.peer_params.as_ref()
    }

    /// Server: gives the connection a NEW_TOKEN token (from the endpoint's
    /// token key) to send once the handshake is confirmed.
    pub(crate) fn queue_new_token(&mut self, token: Bytes) {
        if self.side.is_server() {
            self.new_token_pending = Some(token);
        }
    }

    /// Initiates a 1-RTT key update now, if RFC 9001 §6.1 allows one;
    /// returns whether it did.
    pub fn force_key_update(&mut self, now: Instant) -> bool {
        self.initiate_key_update(now)
    }

    // ----- connection IDs (for the endpoint) -----

    /// The next request for whoever routes this connection's datagrams (an
    /// `Endpoint` drains these itself): connection IDs to issue, IDs the
    /// peer retired, the peer's reset token. A connection driven alone can
    /// ignore them; it then never offers the peer more than its handshake
    /// connection ID.
    pub fn poll_endpoint_event(&mut self) -> Option<EndpointEvent> {
        self.next_endpoint_event()
    }

    /// Gives the peer a new connection ID (after
    /// [`EndpointEvent::NeedCids`]): `cid` must be routed to this
    /// connection, be as long as its handshake connection ID, never have
    /// been used before, and `token` must be its stateless reset token.
    pub fn issue_cid(&mut self, cid: ConnectionId, token: StatelessResetToken) {
        self.add_local_cid(cid, token);
    }

    /// This endpoint's connection IDs the peer may use, handshake ID included.
    pub fn local_cids(&self) -> impl Iterator<Item = &ConnectionId> + '_ {
        self.cids.local_cids()
    }

    /// The Destination Connection ID of the client's first Initial, which
    /// names the connection in logs (qlog file names, key logs).
    pub fn original_dcid(&self) -> ConnectionId {
        self.original_dcid
    }

    /// The peer's connection ID this connection sends to.
    pub fn remote_cid(&self) -> ConnectionId {
        self.remote_cid
    }

    fn is_open(&self) -> bool {
        matches!(self.state, State::Handshake | State::Established)
    }

    fn check_open_for_write(&self) -> Result<(), WriteError> {
        match &self.error {
            Some(e) => Err(WriteError::ConnectionLost(e.clone())),
            None => Ok(()),
        }
    }
}

/// This endpoint's transport parameters, from its configuration.
fn local_params(
    config: &TransportConfig,
    side: Side,
    version: Version,
    local_cid: &ConnectionId,
    original_dcid: Option<&ConnectionId>,
    reset_token: Option<StatelessResetToken>,
) -> TransportParameters {
    let mut p = TransportParameters {
        max_idle_timeout: config.max_idle_timeout.unwrap_or(Duration::ZERO),
        max_udp_payload_size: VarInt::from(config.max_udp_payload_size),
        initial_max_data: config.initial_max_data,
        initial_max_stream_data_bidi_local: config.initial_max_stream_data,
        initial_max_stream_data_bidi_remote: config.initial_max_stream_data,
        initial_max_stream_data_uni: config.initial_max_stream_data,
        initial_max_streams_bidi: config.max_concurrent_bidi_streams,
        initial_max_streams_uni: config.max_concurrent_uni_streams,
        ack_delay_exponent: config.ack_delay_exponent,
        max_ack_delay: config.max_ack_delay,
        active_connection_id_limit: config.active_connection_id_limit,
        initial_source_connection_id: Some(*local_cid),
        max_datagram_frame_size: config
            .datagram_receive_buffer
            .map(|_| VarInt::from_u32(u32::from(u16::MAX))),
        version_information: Some(version_info::local(version)),
        ..TransportParameters::default()
    };
    if side.is_server() {
        p.original_destination_connection_id = original_dcid.copied();
        p.stateless_reset_token = reset_token;
    }
    p
}
