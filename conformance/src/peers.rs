//! Independent QUIC peers as child processes, for interop tests.
//!
//! The peers are installed by `conformance/peers/install.sh` (see the README
//! beside it): our own aioquic programs `hq_server.py` / `hq_client.py`
//! (ALPN `hq-interop`, the interop runner's HTTP/0.9 style) and
//! `h3_server.py` / `h3_client.py` (ALPN `h3`, aioquic's `H3Connection`),
//! and ngtcp2's `gtlsserver` / `gtlsclient` (Debian 12, HTTP/3 only). Every
//! HTTP/3 peer has the QPACK dynamic table on (RFC 9204): the aioquic
//! scripts announce 4096 bytes and 16 blocked streams unless told
//! otherwise ([`QpackSettings`]), and report what each side used
//! ([`QpackStats`]); ngtcp2's examples hard-code 4096 bytes and 100.
//!
//! [`PeerEnv::load`] runs `peers-env.sh` and fails, naming each missing piece
//! and the install command, when the peers are not installed; tests should
//! `expect` it rather than skip. [`PeerServer::start`] starts a server on a
//! free loopback port and returns once its UDP socket is bound;
//! [`run_client`] runs a client to completion and reports its exit status and
//! output. Every child runs under coreutils `timeout` in its own process
//! group, and the whole group is killed when its time is up or its handle is
//! dropped, so no peer outlives a test by more than its limit.
//!
//! Set `QUIC_TEST_PEERS_KEEP=1` to keep the scratch folders (logs,
//! downloads) that are otherwise removed on drop.

use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The folder of the peer scripts: `conformance/peers`.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// A peer could not be found, started or run. The message names what is
/// missing and, where it helps, the command that fixes it.
#[derive(Clone, Debug)]
pub struct PeerError(String);

impl PeerError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeerError {}

/// Where the installed peers and their files are (the `QUIC_TEST_PEERS_*`
/// lines printed by `peers-env.sh`).
#[derive(Clone, Debug)]
pub struct PeerEnv {
    /// `conformance/peers`: the peer programs.
    pub dir: PathBuf,
    /// The state directory made by `install.sh`.
    pub home: PathBuf,
    /// The venv's Python, which has aioquic.
    pub python: PathBuf,
    /// Server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA that signed [`PeerEnv::cert`].
    pub ca: PathBuf,
    /// The peer servers' document root: `1K.bin`, `1M.bin`, maybe `50M.bin`.
    pub www: PathBuf,
    /// A folder for logs.
    pub logs: PathBuf,
    /// ngtcp2's HTTP/3 client.
    pub gtlsclient: PathBuf,
    /// ngtcp2's HTTP/3 server.
    pub gtlsserver: PathBuf,
    /// tshark.
    pub tshark: PathBuf,
}

impl PeerEnv {
    /// Runs `peers-env.sh` (at most 30 s). Fails with its explanation (what
    /// is missing, and `bash .../install.sh` to install it) when the peers
    /// are not installed.
    pub fn load() -> Result<Self, PeerError> {
        let dir = peers_dir();
        let script = dir.join("peers-env.sh");
        if !script.is_file() {
            return Err(PeerError::new(format!("{} does not exist", script.display())));
        }
        let scratch = ScratchDir::new("env")?;
        let mut cmd = Command::new("bash");
        cmd.arg(&script);
        capture_to(&mut cmd, scratch.path(), "peers-env")?;
        let run = run_bounded(&mut cmd, Duration::from_secs(30), scratch.path(), "peers-env")?;
        if !run.success() {
            return Err(PeerError::new(format!(
                "the interop peers are not ready ({} {}):\n{}",
                script.display(),
                run.status_text(),
                run.stderr.trim_end()
            )));
        }
        let mut vars = std::collections::HashMap::new();
        for line in run.stdout.lines() {
            let Some(rest) = line.strip_prefix("export QUIC_TEST_PEERS_") else {
                continue;
            };
            let Some((name, value)) = rest.split_once('=') else {
                continue;
            };
            vars.insert(name.to_owned(), unquote(value)?);
        }
        let get = |name: &str| -> Result<PathBuf, PeerError> {
            match vars.get(name) {
                Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
                _ => Err(PeerError::new(format!(
                    "{} printed no QUIC_TEST_PEERS_{name}; output was:\n{}",
                    script.display(),
                    run.stdout
                ))),
            }
        };
        Ok(Self {
            dir: get("DIR")?,
            home: get("HOME")?,
            python: get("PYTHON")?,
            cert: get("CERT")?,
            key: get("KEY")?,
            ca: get("CA")?,
            www: get("WWW")?,
            logs: get("LOGS")?,
            gtlsclient: get("GTLSCLIENT")?,
            gtlsserver: get("GTLSSERVER")?,
            tshark: get("TSHARK")?,
        })
    }

