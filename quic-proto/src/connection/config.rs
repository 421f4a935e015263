//! Transport configuration: what this endpoint advertises, how it paces and
//! acknowledges, and the caps that bound what a hostile peer can make it
//! hold. Every default is documented and chosen for a general-purpose
//! endpoint on the public Internet.

use core::time::Duration;
use std::sync::Arc;

use crate::congestion::ControllerFactory;
use crate::congestion::new_reno::NewRenoConfig;
use crate::varint::VarInt;

/// Transport settings for connections. Private fields, `&mut self` setters
/// that return `&mut Self`, documented defaults.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    pub(crate) max_idle_timeout: Option<Duration>,
    pub(crate) keep_alive_interval: Option<Duration>,
    pub(crate) initial_rtt: Duration,
    pub(crate) initial_max_data: VarInt,
    pub(crate) max_data_window: u64,
    pub(crate) initial_max_stream_data: VarInt,
    pub(crate) max_stream_data_window: u64,
    pub(crate) max_concurrent_bidi_streams: VarInt,
    pub(crate) max_concurrent_uni_streams: VarInt,
    pub(crate) max_ack_delay: Duration,
    pub(crate) ack_delay_exponent: u8,
    pub(crate) ack_eliciting_threshold: u64,
    pub(crate) active_connection_id_limit: VarInt,
    pub(crate) max_udp_payload_size: u16,
    pub(crate) initial_mtu: u16,
    pub(crate) datagram_receive_buffer: Option<usize>,
    pub(crate) datagram_send_buffer: usize,
    pub(crate) send_buffer_per_stream: usize,
    pub(crate) key_update_interval: u64,
    pub(crate) congestion_controller: Arc<dyn ControllerFactory>,
    pub(crate) limits: Limits,
}

/// Caps on state a peer can make this endpoint hold. Exceeding one closes
/// the connection with the RFC's error code for that resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Received DATAGRAM frames queued for the application (default 1024);
    /// beyond this, or beyond the byte bound
    /// (`TransportConfig::datagram_receive_buffer`), the oldest are dropped.
    pub max_received_datagrams: usize,
    /// Buffered PATH_RESPONSE frames awaiting transmission (default 8).
    pub max_pending_path_responses: usize,
    /// Connection IDs retired by the peer and not yet acknowledged (default 16).
    pub max_pending_retirements: usize,
    /// Bytes of out-of-order CRYPTO data buffered per space (default 64 KiB,
    /// at least 4096 whatever the setting); more, or more than 64 disjoint
    /// ranges, is CRYPTO_BUFFER_EXCEEDED (RFC 9000 §7.5).
    pub max_crypto_buffer: usize,
    /// Disjoint ranges of out-of-order data buffered per stream (default
    /// 1024); more is INTERNAL_ERROR (RFC 9000 §21.7, `streams::recv`).
    pub max_stream_fragments: usize,
    /// ACK ranges tracked per packet number space (default 64); older ranges
    /// are forgotten.
    pub max_ack_ranges: usize,
    /// Packets buffered because their keys are not available yet (default 16).
    pub max_undecryptable_packets: usize,
    /// Streams the peer may abort per second, sustained: RESET_STREAM and
    /// STOP_SENDING frames each count once per stream they abort, repeats
    /// are free (default 4,000). More, once `stream_abort_burst` is used
    /// up, is PROTOCOL_VIOLATION (RFC 9000 §21.9): a peer that opens and
    /// cancels streams as fast as it can (HTTP/2's "Rapid Reset") makes
    /// this endpoint do work for nothing. 0 makes the burst a lifetime
    /// total.
    pub stream_aborts_per_second: u64,
    /// Stream aborts allowed at once above the sustained rate (default
    /// 10,000): a page navigation cancelling every request in flight, even
    /// with a few thousand concurrent streams, fits.
    pub stream_abort_burst: u64,
    /// 1-RTT packets the peer may send per second, sustained, that elicit
    /// an acknowledgment but carry nothing but PING and PADDING (default
    /// 1,000; keep-alives and probes come a few per round trip). More,
    /// once `ping_only_packet_burst` is used up, is PROTOCOL_VIOLATION
    /// (RFC 9000 §21.9): each costs a decryption, a parse and an ACK and
    /// moves nothing forward.
    pub ping_only_packets_per_second: u64,
    /// PING-only packets allowed at once above the sustained rate
    /// (default 5,000).
    pub ping_only_packet_burst: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_received_datagrams: 1024,
            max_pending_path_responses: 8,
            max_pending_retirements: 16,
            max_crypto_buffer: 64 * 1024,
            max_stream_fragments: 1024,
            max_ack_ranges: 64,
            max_undecryptable_packets: 16,
            stream_aborts_per_second: 4_000,
            stream_abort_burst: 10_000,
            ping_only_packets_per_second: 1_000,
            ping_only_packet_burst: 5_000,
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_idle_timeout: Some(Duration::from_secs(30)),
            keep_alive_interval: None,
            initial_rtt: crate::recovery::rtt::INITIAL_RTT,
            initial_max_data: VarInt::from_u32(1 << 20),
            max_data_window: 16 << 20,
            initial_max_stream_data: VarInt::from_u32(256 << 10),
            max_stream_data_window: 8 << 20,
            max_concurrent_bidi_streams: VarInt::from_u32(100),
            max_concurrent_uni_streams: VarInt::from_u32(100),
            max_ack_delay: Duration::from_millis(25),
            ack_delay_exponent: 3,
            ack_eliciting_threshold: 2,
            active_connection_id_limit: VarInt::from_u32(4),
            max_udp_payload_size: 1472,
            initial_mtu: 1200,
            datagram_receive_buffer: Some(1 << 20),
            datagram_send_buffer: 1 << 20,
            send_buffer_per_stream: 1 << 20,
            key_update_interval: 1 << 22,
            congestion_controller: Arc::new(NewRenoConfig::default()),
            limits: Limits::default(),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(&mut self, value: $ty) -> &mut Self {
            self.$name = value;
            self
        }
    };
}

