//! Per packet number space state (RFC 9000 §12.3), and what each sent
//! packet carried, so that lost information (not packets) is retransmitted
//! (RFC 9000 §13.3).

use core::ops::Range;

use crate::crypto::Keys;
use crate::recovery::ack_tracker::AckTracker;
use crate::space::SpaceId;
use crate::stream_id::StreamId;
use crate::streams::recv::RecvBuffer;
use crate::streams::send::SendBuffer;
use crate::varint::VarInt;

/// Fewest bytes of out-of-order CRYPTO data a space buffers, whatever
/// `Limits::max_crypto_buffer` says.
//= https://www.rfc-editor.org/rfc/rfc9000#section-7.5
//# Implementations MUST support buffering at least 4096 bytes of data received in
//# out-of-order CRYPTO frames.
pub(crate) const MIN_CRYPTO_BUFFER: usize = 4096;

/// Disjoint ranges of CRYPTO data a space buffers. A handshake flight is a
/// few packets (a certificate chain a few dozen); more holes than this is
/// a peer fragmenting on purpose.
const MAX_CRYPTO_FRAGMENTS: usize = 64;

/// One packet number space: its keys (Initial and Handshake; 1-RTT keys
/// live in `OneRttKeys`), its CRYPTO stream in each direction, and its
/// acknowledgment state.
pub(crate) struct Space {
    pub(crate) keys: Option<Keys>,
    pub(crate) crypto_send: SendBuffer,
    pub(crate) crypto_recv: RecvBuffer,
    /// Bytes of CRYPTO data buffered beyond what TLS consumed, at most.
    pub(crate) crypto_limit: u64,
    pub(crate) ack: AckTracker,
    /// Probe packets the loss detection timer asked for.
    pub(crate) probes: u8,
    /// The keys were discarded (RFC 9001 §4.9): nothing more is sent or
    /// accepted in this space.
    pub(crate) discarded: bool,
}

impl Space {
    pub(crate) fn new(id: SpaceId, max_crypto_buffer: usize) -> Self {
        let crypto_limit = max_crypto_buffer.max(MIN_CRYPTO_BUFFER) as u64;
        Self {
            keys: None,
            // CRYPTO data is not flow controlled; the handshake's size bounds it.
            crypto_send: SendBuffer::new(u64::MAX),
            crypto_recv: RecvBuffer::with_limits(MAX_CRYPTO_FRAGMENTS, crypto_limit),
            crypto_limit,
            ack: AckTracker::new(id),
            probes: 0,
            discarded: false,
        }
    }

    /// Whether CRYPTO data (new or retransmitted) waits to be sent.
    pub(crate) fn has_crypto_to_send(&self) -> bool {
        self.crypto_send.next_transmit_offset(u64::MAX).is_some()
    }
}

/// What a sent packet carried that must be repeated if it is lost, or
/// acted on when it is acknowledged.
#[derive(Clone, Debug, Default)]
pub(crate) struct SentFrames {
    /// CRYPTO data: offset range.
    pub(crate) crypto: Option<Range<u64>>,
    /// STREAM data: stream, offset range, and whether the frame had FIN.
    pub(crate) stream: Vec<(StreamId, Range<u64>, bool)>,
    /// The largest packet number an ACK frame in it acknowledged.
    pub(crate) largest_acked: Option<u64>,
    pub(crate) handshake_done: bool,
    pub(crate) max_data: bool,
    pub(crate) max_stream_data: Vec<StreamId>,
    pub(crate) max_streams_bidi: bool,
    pub(crate) max_streams_uni: bool,
    pub(crate) reset_stream: Vec<(StreamId, VarInt, u64)>,
    pub(crate) stop_sending: Vec<(StreamId, VarInt)>,
    /// DATA_BLOCKED: the limit it reported.
    pub(crate) data_blocked: Option<VarInt>,
    /// STREAM_DATA_BLOCKED frames: stream and the limit reported.
    pub(crate) stream_data_blocked: Vec<(StreamId, VarInt)>,
    /// STREAMS_BLOCKED frames: direction and the limit reported.
    pub(crate) streams_blocked: Vec<(crate::stream_id::Dir, VarInt)>,
    pub(crate) ping: bool,
    pub(crate) new_token: Option<bytes::Bytes>,
    /// NEW_CONNECTION_ID frames: sequence numbers of our connection IDs.
    pub(crate) new_cids: Vec<u64>,
    /// RETIRE_CONNECTION_ID frames: sequence numbers of the peer's IDs.
    pub(crate) retire_cids: Vec<u64>,
}

impl SentFrames {
    /// Whether the packet carried anything but ACK and PADDING frames.
    pub(crate) fn is_ack_eliciting(&self) -> bool {
        self.crypto.is_some()
            || !self.stream.is_empty()
            || self.handshake_done
            || self.max_data
            || !self.max_stream_data.is_empty()
            || self.max_streams_bidi
            || self.max_streams_uni
            || !self.reset_stream.is_empty()
            || !self.stop_sending.is_empty()
            || self.data_blocked.is_some()
            || !self.stream_data_blocked.is_empty()
            || !self.streams_blocked.is_empty()
            || self.ping
            || self.new_token.is_some()
            || !self.new_cids.is_empty()
            || !self.retire_cids.is_empty()
    }
}
