//! Our QPACK encoder's output decoded by an independent decoder: ls-qpack,
//! through pylsqpack (the binding aioquic uses, in the peers' venv; the
//! test fails, saying how to install it, when the peers are missing).
//! Every QIF of `conformance/data/qifs` under all 16 settings: table size
//! 0, 256, 512, 4096; blocked streams 0, 100; ack mode 0, 1.

use std::path::Path;
use std::process::Command;

use conformance::peers::PeerEnv;
use h3_proto::qpack::qif::{encode_sections, parse_qif};

#[test]
fn ls_qpack_decodes_our_encoding_of_every_qif_under_all_settings() {
    let env = PeerEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/qifs/qifs");
    let scratch = tempfile::tempdir().unwrap();
    let mut specs = Vec::new();
    let mut expected = Vec::new();
    for name in
        ["draft-examples", "netbsd", "netbsd-hq", "fb-req", "fb-req-hq", "fb-resp", "fb-resp-hq"]
    {
        let sections =
            parse_qif(&std::fs::read(data.join(format!("{name}.qif"))).unwrap()).unwrap();
        for table_size in [0u64, 256, 512, 4096] {
            for blocked in [0u64, 100] {
                for ack_mode in [0u8, 1] {
                    let file = format!("{name}.out.{table_size}.{blocked}.{ack_mode}");
                    let encoded = encode_sections(&sections, table_size, blocked, ack_mode == 1);
                    let path = scratch.path().join(&file);
                    std::fs::write(&path, encoded).unwrap();
                    specs.push(format!("{}:{table_size}:{blocked}", path.display()));
                    expected.push((file, sections.clone()));
                }
            }
        }
    }
    let out = Command::new(&env.python)
        .arg(env.dir.join("qpack_decode.py"))
        .arg(scratch.path())
        .args(&specs)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", env.python.display()));
    assert!(
        out.status.success(),
        "ls-qpack refused our encoding ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(expected.len(), 112);
    for (file, sections) in expected {
        let decoded = std::fs::read(scratch.path().join(format!("{file}.qif"))).unwrap();
        let decoded = parse_qif(&decoded).unwrap();
        let strip = |s: &[Vec<h3_proto::qpack::Field>]| -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
            s.iter()
                .map(|s| s.iter().map(|f| (f.name.clone(), f.value.clone())).collect())
                .collect()
        };
        assert!(strip(&decoded) == strip(&sections), "{file}: ls-qpack decoded something else");
    }
}
