//! The state an endpoint's handles and its driver share, and the driver:
//! one task per endpoint that owns the socket, feeds the sans-I/O
//! `quic_proto::Endpoint`, sends what it produces, and wakes exactly the
//! futures its events concern.
//!
//! Handles lock the state briefly to issue a command, then wake the driver
//! so that what the command queued is sent. The driver does a bounded
//! amount of work per poll and wakes itself if more is waiting, so it never
//! holds its executor thread for long.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_io::{Async, Timer};
use bytes::BytesMut;
use quic_proto::connection::{ConnectionError, DatagramMeta, Event, StreamEvent, Transmit};
use quic_proto::endpoint::{ConnectionHandle, DatagramEvent, Endpoint, Incoming};
use quic_proto::{Dir, Instant, StreamId};
use quic_udp::trace::{Direction, InputRecord, Trace};
use quic_udp::{Gatherer, SendCounts, UdpSocket};

/// Receive calls per driver poll before it yields.
const READ_BATCH: usize = 32;
/// GSO batches sent per driver poll before it yields.
const SEND_BATCH: usize = 64;
/// Connection attempts held for `Endpoint::accept` (the endpoint bounds
/// them too; this bounds an application that never accepts).
const MAX_PENDING_INCOMING: usize = 256;

/// Futures waiting on one connection, and what they wait for.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Handles (`Connection` and streams) alive; at zero the connection is
    /// closed with code 0.
    pub(crate) refs: usize,
    pub(crate) handshake_done: bool,
    pub(crate) lost: Option<ConnectionError>,
    pub(crate) drained: bool,
    pub(crate) on_handshake: Vec<Waker>,
    pub(crate) on_closed: Vec<Waker>,
    pub(crate) on_open: [Vec<Waker>; 2],
    pub(crate) on_accept: [Vec<Waker>; 2],
    pub(crate) on_datagram: Vec<Waker>,
    pub(crate) readers: HashMap<StreamId, Waker>,
    pub(crate) writers: HashMap<StreamId, Waker>,
    pub(crate) on_stopped: HashMap<StreamId, Waker>,
    /// Set once an application protocol drives the streams itself
    /// (`Connection::stream_events`): every stream event is also kept
    /// here for it, and the peer's streams are its to accept.
    pub(crate) app: Option<AppEvents>,
}

impl ConnState {
    fn wake_all(&mut self) {
        let streams =
            self.readers.drain().chain(self.writers.drain()).chain(self.on_stopped.drain());
        for (_, w) in streams {
            w.wake();
        }
        let [open_bi, open_uni] = &mut self.on_open;
        let [accept_bi, accept_uni] = &mut self.on_accept;
        let lists = [
            &mut self.on_handshake,
            &mut self.on_closed,
            &mut self.on_datagram,
            open_bi,
            open_uni,
            accept_bi,
            accept_uni,
        ];
        for list in lists {
            for w in list.drain(..) {
                w.wake();
            }
        }
        if let Some(w) = self.app.as_mut().and_then(|a| a.waker.take()) {
            w.wake();
        }
    }

    /// Wakes the futures a stream event concerns.
    fn on_stream_event(&mut self, event: StreamEvent) {
        if let Some(app) = &mut self.app {
            app.push(event);
        }
        match event {
            StreamEvent::Readable(id) => {
                if let Some(w) = self.readers.remove(&id) {
                    w.wake();
                }
            }
            StreamEvent::Writable(id) => {
                if let Some(w) = self.writers.remove(&id) {
                    w.wake();
                }
            }
            StreamEvent::Finished(id) => {
                if let Some(w) = self.on_stopped.remove(&id) {
                    w.wake();
                }
            }
            StreamEvent::Stopped(id, _) => {
                if let Some(w) = self.writers.remove(&id) {
                    w.wake();
                }
                if let Some(w) = self.on_stopped.remove(&id) {
                    w.wake();
                }
            }
            // The application protocol accepts the peer's streams; no
            // `accept_bi`/`accept_uni` waits then.
            StreamEvent::Opened(dir) if self.app.is_none() => {
                self.on_accept[dir_index(dir)].drain(..).for_each(Waker::wake);
            }
            StreamEvent::Available(dir) => {
                self.on_open[dir_index(dir)].drain(..).for_each(Waker::wake);
            }
            _ => {}
        }
    }
}

