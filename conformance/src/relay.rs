//! An impairment relay for link emulation: a UDP forwarder on loopback
//! between one QUIC client and one server that delays, rate-limits,
//! loses, corrupts, reorders and blackholes datagrams, and rebinds its
//! "NAT" mapping, as the QUIC interop runner's network simulator does for
//! its test cases (issue 12). It runs on real sockets and the real clock;
//! the virtual-time link model for protocol tests is quic-proto's `Pair`.
//!
//! ```text
//!   client ──► addr() ┐            ┌ mapping() ──► server
//!                     │  to_server │
//!                     │  to_client │
//!   client ◄── addr() ┘            └ mapping() ◄── server
//! ```
//!
//! Clients send to [`Relay::addr`]. Like a NAT, the relay gives each
//! client address its own mapping: a socket from which it forwards that
//! client's datagrams to the server ([`Relay::mapping`] is the newest
//! client's), and through which the server's answers find their way back.
//! Up to [`MAX_CLIENTS`] clients are served (a run of one connection per
//! file, as the interop runner's handshakeloss case makes, needs many);
//! datagrams from further addresses are dropped and not recorded.
//! [`Relay::rebind_port`] and [`Relay::rebind_addr`] replace the newest
//! client's mapping, as a NAT that loses its binding would.
//!
//! Each datagram in each direction meets its [`Direction`]'s impairments in
//! this order, the first that applies deciding its [`Fate`]:
//! `drop_first` and `drops`, a blackhole window, a Gilbert-Elliott bad state or
//! random loss (unless `max_loss_run` losses just happened in a row), the bandwidth queue, then corruption (the datagram still
//! goes on, one byte altered), then delay, jitter and reordering decide
//! when it leaves. The fate is decided and recorded on arrival.
//!
//! Randomness comes from a seeded generator per direction, and every
//! datagram draws the same numbers whatever its fate, so the fate of the
//! n-th datagram of a direction is a function of the seed and the
//! configuration alone, apart from the two impairments that depend on
//! timing (blackhole windows and the bandwidth queue). The relay prints
//! nothing; callers print [`Relay::seed`] and put it in failure messages.
//!
//! Time is `std::time::Instant`: this is a test tool on real sockets, not
//! the sans-I/O core. Release times are met to within the poll's
//! granularity (about a millisecond on Linux's epoll). More, with the
//! outcome of a QUIC download across a rebinding, in `docs/relay.md`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

/// How one direction of the link is impaired. The default impairs nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Direction {
    /// Fixed one-way delay added to every datagram. Default zero.
    pub delay: Duration,
    /// Extra delay, uniform in `[0, jitter]`, drawn per datagram; datagrams
    /// may overtake each other when it exceeds their spacing. Default zero.
    pub jitter: Duration,
    /// Link rate in bytes per second: datagrams are serialised one after
    /// another at this rate before the delay applies. `None` (the default)
    /// is unlimited; `Some(0)` passes nothing (every datagram `QueueFull`).
    pub bandwidth: Option<u64>,
    /// Bytes that may wait behind the bandwidth limit; a datagram that
    /// would take the backlog beyond it is tail-dropped (`QueueFull`),
    /// except that one arriving at an idle link always goes. Default 64 KiB.
    pub queue: usize,
    /// Probability that a datagram is lost at random. Default 0.
    pub loss: f64,
    /// Gilbert-Elliott loss: `(P(good -> bad), P(bad -> good))`, one
    /// transition drawn per datagram before it is judged; every datagram
    /// in the bad state is lost. The chain starts good. Default `None`.
    pub burst_loss: Option<(f64, f64)>,
    /// At most this many datagrams in a row are lost to `loss` and
    /// `burst_loss`; the next one passes them. The interop runner's
    /// drop-rate scenario works this way ("no more than a given number of
    /// packets are dropped in a row", 3 in its loss cases). `None` (the
    /// default) sets no bound.
    pub max_loss_run: Option<usize>,
    /// Probability that a datagram gets one random byte altered (XOR with
    /// a random non-zero value); it is still delivered. Default 0.
    pub corrupt: f64,
    /// Probability that a datagram is held back an extra `reorder_delay`,
    /// so later ones overtake it. Default 0.
    pub reorder: f64,
    /// The extra hold of a reordered datagram. Default 10 ms.
    pub reorder_delay: Duration,
    /// `[start, end)` offsets from the relay's start during which every
    /// datagram of this direction is dropped (`Blackholed`). Default none.
    pub blackholes: Vec<(Duration, Duration)>,
    /// Drop (as `Lost`) the first N datagrams of this direction, whatever
    /// else is configured: handshake loss without randomness. Default 0.
    pub drop_first: usize,
    /// Drop (as `Lost`) these datagrams of this direction, numbered from 1,
    /// whatever else is configured: the runner's `droplist`
    /// (amplificationlimit drops the client's datagrams 2 to 7). Default
    /// none.
    pub drops: Vec<usize>,
}

