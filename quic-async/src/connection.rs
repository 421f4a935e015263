//! The connection handle: open and accept streams, close, wait for the end.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use quic_proto::connection::SendDatagramError as ProtoSendDatagramError;
use quic_proto::connection::{ConnectionError, ConnectionStats};
use quic_proto::endpoint::ConnectionHandle;
use quic_proto::varint::VarInt;
use quic_proto::{Dir, StreamId};

use crate::shared::{Shared, State, dir_index};
use crate::streams::{RecvStream, SendStream};

/// An established QUIC connection. Cheap to clone; when the last handle
/// (this, its clones, and its streams) is dropped the connection is closed
/// with application code 0.
#[derive(Debug)]
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
    pub(crate) handle: ConnectionHandle,
}

impl Connection {
    /// Takes over a reference already counted in the state.
    pub(crate) fn from_parts(shared: Arc<Shared>, handle: ConnectionHandle) -> Self {
        Self { shared, handle }
    }

    /// Runs `f` on the connection (under the endpoint's lock) and wakes the
    /// driver to send what it queued; `Err` if the connection is gone.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut quic_proto::connection::Connection) -> T,
    ) -> Result<T, ConnectionError> {
        self.with_proto(|conn, _| f(conn))
    }

    fn open(&self, dir: Dir) -> OpenStream<'_> {
        OpenStream { conn: self, dir }
    }

    /// Opens a bidirectional stream, waiting for the peer's stream limit
    /// to allow it.
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), ConnectionError> {
        let id = self.open(Dir::Bi).await?;
        Ok((SendStream::new(self.clone(), id), RecvStream::new(self.clone(), id)))
    }

    /// Opens a unidirectional stream, waiting for the peer's stream limit.
    pub async fn open_uni(&self) -> Result<SendStream, ConnectionError> {
        let id = self.open(Dir::Uni).await?;
        Ok(SendStream::new(self.clone(), id))
    }

    fn accept(&self, dir: Dir) -> AcceptStream<'_> {
        AcceptStream { conn: self, dir }
    }

    /// The next bidirectional stream the peer opens.
    ///
    /// # Panics
    ///
    /// When an application protocol owns the peer's streams
    /// ([`Connection::stream_events`] was called).
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), ConnectionError> {
        let id = self.accept(Dir::Bi).await?;
        Ok((SendStream::new(self.clone(), id), RecvStream::new(self.clone(), id)))
    }

    /// The next unidirectional stream the peer opens.
    ///
    /// # Panics
    ///
    /// When an application protocol owns the peer's streams
    /// ([`Connection::stream_events`] was called).
    pub async fn accept_uni(&self) -> Result<RecvStream, ConnectionError> {
        let id = self.accept(Dir::Uni).await?;
        Ok(RecvStream::new(self.clone(), id))
    }

    /// Queues an unreliable DATAGRAM frame (RFC 9221); the oldest queued
    /// are dropped if the send queue is full.
    pub fn send_datagram(&self, data: bytes::Bytes) -> Result<(), SendDatagramError> {
        self.with(|c| c.send_datagram(data)).map_err(SendDatagramError::ConnectionLost)??;
        Ok(())
    }

    /// The next DATAGRAM frame's payload from the peer.
    pub fn read_datagram(&self) -> ReadDatagram<'_> {
        ReadDatagram { conn: self }
    }

    /// Closes the connection with an application error code and reason;
    /// pending futures end with `ConnectionError::LocallyClosed`.
    pub fn close(&self, code: VarInt, reason: &[u8]) {
        let mut state = self.shared.lock();
        let now = state.now();
        if let Some(conn) = state.endpoint.connection(self.handle) {
            conn.close(now, code, reason);
        }
        state.wake_driver();
    }

    /// Waits for the connection to end and says why.
    pub fn closed(&self) -> Closed<'_> {
        Closed { conn: self }
    }

    /// Figures: packets, bytes, losses, RTT, congestion window.
    pub fn stats(&self) -> ConnectionStats {
        self.with(|c| c.stats()).unwrap_or_default()
    }

    /// The smoothed round-trip time.
    pub fn rtt(&self) -> Duration {
        self.stats().smoothed_rtt
    }

    /// The ALPN protocol agreed in the handshake.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.with(|c| c.alpn().map(<[u8]>::to_vec)).ok().flatten()
    }

    /// The certificate chain the peer presented, end entity first (DER).
    pub fn peer_certificates(&self) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
        self.with(|c| c.peer_certificates().map(<[_]>::to_vec)).ok().flatten()
    }

    /// The peer's address.
    pub fn remote_address(&self) -> Option<SocketAddr> {
        self.with(|c| c.remote_address()).ok()
    }
}

impl Clone for Connection {
    fn clone(&self) -> Self {
        self.shared.lock().conn(self.handle).refs += 1;
        Self { shared: self.shared.clone(), handle: self.handle }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        release(&mut state, self.handle);
    }
}

