//! The implementations the matrix pairs up, each as a server it can start
//! and a client it can run, and the cases each one can take part in.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use super::Case;
use crate::peers::{
    self, ClientConfig, ClientKind, Finished, PeerEnv, PeerError, PeerServer, ScratchDir,
    ServerConfig, ServerKind,
};

/// An implementation in the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// This stack: the `quic` binary.
    Ours,
    /// aioquic, through the scripts in `conformance/peers`.
    Aioquic,
    /// ngtcp2's `gtlsserver` / `gtlsclient` (HTTP/3 only).
    Ngtcp2,
    /// quinn 0.11, through `quinn-endpoint` (hq-interop only).
    Quinn,
}

/// Which side of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Starts the connection.
    Client,
    /// Serves the files.
    Server,
}

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Kind; 4] = [Kind::Ours, Kind::Aioquic, Kind::Ngtcp2, Kind::Quinn];

    /// The name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "self",
            Kind::Aioquic => "aioquic",
            Kind::Ngtcp2 => "ngtcp2",
            Kind::Quinn => "quinn",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// `Err(why)` when this endpoint cannot take part in `case` as `role`:
    /// the runner's exit code 127.
    pub fn supports(self, case: Case, role: Role) -> Result<(), String> {
        use Case::*;
        match self {
            Kind::Quinn => match (case, role) {
                (
                    Handshake | Transfer | LongRtt | ChaCha20 | Multiplexing | Retry | Blackhole,
                    _,
                )
                | (HandshakeLoss | TransferLoss | HandshakeCorruption | TransferCorruption, _)
                | (Ipv6 | Goodput | AmplificationLimit | RebindPort | RebindAddr, _)
                | (KeyUpdate, Role::Server) => Ok(()),
                (KeyUpdate, Role::Client) => Err("quinn: the API cannot start a key update".into()),
                (Http3, _) => Err("quinn-endpoint: hq-interop only, no HTTP/3".into()),
                (V2, _) => Err("quinn 0.11: no QUIC v2".into()),
                _ => Err("quinn-endpoint: not implemented for this case".into()),
            },
            Kind::Ngtcp2 => match case {
                Http3 => Ok(()),
                _ => {
                    Err("ngtcp2 (Debian 0.12.1) has only its HTTP/3 examples, no hq-interop".into())
                }
            },
            Kind::Ours => match case {
                Resumption | ZeroRtt => {
                    Err("self: no session resumption or 0-RTT yet (#13)".into())
                }
                RebindPort | RebindAddr if role == Role::Client => Ok(()),
                RebindPort | RebindAddr | ConnectionMigration => {
                    Err("self: no connection migration yet (#14)".into())
                }
                // `quic client --version 2` starts in v2; the runner wants a
                // v1 Initial that the server upgrades.
                V2 => Err("self: no compatible version negotiation (RFC 9368) yet; \
                           v2 works only when the client starts in v2"
                    .into()),
                _ => Ok(()),
            },
            Kind::Aioquic => match (case, role) {
                (Resumption | ZeroRtt, _) => {
                    Err("aioquic scripts: no session ticket reuse between connections".into())
                }
                (ConnectionMigration, Role::Client) => {
                    Err("aioquic scripts: the client does not migrate".into())
                }
                (V2, Role::Client) => Err("aioquic scripts: the client starts in v2 \
                     instead of offering it from v1 (compatible version negotiation)"
                    .into()),
                _ => Ok(()),
            },
        }
    }
}

/// What a server needs to be started for a case.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Address to bind (port chosen here).
    pub ip: IpAddr,
    /// The files to serve.
    pub www: PathBuf,
    /// HTTP/3 rather than hq-interop.
    pub h3: bool,
    /// Send a Retry first.
    pub retry: bool,
    /// Key log file.
    pub keylog: PathBuf,
    /// qlog folder.
    pub qlog_dir: PathBuf,
    /// Kill it after this long.
    pub lifetime: Duration,
    /// Certificate chain and key (PEM) to serve with, instead of the
    /// harness's (amplificationlimit's long chain).
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
}

impl ServerSpec {
    fn cert(&self, progs: &Programs) -> PathBuf {
        self.cert_and_key.as_ref().map_or_else(|| progs.env.cert.clone(), |(c, _)| c.clone())
    }

    fn key(&self, progs: &Programs) -> PathBuf {
        self.cert_and_key.as_ref().map_or_else(|| progs.env.key.clone(), |(_, k)| k.clone())
    }
}

/// What a client run needs.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// Where to connect (the relay).
    pub server: SocketAddr,
    /// Paths to fetch, e.g. `/a.bin`.
    pub paths: Vec<String>,
    /// Download folder.
    pub out: PathBuf,
    /// CA that signed the server's certificate.
    pub ca: PathBuf,
    /// HTTP/3 rather than hq-interop.
    pub h3: bool,
    /// Offer only ChaCha20-Poly1305.
    pub chacha20: bool,
    /// Update keys once the handshake is confirmed.
    pub key_update: bool,
    /// QUIC version 2 (RFC 9369).
    pub v2: bool,
    /// Key log file.
    pub keylog: PathBuf,
    /// qlog folder.
    pub qlog_dir: PathBuf,
    /// Limit for the whole run.
    pub timeout: Duration,
}

