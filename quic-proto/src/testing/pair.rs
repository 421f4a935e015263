//! A client and a server [`Connection`] talking in virtual time over a
//! simulated network: the harness for connection-level tests
//! (docs/architecture.md, the driving contract; RFC 9000 §14 and RFC 9002
//! behaviour under loss, reordering, MTU limits and congestion marks).
//!
//! Each direction has a [`Link`]: latency, bandwidth (serialisation delay
//! and a byte-limited queue with tail drop), random loss, reordering, an MTU
//! and ECN-CE marking. A per-datagram hook sees every datagram first and may
//! deliver, drop, delay or rewrite it. All randomness comes from one `u64`
//! seed (the test's, or `QUIC_TEST_SEED` through [`seed_from_env`]), so a run
//! replays byte for byte; every failure the harness reports prints the seed.
//!
//! The public API speaks of "the client" and "the server" and of datagrams
//! between them. Today the server is a bare [`Connection`] created with
//! [`Connection::accept`] on the first client Initial; an `Endpoint` can
//! take its place behind the same API.

use core::cmp::{Ordering, Reverse};
use core::fmt;
use core::time::Duration;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::{SeededGroup, TestPki, client_config_with, provider_with_random, server_config_with};
use crate::cid::ConnectionId;
use crate::connection::{
    AcceptParams, ClientConfig, Connection, DatagramMeta, EcnCodepoint, Event, ReadError,
    ServerConfig, TransportConfig, WriteError,
};
use crate::packet::{PartialDecode, ProtectedHeader};
use crate::random::{RandomSource, SeededRandom};
use crate::stream_id::{Dir, Side, StreamId};
use crate::time::Instant;
use crate::token::StatelessResetToken;
use crate::version::Version;

/// The environment variable that overrides test seeds (decimal or `0x` hex).
pub const SEED_ENV: &str = "QUIC_TEST_SEED";

/// The ALPN protocol both sides speak unless a test says otherwise.
pub const DEFAULT_ALPN: &[u8] = b"test";

/// `QUIC_TEST_SEED` if it is set (decimal or `0x` hex), else `default`.
///
/// Panics if the variable is set but is not a number: a typo must not
/// silently run the default seed.
pub fn seed_from_env(default: u64) -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(v) => parse_seed(&v).unwrap_or_else(|| panic!("{SEED_ENV}={v:?} is not a u64")),
        Err(_) => default,
    }
}

fn parse_seed(v: &str) -> Option<u64> {
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The client's address in the simulation.
pub fn client_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 4433))
}

/// The server's address in the simulation.
pub fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], 443))
}

/// Which way a datagram travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// From the client to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Direction {
    /// Both directions, client to server first.
    pub const BOTH: [Self; 2] = [Self::ClientToServer, Self::ServerToClient];

    /// The direction in which `side` sends.
    pub fn from_sender(side: Side) -> Self {
        match side {
            Side::Client => Self::ClientToServer,
            Side::Server => Self::ServerToClient,
        }
    }

    /// The side that sends in this direction.
    pub fn sender(self) -> Side {
        match self {
            Self::ClientToServer => Side::Client,
            Self::ServerToClient => Side::Server,
        }
    }

    /// The side that receives in this direction.
    pub fn receiver(self) -> Side {
        !self.sender()
    }

    fn index(self) -> usize {
        self as usize
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// A datagram just sent, as the hook sees it before the link model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatagramInFlight {
    /// Which way it goes.
    pub direction: Direction,
    /// Its position among the datagrams sent in this direction, from 0.
    pub index: u64,
    /// When it was sent.
    pub sent_at: Instant,
    /// Its bytes; the hook may rewrite them.
    pub data: Vec<u8>,
    /// Its ECN marking; the hook may change it.
    pub ecn: Option<EcnCodepoint>,
}

/// What the hook decides for a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the link model (which may still lose or delay it).
    Deliver,
    /// Drop it (counted as [`LinkStats::dropped_by_hook`]).
    Drop,
    /// Hand it to the link model with this much extra delay.
    Delay(Duration),
}

/// The per-datagram hook: called for every datagram sent, in send order.
pub type Hook = Box<dyn FnMut(&mut DatagramInFlight) -> Verdict>;

/// An invariant checker called after every input to a connection and after
/// every datagram it sends, with the side and the connection.
pub type Observer = Box<dyn FnMut(Side, &Connection)>;

/// The network model of one direction. Private fields, chained setters,
/// documented defaults: 10 ms latency, unlimited bandwidth, a 64 KiB
/// queue, no loss, no reordering, a 1500-byte MTU, no ECN marks.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    latency: Duration,
    bandwidth: Option<u64>,
    queue_limit: usize,
    loss: f64,
    reorder: f64,
    reorder_delay: Duration,
    mtu: usize,
    ce: f64,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            bandwidth: None,
            queue_limit: 64 * 1024,
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            mtu: 1500,
            ce: 0.0,
        }
    }
}

impl Link {
    /// One-way propagation delay. Default 10 ms.
    pub fn latency(&mut self, latency: Duration) -> &mut Self {
        self.latency = latency;
        self
    }

    /// Bytes per second the link serialises; `None` is infinitely fast (no
    /// queue). Default `None`.
    pub fn bandwidth(&mut self, bytes_per_second: Option<u64>) -> &mut Self {
        self.bandwidth = bytes_per_second.filter(|b| *b > 0);
        self
    }

    /// Bytes waiting for serialisation before arrivals are tail-dropped
    /// (only with a bandwidth). Default 64 KiB.
    pub fn queue_limit(&mut self, bytes: usize) -> &mut Self {
        self.queue_limit = bytes;
        self
    }

