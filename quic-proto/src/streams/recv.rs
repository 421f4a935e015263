//! The receive buffer of one stream: reassembly of STREAM frame data that
//! arrives out of order, duplicated or overlapping, final size rules, and
//! ordered or unordered delivery (RFC 9000 §2.2, §3.2, §4.5, §19.4, §19.8).
//!
//! Offsets and lengths here come from the peer. Every sum is checked, and
//! two caps bound what a peer can make the receiver hold beyond what flow
//! control already bounds (RFC 9000 §21.7, stream fragmentation):
//!
//! - the number of disjoint received ranges (`max_fragments`): a sender
//!   that leaves many holes makes the tracking structures large and slow,
//!   and each buffered fragment may pin the whole datagram it arrived in;
//! - the bytes buffered that the application cannot read yet because an
//!   earlier byte is missing (`max_out_of_order`), for a connection that
//!   advertises more flow-control credit than it is willing to hold in
//!   holes.
//!
//! A third bound needs no error: the memory buffered data keeps alive.
//! Fragments are kept as slices of the datagrams they arrived in, without
//! copying, so a sender of tiny fragments, each in its own full-sized
//! datagram, could make a window's worth of data pin a thousand times its
//! size. The buffer charges every fragment the allocation it keeps alive
//! ([`pinned`](RecvBuffer::pinned)) and copies a fragment (on arrival, or
//! what is left of it after a partial read) whose allocation is more than
//! [`PIN_FACTOR`] times its size. Memory then stays within `PIN_FACTOR`
//! times the data buffered, which flow control bounds, and the copying
//! costs at most one copy of each received byte.
//!
//! Exceeding either cap is an error with code INTERNAL_ERROR. The peer has
//! broken no rule (its data is within flow control and any fragmentation is
//! legal), so PROTOCOL_VIOLATION would blame it wrongly; the receiver ran
//! out of the resources it is prepared to commit and cannot continue, which
//! is what INTERNAL_ERROR says. Dropping the fragment instead is not an
//! option: the packet carrying it is acknowledged, and the sender would
//! never send it again. RFC 9000 §11 allows a generic code in place of a
//! specific one.

use core::fmt;
use core::ops::Range;
use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use super::send::gaps;
use crate::error::TransportError;
use crate::range_set::RangeSet;
use crate::varint::VarInt;

/// Default for `max_fragments`: disjoint received ranges.
///
/// A 16 MiB window of 1200-byte packets is about 14,000 packets; heavy loss
/// or reordering of a few percent of them leaves a few hundred holes, well
/// below this.
pub const DEFAULT_MAX_FRAGMENTS: usize = 2048;

/// Default for `max_out_of_order`: 16 MiB, a generous stream window. Set it
/// to at least the stream's receive window unless the connection
/// overcommits memory across streams.
pub const DEFAULT_MAX_OUT_OF_ORDER: u64 = 16 << 20;

/// Bound on [`RecvBuffer::pinned`] relative to [`RecvBuffer::buffered`],
/// kept for every fragment and so for the whole buffer. A full-sized
/// STREAM frame fills most of its datagram and is kept without copying;
/// a fragment in a datagram more than twice its size is copied (a copy of
/// at most half a datagram).
pub const PIN_FACTOR: u64 = 2;

/// Reason of the error for too many disjoint received ranges.
pub const TOO_FRAGMENTED: &str = "stream data too fragmented";

/// Reason of the error for too much out-of-order data.
pub const TOO_MUCH_OUT_OF_ORDER: &str = "too much out-of-order stream data";

