//! Receiver-side acknowledgment state for one packet number space: which
//! packets arrived, duplicate suppression, when an ACK is due and what it
//! says (RFC 9000 §12.3, §13.2, §13.4.1).

use core::ops::RangeInclusive;
use core::time::Duration;

use crate::frame::{AckEncoder, EcnCounts};
use crate::range_set::RangeSet;
use crate::space::SpaceId;
use crate::time::Instant;
use crate::varint::VarInt;

/// The default ack-eliciting packet threshold: an ACK is sent after this many
/// ack-eliciting packets even if max_ack_delay has not elapsed.
//= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.2
//# A receiver SHOULD send an ACK frame after receiving at least two ack-eliciting
//# packets.
pub const DEFAULT_ACK_ELICITING_THRESHOLD: u64 = 2;

/// The default local max_ack_delay (the transport parameter's default,
/// RFC 9000 §18.2).
pub const DEFAULT_MAX_ACK_DELAY: Duration = Duration::from_millis(25);

/// The default cap on the number of packet number ranges remembered.
///
/// A hostile peer can create one range per packet by skipping packet
/// numbers; the cap bounds both memory and the size of the ACK frames built
/// from the ranges. 256 ranges fit in about 1 KiB of ACK frame at worst.
pub const DEFAULT_MAX_RANGES: usize = 256;

/// The ECN codepoint of a received IP packet (RFC 3168), when it is ECN-capable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcnCodepoint {
    /// ECT(0), codepoint 0b10.
    Ect0,
    /// ECT(1), codepoint 0b01.
    Ect1,
    /// Congestion Experienced, codepoint 0b11.
    Ce,
}

impl EcnCodepoint {
    /// The codepoint in the low two bits of an IP TOS / traffic class byte;
    /// `None` for Not-ECT.
    pub fn from_bits(tos: u8) -> Option<Self> {
        match tos & 0b11 {
            0b10 => Some(Self::Ect0),
            0b01 => Some(Self::Ect1),
            0b11 => Some(Self::Ce),
            _ => None,
        }
    }

    /// The two-bit codepoint.
    pub fn bits(self) -> u8 {
        match self {
            Self::Ect0 => 0b10,
            Self::Ect1 => 0b01,
            Self::Ce => 0b11,
        }
    }
}

/// What the receiver of one packet number space owes the peer in ACK frames.
///
/// One per packet number space. Call [`AckTracker::is_duplicate`] after a
/// packet's protection is removed, [`AckTracker::on_packet_received`] once
/// its frames have been processed, and build ACK frames with
/// [`AckTracker::ack_frame`] whenever [`AckTracker::ack_deadline`] has passed
/// (or whenever a packet is sent anyway, to piggyback one).
#[derive(Clone, Debug)]
pub struct AckTracker {
    space: SpaceId,
    max_ranges: usize,
    ack_eliciting_threshold: u64,
    max_ack_delay: Duration,

    /// Every packet number processed and still remembered, for duplicate
    /// suppression. Shed from the bottom when over `max_ranges`.
    received: RangeSet,
    /// Packet numbers below this count as duplicates: their ranges were shed.
    lowest_tracked: u64,
    /// What the next ACK frame reports: `received` minus what the peer has
    /// seen acknowledged (RFC 9000 §13.2.4), also capped at `max_ranges`.
    pending: RangeSet,

    /// The largest packet number received and when it arrived (ACK Delay).
    largest: Option<(u64, Instant)>,
    /// The largest ack-eliciting packet number received (§13.2.1 reordering).
    largest_ack_eliciting: Option<u64>,

    /// Ack-eliciting packets received since the last ACK was sent.
    ack_eliciting_since_ack: u64,
    /// When the first ack-eliciting packet not yet acknowledged arrived.
    first_unacked_eliciting: Option<Instant>,
    /// An ACK is due now: set by reordering, gaps, CE, the threshold or the
    /// Initial/Handshake rule.
    immediate: Option<Instant>,
    /// Packets (of any kind) arrived that no sent ACK has reported yet.
    new_since_ack: bool,

