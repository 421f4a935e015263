//! Trace replay (docs/traces.md): the committed corpus replays byte for
//! byte; traces recorded now, against our own endpoints and against aioquic
//! and ngtcp2, replay without the peers; an altered trace names the
//! datagram that differs and decodes both.
//!
//! The fresh recordings need the interop peers (`bash
//! conformance/peers/install.sh`, which `scripts/test` runs) and the `quic`
//! binary built from this code (`cargo test --workspace` builds it); without
//! the peers the test fails, naming the installer.

use std::fs;
use std::path::{Path, PathBuf};

use conformance::matrix::endpoint::find_or_build_quic;
use conformance::peers::{PeerEnv, ScratchDir};
use conformance::traces::{Recorder, SCENARIOS, check_replay, corpus_dir, write_www};
use quic_mio::socket::trace::{Direction, TraceItem, read};
use quic_mio::tool::ReplayOptions;

fn corpus() -> Vec<PathBuf> {
    let mut traces: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("conformance/traces exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcapng"))
        .collect();
    traces.sort();
    traces
}

/// Every committed trace replays identically. When a change is meant to
/// alter what the stack sends, re-record the corpus with
/// `cargo run -p conformance --release -- record-traces` and commit it.
#[test]
fn the_committed_traces_replay_byte_for_byte() {
    let traces = corpus();
    for scenario in SCENARIOS {
        for side in ["client", "server"] {
            let name = format!("{scenario}_{side}.pcapng");
            assert!(
                traces.iter().any(|t| t.file_name().is_some_and(|n| n == name.as_str())),
                "conformance/traces lacks {name}"
            );
        }
    }
    // The served files are generated; check the committed ones match.
    let www = corpus_dir().join("www");
    let scratch = ScratchDir::new("traces-www").unwrap();
    write_www(scratch.path()).unwrap();
    for entry in fs::read_dir(scratch.path()).unwrap() {
        let path = entry.unwrap().path();
        let committed = www.join(path.file_name().unwrap());
        assert_eq!(fs::read(&path).unwrap(), fs::read(&committed).unwrap(), "{committed:?}");
    }
    let mut failures = Vec::new();
    for trace in &traces {
        match check_replay(trace, &www) {
            Ok(line) => eprintln!("{}: {line}", trace.display()),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} traces differ (if the change is meant to alter the wire, re-record: \
         cargo run -p conformance --release -- record-traces):\n{}",
        failures.len(),
        traces.len(),
        failures.join("\n")
    );
}

/// Traces recorded now (our client and server with each other, through a
/// lossy relay, with Retry, key update, a refused request, and with aioquic
/// and ngtcp2) each replay identically; the peers are stopped by then.
#[test]
fn traces_recorded_now_against_every_peer_replay_without_them() {
    let env = PeerEnv::load().unwrap_or_else(|e| panic!("interop peers missing: {e}"));
    let quic = find_or_build_quic().unwrap_or_else(|e| panic!("{e}"));
    let out = ScratchDir::new("traces-fresh").unwrap();
    let recorder = Recorder::new(quic, &env, out.path()).unwrap();
    let written = recorder.record(&SCENARIOS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written.len(), SCENARIOS.len() * 2);
    for (trace, line) in &written {
        assert!(line.starts_with("identical: "), "{}: {line}", trace.display());
        eprintln!("{}: {line}", trace.display());
    }
}

/// The byte offset of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A trace whose third outbound datagram was altered replays up to it,
/// then names it, decodes the recorded and the replayed datagram with the
/// trace's secrets, and gives the first differing byte.
#[test]
fn an_altered_datagram_is_named_and_both_versions_decoded() {
    let original = corpus_dir().join("handshake_client.pcapng");
    let mut bytes = fs::read(&original).unwrap();
    let items = read(&bytes).unwrap();
    let third = items
        .iter()
        .filter_map(|i| match i {
            TraceItem::Datagram(d) if d.direction == Direction::Outbound => Some(d),
            _ => None,
        })
        .nth(2)
        .expect("three datagrams out");
    let at = find(&bytes, &third.payload).expect("the payload is in the file");
    // A byte near the end: inside the AEAD tag of the last packet.
    let offset = third.payload.len() - 3;
    bytes[at + offset] ^= 0x40;
    let scratch = ScratchDir::new("traces-altered").unwrap();
    let altered: &Path = &scratch.path().join("altered.pcapng");
    fs::write(altered, &bytes).unwrap();
    let options = ReplayOptions { root: None };
    let (replayed, report) = conformance::replay::replay(altered, &options).unwrap();
    assert!(!replayed.report.identical(), "{report}");
    assert_eq!(replayed.report.matched, 2, "{report}");
    let last = report.lines().last().unwrap();
    assert!(last.starts_with("differs at outbound datagram 3: the bytes differ"), "{report}");
    assert!(report.contains("recorded datagram 3"), "{report}");
    assert!(report.contains("replayed datagram"), "{report}");
    assert!(report.contains(&format!("first differing byte: offset {offset}")), "{report}");
    // The replayed one opens with the trace's keys; the altered one not.
    assert!(report.contains("no key in the trace opens it"), "{report}");
    assert!(report.contains("pn "), "frames of the replayed datagram: {report}");
}

/// A file that is not a trace of the quic tool is refused with a reason.
#[test]
fn files_that_are_not_replayable_traces_are_refused() {
    let scratch = ScratchDir::new("traces-bad").unwrap();
    let path = scratch.path().join("bad.pcapng");
    fs::write(&path, b"\x0a\x0d\x0d\x0a garbage").unwrap();
    let err = quic_mio::tool::replay(&path, &ReplayOptions::default()).unwrap_err();
    assert!(err.contains("malformed trace"), "{err}");
    let missing = quic_mio::tool::replay(&scratch.path().join("none"), &ReplayOptions::default());
    assert!(missing.unwrap_err().contains("cannot read"));
}
