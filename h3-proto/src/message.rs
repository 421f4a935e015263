//! HTTP/3 messages (RFC 9114 §4.1-§4.4): whether a decoded header or
//! trailer section is well formed, what a request or response head says,
//! and whether the content matches its declared length.
//!
//! Pure functions over the [`Field`] lines the QPACK decoder gives. A
//! [`Malformed`] answer means the stream is reset with H3_MESSAGE_ERROR
//! (RFC 9114 §4.1.2) and the message goes no further. Field syntax is that
//! of RFC 9110: names are tokens (§5.1), values are `field-content` (§5.5).
//! Every regular field line, in all three kinds of section, is checked by
//! one function, `Regular::check`, so the sections cannot drift apart.

use core::fmt;

use crate::error::{ErrorCode, H3Error};
use crate::qpack::Field;

#[cfg(test)]
mod tests;

/// Why a header or trailer section is malformed (RFC 9114 §4.1.2): the
/// connection layer resets the stream with H3_MESSAGE_ERROR
/// ([`Malformed::CODE`]); a server may answer with a 4xx response first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl Malformed {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
    //# Malformed requests or responses that are detected MUST be treated as a stream
    //# error of type H3_MESSAGE_ERROR.
    /// The code a stream carrying a malformed message is reset with.
    pub const CODE: ErrorCode = ErrorCode::H3_MESSAGE_ERROR;
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed HTTP message: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

impl From<Malformed> for H3Error {
    /// An H3_MESSAGE_ERROR with the cause as its reason; a stream error,
    /// not a connection error.
    fn from(m: Malformed) -> Self {
        Self::new(Malformed::CODE, m.0)
    }
}

/// A checked request head: the control data of a request's header section
/// (RFC 9114 §4.3.1) and the one regular field this layer reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `:method`, a token; case-sensitive (RFC 9110 §9.1).
    pub method: Vec<u8>,
    /// `:scheme`; absent only in a CONNECT request.
    pub scheme: Option<Vec<u8>>,
    /// `:authority`, or the Host field's value when `:authority` is absent
    /// (both carry the target URI's authority, RFC 9110 §7.2). Always
    /// `:authority` itself in a CONNECT request.
    pub authority: Option<Vec<u8>>,
    /// `:path`; absent only in a CONNECT request.
    pub path: Option<Vec<u8>>,
    /// `:protocol`, present only in an extended CONNECT request (RFC 8441
    /// §4, RFC 9220 §3), for example `websocket`.
    pub protocol: Option<Vec<u8>>,
    /// The value of the content-length field, if there was one.
    pub content_length: Option<u64>,
}

impl RequestHead {
    /// Whether this is a CONNECT request for a TCP tunnel (RFC 9114 §4.4):
    /// method CONNECT without `:protocol`.
    pub fn is_connect(&self) -> bool {
        self.method == b"CONNECT" && self.protocol.is_none()
    }

    /// Whether this is a HEAD request, whose response has no content
    /// whatever its content-length says (RFC 9110 §9.3.2).
    pub fn is_head(&self) -> bool {
        self.method == b"HEAD"
    }

    /// The counter for this request's DATA payload. CONNECT (extended or
    /// not) carries tunnel data, not content (RFC 9110 §9.3.6), so nothing
    /// bounds it; otherwise the content-length, if any.
    pub fn body_length(&self) -> BodyLength {
        if self.method == b"CONNECT" {
            BodyLength::new(None)
        } else {
            BodyLength::new(self.content_length)
        }
    }
}

/// A checked response head (RFC 9114 §4.3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// `:status`, 100 to 599, never 101.
    pub status: u16,
    /// The value of the content-length field, if there was one.
    pub content_length: Option<u64>,
}

