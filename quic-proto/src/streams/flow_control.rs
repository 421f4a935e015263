//! Flow control and stream limits (RFC 9000 §4): the credit we may spend
//! ([`SendCredit`]), the credit we grant ([`RecvWindow`]) and the stream
//! counts of one direction ([`StreamLimits`]).
//!
//! All three are pure bookkeeping; the connection sends and receives the
//! frames (RFC 9000 §19.9-§19.14). One type serves both levels: a stream
//! uses absolute offsets, the connection the sum over streams.
//!
//! How the connection wires the two levels together on receipt:
//!
//! 1. `stream.on_data_received(end)` checks the stream limit and returns the
//!    growth of that stream's highest offset;
//! 2. `conn.on_bytes_received(growth)` checks the connection limit;
//! 3. as the application reads, `on_data_consumed(n)` on both.
//!
//! When the final size of a stream becomes known through RESET_STREAM, step 1
//! and 2 run with the final size (RFC 9000 §4.5), and since the application
//! will never read the rest, the connection window also releases the
//! stream's [`RecvWindow::unconsumed`] bytes (RFC 9000 §4.4).

use core::ops::Range;
use core::time::Duration;

use crate::error::TransportError;
use crate::time::Instant;
use crate::varint::VarInt;

/// The largest cumulative stream count of one type: 2^60 streams use every
/// stream ID below 2^62 (RFC 9000 §4.6, §19.11).
pub const MAX_STREAM_COUNT: u64 = 1 << 60;

/// Our sending credit on a stream or the connection: the limit the peer set
/// with a transport parameter and MAX_STREAM_DATA or MAX_DATA frames, and
/// how much of it we have used.
#[derive(Clone, Debug)]
pub struct SendCredit {
    /// The largest limit the peer has advertised.
    max: u64,
    /// Bytes of credit used: the highest offset sent on a stream, or the sum
    /// of those over the connection.
    used: u64,
    /// The limit a blocked signal was last reported at.
    blocked_reported: Option<u64>,
}

impl SendCredit {
    /// Credit up to `initial_max`, from the peer's transport parameters
    /// (zero until they arrive).
    pub fn new(initial_max: VarInt) -> Self {
        Self { max: initial_max.into_inner(), used: 0, blocked_reported: None }
    }

    /// The peer's current limit.
    pub fn max(&self) -> VarInt {
        VarInt::saturating_from_u64(self.max)
    }

    /// Credit used so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// How many more bytes may be sent now.
    pub fn available(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }

    /// Records `n` bytes of new data sent (not retransmissions, which use no
    /// new credit). `n` must not exceed [`SendCredit::available`]; a caller
    /// bug that does is clamped (and panics in debug builds).
    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
    //# Senders MUST NOT send data in excess of either limit.
    pub fn consume(&mut self, n: u64) {
        debug_assert!(n <= self.available(), "consumed {n} of {} available", self.available());
        self.used = self.used.saturating_add(n).min(self.max.max(self.used));
    }

    /// The peer sent MAX_DATA or MAX_STREAM_DATA with `new_max`. Returns
    /// whether the limit grew (so blocked data may now be sent).
    pub fn on_max_update(&mut self, new_max: VarInt) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
        //# A sender MUST ignore any MAX_STREAM_DATA or MAX_DATA frames that do not increase
        //# flow control limits.
        let new_max = new_max.into_inner();
        if new_max <= self.max {
            return false;
        }
        self.max = new_max;
        true
    }

    /// Whether all credit is used: data waiting to be sent is blocked.
    pub fn is_blocked(&self) -> bool {
        self.available() == 0
    }

    /// The limit at which we are blocked, for a DATA_BLOCKED or
    /// STREAM_DATA_BLOCKED frame; `None` when not blocked. Also the value
    /// to use when such a frame is lost and still relevant, or when sending
    /// one periodically.
    pub fn blocked_at(&self) -> Option<VarInt> {
        self.is_blocked().then(|| self.max())
    }

    /// Call when data is waiting that the credit does not let us send.
    /// Returns the limit to report in a DATA_BLOCKED or STREAM_DATA_BLOCKED
    /// frame the first time we are blocked at each limit value, `None`
    /// otherwise.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
    //# A sender SHOULD send a STREAM_DATA_BLOCKED or
    //# DATA_BLOCKED frame to indicate to the receiver that it has data to write but is
    //# blocked by flow control limits.
    pub fn poll_blocked(&mut self) -> Option<VarInt> {
        let limit = self.blocked_unreported()?;
        self.on_blocked_sent(limit);
        Some(limit)
    }

    /// The limit to report in a blocked frame if we are blocked at a limit
    /// not reported yet; unlike [`SendCredit::poll_blocked`] it marks
    /// nothing, for a caller that may find no room for the frame.
    pub fn blocked_unreported(&self) -> Option<VarInt> {
        (self.is_blocked() && self.blocked_reported != Some(self.max)).then(|| self.max())
    }

    /// A blocked frame reporting `limit` was sent.
    pub fn on_blocked_sent(&mut self, limit: VarInt) {
        self.blocked_reported = Some(limit.into_inner());
    }

    /// The packet with the latest blocked frame, reporting `limit`, was
    /// lost: the next [`SendCredit::blocked_unreported`] reports it again
    /// if we are still blocked there (RFC 9000 §13.3).
    pub fn on_blocked_lost(&mut self, limit: VarInt) {
        if self.blocked_reported == Some(limit.into_inner()) {
            self.blocked_reported = None;
        }
    }
}