/// The stream data received from the peer, until the application reads it.
///
/// Driving: the connection calls [`insert`](Self::insert) for each STREAM
/// frame and [`on_reset`](Self::on_reset) for RESET_STREAM; the application
/// reads with [`read`](Self::read) / [`read_chunk`](Self::read_chunk), or
/// with [`read_unordered`](Self::read_unordered). After any of these the
/// connection compares [`consumed`](Self::consumed) with its last value to
/// return flow-control credit.
pub struct RecvBuffer {
    /// Received, unread data: non-empty, non-overlapping, keyed by offset.
    segments: BTreeMap<u64, Segment>,
    /// Every offset ever received (not maintained once discarding).
    received: RangeSet,
    /// Bytes in `segments`.
    stored: u64,
    /// Sum of the segments' `pinned`.
    pinned: u64,
    /// Ordered reads: offset of the next byte to deliver.
    read_offset: u64,
    /// Bytes delivered to the application, or discarded (after
    /// [`stop`](Self::stop) or a reset) and so free to credit back.
    consumed: u64,
    /// Highest offset + 1 of any data received.
    max_end: u64,
    /// The final size, once a FIN or RESET_STREAM told it.
    final_size: Option<u64>,
    /// `read_unordered` was used: ordered reads are over.
    unordered: bool,
    /// The application stopped reading: data is discarded on arrival.
    stopped: bool,
    /// A RESET_STREAM arrived: data is discarded on arrival.
    reset: bool,
    max_fragments: usize,
    max_out_of_order: u64,
    /// Segment count that triggers [`compact`](Self::compact).
    compact_at: usize,
}

impl Default for RecvBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RecvBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBuffer")
            .field("received", &self.received)
            .field("segments", &self.segments.len())
            .field("stored", &self.stored)
            .field("pinned", &self.pinned)
            .field("read_offset", &self.read_offset)
            .field("consumed", &self.consumed)
            .field("max_end", &self.max_end)
            .field("final_size", &self.final_size)
            .field("unordered", &self.unordered)
            .field("stopped", &self.stopped)
            .field("reset", &self.reset)
            .finish_non_exhaustive()
    }
}

