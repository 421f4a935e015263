//! Matching datagrams to connections (RFC 9000 §5.2) and keeping the
//! connection table: the dirty queue, the deadline heap, the requests
//! connections make of the endpoint, and removal of drained connections.

use core::cmp::Reverse;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use super::{ConnEntry, ConnectionHandle, DatagramEvent, Endpoint, new_cid};
use crate::cid::ConnectionId;
use crate::connection::{Connection, DatagramMeta, EndpointEvent, Transmit};
use crate::packet::{LongType, PartialDecode, ProtectedHeader};
use crate::time::Instant;
use crate::token::{StatelessResetToken, is_stateless_reset};
use crate::version::Version;

/// What routing needs from a datagram's first packet, owned so that the
/// datagram can move on.
enum FirstPacket {
    Short {
        dcid: ConnectionId,
    },
    Long {
        ty: LongType,
        version: Version,
        dcid: ConnectionId,
        scid: ConnectionId,
        token: Bytes,
    },
    /// Retry and Version Negotiation: only ever for a client connection.
    ToClient {
        dcid: Option<ConnectionId>,
    },
    /// A version this crate does not implement.
    Unsupported {
        dcid: Vec<u8>,
        scid: Vec<u8>,
    },
}

impl FirstPacket {
    fn from_decode(d: &PartialDecode<'_>) -> Self {
        match d.header() {
            ProtectedHeader::Short(h) => Self::Short { dcid: h.dcid },
            ProtectedHeader::Long(h) => Self::Long {
                ty: h.ty,
                version: h.version,
                dcid: h.dcid,
                scid: h.scid,
                token: Bytes::copy_from_slice(h.token),
            },
            ProtectedHeader::Retry(h) => Self::ToClient { dcid: Some(h.dcid) },
            ProtectedHeader::VersionNegotiation(h) => {
                Self::ToClient { dcid: ConnectionId::from_slice(h.dcid) }
            }
            ProtectedHeader::UnsupportedVersion(h) => {
                Self::Unsupported { dcid: h.dcid.to_vec(), scid: h.scid.to_vec() }
            }
        }
    }
}

impl Endpoint {
    pub(super) fn on_datagram(
        &mut self,
        now: Instant,
        meta: DatagramMeta,
        data: BytesMut,
    ) -> Option<DatagramEvent> {
        let cid_len = self.config.cid_generator.cid_len();
        let first = match PartialDecode::parse(&data, cid_len, false) {
            Ok(d) => Some(FirstPacket::from_decode(&d)),
            Err(_) => None,
        };
        let Some(first) = first else {
            // Nothing routable. A short datagram of random bytes may still
            // be a stateless reset for one of our connections.
            if data.first().is_some_and(|b| b & 0x80 == 0)
                && let Some(h) = self.reset_match(meta.remote, &data)
            {
                self.deliver(h, now, meta, data);
            }
            return None;
        };
        let route = match &first {
            FirstPacket::Short { dcid } => self.by_cid.get(dcid),
            //= https://www.rfc-editor.org/rfc/rfc9000#section-5.2
            //# If the packet
            //# has a non-zero-length Destination Connection ID corresponding to an existing
            //# connection, QUIC processes that packet accordingly.
            FirstPacket::Long { dcid, .. } => {
                self.by_cid.get(dcid).or_else(|| self.by_initial.get(&(meta.remote, *dcid)))
            }
            FirstPacket::ToClient { dcid } => dcid.as_ref().and_then(|d| self.by_cid.get(d)),
            FirstPacket::Unsupported { .. } => None,
        };
        if let Some(&h) = route {
            self.deliver(h, now, meta, data);
            return None;
        }
        match first {
            FirstPacket::Short { dcid } => {
                match self.reset_match(meta.remote, &data) {
                    Some(h) => self.deliver(h, now, meta, data),
                    None => self.send_stateless_reset(now, meta, &dcid, data.len()),
                }
                None
            }
            FirstPacket::Long { version, dcid, scid, .. } if !self.accepts_version(version) => {
                self.send_version_negotiation(meta, &dcid, &scid, data.len());
                None
            }
            FirstPacket::Unsupported { dcid, scid } => {
                self.send_version_negotiation(meta, &dcid, &scid, data.len());
                None
            }
            FirstPacket::Long { ty: LongType::Initial, version, dcid, scid, token } => {
                self.on_new_initial(now, meta, data, version, dcid, scid, &token)
            }
            //= https://www.rfc-editor.org/rfc/rfc9000#section-5.2.2
            //# Servers MUST drop incoming packets under all other circumstances.
            _ => None,
        }
    }

