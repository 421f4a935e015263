//! The send buffer of one stream: application data held from the lowest
//! unacknowledged offset until the peer acknowledges it, with
//! retransmission of lost ranges and FIN tracking (RFC 9000 §2.2, §3.1,
//! §4.5, §19.8).
//!
//! Every byte is in one of three states: unsent (at or above
//! [`SendBuffer::sent_offset`]), sent and awaiting acknowledgement, or
//! acknowledged. Sent, unacknowledged bytes may additionally be queued for
//! retransmission after a loss. Memory is released as the front of the
//! stream is acknowledged.
//!
//! The buffer trusts its acknowledgement and loss reports: they come from
//! the connection's own record of the STREAM frames it sent, not from the
//! peer. (A peer's ACK frame names packet numbers; an ACK of a packet number
//! never sent is the connection's PROTOCOL_VIOLATION to detect.) Reports
//! naming bytes never sent are clipped to what was sent and the rest ignored,
//! so a bookkeeping bug cannot make the buffer panic or resend acked data.

use core::fmt;
use core::ops::Range;
use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use crate::range_set::RangeSet;
use crate::varint::VarInt;

/// Default for [`SendBuffer::new`]'s `max_buffered`: 1 MiB.
pub const DEFAULT_MAX_BUFFERED: u64 = 1 << 20;

/// Smallest allocation for copied writes. Small writes are gathered into
/// one allocation so that a stream written a few bytes at a time is still
/// sent in full-sized STREAM frames rather than one frame per write.
const MIN_TAIL_ALLOC: usize = 4096;

/// The largest stream offset plus one: RFC 9000 §19.8 caps offset + length
/// at 2^62-1.
const MAX_STREAM_END: u64 = VarInt::MAX.into_inner();

/// Why a write to a [`SendBuffer`] accepted nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BufferWriteError {
    /// The buffer holds its maximum of unacknowledged bytes; retry after
    /// acknowledgements free space.
    Blocked,
    /// [`SendBuffer::finish`] was called: the final size is fixed.
    Finished,
    /// [`SendBuffer::reset`] was called: the stream carries no more data.
    Reset,
    /// The stream has reached offset 2^62-1, the most a stream can carry.
    OffsetLimit,
}

impl fmt::Display for BufferWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Blocked => "send buffer full",
            Self::Finished => "stream already finished",
            Self::Reset => "stream was reset",
            Self::OffsetLimit => "stream offset limit 2^62-1 reached",
        })
    }
}

impl std::error::Error for BufferWriteError {}

/// Stream data to put in one STREAM frame, from [`SendBuffer::poll_transmit`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct SendChunk {
    /// Stream offset of the first byte of `data`.
    pub offset: u64,
    /// The bytes, shared with the buffer (no copy). Empty only for a frame
    /// that carries just the FIN.
    pub data: Bytes,
    /// Whether the frame must carry the FIN bit: `data` reaches the final
    /// size.
    pub fin: bool,
}

impl SendChunk {
    /// The stream offset just past `data`.
    pub fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// The data a stream has to send, from the lowest unacknowledged offset to
/// the end of what the application wrote.
///
/// Driving: the application calls [`write`](Self::write) /
/// [`write_bytes`](Self::write_bytes) and [`finish`](Self::finish); the
/// connection calls [`poll_transmit`](Self::poll_transmit) while building
/// packets, records each chunk it sends, and later reports it through
/// [`on_ack`](Self::on_ack) or [`on_lost`](Self::on_lost).
pub struct SendBuffer {
    /// Data handed out or about to be, contiguous from `base`: (stream
    /// offset, bytes). Never holds an empty chunk; the first chunk starts at
    /// `base`.
    chunks: VecDeque<(u64, Bytes)>,
    /// Copied writes not yet handed out, starting at `frozen_end`.
    tail: BytesMut,
    /// Lowest unacknowledged offset: everything below is acknowledged and
    /// freed.
    base: u64,
    /// Offset just past `chunks` (where `tail` starts).
    frozen_end: u64,
    /// Offset of the first byte never sent.
    sent: u64,
    /// Acknowledged ranges above `base`, within `base..sent`.
    acked: RangeSet,
    /// Lost, unacknowledged ranges to send again, within `base..sent`.
    retransmit: RangeSet,
    /// Bound on `end() - base`.
    max_buffered: u64,
    /// The application called `finish`: the final size is `end()`.
    finished: bool,
    /// A FIN must be sent (first time, or again after a loss).
    fin_pending: bool,
    /// A FIN has been handed out at least once.
    fin_sent: bool,
    /// The FIN has been acknowledged.
    fin_acked: bool,
    /// The stream was reset: nothing more is sent or written.
    reset: bool,
}

impl Default for SendBuffer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BUFFERED)
    }
}

