//! The connection's streams (RFC 9000 §2-§4): opening and accepting,
//! application reads and writes, stream and connection flow control, and
//! the stream frames a peer sends.

use core::ops::Range;
use std::collections::VecDeque;

use crate::hash::{self, Map as HashMap, Set as HashSet};
use crate::random::RandomSource;
use bytes::{BufMut, Bytes};

use super::types::{ReadError, StreamEvent, WriteError};
use crate::error::TransportError;
use crate::frame::{FrameType, StreamHeader};
use crate::stream_id::{Dir, Side, StreamId};
use crate::streams::flow_control::{RecvWindow, SendCredit, StreamLimits};
use crate::streams::rate::TokenBucket;
use crate::streams::recv::RecvBuffer;
use crate::streams::send::{BufferWriteError, SendBuffer};
use crate::streams::state::{
    RecvState, SendState, check_frame_direction, check_local_stream_opened,
};
use crate::time::Instant;
use crate::transport_params::TransportParameters;
use crate::varint::VarInt;

pub(crate) struct SendStream {
    buf: SendBuffer,
    state: SendState,
    credit: SendCredit,
    priority: i32,
    /// STOP_SENDING received with this code.
    stopped: Option<VarInt>,
    /// RESET_STREAM to send (code, final size).
    reset_pending: Option<(VarInt, u64)>,
}

impl SendStream {
    /// Whether the application wrote data never sent and may still send it.
    fn has_new_data(&self) -> bool {
        self.buf.unsent() > 0 && !self.buf.is_reset() && self.stopped.is_none()
    }
}

pub(crate) struct RecvStream {
    buf: RecvBuffer,
    state: RecvState,
    window: RecvWindow,
    /// RESET_STREAM received with this code.
    reset: Option<VarInt>,
    /// STOP_SENDING to send with this code.
    stop_pending: Option<VarInt>,
}

/// Limits and windows this endpoint applies, from its configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamConfig {
    pub(crate) stream_window: VarInt,
    pub(crate) max_stream_window: u64,
    pub(crate) send_buffer: usize,
    pub(crate) max_fragments: usize,
}

/// A stream side opening or closing, kept for qlog's stream_state_updated
/// (the draft's base states) while qlog is on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamStateChange {
    pub(crate) id: StreamId,
    pub(crate) sending: bool,
    pub(crate) open: bool,
    /// Caused by this endpoint (open, read to the end, reset acknowledged)
    /// rather than by the peer (its stream, its reset).
    pub(crate) local: bool,
}

pub(crate) struct Streams {
    side: Side,
    config: StreamConfig,
    send: HashMap<StreamId, SendStream>,
    recv: HashMap<StreamId, RecvStream>,
    /// Bidirectional and unidirectional stream counts and limits.
    limits: [StreamLimits; 2],
    /// Next peer-initiated stream index to hand to `accept`, per direction.
    next_accept: [u64; 2],
    /// Peer's initial per-stream limits, once known (for streams we open,
    /// and for peer-opened bidirectional streams' send side).
    peer_params: Option<TransportParameters>,
    /// Streams with something to send (data, FIN, RESET_STREAM), in
    /// round-robin order; priority picks among them.
    send_queue: VecDeque<StreamId>,
    /// Streams whose MAX_STREAM_DATA or STOP_SENDING must be sent.
    pub(crate) pending_max_stream_data: HashSet<StreamId>,
    pub(crate) pending_stop: HashSet<StreamId>,
    pub(crate) pending_max_streams: [bool; 2],
    /// Connection-level flow control.
    pub(crate) conn_send: SendCredit,
    pub(crate) conn_recv: RecvWindow,
    pub(crate) pending_max_data: bool,
    /// A DATA_BLOCKED frame may be due: connection credit ran out with data
    /// waiting (checked again when the frame is written).
    pending_data_blocked: bool,
    /// Streams whose STREAM_DATA_BLOCKED may be due, in ID order so that a
    /// recorded run replays byte for byte.
    pending_stream_blocked: std::collections::BTreeSet<StreamId>,
    /// A STREAMS_BLOCKED frame may be due, per direction (bidi, uni).
    pending_streams_blocked: [bool; 2],
    /// Streams whose last write was refused or cut short, waiting for a
    /// `Writable` event. A subset of `send`'s keys (an entry leaves with its
    /// stream), so bounded by the open streams; in ID order so that a
    /// recorded run replays byte for byte.
    write_blocked: std::collections::BTreeSet<StreamId>,
    /// Events for the application, each at most once in the queue.
    events: VecDeque<StreamEvent>,
    queued_events: hash::Set<StreamEvent>,
    /// Stream aborts by the peer (RESET_STREAM, STOP_SENDING) still
    /// allowed: see `on_abort`.
    abort_limit: TokenBucket,
    /// Stream side changes for qlog; `None` (and no cost) while qlog is off.
    pub(crate) state_log: Option<Vec<StreamStateChange>>,
}

