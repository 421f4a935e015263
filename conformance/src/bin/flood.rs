//! `flood`: hostile traffic at a QUIC server on loopback while genuine
//! clients connect; prints what got through and what it cost the server.
//!
//! ```text
//! cargo run -p conformance --release --bin flood -- --spawn-server
//! cargo run -p conformance --release --bin flood -- --target 127.0.0.1:4433 \
//!     --server-pid PID --attack initial-garbage,frames:ping --rate 20000
//! ```
//!
//! Exit codes: 0 every run kept the genuine clients' success rate at or
//! above `--min-success`; 1 one did not; 2 bad usage or a setup failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conformance::flood::{
    self, Attack, InProcessServer, Options, SpawnedServer, Trust, Watched, find_quic_binary,
};
use quic_proto::{RandomSource, SystemRandom};

#[derive(Parser, Debug)]
#[command(
    name = "flood",
    about = "Flood a QUIC server on loopback while genuine clients connect",
    after_help = "Attacks: none, initial-garbage, spoofed-initials, short-garbage, \
                  frames:datagram, frames:ping, frames:path-challenge, frames:reset-stream, \
                  frames:new-connection-id; `all` is none followed by every attack."
)]
struct Cli {
    /// The server to flood (a loopback address only).
    #[arg(long, required_unless_present_any = ["spawn_server", "in_process"])]
    target: Option<SocketAddr>,
    /// Start `quic server` on 127.0.0.1 with a temporary root for each
    /// attack (and watch its CPU and memory).
    #[arg(long, conflicts_with_all = ["target", "in_process"])]
    spawn_server: bool,
    /// The `quic` binary for --spawn-server (default: next to this binary,
    /// or target/release/quic, or target/debug/quic).
    #[arg(long, requires = "spawn_server")]
    quic_bin: Option<PathBuf>,
    /// Flood a minimal hq-interop server running in this process, fresh
    /// for each attack (its thread's CPU is reported; memory is the whole
    /// process's).
    #[arg(long, conflicts_with = "target")]
    in_process: bool,
    /// Attacks to run one after the other, comma-separated, or `all`.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    attack: Vec<String>,
    /// Seconds the genuine clients keep connecting, per attack.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Seconds of flood before the genuine clients start.
    #[arg(long, default_value_t = 0.2)]
    warmup: f64,
    /// Attacker datagrams per second (default: as fast as it can).
    #[arg(long)]
    rate: Option<u64>,
    /// The attacker stops after this many datagrams.
    #[arg(long)]
    count: Option<u64>,
    /// Seed of the attacker's randomness (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Milliseconds between genuine connection attempts.
    #[arg(long, default_value_t = 50)]
    client_interval_ms: u64,
    /// Seconds after which a genuine attempt has failed.
    #[arg(long, default_value_t = 3.0)]
    client_timeout: f64,
    /// Path genuine clients GET after the handshake (default with
    /// --spawn-server and --in-process: /small.txt; else handshakes only).
    #[arg(long)]
    get: Option<String>,
    /// Only complete handshakes, no GET.
    #[arg(long, conflicts_with = "get")]
    no_get: bool,
    /// Report this process's CPU time and memory (the server's pid).
    #[arg(long, conflicts_with_all = ["spawn_server", "in_process"])]
    server_pid: Option<u32>,
    /// Server name for SNI and the certificate check.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Trust the certificates in this PEM file (default: accept any
    /// certificate, checking only the handshake signature).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Spoofed source addresses (127.0.0.0/8) for spoofed-initials.
    #[arg(long, default_value_t = 256)]
    sources: usize,
    /// Fail (exit 1) when a run's genuine success rate is below this.
    #[arg(long, default_value_t = 0.9)]
    min_success: f64,
}

fn attacks(names: &[String]) -> Result<Vec<Attack>, String> {
    let mut out = Vec::new();
    for name in names {
        if name == "all" {
            out.push(Attack::None);
            out.extend(Attack::ALL);
        } else {
            out.push(name.parse()?);
        }
    }
    Ok(out)
}

fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{name}: not a number of seconds: {s}"))
}

/// Where the runs go, and who serves them.
enum Server {
    External { target: SocketAddr, watched: Option<Watched>, trust: Trust },
    Spawn(PathBuf),
    InProcess,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("flood: {e}");
            ExitCode::from(2)
        }
    }
}

/// Whether every run met `--min-success`.
fn run(cli: &Cli) -> Result<bool, String> {
    let attacks = attacks(&cli.attack)?;
    let seed = cli.seed.unwrap_or_else(|| SystemRandom.next_u64() >> 1);
    let server = if cli.spawn_server {
        let bin = match &cli.quic_bin {
            Some(p) => p.clone(),
            None => find_quic_binary().ok_or(
                "no quic binary found: build it (cargo build -p quic-mio --release) or pass --quic-bin",
            )?,
        };
        Server::Spawn(bin)
    } else if cli.in_process {
        Server::InProcess
    } else {
        let target = cli.target.ok_or("--target is required")?;
        flood::check_target(target)?;
        let trust = match &cli.ca {
            Some(path) => Trust::from_pem_file(path)?,
            None => Trust::Any,
        };
        Server::External { target, watched: cli.server_pid.map(Watched::process), trust }
    };
    let get = match (&cli.get, &server) {
        _ if cli.no_get => None,
        (Some(p), _) => Some(p.clone()),
        (None, Server::External { .. }) => None,
        (None, _) => Some("/small.txt".to_owned()),
    };
    println!(
        "flood: seed {seed}; {} attack(s) of {} s each after {} s of warm-up{}",
        attacks.len(),
        cli.duration,
        cli.warmup,
        cli.rate.map_or_else(String::new, |r| format!(", at most {r} datagrams/s")),
    );
    let mut reports = Vec::new();
    for (i, &attack) in attacks.iter().enumerate() {
        // Each attack against a fresh server, when this tool starts it.
        let (_spawned, _in_process);
        let (target, watched, trust) = match &server {
            Server::External { target, watched, trust } => (*target, *watched, trust.clone()),
            Server::Spawn(bin) => {
                let s = SpawnedServer::spawn(bin)?;
                let v = (s.addr(), Some(s.watched()), Trust::Any);
                _spawned = s;
                v
            }
            Server::InProcess => {
                let s = InProcessServer::start(seed)?;
                let v = (s.addr(), s.watched(), s.trust());
                _in_process = s;
                v
            }
        };
        let mut options = Options::new(target, trust);
        options.server_name = cli.server_name.clone();
        options.attack = attack;
        options.duration = seconds("--duration", cli.duration)?;
        options.warmup = seconds("--warmup", cli.warmup)?;
        options.rate = cli.rate;
        options.count = cli.count;
        options.seed = seed.wrapping_add(i as u64);
        options.client_interval = Duration::from_millis(cli.client_interval_ms);
        options.client_timeout = seconds("--client-timeout", cli.client_timeout)?;
        options.get = get.clone();
        options.sources = cli.sources;
        options.server = watched;
        println!("flood: {attack} against {target}...");
        let report = flood::run(&options)?;
        println!(
            "flood: {attack}: {} of {} genuine attempts succeeded; the attacker sent {} datagrams",
            report.genuine.successes, report.genuine.attempts, report.attacker.packets
        );
        reports.push(report);
    }
    println!();
    print!("{}", flood::table(&reports));
    let failed: Vec<_> =
        reports.iter().filter(|r| r.success_rate() < cli.min_success).map(|r| r.attack).collect();
    if failed.is_empty() {
        println!("all runs kept the genuine success rate at or above {}", cli.min_success);
        Ok(true)
    } else {
        let names: Vec<_> = failed.iter().map(|a| a.name()).collect();
        println!(
            "genuine success rate below {} under: {} (seed {seed})",
            cli.min_success,
            names.join(", ")
        );
        Ok(false)
    }
}
