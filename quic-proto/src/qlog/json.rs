//! A minimal JSON writer (RFC 8259) for qlog records: objects, arrays,
//! strings with correct escaping, integers and finite floats. Commas are
//! tracked here so that event code reads as a list of fields. Public (as
//! [`super::JsonWriter`]) so that upper layers write the `data` of their
//! own events ([`crate::connection::Connection::qlog_app_event`]) the same
//! way.

use core::fmt::Write as _;

/// Writes one JSON value into a byte buffer. Callers open and close
/// objects and arrays in order; the writer inserts commas and escapes
/// keys and strings, so what it writes is valid JSON whenever every
/// container opened is closed.
///
/// ```
/// # use quic_proto::qlog::JsonWriter;
/// let mut out = Vec::new();
/// let mut w = JsonWriter::new(&mut out);
/// w.begin_object();
/// w.u64("stream_id", 0);
/// w.object("frame");
/// w.str("frame_type", "data");
/// w.end_object();
/// w.end_object();
/// assert_eq!(out, br#"{"stream_id":0,"frame":{"frame_type":"data"}}"#);
/// ```
#[derive(Debug)]
pub struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Whether the innermost open container already holds a member.
    needs_comma: bool,
    /// Whether the record is written in qvis's dialect (qlog 0.3 field
    /// spellings beside the draft's).
    qvis: bool,
}

impl<'a> JsonWriter<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, needs_comma: false, qvis: false }
    }

    /// Writes qvis's dialect from here on (see `qlog::QlogFormat::Qvis`).
    pub(crate) fn set_qvis(&mut self, qvis: bool) {
        self.qvis = qvis;
    }

    /// Whether the record is in qvis's dialect.
    pub(crate) fn qvis(&self) -> bool {
        self.qvis
    }

    fn separator(&mut self) {
        if self.needs_comma {
            self.out.push(b',');
        }
        self.needs_comma = true;
    }

    /// Keys are escaped like any string, though the drafts' field names
    /// never need it: they are copied whole.
    fn key(&mut self, key: &str) {
        self.separator();
        write_str(self.out, key);
        self.out.push(b':');
    }

    /// Starts an object as an array element (or the top-level value).
    pub fn begin_object(&mut self) {
        self.separator();
        self.out.push(b'{');
        self.needs_comma = false;
    }

    /// Starts an object as the member `key`.
    pub fn object(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'{');
        self.needs_comma = false;
    }

    /// Closes the innermost object.
    pub fn end_object(&mut self) {
        self.out.push(b'}');
        self.needs_comma = true;
    }

    /// Starts an array as the member `key`.
    pub fn array(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'[');
        self.needs_comma = false;
    }

    /// Starts an array as an array element.
    pub fn begin_array(&mut self) {
        self.separator();
        self.out.push(b'[');
        self.needs_comma = false;
    }

    /// Closes the innermost array.
    pub fn end_array(&mut self) {
        self.out.push(b']');
        self.needs_comma = true;
    }

    /// A string member.
    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        write_str(self.out, value);
    }

    /// A string array element.
    pub fn str_element(&mut self, value: &str) {
        self.separator();
        write_str(self.out, value);
    }

    /// Bytes as a qlog `hexstring` (lowercase, no prefix).
    pub fn hex(&mut self, key: &str, bytes: &[u8]) {
        self.key(key);
        write_hex(self.out, bytes);
    }

    /// A `hexstring` array element.
    pub fn hex_element(&mut self, bytes: &[u8]) {
        self.separator();
        write_hex(self.out, bytes);
    }

    /// An integer member.
    pub fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        write_u64(self.out, value);
    }

    /// An integer array element.
    pub fn u64_element(&mut self, value: u64) {
        self.separator();
        write_u64(self.out, value);
    }

    /// A duration of `nanos` nanoseconds in milliseconds, exact to the
    /// nanosecond (qlog times and durations are milliseconds).
    pub fn millis(&mut self, key: &str, nanos: u64) {
        self.key(key);
        write_millis(self.out, nanos);
    }

    /// A boolean member.
    pub fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// A float member; JSON has no NaN or infinity, so those become 0.
    pub fn f64(&mut self, key: &str, value: f64) {
        self.key(key);
        write_f64(self.out, value);
    }

    /// The member `key` with `json` copied verbatim as its value: the
    /// caller vouches that it is one JSON value (see [`is_object_text`]).
    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
    }
}

/// Whether `text` is one JSON object as far as a JSON-SEQ record needs
/// (RFC 7464 §2): it starts with `{` and ends with the `}` that closes it;
/// braces and brackets nest and match outside strings; strings end; no
/// control character appears anywhere but as whitespace between tokens
/// (RFC 8259 §2, §7), so in particular no Record Separator; nothing but
/// ASCII outside strings. One pass, no allocation, nesting up to 128
/// deep. The tokens between the brackets (commas, colons, numbers,
/// literals) are not checked: a caller that gets those wrong spoils its
/// own record, never the ones around it.
pub(crate) fn is_object_text(text: &str) -> bool {
    const MAX_DEPTH: u32 = 128;
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'{') {
        return false;
    }
    // Bit i: whether the container i levels above the innermost is an
    // array.
    let mut arrays: u128 = 0;
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                0..0x20 => return false,
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if depth == MAX_DEPTH {
                    return false;
                }
                arrays = arrays << 1 | u128::from(b == b'[');
                depth += 1;
            }
            b'}' | b']' => {
                if depth == 0 || (arrays & 1 == 1) != (b == b']') {
                    return false;
                }
                arrays >>= 1;
                depth -= 1;
                if depth == 0 {
                    return i + 1 == bytes.len();
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ if b.is_ascii_graphic() => {}
            _ => return false,
        }
    }
    false
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
/// escaped; everything else is already UTF-8 in a `&str`. Runs that need
/// no escaping (nearly every string qlog writes) are copied whole.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if escape.is_empty() {
            let _ = write!(Adapter(out), "\\u{b:04x}");
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// A decimal integer, without the formatting machinery.
fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `nanos` as milliseconds, exactly: the integer part, then up to six
/// decimals without trailing zeros (`1.5`, `0.000001`, `42`).
fn write_millis(out: &mut Vec<u8>, nanos: u64) {
    write_u64(out, nanos / 1_000_000);
    let mut frac = nanos % 1_000_000;
    if frac == 0 {
        return;
    }
    let mut width = 6;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    out.push(b'.');
    let mut digits = [b'0'; 6];
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// `fmt::Write` into a byte buffer, for numbers.
struct Adapter<'a>(&'a mut Vec<u8>);

impl core::fmt::Write for Adapter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