    /// A file in the peer servers' document root, e.g. `www_file("1K.bin")`.
    pub fn www_file(&self, name: &str) -> PathBuf {
        self.www.join(name)
    }
}

/// Undoes bash's `printf %q` for the plain and backslash-escaped forms.
fn unquote(value: &str) -> Result<String, PeerError> {
    if value.starts_with("$'") || value.starts_with('\'') {
        return Err(PeerError::new(format!(
            "peers-env.sh printed a path this harness cannot read: {value}"
        )));
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A scratch folder under the system's temporary folder, removed on drop
/// unless `QUIC_TEST_PEERS_KEEP` is set.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Makes a new empty folder whose name contains `label`.
    pub fn new(label: &str) -> Result<Self, PeerError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "quic-peers-{label}-{}-{}-{nanos:09}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).map_err(|e| {
            PeerError::new(format!("cannot create scratch folder {}: {e}", path.display()))
        })?;
        Ok(Self { path })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::env::var_os("QUIC_TEST_PEERS_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Sends `signal` to the process group led by `child` (every child here is
/// started as a group leader, so this reaches `timeout` and the peer under it).
fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Ends a child's process group: SIGTERM, up to `grace` to exit, then SIGKILL.
pub(crate) fn stop_group(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    signal_group(child, "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    signal_group(child, "KILL");
    child.wait().ok()
}

/// Sends the command's stdout and stderr to `dir/name.out` and `dir/name.err`,
/// gives it no stdin, and makes it the leader of a new process group.
pub(crate) fn capture_to(cmd: &mut Command, dir: &Path, name: &str) -> Result<(), PeerError> {
    let open = |ext: &str| {
        let path = dir.join(format!("{name}.{ext}"));
        fs::File::create(&path)
            .map_err(|e| PeerError::new(format!("cannot create {}: {e}", path.display())))
    };
    cmd.stdin(Stdio::null()).stdout(open("out")?).stderr(open("err")?).process_group(0);
    Ok(())
}

/// `timeout -k 2 LIMIT program` (SIGTERM after `limit`, SIGKILL 2 s later),
/// captured into `dir/name.out` and `.err` by [`capture_to`].
pub(crate) fn bounded_command(
    program: &Path,
    limit: Duration,
    dir: &Path,
    name: &str,
) -> Result<Command, PeerError> {
    if !program.is_file() {
        return Err(PeerError::new(format!(
            "{} does not exist; run: bash {}/install.sh",
            program.display(),
            peers_dir().display()
        )));
    }
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "2", &format!("{:.1}", limit.as_secs_f64())]).arg(program);
    capture_to(&mut cmd, dir, name)?;
    Ok(cmd)
}

