//! The `quic` binary against independent QUIC implementations on loopback,
//! through `conformance::peers`: aioquic over hq-interop (`hq_server.py` /
//! `hq_client.py`) and HTTP/3 (`h3_server.py` / `h3_client.py`), and ngtcp2
//! over HTTP/3 (`gtlsserver` / `gtlsclient`), file transfers in both
//! directions.
//!
//! Every download is compared byte for byte with the peers' `www/`. Over
//! HTTP/3 each connection carries two files (1K.bin and 1M.bin), so that
//! QPACK encoders that insert a line the second time they see it (ours,
//! ls-qpack's in aioquic) use the dynamic table; the tests check that both
//! encoders did, from the aioquic peer's QPACK report or from the figures
//! our client and server print. The peers must be installed
//! (`bash conformance/peers/install.sh`): when they are not, every test
//! fails, naming what is missing; none is skipped.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use conformance::peers::{
    ClientConfig, ClientKind, PeerEnv, PeerServer, QpackStats, ScratchDir, ServerConfig,
    ServerKind, run_client, verify_downloads,
};

const QUIC: &str = env!("CARGO_BIN_EXE_quic");

const ALL: [&str; 3] = ["1K.bin", "1M.bin", "50M.bin"];
/// What HTTP/3 tests fetch: two files, so that QPACK's dynamic table comes
/// into play, and no 50 MB (aioquic moves 5-9 MB/s).
const H3_FILES: [&str; 2] = ["1K.bin", "1M.bin"];

fn env() -> PeerEnv {
    PeerEnv::load().unwrap_or_else(|e| panic!("interop peers missing: {e}"))
}

fn scratch(label: &str) -> ScratchDir {
    ScratchDir::new(label).unwrap_or_else(|e| panic!("{e}"))
}

fn paths(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("/{n}")).collect()
}

fn verify(env: &PeerEnv, dir: &Path, names: &[&str]) {
    verify_downloads(env, dir, names).unwrap_or_else(|e| panic!("{e}"));
}

/// How a run of the `quic` client ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn report(&self) -> String {
        format!(
            "exit {:?} after {:.2} s\nstdout: {}\nstderr: {}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd` with stdout and stderr in files under `dir`, killing it after
/// `limit`.
fn run_limited(mut cmd: Command, dir: &Path, limit: Duration) -> Run {
    let out = dir.join("run.out");
    let err = dir.join("run.err");
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Run {
        code: status.and_then(|s| s.code()),
        stdout: read(&out),
        stderr: read(&err),
        elapsed: start.elapsed(),
    }
}

/// Runs `quic client` for `names` from `server`, trusting the harness CA.
fn our_client(
    env: &PeerEnv,
    server: SocketAddr,
    names: &[&str],
    out: &Path,
    extra: &[&str],
) -> Run {
    let mut cmd = Command::new(QUIC);
    cmd.arg("client")
        .args(paths(names).iter().map(|p| format!("https://{server}{p}")))
        .arg("--output-dir")
        .arg(out)
        .arg("--ca")
        .arg(&env.ca)
        .args(extra);
    run_limited(cmd, out.parent().unwrap(), Duration::from_secs(60))
}

/// Starts an aioquic `hq_server.py`.
fn aioquic_server(env: &PeerEnv, retry: bool) -> PeerServer {
    let mut cfg = ServerConfig::new(ServerKind::AioquicHq);
    cfg.retry = retry;
    cfg.lifetime = Duration::from_secs(120);
    PeerServer::start(env, &cfg).unwrap_or_else(|e| panic!("{e}"))
}

/// Our client downloads `names` from an aioquic server and checks them.
fn download_from_aioquic(retry: bool, names: &[&str], extra: &[&str]) -> Run {
    let env = env();
    let mut server = aioquic_server(&env, retry);
    let dir = scratch("ours-from-aioquic");
    let out = dir.path().join("out");
    let run = our_client(&env, server.addr(), names, &out, extra);
    let log = server.stop();
    assert_eq!(
        run.code,
        Some(0),
        "quic client failed:\n{}\nhq_server.py log:\n{log}",
        run.report()
    );
    verify(&env, &out, names);
    let bytes: u64 = names.iter().map(|n| fs::metadata(env.www_file(n)).unwrap().len()).sum();
    assert!(
        run.stdout.contains(&format!("downloaded {} files, {bytes} bytes", names.len())),
        "{}",
        run.report()
    );
    // All on one connection: the server saw exactly one.
    assert!(log.contains("over 1 connections"), "hq_server.py log:\n{log}");
    eprintln!("our client <- hq_server.py {extra:?} retry={retry}: {}", run.stdout.trim());
    run
}

/// `quic server`, serving the harness's www/ with the harness's certificate.
struct OurServer {
    child: Child,
    addr: SocketAddr,
    _dir: ScratchDir,
    err: PathBuf,
}

impl OurServer {
    fn start(env: &PeerEnv, extra: &[&str]) -> Self {
        let dir = scratch("our-server");
        let err = dir.path().join("server.err");
        let mut child = Command::new(QUIC)
            .args(["server", "--listen", "127.0.0.1:0", "--root"])
            .arg(&env.www)
            .arg("--cert")
            .arg(&env.cert)
            .arg("--key")
            .arg(&env.key)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .expect("quic server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    panic!("quic server exited: {}", fs::read_to_string(&err).unwrap_or_default())
                })
                .unwrap();
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.parse().unwrap();
            }
        };
        Self { child, addr, _dir: dir, err }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The first line of the server's stderr containing `needle`, waiting
    /// for it up to 10 s (a connection's line comes when it ends).
    fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stderr = self.stderr();
            if let Some(line) = stderr.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "no {needle:?} in quic server's stderr:\n{stderr}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The aioquic client downloads `names` from our server (verifying its
