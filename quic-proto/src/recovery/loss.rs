//! Loss detection for one path across the three packet number spaces
//! (RFC 9002 §5, §6, §7.6 and Appendix A): RTT sampling from ACK frames,
//! packet- and time-threshold loss, the probe timeout, persistent
//! congestion, ECN-CE reactions and discarding a space's state.
//!
//! The functions keep the names of the RFC's pseudocode so the two can be
//! read side by side. The congestion controller is called, never owned.

use core::time::Duration;

use super::rtt::RttEstimator;
use super::sent::{Entry, SentPacket, SentSpace};
use crate::congestion::Controller;
use crate::error::TransportError;
use crate::frame::Ack;
use crate::random::RandomSource;
use crate::range_set::RangeSet;
use crate::space::SpaceId;
use crate::stream_id::Side;
use crate::time::Instant;

/// kPacketThreshold: how many packets after a packet must be acknowledged
/// before it is deemed lost (RFC 9002 §6.1.1).
//= https://www.rfc-editor.org/rfc/rfc9002#section-6.1.1
//# The RECOMMENDED initial value for the packet reordering threshold
//# (kPacketThreshold) is 3, based on best practices for TCP loss detection
//# {{?RFC5681}} {{?RFC6675}}.  In order to remain similar to TCP,
//# implementations SHOULD NOT use a packet threshold less than 3; see {{?RFC5681}}.
pub const PACKET_THRESHOLD: u64 = 3;

/// kPersistentCongestionThreshold (RFC 9002 §7.6.1).
//= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.1
//# The RECOMMENDED value for kPersistentCongestionThreshold is 3, which results in
//# behavior that is approximately equivalent to a TCP sender declaring an RTO after
//# two TLPs.
pub const PERSISTENT_CONGESTION_THRESHOLD: u32 = 3;

/// How many probe datagrams a PTO asks for.
//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.4
//# An endpoint MAY send up to two
//# full-sized datagrams containing ack-eliciting packets to avoid an expensive
//# consecutive PTO expiration due to a single lost datagram or to transmit data
//# from multiple packet number spaces.
pub const PTO_PROBES: u8 = 2;

/// The peer's ack_delay_exponent until its transport parameters arrive.
const DEFAULT_ACK_DELAY_EXPONENT: u8 = 3;

/// The peer's max_ack_delay until its transport parameters arrive.
const DEFAULT_MAX_ACK_DELAY: Duration = Duration::from_millis(25);

/// What an ACK frame changed, from [`LossDetection::on_ack_received`].
#[derive(Debug)]
#[non_exhaustive]
pub struct AckOutcome<T> {
    /// Packets newly acknowledged, in packet number order.
    pub acked: Vec<SentPacket<T>>,
    /// Packets newly declared lost, in packet number order: their
    /// retransmittable frames go out again in new packets.
    pub lost: Vec<SentPacket<T>>,
    /// Whether the ACK produced an RTT sample.
    pub rtt_sampled: bool,
    /// Whether the peer's ECN-CE count rose, a congestion event.
    pub ecn_ce_increased: bool,
    /// Whether the losses established persistent congestion (RFC 9002 §7.6).
    pub persistent_congestion: bool,
}

impl<T> AckOutcome<T> {
    fn empty() -> Self {
        Self {
            acked: Vec::new(),
            lost: Vec::new(),
            rtt_sampled: false,
            ecn_ce_increased: false,
            persistent_congestion: false,
        }
    }
}

/// What the caller must do after the loss detection timer fired, from
/// [`LossDetection::on_loss_detection_timeout`].
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum LossTimeout<T> {
    /// Time-threshold loss: these packets of `space` are lost; retransmit
    /// what they carried.
    Lost {
        /// The space the packets were sent in.
        space: SpaceId,
        /// The lost packets, in packet number order.
        lost: Vec<SentPacket<T>>,
        /// Whether the losses established persistent congestion.
        persistent_congestion: bool,
    },
    /// The probe timeout fired: send up to `count` ack-eliciting packets in
    /// `space`, new data if there is some, else retransmitted data, else a
    /// PING, bypassing the congestion window. Probes should also carry
    /// ack-eliciting packets of other spaces with data in flight.
    Probe {
        /// The space to probe.
        space: SpaceId,
        /// How many ack-eliciting packets to send (at least one).
        count: u8,
    },
    /// The client's anti-deadlock probe: the server may be blocked by its
    /// anti-amplification limit. Send one ack-eliciting packet in `space`: a
    /// Handshake packet, or an Initial packet in a datagram padded to at
    /// least 1200 bytes.
    //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2.1
    //# When the PTO fires, the client MUST
    //# send a Handshake packet if it has Handshake keys, otherwise it MUST send an
    //# Initial packet in a UDP datagram with a payload of at least 1200 bytes.
    AntiDeadlock {
        /// Handshake if the client has Handshake keys, else Initial.
        space: SpaceId,
    },
}

