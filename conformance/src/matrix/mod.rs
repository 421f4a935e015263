//! The interop matrix: the QUIC interop runner's test cases, run client →
//! relay → server for every pair of endpoints, each judged the way the
//! runner judges it (downloaded files, handshakes counted from the server's
//! Initial packets, versions, and packet-level conditions read from the
//! relay's records with quic-proto's decoder and the key log), not by the
//! client's exit status alone.

pub mod certs;
pub mod endpoint;
pub mod trace;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use quic_proto::packet::LongType;

use crate::peers::{PeerError, ScratchDir};
use crate::relay::{Direction, Fate, Relay, RelayConfig, RelayDir};
use endpoint::{ClientSpec, Kind, Programs, Role, Server, ServerSpec};
use trace::{Trace, client_hello_suites};

/// A test case of the interop runner, by its name there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Case {
    /// One small file; exactly one handshake, no Retry, QUIC v1.
    Handshake,
    /// Several large files on one connection.
    Transfer,
    /// A handshake over a 1.5 s round trip: the client's Initial is retransmitted.
    LongRtt,
    /// Only TLS_CHACHA20_POLY1305_SHA256 offered.
    ChaCha20,
    /// 1,999 small files on one connection.
    Multiplexing,
    /// The server sends a Retry and the client uses its token.
    Retry,
    /// A second connection resumes the first's TLS session.
    Resumption,
    /// A second connection sends 0-RTT data.
    ZeroRtt,
    /// Files over HTTP/3.
    Http3,
    /// A transfer across repeated blackouts.
    Blackhole,
    /// The client updates keys; both sides send key phase 1.
    KeyUpdate,
    /// ECN marks and ACK-ECN counts.
    Ecn,
    /// The server stays within 3x of what it received before validation.
    AmplificationLimit,
    /// Many handshakes at 30 % loss, one file each.
    HandshakeLoss,
    /// A transfer at 2 % loss.
    TransferLoss,
    /// Many handshakes at 30 % corruption.
    HandshakeCorruption,
    /// A transfer at 2 % corruption.
    TransferCorruption,
    /// A transfer over IPv6.
    Ipv6,
    /// Compatible version negotiation from v1 to v2 (RFC 9368, RFC 9369).
    V2,
    /// The client's port changes during a transfer.
    RebindPort,
    /// The client's address changes during a transfer.
    RebindAddr,
    /// The client migrates actively.
    ConnectionMigration,
    /// Throughput of a 10 MB download.
    Goodput,
    /// Throughput against competing TCP traffic.
    CrossTraffic,
}

impl Case {
    /// Every case, in the runner's order.
    pub const ALL: [Case; 24] = [
        Case::Handshake,
        Case::Transfer,
        Case::LongRtt,
        Case::ChaCha20,
        Case::Multiplexing,
        Case::Retry,
        Case::Resumption,
        Case::ZeroRtt,
        Case::Http3,
        Case::Blackhole,
        Case::KeyUpdate,
        Case::Ecn,
        Case::AmplificationLimit,
        Case::HandshakeLoss,
        Case::TransferLoss,
        Case::HandshakeCorruption,
        Case::TransferCorruption,
        Case::Ipv6,
        Case::V2,
        Case::RebindPort,
        Case::RebindAddr,
        Case::ConnectionMigration,
        Case::Goodput,
        Case::CrossTraffic,
    ];

    /// The runner's name.
    pub fn name(self) -> &'static str {
        match self {
            Case::Handshake => "handshake",
            Case::Transfer => "transfer",
            Case::LongRtt => "longrtt",
            Case::ChaCha20 => "chacha20",
            Case::Multiplexing => "multiplexing",
            Case::Retry => "retry",
            Case::Resumption => "resumption",
            Case::ZeroRtt => "zerortt",
            Case::Http3 => "http3",
            Case::Blackhole => "blackhole",
            Case::KeyUpdate => "keyupdate",
            Case::Ecn => "ecn",
            Case::AmplificationLimit => "amplificationlimit",
            Case::HandshakeLoss => "handshakeloss",
            Case::TransferLoss => "transferloss",
            Case::HandshakeCorruption => "handshakecorruption",
            Case::TransferCorruption => "transfercorruption",
            Case::Ipv6 => "ipv6",
            Case::V2 => "v2",
            Case::RebindPort => "rebind-port",
            Case::RebindAddr => "rebind-addr",
            Case::ConnectionMigration => "connectionmigration",
            Case::Goodput => "goodput",
            Case::CrossTraffic => "crosstraffic",
        }
    }

    /// The case called `name`.
    pub fn parse(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == name)
    }

    /// `Some(why)` for cases the matrix itself cannot run yet (whatever
    /// the endpoints support); shown as `—`.
    pub fn not_implemented(self) -> Option<&'static str> {
        match self {
            Case::Ecn => Some(
                "the relay does not carry ECN marks and the check needs ACK-ECN frames decrypted",
            ),
            Case::CrossTraffic => {
                Some("needs competing TCP traffic through the relay's bottleneck")
            }
            Case::Resumption | Case::ZeroRtt => Some("no endpoint here reuses sessions yet"),
            Case::ConnectionMigration => {
                Some("no client here migrates actively to a server's preferred address yet")
            }
            _ => None,
        }
    }
}

