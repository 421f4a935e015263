//! Packet numbers and their truncated 1-4 byte encoding (RFC 9000 §12.3,
//! §17.1, Appendix A.2 and A.3).

use core::fmt;

use bytes::BufMut;

use crate::coding::{Reader, UnexpectedEnd};
use crate::varint::VarInt;

/// A full packet number, in `0..2^62` (RFC 9000 §12.3).
///
/// On the wire only the 1 to 4 least significant bytes travel (see
/// [`PacketNumber::encoded_len`] and [`decode_packet_number`]); the full value
/// feeds the AEAD nonce and the ACK frames.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PacketNumber(u64);

impl PacketNumber {
    /// Packet number 0, the first in every packet number space.
    pub const ZERO: Self = Self(0);
    /// The largest packet number, 2^62 - 1. A sender that reaches it must
    /// close the connection silently (RFC 9000 §12.3).
    pub const MAX: Self = Self((1 << 62) - 1);

    /// `x` as a packet number, or `None` if it is 2^62 or more.
    pub const fn new(x: u64) -> Option<Self> {
        if x <= Self::MAX.0 { Some(Self(x)) } else { None }
    }

    /// The value.
    pub const fn into_inner(self) -> u64 {
        self.0
    }

    /// The packet number after this one, or `None` after [`PacketNumber::MAX`].
    pub const fn next(self) -> Option<Self> {
        Self::new(self.0 + 1)
    }

    /// How many bytes to encode this packet number in, given the largest
    /// packet number the peer has acknowledged in this space (`None` before
    /// any acknowledgment). Call when building each packet; the result goes
    /// to [`crate::packet::Header::encode`].
    ///
    /// The chosen length represents more than twice the number of
    /// unacknowledged packet numbers, so a peer that has received at least
    /// `largest_acked` decodes it correctly. With 2^31 or more packets in
    /// flight even 4 bytes do not suffice; that many unacknowledged packets
    /// is a sender bug, and 4 is returned.
    pub fn encoded_len(self, largest_acked: Option<Self>) -> PacketNumberLen {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.1
        //# Prior to receiving an acknowledgment for a packet number space, the full packet
        //# number MUST be included; it is not to be truncated, as described below.
        //
        // "Full" is read as the pseudocode of RFC 9000 Appendix A.2 reads it:
        // enough bytes that a receiver with no state (expecting packet 0)
        // recovers the number, i.e. the number of unacked packets is `pn + 1`.
        let num_unacked = match largest_acked {
            None => self.0 + 1,
            Some(largest) => self.0.saturating_sub(largest.0),
        };
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.1
        //# After an acknowledgment is received for a packet number space, the sender MUST
        //# use a packet number size able to represent more than twice as large a range as
        //# the difference between the largest acknowledged packet number and the packet
        //# number being sent.
        //
        // `n` bytes represent a range of 2^(8n) > 2 * num_unacked exactly when
        // num_unacked < 2^(8n - 1).
        for len in 1..=3 {
            if num_unacked < 1 << (8 * len - 1) {
                return PacketNumberLen(len as u8);
            }
        }
        PacketNumberLen::MAX
    }

    /// The `len` least significant bytes of the packet number, as carried in
    /// the Packet Number field before header protection.
    pub const fn truncate(self, len: PacketNumberLen) -> u32 {
        (self.0 & len.mask()) as u32
    }

    /// Writes the truncated packet number in exactly `len` bytes, big-endian.
    pub fn encode<B: BufMut>(self, len: PacketNumberLen, buf: &mut B) {
        let bytes = self.0.to_be_bytes();
        buf.put_slice(&bytes[8 - len.bytes()..]);
    }
}

impl fmt::Debug for PacketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for PacketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<PacketNumber> for u64 {
    fn from(pn: PacketNumber) -> u64 {
        pn.0
    }
}

