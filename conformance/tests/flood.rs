//! Each flood attack for a short while against an in-process server with
//! default settings: genuine clients must still connect and GET a file.
//!
//! Verdicts count successes, never time: a genuine attempt fails only when
//! it has not completed within a generous timeout while the flood goes on.
//! The attacks are paced (`RATE`) to what a server that spends little on
//! each hostile datagram absorbs even in a debug build on a busy machine,
//! so that a failure means the server spends too much, not that the box
//! is slow. The seed comes from `FLOOD_SEED` (default 1) and is printed.
//!
//! Before the server authenticated Initials before keeping state,
//! answered with Retry under load and capped what each peer can queue
//! (DESIGN.md "Hostile input"), spoofed and undecryptable Initials and
//! empty DATAGRAM frames starved genuine clients or grew the server by
//! tens of MiB here.

use std::sync::Mutex;
use std::time::Duration;

use conformance::flood::{self, Attack, FrameFlood, InProcessServer, Options, Report};

/// Attacker datagrams per second, for attacks one datagram of which costs
/// a defended server a table lookup or a key derivation at most.
const RATE: u64 = 5000;
/// Attacker datagrams per second for frame floods: each packet carries
/// hundreds of frames that a server must parse, however well defended.
const FRAME_RATE: u64 = 2000;
/// How much the process's resident set may grow during a flood: the
/// attacker sends a few thousand datagrams, and every queue it can fill
/// must have a byte and a count bound.
const MAX_GROWTH_MIB: u64 = 16;

/// One flood at a time: two would share two cores and each other's CPU.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn seed() -> u64 {
    std::env::var("FLOOD_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

fn flood(attack: Attack) -> Report {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seed = seed();
    let server = InProcessServer::start(seed).expect("the in-process server starts");
    let mut options = Options::new(server.addr(), server.trust());
    options.attack = attack;
    options.seed = seed;
    options.rate = Some(if let Attack::Frames(_) = attack { FRAME_RATE } else { RATE });
    options.warmup = Duration::from_millis(300);
    options.duration = Duration::from_millis(1500);
    options.client_interval = Duration::from_millis(100);
    options.client_timeout = Duration::from_secs(5);
    options.get = Some("/small.txt".into());
    options.sources = 64;
    options.server = server.watched();
    let report = flood::run(&options).expect("the flood runs");
    println!("seed {seed} (FLOOD_SEED)\n{}", flood::table(std::slice::from_ref(&report)));
    report
}

/// Genuine clients made their attempts and at least 90% of them did the
/// handshake and the GET; the attacker did send; the server's memory
/// stayed bounded.
fn assert_served(report: &Report) {
    let g = &report.genuine;
    assert!(g.attempts >= 10, "{}: only {} genuine attempts", report.attack, g.attempts);
    assert!(
        report.success_rate() >= 0.9,
        "{}: {} of {} genuine attempts succeeded ({:?})",
        report.attack,
        g.successes,
        g.attempts,
        g.failures
    );
    if report.attack != Attack::None {
        assert!(report.attacker.packets > 0, "{}: the attacker sent nothing", report.attack);
    }
    if let Attack::Frames(_) = report.attack {
        assert!(report.attacker.connections > 0, "{}: the attacker never connected", report.attack);
    }
    // In process, the figure includes the attacker and the clients, which
    // hold little.
    let usage = report.server.expect("the server thread is watched");
    let growth = usage.max_rss_kib.saturating_sub(usage.start_rss_kib) / 1024;
    assert!(
        growth <= MAX_GROWTH_MIB,
        "{}: the resident set grew by {growth} MiB ({} packets sent)",
        report.attack,
        report.attacker.packets
    );
}

#[test]
fn genuine_clients_alone() {
    let report = flood(Attack::None);
    assert_served(&report);
    assert_eq!(report.genuine.successes, report.genuine.attempts, "{:?}", report.genuine.failures);
}

#[test]
fn undecryptable_initials() {
    assert_served(&flood(Attack::InitialGarbage));
}

#[test]
fn spoofed_initials_that_never_complete() {
    assert_served(&flood(Attack::SpoofedInitials));
}

#[test]
fn short_header_garbage() {
    assert_served(&flood(Attack::ShortGarbage));
}

#[test]
fn zero_length_datagram_frames() {
    assert_served(&flood(Attack::Frames(FrameFlood::Datagram)));
}

#[test]
fn ping_frames() {
    assert_served(&flood(Attack::Frames(FrameFlood::Ping)));
}

#[test]
fn path_challenge_frames() {
    assert_served(&flood(Attack::Frames(FrameFlood::PathChallenge)));
}

#[test]
fn reset_stream_frames() {
    assert_served(&flood(Attack::Frames(FrameFlood::ResetStream)));
}

#[test]
fn new_connection_id_frames() {
    assert_served(&flood(Attack::Frames(FrameFlood::NewConnectionId)));
}

/// The tool refuses to send anywhere but loopback.
#[test]
fn non_loopback_targets_are_refused() {
    let options = Options::new("192.0.2.1:443".parse().unwrap(), flood::Trust::Any);
    let error = flood::run(&options).unwrap_err();
    assert!(error.contains("only loopback targets"), "{error}");
}