/// certificate with the harness CA) and checks them; its stdout line.
fn aioquic_downloads(
    server_extra: &[&str],
    names: &[&str],
    tweak: fn(&mut ClientConfig),
) -> String {
    let env = env();
    let server = OurServer::start(&env, server_extra);
    let dir = scratch("aioquic-from-ours");
    let mut cfg = ClientConfig::new(ClientKind::AioquicHq, dir.path());
    cfg.timeout = Duration::from_secs(40);
    tweak(&mut cfg);
    let paths = paths(names);
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let run = run_client(&env, &cfg, server.addr, &paths).unwrap_or_else(|e| panic!("{e}"));
    assert!(run.success(), "{}\nquic server stderr:\n{}", run.report(), server.stderr());
    verify(&env, dir.path(), names);
    assert!(run.stdout.contains(&format!("OK {0}/{0} files", names.len())), "{}", run.report());
    assert!(run.stdout.contains("alpn=hq-interop version=0x00000001"), "{}", run.report());
    eprintln!("hq_client.py <- our server {server_extra:?}: {}", run.stdout.trim());
    run.stdout
}

// ---- 1. plain transfers, 1 KB + 1 MB + 50 MB on one connection ----------

#[test]
fn our_client_downloads_from_aioquic_server() {
    download_from_aioquic(false, &ALL, &[]);
}

#[test]
fn aioquic_client_downloads_from_our_server() {
    let stdout = aioquic_downloads(&[], &ALL, |_| {});
    assert!(stdout.contains("retry=no"), "{stdout}");
}

// ---- 2. Retry, ChaCha20, key updates (the same three files) ---------------

#[test]
fn aioquic_client_through_retry_of_our_server() {
    let stdout = aioquic_downloads(&["--retry"], &ALL, |_| {});
    assert!(stdout.contains("retry=yes"), "our server sent no Retry: {stdout}");
}

#[test]
fn our_client_through_retry_of_aioquic_server() {
    download_from_aioquic(true, &ALL, &[]);
}

#[test]
fn our_client_chacha20_with_aioquic_server() {
    // Our client offers only TLS_CHACHA20_POLY1305_SHA256, so a completed
    // handshake means aioquic chose it.
    download_from_aioquic(false, &ALL, &["--chacha20"]);
}

#[test]
fn aioquic_client_chacha20_with_our_server() {
    let stdout = aioquic_downloads(&[], &ALL, |c| c.chacha20 = true);
    assert!(stdout.contains("cipher=CHACHA20_POLY1305_SHA256"), "{stdout}");
}

#[test]
fn our_client_key_update_with_aioquic_server() {
    let run = download_from_aioquic(false, &ALL, &["--key-update"]);
    assert!(run.stdout.contains(", 1 key update"), "no key update done: {}", run.report());
}

#[test]
fn aioquic_client_key_update_with_our_server() {
    let stdout = aioquic_downloads(&[], &ALL, |c| c.key_update = true);
    assert!(stdout.contains("key_update=done"), "{stdout}");
}

// ---- 3. HTTP/3: aioquic and ngtcp2, 1 KB + 1 MB on one connection -------

/// The QPACK figures our client prints at the end of its summary and our
/// server at the end of a connection's line: the encoder's table capacity
/// (what the peer's SETTINGS allowed) and the inserts the peer's encoder
/// made into our decoder's table.
fn our_qpack(line: &str) -> (u64, u64) {
    let rest = line
        .split("qpack: encoder table ")
        .nth(1)
        .unwrap_or_else(|| panic!("no QPACK figures in {line:?}"));
    let (capacity, rest) = rest.split_once(" bytes, decoder inserts ").unwrap();
    let inserts = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap();
    (capacity.parse().unwrap(), inserts.parse().unwrap())
}

