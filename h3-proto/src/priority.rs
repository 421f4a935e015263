//! Extensible Priorities (RFC 9218): the urgency and incremental
//! parameters a client sends in the `priority` header field (RFC 9218 §5)
//! or a PRIORITY_UPDATE frame (RFC 9218 §7), and how they map onto the
//! transport's stream send priority.
//!
//! A Priority Field Value is a Structured Field Dictionary (RFC 8941
//! §3.2); the parser here follows the parsing algorithms of RFC 8941 §4.2
//! step by step, so that members this layer ignores still parse, or fail,
//! exactly as the grammar says. It allocates nothing, does not recurse
//! beyond the one level of inner lists the grammar has, and runs in time
//! linear in its input.

use core::fmt;
use core::fmt::Write as _;

#[cfg(test)]
mod tests;

/// The priority of a response (RFC 9218 §4): its urgency and whether it
/// may be delivered incrementally, interleaved with others of the same
/// urgency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Priority {
    /// `u`: 0 (most urgent) to 7 (least); default 3 (RFC 9218 §4.1).
    pub urgency: u8,
    /// `i`: whether the response is useful in parts as they arrive, so that
    /// sharing bandwidth with its peers helps; default false (RFC 9218
    /// §4.2).
    pub incremental: bool,
}

impl Default for Priority {
    /// `u=3`, `i=?0`: what a request without a priority signal gets.
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A Priority Field Value that is not a Structured Field Dictionary.
///
/// The caller keeps the priority it had (the default for a new request).
/// RFC 9218 §7 also lets an endpoint treat such a PRIORITY_UPDATE payload
/// as a connection error of type H3_GENERAL_PROTOCOL_ERROR; that choice is
/// the connection layer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidPriority;

impl fmt::Display for InvalidPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("priority field value is not a structured-field dictionary")
    }
}

impl std::error::Error for InvalidPriority {}

impl Priority {
    /// `u=3`, `i=?0` (RFC 9218 §4.1, §4.2).
    pub const DEFAULT: Self = Self { urgency: 3, incremental: false };

    /// The least urgent urgency (RFC 9218 §4.1).
    pub const MAX_URGENCY: u8 = 7;

    /// Parses a Priority Field Value, as carried by the `priority` header
    /// field or a PRIORITY_UPDATE frame.
    ///
    /// Parameters missing from the value take their defaults: a
    /// PRIORITY_UPDATE states a complete priority, not a change (RFC 9218
    /// §7). Unknown members, a `u` that is not an integer from 0 to 7 and an
    /// `i` that is not a boolean are ignored, leaving the default (RFC 9218
    /// §4). Of several members with one key the last counts (RFC 8941
    /// §3.2). Fails only when the value as a whole is not a Dictionary.
    /// Runs in time linear in `value` and never panics.
    pub fn parse(value: &[u8]) -> Result<Self, InvalidPriority> {
        let mut urgency = None;
        let mut incremental = None;
        Parser::new(value).dictionary(|key, member| match key {
            b"u" => urgency = Some(member),
            b"i" => incremental = Some(member),
            _ => {}
        })?;
        let mut priority = Self::DEFAULT;
        if let Some(Member::Item(BareItem::Integer(u @ 0..=7))) = urgency {
            priority.urgency = u as u8;
        }
        if let Some(Member::Item(BareItem::Boolean(i))) = incremental {
            priority.incremental = i;
        }
        Ok(priority)
    }