/// How the matrix runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which endpoints (clients and servers alike).
    pub peers: Vec<Kind>,
    /// Which cases.
    pub cases: Vec<Case>,
    /// Seed of the relay's impairments.
    pub seed: u64,
    /// Smaller files and fewer handshakes, for CI: transfer 1 MB, 5
    /// handshakes under loss instead of 50.
    pub quick: bool,
}

/// What became of one case for one pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed; maybe a figure (goodput).
    Pass(Option<String>),
    /// Which check failed and why.
    Fail(String),
    /// An endpoint lacks the case (the runner's exit code 127).
    Unsupported(String),
    /// The matrix cannot run this case yet.
    NotRun(String),
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Outcome::Pass(None) => "pass".into(),
            Outcome::Pass(Some(f)) => format!("pass {f}"),
            Outcome::Fail(_) => "FAIL".into(),
            Outcome::Unsupported(_) => "unsup".into(),
            Outcome::NotRun(_) => "—".into(),
        }
    }
}

/// One case for one pair.
#[derive(Clone, Debug)]
pub struct Result1 {
    /// The case.
    pub case: Case,
    /// Client.
    pub client: Kind,
    /// Server.
    pub server: Kind,
    /// Verdict.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// Everything a matrix run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The options it ran with.
    pub options: Options,
    /// Every (case, pair).
    pub results: Vec<Result1>,
}

/// What a case asks for.
struct Setup {
    files: Vec<(String, usize)>,
    h3: bool,
    retry: bool,
    chacha20: bool,
    key_update: bool,
    v2: bool,
    ipv6: bool,
    /// One connection per file (the runner's "multiconnect").
    per_file: bool,
    to_server: Direction,
    to_client: Direction,
    timeout: Duration,
    /// The impairment the relay must have applied at least once for the
    /// run to mean anything.
    must_see: Option<Fate>,
    /// Serve with the runner's long certificate chain (amplificationlimit).
    long_chain: bool,
    /// NAT rebinding of the client: first after this long, then every so
    /// often; with a new address too, or only a new port.
    rebind: Option<Rebinding>,
}

/// When and how the relay rebinds the client's mapping.
#[derive(Clone, Copy, Debug)]
struct Rebinding {
    first: Duration,
    every: Duration,
    addr: bool,
}

const KB: usize = 1000;
const MB: usize = 1000 * 1000;

fn lossy(loss: f64, corrupt: f64) -> Direction {
    // The runner's drop-rate / corrupt-rate scenarios: 15 ms each way,
    // datagrams chosen at random, never more than 3 in a row
    // (`--burst_to_server=3 --burst_to_client=3`).
    Direction {
        delay: Duration::from_millis(15),
        loss,
        max_loss_run: Some(3),
        corrupt,
        ..Direction::default()
    }
}