impl ResponseHead {
    /// Whether this is an interim (1xx) response: a final response still
    /// follows, and it has neither content nor trailers (RFC 9114 §4.1).
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// The counter for this response's DATA payload, given the method of
    /// the request it answers.
    ///
    /// Responses to HEAD and 1xx, 204 and 304 responses never have content
    /// (RFC 9110 §6.4.1), so any DATA is too much, whatever content-length
    /// says; a 2xx answer to CONNECT opens a tunnel, which nothing bounds.
    pub fn body_length(&self, request_method: &[u8]) -> BodyLength {
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
        //# A response that is defined as never having content, even
        //# when a Content-Length is present, can have a non-zero Content-Length header
        //# field even though no content is included in DATA frames.
        if request_method == b"HEAD" || self.is_informational() || matches!(self.status, 204 | 304)
        {
            BodyLength::new(Some(0))
        } else if request_method == b"CONNECT" && (200..300).contains(&self.status) {
            BodyLength::new(None)
        } else {
            BodyLength::new(self.content_length)
        }
    }
}

/// The kind of field section being checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Request,
    Response,
    Trailers,
}

/// What the regular field lines of one section said, as far as the checks
/// need: borrowed from the lines, so that checking allocates nothing.
#[derive(Default)]
struct Regular<'a> {
    content_length: Option<u64>,
    host: Option<&'a [u8]>,
}

impl<'a> Regular<'a> {
    /// Checks one regular (not pseudo-header) field line of a `section`:
    /// the one place such lines are checked.
    fn check(&mut self, field: &'a Field, section: Section) -> Result<(), Malformed> {
        let (name, value) = (field.name.as_slice(), field.value.as_slice());
        check_name(name)?;
        check_value(value)?;
        match name {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-4.2
            //# An endpoint MUST NOT generate an HTTP/3 field section containing
            //# connection-specific fields; any message containing connection-specific fields
            //# MUST be treated as malformed.
            //
            // The fields RFC 9110 §7.6.1 names as connection-specific, with
            // the obsolete Proxy-Connection that some HTTP/1.1 software
            // still sends.
            b"connection" | b"keep-alive" | b"proxy-connection" | b"upgrade" => {
                Err(Malformed("connection-specific field"))
            }
            //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
            //# Transfer codings (see {{Section 7 of RFC9112}}) are not defined for HTTP/3;
            //# the Transfer-Encoding header field MUST NOT be used.
            b"transfer-encoding" => Err(Malformed("transfer-encoding field")),
            //= https://www.rfc-editor.org/rfc/rfc9114#section-4.2
            //# The only exception to this is the TE header field, which MAY be present in an
            //# HTTP/3 request header; when it is, it MUST NOT contain any value other than
            //# "trailers".
            //
            // Only a request's header section: in a response or a trailer
            // section TE is as connection-specific as the rest. "trailers"
            // is a keyword of TE's grammar, compared without case (RFC
            // 9110 §10.1.4).
            b"te" if section != Section::Request => Err(Malformed("te field outside a request")),
            b"te" if !value.eq_ignore_ascii_case(b"trailers") => {
                Err(Malformed("te field with a value other than trailers"))
            }
            b"content-length" => {
                let length = parse_content_length(value)?;
                // RFC 9110 §8.6: repeated lines or list members that all
                // agree may stand for one value; any disagreement leaves
                // the framing ambiguous.
                match self.content_length.replace(length) {
                    Some(earlier) if earlier != length => {
                        Err(Malformed("content-length values disagree"))
                    }
                    _ => Ok(()),
                }
            }
            // RFC 9110 §7.2: a request with more than one Host line is
            // refused (400); here that makes it malformed. Host means
            // nothing in the other sections.
            b"host" if section == Section::Request => match self.host.replace(value) {
                Some(_) => Err(Malformed("more than one host field")),
                None => Ok(()),
            },
            // Cookie, like every other field, may take any number of lines
            // (RFC 9114 §4.2.1).
            _ => Ok(()),
        }
    }
}

/// Checks a field name: a token (RFC 9110 §5.1), in lowercase.
fn check_name(name: &[u8]) -> Result<(), Malformed> {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.2
    //# Characters in field names MUST be converted to lowercase prior to
    //# their encoding. A request or response containing uppercase characters in field
    //# names MUST be treated as malformed.
    if name.iter().any(u8::is_ascii_uppercase) {
        return Err(Malformed("uppercase character in a field name"));
    }
    //= https://www.rfc-editor.org/rfc/rfc9114#section-10.3
    //# Requests or
    //# responses containing invalid field names MUST be treated as malformed.
    if name.is_empty() {
        return Err(Malformed("empty field name"));
    }
    if !name.iter().copied().all(is_tchar) {
        return Err(Malformed("invalid character in a field name"));
    }
    Ok(())
}

