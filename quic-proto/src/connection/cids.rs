//! Connection ID management (RFC 9000 §5.1, §10.3, §19.15, §19.16): the IDs
//! this endpoint issues to its peer (NEW_CONNECTION_ID out,
//! RETIRE_CONNECTION_ID in) and the IDs the peer issues (NEW_CONNECTION_ID
//! in, RETIRE_CONNECTION_ID out), with the stateless reset tokens of both.
//!
//! New IDs come from outside the connection: the connection asks for them
//! with [`EndpointEvent::NeedCids`] and the owner (normally the `Endpoint`,
//! which routes them and derives their reset tokens from its `ResetKey`)
//! hands them over with `Connection::issue_cid`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::Connection;
use super::spaces::SentFrames;
use crate::cid::ConnectionId;
use crate::error::TransportError;
use crate::frame::{FrameType, NewConnectionId, RetireConnectionId};
use crate::token::StatelessResetToken;
use crate::varint::VarInt;

/// Connection IDs this endpoint keeps issued to the peer at most, whatever
/// the peer's active_connection_id_limit: each is a routing table entry.
const MAX_ISSUED_CIDS: u64 = 8;

/// What a connection asks of whoever routes its datagrams. Drained with
/// `Connection::poll_endpoint_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointEvent {
    /// The connection can give the peer this many more connection IDs:
    /// generate them (routable to this connection), and pass each with its
    /// stateless reset token to `Connection::issue_cid`.
    NeedCids(usize),
    /// The peer retired this connection ID: stop routing it here.
    RetiredCid(ConnectionId),
    /// The stateless reset token of the peer's connection ID now in use (or
    /// `None`): a datagram from the peer's address that cannot be routed
    /// and ends in this token is a stateless reset for this connection.
    PeerResetToken(Option<StatelessResetToken>),
}

#[derive(Clone, Copy, Debug)]
struct IssuedCid {
    cid: ConnectionId,
    token: Option<StatelessResetToken>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PeerCid {
    cid: ConnectionId,
    token: Option<StatelessResetToken>,
}

/// Connection ID state of one connection.
#[derive(Debug, Default)]
pub(super) struct CidState {
    /// Our active IDs by sequence number (0: the handshake ID).
    local: BTreeMap<u64, IssuedCid>,
    next_local_seq: u64,
    /// IDs asked of the endpoint and not yet issued.
    requested: u64,
    /// NEW_CONNECTION_ID frames to send (new or lost), by sequence number.
    pending_new: VecDeque<u64>,
    /// The peer's active IDs by sequence number.
    remote: BTreeMap<u64, PeerCid>,
    /// The sequence number of the peer's ID in use.
    remote_seq: u64,
    /// The largest Retire Prior To the peer sent.
    remote_retire_prior_to: u64,
    /// `remote` holds the handshake ID (sequence number 0).
    remote_initialized: bool,
    /// RETIRE_CONNECTION_ID frames to send (new or lost).
    pending_retire: VecDeque<u64>,
    /// Peer IDs retired here whose RETIRE_CONNECTION_ID is not acknowledged.
    unacked_retirements: BTreeSet<u64>,
    /// The Destination Connection ID of the packet being processed.
    pub(super) packet_dcid: Option<ConnectionId>,
    /// The peer reset token last reported to the endpoint.
    reported_token: Option<StatelessResetToken>,
    events: VecDeque<EndpointEvent>,
}

impl CidState {
    /// State for a connection whose handshake ID is `cid`, with the reset
    /// token this endpoint issued for it (servers only).
    pub(super) fn new(cid: ConnectionId, token: Option<StatelessResetToken>) -> Self {
        let mut s = Self::default();
        s.local.insert(0, IssuedCid { cid, token });
        s.next_local_seq = 1;
        s
    }

    /// Whether CID frames wait to be sent.
    pub(super) fn wants_send(&self) -> bool {
        !self.pending_new.is_empty() || !self.pending_retire.is_empty()
    }

    /// The connection IDs of ours the peer may use (active, not retired).
    pub(super) fn local_cids(&self) -> impl Iterator<Item = &ConnectionId> + '_ {
        self.local.values().map(|c| &c.cid)
    }

    /// Records frames acknowledged by the peer.
    pub(super) fn on_acked(&mut self, sent: &SentFrames) {
        for seq in &sent.retire_cids {
            self.unacked_retirements.remove(seq);
        }
    }