fn setup(case: Case, quick: bool) -> Setup {
    let mut s = Setup {
        files: vec![("hs.bin".into(), KB)],
        h3: false,
        retry: false,
        chacha20: false,
        key_update: false,
        v2: false,
        ipv6: false,
        per_file: false,
        to_server: Direction::default(),
        to_client: Direction::default(),
        timeout: Duration::from_secs(60),
        must_see: None,
        long_chain: false,
        rebind: None,
    };
    let many = |n: usize, size: usize| (0..n).map(|i| (format!("f{i:04}.bin"), size)).collect();
    let conns = if quick { 5 } else { 50 };
    match case {
        Case::Transfer | Case::Ipv6 | Case::Goodput | Case::Blackhole => {
            s.files = if quick {
                vec![("t1.bin".into(), MB)]
            } else if case == Case::Ipv6 {
                vec![("a.bin".into(), 5 * KB), ("b.bin".into(), 10 * KB)]
            } else if matches!(case, Case::Goodput | Case::Blackhole) {
                vec![("g.bin".into(), 10 * MB)]
            } else {
                vec![
                    ("t2.bin".into(), 2 * MB),
                    ("t3.bin".into(), 3 * MB),
                    ("t5.bin".into(), 5 * MB),
                ]
            };
            s.ipv6 = case == Case::Ipv6;
            if case == Case::Blackhole {
                // The runner: 10 Mbit/s, 15 ms each way, 5 s on, 2 s off
                // (a 10 MB file). Quick: 1 MB at 10 Mbit/s (0.8 s) with
                // 300 ms blackouts every 500 ms from 100 ms in.
                let (first, every, off) = if quick { (100, 500, 300) } else { (5000, 7000, 2000) };
                let holes: Vec<_> = (0..20)
                    .map(|i| {
                        let a = Duration::from_millis(first + every * i);
                        (a, a + Duration::from_millis(off))
                    })
                    .collect();
                for d in [&mut s.to_server, &mut s.to_client] {
                    d.delay = Duration::from_millis(15);
                    d.bandwidth = Some(10_000_000 / 8); // bytes per second
                    d.blackholes = holes.clone();
                }
                s.must_see = Some(Fate::Blackholed);
                s.timeout = Duration::from_secs(120);
            }
        }
        Case::LongRtt => {
            // 750 ms each way: the client's first PTO fires before the answer.
            s.to_server.delay = Duration::from_millis(750);
            s.to_client.delay = Duration::from_millis(750);
        }
        Case::ChaCha20 => {
            s.chacha20 = true;
            s.files = vec![("c.bin".into(), if quick { 100 * KB } else { 3 * MB })];
        }
        Case::KeyUpdate => {
            s.key_update = true;
            s.files = vec![("k.bin".into(), if quick { MB } else { 3 * MB })];
        }
        Case::Multiplexing => s.files = many(if quick { 200 } else { 1999 }, 32),
        Case::Retry => {
            s.retry = true;
            s.files = vec![("r.bin".into(), 10 * KB)];
        }
        Case::Http3 => {
            s.h3 = true;
            s.files = vec![
                ("a.bin".into(), 5 * KB),
                ("b.bin".into(), 10 * KB),
                ("c.bin".into(), 500 * KB),
            ];
        }
        Case::V2 => s.v2 = true,
        Case::RebindPort | Case::RebindAddr => {
            // The runner: `rebind --delay=15ms --bandwidth=10Mbps
            // --queue=25 --first-rebind=1s --rebind-freq=5s` over a 10 MB
            // transfer. Quick: 2 MB, first at 300 ms, then every 600 ms.
            let (size, first, every) =
                if quick { (2 * MB, 300, 600) } else { (10 * MB, 1000, 5000) };
            s.files = vec![("rb.bin".into(), size)];
            for d in [&mut s.to_server, &mut s.to_client] {
                d.delay = Duration::from_millis(15);
                d.bandwidth = Some(10_000_000 / 8);
                d.queue = 25 * 1500;
            }
            s.rebind = Some(Rebinding {
                first: Duration::from_millis(first),
                every: Duration::from_millis(every),
                addr: case == Case::RebindAddr,
            });
            s.timeout = Duration::from_secs(60);
        }
        Case::AmplificationLimit => {
            // The runner: a long certificate chain (certs.rs); `droplist --delay=15ms
            // --bandwidth=10Mbps --queue=25 --drops_to_server=2,3,4,5,6,7`:
            // the ClientHello passes, the client's next six datagrams
            // (acknowledgements, retransmissions) do not, so the server
            // sits at its limit with most of its flight unsent.
            s.long_chain = true;
            s.files = vec![("a.bin".into(), 5 * KB)];
            for d in [&mut s.to_server, &mut s.to_client] {
                d.delay = Duration::from_millis(15);
                d.bandwidth = Some(10_000_000 / 8);
                d.queue = 25 * 1500;
            }
            s.to_server.drops = (2..=7).collect();
            s.must_see = Some(Fate::Lost);
        }
        Case::HandshakeLoss | Case::HandshakeCorruption => {
            s.files = many(conns, KB);
            s.per_file = true;
            let (d, fate) = if case == Case::HandshakeLoss {
                (lossy(0.30, 0.0), Fate::Lost)
            } else {
                (lossy(0.0, 0.30), Fate::Corrupted)
            };
            s.must_see = Some(fate);
            s.to_server = d.clone();
            s.to_client = d;
            s.timeout = Duration::from_secs(30);
        }
        Case::TransferLoss | Case::TransferCorruption => {
            s.files = vec![("l.bin".into(), if quick { MB } else { 2 * MB })];
            let (d, fate) = if case == Case::TransferLoss {
                (lossy(0.02, 0.0), Fate::Lost)
            } else {
                (lossy(0.0, 0.02), Fate::Corrupted)
            };
            s.must_see = Some(fate);
            s.to_server = d.clone();
            s.to_client = d;
        }
        _ => {}
    }
    s
}

