use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The Huffman-coded strings of RFC 7541 Appendix C.4 and C.6.
const RFC7541_EXAMPLES: &[(&str, &str)] = &[
    ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
    ("no-cache", "a8eb 1064 9cbf"),
    ("custom-key", "25a8 49e9 5ba9 7d7f"),
    ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
    ("302", "6402"),
    ("private", "aec3 771a 4b"),
    ("Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"),
    ("https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"),
    ("307", "640e ff"),
    ("gzip", "9bd9 ab"),
];

#[test]
fn rfc7541_examples_encode_and_decode() {
    for &(plain, coded) in RFC7541_EXAMPLES {
        let coded = hex(coded);
        let mut out = Vec::new();
        encode(plain.as_bytes(), &mut out);
        assert_eq!(out, coded, "{plain}");
        assert_eq!(encoded_len(plain.as_bytes()), coded.len(), "{plain}");
        let mut back = Vec::new();
        decode(&coded, &mut back).unwrap();
        assert_eq!(back, plain.as_bytes());
    }
}

#[test]
fn codes_are_those_of_rfc7541_appendix_b_at_their_ends() {
    // A few rows of Appendix B, checked by hand: the shortest codes, a
    // 10-bit one, the longest ones and EOS.
    assert_eq!((CODES[b'0' as usize], LENGTHS[b'0' as usize]), (0x0, 5));
    assert_eq!((CODES[b't' as usize], LENGTHS[b't' as usize]), (0x9, 5));
    assert_eq!((CODES[b' ' as usize], LENGTHS[b' ' as usize]), (0x14, 6));
    assert_eq!((CODES[b'!' as usize], LENGTHS[b'!' as usize]), (0x3f8, 10));
    assert_eq!((CODES[0], LENGTHS[0]), (0x1ff8, 13));
    assert_eq!((CODES[10], LENGTHS[10]), (0x3ffffffc, 30));
    assert_eq!((CODES[255], LENGTHS[255]), (0x3ffffee, 26));
    assert_eq!((CODES[256], LENGTHS[256]), (0x3fffffff, 30));
}

#[test]
fn the_code_is_complete_and_prefix_free() {
    // Kraft sum exactly 1: every bit pattern decodes.
    let kraft: u64 = LENGTHS.iter().map(|&l| 1u64 << (30 - l)).sum();
    assert_eq!(kraft, 1 << 30);
}

#[test]
fn every_symbol_round_trips_alone() {
    for b in 0..=255u8 {
        let mut out = Vec::new();
        encode(&[b], &mut out);
        let mut back = Vec::new();
        decode(&out, &mut back).unwrap();
        assert_eq!(back, [b]);
    }
}

#[test]
fn bad_padding_and_eos_are_errors() {
    //= https://www.rfc-editor.org/rfc/rfc7541#section-5.2
    //= type=test
    //# A padding strictly longer than 7 bits MUST be treated as a decoding
    //# error.  A padding not corresponding to the most significant bits of
    //# the code for the EOS symbol MUST be treated as a decoding error.
    let mut out = Vec::new();
    // Eight bits of ones alone: padding longer than 7 bits.
    assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError::Padding));
    // "0" is 00000 followed by padding 111: fine; 000 padding is not.
    assert_eq!(decode(&[0x07], &mut out), Ok(()));
    assert_eq!(out, b"0");
    assert_eq!(decode(&[0x00], &mut out), Err(HuffmanError::Padding));
    // "00" followed by 6 bits that are not all ones.
    assert_eq!(decode(&[0x00, 0x00], &mut out), Err(HuffmanError::Padding));
    //= https://www.rfc-editor.org/rfc/rfc7541#section-5.2
    //= type=test
    //# A Huffman-encoded string literal containing the EOS symbol MUST be
    //# treated as a decoding error.
    assert_eq!(decode(&[0xff, 0xff, 0xff, 0xfc], &mut out), Err(HuffmanError::Eos));
    assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff], &mut out), Err(HuffmanError::Eos));
}

proptest! {
    #[test]
    fn round_trips_with_the_predicted_length(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        encode(&input, &mut out);
        prop_assert_eq!(out.len(), encoded_len(&input));
        let mut back = Vec::new();
        decode(&out, &mut back).unwrap();
        prop_assert_eq!(back, input);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut out = Vec::new();
        if decode(&input, &mut out).is_ok() {
            // Whatever decodes re-encodes to the same bytes: the padding
            // is canonical, so the coding is a bijection on valid input.
            let mut again = Vec::new();
            encode(&out, &mut again);
            prop_assert_eq!(again, input);
        }
    }
}
