use super::*;
use crate::qpack::ErrorCode;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn fields(pairs: &[(&str, &str)]) -> Vec<Field> {
    pairs.iter().map(|(n, v)| Field::new(*n, *v)).collect()
}

fn instructions(d: &mut Decoder) -> Vec<u8> {
    let mut out = Vec::new();
    d.poll_decoder_stream(&mut out);
    out
}

/// RFC 9204 Appendix B, every exchange in order, from the decoder's side.
#[test]
fn rfc9204_appendix_b() {
    let mut d = Decoder::new(220, 1, u64::MAX);
    // B.1: a literal with a static name reference.
    let got = d.decode_section(0, &hex("0000 510b 2f69 6e64 6578 2e68 746d 6c")).unwrap();
    assert_eq!(got, Decoded::Fields(fields(&[(":path", "/index.html")])));
    assert_eq!(instructions(&mut d), [], "no dynamic references: nothing to acknowledge");

    // B.2: the section arrives before the encoder stream: blocked.
    assert_eq!(d.decode_section(4, &hex("0381 10 11")).unwrap(), Decoded::Blocked);
    assert_eq!(d.blocked_streams(), 1);
    let encoder =
        hex("3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468");
    // Byte by byte: partial instructions are kept.
    for b in &encoder {
        d.handle_encoder_stream(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(d.insert_count(), 2);
    assert_eq!(d.table.size(), 106);
    let (stream, got) = d.poll_unblocked().unwrap();
    assert_eq!(stream, 4);
    assert_eq!(
        got.unwrap(),
        fields(&[(":authority", "www.example.com"), (":path", "/sample/path")])
    );
    assert!(d.poll_unblocked().is_none());
    assert_eq!(instructions(&mut d), hex("84"), "a Section Acknowledgment covers the inserts");

    // B.3: a speculative insert is acknowledged by an Insert Count Increment.
    d.handle_encoder_stream(&hex("4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565"))
        .unwrap();
    assert_eq!(d.table.size(), 160);
    assert_eq!(instructions(&mut d), hex("01"));

    // B.4: a duplicate; the section's stream is cancelled while blocked.
    assert_eq!(d.decode_section(8, &hex("0500 80 c1 81")).unwrap(), Decoded::Blocked);
    d.cancel_stream(8);
    assert_eq!(d.blocked_streams(), 0);
    d.handle_encoder_stream(&hex("02")).unwrap();
    assert_eq!(d.table.size(), 217);
    assert!(d.poll_unblocked().is_none(), "a cancelled section is never decoded");
    assert_eq!(instructions(&mut d), hex("48 01"));
    // Decoded once the entry is there, it names what B.4 says.
    let got = d.decode_section(12, &hex("0500 80 c1 81")).unwrap();
    let want = [(":authority", "www.example.com"), (":path", "/"), ("custom-key", "custom-value")];
    assert_eq!(got, Decoded::Fields(fields(&want)));

    // B.5: an insert evicts the oldest entry.
    d.handle_encoder_stream(&hex("810d 6375 7374 6f6d 2d76 616c 7565 32")).unwrap();
    assert_eq!(d.table.size(), 215);
    assert_eq!(d.table.dropped(), 1);
}

#[test]
fn more_blocked_streams_than_announced_is_an_error() {
    let mut d = Decoder::new(220, 1, u64::MAX);
    assert_eq!(d.decode_section(4, &hex("0381 10")).unwrap(), Decoded::Blocked);
    //= https://www.rfc-editor.org/rfc/rfc9204#section-2.1.2
    //= type=test
    //# If a decoder encounters
    //# more blocked streams than it promised to support, it MUST treat this as a
    //# connection error of type QPACK_DECOMPRESSION_FAILED.
    let err = d.decode_section(8, &hex("0381 10")).unwrap_err();
    assert_eq!(err, Error::decompression(Cause::TooManyBlockedStreams));
    let mut none = Decoder::new(220, 0, u64::MAX);
    assert_eq!(
        none.decode_section(0, &hex("0381 10")).unwrap_err().code,
        ErrorCode::DecompressionFailed
    );
}

#[test]
fn references_outside_the_required_insert_count_are_errors() {
    let mut d = Decoder::new(220, 10, u64::MAX);
    d.handle_encoder_stream(&hex("3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d")).unwrap();
    d.handle_encoder_stream(&hex("c10c 2f73 616d 706c 652f 7061 7468")).unwrap();
    //= https://www.rfc-editor.org/rfc/rfc9204#section-2.2.3
    //= type=test
    //# If the decoder encounters a reference in a field line representation to a
    //# dynamic table entry that has already been evicted or that has an absolute
    //# index greater than or equal to the declared Required Insert Count
    //# (Section 4.5.1), it MUST treat this as a connection error of type
    //# QPACK_DECOMPRESSION_FAILED.
    // Required Insert Count 1 (encoded 2), Base 1, post-Base index 0 is
    // absolute 1: past the Required Insert Count.
    let err = d.decode_section(0, &hex("0200 10")).unwrap_err();
    assert_eq!(err, Error::decompression(Cause::BadDynamicIndex));
    // Relative index 2 from Base 2: below absolute 0.
    assert_eq!(d.decode_section(0, &hex("0300 82")).unwrap_err().cause, Cause::BadDynamicIndex);
    // Evicted: capacity 0 clears the table.
    d.handle_encoder_stream(&hex("20")).unwrap();
    assert_eq!(d.decode_section(0, &hex("0300 80")).unwrap_err().cause, Cause::BadDynamicIndex);
}

#[test]
fn invalid_prefixes_are_errors() {
    let mut d = Decoder::new(100, 10, u64::MAX);
    //= https://www.rfc-editor.org/rfc/rfc9204#section-4.5.1.1
    //= type=test
    //# If the decoder encounters a value of EncodedInsertCount that
    //# could not have been produced by a conformant encoder, it MUST treat this as a
    //# connection error of type QPACK_DECOMPRESSION_FAILED.
    // MaxEntries 3, FullRange 6: 7 is out of range.
    assert_eq!(d.decode_section(0, &hex("0700")).unwrap_err().cause, Cause::BadRequiredInsertCount);
    // With no table at all, any non-zero value is.
    let mut zero = Decoder::new(0, 10, u64::MAX);
    assert_eq!(
        zero.decode_section(0, &hex("0100")).unwrap_err().cause,
        Cause::BadRequiredInsertCount
    );
    //= https://www.rfc-editor.org/rfc/rfc9204#section-4.5.1.2
    //= type=test
    //# An endpoint MUST treat a field block with a Sign bit of 1 as
    //# invalid if the value of Required Insert Count is less than or equal to the value
    //# of Delta Base.
    assert_eq!(d.decode_section(0, &hex("0281")).unwrap_err().cause, Cause::NegativeBase);
    assert_eq!(d.decode_section(0, &hex("00")).unwrap_err().cause, Cause::Truncated);
    assert_eq!(d.decode_section(0, &hex("")).unwrap_err().cause, Cause::Truncated);
}

#[test]
fn required_insert_count_wraps_as_in_the_rfc_example() {
    // RFC 9204 §4.5.1.1: a 100-byte table, 10 inserts received; encoded 4
    // means Required Insert Count 9.
    let mut d = Decoder::new(100, 10, u64::MAX);
    d.handle_encoder_stream(&hex("3f45")).unwrap(); // capacity 100
    for _ in 0..10 {
        d.handle_encoder_stream(&hex("4161 00")).unwrap(); // "a" = "", size 33
    }
    assert_eq!(d.required_insert_count(4), Ok(9));
}

#[test]
fn bad_encoder_instructions_are_encoder_stream_errors() {
    let cases: &[(&str, Cause)] = &[
        //= https://www.rfc-editor.org/rfc/rfc9204#section-4.3.1
        //= type=test
        //# The decoder MUST treat a new dynamic table capacity
        //# value that exceeds this limit as a connection error of type
        //# QPACK_ENCODER_STREAM_ERROR.
        ("3fbe01", Cause::CapacityExceeded),
        //= https://www.rfc-editor.org/rfc/rfc9204#section-3.1
        //= type=test
        //# If this index is received on the encoder stream,
        //# this MUST be treated as a connection error of type QPACK_ENCODER_STREAM_ERROR.
        ("3fbd01 ff25 00", Cause::BadStaticIndex),
        //= https://www.rfc-editor.org/rfc/rfc9204#section-2.2.3
        //= type=test
        //# If the decoder encounters a reference in an encoder instruction to a dynamic
        //# table entry that has already been evicted, it MUST treat this as a connection
        //# error of type QPACK_ENCODER_STREAM_ERROR.
        ("3fbd01 8000", Cause::BadDynamicIndex),
        ("3fbd01 00", Cause::BadDynamicIndex),
        //= https://www.rfc-editor.org/rfc/rfc9204#section-3.2.2
        //= type=test
        //# It is an
        //# error if the encoder attempts to add an entry that is larger than the dynamic
        //# table capacity; the decoder MUST treat this as a connection error of type
        //# QPACK_ENCODER_STREAM_ERROR.
        ("4161 00", Cause::EntryTooLarge),
        ("3fbd01 ff3f ff ff ff 0f", Cause::BadStaticIndex),
    ];
    for &(input, cause) in cases {
        let mut d = Decoder::new(220, 10, u64::MAX);
        let err = d.handle_encoder_stream(&hex(input)).unwrap_err();
        assert_eq!(err, Error::encoder_stream(cause), "{input}");
    }
}

#[test]
fn an_absurd_declared_length_is_refused_before_its_bytes() {
    let mut d = Decoder::new(4096, 10, u64::MAX);
    d.handle_encoder_stream(&hex("3fe11f")).unwrap(); // capacity 4096
    // Insert with literal name, name length 2^40: refused at once, not
    // buffered while its bytes trickle in.
    let mut instruction = vec![];
    int::encode(1 << 40, 5, 0x40, &mut instruction);
    let err = d.handle_encoder_stream(&instruction).unwrap_err();
    assert_eq!(err, Error::encoder_stream(Cause::EntryTooLarge));
    // A value too long for the name it joins, Huffman coded or not.
    for flag in [0x00, 0x80] {
        let mut d = Decoder::new(4096, 10, u64::MAX);
        d.handle_encoder_stream(&hex("3fe11f")).unwrap();
        let mut instruction = hex("c0"); // static name :authority
        // Huffman coded, 40,000 bytes decode to at least 10,666.
        int::encode(40_000, 7, flag, &mut instruction);
        assert_eq!(d.handle_encoder_stream(&instruction).unwrap_err().cause, Cause::EntryTooLarge);
        assert!(d.pending.len() < 8, "nothing buffered beyond the prefix");
    }
}

#[test]
fn a_decompression_bomb_stops_at_the_field_section_limit() {
    let mut d = Decoder::new(4096, 10, 16 * 1024);
    // One entry of about 4 KB.
    let mut encoder = hex("3fe11f");
    encoder.extend(hex("c0"));
    int::encode(4000, 7, 0, &mut encoder);
    encoder.extend(vec![b'x'; 4000]);
    d.handle_encoder_stream(&encoder).unwrap();
    d.poll_decoder_stream(&mut Vec::new());
    // A section of a thousand 1-byte references to it: 4 MB decoded.
    let mut section = hex("0200");
    section.extend(vec![0x80; 1000]);
    let err = d.decode_section(4, &section).unwrap_err();
    assert_eq!(err, Error::decompression(Cause::FieldSectionTooLarge));
    assert!(err.is_stream_error());
    assert_eq!(instructions(&mut d), hex("44"), "reading abandoned: Stream Cancellation");
    // Three references fit.
    let got = d.decode_section(8, &[hex("0200"), vec![0x80; 3]].concat()).unwrap();
    assert!(matches!(got, Decoded::Fields(f) if f.len() == 3));
    // A literal value too long for the limit is refused from its length.
    let mut section = hex("0000 5f00");
    int::encode(1 << 30, 7, 0, &mut section);
    let err = d.decode_section(12, &section).unwrap_err();
    assert_eq!(err.cause, Cause::FieldSectionTooLarge);
}

#[test]
fn never_index_bits_are_reported() {
    let mut d = Decoder::new(0, 0, u64::MAX);
    // Literal with static name reference (authorization, 84), N set.
    let got = d.decode_section(0, &hex("0000 7f45 0361 6263")).unwrap();
    assert_eq!(
        got,
        Decoded::Fields(vec![Field {
            name: b"authorization".to_vec(),
            value: b"abc".to_vec(),
            never_index: true
        }])
    );
    // Literal name, N set.
    let got = d.decode_section(0, &hex("0000 31 61 01 62")).unwrap();
    assert_eq!(
        got,
        Decoded::Fields(vec![Field {
            name: b"a".to_vec(),
            value: b"b".to_vec(),
            never_index: true
        }])
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        encoder in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        section in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
    ) {
        let mut d = Decoder::new(4096, 4, 1 << 16);
        let _ = d.decode_section(0, &section);
        let _ = d.handle_encoder_stream(&encoder);
        while d.poll_unblocked().is_some() {}
        let _ = d.decode_section(4, &section);
        d.poll_decoder_stream(&mut Vec::new());
    }
}
