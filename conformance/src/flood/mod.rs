//! A flood of hostile traffic at a QUIC server on loopback while genuine
//! clients connect: whether the server's defences (DESIGN.md "Hostile
//! input"; RFC 9000 §8, §21) keep it serving, and what the flood costs it.
//!
//! [`run`] floods one target with one [`Attack`] for a while; meanwhile
//! genuine clients start a connection every interval (a handshake, and a
//! GET if asked) and the server process's CPU time and memory are sampled
//! from /proc. The `flood` binary is the command line over it; the tests
//! in `tests/flood.rs` run each attack briefly against an
//! [`InProcessServer`].
//!
//! Only loopback targets are accepted: the spoofed-source attack binds
//! addresses across 127.0.0.0/8, and none of this belongs on a network.

mod attack;
mod genuine;
mod procstat;
mod target;
mod tls;

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use attack::AttackerStats;
pub use genuine::GenuineStats;
pub use procstat::{ServerUsage, Watched};
pub use target::{InProcessServer, SMALL_FILE_LEN, SpawnedServer, find_quic_binary};
pub use tls::Trust;

/// What the attacker sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attack {
    /// Nothing: the genuine clients alone, for comparison.
    None,
    /// 1200-byte v1 Initials with random DCIDs (8 to 20 bytes) and random
    /// payloads: no valid protection.
    InitialGarbage,
    /// Genuine first Initials from our client code, each from one of many
    /// 127.0.0.0/8 source addresses, never continued.
    SpoofedInitials,
    /// Random bytes with the first bit 0 (short headers), random DCIDs.
    ShortGarbage,
    /// Packets full of one frame type, on an authenticated connection.
    Frames(FrameFlood),
}

/// The frame an authenticated attacker floods with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameFlood {
    /// Zero-length DATAGRAM frames (RFC 9221).
    Datagram,
    /// PING frames.
    Ping,
    /// PATH_CHALLENGE frames, each with fresh data.
    PathChallenge,
    /// RESET_STREAM frames cycling over the streams the server allows.
    ResetStream,
    /// NEW_CONNECTION_ID frames, each retiring all earlier IDs.
    NewConnectionId,
}

impl Attack {
    /// Every attack, without [`Attack::None`].
    pub const ALL: [Attack; 8] = [
        Attack::InitialGarbage,
        Attack::SpoofedInitials,
        Attack::ShortGarbage,
        Attack::Frames(FrameFlood::Datagram),
        Attack::Frames(FrameFlood::Ping),
        Attack::Frames(FrameFlood::PathChallenge),
        Attack::Frames(FrameFlood::ResetStream),
        Attack::Frames(FrameFlood::NewConnectionId),
    ];

    /// The attack's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Attack::None => "none",
            Attack::InitialGarbage => "initial-garbage",
            Attack::SpoofedInitials => "spoofed-initials",
            Attack::ShortGarbage => "short-garbage",
            Attack::Frames(FrameFlood::Datagram) => "frames:datagram",
            Attack::Frames(FrameFlood::Ping) => "frames:ping",
            Attack::Frames(FrameFlood::PathChallenge) => "frames:path-challenge",
            Attack::Frames(FrameFlood::ResetStream) => "frames:reset-stream",
            Attack::Frames(FrameFlood::NewConnectionId) => "frames:new-connection-id",
        }
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Attack {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        std::iter::once(Attack::None).chain(Attack::ALL).find(|a| a.name() == s).ok_or_else(|| {
            let names: Vec<_> = Attack::ALL.iter().map(|a| a.name()).collect();
            format!("unknown attack {s:?}; known: none, {}", names.join(", "))
        })
    }
}

/// One flood run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server; must be a loopback address.
    pub target: SocketAddr,
    /// The name the clients ask for (SNI, certificate check).
    pub server_name: String,
    /// Whose certificates the clients accept.
    pub trust: Trust,
    /// What to flood with.
    pub attack: Attack,
    /// How long the genuine clients keep starting connections.
    pub duration: Duration,
    /// How long the flood runs before the genuine clients start.
    pub warmup: Duration,
    /// The attacker's datagrams per second; `None`: as fast as it can.
    pub rate: Option<u64>,
    /// The attacker stops after this many datagrams.
    pub count: Option<u64>,
    /// Seeds the attacker's randomness.
    pub seed: u64,
    /// A genuine connection starts this often.
    pub client_interval: Duration,
    /// A genuine attempt not done after this long has failed.
    pub client_timeout: Duration,
    /// The path genuine clients GET after the handshake; `None`: handshake only.
    pub get: Option<String>,
    /// Spoofed source addresses for [`Attack::SpoofedInitials`].
    pub sources: usize,
    /// The server process (or thread) whose CPU and memory are reported.
    pub server: Option<Watched>,
}

impl Options {
    /// Defaults: no attack, 3 s of genuine clients after 200 ms of flood,
    /// unlimited rate, a client every 50 ms with a 3 s timeout, handshakes
    /// only, 256 spoofed sources, seed 1.
    pub fn new(target: SocketAddr, trust: Trust) -> Self {
        Self {
            target,
            server_name: "localhost".into(),
            trust,
            attack: Attack::None,
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(200),
            rate: None,
            count: None,
            seed: 1,
            client_interval: Duration::from_millis(50),
            client_timeout: Duration::from_secs(3),
            get: None,
            sources: 256,
            server: None,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The attack.
    pub attack: Attack,
    /// How long the attacker ran.
    pub elapsed: Duration,
    /// What the attacker sent.
    pub attacker: AttackerStats,
    /// What the genuine clients saw.
    pub genuine: GenuineStats,
    /// What the server used, when it was watched.
    pub server: Option<ServerUsage>,
}

impl Report {
    /// The genuine clients' successes per attempt.
    pub fn success_rate(&self) -> f64 {
        self.genuine.success_rate()
    }
}

/// Refuses anything but a loopback address.
pub fn check_target(target: SocketAddr) -> Result<(), String> {
    if target.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!("refusing to flood {target}: only loopback targets (127.0.0.0/8, ::1)"))
    }
}