    /// Fraction of datagrams lost at random, from 0 to 1. Default 0.
    pub fn loss(&mut self, fraction: f64) -> &mut Self {
        self.loss = fraction;
        self
    }

    /// Fraction of datagrams held back by a random extra delay of up to
    /// `max_extra_delay`, so that later ones overtake them. Default none.
    pub fn reorder(&mut self, fraction: f64, max_extra_delay: Duration) -> &mut Self {
        self.reorder = fraction;
        self.reorder_delay = max_extra_delay;
        self
    }

    /// Largest datagram the link carries; larger ones are dropped (no
    /// fragmentation, as with DF set). Default 1500.
    pub fn mtu(&mut self, mtu: usize) -> &mut Self {
        self.mtu = mtu;
        self
    }

    /// Fraction of datagrams that arrive marked ECN-CE. Unlike a real
    /// router, the model marks datagrams sent without ECT too, so a test can
    /// exercise the receiver's ECN counting on its own. Default 0.
    pub fn ce_marking(&mut self, fraction: f64) -> &mut Self {
        self.ce = fraction;
        self
    }
}

/// What happened on one direction's link so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Datagrams the sender handed to the link.
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Datagrams handed to the receiver.
    pub delivered: u64,
    /// Their bytes.
    pub delivered_bytes: u64,
    /// Datagrams dropped for any reason (the sum of the next four).
    pub dropped: u64,
    /// Dropped by the hook.
    pub dropped_by_hook: u64,
    /// Dropped for exceeding the MTU.
    pub dropped_too_big: u64,
    /// Lost at random.
    pub lost: u64,
    /// Tail-dropped at a full queue.
    pub tail_dropped: u64,
    /// Delivered marked ECN-CE by the link.
    pub ce_marked: u64,
    /// Given a reordering delay.
    pub reordered: u64,
    /// Put on the link by [`Pair::inject`] rather than sent by a connection.
    pub injected: u64,
    /// Arrived at a server that did not exist and could not be created
    /// from them (not a client Initial).
    pub undeliverable: u64,
}

/// Why the link dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The hook said [`Verdict::Drop`].
    Hook,
    /// Larger than the link's MTU.
    TooBig,
    /// Random loss.
    Loss,
    /// The queue was full.
    QueueFull,
}

/// What became of a traced datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives (or arrived) at this time with this ECN marking.
    Delivered {
        /// Arrival time.
        at: Instant,
        /// The marking the receiver sees.
        ecn: Option<EcnCodepoint>,
    },
    /// The link dropped it.
    Dropped(DropReason),
}

/// One datagram sent by a connection, for determinism checks and debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// When it was sent.
    pub time: Instant,
    /// Which way.
    pub direction: Direction,
    /// The bytes the connection sent (before any hook rewrote them).
    pub data: Vec<u8>,
    /// What the link did with it.
    pub fate: Fate,
}

/// Sets up a [`Pair`]: seed, transport and TLS settings of both sides, and
/// the links. Start with [`Pair::builder`].
pub struct PairBuilder {
    seed: u64,
    client_transport: TransportConfig,
    server_transport: TransportConfig,
    client_alpn: Vec<Vec<u8>>,
    server_alpn: Vec<Vec<u8>>,
    client_groups: Vec<SeededGroup>,
    server_groups: Vec<SeededGroup>,
    client_cert: bool,
    require_client_cert: bool,
    client_tls: Option<Arc<rustls::ClientConfig>>,
    server_tls: Option<Arc<rustls::ServerConfig>>,
    version: Version,
    links: [Link; 2],
    start: Instant,
    record_trace: bool,
}

impl fmt::Debug for PairBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairBuilder").field("seed", &self.seed).finish_non_exhaustive()
    }
}

impl PairBuilder {
    /// Transport settings of the client. Default [`TransportConfig::default`].
    pub fn client_transport(&mut self, config: TransportConfig) -> &mut Self {
        self.client_transport = config;
        self
    }

    /// Transport settings of the server. Default [`TransportConfig::default`].
    pub fn server_transport(&mut self, config: TransportConfig) -> &mut Self {
        self.server_transport = config;
        self
    }

