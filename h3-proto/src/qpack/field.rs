//! Field lines and QPACK string literals (RFC 9204 §4.1.2).

use super::{Cause, huffman, int};

/// One field line: a name and a value, octets both (HTTP field names are
/// lowercase ASCII, but QPACK carries whatever it is given).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// The field name.
    pub name: Vec<u8>,
    /// The field value.
    pub value: Vec<u8>,
    /// Never put this line in a dynamic table, here or at any
    /// intermediary (the 'N' bit, RFC 9204 §4.5.4): for values such as
    /// short secrets that must not be guessable through compression.
    pub never_index: bool,
}

impl Field {
    /// A field line that may be indexed.
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self { name: name.into(), value: value.into(), never_index: false }
    }

    /// The line's size as HTTP/3 counts it toward
    /// SETTINGS_MAX_FIELD_SECTION_SIZE and QPACK toward table sizes: name
    /// and value lengths plus 32 (RFC 9114 §4.2.2, RFC 9204 §3.2.1).
    pub fn size(&self) -> u64 {
        line_size(self.name.len(), self.value.len())
    }
}

pub(crate) fn line_size(name: usize, value: usize) -> u64 {
    name as u64 + value as u64 + 32
}

/// Reads a string literal from the start of `buf`: its length has an
/// `n`-bit prefix and the H (Huffman) flag is the bit above the prefix.
/// A string that would decode to more than `max_len` bytes is refused as
/// soon as its length is read, before its bytes arrive (`Cause::Truncated`
/// otherwise means: wait for more input).
pub(crate) fn read_string(buf: &[u8], n: u8, max_len: u64) -> Result<(Vec<u8>, usize), Cause> {
    let huffman = buf.first().is_some_and(|&b| b & (1 << n) != 0);
    let (len, at) = int::decode(buf, n)?;
    // A Huffman code is at least 5 bits a symbol and at most 30, with under
    // a byte of padding: `len` coded bytes hold at least (8 len - 7) / 30
    // symbols.
    let least = if huffman { len.saturating_mul(8).saturating_sub(7) / 30 } else { len };
    if least > max_len {
        return Err(Cause::FieldSectionTooLarge);
    }
    let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l)).ok_or(Cause::Truncated)?;
    let bytes = buf.get(at..end).ok_or(Cause::Truncated)?;
    let text = if huffman {
        let mut out = Vec::new();
        huffman::decode(bytes, &mut out).map_err(|_| Cause::Huffman)?;
        if out.len() as u64 > max_len {
            return Err(Cause::FieldSectionTooLarge);
        }
        out
    } else {
        bytes.to_vec()
    };
    Ok((text, end))
}

/// Writes `text` as a string literal with an `n`-bit length prefix, `flags`
/// above the H bit; Huffman coded when that is shorter.
pub(crate) fn write_string(text: &[u8], n: u8, flags: u8, out: &mut Vec<u8>) {
    let coded = huffman::encoded_len(text);
    if coded < text.len() {
        int::encode(coded as u64, n, flags | (1 << n), out);
        huffman::encode(text, out);
    } else {
        int::encode(text.len() as u64, n, flags, out);
        out.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_huffman_or_not() {
        for text in [&b""[..], b"www.example.com", b"\x00\xff\x10", &[b'a'; 300]] {
            let mut out = Vec::new();
            write_string(text, 7, 0, &mut out);
            let (back, used) = read_string(&out, 7, 1000).unwrap();
            assert_eq!((back.as_slice(), used), (text, out.len()));
            for cut in 0..out.len() {
                assert_eq!(read_string(&out[..cut], 7, 1000), Err(Cause::Truncated));
            }
        }
        let mut out = Vec::new();
        write_string(b"www.example.com", 7, 0, &mut out);
        assert_eq!(out[0], 0x80 | 12, "Huffman coded: 12 bytes, H set");
    }

    #[test]
    fn an_absurd_length_is_refused_before_its_bytes_arrive() {
        let mut out = Vec::new();
        int::encode(1 << 40, 5, 0, &mut out);
        assert_eq!(read_string(&out, 5, 1 << 16), Err(Cause::FieldSectionTooLarge));
        out.clear();
        int::encode(1 << 40, 5, 1 << 5, &mut out);
        assert_eq!(read_string(&out, 5, 1 << 16), Err(Cause::FieldSectionTooLarge));
        // Within the bound: only missing bytes.
        out.clear();
        int::encode(100, 5, 0, &mut out);
        assert_eq!(read_string(&out, 5, 100), Err(Cause::Truncated));
    }
}