/// Checks a field value, pseudo-header or regular: `field-value` of RFC
/// 9110 §5.5, that is visible ASCII, obs-text (0x80-0xff), and space or tab
/// between them, but not at either end. Empty is allowed.
fn check_value(value: &[u8]) -> Result<(), Malformed> {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
    //# - the inclusion of invalid characters in field names or values.

    //= https://www.rfc-editor.org/rfc/rfc9114#section-10.3
    //# Any request or
    //# response that contains a character not permitted in a field value MUST be
    //# treated as malformed.
    //
    // Not only NUL, CR and LF, which could split a line when translated to
    // HTTP/1.1, but every control character field-content excludes: RFC
    // 9110 §5.5 lets a recipient keep the others, RFC 9114 §10.3 does not.
    if value.iter().any(|&b| matches!(b, 0x00..=0x08 | 0x0a..=0x1f | 0x7f)) {
        return Err(Malformed("invalid character in a field value"));
    }
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t');
    if value.first().is_some_and(is_ws) || value.last().is_some_and(is_ws) {
        return Err(Malformed("whitespace around a field value"));
    }
    Ok(())
}

/// `tchar` (RFC 9110 §5.6.2) without the uppercase letters.
fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~')
}

/// A token (RFC 9110 §5.6.2), any case: a method or a protocol name.
fn is_token(value: &[u8]) -> bool {
    !value.is_empty() && value.iter().all(|&b| is_tchar(b.to_ascii_lowercase()))
}

/// Parses a content-length value: `1*DIGIT` (RFC 9110 §8.6), or a list of
/// such values that are all the same (which RFC 9110 §8.6 lets a recipient
/// read as the one value).
fn parse_content_length(value: &[u8]) -> Result<u64, Malformed> {
    let mut length = None;
    for member in value.split(|&b| b == b',') {
        let member = member.trim_ascii();
        if member.is_empty() || !member.iter().all(u8::is_ascii_digit) {
            return Err(Malformed("content-length is not a number"));
        }
        let n = member
            .iter()
            .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
        let n = n.ok_or(Malformed("content-length too large"))?;
        if length.replace(n).is_some_and(|earlier| earlier != n) {
            return Err(Malformed("content-length values disagree"));
        }
    }
    // `split` yields at least one member, each checked to be a number.
    length.ok_or(Malformed("content-length is not a number"))
}

/// Whether the scheme is one whose URIs must have an authority and a
/// non-empty path: "http" or "https" (schemes compare without case, RFC
/// 3986 §3.1).
fn is_http(scheme: &[u8]) -> bool {
    scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")
}