const fn dir_index(dir: Dir) -> usize {
    match dir {
        Dir::Bi => 0,
        Dir::Uni => 1,
    }
}

impl Streams {
    pub(crate) fn new(
        side: Side,
        config: StreamConfig,
        local: &TransportParameters,
        conn_window: VarInt,
        max_conn_window: u64,
        abort_limit: TokenBucket,
        rng: &mut dyn RandomSource,
    ) -> Self {
        let max_conn = VarInt::saturating_from_u64(max_conn_window);
        let mut streams = Self {
            side,
            config,
            send: hash::map(rng),
            recv: hash::map(rng),
            limits: [
                StreamLimits::new(local.initial_max_streams_bidi),
                StreamLimits::new(local.initial_max_streams_uni),
            ],
            next_accept: [0; 2],
            peer_params: None,
            send_queue: VecDeque::new(),
            pending_max_stream_data: hash::set(rng),
            pending_stop: hash::set(rng),
            pending_max_streams: [false; 2],
            conn_send: SendCredit::new(VarInt::ZERO),
            conn_recv: RecvWindow::new(conn_window, max_conn),
            pending_max_data: false,
            pending_data_blocked: false,
            pending_stream_blocked: std::collections::BTreeSet::new(),
            pending_streams_blocked: [false; 2],
            write_blocked: std::collections::BTreeSet::new(),
            events: VecDeque::new(),
            queued_events: hash::Set::with_hasher(hash::KeyedState::default()),
            abort_limit,
            state_log: None,
        };
        // Keyed like the other sets (stream IDs are the peer's choice),
        // without drawing more randomness: seeded runs replay as before.
        streams.queued_events = hash::Set::with_hasher(streams.pending_stop.hasher().clone());
        streams
    }

    /// Queues `event` unless the same one already waits: a peer that sends
    /// a thousand one-byte STREAM frames between two polls makes one
    /// `Readable`, so the queue holds at most one event per kind and
    /// stream whatever the peer does.
    fn push_event(&mut self, event: StreamEvent) {
        if self.queued_events.insert(event) {
            self.events.push_back(event);
        }
    }

    /// The next event for the application.
    pub(crate) fn poll_event(&mut self) -> Option<StreamEvent> {
        let event = self.events.pop_front()?;
        self.queued_events.remove(&event);
        Some(event)
    }

    /// Events waiting for the application.
    #[cfg(test)]
    pub(crate) fn queued_events(&self) -> usize {
        self.events.len()
    }

    fn log_state(&mut self, id: StreamId, sending: bool, open: bool, local: bool) {
        if let Some(log) = &mut self.state_log {
            log.push(StreamStateChange { id, sending, open, local });
        }
    }

    /// The peer's transport parameters arrived: its flow control and stream limits apply.
    pub(crate) fn on_peer_params(
        &mut self,
        params: &TransportParameters,
    ) -> Result<(), TransportError> {
        self.conn_send.on_max_update(params.initial_max_data);
        self.limits[0].on_max_streams(params.initial_max_streams_bidi)?;
        self.limits[1].on_max_streams(params.initial_max_streams_uni)?;
        self.peer_params = Some(params.clone());
        Ok(())
    }

    /// The peer's initial limit for data we send on stream `id`.
    fn peer_stream_limit(&self, id: StreamId) -> VarInt {
        let Some(p) = &self.peer_params else { return VarInt::ZERO };
        match (id.dir(), id.initiator() == self.side) {
            // Our bidi stream: the peer's limit for streams we open is its bidi_remote.
            (Dir::Bi, true) => p.initial_max_stream_data_bidi_remote,
            (Dir::Bi, false) => p.initial_max_stream_data_bidi_local,
            (Dir::Uni, _) => p.initial_max_stream_data_uni,
        }
    }

    fn new_send(&self, id: StreamId) -> SendStream {
        SendStream {
            buf: SendBuffer::new(self.config.send_buffer as u64),
            state: SendState::Ready,
            credit: SendCredit::new(self.peer_stream_limit(id)),
            priority: 0,
            stopped: None,
            reset_pending: None,
        }
    }

    fn new_recv(&self) -> RecvStream {
        RecvStream {
            buf: RecvBuffer::with_limits(
                self.config.max_fragments,
                self.config.max_stream_window.max(self.config.stream_window.into_inner()),
            ),
            state: RecvState::Recv,
            window: RecvWindow::new(
                self.config.stream_window,
                VarInt::saturating_from_u64(self.config.max_stream_window),
            ),
            reset: None,
            stop_pending: None,
        }
    }