    fn deliver(&mut self, h: usize, now: Instant, meta: DatagramMeta, data: BytesMut) {
        if let Some(entry) = self.connections.get_mut(h) {
            entry.conn.handle_datagram(now, meta, data);
            self.mark_dirty(h);
        }
    }

    /// The connection whose peer, at `remote`, gave the reset token an
    /// unroutable datagram ends in. Delivered there, the datagram fails to
    /// decrypt and the connection recognizes the reset (RFC 9000 §10.3.1).
    fn reset_match(&self, remote: SocketAddr, data: &[u8]) -> Option<usize> {
        let tokens = self.reset_tokens.get(&remote)?;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.1
        //# However, the comparison MUST be performed when the first packet in an incoming
        //# datagram either cannot be associated with a connection or cannot be decrypted.
        //
        // Every token of the address is compared (in constant time), so the
        // time taken does not tell which one matched.
        let mut found = None;
        for (token, h) in tokens {
            if is_stateless_reset(data, [token]) {
                found = Some(*h);
            }
        }
        found
    }

    /// Adds a connection to the table, routing `local_cid` (and a client's
    /// Initials by address and DCID) to it.
    pub(super) fn insert_connection(
        &mut self,
        conn: Connection,
        local_cid: ConnectionId,
        initial_route: Option<(SocketAddr, ConnectionId)>,
    ) -> ConnectionHandle {
        let generation = self.next_generation;
        self.next_generation += 1;
        let h = self.connections.insert(ConnEntry {
            conn,
            generation,
            cids: vec![local_cid],
            initial_route,
            reset_token: None,
            timeout: None,
            dirty: false,
        });
        self.by_cid.entry(local_cid).or_insert(h);
        if let Some(key) = initial_route {
            self.by_initial.insert(key, h);
            self.handshaking += 1;
        }
        self.mark_dirty(h);
        ConnectionHandle { index: h, generation }
    }

    pub(super) fn mark_dirty(&mut self, h: usize) {
        if let Some(entry) = self.connections.get_mut(h)
            && !entry.dirty
        {
            entry.dirty = true;
            self.dirty.push_back(h);
        }
    }