impl fmt::Debug for SendBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendBuffer")
            .field("base", &self.base)
            .field("sent", &self.sent)
            .field("end", &self.end())
            .field("acked", &self.acked)
            .field("retransmit", &self.retransmit)
            .field("finished", &self.finished)
            .field("fin_pending", &self.fin_pending)
            .field("fin_acked", &self.fin_acked)
            .field("reset", &self.reset)
            .finish_non_exhaustive()
    }
}

impl SendBuffer {
    /// An empty buffer that holds at most `max_buffered` written but
    /// unacknowledged bytes ([`DEFAULT_MAX_BUFFERED`] by default).
    ///
    /// The bound defends the sender against a peer that never acknowledges
    /// (RFC 9000 §21.7): data it will not acknowledge cannot pile up.
    pub fn new(max_buffered: u64) -> Self {
        Self {
            chunks: VecDeque::new(),
            tail: BytesMut::new(),
            base: 0,
            frozen_end: 0,
            sent: 0,
            acked: RangeSet::new(),
            retransmit: RangeSet::new(),
            max_buffered,
            finished: false,
            fin_pending: false,
            fin_sent: false,
            fin_acked: false,
            reset: false,
        }
    }

    /// Changes the bound on unacknowledged bytes. Lowering it below what is
    /// buffered drops nothing; writes are refused until enough is acked.
    pub fn set_max_buffered(&mut self, max_buffered: u64) -> &mut Self {
        self.max_buffered = max_buffered;
        self
    }

    /// Copies as much of `data` as fits and returns how many bytes that was
    /// (0 only for empty `data`). The bytes are copied once, into an
    /// allocation shared with neighbouring small writes.
    ///
    /// # Errors
    /// Nothing fits: [`BufferWriteError::Blocked`] (wait for
    /// acknowledgements), or the stream is finished, reset or at its
    /// offset limit.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, BufferWriteError> {
        let n = self.room_for(data.len())?;
        if n == 0 {
            return Ok(0);
        }
        if self.tail.capacity() - self.tail.len() < n {
            // Start a new allocation rather than growing this one: growing
            // would copy the bytes already in it a second time.
            self.freeze_tail();
            let room = usize::try_from(self.room()).unwrap_or(usize::MAX);
            self.tail = BytesMut::with_capacity(n.max(MIN_TAIL_ALLOC.min(room)));
        }
        self.tail.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Stores as much of `data` as fits, without copying, and returns how
    /// many bytes that was (the caller advances past them). Takes the same
    /// errors as [`write`](Self::write).
    pub fn write_bytes(&mut self, mut data: Bytes) -> Result<usize, BufferWriteError> {
        let n = self.room_for(data.len())?;
        if n == 0 {
            return Ok(0);
        }
        data.truncate(n);
        self.freeze_tail();
        self.chunks.push_back((self.frozen_end, data));
        self.frozen_end += n as u64;
        Ok(n)
    }

    /// Ends the stream: the final size is everything written so far, and a
    /// FIN will be sent after the data. Idempotent; no-op after a reset.
    pub fn finish(&mut self) {
        if !self.finished && !self.reset {
            self.finished = true;
            self.fin_pending = true;
        }
    }

    /// Abandons the stream for a RESET_STREAM: frees all data, and nothing
    /// more is sent or written. Returns the final size to put in the
    /// RESET_STREAM frame: the offset just past the highest byte sent
    /// (RFC 9000 §4.5), since only sent bytes consumed flow-control credit.
    pub fn reset(&mut self) -> u64 {
        self.reset = true;
        self.fin_pending = false;
        self.chunks.clear();
        self.tail = BytesMut::new();
        self.acked = RangeSet::new();
        self.retransmit = RangeSet::new();
        self.sent
    }