    /// Opens a stream of `dir`, or `None` if the peer's limit is reached
    /// (a `StreamEvent::Available` follows when it rises).
    pub(crate) fn open(&mut self, dir: Dir) -> Option<StreamId> {
        let Some(index) = self.limits[dir_index(dir)].open() else {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
            //# An endpoint that is unable to open a new stream due to the peer's limits SHOULD
            //# send a STREAMS_BLOCKED frame ({{frame-streams-blocked}}).
            if self.limits[dir_index(dir)].blocked_unreported().is_some() {
                self.pending_streams_blocked[dir_index(dir)] = true;
            }
            return None;
        };
        let id = StreamId::new(self.side, dir, index)?;
        let send = self.new_send(id);
        self.send.insert(id, send);
        self.log_state(id, true, true, true);
        if dir == Dir::Bi {
            let recv = self.new_recv();
            self.recv.insert(id, recv);
            self.log_state(id, false, true, true);
        }
        Some(id)
    }

    /// The next stream of `dir` the peer opened, if any.
    pub(crate) fn accept(&mut self, dir: Dir) -> Option<StreamId> {
        let i = dir_index(dir);
        if self.next_accept[i] >= self.limits[i].remote_opened() {
            return None;
        }
        let id = StreamId::new(!self.side, dir, self.next_accept[i])?;
        self.next_accept[i] += 1;
        Some(id)
    }

    /// Creates the state of peer-initiated streams up to and including `id`
    /// (RFC 9000 §3.2: opening a stream implicitly opens lower-numbered ones).
    fn ensure_peer_stream(&mut self, id: StreamId) -> Result<(), TransportError> {
        let i = dir_index(id.dir());
        let opened = self.limits[i].on_peer_opened(id.index())?;
        if opened.is_empty() {
            return Ok(());
        }
        for index in opened {
            let Some(sid) = StreamId::new(id.initiator(), id.dir(), index) else { continue };
            let recv = self.new_recv();
            self.recv.insert(sid, recv);
            self.log_state(sid, false, true, false);
            if id.dir() == Dir::Bi {
                let send = self.new_send(sid);
                self.send.insert(sid, send);
                self.log_state(sid, true, true, false);
            }
        }
        self.push_event(StreamEvent::Opened(id.dir()));
        Ok(())
    }

    /// Checks that a frame about `id` may arrive, opening peer streams as
    /// needed. Returns `false` for a stream that existed and is now closed
    /// (the frame is ignored).
    fn check_frame(&mut self, id: StreamId, frame_type: FrameType) -> Result<bool, TransportError> {
        check_frame_direction(id, self.side, frame_type)?;
        if id.initiator() == self.side {
            let opened = self.limits[dir_index(id.dir())].local_opened();
            check_local_stream_opened(id, self.side, frame_type, opened)?;
            return Ok(true);
        }
        self.ensure_peer_stream(id)?;
        Ok(true)
    }

    // ----- application side -----

    pub(crate) fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, WriteError> {
        let len = data.len();
        self.write_with(id, len, |buf| buf.write(data))
    }

    pub(crate) fn write_bytes(&mut self, id: StreamId, data: Bytes) -> Result<usize, WriteError> {
        let len = data.len();
        self.write_with(id, len, |buf| buf.write_bytes(data))
    }

    /// Writes `len` bytes through `write`. A write refused or cut short by
    /// a full send buffer puts the stream in `write_blocked`: one
    /// `Writable` follows once acknowledgements free space.
    fn write_with(
        &mut self,
        id: StreamId,
        len: usize,
        write: impl FnOnce(&mut SendBuffer) -> Result<usize, BufferWriteError>,
    ) -> Result<usize, WriteError> {
        let stream = self.send.get_mut(&id).ok_or(WriteError::ClosedStream)?;
        if let Some(code) = stream.stopped {
            return Err(WriteError::Stopped(code));
        }
        if stream.buf.is_finished() || stream.buf.is_reset() {
            return Err(WriteError::ClosedStream);
        }
        if len == 0 {
            // Nothing to wait for: an empty write must not leave the
            // application waiting for a `Writable` that has no cause.
            return Ok(0);
        }
        match write(&mut stream.buf) {
            Ok(n) if n > 0 => {
                // A write taken whole means the writer is not waiting
                // (even if it was, and retried before being told).
                if n < len {
                    self.write_blocked.insert(id);
                } else {
                    self.write_blocked.remove(&id);
                }
                if !self.send_queue.contains(&id) {
                    self.send_queue.push_back(id);
                }
                self.note_blocked(id);
                Ok(n)
            }
            Ok(_) | Err(BufferWriteError::Blocked) => {
                self.write_blocked.insert(id);
                Err(WriteError::Blocked)
            }
            Err(_) => Err(WriteError::ClosedStream),
        }
    }