    /// Parses a Priority Field Value sent as several field lines: they are
    /// joined with ", " as RFC 9110 §5.3 combines lines and RFC 8941 §4.2
    /// requires before parsing, then read as by [`Priority::parse`]. No
    /// lines at all give the default.
    pub fn from_fields<'a>(
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, InvalidPriority> {
        let mut joined = Vec::new();
        for (n, value) in values.into_iter().enumerate() {
            if n > 0 {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(value);
        }
        Self::parse(&joined)
    }

    /// The Priority Field Value that says this priority, leaving out
    /// parameters at their defaults: "" for the default, "u=1", "i",
    /// "u=5, i". An empty value is best not sent at all.
    pub fn to_field_value(&self) -> String {
        let mut out = String::new();
        if self.urgency != Self::DEFAULT.urgency {
            // Writing to a String cannot fail.
            let _ = write!(out, "u={}", self.urgency);
        }
        if self.incremental {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push('i');
        }
        out
    }

    /// The quic-proto stream send priority for this urgency, where a
    /// higher value is sent first: urgency 0 gives 7, urgency 7 gives 0.
    /// Incremental delivery is not expressed here: it decides how streams
    /// of one urgency share, which is the scheduler's business.
    pub fn transport_priority(&self) -> i32 {
        i32::from(Self::MAX_URGENCY) - i32::from(self.urgency)
    }
}

/// A Dictionary member's value, as far as the priority parameters need it:
/// the payloads of strings, tokens, byte sequences and decimals are
/// checked but not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    Item(BareItem),
    InnerList,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BareItem {
    Integer(i64),
    Decimal,
    String,
    Token,
    ByteSequence,
    Boolean(bool),
}

type Parsed<T> = Result<T, InvalidPriority>;

/// The RFC 8941 §4.2 parsing algorithms over a byte string; `pos` only
/// moves forward.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        if next {
            self.pos += 1;
        }
        next
    }

    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }

    /// OWS: spaces and tabs (RFC 9110 §5.6.3).
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// RFC 8941 §4.2 for a Dictionary field, with §4.2.2: the whole input,
    /// leading spaces and all. `member` sees each key and value in order,
    /// so a later member overwrites an earlier one with its key.
    fn dictionary(&mut self, mut member: impl FnMut(&'a [u8], Member)) -> Parsed<()> {
        self.skip_sp();
        while !self.at_end() {
            let key = self.key()?;
            let value = if self.eat(b'=') {
                self.item_or_inner_list()?
            } else {
                // A bare key is the boolean true, with parameters.
                self.parameters()?;
                Member::Item(BareItem::Boolean(true))
            };
            member(key, value);
            self.skip_ows();
            if self.at_end() {
                break;
            }
            if !self.eat(b',') {
                return Err(InvalidPriority);
            }
            self.skip_ows();
            if self.at_end() {
                // A trailing comma.
                return Err(InvalidPriority);
            }
        }
        Ok(())
    }

    /// §4.2.1.1 and §4.2.1: an inner list or an item.
    fn item_or_inner_list(&mut self) -> Parsed<Member> {
        if self.peek() == Some(b'(') {
            self.inner_list()?;
            Ok(Member::InnerList)
        } else {
            self.item().map(Member::Item)
        }
    }

    /// §4.2.1.2: `(` items separated by spaces `)`, then parameters.
    fn inner_list(&mut self) -> Parsed<()> {
        self.pos += 1; // The `(` the caller saw.
        loop {
            self.skip_sp();
            if self.eat(b')') {
                return self.parameters();
            }
            if self.at_end() {
                return Err(InvalidPriority);
            }
            self.item()?;
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return Err(InvalidPriority);
            }
        }
    }

    /// §4.2.3: a bare item, then parameters.
    fn item(&mut self) -> Parsed<BareItem> {
        let item = self.bare_item()?;
        self.parameters()?;
        Ok(item)
    }

    /// §4.2.3.2: `;key` or `;key=bare-item`, any number of times.
    fn parameters(&mut self) -> Parsed<()> {
        while self.eat(b';') {
            self.skip_sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Ok(())
    }

    /// §4.2.3.3: a lowercase letter or `*`, then lowercase letters,
    /// digits, `_`, `-`, `.`, `*`.
    fn key(&mut self) -> Parsed<&'a [u8]> {
        let start = self.pos;
        if !matches!(self.peek(), Some(b'a'..=b'z' | b'*')) {
            return Err(InvalidPriority);
        }
        while matches!(self.peek(), Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')) {
            self.pos += 1;
        }
        Ok(&self.input[start..self.pos])
    }

    /// §4.2.3.1: the first byte says which kind of bare item follows.
    fn bare_item(&mut self) -> Parsed<BareItem> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'*') => Ok(self.token()),
            Some(b':') => self.byte_sequence(),
            Some(b'?') => self.boolean(),
            _ => Err(InvalidPriority),
        }
    }

    /// §4.2.4: an integer of at most 15 digits, or a decimal of at most 12
    /// integer and 1 to 3 fraction digits, either optionally negative.
    fn number(&mut self) -> Parsed<BareItem> {
        let negative = self.eat(b'-');
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(InvalidPriority);
        }
        let start = self.pos;
        let mut dot = None;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => {}
                b'.' if dot.is_none() => {
                    if self.pos - start > 12 {
                        return Err(InvalidPriority);
                    }
                    dot = Some(self.pos);
                }
                _ => break,
            }
            self.pos += 1;
            let len = self.pos - start;
            if len > if dot.is_none() { 15 } else { 16 } {
                return Err(InvalidPriority);
            }
        }
        if let Some(dot) = dot {
            let fraction = self.pos - dot - 1;
            if !(1..=3).contains(&fraction) {
                return Err(InvalidPriority);
            }
            return Ok(BareItem::Decimal);
        }
        // At most 15 digits: no overflow.
        let digits = &self.input[start..self.pos];
        let n = digits.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        Ok(BareItem::Integer(if negative { -n } else { n }))
    }

    /// §4.2.5: `"`, printable ASCII with `\"` and `\\` escapes, `"`.
    fn string(&mut self) -> Parsed<BareItem> {
        self.pos += 1; // The opening `"`.
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                // Only `"` and `\` may be escaped.
                b'\\' => match self.peek() {
                    Some(b'"' | b'\\') => self.pos += 1,
                    _ => return Err(InvalidPriority),
                },
                b'"' => return Ok(BareItem::String),
                0x00..=0x1f | 0x7f..=0xff => return Err(InvalidPriority),
                _ => {}
            }
        }
        // No closing `"`.
        Err(InvalidPriority)
    }

    /// §4.2.6: a letter or `*` (seen by the caller), then tchar, `:`, `/`.
    fn token(&mut self) -> BareItem {
        self.pos += 1;
        while self.peek().is_some_and(|c| is_tchar(c) || c == b':' || c == b'/') {
            self.pos += 1;
        }
        BareItem::Token
    }

    /// §4.2.7: `:` base64 `:`. Missing padding is accepted, as the
    /// section asks of parsers; anything a decoder could not decode fails.
    fn byte_sequence(&mut self) -> Parsed<BareItem> {
        self.pos += 1; // The opening `:`.
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&c| c == b':') else {
            return Err(InvalidPriority);
        };
        let content = &rest[..len];
        self.pos += len + 1;
        let data_len = content.iter().position(|&c| c == b'=').unwrap_or(content.len());
        let (data, padding) = content.split_at(data_len);
        let valid = data.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
            && padding.iter().all(|&c| c == b'=')
            && padding.len() <= 2
            // A lone sextet at the end holds no whole byte.
            && data.len() % 4 != 1
            && (padding.is_empty() || content.len() % 4 == 0);
        if valid { Ok(BareItem::ByteSequence) } else { Err(InvalidPriority) }
    }

    /// §4.2.8: `?1` or `?0`.
    fn boolean(&mut self) -> Parsed<BareItem> {
        self.pos += 1; // The `?`.
        if self.eat(b'1') {
            Ok(BareItem::Boolean(true))
        } else if self.eat(b'0') {
            Ok(BareItem::Boolean(false))
        } else {
            Err(InvalidPriority)
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}
