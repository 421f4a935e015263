//! New connections (RFC 9000 §5.2.2, §8.1, §14.1): a client's first Initial
//! becomes an [`Incoming`] the application accepts, refuses, retries or
//! ignores; address validation tokens are checked on the way in.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use crate::hash::Map as HashMap;
use bytes::BytesMut;
use slab::Slab;

use super::replay::{ReplayFilter, TokenId};
use super::{AcceptError, ConnectionHandle, DatagramEvent, Endpoint, RetryError};
use crate::cid::ConnectionId;
use crate::connection::{AcceptParams, Connection, DatagramMeta};
use crate::crypto::{initial_client_keys, open_payload, remove_header_protection};
use crate::error::TransportErrorCode;
use crate::packet::{PacketNumberLen, PartialDecode, decode_packet_number};
use crate::time::Instant;
use crate::token::{TokenKey, ValidatedToken};
use crate::version::Version;

//= https://www.rfc-editor.org/rfc/rfc9000#section-14.1
//# A server MUST discard an Initial packet that is carried in a UDP datagram with a
//# payload that is smaller than the smallest allowed maximum datagram size of 1200
//# bytes.
pub(super) const MIN_INITIAL_DATAGRAM: usize = 1200;

/// Datagrams kept per pending attempt, its first included (a first flight
/// larger than one datagram, or retransmissions), until it is decided.
const MAX_BUFFERED_DATAGRAMS: usize = 4;

/// Whether the first packet of `datagram`, a client Initial to `dcid`,
/// passes Initial packet protection (RFC 9001 §5.2). Anyone can compute
/// Initial keys, so this proves no identity; it proves the sender ran QUIC
/// rather than spraying bytes, and costs a key derivation and one AEAD
/// open, on a copy in `scratch` so that the connection later decrypts the
/// untouched datagram.
//
// Checked before anything is kept: a forged Initial gets no incoming
// slot, no TLS session, no qlog file (DESIGN.md, "Hostile input").
pub(super) fn initial_authenticates(
    version: Version,
    dcid: &ConnectionId,
    datagram: &[u8],
    cid_len: usize,
    scratch: &mut Vec<u8>,
) -> bool {
    let Ok(decoded) = PartialDecode::parse(datagram, cid_len, false) else { return false };
    let Some(pn_offset) = decoded.pn_offset() else { return false };
    let Ok(keys) = initial_client_keys(version, dcid) else { return false };
    scratch.clear();
    scratch.extend_from_slice(decoded.packet());
    let Ok((pn_len, truncated)) = remove_header_protection(&keys.header, scratch, pn_offset) else {
        return false;
    };
    let Some(pn_len) = PacketNumberLen::new(pn_len) else { return false };
    // A client's first packet numbers are small: with no packet received
    // yet, the truncated number is the number (RFC 9000 §17.1).
    let pn = decode_packet_number(None, truncated, pn_len).into_inner();
    open_payload(&keys.packet, pn, scratch, pn_offset + pn_len.bytes()).is_ok()
}

/// The first byte of the tokens `TokenKey::seal_retry` makes: RFC 9000
/// §8.1.1 has Retry and NEW_TOKEN tokens tell apart, and the kind is in
/// the clear (a test holds this to `token.rs`).
pub(super) const RETRY_TOKEN_KIND: u8 = 0x01;

/// A client's connection attempt awaiting the application's decision:
/// pass it to exactly one of [`Endpoint::accept`], [`Endpoint::refuse`],
/// [`Endpoint::retry`] or [`Endpoint::ignore`]. One dropped undecided is
/// ignored once the endpoint's incoming lifetime has passed.
#[derive(Debug)]
#[must_use = "accept, refuse, retry or ignore the connection attempt"]
pub struct Incoming {
    slot: usize,
    serial: u64,
    remote: SocketAddr,
    local_ip: Option<IpAddr>,
    version: Version,
    dcid: ConnectionId,
    scid: ConnectionId,
    address_validated: bool,
    retry: Option<(ConnectionId, ConnectionId)>,
}