    /// Sends the one `Writable` a blocked writer of stream `id` waits for,
    /// if a write would now be accepted.
    fn wake_writer(&mut self, id: StreamId) {
        if !self.write_blocked.contains(&id) {
            return;
        }
        let Some(stream) = self.send.get(&id) else {
            self.write_blocked.remove(&id);
            return;
        };
        if stream.buf.room() > 0 && stream.stopped.is_none() {
            self.write_blocked.remove(&id);
            self.push_event(StreamEvent::Writable(id));
        }
    }

    pub(crate) fn finish(&mut self, id: StreamId) -> Result<(), WriteError> {
        let stream = self.send.get_mut(&id).ok_or(WriteError::ClosedStream)?;
        if let Some(code) = stream.stopped {
            return Err(WriteError::Stopped(code));
        }
        if stream.buf.is_finished() || stream.buf.is_reset() {
            return Err(WriteError::ClosedStream);
        }
        stream.buf.finish();
        // No write follows a finish, so nothing waits for `Writable`.
        self.write_blocked.remove(&id);
        if !self.send_queue.contains(&id) {
            self.send_queue.push_back(id);
        }
        Ok(())
    }

    pub(crate) fn reset(&mut self, id: StreamId, code: VarInt) -> Result<(), WriteError> {
        let stream = self.send.get_mut(&id).ok_or(WriteError::ClosedStream)?;
        if !stream.state.may_send_reset() || stream.buf.is_reset() {
            return Err(WriteError::ClosedStream);
        }
        let final_size = stream.buf.reset();
        stream.reset_pending = Some((code, final_size));
        self.write_blocked.remove(&id);
        if !self.send_queue.contains(&id) {
            self.send_queue.push_back(id);
        }
        Ok(())
    }

    pub(crate) fn stop(&mut self, id: StreamId, code: VarInt) -> Result<(), ReadError> {
        let stream = self.recv.get_mut(&id).ok_or(ReadError::ClosedStream)?;
        if !stream.state.may_send_stop_sending() {
            return Err(ReadError::ClosedStream);
        }
        let released = stream.buf.stop();
        stream.stop_pending = Some(code);
        self.pending_stop.insert(id);
        self.conn_recv.on_data_consumed(released);
        Ok(())
    }

    pub(crate) fn set_priority(&mut self, id: StreamId, priority: i32) -> Result<(), WriteError> {
        self.send.get_mut(&id).ok_or(WriteError::ClosedStream)?.priority = priority;
        Ok(())
    }

    /// Reads through `take`, which returns what it read and how many bytes
    /// that consumed, or `None` if nothing is readable now. `Ok(None)`: the
    /// stream ended (everything up to the FIN was read). Consumed bytes
    /// return flow-control credit.
    pub(crate) fn read_with<T>(
        &mut self,
        id: StreamId,
        now: Instant,
        srtt: core::time::Duration,
        take: impl FnOnce(&mut RecvBuffer) -> Option<(T, usize)>,
    ) -> Result<Option<T>, ReadError> {
        let stream = self.recv.get_mut(&id).ok_or(ReadError::ClosedStream)?;
        if let Some(code) = stream.reset {
            stream.state.on_reset_read();
            self.recv.remove(&id);
            self.log_state(id, false, false, false);
            self.on_recv_closed(id);
            return Err(ReadError::Reset(code));
        }
        let Some((value, n)) = take(&mut stream.buf) else {
            if stream.buf.is_finished() {
                stream.state.on_all_data_read();
                self.recv.remove(&id);
                self.log_state(id, false, false, true);
                self.on_recv_closed(id);
                return Ok(None);
            }
            return Err(ReadError::Blocked);
        };
        stream.window.on_data_consumed(n as u64);
        if !stream.buf.is_all_received() && stream.window.poll_update(now, srtt).is_some() {
            self.pending_max_stream_data.insert(id);
        }
        self.conn_recv.on_data_consumed(n as u64);
        if self.conn_recv.poll_update(now, srtt).is_some() {
            self.pending_max_data = true;
        }
        Ok(Some(value))
    }

    /// A receive side closed: when both sides of a peer stream are done,
    /// its stream credit returns to the peer.
    fn on_recv_closed(&mut self, id: StreamId) {
        self.pending_max_stream_data.remove(&id);
        self.maybe_release(id);
    }

    fn maybe_release(&mut self, id: StreamId) {
        if id.initiator() == self.side || self.send.contains_key(&id) || self.recv.contains_key(&id)
        {
            return;
        }
        let i = dir_index(id.dir());
        if self.limits[i].on_stream_closed().is_some() {
            self.pending_max_streams[i] = true;
        }
    }

    // ----- frames from the peer -----