/// The armed loss detection timer (RFC 9002 Appendix A.8): one timer with
/// two modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossTimer {
    /// When it fires.
    pub deadline: Instant,
    /// What it is armed for.
    pub kind: LossTimerKind,
    /// The packet number space it is armed for.
    pub space: SpaceId,
}

/// The two modes of the loss detection timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossTimerKind {
    /// Time-threshold loss detection (RFC 9002 §6.1.2): packets sent before
    /// the largest acknowledged become lost when it fires.
    TimeThreshold,
    /// The probe timeout (RFC 9002 §6.2), including the client's
    /// anti-deadlock timer.
    Probe,
}

/// Why loss detection declared a packet lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossTrigger {
    /// `kPacketThreshold` later packets were acknowledged (RFC 9002 §6.1.1).
    ReorderingThreshold,
    /// It was sent long enough before a later acknowledged packet
    /// (RFC 9002 §6.1.2).
    TimeThreshold,
}

/// Loss detection and the loss detection timer for one path
/// (RFC 9002 Appendix A), generic over the payload `T` the caller keeps
/// with each sent packet.
///
/// Drive it with [`LossDetection::on_packet_sent`] for every packet sent,
/// [`LossDetection::on_ack_received`] for every ACK frame received,
/// [`LossDetection::on_loss_detection_timeout`] when [`LossDetection::timer`]
/// has passed, and the handshake milestones ([`LossDetection::on_handshake_keys`],
/// [`LossDetection::on_handshake_confirmed`],
/// [`LossDetection::on_space_discarded`],
/// [`LossDetection::set_amplification_blocked`]).
#[derive(Debug)]
pub struct LossDetection<T> {
    side: Side,
    spaces: [SentSpace<T>; 3],
    discarded: [bool; 3],
    rtt: RttEstimator,
    pto_count: u32,
    /// loss_detection_timer: `None` when cancelled.
    timer: Option<LossTimer>,
    /// The peer's max_ack_delay transport parameter.
    max_ack_delay: Duration,
    /// The peer's ack_delay_exponent transport parameter.
    ack_delay_exponent: u8,
    handshake_confirmed: bool,
    has_handshake_keys: bool,
    /// A client has had an ACK for one of its Handshake packets.
    handshake_ack_received: bool,
    /// A server that cannot send anything more until it receives a datagram.
    amplification_blocked: bool,
    /// Path-wide send order, given to every packet sent in any space.
    next_seq: u64,
    /// The send orders of acknowledged packets, kept no further back than the
    /// oldest packet still outstanding: persistent congestion needs to know
    /// whether any packet sent between two lost ones was acknowledged, in
    /// any space (RFC 9002 §7.6.2).
    acked_seqs: RangeSet,
}

impl<T> LossDetection<T> {
    /// Loss detection for a new path on the `side` of the connection,
    /// assuming `initial_rtt` until the first RTT sample (RFC 9002 §6.2.2:
    /// 333 ms, [`super::rtt::INITIAL_RTT`], unless a previous connection
    /// measured the path).
    ///
    /// Only the application data space skips packet numbers: it is where an
    /// optimistic ACK could inflate the congestion window.
    pub fn new(side: Side, initial_rtt: Duration) -> Self {
        Self {
            side,
            spaces: [SentSpace::new(false), SentSpace::new(false), SentSpace::new(true)],
            discarded: [false; 3],
            rtt: RttEstimator::new(initial_rtt),
            pto_count: 0,
            timer: None,
            max_ack_delay: DEFAULT_MAX_ACK_DELAY,
            ack_delay_exponent: DEFAULT_ACK_DELAY_EXPONENT,
            handshake_confirmed: false,
            has_handshake_keys: false,
            handshake_ack_received: false,
            amplification_blocked: false,
            next_seq: 0,
            acked_seqs: RangeSet::new(),
        }
    }