impl Default for Direction {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth: None,
            queue: 64 << 10,
            loss: 0.0,
            burst_loss: None,
            max_loss_run: None,
            corrupt: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            blackholes: Vec::new(),
            drop_first: 0,
            drops: Vec::new(),
        }
    }
}

/// What [`Relay::start`] sets up.
#[derive(Clone, Debug, PartialEq)]
pub struct RelayConfig {
    /// The server the relay forwards to; must be a loopback address.
    pub server: SocketAddr,
    /// Impairments of the client's datagrams on their way to the server.
    pub to_server: Direction,
    /// Impairments of the server's datagrams on their way to the client.
    pub to_client: Direction,
    /// Seed of the relay's random decisions.
    pub seed: u64,
}

impl RelayConfig {
    /// A relay to `server` that impairs nothing, seeded with `seed`.
    pub fn new(server: SocketAddr, seed: u64) -> Self {
        Self { server, to_server: Direction::default(), to_client: Direction::default(), seed }
    }
}

/// Which way a datagram travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RelayDir {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// [`RelayDir`] under its short name, for callers without quic-proto's
/// `Dir` in scope.
pub type Dir = RelayDir;

/// What happened to a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fate {
    /// Passed every impairment and was scheduled for delivery. A datagram
    /// the OS then refuses to send turns `Lost`; one still waiting when
    /// the relay stops is never sent.
    Delivered,
    /// Dropped by `drop_first`, Gilbert-Elliott or random loss, or refused
    /// by the OS when its time came.
    Lost,
    /// Delivered with one byte altered.
    Corrupted,
    /// Dropped inside a blackhole window, or sent by the server to a
    /// mapping a rebinding had already replaced.
    Blackholed,
    /// Tail-dropped at the full bandwidth queue.
    QueueFull,
}

/// One datagram the relay saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When it arrived, since the relay started.
    pub at: Duration,
    /// Which way it was going.
    pub dir: RelayDir,
    /// Its bytes as they arrived (before any corruption).
    pub data: Vec<u8>,
    /// What the relay did with it.
    pub fate: Fate,
    /// Which client it came from or went to: 0 for the first address that
    /// sent to [`Relay::addr`], 1 for the next, and so on.
    pub client: usize,
    /// The client's address as the server sees it (the mapping): where a
    /// server datagram was sent to, or the mapping a client datagram was
    /// to leave from when it arrived. `None` when unknown.
    pub mapping: Option<SocketAddr>,
}

/// At most this many records are kept; later datagrams are still relayed
/// but not recorded ([`Relay::unrecorded`] counts them). The bound keeps a
/// long or flooded run from exhausting memory.
pub const MAX_RECORDS: usize = 1_000_000;

/// At most this many bytes of datagram data are kept in records, with the
/// same consequence as [`MAX_RECORDS`].
pub const MAX_RECORDED_BYTES: usize = 1 << 30;

/// At most this many client addresses get a mapping (each is a socket);
/// datagrams from further ones are dropped and not recorded.
pub const MAX_CLIENTS: usize = 1024;

/// A running relay. Dropping it (or [`Relay::stop`]) stops its thread;
/// datagrams still waiting for their release time are then discarded.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    seed: u64,
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

const CLIENT: Token = Token(0);
const WAKER: Token = Token(1);
/// Mapping `i` is registered as `Token(MAPPINGS + i)`.
const MAPPINGS: usize = 2;