/// Deterministic file content from a seed.
fn content(seed: u64, name: &str, len: usize) -> Vec<u8> {
    let mut x = seed
        ^ name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs every (case, client, server) of `opts`; `progress` gets each result
/// as it comes.
pub fn run(progs: &Programs, opts: &Options, mut progress: impl FnMut(&Result1)) -> Report {
    let mut results = Vec::new();
    for &case in &opts.cases {
        for &client in &opts.peers {
            for &server in &opts.peers {
                let start = Instant::now();
                let outcome = run_one(progs, opts, case, client, server);
                let r = Result1 { case, client, server, outcome, elapsed: start.elapsed() };
                progress(&r);
                results.push(r);
            }
        }
    }
    Report { options: opts.clone(), results }
}

/// Runs one case for one pair.
pub fn run_one(
    progs: &Programs,
    opts: &Options,
    case: Case,
    client: Kind,
    server: Kind,
) -> Outcome {
    if let Some(why) = case.not_implemented() {
        return Outcome::NotRun(why.into());
    }
    for (kind, role) in [(client, Role::Client), (server, Role::Server)] {
        if let Err(why) = kind.supports(case, role) {
            return Outcome::Unsupported(why);
        }
        if kind == Kind::Quinn && progs.quinn.is_none() {
            return Outcome::Unsupported(
                "quinn-endpoint is not built (cargo build -p conformance --bins)".into(),
            );
        }
    }
    match run_case(progs, opts, case, client, server) {
        Ok(o) => o,
        Err(e) => Outcome::Fail(format!("could not run (seed {}): {e}", opts.seed)),
    }
}

fn run_case(
    progs: &Programs,
    opts: &Options,
    case: Case,
    client: Kind,
    server: Kind,
) -> Result<Outcome, PeerError> {
    let s = setup(case, opts.quick);
    let scratch = ScratchDir::new(&format!("matrix-{}", case.name()))?;
    let dir = scratch.path();
    let www = dir.join("www");
    let out = dir.join("downloads");
    for d in [&www, &out] {
        fs::create_dir_all(d).map_err(|e| PeerError::new(format!("{}: {e}", d.display())))?;
    }
    for (name, len) in &s.files {
        fs::write(www.join(name), content(opts.seed, name, *len))
            .map_err(|e| PeerError::new(format!("writing {name}: {e}")))?;
    }
    let ip = if s.ipv6 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
    let chain = if s.long_chain {
        let chain = certs::long_chain(dir, certs::CHAIN_LEN, opts.seed).map_err(PeerError::new)?;
        Some(chain)
    } else {
        None
    };
    let server_spec = ServerSpec {
        ip,
        www: www.clone(),
        h3: s.h3,
        retry: s.retry,
        keylog: dir.join("server.keys"),
        qlog_dir: dir.join("qlog-server"),
        lifetime: s.timeout * (if s.per_file { s.files.len() as u32 } else { 1 })
            + Duration::from_secs(30),
        cert_and_key: chain.as_ref().map(|c| (c.cert.clone(), c.key.clone())),
    };
    let mut srv = Server::start(server, progs, &server_spec)?;
    let mut cfg = RelayConfig::new(srv.addr(), opts.seed);
    cfg.to_server = s.to_server.clone();
    cfg.to_client = s.to_client.clone();
    let relay = Relay::start(cfg).map_err(|e| PeerError::new(format!("relay: {e}")))?;
    let mut spec = ClientSpec {
        server: relay.addr(),
        paths: s.files.iter().map(|(n, _)| format!("/{n}")).collect(),
        out: out.clone(),
        ca: chain.as_ref().map_or_else(|| progs.env.ca.clone(), |c| c.ca.clone()),
        h3: s.h3,
        chacha20: s.chacha20,
        key_update: s.key_update,
        v2: s.v2,
        keylog: dir.join("client.keys"),
        qlog_dir: dir.join("qlog-client"),
        timeout: s.timeout,
    };
    let start = Instant::now();
    let runs: Vec<Vec<String>> = if s.per_file {
        spec.paths.iter().map(|p| vec![p.clone()]).collect()
    } else {
        vec![spec.paths.clone()]
    };
    let mut failure = None;
    let stop_rebinding = std::sync::atomic::AtomicBool::new(false);
    let rebind_error = std::sync::Mutex::new(None);
    let client_runs = std::thread::scope(|scope| {
        if let Some(r) = s.rebind {
            let (relay, stop, error) = (&relay, &stop_rebinding, &rebind_error);
            scope.spawn(move || rebinder(relay, r, stop, error));
        }
        let mut finished = Vec::new();
        for paths in runs {
            spec.paths = paths;
            let fin = endpoint::run_client(client, progs, &spec);
            let stop = matches!(&fin, Err(_) | Ok(crate::peers::Finished { exit: Some(127), .. }));
            finished.push(fin);
            if stop {
                break;
            }
        }
        stop_rebinding.store(true, std::sync::atomic::Ordering::Relaxed);
        finished
    });
    if let Some(e) = rebind_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(PeerError::new(format!("relay rebinding: {e}")));
    }
    for fin in client_runs {
        let fin = fin?;
        if fin.exit == Some(127) {
            return Ok(Outcome::Unsupported(format!("{} client exited 127", client.name())));
        }
        if !fin.success() && failure.is_none() {
            let panics: Vec<&str> =
                fin.stderr.lines().filter(|l| l.contains("panicked at")).collect();
            failure = Some(format!(
                "client {} (seed {}):\n{}{}",
                fin.status_text(),
                opts.seed,
                panics.iter().map(|l| format!("{l}\n")).collect::<String>(),
                crate::peers::tail(&fin.report(), 30)
            ));
        }
    }
    let elapsed = start.elapsed();
    let records = relay.stop();
    let server_log = srv.stop();
    if let Some(f) = failure {
        return Ok(Outcome::Fail(format!(
            "{f}\nserver log:\n{}",
            crate::peers::tail(&server_log, 15)
        )));
    }
    if let Some(fate) = s.must_see
        && !records.iter().any(|r| r.fate == fate)
    {
        return Ok(Outcome::Fail(format!(
            "scenario: the relay never applied {fate:?}, so the case proved nothing (seed {})",
            opts.seed
        )));
    }
    // Both ends' key logs: a client that writes none still gets its
    // packets read with the server's.
    let keylog = fs::read_to_string(&spec.keylog).unwrap_or_default()
        + &fs::read_to_string(&server_spec.keylog).unwrap_or_default();
    let trace = Trace::new(&records);
    match check(case, &s, &trace, &keylog, &www, &out) {
        Ok(()) => {
            let figure = (case == Case::Goodput).then(|| {
                let bytes: usize = s.files.iter().map(|(_, l)| l).sum();
                format!("{:.1} MB/s", bytes as f64 / MB as f64 / elapsed.as_secs_f64())
            });
            Ok(Outcome::Pass(figure))
        }
        Err(why) => Ok(Outcome::Fail(format!("{why} (seed {})", opts.seed))),
    }
}

