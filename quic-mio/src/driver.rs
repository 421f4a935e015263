//! Drives one [`Endpoint`] on one [`UdpSocket`] from a mio event loop the
//! application owns (docs/embedding.md).
//!
//! The driver follows the driving contract (docs/architecture.md) with the
//! order DESIGN.md gives adapters: wait with the deadline from
//! `poll_timeout`, read a bounded batch of datagrams (GRO where the kernel
//! has it), `handle_timeout`, drain events to the application, then drain
//! transmits, batching equal-sized datagrams to one destination into a
//! single GSO send, and keeping one pending transmit on `WouldBlock` until
//! the socket is writable again.
//!
//! ```no_run
//! # use quic_mio::{Driver, DriverEvent};
//! # fn main() -> std::io::Result<()> {
//! let mut poll = mio::Poll::new()?;
//! let mut driver = Driver::bind("[::]:0".parse().unwrap(), Default::default(), None)?;
//! driver.register(poll.registry(), mio::Token(0))?;
//! let mut events = mio::Events::with_capacity(64);
//! loop {
//!     poll.poll(&mut events, driver.timeout(driver.now()))?;
//!     let now = driver.now();
//!     for event in events.iter() {
//!         driver.handle_mio_event(now, event);
//!     }
//!     driver.process(now, |endpoint, event| {
//!         // React to DriverEvent::Connection(handle, event) through `endpoint`.
//!         let _ = (endpoint, event);
//!     });
//! }
//! # }
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use quic_proto::connection::{
    ClientConfig, ConnectError, Connection, DatagramMeta, Event, ServerConfig, Transmit,
};
use quic_proto::endpoint::{ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Incoming};
use quic_proto::{Instant, RandomSource, SeededRandom, SystemRandom};

use crate::socket::trace::{Direction, InputRecord, Trace};

pub mod replay;
use crate::socket::{Gatherer, RECV_BUF_SIZE, SendCounts, UdpSocket};
pub use replay::{Replay, ReplayReport};

/// Receive calls per wake-up. Each may return a GRO batch of up to 64
/// datagrams; the bound keeps one busy socket from starving the rest of the
/// application's event loop (the driver then asks for a zero timeout).
pub const READ_BATCH: usize = 32;

/// Rounds of "events, then transmits" per `process` call.
const PROCESS_ROUNDS: usize = 8;

/// What the driver does with a new client's connection attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncomingPolicy {
    /// Accept every attempt (the default).
    #[default]
    Accept,
    /// Validate the client's address with a Retry first (RFC 9000 §8.1.2),
    /// then accept.
    Retry,
    /// Refuse every attempt (CONNECTION_REFUSED).
    Refuse,
    /// Hand each attempt to the application as [`DriverEvent::Incoming`]
    /// to accept, refuse, retry or ignore through the endpoint.
    Manual,
}

/// What the driver hands the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum DriverEvent {
    /// A connection attempt, under [`IncomingPolicy::Manual`]: decide with
    /// `Endpoint::accept`, `refuse`, `retry` or `ignore`.
    Incoming(Incoming),
    /// The driver accepted a connection; its events follow.
    Accepted(ConnectionHandle),
    /// An event of one connection.
    Connection(ConnectionHandle, Event),
}

/// Counts of what the driver did, for tools and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Receive calls that returned data (fewer than datagrams with GRO).
    pub receive_calls: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Send calls that sent data (fewer than datagrams with GSO).
    pub send_calls: u64,
    /// Datagrams dropped because the socket refused them.
    pub send_errors: u64,
    /// Sends that found the socket's buffer full (`WouldBlock`): the
    /// transmit waited for the socket to become writable.
    pub send_blocked: u64,
}

/// A transmit the socket could not take yet.
#[derive(Debug)]
struct Blocked {
    transmit: Transmit,
    data: Vec<u8>,
    /// Bytes of `data` already sent (a multiple of the segment size).
    offset: usize,
}

/// One endpoint on one socket, driven from the application's mio loop.
#[derive(Debug)]
pub struct Driver {
    endpoint: Endpoint,
    socket: UdpSocket,
    epoch: std::time::Instant,
    policy: IncomingPolicy,
    recv_buf: Vec<u8>,
    /// Gathers polled transmits into GSO batches (shared with quic-async).
    gather: Gatherer,
    /// The one transmit kept while the socket says `WouldBlock`.
    blocked: Option<Blocked>,
    /// Events for the application not from `Endpoint::poll_event`.
    events: VecDeque<DriverEvent>,
    /// The last read stopped at `READ_BATCH`, not at `WouldBlock`: mio's
    /// edge-triggered readiness will not fire again for what is queued.
    read_backlog: bool,
    /// `process` stopped with events possibly left in the endpoint.
    events_pending: bool,
    stats: DriverStats,
    /// Where every datagram in and out is recorded, if anywhere.
    trace: Option<Trace>,
    /// The seed of the endpoint's randomness, if the driver made it.
    seed: Option<[u8; 32]>,
    /// The GSO limit last written to the trace.
    traced_gso: Option<usize>,
    /// The trace this driver replays instead of using its socket.
    replay: Option<Replay>,
}

