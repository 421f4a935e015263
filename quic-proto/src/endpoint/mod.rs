//! The endpoint: many connections behind one socket (RFC 9000 §5.2, §6,
//! §8.1, §10.3, §14.1).
//!
//! An [`Endpoint`] owns its connections (a slab), routes datagrams to them
//! by connection ID, answers what it cannot route statelessly (Version
//! Negotiation, Retry, Stateless Reset, refusals), issues the connection IDs
//! its connections give their peers, and keeps a dirty set plus a deadline
//! heap so that polling never scans every connection.
//!
//! It is driven like a connection (docs/architecture.md):
//! [`Endpoint::handle_datagram`], [`Endpoint::handle_timeout`] and
//! application commands (through [`Endpoint::connection`]) in;
//! [`Endpoint::poll_transmit`], [`Endpoint::poll_timeout`] and
//! [`Endpoint::poll_event`] out. After any input, drain `poll_transmit`,
//! then read `poll_timeout`, then drain `poll_event`.
//!
//! This file is the public API; routing and the connection table are in
//! `demux.rs`, new connections in `incoming.rs`, stateless packets in
//! `stateless.rs`.

mod config;
mod demux;
mod incoming;
mod replay;
mod stateless;
mod testing_hooks;
#[cfg(test)]
mod tests;

use core::cmp::Reverse;
use core::fmt;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;

use crate::hash::{self, Map as HashMap};
use bytes::{Bytes, BytesMut};
use slab::Slab;

pub use config::EndpointConfig;
pub use incoming::Incoming;

use crate::cid::ConnectionId;
use crate::connection::{
    ClientConfig, ConnectError, Connection, DatagramMeta, Event, ServerConfig, Transmit,
};
use crate::random::RandomSource;
use crate::time::Instant;
use crate::token::{ResetKey, StatelessResetToken, TokenKey};
use crate::version::Version;

/// Names one connection of an [`Endpoint`]. After the connection's
/// [`Event::Drained`] the endpoint forgets it, and the handle then finds
/// nothing: a later connection may take the same slot, but under a new
/// generation, so a stale handle never acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle {
    index: usize,
    generation: u64,
}

impl ConnectionHandle {
    /// The connection's slot in the endpoint's table: dense and small, for
    /// an application that keeps per-connection data in a vector. Slots
    /// are reused; compare whole handles to tell connections apart.
    pub fn index(self) -> usize {
        self.index
    }
}

/// What a datagram the endpoint could not route to a connection asks of the
/// application.
#[derive(Debug)]
#[non_exhaustive]
pub enum DatagramEvent {
    /// A client wants a new connection: pass it to [`Endpoint::accept`],
    /// [`Endpoint::refuse`], [`Endpoint::retry`] or [`Endpoint::ignore`].
    Incoming(Incoming),
}

/// Why [`Endpoint::accept`] did not create a connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum AcceptError {
    /// The attempt waited longer than the configured incoming lifetime, or
    /// was already decided.
    Expired,
    /// The connection could not be created (TLS configuration); the client
    /// was sent a CONNECTION_REFUSED.
    Connect(ConnectError),
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired => f.write_str("connection attempt expired"),
            Self::Connect(e) => write!(f, "connection not created: {e}"),
        }
    }
}

impl std::error::Error for AcceptError {}

/// [`Endpoint::retry`] refused: the client's address was validated by a
/// Retry already, and a client accepts only one (RFC 9000 §17.2.5.2). The
/// attempt is handed back to be accepted, refused or ignored.
#[derive(Debug)]
pub struct RetryError(pub Box<Incoming>);

impl fmt::Display for RetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the client already answered a Retry")
    }
}

impl std::error::Error for RetryError {}