    /// A STREAM frame whose `data` is a slice of an allocation of
    /// `footprint` bytes (its datagram): see `RecvBuffer::insert_in`.
    pub(crate) fn on_stream_frame(
        &mut self,
        id: StreamId,
        offset: u64,
        data: Bytes,
        fin: bool,
        footprint: usize,
    ) -> Result<(), TransportError> {
        self.check_frame(id, FrameType::STREAM)?;
        let Some(stream) = self.recv.get_mut(&id) else { return Ok(()) };
        let end = offset + data.len() as u64;
        let grown =
            stream.window.on_data_received(end).map_err(|e| e.with_frame(FrameType::STREAM))?;
        self.conn_recv.on_bytes_received(grown).map_err(|e| e.with_frame(FrameType::STREAM))?;
        if stream.buf.is_stopped() || stream.reset.is_some() {
            // Data after STOP_SENDING still counts toward flow control (above).
            if stream.buf.is_stopped() {
                let consumed_before = stream.buf.consumed();
                stream.buf.insert_in(offset, data, fin, footprint)?;
                self.conn_recv.on_data_consumed(stream.buf.consumed() - consumed_before);
            }
            return Ok(());
        }
        let new = stream.buf.insert_in(offset, data, fin, footprint)?;
        if fin {
            stream.state.on_size_known();
        }
        if stream.buf.is_all_received() {
            stream.state.on_all_data_received();
        }
        if new > 0 || fin {
            self.push_event(StreamEvent::Readable(id));
        }
        Ok(())
    }