    /// The next chunk to send, at most `max_len` bytes: lost data first
    /// (lowest offset first), then new data not beyond `max_offset` (the
    /// flow-control limit for this stream; retransmissions are exempt as
    /// they consumed credit when first sent), then a FIN on its own.
    /// `None` when there is nothing to send.
    ///
    /// The chunk is marked sent; the caller must later report it through
    /// [`on_ack`](Self::on_ack) or [`on_lost`](Self::on_lost). It may be
    /// shorter than `max_len` where the buffer's storage is split; ask again
    /// to continue. With `max_len == 0` only a bare FIN can come out.
    /// [`next_transmit_offset`](Self::next_transmit_offset) tells the offset
    /// in advance, for sizing the STREAM header.
    pub fn poll_transmit(&mut self, max_len: usize, max_offset: u64) -> Option<SendChunk> {
        if self.reset {
            return None;
        }
        let end = self.end();
        if max_len > 0
            && let Some(lost) = self.retransmit.first()
        {
            let len = (lost.end - lost.start).min(max_len as u64);
            let data = self.frozen_slice(lost.start, len);
            let chunk_end = lost.start + data.len() as u64;
            self.retransmit.remove(lost.start..chunk_end);
            let fin = self.take_fin_if(chunk_end == end);
            return Some(SendChunk { offset: lost.start, data, fin });
        }
        let new_end = end.min(max_offset).min(self.sent.saturating_add(max_len as u64));
        if new_end > self.sent {
            let len = new_end - self.sent;
            let data = if self.sent < self.frozen_end {
                self.frozen_slice(self.sent, len)
            } else {
                // Freeze only what goes out now, so chunks (and the memory
                // they pin) match the frames they were sent in.
                let data = self.tail.split_to(len as usize).freeze();
                self.chunks.push_back((self.frozen_end, data.clone()));
                self.frozen_end += len;
                data
            };
            let offset = self.sent;
            self.sent += data.len() as u64;
            let fin = self.take_fin_if(self.sent == end);
            return Some(SendChunk { offset, data, fin });
        }
        if self.fin_pending && self.sent == end {
            let fin = self.take_fin_if(true);
            return Some(SendChunk { offset: end, data: Bytes::new(), fin });
        }
        None
    }

    /// The offset the next [`poll_transmit`](Self::poll_transmit) with the
    /// same `max_offset` and a nonzero `max_len` would start at, or `None`
    /// if it would return nothing.
    pub fn next_transmit_offset(&self, max_offset: u64) -> Option<u64> {
        if self.reset {
            return None;
        }
        if let Some(lost) = self.retransmit.first() {
            return Some(lost.start);
        }
        let end = self.end();
        if end.min(max_offset) > self.sent || (self.fin_pending && self.sent == end) {
            return Some(self.sent);
        }
        None
    }

    /// Records that the peer acknowledged `range` (and the FIN, if `fin`,
    /// as sent in the same frame). Returns how many bytes were newly
    /// acknowledged. Acknowledged bytes are never sent again, and the
    /// acknowledged front of the stream is freed. Parts of `range` never
    /// sent are ignored (see the module docs).
    pub fn on_ack(&mut self, range: Range<u64>, fin: bool) -> u64 {
        if self.reset {
            return 0;
        }
        if fin && self.fin_sent {
            self.fin_acked = true;
            self.fin_pending = false;
        }
        let range = range.start.max(self.base)..range.end.min(self.sent);
        if range.is_empty() {
            return 0;
        }
        let already: u64 = self.acked.iter_within(range.clone()).map(|r| r.end - r.start).sum();
        self.acked.insert(range.clone());
        self.retransmit.remove(range.clone());
        self.release_acked();
        range.end - range.start - already
    }

    /// Records that the frame carrying `range` (and the FIN, if `fin`) was
    /// declared lost: its still-unacknowledged bytes become retransmittable.
    /// Returns how many bytes were newly queued. Parts never sent are
    /// ignored (see the module docs).
    pub fn on_lost(&mut self, range: Range<u64>, fin: bool) -> u64 {
        if self.reset {
            return 0;
        }
        if fin && self.fin_sent && !self.fin_acked {
            self.fin_pending = true;
        }
        let range = range.start.max(self.base)..range.end.min(self.sent);
        if range.is_empty() {
            return 0;
        }
        let mut queued = 0;
        for gap in gaps(&self.acked, range) {
            let already: u64 =
                self.retransmit.iter_within(gap.clone()).map(|r| r.end - r.start).sum();
            queued += gap.end - gap.start - already;
            self.retransmit.insert(gap);
        }
        queued
    }

    /// The offset just past the last byte written: the final size once
    /// [`finish`](Self::finish) is called.
    pub fn end(&self) -> u64 {
        self.frozen_end + self.tail.len() as u64
    }

    /// Offset of the first byte never sent.
    pub fn sent_offset(&self) -> u64 {
        self.sent
    }

    /// Lowest unacknowledged offset: every byte below it is acknowledged.
    pub fn acked_offset(&self) -> u64 {
        self.base
    }

    /// Bytes held: written and not yet freed by acknowledgement of the
    /// front of the stream. Counted against the `max_buffered` bound.
    pub fn buffered(&self) -> u64 {
        self.end() - self.base
    }

    /// How many more bytes a write would accept now.
    pub fn room(&self) -> u64 {
        if self.finished || self.reset {
            return 0;
        }
        self.max_buffered.saturating_sub(self.buffered()).min(MAX_STREAM_END - self.end())
    }

