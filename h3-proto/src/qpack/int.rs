//! QPACK's prefixed integers (RFC 9204 §4.1.1, the format of RFC 7541
//! §5.1): an N-bit prefix in the first byte, continued in 7-bit groups.

use super::Cause;

/// Encodes `value` with an `n`-bit prefix (1..=8) into `out`; `flags` holds
/// the first byte's bits above the prefix.
pub(crate) fn encode(value: u64, n: u8, flags: u8, out: &mut Vec<u8>) {
    debug_assert!((1..=8).contains(&n), "prefix of 1 to 8 bits");
    let max = (1u16 << n) as u64 - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Decodes an integer with an `n`-bit prefix from the start of `buf`:
/// the value and the bytes it took. `Cause::Truncated` if `buf` ends
/// first; `Cause::IntegerOverflow` past 62 bits.
pub(crate) fn decode(buf: &[u8], n: u8) -> Result<(u64, usize), Cause> {
    debug_assert!((1..=8).contains(&n), "prefix of 1 to 8 bits");
    let (&first, rest) = buf.split_first().ok_or(Cause::Truncated)?;
    let max = (1u16 << n) as u64 - 1;
    let mut value = u64::from(first) & max;
    if value < max {
        return Ok((value, 1));
    }
    let mut shift = 0u32;
    for (i, &b) in rest.iter().enumerate() {
        //= https://www.rfc-editor.org/rfc/rfc9204#section-4.1.1
        //# QPACK implementations MUST be able to decode integers up to and including 62
        //# bits long.
        //
        // Longer ones are refused: no QPACK quantity needs more, and a
        // peer sending continuation bytes forever must not be followed.
        let add =
            u64::from(b & 0x7f).checked_shl(shift).filter(|a| a >> shift == u64::from(b & 0x7f));
        value = add.and_then(|a| value.checked_add(a)).ok_or(Cause::IntegerOverflow)?;
        if value >= 1 << 62 {
            return Err(Cause::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok((value, i + 2));
        }
        shift += 7;
        if shift > 63 {
            return Err(Cause::IntegerOverflow);
        }
    }
    Err(Cause::Truncated)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rfc7541_examples() {
        // RFC 7541 C.1.1-C.1.3: 10 in a 5-bit prefix, 1337 in a 5-bit
        // prefix, 42 at an octet boundary.
        let mut out = Vec::new();
        encode(10, 5, 0, &mut out);
        assert_eq!(out, [0x0a]);
        out.clear();
        encode(1337, 5, 0, &mut out);
        assert_eq!(out, [0x1f, 0x9a, 0x0a]);
        out.clear();
        encode(42, 8, 0, &mut out);
        assert_eq!(out, [0x2a]);
        assert_eq!(decode(&[0x1f, 0x9a, 0x0a], 5), Ok((1337, 3)));
        assert_eq!(decode(&[0xea], 5), Ok((10, 1)), "bits above the prefix are not the value's");
    }

    //= https://www.rfc-editor.org/rfc/rfc9204#section-4.1.1
    //= type=test
    //# QPACK implementations MUST be able to decode integers up to and including 62
    //# bits long.
    #[test]
    fn sixty_two_bits_decode_and_more_is_an_error() {
        let max = (1u64 << 62) - 1;
        for n in 1..=8 {
            let mut out = Vec::new();
            encode(max, n, 0, &mut out);
            assert_eq!(decode(&out, n), Ok((max, out.len())));
        }
        let mut out = Vec::new();
        encode(1 << 62, 7, 0, &mut out);
        assert_eq!(decode(&out, 7), Err(Cause::IntegerOverflow));
        // Endless continuation bytes stop early, not at the end of the input.
        let endless = [[0xffu8].as_slice(), &[0xff; 100]].concat();
        assert_eq!(decode(&endless, 8), Err(Cause::IntegerOverflow));
        assert_eq!(decode(&[0x1f, 0x9a], 5), Err(Cause::Truncated));
        assert_eq!(decode(&[], 5), Err(Cause::Truncated));
    }

    proptest! {
        #[test]
        fn round_trips_with_flags_kept(value in 0u64..(1 << 62), n in 1u8..=8, flags: u8) {
            let flags = if n == 8 { 0 } else { flags & !((1u16 << n) - 1) as u8 };
            let mut out = Vec::new();
            encode(value, n, flags, &mut out);
            prop_assert_eq!(out[0] & !((1u16 << n) - 1) as u8, flags);
            prop_assert_eq!(decode(&out, n), Ok((value, out.len())));
        }

        #[test]
        fn arbitrary_input_never_panics(buf: Vec<u8>, n in 1u8..=8) {
            let _ = decode(&buf, n);
        }
    }
}