/// Our receive limit on a stream or the connection: what we advertised to
/// the peer, what it has sent, and what the application has read.
///
/// Credit comes back only as the application reads: buffered but unread
/// data keeps counting against the window, which bounds our memory. The
/// window doubles (up to a maximum) when the application reads a window's
/// worth in less than about two round trips, so a fast reader is not held
/// back by a window smaller than the bandwidth-delay product.
#[derive(Clone, Debug)]
pub struct RecvWindow {
    /// The largest limit advertised to the peer.
    max_data: u64,
    /// How far beyond the consumed offset new limits reach.
    window: u64,
    /// The window auto-tuning never exceeds.
    max_window: u64,
    /// The highest offset received (stream), or the sum of those (connection).
    received: u64,
    /// Bytes read by the application.
    consumed: u64,
    /// When the last new limit was issued, to measure the reading rate.
    last_update: Option<Instant>,
    /// `consumed` when the last new limit was issued.
    consumed_at_update: u64,
}

impl RecvWindow {
    /// A window of `window` bytes, which is also the initial limit advertised
    /// in our transport parameters. Auto-tuning may grow it up to
    /// `max_window` (which is raised to `window` if smaller).
    pub fn new(window: VarInt, max_window: VarInt) -> Self {
        let window = window.into_inner();
        Self {
            max_data: window,
            window,
            max_window: max_window.into_inner().max(window),
            received: 0,
            consumed: 0,
            last_update: None,
            consumed_at_update: 0,
        }
    }

    /// The largest limit advertised: the value for MAX_DATA or
    /// MAX_STREAM_DATA, also when resending a lost one.
    pub fn max_data(&self) -> VarInt {
        VarInt::saturating_from_u64(self.max_data)
    }

    /// The current window size.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// The highest offset received (stream) or the sum of those (connection).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The bytes the application has read.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes received (or counted through a final size) that the
    /// application has not read. When a stream is reset or its reading is
    /// abandoned, release these on the connection window with
    /// [`RecvWindow::on_data_consumed`].
    pub fn unconsumed(&self) -> u64 {
        self.received - self.consumed
    }