    /// Queues the information of lost frames again (RFC 9000 §13.3).
    pub(super) fn on_lost(&mut self, sent: &SentFrames) {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-13.3
        //# New connection IDs are sent in NEW_CONNECTION_ID frames and
        //# retransmitted if the packet containing them is lost.
        for seq in &sent.new_cids {
            if self.local.contains_key(seq) && !self.pending_new.contains(seq) {
                self.pending_new.push_back(*seq);
            }
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-13.3
        //# Retirements of
        //# connection IDs are sent in RETIRE_CONNECTION_ID frames and
        //# retransmitted if the packet containing them is lost.
        for seq in &sent.retire_cids {
            if self.unacked_retirements.contains(seq) && !self.pending_retire.contains(seq) {
                self.pending_retire.push_back(*seq);
            }
        }
    }
}

impl Connection {
    /// The next request for the endpoint; see [`EndpointEvent`].
    pub(super) fn next_endpoint_event(&mut self) -> Option<EndpointEvent> {
        if let Some(e) = self.cids.events.pop_front() {
            return Some(e);
        }
        if self.peer_reset_token != self.cids.reported_token && self.is_open() {
            self.cids.reported_token = self.peer_reset_token;
            return Some(EndpointEvent::PeerResetToken(self.peer_reset_token));
        }
        let need = self.cids_needed();
        if need > 0 {
            self.cids.requested += need;
            return Some(EndpointEvent::NeedCids(need as usize));
        }
        None
    }

    /// How many more IDs the peer should get now.
    fn cids_needed(&self) -> u64 {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.1
        //# An endpoint that selects a zero-length connection ID during the handshake
        //# cannot issue a new connection ID.
        if self.local_cid.is_empty() || !self.handshake_complete || !self.is_open() {
            return 0;
        }
        let Some(params) = self.peer_params.as_ref() else { return 0 };
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.1
        //# An endpoint MUST NOT provide more connection IDs than the peer's
        //# limit.
        let limit = params.active_connection_id_limit.into_inner().min(MAX_ISSUED_CIDS);
        limit.saturating_sub(self.cids.local.len() as u64 + self.cids.requested)
    }

