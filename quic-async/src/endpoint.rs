//! The endpoint handle: bind, connect, accept.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quic_proto::connection::{ClientConfig, ConnectError, ServerConfig};
use quic_proto::endpoint::{self as proto, EndpointConfig};
use quic_proto::{RandomSource, SeededRandom, SystemRandom};
use quic_udp::UdpSocket;
use quic_udp::trace::Trace;

use crate::connection::{Connecting, Connection};
use crate::shared::{Shared, spawn_driver};

/// A QUIC endpoint on one UDP socket, driven by a task of its own. Cheap
/// to clone; the driver runs until every `Endpoint` handle and every
/// connection is gone.
#[derive(Debug)]
pub struct Endpoint {
    shared: Arc<Shared>,
}

impl Endpoint {
    /// A server on `addr` (also a client: it can `connect`).
    pub fn server(config: ServerConfig, addr: SocketAddr) -> io::Result<Self> {
        Self::with_config(EndpointConfig::default(), Some(config), addr)
    }

    /// A client on `addr` (`0.0.0.0:0` or `[::]:0` for any port).
    pub fn client(addr: SocketAddr) -> io::Result<Self> {
        Self::with_config(EndpointConfig::default(), None, addr)
    }

    /// An endpoint with its own `EndpointConfig` (connection IDs, keys,
    /// limits; see quic-proto), accepting connections if `server` is given.
    /// Its randomness is ChaCha20 keyed by a seed from the OS generator
    /// (see [`Endpoint::with_seed`]).
    pub fn with_config(
        config: EndpointConfig,
        server: Option<ServerConfig>,
        addr: SocketAddr,
    ) -> io::Result<Self> {
        let mut seed = [0; 32];
        SystemRandom.fill(&mut seed);
        Self::with_seed(config, server, addr, seed)
    }

    /// [`Endpoint::with_config`] with the endpoint's randomness keyed by
    /// `seed`: every random draw of the endpoint and its connections
    /// follows from it, and a trace records it ([`Endpoint::set_trace`]).
    /// Build the TLS configurations' provider from the same seed
    /// (`quic_proto::crypto::seeded::endpoint_provider`) for TLS's draws
    /// to follow too. Use an OS-random seed in production.
    pub fn with_seed(
        config: EndpointConfig,
        server: Option<ServerConfig>,
        addr: SocketAddr,
        seed: [u8; 32],
    ) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        let rng: Box<dyn RandomSource> = Box::new(SeededRandom::from_seed(seed));
        let accepting = server.is_some();
        let endpoint = proto::Endpoint::new(config, server, rng);
        let shared = Shared::new(endpoint, socket, accepting, seed)?;
        spawn_driver(shared.clone())?;
        Ok(Self { shared })
    }

    /// The seed of the endpoint's randomness.
    pub fn seed(&self) -> [u8; 32] {
        self.shared.lock().seed
    }

    /// Records every datagram the endpoint receives and sends from now on
    /// in `trace` (pcapng with the TLS secrets, as quic-mio's driver writes
    /// it; docs/traces.md), with the endpoint's seed, the clock's origin
    /// and the driver's wake-ups. Wrap the TLS configurations' key logs
    /// with [`Trace::key_log`] for the trace to decrypt. Such a trace is
    /// for reading (Wireshark, tshark); it does not replay, since the
    /// application acts from its own tasks between wake-ups and that is
    /// not recorded. A write error stops tracing, with a warning.
    pub fn set_trace(&self, trace: Trace) {
        let mut state = self.shared.lock();
        let max_gso = self.shared.socket.get_ref().max_gso_segments();
        state.begin_trace(trace, max_gso);
        state.wake_driver();
    }

    /// Stops recording and hands the trace back, flushed.
    pub fn take_trace(&self) -> Option<Trace> {
        let mut trace = self.shared.lock().trace.take()?;
        if let Err(e) = trace.flush() {
            tracing::warn!(error = %e, "trace could not be written");
        }
        Some(trace)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.socket.get_ref().local_addr()
    }

    /// Starts a connection to `remote` for `server_name`; await the result
    /// for the established connection.
    pub fn connect(
        &self,
        config: &ClientConfig,
        remote: SocketAddr,
        server_name: &str,
    ) -> Result<Connecting, ConnectError> {
        let mut state = self.shared.lock();
        let now = state.now();
        let h = state.endpoint.connect(now, config, server_name, remote)?;
        state.conn(h).refs += 1;
        state.wake_driver();
        drop(state);
        Ok(Connecting::new(Connection::from_parts(self.shared.clone(), h)))
    }

    /// The next connection attempt, to accept, refuse or retry; `None` once
    /// the endpoint takes no new connections (a client endpoint, or after
    /// [`Endpoint::stop_accepting`]).
    pub fn accept(&self) -> Accept<'_> {
        Accept { endpoint: self }
    }

    /// Stops accepting new connections; existing ones go on.
    pub fn stop_accepting(&self) {
        let mut state = self.shared.lock();
        state.endpoint.set_server_config(None);
        state.accepting = false;
        while let Some(i) = state.incoming.pop_front() {
            state.endpoint.refuse(i);
        }
        state.on_incoming.drain(..).for_each(std::task::Waker::wake);
        state.wake_driver();
    }
}