    /// The peer sent data on a stream up to `end_offset` (offset + length of
    /// a STREAM frame, or a final size). Returns how much the highest
    /// received offset grew, to be counted at the connection level with
    /// [`RecvWindow::on_bytes_received`]; data below the highest offset
    /// (retransmissions, reordering) counts nothing.
    ///
    /// Errors with FLOW_CONTROL_ERROR when `end_offset` exceeds the limit
    /// advertised; the caller adds the frame type.
    pub fn on_data_received(&mut self, end_offset: u64) -> Result<u64, TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
        //# A receiver MUST close the connection with an error of type FLOW_CONTROL_ERROR if
        //# the sender violates the advertised connection or stream data limits; see
        //# {{error-handling}} for details on error handling.
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.10
        //# An endpoint MUST terminate a connection with an
        //# error of type FLOW_CONTROL_ERROR if it receives more data than the largest
        //# maximum stream data that it has sent for the affected stream.
        // max_data is at most 2^62 - 1, so this also rejects offsets past
        // that (RFC 9000 §19.8 allows FLOW_CONTROL_ERROR for them).
        if end_offset > self.max_data {
            return Err(TransportError::flow_control_error("data beyond the flow control limit"));
        }
        let growth = end_offset.saturating_sub(self.received);
        self.received = self.received.max(end_offset);
        Ok(growth)
    }

    /// `n` more bytes count against the connection: the sum over streams of
    /// their highest offset grew by `n` (the value
    /// [`RecvWindow::on_data_received`] returned for a stream).
    ///
    /// Errors with FLOW_CONTROL_ERROR when the sum exceeds the limit.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-19.9
    //# The sum of the final
    //# sizes on all streams -- including streams in terminal states -- MUST NOT exceed
    //# the value advertised by a receiver.  An endpoint MUST terminate a connection
    //# with an error of type FLOW_CONTROL_ERROR if it receives more data than the
    //# maximum data value that it has sent.
    pub fn on_bytes_received(&mut self, n: u64) -> Result<(), TransportError> {
        match self.received.checked_add(n) {
            Some(end) if end <= self.max_data => {
                self.received = end;
                Ok(())
            }
            _ => Err(TransportError::flow_control_error(
                "data beyond the connection flow control limit",
            )),
        }
    }

    /// The application read (or discarded) `n` more bytes: their credit can
    /// be returned to the peer. Reading more than was received is a caller
    /// bug: the excess is ignored (and panics in debug builds).
    pub fn on_data_consumed(&mut self, n: u64) {
        debug_assert!(n <= self.unconsumed(), "consumed {n} of {} unread", self.unconsumed());
        self.consumed = self.consumed.saturating_add(n).min(self.received);
    }

    /// The limit a new MAX_DATA or MAX_STREAM_DATA would advertise now.
    fn target(&self) -> u64 {
        self.consumed.saturating_add(self.window).min(VarInt::MAX.into_inner())
    }

    /// Whether a new limit is worth sending: at least half the window has
    /// been read since the last one (so the peer has at most half a window
    /// of credit left beyond what is buffered). Waiting longer risks
    /// blocking the sender; sending sooner spends packets on small updates
    /// (RFC 9000 §4.2).
    pub fn should_update(&self) -> bool {
        let target = self.target();
        target > self.max_data && target - self.max_data >= (self.window / 2).max(1)
    }

    /// If a new limit is due ([`RecvWindow::should_update`]), issues it:
    /// returns the value for a MAX_DATA or MAX_STREAM_DATA frame, which is
    /// from now on [`RecvWindow::max_data`]. Call after the application
    /// reads, with the current time and the path's smoothed RTT for
    /// auto-tuning. Issue it without waiting for a blocked frame. A stream
    /// whose final size is known needs no new limit (RFC 9000 §3.2), so the
    /// caller stops asking then.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.2
    //# Therefore, a receiver MUST NOT wait for a STREAM_DATA_BLOCKED or
    //# DATA_BLOCKED frame before sending a MAX_STREAM_DATA or MAX_DATA frame; doing so
    //# could result in the sender being blocked for the rest of the connection.
    pub fn poll_update(&mut self, now: Instant, smoothed_rtt: Duration) -> Option<VarInt> {
        if !self.should_update() {
            return None;
        }
        self.auto_tune(now, smoothed_rtt);
        self.max_data = self.max_data.max(self.target());
        self.last_update = Some(now);
        self.consumed_at_update = self.consumed;
        Some(self.max_data())
    }

    /// Doubles the window if, at the rate the application read since the
    /// last update, a whole window lasts less than two round trips: the
    /// peer then spends its credit faster than a new limit can reach it,
    /// and the window is below what the path can carry (RFC 9000 §4.2).
    /// The first update has no rate to go by.
    fn auto_tune(&mut self, now: Instant, smoothed_rtt: Duration) {
        let Some(last) = self.last_update else { return };
        let elapsed = now.saturating_duration_since(last).as_nanos();
        let read = u128::from(self.consumed - self.consumed_at_update);
        // window / (read / elapsed) < 2 * rtt, without dividing.
        let window_time = u128::from(self.window).saturating_mul(elapsed);
        let two_rtts = smoothed_rtt.as_nanos().saturating_mul(2).saturating_mul(read);
        if window_time < two_rtts {
            self.window = self.window.saturating_mul(2).min(self.max_window);
        }
    }
}

/// Stream counts for one direction (bidirectional or unidirectional), both
/// ways (RFC 9000 §4.6): the limit we set on streams the peer opens, and
/// the limit the peer sets on streams we open.
///
/// The connection keeps one for [`Dir::Bi`](crate::Dir::Bi) and one for
/// [`Dir::Uni`](crate::Dir::Uni). Stream indices are those of
/// [`StreamId::index`](crate::StreamId::index).
#[derive(Clone, Debug)]
pub struct StreamLimits {
    /// The MAX_STREAMS value we advertised last.
    max_remote: u64,
    /// How many peer streams may be open at once: MAX_STREAMS stays this
    /// far ahead of the closed count.
    remote_window: u64,
    /// Peer streams opened: the highest index seen + 1.
    opened_remote: u64,
    /// Peer streams the application has finished with.
    closed_remote: u64,
    /// The peer's limit on our streams.
    max_local: u64,
    /// Our streams opened.
    opened_local: u64,
    /// The limit a STREAMS_BLOCKED was last reported at.
    blocked_reported: Option<u64>,
}