/// What a finished (or timed-out) child did.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The command line that ran.
    pub command: String,
    /// Its exit status, or `None` if it was killed by a signal.
    pub exit: Option<i32>,
    /// Whether it ran out of time (then it was killed).
    pub timed_out: bool,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Finished {
    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.exit == Some(0)
    }

    /// "exit status 1", "timed out after 60.0 s", ...
    pub fn status_text(&self) -> String {
        match (self.timed_out, self.exit) {
            (true, _) => format!("timed out after {:.1} s", self.elapsed.as_secs_f64()),
            (false, Some(124)) => {
                "timed out (killed by the `timeout` wrapper at its limit)".to_owned()
            }
            (false, Some(code)) => format!("exit status {code}"),
            (false, None) => "killed by a signal".to_owned(),
        }
    }

    /// A multi-line account for assertion messages: command, status, stdout
    /// and the end of stderr.
    pub fn report(&self) -> String {
        format!(
            "command: {}\nresult: {} in {:.2} s\nstdout:\n{}\nstderr (last 40 lines):\n{}",
            self.command,
            self.status_text(),
            self.elapsed.as_secs_f64(),
            self.stdout.trim_end(),
            tail(&self.stderr, 40)
        )
    }
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd`, already set up by [`capture_to`] with the same `dir` and
/// `name`, to completion or until `limit` plus 5 s (so that a `timeout`
/// wrapper acts first); then the whole process group is killed.
pub(crate) fn run_bounded(
    cmd: &mut Command,
    limit: Duration,
    dir: &Path,
    name: &str,
) -> Result<Finished, PeerError> {
    let out_path = dir.join(format!("{name}.out"));
    let err_path = dir.join(format!("{name}.err"));
    let command = describe(cmd);
    let start = Instant::now();
    let mut child =
        cmd.spawn().map_err(|e| PeerError::new(format!("cannot start {command}: {e}")))?;
    let deadline = start + limit + Duration::from_secs(5);
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                break stop_group(&mut child, Duration::from_secs(1));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(PeerError::new(format!("waiting for {command}: {e}"))),
        }
    };
    let read = |p: &Path| {
        fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    };
    Ok(Finished {
        command,
        exit: status.and_then(|s| s.code()),
        timed_out,
        stdout: read(&out_path),
        stderr: read(&err_path),
        elapsed: start.elapsed(),
    })
}

/// Which peer server to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// Our aioquic `hq_server.py`: ALPN `hq-interop` only, QUIC v1 and v2.
    AioquicHq,
    /// Our aioquic `h3_server.py`: ALPN `h3` only, QUIC v1 and v2. GET and
    /// HEAD of the files in the root (200 with content-length), 404 for a
    /// missing file, 405 for other methods. Its log has a [`QpackStats`]
    /// line per connection (at the latest when it is stopped).
    AioquicH3,
    /// ngtcp2's `gtlsserver`: ALPN `h3` only, QUIC v1 (and v2 draft). GET
    /// of the files in the root (200 with content-length), 404 with an HTML
    /// body for a missing file. QPACK table 4096 bytes, 100 blocked streams
    /// (hard-coded in the example).
    Ngtcp2H3,
}

impl ServerKind {
    /// The servers that speak HTTP/3.
    pub const H3: [ServerKind; 2] = [ServerKind::AioquicH3, ServerKind::Ngtcp2H3];

    /// The one ALPN it accepts: `"h3"` or `"hq-interop"`.
    pub fn alpn(self) -> &'static str {
        match self {
            ServerKind::AioquicHq => "hq-interop",
            ServerKind::AioquicH3 | ServerKind::Ngtcp2H3 => "h3",
        }
    }
}

/// The QPACK limits an aioquic HTTP/3 peer announces in its SETTINGS
/// (RFC 9204 §5): its decoder's dynamic table capacity and how many streams
/// may be blocked on it. Its encoder uses whatever the other side announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QpackSettings {
    /// `SETTINGS_QPACK_MAX_TABLE_CAPACITY`; 0 turns the dynamic table off.
    pub max_table_capacity: u64,
    /// `SETTINGS_QPACK_BLOCKED_STREAMS`.
    pub blocked_streams: u64,
}

impl Default for QpackSettings {
    /// 4096 bytes and 16 blocked streams: what the aioquic scripts (and
    /// aioquic's own `H3Connection`) announce when not told otherwise.
    fn default() -> Self {
        Self { max_table_capacity: 4096, blocked_streams: 16 }
    }
}

/// `--qpack-capacity N --qpack-blocked N` for the aioquic h3 scripts; an
/// error for peers that cannot change them.
fn qpack_args(
    cmd: &mut Command,
    qpack: Option<QpackSettings>,
    who: &str,
    aioquic_h3: bool,
) -> Result<(), PeerError> {
    let Some(q) = qpack else { return Ok(()) };
    if !aioquic_h3 {
        return Err(PeerError::new(format!(
            "{who} cannot be given QPACK settings: hq-interop has no QPACK, and ngtcp2's \
             examples hard-code a 4096-byte table and 100 blocked streams"
        )));
    }
    cmd.args(["--qpack-capacity", &q.max_table_capacity.to_string()])
        .args(["--qpack-blocked", &q.blocked_streams.to_string()]);
    Ok(())
}

/// How to start a peer server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Which server.
    pub kind: ServerKind,
    /// Loopback address to bind (127.0.0.1 by default, or ::1).
    pub ip: IpAddr,
    /// Validate addresses with a Retry packet.
    pub retry: bool,
    /// Append TLS secrets to this file (SSLKEYLOGFILE format).
    pub keylog: Option<PathBuf>,
    /// Write qlogs into this folder.
    pub qlog_dir: Option<PathBuf>,
    /// Document root; default [`PeerEnv::www`].
    pub root: Option<PathBuf>,
    /// Certificate and key; default [`PeerEnv::cert`] / [`PeerEnv::key`].
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
    /// QPACK limits to announce ([`ServerKind::AioquicH3`] only); `None`:
    /// the server's own (4096 bytes and 16 for aioquic, 4096 and 100 for
    /// ngtcp2). Setting it for another kind makes [`PeerServer::start`] fail.
    pub qpack: Option<QpackSettings>,
    /// The server is killed after this long at the latest (default 300 s).
    pub lifetime: Duration,
    /// How long to wait for its socket to be bound (default 15 s).
    pub ready_timeout: Duration,
}

impl ServerConfig {
    /// Defaults: 127.0.0.1, no Retry, no logs, the installed files.
    pub fn new(kind: ServerKind) -> Self {
        Self {
            kind,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            retry: false,
            keylog: None,
            qlog_dir: None,
            root: None,
            cert_and_key: None,
            qpack: None,
            lifetime: Duration::from_secs(300),
            ready_timeout: Duration::from_secs(15),
        }
    }
}

/// A running peer server. Dropping it kills it.
#[derive(Debug)]
pub struct PeerServer {
    child: Option<Child>,
    kind: ServerKind,
    addr: SocketAddr,
    command: String,
    scratch: ScratchDir,
}

/// A port that is free on `ip` now (the OS's choice for a bound socket).
pub(crate) fn free_udp_port(ip: IpAddr) -> Result<u16, PeerError> {
    let sock = UdpSocket::bind(SocketAddr::new(ip, 0))
        .map_err(|e| PeerError::new(format!("cannot bind a UDP socket on {ip}: {e}")))?;
    let port = sock.local_addr().map_err(|e| PeerError::new(format!("local_addr: {e}")))?.port();
    Ok(port)
}

/// Whether some UDP socket of this network namespace is bound to `port`
/// (from /proc/net/udp and /proc/net/udp6).
pub(crate) fn udp_port_bound(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
        fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| format!("{local} ").ends_with(&needle))
            })
        })
    })
}

impl PeerServer {
    /// Starts a server on a free loopback port and waits until its UDP
    /// socket is bound. Fails, with the server's output, if it exits or is
    /// not ready within `cfg.ready_timeout`.
    pub fn start(env: &PeerEnv, cfg: &ServerConfig) -> Result<Self, PeerError> {
        if !cfg.ip.is_loopback() {
            return Err(PeerError::new(format!("{} is not a loopback address", cfg.ip)));
        }
        let scratch = ScratchDir::new("server")?;
        let port = free_udp_port(cfg.ip)?;
        let (cert, key) =
            cfg.cert_and_key.clone().unwrap_or_else(|| (env.cert.clone(), env.key.clone()));
        let root = cfg.root.clone().unwrap_or_else(|| env.www.clone());
        let mut cmd = match cfg.kind {
            ServerKind::AioquicHq | ServerKind::AioquicH3 => {
                let (script, h3) = match cfg.kind {
                    ServerKind::AioquicH3 => ("h3_server.py", true),
                    _ => ("hq_server.py", false),
                };
                let mut cmd = bounded_command(&env.python, cfg.lifetime, scratch.path(), "server")?;
                cmd.arg(env.dir.join(script))
                    .args(["--host", &cfg.ip.to_string(), "--port", &port.to_string()])
                    .arg("--cert")
                    .arg(&cert)
                    .arg("--key")
                    .arg(&key)
                    .arg("--root")
                    .arg(&root)
                    .args(["--lifetime", &format!("{:.1}", cfg.lifetime.as_secs_f64())]);
                if cfg.retry {
                    cmd.arg("--retry");
                }
                if let Some(k) = &cfg.keylog {
                    cmd.arg("--keylog").arg(k);
                }
                if let Some(q) = &cfg.qlog_dir {
                    cmd.arg("--quic-log").arg(q);
                }
                qpack_args(&mut cmd, cfg.qpack, script, h3)?;
                cmd
            }
            ServerKind::Ngtcp2H3 => {
                let mut cmd =
                    bounded_command(&env.gtlsserver, cfg.lifetime, scratch.path(), "server")?;
                qpack_args(&mut cmd, cfg.qpack, "gtlsserver", false)?;
                cmd.arg("-q").arg(format!("--htdocs={}", root.display()));
                if cfg.retry {
                    cmd.arg("-V");
                }
                if let Some(q) = &cfg.qlog_dir {
                    fs::create_dir_all(q).map_err(|e| {
                        PeerError::new(format!("cannot create {}: {e}", q.display()))
                    })?;
                    cmd.arg(format!("--qlog-dir={}", q.display()));
                }
                if let Some(k) = &cfg.keylog {
                    cmd.env("SSLKEYLOGFILE", k); // GnuTLS honours it
                }
                cmd.arg(cfg.ip.to_string()).arg(port.to_string()).arg(&key).arg(&cert);
                cmd
            }
        };
        let command = describe(&cmd);
        let child =
            cmd.spawn().map_err(|e| PeerError::new(format!("cannot start {command}: {e}")))?;
        let mut server = Self {
            child: Some(child),
            kind: cfg.kind,
            addr: SocketAddr::new(cfg.ip, port),
            command,
            scratch,
        };
        let deadline = Instant::now() + cfg.ready_timeout;
        loop {
            let child = server.child.as_mut().expect("child present until stop");
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Err(PeerError::new(format!(
                        "peer server {:?} exited ({status}) before it was ready\ncommand: {}\noutput:\n{}",
                        server.kind,
                        server.command,
                        tail(&server.log(), 40)
                    )));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(PeerError::new(format!("waiting for {}: {e}", server.command)));
                }
            }
            if udp_port_bound(port) {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                let log = server.stop();
                return Err(PeerError::new(format!(
                    "peer server {:?} did not bind UDP port {port} within {:.1} s\ncommand: {}\noutput:\n{}",
                    cfg.kind,
                    cfg.ready_timeout.as_secs_f64(),
                    server.command,
                    tail(&log, 40)
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which server this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// `https://127.0.0.1:PORT/path` (or `https://[::1]:PORT/path`).
    pub fn url(&self, path: &str) -> String {
        url(self.addr, None, path)
    }

    /// What the server has printed so far (stdout, then stderr).
    pub fn log(&self) -> String {
        let read = |ext: &str| {
            fs::read(self.scratch.path().join(format!("server.{ext}")))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        format!("{}{}", read("out"), read("err"))
    }

    /// Stops the server (SIGTERM, then SIGKILL after 3 s) and returns its log.
    pub fn stop(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child, Duration::from_secs(3));
        }
        self.log()
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child, Duration::from_secs(1));
        }
    }
}

