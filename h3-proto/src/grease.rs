//! The reserved codepoints `0x1f * N + 0x21` that RFC 9114 sets aside in
//! every extensible space (frame types §7.2.8, settings §7.2.4.1, error
//! codes §8.1, stream types §6.2.3) so that peers are seen to ignore them.

use quic_proto::VarInt;

/// The largest `N` for which `0x1f * N + 0x21` still fits a
/// variable-length integer; that codepoint is 0x3ffffffffffffffe, the last
/// one RFC 9114 §11.2 lists.
pub(crate) const MAX_INDEX: u64 = (VarInt::MAX.into_inner() - 0x21) / 0x1f;

/// The `n`th reserved codepoint, or `None` past [`MAX_INDEX`].
pub(crate) fn nth(n: u64) -> Option<VarInt> {
    let x = n.checked_mul(0x1f)?.checked_add(0x21)?;
    VarInt::from_u64(x).ok()
}

/// Whether `x` is of the form `0x1f * N + 0x21`.
pub(crate) fn is_reserved(x: u64) -> bool {
    x >= 0x21 && (x - 0x21).is_multiple_of(0x1f)
}

/// A reserved codepoint picked by the caller's `random`, uniformly over
/// all of them (the modulo bias over a 2^57-sized range is negligible).
pub(crate) fn pick(random: u64) -> VarInt {
    nth(random % (MAX_INDEX + 1)).expect("N is at most MAX_INDEX, so 0x1f * N + 0x21 fits")
}

#[cfg(test)]
mod tests {
    use super::*;

    //= https://www.rfc-editor.org/rfc/rfc9114#section-11.2.1
    //= type=test
    //# Each code of the format `0x1f * N + 0x21` for non-negative integer values of `N`
    //# (that is, 0x21, 0x40, ..., through 0x3ffffffffffffffe) MUST NOT be assigned by
    //# IANA and MUST NOT appear in the listing of assigned values.
    #[test]
    fn the_reserved_range_is_the_rfcs() {
        assert_eq!(nth(0).map(VarInt::into_inner), Some(0x21));
        assert_eq!(nth(1).map(VarInt::into_inner), Some(0x40));
        assert_eq!(nth(MAX_INDEX).map(VarInt::into_inner), Some(0x3fff_ffff_ffff_fffe));
        assert_eq!(nth(MAX_INDEX + 1), None);
        assert_eq!(nth(u64::MAX), None);
        assert!(is_reserved(0x21) && is_reserved(0x40) && is_reserved(0x3fff_ffff_ffff_fffe));
        assert!(!is_reserved(0) && !is_reserved(0x20) && !is_reserved(0x22) && !is_reserved(2));
        for random in [0, 1, 7, MAX_INDEX, MAX_INDEX + 1, u64::MAX] {
            assert!(is_reserved(pick(random).into_inner()), "{random}");
        }
    }
}