/// The runner's checks for `case`, on the relay's trace and the downloads.
fn check(
    case: Case,
    s: &Setup,
    trace: &Trace,
    keylog: &str,
    www: &Path,
    out: &Path,
) -> Result<(), String> {
    check_files(s, www, out)?;
    let want_handshakes = if s.per_file { s.files.len() } else { 1 };
    let got = trace.handshakes();
    if got != want_handshakes {
        return Err(format!(
            "handshakes: expected {want_handshakes}, got {got} (distinct SCIDs of server Initials)"
        ));
    }
    if case == Case::V2 {
        return check_v2(trace);
    }
    let versions = trace.versions(RelayDir::ToClient, LongType::Initial);
    if versions.len() != 1 || !versions.contains(&1) {
        return Err(format!(
            "versions: expected only 0x1 in server Initials, got {}",
            hex_set(&versions)
        ));
    }
    match case {
        Case::Handshake if !trace.retry_tokens().is_empty() => {
            Err("handshake: a Retry was sent".into())
        }
        Case::Retry => {
            let tokens = trace.retry_tokens();
            if tokens.is_empty() {
                return Err("retry: no Retry packet from the server".into());
            }
            if tokens.iter().any(Vec::is_empty) {
                return Err("retry: a Retry packet without a token".into());
            }
            // The runner: walking the client's Initials in order, the first
            // one with a Retry token must come before any that reset the
            // packet number below those sent before the Retry (RFC 9000
            // §17.2.5.3: the client does not reset its packet numbers).
            let mut highest_before = None;
            for (pn, token) in trace.client_initial_numbers() {
                if token.is_empty() {
                    highest_before = Some(highest_before.map_or(pn, |h: u64| h.max(pn)));
                    continue;
                }
                if highest_before.is_some_and(|h| pn <= h) {
                    return Err(format!(
                        "retry: the client reset its packet numbers after the Retry \
                         (Initial {pn} after {})",
                        highest_before.unwrap_or_default()
                    ));
                }
                if tokens.contains(&token) {
                    return Ok(());
                }
            }
            Err("retry: no client Initial carries a Retry token".into())
        }
        Case::LongRtt => {
            let n = trace.client_hellos().len();
            if n < 2 {
                return Err(format!("longrtt: expected at least 2 ClientHellos, got {n}"));
            }
            Ok(())
        }
        Case::ChaCha20 => {
            let hellos = trace.client_hellos();
            let mut suites = std::collections::BTreeSet::new();
            for h in &hellos {
                match client_hello_suites(h) {
                    Some(list) => suites.extend(list),
                    None => return Err("chacha20: a ClientHello did not parse".into()),
                }
            }
            if hellos.is_empty() {
                return Err("chacha20: no ClientHello decrypted from the client's Initials".into());
            }
            if suites.len() != 1 || !suites.contains(&0x1303) {
                return Err(format!("chacha20: expected only 0x1303 offered, got {suites:04x?}"));
            }
            Ok(())
        }
        Case::KeyUpdate => {
            let c = trace.key_phases(keylog, RelayDir::ToServer);
            let sv = trace.key_phases(keylog, RelayDir::ToClient);
            match (c, sv) {
                (Some(c), Some(sv)) if c.1 > 0 && sv.1 > 0 => Ok(()),
                (Some(c), Some(sv)) => Err(format!(
                    "keyupdate: expected key phase 1 from both; client sent {}/{} (phase 0/1), server {}/{}",
                    c.0, c.1, sv.0, sv.1
                )),
                _ => {
                    Err("keyupdate: could not read key phases (key log lacks traffic secrets?)"
                        .into())
                }
            }
        }
        Case::Multiplexing => match trace::server_max_streams_bidi(trace, keylog) {
            Some(n) if n <= 1000 => Ok(()),
            Some(n) => Err(format!(
                "multiplexing: the server's initial_max_streams_bidi is {n}, more than 1000"
            )),
            None => Err("multiplexing: could not read the server's transport parameters \
                         (Handshake packets not decrypted with the key log)"
                .into()),
        },
        Case::AmplificationLimit => check_amplification(trace, keylog, s),
        Case::RebindPort | Case::RebindAddr => check_rebinding(trace, keylog, case),
        Case::Ipv6 => {
            // The relay and server listen on ::1 only, so every packet of the
            // trace crossed IPv6; one is enough to know it ran.
            if trace.packets.is_empty() {
                return Err("ipv6: no packets".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Rebinds the relay's client mapping as `r` says until `stop`; the first
/// error goes to `error`.
fn rebinder(
    relay: &Relay,
    r: Rebinding,
    stop: &std::sync::atomic::AtomicBool,
    error: &std::sync::Mutex<Option<String>>,
) {
    let start = Instant::now();
    let mut next = r.first;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if start.elapsed() >= next {
            let result = if r.addr { relay.rebind_addr() } else { relay.rebind_port() };
            if let Err(e) = result {
                *error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                return;
            }
            next += r.every;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The runner's rebind-port and rebind-addr checks: the server used more
/// than one path (rebind-addr: more than one client address); the first
/// server datagram on each new path carries a PATH_CHALLENGE; the client
/// answered every challenge with a PATH_RESPONSE.
fn check_rebinding(trace: &Trace, keylog: &str, case: Case) -> Result<(), String> {
    let name = case.name();
    let server_frames = trace::path_frames(trace, keylog, RelayDir::ToClient);
    let client_frames = trace::path_frames(trace, keylog, RelayDir::ToServer);
    let mut paths = std::collections::BTreeSet::new();
    let mut last = None;
    let mut challenges = Vec::new();
    for (i, r) in trace.records.iter().enumerate() {
        if r.dir != RelayDir::ToClient {
            continue;
        }
        let Some(path) = r.mapping else { continue };
        match last {
            None => last = Some(path),
            Some(l) if l != path && !paths.contains(&path) => {
                paths.insert(l);
                last = Some(path);
                let Some((c, _)) = server_frames.get(&i).filter(|(c, _)| !c.is_empty()) else {
                    // Say where the challenge came, if it did, and how
                    // many server datagrams opened at all.
                    let later = trace.records[i..]
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.dir == RelayDir::ToClient)
                        .position(|(k, r)| {
                            r.mapping == Some(path)
                                && server_frames.get(&(i + k)).is_some_and(|(c, _)| !c.is_empty())
                        });
                    let opened = server_frames.len();
                    return Err(format!(
                        "{name}: the server's first datagram to the new path {path} carries no \
                         PATH_CHALLENGE (one came {} server datagrams later; {opened} server \
                         datagrams held path frames)",
                        later.map_or("no".to_owned(), |n| n.to_string())
                    ));
                };
                challenges.extend(c.iter().copied());
            }
            Some(_) => {}
        }
    }
    paths.extend(last);
    if paths.len() <= 1 {
        return Err(format!("{name}: the server saw only one path ({paths:?}); no rebinding?"));
    }
    if case == Case::RebindAddr {
        let ips: std::collections::BTreeSet<_> = paths.iter().map(|p| p.ip()).collect();
        if ips.len() <= 1 {
            return Err(format!("{name}: the server saw only one client address ({ips:?})"));
        }
    }
    let responses: std::collections::BTreeSet<[u8; 8]> =
        client_frames.values().flat_map(|(_, r)| r.iter().copied()).collect();
    let unanswered: Vec<_> = challenges.iter().filter(|c| !responses.contains(*c)).collect();
    if !unanswered.is_empty() {
        return Err(format!(
            "{name}: PATH_CHALLENGE without a PATH_RESPONSE from the client: {unanswered:02x?}"
        ));
    }
    Ok(())
}

/// The runner's amplificationlimit check: the server sent at least 7,500
/// bytes of Handshake CRYPTO data (so it used the long chain), and, in the
/// order the server saw datagrams, no server datagram before the client's
/// first Handshake packet reached 4x the client's Initial bytes not yet
/// answered (3x is the limit, RFC 9000 §8.1; the runner lets 3-4x slide).
fn check_amplification(trace: &Trace, keylog: &str, s: &Setup) -> Result<(), String> {
    let end = trace::server_handshake_crypto_end(trace, keylog)
        .ok_or("amplificationlimit: no server Handshake packet decrypted with the key log")?;
    if end < 7500 {
        return Err(format!(
            "amplificationlimit: the server sent only {end} bytes of Handshake CRYPTO data \
             (not the long certificate chain?)"
        ));
    }
    amplification_walk(&trace.records, s.to_server.delay)
}

/// The runner's amplification accounting over the relay's records.
/// Server-side order: the client's datagrams arrive `to_server_delay`
/// after the relay took them; the server's leave when the relay got them.
fn amplification_walk(
    records: &[crate::relay::Record],
    to_server_delay: Duration,
) -> Result<(), String> {
    let mut events: Vec<(Duration, &crate::relay::Record)> = records
        .iter()
        .filter(|r| r.dir == RelayDir::ToClient || r.fate == Fate::Delivered)
        .map(|r| {
            let at = if r.dir == RelayDir::ToServer { r.at + to_server_delay } else { r.at };
            (at, r)
        })
        .collect();
    events.sort_by_key(|(at, _)| *at);
    let (mut tolerance, mut client, mut server) = (0i64, 0, 0);
    for (_, r) in events {
        let size = r.data.len() as i64;
        match r.dir {
            RelayDir::ToServer => {
                let kinds = trace::long_types(&r.data);
                if kinds.contains(&LongType::Handshake) {
                    return Ok(());
                }
                if kinds.contains(&LongType::Initial) {
                    client += size;
                    tolerance += 4 * size;
                }
            }
            RelayDir::ToClient => {
                server += size;
                if size >= tolerance {
                    return Err(format!(
                        "amplificationlimit: the server sent {server} bytes (a {size}-byte \
                         datagram with {tolerance} left of 4x) before the client's address was \
                         validated, having received {client} bytes of client Initials"
                    ));
                }
                tolerance -= size;
            }
        }
    }
    Err("amplificationlimit: the client never sent a Handshake packet".into())
}

fn hex_set(v: &std::collections::BTreeSet<u32>) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:#x}")).collect();
    format!("{{{}}}", items.join(", "))
}

fn check_v2(trace: &Trace) -> Result<(), String> {
    const V1: u32 = 1;
    const V2: u32 = 0x6b33_43cf;
    let ci = trace.versions(RelayDir::ToServer, LongType::Initial);
    if !ci.contains(&V1) {
        return Err(format!("v2: client Initials should start with v1, got {}", hex_set(&ci)));
    }
    let si = trace.versions(RelayDir::ToClient, LongType::Initial);
    if !si.contains(&V2) {
        return Err(format!("v2: server Initials should be v2, got {}", hex_set(&si)));
    }
    for (who, dir) in [("client", RelayDir::ToServer), ("server", RelayDir::ToClient)] {
        let hs = trace.versions(dir, LongType::Handshake);
        if hs.len() != 1 || !hs.contains(&V2) {
            return Err(format!(
                "v2: {who} Handshake packets should all be v2, got {}",
                hex_set(&hs)
            ));
        }
    }
    Ok(())
}

fn check_files(s: &Setup, www: &Path, out: &Path) -> Result<(), String> {
    for (name, _) in &s.files {
        let want = fs::read(www.join(name)).map_err(|e| format!("files: {name}: {e}"))?;
        let got =
            fs::read(out.join(name)).map_err(|_| format!("files: {name} was not downloaded"))?;
        if got != want {
            return Err(format!(
                "files: {name} differs: {} bytes, expected {}",
                got.len(),
                want.len()
            ));
        }
    }
    Ok(())
}

impl Report {
    /// Passed and failed counts.
    pub fn counts(&self) -> (usize, usize) {
        let pass = self.results.iter().filter(|r| matches!(r.outcome, Outcome::Pass(_))).count();
        let fail = self.results.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_))).count();
        (pass, fail)
    }

    /// The table (Markdown): rows are cases, columns client→server pairs.
    pub fn table(&self) -> String {
        let pairs: Vec<(Kind, Kind)> = self
            .options
            .peers
            .iter()
            .flat_map(|c| self.options.peers.iter().map(move |s| (*c, *s)))
            .collect();
        let cells: BTreeMap<(Case, Kind, Kind), &Outcome> =
            self.results.iter().map(|r| ((r.case, r.client, r.server), &r.outcome)).collect();
        let mut t = String::from("| case |");
        for (c, s) in &pairs {
            let _ = write!(t, " {}→{} |", c.name(), s.name());
        }
        t.push_str("\n|---|");
        for _ in &pairs {
            t.push_str("---|");
        }
        t.push('\n');
        for case in &self.options.cases {
            let _ = write!(t, "| {} |", case.name());
            for (c, s) in &pairs {
                let cell = cells.get(&(*case, *c, *s)).map(|o| o.cell()).unwrap_or_default();
                let _ = write!(t, " {cell} |");
            }
            t.push('\n');
        }
        t
    }

    /// Why each failure failed, and what was unsupported or not run.
    pub fn notes(&self) -> String {
        let mut failed = String::new();
        let mut unsup = BTreeMap::<String, Vec<String>>::new();
        for r in &self.results {
            let pair = format!("{} {}→{}", r.case.name(), r.client.name(), r.server.name());
            let case = r.case.name().to_owned();
            match &r.outcome {
                Outcome::Fail(why) => {
                    let _ = writeln!(failed, "- FAIL {pair}: {}", why.replace('\n', "\n    "));
                }
                Outcome::Unsupported(why) => {
                    let cases = unsup.entry(format!("unsupported: {why}")).or_default();
                    if !cases.contains(&case) {
                        cases.push(case);
                    }
                }
                Outcome::NotRun(why) => {
                    unsup
                        .entry(format!("not implemented in the matrix ({}): {why}", r.case.name()))
                        .or_default();
                }
                Outcome::Pass(_) => {}
            }
        }
        let mut t = failed;
        for (why, cases) in unsup {
            if cases.is_empty() {
                let _ = writeln!(t, "- {why}");
            } else {
                let _ = writeln!(t, "- {why} (cases: {})", cases.join(", "));
            }
        }
        t
    }

    /// The closing line: `N passed, M failed`, unsupported counted apart.
    pub fn summary(&self) -> String {
        let (p, f) = self.counts();
        let u =
            self.results.iter().filter(|r| matches!(r.outcome, Outcome::Unsupported(_))).count();
        let n = self.results.iter().filter(|r| matches!(r.outcome, Outcome::NotRun(_))).count();
        format!("({u} unsupported, {n} not run)\n{p} passed, {f} failed")
    }
}

#[cfg(test)]
mod tests;