/// A connection in the table, with what the endpoint registered for it.
#[derive(Debug)]
struct ConnEntry {
    conn: Connection,
    /// Told apart from earlier occupants of the slot by this.
    generation: u64,
    /// Our connection IDs routed to it.
    cids: Vec<ConnectionId>,
    /// Server: the client's address and the DCID of its Initials, routed
    /// until the handshake completes.
    initial_route: Option<(SocketAddr, ConnectionId)>,
    /// The peer's address and reset token registered for reset detection.
    reset_token: Option<(SocketAddr, StatelessResetToken)>,
    /// The deadline pushed on the heap (entries with another one are stale).
    timeout: Option<Instant>,
    /// In the dirty queue.
    dirty: bool,
}

/// A datagram the endpoint itself sends (no connection state behind it).
#[derive(Debug)]
struct StatelessTransmit {
    destination: SocketAddr,
    src_ip: Option<std::net::IpAddr>,
    data: Vec<u8>,
}

/// Many connections behind one socket. `Send`; see the module docs for how
/// to drive it.
pub struct Endpoint {
    config: EndpointConfig,
    reset_key: ResetKey,
    token_key: TokenKey,
    server_config: Option<ServerConfig>,
    rng: Box<dyn RandomSource>,
    connections: Slab<ConnEntry>,
    /// Our connection IDs to their connection.
    by_cid: HashMap<ConnectionId, usize>,
    /// Client Initials by (client address, their DCID), until our ID takes over.
    by_initial: HashMap<(SocketAddr, ConnectionId), usize>,
    /// Peers' reset tokens by peer address, for datagrams nothing routes.
    reset_tokens: HashMap<SocketAddr, Vec<(StatelessResetToken, usize)>>,
    /// Connections touched since they were last polled.
    dirty: VecDeque<usize>,
    /// Connection deadlines, earliest first; invalidated lazily.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    events: VecDeque<(ConnectionHandle, Event)>,
    stateless: VecDeque<StatelessTransmit>,
    incoming: incoming::IncomingTable,
    resets: stateless::ResetLimiter,
    /// The generation the next connection's handle carries.
    next_generation: u64,
    /// Server connections whose handshake is in progress (those with an
    /// `initial_route`): with the undecided attempts, the load that turns
    /// on Retry.
    handshaking: usize,
    /// Scratch space for checking Initial packet protection.
    scratch: Vec<u8>,
    /// Retry and NEW_TOKEN tokens already spent.
    retry_replay: replay::ReplayFilter,
    new_token_replay: replay::ReplayFilter,
    stats: EndpointStats,
}

