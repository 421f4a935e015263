//! The transport HTTP/3 runs on, as a small synchronous trait: streams by
//! ID (open, accept, write, finish, reset, read, stop, priority) and
//! connection close. [`QuicTransport`] implements it for a
//! `quic_proto::Connection`; [`memory`] for tests and fuzzing.
//!
//! The trait speaks quic-proto's types (`StreamId`, `Dir`, `VarInt`,
//! `WriteError`, `ReadError`), whose meaning RFC 9000 §2-§3 fixes: any
//! QUIC stack maps onto them.

use quic_proto::connection::{Connection, ReadError, WriteError};
use quic_proto::varint::VarInt;
use quic_proto::{Dir, Instant, Side, StreamId};

pub mod memory;

/// What HTTP/3 needs of a QUIC connection.
pub trait Transport {
    /// Which end of the connection this is.
    fn side(&self) -> Side;
    /// Opens a stream, or `None` while the peer's stream limit is reached.
    fn open(&mut self, dir: Dir) -> Option<StreamId>;
    /// The next stream the peer opened in `dir`, if any.
    fn accept(&mut self, dir: Dir) -> Option<StreamId>;
    /// Writes what fits; `WriteError::Blocked` when nothing does.
    fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError>;
    /// Ends the stream after the data written.
    fn finish(&mut self, id: StreamId) -> Result<(), WriteError>;
    /// Abandons sending (RESET_STREAM with `code`).
    fn reset(&mut self, id: StreamId, code: VarInt) -> Result<(), WriteError>;
    /// Reads in order into `buf`; `Ok(None)` at the end of the stream,
    /// `ReadError::Blocked` when nothing is there yet.
    fn read(&mut self, id: StreamId, buf: &mut [u8]) -> Result<Option<usize>, ReadError>;
    /// Asks the peer to stop sending (STOP_SENDING with `code`).
    fn stop(&mut self, id: StreamId, code: VarInt) -> Result<(), ReadError>;
    /// Sets the stream's send priority: higher first, equal ones shared.
    fn set_priority(&mut self, id: StreamId, priority: i32) -> Result<(), WriteError>;
    /// Closes the connection with an application error code.
    fn close(&mut self, code: VarInt, reason: &[u8]);

    /// Whether [`Transport::qlog_event`] logs anything: the HTTP/3 layer
    /// builds an event's data only when it does. Default: no.
    fn qlog_enabled(&self) -> bool {
        false
    }

    /// Logs the HTTP/3 event `name` (`"http3:frame_created"`) with `data`,
    /// its `data` member as one JSON object, beside the transport's own
    /// events (for QUIC, into the connection's qlog). Default: dropped.
    fn qlog_event(&mut self, name: &'static str, data: &str) {
        let _ = (name, data);
    }
}

/// A `quic_proto::Connection` as a [`Transport`], with the time its
/// commands happen at (closing and qlog events need it).
#[derive(Debug)]
pub struct QuicTransport<'a> {
    /// The connection.
    pub connection: &'a mut Connection,
    /// Now.
    pub now: Instant,
}

impl Transport for QuicTransport<'_> {
    fn side(&self) -> Side {
        self.connection.side()
    }

    fn open(&mut self, dir: Dir) -> Option<StreamId> {
        self.connection.open_stream(dir)
    }

    fn accept(&mut self, dir: Dir) -> Option<StreamId> {
        self.connection.accept_stream(dir)
    }

    fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError> {
        self.connection.write(id, data)
    }

    fn finish(&mut self, id: StreamId) -> Result<(), WriteError> {
        self.connection.finish(id)
    }

    fn reset(&mut self, id: StreamId, code: VarInt) -> Result<(), WriteError> {
        self.connection.reset(id, code)
    }

    fn read(&mut self, id: StreamId, buf: &mut [u8]) -> Result<Option<usize>, ReadError> {
        self.connection.read(id, buf)
    }

    fn stop(&mut self, id: StreamId, code: VarInt) -> Result<(), ReadError> {
        self.connection.stop(id, code)
    }

    fn set_priority(&mut self, id: StreamId, priority: i32) -> Result<(), WriteError> {
        self.connection.set_priority(id, priority)
    }

    fn close(&mut self, code: VarInt, reason: &[u8]) {
        self.connection.close(self.now, code, reason);
    }

    fn qlog_enabled(&self) -> bool {
        self.connection.qlog_enabled()
    }

    fn qlog_event(&mut self, name: &'static str, data: &str) {
        // Refused data (not one JSON object) is a bug of the HTTP/3
        // layer's builders; quic-proto reports it through `tracing`.
        let _ = self.connection.qlog_app_event(self.now, name, data);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use quic_proto::testing::pair::{Pair, seed_from_env};

    use super::*;

    /// The trait over a real connection pair: a request stream both ways,
    /// a unidirectional stream, and a close the peer sees.
    #[test]
    fn quic_transport_drives_a_connection() {
        let mut pair = Pair::new(seed_from_env(11));
        pair.handshake();
        let now = pair.now();
        let mut client = QuicTransport { connection: pair.client(), now };
        assert_eq!(client.side(), Side::Client);
        let bi = client.open(Dir::Bi).unwrap();
        let uni = client.open(Dir::Uni).unwrap();
        assert_eq!(client.write(bi, b"request").unwrap(), 7);
        client.finish(bi).unwrap();
        client.write(uni, b"control").unwrap();
        client.set_priority(bi, 3).unwrap();
        pair.drive_for(Duration::from_millis(100));
        let now = pair.now();
        let mut server = QuicTransport { connection: pair.server(), now };
        assert_eq!(server.accept(Dir::Bi), Some(bi));
        assert_eq!(server.accept(Dir::Uni), Some(uni));
        let mut buf = [0; 16];
        assert_eq!(server.read(bi, &mut buf), Ok(Some(7)));
        assert_eq!(&buf[..7], b"request");
        assert_eq!(server.read(bi, &mut buf), Ok(None));
        assert_eq!(server.read(uni, &mut buf), Ok(Some(7)));
        assert_eq!(server.read(uni, &mut buf), Err(ReadError::Blocked));
        server.write(bi, b"response").unwrap();
        server.reset(bi, VarInt::from_u32(0x10c)).unwrap();
        server.stop(uni, VarInt::from_u32(0x10c)).unwrap();
        server.close(VarInt::from_u32(0x100), b"done");
        pair.drive_for(Duration::from_millis(100));
        assert!(matches!(
            pair.client().error(),
            Some(quic_proto::connection::ConnectionError::ApplicationClosed { code, .. })
                if code.into_inner() == 0x100
        ));
    }
}