    /// Protocols the client offers. Default [`DEFAULT_ALPN`].
    pub fn client_alpn(&mut self, alpn: &[&[u8]]) -> &mut Self {
        self.client_alpn = alpn.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Protocols the server accepts. Default [`DEFAULT_ALPN`].
    pub fn server_alpn(&mut self, alpn: &[&[u8]]) -> &mut Self {
        self.server_alpn = alpn.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Key-exchange groups of the client, most preferred first; it sends a
    /// key share for the first only. Default [`super::DEFAULT_SEEDED_GROUPS`].
    pub fn client_groups(&mut self, groups: &[SeededGroup]) -> &mut Self {
        self.client_groups = groups.to_vec();
        self
    }

    /// Key-exchange groups of the server. A client whose first group is
    /// missing here draws a HelloRetryRequest.
    /// Default [`super::DEFAULT_SEEDED_GROUPS`].
    pub fn server_groups(&mut self, groups: &[SeededGroup]) -> &mut Self {
        self.server_groups = groups.to_vec();
        self
    }

    /// Whether the client presents the test PKI's client certificate when
    /// asked. Default no.
    pub fn client_cert(&mut self, present: bool) -> &mut Self {
        self.client_cert = present;
        self
    }

    /// Whether the server demands a client certificate. Default no.
    pub fn require_client_cert(&mut self, require: bool) -> &mut Self {
        self.require_client_cert = require;
        self
    }

    /// Uses this client TLS configuration instead of one built from the
    /// settings above.
    pub fn client_tls(&mut self, tls: Arc<rustls::ClientConfig>) -> &mut Self {
        self.client_tls = Some(tls);
        self
    }

    /// Uses this server TLS configuration instead of one built from the
    /// settings above.
    pub fn server_tls(&mut self, tls: Arc<rustls::ServerConfig>) -> &mut Self {
        self.server_tls = Some(tls);
        self
    }

    /// The QUIC version the client offers. Default [`Version::V1`].
    pub fn version(&mut self, version: Version) -> &mut Self {
        self.version = version;
        self
    }

    /// The link model of one direction.
    pub fn link(&mut self, direction: Direction) -> &mut Link {
        &mut self.links[direction.index()]
    }

    /// Applies `f` to the links of both directions.
    pub fn links(&mut self, mut f: impl FnMut(&mut Link)) -> &mut Self {
        self.links.iter_mut().for_each(&mut f);
        self
    }

    /// Virtual time at the start. Default 1 s after the epoch.
    pub fn start(&mut self, start: Instant) -> &mut Self {
        self.start = start;
        self
    }

    /// Whether to keep a [`TraceRecord`] of every datagram. Default yes.
    pub fn record_trace(&mut self, record: bool) -> &mut Self {
        self.record_trace = record;
        self
    }

    /// Builds the pair: the client's connection exists, the server's is
    /// created when the client's first Initial arrives.
    ///
    /// Panics (printing the seed) if the client cannot start.
    pub fn build(&self) -> Pair {
        let seed = self.seed;
        let pki = TestPki::new(seed);
        let alpn = |list: &[Vec<u8>]| list.iter().map(|p| p.to_vec()).collect::<Vec<_>>();
        let client_alpn = alpn(&self.client_alpn);
        let server_alpn = alpn(&self.server_alpn);
        let client_alpn: Vec<&[u8]> = client_alpn.iter().map(Vec::as_slice).collect();
        let server_alpn: Vec<&[u8]> = server_alpn.iter().map(Vec::as_slice).collect();
        let client_tls = self.client_tls.clone().unwrap_or_else(|| {
            let provider =
                provider_with_random(Box::new(SeededRandom::from_u64(seed)), &self.client_groups);
            Arc::new(client_config_with(&pki, &client_alpn, provider, self.client_cert))
        });
        let server_tls = self.server_tls.clone().unwrap_or_else(|| {
            let provider = provider_with_random(
                Box::new(SeededRandom::from_u64(seed.wrapping_add(1))),
                &self.server_groups,
            );
            Arc::new(server_config_with(&pki, &server_alpn, provider, self.require_client_cert))
        });
        let client_config = ClientConfig {
            tls: client_tls,
            transport: Arc::new(self.client_transport.clone()),
            version: self.version,
        };
        let server_config =
            ServerConfig { tls: server_tls, transport: Arc::new(self.server_transport.clone()) };
        let rng = Box::new(SeededRandom::from_u64(seed.wrapping_add(2)));
        let client = Connection::connect(
            self.start,
            &client_config,
            TestPki::SERVER_NAME,
            server_addr(),
            rng,
        )
        .unwrap_or_else(|e| panic!("seed {seed}: the client cannot start: {e}"));
        let links = [Direction::ClientToServer, Direction::ServerToClient].map(|d| LinkState {
            config: self.links[d.index()].clone(),
            rng: SeededRandom::from_u64(mix(seed, 0x11_4b + d.index() as u64)),
            busy_until: self.start,
            queue: VecDeque::new(),
            queued_bytes: 0,
            next_index: 0,
            stats: LinkStats::default(),
        });
        Pair {
            seed,
            now: self.start,
            client,
            server: None,
            server_config,
            pki,
            links,
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            hook: None,
            observer: None,
            trace: Vec::new(),
            record_trace: self.record_trace,
            events: [Vec::new(), Vec::new()],
            buf: Vec::new(),
        }
    }
}

/// A 64-bit mix (splitmix64) so that derived seeds differ in every bit.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed.wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct LinkState {
    config: Link,
    rng: SeededRandom,
    /// When the serialiser finishes the datagrams queued so far.
    busy_until: Instant,
    /// Departure times and sizes of datagrams queued or being serialised.
    queue: VecDeque<(Instant, usize)>,
    queued_bytes: usize,
    next_index: u64,
    stats: LinkStats,
}

impl LinkState {
    fn chance(&mut self, fraction: f64) -> bool {
        if fraction <= 0.0 {
            return false;
        }
        if fraction >= 1.0 {
            return true;
        }
        // 53 random bits: exact for every f64 fraction.
        let r = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        r < fraction
    }