impl From<PacketNumber> for VarInt {
    /// Packet numbers and variable-length integers share the 62-bit range, so
    /// a packet number always fits (the Largest Acknowledged field of an ACK).
    fn from(pn: PacketNumber) -> VarInt {
        VarInt::saturating_from_u64(pn.0)
    }
}

/// The length of an encoded Packet Number field: 1, 2, 3 or 4 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketNumberLen(u8);

impl PacketNumberLen {
    /// The shortest encoding, one byte.
    pub const MIN: Self = Self(1);
    /// The longest encoding, four bytes; header protection samples as if the
    /// field always had this length (RFC 9001 §5.4.2).
    pub const MAX: Self = Self(4);

    /// A length of `bytes` bytes, or `None` unless it is 1 to 4.
    pub const fn new(bytes: usize) -> Option<Self> {
        if bytes >= 1 && bytes <= 4 { Some(Self(bytes as u8)) } else { None }
    }

    /// The length in bytes.
    pub const fn bytes(self) -> usize {
        self.0 as usize
    }

    /// The length in bits (8, 16, 24 or 32): `pn_nbits` of RFC 9000
    /// Appendix A.3.
    pub const fn bits(self) -> u32 {
        self.0 as u32 * 8
    }

    /// The length encoded in the two Packet Number Length bits of a first
    /// byte from which header protection has been removed.
    pub const fn from_first_byte(first: u8) -> Self {
        Self((first & 0x03) + 1)
    }

    /// The two Packet Number Length bits for the first byte (length - 1).
    pub const fn first_byte_bits(self) -> u8 {
        self.0 - 1
    }

    const fn mask(self) -> u64 {
        (1 << self.bits()) - 1
    }

    /// Reads a truncated packet number of this length.
    pub fn read(self, r: &mut Reader<'_>) -> Result<u32, UnexpectedEnd> {
        let mut x = 0u32;
        for b in r.bytes(self.bytes())? {
            x = (x << 8) | u32::from(*b);
        }
        Ok(x)
    }
}

impl fmt::Debug for PacketNumberLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