impl Relay {
    /// Binds the client-facing socket and the first mapping on the
    /// loopback address of `cfg.server`'s family (127.0.0.1 or ::1), port 0,
    /// and starts the relay thread. Refuses (`InvalidInput`) a server that
    /// is not on loopback: the relay is a test tool and must not become an
    /// open forwarder towards other hosts.
    pub fn start(cfg: RelayConfig) -> io::Result<Relay> {
        if !cfg.server.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the relay only forwards on loopback: server address {} is not in \
                     127.0.0.0/8 or ::1",
                    cfg.server
                ),
            ));
        }
        let local: IpAddr = match cfg.server {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        };
        let mut client_socket = UdpSocket::bind(SocketAddr::new(local, 0))?;
        let addr = client_socket.local_addr()?;
        let mut mapping = UdpSocket::bind(SocketAddr::new(local, 0))?;
        let mapping_addr = mapping.local_addr()?;
        let poll = Poll::new()?;
        poll.registry().register(&mut client_socket, CLIENT, Interest::READABLE)?;
        poll.registry().register(&mut mapping, Token(MAPPINGS), Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let shared = Arc::new(Shared {
            recorder: Mutex::new(Recorder::default()),
            mapping: Mutex::new(mapping_addr),
        });
        let (commands, command_rx) = mpsc::channel();
        let start = Instant::now();
        let worker = Worker {
            poll,
            client_socket,
            mappings: vec![Mapping { socket: mapping, client: None }],
            spare: Some(0),
            clients: Vec::new(),
            server: cfg.server,
            start,
            lanes: [
                Lane::new(cfg.to_server, cfg.seed, 1, start),
                Lane::new(cfg.to_client, cfg.seed, 2, start),
            ],
            queue: BinaryHeap::new(),
            seq: 0,
            shared: shared.clone(),
            commands: command_rx,
            next_host: 2,
        };
        let thread = std::thread::Builder::new()
            .name(format!("relay {addr}"))
            .spawn(move || worker.run())?;
        Ok(Relay { addr, seed: cfg.seed, shared, commands, waker, thread: Some(thread) })
    }

    /// The address clients connect to instead of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seed of the relay's random decisions, to print and to put in
    /// failure messages so a run can be repeated.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The newest client's current mapping: the source address the server
    /// sees for its datagrams (before any client has sent, the one the
    /// first client will get).
    pub fn mapping(&self) -> SocketAddr {
        *lock(&self.shared.mapping)
    }

    /// NAT rebinding: when this returns, the relay forwards the newest
    /// client's datagrams (including ones already waiting for their release time)
    /// from a new source port on the same address, and drops what the
    /// server sends to the old port (recorded as `Blackholed`).
    pub fn rebind_port(&self) -> io::Result<()> {
        self.command(Rebind::Port)
    }

    /// Like [`Relay::rebind_port`], but the new mapping also has a new
    /// source address: 127.0.0.2, then 127.0.0.3 and so on (Linux routes
    /// all of 127.0.0.0/8 to the loopback interface; systems that do not
    /// fail the bind, and the error says so). With an IPv6 server this
    /// fails, as ::1 is the only IPv6 loopback address.
    pub fn rebind_addr(&self) -> io::Result<()> {
        self.command(Rebind::Addr)
    }

    /// Every datagram seen so far, in arrival order, with its fate (up to
    /// [`MAX_RECORDS`] and [`MAX_RECORDED_BYTES`]).
    pub fn records(&self) -> Vec<Record> {
        lock(&self.shared.recorder).records.clone()
    }

    /// How many datagrams were relayed but not recorded because the record
    /// bounds were reached.
    pub fn unrecorded(&self) -> u64 {
        lock(&self.shared.recorder).unrecorded
    }

    /// Stops the relay thread and returns every record.
    pub fn stop(mut self) -> Vec<Record> {
        self.shutdown();
        std::mem::take(&mut lock(&self.shared.recorder).records)
    }

    fn command(&self, rebind: Rebind) -> io::Result<()> {
        let (reply, answer) = mpsc::channel();
        let gone = || io::Error::other("the relay thread has stopped");
        self.commands.send(Command::Rebind(rebind, reply)).map_err(|_| gone())?;
        self.waker.wake()?;
        answer.recv().map_err(|_| gone())?
    }

    fn shutdown(&mut self) {
        let _ = self.commands.send(Command::Stop);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in the relay thread must not hide the records from the test
    // that wants to report it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Shared {
    recorder: Mutex<Recorder>,
    mapping: Mutex<SocketAddr>,
}

