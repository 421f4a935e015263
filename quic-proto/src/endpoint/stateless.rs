//! Packets the endpoint sends without connection state: Version Negotiation
//! (RFC 9000 §6, §17.2.1), Retry (§8.1.2, §17.2.5), Stateless Reset (§10.3)
//! and the Initial CONNECTION_CLOSE of a refusal (§5.2.2, §10.2.3).

use bytes::Bytes;

use super::incoming::MIN_INITIAL_DATAGRAM;
use super::{Endpoint, StatelessTransmit};
use crate::cid::ConnectionId;
use crate::connection::DatagramMeta;
use crate::connection::packet_builder::PacketBuilder;
use crate::crypto::{Keys, retry_integrity_tag};
use crate::error::TransportErrorCode;
use crate::frame::{ConnectionClose, FrameType};
use crate::packet::{Header, PacketNumber, encode_retry_without_tag, encode_version_negotiation};
use crate::stream_id::Side;
use crate::time::Instant;
use crate::token::write_stateless_reset;
use crate::version::Version;

/// Stateless datagrams queued at most; more are dropped. The driver drains
/// them after each input, so this only bounds a driver that feeds a large
/// batch of unroutable datagrams before polling.
const MAX_QUEUED: usize = 256;

/// AEAD tag length of Initial packets (AES-128-GCM, RFC 9001 §5.2).
const INITIAL_TAG_LEN: usize = 16;

/// Counts stateless resets per period: bounded state, whatever the number
/// of peers.
#[derive(Debug, Default)]
pub(super) struct ResetLimiter {
    window_start: Option<Instant>,
    sent: u32,
}

impl ResetLimiter {
    fn allow(&mut self, now: Instant, max: u32, period: core::time::Duration) -> bool {
        if self.window_start.is_none_or(|start| now >= start + period) {
            self.window_start = Some(now);
            self.sent = 0;
        }
        if self.sent >= max {
            return false;
        }
        self.sent += 1;
        true
    }
}

impl Endpoint {
    fn queue_stateless(&mut self, meta: DatagramMeta, data: Vec<u8>) {
        if self.stateless.len() < MAX_QUEUED {
            self.stateless.push_back(StatelessTransmit {
                destination: meta.remote,
                src_ip: meta.local_ip,
                data,
            });
        }
    }