    ect0: u64,
    ect1: u64,
    ce: u64,
    ecn_seen: bool,
}

impl AckTracker {
    /// A tracker for `space` with the default threshold (2), max_ack_delay
    /// (25 ms) and range cap (256).
    pub fn new(space: SpaceId) -> Self {
        Self {
            space,
            max_ranges: DEFAULT_MAX_RANGES,
            ack_eliciting_threshold: DEFAULT_ACK_ELICITING_THRESHOLD,
            max_ack_delay: DEFAULT_MAX_ACK_DELAY,
            received: RangeSet::new(),
            lowest_tracked: 0,
            pending: RangeSet::new(),
            largest: None,
            largest_ack_eliciting: None,
            ack_eliciting_since_ack: 0,
            first_unacked_eliciting: None,
            immediate: None,
            new_since_ack: false,
            ect0: 0,
            ect1: 0,
            ce: 0,
            ecn_seen: false,
        }
    }

    /// Sets how many ack-eliciting packets trigger an ACK before the delay
    /// timer does (default 2; 0 is treated as 1). Applies from the next
    /// packet received.
    pub fn set_ack_eliciting_threshold(&mut self, threshold: u64) -> &mut Self {
        self.ack_eliciting_threshold = threshold.max(1);
        self
    }

    /// Sets the local max_ack_delay, the value advertised in the transport
    /// parameter (default 25 ms). Only the application data space delays
    /// ACKs; Initial and Handshake acknowledge at once.
    pub fn set_max_ack_delay(&mut self, max_ack_delay: Duration) -> &mut Self {
        self.max_ack_delay = max_ack_delay;
        self
    }

    /// Sets the cap on remembered packet number ranges (default 256, at
    /// least 1). Beyond it the lowest ranges are forgotten and everything
    /// below the remaining ones counts as a duplicate.
    pub fn set_max_ranges(&mut self, max_ranges: usize) -> &mut Self {
        self.max_ranges = max_ranges.max(1);
        self.enforce_range_cap();
        self
    }

    /// The packet number space this tracker acknowledges.
    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// The largest packet number processed so far, which packet number
    /// decoding needs (RFC 9000 §17.1, Appendix A.3).
    pub fn largest_received(&self) -> Option<u64> {
        self.largest.map(|(pn, _)| pn)
    }

