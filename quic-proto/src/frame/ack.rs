//! ACK and ACK_ECN frames (RFC 9000 §19.3): decoding that validates every
//! range up front, allocation-free iteration over the acknowledged ranges,
//! and encoding with an exact, boundable size.

use core::fmt;
use core::iter::FusedIterator;
use core::ops::RangeInclusive;

use bytes::BufMut;

use super::{FrameType, read_varint};
use crate::coding::Reader;
use crate::error::TransportError;
use crate::varint::VarInt;

/// The ECN counts of an ACK_ECN frame (RFC 9000 §19.3.2): how many packets
/// of the ACK's packet number space arrived with each codepoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EcnCounts {
    /// Packets received with ECT(0).
    pub ect0: VarInt,
    /// Packets received with ECT(1).
    pub ect1: VarInt,
    /// Packets received with ECN-CE.
    pub ce: VarInt,
}

impl EcnCounts {
    fn encoded_len(&self) -> usize {
        self.ect0.size() + self.ect1.size() + self.ce.size()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.ect0.encode(buf);
        self.ect1.encode(buf);
        self.ce.encode(buf);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, TransportError> {
        Ok(Self { ect0: read_varint(r)?, ect1: read_varint(r)?, ce: read_varint(r)? })
    }
}

/// A received ACK or ACK_ECN frame.
///
/// Every range was checked when the frame was decoded, so
/// [`Ack::ranges`] iterates without errors and without allocating.
/// Equality compares the acknowledged ranges, not their byte encoding.
#[derive(Clone, Copy)]
pub struct Ack<'a> {
    largest: VarInt,
    ack_delay: VarInt,
    range_count: VarInt,
    first_range: VarInt,
    /// The validated Gap / ACK Range Length pairs, as received.
    ranges: &'a [u8],
    ecn: Option<EcnCounts>,
}

impl<'a> Ack<'a> {
    /// Decodes the fields after the type byte; `ty` is ACK or ACK_ECN.
    pub(super) fn decode(r: &mut Reader<'a>, ty: FrameType) -> Result<Self, TransportError> {
        let largest = read_varint(r)?;
        let ack_delay = read_varint(r)?;
        let range_count = read_varint(r)?;
        let first_range = read_varint(r)?;
        let mut smallest = largest.into_inner().checked_sub(first_range.into_inner());

        // Walk the ranges on a copy of the reader, then take the bytes walked.
        let mut walk = Reader::new(r.peek_rest());
        // Each pair takes at least two bytes, so a huge count runs out of
        // input long before it costs real time.
        for _ in 0..range_count.into_inner() {
            let gap = read_varint(&mut walk)?.into_inner();
            let len = read_varint(&mut walk)?.into_inner();
            smallest = smallest
                .and_then(|s| s.checked_sub(gap)?.checked_sub(2))
                .and_then(|largest| largest.checked_sub(len));
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.3.1
        //# If any computed packet number is negative, an endpoint MUST generate a
        //# connection error of type FRAME_ENCODING_ERROR.
        if smallest.is_none() {
            return Err(TransportError::frame_encoding_error("ACK range below packet number 0"));
        }
        let ranges = r.bytes(walk.position()).map_err(super::truncated)?;

        let ecn = if ty == FrameType::ACK_ECN { Some(EcnCounts::decode(r)?) } else { None };
        Ok(Self { largest, ack_delay, range_count, first_range, ranges, ecn })
    }

    /// ACK_ECN if the frame carries ECN counts, else ACK.
    pub fn ty(&self) -> FrameType {
        if self.ecn.is_some() { FrameType::ACK_ECN } else { FrameType::ACK }
    }

    /// The largest packet number acknowledged.
    pub fn largest(&self) -> u64 {
        self.largest.into_inner()
    }

    /// The ACK Delay field as sent: microseconds divided by
    /// 2^ack_delay_exponent of the ACK's sender.
    pub fn ack_delay(&self) -> VarInt {
        self.ack_delay
    }

    /// The ACK delay in microseconds given the peer's `ack_delay_exponent`
    /// transport parameter (at most 20), saturating at `u64::MAX`.
    pub fn ack_delay_micros(&self, ack_delay_exponent: u8) -> u64 {
        let factor = 1u64.checked_shl(u32::from(ack_delay_exponent)).unwrap_or(u64::MAX);
        self.ack_delay.into_inner().saturating_mul(factor)
    }

    /// The ECN counts, present in an ACK_ECN frame.
    pub fn ecn(&self) -> Option<EcnCounts> {
        self.ecn
    }

    /// The number of acknowledged ranges: the ACK Range Count field plus one
    /// for the First ACK Range.
    pub fn range_count(&self) -> u64 {
        self.range_count.into_inner() + 1
    }

    /// The acknowledged packet numbers as inclusive ranges, largest first.
    pub fn ranges(&self) -> AckRangeIter<'a> {
        let largest = self.largest.into_inner();
        let smallest = largest.saturating_sub(self.first_range.into_inner());
        AckRangeIter {
            first: Some(smallest..=largest),
            smallest,
            remaining: self.range_count.into_inner(),
            r: Reader::new(self.ranges),
        }
    }

