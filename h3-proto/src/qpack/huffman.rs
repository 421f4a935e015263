//! The static Huffman code of HPACK (RFC 7541 §5.2 and Appendix B), which
//! QPACK string literals use when their H bit is set (RFC 9204 §4.1.2).
//!
//! RFC 7541's code is canonical: ordered by length and, within a length,
//! by symbol, each code is the previous one plus one, shifted left when the
//! length grows. So the table below holds only each symbol's code length
//! (copied from RFC 7541 Appendix B); the codes are derived from them at
//! compile time, and tests hold them against the RFC's examples.

/// Code length in bits of each symbol 0..=255 and EOS (256), RFC 7541
/// Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const EOS: u16 = 256;
const MIN_LEN: u32 = 5;
const MAX_LEN: usize = 30;
/// Codes up to this many bits decode with one table lookup.
const FAST_BITS: u32 = 9;

/// The symbols in canonical order: by code length, then by value.
const SORTED: [u16; 257] = {
    let mut sorted = [0u16; 257];
    let mut n = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        let mut sym = 0;
        while sym < 257 {
            if LENGTHS[sym] as usize == len {
                sorted[n] = sym as u16;
                n += 1;
            }
            sym += 1;
        }
        len += 1;
    }
    sorted
};

/// Per code length: the first code of that length, how many codes have
/// it, and where its symbols start in `SORTED`.
struct Canonical {
    first: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    offset: [u32; MAX_LEN + 1],
}

const CANONICAL: Canonical = {
    let mut count = [0u32; MAX_LEN + 1];
    let mut sym = 0;
    while sym < 257 {
        count[LENGTHS[sym] as usize] += 1;
        sym += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    let mut offset = [0u32; MAX_LEN + 1];
    let mut code = 0u32;
    let mut at = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        first[len] = code;
        offset[len] = at;
        code = (code + count[len]) << 1;
        at += count[len];
        len += 1;
    }
    Canonical { first, count, offset }
};

/// Each symbol's code, right-aligned.
const CODES: [u32; 257] = {
    let mut codes = [0u32; 257];
    let mut i = 0;
    let mut prev_len = 0usize;
    let mut code = 0u32;
    while i < 257 {
        let sym = SORTED[i] as usize;
        let len = LENGTHS[sym] as usize;
        if i == 0 {
            code = CANONICAL.first[len];
        } else {
            code = (code + 1) << (len - prev_len);
        }
        codes[sym] = code;
        prev_len = len;
        i += 1;
    }
    codes
};

/// For every `FAST_BITS`-bit prefix: the symbol and code length of the
/// code it starts with, or length 0 when the code is longer.
const FAST: [(u16, u8); 1 << FAST_BITS] = {
    let mut fast = [(0u16, 0u8); 1 << FAST_BITS];
    let mut sym = 0;
    while sym < 257 {
        let len = LENGTHS[sym] as u32;
        if len <= FAST_BITS {
            let start = (CODES[sym] << (FAST_BITS - len)) as usize;
            let span = 1usize << (FAST_BITS - len);
            let mut j = 0;
            while j < span {
                fast[start + j] = (sym as u16, len as u8);
                j += 1;
            }
        }
        sym += 1;
    }
    fast
};

/// Why a Huffman-coded string was refused (RFC 7541 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HuffmanError {
    /// The EOS symbol appears in the string.
    Eos,
    /// Padding longer than 7 bits, or not the most significant bits of EOS.
    Padding,
}

/// The length in bytes of `input` Huffman coded.
pub(crate) fn encoded_len(input: &[u8]) -> usize {
    let bits: usize = input.iter().map(|&b| LENGTHS[b as usize] as usize).sum();
    bits.div_ceil(8)
}

/// Appends `input` Huffman coded to `out`, padded with the most
/// significant bits of EOS (all ones).
pub(crate) fn encode(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(input));
    // Only the low `bits` bits of `acc` matter; fewer than 8 + 30 are ever
    // pending, so shifting older bits out of the top loses nothing.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        let len = LENGTHS[b as usize] as u32;
        acc = (acc << len) | u64::from(CODES[b as usize]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
}

/// Appends the decoding of `input` to `out`.
pub(crate) fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    // Each symbol takes at least 5 bits.
    out.reserve(input.len() * 8 / MIN_LEN as usize);
    // Pending bits, left-aligned; the bits below `bits` are zero.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let mut next = 0;
    loop {
        while bits <= 56 && next < input.len() {
            acc |= u64::from(input[next]) << (56 - bits);
            bits += 8;
            next += 1;
        }
        if bits < MIN_LEN {
            break;
        }
        let (sym, len) = match FAST[(acc >> (64 - FAST_BITS)) as usize] {
            (sym, len) if len != 0 => (sym, u32::from(len)),
            _ => slow_lookup(acc),
        };
        if len > bits {
            // What is left is too short for the code it starts: padding.
            break;
        }
        //= https://www.rfc-editor.org/rfc/rfc7541#section-5.2
        //# A Huffman-encoded string literal containing the EOS symbol MUST be
        //# treated as a decoding error.
        if sym == EOS {
            return Err(HuffmanError::Eos);
        }
        out.push(sym as u8);
        acc <<= len;
        bits -= len;
    }
    //= https://www.rfc-editor.org/rfc/rfc7541#section-5.2
    //# A padding strictly longer than 7 bits MUST be treated as a decoding
    //# error.  A padding not corresponding to the most significant bits of
    //# the code for the EOS symbol MUST be treated as a decoding error.
    if bits > 7 || (bits > 0 && acc >> (64 - bits) != (1 << bits) - 1) {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

/// The code `acc` (left-aligned) starts with, longer than `FAST_BITS`.
fn slow_lookup(acc: u64) -> (u16, u32) {
    let c = &CANONICAL;
    for len in (FAST_BITS as usize + 1)..=MAX_LEN {
        let code = (acc >> (64 - len)) as u32;
        if code.wrapping_sub(c.first[len]) < c.count[len] {
            return (SORTED[(c.offset[len] + code - c.first[len]) as usize], len as u32);
        }
    }
    // Unreachable: the code is complete (its Kraft sum is 1), so every
    // 30-bit pattern starts with a code. Answering EOS fails the string.
    (EOS, MAX_LEN as u32)
}

#[cfg(test)]
mod tests;
