//! Timers and closing (RFC 9000 §10; RFC 9002 §6.2): one absolute deadline
//! out, expiries in.

use super::{CloseFrame, Connection, ConnectionError, Event, State};
use crate::qlog::events::{ConnectionState, Initiator};
use crate::recovery::{LossTimeout, LossTimerKind};
use crate::space::SpaceId;
use crate::time::Instant;

impl Connection {
    /// The earliest pending deadline.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Drained => return None,
            State::Closing { until, .. } | State::Draining { until } => return Some(until),
            State::Handshake | State::Established => {}
        }
        let mut next = self.idle_deadline;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.loss.timer());
        for space in &self.spaces {
            if !space.discarded && space.ack.has_unreported() {
                consider(space.ack.ack_deadline());
            }
        }
        consider(self.one_rtt.as_ref().and_then(|k| k.timer()));
        consider(self.keep_alive_deadline());
        next
    }

    fn keep_alive_deadline(&self) -> Option<Instant> {
        let interval = self.config.keep_alive_interval?;
        if !self.handshake_complete {
            return None;
        }
        Some(self.last_ack_eliciting_sent.unwrap_or(Instant::ZERO) + interval)
    }

    pub(super) fn on_timeout(&mut self, now: Instant) {
        match self.state {
            State::Drained => return,
            State::Closing { until, .. } | State::Draining { until } => {
                if now >= until {
                    //= https://www.rfc-editor.org/rfc/rfc9000#section-10.2
                    //# Once its closing or draining state ends, an endpoint SHOULD discard all
                    //# connection state.
                    self.state = State::Drained;
                    self.qlog_state(now, ConnectionState::Closed);
                    self.events.push_back(Event::Drained);
                }
                return;
            }
            State::Handshake | State::Established => {}
        }
        if self.idle_deadline.is_some_and(|d| now >= d) {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-10.1
            //# If a max_idle_timeout is specified by either endpoint in its transport
            //# parameters (Section 18.2), the connection is silently closed
            //# and its state is discarded when it remains idle for longer than the minimum of
            //# the max_idle_timeout value advertised by both endpoints.
            self.error = Some(ConnectionError::TimedOut);
            self.events.push_back(Event::ConnectionLost(ConnectionError::TimedOut));
            self.state = State::Drained;
            let error = ConnectionError::TimedOut;
            self.qlog_closed(now, Initiator::Local, &error, ConnectionState::Closed);
            self.events.push_back(Event::Drained);
            return;
        }
        if let Some(keys) = self.one_rtt.as_mut() {
            let had_previous = keys.timer().is_some();
            keys.on_timeout(now);
            if had_previous && keys.timer().is_none() {
                self.qlog_previous_1rtt_key_discarded(now);
            }
        }
        if self.keep_alive_deadline().is_some_and(|d| now >= d) {
            self.ping_pending = true;
        }
        // Declaring packets lost re-arms the timer, perhaps for a probe
        // timeout already in the past ("executed immediately", RFC 9002
        // §6.2.2.1): run that too, so that the deadline left behind is
        // later than `now` and a driver never spins on it. Bounded: one
        // time-threshold pass per space and then a probe, whose packets
        // (sent next) move the timer past `now`.
        for _ in 0..4 {
            match self.loss.on_loss_detection_timeout(now, &mut *self.cc) {
                Some(LossTimeout::Lost { space, lost, .. }) => {
                    self.qlog_loss_timer_expired(now, LossTimerKind::TimeThreshold, space);
                    self.qlog_lost(now, space, &lost);
                    self.on_packets_lost(space, lost);
                }
                Some(LossTimeout::Probe { space, count }) => {
                    self.qlog_loss_timer_expired(now, LossTimerKind::Probe, space);
                    self.spaces[space as usize].probes = count;
                    self.requeue_for_probe(space, count);
                    //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.4
                    //# In addition to sending data in the packet number space for which the timer
                    //# expired, the sender SHOULD send ack-eliciting packets from other packet number
                    //# spaces with in-flight data, coalescing packets if possible.
                    //
                    // Also what keeps the timer honest: probing one space
                    // alone would leave the other's older deadline due at
                    // once after the probe is sent.
                    for other in SpaceId::ALL {
                        let s = &self.spaces[other as usize];
                        if other != space
                            && !s.discarded
                            && s.probes == 0
                            && self.loss.has_ack_eliciting_in_flight(other)
                        {
                            self.spaces[other as usize].probes = 1;
                            self.requeue_for_probe(other, 1);
                        }
                    }
                    break;
                }
                Some(LossTimeout::AntiDeadlock { space }) => {
                    self.qlog_loss_timer_expired(now, LossTimerKind::Probe, space);
                    self.spaces[space as usize].probes = 1;
                    self.requeue_for_probe(space, 1);
                    break;
                }
                None => break,
            }
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.4
    //# An endpoint SHOULD include new data in packets that are sent on PTO expiration.
    //# Previously sent data MAY be sent if no new data can be sent.
    /// Gives PTO probes something worth sending: all unacknowledged CRYPTO
    /// data in the handshake spaces (a lost flight recovers in one probe),
    /// and in the application space what the oldest `count` unacknowledged
    /// ack-eliciting packets carried (new stream data still goes first).
    pub(super) fn requeue_for_probe(&mut self, space: SpaceId, count: u8) {
        let outstanding: Vec<_> = if space == SpaceId::Data {
            self.loss
                .outstanding(space)
                .filter(|p| p.ack_eliciting)
                .take(usize::from(count))
                .map(|p| p.payload.clone())
                .collect()
        } else {
            self.loss
                .outstanding(space)
                .filter_map(|p| p.payload.crypto.clone())
                .map(|range| super::spaces::SentFrames {
                    crypto: Some(range),
                    ..Default::default()
                })
                .collect()
        };
        for frames in outstanding {
            self.requeue_frames(space, frames);
        }
    }

    pub(super) fn reset_idle_timer(&mut self, now: Instant) {
        self.ack_eliciting_since_receive = false;
        self.idle_deadline = self.idle_period().map(|p| now + p);
    }

    pub(super) fn restart_idle_on_send(&mut self, now: Instant) {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.1
        //# An endpoint also restarts its
        //# idle timer when sending an ack-eliciting packet if no other ack-eliciting
        //# packets have been sent since last receiving and processing a packet.
        if !self.ack_eliciting_since_receive {
            self.ack_eliciting_since_receive = true;
            self.idle_deadline = self.idle_period().map(|p| now + p);
        }
    }

    fn idle_period(&self) -> Option<core::time::Duration> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.1
        //# To avoid excessively small idle timeout periods, endpoints MUST increase
        //# the idle timeout period to be at least three times the current Probe
        //# Timeout (PTO).
        // Once the handshake is confirmed, probes are application data
        // packets, whose PTO includes the peer's max_ack_delay.
        let space = if self.handshake_confirmed { SpaceId::Data } else { SpaceId::Initial };
        let pto = self.loss.pto_period(space);
        self.idle_timeout.map(|t| t.max(3 * pto))
    }

    /// This endpoint closes: send CONNECTION_CLOSE now and in answer to
    /// further packets, for three PTOs (RFC 9000 §10.2.1).
    pub(super) fn enter_closing(
        &mut self,
        now: Instant,
        close: CloseFrame,
        error: ConnectionError,
    ) {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-10.2
        //# The closing and draining connection states exist to ensure that
        //# connections close cleanly and that delayed or reordered packets are
        //# properly discarded.  These states SHOULD persist for at least three
        //# times the current PTO interval as defined in [QUIC-RECOVERY].
        let until = now + 3 * self.loss.pto_period(SpaceId::Data);
        self.state = State::Closing { until, close };
        self.close_pending = true;
        self.qlog_closed(now, Initiator::Local, &error, ConnectionState::Closing);
        if self.error.is_none() {
            self.error = Some(error.clone());
            self.events.push_back(Event::ConnectionLost(error));
        }
    }
}
