//! A client and a server [`Endpoint`] talking in virtual time over a
//! simulated network: the harness for connection-level tests
//! (docs/architecture.md, the driving contract; RFC 9000 §14 and RFC 9002
//! behaviour under loss, reordering, MTU limits and congestion marks; RFC
//! 9000 §5.2.2, §8.1 and §10.3 for what the endpoints answer statelessly).
//!
//! Each side is an [`Endpoint`]: the client's has no server configuration
//! and makes its connection with [`Endpoint::connect`]; the server's
//! decides each [`Incoming`](crate::endpoint::Incoming) by an [`IncomingPolicy`] (accept by default).
//! Both are driven exactly as the contract says: after every input, drain
//! `poll_transmit`, then read `poll_timeout`, then drain `poll_event`.
//! The API still speaks of "the client" and "the server" connections.
//!
//! Each direction has a [`Link`]: latency, bandwidth (serialisation delay
//! and a byte-limited queue with tail drop), random loss, reordering, an MTU
//! and ECN-CE marking. A per-datagram hook sees every datagram first and may
//! deliver, drop, delay or rewrite it. All randomness, the endpoints'
//! included, comes from one `u64` seed (the test's, or `QUIC_TEST_SEED`
//! through [`seed_from_env`]), so a run replays byte for byte; every failure
//! the harness reports prints the seed.
//!
//! This file holds the pair and its driving; the network model is in
//! `link.rs`, settings in `builder.rs`, stream exchanges in `transfer.rs`.

mod builder;
mod endpoints;
mod link;
#[cfg(test)]
mod tests;
mod transfer;

use core::cmp::Reverse;
use core::fmt;
use core::time::Duration;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::BytesMut;

pub use builder::PairBuilder;
pub use endpoints::{IncomingHandler, IncomingPolicy, IncomingRecord};
pub use link::{
    DatagramInFlight, Direction, DropReason, Fate, Hook, Link, LinkStats, TraceRecord, Verdict,
};
pub use transfer::{StreamTransfer, TransferResult, payload};

use super::TestPki;
use crate::connection::{
    ClientConfig, Connection, DatagramMeta, EcnCodepoint, Event, ServerConfig,
};
use crate::endpoint::{ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig};
use crate::stream_id::Side;
use crate::time::Instant;
use endpoints::new_endpoint;
use link::{LinkState, Queued};
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

fn side_index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// An invariant checker called after every input to an endpoint and after
/// every datagram it sends, with the side and that side's connection.
pub type Observer = Box<dyn FnMut(Side, &Connection)>;

/// A 64-bit mix (splitmix64) so that derived seeds differ in every bit.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed.wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Steps without virtual time moving before the harness calls it a livelock.
const MAX_STEPS_AT_ONE_INSTANT: u32 = 10_000;

/// Adjusts an [`EndpointConfig`]; kept so that a restarted server endpoint
/// gets the same settings.
pub(crate) type EndpointSetup = Rc<dyn Fn(&mut EndpointConfig)>;

/// One side's connection: in its endpoint, or kept by the harness after it
/// drained (the endpoint forgets drained connections; tests still read them).
enum Slot {
    Live(ConnectionHandle),
    Drained(Box<Connection>),
}

/// One side: its endpoint, its connection, and its next deadline as read
/// after the last input.
struct Node {
    endpoint: Endpoint,
    conn: Option<Slot>,
    deadline: Option<Instant>,
}

impl Node {
    fn connection(&self) -> Option<&Connection> {
        match self.conn.as_ref()? {
            Slot::Live(h) => self.endpoint.connection_ref(*h),
            Slot::Drained(c) => Some(c),
        }
    }

    fn connection_mut(&mut self) -> Option<&mut Connection> {
        match self.conn.as_mut()? {
            Slot::Live(h) => self.endpoint.connection(*h),
            Slot::Drained(c) => Some(c),
        }
    }

    fn handle(&self) -> Option<ConnectionHandle> {
        match self.conn {
            Some(Slot::Live(h)) => Some(h),
            _ => None,
        }
    }

    /// Takes the connection from its endpoint once it drained, before the
    /// endpoint's next `poll_transmit` would drop it.
    fn keep_if_drained(&mut self) {
        if let Some(h) = self.handle()
            && let Some(conn) = self.endpoint.detach_drained(h)
        {
            self.conn = Some(Slot::Drained(Box::new(conn)));
        }
    }
}

