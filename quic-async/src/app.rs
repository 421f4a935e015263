//! Sans-I/O application protocols on a quic-async connection: run a
//! protocol state machine (HTTP/3 from h3-proto, or any other that speaks
//! quic-proto's stream calls) on the `quic_proto::connection::Connection`
//! itself, woken by its stream events, while the driver keeps doing the
//! I/O and the timers.
//!
//! Two calls make it: [`Connection::with_proto`] runs a closure on the
//! sans-I/O connection (reading, writing, opening and accepting streams
//! by ID), and [`Connection::stream_events`] hands over the connection's
//! stream events ([`StreamEvents::next`]) to feed the protocol with.
//!
//! Who owns which stream is stated once, on [`Connection::stream_events`]:
//! from its first call the peer's streams are the protocol's to accept.

use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

use quic_proto::connection::{ConnectionError, StreamEvent};
use quic_proto::{Dir, Instant};

use crate::connection::Connection;
use crate::shared::AppEvents;

impl Connection {
    /// Runs `f` on the sans-I/O connection, with the current time, under
    /// the endpoint's lock, then wakes the driver so that what `f` queued
    /// (stream data, flow-control credit, a close) is sent. `Err` when the
    /// connection is gone (its state was dropped after the close).
    ///
    /// `f` runs while the driver waits: keep it to a bounded amount of
    /// work (handling one batch of events), and never await or call back
    /// into this endpoint's handles inside it: the lock is not reentrant.
    /// The closure's time is for quic-proto calls that take one (`close`,
    /// qlog events); h3-proto's `QuicTransport` wants it.
    ///
    /// ```no_run
    /// # async fn demo(conn: quic_async::Connection) -> Result<(), quic_proto::connection::ConnectionError> {
    /// let id = conn.with_proto(|c, _now| {
    ///     let id = c.open_stream(quic_proto::Dir::Uni)?;
    ///     c.write(id, b"hello").ok()?;
    ///     c.finish(id).ok()?;
    ///     Some(id)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn with_proto<R>(
        &self,
        f: impl FnOnce(&mut quic_proto::connection::Connection, Instant) -> R,
    ) -> Result<R, ConnectionError> {
        let mut state = self.shared.lock();
        let now = state.now();
        let out = match state.endpoint.connection(self.handle) {
            Some(conn) => Ok(f(conn, now)),
            None => Err(state.lost_reason(self.handle)),
        };
        state.wake_driver();
        out
    }

    /// Hands this connection's stream events to an application protocol
    /// from now on, and the streams the peer opens with them.
    ///
    /// Who owns which stream: from the first call on, the streams the peer
    /// opens belong to the application protocol. It accepts them with
    /// `accept_stream` inside [`Connection::with_proto`], and
    /// [`Connection::accept_bi`]/[`Connection::accept_uni`] must not be
    /// called any more (they panic): whoever calls `accept_stream` first
    /// gets a stream, so two acceptors would split the peer's streams
    /// between them at random. Streams this end opens belong to whoever
    /// opened them: the protocol (`open_stream` inside `with_proto`), or a
    /// [`SendStream`](crate::SendStream)/[`RecvStream`](crate::RecvStream)
    /// pair from `open_bi`/`open_uni`, which keeps working. The protocol
    /// receives the events of every stream, its own and the others, and
    /// ignores the ones it does not know (as h3-proto does). The switch is
    /// one way; streams accepted before it stay with their objects.
    ///
    /// Call it before driving any stream through `with_proto`: events from
    /// before the first call are not kept. The first batch starts with
    /// `Opened(Bi)` and `Opened(Uni)`, so that streams the peer opened
    /// before are accepted like later ones. Keep one handle per
    /// connection: a second one shares the same events, each batch going
    /// to whichever asks first.
    pub fn stream_events(&self) -> StreamEvents {
        let mut state = self.shared.lock();
        let c = state.conn(self.handle);
        if c.app.is_none() {
            let mut app = AppEvents::default();
            app.push(StreamEvent::Opened(Dir::Bi));
            app.push(StreamEvent::Opened(Dir::Uni));
            c.app = Some(app);
            // A pending accept wakes to find the streams are not its own.
            c.on_accept.iter_mut().flat_map(|l| l.drain(..)).for_each(Waker::wake);
        }
        drop(state);
        StreamEvents { conn: self.clone() }
    }
}

/// A connection's stream events, for an application protocol that drives
/// the streams itself; from [`Connection::stream_events`]. It holds a
/// handle of the connection (which stays open while it exists).
#[derive(Debug)]
pub struct StreamEvents {
    conn: Connection,
}

impl StreamEvents {
    /// The stream events since the last call, oldest first, each once;
    /// waits while there are none. Feed them to the protocol inside one
    /// [`Connection::with_proto`] (h3-proto: `handle_stream_event`). `Err`
    /// once the connection has ended and every event before the end was
    /// taken.
    pub async fn next(&mut self) -> Result<Vec<StreamEvent>, ConnectionError> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`StreamEvents::next`] as a poll function, for hand-written futures:
    /// `Pending` registers `cx`'s waker (only the latest one is kept).
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Vec<StreamEvent>, ConnectionError>> {
        let mut state = self.conn.shared.lock();
        let c = state.conn(self.conn.handle);
        let lost = c.lost.clone();
        let app = c.app.as_mut().expect("a StreamEvents exists only once `app` is set");
        if !app.is_empty() {
            return Poll::Ready(Ok(app.take()));
        }
        if let Some(e) = lost {
            return Poll::Ready(Err(e));
        }
        app.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The connection the events are of.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