impl StreamLimits {
    /// Limits where the peer may have `max_concurrent` of its streams open
    /// at once (our initial_max_streams_* transport parameter, capped at
    /// 2^60). We may open none until the peer's limit arrives through
    /// [`StreamLimits::on_max_streams`] (its transport parameter, then
    /// MAX_STREAMS frames).
    pub fn new(max_concurrent: VarInt) -> Self {
        let window = max_concurrent.into_inner().min(MAX_STREAM_COUNT);
        Self {
            max_remote: window,
            remote_window: window,
            opened_remote: 0,
            closed_remote: 0,
            max_local: 0,
            opened_local: 0,
            blocked_reported: None,
        }
    }

    /// The limit we advertised on peer streams: the value for MAX_STREAMS,
    /// also when resending a lost one.
    pub fn max_remote(&self) -> VarInt {
        VarInt::saturating_from_u64(self.max_remote)
    }

    /// How many peer streams have been opened (implicitly or explicitly).
    pub fn remote_opened(&self) -> u64 {
        self.opened_remote
    }

    /// How many peer streams the application has finished with.
    pub fn remote_closed(&self) -> u64 {
        self.closed_remote
    }

    /// A frame from the peer refers to its stream `index`. Returns the
    /// indices of the streams this opens: all not yet opened up to and
    /// including `index` (RFC 9000 §3.2), empty when it was already open.
    ///
    /// Errors with STREAM_LIMIT_ERROR when `index` is beyond the limit we
    /// advertised; the caller adds the frame type.
    pub fn on_peer_opened(&mut self, index: u64) -> Result<Range<u64>, TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
        //# An endpoint that
        //# receives a frame with a stream ID exceeding the limit it has sent MUST treat
        //# this as a connection error of type STREAM_LIMIT_ERROR; see {{error-handling}}
        //# for details on error handling.
        if index >= self.max_remote {
            return Err(TransportError::stream_limit_error("peer opened a stream over the limit"));
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-3.2
        //# Before a stream is created, all streams of the same type with lower-numbered
        //# stream IDs MUST be created.
        let start = self.opened_remote;
        // index < max_remote <= 2^60: no overflow.
        self.opened_remote = self.opened_remote.max(index + 1);
        Ok(start..self.opened_remote)
    }

    /// The application has finished with one of the peer's streams (both
    /// directions in a terminal state and the state released). Returns the
    /// new limit when a MAX_STREAMS frame is due: credit is returned only
    /// for closed streams, so the peer never has more than the configured
    /// number open, and in batches of half that number to save frames.
    /// Calls beyond the number of peer streams opened are ignored.
    pub fn on_stream_closed(&mut self) -> Option<VarInt> {
        debug_assert!(self.closed_remote < self.opened_remote, "more streams closed than opened");
        if self.closed_remote >= self.opened_remote {
            return None;
        }
        self.closed_remote += 1;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
        //# Implementations might choose to increase limits as
        //# streams are closed, to keep the number of streams available to peers roughly
        //# consistent.
        let target = self.closed_remote.saturating_add(self.remote_window).min(MAX_STREAM_COUNT);
        if target > self.max_remote && target - self.max_remote >= (self.remote_window / 2).max(1) {
            self.max_remote = target;
            return Some(self.max_remote());
        }
        None
    }

    /// The peer's limit on our streams.
    pub fn max_local(&self) -> VarInt {
        VarInt::saturating_from_u64(self.max_local)
    }

    /// How many streams we have opened.
    pub fn local_opened(&self) -> u64 {
        self.opened_local
    }

    /// Whether the peer's limit lets us open another stream.
    pub fn can_open(&self) -> bool {
        self.opened_local < self.max_local
    }

    /// Opens a stream of ours: returns its index, or `None` when the peer's
    /// limit forbids it (then see [`StreamLimits::poll_blocked`]).
    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
    //# Endpoints MUST NOT exceed the limit set by their peer.
    pub fn open(&mut self) -> Option<u64> {
        if !self.can_open() {
            return None;
        }
        self.opened_local += 1;
        Some(self.opened_local - 1)
    }

