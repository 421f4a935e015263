use core::ops::RangeInclusive;
use core::time::Duration;

use super::*;
use crate::coding::Reader;
use crate::frame::{Frame, FrameType};

const MS: Duration = Duration::from_millis(1);

fn t(ms: u64) -> Instant {
    Instant::from_millis(1_000 + ms)
}

/// What an encoded ACK frame says, decoded back.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    ty: FrameType,
    ranges: Vec<RangeInclusive<u64>>,
    ack_delay: u64,
    ecn: Option<EcnCounts>,
}

fn frame(tracker: &AckTracker, now: Instant, exponent: u8) -> Option<Decoded> {
    let encoder = tracker.ack_frame(now, exponent)?;
    let mut buf = Vec::new();
    encoder.encode(&mut buf);
    assert_eq!(buf.len(), encoder.encoded_len());
    let Ok(Frame::Ack(ack)) = Frame::decode(&mut Reader::new(&buf)) else {
        panic!("not an ACK frame: {buf:?}");
    };
    Some(Decoded {
        ty: ack.ty(),
        ranges: ack.ranges().collect(),
        ack_delay: ack.ack_delay().into_inner(),
        ecn: ack.ecn(),
    })
}

fn data() -> AckTracker {
    AckTracker::new(SpaceId::Data)
}