#[derive(Debug)]
struct Recorder {
    records: Vec<Record>,
    bytes: usize,
    unrecorded: u64,
    max_records: usize,
    max_bytes: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            bytes: 0,
            unrecorded: 0,
            max_records: MAX_RECORDS,
            max_bytes: MAX_RECORDED_BYTES,
        }
    }
}

impl Recorder {
    /// Records a datagram; returns its index, or `None` past the bounds.
    fn push(&mut self, record: Record) -> Option<usize> {
        if self.records.len() >= self.max_records || self.bytes + record.data.len() > self.max_bytes
        {
            self.unrecorded += 1;
            return None;
        }
        self.bytes += record.data.len();
        self.records.push(record);
        Some(self.records.len() - 1)
    }
}

#[derive(Debug)]
enum Rebind {
    Port,
    Addr,
}

#[derive(Debug)]
enum Command {
    Rebind(Rebind, mpsc::Sender<io::Result<()>>),
    Stop,
}

/// splitmix64: small, seedable and good enough for loss decisions.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The state of one direction.
#[derive(Debug)]
struct Lane {
    cfg: Direction,
    rng: Rng,
    /// Gilbert-Elliott state.
    bad: bool,
    /// Datagrams lost in a row to random or burst loss.
    loss_run: usize,
    seen: usize,
    /// When the bandwidth-limited link finishes serialising what it holds.
    link_free_at: Instant,
}

impl Lane {
    fn new(cfg: Direction, seed: u64, lane: u64, start: Instant) -> Self {
        // Each direction has its own stream, so one direction's fates do
        // not depend on how its datagrams interleave with the other's.
        let mut rng = Rng(seed ^ lane.wrapping_mul(0xd1b5_4a32_d192_ed03));
        rng.next_u64();
        Self { cfg, rng, bad: false, loss_run: 0, seen: 0, link_free_at: start }
    }

    /// Decides the fate of a datagram arriving `now` (`at` after the
    /// start), corrupting `data` in place if so decided, and when it
    /// leaves if it is delivered.
    fn judge(&mut self, now: Instant, at: Duration, data: &mut [u8]) -> (Fate, Instant) {
        let index = self.seen;
        self.seen += 1;
        // The same draws for every datagram, whatever its fate.
        let r_burst = self.rng.unit();
        let r_loss = self.rng.unit();
        let r_corrupt = self.rng.unit();
        let r_position = self.rng.next_u64();
        let r_value = self.rng.next_u64();
        let r_jitter = self.rng.unit();
        let r_reorder = self.rng.unit();
        let cfg = &self.cfg;

        if let Some((to_bad, to_good)) = cfg.burst_loss {
            self.bad = if self.bad { r_burst >= to_good } else { r_burst < to_bad };
        }
        if index < cfg.drop_first || cfg.drops.contains(&(index + 1)) {
            return (Fate::Lost, now);
        }
        if cfg.blackholes.iter().any(|&(start, end)| start <= at && at < end) {
            return (Fate::Blackholed, now);
        }
        if (self.bad || r_loss < cfg.loss) && cfg.max_loss_run.is_none_or(|m| self.loss_run < m) {
            self.loss_run += 1;
            return (Fate::Lost, now);
        }
        self.loss_run = 0;
        let mut leaves = now;
        if let Some(rate) = cfg.bandwidth {
            if rate == 0 {
                return (Fate::QueueFull, now);
            }
            let backlog = self.link_free_at.saturating_duration_since(now);
            let backlog_bytes = backlog.as_secs_f64() * rate as f64;
            if !backlog.is_zero() && backlog_bytes + data.len() as f64 > cfg.queue as f64 {
                return (Fate::QueueFull, now);
            }
            let serialise = Duration::from_secs_f64(data.len() as f64 / rate as f64);
            self.link_free_at = self.link_free_at.max(now) + serialise;
            leaves = self.link_free_at;
        }
        let mut fate = Fate::Delivered;
        if r_corrupt < cfg.corrupt && !data.is_empty() {
            let i = (r_position % data.len() as u64) as usize;
            data[i] ^= (r_value % 255) as u8 + 1;
            fate = Fate::Corrupted;
        }
        leaves += cfg.delay + cfg.jitter.mul_f64(r_jitter);
        if r_reorder < cfg.reorder {
            leaves += cfg.reorder_delay;
        }
        (fate, leaves)
    }
}