pub(crate) fn url(addr: SocketAddr, host: Option<&str>, path: &str) -> String {
    let host = match (host, addr.ip()) {
        (Some(h), _) => h.to_owned(),
        (None, IpAddr::V4(ip)) => ip.to_string(),
        (None, IpAddr::V6(ip)) => format!("[{ip}]"),
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    format!("https://{host}:{}/{path}", addr.port())
}

/// Which peer client to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// Our aioquic `hq_client.py`: ALPN `hq-interop`; exit status 0 only if
    /// every file arrived complete.
    AioquicHq,
    /// Our aioquic `h3_client.py`: ALPN `h3`; all GETs at once on one
    /// connection (after waiting up to 2 s for the server's SETTINGS); exit
    /// status 0 only if every file arrived complete with status 200. Its
    /// stdout has a [`QpackStats`] line.
    AioquicH3,
    /// ngtcp2's `gtlsclient`: ALPN `h3`, all requests at once on one
    /// connection. It exits 0 even after errors (a 404 body is saved under
    /// the file's name) and never verifies the certificate: judge it with
    /// [`verify_downloads`]. QPACK table 4096 bytes, 100 blocked streams
    /// (hard-coded in the example).
    Ngtcp2H3,
}

impl ClientKind {
    /// The clients that speak HTTP/3.
    pub const H3: [ClientKind; 2] = [ClientKind::AioquicH3, ClientKind::Ngtcp2H3];

