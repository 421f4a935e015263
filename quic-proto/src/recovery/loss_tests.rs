//! Scenario tests for loss detection over virtual time, with a controller
//! that records what it is told.

use core::ops::RangeInclusive;
use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::coding::Reader;
use crate::congestion::CongestionState;
use crate::error::TransportErrorCode;
use crate::frame::{AckEncoder, EcnCounts, Frame};
use crate::random::SeededRandom;
use crate::recovery::rtt::INITIAL_RTT;
use crate::varint::VarInt;

const MS: Duration = Duration::from_millis(1);
const FULL: u64 = 1200;

/// Virtual time: `t(0)` is ten seconds after the epoch, so that subtracting
/// loss delays never underflows.
fn t(ms: u64) -> Instant {
    Instant::from_millis(10_000 + ms)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Call {
    Sent(u64),
    Acked { sent_time: Instant, bytes: u64 },
    Congestion { now: Instant, sent_time: Instant, persistent: bool, lost_bytes: u64 },
}

/// A controller that records every call and keeps a fixed window.
#[derive(Clone, Debug, Default)]
struct Recorder {
    calls: Vec<Call>,
}

impl Recorder {
    fn congestion(&self) -> Vec<Call> {
        self.calls.iter().filter(|c| matches!(c, Call::Congestion { .. })).cloned().collect()
    }
    fn acked_bytes(&self) -> u64 {
        self.calls.iter().map(|c| if let Call::Acked { bytes, .. } = c { *bytes } else { 0 }).sum()
    }
}

impl Controller for Recorder {
    fn on_packet_sent(&mut self, _now: Instant, bytes: u64) {
        self.calls.push(Call::Sent(bytes));
    }
    fn on_packet_acked(
        &mut self,
        _now: Instant,
        sent_time: Instant,
        bytes: u64,
        _app_limited: bool,
        _rtt: &RttEstimator,
    ) {
        self.calls.push(Call::Acked { sent_time, bytes });
    }
    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent_time: Instant,
        persistent: bool,
        lost_bytes: u64,
    ) {
        self.calls.push(Call::Congestion { now, sent_time, persistent, lost_bytes });
    }
    fn on_max_datagram_size(&mut self, _max_datagram_size: u64) {}
    fn window(&self) -> u64 {
        12_000
    }
    fn state(&self) -> CongestionState {
        CongestionState::SlowStart
    }
    fn ssthresh(&self) -> Option<u64> {
        None
    }
    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

fn encode_ack(ranges: &[RangeInclusive<u64>], delay: u64, ecn: Option<EcnCounts>) -> Vec<u8> {
    let mut enc = AckEncoder::new(ranges.iter().cloned(), VarInt::from_u64(delay).unwrap())
        .expect("at least one range");
    if let Some(ecn) = ecn {
        enc = enc.with_ecn(ecn);
    }
    let mut buf = Vec::new();
    enc.encode(&mut buf);
    buf
}

fn decode(buf: &[u8]) -> Ack<'_> {
    match Frame::decode(&mut Reader::new(buf)) {
        Ok(Frame::Ack(ack)) => ack,
        other => panic!("not an ACK: {other:?}"),
    }
}

fn pns(packets: &[SentPacket<u64>]) -> Vec<u64> {
    packets.iter().map(|p| p.packet_number).collect()
}

struct Harness {
    ld: LossDetection<u64>,
    cc: Recorder,
}

impl Harness {
    fn new(side: Side) -> Self {
        Self { ld: LossDetection::new(side, INITIAL_RTT), cc: Recorder::default() }
    }

    /// A server whose handshake is confirmed: the plain 1-RTT case.
    fn confirmed() -> Self {
        let mut h = Self::new(Side::Server);
        h.ld.on_handshake_confirmed(Instant::ZERO);
        h
    }

    fn send(&mut self, space: SpaceId, pn: u64, at: Instant) {
        self.send_with(space, pn, at, true);
    }

    fn send_with(&mut self, space: SpaceId, pn: u64, at: Instant, ack_eliciting: bool) {
        let packet = SentPacket {
            packet_number: pn,
            time_sent: at,
            sent_bytes: if ack_eliciting { FULL } else { 40 },
            ack_eliciting,
            in_flight: ack_eliciting,
            app_limited: false,
            payload: pn,
        };
        self.ld.on_packet_sent(space, packet, &mut self.cc);
    }

    fn ack(
        &mut self,
        now: Instant,
        space: SpaceId,
        ranges: &[RangeInclusive<u64>],
        delay: u64,
    ) -> Result<AckOutcome<u64>, TransportError> {
        self.ack_ecn(now, space, ranges, delay, None)
    }

    fn ack_ecn(
        &mut self,
        now: Instant,
        space: SpaceId,
        ranges: &[RangeInclusive<u64>],
        delay: u64,
        ecn: Option<EcnCounts>,
    ) -> Result<AckOutcome<u64>, TransportError> {
        let buf = encode_ack(ranges, delay, ecn);
        self.ld.on_ack_received(now, space, &decode(&buf), &mut self.cc)
    }