/// Where the programs are.
#[derive(Clone, Debug)]
pub struct Programs {
    /// The interop peers.
    pub env: PeerEnv,
    /// Our `quic` binary.
    pub quic: PathBuf,
    /// `quinn-endpoint`, if built.
    pub quinn: Option<PathBuf>,
}

/// `quinn-endpoint` next to the running executable (or its parent for test
/// binaries in deps/), if it was built.
pub fn find_quinn_endpoint() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Some(dir.join("quinn-endpoint")).filter(|p| p.is_file())
}

/// `quic` next to the running executable (target/<profile>/, or its
/// parent for test binaries in deps/); when absent, builds it with cargo in
/// the same profile and says so on stderr.
pub fn find_or_build_quic() -> Result<PathBuf, PeerError> {
    let exe = std::env::current_exe().map_err(|e| PeerError::new(format!("current_exe: {e}")))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let quic = dir.join("quic");
    if quic.is_file() {
        return Ok(quic);
    }
    let release = dir.ends_with("release");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "-p", "quic-mio", "--bin", "quic"]);
    if release {
        cmd.arg("--release");
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    eprintln!(
        "matrix: {} is missing; building it: cargo build -p quic-mio --bin quic{}",
        quic.display(),
        if release { " --release" } else { "" }
    );
    let status =
        cmd.status().map_err(|e| PeerError::new(format!("cannot run cargo to build quic: {e}")))?;
    if !status.success() || !quic.is_file() {
        return Err(PeerError::new(format!(
            "{} is missing and `cargo build -p quic-mio --bin quic` did not make it ({status})",
            quic.display()
        )));
    }
    Ok(quic)
}

/// A running server.
#[derive(Debug)]
pub enum Server {
    /// A server program run here (`quic server`, `quinn-endpoint server`), with its scratch folder for logs.
    Process {
        /// The process (`None` once stopped).
        child: Option<Child>,
        /// Where it listens.
        addr: SocketAddr,
        /// Its logs.
        scratch: ScratchDir,
        /// Its command line.
        command: String,
    },
    /// A peer from `conformance::peers`.
    Peer(PeerServer),
}

impl Server {
    /// Starts `kind`'s server; returns once its socket is bound.
    pub fn start(kind: Kind, progs: &Programs, spec: &ServerSpec) -> Result<Server, PeerError> {
        match kind {
            Kind::Ours => start_ours(progs, spec),
            Kind::Aioquic | Kind::Ngtcp2 => {
                let sk = match (kind, spec.h3) {
                    (Kind::Ngtcp2, _) => ServerKind::Ngtcp2H3,
                    (_, true) => ServerKind::AioquicH3,
                    _ => ServerKind::AioquicHq,
                };
                let mut cfg = ServerConfig::new(sk);
                cfg.ip = spec.ip;
                cfg.retry = spec.retry;
                cfg.keylog = Some(spec.keylog.clone());
                cfg.qlog_dir = Some(spec.qlog_dir.clone());
                cfg.root = Some(spec.www.clone());
                cfg.lifetime = spec.lifetime;
                cfg.cert_and_key = spec.cert_and_key.clone();
                PeerServer::start(&progs.env, &cfg).map(Server::Peer)
            }
            Kind::Quinn => start_quinn(progs, spec),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::Process { addr, .. } => *addr,
            Server::Peer(p) => p.addr(),
        }
    }