/// The stream events an application protocol has not taken yet, each
/// kept once: the same event again before it is taken adds nothing, so
/// the queue is bounded by the number of streams, not by the peer's
/// traffic (and the peer opens no more streams than the protocol makes
/// room for by finishing with earlier ones).
#[derive(Debug, Default)]
pub(crate) struct AppEvents {
    queue: VecDeque<StreamEvent>,
    queued: HashSet<StreamEvent>,
    /// The `StreamEvents` handle waiting for the queue to fill.
    pub(crate) waker: Option<Waker>,
}

impl AppEvents {
    pub(crate) fn push(&mut self, event: StreamEvent) {
        if self.queued.insert(event) {
            self.queue.push_back(event);
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Everything queued, oldest first.
    pub(crate) fn take(&mut self) -> Vec<StreamEvent> {
        self.queued.clear();
        self.queue.drain(..).collect()
    }
}

pub(crate) fn dir_index(dir: Dir) -> usize {
    match dir {
        Dir::Bi => 0,
        Dir::Uni => 1,
    }
}

/// Everything behind the endpoint's lock.
pub(crate) struct State {
    pub(crate) endpoint: Endpoint,
    pub(crate) conns: HashMap<ConnectionHandle, ConnState>,
    pub(crate) incoming: VecDeque<Incoming>,
    pub(crate) on_incoming: Vec<Waker>,
    /// Whether the endpoint takes new connections (it has a server
    /// configuration and `stop_accepting` was not called).
    pub(crate) accepting: bool,
    /// `Endpoint` handles alive; the driver stops once they and every
    /// connection are gone.
    pub(crate) endpoint_refs: usize,
    driver: Option<Waker>,
    epoch: std::time::Instant,
    /// The seed of the endpoint's randomness.
    pub(crate) seed: [u8; 32],
    /// Where datagrams in and out are recorded, if anywhere.
    pub(crate) trace: Option<Trace>,
}

impl State {
    pub(crate) fn now(&self) -> Instant {
        quic_udp::instant_since(self.epoch)
    }

    pub(crate) fn begin_trace(&mut self, mut trace: Trace, max_gso: usize) {
        let inputs = [
            InputRecord::EndpointSeed(self.seed),
            InputRecord::GsoSegments(max_gso.min(usize::from(u16::MAX)) as u16),
        ];
        let result = trace.begin(self.now(), &inputs);
        self.trace = Some(trace);
        self.traced(result);
    }

    /// A trace write's outcome: on failure, stop tracing.
    fn traced(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "trace could not be written; tracing stops");
            self.trace = None;
        }
    }

    fn trace_input(&mut self, record: InputRecord) {
        if let Some(trace) = &mut self.trace {
            let result = trace.record_inputs(&[record]);
            self.traced(result);
        }
    }

    /// Records one datagram (a GSO batch is split by the caller).
    fn trace_datagram(
        &mut self,
        now: Instant,
        direction: Direction,
        local: SocketAddr,
        remote: SocketAddr,
        ecn: Option<quic_proto::connection::EcnCodepoint>,
        datagram: &[u8],
    ) {
        if let Some(trace) = &mut self.trace {
            let result = trace.record(now, direction, local, remote, ecn, datagram);
            self.traced(result);
        }
    }