    /// Sets the peer's max_ack_delay transport parameter (default 25 ms).
    /// Takes effect at the next timer update.
    pub fn set_peer_max_ack_delay(&mut self, max_ack_delay: Duration) -> &mut Self {
        self.max_ack_delay = max_ack_delay;
        self
    }

    /// Sets the peer's ack_delay_exponent transport parameter (default 3),
    /// used to decode the ACK Delay of ACK frames received afterwards.
    pub fn set_peer_ack_delay_exponent(&mut self, exponent: u8) -> &mut Self {
        self.ack_delay_exponent = exponent;
        self
    }

    /// The path's RTT estimate.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// Bytes of in-flight packets neither acknowledged nor declared lost,
    /// across all spaces: compare with the congestion window.
    pub fn bytes_in_flight(&self) -> u64 {
        self.spaces.iter().map(|s| s.bytes_in_flight).sum()
    }

    /// Whether ack-eliciting packets of `space` are in flight: such spaces
    /// should get a probe too when a PTO fires (RFC 9002 §6.2.4).
    pub fn has_ack_eliciting_in_flight(&self, space: SpaceId) -> bool {
        self.space(space).ack_eliciting_in_flight > 0
    }

    /// How many PTOs fired since the last acknowledgment reset the backoff.
    pub fn pto_count(&self) -> u32 {
        self.pto_count
    }

    /// The loss detection timer: when to call
    /// [`LossDetection::on_loss_detection_timeout`]. It may lie in the past,
    /// in which case it is due at once. `None` when nothing is to be
    /// detected.
    pub fn timer(&self) -> Option<Instant> {
        self.timer.map(|t| t.deadline)
    }

    /// The loss detection timer with what it is armed for: the
    /// time-threshold loss timeout or the probe timeout, and the space.
    pub fn timer_detail(&self) -> Option<LossTimer> {
        self.timer
    }

    /// Why packet `pn` of `space`, just declared lost, was: a packet
    /// `kPacketThreshold` older than the largest acknowledged is lost by
    /// the reordering threshold, any other by the time threshold (the two
    /// tests of DetectAndRemoveLostPackets, RFC 9002 §6.1).
    pub fn loss_trigger(&self, space: SpaceId, pn: u64) -> LossTrigger {
        match self.space(space).largest_acked {
            Some(largest) if largest >= pn.saturating_add(PACKET_THRESHOLD) => {
                LossTrigger::ReorderingThreshold
            }
            _ => LossTrigger::TimeThreshold,
        }
    }

    /// The largest packet number the peer acknowledged in `space`.
    pub fn largest_acked(&self, space: SpaceId) -> Option<u64> {
        self.space(space).largest_acked
    }

    /// The PTO period for `space` without backoff: smoothed_rtt +
    /// max(4*rttvar, kGranularity), plus the peer's max_ack_delay in the
    /// application data space (RFC 9002 §6.2.1). Closing and draining last
    /// three times this (RFC 9000 §10.2).
    pub fn pto_period(&self, space: SpaceId) -> Duration {
        match space {
            SpaceId::Data => self.rtt.pto_base() + self.max_ack_delay,
            //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
            //# When the PTO is armed for Initial or Handshake packet number spaces, the
            //# max_ack_delay in the PTO period computation is set to 0, since the peer is
            //# expected to not delay these packets intentionally; see {{Section 13.2.1 of
            //# QUIC-TRANSPORT}}.
            SpaceId::Initial | SpaceId::Handshake => self.rtt.pto_base(),
        }
    }

    /// The number for the next packet sent in `space`. About one number in a
    /// few hundred of the application data space is skipped at random, so
    /// that a peer acknowledging packets it never received is caught
    /// (RFC 9000 §21.4). Every number returned must be used for a packet
    /// passed to [`LossDetection::on_packet_sent`], in order.
    ///
    /// `None` when the space's numbers are exhausted: the connection must
    /// then close silently (RFC 9000 §12.3).
    pub fn next_packet_number(
        &mut self,
        space: SpaceId,
        rng: &mut dyn RandomSource,
    ) -> Option<u64> {
        self.space_mut(space).next_packet_number(rng)
    }

    /// The number [`LossDetection::next_packet_number`] would return if it
    /// did not skip, for packet number encoding estimates.
    pub fn peek_packet_number(&self, space: SpaceId) -> u64 {
        self.space(space).peek_next()
    }