impl Incoming {
    /// The client's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.remote
    }

    /// The local address the Initial was sent to, if the driver knew it.
    pub fn local_ip(&self) -> Option<IpAddr> {
        self.local_ip
    }

    /// The QUIC version of the client's Initial.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The Destination Connection ID of the client's Initial.
    pub fn client_dcid(&self) -> ConnectionId {
        self.dcid
    }

    /// The Source Connection ID of the client's Initial.
    pub fn client_scid(&self) -> ConnectionId {
        self.scid
    }

    /// Whether a token (from a Retry or a NEW_TOKEN frame) proved the
    /// client's address: the connection is then not held to the
    /// anti-amplification limit. An invalid token counts as none.
    pub fn is_address_validated(&self) -> bool {
        self.address_validated
    }

    /// Whether this attempt answers a Retry (it cannot be retried again).
    pub fn is_retried(&self) -> bool {
        self.retry.is_some()
    }

    /// After a Retry, the Destination Connection ID of the client's first Initial.
    pub fn original_dcid(&self) -> Option<ConnectionId> {
        self.retry.map(|(odcid, _)| odcid)
    }
}

/// What the endpoint holds of an undecided attempt: its datagrams.
#[derive(Debug)]
struct Pending {
    serial: u64,
    key: (SocketAddr, ConnectionId),
    datagrams: Vec<(DatagramMeta, BytesMut)>,
}

/// Undecided attempts, bounded in number, each bounded in datagrams.
#[derive(Debug)]
pub(super) struct IncomingTable {
    slots: Slab<Pending>,
    by_key: HashMap<(SocketAddr, ConnectionId), usize>,
    /// Arrival order, for expiry: (arrival, slot, serial).
    order: VecDeque<(Instant, usize, u64)>,
    next_serial: u64,
    /// Attempts that expired undecided, ever.
    expired: u64,
}