    /// Stops it and returns its log.
    pub fn stop(&mut self) -> String {
        match self {
            Server::Process { child, scratch, command, .. } => {
                if let Some(mut c) = child.take() {
                    peers::stop_group(&mut c, Duration::from_secs(3));
                }
                let read = |ext: &str| {
                    fs::read_to_string(scratch.path().join(format!("server.{ext}")))
                        .unwrap_or_default()
                };
                format!("command: {command}\n{}{}", read("out"), read("err"))
            }
            Server::Peer(p) => p.stop(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Server::Process { child: Some(c), .. } = self {
            peers::stop_group(c, Duration::from_secs(1));
        }
    }
}

fn start_quinn(progs: &Programs, spec: &ServerSpec) -> Result<Server, PeerError> {
    let quinn =
        progs.quinn.as_ref().ok_or_else(|| PeerError::new("quinn-endpoint is not built"))?;
    let scratch = ScratchDir::new("quinn-server")?;
    let port = peers::free_udp_port(spec.ip)?;
    let addr = SocketAddr::new(spec.ip, port);
    let mut cmd = peers::bounded_command(quinn, spec.lifetime, scratch.path(), "server")?;
    cmd.arg("server")
        .args(["--listen", &addr.to_string()])
        .arg("--root")
        .arg(&spec.www)
        .arg("--cert")
        .arg(spec.cert(progs))
        .arg("--key")
        .arg(spec.key(progs))
        .env("SSLKEYLOGFILE", &spec.keylog);
    if spec.retry {
        cmd.arg("--retry");
    }
    wait_bound(cmd, addr, scratch)
}

fn start_ours(progs: &Programs, spec: &ServerSpec) -> Result<Server, PeerError> {
    let scratch = ScratchDir::new("self-server")?;
    let port = peers::free_udp_port(spec.ip)?;
    let addr = SocketAddr::new(spec.ip, port);
    let mut cmd = peers::bounded_command(&progs.quic, spec.lifetime, scratch.path(), "server")?;
    cmd.arg("server")
        .args(["--listen", &addr.to_string()])
        .arg("--root")
        .arg(&spec.www)
        .arg("--cert")
        .arg(spec.cert(progs))
        .arg("--key")
        .arg(spec.key(progs))
        .args(["--alpn", if spec.h3 { "h3" } else { "hq-interop" }])
        .arg("--keylog")
        .arg(&spec.keylog)
        .arg("--qlog-dir")
        .arg(&spec.qlog_dir);
    if spec.retry {
        cmd.arg("--retry");
    }
    wait_bound(cmd, addr, scratch)
}

/// Spawns a server command and waits until its UDP port is bound.
fn wait_bound(
    mut cmd: Command,
    addr: SocketAddr,
    scratch: ScratchDir,
) -> Result<Server, PeerError> {
    let port = addr.port();
    let command = format!("{cmd:?}");
    let child = cmd.spawn().map_err(|e| PeerError::new(format!("cannot start {command}: {e}")))?;
    let mut server = Server::Process { child: Some(child), addr, scratch, command };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Server::Process { child: Some(c), .. } = &mut server
            && let Ok(Some(status)) = c.try_wait()
        {
            let log = server.stop();
            return Err(PeerError::new(format!("server exited ({status}):\n{log}")));
        }
        if peers::udp_port_bound(port) {
            return Ok(server);
        }
        if Instant::now() >= deadline {
            let log = server.stop();
            return Err(PeerError::new(format!("server did not bind {addr}:\n{log}")));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `kind`'s client once for all of `spec.paths` on one connection.
pub fn run_client(kind: Kind, progs: &Programs, spec: &ClientSpec) -> Result<Finished, PeerError> {
    fs::create_dir_all(&spec.out)
        .map_err(|e| PeerError::new(format!("cannot create {}: {e}", spec.out.display())))?;
    match kind {
        Kind::Ours => {
            let scratch = ScratchDir::new("self-client")?;
            let limit = spec.timeout;
            let mut cmd = peers::bounded_command(&progs.quic, limit, scratch.path(), "client")?;
            cmd.arg("client");
            for p in &spec.paths {
                cmd.arg(peers::url(spec.server, None, p));
            }
            cmd.arg("--output-dir")
                .arg(&spec.out)
                .args(["--alpn", if spec.h3 { "h3" } else { "hq-interop" }])
                .arg("--ca")
                .arg(&spec.ca)
                .args(["--timeout", &spec.timeout.as_secs().max(1).to_string()])
                .arg("--keylog")
                .arg(&spec.keylog)
                .arg("--qlog-dir")
                .arg(&spec.qlog_dir);
            if spec.chacha20 {
                cmd.arg("--chacha20");
            }
            if spec.key_update {
                cmd.arg("--key-update");
            }
            if spec.v2 {
                cmd.args(["--version", "2"]);
            }
            peers::run_bounded(&mut cmd, limit, scratch.path(), "client")
        }
        Kind::Aioquic | Kind::Ngtcp2 => {
            let ck = match (kind, spec.h3) {
                (Kind::Ngtcp2, _) => ClientKind::Ngtcp2H3,
                (_, true) => ClientKind::AioquicH3,
                _ => ClientKind::AioquicHq,
            };
            let mut cfg = ClientConfig::new(ck, &spec.out);
            cfg.ca = Some(spec.ca.clone());
            cfg.keylog = Some(spec.keylog.clone());
            cfg.qlog_dir = Some(spec.qlog_dir.clone());
            cfg.chacha20 = spec.chacha20;
            cfg.key_update = spec.key_update;
            cfg.version = if spec.v2 { 2 } else { 1 };
            cfg.timeout = spec.timeout;
            let paths: Vec<&str> = spec.paths.iter().map(String::as_str).collect();
            peers::run_client(&progs.env, &cfg, spec.server, &paths)
        }
        Kind::Quinn => {
            let quinn = progs
                .quinn
                .as_ref()
                .ok_or_else(|| PeerError::new("quinn-endpoint is not built"))?;
            let scratch = ScratchDir::new("quinn-client")?;
            let mut cmd = peers::bounded_command(quinn, spec.timeout, scratch.path(), "client")?;
            cmd.arg("client");
            for p in &spec.paths {
                cmd.arg(peers::url(spec.server, None, p));
            }
            cmd.arg("--output-dir")
                .arg(&spec.out)
                .arg("--ca")
                .arg(&spec.ca)
                .args(["--timeout", &spec.timeout.as_secs().max(1).to_string()])
                .env("SSLKEYLOGFILE", &spec.keylog);
            if spec.chacha20 {
                cmd.arg("--chacha20");
            }
            peers::run_bounded(&mut cmd, spec.timeout, scratch.path(), "client")
        }
    }
}
