//! Stream handles: `SendStream` (`AsyncWrite`) and `RecvStream`
//! (`AsyncRead`), with zero-copy chunks besides.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_lite::io::{AsyncRead, AsyncWrite};
use quic_proto::StreamId;
use quic_proto::connection::{ReadError, WriteError};
use quic_proto::varint::VarInt;

use crate::connection::Connection;

fn io_error(kind: io::ErrorKind, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(kind, e.to_string())
}

/// The sending half of a stream. Dropped before `finish` or `reset`, it
/// finishes the stream (what was written is delivered).
#[derive(Debug)]
pub struct SendStream {
    conn: Connection,
    id: StreamId,
    done: bool,
}

impl SendStream {
    pub(crate) fn new(conn: Connection, id: StreamId) -> Self {
        Self { conn, id, done: false }
    }

    /// The stream's ID.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Writes what the stream's send buffer takes of `data`: `Ready` with
    /// the count, or `Pending` until acknowledgments free space.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(
            &mut quic_proto::connection::Connection,
            StreamId,
        ) -> Result<usize, WriteError>,
    ) -> Poll<Result<usize, WriteError>> {
        let mut state = self.conn.shared.lock();
        let h = self.conn.handle;
        let Some(conn) = state.endpoint.connection(h) else {
            return Poll::Ready(Err(WriteError::ConnectionLost(state.lost_reason(h))));
        };
        let result = match write(conn, self.id) {
            Ok(0) | Err(WriteError::Blocked) => {
                state.conn(h).writers.insert(self.id, cx.waker().clone());
                return Poll::Pending;
            }
            other => other,
        };
        state.wake_driver();
        Poll::Ready(result)
    }

    /// Writes all of `data` without copying it, waiting for buffer space.
    pub async fn write_chunk(&mut self, mut data: Bytes) -> Result<(), WriteError> {
        while !data.is_empty() {
            let chunk = data.clone();
            let n = poll_fn(|cx| {
                let chunk = chunk.clone();
                self.poll_write_with(cx, move |c, id| c.write_bytes(id, chunk))
            })
            .await?;
            let _ = data.split_to(n);
        }
        Ok(())
    }

    /// Writes all of `data`, waiting for buffer space.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.write_chunk(Bytes::copy_from_slice(data)).await
    }

    /// Ends the stream: the peer reads to the end of what was written.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        self.done = true;
        let id = self.id;
        self.conn.with(|c| c.finish(id)).map_err(WriteError::ConnectionLost)?
    }

    /// Abandons the stream with an application error code (RESET_STREAM).
    pub fn reset(&mut self, code: VarInt) -> Result<(), WriteError> {
        self.done = true;
        let id = self.id;
        self.conn.with(|c| c.reset(id, code)).map_err(WriteError::ConnectionLost)?
    }

    /// Waits until the peer asks the sender to stop (`Some(code)`, from
    /// STOP_SENDING) or everything written was acknowledged (`None`).
    pub async fn stopped(&mut self) -> Result<Option<VarInt>, WriteError> {
        let id = self.id;
        poll_fn(|cx| {
            let mut state = self.conn.shared.lock();
            let h = self.conn.handle;
            let Some(conn) = state.endpoint.connection(h) else {
                return Poll::Ready(Err(WriteError::ConnectionLost(state.lost_reason(h))));
            };
            match conn.write(id, &[]) {
                Err(WriteError::Stopped(code)) => Poll::Ready(Ok(Some(code))),
                Err(WriteError::ClosedStream) => Poll::Ready(Ok(None)),
                Err(e @ WriteError::ConnectionLost(_)) => Poll::Ready(Err(e)),
                _ => {
                    state.conn(h).on_stopped.insert(id, cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl AsyncWrite for SendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.get_mut().poll_write_with(cx, |c, id| c.write(id, buf)).map_err(|e| match e {
            WriteError::Stopped(_) => io_error(io::ErrorKind::BrokenPipe, e),
            WriteError::ConnectionLost(_) => io_error(io::ErrorKind::ConnectionAborted, e),
            _ => io_error(io::ErrorKind::Other, e),
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The driver sends what was written as congestion control allows.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(this.finish().map_err(|e| io_error(io::ErrorKind::Other, e)))
    }
}

impl Drop for SendStream {
    fn drop(&mut self) {
        if !self.done {
            let id = self.id;
            let _ = self.conn.with(|c| c.finish(id));
        }
    }
}

/// Why [`RecvStream::read_to_end`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadToEndError {
    /// The stream ended with an error.
    Read(ReadError),
    /// The stream carried more than the limit.
    TooLong,
}

impl std::fmt::Display for ReadToEndError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(e) => e.fmt(f),
            Self::TooLong => f.write_str("stream longer than the limit"),
        }
    }
}

impl std::error::Error for ReadToEndError {}

/// The receiving half of a stream. Dropped before its end, it asks the
/// peer to stop sending (STOP_SENDING, code 0).
#[derive(Debug)]
pub struct RecvStream {
    conn: Connection,
    id: StreamId,
    done: bool,
}

impl RecvStream {
    pub(crate) fn new(conn: Connection, id: StreamId) -> Self {
        Self { conn, id, done: false }
    }

    /// The stream's ID.
    pub fn id(&self) -> StreamId {
        self.id
    }

    fn poll_read_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        read: impl FnOnce(
            &mut quic_proto::connection::Connection,
            StreamId,
        ) -> Result<Option<T>, ReadError>,
    ) -> Poll<Result<Option<T>, ReadError>> {
        let mut state = self.conn.shared.lock();
        let h = self.conn.handle;
        let Some(conn) = state.endpoint.connection(h) else {
            return Poll::Ready(Err(ReadError::ConnectionLost(state.lost_reason(h))));
        };
        let result = match read(conn, self.id) {
            Err(ReadError::Blocked) => {
                state.conn(h).readers.insert(self.id, cx.waker().clone());
                return Poll::Pending;
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
            ok => ok,
        };
        // Reading frees flow-control credit the driver may now announce.
        state.wake_driver();
        Poll::Ready(result)
    }

    /// The next chunk of the stream, without copying (`None` at its end).
    pub async fn read_chunk(&mut self) -> Result<Option<Bytes>, ReadError> {
        poll_fn(|cx| self.poll_read_with(cx, |c, id| c.read_chunk(id, usize::MAX))).await
    }

    /// The rest of the stream, at most `limit` bytes.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, ReadToEndError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.read_chunk().await.map_err(ReadToEndError::Read)? {
            if out.len() + chunk.len() > limit {
                let _ = self.stop(VarInt::from_u32(0));
                return Err(ReadToEndError::TooLong);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Asks the peer to stop sending (STOP_SENDING with `code`).
    pub fn stop(&mut self, code: VarInt) -> Result<(), ReadError> {
        self.done = true;
        let id = self.id;
        self.conn.with(|c| c.stop(id, code)).map_err(ReadError::ConnectionLost)?
    }
}

impl AsyncRead for RecvStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let polled = self.get_mut().poll_read_with(cx, |c, id| c.read(id, buf));
        polled.map(|r| match r {
            Ok(n) => Ok(n.unwrap_or(0)),
            Err(ReadError::ClosedStream) => Ok(0),
            Err(e @ ReadError::Reset(_)) => Err(io_error(io::ErrorKind::ConnectionReset, e)),
            Err(e) => Err(io_error(io::ErrorKind::ConnectionAborted, e)),
        })
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        if !self.done {
            let id = self.id;
            let _ = self.conn.with(|c| c.stop(id, VarInt::from_u32(0)));
        }
    }
}