    /// The one ALPN it offers: `"h3"` or `"hq-interop"`.
    pub fn alpn(self) -> &'static str {
        match self {
            ClientKind::AioquicHq => "hq-interop",
            ClientKind::AioquicH3 | ClientKind::Ngtcp2H3 => "h3",
        }
    }
}

/// How to run a peer client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Which client.
    pub kind: ClientKind,
    /// Where the downloaded files go (created if needed).
    pub output_dir: PathBuf,
    /// CA to verify the server with (aioquic only); default [`PeerEnv::ca`].
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate (aioquic only).
    pub insecure: bool,
    /// TLS server name; default: the address for aioquic, `localhost` for ngtcp2.
    pub sni: Option<String>,
    /// Append TLS secrets to this file.
    pub keylog: Option<PathBuf>,
    /// Write a qlog of the connection into this folder.
    pub qlog_dir: Option<PathBuf>,
    /// QPACK limits to announce ([`ClientKind::AioquicH3`] only); `None`:
    /// the client's own (4096 bytes and 16 for aioquic, 4096 and 100 for
    /// ngtcp2). Setting it for another kind makes [`run_client`] fail.
    pub qpack: Option<QpackSettings>,
    /// [`ClientKind::Ngtcp2H3`] only: run without `-q`, with
    /// `--no-quic-dump --no-http-dump`, so that the output shows each
    /// packet and frame and the HTTP fields (`http: stream 0x0 [:status:
    /// 200]`); about 0.5 MB of log per MB downloaded.
    pub verbose: bool,
    /// Offer only ChaCha20-Poly1305.
    pub chacha20: bool,
    /// Initiate a key update once the handshake is confirmed.
    pub key_update: bool,
    /// QUIC version: 1, or 2 (RFC 9369; aioquic only).
    pub version: u8,
    /// Limit for the whole run (default 60 s).
    pub timeout: Duration,
}

