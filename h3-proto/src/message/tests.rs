use proptest::prelude::*;

use super::*;

fn f(name: &str, value: &str) -> Field {
    Field::new(name, value)
}

/// `GET https://example.com/` with `extra` after the pseudo-header fields.
fn get(extra: &[Field]) -> Vec<Field> {
    request_fields("GET", "https", "example.com", "/", extra)
}

fn request(fields: &[Field]) -> Result<RequestHead, Malformed> {
    check_request(fields, false)
}

fn request_error(fields: &[Field]) -> &'static str {
    request(fields).expect_err("malformed").0
}

fn response_error(fields: &[Field]) -> &'static str {
    check_response(fields).expect_err("malformed").0
}

fn trailers_error(fields: &[Field]) -> &'static str {
    check_trailers(fields).expect_err("malformed").0
}

/// Checks `field` as a regular line in each kind of section.
fn in_every_section(field: Field) -> [Result<(), Malformed>; 3] {
    let extra = [field];
    [
        request(&get(&extra)).map(drop),
        check_response(&response_fields(200, &extra)).map(drop),
        check_trailers(&extra),
    ]
}

#[test]
fn a_plain_get_is_accepted_and_read() {
    let head = request(&get(&[f("accept", "*/*"), f("user-agent", "test")])).unwrap();
    assert_eq!(
        head,
        RequestHead {
            method: b"GET".to_vec(),
            scheme: Some(b"https".to_vec()),
            authority: Some(b"example.com".to_vec()),
            path: Some(b"/".to_vec()),
            protocol: None,
            content_length: None,
        }
    );
    assert!(!head.is_connect() && !head.is_head());
    let head = request(&request_fields("HEAD", "http", "a:8080", "/x?y=1", &[])).unwrap();
    assert!(head.is_head());
    assert_eq!(head.path.as_deref(), Some(&b"/x?y=1"[..]));
}

