//! An in-memory [`Transport`] pair: two ends whose streams are byte queues,
//! delivered at once and in order, for HTTP/3 tests and fuzzing without a
//! QUIC connection. Stream limits, flow control and loss are not modelled;
//! resets, STOP_SENDING and closes are. Each end keeps the qlog events it
//! is given once [`MemoryTransport::enable_qlog`] is called.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use bytes::Bytes;
use quic_proto::connection::{ConnectionError, ReadError, WriteError};
use quic_proto::varint::VarInt;
use quic_proto::{Dir, Side, StreamId};

use super::Transport;

/// One direction of one stream.
#[derive(Debug, Default)]
struct Flow {
    data: VecDeque<u8>,
    finished: bool,
    /// RESET_STREAM's code, seen by the reader.
    reset: Option<VarInt>,
    /// STOP_SENDING's code, seen by the writer.
    stopped: Option<VarInt>,
    /// The reader read the end (or stopped).
    done: bool,
}

#[derive(Debug, Default)]
struct Shared {
    /// Flows by (sending side, stream).
    flows: BTreeMap<(u8, u64), Flow>,
    /// Streams each side opened and the other has not accepted, per dir.
    unaccepted: [[VecDeque<StreamId>; 2]; 2],
    next: [[u64; 2]; 2],
    /// The application close: code and reason, by the side that closed.
    closed: Option<(Side, VarInt, Vec<u8>)>,
    /// Send priorities set, by (side, stream).
    priorities: BTreeMap<(u8, u64), i32>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

fn dir_index(dir: Dir) -> usize {
    match dir {
        Dir::Bi => 0,
        Dir::Uni => 1,
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    }
}

/// One end of an in-memory connection.
#[derive(Debug, Clone)]
pub struct MemoryTransport {
    side: Side,
    shared: Rc<RefCell<Shared>>,
    /// The qlog events given to this end, once enabled: (name, data).
    qlog: Option<Vec<(String, String)>>,
}

/// A connected client and server.
pub fn pair() -> (MemoryTransport, MemoryTransport) {
    let shared = Rc::new(RefCell::new(Shared::default()));
    (
        MemoryTransport { side: Side::Client, shared: shared.clone(), qlog: None },
        MemoryTransport { side: Side::Server, shared, qlog: None },
    )
}

impl MemoryTransport {
    /// The application close either end made: who, code and reason.
    pub fn closed(&self) -> Option<(Side, VarInt, Vec<u8>)> {
        self.shared.borrow().closed.clone()
    }

    /// Keeps the qlog events given to this end from now on:
    /// [`Transport::qlog_enabled`] turns true.
    pub fn enable_qlog(&mut self) {
        self.qlog.get_or_insert_with(Vec::new);
    }

    /// The qlog events given to this end since [`Self::enable_qlog`], in
    /// order: each event's name and its data as JSON text.
    pub fn qlog_events(&self) -> &[(String, String)] {
        self.qlog.as_deref().unwrap_or_default()
    }

    /// The send priority this end last set on `id`, if any.
    pub fn priority(&self, id: StreamId) -> Option<i32> {
        let key = (side_index(self.side) as u8, id.to_varint().into_inner());
        self.shared.borrow().priorities.get(&key).copied()
    }

    /// Whether the peer stopped this end's sending on `id` (STOP_SENDING),
    /// and with which code.
    pub fn stopped(&self, id: StreamId) -> Option<VarInt> {
        let key = (side_index(self.side) as u8, id.to_varint().into_inner());
        self.shared.borrow().flows.get(&key).and_then(|f| f.stopped)
    }

    /// The side that sends on `id`: either end on a bidirectional stream
    /// (here, the peer), the initiator on a unidirectional one.
    fn sender_to_me(&self, id: StreamId) -> Side {
        if id.dir() == Dir::Bi { other(self.side) } else { id.initiator() }
    }

    /// Whether `id` may carry data from this end.
    fn may_send(&self, id: StreamId) -> bool {
        id.dir() == Dir::Bi || id.initiator() == self.side
    }

    /// Why the connection is gone, as this end sees it.
    fn lost(&self) -> Option<ConnectionError> {
        self.shared.borrow().closed.as_ref().map(|(side, code, reason)| {
            if *side == self.side {
                ConnectionError::LocallyClosed
            } else {
                ConnectionError::ApplicationClosed {
                    code: *code,
                    reason: Bytes::from(reason.clone()),
                }
            }
        })
    }
}

impl Shared {
    /// The flow `sender` writes on `id`.
    fn flow(&mut self, sender: Side, id: StreamId) -> &mut Flow {
        self.flows.entry((side_index(sender) as u8, id.to_varint().into_inner())).or_default()
    }
}

impl Transport for MemoryTransport {
    fn side(&self) -> Side {
        self.side
    }

    fn open(&mut self, dir: Dir) -> Option<StreamId> {
        let mut shared = self.shared.borrow_mut();
        if shared.closed.is_some() {
            return None;
        }
        let next = &mut shared.next[side_index(self.side)][dir_index(dir)];
        let id = StreamId::new(self.side, dir, *next)?;
        *next += 1;
        shared.unaccepted[side_index(self.side)][dir_index(dir)].push_back(id);
        Some(id)
    }

    fn accept(&mut self, dir: Dir) -> Option<StreamId> {
        let mut shared = self.shared.borrow_mut();
        shared.unaccepted[side_index(other(self.side))][dir_index(dir)].pop_front()
    }

    fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError> {
        if let Some(e) = self.lost() {
            return Err(WriteError::ConnectionLost(e));
        }
        if !self.may_send(id) {
            return Err(WriteError::ClosedStream);
        }
        let mut shared = self.shared.borrow_mut();
        let flow = shared.flow(self.side, id);
        if let Some(code) = flow.stopped {
            return Err(WriteError::Stopped(code));
        }
        if flow.finished || flow.reset.is_some() {
            return Err(WriteError::ClosedStream);
        }
        flow.data.extend(data);
        Ok(data.len())
    }

    fn finish(&mut self, id: StreamId) -> Result<(), WriteError> {
        self.write(id, &[])?;
        let mut shared = self.shared.borrow_mut();
        let flow = shared.flow(self.side, id);
        flow.finished = true;
        Ok(())
    }

    fn reset(&mut self, id: StreamId, code: VarInt) -> Result<(), WriteError> {
        if !self.may_send(id) {
            return Err(WriteError::ClosedStream);
        }
        let mut shared = self.shared.borrow_mut();
        let flow = shared.flow(self.side, id);
        if flow.finished || flow.reset.is_some() {
            return Err(WriteError::ClosedStream);
        }
        flow.reset = Some(code);
        flow.data.clear();
        Ok(())
    }

    fn read(&mut self, id: StreamId, buf: &mut [u8]) -> Result<Option<usize>, ReadError> {
        if let Some(e) = self.lost() {
            return Err(ReadError::ConnectionLost(e));
        }
        let sender = self.sender_to_me(id);
        if sender == self.side {
            return Err(ReadError::ClosedStream);
        }
        let mut shared = self.shared.borrow_mut();
        let flow = shared.flow(sender, id);
        if flow.done {
            return Err(ReadError::ClosedStream);
        }
        if let Some(code) = flow.reset {
            flow.done = true;
            return Err(ReadError::Reset(code));
        }
        if flow.data.is_empty() {
            if flow.finished {
                flow.done = true;
                return Ok(None);
            }
            return Err(ReadError::Blocked);
        }
        let n = buf.len().min(flow.data.len());
        for (slot, byte) in buf.iter_mut().zip(flow.data.drain(..n)) {
            *slot = byte;
        }
        Ok(Some(n))
    }

    fn stop(&mut self, id: StreamId, code: VarInt) -> Result<(), ReadError> {
        let sender = self.sender_to_me(id);
        if sender == self.side {
            return Err(ReadError::ClosedStream);
        }
        let mut shared = self.shared.borrow_mut();
        let flow = shared.flow(sender, id);
        flow.stopped = Some(code);
        flow.data.clear();
        flow.done = true;
        Ok(())
    }

    fn set_priority(&mut self, id: StreamId, priority: i32) -> Result<(), WriteError> {
        if !self.may_send(id) {
            return Err(WriteError::ClosedStream);
        }
        let key = (side_index(self.side) as u8, id.to_varint().into_inner());
        self.shared.borrow_mut().priorities.insert(key, priority);
        Ok(())
    }

    fn close(&mut self, code: VarInt, reason: &[u8]) {
        let mut shared = self.shared.borrow_mut();
        if shared.closed.is_none() {
            shared.closed = Some((self.side, code, reason.to_vec()));
        }
    }

    fn qlog_enabled(&self) -> bool {
        self.qlog.is_some()
    }

    fn qlog_event(&mut self, name: &'static str, data: &str) {
        if let Some(events) = &mut self.qlog {
            events.push((name.to_owned(), data.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_carry_bytes_ends_resets_and_stops_both_ways() {
        let (mut client, mut server) = pair();
        let bi = client.open(Dir::Bi).unwrap();
        assert_eq!(bi, StreamId::new(Side::Client, Dir::Bi, 0).unwrap());
        client.write(bi, b"GET").unwrap();
        client.finish(bi).unwrap();
        assert_eq!(server.accept(Dir::Bi), Some(bi));
        assert_eq!(server.accept(Dir::Bi), None);
        let mut buf = [0; 8];
        assert_eq!(server.read(bi, &mut buf), Ok(Some(3)));
        assert_eq!(&buf[..3], b"GET");
        assert_eq!(server.read(bi, &mut buf), Ok(None));
        assert_eq!(server.read(bi, &mut buf), Err(ReadError::ClosedStream));
        assert_eq!(client.read(bi, &mut buf), Err(ReadError::Blocked));
        server.write(bi, b"200").unwrap();
        assert_eq!(client.read(bi, &mut buf), Ok(Some(3)));

        let uni = server.open(Dir::Uni).unwrap();
        assert_eq!(uni.initiator(), Side::Server);
        assert_eq!(client.write(uni, b"x"), Err(WriteError::ClosedStream), "receive-only here");
        server.reset(uni, VarInt::from_u32(7)).unwrap();
        assert_eq!(client.accept(Dir::Uni), Some(uni));
        assert_eq!(client.read(uni, &mut buf), Err(ReadError::Reset(VarInt::from_u32(7))));

        client.stop(bi, VarInt::from_u32(9)).unwrap();
        assert_eq!(server.write(bi, b"more"), Err(WriteError::Stopped(VarInt::from_u32(9))));

        client.close(VarInt::from_u32(0x100), b"bye");
        assert_eq!(server.closed(), Some((Side::Client, VarInt::from_u32(0x100), b"bye".to_vec())));
        assert!(matches!(
            server.read(bi, &mut buf),
            Err(ReadError::ConnectionLost(ConnectionError::ApplicationClosed { .. }))
        ));
        assert_eq!(server.open(Dir::Bi), None);
    }
}
