//! Sender-side records for one packet number space: the packets in flight
//! (RFC 9002 Appendix A.1), packet number allocation with deliberate skips
//! against optimistic ACKs (RFC 9000 §21.4), and the checks an incoming ACK
//! frame must pass before it changes anything.

use std::collections::{BTreeMap, VecDeque};

use crate::error::TransportError;
use crate::frame::Ack;
use crate::random::RandomSource;
use crate::time::Instant;
use crate::varint::VarInt;

/// A packet that was sent and is neither acknowledged nor declared lost
/// (RFC 9002 Appendix A.1.1), with the caller's `payload`: typically what it
/// carried, to retransmit on loss or release on acknowledgment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentPacket<T> {
    /// The packet number.
    pub packet_number: u64,
    /// When the packet was sent.
    pub time_sent: Instant,
    /// Bytes sent in the packet, including QUIC framing and AEAD overhead but
    /// not UDP or IP headers.
    pub sent_bytes: u64,
    /// Whether the packet carries a frame other than ACK, PADDING and
    /// CONNECTION_CLOSE, so that the peer must acknowledge it.
    pub ack_eliciting: bool,
    /// Whether the packet counts toward bytes in flight: ack-eliciting or
    /// carrying PADDING.
    pub in_flight: bool,
    /// Whether the sender was limited by the application or flow control
    /// rather than the congestion window when it sent the packet (the
    /// window does not grow on its acknowledgment, RFC 9002 §7.8).
    pub app_limited: bool,
    /// What the caller stored with the packet.
    pub payload: T,
}

/// How many deliberately skipped packet numbers are remembered per space.
/// Older skips are forgotten: an optimistic ACK is caught as long as it
/// covers a recent one, and the peer cannot tell which numbers were skipped.
const MAX_SKIPPED: usize = 32;

/// Skips are drawn uniformly from this many packets apart, a few hundred on
/// average: rare enough to cost little (a skip looks like one lost packet to
/// the peer's ACK ranges and makes the packet threshold count one short),
/// frequent enough that an optimistic ACK lands on one quickly.
const SKIP_MIN_GAP: u64 = 64;
const SKIP_SPREAD: u64 = 448;

/// Packets that elicit no acknowledgment (ACK-only) remembered per space.
/// A peer acknowledges them only in passing, with a later ack-eliciting
/// packet of ours, and a hostile one never: past this many the oldest
/// records are forgotten. All they were for is knowing which of our ACK
/// ranges the peer has seen; forgetting one costs nothing else.
const MAX_NON_ELICITING: usize = 256;

/// A packet number above which nothing may be sent (2^62-1).
//= https://www.rfc-editor.org/rfc/rfc9000#section-12.3
//# If the packet number for sending reaches 2<sup>62</sup>-1, the sender MUST close the
//# connection without sending a CONNECTION_CLOSE frame or any further packets; an
//# endpoint MAY send a Stateless Reset ({{stateless-reset}}) in response to further
//# packets that it receives.
const PN_LIMIT: u64 = VarInt::MAX.into_inner();

#[derive(Clone, Debug)]
pub(super) struct Entry<T> {
    /// Path-wide send order, to compare packets across spaces (RFC 9002 §7.6.2).
    pub(super) seq: u64,
    pub(super) packet: SentPacket<T>,
}

/// The sent-packet state of one packet number space.
#[derive(Clone, Debug)]
pub(super) struct SentSpace<T> {
    pub(super) sent: BTreeMap<u64, Entry<T>>,
    /// The next packet number to hand out.
    next_pn: u64,
    /// The packet number to skip next, drawn when the first number is handed out.
    next_skip: Option<u64>,
    /// Recently skipped packet numbers, oldest first.
    skipped: VecDeque<u64>,
    /// Whether this space skips packet numbers at all.
    skips: bool,
    /// Numbers of recorded packets that elicit no acknowledgment, oldest
    /// first (some may be gone already); at most `MAX_NON_ELICITING`.
    non_eliciting: VecDeque<u64>,
    /// The largest packet number recorded by `on_packet_sent`.
    pub(super) largest_sent: Option<u64>,
    pub(super) largest_acked: Option<u64>,
    pub(super) time_of_last_ack_eliciting: Option<Instant>,
    pub(super) loss_time: Option<Instant>,
    /// The largest ECN-CE count the peer reported in this space.
    pub(super) ecn_ce: u64,
    /// Ack-eliciting, in-flight packets outstanding.
    pub(super) ack_eliciting_in_flight: usize,
    /// In-flight bytes outstanding in this space.
    pub(super) bytes_in_flight: u64,
}

impl<T> SentSpace<T> {
    pub(super) fn new(skips: bool) -> Self {
        Self {
            sent: BTreeMap::new(),
            next_pn: 0,
            next_skip: None,
            skipped: VecDeque::new(),
            skips,
            non_eliciting: VecDeque::new(),
            largest_sent: None,
            largest_acked: None,
            time_of_last_ack_eliciting: None,
            loss_time: None,
            ecn_ce: 0,
            ack_eliciting_in_flight: 0,
            bytes_in_flight: 0,
        }
    }

