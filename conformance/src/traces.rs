//! Recording the trace corpus (`conformance/traces/`, docs/traces.md): the
//! `quic` tool's client and server traced through a set of scenarios
//! (handshake, loss, Retry, key update, a refused request, and runs against
//! aioquic and ngtcp2), each trace checked to replay byte for byte as soon
//! as it is written. CI replays the committed corpus
//! (`conformance/tests/traces.rs`), so that a change in what the stack
//! sends shows up as the first datagram that differs; a change meant to
//! alter the wire is committed with a re-recorded corpus:
//!
//! ```sh
//! cargo run -p conformance --release -- record-traces   # writes conformance/traces/
//! ```

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quic_mio::tool::ReplayOptions;

use crate::peers::{self, ClientKind, PeerEnv, PeerServer, ScratchDir, ServerKind};
use crate::relay::{Relay, RelayConfig};

/// The scenarios, in recording order.
pub const SCENARIOS: [&str; 7] =
    ["handshake", "loss", "retry", "keyupdate", "notfound", "aioquic", "ngtcp2"];

/// The files the traced server serves (`traces/www/`): generated, so that
/// the corpus needs no binary besides the traces.
pub const WWW_FILES: [(&str, usize); 2] = [("1K.bin", 1024), ("64K.bin", 65_536)];

/// The bytes of a generated file of `len` bytes.
pub fn www_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31).wrapping_add(i >> 8) % 251) as u8).collect()
}