    /// OnPacketSent: records `packet`, sent in `space` at `packet.time_sent`
    /// (the current time), tells `cc` about in-flight bytes and re-arms the
    /// timer. Packet numbers must increase within a space; a packet whose
    /// number does not is a caller bug and is not recorded.
    pub fn on_packet_sent(
        &mut self,
        space: SpaceId,
        packet: SentPacket<T>,
        cc: &mut dyn Controller,
    ) {
        let now = packet.time_sent;
        let (in_flight, ack_eliciting, bytes) =
            (packet.in_flight, packet.ack_eliciting, packet.sent_bytes);
        let seq = self.next_seq;
        let s = &mut self.spaces[space as usize];
        let recorded = s.insert(seq, packet);
        debug_assert!(recorded, "packet numbers must increase within a space");
        if !recorded {
            return;
        }
        self.next_seq += 1;
        if in_flight {
            if ack_eliciting {
                s.time_of_last_ack_eliciting = Some(now);
            }
            cc.on_packet_sent(now, bytes);
            //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
            //# A sender SHOULD restart its PTO timer every time an ack-eliciting packet is
            //# sent or acknowledged, or when Initial or Handshake keys are discarded
            //# ({{Section 4.9 of QUIC-TLS}}).
            self.set_loss_detection_timer(now);
        }
    }

    /// OnAckReceived: processes an ACK frame received at `now` in `space`.
    ///
    /// Rejects, before changing anything, an ACK of a packet number that was
    /// never sent or was deliberately skipped (PROTOCOL_VIOLATION). Otherwise
    /// removes the newly acknowledged packets, takes an RTT sample, reacts
    /// to a rise in the ECN-CE count, detects losses, informs `cc`, resets
    /// the PTO backoff and re-arms the timer.
    ///
    /// The work is bounded by the ACK ranges that reach packets still
    /// outstanding (or recently skipped numbers) plus the packets acknowledged
    /// and lost; nothing is allocated per range.
    pub fn on_ack_received(
        &mut self,
        now: Instant,
        space: SpaceId,
        ack: &Ack<'_>,
        cc: &mut dyn Controller,
    ) -> Result<AckOutcome<T>, TransportError> {
        let s = self.space_mut(space);
        s.validate(ack)?;
        s.largest_acked = Some(s.largest_acked.map_or(ack.largest(), |l| l.max(ack.largest())));
        if space == SpaceId::Handshake {
            self.handshake_ack_received = true;
        }

        let newly_acked = self.detect_and_remove_acked_packets(space, ack);
        let Some(largest_newly_acked) = newly_acked.last() else {
            return Ok(AckOutcome::empty());
        };
        let mut outcome = AckOutcome::empty();

        //= https://www.rfc-editor.org/rfc/rfc9002#section-5.1
        //# To avoid generating multiple RTT samples for a single packet, an ACK frame
        //# SHOULD NOT be used to update RTT estimates if it does not newly acknowledge the
        //# largest acknowledged packet.
        //
        //= https://www.rfc-editor.org/rfc/rfc9002#section-5.1
        //# An RTT sample MUST NOT be generated on receiving an ACK frame that does not
        //# newly acknowledge at least one ack-eliciting packet.
        if largest_newly_acked.packet.packet_number == ack.largest()
            && newly_acked.iter().any(|e| e.packet.ack_eliciting)
        {
            let latest_rtt = now - largest_newly_acked.packet.time_sent;
            //= https://www.rfc-editor.org/rfc/rfc9002#section-5.3
            //# - MAY ignore the acknowledgment delay for Initial packets, since these
            //#   acknowledgments are not delayed by the peer ({{Section 13.2.1 of
            //#   QUIC-TRANSPORT}});
            let ack_delay = match space {
                SpaceId::Initial => Duration::ZERO,
                _ => Duration::from_micros(ack.ack_delay_micros(self.ack_delay_exponent)),
            };
            //= https://www.rfc-editor.org/rfc/rfc9002#section-5.3
            //# - SHOULD ignore the peer's max_ack_delay until the handshake is confirmed;
            let cap = self.handshake_confirmed.then_some(self.max_ack_delay);
            self.rtt.update(now, latest_rtt, ack_delay, cap);
            outcome.rtt_sampled = true;
        }

        // ProcessECN. The pseudocode reads the send time of the largest
        // acknowledged packet; the largest newly acknowledged is the closest
        // one still known.
        if let Some(ecn) = ack.ecn() {
            let s = self.space_mut(space);
            let ce = ecn.ce.into_inner();
            if ce > s.ecn_ce {
                s.ecn_ce = ce;
                cc.on_congestion_event(now, largest_newly_acked.packet.time_sent, false, 0);
                outcome.ecn_ce_increased = true;
            }
        }

        let lost = self.detect_and_remove_lost_packets(now, space);
        outcome.persistent_congestion = self.on_packets_lost(now, &lost, cc);
        outcome.lost = lost.into_iter().map(|e| e.packet).collect();

        // OnPacketsAcked.
        for e in &newly_acked {
            let p = &e.packet;
            if p.in_flight {
                cc.on_packet_acked(now, p.time_sent, p.sent_bytes, p.app_limited, &self.rtt);
            }
        }
        outcome.acked = newly_acked.into_iter().map(|e| e.packet).collect();

        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
        //# The PTO backoff factor is reset
        //# when an acknowledgment is received, except in the following case.
        if self.peer_completed_address_validation() {
            self.pto_count = 0;
        }
        self.set_loss_detection_timer(now);
        self.prune_acked_seqs();
        Ok(outcome)
    }