/// What an [`Endpoint`] has done with the datagrams no connection claimed:
/// counters for operators and flood tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Client Initials dropped because their packet protection failed
    /// (forged or corrupted): they cost no state.
    pub initials_unauthenticated: u64,
    /// Retry packets sent, on request or under load.
    pub retries_sent: u64,
    /// Retry packets sent because handshakes in progress reached the
    /// configured threshold ([`EndpointConfig::retry_under_load`]).
    pub retries_under_load: u64,
    /// Attempts refused with CONNECTION_REFUSED because the endpoint held
    /// [`EndpointConfig::max_connections`] connections.
    pub refused_at_capacity: u64,
    /// Attempts dropped because the incoming table was full of fresh
    /// attempts and the client's address was already validated.
    pub incoming_dropped: u64,
    /// Undecided attempts expired after [`EndpointConfig::incoming_lifetime`].
    pub incoming_expired: u64,
    /// Valid Retry or NEW_TOKEN tokens presented again (or issued before
    /// the replay filter's memory, or a false positive of it): counted as
    /// no token.
    pub tokens_replayed: u64,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.connections.len())
            .field("incoming", &self.incoming.len())
            .field("server", &self.server_config.is_some())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with `config`; with a `server_config` it accepts
    /// connections, without one it only connects. `rng` feeds connection
    /// IDs, tokens, keys not given in `config`, and each connection's own
    /// random source (seeded from it).
    pub fn new(
        mut config: EndpointConfig,
        server_config: Option<ServerConfig>,
        mut rng: Box<dyn RandomSource>,
    ) -> Self {
        let reset_key = config.reset_key.take().unwrap_or_else(|| ResetKey::new(&mut *rng));
        let token_key = config.token_key.take().unwrap_or_else(|| TokenKey::new(&mut *rng));
        config.supported_versions.retain(|v| v.is_supported());
        let (by_cid, by_initial, reset_tokens) =
            (hash::map(&mut *rng), hash::map(&mut *rng), hash::map(&mut *rng));
        let incoming = incoming::IncomingTable::new(hash::map(&mut *rng));
        let capacity = config.token_replay_capacity;
        let retry_replay =
            replay::ReplayFilter::new(capacity, config.retry_token_lifetime, rng.next_u64());
        let new_token_replay =
            replay::ReplayFilter::new(capacity, config.new_token_lifetime, rng.next_u64());
        Self {
            config,
            reset_key,
            token_key,
            server_config,
            rng,
            connections: Slab::new(),
            by_cid,
            by_initial,
            reset_tokens,
            dirty: VecDeque::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            stateless: VecDeque::new(),
            incoming,
            resets: stateless::ResetLimiter::default(),
            next_generation: 0,
            handshaking: 0,
            scratch: Vec::new(),
            retry_replay,
            new_token_replay,
            stats: EndpointStats::default(),
        }
    }

    /// Starts or stops accepting connections; existing ones are unaffected.
    pub fn set_server_config(&mut self, server_config: Option<ServerConfig>) {
        self.server_config = server_config;
    }

    /// Starts a client connection to `remote` for `server_name`; drain
    /// `poll_transmit` next.
    pub fn connect(
        &mut self,
        now: Instant,
        config: &ClientConfig,
        server_name: &str,
        remote: SocketAddr,
    ) -> Result<ConnectionHandle, ConnectError> {
        self.connect_with_token(now, config, server_name, remote, Bytes::new())
    }

    /// [`Endpoint::connect`] presenting an address validation token from an
    /// earlier connection to this server ([`Event::NewToken`]).
    pub fn connect_with_token(
        &mut self,
        now: Instant,
        config: &ClientConfig,
        server_name: &str,
        remote: SocketAddr,
        token: Bytes,
    ) -> Result<ConnectionHandle, ConnectError> {
        let local_cid = self.new_cid();
        let rng = self.connection_rng();
        let mut conn = Connection::connect_with_cid(
            now,
            config,
            server_name,
            remote,
            Some(local_cid),
            token,
            rng,
        )?;
        self.attach_qlog(&mut conn);
        Ok(self.insert_connection(conn, local_cid, None))
    }

    // ----- driving -----

    /// Feeds a datagram received on the endpoint's socket. Datagrams of
    /// known connections go to them; a new client's Initial becomes a
    /// [`DatagramEvent::Incoming`]; everything else is answered statelessly
    /// or dropped. Never fails.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        meta: DatagramMeta,
        data: BytesMut,
    ) -> Option<DatagramEvent> {
        self.on_datagram(now, meta, data)
    }

    /// Processes the connection timers due at `now` (and expires connection
    /// attempts nobody decided on); a no-op if nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.on_timeout(now);
    }

    /// Writes the next datagram to send into `buf` (cleared first) and says
    /// where it goes: stateless replies first, then the connections that
    /// were touched, in turn. `None` when nothing is to be sent now.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.transmit(now, buf)
    }

    /// The next time `handle_timeout` must be called, if any. Takes `&mut`
    /// to drop stale heap entries on the way.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.next_timeout()
    }

    /// The next event of any connection, with its handle.
    pub fn poll_event(&mut self) -> Option<(ConnectionHandle, Event)> {
        if self.events.is_empty() {
            self.collect_events();
        }
        self.events.pop_front()
    }

    /// The connection behind `handle`, for application commands (streams,
    /// datagrams, close); `None` once it has drained. Marks it for polling.
    pub fn connection(&mut self, handle: ConnectionHandle) -> Option<&mut Connection> {
        let h = self.slot_of(handle)?;
        self.mark_dirty(h);
        self.connections.get_mut(h).map(|e| &mut e.conn)
    }

    /// Connections in the table (not yet drained).
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Bytes of datagrams held by connection attempts awaiting a decision:
    /// at most [`EndpointConfig::max_incoming`] attempts of four datagrams.
    pub fn incoming_buffered_bytes(&self) -> usize {
        self.incoming.buffered_bytes()
    }

    /// Server connections whose handshake has not completed.
    pub fn handshakes_in_progress(&self) -> usize {
        self.handshaking
    }

    /// What the endpoint has done with unclaimed datagrams so far.
    pub fn stats(&self) -> EndpointStats {
        let mut stats = self.stats;
        stats.incoming_expired = self.incoming.expired();
        stats
    }

    /// Connection attempts awaiting the application's decision.
    pub fn incoming_count(&self) -> usize {
        self.incoming.len()
    }

    // ----- new connections -----

    /// Accepts a connection attempt: creates the connection and feeds it
    /// the client's datagrams.
    pub fn accept(
        &mut self,
        now: Instant,
        incoming: Incoming,
    ) -> Result<ConnectionHandle, AcceptError> {
        self.accept_incoming(now, incoming)
    }

    /// Refuses a connection attempt: the client gets an Initial with
    /// CONNECTION_CLOSE (CONNECTION_REFUSED), and no state is kept.
    pub fn refuse(&mut self, incoming: Incoming) {
        self.refuse_incoming(incoming);
    }

    /// Asks the client to prove its address: it gets a Retry with a token
    /// and comes back with a new Initial, which arrives as another
    /// [`Incoming`] with its address validated. No state is kept meanwhile.
    pub fn retry(&mut self, now: Instant, incoming: Incoming) -> Result<(), RetryError> {
        self.retry_incoming(now, incoming)
    }

    /// Drops a connection attempt without an answer.
    // Taken by value so that each attempt is decided once.
    #[allow(clippy::needless_pass_by_value)]
    pub fn ignore(&mut self, incoming: Incoming) {
        self.incoming.take(&incoming);
    }

    // ----- shared helpers -----

    /// The slot `handle` names, if its connection is still there.
    fn slot_of(&self, handle: ConnectionHandle) -> Option<usize> {
        let entry = self.connections.get(handle.index)?;
        (entry.generation == handle.generation).then_some(handle.index)
    }

    /// A connection ID of ours no connection uses.
    fn new_cid(&mut self) -> ConnectionId {
        new_cid(&mut *self.config.cid_generator, &mut *self.rng, &self.by_cid)
    }

    /// Gives a new connection its qlog sink, if the configuration has a
    /// factory.
    pub(super) fn attach_qlog(&self, conn: &mut Connection) {
        if let Some(factory) = &self.config.qlog
            && let Some(sink) = (factory.0)(&conn.original_dcid(), conn.side())
        {
            conn.set_qlog(sink, self.config.qlog_format);
        }
    }

    /// A connection's own random source: ChaCha20 keyed from ours.
    fn connection_rng(&mut self) -> Box<dyn RandomSource> {
        let mut seed = [0u8; 32];
        self.rng.fill(&mut seed);
        Box::new(crate::random::SeededRandom::from_seed(seed))
    }

    /// The versions this endpoint accepts as a server.
    fn accepts_version(&self, version: Version) -> bool {
        self.config.supported_versions.contains(&version)
    }
}

/// A connection ID `by_cid` does not hold. A generator that keeps
/// colliding (say, a load-balancer encoding with a tiny space) gets a few
/// tries; then its last answer is used, and since routes are never
/// overwritten, the connection already holding it keeps it.
fn new_cid(
    generator: &mut dyn crate::cid::ConnectionIdGenerator,
    rng: &mut dyn RandomSource,
    by_cid: &HashMap<ConnectionId, usize>,
) -> ConnectionId {
    let mut cid = generator.generate(rng);
    for _ in 0..8 {
        if !by_cid.contains_key(&cid) {
            break;
        }
        cid = generator.generate(rng);
    }
    cid
}