/// One handle of connection `h` is gone; the last closes it.
fn release(state: &mut State, h: ConnectionHandle) {
    let c = state.conn(h);
    c.refs -= 1;
    if c.refs > 0 {
        return;
    }
    let drained = c.drained;
    let now = state.now();
    if drained {
        state.conns.remove(&h);
    } else if let Some(conn) = state.endpoint.connection(h)
        && !conn.is_closed()
    {
        conn.close(now, VarInt::from_u32(0), b"");
    }
    state.wake_driver();
}

/// The future of [`crate::Endpoint::connect`] and
/// [`crate::Incoming::accept`]: the connection once its handshake is
/// complete.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Connecting {
    conn: Option<Connection>,
}

impl Connecting {
    pub(crate) fn new(conn: Connection) -> Self {
        Self { conn: Some(conn) }
    }
}

impl Future for Connecting {
    type Output = Result<Connection, ConnectionError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let conn = self.conn.as_ref().expect("polled after completion");
        let mut state = conn.shared.lock();
        let c = state.conn(conn.handle);
        if c.handshake_done {
            drop(state);
            return Poll::Ready(Ok(self.conn.take().expect("checked")));
        }
        if let Some(e) = c.lost.clone() {
            return Poll::Ready(Err(e));
        }
        c.on_handshake.push(cx.waker().clone());
        Poll::Pending
    }
}

struct OpenStream<'a> {
    conn: &'a Connection,
    dir: Dir,
}

impl Future for OpenStream<'_> {
    type Output = Result<StreamId, ConnectionError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.conn.shared.lock();
        let h = self.conn.handle;
        let Some(conn) = state.endpoint.connection(h) else {
            return Poll::Ready(Err(state.lost_reason(h)));
        };
        if let Some(e) = conn.error() {
            return Poll::Ready(Err(e.clone()));
        }
        if let Some(id) = conn.open_stream(self.dir) {
            state.wake_driver();
            return Poll::Ready(Ok(id));
        }
        state.conn(h).on_open[dir_index(self.dir)].push(cx.waker().clone());
        Poll::Pending
    }
}

struct AcceptStream<'a> {
    conn: &'a Connection,
    dir: Dir,
}

impl Future for AcceptStream<'_> {
    type Output = Result<StreamId, ConnectionError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.conn.shared.lock();
        let h = self.conn.handle;
        if state.conn(h).app.is_some() {
            drop(state);
            // Taking a stream here would steal it from the protocol that
            // owns them: a bug in the caller, found at once.
            panic!(
                "accept_bi/accept_uni on a connection whose streams an application protocol \
                 drives (Connection::stream_events was called)"
            );
        }
        let Some(conn) = state.endpoint.connection(h) else {
            return Poll::Ready(Err(state.lost_reason(h)));
        };
        if let Some(id) = conn.accept_stream(self.dir) {
            state.wake_driver();
            return Poll::Ready(Ok(id));
        }
        if let Some(e) = conn.error() {
            return Poll::Ready(Err(e.clone()));
        }
        state.conn(h).on_accept[dir_index(self.dir)].push(cx.waker().clone());
        Poll::Pending
    }
}

/// The future of [`Connection::closed`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Closed<'a> {
    conn: &'a Connection,
}

impl Future for Closed<'_> {
    type Output = ConnectionError;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ConnectionError> {
        let mut state = self.conn.shared.lock();
        let c = state.conn(self.conn.handle);
        if let Some(e) = c.lost.clone() {
            return Poll::Ready(e);
        }
        c.on_closed.push(cx.waker().clone());
        Poll::Pending
    }
}

/// The future of [`Connection::read_datagram`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct ReadDatagram<'a> {
    conn: &'a Connection,
}

impl Future for ReadDatagram<'_> {
    type Output = Result<bytes::Bytes, ConnectionError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.conn.shared.lock();
        let h = self.conn.handle;
        let Some(conn) = state.endpoint.connection(h) else {
            return Poll::Ready(Err(state.lost_reason(h)));
        };
        if let Some(d) = conn.read_datagram() {
            return Poll::Ready(Ok(d));
        }
        if let Some(e) = conn.error() {
            return Poll::Ready(Err(e.clone()));
        }
        state.conn(h).on_datagram.push(cx.waker().clone());
        Poll::Pending
    }
}

/// Why [`Connection::send_datagram`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendDatagramError {
    /// quic-proto refused it: the peer does not take DATAGRAM frames, or
    /// it is too large.
    Refused(ProtoSendDatagramError),
    /// The connection is gone.
    ConnectionLost(ConnectionError),
}

impl From<ProtoSendDatagramError> for SendDatagramError {
    fn from(e: ProtoSendDatagramError) -> Self {
        Self::Refused(e)
    }
}

impl std::fmt::Display for SendDatagramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(e) => e.fmt(f),
            Self::ConnectionLost(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendDatagramError {}