/// Recovers a full packet number from the `truncated_pn` carried in a packet
/// whose Packet Number field is `pn_len` long, given `largest_pn`, the largest
/// packet number successfully processed in this space (`None` if there is
/// none yet, in which case packet 0 is expected). Call after removing header
/// protection and before removing packet protection, which needs the full
/// number for the nonce.
///
/// This is `DecodePacketNumber` of RFC 9000 Appendix A.3 with `pn_nbits =
/// pn_len.bits()`: the result is the value closest to `largest_pn + 1` whose
/// low bits equal `truncated_pn`. Bits of `truncated_pn` beyond `pn_len` are
/// ignored. The result is always a valid packet number: if the closest value
/// would exceed 2^62 - 1 (only possible once `largest_pn` is 2^62 - 1, after
/// which a peer may send nothing more), the candidate one window lower is
/// returned, and packet protection will reject the packet.
pub fn decode_packet_number(
    largest_pn: Option<PacketNumber>,
    truncated_pn: u32,
    pn_len: PacketNumberLen,
) -> PacketNumber {
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.1
    //# Once header protection is removed, the packet number is decoded by finding the
    //# packet number value that is closest to the next expected packet.  The next
    //# expected packet is the highest received packet number plus one.
    let expected_pn = largest_pn.map_or(0, |pn| pn.0 + 1);
    let pn_win = 1u64 << pn_len.bits();
    let pn_hwin = pn_win / 2;
    let pn_mask = pn_win - 1;
    // No step overflows a u64: expected_pn <= 2^62 and pn_win <= 2^32, so
    // candidate_pn < 2^62 + 2^32 and expected_pn + pn_hwin < 2^63. The
    // pseudocode's `expected_pn - pn_hwin` is negative when expected_pn <
    // pn_hwin; no candidate is below a negative bound, hence `checked_sub`.
    let candidate_pn = (expected_pn & !pn_mask) | (u64::from(truncated_pn) & pn_mask);
    let too_low = expected_pn.checked_sub(pn_hwin).is_some_and(|low| candidate_pn <= low);
    let pn = if too_low && candidate_pn < (1 << 62) - pn_win {
        candidate_pn + pn_win
    } else if (candidate_pn > expected_pn + pn_hwin || candidate_pn > PacketNumber::MAX.0)
        && candidate_pn >= pn_win
    {
        candidate_pn - pn_win
    } else {
        candidate_pn
    };
    // `candidate_pn > MAX` implies expected_pn = 2^62 >= pn_win, so the
    // branch above brought it below 2^62.
    PacketNumber(pn.min(PacketNumber::MAX.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pn(x: u64) -> PacketNumber {
        PacketNumber::new(x).unwrap()
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#appendix-A.2
    //= type=test
    //# For example, if an endpoint has received an acknowledgment for packet 0xabe8b3
    //# and is sending a packet with a number of 0xac5c02, there are 29,519 (0x734f)
    //# outstanding packet numbers.  In order to represent at least twice this range
    //# (59,038 packets, or 0xe69e), 16 bits are required.
    //
    //= https://www.rfc-editor.org/rfc/rfc9000#appendix-A.2
    //= type=test
    //# In the same state, sending a packet with a number of 0xace8fe uses the 24-bit
    //# encoding, because at least 18 bits are required to represent twice the range
    //# (131,222 packets, or 0x020096).
    #[test]
    fn rfc9000_sample_encodings() {
        let acked = Some(pn(0xabe8b3));
        let len = pn(0xac5c02).encoded_len(acked);
        assert_eq!(len.bytes(), 2);
        assert_eq!(pn(0xac5c02).truncate(len), 0x5c02);
        let mut out = Vec::new();
        pn(0xac5c02).encode(len, &mut out);
        assert_eq!(out, [0x5c, 0x02]);

        let len = pn(0xace8fe).encoded_len(acked);
        assert_eq!(len.bytes(), 3);
        let mut out = Vec::new();
        pn(0xace8fe).encode(len, &mut out);
        assert_eq!(out, [0xac, 0xe8, 0xfe]);
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#appendix-A.3
    //= type=test
    //# For example, if the highest successfully authenticated packet had a packet
    //# number of 0xa82f30ea, then a packet containing a 16-bit value of 0x9b32 will be
    //# decoded as 0xa82f9b32.
    #[test]
    fn rfc9000_sample_decoding() {
        let two = PacketNumberLen::new(2).unwrap();
        assert_eq!(decode_packet_number(Some(pn(0xa82f30ea)), 0x9b32, two), pn(0xa82f9b32));
    }

    #[test]
    fn encoded_len_boundaries() {
        let len = |full, acked: Option<u64>| pn(full).encoded_len(acked.map(pn)).bytes();
        // No acknowledgment yet: pn + 1 packets are unacknowledged.
        assert_eq!(len(0, None), 1);
        assert_eq!(len(127, None), 2);
        assert_eq!(len(126, None), 1);
        // "More than twice the range": 127 outstanding fit one byte, 128 do not.
        assert_eq!(len(227, Some(100)), 1);
        assert_eq!(len(228, Some(100)), 2);
        assert_eq!(len(100 + (1 << 15) - 1, Some(100)), 2);
        assert_eq!(len(100 + (1 << 15), Some(100)), 3);
        assert_eq!(len(100 + (1 << 23), Some(100)), 4);
        assert_eq!(len(PacketNumber::MAX.0, Some(0)), 4);
        assert_eq!(len(PacketNumber::MAX.0, None), 4);
        // A caller bug (acked above the packet sent) still yields a length.
        assert_eq!(len(5, Some(10)), 1);
    }

    #[test]
    fn decode_window_edges() {
        let one = PacketNumberLen::MIN;
        // Nothing received yet: packet 0 is expected.
        assert_eq!(decode_packet_number(None, 0, one), pn(0));
        assert_eq!(decode_packet_number(None, 0xff, one), pn(0xff));
        // The window is (expected - 128, expected + 128].
        assert_eq!(decode_packet_number(Some(pn(0x1ff)), 0x80, one), pn(0x280));
        assert_eq!(decode_packet_number(Some(pn(0x1ff)), 0x81, one), pn(0x181));
        // Bits above the field length are ignored.
        assert_eq!(decode_packet_number(Some(pn(0x1ff)), 0xff81, one), pn(0x181));
        // Near 2^62 the window must not leave the packet number range.
        let max = PacketNumber::MAX.0;
        assert_eq!(decode_packet_number(Some(pn(max - 1)), 0xff, one), pn(max));
        assert_eq!(decode_packet_number(Some(pn(max - 300)), 0x00, one), pn(max - 0xff));
        assert_eq!(decode_packet_number(Some(PacketNumber::MAX), 0x00, one), pn(max - 0xff));
        assert_eq!(decode_packet_number(Some(PacketNumber::MAX), 0x7f, one), pn(max - 0x80));
        let four = PacketNumberLen::MAX;
        assert_eq!(
            decode_packet_number(Some(PacketNumber::MAX), 0, four),
            pn((1 << 62) - (1 << 32))
        );
    }

    #[test]
    fn lengths() {
        assert!(PacketNumberLen::new(0).is_none());
        assert!(PacketNumberLen::new(5).is_none());
        for b in 0..=0xffu8 {
            let len = PacketNumberLen::from_first_byte(b);
            assert_eq!(len.first_byte_bits(), b & 3);
        }
        let mut r = Reader::new(&[0x12, 0x34, 0x56]);
        assert_eq!(PacketNumberLen::new(3).unwrap().read(&mut r), Ok(0x123456));
        assert_eq!(PacketNumberLen::MIN.read(&mut r), Err(UnexpectedEnd));
        assert_eq!(PacketNumber::MAX.next(), None);
        assert_eq!(VarInt::from(PacketNumber::MAX), VarInt::MAX);
    }

    proptest! {
        /// Whenever the sender picks the length from the largest
        /// acknowledged packet and the receiver has processed at least that
        /// packet but not the one being sent, decoding recovers the number.
        #[test]
        fn decode_inverts_encode(
            acked in proptest::option::of(0..=PacketNumber::MAX.0),
            gap in 1u64..(1 << 31),
            received_extra in 0u64..(1 << 31),
        ) {
            let full = match acked {
                Some(a) => a.checked_add(gap),
                None => Some(gap - 1),
            };
            let Some(full) = full.and_then(PacketNumber::new) else { return Ok(()) };
            let acked = acked.map(pn);
            let len = full.encoded_len(acked);
            // The receiver's largest lies in [largest_acked, full).
            let largest = match acked {
                None if received_extra % 2 == 0 => None,
                None => Some(pn(received_extra % full.0.max(1)).min(pn(full.0.saturating_sub(1)))),
                Some(a) => Some(pn(a.0 + received_extra % (full.0 - a.0))),
            };
            if largest.is_some_and(|l| l >= full) {
                return Ok(());
            }
            let mut out = Vec::new();
            full.encode(len, &mut out);
            prop_assert_eq!(out.len(), len.bytes());
            let mut r = Reader::new(&out);
            let truncated = len.read(&mut r).unwrap();
            prop_assert_eq!(truncated, full.truncate(len));
            prop_assert_eq!(decode_packet_number(largest, truncated, len), full);
        }

        #[test]
        fn decode_is_total(
            largest in proptest::option::of(0..=PacketNumber::MAX.0),
            truncated in any::<u32>(),
            len in 1usize..=4,
        ) {
            let len = PacketNumberLen::new(len).unwrap();
            let out = decode_packet_number(largest.map(pn), truncated, len);
            prop_assert!(out <= PacketNumber::MAX);
            prop_assert_eq!(out.truncate(len), truncated & len.mask() as u32);
        }
    }
}