impl RecvBuffer {
    /// An empty buffer with the default caps ([`DEFAULT_MAX_FRAGMENTS`],
    /// [`DEFAULT_MAX_OUT_OF_ORDER`]).
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_OUT_OF_ORDER)
    }

    /// An empty buffer that fails an insert that would leave more than
    /// `max_fragments` disjoint received ranges, or more than
    /// `max_out_of_order` bytes buffered behind a hole. `max_fragments` is
    /// at least 1.
    pub fn with_limits(max_fragments: usize, max_out_of_order: u64) -> Self {
        Self {
            segments: BTreeMap::new(),
            received: RangeSet::new(),
            stored: 0,
            pinned: 0,
            read_offset: 0,
            consumed: 0,
            max_end: 0,
            final_size: None,
            unordered: false,
            stopped: false,
            reset: false,
            max_fragments: max_fragments.max(1),
            max_out_of_order,
            compact_at: max_fragments.max(1).saturating_mul(2),
        }
    }

    /// Buffers the data of a STREAM frame without copying it, taking
    /// `data` to be an allocation of its own size. Returns how many of its
    /// bytes were new (0 for a duplicate, and for data discarded after
    /// [`stop`](Self::stop) or a reset).
    ///
    /// For a slice of a larger allocation (a frame in a datagram), use
    /// [`insert_in`](Self::insert_in), so the memory it keeps alive is
    /// counted.
    ///
    /// # Errors
    /// FINAL_SIZE_ERROR if the frame contradicts the final size
    /// (RFC 9000 §4.5); FRAME_ENCODING_ERROR if it ends beyond 2^62-1;
    /// INTERNAL_ERROR if it exceeds the fragmentation caps (module docs).
    /// The buffer is unchanged after an error.
    pub fn insert(&mut self, offset: u64, data: Bytes, fin: bool) -> Result<usize, TransportError> {
        let footprint = data.len();
        self.insert_in(offset, data, fin, footprint)
    }

    /// Like [`insert`](Self::insert), for `data` that is a slice of an
    /// allocation of `footprint` bytes (the datagram it arrived in). Each
    /// new piece is kept as a slice, charged `footprint`, or copied if
    /// `footprint` is more than [`PIN_FACTOR`] times its size.
    pub fn insert_in(
        &mut self,
        offset: u64,
        data: Bytes,
        fin: bool,
        footprint: usize,
    ) -> Result<usize, TransportError> {
        let footprint = footprint as u64;
        self.insert_with(offset, data.len(), fin, move |r| Segment::new(data.slice(r), footprint))
    }

    /// Like [`insert`](Self::insert), copying only the new bytes.
    pub fn insert_slice(
        &mut self,
        offset: u64,
        data: &[u8],
        fin: bool,
    ) -> Result<usize, TransportError> {
        self.insert_with(offset, data.len(), fin, |r| {
            Segment::compact(Bytes::copy_from_slice(&data[r]))
        })
    }

    /// Takes a RESET_STREAM with `final_size`: buffered data is discarded
    /// and later data ignored. Returns the flow-control credit this
    /// releases (the final size minus what was already consumed), which
    /// [`consumed`](Self::consumed) now includes; 0 for a repeated reset.
    ///
    /// # Errors
    /// FINAL_SIZE_ERROR if `final_size` differs from a known final size or
    /// is below data already received; the buffer is then unchanged.
    pub fn on_reset(&mut self, final_size: u64) -> Result<u64, TransportError> {
        if final_size > VarInt::MAX.into_inner() {
            return Err(TransportError::frame_encoding_error("final size beyond 2^62-1"));
        }
        self.check_final_size(final_size, true)?;
        if self.reset {
            return Ok(0);
        }
        self.reset = true;
        self.final_size = Some(final_size);
        self.discard_all();
        let released = final_size.saturating_sub(self.consumed);
        self.consumed = self.consumed.max(final_size);
        Ok(released)
    }

    /// The application stops reading (it will send STOP_SENDING): buffered
    /// data is discarded, and data arriving later is counted as consumed on
    /// arrival, as it still counts toward flow control (RFC 9000 §3.5).
    /// Returns the credit released.
    pub fn stop(&mut self) -> u64 {
        if self.stopped || self.reset {
            return 0;
        }
        self.stopped = true;
        self.discard_all();
        let released = self.max_end.saturating_sub(self.consumed);
        self.consumed = self.consumed.max(self.max_end);
        released
    }

    /// Copies in-order data into `buf`; returns how many bytes (0 when
    /// nothing is readable now). Never returns data after
    /// [`read_unordered`](Self::read_unordered) was used.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let Some(chunk) = self.read_chunk(buf.len() - n) else { break };
            buf[n..n + chunk.len()].copy_from_slice(&chunk);
            n += chunk.len();
        }
        n
    }

    /// The next in-order bytes, at most `max`, without copying; `None` when
    /// nothing is readable now (a hole, the end, or `max == 0`). Never
    /// returns data after [`read_unordered`](Self::read_unordered) was used.
    pub fn read_chunk(&mut self, max: usize) -> Option<Bytes> {
        if self.unordered || max == 0 {
            return None;
        }
        let entry = self.segments.first_entry()?;
        if *entry.key() != self.read_offset {
            return None;
        }
        let chunk = if entry.get().data.len() <= max {
            let segment = entry.remove();
            self.pinned -= segment.pinned;
            segment.data
        } else {
            let mut segment = entry.remove();
            let chunk = segment.data.split_to(max);
            // The chunk goes to the application, and with it the charge
            // for its bytes; the rest stays charged for the remainder,
            // unless that is now too much for its size.
            let rest = Segment::new(segment.data, segment.pinned - max as u64);
            self.pinned = self.pinned - segment.pinned + rest.pinned;
            self.segments.insert(self.read_offset + max as u64, rest);
            chunk
        };
        let len = chunk.len() as u64;
        self.read_offset += len;
        self.stored -= len;
        self.consumed += len;
        Some(chunk)
    }

    /// Any buffered bytes with their offset, lowest offset first, without
    /// copying. Each received byte comes out exactly once. Switches the
    /// buffer to unordered delivery for good: ordered reads return nothing
    /// afterwards.
    pub fn read_unordered(&mut self) -> Option<(u64, Bytes)> {
        self.unordered = true;
        let (offset, segment) = self.segments.pop_first()?;
        let len = segment.data.len() as u64;
        self.stored -= len;
        self.pinned -= segment.pinned;
        self.consumed += len;
        Some((offset, segment.data))
    }

    /// Bytes delivered to the application plus bytes discarded after a
    /// stop or reset: the credit the connection may give back. Only grows.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Offset just past the highest byte received (not counting a final
    /// size learned from RESET_STREAM).
    pub fn max_received_offset(&self) -> u64 {
        self.max_end
    }

    /// The final size, once known from a FIN or RESET_STREAM.
    pub fn final_size(&self) -> Option<u64> {
        self.final_size
    }

    /// Bytes buffered and not yet read.
    pub fn buffered(&self) -> u64 {
        self.stored
    }

    /// Memory the buffered bytes keep alive: each fragment is charged the
    /// allocation it is a slice of (as told to [`insert_in`](Self::insert_in))
    /// until it is read or copied. At most [`PIN_FACTOR`] times
    /// [`buffered`](Self::buffered).
    pub fn pinned(&self) -> u64 {
        self.pinned
    }

    /// Whether the final size is known and every byte up to it arrived:
    /// "Data Recvd" (RFC 9000 §3.2). False after a stop or reset.
    pub fn is_all_received(&self) -> bool {
        !self.stopped
            && !self.reset
            && self.final_size.is_some_and(|size| self.received.contains_range(0..size))
    }

    /// Whether the application has read every byte up to the final size:
    /// "Data Read" (RFC 9000 §3.2). False after a stop or reset.
    pub fn is_finished(&self) -> bool {
        !self.stopped && !self.reset && self.final_size == Some(self.consumed)
    }

    /// Whether a RESET_STREAM was taken.
    pub fn is_reset(&self) -> bool {
        self.reset
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Whether [`read_unordered`](Self::read_unordered) was used.
    pub fn is_unordered(&self) -> bool {
        self.unordered
    }

    /// Checks `end` (a frame's offset + length, a final size if `fin`)
    /// against the final size rules.
    fn check_final_size(&self, end: u64, fin: bool) -> Result<(), TransportError> {
        if let Some(size) = self.final_size {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-4.5
            //# Once a final size for a stream is known, it cannot change.  If a RESET_STREAM or
            //# STREAM frame is received indicating a change in the final size for the stream,
            //# an endpoint SHOULD respond with an error of type FINAL_SIZE_ERROR; see
            //# {{error-handling}} for details on error handling.
            if fin && end != size {
                return Err(TransportError::final_size_error("final size changed"));
            }
            //= https://www.rfc-editor.org/rfc/rfc9000#section-4.5
            //# A receiver SHOULD treat
            //# receipt of data at or beyond the final size as an error of type
            //# FINAL_SIZE_ERROR, even after a stream is closed.
            if end > size {
                return Err(TransportError::final_size_error("data beyond final size"));
            }
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-20.1
        //# (2) an endpoint received a STREAM frame or
        //# a RESET_STREAM frame containing a final size that was lower than the size of
        //# stream data that was already received
        if fin && end < self.max_end {
            return Err(TransportError::final_size_error("final size below data received"));
        }
        Ok(())
    }

    fn insert_with(
        &mut self,
        offset: u64,
        len: usize,
        fin: bool,
        slice: impl Fn(Range<usize>) -> Segment,
    ) -> Result<usize, TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
        //# Receipt of a frame that exceeds this limit MUST be treated as a
        //# connection error of type FRAME_ENCODING_ERROR or FLOW_CONTROL_ERROR.
        let end = u64::try_from(len)
            .ok()
            .and_then(|len| offset.checked_add(len))
            .filter(|&end| end <= VarInt::MAX.into_inner())
            .ok_or(TransportError::frame_encoding_error("STREAM data beyond offset 2^62-1"))?;
        self.check_final_size(end, fin)?;

        if self.stopped || self.reset {
            self.note_end(end, fin);
            if self.stopped && !self.reset {
                self.consumed = self.consumed.max(self.max_end);
            }
            return Ok(0);
        }

        // The parts not received before; validated against the caps before
        // anything changes, so an error leaves the buffer as it was.
        let pieces: Vec<Range<u64>> = gaps(&self.received, offset..end).collect();
        let new_bytes: u64 = pieces.iter().map(|r| r.end - r.start).sum();
        for piece in &pieces {
            self.received.insert(piece.clone());
        }
        if let Err(e) = self.check_caps(new_bytes) {
            for piece in &pieces {
                self.received.remove(piece.clone());
            }
            return Err(e);
        }

        for piece in pieces {
            let from = (piece.start - offset) as usize;
            let to = (piece.end - offset) as usize;
            let segment = slice(from..to);
            self.pinned += segment.pinned;
            self.segments.insert(piece.start, segment);
        }
        self.stored += new_bytes;
        self.note_end(end, fin);
        if self.segments.len() > self.compact_at {
            self.compact();
            // Ordered reads leave at most one segment per received range,
            // so this stays at twice the cap. Unordered reads can leave
            // more; doubling keeps the copying amortized then too.
            self.compact_at = self.max_fragments.saturating_mul(2).max(2 * self.segments.len());
        }
        Ok(new_bytes as usize)
    }

    /// With `received` already holding the new bytes, checks the caps.
    fn check_caps(&self, new_bytes: u64) -> Result<(), TransportError> {
        if self.received.len() > self.max_fragments {
            return Err(TransportError::internal_error(TOO_FRAGMENTED));
        }
        if !self.unordered {
            // Everything buffered between the read offset and the first hole
            // is readable; the rest waits behind the hole.
            let contiguous_end =
                self.received.first().filter(|r| r.start == 0).map_or(0, |r| r.end);
            let readable = contiguous_end.saturating_sub(self.read_offset);
            let waiting = (self.stored + new_bytes).saturating_sub(readable);
            if waiting > self.max_out_of_order {
                return Err(TransportError::internal_error(TOO_MUCH_OUT_OF_ORDER));
            }
        }
        Ok(())
    }

    fn note_end(&mut self, end: u64, fin: bool) {
        self.max_end = self.max_end.max(end);
        if fin {
            self.final_size = Some(end);
        }
    }

    fn discard_all(&mut self) {
        self.segments.clear();
        self.stored = 0;
        self.pinned = 0;
        // The received ranges are not needed once data is discarded; drop
        // them so a stopped or reset stream holds no per-fragment state.
        self.received = RangeSet::new();
    }

    /// Joins adjacent segments into one allocation each.
    ///
    /// A peer sending many small in-order frames to an application that
    /// reads slowly is legitimate, but each frame's `Bytes` may pin a whole
    /// datagram. Copying adjacent segments together bounds the segment
    /// count by the number of holes (capped by `max_fragments`); it runs
    /// only after the count doubles past that, so its cost is amortized.
    fn compact(&mut self) {
        let old = core::mem::take(&mut self.segments);
        let mut run: Vec<Segment> = Vec::new();
        let mut run_start = 0;
        let mut run_end = 0;
        for (start, segment) in old {
            if !run.is_empty() && start != run_end {
                self.segments.insert(run_start, join(&mut run));
            }
            if run.is_empty() {
                run_start = start;
            }
            run_end = start + segment.data.len() as u64;
            run.push(segment);
        }
        if !run.is_empty() {
            self.segments.insert(run_start, join(&mut run));
        }
        self.pinned = self.segments.values().map(|s| s.pinned).sum();
    }
}