    /// Charges one stream abort by the peer (the first RESET_STREAM or
    /// STOP_SENDING for a stream) against the rate limit.
    ///
    /// A peer that opens streams and aborts them at once, again and again,
    /// makes this endpoint (and the application above it, which may have
    /// started work for each stream) spend effort that makes no progress;
    /// stream limits do not stop it, because every abort returns stream
    /// credit. Repeats of an abort already applied change nothing and cost
    /// nothing here. The error blames the peer: at the default rate no
    /// application aborts streams this fast, so the peer is treated as an
    /// attacker. PROTOCOL_VIOLATION is the transport's generic code for a
    /// misbehaving peer; no more specific transport code exists (HTTP/3's
    /// H3_EXCESSIVE_LOAD is the application's to send).
    fn on_abort(&mut self, now: Instant, frame_type: FrameType) -> Result<(), TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-21.9
        //# While there are legitimate uses for all messages, implementations SHOULD track
        //# cost of processing relative to progress and treat excessive quantities of any
        //# non-productive packets as indicative of an attack.  Endpoints MAY respond to
        //# this condition with a connection error or by dropping packets.
        if self.abort_limit.take(now) {
            return Ok(());
        }
        let reason = if frame_type == FrameType::STOP_SENDING {
            "STOP_SENDING rate limit exceeded"
        } else {
            "RESET_STREAM rate limit exceeded"
        };
        Err(TransportError::protocol_violation(reason).with_frame(frame_type))
    }

    pub(crate) fn on_reset_stream(
        &mut self,
        now: Instant,
        id: StreamId,
        code: VarInt,
        final_size: u64,
    ) -> Result<(), TransportError> {
        self.check_frame(id, FrameType::RESET_STREAM)?;
        // A stream already closed (read to its end or its reset read) has
        // nothing to abort: the frame is ignored and costs nothing.
        let Some(stream) = self.recv.get_mut(&id) else { return Ok(()) };
        if stream.reset.is_some() {
            // Repeated (a retransmission, or a peer repeating itself): only
            // the final size is checked again, and the rate limit is not
            // charged, so retransmitted resets never count twice.
            stream.buf.on_reset(final_size)?;
            return Ok(());
        }
        self.on_abort(now, FrameType::RESET_STREAM)?;
        let Some(stream) = self.recv.get_mut(&id) else { return Ok(()) };
        let grown = stream
            .window
            .on_data_received(final_size)
            .map_err(|e| e.with_frame(FrameType::RESET_STREAM))?;
        self.conn_recv
            .on_bytes_received(grown)
            .map_err(|e| e.with_frame(FrameType::RESET_STREAM))?;
        let released = stream.buf.on_reset(final_size)?;
        stream.state.on_reset_received();
        stream.reset = Some(code);
        self.conn_recv.on_data_consumed(released);
        self.pending_max_stream_data.remove(&id);
        self.push_event(StreamEvent::Readable(id));
        Ok(())
    }

    pub(crate) fn on_stop_sending(
        &mut self,
        now: Instant,
        id: StreamId,
        code: VarInt,
    ) -> Result<(), TransportError> {
        self.check_frame(id, FrameType::STOP_SENDING)?;
        let Some(stream) = self.send.get_mut(&id) else { return Ok(()) };
        if stream.stopped.is_some() {
            // Repeated: changes nothing, costs nothing (see `on_abort`).
            return Ok(());
        }
        self.on_abort(now, FrameType::STOP_SENDING)?;
        let Some(stream) = self.send.get_mut(&id) else { return Ok(()) };
        stream.stopped = Some(code);
        // The `Stopped` event below wakes a blocked writer instead.
        self.write_blocked.remove(&id);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-3.5
        //# An endpoint that receives a STOP_SENDING frame
        //# MUST send a RESET_STREAM frame if the stream is in the "Ready" or "Send"
        //# state.
        if stream.state.on_stop_sending() && !stream.buf.is_reset() {
            let final_size = stream.buf.reset();
            stream.reset_pending = Some((code, final_size));
            if !self.send_queue.contains(&id) {
                self.send_queue.push_back(id);
            }
        }
        self.push_event(StreamEvent::Stopped(id, code));
        Ok(())
    }

    pub(crate) fn on_max_stream_data(
        &mut self,
        id: StreamId,
        max: VarInt,
    ) -> Result<(), TransportError> {
        self.check_frame(id, FrameType::MAX_STREAM_DATA)?;
        let Some(stream) = self.send.get_mut(&id) else { return Ok(()) };
        let was_blocked = stream.credit.available() == 0;
        if stream.credit.on_max_update(max) && was_blocked {
            if !self.send_queue.contains(&id) {
                self.send_queue.push_back(id);
            }
            self.wake_writer(id);
        }
        Ok(())
    }

    pub(crate) fn on_stream_data_blocked(&mut self, id: StreamId) -> Result<(), TransportError> {
        self.check_frame(id, FrameType::STREAM_DATA_BLOCKED)?;
        Ok(())
    }

    pub(crate) fn on_max_streams(&mut self, dir: Dir, max: VarInt) -> Result<(), TransportError> {
        if self.limits[dir_index(dir)].on_max_streams(max)? {
            self.push_event(StreamEvent::Available(dir));
        }
        Ok(())
    }

    /// New connection credit. It lets queued data go out but wakes no
    /// writer: writes are bounded by each stream's send buffer, not by
    /// credit, so a blocked writer waits for the acknowledgements of what
    /// this credit lets out (`on_stream_acked`).
    pub(crate) fn on_max_data(&mut self, max: VarInt) {
        let was_blocked = self.conn_send.available() == 0;
        if self.conn_send.on_max_update(max) && was_blocked {
            // In stream ID order: a recorded run must replay byte for byte.
            let mut ids: Vec<StreamId> = self.send.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                // A stream that ran out of connection credit left the send
                // queue; it has something to send again.
                let s = &self.send[&id];
                if s.buf.next_transmit_offset(self.send_limit(s)).is_some()
                    && !self.send_queue.contains(&id)
                {
                    self.send_queue.push_back(id);
                }
            }
        }
    }

    // ----- sending -----

    /// Whether any stream has data, FIN or a reset to send within flow control.
    pub(crate) fn has_pending(&self) -> bool {
        self.send_queue.iter().any(|id| {
            self.send.get(id).is_some_and(|s| {
                s.reset_pending.is_some()
                    || s.buf.next_transmit_offset(self.send_limit(s)).is_some()
            })
        })
    }

    fn send_limit(&self, s: &SendStream) -> u64 {
        // New data may go up to the stream limit and the remaining connection credit.
        let conn_room = self.conn_send.available();
        s.credit.max().into_inner().min(s.buf.sent_offset().saturating_add(conn_room))
    }

    /// Writes RESET_STREAM and STREAM frames into `buf` while at least
    /// `min_space` bytes remain of `space`. Records what was sent.
    pub(crate) fn write_frames(
        &mut self,
        buf: &mut Vec<u8>,
        space_end: usize,
        sent_stream: &mut Vec<(StreamId, Range<u64>, bool)>,
        sent_resets: &mut Vec<(StreamId, VarInt, u64)>,
    ) {
        let mut rounds = self.send_queue.len();
        while rounds > 0 && buf.len() + 8 < space_end {
            rounds -= 1;
            let Some(id) = self.pick_next() else { break };
            let limit = match self.send.get(&id) {
                Some(s) => self.send_limit(s),
                None => continue,
            };
            let Some(stream) = self.send.get_mut(&id) else { continue };
            if let Some((code, final_size)) = stream.reset_pending {
                let frame = crate::frame::ResetStream {
                    id,
                    error_code: code,
                    final_size: VarInt::saturating_from_u64(final_size),
                };
                if buf.len() + frame.encoded_len() > space_end {
                    self.send_queue.push_front(id);
                    break;
                }
                frame.encode(buf);
                stream.reset_pending = None;
                stream.state.on_reset_sent();
                sent_resets.push((id, code, final_size));
                continue;
            }
            let Some(offset) = stream.buf.next_transmit_offset(limit) else {
                self.note_blocked(id);
                continue;
            };
            let room = space_end - buf.len();
            let offset_v = VarInt::saturating_from_u64(offset);
            // The last frame in a packet needs no Length field; keep it
            // simple and always write one, so more frames can follow.
            let Some(max_len) = StreamHeader::max_data_len(id, offset_v, room, true) else {
                self.send_queue.push_front(id);
                break;
            };
            let sent_before = stream.buf.sent_offset();
            let Some(chunk) = stream.buf.poll_transmit(max_len, limit) else { continue };
            // Connection credit is spent once, by data sent for the first time.
            let new_bytes = chunk.end().saturating_sub(sent_before);
            let header = StreamHeader {
                id,
                offset: VarInt::saturating_from_u64(chunk.offset),
                data_len: Some(chunk.data.len()),
                fin: chunk.fin,
            };
            header.encode(buf);
            buf.put_slice(&chunk.data);
            stream.state.on_stream_sent(chunk.fin);
            // Stream credit too: MAX_STREAM_DATA only wakes a stream that used it all.
            stream.credit.consume(new_bytes);
            self.conn_send.consume(new_bytes);
            sent_stream.push((id, chunk.offset..chunk.end(), chunk.fin));
            if stream.buf.next_transmit_offset(limit).is_some() || stream.reset_pending.is_some() {
                self.send_queue.push_back(id);
            } else {
                self.note_blocked(id);
            }
        }
    }

    // ----- blocked signals (RFC 9000 §4.1, §19.12, §19.13) -----

    /// Notes that stream `id` may be blocked by flow control: it has data
    /// never sent and its credit, or the connection's, is used up at a
    /// limit not yet reported.
    fn note_blocked(&mut self, id: StreamId) {
        let Some(s) = self.send.get(&id).filter(|s| s.has_new_data()) else { return };
        if s.credit.blocked_unreported().is_some() {
            self.pending_stream_blocked.insert(id);
        }
        if self.conn_send.blocked_unreported().is_some() {
            self.pending_data_blocked = true;
        }
    }

    /// Whether a DATA_BLOCKED or STREAM_DATA_BLOCKED frame may be due.
    pub(crate) fn blocked_frames_pending(&self) -> bool {
        self.pending_data_blocked
            || !self.pending_stream_blocked.is_empty()
            || self.pending_streams_blocked.iter().any(|p| *p)
    }

    /// Writes the due STREAMS_BLOCKED frames that fit before `space_end`,
    /// once per limit; records them in `sent` for loss recovery.
    pub(crate) fn write_streams_blocked_frames(
        &mut self,
        buf: &mut Vec<u8>,
        space_end: usize,
        sent: &mut Vec<(Dir, VarInt)>,
    ) {
        for dir in [Dir::Bi, Dir::Uni] {
            let i = dir_index(dir);
            if !self.pending_streams_blocked[i] {
                continue;
            }
            let Some(limit) = self.limits[i].blocked_unreported() else {
                self.pending_streams_blocked[i] = false;
                continue;
            };
            let frame = crate::frame::StreamsBlocked { dir, limit };
            if buf.len() + frame.encoded_len() > space_end {
                continue;
            }
            frame.encode(buf);
            self.limits[i].on_blocked_sent(limit);
            self.pending_streams_blocked[i] = false;
            sent.push((dir, limit));
        }
    }

    /// A packet with a STREAMS_BLOCKED for `dir` at `limit` was lost.
    pub(crate) fn on_streams_blocked_lost(&mut self, dir: Dir, limit: VarInt) {
        let i = dir_index(dir);
        self.limits[i].on_blocked_lost(limit);
        if self.limits[i].blocked_unreported().is_some() {
            self.pending_streams_blocked[i] = true;
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
    //# A sender SHOULD send a STREAM_DATA_BLOCKED or
    //# DATA_BLOCKED frame to indicate to the receiver that it has data to write but is
    //# blocked by flow control limits.
    /// Writes the due DATA_BLOCKED and STREAM_DATA_BLOCKED frames that fit
    /// before `space_end`, once per limit; records them in `sent_data` and
    /// `sent_streams` for loss recovery.
    pub(crate) fn write_blocked_frames(
        &mut self,
        buf: &mut Vec<u8>,
        space_end: usize,
        sent_data: &mut Option<VarInt>,
        sent_streams: &mut Vec<(StreamId, VarInt)>,
    ) {
        if self.pending_data_blocked {
            match self.conn_send.blocked_unreported() {
                Some(limit) => {
                    let frame = crate::frame::DataBlocked { limit };
                    if buf.len() + frame.encoded_len() <= space_end {
                        frame.encode(buf);
                        self.conn_send.on_blocked_sent(limit);
                        *sent_data = Some(limit);
                        self.pending_data_blocked = false;
                    }
                }
                None => self.pending_data_blocked = false,
            }
        }
        while let Some(&id) = self.pending_stream_blocked.first() {
            let limit = self
                .send
                .get(&id)
                .filter(|s| s.has_new_data())
                .and_then(|s| s.credit.blocked_unreported());
            let Some(limit) = limit else {
                self.pending_stream_blocked.remove(&id);
                continue;
            };
            let frame = crate::frame::StreamDataBlocked { id, limit };
            if buf.len() + frame.encoded_len() > space_end {
                break;
            }
            frame.encode(buf);
            if let Some(s) = self.send.get_mut(&id) {
                s.credit.on_blocked_sent(limit);
            }
            sent_streams.push((id, limit));
            self.pending_stream_blocked.remove(&id);
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-13.3
    //# A new frame is sent if a packet containing the most recent frame for a scope
    //# is lost, but only while the endpoint is blocked on the corresponding limit.
    /// A packet with a DATA_BLOCKED reporting `limit` was lost.
    pub(crate) fn on_data_blocked_lost(&mut self, limit: VarInt) {
        self.conn_send.on_blocked_lost(limit);
        if self.conn_send.blocked_unreported().is_some() {
            self.pending_data_blocked = true;
        }
    }

    /// A packet with a STREAM_DATA_BLOCKED for `id` at `limit` was lost.
    pub(crate) fn on_stream_data_blocked_lost(&mut self, id: StreamId, limit: VarInt) {
        let Some(s) = self.send.get_mut(&id) else { return };
        s.credit.on_blocked_lost(limit);
        self.note_blocked(id);
    }

    /// The next stream to send from: the highest priority, round-robin among equals.
    fn pick_next(&mut self) -> Option<StreamId> {
        let best = self
            .send_queue
            .iter()
            .enumerate()
            .filter_map(|(i, id)| self.send.get(id).map(|s| (i, s.priority)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?
            .0;
        self.send_queue.remove(best)
    }

    pub(crate) fn on_stream_acked(&mut self, id: StreamId, range: Range<u64>, fin: bool) {
        let Some(stream) = self.send.get_mut(&id) else { return };
        stream.buf.on_ack(range, fin);
        let done = stream.buf.is_fully_acked() && stream.state.on_all_data_acked();
        // An application blocked on a full send buffer waits for this
        // (regression: acked_data_frees_buffer_space_and_says_so).
        self.wake_writer(id);
        if done {
            self.send.remove(&id);
            self.write_blocked.remove(&id);
            self.log_state(id, true, false, true);
            self.push_event(StreamEvent::Finished(id));
            self.maybe_release(id);
        }
    }

    pub(crate) fn on_stream_lost(&mut self, id: StreamId, range: Range<u64>, fin: bool) {
        let Some(stream) = self.send.get_mut(&id) else { return };
        if stream.buf.is_reset() {
            return;
        }
        stream.buf.on_lost(range, fin);
        if !self.send_queue.contains(&id) {
            self.send_queue.push_back(id);
        }
    }

    pub(crate) fn on_reset_acked(&mut self, id: StreamId) {
        if let Some(stream) = self.send.get_mut(&id)
            && stream.state.on_reset_acked()
        {
            self.send.remove(&id);
            self.write_blocked.remove(&id);
            self.log_state(id, true, false, true);
            self.maybe_release(id);
        }
    }

    pub(crate) fn on_reset_lost(&mut self, id: StreamId, code: VarInt, final_size: u64) {
        if let Some(stream) = self.send.get_mut(&id) {
            stream.reset_pending = Some((code, final_size));
            if !self.send_queue.contains(&id) {
                self.send_queue.push_back(id);
            }
        }
    }

    /// Bytes buffered in the receive streams and the memory they pin.
    #[cfg(test)]
    pub(crate) fn receive_memory(&self) -> (u64, u64) {
        self.recv.values().fold((0, 0), |(b, p), s| (b + s.buf.buffered(), p + s.buf.pinned()))
    }

    /// The MAX_STREAM_DATA value to advertise for `id`, if its receive side
    /// still wants data.
    pub(crate) fn max_stream_data(&self, id: StreamId) -> Option<VarInt> {
        let s = self.recv.get(&id)?;
        s.state.may_send_max_stream_data().then(|| s.window.max_data())
    }

    /// The STOP_SENDING code for `id`, if it should still be sent.
    pub(crate) fn stop_code(&self, id: StreamId) -> Option<VarInt> {
        let s = self.recv.get(&id)?;
        s.stop_pending.filter(|_| s.state.should_send_stop_sending())
    }

    pub(crate) fn max_streams(&self, dir: Dir) -> VarInt {
        self.limits[dir_index(dir)].max_remote()
    }
}