/// Floods `options.target` with `options.attack` while genuine clients
/// connect; returns once the genuine clients are done (at the latest
/// warm-up + duration + client timeout, and a little). Every loop in it is
/// bounded by that time.
pub fn run(options: &Options) -> Result<Report, String> {
    check_target(options.target)?;
    let config = tls::client_config(&options.trust)?;
    let start = Instant::now();
    let begin = start + options.warmup;
    let end = begin + options.duration;
    let hard_deadline = end + options.client_timeout + Duration::from_secs(1);
    let attacker = attack::Attacker::new(
        options.attack,
        options.target,
        options.server_name.clone(),
        config.clone(),
        options.seed,
        options.rate,
        options.count,
        options.sources,
        hard_deadline,
    )?;
    let mut sampler = options.server.map(procstat::Sampler::start);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let attack_thread = std::thread::Builder::new()
        .name("flood-attacker".into())
        .spawn(move || attacker.run(&flag))
        .map_err(|e| format!("cannot start the attacker: {e}"))?;
    let plan = genuine::Plan {
        target: options.target,
        server_name: options.server_name.clone(),
        config,
        begin,
        end,
        interval: options.client_interval.max(Duration::from_millis(1)),
        timeout: options.client_timeout,
        get: options.get.clone(),
    };
    let genuine_thread = std::thread::Builder::new()
        .name("flood-genuine".into())
        .spawn(move || genuine::run(&plan))
        .map_err(|e| format!("cannot start the genuine clients: {e}"))?;
    while !genuine_thread.is_finished() && Instant::now() < hard_deadline {
        if let Some(s) = &mut sampler {
            s.sample();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let genuine = genuine_thread.join().map_err(|_| "the genuine clients panicked")?;
    stop.store(true, Ordering::Relaxed);
    let attacker = attack_thread.join().map_err(|_| "the attacker panicked")?;
    let elapsed = start.elapsed();
    Ok(Report {
        attack: options.attack,
        elapsed,
        attacker,
        genuine: genuine?,
        server: sampler.map(|s| s.finish()),
    })
}

/// The `q`-quantile (0 to 1) of `samples`, nearest rank.
pub fn quantile(samples: &[Duration], q: f64) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

/// The summary table of `reports`, one row per attack, then the reasons
/// for failures and for the attacker's closed connections.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<25} {:>9} {:>8} {:>8} {:>9} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "attack",
        "pkts",
        "MB",
        "pps",
        "ok/tries",
        "rate",
        "hs",
        "hs p50",
        "hs p99",
        "hs max",
        "get p50",
        "srv cpu",
        "srv +rss"
    );
    for r in reports {
        let g = &r.genuine;
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        let lat = &g.handshake_latencies;
        let (cpu, rss) = match r.server {
            Some(u) => (
                format!("{:.2}s", u.cpu_seconds),
                format!("+{:.1}MiB", u.max_rss_kib.saturating_sub(u.start_rss_kib) as f64 / 1024.0),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<25} {:>9} {:>8.1} {:>8.0} {:>9} {:>6.2} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
            r.attack.name(),
            r.attacker.packets,
            r.attacker.bytes as f64 / 1e6,
            r.attacker.packets as f64 / secs,
            format!("{}/{}", g.successes, g.attempts),
            r.success_rate(),
            g.handshakes,
            ms(quantile(lat, 0.5)),
            ms(quantile(lat, 0.99)),
            ms(lat.iter().max().copied()),
            ms(quantile(&g.get_latencies, 0.5)),
            cpu,
            rss,
        );
    }
    let _ = writeln!(
        out,
        "(latencies in ms; ok/tries: genuine attempts that completed the handshake{}; srv +rss: \
         how far the server's resident set grew, at its largest)",
        if reports.iter().any(|r| !r.genuine.get_latencies.is_empty()) {
            " and the GET"
        } else {
            ""
        }
    );
    for r in reports {
        for (reason, n) in &r.genuine.failures {
            let _ = writeln!(out, "  {}: {n} genuine attempt(s) failed: {reason}", r.attack);
        }
        for (reason, n) in &r.attacker.closes {
            let _ = writeln!(out, "  {}: attacker connection x{n}: {reason}", r.attack);
        }
        if r.attacker.connections > 0 {
            let _ = writeln!(
                out,
                "  {}: the attacker made {} authenticated connection(s)",
                r.attack, r.attacker.connections
            );
        }
        if r.attacker.send_errors > 0 {
            let _ =
                writeln!(out, "  {}: {} attacker sends failed", r.attack, r.attacker.send_errors);
        }
        if let Some(u) = r.server {
            let _ = writeln!(
                out,
                "  {}: server peak resident set since it started (VmHWM) {:.1} MiB",
                r.attack,
                u.hwm_kib as f64 / 1024.0
            );
        }
    }
    out
}