/// One buffered piece of stream data and the memory it keeps alive.
#[derive(Debug)]
struct Segment {
    data: Bytes,
    /// Bytes of the allocation `data` keeps alive, charged to this segment:
    /// at least `data.len()`.
    pinned: u64,
}

impl Segment {
    /// A segment that is an allocation of its own.
    fn compact(data: Bytes) -> Self {
        let pinned = data.len() as u64;
        Self { data, pinned }
    }

    /// `data`, a slice of an allocation of `footprint` bytes: kept as it is
    /// if that is at most [`PIN_FACTOR`] times its size, else copied.
    fn new(data: Bytes, footprint: u64) -> Self {
        let len = data.len() as u64;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-21.7
        //# QUIC deployments SHOULD provide mitigations for stream fragmentation attacks.
        if footprint > PIN_FACTOR.saturating_mul(len) {
            return Self::compact(Bytes::copy_from_slice(&data));
        }
        Self { data, pinned: footprint.max(len) }
    }
}

/// One segment holding `run` back to back, in an allocation of its own
/// (a single piece is kept as it is); leaves `run` empty.
fn join(run: &mut Vec<Segment>) -> Segment {
    if run.len() == 1
        && let Some(single) = run.pop()
    {
        return single;
    }
    let mut joined = BytesMut::with_capacity(run.iter().map(|s| s.data.len()).sum());
    for piece in run.drain(..) {
        joined.extend_from_slice(&piece.data);
    }
    Segment::compact(joined.freeze())
}

#[cfg(test)]
mod tests;
