//! `quic qpack`: QPACK offline interop from the command line, on the QPACK
//! interop data in `conformance/data/qifs`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn quic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_quic"))
}

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/data/qifs").join(path)
}

/// The QIF text without its comments: what decoding writes.
fn without_comments(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
}

#[test]
fn decode_writes_the_source_qif_of_another_encoders_file() {
    let out = quic()
        .args(["qpack", "decode", "--table-size", "4096", "--blocked-streams", "100"])
        .arg(data("encoded/qpack-05/nghttp3/netbsd.out.4096.100.1"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), without_comments(&data("qifs/netbsd.qif")));
}

#[test]
fn encode_then_decode_gives_the_qif_back() {
    let dir = tempfile::tempdir().unwrap();
    let encoded = dir.path().join("netbsd.out.512.0.1");
    let out = quic()
        .args([
            "qpack",
            "encode",
            "--table-size",
            "512",
            "--blocked-streams",
            "0",
            "--ack-mode",
            "1",
        ])
        .arg(data("qifs/netbsd.qif"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.is_empty());
    std::fs::write(&encoded, &out.stdout).unwrap();
    let out = quic()
        .args(["qpack", "decode", "--table-size", "512", "--blocked-streams", "0"])
        .arg(&encoded)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), without_comments(&data("qifs/netbsd.qif")));
}

#[test]
fn a_malformed_file_fails_with_the_qpack_error() {
    let out = quic()
        .args(["qpack", "decode", "--table-size", "4096"])
        .arg(data("encoded/errors/err5"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stream 1: QPACK_DECOMPRESSION_FAILED"), "{stderr}");
    let out = quic().args(["qpack", "decode"]).arg("/nonexistent/file").output().unwrap();
    assert_eq!(out.status.code(), Some(6), "a missing file is exit code 6");
}