    /// Runs the model over a datagram sent at `now`: its arrival time, or
    /// why it is dropped.
    fn carry(
        &mut self,
        now: Instant,
        len: usize,
        extra: Duration,
        ecn: &mut Option<EcnCodepoint>,
    ) -> Result<Instant, DropReason> {
        if len > self.config.mtu {
            return Err(DropReason::TooBig);
        }
        if self.chance(self.config.loss) {
            return Err(DropReason::Loss);
        }
        let mut departure = now;
        if let Some(bandwidth) = self.config.bandwidth {
            while self.queue.front().is_some_and(|(t, _)| *t <= now) {
                let (_, size) = self.queue.pop_front().expect("checked");
                self.queued_bytes -= size;
            }
            if self.queued_bytes + len > self.config.queue_limit {
                return Err(DropReason::QueueFull);
            }
            let nanos = (len as u128 * 1_000_000_000).div_ceil(u128::from(bandwidth));
            let serialisation = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            departure = self.busy_until.max(now) + serialisation;
            self.busy_until = departure;
            self.queue.push_back((departure, len));
            self.queued_bytes += len;
        }
        if self.chance(self.config.ce) {
            *ecn = Some(EcnCodepoint::Ce);
            self.stats.ce_marked += 1;
        }
        let mut arrival = departure + self.config.latency + extra;
        if self.chance(self.config.reorder) {
            let max = u64::try_from(self.config.reorder_delay.as_nanos()).unwrap_or(u64::MAX);
            arrival += Duration::from_nanos(1 + self.rng.below(max.max(1)));
            self.stats.reordered += 1;
        }
        Ok(arrival)
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.stats.dropped += 1;
        match reason {
            DropReason::Hook => self.stats.dropped_by_hook += 1,
            DropReason::TooBig => self.stats.dropped_too_big += 1,
            DropReason::Loss => self.stats.lost += 1,
            DropReason::QueueFull => self.stats.tail_dropped += 1,
        }
    }
}

/// A datagram on a link, ordered by arrival time then send order.
struct Queued {
    at: Instant,
    seq: u64,
    direction: Direction,
    data: Vec<u8>,
    ecn: Option<EcnCodepoint>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Steps without virtual time moving before the harness calls it a livelock.
const MAX_STEPS_AT_ONE_INSTANT: u32 = 10_000;

/// A client and a server connection over two simulated links, in virtual
/// time. Not `Send`: hooks and observers are plain closures.
///
/// Drive it with [`step`](Self::step), [`drive_until`](Self::drive_until),
/// [`drive_for`](Self::drive_for), or the [`handshake`](Self::handshake)
/// and [`transfer`](Self::transfer) helpers; reach the connections with
/// [`client`](Self::client) and [`server`](Self::server). Events are
/// captured per side as the harness drains them.
pub struct Pair {
    seed: u64,
    now: Instant,
    client: Connection,
    server: Option<Connection>,
    server_config: ServerConfig,
    pki: TestPki,
    links: [LinkState; 2],
    in_flight: BinaryHeap<Reverse<Queued>>,
    next_seq: u64,
    hook: Option<Hook>,
    observer: Option<Observer>,
    trace: Vec<TraceRecord>,
    record_trace: bool,
    events: [Vec<Event>; 2],
    buf: Vec<u8>,
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("client", &self.client)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Drop for Pair {
    // A failing assertion in a test does not know the seed: say it here,
    // where every failure with a pair alive passes.
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "Pair failed with seed {} at {:?} ({SEED_ENV} reruns it)",
                self.seed, self.now
            );
        }
    }
}

impl Pair {
    /// A pair with default settings and `seed`.
    pub fn new(seed: u64) -> Self {
        Self::builder(seed).build()
    }

    /// Settings for a pair with `seed`: defaults everywhere, both sides
    /// speaking [`DEFAULT_ALPN`].
    pub fn builder(seed: u64) -> PairBuilder {
        PairBuilder {
            seed,
            client_transport: TransportConfig::default(),
            server_transport: TransportConfig::default(),
            client_alpn: vec![DEFAULT_ALPN.to_vec()],
            server_alpn: vec![DEFAULT_ALPN.to_vec()],
            client_groups: super::DEFAULT_SEEDED_GROUPS.to_vec(),
            server_groups: super::DEFAULT_SEEDED_GROUPS.to_vec(),
            client_cert: false,
            require_client_cert: false,
            client_tls: None,
            server_tls: None,
            version: Version::V1,
            links: [Link::default(), Link::default()],
            start: Instant::from_millis(1_000),
            record_trace: true,
        }
    }

    // ----- state -----

    /// The seed everything random in this pair derives from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The test PKI the pair's TLS configurations use.
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// The client's connection.
    pub fn client(&mut self) -> &mut Connection {
        &mut self.client
    }

    /// The server's connection. Panics (with the seed) before the client's
    /// first Initial has arrived.
    pub fn server(&mut self) -> &mut Connection {
        let seed = self.seed;
        self.server.as_mut().unwrap_or_else(|| panic!("seed {seed}: no server connection yet"))
    }

    /// One side's connection; panics like [`server`](Self::server).
    pub fn conn(&mut self, side: Side) -> &mut Connection {
        match side {
            Side::Client => self.client(),
            Side::Server => self.server(),
        }
    }

    /// One side's connection, if it exists, without needing `&mut`.
    pub fn connection(&self, side: Side) -> Option<&Connection> {
        match side {
            Side::Client => Some(&self.client),
            Side::Server => self.server.as_ref(),
        }
    }

    /// Whether the server's connection exists yet.
    pub fn has_server(&self) -> bool {
        self.server.is_some()
    }

    /// Events `side` produced so far, oldest first.
    pub fn events(&self, side: Side) -> &[Event] {
        &self.events[side_index(side)]
    }

    /// The client's events so far.
    pub fn client_events(&self) -> &[Event] {
        self.events(Side::Client)
    }

    /// The server's events so far.
    pub fn server_events(&self) -> &[Event] {
        self.events(Side::Server)
    }

    /// Takes `side`'s captured events, leaving none.
    pub fn take_events(&mut self, side: Side) -> Vec<Event> {
        core::mem::take(&mut self.events[side_index(side)])
    }

    /// Every datagram the connections sent, in order.
    pub fn trace(&self) -> &[TraceRecord] {
        &self.trace
    }