    /// Whether a packet with number `pn` must be dropped as a duplicate:
    /// it was processed before, or it lies below the ranges still remembered.
    ///
    /// Call after removing packet protection and before processing frames.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-12.3
    //# A receiver MUST discard a newly unprotected packet unless it is certain that it
    //# has not processed another packet with the same packet number from the same
    //# packet number space.
    pub fn is_duplicate(&self, pn: u64) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-12.3
        //# The data required for
        //# detecting duplicates can be limited by maintaining a minimum packet number below
        //# which all packets are immediately dropped.
        pn < self.lowest_tracked || self.received.contains(pn)
    }

    /// Records packet `pn`, received at `now` with IP ECN marking `ecn`, once
    /// its frames have been processed. Returns `false`, changing nothing,
    /// for a duplicate (see [`AckTracker::is_duplicate`]).
    ///
    /// Updates the ECN counts, the ACK Delay reference and whether an ACK
    /// is due (see [`AckTracker::ack_deadline`]).
    //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2
    //# Endpoints acknowledge all packets they receive and process.
    pub fn on_packet_received(
        &mut self,
        now: Instant,
        pn: u64,
        ack_eliciting: bool,
        ecn: Option<EcnCodepoint>,
    ) -> bool {
        if self.is_duplicate(pn) || pn > VarInt::MAX.into_inner() {
            return false;
        }

        if ack_eliciting {
            let reordered = self.largest_ack_eliciting.is_some_and(|largest| pn < largest);
            let gap = self.largest_ack_eliciting.is_some_and(|largest| {
                pn > largest + 1 && !self.received.contains_range(largest + 1..pn)
            });
            //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
            //# In order to assist loss detection at the sender, an endpoint SHOULD generate
            //# and send an ACK frame without delay when it receives an ack-eliciting packet
            //# either:
            //#
            //# * when the received packet has a packet number less than another ack-eliciting
            //#   packet that has been received, or
            //# * when the packet has a packet number larger than the highest-numbered
            //#   ack-eliciting packet that has been received and there are missing packets
            //#   between that packet and this packet.
            let mut now_due = reordered || gap;
            //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
            //# Similarly, packets marked with the ECN Congestion Experienced (CE) codepoint in
            //# the IP header SHOULD be acknowledged immediately, to reduce the peer's response
            //# time to congestion events.
            now_due |= ecn == Some(EcnCodepoint::Ce);
            //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
            //# An endpoint MUST acknowledge all ack-eliciting Initial and Handshake packets
            //# immediately and all ack-eliciting 0-RTT and 1-RTT packets within its advertised
            //# max_ack_delay, with the following exception.
            now_due |= self.space != SpaceId::Data;

            self.ack_eliciting_since_ack += 1;
            now_due |= self.ack_eliciting_since_ack >= self.ack_eliciting_threshold;
            if now_due && self.immediate.is_none() {
                self.immediate = Some(now);
            }
            if self.first_unacked_eliciting.is_none() {
                self.first_unacked_eliciting = Some(now);
            }
            if self.largest_ack_eliciting.is_none_or(|largest| pn > largest) {
                self.largest_ack_eliciting = Some(pn);
            }
        }
        // Non-ack-eliciting packets never make an ACK due on their own.
        //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
        //# An endpoint MUST NOT send a non-ack-eliciting packet in response to a
        //# non-ack-eliciting packet, even if there are packet gaps that precede the
        //# received packet.

        self.received.insert_one(pn);
        self.pending.insert_one(pn);
        self.enforce_range_cap();
        self.new_since_ack = true;
        if self.largest.is_none_or(|(largest, _)| pn > largest) {
            self.largest = Some((pn, now));
        }

        //= https://www.rfc-editor.org/rfc/rfc9000#section-13.4.1
        //# On receiving an IP packet with an ECT(0), ECT(1), or ECN-CE codepoint, an
        //# ECN-enabled endpoint accesses the ECN field and increases the corresponding
        //# ECT(0), ECT(1), or ECN-CE count.
        match ecn {
            Some(EcnCodepoint::Ect0) => self.ect0 += 1,
            Some(EcnCodepoint::Ect1) => self.ect1 += 1,
            Some(EcnCodepoint::Ce) => self.ce += 1,
            None => {}
        }
        self.ecn_seen |= ecn.is_some();
        true
    }

    /// Sheds the lowest ranges beyond the cap. Forgetting a received range
    /// raises the duplicate floor past it.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.3
    //# A receiver MUST retain an ACK Range unless it can ensure that it will not
    //# subsequently accept packets with numbers in that range.
    fn enforce_range_cap(&mut self) {
        if self.received.len() > self.max_ranges {
            while self.received.len() > self.max_ranges {
                self.received.pop_min();
            }
            // Everything below the ranges kept is now a duplicate, including
            // packets never received: the peer will have declared those
            // lost long ago.
            let floor = self.received.min().unwrap_or(self.lowest_tracked);
            self.lowest_tracked = self.lowest_tracked.max(floor);
        }
        while self.pending.len() > self.max_ranges {
            self.pending.pop_min();
        }
    }

    /// When an ACK frame must be sent at the latest, if one is owed: at once
    /// (the time the triggering packet arrived, possibly in the past) after
    /// reordering, a gap, a CE mark, the ack-eliciting threshold or any
    /// ack-eliciting Initial or Handshake packet; otherwise max_ack_delay
    /// after the first unacknowledged ack-eliciting packet. `None` when
    /// only non-ack-eliciting packets are unacknowledged.
    pub fn ack_deadline(&self) -> Option<Instant> {
        if let Some(t) = self.immediate {
            return Some(t);
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
        //# Every packet SHOULD be acknowledged at least once, and ack-eliciting packets
        //# MUST be acknowledged at least once within the maximum delay an endpoint
        //# communicated using the max_ack_delay transport parameter; see
        //# {{transport-parameter-definitions}}.
        self.first_unacked_eliciting.map(|t| t + self.max_ack_delay)
    }

    /// Whether an ACK frame should go out now (the deadline has passed).
    pub fn is_ack_due(&self, now: Instant) -> bool {
        self.ack_deadline().is_some_and(|t| t <= now)
    }

    /// Whether packets arrived that no sent ACK has reported yet, ack-eliciting
    /// or not: an ACK may be piggybacked on any packet being sent anyway.
    pub fn has_unreported(&self) -> bool {
        self.new_since_ack && !self.pending.is_empty()
    }

    /// The ECN counts so far, if any packet arrived ECN-marked.
    pub fn ecn_counts(&self) -> Option<EcnCounts> {
        self.ecn_seen.then(|| EcnCounts {
            ect0: VarInt::saturating_from_u64(self.ect0),
            ect1: VarInt::saturating_from_u64(self.ect1),
            ce: VarInt::saturating_from_u64(self.ce),
        })
    }

    /// An ACK frame reporting the pending ranges, largest first, with the
    /// ACK Delay measured from the arrival of the largest packet to `now`
    /// and scaled by the local `ack_delay_exponent`, and ECN counts once any
    /// ECN-marked packet arrived. `None` when there is nothing to report.
    ///
    /// Changes nothing: call [`AckTracker::on_ack_sent`] once the frame is
    /// in a packet that is sent. Use [`AckEncoder::fit_to`] to bound its size.
    pub fn ack_frame(
        &self,
        now: Instant,
        ack_delay_exponent: u8,
    ) -> Option<AckEncoder<impl Iterator<Item = RangeInclusive<u64>> + Clone + '_>> {
        let ranges = self.pending.iter().rev().map(|r| r.start..=r.end - 1);
        //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.5
        //# An endpoint measures the delays intentionally introduced between the time the
        //# packet with the largest packet number is received and the time an acknowledgment
        //# is sent.
        let delay = match self.largest {
            Some((pn, received)) if self.pending.max() == Some(pn) => now - received,
            // The largest was reported and acknowledged already; older
            // packets' arrival times are not kept, so report no delay.
            _ => Duration::ZERO,
        };
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        let shift = u32::from(ack_delay_exponent.min(20));
        let encoder = AckEncoder::new(ranges, VarInt::saturating_from_u64(micros >> shift))?;
        Some(match self.ecn_counts() {
            Some(ecn) => encoder.with_ecn(ecn),
            None => encoder,
        })
    }

    /// Records that a packet carrying the frame from [`AckTracker::ack_frame`]
    /// was sent: the ACK is no longer owed. Returns the frame's Largest
    /// Acknowledged, to keep with the sent packet and pass to
    /// [`AckTracker::on_ack_of_ack`] when that packet is acknowledged.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
    //# Since packets containing only ACK frames are not congestion controlled, an
    //# endpoint MUST NOT send more than one such packet in response to receiving an
    //# ack-eliciting packet.
    pub fn on_ack_sent(&mut self) -> Option<u64> {
        self.ack_eliciting_since_ack = 0;
        self.first_unacked_eliciting = None;
        self.immediate = None;
        self.new_since_ack = false;
        self.pending.max()
    }

    /// The peer acknowledged a packet that carried an ACK frame whose
    /// Largest Acknowledged was `largest_acked`: stop reporting packet numbers
    /// up to it. Duplicate detection still remembers them.
    //= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.3
    //# After receiving acknowledgments for an ACK frame, the receiver
    //# SHOULD stop tracking those acknowledged ACK Ranges.
    pub fn on_ack_of_ack(&mut self, largest_acked: u64) {
        self.pending.remove(0..largest_acked.saturating_add(1));
    }
}

#[cfg(test)]
#[path = "ack_tracker_tests.rs"]
mod tests;