/// Writes [`WWW_FILES`] into `dir`.
pub fn write_www(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, len) in WWW_FILES {
        let path = dir.join(name);
        fs::write(&path, www_bytes(len))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Replays `trace` (a server's with `www` as its root) and requires every
/// datagram identical; the error names the first that differs.
pub fn check_replay(trace: &Path, www: &Path) -> Result<String, String> {
    let options = ReplayOptions { root: Some(www.to_owned()) };
    let (replayed, report) = crate::replay::replay(trace, &options)?;
    if replayed.report.identical() {
        Ok(replayed.report.to_string())
    } else {
        Err(format!("{} does not replay byte for byte:\n{report}", trace.display()))
    }
}

/// Records traces of the `quic` tool (the binary `quic`, which must be
/// built from this code: a stale one records traces this code does not
/// replay).
pub struct Recorder<'a> {
    quic: PathBuf,
    env: &'a PeerEnv,
    out: PathBuf,
    www: PathBuf,
    scratch: ScratchDir,
}

/// `quic server` running with `--trace-dir`.
struct OurServer {
    child: Child,
    addr: SocketAddr,
    trace_dir: PathBuf,
}

impl Drop for OurServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl<'a> Recorder<'a> {
    /// Traces go to `out`, the served files are `out/www`.
    pub fn new(quic: PathBuf, env: &'a PeerEnv, out: &Path) -> Result<Self, String> {
        let www = out.join("www");
        write_www(&www)?;
        let scratch = ScratchDir::new("record-traces").map_err(|e| e.to_string())?;
        Ok(Self { quic, env, out: out.to_owned(), www, scratch })
    }

    /// Records `scenarios` (names from [`SCENARIOS`]), checking each trace
    /// replays; the traces written, with their replay's summary line.
    pub fn record(&self, scenarios: &[&str]) -> Result<Vec<(PathBuf, String)>, String> {
        let mut written = Vec::new();
        for &scenario in scenarios {
            let traces = self.scenario(scenario)?;
            for trace in traces {
                let line = check_replay(&trace, &self.www)?;
                written.push((trace, line));
            }
        }
        Ok(written)
    }

    fn scenario(&self, name: &str) -> Result<Vec<PathBuf>, String> {
        let client = self.out.join(format!("{name}_client.pcapng"));
        let server = self.out.join(format!("{name}_server.pcapng"));
        let ours = |server_extra: &[&str], client_extra: &[&str], path: &str, code: i32| {
            let s = self.start_server(name, server_extra)?;
            self.our_client(s.addr, path, client_extra, &client, code)?;
            self.stop_server(s, &server)?;
            Ok::<_, String>(vec![client.clone(), server.clone()])
        };
        match name {
            "handshake" => ours(&[], &[], "/1K.bin", 0),
            "retry" => ours(&["--retry"], &[], "/1K.bin", 0),
            "keyupdate" => {
                ours(&[], &["--key-update", "--chacha20", "--version", "2"], "/64K.bin", 0)
            }
            // A request for a missing file: the stream is reset, the client
            // closes with its error and exits 6.
            "notfound" => ours(&[], &["--alpn", "hq-interop"], "/missing.bin", 6),
            "loss" => {
                let s = self.start_server(name, &[])?;
                let mut cfg = RelayConfig::new(s.addr, 1);
                for dir in [&mut cfg.to_server, &mut cfg.to_client] {
                    dir.loss = 0.1;
                    dir.max_loss_run = Some(3);
                    dir.delay = Duration::from_millis(5);
                }
                let relay = Relay::start(cfg).map_err(|e| format!("relay: {e}"))?;
                let extra = ["--alpn", "hq-interop"];
                let result = self.our_client(relay.addr(), "/64K.bin", &extra, &client, 0);
                drop(relay.stop());
                result?;
                self.stop_server(s, &server)?;
                Ok(vec![client, server])
            }
            "aioquic" | "ngtcp2" => {
                let (server_kind, client_kind) = if name == "aioquic" {
                    (ServerKind::AioquicH3, ClientKind::AioquicH3)
                } else {
                    (ServerKind::Ngtcp2H3, ClientKind::Ngtcp2H3)
                };
                let mut peer = PeerServer::start(self.env, &peers::ServerConfig::new(server_kind))
                    .map_err(|e| e.to_string())?;
                let result = self.our_client(peer.addr(), "/1K.bin", &[], &client, 0);
                let log = peer.stop();
                result.map_err(|e| format!("{e}\n{server_kind:?} log:\n{log}"))?;
                let s = self.start_server(name, &[])?;
                let dir = self.scratch.path().join(format!("{name}-peer-client"));
                let cfg = peers::ClientConfig::new(client_kind, &dir);
                let run = peers::run_client(self.env, &cfg, s.addr, &["/1K.bin"])
                    .map_err(|e| e.to_string())?;
                if !run.success() {
                    return Err(format!("{client_kind:?} against quic server:\n{}", run.report()));
                }
                self.stop_server(s, &server)?;
                Ok(vec![client, server])
            }
            other => Err(format!("unknown scenario {other:?} (known: {})", SCENARIOS.join(", "))),
        }
    }

    fn start_server(&self, name: &str, extra: &[&str]) -> Result<OurServer, String> {
        let trace_dir = self.scratch.path().join(format!("{name}-server-traces"));
        let err = self.scratch.path().join(format!("{name}-server.err"));
        let mut child = Command::new(&self.quic)
            .args(["server", "--listen", "127.0.0.1:0", "--root"])
            .arg(&self.www)
            .arg("--cert")
            .arg(&self.env.cert)
            .arg("--key")
            .arg(&self.env.key)
            .arg("--trace-dir")
            .arg(&trace_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&err).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.quic.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                let stderr = fs::read_to_string(&err).unwrap_or_default();
                return Err(format!("quic server exited before listening: {stderr}"));
            };
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.parse().map_err(|e| format!("{line}: {e}"))?;
            }
        };
        Ok(OurServer { child, addr, trace_dir })
    }

    /// Stops the server as a user would (SIGINT: it closes its connections
    /// and exits) and moves its trace to `to`.
    fn stop_server(&self, mut server: OurServer, to: &Path) -> Result<(), String> {
        let pid = libc::pid_t::try_from(server.child.id()).map_err(|e| e.to_string())?;
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if server.child.try_wait().map_err(|e| e.to_string())?.is_some() {
                break;
            }
            if Instant::now() > deadline {
                return Err("quic server did not exit within 10 s of SIGINT".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let entries = fs::read_dir(&server.trace_dir)
            .map_err(|e| format!("{}: {e}", server.trace_dir.display()))?;
        let traces: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pcapng"))
            .collect();
        let [trace] = &traces[..] else {
            return Err(format!("expected one server trace, found {traces:?}"));
        };
        fs::rename(trace, to)
            .or_else(|_| fs::copy(trace, to).map(drop))
            .map_err(|e| format!("cannot move {} to {}: {e}", trace.display(), to.display()))
    }

    /// `quic client https://ADDR/PATH --trace TRACE`, which must exit with
    /// `code`.
    fn our_client(
        &self,
        addr: SocketAddr,
        path: &str,
        extra: &[&str],
        trace: &Path,
        code: i32,
    ) -> Result<(), String> {
        let out = self.scratch.path().join("client-out");
        let output = Command::new(&self.quic)
            .arg("client")
            .arg(format!("https://{addr}{path}"))
            .arg("--ca")
            .arg(&self.env.ca)
            .arg("--output-dir")
            .arg(&out)
            .arg("--trace")
            .arg(trace)
            .args(["--timeout", "20"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", self.quic.display()))?;
        if output.status.code() != Some(code) {
            return Err(format!(
                "quic client {path} {extra:?}: {} (expected exit {code})\nstdout: {}\nstderr: {}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim_end(),
                String::from_utf8_lossy(&output.stderr).trim_end()
            ));
        }
        Ok(())
    }
}

/// The committed corpus: `conformance/traces`.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("traces")
}