impl TransportConfig {
    setter!(
        /// Idle timeout advertised in max_idle_timeout; `None` disables it.
        /// The effective timeout is the smaller of both endpoints' values
        /// (RFC 9000 §10.1). Default 30 s.
        max_idle_timeout: Option<Duration>
    );
    setter!(
        /// Send a PING when nothing was sent for this long, keeping an idle
        /// connection (and NAT bindings) alive. Default: off.
        keep_alive_interval: Option<Duration>
    );
    setter!(
        /// RTT assumed before the first sample (RFC 9002 §6.2.2). Default 333 ms.
        initial_rtt: Duration
    );
    setter!(
        /// Connection-level receive window advertised at first (initial_max_data).
        /// Default 1 MiB.
        initial_max_data: VarInt
    );
    setter!(
        /// Largest connection-level window auto-tuning may grow to. Default 16 MiB.
        max_data_window: u64
    );
    setter!(
        /// Per-stream receive window advertised at first, for every stream type.
        /// Default 256 KiB.
        initial_max_stream_data: VarInt
    );
    setter!(
        /// Largest per-stream window auto-tuning may grow to. Default 8 MiB.
        max_stream_data_window: u64
    );
    setter!(
        /// Peer-initiated bidirectional streams open at once. Default 100.
        max_concurrent_bidi_streams: VarInt
    );
    setter!(
        /// Peer-initiated unidirectional streams open at once. Default 100.
        max_concurrent_uni_streams: VarInt
    );
    setter!(
        /// Longest this endpoint delays an ACK (max_ack_delay). Default 25 ms.
        max_ack_delay: Duration
    );
    setter!(
        /// Scale of the ACK Delay field (ack_delay_exponent, at most 20). Default 3.
        ack_delay_exponent: u8
    );
    setter!(
        /// Ack-eliciting packets received before an ACK is sent without
        /// waiting for max_ack_delay (RFC 9000 §13.2.2). Default 2.
        ack_eliciting_threshold: u64
    );
    setter!(
        /// Connection IDs from the peer this endpoint stores
        /// (active_connection_id_limit, at least 2). Default 4.
        active_connection_id_limit: VarInt
    );
    setter!(
        /// Largest UDP payload this endpoint accepts (max_udp_payload_size,
        /// at least 1200). Default 1472 (Ethernet MTU minus IPv4 and UDP headers).
        max_udp_payload_size: u16
    );
    setter!(
        /// Datagram size used before path MTU discovery (at least 1200). Default 1200.
        initial_mtu: u16
    );
    setter!(
        /// Bytes of received DATAGRAM frames buffered for the application;
        /// `None` disables DATAGRAM support (max_datagram_frame_size absent).
        /// Default 1 MiB.
        datagram_receive_buffer: Option<usize>
    );
    setter!(
        /// Bytes of outgoing DATAGRAM frames queued before the oldest are
        /// dropped. Default 1 MiB.
        datagram_send_buffer: usize
    );
    setter!(
        /// Unacknowledged bytes buffered per sending stream before writes
        /// block. Default 1 MiB.
        send_buffer_per_stream: usize
    );
    setter!(
        /// Packets sealed with one 1-RTT key before this endpoint initiates a
        /// key update; always kept below the AEAD confidentiality limit
        /// (RFC 9001 §6.6). Default 2^22.
        key_update_interval: u64
    );
    setter!(
        /// How each path's congestion controller is built. Default NewReno.
        congestion_controller: Arc<dyn ControllerFactory>
    );
    setter!(
        /// Caps against hostile peers. Default [`Limits::default`].
        limits: Limits
    );
}