    /// The exact number of bytes [`Ack::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self.largest.size()
            + self.ack_delay.size()
            + self.range_count.size()
            + self.first_range.size()
            + self.ranges.len()
            + self.ecn.as_ref().map_or(0, EcnCounts::encoded_len)
    }

    /// Writes the frame, reproducing the ranges as received. To build an ACK
    /// from packet numbers, use [`AckEncoder`].
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.ty().0.encode(buf);
        self.largest.encode(buf);
        self.ack_delay.encode(buf);
        self.range_count.encode(buf);
        self.first_range.encode(buf);
        buf.put_slice(self.ranges);
        if let Some(ecn) = &self.ecn {
            ecn.encode(buf);
        }
    }
}

impl PartialEq for Ack<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.largest == other.largest
            && self.ack_delay == other.ack_delay
            && self.ecn == other.ecn
            && self.ranges().eq(other.ranges())
    }
}

impl Eq for Ack<'_> {}

impl fmt::Debug for Ack<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Ranges<'b>(AckRangeIter<'b>);
        impl fmt::Debug for Ranges<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.clone()).finish()
            }
        }
        f.debug_struct("Ack")
            .field("ack_delay", &self.ack_delay)
            .field("ranges", &Ranges(self.ranges()))
            .field("ecn", &self.ecn)
            .finish()
    }
}

impl<'a> IntoIterator for &Ack<'a> {
    type Item = RangeInclusive<u64>;
    type IntoIter = AckRangeIter<'a>;
    fn into_iter(self) -> AckRangeIter<'a> {
        self.ranges()
    }
}

/// The acknowledged ranges of an [`Ack`], largest first; from [`Ack::ranges`].
#[derive(Clone, Debug)]
pub struct AckRangeIter<'a> {
    first: Option<RangeInclusive<u64>>,
    smallest: u64,
    remaining: u64,
    r: Reader<'a>,
}

impl AckRangeIter<'_> {
    /// The next range after the first; `None` only at the end, since
    /// [`Ack::decode`] validated every pair.
    fn next_pair(&mut self) -> Option<RangeInclusive<u64>> {
        let gap = VarInt::decode(&mut self.r).ok()?.into_inner();
        let len = VarInt::decode(&mut self.r).ok()?.into_inner();
        let largest = self.smallest.checked_sub(gap)?.checked_sub(2)?;
        let smallest = largest.checked_sub(len)?;
        self.smallest = smallest;
        Some(smallest..=largest)
    }
}

impl Iterator for AckRangeIter<'_> {
    type Item = RangeInclusive<u64>;

    fn next(&mut self) -> Option<RangeInclusive<u64>> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.remaining == 0 {
            return None;
        }
        let range = self.next_pair();
        // Unreachable for a decoded frame; stop cleanly rather than panic.
        self.remaining = if range.is_some() { self.remaining - 1 } else { 0 };
        range
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Each remaining pair occupies at least two validated bytes, so the
        // count fits in `usize`.
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        let n = n.saturating_add(usize::from(self.first.is_some()));
        (n, Some(n))
    }
}

impl ExactSizeIterator for AckRangeIter<'_> {}
impl FusedIterator for AckRangeIter<'_> {}

/// Writes an ACK or ACK_ECN frame from the acknowledged packet numbers.
///
/// `ranges` yields inclusive ranges ordered by start, largest first, as a
/// received-packet set iterated in reverse gives them; overlapping or
/// adjacent ranges are merged. The iterator is cloned for each pass, so
/// [`AckEncoder::encoded_len`] is exact before anything is written.
///
/// ```
/// # use quic_proto::{frame::AckEncoder, VarInt};
/// let ack = AckEncoder::new([9..=10, 2..=5].into_iter(), VarInt::from_u32(3)).unwrap();
/// let mut buf = Vec::new();
/// ack.encode(&mut buf);
/// assert_eq!(buf, [0x02, 10, 3, 1, 1, 2, 3]);
/// assert_eq!(buf.len(), ack.encoded_len());
/// ```
#[derive(Clone, Debug)]
pub struct AckEncoder<I> {
    ranges: I,
    ack_delay: VarInt,
    ecn: Option<EcnCounts>,
    max_ranges: usize,
}

