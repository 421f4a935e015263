//! The `quic` command line tool (`src/bin/quic.rs` is its `main`): a QUIC file server and client over HTTP/3 (`h3`, on h3-proto)
//! and the `hq-interop` protocol (HTTP/0.9 on QUIC streams, as the QUIC
//! interop runner uses it), and a loopback demo, on the quic-mio driver.
//!
//! Exit codes: 0 success; 1 any other failure (files, sockets, arguments
//! clap accepted but that do not work); 2 bad usage; 3 the connection was
//! refused or closed by the peer; 4 timed out; 5 the TLS handshake failed
//! (certificate rejected, no common ALPN or cipher suite); 6 a file was
//! missing or refused by the server (hq-interop: a reset stream; HTTP/3: a
//! status other than 200, or a reset). Failures print one line to stderr.

use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use quic_proto::endpoint::EndpointConfig;
use quic_proto::qlog::{self, QlogFormat, QlogSink, WriterSink};

use clap::{Args, Parser, Subcommand, ValueEnum};

mod client;
mod client_h3;
mod demo;
mod perf;
mod qpack;
mod scratch;
mod server;
mod server_h3;
mod tls;

/// The ALPN of the interop runner's HTTP/0.9 over QUIC.
const HQ_INTEROP: &str = "hq-interop";
/// The ALPN of HTTP/3 (RFC 9114 §3.1).
const H3: &str = "h3";
/// What `quic server` accepts and `quic client` offers by default, in order
/// of preference.
const DEFAULT_ALPN: &str = "h3,hq-interop";

/// Why a command failed: an exit code and a one-line reason.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    const OTHER: u8 = 1;
    const REFUSED: u8 = 3;
    const TIMED_OUT: u8 = 4;
    const TLS: u8 = 5;
    const FILE: u8 = 6;

    fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    fn other(message: impl Into<String>) -> Self {
        Self::new(Self::OTHER, message)
    }
}

#[derive(Parser, Debug)]
#[command(name = "quic", version, about = "QUIC file server, client and loopback demo")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the files under a directory over HTTP/3 and hq-interop.
    Server(ServerArgs),
    /// Download URLs (`https://host:port/path`) over one connection.
    Client(ClientArgs),
    /// Serve and download a generated file on loopback (hq-interop), verify it, print figures.
    Demo(DemoArgs),
    /// Measure loopback transfers with GSO/GRO on and off: MB/s, CPU per GiB.
    Perf(PerfArgs),
    /// QPACK offline interop: decode encoded files to QIF, encode QIF files.
    Qpack(qpack::QpackArgs),
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Address to listen on; `[::]:PORT` also takes IPv4.
    #[arg(long, default_value = "[::]:4433")]
    listen: SocketAddr,
    /// Directory whose files are served; nothing outside it is.
    #[arg(long)]
    root: PathBuf,
    /// Certificate chain (PEM); without it a self-signed certificate for
    /// localhost, 127.0.0.1 and ::1 is generated and its SHA-256 printed.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of the certificate (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// ALPN protocols to accept, comma-separated, preferred first: `h3`
    /// (HTTP/3), `hq-interop`.
    #[arg(long, default_value = DEFAULT_ALPN, value_delimiter = ',')]
    alpn: Vec<String>,
    /// Validate client addresses with a Retry before accepting.
    #[arg(long)]
    retry: bool,
    /// Record every datagram in and out, with the TLS secrets that decrypt
    /// them, as pcapng: one file for the socket,
    /// `<unix seconds>_<port>_server.pcapng`, in this directory.
    #[arg(long)]
    trace_dir: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// URLs to download, all from one server: `https://host[:port]/path`.
    #[arg(required = true)]
    urls: Vec<String>,
    /// Where downloaded files are written (named after the URL's last segment).
    #[arg(long, default_value = ".")]
    output_dir: PathBuf,
    /// ALPN protocols to offer, comma-separated, preferred first: `h3`
    /// (HTTP/3), `hq-interop`.
    #[arg(long, default_value = DEFAULT_ALPN, value_delimiter = ',')]
    alpn: Vec<String>,
    /// Trust the certificates in this PEM file (default: the system's roots).
    #[arg(long, conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// Accept any server certificate (signatures are still checked).
    #[arg(long)]
    insecure: bool,
    /// Offer only TLS_CHACHA20_POLY1305_SHA256.
    #[arg(long)]
    chacha20: bool,
    /// Update the 1-RTT keys once the handshake is confirmed (RFC 9001 §6).
    #[arg(long)]
    key_update: bool,
    /// QUIC version to offer.
    #[arg(long, default_value = "1", value_parser = ["1", "2"])]
    version: String,
    /// Give up when the handshake takes longer than this (seconds).
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Record every datagram in and out, with the TLS secrets that decrypt
    /// them, in this pcapng file (Wireshark and tshark read it as it is).
    #[arg(long)]
    trace: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Size of the generated file in MiB.
    #[arg(long, default_value_t = 100)]
    size: u64,
    /// Use TLS_CHACHA20_POLY1305_SHA256.
    #[arg(long)]
    chacha20: bool,
}