#[test]
fn second_ack_eliciting_packet_makes_the_ack_due() {
    let mut a = data();
    assert_eq!(a.ack_deadline(), None);
    assert!(a.on_packet_received(t(0), 0, true, None));
    assert_eq!(a.ack_deadline(), Some(t(0) + DEFAULT_MAX_ACK_DELAY));
    assert!(!a.is_ack_due(t(24)));
    assert!(a.is_ack_due(t(25)));
    assert!(a.on_packet_received(t(3), 1, true, None));
    assert_eq!(a.ack_deadline(), Some(t(3)));
    assert_eq!(a.on_ack_sent(), Some(1));
    assert_eq!(a.ack_deadline(), None);
    assert!(!a.has_unreported());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
//= type=test
//# Every packet SHOULD be acknowledged at least once, and ack-eliciting packets
//# MUST be acknowledged at least once within the maximum delay an endpoint
//# communicated using the max_ack_delay transport parameter; see
//# {{transport-parameter-definitions}}.
#[test]
fn delay_timer_and_configurable_threshold() {
    let mut a = data();
    a.set_ack_eliciting_threshold(10).set_max_ack_delay(5 * MS);
    for pn in 0..9 {
        a.on_packet_received(t(pn), pn, true, None);
    }
    // Nine in order: only the timer from the first one.
    assert_eq!(a.ack_deadline(), Some(t(0) + 5 * MS));
    a.on_packet_received(t(9), 9, true, None);
    assert_eq!(a.ack_deadline(), Some(t(9)));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
//= type=test
//# An endpoint MUST NOT send a non-ack-eliciting packet in response to a
//# non-ack-eliciting packet, even if there are packet gaps that precede the
//# received packet.
#[test]
fn non_ack_eliciting_packets_never_make_an_ack_due() {
    let mut a = AckTracker::new(SpaceId::Initial);
    a.on_packet_received(t(0), 0, false, None);
    a.on_packet_received(t(1), 5, false, Some(EcnCodepoint::Ce));
    a.on_packet_received(t(2), 3, false, None);
    assert_eq!(a.ack_deadline(), None);
    // They are still reported when an ACK goes out for another reason.
    assert!(a.has_unreported());
    assert_eq!(frame(&a, t(2), 3).unwrap().ranges, [5..=5, 3..=3, 0..=0]);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
//= type=test
//# An endpoint MUST acknowledge all ack-eliciting Initial and Handshake packets
//# immediately and all ack-eliciting 0-RTT and 1-RTT packets within its advertised
//# max_ack_delay, with the following exception.
#[test]
fn initial_and_handshake_acknowledge_immediately() {
    for space in [SpaceId::Initial, SpaceId::Handshake] {
        let mut a = AckTracker::new(space);
        a.on_packet_received(t(7), 0, true, None);
        assert_eq!(a.ack_deadline(), Some(t(7)), "{space:?}");
    }
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
//= type=test
//# * when the received packet has a packet number less than another ack-eliciting
//#   packet that has been received, or
#[test]
fn reordered_packet_is_acknowledged_immediately() {
    let mut a = data();
    a.set_ack_eliciting_threshold(100);
    a.on_packet_received(t(0), 0, true, None);
    a.on_packet_received(t(1), 2, false, None);
    a.on_packet_received(t(2), 3, true, None); // gap at 1 below 3: due
    assert_eq!(a.ack_deadline(), Some(t(2)));
    a.on_ack_sent();
    a.on_packet_received(t(5), 1, true, None);
    assert_eq!(a.ack_deadline(), Some(t(5)));
    a.on_ack_sent();
    // Below the largest packet, but not below the largest ack-eliciting one:
    // no hurry.
    let mut b = data();
    b.set_ack_eliciting_threshold(100);
    b.on_packet_received(t(0), 4, false, None);
    b.on_packet_received(t(1), 2, true, None);
    assert_eq!(b.ack_deadline(), Some(t(1) + DEFAULT_MAX_ACK_DELAY));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
//= type=test
//# * when the packet has a packet number larger than the highest-numbered
//#   ack-eliciting packet that has been received and there are missing packets
//#   between that packet and this packet.
#[test]
fn gap_is_acknowledged_immediately() {
    let mut a = data();
    a.set_ack_eliciting_threshold(100);
    a.on_packet_received(t(0), 0, true, None);
    a.on_packet_received(t(1), 1, false, None);
    a.on_packet_received(t(2), 2, true, None);
    // 0..=2 is contiguous, even though 1 was not ack-eliciting.
    assert_eq!(a.ack_deadline(), Some(t(0) + DEFAULT_MAX_ACK_DELAY));
    a.on_packet_received(t(3), 4, true, None);
    assert_eq!(a.ack_deadline(), Some(t(3)));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.1
//= type=test
//# Similarly, packets marked with the ECN Congestion Experienced (CE) codepoint in
//# the IP header SHOULD be acknowledged immediately, to reduce the peer's response
//# time to congestion events.
#[test]
fn ce_mark_is_acknowledged_immediately_and_counted() {
    let mut a = data();
    a.set_ack_eliciting_threshold(100);
    a.on_packet_received(t(0), 0, true, Some(EcnCodepoint::Ect0));
    a.on_packet_received(t(0), 1, true, Some(EcnCodepoint::Ect0));
    assert_eq!(a.ack_deadline(), Some(t(0) + DEFAULT_MAX_ACK_DELAY));
    a.on_packet_received(t(4), 2, true, Some(EcnCodepoint::Ce));
    assert_eq!(a.ack_deadline(), Some(t(4)));
    a.on_packet_received(t(5), 3, false, Some(EcnCodepoint::Ect1));
    let f = frame(&a, t(5), 0).unwrap();
    assert_eq!(f.ty, FrameType::ACK_ECN);
    let v = VarInt::from_u32;
    assert_eq!(f.ecn, Some(EcnCounts { ect0: v(2), ect1: v(1), ce: v(1) }));
    assert_eq!(EcnCodepoint::from_bits(0x03), Some(EcnCodepoint::Ce));
    assert_eq!(EcnCodepoint::from_bits(0xb8 | 0b10), Some(EcnCodepoint::Ect0));
    assert_eq!(EcnCodepoint::from_bits(0xb8), None);
    assert_eq!(EcnCodepoint::Ect1.bits(), 0b01);
}

#[test]
fn frame_lists_ranges_largest_first_with_scaled_delay() {
    let mut a = data();
    assert!(frame(&a, t(0), 3).is_none());
    for pn in [0, 1, 2, 5, 6, 9] {
        a.on_packet_received(t(pn), pn, pn != 6, None);
    }
    let f = frame(&a, t(9) + 8 * MS, 3).unwrap();
    assert_eq!(f.ty, FrameType::ACK);
    assert_eq!(f.ranges, [9..=9, 5..=6, 0..=2]);
    // 8 ms since the largest arrived, in units of 2^3 microseconds.
    assert_eq!(f.ack_delay, 1_000);
    assert_eq!(f.ecn, None);
    assert_eq!(frame(&a, t(9) + 8 * MS, 0).unwrap().ack_delay, 8_000);
    // A reordered packet does not move the delay reference.
    a.on_packet_received(t(20), 7, true, None);
    assert_eq!(frame(&a, t(9) + 8 * MS, 0).unwrap().ack_delay, 8_000);
    assert_eq!(a.largest_received(), Some(9));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-13.2.3
//= type=test
//# After receiving acknowledgments for an ACK frame, the receiver
//# SHOULD stop tracking those acknowledged ACK Ranges.
#[test]
fn ack_of_ack_stops_reporting_old_ranges() {
    let mut a = data();
    for pn in [0, 1, 3, 4] {
        a.on_packet_received(t(pn), pn, true, None);
    }
    let largest = a.on_ack_sent().unwrap();
    assert_eq!(largest, 4);
    a.on_packet_received(t(10), 6, true, None);
    assert_eq!(frame(&a, t(10), 3).unwrap().ranges, [6..=6, 3..=4, 0..=1]);
    a.on_ack_of_ack(largest);
    assert_eq!(frame(&a, t(10), 3).unwrap().ranges, [6..=6]);
    // Old packets are still duplicates; a late packet below the acknowledged
    // ACK that never arrived is new and gets reported.
    assert!(a.is_duplicate(3) && a.is_duplicate(0));
    assert!(!a.is_duplicate(2));
    assert!(a.on_packet_received(t(11), 2, true, None));
    assert_eq!(frame(&a, t(11), 3).unwrap().ranges, [6..=6, 2..=2]);
    // Everything acknowledged: nothing left to report.
    a.on_ack_sent();
    a.on_ack_of_ack(6);
    assert!(frame(&a, t(12), 3).is_none());
    assert!(!a.has_unreported());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-12.3
//= type=test
//# A receiver MUST discard a newly unprotected packet unless it is certain that it
//# has not processed another packet with the same packet number from the same
//# packet number space.
#[test]
fn duplicates_are_refused_and_not_counted() {
    let mut a = data();
    assert!(a.on_packet_received(t(0), 4, true, Some(EcnCodepoint::Ect0)));
    assert!(a.is_duplicate(4));
    assert!(!a.is_duplicate(3) && !a.is_duplicate(5));
    assert!(!a.on_packet_received(t(1), 4, true, Some(EcnCodepoint::Ce)));
    assert_eq!(a.ecn_counts().unwrap().ce, VarInt::ZERO);
    // The duplicate did not count toward the threshold either.
    assert_eq!(a.ack_deadline(), Some(t(0) + DEFAULT_MAX_ACK_DELAY));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-12.3
//= type=test
//# The data required for
//# detecting duplicates can be limited by maintaining a minimum packet number below
//# which all packets are immediately dropped.
#[test]
fn range_cap_sheds_lowest_ranges_and_raises_the_duplicate_floor() {
    let mut a = data();
    a.set_max_ranges(4);
    // A hostile peer makes one range per packet.
    for pn in (0..40).step_by(2) {
        a.on_packet_received(t(pn), pn, true, None);
    }
    let f = frame(&a, t(40), 3).unwrap();
    assert_eq!(f.ranges, [38..=38, 36..=36, 34..=34, 32..=32]);
    // Never received, but below the floor: dropped as a duplicate.
    assert!(a.is_duplicate(1) && a.is_duplicate(31));
    assert!(!a.is_duplicate(33));
    assert!(!a.on_packet_received(t(41), 5, true, None));
    // Filling holes merges ranges without shedding.
    assert!(a.on_packet_received(t(42), 35, true, None));
    assert_eq!(frame(&a, t(42), 3).unwrap().ranges, [38..=38, 34..=36, 32..=32]);
    assert!(!a.is_duplicate(33));
    assert!(a.on_packet_received(t(43), 33, true, None));
    assert_eq!(frame(&a, t(43), 3).unwrap().ranges, [38..=38, 32..=36]);
    assert!(a.is_duplicate(33) && a.is_duplicate(31));
}

#[test]
fn ack_delay_saturates_instead_of_overflowing() {
    let mut a = data();
    a.on_packet_received(Instant::ZERO, 0, true, None);
    let far = Instant::from_nanos(u64::MAX);
    let f = frame(&a, far, 0).unwrap();
    assert!(f.ack_delay > 0);
    // Packet numbers at the very top of the range are refused, never panic.
    assert!(!a.on_packet_received(t(0), u64::MAX, true, None));
    assert!(!a.on_packet_received(t(0), VarInt::MAX.into_inner() + 1, true, None));
    assert!(a.on_packet_received(t(0), VarInt::MAX.into_inner(), true, None));
    assert_eq!(
        frame(&a, t(0), 3).unwrap().ranges[0],
        VarInt::MAX.into_inner()..=VarInt::MAX.into_inner()
    );
}