    /// After a command: the driver has something to send or a new deadline.
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }

    pub(crate) fn conn(&mut self, h: ConnectionHandle) -> &mut ConnState {
        self.conns.entry(h).or_default()
    }

    /// Why commands on connection `h` fail now that it is gone or closing.
    pub(crate) fn lost_reason(&self, h: ConnectionHandle) -> ConnectionError {
        self.conns.get(&h).and_then(|c| c.lost.clone()).unwrap_or(ConnectionError::LocallyClosed)
    }

    fn on_event(&mut self, h: ConnectionHandle, event: Event) {
        let c = self.conns.entry(h).or_default();
        match event {
            Event::HandshakeCompleted => {
                c.handshake_done = true;
                c.on_handshake.drain(..).for_each(Waker::wake);
            }
            Event::Stream(e) => c.on_stream_event(e),
            Event::DatagramReceived => c.on_datagram.drain(..).for_each(Waker::wake),
            Event::ConnectionLost(e) => {
                c.lost = Some(e);
                c.wake_all();
            }
            Event::Drained => {
                c.drained = true;
                if c.lost.is_none() {
                    c.lost = Some(ConnectionError::LocallyClosed);
                }
                c.wake_all();
                if c.refs == 0 {
                    self.conns.remove(&h);
                }
            }
            _ => {}
        }
    }
}

/// The endpoint's shared state and socket.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) socket: Async<UdpSocket>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("local", &self.socket.get_ref().local_addr()).finish()
    }
}

impl Shared {
    pub(crate) fn new(
        endpoint: Endpoint,
        socket: UdpSocket,
        accepting: bool,
        seed: [u8; 32],
    ) -> io::Result<Arc<Self>> {
        let state = State {
            endpoint,
            conns: HashMap::new(),
            incoming: VecDeque::new(),
            on_incoming: Vec::new(),
            accepting,
            endpoint_refs: 1,
            driver: None,
            epoch: std::time::Instant::now(),
            seed,
            trace: None,
        };
        Ok(Arc::new(Self { state: Mutex::new(state), socket: Async::new(socket)? }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as consistent as
        // quic-proto's own calls leave it: carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the driver of `shared` on a thread of its own: it runs under any
/// executor (async-std, smol, or none), and a busy endpoint never starves
/// the application's tasks.
pub(crate) fn spawn_driver(shared: Arc<Shared>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("quic-async driver".into())
        .spawn(move || async_io::block_on(Driver::new(shared)))
        .map(drop)
}

/// A batch the socket refused with `WouldBlock` part way, kept to retry.
struct Pending {
    transmit: Transmit,
    data: Vec<u8>,
    offset: usize,
}

struct Driver {
    shared: Arc<Shared>,
    timer: Timer,
    deadline: Option<Instant>,
    recv_buf: Vec<u8>,
    /// GSO batches from the endpoint's transmits (quic-udp, as quic-mio).
    gather: Gatherer,
    pending: Option<Pending>,
}

impl Driver {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            timer: Timer::never(),
            deadline: None,
            recv_buf: vec![0; quic_udp::RECV_BUF_SIZE],
            gather: Gatherer::new(),
            pending: None,
        }
    }

    /// Reads up to `READ_BATCH` receive calls into the endpoint; whether
    /// the socket may hold more.
    fn read(&mut self, state: &mut State) -> bool {
        for _ in 0..READ_BATCH {
            let meta = match self.shared.socket.get_ref().recv(&mut self.recv_buf) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    tracing::debug!(error = %e, "receive error ignored");
                    continue;
                }
            };
            let now = state.now();
            let len = meta.len.min(self.recv_buf.len());
            let bound = self.shared.socket.get_ref().local_addr();
            for d in meta.datagrams(&self.recv_buf[..len]) {
                let dmeta =
                    DatagramMeta { remote: meta.remote, local_ip: meta.local_ip, ecn: meta.ecn };
                let event = state.endpoint.handle_datagram(now, dmeta, BytesMut::from(d));
                // After the core saw it: the secrets it yielded come first.
                let local = SocketAddr::new(meta.local_ip.unwrap_or(bound.ip()), bound.port());
                state.trace_datagram(now, Direction::Inbound, local, meta.remote, meta.ecn, d);
                if let Some(DatagramEvent::Incoming(incoming)) = event {
                    if state.incoming.len() < MAX_PENDING_INCOMING && state.endpoint_refs > 0 {
                        state.incoming.push_back(incoming);
                        state.on_incoming.drain(..).for_each(Waker::wake);
                    } else {
                        state.endpoint.refuse(incoming);
                    }
                }
            }
        }
        true
    }