/// `scheme` of RFC 3986 §3.1: a letter, then letters, digits, `+-.`.
fn is_scheme(scheme: &[u8]) -> bool {
    let [first, rest @ ..] = scheme else { return false };
    first.is_ascii_alphabetic()
        && rest.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Whether a value has no byte a URI component cannot hold: no space, tab
/// or other control character (RFC 3986 §2).
fn is_uri_component(value: &[u8]) -> bool {
    value.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// `authority-form` (RFC 9110 §7.1, RFC 9112 §3.2.3): host and port, as a
/// CONNECT request names its destination.
fn is_host_and_port(authority: &[u8]) -> bool {
    let Some(colon) = authority.iter().rposition(|&b| b == b':') else { return false };
    let (host, port) = (&authority[..colon], &authority[colon + 1..]);
    !host.is_empty() && !port.is_empty() && port.iter().all(u8::is_ascii_digit)
}

/// Checks a request's header section and returns its head.
///
/// `extended_connect` says whether this endpoint sent
/// SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (RFC 9220 §3): only then may a
/// CONNECT request carry `:protocol` (RFC 8441 §4). Call once per request
/// on the decoded HEADERS frame; trailers go to [`check_trailers`].
pub fn check_request(fields: &[Field], extended_connect: bool) -> Result<RequestHead, Malformed> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    let mut protocol = None;
    let mut regular = Regular::default();
    let mut seen_regular = false;
    for field in fields {
        let Some(pseudo) = field.name.strip_prefix(b":") else {
            seen_regular = true;
            regular.check(field, Section::Request)?;
            continue;
        };
        check_pseudo_order(seen_regular)?;
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3
        //# Pseudo-header fields defined for requests MUST NOT appear in responses;
        //# pseudo-header fields defined for responses MUST NOT appear in requests.
        let slot = match pseudo {
            b"method" => &mut method,
            b"scheme" => &mut scheme,
            b"authority" => &mut authority,
            b"path" => &mut path,
            // An extension's pseudo-header (RFC 9114 §4.3 lets one
            // negotiate it), defined only once the setting was sent.
            b"protocol" if extended_connect => &mut protocol,
            b"protocol" => return Err(Malformed(":protocol without extended CONNECT")),
            b"status" => return Err(Malformed("response pseudo-header field in a request")),
            _ => return Err(undefined_pseudo()),
        };
        check_value(&field.value)?;
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
        //# All HTTP/3 requests MUST include exactly one value for the :method, :scheme,
        //# and :path pseudo-header fields, unless the request is a CONNECT request; see
        //# {{connect}}.
        //
        // At most one of any, whatever the method.
        if slot.replace(field.value.as_slice()).is_some() {
            return Err(Malformed("repeated pseudo-header field"));
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
    //# An HTTP request that omits mandatory pseudo-header fields or contains invalid
    //# values for those pseudo-header fields is malformed.
    let method = method.ok_or(Malformed("request without :method"))?;
    if !is_token(method) {
        return Err(Malformed(":method is not a token"));
    }
    if scheme.is_some_and(|s| !is_scheme(s)) {
        return Err(Malformed(":scheme is not a URI scheme"));
    }
    if authority.is_some_and(|a| a.is_empty() || !is_uri_component(a)) {
        return Err(Malformed("invalid :authority"));
    }
    if path.is_some_and(|p| !is_uri_component(p)) {
        return Err(Malformed("invalid :path"));
    }
    if protocol.is_some_and(|p| !is_token(p)) {
        return Err(Malformed(":protocol is not a token"));
    }

    let is_connect_method = method == b"CONNECT";
    if protocol.is_some() {
        // RFC 8441 §4 (RFC 9220 §3 for HTTP/3): :protocol belongs to
        // CONNECT, which it turns into a request for a target URI, so
        // :scheme and :path come back and, for http(s), :authority with
        // them; the checks below then apply as to any request.
        if !is_connect_method {
            return Err(Malformed(":protocol on a method other than CONNECT"));
        }
        if scheme.is_none() || path.is_none() || authority.is_none() {
            return Err(Malformed("extended CONNECT without :scheme, :path and :authority"));
        }
    } else if is_connect_method {
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.4
        //# A CONNECT request MUST be constructed as follows:
        //#
        //# - The :method pseudo-header field is set to "CONNECT"
        //# - The :scheme and :path pseudo-header fields are omitted
        //# - The :authority pseudo-header field contains the host and port to connect to
        //#   (equivalent to the authority-form of the request-target of CONNECT requests;
        //#   see {{Section 7.1 of RFC9110}}).

        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.4
        //# A CONNECT request that does not conform to these restrictions
        //# is malformed.
        if scheme.is_some() || path.is_some() {
            return Err(Malformed("CONNECT with :scheme or :path"));
        }
        let authority = authority.ok_or(Malformed("CONNECT without :authority"))?;
        if !is_host_and_port(authority) || authority.contains(&b'@') {
            return Err(Malformed("CONNECT :authority is not host and port"));
        }
    } else if scheme.is_none() || path.is_none() {
        return Err(Malformed("request without :scheme or :path"));
    }

    if let Some(scheme) = scheme
        && is_http(scheme)
    {
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
        //# If the :scheme pseudo-header field identifies a scheme that has a mandatory
        //# authority component (including "http" and "https"), the request MUST contain
        //# either an :authority pseudo-header field or a Host header field.  If these
        //# fields are present, they MUST NOT be empty.
        if authority.is_none() && regular.host.is_none() {
            return Err(Malformed("http(s) request without :authority or host"));
        }
        if regular.host.is_some_and(<[u8]>::is_empty) {
            return Err(Malformed("empty host field"));
        }
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
        //# The authority MUST NOT include the deprecated userinfo
        //# subcomponent for URIs of scheme "http" or "https".
        if authority.is_some_and(|a| a.contains(&b'@')) {
            return Err(Malformed("userinfo in :authority"));
        }
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
        //# This pseudo-header field MUST NOT be empty for "http" or "https" URIs;
        //# "http" or "https" URIs that do not contain a path component MUST include a
        //# value of `/` (ASCII 0x2f).  An OPTIONS request that does not include a path
        //# component includes the value `*` (ASCII 0x2a) for the :path pseudo-header
        //# field; see {{Section 7.1 of RFC9110}}.
        //
        // So an http(s) :path is origin-form, or `*` for OPTIONS.
        let path = path.unwrap_or_default();
        if !(path.starts_with(b"/") || (path == b"*" && method == b"OPTIONS")) {
            return Err(Malformed(":path is neither absolute nor * for OPTIONS"));
        }
    }
    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
    //# If both fields are present, they
    //# MUST contain the same value.
    //
    // Held to whatever the scheme: two different authorities in one
    // request could route it one way and authorize it another.
    if let (Some(a), Some(h)) = (authority, regular.host)
        && a != h
    {
        return Err(Malformed(":authority and host differ"));
    }

    let authority = if is_connect_method { authority } else { authority.or(regular.host) };
    Ok(RequestHead {
        method: method.to_vec(),
        scheme: scheme.map(<[u8]>::to_vec),
        authority: authority.map(<[u8]>::to_vec),
        path: path.map(<[u8]>::to_vec),
        protocol: protocol.map(<[u8]>::to_vec),
        content_length: regular.content_length,
    })
}

/// Checks a response's header section, interim (1xx) or final, and returns
/// its head. Call once per HEADERS frame that opens a response; trailers go
/// to [`check_trailers`].
pub fn check_response(fields: &[Field]) -> Result<ResponseHead, Malformed> {
    let mut status = None;
    let mut regular = Regular::default();
    let mut seen_regular = false;
    for field in fields {
        let Some(pseudo) = field.name.strip_prefix(b":") else {
            seen_regular = true;
            regular.check(field, Section::Response)?;
            continue;
        };
        check_pseudo_order(seen_regular)?;
        match pseudo {
            b"status" => {
                check_value(&field.value)?;
                if status.replace(field.value.as_slice()).is_some() {
                    return Err(Malformed("repeated :status"));
                }
            }
            //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3
            //# Pseudo-header fields defined for requests MUST NOT appear in responses;
            //# pseudo-header fields defined for responses MUST NOT appear in requests.
            b"method" | b"scheme" | b"authority" | b"path" | b"protocol" => {
                return Err(Malformed("request pseudo-header field in a response"));
            }
            _ => return Err(undefined_pseudo()),
        }
    }
    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.2
    //# This pseudo-header
    //# field MUST be included in all responses; otherwise, the response is malformed
    //# (see {{malformed}}).
    let status = status.ok_or(Malformed("response without :status"))?;
    Ok(ResponseHead { status: parse_status(status)?, content_length: regular.content_length })
}

/// Parses `:status`: exactly three digits (RFC 9110 §15), 100 to 599.
fn parse_status(value: &[u8]) -> Result<u16, Malformed> {
    let &[a, b, c] = value else { return Err(Malformed(":status is not three digits")) };
    if ![a, b, c].iter().all(u8::is_ascii_digit) {
        return Err(Malformed(":status is not three digits"));
    }
    let status = [a, b, c].iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(Malformed(":status out of range"));
    }
    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.5
    //# HTTP/3 does not support the HTTP Upgrade mechanism ({{Section 7.8 of
    //# RFC9110}}) or the 101 (Switching Protocols) informational status code
    //# ({{Section 15.2.2 of RFC9110}}).
    //
    // There is no protocol a 101 could switch this stream to.
    if status == 101 {
        return Err(Malformed(":status 101 in HTTP/3"));
    }
    Ok(status)
}

/// Checks a trailer section, of a request or a response: regular fields
/// only. A content-length there is checked as a value but says nothing
/// about the content, which has ended.
pub fn check_trailers(fields: &[Field]) -> Result<(), Malformed> {
    let mut regular = Regular::default();
    for field in fields {
        //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3
        //# Pseudo-header fields MUST NOT appear in trailer sections.
        if field.name.starts_with(b":") {
            return Err(Malformed("pseudo-header field in a trailer section"));
        }
        regular.check(field, Section::Trailers)?;
    }
    Ok(())
}

fn check_pseudo_order(seen_regular: bool) -> Result<(), Malformed> {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3
    //# All pseudo-header fields MUST appear in the header section before regular header
    //# fields.  Any request or response that contains a pseudo-header field that
    //# appears in a header section after a regular header field MUST be treated as
    //# malformed.
    if seen_regular {
        return Err(Malformed("pseudo-header field after a regular field"));
    }
    Ok(())
}

fn undefined_pseudo() -> Malformed {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-4.3
    //# Endpoints MUST treat a
    //# request or response that contains undefined or invalid pseudo-header fields as
    //# malformed.
    Malformed("undefined pseudo-header field")
}

/// A request header section: `:method`, then `:scheme`, `:authority` and
/// `:path`, each left out when given empty (as a CONNECT request needs),
/// then `extra` in order.
///
/// An extended CONNECT request puts `:protocol` first in `extra`, which
/// keeps it among the pseudo-header fields. Nothing is checked here: hand
/// the result to [`check_request`] in tests, or trust the caller.
pub fn request_fields(
    method: &str,
    scheme: &str,
    authority: &str,
    path: &str,
    extra: &[Field],
) -> Vec<Field> {
    let mut fields = Vec::with_capacity(4 + extra.len());
    fields.push(Field::new(":method", method));
    for (name, value) in [(":scheme", scheme), (":authority", authority), (":path", path)] {
        if !value.is_empty() {
            fields.push(Field::new(name, value));
        }
    }
    fields.extend_from_slice(extra);
    fields
}

/// A response header section: `:status` (in decimal), then `extra` in
/// order. A status outside 100 to 599 is written as it is, and refused by
/// the peer.
pub fn response_fields(status: u16, extra: &[Field]) -> Vec<Field> {
    let mut fields = Vec::with_capacity(1 + extra.len());
    fields.push(Field::new(":status", status.to_string()));
    fields.extend_from_slice(extra);
    fields
}

/// Counts a message's DATA payload against its declared content-length
/// (RFC 9114 §4.1.2). Make one per message with [`BodyLength::new`] (or
/// [`RequestHead::body_length`], [`ResponseHead::body_length`]), call
/// [`on_data`](Self::on_data) for each DATA frame's payload length as it
/// arrives and [`on_end`](Self::on_end) when the stream ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodyLength {
    declared: Option<u64>,
    received: u64,
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
//# A request or response that is defined as having content when it contains a
//# Content-Length header field ({{Section 8.6 of RFC9110}}) is malformed if the
//# value of the Content-Length header field does not equal the sum of the DATA
//# frame lengths received.
impl BodyLength {
    /// A counter for a message that declared `declared` bytes of content,
    /// or nothing (`None`: any amount is fine).
    pub fn new(declared: Option<u64>) -> Self {
        Self { declared, received: 0 }
    }

    /// Counts `len` more bytes of content. Fails as soon as they exceed
    /// the declared length, before the stream ends, so the excess need not
    /// be read.
    pub fn on_data(&mut self, len: u64) -> Result<(), Malformed> {
        self.received = self.received.saturating_add(len);
        match self.declared {
            Some(declared) if self.received > declared => {
                Err(Malformed("more content than content-length"))
            }
            _ => Ok(()),
        }
    }

    /// Checks, once the message has ended, that all the declared content
    /// came.
    pub fn on_end(&self) -> Result<(), Malformed> {
        match self.declared {
            Some(declared) if self.received < declared => {
                Err(Malformed("less content than content-length"))
            }
            Some(declared) if self.received > declared => {
                Err(Malformed("more content than content-length"))
            }
            _ => Ok(()),
        }
    }

    /// The declared content length, if any.
    pub fn declared(&self) -> Option<u64> {
        self.declared
    }

    /// The content bytes counted so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}