/// A client and a server endpoint, one connection between them, over two
/// simulated links, in virtual time. Not `Send`: hooks and observers are
/// plain closures.
///
/// Drive it with [`step`](Self::step), [`drive_until`](Self::drive_until),
/// [`drive_for`](Self::drive_for), or the [`handshake`](Self::handshake)
/// and [`transfer`](Self::transfer) helpers; reach the connections with
/// [`client`](Self::client) and [`server`](Self::server), the endpoints
/// with [`endpoint`](Self::endpoint). Events are captured per side as the
/// harness drains them.
pub struct Pair {
    seed: u64,
    now: Instant,
    /// Client, server.
    nodes: [Node; 2],
    server_config: ServerConfig,
    server_setup: Option<EndpointSetup>,
    server_restarts: u64,
    policy: IncomingHandler,
    incoming: Vec<IncomingRecord>,
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
            .field("client", &self.connection(Side::Client))
            .field("server", &self.connection(Side::Server))
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
        PairBuilder::new(seed)
    }

    /// Assembles a pair from what [`PairBuilder::build`] prepared, and
    /// starts the client's connection.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        builder: &PairBuilder,
        pki: TestPki,
        client_config: &ClientConfig,
        server_config: ServerConfig,
        links: [LinkState; 2],
        client_setup: Option<&EndpointSetup>,
        server_setup: Option<EndpointSetup>,
        policy: IncomingPolicy,
    ) -> Self {
        let seed = builder.seed;
        let start = builder.start;
        let mut client = new_endpoint(seed, Side::Client, 0, client_setup, None);
        let server =
            new_endpoint(seed, Side::Server, 0, server_setup.as_ref(), Some(server_config.clone()));
        let handle = client
            .connect(start, client_config, TestPki::SERVER_NAME, server_addr())
            .unwrap_or_else(|e| panic!("seed {seed}: the client cannot start: {e}"));
        let node = |endpoint, conn| Node { endpoint, conn, deadline: None };
        Pair {
            seed,
            now: start,
            nodes: [node(client, Some(Slot::Live(handle))), node(server, None)],
            server_config,
            server_setup,
            server_restarts: 0,
            policy: Box::new(move |_| policy),
            incoming: Vec::new(),
            pki,
            links,
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            hook: None,
            observer: None,
            trace: Vec::new(),
            record_trace: builder.record_trace,
            events: [Vec::new(), Vec::new()],
            buf: Vec::new(),
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

    /// The client's connection. Panics (with the seed) if its endpoint
    /// dropped it (it cannot: the harness keeps it once drained).
    pub fn client(&mut self) -> &mut Connection {
        self.conn(Side::Client)
    }

    /// The server's connection. Panics (with the seed) before the server
    /// endpoint has accepted the client.
    pub fn server(&mut self) -> &mut Connection {
        self.conn(Side::Server)
    }

    /// One side's connection, for application commands (the endpoint then
    /// polls it); panics like [`server`](Self::server). Once drained, the
    /// connection is the harness's and commands reach no endpoint.
    pub fn conn(&mut self, side: Side) -> &mut Connection {
        let seed = self.seed;
        self.nodes[side_index(side)]
            .connection_mut()
            .unwrap_or_else(|| panic!("seed {seed}: no {side:?} connection"))
    }

    /// One side's connection, if it exists, without needing `&mut` (and
    /// without the endpoint polling it).
    pub fn connection(&self, side: Side) -> Option<&Connection> {
        self.nodes[side_index(side)].connection()
    }

    /// Whether the server endpoint has accepted a connection yet.
    pub fn has_server(&self) -> bool {
        self.nodes[1].conn.is_some()
    }

    /// One side's endpoint, to inspect (connection counts, pending
    /// attempts): the client's was made without a server configuration,
    /// the server's with one. Datagrams polled from it here bypass the
    /// links; the pair's connections are at [`handle`](Self::handle).
    pub fn endpoint(&mut self, side: Side) -> &mut Endpoint {
        &mut self.nodes[side_index(side)].endpoint
    }

    /// The handle of `side`'s connection in its endpoint; `None` before the
    /// server accepted, and once the connection drained.
    pub fn handle(&self, side: Side) -> Option<ConnectionHandle> {
        self.nodes[side_index(side)].handle()
    }

    /// Events `side`'s connection produced so far, oldest first.
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

    /// Every datagram the endpoints sent, in order.
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

    // ----- the network and the server -----

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

    /// Installs an observer called after every input to an endpoint and
    /// after every datagram it sends, with that side's connection
    /// (replacing any other).
    pub fn set_observer(&mut self, observer: impl FnMut(Side, &Connection) + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Plays a hostile but authenticated peer: `from`'s connection seals
    /// exactly `frames` (encoded) into a 1-RTT packet
    /// ([`Connection::forge_packet`]) and it goes on the link towards the
    /// other side. Needs a completed handshake.
    pub fn inject_frames(&mut self, from: Side, frames: &[u8]) {
        let now = self.now;
        let datagram = self.conn(from).forge_packet(now, frames);
        self.inject(Direction::from_sender(from), datagram);
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

    /// A datagram an endpoint just sent: through the hook and the link model.
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

    /// Does what the driving contract asks after an input, for both
    /// endpoints: drains their transmits onto the links, reads their next
    /// deadlines, and drains their events into the captured lists. Bounded:
    /// each connection sends what its congestion window and pacing allow.
    pub fn flush(&mut self) {
        for side in [Side::Client, Side::Server] {
            self.flush_side(side);
        }
    }

    fn flush_side(&mut self, side: Side) {
        let i = side_index(side);
        // Taken before a drained connection leaves its endpoint: its last
        // events are still queued under it.
        let ours = self.nodes[i].handle();
        self.nodes[i].keep_if_drained();
        let expected = match side {
            Side::Client => server_addr(),
            Side::Server => client_addr(),
        };
        loop {
            let mut buf = core::mem::take(&mut self.buf);
            let now = self.now;
            let Some(t) = self.nodes[i].endpoint.poll_transmit(now, &mut buf) else {
                self.buf = buf;
                break;
            };
            assert_eq!(t.destination, expected, "seed {}: {side:?} sent astray", self.seed);
            let sizes = match t.segment_size {
                Some(segment) if segment > 0 => segment,
                _ => t.size,
            };
            let datagrams: Vec<Vec<u8>> = buf[..t.size].chunks(sizes).map(<[u8]>::to_vec).collect();
            self.buf = buf;
            self.observe(side);
            for d in datagrams {
                self.send(Direction::from_sender(side), d, t.ecn);
            }
        }
        let node = &mut self.nodes[i];
        node.deadline = node.endpoint.poll_timeout();
        while let Some((h, e)) = node.endpoint.poll_event() {
            // Events of a connection the pair does not follow (a second
            // attempt the policy accepted) are not captured.
            if Some(h) == ours {
                self.events[i].push(e);
            }
        }
    }

    fn observe(&mut self, side: Side) {
        let Some(observer) = self.observer.as_mut() else { return };
        if let Some(conn) = self.nodes[side_index(side)].connection() {
            observer(side, conn);
        }
    }

    /// The next time something happens: a datagram arrives or an
    /// endpoint's timer fires. Call after [`flush`](Self::flush), which
    /// reads the endpoints' deadlines.
    pub fn next_event_time(&self) -> Option<Instant> {
        let arrival = self.in_flight.peek().map(|q| q.0.at);
        [arrival, self.nodes[0].deadline, self.nodes[1].deadline].into_iter().flatten().min()
    }

    /// Sends what is ready, advances virtual time to the next event, and
    /// processes everything due then: arrivals in order, then timers, each
    /// input followed by what the driving contract asks (see
    /// [`flush`](Self::flush)). Returns `false` when nothing is left to
    /// happen.
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(next) = self.next_event_time() else { return false };
        self.now = self.now.max(next);
        while self.in_flight.peek().is_some_and(|q| q.0.at <= self.now) {
            let Reverse(q) = self.in_flight.pop().expect("checked");
            self.deliver(&q);
        }
        let now = self.now;
        for side in [Side::Client, Side::Server] {
            let node = &mut self.nodes[side_index(side)];
            if node.deadline.is_some_and(|t| t <= now) {
                node.endpoint.handle_timeout(now);
                self.observe(side);
                self.flush_side(side);
                self.assert_deadline_after(side, now);
            }
        }
        true
    }

    /// A driver woken late: moves virtual time by `by`, delivers what
    /// arrived meanwhile, and calls `handle_timeout` on both endpoints
    /// whether or not anything is due (the contract makes that a no-op),
    /// checking the deadline each leaves behind, like [`step`](Self::step).
    pub fn wake_late(&mut self, by: Duration) {
        self.flush();
        self.now += by;
        while self.in_flight.peek().is_some_and(|q| q.0.at <= self.now) {
            let Reverse(q) = self.in_flight.pop().expect("checked");
            self.deliver(&q);
        }
        let now = self.now;
        for side in [Side::Client, Side::Server] {
            self.nodes[side_index(side)].endpoint.handle_timeout(now);
            self.observe(side);
            self.flush_side(side);
            self.assert_deadline_after(side, now);
        }
    }

    /// The driving contract: once `handle_timeout(now)` has run and
    /// transmits are drained, the next deadline is later than `now`, or a
    /// driver would spin (DESIGN.md, "Hostile input").
    fn assert_deadline_after(&self, side: Side, now: Instant) {
        let deadline = self.nodes[side_index(side)].deadline;
        assert!(
            deadline.is_none_or(|t| t > now),
            "seed {}: {side:?} deadline {deadline:?} not after handle_timeout({now:?})",
            self.seed
        );
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
        let meta = DatagramMeta { remote, local_ip: None, ecn: q.ecn };
        let now = self.now;
        let had_server = self.has_server();
        let event = self.nodes[side_index(receiver)].endpoint.handle_datagram(
            now,
            meta,
            BytesMut::from(&q.data[..]),
        );
        if let Some(DatagramEvent::Incoming(incoming)) = event {
            self.decide(incoming);
        }
        if receiver == Side::Server && !had_server && !self.has_server() {
            self.links[q.direction.index()].stats.undeliverable += 1;
        }
        self.observe(receiver);
        self.flush_side(receiver);
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
            let complete = |side| p.connection(side).is_some_and(Connection::is_handshake_complete);
            complete(Side::Client)
                && complete(Side::Server)
                && p.client_events().contains(&Event::HandshakeConfirmed)
        });
    }

    /// Drives until both connections are drained (a server connection that
    /// never existed counts as drained). Panics after `limit`.
    pub fn drive_until_drained(&mut self, limit: Duration) {
        self.drive_until(limit, |p| {
            [Side::Client, Side::Server]
                .into_iter()
                .all(|side| p.connection(side).is_none_or(Connection::is_drained))
        });
    }
}