impl<I> AckEncoder<I>
where
    I: Iterator<Item = RangeInclusive<u64>> + Clone,
{
    /// An encoder for `ranges` (see the type docs for their order) with the
    /// ACK Delay field `ack_delay`, already scaled down by the local
    /// ack_delay_exponent. `None` if `ranges` is empty: an ACK frame always
    /// acknowledges at least one packet.
    ///
    /// Panics later, when encoding, if the ranges are out of order or
    /// exceed 2^62-1: both are bugs in the caller, never peer input.
    pub fn new(ranges: I, ack_delay: VarInt) -> Option<Self> {
        ranges.clone().next()?;
        Some(Self { ranges, ack_delay, ecn: None, max_ranges: usize::MAX })
    }

    /// Sends ACK_ECN with these counts instead of a plain ACK.
    pub fn with_ecn(mut self, ecn: EcnCounts) -> Self {
        self.ecn = Some(ecn);
        self
    }

    /// Writes at most `max` ranges (at least one), the largest ones, to cap
    /// the frame's size. Default: no limit.
    pub fn with_max_ranges(mut self, max: usize) -> Self {
        self.max_ranges = max.max(1);
        self
    }

    /// Lowers the range limit so the frame fits in `space` bytes, keeping as
    /// many of the largest ranges as fit. Returns `false`, leaving the
    /// encoder unchanged, if not even the first range fits.
    pub fn fit_to(&mut self, space: usize) -> bool {
        let mut fixed = 0;
        let mut pairs_len = 0;
        let mut fitting = 0;
        for (n, part) in self.parts().enumerate() {
            match part {
                Part::First { largest, first_range } => {
                    fixed = 1
                        + largest.size()
                        + self.ack_delay.size()
                        + first_range.size()
                        + self.ecn.as_ref().map_or(0, EcnCounts::encoded_len);
                }
                Part::Pair { gap, len } => pairs_len += gap.size() + len.size(),
            }
            if fixed + VarInt::size_of(n as u64) + pairs_len > space {
                break;
            }
            fitting = n + 1;
        }
        if fitting == 0 {
            return false;
        }
        self.max_ranges = fitting;
        true
    }

    /// The number of ranges the frame will carry, after merging and the
    /// [`AckEncoder::with_max_ranges`] cap.
    pub fn range_count(&self) -> usize {
        self.parts().count()
    }

    /// The exact number of bytes [`AckEncoder::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let mut total =
            1 + self.ack_delay.size() + self.ecn.as_ref().map_or(0, EcnCounts::encoded_len);
        let mut count = 0u64;
        for part in self.parts() {
            total += match part {
                Part::First { largest, first_range } => largest.size() + first_range.size(),
                Part::Pair { gap, len } => gap.size() + len.size(),
            };
            count += 1;
        }
        total + VarInt::size_of(count.saturating_sub(1))
    }

    /// Writes the frame.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        let ty = if self.ecn.is_some() { FrameType::ACK_ECN } else { FrameType::ACK };
        ty.0.encode(buf);
        let pairs = self.range_count() - 1;
        for part in self.parts() {
            match part {
                Part::First { largest, first_range } => {
                    largest.encode(buf);
                    self.ack_delay.encode(buf);
                    len_varint_u64(pairs as u64).encode(buf);
                    first_range.encode(buf);
                }
                Part::Pair { gap, len } => {
                    gap.encode(buf);
                    len.encode(buf);
                }
            }
        }
        if let Some(ecn) = &self.ecn {
            ecn.encode(buf);
        }
    }

    /// The frame's range fields, after merging and capping.
    fn parts(&self) -> impl Iterator<Item = Part> + '_ {
        let mut prev_smallest: Option<u64> = None;
        Merged { inner: self.ranges.clone(), pending: None }.take(self.max_ranges).map(
            move |range| {
                let (start, end) = range.into_inner();
                let part = match prev_smallest {
                    None => Part::First {
                        largest: len_varint_u64(end),
                        first_range: len_varint_u64(end - start),
                    },
                    Some(prev) => Part::Pair {
                        // Merging guarantees `end + 2 <= prev`.
                        gap: len_varint_u64(prev - end - 2),
                        len: len_varint_u64(end - start),
                    },
                };
                prev_smallest = Some(start);
                part
            },
        )
    }
}

/// One encoded piece of an ACK frame's range fields.
enum Part {
    First { largest: VarInt, first_range: VarInt },
    Pair { gap: VarInt, len: VarInt },
}

/// A value derived from a packet number, which RFC 9000 §12.3 bounds by
/// 2^62-1.
fn len_varint_u64(x: u64) -> VarInt {
    VarInt::from_u64(x).expect("packet numbers are below 2^62")
}

/// Merges overlapping and adjacent ranges of a start-descending sequence.
#[derive(Clone)]
struct Merged<I> {
    inner: I,
    pending: Option<RangeInclusive<u64>>,
}

impl<I: Iterator<Item = RangeInclusive<u64>>> Iterator for Merged<I> {
    type Item = RangeInclusive<u64>;

    fn next(&mut self) -> Option<RangeInclusive<u64>> {
        let mut cur = self.pending.take().or_else(|| self.inner.next())?;
        for next in self.inner.by_ref() {
            assert!(next.start() <= next.end(), "empty ACK range {next:?}");
            assert!(
                next.start() <= cur.start(),
                "ACK ranges must be ordered largest first: {next:?} after {cur:?}"
            );
            if next.end().saturating_add(1) >= *cur.start() {
                cur = *next.start()..=*cur.end().max(next.end());
            } else {
                self.pending = Some(next);
                break;
            }
        }
        assert!(cur.start() <= cur.end(), "empty ACK range {cur:?}");
        Some(cur)
    }
}