    /// Takes the trace, leaving it empty.
    pub fn take_trace(&mut self) -> Vec<TraceRecord> {
        core::mem::take(&mut self.trace)
    }

    /// Counters of one direction's link.
    pub fn link_stats(&self, direction: Direction) -> LinkStats {
        self.links[direction.index()].stats
    }

    // ----- the network -----

    /// The link model of one direction; changes apply to datagrams sent
    /// from now on.
    pub fn link(&mut self, direction: Direction) -> &mut Link {
        &mut self.links[direction.index()].config
    }

    /// Applies `f` to the links of both directions.
    pub fn links(&mut self, mut f: impl FnMut(&mut Link)) {
        for link in &mut self.links {
            f(&mut link.config);
        }
    }

    /// Installs the per-datagram hook (replacing any other).
    pub fn set_hook(&mut self, hook: impl FnMut(&mut DatagramInFlight) -> Verdict + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Removes the per-datagram hook.
    pub fn clear_hook(&mut self) {
        self.hook = None;
    }

    /// Installs an observer called after every input to a connection and
    /// after every datagram it sends (replacing any other).
    pub fn set_observer(&mut self, observer: impl FnMut(Side, &Connection) + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Puts `data` on the link in `direction` as if its sender had sent it,
    /// bypassing the hook and the link model: it arrives after the link's
    /// latency. For datagrams a test forges.
    pub fn inject(&mut self, direction: Direction, data: Vec<u8>) {
        let link = &mut self.links[direction.index()];
        link.stats.injected += 1;
        let at = self.now + link.config.latency;
        self.push(at, direction, data, None);
    }

    fn push(
        &mut self,
        at: Instant,
        direction: Direction,
        data: Vec<u8>,
        ecn: Option<EcnCodepoint>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push(Reverse(Queued { at, seq, direction, data, ecn }));
    }

    /// A datagram a connection just sent: through the hook and the link model.
    fn send(&mut self, direction: Direction, data: Vec<u8>, ecn: Option<EcnCodepoint>) {
        let now = self.now;
        let link = &mut self.links[direction.index()];
        link.stats.sent += 1;
        link.stats.sent_bytes += data.len() as u64;
        let index = link.next_index;
        link.next_index += 1;
        let original = self.record_trace.then(|| data.clone());
        let mut datagram = DatagramInFlight { direction, index, sent_at: now, data, ecn };
        let verdict = match self.hook.as_mut() {
            Some(hook) => hook(&mut datagram),
            None => Verdict::Deliver,
        };
        let link = &mut self.links[direction.index()];
        let fate = match verdict {
            Verdict::Drop => Err(DropReason::Hook),
            Verdict::Deliver => {
                link.carry(now, datagram.data.len(), Duration::ZERO, &mut datagram.ecn)
            }
            Verdict::Delay(extra) => link.carry(now, datagram.data.len(), extra, &mut datagram.ecn),
        };
        let fate = match fate {
            Ok(at) => {
                let ecn = datagram.ecn;
                self.push(at, direction, datagram.data, ecn);
                Fate::Delivered { at, ecn }
            }
            Err(reason) => {
                link.count_drop(reason);
                Fate::Dropped(reason)
            }
        };
        if let Some(data) = original {
            self.trace.push(TraceRecord { time: now, direction, data, fate });
        }
    }

    // ----- driving -----

    /// Drains both connections' transmits onto the links and their events
    /// into the captured lists. Bounded: each connection sends what its
    /// congestion window and pacing allow.
    pub fn flush(&mut self) {
        for side in [Side::Client, Side::Server] {
            loop {
                let mut buf = core::mem::take(&mut self.buf);
                let now = self.now;
                let conn = match side {
                    Side::Client => &mut self.client,
                    Side::Server => match self.server.as_mut() {
                        Some(s) => s,
                        None => break,
                    },
                };
                let Some(t) = conn.poll_transmit(now, &mut buf) else {
                    self.buf = buf;
                    break;
                };
                let expected = match side {
                    Side::Client => server_addr(),
                    Side::Server => client_addr(),
                };
                assert_eq!(t.destination, expected, "seed {}: {side:?} sent astray", self.seed);
                let sizes = match t.segment_size {
                    Some(segment) if segment > 0 => segment,
                    _ => t.size,
                };
                let datagrams: Vec<Vec<u8>> =
                    buf[..t.size].chunks(sizes).map(<[u8]>::to_vec).collect();
                self.buf = buf;
                self.observe(side);
                for d in datagrams {
                    self.send(Direction::from_sender(side), d, t.ecn);
                }
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.events[0].push(e);
        }
        if let Some(server) = self.server.as_mut() {
            while let Some(e) = server.poll_event() {
                self.events[1].push(e);
            }
        }
    }

    fn observe(&mut self, side: Side) {
        let Some(observer) = self.observer.as_mut() else { return };
        match side {
            Side::Client => observer(side, &self.client),
            Side::Server => {
                if let Some(server) = self.server.as_ref() {
                    observer(side, server);
                }
            }
        }
    }

    /// The next time something happens: a datagram arrives or a
    /// connection's timer fires. Call after [`flush`](Self::flush).
    pub fn next_event_time(&self) -> Option<Instant> {
        let arrival = self.in_flight.peek().map(|q| q.0.at);
        [arrival, self.client.poll_timeout(), self.server.as_ref().and_then(|s| s.poll_timeout())]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends what is ready, advances virtual time to the next event, and
    /// processes everything due then: arrivals in order, then timers.
    /// Returns `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(next) = self.next_event_time() else { return false };
        self.now = self.now.max(next);
        while self.in_flight.peek().is_some_and(|q| q.0.at <= self.now) {
            let Reverse(q) = self.in_flight.pop().expect("checked");
            self.deliver(&q);
        }
        let now = self.now;
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
            self.observe(Side::Client);
        }
        if let Some(server) = self.server.as_mut()
            && server.poll_timeout().is_some_and(|t| t <= now)
        {
            server.handle_timeout(now);
            self.observe(Side::Server);
        }
        self.flush();
        true
    }

    fn deliver(&mut self, q: &Queued) {
        let link = &mut self.links[q.direction.index()];
        link.stats.delivered += 1;
        link.stats.delivered_bytes += q.data.len() as u64;
        let receiver = q.direction.receiver();
        let remote = match receiver {
            Side::Client => server_addr(),
            Side::Server => client_addr(),
        };
        if receiver == Side::Server && self.server.is_none() && !self.accept_server(&q.data) {
            self.links[q.direction.index()].stats.undeliverable += 1;
            return;
        }
        let meta = DatagramMeta { remote, local_ip: None, ecn: q.ecn };
        let now = self.now;
        self.conn(receiver).handle_datagram(now, meta, BytesMut::from(&q.data[..]));
        self.observe(receiver);
    }

    /// Creates the server's connection from the client's first Initial;
    /// `false` if `data` is not one. This is where an `Endpoint` will sit.
    fn accept_server(&mut self, data: &[u8]) -> bool {
        let Ok(d) = PartialDecode::parse(data, 0, false) else { return false };
        let ProtectedHeader::Long(h) = d.header() else { return false };
        if d.encryption_level() != Some(crate::space::EncryptionLevel::Initial) {
            return false;
        }
        let rng = Box::new(SeededRandom::from_u64(self.seed.wrapping_add(3)));
        let local_cid = ConnectionId::from_slice(&[0x5e; 8]).expect("8 bytes is a valid length");
        // Tests that exercise Retry put "odcid | retry_scid" in the token.
        let retry = (h.token.len() >= 16).then(|| {
            let cid = |b: &[u8]| ConnectionId::from_slice(b).expect("8 bytes");
            (cid(&h.token[..8]), cid(&h.token[8..16]))
        });
        let accept = AcceptParams {
            version: h.version,
            remote: client_addr(),
            client_dcid: h.dcid,
            client_scid: h.scid,
            local_cid,
            reset_token: StatelessResetToken::new([0x7e; 16]),
            retry,
        };
        let server =
            Connection::accept(self.now, &self.server_config, accept, rng).unwrap_or_else(|e| {
                panic!("seed {}: the server refused the connection: {e}", self.seed)
            });
        self.server = Some(server);
        true
    }

    /// Steps until `done` holds. Panics (with the seed) if it does not
    /// within `limit` of virtual time or if nothing is left to happen.
    pub fn drive_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = self.now + limit;
        let mut stalled = 0u32;
        while !done(self) {
            assert!(self.now < deadline, "seed {}: condition not met within {limit:?}", self.seed);
            let before = self.now;
            assert!(self.step(), "seed {}: nothing left to happen at {:?}", self.seed, self.now);
            stalled = if self.now == before { stalled + 1 } else { 0 };
            assert!(
                stalled < MAX_STEPS_AT_ONE_INSTANT,
                "seed {}: livelock: {stalled} steps at {:?} without time moving",
                self.seed,
                self.now
            );
        }
    }

    /// Processes everything that happens within `duration`, then moves
    /// virtual time to its end.
    pub fn drive_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        let mut stalled = 0u32;
        loop {
            self.flush();
            if self.next_event_time().is_none_or(|t| t > end) {
                break;
            }
            let before = self.now;
            self.step();
            stalled = if self.now == before { stalled + 1 } else { 0 };
            assert!(
                stalled < MAX_STEPS_AT_ONE_INSTANT,
                "seed {}: livelock at {:?}",
                self.seed,
                self.now
            );
        }
        self.now = self.now.max(end);
    }