    /// DetectAndRemoveAckedPackets: the packets of `space` that `ack` newly
    /// acknowledges, in packet number order, removed from the records.
    fn detect_and_remove_acked_packets(&mut self, space: SpaceId, ack: &Ack<'_>) -> Vec<Entry<T>> {
        let s = &mut self.spaces[space as usize];
        let mut acked = Vec::new();
        for range in ack.ranges() {
            // Ranges come largest first: once one ends below every
            // outstanding packet, so do all the rest.
            let Some(&oldest) = s.sent.keys().next() else { break };
            if *range.end() < oldest {
                break;
            }
            while let Some(pn) = s.sent.range(range.clone()).next_back().map(|(&pn, _)| pn) {
                if let Some(entry) = s.remove(pn) {
                    acked.push(entry);
                }
            }
        }
        acked.reverse();
        for e in &acked {
            self.acked_seqs.insert_one(e.seq);
        }
        acked
    }

    /// DetectAndRemoveLostPackets: removes and returns, in packet number
    /// order, the packets of `space` sent before the largest acknowledged
    /// that are kPacketThreshold packets older or older than the time
    /// threshold; sets the space's loss_time for the rest.
    fn detect_and_remove_lost_packets(&mut self, now: Instant, space: SpaceId) -> Vec<Entry<T>> {
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.1.2
        //# To avoid declaring packets as lost too early, this
        //# time threshold MUST be set to at least the local timer granularity, as
        //# indicated by the kGranularity constant.
        let loss_delay = self.rtt.loss_delay();
        let s = &mut self.spaces[space as usize];
        s.loss_time = None;
        let Some(largest_acked) = s.largest_acked else {
            return Vec::new();
        };
        // Packets sent at or before this time are deemed lost.
        let lost_send_time = now.checked_sub(loss_delay);
        let mut lost_pns = Vec::new();
        for (&pn, e) in s.sent.range(..=largest_acked) {
            //= https://www.rfc-editor.org/rfc/rfc9002#section-6.1.2
            //# Once a later packet within the same packet number space has been acknowledged,
            //# an endpoint SHOULD declare an earlier packet lost if it was sent a threshold
            //# amount of time in the past.
            if lost_send_time.is_some_and(|t| e.packet.time_sent <= t)
                || largest_acked >= pn + PACKET_THRESHOLD
            {
                lost_pns.push(pn);
            } else {
                //= https://www.rfc-editor.org/rfc/rfc9002#section-6.1.2
                //# If packets sent prior to the largest acknowledged packet cannot yet be declared
                //# lost, then a timer SHOULD be set for the remaining time.
                let t = e.packet.time_sent + loss_delay;
                s.loss_time = Some(s.loss_time.map_or(t, |l| l.min(t)));
            }
        }
        lost_pns.into_iter().filter_map(|pn| s.remove(pn)).collect()
    }