impl Clone for Endpoint {
    fn clone(&self) -> Self {
        self.shared.lock().endpoint_refs += 1;
        Self { shared: self.shared.clone() }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.endpoint_refs -= 1;
        if state.endpoint_refs == 0 {
            while let Some(i) = state.incoming.pop_front() {
                state.endpoint.refuse(i);
            }
            state.on_incoming.drain(..).for_each(std::task::Waker::wake);
        }
        state.wake_driver();
    }
}

/// The future of [`Endpoint::accept`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Accept<'a> {
    endpoint: &'a Endpoint,
}

impl Future for Accept<'_> {
    type Output = Option<Incoming>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        let shared = &self.endpoint.shared;
        let mut state = shared.lock();
        if let Some(inner) = state.incoming.pop_front() {
            return Poll::Ready(Some(Incoming { shared: shared.clone(), inner: Some(inner) }));
        }
        if !state.accepting {
            return Poll::Ready(None);
        }
        state.on_incoming.push(cx.waker().clone());
        Poll::Pending
    }
}

/// A client's connection attempt: accept, refuse or retry it. Dropped
/// undecided, it is refused.
#[derive(Debug)]
pub struct Incoming {
    shared: Arc<Shared>,
    inner: Option<proto::Incoming>,
}

impl Incoming {
    fn inner(&self) -> &proto::Incoming {
        self.inner.as_ref().expect("an Incoming is decided once, consuming it")
    }

    /// The client's address.
    pub fn remote_address(&self) -> SocketAddr {
        self.inner().remote_address()
    }

    /// Whether a token proved the client's address (after a Retry, or from
    /// an earlier connection's NEW_TOKEN).
    pub fn is_address_validated(&self) -> bool {
        self.inner().is_address_validated()
    }

    /// Accepts: await the result for the established connection.
    pub fn accept(mut self) -> Result<Connecting, proto::AcceptError> {
        let inner = self.inner.take().expect("decided once");
        let mut state = self.shared.lock();
        let now = state.now();
        let h = state.endpoint.accept(now, inner);
        state.wake_driver();
        let h = h?;
        state.conn(h).refs += 1;
        drop(state);
        Ok(Connecting::new(Connection::from_parts(self.shared.clone(), h)))
    }

    /// Refuses with CONNECTION_REFUSED.
    pub fn refuse(mut self) {
        let inner = self.inner.take().expect("decided once");
        let mut state = self.shared.lock();
        state.endpoint.refuse(inner);
        state.wake_driver();
    }

    /// Asks the client to prove its address with a Retry; it comes back as
    /// a new `Incoming`. A client that answered a Retry already cannot be
    /// retried again: it is handed back.
    pub fn retry(mut self) -> Result<(), Box<Incoming>> {
        let inner = self.inner.take().expect("decided once");
        let mut state = self.shared.lock();
        let now = state.now();
        let result = state.endpoint.retry(now, inner);
        state.wake_driver();
        drop(state);
        result.map_err(|e| Box::new(Incoming { shared: self.shared.clone(), inner: Some(*e.0) }))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let mut state = self.shared.lock();
            state.endpoint.refuse(inner);
            state.wake_driver();
        }
    }
}
