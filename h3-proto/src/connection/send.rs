//! Bytes framed for one stream that the transport has not taken yet.
//!
//! A frame header commits the sender to the payload it announces, so
//! whatever part of a frame the transport refuses is kept here and goes
//! out, in order, before anything else on that stream. The layer frames
//! new DATA only once this is empty, which bounds it by one frame.

use quic_proto::StreamId;
use quic_proto::connection::WriteError;

use crate::transport::Transport;

/// Queued bytes of one stream, and whether its end follows them.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    buf: Vec<u8>,
    off: usize,
    /// Finish the stream once `buf` is written.
    fin: bool,
    /// The FIN was handed to the transport.
    finished: bool,
}

impl Outgoing {
    /// Whether every queued byte went to the transport.
    pub(super) fn is_empty(&self) -> bool {
        self.off == self.buf.len()
    }

    /// Whether the stream's end was handed to the transport.
    pub(super) fn finished(&self) -> bool {
        self.finished
    }

    /// Whether the stream's end is asked for (sent or queued).
    pub(super) fn fin_requested(&self) -> bool {
        self.fin
    }

    /// Queues `bytes` after what is queued.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        if self.is_empty() {
            self.buf.clear();
            self.off = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Writes `header` then `payload` straight to the transport, queuing
    /// whatever it does not take. Call only when [`Outgoing::is_empty`],
    /// or the bytes would overtake queued ones.
    pub(super) fn write_frame<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        id: StreamId,
        header: &[u8],
        payload: &[u8],
    ) -> Result<(), WriteError> {
        debug_assert!(self.is_empty(), "frames go out in order");
        let taken = write_some(t, id, header)?;
        if taken < header.len() {
            self.push(&header[taken..]);
            self.push(payload);
            return Ok(());
        }
        let taken = write_some(t, id, payload)?;
        self.push(&payload[taken..]);
        Ok(())
    }

    /// Asks for the stream's end after the queued bytes.
    pub(super) fn request_fin(&mut self) {
        self.fin = true;
    }

    /// Hands what it can to the transport: `Ok(true)` once everything
    /// queued (and the end, if asked) went.
    pub(super) fn flush<T: Transport + ?Sized>(
        &mut self,
        t: &mut T,
        id: StreamId,
    ) -> Result<bool, WriteError> {
        while self.off < self.buf.len() {
            let taken = write_some(t, id, &self.buf[self.off..])?;
            if taken == 0 {
                return Ok(false);
            }
            self.off += taken;
        }
        self.buf.clear();
        self.off = 0;
        if self.fin && !self.finished {
            t.finish(id)?;
            self.finished = true;
        }
        Ok(true)
    }
}

/// Writes what the transport takes of `data`: 0 when it is blocked.
fn write_some<T: Transport + ?Sized>(
    t: &mut T,
    id: StreamId,
    data: &[u8],
) -> Result<usize, WriteError> {
    if data.is_empty() {
        return Ok(0);
    }
    match t.write(id, data) {
        Ok(n) => Ok(n),
        Err(WriteError::Blocked) => Ok(0),
        Err(e) => Err(e),
    }
}