impl Driver {
    /// A driver for `endpoint` on `socket`. Its clock's epoch is now.
    pub fn new(socket: UdpSocket, endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            socket,
            epoch: std::time::Instant::now(),
            policy: IncomingPolicy::default(),
            recv_buf: vec![0; RECV_BUF_SIZE],
            gather: Gatherer::new(),
            blocked: None,
            events: VecDeque::new(),
            read_backlog: false,
            events_pending: false,
            stats: DriverStats::default(),
            trace: None,
            seed: None,
            traced_gso: None,
            replay: None,
        }
    }

    /// Binds a socket to `addr` (see [`UdpSocket::bind`]) and creates an
    /// endpoint on it whose randomness is ChaCha20 keyed by a seed from the
    /// OS generator ([`SystemRandom`]), which a trace records (see
    /// [`Driver::with_seed`]). With a `server` configuration it accepts
    /// connections (see [`Driver::set_incoming_policy`]).
    pub fn bind(
        addr: SocketAddr,
        config: EndpointConfig,
        server: Option<ServerConfig>,
    ) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        Ok(Self::with_seed(socket, config, server, os_seed()))
    }

    /// A driver on `socket` with a new endpoint whose randomness is a
    /// [`SeededRandom`] keyed by `seed`: every random draw of the endpoint
    /// and its connections follows from the seed, which
    /// [`Driver::set_trace`] records. Use a seed from [`os_seed`] in
    /// production; a fixed one only where predictability is the point
    /// (tests, replay).
    pub fn with_seed(
        socket: UdpSocket,
        config: EndpointConfig,
        server: Option<ServerConfig>,
        seed: [u8; 32],
    ) -> Self {
        let endpoint = Endpoint::new(config, server, Box::new(SeededRandom::from_seed(seed)));
        let mut driver = Self::new(socket, endpoint);
        driver.seed = Some(seed);
        driver
    }

    /// A driver that replays `replay` (see [`replay`]): a new endpoint
    /// seeded with the trace's seed, whose inbound datagrams are the
    /// trace's and whose outbound ones are compared with the trace's. Its
    /// clock reads the trace's times and [`Driver::timeout`] is always
    /// zero. It binds a socket on 127.0.0.1 for the application to
    /// register, which never carries anything.
    pub fn replay(
        replay: Replay,
        config: EndpointConfig,
        server: Option<ServerConfig>,
    ) -> io::Result<Self> {
        let seed = replay.inputs().seed.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "the trace has no endpoint seed")
        })?;
        let socket = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0).into())?;
        let mut driver = Self::with_seed(socket, config, server, seed);
        driver.replay = Some(replay);
        Ok(driver)
    }

    /// The replay this driver runs, if it replays a trace.
    pub fn replaying(&self) -> Option<&Replay> {
        self.replay.as_ref()
    }

    /// Registers the socket with the application's registry under `token`,
    /// for readable and writable readiness. Pass each readiness event for
    /// `token` to [`Driver::handle_mio_event`].
    pub fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    /// Removes the socket from `registry`.
    pub fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut self.socket)
    }

    /// The current time on the driver's clock, as the core counts it.
    pub fn now(&self) -> Instant {
        if let Some(replay) = &self.replay {
            return replay.now();
        }
        crate::instant_since(self.epoch)
    }

    /// Records every datagram the driver receives and sends from now on in
    /// `trace` (pcapng, docs/traces.md), one record per datagram (GSO
    /// batches and GRO buffers split), timed by the driver clock the core
    /// sees. For the trace to decrypt, wrap the key log of the TLS
    /// configurations in use with [`Trace::key_log`] before connecting or
    /// accepting. A trace that fails to write is dropped with a warning;
    /// the connections carry on.
    ///
    /// The trace starts with the inputs replay needs besides the datagrams
    /// that the driver knows: its clock's origin and, for an endpoint the
    /// driver made ([`Driver::bind`], [`Driver::with_seed`]), the seed of
    /// its randomness. The seed yields the endpoint's stateless reset and
    /// token keys: guard a trace like a key log.
    pub fn set_trace(&mut self, mut trace: Trace) {
        let gso = self.socket.max_gso_segments();
        self.traced_gso = Some(gso);
        let mut inputs: Vec<InputRecord> =
            self.seed.map(InputRecord::EndpointSeed).into_iter().collect();
        inputs.push(InputRecord::GsoSegments(gso.min(usize::from(u16::MAX)) as u16));
        let result = trace.begin(self.now(), &inputs);
        self.trace = Some(trace);
        self.trace_written(result);
    }

    /// The seed of the endpoint's randomness, when the driver made the
    /// endpoint; `None` for one given to [`Driver::new`].
    pub fn seed(&self) -> Option<[u8; 32]> {
        self.seed
    }

    /// Stops recording and hands the trace back (flushed).
    pub fn take_trace(&mut self) -> Option<Trace> {
        let mut trace = self.trace.take()?;
        if let Err(e) = trace.flush() {
            tracing::warn!(error = %e, "trace could not be written");
        }
        Some(trace)
    }

    /// Chooses what happens to new clients' connection attempts.
    pub fn set_incoming_policy(&mut self, policy: IncomingPolicy) {
        self.policy = policy;
    }

    /// The endpoint, for application commands. After them, call
    /// [`Driver::flush`] (or [`Driver::process`]) so that what they queued
    /// is sent before the loop waits again.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The connection behind `handle`, for application commands (see
    /// [`Driver::endpoint`]); `None` once it has drained.
    pub fn connection(&mut self, handle: ConnectionHandle) -> Option<&mut Connection> {
        self.endpoint.connection(handle)
    }

    /// Starts a client connection; see `Endpoint::connect`.
    pub fn connect(
        &mut self,
        now: Instant,
        config: &ClientConfig,
        server_name: &str,
        remote: SocketAddr,
    ) -> Result<ConnectionHandle, ConnectError> {
        let handle = self.endpoint.connect(now, config, server_name, remote)?;
        self.flush(now);
        Ok(handle)
    }

    /// The socket.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr()
    }

    /// What the driver has done so far.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// How long the application's loop may wait before calling
    /// [`Driver::process`]: zero while received datagrams or events are
    /// waiting, otherwise until the endpoint's next deadline; `None`: no
    /// deadline (wait for readiness only).
    pub fn timeout(&mut self, now: Instant) -> Option<Duration> {
        if self.replay.is_some() {
            return Some(Duration::ZERO);
        }
        if self.read_backlog || self.events_pending || !self.events.is_empty() {
            return Some(Duration::ZERO);
        }
        self.endpoint.poll_timeout().map(|t| t.saturating_duration_since(now))
    }

    /// Takes one mio readiness event for the driver's token: reads the
    /// socket when readable. Then call [`Driver::process`] (once, after all
    /// of the wake-up's events).
    pub fn handle_mio_event(&mut self, now: Instant, event: &mio::event::Event) {
        if event.is_readable() {
            self.read(now);
        }
    }

    /// Readable socket: reads a batch of datagrams, then [`Driver::process`].
    pub fn on_readable(&mut self, now: Instant, handler: impl FnMut(&mut Endpoint, DriverEvent)) {
        self.read(now);
        self.process(now, handler);
    }

    /// Writable socket: [`Driver::process`], which retries a blocked send.
    pub fn on_writable(&mut self, now: Instant, handler: impl FnMut(&mut Endpoint, DriverEvent)) {
        self.process(now, handler);
    }

    /// The wait ended without readiness: [`Driver::process`].
    pub fn on_timeout(&mut self, now: Instant, handler: impl FnMut(&mut Endpoint, DriverEvent)) {
        self.process(now, handler);
    }

    /// Runs the endpoint's due timers, hands every event to `handler` (which
    /// may act on the endpoint: read, write, accept, close), then sends
    /// everything there is to send. Call after each wake-up.
    pub fn process(&mut self, now: Instant, mut handler: impl FnMut(&mut Endpoint, DriverEvent)) {
        if let Some(replay) = &self.replay {
            // The datagrams the original read for this wake-up, then the
            // wake-up itself; nothing if the trace has no wake-up here.
            let Some(inbound) = replay.wakeup(now) else { return };
            for (read_at, meta, data) in inbound {
                self.stats.datagrams_received += 1;
                let data = BytesMut::from(&data[..]);
                let event = self.endpoint.handle_datagram(read_at, meta, data);
                if let Some(DatagramEvent::Incoming(incoming)) = event {
                    self.on_incoming(read_at, incoming);
                }
            }
        } else {
            // The last read stopped at its batch limit with datagrams still
            // queued: mio is edge-triggered, so no readiness event will say
            // so again. Read on here (the zero `timeout` brought us back), or
            // a busy socket would be read one batch per new arrival while
            // the loop spins on empty polls.
            if self.read_backlog {
                self.read(now);
            }
            // After the reads: every datagram recorded before it was handed
            // over before the timers ran (replay feeds them in that order).
            self.record_input(InputRecord::Wakeup(now.as_nanos()));
        }
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        // Polling transmits can surface events (the endpoint collects a
        // connection's events when it finds nothing more to send), and
        // handling events can queue transmits: go round until both are
        // drained, boundedly; `timeout` says zero if the bound was hit.
        self.events_pending = true;
        for _ in 0..PROCESS_ROUNDS {
            let mut handled = false;
            while let Some(event) = self.events.pop_front() {
                handler(&mut self.endpoint, event);
                handled = true;
            }
            while let Some((handle, event)) = self.endpoint.poll_event() {
                handler(&mut self.endpoint, DriverEvent::Connection(handle, event));
                handled = true;
            }
            self.send(now);
            if !handled {
                self.events_pending = false;
                break;
            }
        }
        // Once per wake-up: a reader, or a process killed later, sees
        // everything up to here.
        if let Some(trace) = &mut self.trace {
            let result = trace.flush();
            self.trace_written(result);
        }
    }

    /// Writes one of replay's inputs into the trace, if tracing.
    fn record_input(&mut self, record: InputRecord) {
        if let Some(trace) = &mut self.trace {
            let result = trace.record_inputs(&[record]);
            self.trace_written(result);
        }
    }

    /// A trace write's outcome: on failure, stop tracing.
    fn trace_written(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "trace could not be written; tracing stops");
            self.trace = None;
        }
    }

    /// Reads up to [`READ_BATCH`] receive calls' worth of datagrams into
    /// the endpoint. New connection attempts are decided by the policy.
    pub fn read(&mut self, now: Instant) {
        self.read_backlog = false;
        if self.replay.is_some() {
            // Replay hands the recorded datagrams over in `process`.
            return;
        }
        for _ in 0..READ_BATCH {
            let meta = match self.socket.recv(&mut self.recv_buf) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // ICMP errors (ECONNREFUSED and the like) surface here;
                    // they say nothing QUIC relies on.
                    tracing::debug!(error = %e, "receive error ignored");
                    continue;
                }
            };
            self.stats.receive_calls += 1;
            let len = meta.len.min(self.recv_buf.len());
            let stride = meta.stride.max(1);
            let mut start = 0;
            while start < len {
                let end = (start + stride).min(len);
                let data = BytesMut::from(&self.recv_buf[start..end]);
                self.stats.datagrams_received += 1;
                let dmeta =
                    DatagramMeta { remote: meta.remote, local_ip: meta.local_ip, ecn: meta.ecn };
                let event = self.endpoint.handle_datagram(now, dmeta, data);
                // Recorded after the core has seen it, so that the secrets
                // it yielded (the handshake keys a ServerHello brings) are
                // written first and decrypt the rest of the datagram.
                if let Some(trace) = &mut self.trace {
                    let local = self.socket.local_addr();
                    let local = SocketAddr::new(meta.local_ip.unwrap_or(local.ip()), local.port());
                    let datagram = &self.recv_buf[start..end];
                    let result = trace.record(
                        now,
                        Direction::Inbound,
                        local,
                        meta.remote,
                        meta.ecn,
                        datagram,
                    );
                    self.trace_written(result);
                }
                start = end;
                if let Some(DatagramEvent::Incoming(incoming)) = event {
                    self.on_incoming(now, incoming);
                }
            }
        }
        self.read_backlog = true;
    }

    fn on_incoming(&mut self, now: Instant, incoming: Incoming) {
        let incoming = match self.policy {
            IncomingPolicy::Manual => {
                self.events.push_back(DriverEvent::Incoming(incoming));
                return;
            }
            IncomingPolicy::Refuse => {
                self.endpoint.refuse(incoming);
                return;
            }
            IncomingPolicy::Retry if !incoming.is_address_validated() => {
                match self.endpoint.retry(now, incoming) {
                    Ok(()) => return,
                    Err(e) => *e.0,
                }
            }
            IncomingPolicy::Retry | IncomingPolicy::Accept => incoming,
        };
        match self.endpoint.accept(now, incoming) {
            Ok(handle) => self.events.push_back(DriverEvent::Accepted(handle)),
            Err(e) => tracing::debug!(error = %e, "connection attempt not accepted"),
        }
    }

    /// Sends everything the endpoint has to send, batching runs of
    /// equal-sized datagrams to one destination into GSO sends. Stops at
    /// `WouldBlock`, keeping that transmit to retry on the next call (the
    /// socket's writable readiness is the cue).
    pub fn flush(&mut self, now: Instant) {
        if let Some(replay) = &self.replay
            && !replay.flush(now)
        {
            return;
        }
        self.record_input(InputRecord::Flush(now.as_nanos()));
        self.send(now);
    }

    /// [`Driver::flush`]'s work, without marking an application call in
    /// the trace.
    fn send(&mut self, now: Instant) {
        if let Some(blocked) = self.blocked.take()
            && !self.send_blocked(blocked)
        {
            self.record_input(InputRecord::SendBlocked(now.as_nanos()));
            return;
        }
        let max_segments = match &self.replay {
            Some(replay) => replay.gso_segments(),
            None => {
                let gso = self.socket.max_gso_segments();
                if self.trace.is_some() && self.traced_gso != Some(gso) {
                    self.traced_gso = Some(gso);
                    let gso = gso.min(usize::from(u16::MAX)) as u16;
                    self.record_input(InputRecord::GsoSegments(gso));
                }
                gso
            }
        };
        loop {
            let endpoint = &mut self.endpoint;
            let Some((transmit, data)) =
                self.gather.next(max_segments, |buf| endpoint.poll_transmit(now, buf))
            else {
                if let Some(replay) = &self.replay {
                    replay.drained();
                }
                return;
            };
            // Recorded when the core produced it: a blocked batch is sent
            // later, but is what the core said at `now`.
            self.record_transmit(now, &transmit, &data);
            let blocked = Blocked { transmit, data, offset: 0 };
            if !self.send_blocked(blocked) {
                self.record_input(InputRecord::SendBlocked(now.as_nanos()));
                return;
            }
        }
    }

    /// Records each datagram of a (GSO) batch in the trace.
    fn record_transmit(&mut self, now: Instant, transmit: &Transmit, data: &[u8]) {
        let data = &data[..transmit.size.min(data.len())];
        let segment = transmit.segment_size.unwrap_or(data.len()).max(1);
        if let Some(replay) = &self.replay {
            for datagram in data.chunks(segment) {
                replay.outbound(datagram, transmit.destination);
            }
            return;
        }
        let Some(trace) = &mut self.trace else { return };
        let local = self.socket.local_addr();
        let local = SocketAddr::new(transmit.src_ip.unwrap_or(local.ip()), local.port());
        let mut result = Ok(());
        for datagram in data.chunks(segment) {
            result = trace.record(
                now,
                Direction::Outbound,
                local,
                transmit.destination,
                transmit.ecn,
                datagram,
            );
            if result.is_err() {
                break;
            }
        }
        self.trace_written(result);
    }

    /// Sends `b`'s remaining bytes; false if the socket blocked (then `b`
    /// is kept in `self.blocked`). Reuses `b`'s buffer as the next batch.
    fn send_blocked(&mut self, mut b: Blocked) -> bool {
        if let Some(replay) = &self.replay {
            if replay.send_blocks() {
                self.stats.send_blocked += 1;
                self.blocked = Some(b);
                return false;
            }
            let segment = b.transmit.segment_size.unwrap_or(b.data.len()).max(1);
            self.stats.send_calls += 1;
            self.stats.datagrams_sent +=
                b.data.len().saturating_sub(b.offset).div_ceil(segment) as u64;
            self.gather.recycle(b.data);
            return true;
        }
        let mut counts = SendCounts::default();
        let result = self.socket.send_batch(&b.transmit, &b.data, &mut b.offset, &mut counts);
        self.stats.send_calls += counts.calls;
        self.stats.datagrams_sent += counts.datagrams;
        self.stats.send_errors += counts.errors;
        if result.is_err() {
            // WouldBlock: kept for the socket's writable readiness.
            self.stats.send_blocked += 1;
            self.blocked = Some(b);
            return false;
        }
        self.gather.recycle(b.data);
        true
    }

    /// Whether a transmit is waiting for the socket to become writable.
    pub fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    /// The endpoint and the socket, taking the driver apart.
    pub fn into_parts(self) -> (Endpoint, UdpSocket) {
        (self.endpoint, self.socket)
    }
}

/// 32 bytes from the OS generator: a seed for [`Driver::with_seed`].
pub fn os_seed() -> [u8; 32] {
    let mut seed = [0; 32];
    SystemRandom.fill(&mut seed);
    seed
}

#[cfg(test)]
mod tests;