    fn timeout(&mut self, now: Instant) -> Option<LossTimeout<u64>> {
        self.ld.on_loss_detection_timeout(now, &mut self.cc)
    }
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-5.1
//= type=test
//# To avoid generating multiple RTT samples for a single packet, an ACK frame
//# SHOULD NOT be used to update RTT estimates if it does not newly acknowledge the
//# largest acknowledged packet.
#[test]
fn rtt_sample_only_when_the_largest_is_newly_acknowledged() {
    let mut h = Harness::confirmed();
    h.send(SpaceId::Data, 0, t(0));
    h.send(SpaceId::Data, 1, t(0));
    let out = h.ack(t(100), SpaceId::Data, &[1..=1], 0).unwrap();
    assert!(out.rtt_sampled);
    assert_eq!(h.ld.rtt().latest_rtt(), 100 * MS);
    assert_eq!(h.ld.rtt().first_sample_time(), Some(t(100)));
    // Newly acknowledges 0, but the largest (1) was acknowledged before.
    let out = h.ack(t(300), SpaceId::Data, &[0..=1], 0).unwrap();
    assert_eq!((pns(&out.acked), out.rtt_sampled), (vec![0], false));
    assert_eq!(h.ld.rtt().latest_rtt(), 100 * MS);
    // Nothing new at all.
    let out = h.ack(t(400), SpaceId::Data, &[0..=1], 0).unwrap();
    assert!(out.acked.is_empty() && !out.rtt_sampled);
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-5.1
//= type=test
//# An RTT sample MUST NOT be generated on receiving an ACK frame that does not
//# newly acknowledge at least one ack-eliciting packet.
#[test]
fn no_rtt_sample_from_non_ack_eliciting_packets() {
    let mut h = Harness::confirmed();
    h.send_with(SpaceId::Data, 0, t(0), false);
    let out = h.ack(t(500), SpaceId::Data, &[0..=0], 1_000_000).unwrap();
    assert_eq!(pns(&out.acked), [0]);
    assert!(!out.rtt_sampled && !h.ld.rtt().has_sample());
    // Not in flight: the controller heard nothing about it.
    assert!(h.cc.calls.is_empty());
}

#[test]
fn ack_delay_is_ignored_for_initial_and_capped_after_confirmation() {
    // Initial: the 40 ms ACK Delay is ignored (RFC 9002 §5.3 MAY).
    let mut h = Harness::new(Side::Client);
    h.send(SpaceId::Initial, 0, t(0));
    h.send(SpaceId::Initial, 1, t(100));
    h.ack(t(100), SpaceId::Initial, &[0..=0], 0).unwrap();
    h.ack(t(200), SpaceId::Initial, &[1..=1], 5_000).unwrap();
    assert_eq!(h.ld.rtt().smoothed_rtt(), 100 * MS);

    // Handshake, not confirmed: the whole 40 ms (5000 << 3 us) counts.
    let mut h = Harness::new(Side::Client);
    h.send(SpaceId::Handshake, 0, t(0));
    h.send(SpaceId::Handshake, 1, t(100));
    h.ack(t(100), SpaceId::Handshake, &[0..=0], 0).unwrap();
    h.ack(t(250), SpaceId::Handshake, &[1..=1], 5_000).unwrap();
    assert_eq!(h.ld.rtt().smoothed_rtt(), (100 * MS * 7 + 110 * MS) / 8);

    // Confirmed with max_ack_delay 10 ms: the delay is capped at 10 ms.
    let mut h = Harness::confirmed();
    h.ld.set_peer_max_ack_delay(10 * MS).set_peer_ack_delay_exponent(0);
    h.send(SpaceId::Data, 0, t(0));
    h.send(SpaceId::Data, 1, t(100));
    h.ack(t(100), SpaceId::Data, &[0..=0], 0).unwrap();
    h.ack(t(250), SpaceId::Data, &[1..=1], 40_000).unwrap();
    assert_eq!(h.ld.rtt().smoothed_rtt(), (100 * MS * 7 + 140 * MS) / 8);
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.1.1
//= type=test
//# The RECOMMENDED initial value for the packet reordering threshold
//# (kPacketThreshold) is 3, based on best practices for TCP loss detection
//# {{?RFC5681}} {{?RFC6675}}.
#[test]
fn packet_threshold_loss_then_time_threshold_timer() {
    let mut h = Harness::confirmed();
    for pn in 0..5 {
        h.send(SpaceId::Data, pn, t(0));
    }
    assert_eq!(h.ld.bytes_in_flight(), 5 * FULL);
    let out = h.ack(t(50), SpaceId::Data, &[3..=4], 0).unwrap();
    assert_eq!(pns(&out.acked), [3, 4]);
    // 4 >= 0 + 3 and 4 >= 1 + 3; packet 2 is only two behind.
    assert_eq!(pns(&out.lost), [0, 1]);
    assert_eq!(out.lost[0].payload, 0);
    for pn in [0, 1] {
        assert_eq!(h.ld.loss_trigger(SpaceId::Data, pn), LossTrigger::ReorderingThreshold);
    }
    assert_eq!(h.ld.bytes_in_flight(), FULL);
    assert_eq!(
        h.cc.congestion(),
        [Call::Congestion { now: t(50), sent_time: t(0), persistent: false, lost_bytes: 2 * FULL }]
    );
    assert_eq!(h.cc.acked_bytes(), 2 * FULL);

    //= https://www.rfc-editor.org/rfc/rfc9002#section-6.1.2
    //= type=test
    //# If packets sent prior to the largest acknowledged packet cannot yet be declared
    //# lost, then a timer SHOULD be set for the remaining time.
    // loss_delay = 9/8 * 50 ms.
    let loss_time = t(0) + Duration::from_micros(56_250);
    assert_eq!(h.ld.timer(), Some(loss_time));
    let armed =
        LossTimer { deadline: loss_time, kind: LossTimerKind::TimeThreshold, space: SpaceId::Data };
    assert_eq!(h.ld.timer_detail(), Some(armed));
    assert!(h.timeout(loss_time.checked_sub(Duration::from_nanos(1)).unwrap()).is_none());
    match h.timeout(loss_time) {
        Some(LossTimeout::Lost { space: SpaceId::Data, lost, persistent_congestion: false }) => {
            assert_eq!(pns(&lost), [2]);
            assert_eq!(h.ld.loss_trigger(SpaceId::Data, 2), LossTrigger::TimeThreshold);
        }
        other => panic!("expected a time-threshold loss, got {other:?}"),
    }
    assert_eq!(h.ld.bytes_in_flight(), 0);
    assert_eq!(h.ld.timer(), None);
    assert_eq!(h.cc.congestion().len(), 2);
    // Loss does not reset the PTO backoff, and no PTO was counted.
    assert_eq!(h.ld.pto_count(), 0);
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.1.2
//= type=test
//# Once a later packet within the same packet number space has been acknowledged,
//# an endpoint SHOULD declare an earlier packet lost if it was sent a threshold
//# amount of time in the past.
#[test]
fn time_threshold_loss_on_ack() {
    let mut h = Harness::confirmed();
    h.send(SpaceId::Data, 0, t(0));
    h.send(SpaceId::Data, 1, t(100));
    // Sample 100 ms: packet 0, sent 200 ms ago > 112.5 ms, is lost even
    // though only one packet followed it.
    let out = h.ack(t(200), SpaceId::Data, &[1..=1], 0).unwrap();
    assert_eq!(pns(&out.lost), [0]);
    assert_eq!(h.ld.loss_trigger(SpaceId::Data, 0), LossTrigger::TimeThreshold);
}

#[test]
fn pto_with_backoff_in_the_data_space() {
    let mut h = Harness::confirmed();
    h.send(SpaceId::Data, 0, t(0));
    // 333 + 4 * 166.5 + 25 ms.
    let pto = INITIAL_RTT + 4 * (INITIAL_RTT / 2) + 25 * MS;
    assert_eq!(h.ld.pto_period(SpaceId::Data), pto);
    assert_eq!(h.ld.timer(), Some(t(0) + pto));
    let armed =
        LossTimer { deadline: t(0) + pto, kind: LossTimerKind::Probe, space: SpaceId::Data };
    assert_eq!(h.ld.timer_detail(), Some(armed));
    assert!(h.timeout((t(0) + pto).checked_sub(MS).unwrap()).is_none());

    //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
    //= type=test
    //# When a PTO timer expires, the PTO backoff MUST be increased, resulting in the
    //# PTO period being set to twice its current value.
    match h.timeout(t(0) + pto) {
        Some(LossTimeout::Probe { space: SpaceId::Data, count }) => assert_eq!(count, 2),
        other => panic!("expected a probe, got {other:?}"),
    }
    assert_eq!(h.ld.pto_count(), 1);
    assert_eq!(h.ld.timer(), Some(t(0) + 2 * pto));

    //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2
    //= type=test
    //# A PTO timer expiration event does not indicate packet loss and MUST NOT cause
    //# prior unacknowledged packets to be marked as lost.
    assert_eq!(h.ld.bytes_in_flight(), FULL);
    assert!(h.cc.congestion().is_empty());

    // The probe is sent; the timer restarts from it with the backoff.
    h.send(SpaceId::Data, 1, t(1100));
    assert_eq!(h.ld.timer(), Some(t(1100) + 2 * pto));
    assert!(matches!(h.timeout(t(1100) + 2 * pto), Some(LossTimeout::Probe { .. })));
    assert_eq!(h.ld.pto_count(), 2);
    assert_eq!(h.ld.timer(), Some(t(1100) + 4 * pto));

    // An acknowledgment resets the backoff.
    h.ack(t(3000), SpaceId::Data, &[1..=1], 0).unwrap();
    assert_eq!(h.ld.pto_count(), 0);
}

#[test]
fn pto_backoff_never_overflows() {
    let mut h = Harness::confirmed();
    h.send(SpaceId::Data, 0, t(0));
    let mut now = t(0);
    for _ in 0..70 {
        now = h.ld.timer().unwrap();
        assert!(matches!(h.timeout(now), Some(LossTimeout::Probe { .. })));
    }
    assert_eq!(h.ld.pto_count(), 70);
    assert!(h.ld.timer().unwrap() >= now);
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
//= type=test
//# An endpoint MUST NOT set its PTO timer for the Application Data packet number
//# space until the handshake is confirmed.
#[test]
fn no_data_pto_before_confirmation() {
    let mut h = Harness::new(Side::Server);
    h.send(SpaceId::Data, 0, t(0));
    assert_eq!(h.ld.timer(), None);
    // A Handshake packet in flight arms the timer for its own space.
    h.send(SpaceId::Handshake, 0, t(10));
    let hs_pto = INITIAL_RTT + 4 * (INITIAL_RTT / 2);
    assert_eq!(h.ld.pto_period(SpaceId::Handshake), hs_pto);
    assert_eq!(h.ld.timer(), Some(t(10) + hs_pto));
    // Confirmation lets the Data space in; Handshake is still earlier.
    h.ld.on_handshake_confirmed(t(20));
    assert_eq!(h.ld.timer(), Some(t(10) + hs_pto));
    h.ld.on_space_discarded(t(30), SpaceId::Handshake);
    assert_eq!(h.ld.timer(), Some(t(0) + hs_pto + 25 * MS));
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.1
//= type=test
//# When ack-eliciting packets in multiple packet number spaces are in flight, the
//# timer MUST be set to the earlier value of the Initial and Handshake packet
//# number spaces.
#[test]
fn probes_go_to_the_space_with_the_earliest_pto() {
    let mut h = Harness::new(Side::Server);
    h.send(SpaceId::Initial, 0, t(0));
    h.send(SpaceId::Handshake, 0, t(5));
    let pto = INITIAL_RTT + 4 * (INITIAL_RTT / 2);
    assert_eq!(h.ld.timer(), Some(t(0) + pto));
    assert!(matches!(
        h.timeout(t(0) + pto),
        Some(LossTimeout::Probe { space: SpaceId::Initial, count: 2 })
    ));
    assert!(h.ld.has_ack_eliciting_in_flight(SpaceId::Handshake));
    // The backoff applies across spaces.
    assert_eq!(h.ld.timer(), Some(t(0) + 2 * pto));
    h.send(SpaceId::Initial, 1, t(1000));
    h.send(SpaceId::Handshake, 1, t(1000) + MS);
    h.ld.on_space_discarded(t(1001), SpaceId::Initial);
    // Discarding reset the backoff.
    assert_eq!(h.ld.pto_count(), 0);
    assert_eq!(h.ld.timer(), Some(t(1001) + pto));
    assert!(matches!(
        h.timeout(t(1001) + pto),
        Some(LossTimeout::Probe { space: SpaceId::Handshake, .. })
    ));
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.4
//= type=test
//# The sender MUST discard all recovery state associated with those packets
//# and MUST remove them from the count of bytes in flight.
#[test]
fn discarding_initial_removes_its_bytes_and_timers() {
    let mut h = Harness::new(Side::Server);
    for pn in 0..4 {
        h.send(SpaceId::Initial, pn, t(0));
    }
    let out = h.ack(t(40), SpaceId::Initial, &[3..=3], 0).unwrap();
    // 0 is lost by the packet threshold; 1 and 2 wait for the time threshold.
    assert_eq!(pns(&out.lost), [0]);
    assert_eq!(h.ld.timer(), Some(t(0) + Duration::from_millis(45)));
    h.send(SpaceId::Handshake, 0, t(41));
    assert_eq!(h.ld.bytes_in_flight(), 3 * FULL);
    let dropped = h.ld.on_space_discarded(t(42), SpaceId::Initial);
    assert_eq!(pns(&dropped), [1, 2]);
    assert!(h.ld.is_discarded(SpaceId::Initial));
    assert_eq!(h.ld.bytes_in_flight(), FULL);
    //= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2
    //= type=test
    //# When Initial or Handshake keys are discarded, the PTO and loss
    //# detection timers MUST be reset, because discarding keys indicates
    //# forward progress and the loss detection timer might have been set for
    //# a now-discarded packet number space.
    assert_eq!(h.ld.timer(), Some(t(41) + h.ld.pto_period(SpaceId::Handshake)));
    assert_eq!(h.ld.outstanding(SpaceId::Initial).count(), 0);
    h.ld.on_space_discarded(t(43), SpaceId::Handshake);
    assert_eq!((h.ld.bytes_in_flight(), h.ld.timer()), (0, None));
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2.1
//= type=test
//# That is, the client MUST set the PTO timer
//# if the client has not received an acknowledgment for any of its Handshake
//# packets and the handshake is not confirmed (see {{Section 4.1.2 of QUIC-TLS}}),
//# even if there are no packets in flight.
#[test]
fn client_anti_deadlock_probe() {
    let mut h = Harness::new(Side::Client);
    h.send(SpaceId::Initial, 0, t(0));
    h.ack(t(100), SpaceId::Initial, &[0..=0], 0).unwrap();
    assert_eq!(h.ld.bytes_in_flight(), 0);
    let pto = 100 * MS + 4 * 50 * MS;
    assert_eq!(h.ld.timer(), Some(t(100) + pto));
    assert!(matches!(
        h.timeout(t(100) + pto),
        Some(LossTimeout::AntiDeadlock { space: SpaceId::Initial })
    ));
    // A client's Initial ACK does not reset the backoff.
    h.send(SpaceId::Initial, 1, t(400));
    h.ack(t(500), SpaceId::Initial, &[1..=1], 0).unwrap();
    assert_eq!(h.ld.pto_count(), 1);
    h.ld.on_handshake_keys(t(500));
    let deadline = h.ld.timer().unwrap();
    assert!(deadline > t(500));
    assert!(matches!(
        h.timeout(deadline),
        Some(LossTimeout::AntiDeadlock { space: SpaceId::Handshake })
    ));
    // Once a Handshake packet is acknowledged, the server has validated the
    // client: no timer with nothing in flight.
    h.send(SpaceId::Handshake, 0, t(2000));
    h.ack(t(2100), SpaceId::Handshake, &[0..=0], 0).unwrap();
    assert_eq!(h.ld.pto_count(), 0);
    assert_eq!(h.ld.timer(), None);
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-6.2.2.1
//= type=test
//# If no additional data can be
//# sent, the server's PTO timer MUST NOT be armed until datagrams have been
//# received from the client because packets sent on PTO count against the
//# anti-amplification limit.
#[test]
fn amplification_blocked_server_has_no_pto_until_a_datagram_arrives() {
    let mut h = Harness::new(Side::Server);
    h.send(SpaceId::Initial, 0, t(0));
    h.ld.set_amplification_blocked(t(0), true);
    assert_eq!(h.ld.timer(), None);
    assert!(h.timeout(t(5000)).is_none());
    // A datagram arrives late: the PTO is already overdue and runs at once.
    h.ld.set_amplification_blocked(t(5000), false);
    let deadline = h.ld.timer().unwrap();
    assert!(deadline < t(5000));
    assert!(matches!(h.timeout(t(5000)), Some(LossTimeout::Probe { space: SpaceId::Initial, .. })));
}

/// The example of RFC 9002 §7.6.3 with a time unit of 100 ms and the RTT
/// state set up so that smoothed_rtt + max(4*rttvar, kGranularity) +
/// max_ack_delay is 2 units at the time of the first acknowledgment.
/// `extra` runs just after packet 5 is sent; `last_ack` acknowledges
/// packet 9.
fn persistent_congestion_example(
    extra: impl FnOnce(&mut Harness),
    last_ack: &[RangeInclusive<u64>],
) -> (Harness, AckOutcome<u64>) {
    let u = |units_x10: u64| t(units_x10 * 10);
    let mut h = Harness::confirmed();
    h.ld.set_peer_max_ack_delay(75 * MS);
    // A prior sample of 50 ms: smoothed 50 ms, rttvar 25 ms.
    h.send(SpaceId::Data, 0, u(0).checked_sub(50 * MS).unwrap());
    h.ack(u(0), SpaceId::Data, &[0..=0], 0).unwrap();
    h.send(SpaceId::Data, 1, u(0));
    h.send(SpaceId::Data, 2, u(10));
    // Acknowledgment of #1 at t=1.2, 70 ms of it ACK delay: smoothed 50 ms,
    // rttvar 18.75 ms, so the sum is 50 + 75 + 75 = 200 ms = 2 units.
    h.ack(u(12), SpaceId::Data, &[0..=1], 70_000 >> 3).unwrap();
    assert_eq!(h.ld.rtt().pto_base() + 75 * MS, 200 * MS);
    let mut extra = Some(extra);
    for (pn, at) in [(3, 20), (4, 30), (5, 40), (6, 50), (7, 60), (8, 80), (9, 120)] {
        h.send(SpaceId::Data, pn, u(at));
        if pn == 5 {
            extra.take().unwrap()(&mut h);
        }
    }
    // The acknowledgment arrives at t=12.8 rather than 12.2, so that the
    // sample (80 ms) exceeds min_rtt (50 ms): the duration is then 645 ms.
    let out = h.ack(u(128), SpaceId::Data, last_ack, 0).unwrap();
    (h, out)
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
//= type=test
//# A sender establishes persistent congestion after the receipt of an
//# acknowledgment if two packets that are ack-eliciting are declared lost, and:
#[test]
fn persistent_congestion_rfc_example() {
    let (h, out) = persistent_congestion_example(|_| {}, &[9..=9]);
    assert_eq!(pns(&out.lost), [2, 3, 4, 5, 6, 7, 8]);
    assert!(out.persistent_congestion);
    assert_eq!(
        h.cc.congestion(),
        [Call::Congestion {
            now: t(1280),
            sent_time: t(800),
            persistent: true,
            lost_bytes: 7 * FULL
        }]
    );
    //= https://www.rfc-editor.org/rfc/rfc9002#section-5.2
    //= type=test
    //# Endpoints SHOULD set the min_rtt to the newest RTT sample after persistent
    //# congestion is established.
    assert_eq!(h.ld.rtt().min_rtt(), 80 * MS);
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
//= type=test
//# * across all packet number spaces, none of the packets sent between the send
//#   times of these two packets are acknowledged;
#[test]
fn no_persistent_congestion_when_a_packet_between_was_acknowledged() {
    // #5 acknowledged along with #9 splits the losses in two short runs.
    let (_, out) = persistent_congestion_example(|_| {}, &[9..=9, 5..=5]);
    assert_eq!(pns(&out.lost), [2, 3, 4, 6, 7, 8]);
    assert!(!out.persistent_congestion);

    // A packet of another space, sent in between and acknowledged, also
    // breaks the run. (It is not ack-eliciting, so the RTT is unchanged.)
    let (h, out) = persistent_congestion_example(
        |h| {
            h.send_with(SpaceId::Handshake, 0, t(450), false);
            let out = h.ack(t(460), SpaceId::Handshake, &[0..=0], 0).unwrap();
            assert!(!out.rtt_sampled);
        },
        &[9..=9],
    );
    assert_eq!(pns(&out.lost), [2, 3, 4, 5, 6, 7, 8]);
    assert!(!out.persistent_congestion);
    assert!(
        h.cc.congestion().iter().all(|c| !matches!(c, Call::Congestion { persistent: true, .. }))
    );
}

//= https://www.rfc-editor.org/rfc/rfc9002#section-7.6.2
//= type=test
//# The persistent congestion period SHOULD NOT start until there is at least one
//# RTT sample.
#[test]
fn no_persistent_congestion_without_a_prior_rtt_sample() {
    let mut h = Harness::confirmed();
    for pn in 0..10 {
        h.send(SpaceId::Data, pn, t(pn * 1000));
    }
    let out = h.ack(t(9050), SpaceId::Data, &[9..=9], 0).unwrap();
    assert_eq!(out.lost.len(), 9);
    assert!(!out.persistent_congestion);
    // With a sample first, the same pattern is persistent congestion.
    let mut h = Harness::confirmed();
    h.send(SpaceId::Data, 0, t(0));
    h.ack(t(50), SpaceId::Data, &[0..=0], 0).unwrap();
    for pn in 1..10 {
        h.send(SpaceId::Data, pn, t(pn * 1000));
    }
    let out = h.ack(t(9050), SpaceId::Data, &[9..=9], 0).unwrap();
    assert!(out.persistent_congestion);
}

#[test]
fn ecn_ce_increase_is_a_congestion_event() {
    let mut h = Harness::confirmed();
    for pn in 0..4 {
        h.send(SpaceId::Data, pn, t(pn));
    }
    let ecn = |ce| {
        Some(EcnCounts { ect0: VarInt::from_u32(2), ect1: VarInt::ZERO, ce: VarInt::from_u32(ce) })
    };
    let out = h.ack_ecn(t(50), SpaceId::Data, &[0..=1], 0, ecn(1)).unwrap();
    assert!(out.ecn_ce_increased);
    assert_eq!(
        h.cc.congestion(),
        [Call::Congestion { now: t(50), sent_time: t(1), persistent: false, lost_bytes: 0 }]
    );
    // Same count: nothing new.
    let out = h.ack_ecn(t(51), SpaceId::Data, &[0..=2], 0, ecn(1)).unwrap();
    assert!(!out.ecn_ce_increased);
    // A higher count in an ACK that acknowledges nothing new is ignored,
    // as in the pseudocode, and a lower count never counts.
    let out = h.ack_ecn(t(52), SpaceId::Data, &[0..=2], 0, ecn(5)).unwrap();
    assert!(!out.ecn_ce_increased);
    let out = h.ack_ecn(t(53), SpaceId::Data, &[0..=3], 0, ecn(0)).unwrap();
    assert!(!out.ecn_ce_increased);
    assert_eq!(h.cc.congestion().len(), 1);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.1
//= type=test
//# An endpoint SHOULD treat receipt of an acknowledgment for a packet it did not
//# send as a connection error of type PROTOCOL_VIOLATION, if it is able to detect
//# the condition.
#[test]
fn ack_of_unsent_packet_is_a_protocol_violation() {
    let mut h = Harness::confirmed();
    let err = h.ack(t(0), SpaceId::Data, &[0..=0], 0).unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION);
    for pn in 0..3 {
        h.send(SpaceId::Data, pn, t(0));
    }
    let err = h.ack(t(10), SpaceId::Data, &[0..=5], 0).unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION);
    assert_eq!(err.frame_type, Some(crate::frame::FrameType::ACK));
    // Nothing changed.
    assert_eq!(h.ld.bytes_in_flight(), 3 * FULL);
    assert_eq!(h.ld.largest_acked(SpaceId::Data), None);
    // Spaces are separate: packet 0 of Data is not packet 0 of Handshake.
    assert!(h.ack(t(10), SpaceId::Handshake, &[0..=0], 0).is_err());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-21.4
//= type=test
//# An endpoint MAY skip packet numbers when sending packets to detect
//# this behavior.
#[test]
fn ack_of_skipped_packet_number_is_a_protocol_violation() {
    let mut h = Harness::confirmed();
    let mut rng = SeededRandom::from_u64(5);
    let mut sent = Vec::new();
    for i in 0..3000 {
        let pn = h.ld.next_packet_number(SpaceId::Data, &mut rng).unwrap();
        h.send(SpaceId::Data, pn, t(i / 10));
        sent.push(pn);
    }
    let skipped: Vec<u64> = h.ld.spaces[2].skipped().collect();
    // About one in a few hundred.
    assert!((5..=47).contains(&skipped.len()), "{} skips", skipped.len());
    let all: BTreeSet<u64> = (0..=*sent.last().unwrap()).collect();
    let gaps: Vec<u64> = all.difference(&sent.iter().copied().collect()).copied().collect();
    assert_eq!(gaps, skipped);
    // Initial and Handshake never skip.
    for want in 0..100 {
        assert_eq!(h.ld.next_packet_number(SpaceId::Initial, &mut rng), Some(want));
    }

    let skip = skipped[skipped.len() / 2];
    let largest = *sent.last().unwrap();
    let err = h.ack(t(400), SpaceId::Data, &[skip - 1..=skip + 1], 0).unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION);
    // The optimistic ACK hides the skip in a lower range: still caught.
    let err = h.ack(t(400), SpaceId::Data, &[largest..=largest, 0..=skip], 0).unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION);
    assert_eq!(h.ld.bytes_in_flight(), 3000 * FULL);
    // An honest ACK, with a gap at each skip, is fine.
    let mut honest: Vec<RangeInclusive<u64>> = Vec::new();
    for &pn in sent.iter().rev() {
        match honest.last_mut() {
            Some(r) if *r.start() == pn + 1 => *r = pn..=*r.end(),
            _ => honest.push(pn..=pn),
        }
    }
    assert_eq!(honest.len(), skipped.len() + 1);
    let out = h.ack(t(400), SpaceId::Data, &honest, 0).unwrap();
    assert_eq!(out.acked.len(), 3000);
    assert_eq!(h.ld.bytes_in_flight(), 0);
}

#[test]
fn ack_with_many_ranges_below_everything_outstanding_is_cheap_and_harmless() {
    let mut h = Harness::confirmed();
    for pn in 0..1000 {
        h.send(SpaceId::Data, pn, t(0));
    }
    h.ack(t(50), SpaceId::Data, &[0..=997], 0).unwrap();
    // Hundreds of tiny ranges, all already acknowledged.
    let ranges: Vec<_> = (0..400).rev().map(|i| 2 * i..=2 * i).collect();
    let mut all = vec![999..=999];
    all.extend(ranges);
    let out = h.ack(t(60), SpaceId::Data, &all, 0).unwrap();
    assert_eq!(pns(&out.acked), [999]);
    // 998 is one packet and less than 9/8 RTT behind.
    assert!(out.lost.is_empty());
    assert_eq!(h.ld.bytes_in_flight(), FULL);
}

#[test]
fn retry_forgets_sent_packets_but_keeps_numbering() {
    let mut h = Harness::new(Side::Client);
    let mut rng = SeededRandom::from_u64(1);
    let pn = h.ld.next_packet_number(SpaceId::Initial, &mut rng).unwrap();
    h.send(SpaceId::Initial, pn, t(0));
    h.send(SpaceId::Data, 0, t(1));
    let back = h.ld.on_retry(t(10));
    assert_eq!(
        back.iter().map(|(s, p)| (*s, p.packet_number)).collect::<Vec<_>>(),
        [(SpaceId::Initial, 0), (SpaceId::Data, 0)]
    );
    assert_eq!(h.ld.bytes_in_flight(), 0);
    assert_eq!(h.ld.next_packet_number(SpaceId::Initial, &mut rng), Some(1));
    assert_eq!(h.ld.peek_packet_number(SpaceId::Data), 1);
}

#[test]
fn exhausted_packet_numbers_are_refused() {
    let mut h = Harness::confirmed();
    let mut rng = SeededRandom::from_u64(1);
    h.send(SpaceId::Initial, VarInt::MAX.into_inner() - 1, t(0));
    assert_eq!(h.ld.next_packet_number(SpaceId::Initial, &mut rng), None);
}

#[derive(Clone, Debug)]
enum Op {
    Send {
        space: usize,
        ack_eliciting: bool,
        advance_ms: u64,
    },
    /// Acknowledge a random subset (by bitmask) of recent packet numbers.
    Ack {
        space: usize,
        mask: u64,
        window_start: u8,
        advance_ms: u64,
        bogus: bool,
    },
    Timeout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, any::<bool>(), 0..30u64)
            .prop_map(|(space, ack_eliciting, advance_ms)| Op::Send { space, ack_eliciting, advance_ms }),
        3 => (0..3usize, any::<u64>(), any::<u8>(), 0..60u64, proptest::bool::weighted(0.1))
            .prop_map(|(space, mask, window_start, advance_ms, bogus)| Op::Ack { space, mask, window_start, advance_ms, bogus }),
        1 => Just(Op::Timeout),
    ]
}

proptest! {
    /// Random sends, ACK patterns and timeouts never panic, and every sent
    /// packet is at all times in exactly one of acknowledged, lost (or
    /// discarded) and outstanding; bytes in flight match the outstanding
    /// in-flight packets.
    #[test]
    fn every_packet_is_acked_lost_or_outstanding(ops in proptest::collection::vec(op(), 1..120), seed in any::<u64>()) {
        let mut h = Harness::new(Side::Client);
        h.ld.on_handshake_confirmed(Instant::ZERO);
        let mut rng = SeededRandom::from_u64(seed);
        let mut now = t(0);
        let mut sent: [Vec<u64>; 3] = Default::default();
        let mut acked: [BTreeSet<u64>; 3] = Default::default();
        let mut lost: [BTreeSet<u64>; 3] = Default::default();
        for op in ops {
            match op {
                Op::Send { space, ack_eliciting, advance_ms } => {
                    now += Duration::from_millis(advance_ms);
                    let id = SpaceId::ALL[space];
                    let pn = h.ld.next_packet_number(id, &mut rng).unwrap();
                    h.send_with(id, pn, now, ack_eliciting);
                    sent[space].push(pn);
                }
                Op::Ack { space, mask, window_start, advance_ms, bogus } => {
                    now += Duration::from_millis(advance_ms);
                    let Some(&largest_sent) = sent[space].last() else { continue };
                    let base = (largest_sent.saturating_sub(63)).min(u64::from(window_start));
                    // Ranges over base..=largest_sent (plus one unsent
                    // number if `bogus`), largest first.
                    let top = if bogus { largest_sent + 1 } else { largest_sent };
                    let mut ranges: Vec<RangeInclusive<u64>> = Vec::new();
                    for pn in (base..=top).rev() {
                        let bit = (pn - base) % 64;
                        if pn == top || mask & (1 << bit) != 0 {
                            match ranges.last_mut() {
                                Some(r) if *r.start() == pn + 1 => *r = pn..=*r.end(),
                                _ => ranges.push(pn..=pn),
                            }
                        }
                    }
                    let id = SpaceId::ALL[space];
                    let before = h.ld.bytes_in_flight();
                    let buf = encode_ack(&ranges, u64::from(window_start), None);
                    let ack = decode(&buf);
                    let acks_skipped_or_unsent = ranges.iter().any(|r| r.clone().any(|pn| !sent[space].contains(&pn)));
                    match h.ld.on_ack_received(now, id, &ack, &mut h.cc) {
                        Ok(out) => {
                            prop_assert!(!bogus);
                            for p in out.acked {
                                prop_assert!(ranges.iter().any(|r| r.contains(&p.packet_number)));
                                prop_assert!(acked[space].insert(p.packet_number));
                            }
                            for p in out.lost {
                                prop_assert!(lost[space].insert(p.packet_number));
                            }
                        }
                        Err(e) => {
                            prop_assert!(acks_skipped_or_unsent, "unexpected {e}");
                            prop_assert_eq!(e.code, TransportErrorCode::PROTOCOL_VIOLATION);
                            prop_assert_eq!(h.ld.bytes_in_flight(), before);
                        }
                    }
                }
                Op::Timeout => {
                    if let Some(deadline) = h.ld.timer() {
                        now = now.max(deadline);
                        if let Some(LossTimeout::Lost { space, lost: l, .. }) = h.timeout(now) {
                            for p in l {
                                prop_assert!(lost[space as usize].insert(p.packet_number));
                            }
                        }
                    }
                }
            }
            let mut in_flight = 0;
            for (i, id) in SpaceId::ALL.into_iter().enumerate() {
                let outstanding: BTreeSet<u64> = h.ld.outstanding(id).map(|p| p.packet_number).collect();
                in_flight += h.ld.outstanding(id).filter(|p| p.in_flight).map(|p| p.sent_bytes).sum::<u64>();
                prop_assert!(acked[i].is_disjoint(&lost[i]));
                prop_assert!(outstanding.is_disjoint(&acked[i]) && outstanding.is_disjoint(&lost[i]));
                let mut union: Vec<u64> = outstanding.iter().chain(&acked[i]).chain(&lost[i]).copied().collect();
                union.sort_unstable();
                prop_assert_eq!(&union, &sent[i]);
            }
            prop_assert_eq!(h.ld.bytes_in_flight(), in_flight);
        }
    }
}

/// A peer that never acknowledges (a flood of PINGs, answered by ACK-only
/// packets) cannot make the sender remember every ACK-only packet.
#[test]
fn ack_only_packets_a_peer_never_acknowledges_are_forgotten_past_a_bound() {
    let mut h = Harness::confirmed();
    h.send_with(SpaceId::Data, 0, t(0), true);
    for pn in 1..10_000 {
        h.send_with(SpaceId::Data, pn, t(pn / 10), false);
    }
    let kept = h.ld.space(SpaceId::Data).len();
    assert!(kept <= 1 + 256, "{kept} packets remembered");
    // The ack-eliciting packet is still tracked, and a late ACK of
    // forgotten ones is harmless.
    assert!(h.ld.has_ack_eliciting_in_flight(SpaceId::Data));
    let out = h.ack(t(2_000), SpaceId::Data, &[0..=9_999], 0).unwrap();
    assert!(pns(&out.acked).contains(&0));
    assert_eq!(h.ld.space(SpaceId::Data).len(), 0);
}