    /// The peer's limit on our streams is `max`: from its transport
    /// parameter, or a MAX_STREAMS frame. Returns whether the limit grew.
    ///
    /// Errors with FRAME_ENCODING_ERROR above 2^60 (the frame decoder
    /// already rejects those; transport parameters must be checked by their
    /// decoder, which uses TRANSPORT_PARAMETER_ERROR).
    pub fn on_max_streams(&mut self, max: VarInt) -> Result<bool, TransportError> {
        let max = max.into_inner();
        //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
        //# If
        //# either is received, the connection MUST be closed immediately with a connection
        //# error of type TRANSPORT_PARAMETER_ERROR if the offending value was received in a
        //# transport parameter or of type FRAME_ENCODING_ERROR if it was received in a
        //# frame; see {{immediate-close}}.
        if max > MAX_STREAM_COUNT {
            return Err(TransportError::frame_encoding_error("MAX_STREAMS above 2^60"));
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
        //# MAX_STREAMS frames that do not
        //# increase the stream limit MUST be ignored.
        if max <= self.max_local {
            return Ok(false);
        }
        self.max_local = max;
        Ok(true)
    }

    /// Call when we want to open a stream and [`StreamLimits::can_open`]
    /// says no. Returns the limit for a STREAMS_BLOCKED frame the first
    /// time we are blocked at each limit value, `None` otherwise.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
    //# An endpoint that is unable to open a new stream due to the peer's limits SHOULD
    //# send a STREAMS_BLOCKED frame ({{frame-streams-blocked}}).
    pub fn poll_blocked(&mut self) -> Option<VarInt> {
        let limit = self.blocked_unreported()?;
        self.on_blocked_sent(limit);
        Some(limit)
    }

    /// The limit for a STREAMS_BLOCKED frame if we cannot open a stream at
    /// a limit not reported yet; marks nothing.
    pub fn blocked_unreported(&self) -> Option<VarInt> {
        (!self.can_open() && self.blocked_reported != Some(self.max_local))
            .then(|| self.max_local())
    }

    /// A STREAMS_BLOCKED frame reporting `limit` was sent.
    pub fn on_blocked_sent(&mut self, limit: VarInt) {
        self.blocked_reported = Some(limit.into_inner());
    }

    /// The packet with the latest STREAMS_BLOCKED, reporting `limit`, was
    /// lost: report it again if still blocked there (RFC 9000 §13.3).
    pub fn on_blocked_lost(&mut self, limit: VarInt) {
        if self.blocked_reported == Some(limit.into_inner()) {
            self.blocked_reported = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::error::TransportErrorCode;

    const MS: Duration = Duration::from_millis(1);

    fn v(x: u64) -> VarInt {
        VarInt::from_u64(x).unwrap()
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
    //= type=test
    //# A sender MUST ignore any MAX_STREAM_DATA or MAX_DATA frames that do not increase
    //# flow control limits.
    #[test]
    fn send_credit_ignores_decreases() {
        let mut c = SendCredit::new(v(1000));
        c.consume(400);
        assert_eq!((c.available(), c.used()), (600, 400));
        assert!(!c.on_max_update(v(500)));
        assert!(!c.on_max_update(v(1000)));
        assert_eq!(c.max(), v(1000));
        assert!(c.on_max_update(v(2000)));
        assert_eq!(c.available(), 1600);
        assert!(c.on_max_update(VarInt::MAX));
        assert_eq!(c.available(), VarInt::MAX.into_inner() - 400);
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
    //= type=test
    //# A sender SHOULD send a STREAM_DATA_BLOCKED or
    //# DATA_BLOCKED frame to indicate to the receiver that it has data to write but is
    //# blocked by flow control limits.
    #[test]
    fn blocked_is_reported_once_per_limit() {
        let mut c = SendCredit::new(VarInt::ZERO);
        assert_eq!(c.poll_blocked(), Some(VarInt::ZERO));
        assert_eq!(c.poll_blocked(), None);
        assert_eq!(c.blocked_at(), Some(VarInt::ZERO));
        c.on_max_update(v(100));
        assert_eq!((c.poll_blocked(), c.blocked_at()), (None, None));
        c.consume(100);
        assert_eq!(c.poll_blocked(), Some(v(100)));
        assert_eq!(c.poll_blocked(), None);
        // A stale, smaller update changes nothing.
        c.on_max_update(v(50));
        assert_eq!(c.poll_blocked(), None);
        c.on_max_update(v(150));
        c.consume(50);
        assert_eq!(c.poll_blocked(), Some(v(150)));
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
    //= type=test
    //# A receiver MUST close the connection with an error of type FLOW_CONTROL_ERROR if
    //# the sender violates the advertised connection or stream data limits; see
    //# {{error-handling}} for details on error handling.
    #[test]
    fn recv_window_enforces_the_limit() {
        let mut w = RecvWindow::new(v(1000), v(1000));
        assert_eq!(w.on_data_received(600), Ok(600));
        // Reordered or retransmitted data counts nothing new.
        assert_eq!(w.on_data_received(300), Ok(0));
        assert_eq!(w.on_data_received(1000), Ok(400));
        let err = w.on_data_received(1001).unwrap_err();
        assert_eq!(err.code, TransportErrorCode::FLOW_CONTROL_ERROR);
        // Offsets past 2^62 - 1 (offset + length from a hostile frame).
        assert!(w.on_data_received(u64::MAX).is_err());
        assert_eq!(w.received(), 1000);
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-19.9
    //= type=test
    //# The sum of the final
    //# sizes on all streams -- including streams in terminal states -- MUST NOT exceed
    //# the value advertised by a receiver.  An endpoint MUST terminate a connection
    //# with an error of type FLOW_CONTROL_ERROR if it receives more data than the
    //# maximum data value that it has sent.
    #[test]
    fn connection_window_sums_streams() {
        let mut conn = RecvWindow::new(v(1000), v(1000));
        let mut a = RecvWindow::new(v(800), v(800));
        let mut b = RecvWindow::new(v(800), v(800));
        conn.on_bytes_received(a.on_data_received(600).unwrap()).unwrap();
        conn.on_bytes_received(b.on_data_received(400).unwrap()).unwrap();
        assert_eq!(conn.received(), 1000);
        // Within b's limit, but over the connection's.
        let growth = b.on_data_received(401).unwrap();
        let err = conn.on_bytes_received(growth).unwrap_err();
        assert_eq!(err.code, TransportErrorCode::FLOW_CONTROL_ERROR);
        assert!(conn.on_bytes_received(u64::MAX).is_err());
        // A reset stream: the final size counts, and its unread bytes are
        // released on the connection.
        let mut conn = RecvWindow::new(v(1000), v(1000));
        let mut s = RecvWindow::new(v(1000), v(1000));
        conn.on_bytes_received(s.on_data_received(100).unwrap()).unwrap();
        conn.on_bytes_received(s.on_data_received(700).unwrap()).unwrap();
        conn.on_data_consumed(s.unconsumed());
        assert_eq!(conn.poll_update(Instant::ZERO, MS), Some(v(1700)));
    }

    #[test]
    fn credit_returns_only_as_the_application_reads() {
        let mut w = RecvWindow::new(v(1000), v(1000));
        w.on_data_received(1000).unwrap();
        // Everything received, nothing read: no new credit.
        assert!(!w.should_update());
        assert_eq!(w.poll_update(Instant::ZERO, MS), None);
        w.on_data_consumed(499);
        assert_eq!(w.poll_update(Instant::ZERO, MS), None);
        w.on_data_consumed(1);
        assert_eq!(w.poll_update(Instant::ZERO, MS), Some(v(1500)));
        assert_eq!(w.max_data(), v(1500));
        assert_eq!(w.poll_update(Instant::ZERO, MS), None);
        assert!(w.on_data_received(1501).is_err());
        w.on_data_received(1500).unwrap();
        w.on_data_consumed(1000);
        assert_eq!((w.consumed(), w.unconsumed()), (1500, 0));
    }

    #[test]
    fn auto_tuning_doubles_up_to_the_cap() {
        let rtt = 100 * MS;
        let mut w = RecvWindow::new(v(1000), v(3000));
        let mut now = Instant::ZERO;
        fn read(w: &mut RecvWindow, n: u64) {
            w.on_data_received(w.received() + n).unwrap();
            w.on_data_consumed(n);
        }
        // First update: no rate yet.
        read(&mut w, 500);
        assert_eq!(w.poll_update(now, rtt), Some(v(1500)));
        // Half a window in 50 ms: a window lasts 100 ms < 2 RTTs. Double.
        now += 50 * MS;
        read(&mut w, 500);
        assert_eq!(w.poll_update(now, rtt), Some(v(3000)));
        assert_eq!(w.window(), 2000);
        // Again: capped at 3000.
        now += 50 * MS;
        read(&mut w, 1000);
        assert_eq!(w.poll_update(now, rtt), Some(v(5000)));
        assert_eq!(w.window(), 3000);
        now += MS;
        read(&mut w, 1500);
        assert_eq!(w.poll_update(now, rtt), Some(v(6500)));
        assert_eq!(w.window(), 3000);
        // A slow reader: a window lasts more than 2 RTTs. No growth.
        let mut w = RecvWindow::new(v(1000), v(100_000));
        read(&mut w, 500);
        w.poll_update(now, rtt).unwrap();
        now += 150 * MS;
        read(&mut w, 500);
        assert_eq!(w.poll_update(now, rtt), Some(v(2000)));
        assert_eq!(w.window(), 1000);
        // Limits never exceed 2^62 - 1.
        let mut w = RecvWindow::new(v(1 << 61), VarInt::MAX);
        read(&mut w, 1 << 61);
        assert_eq!(w.poll_update(now, rtt), Some(VarInt::MAX));
        assert_eq!(w.poll_update(now, rtt), None);
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
    //= type=test
    //# An endpoint that
    //# receives a frame with a stream ID exceeding the limit it has sent MUST treat
    //# this as a connection error of type STREAM_LIMIT_ERROR; see {{error-handling}}
    //# for details on error handling.
    #[test]
    fn peer_streams_over_the_limit_are_an_error() {
        let mut s = StreamLimits::new(v(3));
        assert_eq!(s.on_peer_opened(1), Ok(0..2));
        assert_eq!(s.on_peer_opened(0), Ok(2..2));
        assert_eq!(s.on_peer_opened(2), Ok(2..3));
        let err = s.on_peer_opened(3).unwrap_err();
        assert_eq!(err.code, TransportErrorCode::STREAM_LIMIT_ERROR);
        assert!(s.on_peer_opened(u64::MAX).is_err());
        assert_eq!(s.remote_opened(), 3);
    }

    #[test]
    fn max_streams_credit_only_on_closure() {
        let mut s = StreamLimits::new(v(4));
        assert_eq!(s.on_peer_opened(3), Ok(0..4));
        // Opening streams returns no credit; closing does, in batches of two.
        assert_eq!(s.on_stream_closed(), None);
        assert_eq!(s.on_stream_closed(), Some(v(6)));
        assert!(s.on_peer_opened(5).is_ok());
        assert!(s.on_peer_opened(6).is_err());
        assert_eq!(s.on_stream_closed(), None);
        assert_eq!(s.on_stream_closed(), Some(v(8)));
        assert_eq!(s.remote_closed(), 4);
        // A window of one returns each stream as it closes.
        let mut s = StreamLimits::new(v(1));
        s.on_peer_opened(0).unwrap();
        assert_eq!(s.on_stream_closed(), Some(v(2)));
        // No credit is ever advertised past 2^60.
        let mut s = StreamLimits::new(v(MAX_STREAM_COUNT - 1));
        s.on_peer_opened(0).unwrap();
        s.on_peer_opened(1).unwrap();
        assert_eq!(s.max_remote(), v(MAX_STREAM_COUNT - 1));
        assert_eq!(s.on_stream_closed(), None);
        let mut s = StreamLimits::new(VarInt::MAX);
        assert_eq!(s.max_remote(), v(MAX_STREAM_COUNT));
        assert_eq!(s.on_peer_opened(MAX_STREAM_COUNT - 1), Ok(0..MAX_STREAM_COUNT));
        assert!(s.on_peer_opened(MAX_STREAM_COUNT).is_err());
        assert_eq!(s.on_stream_closed(), None);
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
    //= type=test
    //# MAX_STREAMS frames that do not
    //# increase the stream limit MUST be ignored.
    #[test]
    fn local_streams_follow_the_peer_limit() {
        let mut s = StreamLimits::new(v(10));
        assert!(!s.can_open());
        assert_eq!(s.open(), None);
        assert_eq!(s.poll_blocked(), Some(VarInt::ZERO));
        assert_eq!(s.on_max_streams(v(2)), Ok(true));
        assert_eq!((s.open(), s.open(), s.open()), (Some(0), Some(1), None));
        assert_eq!(s.poll_blocked(), Some(v(2)));
        assert_eq!(s.poll_blocked(), None);
        assert_eq!(s.on_max_streams(v(1)), Ok(false));
        assert_eq!(s.on_max_streams(v(2)), Ok(false));
        assert_eq!((s.max_local(), s.local_opened()), (v(2), 2));
        assert_eq!(s.poll_blocked(), None);
        assert_eq!(s.on_max_streams(v(3)), Ok(true));
        assert_eq!(s.poll_blocked(), None);
        assert_eq!(s.open(), Some(2));
        assert_eq!(s.poll_blocked(), Some(v(3)));
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
    //= type=test
    //# If
    //# either is received, the connection MUST be closed immediately with a connection
    //# error of type TRANSPORT_PARAMETER_ERROR if the offending value was received in a
    //# transport parameter or of type FRAME_ENCODING_ERROR if it was received in a
    //# frame; see {{immediate-close}}.
    #[test]
    fn stream_count_is_capped_at_2_to_the_60() {
        let mut s = StreamLimits::new(VarInt::ZERO);
        let err = s.on_max_streams(v(MAX_STREAM_COUNT + 1)).unwrap_err();
        assert_eq!(err.code, TransportErrorCode::FRAME_ENCODING_ERROR);
        assert_eq!(s.on_max_streams(v(MAX_STREAM_COUNT)), Ok(true));
        assert!(s.can_open());
        // The last index still makes a valid stream ID.
        let mut s = StreamLimits::new(VarInt::ZERO);
        s.on_max_streams(v(MAX_STREAM_COUNT)).unwrap();
        s.opened_local = MAX_STREAM_COUNT - 1;
        let last = s.open().unwrap();
        assert!(crate::StreamId::new(crate::Side::Client, crate::Dir::Uni, last).is_some());
        assert_eq!(s.open(), None);
    }

    #[derive(Clone, Debug)]
    enum RecvOp {
        Receive(u64),
        Read(u64),
        Update(u64),
    }

    fn recv_op() -> impl Strategy<Value = RecvOp> {
        prop_oneof![
            (0..20_000u64).prop_map(RecvOp::Receive),
            (0..5_000u64).prop_map(RecvOp::Read),
            (0..200u64).prop_map(RecvOp::Update),
        ]
    }

    proptest! {
        /// Against a model that remembers every limit advertised: data is
        /// accepted exactly up to the largest one, limits never shrink, and
        /// unread data never exceeds the largest window.
        //= https://www.rfc-editor.org/rfc/rfc9000#section-4.1
        //= type=test
        //# A receiver MUST close the connection with an error of type FLOW_CONTROL_ERROR if
        //# the sender violates the advertised connection or stream data limits; see
        //# {{error-handling}} for details on error handling.
        #[test]
        fn recv_window_never_allows_more_than_advertised(
            initial in 0..5_000u64,
            max in 0..20_000u64,
            ops in proptest::collection::vec(recv_op(), 0..200),
        ) {
            let mut w = RecvWindow::new(v(initial), v(max));
            let mut advertised = initial;
            let mut highest = 0;
            let mut now = Instant::ZERO;
            for op in ops {
                match op {
                    RecvOp::Receive(end) => {
                        let result = w.on_data_received(end);
                        prop_assert_eq!(result.is_ok(), end <= advertised);
                        if result.is_ok() {
                            highest = highest.max(end);
                        }
                    }
                    RecvOp::Read(n) => w.on_data_consumed(n.min(w.unconsumed())),
                    RecvOp::Update(ms) => {
                        now += Duration::from_millis(ms);
                        if let Some(new) = w.poll_update(now, 20 * MS) {
                            prop_assert!(new.into_inner() > advertised);
                            advertised = new.into_inner();
                        }
                    }
                }
                prop_assert_eq!(w.max_data().into_inner(), advertised);
                prop_assert_eq!(w.received(), highest);
                prop_assert!(w.window() <= initial.max(max));
                prop_assert!(advertised - w.consumed() <= initial.max(max));
            }
        }

        /// The peer can never have more than the configured number of
        /// streams open beyond those the application closed.
        #[test]
        fn peer_streams_bounded_by_closures(
            window in 0..20u64,
            ops in proptest::collection::vec(prop_oneof![(0..100u64).prop_map(Some), Just(None)], 0..200),
        ) {
            let mut s = StreamLimits::new(v(window));
            for op in ops {
                match op {
                    Some(index) => {
                        let ok = s.on_peer_opened(index).is_ok();
                        prop_assert_eq!(ok, index < s.max_remote().into_inner());
                    }
                    None if s.remote_closed() < s.remote_opened() => {
                        let _ = s.on_stream_closed();
                    }
                    None => {}
                }
                prop_assert!(s.max_remote().into_inner() <= s.remote_closed() + window);
                prop_assert!(s.remote_opened() <= s.max_remote().into_inner());
            }
        }

        /// Credit used never exceeds the largest limit received.
        #[test]
        fn send_credit_never_exceeds_limit(
            ops in proptest::collection::vec((any::<bool>(), 0..10_000u64), 0..200),
        ) {
            let mut c = SendCredit::new(VarInt::ZERO);
            let mut largest = 0;
            for (is_update, x) in ops {
                if is_update {
                    c.on_max_update(v(x));
                    largest = largest.max(x);
                } else {
                    c.consume(x.min(c.available()));
                }
                prop_assert!(c.used() <= largest);
                prop_assert_eq!(c.max().into_inner(), largest);
            }
        }
    }
}
