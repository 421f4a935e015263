//! Servers to flood: one in this process (a minimal hq-interop file server
//! on the quic-mio driver, default settings, like `quic server`), or a
//! `quic server` process serving a temporary directory.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use quic_mio::{Driver, DriverEvent};
use quic_proto::connection::{Connection, Event, ReadError, ServerConfig, StreamEvent};
use quic_proto::endpoint::{ConnectionHandle, Endpoint, EndpointConfig};
use quic_proto::testing::TestPki;
use quic_proto::{Dir, StreamId, VarInt};

use super::procstat::Watched;
use super::tls::{HQ_INTEROP, Trust, provider};

/// What the servers here serve, at `/small.txt` (any path, in process).
pub const SMALL_FILE_LEN: usize = 1000;
/// The longest request line the in-process server reads, as `quic server`.
const MAX_REQUEST: usize = 4096;
/// `quic server`'s code for a request that is not `GET /path`.
const BAD_REQUEST: u32 = 0x190;

/// A file server on a thread of this process, on 127.0.0.1 with the
/// driver's default settings; stops when dropped.
#[derive(Debug)]
pub struct InProcessServer {
    addr: SocketAddr,
    trust: Trust,
    watched: Option<Watched>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl InProcessServer {
    /// Starts the server with a certificate from a test PKI made from `seed`.
    pub fn start(seed: u64) -> Result<Self, String> {
        let pki = TestPki::new(seed);
        let tls = quic_proto::crypto::session::config::server_config(
            provider(),
            Arc::new(rustls::time_provider::DefaultTimeProvider),
            pki.server_cert_chain(),
            pki.server_key(),
            None,
            vec![HQ_INTEROP.to_vec()],
        )
        .map_err(|e| format!("TLS server configuration: {e}"))?;
        let config = ServerConfig { tls: Arc::new(tls), transport: Arc::default() };
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut driver = Driver::bind(listen, EndpointConfig::default(), Some(config))
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let poll = mio::Poll::new().map_err(|e| format!("mio: {e}"))?;
        driver.register(poll.registry(), mio::Token(0)).map_err(|e| format!("mio: {e}"))?;
        let addr = driver.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flood-target".into())
            .spawn(move || {
                let _ = tx.send(Watched::this_thread());
                serve(driver, poll, &flag);
            })
            .map_err(|e| format!("cannot start the server thread: {e}"))?;
        let watched = rx.recv().ok().flatten();
        Ok(Self { addr, trust: Trust::Roots(pki.roots()), watched, stop, thread: Some(thread) })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What a client must trust to connect.
    pub fn trust(&self) -> Trust {
        self.trust.clone()
    }

    /// The server's thread, for CPU figures (memory is the whole process's).
    pub fn watched(&self) -> Option<Watched> {
        self.watched
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server's loop, until `stop` is set (checked every 50 ms at most).
fn serve(mut driver: Driver, mut poll: mio::Poll, stop: &AtomicBool) {
    let mut events = mio::Events::with_capacity(64);
    let mut requests = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let cap = Duration::from_millis(50);
        let timeout = driver.timeout(driver.now()).map_or(cap, |t| t.min(cap));
        if let Err(e) = poll.poll(&mut events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return;
        }
        let now = driver.now();
        for event in events.iter() {
            driver.handle_mio_event(now, event);
        }
        driver.process(now, |endpoint, event| on_event(&mut requests, endpoint, event));
    }
}

/// Request lines being read, per stream.
type Requests = HashMap<(ConnectionHandle, StreamId), Vec<u8>>;

fn on_event(requests: &mut Requests, endpoint: &mut Endpoint, event: DriverEvent) {
    let DriverEvent::Connection(h, event) = event else { return };
    if let Event::Drained | Event::ConnectionLost(_) = event {
        requests.retain(|(c, _), _| *c != h);
        return;
    }
    let Some(conn) = endpoint.connection(h) else { return };
    while let Some(id) = conn.accept_stream(Dir::Bi) {
        requests.insert((h, id), Vec::new());
        answer(requests, conn, h, id);
    }
    while let Some(id) = conn.accept_stream(Dir::Uni) {
        let _ = conn.stop(id, VarInt::from_u32(BAD_REQUEST));
    }
    if let Event::Stream(StreamEvent::Readable(id)) = event {
        answer(requests, conn, h, id);
    }
}

/// Reads what has arrived of a request; once the line is complete, sends
/// [`SMALL_FILE_LEN`] bytes (they fit a fresh stream's send buffer) and FIN.
fn answer(requests: &mut Requests, conn: &mut Connection, h: ConnectionHandle, id: StreamId) {
    let Some(request) = requests.get_mut(&(h, id)) else { return };
    let mut fin = false;
    loop {
        match conn.read_chunk(id, MAX_REQUEST) {
            Ok(Some(chunk)) => {
                request.extend_from_slice(&chunk);
                if request.len() > MAX_REQUEST {
                    break;
                }
            }
            Ok(None) => {
                fin = true;
                break;
            }
            Err(ReadError::Blocked) => break,
            Err(_) => {
                requests.remove(&(h, id));
                return;
            }
        }
    }
    let complete = fin || request.contains(&b'\n');
    if !complete && request.len() <= MAX_REQUEST {
        return;
    }
    let good = request.starts_with(b"GET /") && request.len() <= MAX_REQUEST;
    requests.remove(&(h, id));
    if good {
        let _ = conn.write(id, &[b'x'; SMALL_FILE_LEN]);
        let _ = conn.finish(id);
    } else {
        let _ = conn.reset(id, VarInt::from_u32(BAD_REQUEST));
        let _ = conn.stop(id, VarInt::from_u32(BAD_REQUEST));
    }
}

/// A `quic server` process serving a temporary directory that holds
/// `small.txt` ([`SMALL_FILE_LEN`] bytes), on 127.0.0.1 with a generated
/// self-signed certificate; killed when dropped.
#[derive(Debug)]
pub struct SpawnedServer {
    child: Child,
    addr: SocketAddr,
    _root: tempfile::TempDir,
}

impl SpawnedServer {
    /// Starts `quic server` from the binary at `quic`.
    pub fn spawn(quic: &Path) -> Result<Self, String> {
        let root = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        std::fs::write(root.path().join("small.txt"), [b'x'; SMALL_FILE_LEN])
            .map_err(|e| format!("writing the served file: {e}"))?;
        let mut child = Command::new(quic)
            .args(["server", "--listen", "127.0.0.1:0", "--root"])
            .arg(root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // A line per connection that ends: thousands under a flood.
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", quic.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut addr = None;
        for line in BufReader::new(stdout).lines().take(16) {
            let Ok(line) = line else { break };
            if let Some(a) = line.strip_prefix("listening on ") {
                addr = a.trim().parse().ok();
                break;
            }
        }
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} server did not say where it listens", quic.display()));
        };
        Ok(Self { child, addr, _root: root })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process, for its CPU and memory figures.
    pub fn watched(&self) -> Watched {
        Watched::process(self.child.id())
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `quic` binary: next to the running executable (both built by one
/// `cargo build`), else `target/release/quic` or `target/debug/quic` under
/// the current directory.
pub fn find_quic_binary() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("quic")));
    beside
        .into_iter()
        .chain(["target/release/quic", "target/debug/quic"].map(PathBuf::from))
        .find(|p| p.is_file())
}