/// Our client downloads `H3_FILES` over h3 (its default ALPN) from an h3
/// peer server on one connection; the client's run, and the server's log.
fn our_h3_client_against(kind: ServerKind) -> (Run, String) {
    let env = env();
    let mut cfg = ServerConfig::new(kind);
    cfg.lifetime = Duration::from_secs(60);
    let mut server = PeerServer::start(&env, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch("ours-h3");
    let out = dir.path().join("out");
    let run = our_client(&env, server.addr(), &H3_FILES, &out, &[]);
    let log = server.stop();
    assert_eq!(run.code, Some(0), "quic client failed:\n{}\n{kind:?} log:\n{log}", run.report());
    verify(&env, &out, &H3_FILES);
    assert!(run.stdout.contains("downloaded 2 files, 1049600 bytes"), "{}", run.report());
    assert!(run.stdout.contains("; over h3, qpack: "), "{}", run.report());
    assert!(run.elapsed < Duration::from_secs(20), "{}", run.report());
    eprintln!("our client <- {kind:?}: {}", run.stdout.trim());
    (run, log)
}

#[test]
fn our_h3_client_downloads_from_aioquic_h3_server() {
    let (run, log) = our_h3_client_against(ServerKind::AioquicH3);
    let stats = QpackStats::find_all(&log);
    assert_eq!(stats.len(), 1, "one connection, one QPACK report:\n{log}");
    let stats = &stats[0];
    // Our encoder referenced the table aioquic's decoder offered, and
    // aioquic's encoder the one ours offered (our decoder followed).
    assert!(stats.peer_used_dynamic_table(), "our encoder used no table: {stats:?}");
    assert!(stats.we_used_dynamic_table(), "aioquic's encoder used no table: {stats:?}");
    assert_eq!(stats.local_capacity, 4096, "{stats:?}");
    // aioquic announced 4096 bytes; ls-qpack inserted for the second response.
    let (capacity, inserts) = our_qpack(&run.stdout);
    assert_eq!(capacity, 4096, "{}", run.report());
    assert!(inserts > 0, "{}", run.report());
}

#[test]
fn our_h3_client_downloads_from_ngtcp2_server() {
    let (run, _) = our_h3_client_against(ServerKind::Ngtcp2H3);
    // nghttp3 inserts `server`, `content-type` and the like at once, and
    // ngtcp2's example announces a 4096-byte table.
    let (capacity, inserts) = our_qpack(&run.stdout);
    assert_eq!(capacity, 4096, "{}", run.report());
    assert!(inserts > 0, "our decoder took no inserts from nghttp3: {}", run.report());
}

/// Offered only hq-interop, the h3-only gtlsserver refuses in TLS: one
/// line naming the alert, exit 5, no file.
#[test]
fn our_hq_client_against_ngtcp2_server_gets_no_application_protocol() {
    let env = env();
    let mut cfg = ServerConfig::new(ServerKind::Ngtcp2H3);
    cfg.lifetime = Duration::from_secs(60);
    let mut server = PeerServer::start(&env, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let dir = scratch("ours-vs-ngtcp2");
    let out = dir.path().join("out");
    let run = our_client(&env, server.addr(), &["1K.bin"], &out, &["--alpn", "hq-interop"]);
    let log = server.stop();
    // 5: the TLS handshake failed; one line naming the alert.
    assert_eq!(run.code, Some(5), "{}\ngtlsserver log:\n{log}", run.report());
    let reason = run.stderr.trim();
    assert_eq!(reason.lines().count(), 1, "{}", run.report());
    assert!(
        reason.contains("the server rejected the TLS handshake")
            && reason.contains("CRYPTO_ERROR(alert 120)"),
        "{}",
        run.report()
    );
    // `quic client` creates an output file only once its download completed.
    assert!(!out.join("1K.bin").exists(), "no file for a failed download");
    // The server got our ClientHello and refused it in TLS, not earlier.
    assert!(log.contains("ERR_CRYPTO"), "gtlsserver log:\n{log}");
    assert!(run.elapsed < Duration::from_secs(5), "refused at once: {}", run.report());
}

/// An h3 peer client downloads `H3_FILES` from our server (default ALPNs,
/// h3 preferred); the client's run and our server's line for the
/// connection.
fn h3_client_downloads_from_our_server(kind: ClientKind) -> (conformance::peers::Finished, String) {
    let env = env();
    let server = OurServer::start(&env, &[]);
    let dir = scratch("h3-from-ours");
    let mut cfg = ClientConfig::new(kind, dir.path());
    cfg.timeout = Duration::from_secs(20);
    let paths = paths(&H3_FILES);
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let run = run_client(&env, &cfg, server.addr, &paths).unwrap_or_else(|e| panic!("{e}"));
    let context = || format!("{}\nquic server stderr:\n{}", run.report(), server.stderr());
    assert!(run.success(), "{}", context());
    verify_downloads(&env, dir.path(), &H3_FILES).unwrap_or_else(|e| panic!("{e}\n{}", context()));
    let line = server.wait_for_line("; h3, qpack: ");
    eprintln!("{kind:?} <- our server: {}\n  {line}", run.stdout.trim());
    (run, line)
}

#[test]
fn aioquic_h3_client_downloads_from_our_server() {
    let (run, line) = h3_client_downloads_from_our_server(ClientKind::AioquicH3);
    assert!(run.stdout.contains("OK 2/2 files"), "{}", run.report());
    assert!(run.stdout.contains("alpn=h3"), "{}", run.report());
    let stats = run.qpack_stats().unwrap_or_else(|| panic!("no QPACK report: {}", run.report()));
    // Our server's encoder referenced the table aioquic offered, and
    // aioquic's encoder the one our server offered.
    assert!(stats.peer_used_dynamic_table(), "our encoder used no table: {stats:?}");
    assert!(stats.we_used_dynamic_table(), "aioquic's encoder used no table: {stats:?}");
    assert_eq!(stats.peer_capacity, Some(4096), "our SETTINGS: {stats:?}");
    let (capacity, inserts) = our_qpack(&line);
    assert_eq!(capacity, 4096, "{line}");
    assert!(inserts > 0, "{line}");
    // aioquic closes with H3_NO_ERROR.
    assert!(line.contains("code 0x100 (H3_NO_ERROR)"), "{line}");
}

#[test]
fn ngtcp2_h3_client_downloads_from_our_server() {
    let (_, line) = h3_client_downloads_from_our_server(ClientKind::Ngtcp2H3);
    // gtlsclient announces a 4096-byte table, and nghttp3 inserts
    // `:authority` and `user-agent` at once.
    let (capacity, inserts) = our_qpack(&line);
    assert_eq!(capacity, 4096, "{line}");
    assert!(inserts > 0, "our decoder took no inserts from nghttp3: {line}");
}

/// Our server accepting only hq-interop refuses gtlsclient (h3 only) with
/// no_application_protocol, and its qlog records the refusal.
#[test]
fn ngtcp2_client_is_refused_by_our_hq_only_server() {
    let env = env();
    let dir = scratch("ngtcp2-vs-ours");
    let qlog = dir.path().join("qlog");
    let server =
        OurServer::start(&env, &["--alpn", "hq-interop", "--qlog-dir", qlog.to_str().unwrap()]);
    let downloads = dir.path().join("ng");
    fs::create_dir_all(&downloads).unwrap();
    // Not `run_client`: it passes `-q`, which hides the frame trace.
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "2", "20"])
        .arg(&env.gtlsclient)
        .arg("--exit-on-all-streams-close")
        .arg(format!("--download={}", downloads.display()))
        .args(["127.0.0.1", &server.addr.port().to_string()])
        .arg(format!("https://localhost:{}/1K.bin", server.addr.port()));
    let run = run_limited(cmd, dir.path(), Duration::from_secs(25));
    let context = || format!("{}\nquic server stderr:\n{}", run.report(), server.stderr());
    // gtlsclient exits 0 even after a CONNECTION_CLOSE; its trace shows it.
    assert_eq!(run.code, Some(0), "{}", context());
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("CONNECTION_CLOSE(0x1c) error_code=CRYPTO_ERROR(0x178)"), "{}", context());
    assert!(all.contains("no application protocol"), "{}", context());
    assert!(!downloads.join("1K.bin").exists(), "nothing downloaded");
    // Our server's record of the connection (its qlog, written when the
    // closing period of 3 PTO ends) shows the refusal.
    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let text: String = fs::read_dir(&qlog)
            .map(|d| {
                d.filter_map(|e| fs::read(e.ok()?.path()).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if text.contains("quic:connection_closed") || Instant::now() > deadline {
            break text;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let closed = record
        .split('\u{1e}')
        .find(|r| r.contains("quic:connection_closed"))
        .unwrap_or_else(|| panic!("no connection_closed in our server's qlog:\n{record}"));
    assert!(
        closed.contains("\"initiator\":\"local\"")
            && closed.contains("crypto_error_0x178")
            && closed.contains("no application protocol"),
        "{closed}"
    );
}