/// A datagram waiting for its release time; ties leave in arrival order.
#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    dir: RelayDir,
    client: usize,
    data: Vec<u8>,
    record: Option<usize>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One socket the relay forwards a client's datagrams from.
struct Mapping {
    socket: UdpSocket,
    /// The client it belongs to; `None` for the one bound at start and
    /// kept for the first client.
    client: Option<usize>,
}

/// One client address and the mapping its datagrams currently leave from.
struct Client {
    addr: SocketAddr,
    mapping: usize,
}

struct Worker {
    poll: Poll,
    client_socket: UdpSocket,
    /// Every mapping so far. Replaced ones stay open so the server's
    /// datagrams to them are read and dropped here rather than answered
    /// with ICMP by the OS. Mapping `i` is `Token(MAPPINGS + i)`.
    mappings: Vec<Mapping>,
    /// The mapping kept for the first client, until it arrives.
    spare: Option<usize>,
    clients: Vec<Client>,
    server: SocketAddr,
    start: Instant,
    lanes: [Lane; 2],
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    /// The last octets of the next `rebind_addr` address, 127.0.0.0 + this.
    next_host: u32,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; 65536];
        loop {
            let timeout =
                self.queue.peek().map(|Reverse(s)| s.at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                return;
            }
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Rebind(how, reply)) => {
                        let _ = reply.send(self.rebind(how));
                    }
                    Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            // Edge-triggered readiness: read each ready socket dry.
            for event in &events {
                match event.token() {
                    CLIENT => self.read_client(&mut buf),
                    WAKER => {}
                    Token(t) => self.read_mapping(t - MAPPINGS, &mut buf),
                }
            }
            self.release();
        }
    }

    /// The mapping that `rebind` replaces: the newest client's, or the
    /// spare while no client has sent.
    fn newest_mapping(&self) -> usize {
        match (self.clients.last(), self.spare) {
            (Some(c), _) => c.mapping,
            (None, Some(spare)) => spare,
            (None, None) => unreachable!("the spare mapping exists until the first client"),
        }
    }

    /// Binds and registers a new mapping on `ip` for `client`.
    fn bind_mapping(&mut self, ip: IpAddr, client: Option<usize>) -> io::Result<usize> {
        let mut socket = UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind a new mapping on {ip} (only Linux routes all of 127/8): {e}"),
            )
        })?;
        let i = self.mappings.len();
        self.poll.registry().register(&mut socket, Token(MAPPINGS + i), Interest::READABLE)?;
        self.mappings.push(Mapping { socket, client });
        Ok(i)
    }

    fn publish_mapping(&self, i: usize) -> io::Result<()> {
        *lock(&self.shared.mapping) = self.mappings[i].socket.local_addr()?;
        Ok(())
    }

    fn rebind(&mut self, how: Rebind) -> io::Result<()> {
        let old = self.newest_mapping();
        let ip = match (how, self.server.ip()) {
            (Rebind::Port, _) => self.mappings[old].socket.local_addr()?.ip(),
            (Rebind::Addr, IpAddr::V6(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "rebind_addr: ::1 is the only IPv6 loopback address, so there is no other \
                     source address to move to; use an IPv4 server for address rebinding",
                ));
            }
            (Rebind::Addr, IpAddr::V4(_)) => {
                let host = self.next_host;
                if host >= 0x00ff_ffff {
                    return Err(io::Error::other("rebind_addr: 127.0.0.0/8 is used up"));
                }
                self.next_host += 1;
                IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | host))
            }
        };
        let client = self.mappings[old].client;
        let new = self.bind_mapping(ip, client)?;
        match client {
            Some(c) => self.clients[c].mapping = new,
            None => self.spare = Some(new),
        }
        self.publish_mapping(new)
    }

    /// The index of the client at `from`, given a mapping if it is new;
    /// `None` past [`MAX_CLIENTS`] or when no mapping can be bound.
    fn client_index(&mut self, from: SocketAddr) -> Option<usize> {
        if let Some(i) = self.clients.iter().rposition(|c| c.addr == from) {
            return Some(i);
        }
        if self.clients.len() >= MAX_CLIENTS {
            return None;
        }
        let index = self.clients.len();
        let mapping = match self.spare.take() {
            Some(spare) => spare,
            None => {
                // A new client's mapping shares the first mapping's address.
                let ip = self.mappings[0].socket.local_addr().ok()?.ip();
                self.bind_mapping(ip, None).ok()?
            }
        };
        self.mappings[mapping].client = Some(index);
        self.clients.push(Client { addr: from, mapping });
        let _ = self.publish_mapping(mapping);
        Some(index)
    }

    fn read_client(&mut self, buf: &mut [u8]) {
        while let Ok((n, from)) = self.client_socket.recv_from(buf) {
            if let Some(client) = self.client_index(from) {
                self.arrive(RelayDir::ToServer, client, &buf[..n]);
            }
        }
    }

    fn read_mapping(&mut self, i: usize, buf: &mut [u8]) {
        let Some(m) = self.mappings.get(i) else { return };
        let client = m.client;
        while let Ok((n, from)) = self.mappings[i].socket.recv_from(buf) {
            let Some(c) = client else { continue };
            if from != self.server {
                continue;
            }
            if self.clients[c].mapping == i {
                self.arrive(RelayDir::ToClient, c, &buf[..n]);
            } else {
                let at = self.start.elapsed();
                let mapping = self.mappings[i].socket.local_addr().ok();
                lock(&self.shared.recorder).push(Record {
                    at,
                    dir: RelayDir::ToClient,
                    data: buf[..n].to_vec(),
                    fate: Fate::Blackholed,
                    client: c,
                    mapping,
                });
            }
        }
    }

    fn arrive(&mut self, dir: RelayDir, client: usize, data: &[u8]) {
        let now = Instant::now();
        let at = now.duration_since(self.start);
        let lane = match dir {
            RelayDir::ToServer => &mut self.lanes[0],
            RelayDir::ToClient => &mut self.lanes[1],
        };
        let mut out = data.to_vec();
        let (fate, leaves) = lane.judge(now, at, &mut out);
        let mapping = self.mappings[self.clients[client].mapping].socket.local_addr().ok();
        let record = lock(&self.shared.recorder).push(Record {
            at,
            dir,
            data: data.to_vec(),
            fate,
            client,
            mapping,
        });
        if matches!(fate, Fate::Delivered | Fate::Corrupted) {
            self.seq += 1;
            self.queue.push(Reverse(Scheduled {
                at: leaves,
                seq: self.seq,
                dir,
                client,
                data: out,
                record,
            }));
        }
    }

    fn release(&mut self) {
        let now = Instant::now();
        while self.queue.peek().is_some_and(|Reverse(s)| s.at <= now) {
            let Some(Reverse(s)) = self.queue.pop() else { break };
            let client = &self.clients[s.client];
            let sent = match s.dir {
                // The client's current mapping, also for datagrams that
                // waited across a rebinding.
                RelayDir::ToServer => {
                    self.mappings[client.mapping].socket.send_to(&s.data, self.server)
                }
                RelayDir::ToClient => self.client_socket.send_to(&s.data, client.addr),
            };
            if sent.is_err()
                && let Some(i) = s.record
            {
                lock(&self.shared.recorder).records[i].fate = Fate::Lost;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(cfg: Direction) -> (Lane, Instant) {
        let start = Instant::now();
        (Lane::new(cfg, 7, 1, start), start)
    }

    #[test]
    fn bandwidth_queue_admits_until_the_backlog_is_full() {
        let (mut lane, t) =
            lane(Direction { bandwidth: Some(1000), queue: 3000, ..Direction::default() });
        let mut data = [0u8; 1000];
        let fates: Vec<_> = (0..5).map(|_| lane.judge(t, Duration::ZERO, &mut data)).collect();
        let s = Duration::from_secs;
        assert_eq!(
            fates,
            [
                (Fate::Delivered, t + s(1)),
                (Fate::Delivered, t + s(2)),
                (Fate::Delivered, t + s(3)),
                (Fate::QueueFull, t),
                (Fate::QueueFull, t),
            ]
        );
        // Two seconds later two datagrams have left: two more fit.
        let later = t + s(2);
        assert_eq!(lane.judge(later, s(2), &mut data), (Fate::Delivered, t + s(4)));
        assert_eq!(lane.judge(later, s(2), &mut data), (Fate::Delivered, t + s(5)));
        assert_eq!(lane.judge(later, s(2), &mut data).0, Fate::QueueFull);
    }

    #[test]
    fn relay_is_shareable_across_threads() {
        // The matrix runner rebinds from another thread while a transfer runs.
        fn shareable<T: Send + Sync>() {}
        shareable::<Relay>();
        shareable::<Record>();
    }

    #[test]
    fn zero_bandwidth_passes_nothing() {
        let (mut lane, t) = lane(Direction { bandwidth: Some(0), ..Direction::default() });
        assert_eq!(lane.judge(t, Duration::ZERO, &mut [1, 2, 3]).0, Fate::QueueFull);
    }

    #[test]
    fn delay_jitter_and_reorder_add_up() {
        let cfg = Direction {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            reorder: 1.0,
            reorder_delay: Duration::from_millis(100),
            ..Direction::default()
        };
        let (mut lane, t) = lane(cfg);
        for _ in 0..100 {
            let (fate, leaves) = lane.judge(t, Duration::ZERO, &mut [0; 10]);
            assert_eq!(fate, Fate::Delivered);
            let d = leaves - t;
            assert!(d >= Duration::from_millis(110) && d <= Duration::from_millis(115), "{d:?}");
        }
    }

    #[test]
    fn corruption_changes_one_byte() {
        let (mut lane, t) = lane(Direction { corrupt: 1.0, ..Direction::default() });
        for _ in 0..200 {
            let mut data = [0x55u8; 20];
            assert_eq!(lane.judge(t, Duration::ZERO, &mut data).0, Fate::Corrupted);
            assert_eq!(data.iter().filter(|&&b| b != 0x55).count(), 1);
        }
        assert_eq!(lane.judge(t, Duration::ZERO, &mut []).0, Fate::Delivered);
    }

    #[test]
    fn gilbert_elliott_loss_rate_is_the_stationary_one() {
        let (mut lane, t) =
            lane(Direction { burst_loss: Some((0.1, 0.4)), ..Direction::default() });
        let lost = (0..100_000)
            .filter(|_| lane.judge(t, Duration::ZERO, &mut [0; 10]).0 == Fate::Lost)
            .count();
        // 0.1 / (0.1 + 0.4) = 20 %.
        assert!((19_000..=21_000).contains(&lost), "{lost}");
    }

    #[test]
    fn loss_runs_stop_at_their_bound() {
        let (mut lane, t) =
            lane(Direction { loss: 0.9, max_loss_run: Some(3), ..Direction::default() });
        let fates: Vec<_> =
            (0..10_000).map(|_| lane.judge(t, Duration::ZERO, &mut [0; 10]).0).collect();
        let longest = fates.split(|f| *f != Fate::Lost).map(<[Fate]>::len).max().unwrap();
        assert_eq!(longest, 3);
        // With the bound, 90 % random loss loses 3 in every 4 or so.
        let lost = fates.iter().filter(|f| **f == Fate::Lost).count();
        assert!((6_800..=7_600).contains(&lost), "{lost}");
    }

    #[test]
    fn recorder_stops_at_its_bounds() {
        let record = |n| Record {
            at: Duration::ZERO,
            dir: RelayDir::ToServer,
            data: vec![0; n],
            fate: Fate::Lost,
            client: 0,
            mapping: None,
        };
        let mut r = Recorder { max_records: 3, max_bytes: 100, ..Recorder::default() };
        assert_eq!(r.push(record(60)), Some(0));
        assert_eq!(r.push(record(50)), None, "past the byte bound");
        assert_eq!(r.push(record(40)), Some(1));
        assert_eq!(r.push(record(0)), Some(2));
        assert_eq!(r.push(record(0)), None, "past the record bound");
        assert_eq!((r.records.len(), r.bytes, r.unrecorded), (3, 100, 2));
    }
}
