//! QPACK offline interop (RFC 9204) with the qpackers/qifs data copied into
//! `conformance/data/qifs/` (its README names the source): other encoders'
//! output decodes to the source QIF, our encoder's output decodes (with our
//! decoder here; with ls-qpack's in `qpack_pylsqpack.rs`), and the
//! malformed inputs are refused.
//!
//! `QIFS_DIR` points the tests at another copy of the collection (the
//! whole one, say), laid out the same way.

use std::path::{Path, PathBuf};

use h3_proto::qpack::qif::QifError;
use h3_proto::qpack::qif::{decode_records, encode_sections, parse_qif};
use h3_proto::qpack::{Cause, Error, ErrorCode, Field};

fn data_dir() -> PathBuf {
    std::env::var_os("QIFS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data/qifs"))
}

/// `<qif>.out.<table size>.<blocked streams>.<ack mode>`.
fn settings_of(name: &str) -> (String, u64, u64, bool) {
    let (qif, settings) =
        name.split_once(".out.").unwrap_or_else(|| panic!("{name}: not QIF output"));
    let n: Vec<u64> = settings.split('.').map(|s| s.parse().unwrap()).collect();
    assert_eq!(n.len(), 3, "{name}");
    (qif.to_string(), n[0], n[1], n[2] == 1)
}

fn qif(name: &str) -> Vec<Vec<Field>> {
    let path = data_dir().join("qifs").join(format!("{name}.qif"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_qif(&text).unwrap()
}

fn strip(sections: Vec<Vec<Field>>) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    sections.into_iter().map(|s| s.into_iter().map(|f| (f.name, f.value)).collect()).collect()
}

#[test]
fn every_encoded_file_decodes_to_its_source() {
    let root = data_dir().join("encoded/qpack-05");
    let mut decoded = 0;
    for encoder in ["ls-qpack", "nghttp3", "examples"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(encoder))
            .unwrap_or_else(|e| panic!("{}: {e}", root.join(encoder).display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let (source, table_size, blocked, _) = settings_of(&name);
            let input = std::fs::read(&path).unwrap();
            let sections = decode_records(&input, table_size, blocked)
                .unwrap_or_else(|e| panic!("{encoder}/{name}: {e}"));
            // `examples` has no QIF: it is RFC 9204 Appendix B's exchange.
            let want = if source == "examples" { rfc9204_appendix_b() } else { qif(&source) };
            let got: Vec<Vec<Field>> = sections.into_iter().map(|(_, f)| f).collect();
            assert_eq!(got.len(), want.len(), "{encoder}/{name}: section count");
            assert!(
                strip(got) == strip(want),
                "{encoder}/{name}: decoded sections differ from the QIF"
            );
            decoded += 1;
        }
    }
    assert!(decoded >= 81, "only {decoded} encoded files found");
}

fn rfc9204_appendix_b() -> Vec<Vec<Field>> {
    let f = |n: &str, v: &str| Field::new(n, v);
    vec![
        vec![f(":path", "/index.html")],
        vec![f(":authority", "www.example.com"), f(":path", "/sample/path")],
        vec![f(":authority", "www.example.com"), f(":path", "/"), f("custom-key", "custom-value")],
    ]
}

#[test]
fn the_error_inputs_are_refused_but_err9_and_err10() {
    use Cause::*;
    // Each file is one field section (stream 1) or one encoder
    // instruction (stream 0); what is wrong with it, and what we say.
    let expected: [(u64, Option<Cause>); 12] = [
        (1, Some(Truncated)),       // err1: a prefix integer cut short
        (1, Some(Truncated)),       // err2: no Delta Base
        (1, Some(Truncated)),       // err3: Delta Base cut short
        (1, Some(NegativeBase)),    // err4: Sign 1 with Required Insert Count 0
        (1, Some(BadDynamicIndex)), // err5: a dynamic name reference with an empty table
        (1, Some(Truncated)),       // err6: a literal name with no bytes
        (1, Some(Truncated)),       // err7: a value length cut short
        (1, Some(Truncated)),       // err8: an index cut short
        (1, None),                  // err9: static index 0, valid in RFC 9204
        (1, None),                  // err10: static index 62, valid in RFC 9204
        (0, Some(BadDynamicIndex)), // err11: Duplicate of an entry never inserted
        (0, Some(BadStaticIndex)),  // err12: a static name index past the table
    ];
    let dir = data_dir().join("encoded/errors");
    for (n, (stream, cause)) in (1..).zip(expected) {
        let input = std::fs::read(dir.join(format!("err{n}"))).unwrap();
        let result = decode_records(&input, 4096, 100);
        match cause {
            None => {
                result.unwrap_or_else(|e| {
                    panic!("err{n} decodes under RFC 9204's static table: {e}")
                });
            }
            Some(cause) => {
                let code = if stream == 0 {
                    ErrorCode::EncoderStream
                } else {
                    ErrorCode::DecompressionFailed
                };
                assert_eq!(
                    result,
                    Err(QifError::Decode { stream_id: stream, error: Error { code, cause } }),
                    "err{n}"
                );
            }
        }
    }
}

#[test]
fn our_encoding_of_every_qif_decodes_under_all_sixteen_settings() {
    for name in
        ["draft-examples", "netbsd", "netbsd-hq", "fb-req", "fb-req-hq", "fb-resp", "fb-resp-hq"]
    {
        let sections = qif(name);
        for table_size in [0, 256, 512, 4096] {
            for blocked in [0, 100] {
                for ack_mode in [false, true] {
                    let encoded = encode_sections(&sections, table_size, blocked, ack_mode);
                    let decoded =
                        decode_records(&encoded, table_size, blocked).unwrap_or_else(|e| {
                            panic!("{name} at {table_size}.{blocked}.{}: {e}", u8::from(ack_mode))
                        });
                    let got: Vec<Vec<Field>> = decoded.into_iter().map(|(_, f)| f).collect();
                    assert!(
                        strip(got) == strip(sections.clone()),
                        "{name} at {table_size}.{blocked}.{}: round trip differs",
                        u8::from(ack_mode)
                    );
                }
            }
        }
    }
}
