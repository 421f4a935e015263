//! QPACK: our encoder's output size next to ls-qpack's for every encoded
//! file of the interop data (`conformance/data/qifs`, or `QIFS_DIR`), and
//! encode/decode speed.
//!
//! `cargo bench -p conformance --bench qpack`. Sizes are QPACK bytes: the
//! field sections and the encoder stream, without the file format's
//! 12-byte record headers (how often an encoder's tool flushes its
//! encoder stream into a record says nothing about QPACK). Ratios below
//! 1.00 mean ours is smaller. Ours include the Set Dynamic Table Capacity
//! (2-3 bytes) RFC 9204 requires before the first insert; these files,
//! written for QPACK draft 05, started with the table at full capacity.

use std::path::{Path, PathBuf};
use std::time::Instant;

use h3_proto::qpack::qif::{decode_records, encode_sections, parse_qif, parse_records};

/// The bytes of an encoded file's records, without their headers.
fn payload(file: &[u8]) -> usize {
    parse_records(file).expect("well-formed records").iter().map(|(_, data)| data.len()).sum()
}

fn main() {
    let dir = std::env::var_os("QIFS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data/qifs"));
    let root = dir.join("encoded/qpack-05/ls-qpack");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    println!("{:<28} {:>10} {:>10} {:>7}", "file", "ls-qpack", "ours", "ratio");
    let (mut total_theirs, mut total_ours) = (0usize, 0usize);
    let (mut at_4096_theirs, mut at_4096_ours) = (0usize, 0usize);
    let mut worst: Option<(f64, String)> = None;
    let mut encode_time = 0f64;
    let mut decode_time = 0f64;
    let mut sections = 0usize;
    for name in &files {
        let (qif, settings) = name.split_once(".out.").unwrap();
        let n: Vec<u64> = settings.split('.').map(|s| s.parse().unwrap()).collect();
        let text = std::fs::read(dir.join("qifs").join(format!("{qif}.qif"))).unwrap();
        let blocks = parse_qif(&text).unwrap();
        let theirs = payload(&std::fs::read(root.join(name)).unwrap());
        let start = Instant::now();
        let ours = encode_sections(&blocks, n[0], n[1], n[2] == 1);
        encode_time += start.elapsed().as_secs_f64();
        let decoded = decode_records(&ours, n[0], n[1]).expect("our output decodes");
        let file = std::fs::read(root.join(name)).unwrap();
        let start = Instant::now();
        decode_records(&file, n[0], n[1]).expect("ls-qpack's output decodes");
        decode_time += start.elapsed().as_secs_f64();
        assert_eq!(decoded.len(), blocks.len());
        sections += blocks.len();
        let ours = payload(&ours);
        let ratio = ours as f64 / theirs as f64;
        println!("{name:<28} {theirs:>10} {ours:>10} {ratio:>7.3}");
        total_theirs += theirs;
        total_ours += ours;
        if n[0] == 4096 {
            at_4096_theirs += theirs;
            at_4096_ours += ours;
            if worst.as_ref().is_none_or(|(r, _)| ratio > *r) {
                worst = Some((ratio, name.clone()));
            }
        }
    }
    println!(
        "all files: ls-qpack {total_theirs} B, ours {total_ours} B, ratio {:.3}",
        total_ours as f64 / total_theirs as f64
    );
    println!(
        "table size 4096: ls-qpack {at_4096_theirs} B, ours {at_4096_ours} B, ratio {:.3}; worst file {:?}",
        at_4096_ours as f64 / at_4096_theirs as f64,
        worst
    );
    println!(
        "speed: {sections} sections encoded in {encode_time:.3} s ({:.0} ns each); ls-qpack's decoded in {decode_time:.3} s ({:.0} ns each)",
        encode_time * 1e9 / sections as f64,
        decode_time * 1e9 / sections as f64
    );
}