    /// Drives the handshake until both sides completed it and the client
    /// saw it confirmed (HANDSHAKE_DONE). Panics after 30 s of virtual time.
    pub fn handshake(&mut self) {
        self.drive_until(Duration::from_secs(30), |p| {
            p.client.is_handshake_complete()
                && p.server.as_ref().is_some_and(Connection::is_handshake_complete)
                && p.client_events().contains(&Event::HandshakeConfirmed)
        });
    }

    /// Drives until both connections are drained. Panics after `limit`.
    pub fn drive_until_drained(&mut self, limit: Duration) {
        self.drive_until(limit, |p| {
            p.client.is_drained() && p.server.as_ref().is_none_or(Connection::is_drained)
        });
    }

    /// Sends `data` on a new stream of `dir` opened by `from`, finishes it,
    /// and reads it on the other side; returns what arrived.
    pub fn transfer(&mut self, from: Side, dir: Dir, data: &Bytes) -> Vec<u8> {
        let spec = StreamTransfer::one_way(from, dir, data.clone());
        let mut results = self.transfer_streams(&[spec]);
        results.pop().expect("one result per stream").request_received
    }

    /// Runs several stream exchanges at once: each opens a stream (waiting
    /// for stream credit when the peer's limit is reached), sends its
    /// request and FIN, and on a bidirectional stream the peer answers with
    /// its response and FIN. Returns what each side read, in `specs` order.
    ///
    /// Panics (with the seed) on an unexpected stream error, or if the
    /// exchange does not finish within 10 minutes of virtual time.
    pub fn transfer_streams(&mut self, specs: &[StreamTransfer]) -> Vec<TransferResult> {
        let mut states: Vec<Exchange> = specs.iter().map(|_| Exchange::default()).collect();
        let deadline = self.now + Duration::from_secs(600);
        let mut read_buf = vec![0u8; 64 * 1024];
        loop {
            // Open what stream credit allows, in order per (side, dir).
            for (i, spec) in specs.iter().enumerate() {
                if states[i].id.is_some() {
                    continue;
                }
                let earlier_waits = specs[..i]
                    .iter()
                    .zip(&states)
                    .any(|(s, st)| st.id.is_none() && s.opener == spec.opener && s.dir == spec.dir);
                if earlier_waits {
                    continue;
                }
                states[i].id = self.conn(spec.opener).open_stream(spec.dir);
            }
            // A peer learns of streams by accepting them (streams the test
            // opened itself are accepted and ignored).
            for side in [Side::Client, Side::Server] {
                let Some(conn) = (match side {
                    Side::Client => Some(&mut self.client),
                    Side::Server => self.server.as_mut(),
                }) else {
                    continue;
                };
                for dir in [Dir::Bi, Dir::Uni] {
                    while let Some(accepted) = conn.accept_stream(dir) {
                        let ours = specs
                            .iter()
                            .zip(states.iter_mut())
                            .find(|(spec, st)| spec.opener != side && st.id == Some(accepted));
                        if let Some((_, st)) = ours {
                            st.accepted = true;
                        }
                    }
                }
            }
            let mut all_done = true;
            for (i, spec) in specs.iter().enumerate() {
                let st = &mut states[i];
                let Some(id) = st.id else {
                    all_done = false;
                    continue;
                };
                let peer = !spec.opener;
                let seed = self.seed;
                let opener = self.conn(spec.opener);
                write_all(opener, id, &spec.request, &mut st.request_written, seed);
                if spec.dir == Dir::Bi && !st.response_done {
                    read_all(
                        opener,
                        id,
                        &mut read_buf,
                        &mut st.response,
                        &mut st.response_done,
                        seed,
                    );
                }
                if st.accepted {
                    let acceptor = self.conn(peer);
                    if !st.request_done {
                        read_all(
                            acceptor,
                            id,
                            &mut read_buf,
                            &mut st.request,
                            &mut st.request_done,
                            seed,
                        );
                    }
                    if spec.dir == Dir::Bi {
                        write_all(acceptor, id, &spec.response, &mut st.response_written, seed);
                    }
                }
                all_done &= st.request_done && (spec.dir == Dir::Uni || st.response_done);
            }
            if all_done {
                break;
            }
            assert!(self.now < deadline, "seed {}: stream transfers did not finish", self.seed);
            assert!(self.step(), "seed {}: stream transfers stalled at {:?}", self.seed, self.now);
        }
        specs
            .iter()
            .zip(states)
            .map(|(_, st)| TransferResult {
                id: st.id.expect("every stream opened"),
                request_received: st.request,
                response_received: st.response,
            })
            .collect()
    }
}