    /// Takes a new connection ID for the peer (after
    /// [`EndpointEvent::NeedCids`]); it goes out in a NEW_CONNECTION_ID frame.
    pub(super) fn add_local_cid(&mut self, cid: ConnectionId, token: StatelessResetToken) {
        self.cids.requested = self.cids.requested.saturating_sub(1);
        if self.local_cid.is_empty() || cid.len() != self.local_cid.len() || !self.is_open() {
            // Short headers carry no length: every ID must have the handshake ID's.
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.1
        //# The sequence number on each newly issued connection ID MUST increase by 1.
        let seq = self.cids.next_local_seq;
        self.cids.next_local_seq += 1;
        self.cids.local.insert(seq, IssuedCid { cid, token: Some(token) });
        self.cids.pending_new.push_back(seq);
    }

    pub(super) fn on_retire_connection_id(&mut self, seq: VarInt) -> Result<(), TransportError> {
        let err = |reason| {
            Err(TransportError::protocol_violation(reason)
                .with_frame(FrameType::RETIRE_CONNECTION_ID))
        };
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.16
        //# An endpoint that provides a zero-length connection
        //# ID MUST treat receipt of a RETIRE_CONNECTION_ID frame as a connection error of
        //# type PROTOCOL_VIOLATION.
        if self.local_cid.is_empty() {
            return err("RETIRE_CONNECTION_ID for a zero-length connection ID");
        }
        let seq = seq.into_inner();
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.16
        //# Receipt of a RETIRE_CONNECTION_ID frame containing a sequence number greater
        //# than any previously sent to the peer MUST be treated as a connection error of
        //# type PROTOCOL_VIOLATION.
        if seq >= self.cids.next_local_seq {
            return err("retired a connection ID never issued");
        }
        let Some(issued) = self.cids.local.get(&seq) else {
            // Retired already: a repeated frame.
            return Ok(());
        };
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.16
        //# The sequence number specified in a RETIRE_CONNECTION_ID frame MUST NOT refer
        //# to the Destination Connection ID field of the packet in which the frame is
        //# contained.  The peer MAY treat this as a connection error of type
        //# PROTOCOL_VIOLATION.
        if self.cids.packet_dcid == Some(issued.cid) {
            return err("retired the connection ID the packet was sent to");
        }
        let cid = issued.cid;
        self.cids.local.remove(&seq);
        self.cids.pending_new.retain(|s| *s != seq);
        self.cids.events.push_back(EndpointEvent::RetiredCid(cid));
        // The next `poll_endpoint_event` asks for a replacement:
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.1
        //# An endpoint SHOULD supply a new connection ID when the peer retires a connection
        //# ID.
        Ok(())
    }

    pub(super) fn on_new_connection_id(
        &mut self,
        frame: &NewConnectionId,
    ) -> Result<(), TransportError> {
        let violation = |reason| {
            Err(TransportError::protocol_violation(reason).with_frame(FrameType::NEW_CONNECTION_ID))
        };
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
        //# An endpoint that is sending packets with a zero-length Destination Connection
        //# ID MUST treat receipt of a NEW_CONNECTION_ID frame as a connection error of
        //# type PROTOCOL_VIOLATION.
        if self.remote_cid.is_empty() {
            return violation("NEW_CONNECTION_ID with zero-length CIDs");
        }
        self.init_remote_cids();
        let seq = frame.sequence.into_inner();
        let retire_prior_to = frame.retire_prior_to.into_inner();
        let offered = PeerCid { cid: frame.id, token: Some(frame.reset_token) };
        if let Some(known) = self.cids.remote.get(&seq) {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
            //# Receipt of the same frame multiple times MUST NOT be treated as a
            //# connection error.
            if *known == offered {
                return Ok(());
            }
            //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
            //# If an endpoint receives a NEW_CONNECTION_ID frame that repeats a previously
            //# issued connection ID with a different Stateless Reset Token field value or a
            //# different Sequence Number field value, or if a sequence number is used for
            //# different connection IDs, the endpoint MAY treat that receipt as a connection
            //# error of type PROTOCOL_VIOLATION.
            return violation("sequence number reused for a different connection ID or token");
        }
        if self.cids.remote.values().any(|c| c.cid == frame.id || c.token == offered.token) {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.2
            //# The same stateless reset token MUST NOT be used for multiple connection IDs.
            return violation(
                "connection ID or reset token repeated under another sequence number",
            );
        }
        if seq < self.cids.remote_retire_prior_to {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
            //# An endpoint that receives a NEW_CONNECTION_ID frame with a sequence number
            //# smaller than the Retire Prior To field of a previously received
            //# NEW_CONNECTION_ID frame MUST send a corresponding RETIRE_CONNECTION_ID frame
            //# that retires the newly received connection ID, unless it has already done so
            //# for that sequence number.
            return self.queue_retirement(seq);
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
        //# A receiver MUST ignore any Retire Prior To fields that do not increase the
        //# largest received Retire Prior To value.
        if retire_prior_to > self.cids.remote_retire_prior_to {
            self.cids.remote_retire_prior_to = retire_prior_to;
            //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.2
            //# Upon receipt of an increased Retire Prior To field, the peer MUST stop using
            //# the corresponding connection IDs and retire them with RETIRE_CONNECTION_ID
            //# frames before adding the newly provided connection ID to the set of active
            //# connection IDs.
            let retired: Vec<u64> =
                self.cids.remote.range(..retire_prior_to).map(|(s, _)| *s).collect();
            for s in retired {
                self.cids.remote.remove(&s);
                self.queue_retirement(s)?;
            }
        }
        self.cids.remote.insert(seq, offered);
        if !self.cids.remote.contains_key(&self.cids.remote_seq) {
            // The ID in use was retired: move to the oldest one left (the
            // one just offered at least).
            let (&next, c) = self.cids.remote.iter().next().expect("the offered ID was inserted");
            self.cids.remote_seq = next;
            self.remote_cid = c.cid;
            //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.1
            //# An endpoint MUST NOT check for any stateless reset tokens associated with
            //# connection IDs it has not used or for connection IDs that have been retired.
            self.peer_reset_token = c.token;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.1
        //# After processing a NEW_CONNECTION_ID frame and
        //# adding and retiring active connection IDs, if the number of active connection IDs
        //# exceeds the value advertised in its active_connection_id_limit transport
        //# parameter, an endpoint MUST close the connection with an error of type
        //# CONNECTION_ID_LIMIT_ERROR.
        if self.cids.remote.len() as u64 > self.config.active_connection_id_limit.into_inner() {
            return Err(TransportError::connection_id_limit_error(
                "too many active connection IDs",
            )
            .with_frame(FrameType::NEW_CONNECTION_ID));
        }
        Ok(())
    }

    /// Enters the peer's handshake connection ID, once the handshake fixed it.
    fn init_remote_cids(&mut self) {
        if !self.cids.remote_initialized {
            // The handshake ID has sequence number 0 (RFC 9000 §5.1.1); its
            // token, from a server, came in the transport parameters.
            self.cids.remote_initialized = true;
            let seq0 = PeerCid { cid: self.remote_cid, token: self.peer_reset_token };
            self.cids.remote.insert(0, seq0);
        }
    }

    /// Moves to the peer's next connection ID and retires the one in use,
    /// as an endpoint does on migration (RFC 9000 §5.1.2, §9.5). Returns
    /// whether there was one to move to.
    #[cfg(test)]
    pub(crate) fn rotate_remote_cid(&mut self) -> bool {
        self.init_remote_cids();
        let old = self.cids.remote_seq;
        let Some((&next, c)) = self.cids.remote.range(old + 1..).next() else { return false };
        let c = *c;
        self.cids.remote.remove(&old);
        self.cids.remote_seq = next;
        self.remote_cid = c.cid;
        self.peer_reset_token = c.token;
        self.queue_retirement(old).is_ok()
    }

    /// Queues a RETIRE_CONNECTION_ID for the peer's ID `seq`.
    fn queue_retirement(&mut self, seq: u64) -> Result<(), TransportError> {
        if !self.cids.unacked_retirements.insert(seq) {
            return Ok(());
        }
        self.cids.pending_retire.push_back(seq);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.2
        //# An endpoint SHOULD allow for sending and tracking a number of
        //# RETIRE_CONNECTION_ID frames of at least twice the value of the
        //# active_connection_id_limit transport parameter.  An endpoint MUST NOT forget a
        //# connection ID without retiring it, though it MAY choose to treat having
        //# connection IDs in need of retirement that exceed this limit as a connection
        //# error of type CONNECTION_ID_LIMIT_ERROR.
        let own_limit = self.config.active_connection_id_limit.into_inner();
        let max = (self.config.limits.max_pending_retirements as u64).max(2 * own_limit);
        if self.cids.unacked_retirements.len() as u64 > max {
            return Err(TransportError::connection_id_limit_error(
                "too many connection ID retirements outstanding",
            )
            .with_frame(FrameType::NEW_CONNECTION_ID));
        }
        Ok(())
    }

    /// Writes pending RETIRE_CONNECTION_ID and NEW_CONNECTION_ID frames that
    /// fit before `end`.
    pub(super) fn write_cid_frames(
        &mut self,
        buf: &mut Vec<u8>,
        end: usize,
        sent: &mut SentFrames,
    ) {
        while let Some(&seq) = self.cids.pending_retire.front() {
            let frame = RetireConnectionId { sequence: VarInt::saturating_from_u64(seq) };
            if buf.len() + frame.encoded_len() > end {
                return;
            }
            frame.encode(&mut *buf);
            self.cids.pending_retire.pop_front();
            sent.retire_cids.push(seq);
        }
        while let Some(&seq) = self.cids.pending_new.front() {
            self.cids.pending_new.pop_front();
            let Some(issued) = self.cids.local.get(&seq) else { continue };
            let frame = NewConnectionId {
                sequence: VarInt::saturating_from_u64(seq),
                retire_prior_to: VarInt::ZERO,
                id: issued.cid,
                reset_token: issued.token.unwrap_or(StatelessResetToken::new([0; 16])),
            };
            if buf.len() + frame.encoded_len() > end {
                self.cids.pending_new.push_front(seq);
                return;
            }
            frame.encode(&mut *buf);
            sent.new_cids.push(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::connection::{ClientConfig, TransportConfig};
    use crate::error::TransportErrorCode;
    use crate::random::SeededRandom;
    use crate::testing::{TestPki, client_config};
    use crate::time::Instant;
    use crate::version::Version;

    /// A client connection before its handshake: enough state for the
    /// frame handlers (active_connection_id_limit 4, the default).
    fn conn() -> Connection {
        let pki = TestPki::new(1);
        let config = ClientConfig {
            tls: Arc::new(client_config(&pki, &[b"test"], 1)),
            transport: Arc::new(TransportConfig::default()),
            version: Version::V1,
        };
        let remote = "192.0.2.1:443".parse().unwrap();
        let rng = Box::new(SeededRandom::from_u64(2));
        Connection::connect(Instant::from_millis(1), &config, "localhost", remote, rng).unwrap()
    }

    fn cid(b: u8) -> ConnectionId {
        ConnectionId::from_slice(&[b; 8]).unwrap()
    }

    fn token(b: u8) -> StatelessResetToken {
        StatelessResetToken::new([b; 16])
    }

    fn ncid(seq: u32, retire_prior_to: u32, b: u8) -> NewConnectionId {
        NewConnectionId {
            sequence: VarInt::from_u32(seq),
            retire_prior_to: VarInt::from_u32(retire_prior_to),
            id: cid(b),
            reset_token: token(b),
        }
    }

    fn code(r: Result<(), TransportError>) -> TransportErrorCode {
        r.unwrap_err().code
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.1
    //= type=test
    //# After processing a NEW_CONNECTION_ID frame and
    //# adding and retiring active connection IDs, if the number of active connection IDs
    //# exceeds the value advertised in its active_connection_id_limit transport
    //# parameter, an endpoint MUST close the connection with an error of type
    //# CONNECTION_ID_LIMIT_ERROR.
    #[test]
    fn more_ids_than_our_limit_is_connection_id_limit_error() {
        let mut c = conn();
        for seq in 1..=3 {
            c.on_new_connection_id(&ncid(seq, 0, seq as u8)).unwrap();
        }
        assert_eq!(
            code(c.on_new_connection_id(&ncid(4, 0, 4))),
            TransportErrorCode::CONNECTION_ID_LIMIT_ERROR
        );
        // Retiring enough in the same frame keeps within the limit.
        let mut c = conn();
        for seq in 1..=3 {
            c.on_new_connection_id(&ncid(seq, 0, seq as u8)).unwrap();
        }
        c.on_new_connection_id(&ncid(4, 1, 4)).unwrap();
        assert_eq!(c.cids.remote.len(), 4);
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.2
    //= type=test
    //# Upon receipt of an increased Retire Prior To field, the peer MUST stop using
    //# the corresponding connection IDs and retire them with RETIRE_CONNECTION_ID
    //# frames before adding the newly provided connection ID to the set of active
    //# connection IDs.
    #[test]
    fn retire_prior_to_retires_and_moves_off_the_id_in_use() {
        let mut c = conn();
        let handshake_cid = c.remote_cid;
        c.on_new_connection_id(&ncid(1, 0, 1)).unwrap();
        c.on_new_connection_id(&ncid(3, 3, 3)).unwrap();
        assert_eq!(c.remote_cid, cid(3));
        assert_ne!(c.remote_cid, handshake_cid);
        assert_eq!(c.peer_reset_token, Some(token(3)));
        assert_eq!(c.cids.pending_retire, [0, 1]);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
        //= type=test
        //# An endpoint that receives a NEW_CONNECTION_ID frame with a sequence number
        //# smaller than the Retire Prior To field of a previously received
        //# NEW_CONNECTION_ID frame MUST send a corresponding RETIRE_CONNECTION_ID frame
        //# that retires the newly received connection ID, unless it has already done so
        //# for that sequence number.
        c.on_new_connection_id(&ncid(2, 0, 2)).unwrap();
        assert_eq!(c.cids.pending_retire, [0, 1, 2]);
        assert!(!c.cids.remote.contains_key(&2));
        c.on_new_connection_id(&ncid(1, 0, 1)).unwrap();
        assert_eq!(c.cids.pending_retire, [0, 1, 2], "already retired");
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
        //= type=test
        //# A receiver MUST ignore any Retire Prior To fields that do not increase the
        //# largest received Retire Prior To value.
        c.on_new_connection_id(&ncid(4, 1, 4)).unwrap();
        assert_eq!(c.cids.remote.keys().copied().collect::<Vec<_>>(), [3, 4]);

        // The frames go out, and come back if lost; acknowledged, they are done.
        let mut buf = Vec::new();
        let mut sent = SentFrames::default();
        c.write_cid_frames(&mut buf, 1000, &mut sent);
        assert_eq!(sent.retire_cids, [0, 1, 2]);
        assert!(!c.cids.wants_send());
        c.cids.on_lost(&sent);
        assert_eq!(c.cids.pending_retire, [0, 1, 2]);
        c.cids.pending_retire.clear();
        c.cids.on_acked(&sent);
        assert!(c.cids.unacked_retirements.is_empty());
        c.cids.on_lost(&sent);
        assert!(c.cids.pending_retire.is_empty(), "acknowledged retirements stay done");
    }

    #[test]
    fn too_many_unacknowledged_retirements_is_an_error() {
        let mut c = conn();
        let mut result = Ok(());
        for seq in 1..=40 {
            result = c.on_new_connection_id(&ncid(seq, seq, seq as u8));
            if result.is_err() {
                // max(16, 2 x limit 4) retirements may be outstanding.
                assert_eq!(seq, 17);
                break;
            }
        }
        assert_eq!(code(result), TransportErrorCode::CONNECTION_ID_LIMIT_ERROR);
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-19.15
    //= type=test
    //# Receipt of the same frame multiple times MUST NOT be treated as a
    //# connection error.
    #[test]
    fn repeated_frames_are_fine_but_conflicting_ones_are_not() {
        let mut c = conn();
        c.on_new_connection_id(&ncid(1, 0, 1)).unwrap();
        c.on_new_connection_id(&ncid(1, 0, 1)).unwrap();
        let pv = TransportErrorCode::PROTOCOL_VIOLATION;
        assert_eq!(code(c.on_new_connection_id(&ncid(1, 0, 9))), pv, "same number, other ID");
        let mut other_token = ncid(1, 0, 1);
        other_token.reset_token = token(9);
        assert_eq!(code(c.on_new_connection_id(&other_token)), pv, "same number, other token");
        assert_eq!(code(c.on_new_connection_id(&ncid(2, 0, 1))), pv, "same ID, other number");
    }

    #[test]
    fn peer_retirements_are_checked_and_reported() {
        let mut c = conn();
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.16
        //= type=test
        //# Receipt of a RETIRE_CONNECTION_ID frame containing a sequence number greater
        //# than any previously sent to the peer MUST be treated as a connection error of
        //# type PROTOCOL_VIOLATION.
        let pv = TransportErrorCode::PROTOCOL_VIOLATION;
        assert_eq!(code(c.on_retire_connection_id(VarInt::from_u32(1))), pv);
        // Open and with its handshake done, the connection asks for IDs.
        c.handshake_complete = true;
        assert_eq!(c.next_endpoint_event(), None, "no peer parameters yet");
        c.peer_params = Some(crate::transport_params::TransportParameters::default());
        // The peer's default limit is 2: one more than the handshake ID.
        assert_eq!(c.next_endpoint_event(), Some(EndpointEvent::NeedCids(1)));
        assert_eq!(c.next_endpoint_event(), None, "asked once");
        c.issue_cid(cid(0x51), token(0x51));
        assert_eq!(c.cids.pending_new, [1]);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.16
        //= type=test
        //# The sequence number specified in a RETIRE_CONNECTION_ID frame MUST NOT refer
        //# to the Destination Connection ID field of the packet in which the frame is
        //# contained.
        c.cids.packet_dcid = Some(cid(0x51));
        assert_eq!(code(c.on_retire_connection_id(VarInt::from_u32(1))), pv);
        c.cids.packet_dcid = Some(c.local_cid);
        c.on_retire_connection_id(VarInt::from_u32(1)).unwrap();
        c.on_retire_connection_id(VarInt::from_u32(1)).unwrap();
        assert_eq!(c.next_endpoint_event(), Some(EndpointEvent::RetiredCid(cid(0x51))));
        assert!(c.cids.pending_new.is_empty(), "a retired ID is not announced");
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.1.1
        //= type=test
        //# An endpoint SHOULD supply a new connection ID when the peer retires a connection
        //# ID.
        assert_eq!(c.next_endpoint_event(), Some(EndpointEvent::NeedCids(1)));
        c.issue_cid(cid(0x52), token(0x52));
        let mut buf = Vec::new();
        let mut sent = SentFrames::default();
        c.write_cid_frames(&mut buf, 1000, &mut sent);
        assert_eq!(sent.new_cids, [2], "sequence numbers increase by one");
        let frames: Vec<_> = crate::frame::Frames::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            frames,
            [crate::frame::Frame::NewConnectionId(NewConnectionId {
                sequence: VarInt::from_u32(2),
                retire_prior_to: VarInt::ZERO,
                id: cid(0x52),
                reset_token: token(0x52),
            })]
        );
        c.cids.on_lost(&sent);
        assert_eq!(c.cids.pending_new, [2], "a lost NEW_CONNECTION_ID goes again");
    }
}
