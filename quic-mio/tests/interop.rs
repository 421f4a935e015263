//! The `quic` binary against independent QUIC implementations on loopback:
//! aioquic (`hq_server.py` / `hq_client.py`, ALPN `hq-interop`) for file
//! transfers in both directions, and ngtcp2 (`gtlsserver` / `gtlsclient`,
//! HTTP/3 only) for handshake-level checks, through `conformance::peers`.
//!
//! Every download is compared byte for byte with the peers' `www/`. The
//! peers must be installed (`bash conformance/peers/install.sh`): when they
//! are not, every test fails, naming what is missing; none is skipped.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use conformance::peers::{
    ClientConfig, ClientKind, PeerEnv, PeerServer, ScratchDir, ServerConfig, ServerKind,
    run_client, verify_downloads,
};

const QUIC: &str = env!("CARGO_BIN_EXE_quic");

const ALL: [&str; 3] = ["1K.bin", "1M.bin", "50M.bin"];

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

// ---- 3. ngtcp2 (h3 only): refused with no_application_protocol ------------

#[test]
fn our_client_against_ngtcp2_server_gets_no_application_protocol() {
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

#[test]
fn ngtcp2_client_offering_h3_is_refused_by_our_server() {
    let env = env();
    let dir = scratch("ngtcp2-vs-ours");
    let qlog = dir.path().join("qlog");
    let server = OurServer::start(&env, &["--qlog-dir", qlog.to_str().unwrap()]);
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