/// Writes what remains of `data` and then the FIN; `written` tracks
/// progress across calls (`usize::MAX` once the FIN is queued).
fn write_all(conn: &mut Connection, id: StreamId, data: &Bytes, written: &mut usize, seed: u64) {
    while *written < data.len() {
        match conn.write_bytes(id, data.slice(*written..)) {
            Ok(n) => *written += n,
            Err(WriteError::Blocked) => return,
            Err(e) => panic!("seed {seed}: write on {id:?} failed: {e}"),
        }
    }
    if *written == data.len() {
        match conn.finish(id) {
            Ok(()) => *written = usize::MAX,
            Err(e) => panic!("seed {seed}: finishing {id:?} failed: {e}"),
        }
    }
}

/// Reads everything available on `id` into `out`; sets `done` at the FIN.
fn read_all(
    conn: &mut Connection,
    id: StreamId,
    buf: &mut [u8],
    out: &mut Vec<u8>,
    done: &mut bool,
    seed: u64,
) {
    loop {
        match conn.read(id, buf) {
            Ok(Some(n)) => out.extend_from_slice(&buf[..n]),
            Ok(None) => {
                *done = true;
                return;
            }
            Err(ReadError::Blocked) => return,
            Err(e) => panic!("seed {seed}: read on {id:?} failed: {e}"),
        }
    }
}

/// One stream exchange for [`Pair::transfer_streams`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamTransfer {
    /// The side that opens the stream and sends `request`.
    pub opener: Side,
    /// Bidirectional or unidirectional.
    pub dir: Dir,
    /// What the opener sends, then FIN.
    pub request: Bytes,
    /// What the peer answers on a bidirectional stream, then FIN; must be
    /// empty on a unidirectional one.
    pub response: Bytes,
}

impl StreamTransfer {
    /// `data` from `opener` on a new stream of `dir`, with an empty
    /// response on a bidirectional stream.
    pub fn one_way(opener: Side, dir: Dir, data: Bytes) -> Self {
        Self { opener, dir, request: data, response: Bytes::new() }
    }
}

/// What [`Pair::transfer_streams`] read for one exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferResult {
    /// The stream used.
    pub id: StreamId,
    /// What the peer read of the request.
    pub request_received: Vec<u8>,
    /// What the opener read of the response (empty on unidirectional streams).
    pub response_received: Vec<u8>,
}

#[derive(Default)]
struct Exchange {
    id: Option<StreamId>,
    accepted: bool,
    request_written: usize,
    response_written: usize,
    request: Vec<u8>,
    request_done: bool,
    response: Vec<u8>,
    response_done: bool,
}