#[derive(Args, Debug)]
struct PerfArgs {
    /// Size of the generated file in MiB.
    #[arg(long, default_value_t = 1024)]
    size: u64,
    /// Only measure with GSO and GRO off (by default: on, then off).
    #[arg(long)]
    no_gso: bool,
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Append TLS secrets to this file in the NSS key log format
    /// (SSLKEYLOGFILE is honoured too).
    #[arg(long)]
    keylog: Option<PathBuf>,
    /// Write a qlog file (JSON-SEQ, `<odcid>_<client|server>.sqlog`) per
    /// connection into this directory (QLOGDIR is honoured too).
    #[arg(long)]
    qlog_dir: Option<PathBuf>,
    /// Event names in the qlog files: `draft` (the current drafts, `quic:`
    /// namespace) or `qvis` (qlog 0.3 names, which qvis's sequence diagram
    /// and congestion graph need).
    #[arg(long, value_enum, default_value_t = QlogNames::Draft)]
    qlog_format: QlogNames,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum QlogNames {
    Draft,
    Qvis,
}

impl CommonArgs {
    /// The key log file: `--keylog`, else `SSLKEYLOGFILE`.
    fn keylog_path(&self) -> Option<PathBuf> {
        self.keylog.clone().or_else(|| std::env::var_os("SSLKEYLOGFILE").map(PathBuf::from))
    }

    /// The endpoint configuration: qlog files in `--qlog-dir` (or
    /// `QLOGDIR`), one per connection, named by `quic_proto::qlog::file_name`.
    fn endpoint_config(&self) -> Result<EndpointConfig, Failure> {
        let mut config = EndpointConfig::default();
        let dir = self.qlog_dir.clone().or_else(|| std::env::var_os("QLOGDIR").map(PathBuf::from));
        if let Some(dir) = dir {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::other(format!("cannot create {}: {e}", dir.display())))?;
            config.qlog(Arc::new(move |odcid, side| {
                let path = dir.join(qlog::file_name(odcid, side));
                match std::fs::File::create(&path) {
                    Ok(file) => {
                        let sink = WriterSink::new(BufWriter::new(file)).on_error(move |e| {
                            eprintln!(
                                "quic: qlog {}: {e}; the rest of this connection's log is lost",
                                path.display()
                            );
                        });
                        Some(Box::new(sink) as Box<dyn QlogSink>)
                    }
                    Err(e) => {
                        // The connection goes on without its log.
                        eprintln!("quic: no qlog for this connection: {}: {e}", path.display());
                        None
                    }
                }
            }));
            config.qlog_format(match self.qlog_format {
                QlogNames::Draft => QlogFormat::Draft,
                QlogNames::Qvis => QlogFormat::Qvis,
            });
        }
        Ok(config)
    }
}

/// This tool speaks HTTP/3 and hq-interop: refuse anything else up front
/// rather than speak one of them under another protocol's name.
fn check_alpn(alpn: &[String]) -> Result<(), Failure> {
    for protocol in alpn {
        match protocol.as_str() {
            H3 | HQ_INTEROP => {}
            other => {
                return Err(Failure::new(
                    USAGE,
                    format!("unsupported ALPN {other:?}: this tool speaks h3 and hq-interop"),
                ));
            }
        }
    }
    Ok(())
}

/// Exit code for a command line that asks for something unsupported.
const USAGE: u8 = 2;

/// The `quic` tool's `main`: parses the command line, runs the command,
/// prints a failure's one line and turns it into the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => check_alpn(&args.alpn).and_then(|()| server::run(&args, None)),
        Command::Client(args) => check_alpn(&args.alpn)
            .and_then(|()| client::run(&args, None))
            .map(|summary| println!("{summary}")),
        Command::Demo(args) => demo::run(&args),
        Command::Perf(args) => perf::run(&args),
        Command::Qpack(args) => qpack::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("quic: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// This run's command line, for a trace's first block: replay runs the
/// same command (docs/traces.md).
pub(crate) fn command_line() -> crate::socket::trace::InputRecord {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    crate::socket::trace::InputRecord::CommandLine(args.join("\0"))
}

/// What [`replay`] may change about the recorded command.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// The directory a replayed server serves (default: its `--root`, as
    /// recorded).
    pub root: Option<PathBuf>,
}

/// A replayed run.
#[derive(Debug)]
pub struct Replayed {
    /// `client` or `server`.
    pub role: &'static str,
    /// The recorded command line.
    pub command_line: Vec<String>,
    /// What matched and what differed.
    pub report: crate::driver::ReplayReport,
    /// How the replayed command itself ended: its summary line, or its
    /// failure (a replay that differs usually fails too).
    pub outcome: Result<String, String>,
    /// The trace's inputs (its key log decodes the datagrams).
    pub inputs: crate::driver::replay::TraceInputs,
}

/// Replays a trace the `quic` tool recorded (`quic client --trace`, `quic
/// server --trace-dir`): runs the recorded command again, in this process,
/// on the trace's inputs instead of a socket, the OS's randomness and the
/// clock, and compares every datagram it sends with the recorded one
/// (docs/traces.md). Nothing is written: a client hashes what it
/// downloads, a server serves its `--root` (or `options.root`).
pub fn replay(file: &std::path::Path, options: &ReplayOptions) -> Result<Replayed, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let trace = crate::driver::Replay::from_bytes(&bytes).map_err(|e| e.to_string())?;
    let command_line =
        trace.inputs().command_line.clone().ok_or(
            "the trace records no command line: only traces of the quic tool replay this way",
        )?;
    let cli = Cli::try_parse_from(&command_line)
        .map_err(|e| format!("the recorded command line does not parse: {e}"))?;
    let (role, outcome) = match cli.command {
        Command::Client(args) => {
            ("client", client::run(&args, Some(trace.clone())).map(|summary| summary.to_string()))
        }
        Command::Server(args) => (
            "server",
            server::run(&args, Some((trace.clone(), options.root.clone())))
                .map(|()| "served".to_owned()),
        ),
        _ => return Err("the trace is not of `quic client` or `quic server`".to_owned()),
    };
    Ok(Replayed {
        role,
        command_line,
        report: trace.report(),
        outcome: outcome.map_err(|f| f.message),
        inputs: trace.inputs().clone(),
    })
}
