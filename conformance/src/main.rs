//! `conformance`: the interop matrix and, later, other conformance tools.
//!
//! `conformance matrix [--peers self,aioquic,ngtcp2,quinn] [--cases LIST]
//! [--seed N] [--quick] [--out docs/interop.md]` runs the QUIC interop
//! runner's cases client → relay → server for every pair and prints a table
//! of cases by pair, the reasons for failures, what was unsupported, and
//! last `N passed, M failed`. Exit status 1 when a case failed.
//!
//! `conformance replay FILE.pcapng [--root DIR]` replays a trace of the
//! `quic` tool and checks every datagram it sends byte for byte; the last
//! line says `identical` or names the first datagram that differs (both
//! decoded above it). Exit status 1 when it differs.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};
use conformance::matrix::endpoint::{Kind, Programs, find_or_build_quic, find_quinn_endpoint};
use conformance::matrix::{self, Case, Options, Outcome};
use conformance::peers::PeerEnv;

#[derive(Parser, Debug)]
#[command(name = "conformance", about = "Conformance and interop tools")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the interop runner's test cases for every client x server pair.
    Matrix(MatrixArgs),
    /// Replay a trace of `quic client --trace` or `quic server --trace-dir`
    /// and check every datagram sent byte for byte.
    Replay(ReplayArgs),
    /// Record the trace corpus (conformance/traces) with the `quic` tool
    /// and the interop peers, checking that each trace replays.
    RecordTraces(RecordArgs),
}

#[derive(clap::Args, Debug)]
struct RecordArgs {
    /// Where the traces go (default: the committed corpus, conformance/traces).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scenarios, comma-separated (default all).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The trace (pcapng).
    file: PathBuf,
    /// The directory a replayed server serves (default: its recorded --root).
    #[arg(long)]
    root: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct MatrixArgs {
    /// Endpoints, comma-separated: self, aioquic, ngtcp2, quinn.
    #[arg(long, value_delimiter = ',', default_value = "self,quinn,aioquic,ngtcp2")]
    peers: Vec<String>,
    /// Cases, comma-separated (the runner's names); default all.
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
    /// Seed of the relay's impairments (printed with every failure).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Smaller files and fewer handshakes (what CI runs).
    #[arg(long)]
    quick: bool,
    /// Also write the report as Markdown to this file (e.g. docs/interop.md).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = match Cli::parse().command {
        Cmd::Matrix(args) => args,
        Cmd::Replay(args) => return run_replay(&args),
        Cmd::RecordTraces(args) => return run_record(&args),
    };
    match run_matrix(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("matrix: {e}");
            ExitCode::from(2)
        }
    }
}

/// Exit status 0 when the replay is identical, 1 when it differs, 2 when
/// the trace cannot be replayed.
fn run_replay(args: &ReplayArgs) -> ExitCode {
    let options = quic_mio::tool::ReplayOptions { root: args.root.clone() };
    match conformance::replay::replay(&args.file, &options) {
        Ok((replayed, report)) => {
            print!("{report}");
            if replayed.report.identical() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_record(args: &RecordArgs) -> ExitCode {
    let run = || -> Result<(), String> {
        let env = PeerEnv::load().map_err(|e| e.to_string())?;
        let quic = find_or_build_quic().map_err(|e| e.to_string())?;
        let out = args.out.clone().unwrap_or_else(conformance::traces::corpus_dir);
        let scenarios: Vec<&str> = if args.scenarios.is_empty() {
            conformance::traces::SCENARIOS.to_vec()
        } else {
            args.scenarios.iter().map(String::as_str).collect()
        };
        let recorder = conformance::traces::Recorder::new(quic, &env, &out)?;
        for (trace, line) in recorder.record(&scenarios)? {
            println!("{}: {line}", trace.display());
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("record-traces: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_matrix(args: &MatrixArgs) -> Result<ExitCode, String> {
    let peers = args
        .peers
        .iter()
        .map(|p| {
            Kind::parse(p)
                .ok_or_else(|| format!("unknown peer {p:?} (self, aioquic, ngtcp2, quinn)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cases = if args.cases.is_empty() {
        Case::ALL.to_vec()
    } else {
        args.cases
            .iter()
            .map(|c| Case::parse(c).ok_or_else(|| format!("unknown case {c:?}")))
            .collect::<Result<Vec<_>, _>>()?
    };
    let env = PeerEnv::load().map_err(|e| e.to_string())?;
    let quic = find_or_build_quic().map_err(|e| e.to_string())?;
    let progs = Programs { env, quic, quinn: find_quinn_endpoint() };
    let opts = Options { peers, cases, seed: args.seed, quick: args.quick };
    let report = matrix::run(&progs, &opts, |r| {
        let word = match &r.outcome {
            Outcome::Pass(_) => "pass",
            Outcome::Fail(_) => "FAIL",
            Outcome::Unsupported(_) => "unsupported",
            Outcome::NotRun(_) => return,
        };
        eprintln!(
            "{:<20} {:>8}→{:<8} {word} ({:.1} s)",
            r.case.name(),
            r.client.name(),
            r.server.name(),
            r.elapsed.as_secs_f64()
        );
    });
    println!("{}", report.table());
    print!("{}", report.notes());
    println!("{}", report.summary());
    if let Some(path) = &args.out {
        let doc = markdown(&report, &progs, args);
        std::fs::write(path, doc).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let (_, failed) = report.counts();
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn output(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn markdown(report: &matrix::Report, progs: &Programs, args: &MatrixArgs) -> String {
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let aioquic = output(
        Command::new(&progs.env.python).args(["-c", "import aioquic; print(aioquic.__version__)"]),
    );
    let ngtcp2 = output(Command::new("dpkg-query").args(["-W", "-f=${Version}", "ngtcp2-client"]));
    let template = include_str!("../interop/interop.md.in");
    let command = format!(
        "cargo run -p conformance --release -- matrix --peers {} --seed {}{}{}",
        args.peers.join(","),
        args.seed,
        if args.cases.is_empty() {
            String::new()
        } else {
            format!(" --cases {}", args.cases.join(","))
        },
        if args.quick { " --quick" } else { "" }
    );
    template
        .replace("@DATE@", &date)
        .replace("@COMMAND@", &command)
        .replace("@SELF@", env!("CARGO_PKG_VERSION"))
        .replace("@AIOQUIC@", &aioquic)
        .replace("@NGTCP2@", &ngtcp2)
        .replace("@TABLE@", &report.table())
        .replace("@NOTES@", &report.notes())
        .replace("@SUMMARY@", &report.summary())
}
