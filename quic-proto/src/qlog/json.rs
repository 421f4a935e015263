//! A minimal JSON writer (RFC 8259) for qlog records: objects, arrays,
//! strings with correct escaping, integers and finite floats. Commas are
//! tracked here so that event code reads as a list of fields.

use core::fmt::Write as _;

/// Writes one JSON value into a byte buffer. Callers open and close
/// objects and arrays in order; the writer inserts commas.
pub(crate) struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Whether the innermost open container already holds a member.
    needs_comma: bool,
}

impl<'a> JsonWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, needs_comma: false }
    }

    fn separator(&mut self) {
        if self.needs_comma {
            self.out.push(b',');
        }
        self.needs_comma = true;
    }

    fn key(&mut self, key: &str) {
        self.separator();
        write_str(self.out, key);
        self.out.push(b':');
    }

    /// Starts an object as an array element (or the top-level value).
    pub(crate) fn begin_object(&mut self) {
        self.separator();
        self.out.push(b'{');
        self.needs_comma = false;
    }

    /// Starts an object as the member `key`.
    pub(crate) fn object(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'{');
        self.needs_comma = false;
    }

    pub(crate) fn end_object(&mut self) {
        self.out.push(b'}');
        self.needs_comma = true;
    }

    /// Starts an array as the member `key`.
    pub(crate) fn array(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'[');
        self.needs_comma = false;
    }

    /// Starts an array as an array element.
    pub(crate) fn begin_array(&mut self) {
        self.separator();
        self.out.push(b'[');
        self.needs_comma = false;
    }

    pub(crate) fn end_array(&mut self) {
        self.out.push(b']');
        self.needs_comma = true;
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        write_str(self.out, value);
    }

    /// A string array element.
    pub(crate) fn str_element(&mut self, value: &str) {
        self.separator();
        write_str(self.out, value);
    }

    /// Bytes as a qlog `hexstring` (lowercase, no prefix).
    pub(crate) fn hex(&mut self, key: &str, bytes: &[u8]) {
        self.key(key);
        write_hex(self.out, bytes);
    }

    /// A `hexstring` array element.
    pub(crate) fn hex_element(&mut self, bytes: &[u8]) {
        self.separator();
        write_hex(self.out, bytes);
    }

    pub(crate) fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = write!(Adapter(self.out), "{value}");
    }

    /// An integer array element.
    pub(crate) fn u64_element(&mut self, value: u64) {
        self.separator();
        let _ = write!(Adapter(self.out), "{value}");
    }

    pub(crate) fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// A float; JSON has no NaN or infinity, so those become 0.
    pub(crate) fn f64(&mut self, key: &str, value: f64) {
        self.key(key);
        write_f64(self.out, value);
    }
}

/// `Display` for `f64` never uses an exponent and prints the shortest
/// digits that round-trip, which is valid JSON for every finite value.
fn write_f64(out: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        let _ = write!(Adapter(out), "{value}");
    } else {
        out.push(b'0');
    }
}

fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    out.push(b'"');
}

/// A JSON string (RFC 8259 §7): quote, backslash and control characters
/// escaped; everything else is already UTF-8 in a `&str`.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(Adapter(out), "\\u{:04x}", u32::from(c));
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// `fmt::Write` into a byte buffer, for numbers.
struct Adapter<'a>(&'a mut Vec<u8>);

impl core::fmt::Write for Adapter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