impl IncomingTable {
    /// An empty table routing by `by_key` (keyed from the endpoint's randomness).
    pub(super) fn new(by_key: HashMap<(SocketAddr, ConnectionId), usize>) -> Self {
        Self { slots: Slab::new(), by_key, order: VecDeque::new(), next_serial: 0, expired: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn expired(&self) -> u64 {
        self.expired
    }

    /// Bytes held by all pending attempts.
    pub(super) fn buffered_bytes(&self) -> usize {
        self.slots.iter().flat_map(|(_, p)| p.datagrams.iter()).map(|(_, d)| d.len()).sum()
    }

    /// Datagrams held by all pending attempts.
    #[cfg(test)]
    pub(super) fn buffered_datagrams(&self) -> usize {
        self.slots.iter().map(|(_, p)| p.datagrams.len()).sum()
    }

    /// Keeps a datagram for an attempt already pending under `key`, or
    /// hands it back if there is none.
    fn buffer(
        &mut self,
        key: &(SocketAddr, ConnectionId),
        meta: DatagramMeta,
        data: BytesMut,
    ) -> Result<(), BytesMut> {
        let Some(&slot) = self.by_key.get(key) else { return Err(data) };
        let pending = &mut self.slots[slot];
        if pending.datagrams.len() < MAX_BUFFERED_DATAGRAMS {
            pending.datagrams.push((meta, data));
        }
        Ok(())
    }

    fn insert(
        &mut self,
        now: Instant,
        key: (SocketAddr, ConnectionId),
        meta: DatagramMeta,
        data: BytesMut,
    ) -> (usize, u64) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let slot = self.slots.insert(Pending { serial, key, datagrams: vec![(meta, data)] });
        self.by_key.insert(key, slot);
        self.order.push_back((now, slot, serial));
        (slot, serial)
    }

    /// Removes the attempt, if it is still pending.
    pub(super) fn take(&mut self, incoming: &Incoming) -> Option<Vec<(DatagramMeta, BytesMut)>> {
        self.remove(incoming.slot, incoming.serial)
    }

    fn remove(&mut self, slot: usize, serial: u64) -> Option<Vec<(DatagramMeta, BytesMut)>> {
        if self.slots.get(slot).is_none_or(|p| p.serial != serial) {
            return None;
        }
        let pending = self.slots.remove(slot);
        self.by_key.remove(&pending.key);
        Some(pending.datagrams)
    }

    /// When the oldest attempt expires (perhaps decided already: then the
    /// wake-up finds nothing to do).
    pub(super) fn next_expiry(&self, lifetime: core::time::Duration) -> Option<Instant> {
        self.order.front().map(|(t, _, _)| *t + lifetime)
    }

    pub(super) fn expire(&mut self, now: Instant, lifetime: core::time::Duration) {
        while let Some(&(t, slot, serial)) = self.order.front() {
            if t + lifetime > now {
                break;
            }
            self.order.pop_front();
            if self.remove(slot, serial).is_some() {
                self.expired += 1;
            }
        }
        if self.slots.is_empty() {
            self.order.clear();
        }
    }
}

/// What the Token field of an Initial says.
enum TokenCheck {
    /// No token, or an invalid one that need not be a Retry token.
    Unvalidated,
    /// A valid NEW_TOKEN token.
    NewToken,
    /// A valid Retry token: the client's first DCID and the Retry's SCID.
    Retry(ConnectionId, ConnectionId),
    /// A Retry token that is forged, expired, from another address, or
    /// answers another Retry.
    InvalidRetry,
}

impl Endpoint {
    /// A client Initial no connection claims.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_new_initial(
        &mut self,
        now: Instant,
        meta: DatagramMeta,
        data: BytesMut,
        version: Version,
        dcid: ConnectionId,
        scid: ConnectionId,
        token: &[u8],
    ) -> Option<DatagramEvent> {
        self.server_config.as_ref()?;
        if data.len() < MIN_INITIAL_DATAGRAM {
            return None;
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-7.2
        //# This Destination Connection ID MUST be at least 8 bytes in length.
        //
        // A shorter one is not from a conforming client (it would also key
        // the Initial packet protection weakly): not worth any state.
        if dcid.len() < 8 {
            return None;
        }
        let cid_len = self.config.cid_generator.cid_len();
        if !initial_authenticates(version, &dcid, &data, cid_len, &mut self.scratch) {
            self.stats.initials_unauthenticated += 1;
            return None;
        }
        let key = (meta.remote, dcid);
        let Err(data) = self.incoming.buffer(&key, meta, data) else { return None };
        let (check, used) = self.check_token(now, meta.remote, &dcid, token);
        let (address_validated, retry) = match check {
            TokenCheck::Unvalidated => (false, None),
            TokenCheck::NewToken => (true, None),
            TokenCheck::Retry(odcid, retry_scid) => (true, Some((odcid, retry_scid))),
            TokenCheck::InvalidRetry => {
                //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.2
                //# Instead, the server SHOULD immediately close ({{immediate-close}})
                //# the connection with an INVALID_TOKEN error.  Note that a server has not
                //# established any state for the connection at this point and so does not enter the
                //# closing period.
                //
                // RFC 9000 §8.1.3 would have an invalid token treated as no
                // token at all, "including potentially sending a Retry
                // packet": right for a NEW_TOKEN token the server may have
                // lost the key to, but a client that answered a Retry
                // accepts no second one, so a bad Retry token gets the
                // §8.1.2 answer instead of a slow handshake timeout.
                self.send_initial_close(
                    meta,
                    version,
                    dcid,
                    scid,
                    TransportErrorCode::INVALID_TOKEN,
                    b"invalid Retry token",
                );
                return None;
            }
        };
        if self.connections.len() >= self.config.max_connections {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-5.2.2
            //# If a server refuses to accept a new connection, it SHOULD send an Initial packet
            //# containing a CONNECTION_CLOSE frame with error code CONNECTION_REFUSED.
            self.stats.refused_at_capacity += 1;
            self.send_initial_close(
                meta,
                version,
                dcid,
                scid,
                TransportErrorCode::CONNECTION_REFUSED,
                b"server at capacity",
            );
            return None;
        }
        // Expired attempts must not hold places that new ones need.
        self.incoming.expire(now, self.config.incoming_lifetime);
        let in_progress = self.incoming.len() + self.handshaking;
        let loaded = self.config.retry_under_load.is_some_and(|limit| in_progress >= limit);
        let full = self.incoming.len() >= self.config.max_incoming;
        if !address_validated && (self.config.require_retry || loaded || full) {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.2
            //# A server can also use a Retry packet to defer the state and processing costs of
            //# connection establishment.
            //
            // Under load this is what keeps a flood of spoofed Initials
            // from costing state: only a client that receives the Retry at
            // its address can come back with the token.
            if loaded || full {
                self.stats.retries_under_load += 1;
            }
            self.send_retry(now, meta, version, dcid, scid);
            return None;
        }
        // Bounded: an attempt holds its datagrams until it is decided.
        if full {
            self.stats.incoming_dropped += 1;
            return None;
        }
        // Spent only now that it let an attempt in: a client whose attempt
        // was dropped above may present it again.
        if let Some((kind, id)) = used {
            self.replay_filter(kind).insert(now, &id);
        }
        let (slot, serial) = self.incoming.insert(now, key, meta, data);
        Some(DatagramEvent::Incoming(Incoming {
            slot,
            serial,
            remote: meta.remote,
            local_ip: meta.local_ip,
            version,
            dcid,
            scid,
            address_validated,
            retry,
        }))
    }

    fn replay_filter(&mut self, kind: u8) -> &mut ReplayFilter {
        if kind == RETRY_TOKEN_KIND { &mut self.retry_replay } else { &mut self.new_token_replay }
    }

    /// What the token says, and the token to record as spent if the
    /// attempt goes ahead.
    fn check_token(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        dcid: &ConnectionId,
        token: &[u8],
    ) -> (TokenCheck, Option<(u8, TokenId)>) {
        if token.is_empty() {
            return (TokenCheck::Unvalidated, None);
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.3
        //# When a server receives an Initial packet with an address validation token, it
        //# MUST attempt to validate the token, unless it has already completed address
        //# validation.
        let opened = self.token_key.open_issued(
            token,
            remote,
            now,
            self.config.retry_token_lifetime,
            self.config.new_token_lifetime,
        );
        let id = TokenKey::token_id(token);
        let opened = match (opened, id) {
            (Ok((validated, issued)), Some(id)) => {
                //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.4
                //# Tokens that are provided in NEW_TOKEN frames ({{frame-new-token}}) need to be
                //# valid for longer but SHOULD NOT be accepted multiple times.
                if self.replay_filter(token[0]).seen(now, &id, issued) {
                    self.stats.tokens_replayed += 1;
                    Err(crate::token::TokenError::Invalid)
                } else {
                    Ok(validated)
                }
            }
            (Ok(_), None) => Err(crate::token::TokenError::Invalid),
            (Err(e), _) => Err(e),
        };
        let used = id.map(|id| (token[0], id));
        let check = match opened {
            // The client's next Initial goes to the Retry's SCID: a token
            // presented with any other DCID was replayed from elsewhere.
            Ok(ValidatedToken::Retry { original_dcid, retry_scid }) if retry_scid == *dcid => {
                TokenCheck::Retry(original_dcid, retry_scid)
            }
            Ok(ValidatedToken::Retry { .. }) => TokenCheck::InvalidRetry,
            Ok(ValidatedToken::NewToken) => TokenCheck::NewToken,
            //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.3
            //# If the token is invalid, then the server SHOULD proceed as if the
            //# client did not have a validated address, including potentially sending a Retry
            //# packet.
            Err(_) if token[0] != RETRY_TOKEN_KIND => TokenCheck::Unvalidated,
            Err(_) => TokenCheck::InvalidRetry,
        };
        let used =
            if matches!(check, TokenCheck::NewToken | TokenCheck::Retry(..)) { used } else { None };
        (check, used)
    }

    // Attempts are taken by value so that each is decided once.
    #[allow(clippy::needless_pass_by_value)]
    pub(super) fn accept_incoming(
        &mut self,
        now: Instant,
        incoming: Incoming,
    ) -> Result<ConnectionHandle, AcceptError> {
        let Some(datagrams) = self.incoming.take(&incoming) else {
            return Err(AcceptError::Expired);
        };
        let local_cid = self.new_cid();
        let reset_token = self.reset_key.token(&local_cid);
        let rng = self.connection_rng();
        let Some(server) = self.server_config.as_ref() else { return Err(AcceptError::Expired) };
        let params = AcceptParams {
            version: incoming.version,
            remote: incoming.remote,
            client_dcid: incoming.dcid,
            client_scid: incoming.scid,
            local_cid,
            reset_token,
            retry: incoming.retry,
        };
        let mut conn = match Connection::accept(now, server, params, rng) {
            Ok(conn) => conn,
            Err(e) => {
                self.refuse_with(&incoming);
                return Err(AcceptError::Connect(e));
            }
        };
        self.attach_qlog(&mut conn);
        let handle =
            self.insert_connection(conn, local_cid, Some((incoming.remote, incoming.dcid)));
        let conn = &mut self.connections[handle.index].conn;
        if incoming.address_validated {
            conn.set_address_validated();
        }
        if self.config.send_new_tokens {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.3
            //# A server MAY provide clients with an address validation token during one
            //# connection that can be used on a subsequent connection.
            let token = self.token_key.seal_new_token(&mut *self.rng, incoming.remote, now);
            let conn = &mut self.connections[handle.index].conn;
            conn.queue_new_token(token.into());
        }
        let conn = &mut self.connections[handle.index].conn;
        for (meta, data) in datagrams {
            conn.handle_datagram(now, meta, data);
        }
        Ok(handle)
    }

    #[allow(clippy::needless_pass_by_value)]
    pub(super) fn refuse_incoming(&mut self, incoming: Incoming) {
        if self.incoming.take(&incoming).is_some() {
            self.refuse_with(&incoming);
        }
    }

    fn refuse_with(&mut self, incoming: &Incoming) {
        let meta = DatagramMeta { remote: incoming.remote, local_ip: incoming.local_ip, ecn: None };
        //= https://www.rfc-editor.org/rfc/rfc9000#section-5.2.2
        //# If a server refuses to accept a new connection, it SHOULD send an Initial packet
        //# containing a CONNECTION_CLOSE frame with error code CONNECTION_REFUSED.
        self.send_initial_close(
            meta,
            incoming.version,
            incoming.dcid,
            incoming.scid,
            TransportErrorCode::CONNECTION_REFUSED,
            b"",
        );
    }

    #[allow(clippy::needless_pass_by_value)]
    pub(super) fn retry_incoming(
        &mut self,
        now: Instant,
        incoming: Incoming,
    ) -> Result<(), RetryError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.2
        //# In response to processing an Initial packet containing a token that was provided
        //# in a Retry packet, a server cannot send another Retry packet; it can only refuse
        //# the connection or permit it to proceed.
        if incoming.retry.is_some() {
            return Err(RetryError(Box::new(incoming)));
        }
        if self.incoming.take(&incoming).is_some() {
            let meta =
                DatagramMeta { remote: incoming.remote, local_ip: incoming.local_ip, ecn: None };
            self.send_retry(now, meta, incoming.version, incoming.dcid, incoming.scid);
        }
        Ok(())
    }
}