    /// Sends up to `SEND_BATCH` GSO batches; `Ok(true)` if more may wait,
    /// `Err(())` when the socket blocked (the rest of the batch is kept).
    fn send(&mut self, state: &mut State) -> Result<bool, ()> {
        if let Some(p) = self.pending.take() {
            self.send_one(p)?;
        }
        let socket = self.shared.socket.get_ref();
        let max_segments = socket.max_gso_segments();
        for _ in 0..SEND_BATCH {
            let now = state.now();
            let endpoint = &mut state.endpoint;
            let Some((transmit, data)) =
                self.gather.next(max_segments, |buf| endpoint.poll_transmit(now, buf))
            else {
                return Ok(false);
            };
            if state.trace.is_some() {
                let bound = self.shared.socket.get_ref().local_addr();
                let local = SocketAddr::new(transmit.src_ip.unwrap_or(bound.ip()), bound.port());
                let data = &data[..transmit.size.min(data.len())];
                let segment = transmit.segment_size.unwrap_or(data.len()).max(1);
                for datagram in data.chunks(segment) {
                    let (to, ecn) = (transmit.destination, transmit.ecn);
                    state.trace_datagram(now, Direction::Outbound, local, to, ecn, datagram);
                }
            }
            if let Err(()) = self.send_one(Pending { transmit, data, offset: 0 }) {
                state.trace_input(InputRecord::SendBlocked(now.as_nanos()));
                return Err(());
            }
        }
        Ok(true)
    }

    fn send_one(&mut self, mut p: Pending) -> Result<(), ()> {
        let mut counts = SendCounts::default();
        let socket = self.shared.socket.get_ref();
        if socket.send_batch(&p.transmit, &p.data, &mut p.offset, &mut counts).is_err() {
            // WouldBlock: the rest goes when the socket is writable.
            self.pending = Some(p);
            return Err(());
        }
        self.gather.recycle(p.data);
        Ok(())
    }

    fn dispatch_events(state: &mut State) {
        while let Some((h, event)) = state.endpoint.poll_event() {
            state.on_event(h, event);
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        let mut state = shared.lock();
        state.driver = Some(cx.waker().clone());
        let mut more = this.read(&mut state);
        let now = state.now();
        state.trace_input(InputRecord::Wakeup(now.as_nanos()));
        if state.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            state.endpoint.handle_timeout(now);
        }
        Driver::dispatch_events(&mut state);
        match this.send(&mut state) {
            Ok(m) => more |= m,
            Err(()) => {
                // Woken when the socket can take more.
                let _ = shared.socket.poll_writable(cx);
            }
        }
        Driver::dispatch_events(&mut state);
        // Once per wake-up: a reader sees everything up to here.
        if let Some(trace) = &mut state.trace {
            let result = trace.flush();
            state.traced(result);
        }
        if state.endpoint_refs == 0 && state.endpoint.connection_count() == 0 {
            return Poll::Ready(());
        }
        let deadline = state.endpoint.poll_timeout();
        let epoch = state.epoch;
        drop(state);
        if more {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // Nothing left to read: ask to be woken when datagrams arrive.
        if let Poll::Ready(Ok(())) = shared.socket.poll_readable(cx) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if deadline != this.deadline {
            this.deadline = deadline;
            match deadline {
                Some(t) => this.timer.set_at(epoch + Duration::from_nanos(t.as_nanos())),
                None => this.timer = Timer::never(),
            }
        }
        if this.deadline.is_some() && Pin::new(&mut this.timer).poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
