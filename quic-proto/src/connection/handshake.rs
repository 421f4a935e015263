//! The handshake (RFC 9000 §7, RFC 9001 §4): driving TLS over CRYPTO
//! frames, installing and discarding keys, and checking the peer's
//! transport parameters.

use super::key_phase::OneRttKeys;
use super::{ConnectError, Connection, ConnectionError, Event, State};
use crate::cid::ConnectionId;
use crate::crypto::{KeyChange, Keys};
use crate::error::TransportError;
use crate::qlog::events::{ConnectionState, Event as QlogEvent, Initiator};
use crate::space::{EncryptionLevel, SpaceId};
use crate::time::Instant;

impl Connection {
    pub(super) fn install_initial_keys(&mut self, dcid: &ConnectionId) -> Result<(), ConnectError> {
        let keys = Keys::initial(self.version, dcid, self.side)
            .map_err(|_| ConnectError::UnsupportedVersion(self.version))?;
        self.spaces[SpaceId::Initial as usize].keys = Some(keys);
        Ok(())
    }

    /// Hands CRYPTO data that arrived in order at `level` to TLS.
    pub(super) fn on_crypto_data(
        &mut self,
        now: Instant,
        level: EncryptionLevel,
    ) -> Result<(), TransportError> {
        let space = level.space();
        while let Some(chunk) = self.spaces[space as usize].crypto_recv.read_chunk(usize::MAX) {
            self.tls.read_handshake(level, &chunk)?;
        }
        self.drive_tls(now);
        if let Some(e) = self.pending_tls_error.take() {
            return Err(e);
        }
        Ok(())
    }

    /// Moves TLS output into the CRYPTO streams and installs new keys.
    pub(super) fn drive_tls(&mut self, now: Instant) {
        loop {
            let level = self.tls.write_level();
            let mut out = Vec::new();
            let change = self.tls.write_handshake(&mut out);
            if !out.is_empty() {
                let space = &mut self.spaces[level.space() as usize];
                // CRYPTO send buffers are unbounded: TLS output is bounded
                // by the handshake itself.
                let _ = space.crypto_send.write_bytes(out.into());
            }
            match change {
                Some(KeyChange::Handshake { keys }) => {
                    self.spaces[SpaceId::Handshake as usize].keys = Some(keys);
                    self.loss.on_handshake_keys(now);
                    self.qlog_keys_installed(now, EncryptionLevel::Handshake);
                }
                Some(KeyChange::OneRtt { keys, secrets }) => {
                    self.one_rtt = Some(OneRttKeys::new(keys, secrets));
                    self.qlog_keys_installed(now, EncryptionLevel::OneRtt);
                }
                None => break,
            }
        }
        // A resuming client's TLS session returns the parameters remembered
        // from the previous connection (for 0-RTT) until the server's
        // EncryptedExtensions replace them: the client takes this
        // connection's only once the handshake is complete. The server's
        // come with the ClientHello.
        let current = self.side.is_server() || !self.tls.is_handshaking();
        if self.peer_params.is_none()
            && current
            && let Some(params) = self.tls.peer_transport_parameters()
            && let Err(e) = params.and_then(|p| self.on_peer_params(p))
        {
            self.pending_tls_error = Some(e);
            return;
        }
        if !self.handshake_complete && !self.tls.is_handshaking() {
            self.on_handshake_complete(now);
        }
    }