    /// The packet number for the next packet, occasionally skipping one.
    pub(super) fn next_packet_number(&mut self, rng: &mut dyn RandomSource) -> Option<u64> {
        if self.skips {
            let skip = *self
                .next_skip
                .get_or_insert_with(|| self.next_pn + SKIP_MIN_GAP + rng.below(SKIP_SPREAD));
            if skip == self.next_pn {
                //= https://www.rfc-editor.org/rfc/rfc9000#section-21.4
                //# An endpoint MAY skip packet numbers when sending packets to detect
                //# this behavior.
                if self.skipped.len() == MAX_SKIPPED {
                    self.skipped.pop_front();
                }
                self.skipped.push_back(skip);
                self.next_pn += 1;
                self.next_skip = Some(self.next_pn + SKIP_MIN_GAP + rng.below(SKIP_SPREAD));
            }
        }
        let pn = self.next_pn;
        if pn >= PN_LIMIT {
            return None;
        }
        self.next_pn += 1;
        Some(pn)
    }

    /// The packet number the next call to `next_packet_number` starts from.
    pub(super) fn peek_next(&self) -> u64 {
        self.next_pn
    }

    /// Records a packet; returns false, recording nothing, if its number
    /// does not increase (a caller bug).
    pub(super) fn insert(&mut self, seq: u64, packet: SentPacket<T>) -> bool {
        let pn = packet.packet_number;
        if self.largest_sent.is_some_and(|l| pn <= l) || pn >= PN_LIMIT {
            return false;
        }
        self.largest_sent = Some(pn);
        // A caller that numbers packets itself keeps our counter ahead.
        self.next_pn = self.next_pn.max(pn + 1);
        if packet.in_flight {
            self.bytes_in_flight += packet.sent_bytes;
            if packet.ack_eliciting {
                self.ack_eliciting_in_flight += 1;
            }
        }
        let ack_eliciting = packet.ack_eliciting;
        self.sent.insert(pn, Entry { seq, packet });
        if !ack_eliciting {
            if self.non_eliciting.len() == MAX_NON_ELICITING
                && let Some(oldest) = self.non_eliciting.pop_front()
            {
                self.remove(oldest);
            }
            self.non_eliciting.push_back(pn);
        }
        true
    }

    /// Records kept (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sent.len()
    }

    /// Removes a record, keeping the in-flight counts right.
    pub(super) fn remove(&mut self, pn: u64) -> Option<Entry<T>> {
        let entry = self.sent.remove(&pn)?;
        if entry.packet.in_flight {
            self.bytes_in_flight -= entry.packet.sent_bytes;
            if entry.packet.ack_eliciting {
                self.ack_eliciting_in_flight -= 1;
            }
        }
        Some(entry)
    }

    /// Rejects an ACK frame that acknowledges a packet number never sent in
    /// this space, before anything is changed.
    ///
    /// The work is one step per ACK range down to the oldest remembered
    /// skip, and nothing is allocated.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-13.1
    //# An endpoint SHOULD treat receipt of an acknowledgment for a packet it did not
    //# send as a connection error of type PROTOCOL_VIOLATION, if it is able to detect
    //# the condition.
    pub(super) fn validate(&self, ack: &Ack<'_>) -> Result<(), TransportError> {
        let violation =
            |reason| Err(TransportError::protocol_violation(reason).with_frame(ack.ty()));
        if self.largest_sent.is_none_or(|l| ack.largest() > l) {
            return violation("ACK of a packet number not yet sent");
        }
        let Some(&oldest_skip) = self.skipped.front() else {
            return Ok(());
        };
        // Skips are ascending; ranges come largest first.
        for range in ack.ranges() {
            if *range.end() < oldest_skip {
                break;
            }
            //= https://www.rfc-editor.org/rfc/rfc9000#section-21.4
            //# An endpoint can then immediately close the connection with a
            //# connection error of type PROTOCOL_VIOLATION; see {{immediate-close}}.
            if self.skipped.iter().any(|pn| range.contains(pn)) {
                return violation("ACK of a skipped packet number");
            }
        }
        Ok(())
    }

    /// Forgets every record (keys discarded, or a Retry restarted the
    /// handshake), returning them oldest first.
    pub(super) fn drain(&mut self) -> Vec<SentPacket<T>> {
        self.bytes_in_flight = 0;
        self.ack_eliciting_in_flight = 0;
        self.time_of_last_ack_eliciting = None;
        self.loss_time = None;
        self.non_eliciting.clear();
        core::mem::take(&mut self.sent).into_values().map(|e| e.packet).collect()
    }

    /// The skipped numbers still remembered (for tests and diagnostics).
    #[cfg(test)]
    pub(super) fn skipped(&self) -> impl Iterator<Item = u64> + '_ {
        self.skipped.iter().copied()
    }
}