impl ClientConfig {
    /// Defaults: verify with the installed CA, QUIC v1, 60 s.
    pub fn new(kind: ClientKind, output_dir: impl Into<PathBuf>) -> Self {
        Self {
            kind,
            output_dir: output_dir.into(),
            ca: None,
            insecure: false,
            sni: None,
            keylog: None,
            qlog_dir: None,
            qpack: None,
            verbose: false,
            chacha20: false,
            key_update: false,
            version: 1,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Runs a peer client against `server` for `paths` (e.g. `["/1K.bin"]`) and
/// waits for it, at most `cfg.timeout`. `Err` means the client could not be
/// run at all; how the run went is in the [`Finished`].
pub fn run_client(
    env: &PeerEnv,
    cfg: &ClientConfig,
    server: SocketAddr,
    paths: &[&str],
) -> Result<Finished, PeerError> {
    if !server.ip().is_loopback() {
        return Err(PeerError::new(format!("{server} is not a loopback address")));
    }
    fs::create_dir_all(&cfg.output_dir)
        .map_err(|e| PeerError::new(format!("cannot create {}: {e}", cfg.output_dir.display())))?;
    let scratch = ScratchDir::new("client")?;
    // hq_client.py enforces cfg.timeout itself and then says what it was
    // waiting for; the `timeout` wrapper is only the backstop.
    let limit = cfg.timeout + Duration::from_secs(5);
    let mut cmd = match cfg.kind {
        ClientKind::AioquicHq | ClientKind::AioquicH3 => {
            let (script, h3) = match cfg.kind {
                ClientKind::AioquicH3 => ("h3_client.py", true),
                _ => ("hq_client.py", false),
            };
            if cfg.verbose {
                return Err(PeerError::new(format!(
                    "{script} has no verbose mode; it always logs per file"
                )));
            }
            let mut cmd = bounded_command(&env.python, limit, scratch.path(), "client")?;
            cmd.arg(env.dir.join(script));
            for p in paths {
                cmd.arg(url(server, None, p));
            }
            cmd.arg("--output-dir").arg(&cfg.output_dir);
            if cfg.insecure {
                cmd.arg("--insecure");
            } else {
                cmd.arg("--ca").arg(cfg.ca.as_ref().unwrap_or(&env.ca));
            }
            if let Some(sni) = &cfg.sni {
                cmd.args(["--sni", sni]);
            }
            if let Some(k) = &cfg.keylog {
                cmd.arg("--keylog").arg(k);
            }
            if let Some(q) = &cfg.qlog_dir {
                cmd.arg("--quic-log").arg(q);
            }
            if cfg.chacha20 {
                cmd.arg("--chacha20");
            }
            if cfg.key_update {
                cmd.arg("--key-update");
            }
            cmd.args(["--version", &cfg.version.to_string()])
                .args(["--timeout", &format!("{:.1}", cfg.timeout.as_secs_f64())]);
            qpack_args(&mut cmd, cfg.qpack, script, h3)?;
            cmd
        }
        ClientKind::Ngtcp2H3 => {
            if cfg.version != 1 {
                return Err(PeerError::new(
                    "gtlsclient (ngtcp2 0.12.1) does not speak QUIC v2 (RFC 9369); only version 1",
                ));
            }
            let sni = cfg.sni.as_deref().unwrap_or("localhost");
            let mut cmd = bounded_command(&env.gtlsclient, cfg.timeout, scratch.path(), "client")?;
            qpack_args(&mut cmd, cfg.qpack, "gtlsclient", false)?;
            if cfg.verbose {
                cmd.args(["--no-quic-dump", "--no-http-dump"]);
            } else {
                cmd.arg("-q");
            }
            cmd.arg("--exit-on-all-streams-close")
                .arg(format!("--download={}", cfg.output_dir.display()))
                .arg(format!("--sni={sni}"));
            if let Some(q) = &cfg.qlog_dir {
                fs::create_dir_all(q)
                    .map_err(|e| PeerError::new(format!("cannot create {}: {e}", q.display())))?;
                cmd.arg(format!("--qlog-dir={}", q.display()));
            }
            if cfg.chacha20 {
                cmd.arg("--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305");
            }
            if cfg.key_update {
                cmd.arg("--key-update=1ms");
            }
            if let Some(k) = &cfg.keylog {
                cmd.env("SSLKEYLOGFILE", k);
            }
            cmd.arg(server.ip().to_string()).arg(server.port().to_string());
            let host = if sni.contains(':') { format!("[{sni}]") } else { sni.to_owned() };
            for p in paths {
                cmd.arg(url(server, Some(&host), p));
            }
            cmd
        }
    };
    run_bounded(&mut cmd, limit, scratch.path(), "client")
}

/// Checks that `dir` holds each of `names` with exactly the bytes of the
/// same file in the peer servers' document root.
pub fn verify_downloads(env: &PeerEnv, dir: &Path, names: &[&str]) -> Result<(), PeerError> {
    for name in names {
        let want = fs::read(env.www_file(name)).map_err(|e| {
            PeerError::new(format!("cannot read {}: {e}", env.www_file(name).display()))
        })?;
        let got_path = dir.join(name);
        let got = fs::read(&got_path)
            .map_err(|e| PeerError::new(format!("no download {}: {e}", got_path.display())))?;
        if got != want {
            let first = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            return Err(PeerError::new(format!(
                "{} differs from {}: {} bytes instead of {}, first difference at byte {first}",
                got_path.display(),
                env.www_file(name).display(),
                got.len(),
                want.len()
            )));
        }
    }
    Ok(())
}

/// What an aioquic HTTP/3 peer (`h3_server.py`, `h3_client.py`) saw of
/// QPACK on one connection, from the `qpack: key=value ...` line it prints
/// (the client on stdout at the end; the server in its log when the
/// connection ends or the server stops). "Ours" below is the aioquic peer;
/// "the other side" is whatever it talked to.
///
/// A field section references the dynamic table exactly when its Encoded
/// Required Insert Count is not 0 (RFC 9204 §4.5.1.1); the peer reads that
/// from the first byte of each section it encodes or decodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QpackStats {
    /// `SETTINGS_QPACK_MAX_TABLE_CAPACITY` it announced.
    pub local_capacity: u64,
    /// `SETTINGS_QPACK_BLOCKED_STREAMS` it announced.
    pub local_blocked: u64,
    /// What the other side announced (0 if absent from its SETTINGS);
    /// `None` if no SETTINGS arrived.
    pub peer_capacity: Option<u64>,
    /// Likewise for blocked streams.
    pub peer_blocked: Option<u64>,
    /// Field sections (HEADERS) it encoded.
    pub sent_sections: u64,
    /// ... of which referenced the dynamic table.
    pub sent_dynamic: u64,
    /// Bytes it sent on its encoder stream (inserts); `None` if aioquic's
    /// private counter is gone.
    pub encoder_bytes_sent: Option<u64>,
    /// Field sections it decoded from the other side.
    pub received_sections: u64,
    /// ... of which referenced the dynamic table: the other side's encoder
    /// used the table this peer's decoder offered.
    pub received_dynamic: u64,
    /// ... of which were blocked at first, waiting for inserts.
    pub received_blocked: u64,
    /// Bytes received on the other side's encoder stream.
    pub encoder_bytes_received: Option<u64>,
    /// Bytes it sent on its decoder stream (acknowledgements).
    pub decoder_bytes_sent: Option<u64>,
    /// Bytes received on the other side's decoder stream.
    pub decoder_bytes_received: Option<u64>,
}

impl QpackStats {
    /// Every `qpack:` line in `text` (a client's stdout, a server's log), in
    /// order; lines that do not parse are skipped.
    pub fn find_all(text: &str) -> Vec<Self> {
        text.lines().filter_map(|l| Self::parse(&l[l.find("qpack: local_capacity=")?..])).collect()
    }

    /// One `qpack: key=value ...` line (from `qpack:` on).
    fn parse(line: &str) -> Option<Self> {
        let words: std::collections::HashMap<&str, &str> = line
            .strip_prefix("qpack: ")?
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let num = |k: &str| words.get(k)?.parse::<u64>().ok();
        let counter = |k: &str| -> Option<Option<u64>> {
            let v = words.get(k)?;
            if *v == "-1" { Some(None) } else { Some(Some(v.parse().ok()?)) }
        };
        let peer = |k: &str| -> Option<Option<u64>> {
            let v = words.get(k)?;
            if *v == "none" { Some(None) } else { Some(Some(v.parse().ok()?)) }
        };
        Some(Self {
            local_capacity: num("local_capacity")?,
            local_blocked: num("local_blocked")?,
            peer_capacity: peer("peer_capacity")?,
            peer_blocked: peer("peer_blocked")?,
            sent_sections: num("sent_sections")?,
            sent_dynamic: num("sent_dynamic")?,
            encoder_bytes_sent: counter("encoder_bytes_sent")?,
            received_sections: num("received_sections")?,
            received_dynamic: num("received_dynamic")?,
            received_blocked: num("received_blocked")?,
            encoder_bytes_received: counter("encoder_bytes_received")?,
            decoder_bytes_sent: counter("decoder_bytes_sent")?,
            decoder_bytes_received: counter("decoder_bytes_received")?,
        })
    }

    /// The other side's encoder referenced the dynamic table in at least
    /// one field section this peer decoded.
    pub fn peer_used_dynamic_table(&self) -> bool {
        self.received_dynamic > 0
    }

    /// This peer's encoder referenced the dynamic table in at least one
    /// field section, so the other side's decoder had to follow its inserts.
    pub fn we_used_dynamic_table(&self) -> bool {
        self.sent_dynamic > 0
    }
}

impl Finished {
    /// The [`QpackStats`] a [`ClientKind::AioquicH3`] run printed, if any.
    pub fn qpack_stats(&self) -> Option<QpackStats> {
        QpackStats::find_all(&self.stdout).pop()
    }
}

impl PeerServer {
    /// The [`QpackStats`] lines of a [`ServerKind::AioquicH3`] log so far,
    /// one per ended connection; after [`PeerServer::stop`] every
    /// connection has one. Empty for the other kinds.
    pub fn qpack_stats(&self) -> Vec<QpackStats> {
        QpackStats::find_all(&self.log())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_reads_printf_q_output() {
        assert_eq!(unquote("/root/.cache/x").unwrap(), "/root/.cache/x");
        assert_eq!(unquote(r"/tmp/a\ b").unwrap(), "/tmp/a b");
        assert!(unquote("$'/tmp/a\\nb'").is_err());
    }

    #[test]
    fn urls_bracket_ipv6() {
        let v4: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let v6: SocketAddr = "[::1]:4433".parse().unwrap();
        assert_eq!(url(v4, None, "/1K.bin"), "https://127.0.0.1:4433/1K.bin");
        assert_eq!(url(v6, None, "1K.bin"), "https://[::1]:4433/1K.bin");
        assert_eq!(url(v4, Some("localhost"), "/a"), "https://localhost:4433/a");
    }

    #[test]
    fn qpack_lines_are_read() {
        let log = "[h3-server 07:21:01] connection #1 qpack: local_capacity=4096 local_blocked=16 \
                   peer_capacity=4096 peer_blocked=100 sent_sections=3 sent_dynamic=2 \
                   encoder_bytes_sent=44 received_sections=3 received_dynamic=3 received_blocked=0 \
                   encoder_bytes_received=33 decoder_bytes_sent=3 decoder_bytes_received=-1\n\
                   h3-client: qpack: local_capacity=0 local_blocked=0 peer_capacity=none \
                   peer_blocked=none sent_sections=0 sent_dynamic=0 encoder_bytes_sent=0 \
                   received_sections=0 received_dynamic=0 received_blocked=0 \
                   encoder_bytes_received=0 decoder_bytes_sent=0 decoder_bytes_received=0\n\
                   qpack: local_capacity=x\n";
        let all = QpackStats::find_all(log);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].peer_blocked, Some(100));
        assert_eq!(all[0].sent_dynamic, 2);
        assert_eq!(all[0].decoder_bytes_received, None);
        assert!(all[0].peer_used_dynamic_table() && all[0].we_used_dynamic_table());
        assert_eq!(all[1].peer_capacity, None);
        assert!(!all[1].peer_used_dynamic_table());
    }

    #[test]
    fn qpack_settings_go_only_to_the_aioquic_h3_scripts() {
        let q = QpackSettings { max_table_capacity: 0, blocked_streams: 3 };
        let mut cmd = Command::new("true");
        assert!(qpack_args(&mut cmd, None, "gtlsserver", false).is_ok());
        assert!(qpack_args(&mut cmd, Some(q), "gtlsserver", false).is_err());
        assert_eq!(cmd.get_args().count(), 0);
        qpack_args(&mut cmd, Some(q), "h3_client.py", true).unwrap();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(args, ["--qpack-capacity", "0", "--qpack-blocked", "3"]);
    }

    #[test]
    fn bound_udp_port_is_seen() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        assert!(udp_port_bound(port));
    }
}