    pub(super) fn transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        if let Some(t) = self.stateless.pop_front() {
            buf.extend_from_slice(&t.data);
            return Some(Transmit {
                destination: t.destination,
                ecn: None,
                size: t.data.len(),
                segment_size: None,
                src_ip: t.src_ip,
            });
        }
        while let Some(&h) = self.dirty.front() {
            // New connection IDs first, so that they can go in this datagram.
            if !self.service(h) {
                continue;
            }
            let entry = &mut self.connections[h];
            if let Some(t) = entry.conn.poll_transmit(now, buf) {
                // Round robin: the others get a turn before its next datagram.
                self.dirty.pop_front();
                self.dirty.push_back(h);
                return Some(t);
            }
            entry.dirty = false;
            self.dirty.pop_front();
            self.service(h);
        }
        None
    }

    /// Brings the endpoint's view of connection `h` up to date: its
    /// requests, its events, its deadline; removes it once drained. Returns
    /// whether it is still in the table (if not, it left the dirty queue).
    fn service(&mut self, h: usize) -> bool {
        let Some(entry) = self.connections.get_mut(h) else {
            self.dirty.retain(|d| *d != h);
            return false;
        };
        while let Some(event) = entry.conn.poll_endpoint_event() {
            match event {
                EndpointEvent::NeedCids(n) => {
                    for _ in 0..n {
                        let generator = &mut *self.config.cid_generator;
                        let cid = new_cid(generator, &mut *self.rng, &self.by_cid);
                        if self.by_cid.contains_key(&cid) {
                            continue;
                        }
                        self.by_cid.insert(cid, h);
                        entry.cids.push(cid);
                        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.2
                        //# A single static key can be used across all connections to the same endpoint by
                        //# generating the proof using a pseudorandom function that takes a static key and
                        //# the connection ID chosen by the endpoint (see {{connection-id}}) as input.
                        entry.conn.issue_cid(cid, self.reset_key.token(&cid));
                    }
                }
                EndpointEvent::RetiredCid(cid) => {
                    if self.by_cid.get(&cid) == Some(&h) {
                        self.by_cid.remove(&cid);
                    }
                    entry.cids.retain(|c| *c != cid);
                }
                EndpointEvent::PeerResetToken(token) => {
                    if let Some(old) = entry.reset_token.take() {
                        unregister_token(&mut self.reset_tokens, old, h);
                    }
                    if let Some(token) = token {
                        let remote = entry.conn.remote_address();
                        self.reset_tokens.entry(remote).or_default().push((token, h));
                        entry.reset_token = Some((remote, token));
                    }
                }
            }
        }
        if entry.conn.is_handshake_complete()
            && let Some(key) = entry.initial_route.take()
        {
            self.handshaking -= 1;
            if self.by_initial.get(&key) == Some(&h) {
                // The client has our connection ID by now: its Initials are over.
                self.by_initial.remove(&key);
            }
        }
        let handle = ConnectionHandle { index: h, generation: entry.generation };
        while let Some(event) = entry.conn.poll_event() {
            self.events.push_back((handle, event));
        }
        let deadline = entry.conn.poll_timeout();
        if deadline != entry.timeout {
            entry.timeout = deadline;
            if let Some(t) = deadline {
                self.timers.push(Reverse((t, h)));
            }
        }
        if entry.conn.is_drained() {
            self.remove_connection(h);
            return false;
        }
        self.compact_timers();
        true
    }

    /// Rebuilds the heap from the live deadlines once stale entries
    /// outnumber them: a busy connection moves its deadline on every packet,
    /// and lazy invalidation alone would let those pile up. Amortized over
    /// the pushes that made the heap double, this is O(1) per push.
    fn compact_timers(&mut self) {
        if self.timers.len() <= 2 * self.connections.len() + 64 {
            return;
        }
        self.timers = self
            .connections
            .iter()
            .filter_map(|(h, e)| e.timeout.map(|t| Reverse((t, h))))
            .collect();
    }

    fn remove_connection(&mut self, h: usize) {
        let Some(entry) = self.connections.try_remove(h) else { return };
        for cid in &entry.cids {
            if self.by_cid.get(cid) == Some(&h) {
                self.by_cid.remove(cid);
            }
        }
        if let Some(key) = entry.initial_route {
            self.handshaking -= 1;
            if self.by_initial.get(&key) == Some(&h) {
                self.by_initial.remove(&key);
            }
        }
        if let Some(old) = entry.reset_token {
            unregister_token(&mut self.reset_tokens, old, h);
        }
        if entry.dirty {
            self.dirty.retain(|d| *d != h);
        }
    }

    pub(super) fn next_timeout(&mut self) -> Option<Instant> {
        // Connections touched since their last poll may have new deadlines.
        for i in 0..self.dirty.len() {
            let h = self.dirty[i];
            if let Some(entry) = self.connections.get_mut(h) {
                let deadline = entry.conn.poll_timeout();
                if deadline != entry.timeout {
                    entry.timeout = deadline;
                    if let Some(t) = deadline {
                        self.timers.push(Reverse((t, h)));
                    }
                }
            }
        }
        self.compact_timers();
        let mut next = None;
        while let Some(&Reverse((t, h))) = self.timers.peek() {
            if self.connections.get(h).is_some_and(|e| e.timeout == Some(t)) {
                next = Some(t);
                break;
            }
            self.timers.pop();
        }
        let incoming = self.incoming.next_expiry(self.config.incoming_lifetime);
        match (next, incoming) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn on_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((t, h))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.connections.get_mut(h) else { continue };
            if entry.timeout != Some(t) {
                continue;
            }
            entry.timeout = None;
            entry.conn.handle_timeout(now);
            self.mark_dirty(h);
        }
        self.incoming.expire(now, self.config.incoming_lifetime);
    }

    /// Moves the events of touched connections into the endpoint's queue.
    pub(super) fn collect_events(&mut self) {
        for &h in &self.dirty {
            if let Some(entry) = self.connections.get_mut(h) {
                let handle = ConnectionHandle { index: h, generation: entry.generation };
                while let Some(event) = entry.conn.poll_event() {
                    self.events.push_back((handle, event));
                }
            }
        }
    }
}

fn unregister_token(
    tokens: &mut crate::hash::Map<SocketAddr, Vec<(StatelessResetToken, usize)>>,
    (remote, token): (SocketAddr, StatelessResetToken),
    h: usize,
) {
    if let Some(list) = tokens.get_mut(&remote) {
        list.retain(|(t, c)| !(*t == token && *c == h));
        if list.is_empty() {
            tokens.remove(&remote);
        }
    }
}