    /// Answers a long header packet of a version this server does not accept.
    pub(super) fn send_version_negotiation(
        &mut self,
        meta: DatagramMeta,
        dcid: &[u8],
        scid: &[u8],
        datagram_len: usize,
    ) {
        if self.server_config.is_none() {
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.2.2
        //# Servers MUST drop smaller packets that specify unsupported
        //# versions.
        //
        // ("smaller" than a datagram that could start a connection: 1200
        // bytes in every version this endpoint speaks.)
        if datagram_len < MIN_INITIAL_DATAGRAM {
            return;
        }
        let mut versions = self.config.supported_versions.clone();
        if self.config.grease_version_negotiation {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-6.3
            //# Endpoints MAY add reserved versions to any field where unknown or unsupported
            //# versions are ignored to test that a peer correctly ignores the value.
            let mut bytes = [0u8; 4];
            self.rng.fill(&mut bytes);
            versions.push(Version(u32::from_be_bytes(bytes) & 0xf0f0_f0f0 | 0x0a0a_0a0a));
        }
        if versions.is_empty() {
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.1
        //# A server MUST NOT send more than one Version Negotiation packet in response to a
        //# single UDP datagram.
        //
        // Only the first packet of a datagram is ever answered.
        let mut buf = Vec::new();
        encode_version_negotiation(dcid, scid, &versions, &mut *self.rng, &mut buf);
        tracing::debug!(remote = %meta.remote, "sending Version Negotiation");
        self.queue_stateless(meta, buf);
    }

    /// Answers a short header packet for a connection ID nothing routes.
    pub(super) fn send_stateless_reset(
        &mut self,
        now: Instant,
        meta: DatagramMeta,
        dcid: &ConnectionId,
        trigger_len: usize,
    ) {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.2
        //# This design relies on the peer always sending a connection ID in its packets so
        //# that the endpoint can use the connection ID from a packet to reset the
        //# connection.
        if dcid.is_empty() {
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.3
        //# An endpoint can remember the number of Stateless Resets that it has sent and
        //# stop generating new Stateless Resets once a limit is reached.
        //
        // A flood of unroutable packets (or two endpoints resetting each
        // other) then costs a bounded number of HMACs and datagrams.
        let (max, period) = (self.config.max_stateless_resets, self.config.stateless_reset_period);
        if !self.resets.allow(now, max, period) {
            return;
        }
        let token = self.reset_key.token(dcid);
        let mut buf = Vec::new();
        // Writes nothing unless the reset can be smaller than the trigger
        // and still 21 bytes or more (RFC 9000 §10.3, §10.3.3).
        if write_stateless_reset(&token, trigger_len, &mut *self.rng, &mut buf) {
            tracing::debug!(remote = %meta.remote, %dcid, "sending a stateless reset");
            self.queue_stateless(meta, buf);
        }
    }

    /// Sends a Retry answering a client Initial to `client_dcid`.
    pub(super) fn send_retry(
        &mut self,
        now: Instant,
        meta: DatagramMeta,
        version: Version,
        client_dcid: ConnectionId,
        client_scid: ConnectionId,
    ) {
        tracing::debug!(remote = %meta.remote, %client_dcid, "sending Retry");
        self.stats.retries_sent += 1;
        let mut retry_scid = self.new_cid();
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.5.1
        //# This value MUST NOT be equal to the Destination Connection ID field of
        //# the packet sent by the client.
        for _ in 0..8 {
            if retry_scid != client_dcid {
                break;
            }
            retry_scid = self.new_cid();
        }
        if retry_scid == client_dcid {
            // A client that can predict our IDs gets no Retry, rather than a loop.
            return;
        }
        let token =
            self.token_key.seal_retry(&mut *self.rng, meta.remote, &client_dcid, &retry_scid, now);
        let mut unused = [0u8];
        self.rng.fill(&mut unused);
        let mut buf = Vec::new();
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.5.1
        //# The server populates the Destination Connection ID with the connection ID that
        //# the client included in the Source Connection ID of the Initial packet.
        encode_retry_without_tag(version, &client_scid, &retry_scid, &token, unused[0], &mut buf);
        let Ok(tag) = retry_integrity_tag(version, &client_dcid, &buf) else { return };
        buf.extend_from_slice(&tag);
        self.queue_stateless(meta, buf);
    }

    /// Sends an Initial packet with CONNECTION_CLOSE to a client whose
    /// Initial went to `client_dcid`, keeping no state (RFC 9000 §10.2.3).
    pub(super) fn send_initial_close(
        &mut self,
        meta: DatagramMeta,
        version: Version,
        client_dcid: ConnectionId,
        client_scid: ConnectionId,
        code: TransportErrorCode,
        reason: &[u8],
    ) {
        tracing::debug!(remote = %meta.remote, %code, "closing a connection attempt statelessly");
        let Ok(keys) = Keys::initial(version, &client_dcid, Side::Server) else { return };
        let header = Header::Initial {
            version,
            dcid: client_scid,
            scid: self.new_cid(),
            token: Bytes::new(),
        };
        let mut buf = Vec::new();
        let pn = PacketNumber::new(0).expect("0 is a packet number");
        let Some(builder) =
            PacketBuilder::new(&mut buf, &header, pn, None, MIN_INITIAL_DATAGRAM, INITIAL_TAG_LEN)
        else {
            return;
        };
        // Not ack-eliciting, so not padded to 1200 bytes (RFC 9000 §14.1):
        // the answer stays smaller than the client's Initial.
        ConnectionClose { error_code: code, frame_type: FrameType::PADDING, reason }
            .encode(&mut buf);
        if builder.finish(&mut buf, 0, &keys.local.header, &keys.local.packet).is_ok() {
            self.queue_stateless(meta, buf);
        }
    }
}