/// `len` bytes from a [`SeededRandom`] keyed by `seed`: test payloads that
/// are the same on every run.
pub fn payload(len: usize, seed: u64) -> Bytes {
    let mut data = vec![0u8; len];
    SeededRandom::from_u64(seed).fill(&mut data);
    Bytes::from(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed(" 0x2a "), Some(42));
        assert_eq!(parse_seed("forty-two"), None);
    }

    #[test]
    fn mtu_drops_large_datagrams_and_counts_them() {
        let mut pair = Pair::new(1);
        // Client Initials are padded to 1200 bytes: none fit.
        pair.link(Direction::ClientToServer).mtu(1199);
        pair.drive_for(Duration::from_secs(2));
        let stats = pair.link_stats(Direction::ClientToServer);
        assert!(stats.sent > 1);
        assert_eq!(stats.dropped_too_big, stats.sent);
        assert_eq!(stats.delivered, 0);
        assert!(!pair.has_server());
        assert!(pair.trace().iter().all(|r| r.fate == Fate::Dropped(DropReason::TooBig)));
    }

    #[test]
    fn bandwidth_serialises_and_a_full_queue_tail_drops() {
        let mut link = LinkState {
            config: Link::default(),
            rng: SeededRandom::from_u64(1),
            busy_until: Instant::ZERO,
            queue: VecDeque::new(),
            queued_bytes: 0,
            next_index: 0,
            stats: LinkStats::default(),
        };
        link.config.bandwidth(Some(1_000_000)).queue_limit(2_500).latency(Duration::ZERO);
        let mut ecn = None;
        let t0 = Instant::from_millis(1);
        // 1000 bytes at 1 MB/s: 1 ms each, back to back.
        assert_eq!(link.carry(t0, 1000, Duration::ZERO, &mut ecn), Ok(Instant::from_millis(2)));
        assert_eq!(link.carry(t0, 1000, Duration::ZERO, &mut ecn), Ok(Instant::from_millis(3)));
        assert_eq!(link.carry(t0, 1000, Duration::ZERO, &mut ecn), Err(DropReason::QueueFull));
        // Once the first has left, there is room again.
        let t = Instant::from_millis(2);
        assert_eq!(link.carry(t, 1000, Duration::ZERO, &mut ecn), Ok(Instant::from_millis(4)));
    }

    #[test]
    fn hook_sees_every_datagram_and_can_drop_delay_and_rewrite() {
        let mut pair = Pair::new(2);
        pair.set_hook(|d| match (d.direction, d.index) {
            (Direction::ClientToServer, 0) => Verdict::Drop,
            (Direction::ServerToClient, 0) => Verdict::Delay(Duration::from_millis(5)),
            (Direction::ServerToClient, 1) => {
                // A rewritten byte fails authentication: as good as lost.
                let last = d.data.len() - 1;
                d.data[last] ^= 1;
                Verdict::Deliver
            }
            _ => Verdict::Deliver,
        });
        pair.handshake();
        let up = pair.link_stats(Direction::ClientToServer);
        assert_eq!(up.dropped_by_hook, 1);
        let first_down =
            pair.trace().iter().find(|r| r.direction == Direction::ServerToClient).unwrap();
        let Fate::Delivered { at, .. } = first_down.fate else { panic!("delivered") };
        assert_eq!(at - first_down.time, Duration::from_millis(15));
    }

    #[test]
    fn ce_marks_reach_the_receiver_and_the_transfer_still_completes() {
        let mut pair = Pair::new(3);
        pair.link(Direction::ClientToServer).ce_marking(0.2);
        pair.handshake();
        let data = payload(100_000, 3);
        assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);
        let marked = pair.link_stats(Direction::ClientToServer).ce_marked;
        assert!(marked > 0);
        let traced = pair
            .trace()
            .iter()
            .filter(|r| matches!(r.fate, Fate::Delivered { ecn: Some(EcnCodepoint::Ce), .. }))
            .count() as u64;
        assert_eq!(traced, marked);
    }

    #[test]
    fn reordering_lets_later_datagrams_overtake() {
        let mut pair = Pair::new(4);
        pair.links(|l| {
            l.reorder(0.3, Duration::from_millis(30));
        });
        pair.handshake();
        let data = payload(200_000, 4);
        assert_eq!(pair.transfer(Side::Client, Dir::Bi, &data), data);
        let arrivals: Vec<Instant> = pair
            .trace()
            .iter()
            .filter(|r| r.direction == Direction::ClientToServer)
            .filter_map(|r| match r.fate {
                Fate::Delivered { at, .. } => Some(at),
                Fate::Dropped(_) => None,
            })
            .collect();
        assert!(arrivals.windows(2).any(|w| w[1] < w[0]), "some datagram was overtaken");
        assert!(pair.link_stats(Direction::ClientToServer).reordered > 0);
    }

    #[test]
    fn streams_flow_both_ways_at_once() {
        let mut pair = Pair::new(5);
        pair.handshake();
        let specs = [
            StreamTransfer {
                opener: Side::Client,
                dir: Dir::Bi,
                request: payload(30_000, 1),
                response: payload(50_000, 2),
            },
            StreamTransfer::one_way(Side::Server, Dir::Uni, payload(20_000, 3)),
            StreamTransfer::one_way(Side::Client, Dir::Uni, Bytes::new()),
        ];
        let results = pair.transfer_streams(&specs);
        for (spec, result) in specs.iter().zip(&results) {
            assert_eq!(result.request_received, spec.request);
            assert_eq!(result.response_received, spec.response);
        }
    }
}