    /// OnPacketsLost: a congestion event for the newest in-flight loss, with
    /// the persistent congestion verdict. Returns that verdict.
    fn on_packets_lost(
        &mut self,
        now: Instant,
        lost: &[Entry<T>],
        cc: &mut dyn Controller,
    ) -> bool {
        let mut sent_time_of_last_loss = None;
        let mut lost_bytes = 0;
        for p in lost.iter().map(|e| &e.packet).filter(|p| p.in_flight) {
            lost_bytes += p.sent_bytes;
            sent_time_of_last_loss = sent_time_of_last_loss.max(Some(p.time_sent));
        }
        let Some(sent_time) = sent_time_of_last_loss else {
            return false;
        };
        let persistent = self.in_persistent_congestion(lost);
        cc.on_congestion_event(now, sent_time, persistent, lost_bytes);
        if persistent {
            self.rtt.reset_min_rtt();
        }
        persistent
    }

    /// InPersistentCongestion: whether two ack-eliciting packets in `lost`,
    /// both sent after the first RTT sample, span more than the persistent
    /// congestion duration with no packet sent between them acknowledged in
    /// any space.
    //= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
    //# A sender establishes persistent congestion after the receipt of an
    //# acknowledgment if two packets that are ack-eliciting are declared lost, and:
    //#
    //# * across all packet number spaces, none of the packets sent between the send
    //#   times of these two packets are acknowledged;
    //#
    //# * the duration between the send times of these two packets exceeds the
    //#   persistent congestion duration ({{pc-duration}}); and
    //#
    //# * a prior RTT sample existed when these two packets were sent.
    fn in_persistent_congestion(&self, lost: &[Entry<T>]) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
        //# The persistent congestion period SHOULD NOT start until there is at least one
        //# RTT sample.
        let Some(first_rtt_sample) = self.rtt.first_sample_time() else {
            return false;
        };
        //= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.1
        //# The persistent congestion duration is computed as follows:
        //#
        //# ~~~pseudocode
        //# (smoothed_rtt + max(4*rttvar, kGranularity) + max_ack_delay) *
        //#     kPersistentCongestionThreshold
        //# ~~~
        let duration = (self.rtt.pto_base() + self.max_ack_delay) * PERSISTENT_CONGESTION_THRESHOLD;
        let mut start: Option<&Entry<T>> = None;
        let mut prev: Option<&Entry<T>> = None;
        //= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
        //# These two packets MUST be ack-eliciting, since a receiver is required to
        //# acknowledge only ack-eliciting packets within its maximum acknowledgment delay;
        //# see {{Section 13.2 of QUIC-TRANSPORT}}.
        for e in
            lost.iter().filter(|e| e.packet.ack_eliciting && e.packet.time_sent > first_rtt_sample)
        {
            let contiguous = prev
                .is_some_and(|p| self.acked_seqs.iter_within(p.seq + 1..e.seq).next().is_none());
            if !contiguous {
                start = Some(e);
            }
            prev = Some(e);
            if start.is_some_and(|s| e.packet.time_sent - s.packet.time_sent > duration) {
                return true;
            }
        }
        false
    }

    /// Forgets acknowledged send orders older than every outstanding packet:
    /// no future loss can span them.
    fn prune_acked_seqs(&mut self) {
        let oldest = self.spaces.iter().filter_map(|s| s.sent.values().next()).map(|e| e.seq).min();
        self.acked_seqs.remove(0..oldest.unwrap_or(self.next_seq));
    }

    /// PeerCompletedAddressValidation: a server assumes the client
    /// validated it; a client knows once a Handshake packet was acknowledged
    /// or the handshake is confirmed.
    fn peer_completed_address_validation(&self) -> bool {
        self.side.is_server() || self.handshake_ack_received || self.handshake_confirmed
    }

    fn any_ack_eliciting_in_flight(&self) -> bool {
        self.spaces.iter().any(|s| s.ack_eliciting_in_flight > 0)
    }

    /// GetLossTimeAndSpace: the earliest time-threshold deadline.
    fn loss_time_and_space(&self) -> Option<(Instant, SpaceId)> {
        SpaceId::ALL
            .into_iter()
            .filter_map(|space| Some((self.space(space).loss_time?, space)))
            .min_by_key(|&(t, _)| t)
    }

    /// GetPtoTimeAndSpace: when the probe timeout fires and for which space.
    fn pto_time_and_space(&self, now: Instant) -> Option<(Instant, SpaceId)> {
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
        //# When a PTO timer expires, the PTO backoff MUST be increased, resulting in the
        //# PTO period being set to twice its current value.
        let backoff = 1u32.checked_shl(self.pto_count).unwrap_or(u32::MAX);
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
        //# The PTO period MUST be at least kGranularity to avoid the timer expiring
        //# immediately.
        let mut duration = self.rtt.pto_base().saturating_mul(backoff);
        if !self.any_ack_eliciting_in_flight() {
            // Anti-deadlock PTO, from the current time.
            return Some((now + duration, self.anti_deadlock_space()));
        }
        let mut pto: Option<(Instant, SpaceId)> = None;
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
        //# When ack-eliciting packets in multiple packet number spaces are in flight, the
        //# timer MUST be set to the earlier value of the Initial and Handshake packet
        //# number spaces.
        for space in SpaceId::ALL {
            let s = self.space(space);
            if s.ack_eliciting_in_flight == 0 {
                continue;
            }
            if space == SpaceId::Data {
                //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
                //# An endpoint MUST NOT set its PTO timer for the Application Data packet number
                //# space until the handshake is confirmed.
                if !self.handshake_confirmed {
                    return pto;
                }
                duration += self.max_ack_delay.saturating_mul(backoff);
            }
            let Some(last) = s.time_of_last_ack_eliciting else { continue };
            let t = last + duration;
            if pto.is_none_or(|(best, _)| t < best) {
                pto = Some((t, space));
            }
        }
        pto
    }

    fn anti_deadlock_space(&self) -> SpaceId {
        if self.has_handshake_keys { SpaceId::Handshake } else { SpaceId::Initial }
    }

    /// SetLossDetectionTimer.
    fn set_loss_detection_timer(&mut self, now: Instant) {
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
        //# The PTO timer MUST NOT be set if a timer is set for time threshold
        //# loss detection; see {{time-threshold}}.
        if let Some((deadline, space)) = self.loss_time_and_space() {
            self.timer = Some(LossTimer { deadline, kind: LossTimerKind::TimeThreshold, space });
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2.1
        //# If no additional data can be
        //# sent, the server's PTO timer MUST NOT be armed until datagrams have been
        //# received from the client because packets sent on PTO count against the
        //# anti-amplification limit.
        if self.amplification_blocked {
            self.timer = None;
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2.1
        //# That is, the client MUST set the PTO timer
        //# if the client has not received an acknowledgment for any of its Handshake
        //# packets and the handshake is not confirmed (see {{Section 4.1.2 of QUIC-TLS}}),
        //# even if there are no packets in flight.
        if !self.any_ack_eliciting_in_flight() && self.peer_completed_address_validation() {
            self.timer = None;
            return;
        }
        self.timer = self.pto_time_and_space(now).map(|(deadline, space)| LossTimer {
            deadline,
            kind: LossTimerKind::Probe,
            space,
        });
    }

    /// OnLossDetectionTimeout: runs the loss detection timer if it is due at
    /// `now` (`None`, changing nothing, if it is not). Declares
    /// time-threshold losses, or asks for probes and doubles the PTO backoff.
    pub fn on_loss_detection_timeout(
        &mut self,
        now: Instant,
        cc: &mut dyn Controller,
    ) -> Option<LossTimeout<T>> {
        if self.timer.is_none_or(|t| t.deadline > now) {
            return None;
        }
        if let Some((_, space)) = self.loss_time_and_space() {
            let lost = self.detect_and_remove_lost_packets(now, space);
            let persistent_congestion = self.on_packets_lost(now, &lost, cc);
            self.set_loss_detection_timer(now);
            self.prune_acked_seqs();
            let lost = lost.into_iter().map(|e| e.packet).collect();
            return Some(LossTimeout::Lost { space, lost, persistent_congestion });
        }
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2
        //# A PTO timer expiration event does not indicate packet loss and MUST NOT cause
        //# prior unacknowledged packets to be marked as lost.
        let action = if !self.any_ack_eliciting_in_flight() {
            LossTimeout::AntiDeadlock { space: self.anti_deadlock_space() }
        } else {
            //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.4
            //# When a PTO timer expires, a sender MUST send at least one ack-eliciting packet
            //# in the packet number space as a probe.
            match self.pto_time_and_space(now) {
                Some((_, space)) => LossTimeout::Probe { space, count: PTO_PROBES },
                None => {
                    self.set_loss_detection_timer(now);
                    return None;
                }
            }
        };
        self.pto_count = self.pto_count.saturating_add(1);
        self.set_loss_detection_timer(now);
        // The re-armed timer counts from the last ack-eliciting packet
        // sent, so it lies in the past until the probes go out. If they
        // cannot (no keys, no allowance), it would stay due and a driver
        // would spin on it: until a packet is sent, the next expiry is one
        // backed-off period from now instead.
        if let Some(timer) = &mut self.timer
            && timer.kind == LossTimerKind::Probe
            && timer.deadline <= now
        {
            let backoff = 1u32.checked_shl(self.pto_count).unwrap_or(u32::MAX);
            timer.deadline = now + self.rtt.pto_base().saturating_mul(backoff);
        }
        Some(action)
    }

    /// OnPacketNumberSpaceDiscarded: the keys of `space` (Initial or
    /// Handshake) were discarded at `now`. Its packets leave bytes in flight
    /// and are returned, oldest first, for the caller to drop; the PTO
    /// backoff resets and the timer is re-armed.
    //= https://www.rfc-editor.org/rfc/rfc9002#section-6.4
    //# The sender MUST discard all recovery state associated with those packets
    //# and MUST remove them from the count of bytes in flight.
    pub fn on_space_discarded(&mut self, now: Instant, space: SpaceId) -> Vec<SentPacket<T>> {
        debug_assert!(space != SpaceId::Data, "the application data space is never discarded");
        let dropped = self.space_mut(space).drain();
        self.discarded[space as usize] = true;
        if space == SpaceId::Initial {
            // Initial keys go once Handshake keys are in use.
            self.has_handshake_keys = true;
        }
        //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2
        //# When Initial or Handshake keys are discarded, the PTO and loss
        //# detection timers MUST be reset, because discarding keys indicates
        //# forward progress and the loss detection timer might have been set for
        //# a now-discarded packet number space.
        self.pto_count = 0;
        self.set_loss_detection_timer(now);
        self.prune_acked_seqs();
        dropped
    }

    /// Whether `space` was discarded.
    pub fn is_discarded(&self, space: SpaceId) -> bool {
        self.discarded[space as usize]
    }

    /// Handshake keys became available at `now`: a client's anti-deadlock
    /// probe now goes in a Handshake packet.
    pub fn on_handshake_keys(&mut self, now: Instant) {
        self.has_handshake_keys = true;
        self.set_loss_detection_timer(now);
    }

    /// The handshake was confirmed at `now` (RFC 9001 §4.1.2): the
    /// application data space gets a PTO, ACK delays are capped at the
    /// peer's max_ack_delay, and a client knows its address is validated.
    pub fn on_handshake_confirmed(&mut self, now: Instant) {
        self.handshake_confirmed = true;
        self.set_loss_detection_timer(now);
    }

    /// For a server: whether the anti-amplification limit blocks all
    /// sending. Set it when the limit is reached (the timer is cancelled);
    /// clear it when a datagram from the client arrives (OnDatagramReceived:
    /// the timer is re-armed and, if it lies in the past, is due at once).
    pub fn set_amplification_blocked(&mut self, now: Instant, blocked: bool) {
        if self.amplification_blocked != blocked {
            self.amplification_blocked = blocked;
            //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2.1
            //# When the server receives a datagram from the client, the amplification limit is
            //# increased and the server resets the PTO timer.  If the PTO timer is then set to
            //# a time in the past, it is executed immediately.
            self.set_loss_detection_timer(now);
        }
    }

    /// A client received a Retry at `now`: forgets every sent packet and
    /// resets the timers and PTO backoff, keeping packet numbers increasing
    /// (RFC 9002 §6.3). Returns the packets, by space and in order, so their
    /// CRYPTO and 0-RTT data can be sent again. The congestion controller
    /// is the caller's to reset.
    pub fn on_retry(&mut self, now: Instant) -> Vec<(SpaceId, SentPacket<T>)> {
        let mut packets = Vec::new();
        for space in SpaceId::ALL {
            packets.extend(self.space_mut(space).drain().into_iter().map(|p| (space, p)));
        }
        self.pto_count = 0;
        self.set_loss_detection_timer(now);
        self.prune_acked_seqs();
        packets
    }

    /// The packets of `space` still outstanding, in packet number order.
    pub fn outstanding(&self, space: SpaceId) -> impl Iterator<Item = &SentPacket<T>> + '_ {
        self.space(space).sent.values().map(|e| &e.packet)
    }

    fn space(&self, space: SpaceId) -> &SentSpace<T> {
        &self.spaces[space as usize]
    }

    fn space_mut(&mut self, space: SpaceId) -> &mut SentSpace<T> {
        &mut self.spaces[space as usize]
    }
}

#[cfg(test)]
#[path = "loss_tests.rs"]
mod tests;