    /// Bytes written but never sent.
    pub fn unsent(&self) -> u64 {
        self.end() - self.sent
    }

    /// Bytes sent and not yet acknowledged (lost ones included).
    pub fn unacked(&self) -> u64 {
        self.sent - self.base - self.acked.iter().map(|r| r.end - r.start).sum::<u64>()
    }

    /// Whether lost data (or a lost FIN) waits to be sent again.
    pub fn has_retransmit(&self) -> bool {
        !self.retransmit.is_empty()
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether a FIN has been handed out at least once: the sending part
    /// has entered "Data Sent" (RFC 9000 §3.1).
    pub fn is_fin_sent(&self) -> bool {
        self.fin_sent
    }

    /// Whether the stream is finished and every byte and the FIN are
    /// acknowledged: "Data Recvd" (RFC 9000 §3.1). The buffer is then empty.
    pub fn is_fully_acked(&self) -> bool {
        self.finished && self.fin_acked && self.base == self.end()
    }

    /// Whether the buffer holds no data at all (nothing written or all of
    /// it acknowledged and freed).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_empty()
    }

    /// Whether [`reset`](Self::reset) was called.
    pub fn is_reset(&self) -> bool {
        self.reset
    }

    /// How many of `len` bytes a write may take now.
    fn room_for(&self, len: usize) -> Result<usize, BufferWriteError> {
        if self.reset {
            return Err(BufferWriteError::Reset);
        }
        if self.finished {
            return Err(BufferWriteError::Finished);
        }
        if len == 0 {
            return Ok(0);
        }
        if self.end() == MAX_STREAM_END {
            return Err(BufferWriteError::OffsetLimit);
        }
        match self.room() {
            0 => Err(BufferWriteError::Blocked),
            room => Ok(usize::try_from(room).map_or(len, |room| room.min(len))),
        }
    }

    /// Sets `fin_pending` aside if `at_end` and a FIN is due; returns
    /// whether the chunk carries the FIN.
    fn take_fin_if(&mut self, at_end: bool) -> bool {
        if at_end && self.fin_pending {
            self.fin_pending = false;
            self.fin_sent = true;
            true
        } else {
            false
        }
    }

    /// Moves the copied tail into `chunks` (no copy: the allocation is
    /// shared).
    fn freeze_tail(&mut self) {
        if !self.tail.is_empty() {
            let data = core::mem::take(&mut self.tail).freeze();
            self.chunks.push_back((self.frozen_end, data.clone()));
            self.frozen_end += data.len() as u64;
        }
    }

    /// Up to `len` bytes from `offset`, stopping at the end of the chunk
    /// that holds `offset`.
    fn frozen_slice(&self, offset: u64, len: u64) -> Bytes {
        // Callers pass offsets in `base..frozen_end` (retransmit ranges are
        // kept within `base..sent`, and `sent <= frozen_end`), so some
        // chunk holds `offset`.
        let idx = self.chunks.partition_point(|&(start, _)| start <= offset);
        let (start, chunk) = self
            .chunks
            .get(idx.wrapping_sub(1))
            .expect("invariant: chunks cover base..frozen_end and offset is in it");
        let from = (offset - start) as usize;
        let to = from + (chunk.len() - from).min(usize::try_from(len).unwrap_or(usize::MAX));
        chunk.slice(from..to)
    }

    /// Advances `base` over the acknowledged front and frees those chunks.
    fn release_acked(&mut self) {
        while let Some(front) = self.acked.first()
            && front.start == self.base
        {
            self.acked.pop_min();
            self.base = front.end;
        }
        while let Some((start, chunk)) = self.chunks.front_mut() {
            let chunk_end = *start + chunk.len() as u64;
            if chunk_end <= self.base {
                self.chunks.pop_front();
            } else {
                if *start < self.base {
                    chunk.advance((self.base - *start) as usize);
                    *start = self.base;
                }
                break;
            }
        }
    }
}

/// The parts of `range` not in `set`, lowest first.
pub(super) fn gaps(set: &RangeSet, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
    // A backwards range is empty (and would upset the `BTreeMap` lookup).
    let range = range.start..range.end.max(range.start);
    let end = range.end;
    let mut cursor = range.start;
    let mut covered = set.iter_within(range);
    core::iter::from_fn(move || {
        loop {
            if cursor >= end {
                return None;
            }
            match covered.next() {
                Some(r) if r.start > cursor => {
                    let gap = cursor..r.start;
                    cursor = r.end;
                    return Some(gap);
                }
                Some(r) => cursor = r.end,
                None => {
                    let gap = cursor..end;
                    cursor = end;
                    return Some(gap);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests;