#[test]
fn builders_put_pseudo_header_fields_first_and_leave_out_empty_ones() {
    let extra = [f("x-a", "1"), f("x-b", "2")];
    let fields = request_fields("GET", "https", "example.com", "/p", &extra);
    let names: Vec<&[u8]> = fields.iter().map(|f| f.name.as_slice()).collect();
    assert_eq!(names, [&b":method"[..], b":scheme", b":authority", b":path", b"x-a", b"x-b"]);
    let fields = request_fields("CONNECT", "", "example.com:443", "", &extra);
    let names: Vec<&[u8]> = fields.iter().map(|f| f.name.as_slice()).collect();
    assert_eq!(names, [&b":method"[..], b":authority", b"x-a", b"x-b"]);
    assert!(request(&fields).unwrap().is_connect());

    assert_eq!(response_fields(204, &extra), [f(":status", "204"), f("x-a", "1"), f("x-b", "2")]);
    let head = check_response(&response_fields(404, &[f("content-length", "9")])).unwrap();
    assert_eq!(head, ResponseHead { status: 404, content_length: Some(9) });
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.2
//= type=test
//# Characters in field names MUST be converted to lowercase prior to
//# their encoding. A request or response containing uppercase characters in field
//# names MUST be treated as malformed.
#[test]
fn uppercase_field_names_are_malformed() {
    for name in ["Accept", "ACCEPT", "x-Custom", "contenT-length"] {
        let expected = Err(Malformed("uppercase character in a field name"));
        assert_eq!(in_every_section(f(name, "1")), [expected; 3], "{name}");
    }
    // Pseudo-header fields too: `:Method` is no defined one.
    let fields = [f(":Method", "GET"), f(":scheme", "https"), f(":path", "/")];
    assert_eq!(request_error(&fields), "undefined pseudo-header field");
    assert_eq!(response_error(&[f(":STATUS", "200")]), "undefined pseudo-header field");
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
//= type=test
//# - the inclusion of invalid characters in field names or values.

//= https://www.rfc-editor.org/rfc/rfc9114#section-10.3
//= type=test
//# Requests or
//# responses containing invalid field names MUST be treated as malformed.
#[test]
fn field_names_must_be_tokens() {
    for name in ["", "a b", "a:b", "a\0", "a\r\nb", "caf\u{e9}", "a/b", "a\"", "(a)", "a,b", "{"] {
        for result in in_every_section(f(name, "1")) {
            assert!(result.is_err(), "{name:?}");
        }
    }
    assert_eq!(in_every_section(f("", "1"))[0], Err(Malformed("empty field name")));
    // Every tchar but the uppercase letters.
    let all = "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~";
    assert_eq!(in_every_section(f(all, "1")), [Ok(()); 3]);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-10.3
//= type=test
//# Any request or
//# response that contains a character not permitted in a field value MUST be
//# treated as malformed.
#[test]
fn field_values_must_be_field_content() {
    let bad = Err(Malformed("invalid character in a field value"));
    for value in ["a\0b", "a\rb", "a\nb", "a\r\nx-injected: 1", "\x01", "a\x1fb", "a\x7fb"] {
        assert_eq!(in_every_section(f("x-v", value)), [bad; 3], "{value:?}");
    }
    let around = Err(Malformed("whitespace around a field value"));
    for value in [" a", "a ", "\ta", "a\t", " ", "\t"] {
        assert_eq!(in_every_section(f("x-v", value)), [around; 3], "{value:?}");
    }
    // Inner spaces and tabs, obs-text and the empty value are all fine.
    for value in ["", "a b", "a\tb", "a  \t b", "!~", "\u{e9}t\u{e9}"] {
        assert_eq!(in_every_section(f("x-v", value)), [Ok(()); 3], "{value:?}");
    }
    let mut obs_text = f("x-v", "");
    obs_text.value = (0x80..=0xff).collect();
    assert_eq!(in_every_section(obs_text), [Ok(()); 3]);

    // Pseudo-header values as well.
    let fields = request_fields("GET", "https", "example.com", "/a\r\nb", &[]);
    assert_eq!(request_error(&fields), "invalid character in a field value");
    assert_eq!(response_error(&[f(":status", "200\n")]), "invalid character in a field value");
    assert_eq!(response_error(&[f(":status", " 200")]), "whitespace around a field value");
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.2
//= type=test
//# An endpoint MUST NOT generate an HTTP/3 field section containing
//# connection-specific fields; any message containing connection-specific fields
//# MUST be treated as malformed.
#[test]
fn connection_specific_fields_are_malformed() {
    for name in ["connection", "keep-alive", "proxy-connection", "upgrade"] {
        let expected = Err(Malformed("connection-specific field"));
        assert_eq!(in_every_section(f(name, "close")), [expected; 3], "{name}");
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1
//= type=test
//# Transfer codings (see {{Section 7 of RFC9112}}) are not defined for HTTP/3;
//# the Transfer-Encoding header field MUST NOT be used.
#[test]
fn transfer_encoding_is_malformed() {
    for value in ["chunked", "identity", "gzip, chunked"] {
        let expected = Err(Malformed("transfer-encoding field"));
        assert_eq!(in_every_section(f("transfer-encoding", value)), [expected; 3]);
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.2
//= type=test
//# The only exception to this is the TE header field, which MAY be present in an
//# HTTP/3 request header; when it is, it MUST NOT contain any value other than
//# "trailers".
#[test]
fn te_is_allowed_only_as_trailers_in_a_request_header() {
    for value in ["trailers", "Trailers"] {
        assert!(request(&get(&[f("te", value)])).is_ok());
    }
    // Repeated, each line saying only "trailers".
    assert!(request(&get(&[f("te", "trailers"), f("te", "trailers")])).is_ok());
    for value in ["gzip", "trailers, gzip", "trailers;q=1", "chunked", ""] {
        assert_eq!(
            request_error(&get(&[f("te", value)])),
            "te field with a value other than trailers",
            "{value:?}"
        );
    }
    let expected = Err(Malformed("te field outside a request"));
    let [_, response, trailers] = in_every_section(f("te", "trailers"));
    assert_eq!([response, trailers], [expected; 2]);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.2.1
//= type=test
//# To allow for better compression efficiency, the Cookie header field
//# ({{!COOKIES=RFC6265}}) MAY be split into separate field lines, each with one or
//# more cookie-pairs, before compression.
#[test]
fn cookies_and_other_fields_may_repeat() {
    let extra = [f("cookie", "a=1"), f("cookie", "b=2; c=3"), f("accept", "a"), f("accept", "b")];
    assert!(request(&get(&extra)).is_ok());
    assert!(check_response(&response_fields(200, &extra)).is_ok());
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3
//= type=test
//# Endpoints MUST treat a
//# request or response that contains undefined or invalid pseudo-header fields as
//# malformed.
#[test]
fn undefined_pseudo_header_fields_are_malformed() {
    for name in [":", ":foo", ":methods", ":path2", ": path", "::path"] {
        let fields = get(&[]).into_iter().chain([f(name, "x")]).collect::<Vec<_>>();
        // Appended after the defined ones but before any regular field.
        assert_eq!(request_error(&fields), "undefined pseudo-header field", "{name}");
        let fields = [f(":status", "200"), f(name, "x")];
        assert_eq!(response_error(&fields), "undefined pseudo-header field", "{name}");
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3
//= type=test
//# Pseudo-header fields defined for requests MUST NOT appear in responses;
//# pseudo-header fields defined for responses MUST NOT appear in requests.
//# Pseudo-header fields MUST NOT appear in trailer sections.
#[test]
fn pseudo_header_fields_only_where_defined() {
    let mut fields = get(&[]);
    fields.insert(1, f(":status", "200"));
    assert_eq!(request_error(&fields), "response pseudo-header field in a request");
    for name in [":method", ":scheme", ":authority", ":path", ":protocol"] {
        let fields = [f(":status", "200"), f(name, "x")];
        assert_eq!(response_error(&fields), "request pseudo-header field in a response");
    }
    for name in [":status", ":method", ":path", ":foo"] {
        let fields = [f("x-a", "1"), f(name, "200")];
        assert_eq!(trailers_error(&fields), "pseudo-header field in a trailer section");
    }
    assert_eq!(check_trailers(&[f("x-checksum", "abc"), f("x-b", "")]), Ok(()));
    assert_eq!(check_trailers(&[]), Ok(()));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3
//= type=test
//# All pseudo-header fields MUST appear in the header section before regular header
//# fields.  Any request or response that contains a pseudo-header field that
//# appears in a header section after a regular header field MUST be treated as
//# malformed.
#[test]
fn pseudo_header_fields_after_regular_fields_are_malformed() {
    let mut fields = get(&[f("accept", "*/*")]);
    let path = fields.remove(3);
    fields.push(path);
    assert_eq!(request_error(&fields), "pseudo-header field after a regular field");
    let fields = [f("server", "x"), f(":status", "200")];
    assert_eq!(response_error(&fields), "pseudo-header field after a regular field");
    // Before the order check: regular fields are checked as they come.
    assert_eq!(
        response_error(&[f("Server", "x"), f(":status", "200")]),
        "uppercase character in a field name"
    );
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
//= type=test
//# All HTTP/3 requests MUST include exactly one value for the :method, :scheme,
//# and :path pseudo-header fields, unless the request is a CONNECT request; see
//# {{connect}}.
#[test]
fn requests_need_exactly_one_method_scheme_and_path() {
    let full = get(&[]);
    for (i, expected) in [
        (0, "request without :method"),
        (1, "request without :scheme or :path"),
        (3, "request without :scheme or :path"),
    ] {
        let mut fields = full.clone();
        fields.remove(i);
        assert_eq!(request_error(&fields), expected);
    }
    for i in 0..full.len() {
        let mut fields = full.clone();
        fields.insert(i, full[i].clone());
        assert_eq!(request_error(&fields), "repeated pseudo-header field");
    }
    // Even with the same value, even for CONNECT.
    let fields = [f(":method", "CONNECT"), f(":authority", "a:1"), f(":authority", "a:1")];
    assert_eq!(request_error(&fields), "repeated pseudo-header field");
    assert_eq!(request_error(&[]), "request without :method");
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
//= type=test
//# An HTTP request that omits mandatory pseudo-header fields or contains invalid
//# values for those pseudo-header fields is malformed.
#[test]
fn request_pseudo_header_values_are_checked() {
    assert_eq!(
        request_error(&request_fields("G T", "https", "a", "/", &[])),
        ":method is not a token"
    );
    assert_eq!(
        request_error(&[f(":method", ""), f(":scheme", "https"), f(":path", "/")]),
        ":method is not a token"
    );
    // Methods are case-sensitive tokens: any of them will do.
    assert!(request(&request_fields("get", "https", "a", "/", &[])).is_ok());
    assert!(request(&request_fields("M-SEARCH", "https", "a", "/", &[])).is_ok());
    for scheme in ["1http", "ht tp", "h_t", "-"] {
        let fields = request_fields("GET", scheme, "a", "/", &[]);
        assert_eq!(request_error(&fields), ":scheme is not a URI scheme", "{scheme}");
    }
    let fields = [f(":method", "GET"), f(":scheme", ""), f(":path", "/")];
    assert_eq!(request_error(&fields), ":scheme is not a URI scheme");
    for authority in ["a b", "a\tb"] {
        let fields = request_fields("GET", "https", authority, "/", &[]);
        assert_eq!(request_error(&fields), "invalid :authority");
    }
    let fields = [f(":method", "GET"), f(":scheme", "https"), f(":authority", ""), f(":path", "/")];
    assert_eq!(request_error(&fields), "invalid :authority");
    let fields = request_fields("GET", "https", "a", "/a b", &[]);
    assert_eq!(request_error(&fields), "invalid :path");
    // Other schemes: any URI component, as the scheme has it.
    let head = request(&request_fields("GET", "urn", "", "isbn:0451450523", &[])).unwrap();
    assert_eq!((head.authority, head.path), (None, Some(b"isbn:0451450523".to_vec())));
    let fields = [f(":method", "GET"), f(":scheme", "foo+bar.x-y"), f(":path", "")];
    assert!(request(&fields).is_ok());
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
//= type=test
//# This pseudo-header field MUST NOT be empty for "http" or "https" URIs;
//# "http" or "https" URIs that do not contain a path component MUST include a
//# value of `/` (ASCII 0x2f).  An OPTIONS request that does not include a path
//# component includes the value `*` (ASCII 0x2a) for the :path pseudo-header
//# field; see {{Section 7.1 of RFC9110}}.
#[test]
fn http_paths_are_absolute_or_an_asterisk_for_options() {
    for scheme in ["http", "https", "HTTPS"] {
        let fields =
            [f(":method", "GET"), f(":scheme", scheme), f(":authority", "a"), f(":path", "")];
        assert_eq!(request_error(&fields), ":path is neither absolute nor * for OPTIONS");
        for path in ["index.html", "*", "http://a/"] {
            let fields = request_fields("GET", scheme, "a", path, &[]);
            assert_eq!(request_error(&fields), ":path is neither absolute nor * for OPTIONS");
        }
        assert!(request(&request_fields("OPTIONS", scheme, "a", "*", &[])).is_ok());
        assert!(request(&request_fields("OPTIONS", scheme, "a", "/", &[])).is_ok());
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
//= type=test
//# If the :scheme pseudo-header field identifies a scheme that has a mandatory
//# authority component (including "http" and "https"), the request MUST contain
//# either an :authority pseudo-header field or a Host header field.  If these
//# fields are present, they MUST NOT be empty.  If both fields are present, they
//# MUST contain the same value.
#[test]
fn http_requests_need_one_authority_from_authority_or_host() {
    let no_authority = |extra: &[Field]| request_fields("GET", "https", "", "/", extra);
    assert_eq!(request_error(&no_authority(&[])), "http(s) request without :authority or host");
    // Host alone stands for :authority.
    let head = request(&no_authority(&[f("host", "example.com")])).unwrap();
    assert_eq!(head.authority.as_deref(), Some(&b"example.com"[..]));
    assert!(request(&get(&[f("host", "example.com")])).is_ok());
    assert_eq!(request_error(&get(&[f("host", "example.org")])), ":authority and host differ");
    assert_eq!(request_error(&no_authority(&[f("host", "")])), "empty host field");
    let two = [f("host", "example.com"), f("host", "example.com")];
    assert_eq!(request_error(&no_authority(&two)), "more than one host field");
    // Outside http(s) nothing is required, but two authorities still agree.
    assert!(request(&request_fields("GET", "foo", "", "/", &[])).is_ok());
    let fields = request_fields("GET", "foo", "a", "/", &[f("host", "b")]);
    assert_eq!(request_error(&fields), ":authority and host differ");
    // Host in a response means nothing.
    assert!(check_response(&response_fields(200, &two)).is_ok());
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.1
//= type=test
//# The authority MUST NOT include the deprecated userinfo
//# subcomponent for URIs of scheme "http" or "https".
#[test]
fn http_authorities_have_no_userinfo() {
    for authority in ["user@example.com", "user:pass@example.com:443", "@a"] {
        let fields = request_fields("GET", "https", authority, "/", &[]);
        assert_eq!(request_error(&fields), "userinfo in :authority");
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.4
//= type=test
//# A CONNECT request MUST be constructed as follows:
//#
//# - The :method pseudo-header field is set to "CONNECT"
//# - The :scheme and :path pseudo-header fields are omitted
//# - The :authority pseudo-header field contains the host and port to connect to
//#   (equivalent to the authority-form of the request-target of CONNECT requests;
//#   see {{Section 7.1 of RFC9110}}).

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.4
//= type=test
//# A CONNECT request that does not conform to these restrictions
//# is malformed.
#[test]
fn connect_requests_name_only_host_and_port() {
    for authority in ["example.com:443", "[2001:db8::1]:8443", "10.0.0.1:1"] {
        let head = request(&request_fields("CONNECT", "", authority, "", &[])).unwrap();
        assert!(head.is_connect());
        assert_eq!((head.scheme, head.path, head.protocol), (None, None, None));
        assert_eq!(head.authority, Some(authority.as_bytes().to_vec()));
    }
    let connect = |scheme, authority, path| request_fields("CONNECT", scheme, authority, path, &[]);
    assert_eq!(request_error(&connect("https", "a:1", "")), "CONNECT with :scheme or :path");
    assert_eq!(request_error(&connect("", "a:1", "/")), "CONNECT with :scheme or :path");
    assert_eq!(request_error(&connect("", "", "")), "CONNECT without :authority");
    // Host does not stand in for :authority here.
    let fields = request_fields("CONNECT", "", "", "", &[f("host", "a:1")]);
    assert_eq!(request_error(&fields), "CONNECT without :authority");
    for authority in ["example.com", "example.com:", ":443", "a:b", "u@a:1", "[::1]"] {
        let fields = connect("", authority, "");
        assert_eq!(
            request_error(&fields),
            "CONNECT :authority is not host and port",
            "{authority}"
        );
    }
    // Extended CONNECT's setting makes no difference without :protocol.
    assert!(check_request(&connect("", "a:1", ""), true).unwrap().is_connect());
    assert!(check_request(&connect("https", "a:1", "/"), true).is_err());
    // The method is case-sensitive: "connect" is some other method.
    let fields = [f(":method", "connect"), f(":authority", "a:1")];
    assert_eq!(request_error(&fields), "request without :scheme or :path");
}

/// RFC 8441 §4 with RFC 9220 §3: `:protocol` only when the setting was
/// sent, only on CONNECT, and then with `:scheme`, `:path` and `:authority`.
#[test]
fn extended_connect_carries_protocol_and_a_full_target() {
    let protocol = [f(":protocol", "websocket")];
    let fields = request_fields("CONNECT", "https", "example.com", "/chat", &protocol);
    let head = check_request(&fields, true).unwrap();
    assert!(!head.is_connect());
    assert_eq!(head.protocol.as_deref(), Some(&b"websocket"[..]));
    assert_eq!(head.path.as_deref(), Some(&b"/chat"[..]));
    assert_eq!(head.body_length().declared(), None);

    assert_eq!(check_request(&fields, false), Err(Malformed(":protocol without extended CONNECT")));
    for (scheme, authority, path) in [("", "a", "/"), ("https", "", "/"), ("https", "a", "")] {
        let fields = request_fields("CONNECT", scheme, authority, path, &protocol);
        assert_eq!(
            check_request(&fields, true),
            Err(Malformed("extended CONNECT without :scheme, :path and :authority"))
        );
    }
    let fields = request_fields("GET", "https", "a", "/", &protocol);
    assert_eq!(
        check_request(&fields, true),
        Err(Malformed(":protocol on a method other than CONNECT"))
    );
    let fields = request_fields("CONNECT", "https", "a", "/", &[f(":protocol", "a b")]);
    assert_eq!(check_request(&fields, true), Err(Malformed(":protocol is not a token")));
    // The usual http(s) rules hold for the target.
    let fields = request_fields("CONNECT", "https", "u@a", "/", &protocol);
    assert_eq!(check_request(&fields, true), Err(Malformed("userinfo in :authority")));
    // :protocol is a pseudo-header field: before the regular ones.
    let fields = request_fields("CONNECT", "https", "a", "/", &[f("x", "1"), protocol[0].clone()]);
    assert_eq!(
        check_request(&fields, true),
        Err(Malformed("pseudo-header field after a regular field"))
    );
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.3.2
//= type=test
//# This pseudo-header
//# field MUST be included in all responses; otherwise, the response is malformed
//# (see {{malformed}}).
#[test]
fn responses_need_one_three_digit_status() {
    assert_eq!(response_error(&[]), "response without :status");
    assert_eq!(response_error(&[f("server", "x")]), "response without :status");
    let twice = [f(":status", "200"), f(":status", "200")];
    assert_eq!(response_error(&twice), "repeated :status");
    for status in ["", "20", "2000", "0200", "+20", "-20", "2 0", "abc", "20a", "\u{663}00"] {
        assert!(check_response(&[f(":status", status)]).is_err(), "{status:?}");
    }
    for status in ["000", "099", "600", "999"] {
        assert_eq!(response_error(&[f(":status", status)]), ":status out of range");
    }
    for (status, informational) in
        [(100, true), (103, true), (199, true), (200, false), (599, false)]
    {
        let head = check_response(&response_fields(status, &[])).unwrap();
        assert_eq!((head.status, head.is_informational()), (status, informational));
    }
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.5
//= type=test
//# HTTP/3 does not support the HTTP Upgrade mechanism ({{Section 7.8 of
//# RFC9110}}) or the 101 (Switching Protocols) informational status code
//# ({{Section 15.2.2 of RFC9110}}).
#[test]
fn status_101_is_malformed() {
    assert_eq!(response_error(&response_fields(101, &[])), ":status 101 in HTTP/3");
}

#[test]
fn content_length_is_digits_and_repeats_only_itself() {
    let length = |values: &[&str]| {
        let extra: Vec<Field> = values.iter().map(|v| f("content-length", v)).collect();
        let from_response = check_response(&response_fields(200, &extra)).map(|h| h.content_length);
        let from_request = request(&get(&extra)).map(|h| h.content_length);
        assert_eq!(from_request, from_response, "{values:?}");
        from_request
    };
    assert_eq!(length(&[]), Ok(None));
    for (value, n) in [("0", 0), ("42", 42), ("007", 7), ("18446744073709551615", u64::MAX)] {
        assert_eq!(length(&[value]), Ok(Some(n)));
    }
    assert_eq!(length(&["5, 5"]), Ok(Some(5)));
    assert_eq!(length(&["5,5,5"]), Ok(Some(5)));
    assert_eq!(length(&["5 ,\t5"]), Ok(Some(5)));
    assert_eq!(length(&["5", "5"]), Ok(Some(5)));
    assert_eq!(length(&["5", "5, 5"]), Ok(Some(5)));
    let not_a_number = Err(Malformed("content-length is not a number"));
    for value in ["", "-1", "+1", "1.0", "0x10", "1 2", "1e3", "5,", ",5", "5,,5", "\u{661}"] {
        assert_eq!(length(&[value]), not_a_number, "{value:?}");
    }
    assert_eq!(length(&["18446744073709551616"]), Err(Malformed("content-length too large")));
    let disagree = Err(Malformed("content-length values disagree"));
    assert_eq!(length(&["5, 6"]), disagree);
    assert_eq!(length(&["5", "6"]), disagree);
    assert_eq!(length(&["5", "05"]), Ok(Some(5)));
    // In trailers the value is checked too, and means nothing.
    assert_eq!(trailers_error(&[f("content-length", "x")]), "content-length is not a number");
    assert_eq!(check_trailers(&[f("content-length", "3")]), Ok(()));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
//= type=test
//# A request or response that is defined as having content when it contains a
//# Content-Length header field ({{Section 8.6 of RFC9110}}) is malformed if the
//# value of the Content-Length header field does not equal the sum of the DATA
//# frame lengths received.
#[test]
fn body_length_matches_the_declared_length() {
    let mut body = BodyLength::new(Some(10));
    body.on_data(4).unwrap();
    assert_eq!(body.on_end(), Err(Malformed("less content than content-length")));
    body.on_data(0).unwrap();
    body.on_data(6).unwrap();
    assert_eq!((body.declared(), body.received()), (Some(10), 10));
    assert_eq!(body.on_end(), Ok(()));
    assert_eq!(body.on_data(1), Err(Malformed("more content than content-length")));
    assert_eq!(body.on_end(), Err(Malformed("more content than content-length")));

    // Refused at once, before the stream ends.
    let mut body = BodyLength::new(Some(0));
    assert_eq!(body.on_end(), Ok(()));
    assert!(body.on_data(1).is_err());

    let mut body = BodyLength::new(None);
    body.on_data(u64::MAX).unwrap();
    body.on_data(u64::MAX).unwrap();
    assert_eq!((body.received(), body.on_end()), (u64::MAX, Ok(())));
    assert_eq!(BodyLength::default(), BodyLength::new(None));

    // The count saturates rather than wrapping round to a small number.
    let mut body = BodyLength::new(Some(u64::MAX));
    body.on_data(u64::MAX).unwrap();
    assert_eq!(body.on_end(), Ok(()));
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
//= type=test
//# A response that is defined as never having content, even
//# when a Content-Length is present, can have a non-zero Content-Length header
//# field even though no content is included in DATA frames.
#[test]
fn body_length_of_responses_that_never_have_content() {
    let response = |status| ResponseHead { status, content_length: Some(100) };
    // Content-length describes what GET would have sent; no DATA comes.
    assert_eq!(response(200).body_length(b"HEAD").declared(), Some(0));
    assert_eq!(response(200).body_length(b"HEAD").on_end(), Ok(()));
    for status in [100, 103, 204, 304] {
        assert_eq!(response(status).body_length(b"GET").declared(), Some(0), "{status}");
    }
    assert_eq!(response(200).body_length(b"GET").declared(), Some(100));
    assert_eq!(response(404).body_length(b"HEAD").declared(), Some(0));
    // A tunnel: nothing bounds it. A refused CONNECT has ordinary content.
    assert_eq!(response(200).body_length(b"CONNECT").declared(), None);
    assert_eq!(response(407).body_length(b"CONNECT").declared(), Some(100));

    let head = request(&get(&[f("content-length", "7")])).unwrap();
    assert_eq!(head.body_length().declared(), Some(7));
    let connect = request_fields("CONNECT", "", "a:1", "", &[f("content-length", "7")]);
    assert_eq!(request(&connect).unwrap().body_length().declared(), None);
}

//= https://www.rfc-editor.org/rfc/rfc9114#section-4.1.2
//= type=test
//# Malformed requests or responses that are detected MUST be treated as a stream
//# error of type H3_MESSAGE_ERROR.
#[test]
fn malformed_becomes_h3_message_error() {
    let error = H3Error::from(Malformed("response without :status"));
    assert_eq!(error.code, ErrorCode::H3_MESSAGE_ERROR);
    assert_eq!((error.frame_type, error.reason), (None, "response without :status"));
    assert_eq!(
        Malformed("empty field name").to_string(),
        "malformed HTTP message: empty field name"
    );
    let _: &dyn std::error::Error = &Malformed("x");
}

/// Bytes for names and values: mostly the interesting ones.
fn octets() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b":abcHT-/0123456789 \t\r\n\0,@*".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..12)
}

fn field() -> impl Strategy<Value = Field> {
    let name = prop_oneof![
        prop::sample::select(vec![
            ":method",
            ":scheme",
            ":authority",
            ":path",
            ":protocol",
            ":status",
            "host",
            "content-length",
            "te",
            "connection",
            "cookie",
        ])
        .prop_map(|n| n.as_bytes().to_vec()),
        octets(),
    ];
    (name, octets()).prop_map(|(name, value)| Field { name, value, never_index: false })
}

proptest! {
    #[test]
    fn checks_never_panic_and_accept_only_clean_lines(
        fields in prop::collection::vec(field(), 0..10),
        extended in any::<bool>(),
    ) {
        let results = [
            check_request(&fields, extended).map(drop),
            check_response(&fields).map(drop),
            check_trailers(&fields),
        ];
        for result in results {
            if result.is_ok() {
                for field in &fields {
                    prop_assert!(!field.name.iter().any(u8::is_ascii_uppercase));
                    prop_assert!(!field.value.iter().any(|b| matches!(b, b'\0' | b'\r' | b'\n')));
                }
            }
        }
    }

    #[test]
    fn built_requests_pass_and_read_back(
        method in "[A-Z]{1,8}",
        authority in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        path in "/[a-zA-Z0-9/?=&%._~-]{0,30}",
        length in proptest::option::of(any::<u64>()),
    ) {
        prop_assume!(method != "CONNECT");
        let extra: Vec<Field> =
            length.map(|n| f("content-length", &n.to_string())).into_iter().collect();
        let head = request(&request_fields(&method, "https", &authority, &path, &extra)).unwrap();
        prop_assert_eq!(head.method, method.into_bytes());
        prop_assert_eq!(head.authority, Some(authority.into_bytes()));
        prop_assert_eq!(head.path, Some(path.into_bytes()));
        prop_assert_eq!(head.content_length, length);
    }
}