    fn on_peer_params(
        &mut self,
        params: crate::transport_params::TransportParameters,
    ) -> Result<(), TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-7.3
        //# An endpoint MUST treat the absence of the initial_source_connection_id transport
        //# parameter from either endpoint or the absence of the
        //# original_destination_connection_id transport parameter from the server as a
        //# connection error of type TRANSPORT_PARAMETER_ERROR.
        //
        //# The values provided by a peer for these transport parameters MUST match the
        //# values that an endpoint used in the Destination and Source Connection ID fields
        //# of Initial packets that it sent (and received, for servers). Endpoints MUST
        //# validate that received transport parameters match received connection ID values.
        let mismatch = |what| Err(TransportError::transport_parameter_error(what));
        if params.initial_source_connection_id != Some(self.remote_cid) {
            return mismatch(
                "initial_source_connection_id does not match the peer's connection ID",
            );
        }
        if self.side.is_client() {
            if params.original_destination_connection_id != Some(self.original_dcid) {
                return mismatch("original_destination_connection_id does not match");
            }
            //= https://www.rfc-editor.org/rfc/rfc9000#section-7.3
            //# * absence of the retry_source_connection_id transport parameter from the server
            //#   after receiving a Retry packet,
            if params.retry_source_connection_id != self.retry_scid {
                return mismatch("retry_source_connection_id does not match the Retry");
            }
            self.peer_reset_token = params.stateless_reset_token;
        }
        self.check_version_information(&params)?;
        self.streams.on_peer_params(&params)?;
        self.loss
            .set_peer_max_ack_delay(params.max_ack_delay)
            .set_peer_ack_delay_exponent(params.ack_delay_exponent);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.1
        //# Each endpoint advertises a max_idle_timeout, but the effective value
        //# at an endpoint is computed as the minimum of the two advertised
        //# values (or the sole advertised value, if only one endpoint advertises
        //# a non-zero value).
        let peer_idle = (!params.max_idle_timeout.is_zero()).then_some(params.max_idle_timeout);
        self.idle_timeout = match (self.config.max_idle_timeout, peer_idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mtu_cap = u16::try_from(params.max_udp_payload_size.into_inner()).unwrap_or(u16::MAX);
        self.path.mtu = self.path.mtu.min(mtu_cap).max(1200);
        self.peer_params = Some(params);
        self.qlog_params(self.latest_now, Initiator::Remote);
        Ok(())
    }

    fn on_handshake_complete(&mut self, now: Instant) {
        self.handshake_complete = true;
        if self.state == State::Handshake {
            self.state = State::Established;
        }
        self.events.push_back(Event::HandshakeCompleted);
        self.qlog_state(now, ConnectionState::HandshakeComplete);
        if let Some(alpn) = self.tls.alpn().map(<[u8]>::to_vec) {
            self.qlog_event(now, || QlogEvent::AlpnInformation { chosen_alpn: &alpn });
        }
        if self.side.is_server() {
            //= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.2
            //# the TLS handshake is considered confirmed at the
            //# server when the handshake completes.
            self.handshake_done_pending = true;
            self.on_handshake_confirmed(now);
        }
    }

    /// Client: HANDSHAKE_DONE arrived. Server: the handshake completed.
    pub(super) fn on_handshake_confirmed(&mut self, now: Instant) {
        if self.handshake_confirmed {
            return;
        }
        self.handshake_confirmed = true;
        self.loss.on_handshake_confirmed(now);
        //= https://www.rfc-editor.org/rfc/rfc9001#section-4.9.2
        //# An endpoint MUST discard its Handshake keys when the TLS handshake is confirmed
        //# ({{handshake-confirmed}}).
        self.qlog_state(now, ConnectionState::HandshakeConfirmed);
        self.discard_space(now, SpaceId::Handshake);
        self.events.push_back(Event::HandshakeConfirmed);
    }

    /// Drops a space's keys and everything in flight in it (RFC 9001 §4.9).
    pub(super) fn discard_space(&mut self, now: Instant, space: SpaceId) {
        let s = &mut self.spaces[space as usize];
        if s.discarded {
            return;
        }
        s.discarded = true;
        s.keys = None;
        s.probes = 0;
        self.loss.on_space_discarded(now, space);
        self.qlog_keys_discarded(now, space);
    }

    /// Initiates a key update if RFC 9001 §6.1 allows it now.
    pub(super) fn initiate_key_update(&mut self, now: Instant) -> bool {
        let confirmed = self.handshake_confirmed;
        let largest_acked = self.loss.largest_acked(SpaceId::Data);
        let pto = self.loss.pto_period(SpaceId::Data);
        let Some(keys) = self.one_rtt.as_mut() else { return false };
        if !keys.can_initiate(confirmed, largest_acked) {
            return false;
        }
        keys.update(now + 3 * pto);
        self.stats.key_updates += 1;
        self.qlog_key_update(now, self.stats.key_updates, true);
        true
    }

    /// Closes the connection because of a protocol violation by the peer.
    pub(super) fn close_with_error(&mut self, now: Instant, error: TransportError) {
        if !self.is_open() {
            return;
        }
        let close = super::CloseFrame::Transport {
            code: error.code,
            frame_type: error.frame_type,
            reason: bytes::Bytes::from_static(error.reason.as_bytes()),
        };
        self.enter_closing(now, close, ConnectionError::TransportError(error));
    }
}
