//! `quic server`: serves the files under a directory over HTTP/3
//! ([`crate::tool::server_h3`]) or hq-interop, whichever ALPN a connection's
//! handshake chose. In hq-interop a request is `GET /path\r\n` on a
//! bidirectional stream; the answer is the file's bytes, then FIN. Errors
//! reset the stream with an [`hq` error code](self::codes).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::driver::{DriverStats, Replay};
use crate::socket::trace::InputRecord;
use crate::{Driver, DriverEvent, IncomingPolicy, Trace, UdpSocket};
use bytes::Bytes;
use quic_proto::connection::{
    Connection, Event, ReadError, ServerConfig, StreamEvent, TransportConfig, WriteError,
};
use quic_proto::endpoint::{ConnectionHandle, Endpoint, EndpointConfig};
use quic_proto::{Dir, Instant, StreamId, VarInt};

use crate::tool::client_h3::Grease;
use crate::tool::server_h3::H3Server;
use crate::tool::tls::{self, Identity, Inputs};
use crate::tool::{Failure, ServerArgs};

/// Application error codes the server resets streams with, after the HTTP
/// status each stands for (hq-interop defines none).
pub(crate) mod codes {
    /// The request was not `GET /path`, or too long.
    pub(crate) const BAD_REQUEST: u32 = 0x190;
    /// Access refused. `quic server` never sends it: a path outside the
    /// served directory is answered as [`NOT_FOUND`], so that the answer
    /// does not tell what exists there. The client still names it.
    pub(crate) const FORBIDDEN: u32 = 0x193;
    /// No such file.
    pub(crate) const NOT_FOUND: u32 = 0x194;
    /// The file could not be read.
    pub(crate) const INTERNAL_ERROR: u32 = 0x1f4;
}

/// The longest request line accepted: a peer cannot make the server buffer more.
const MAX_REQUEST: usize = 4096;
/// File bytes read per step: large enough to keep a stream's send buffer full.
const CHUNK: usize = 256 << 10;

const TOKEN: mio::Token = mio::Token(0);

/// `quic server`; with `replay`, the same command replayed from its trace
/// until the trace ends (the served files must be at hand: `root`
/// overrides `--root`).
pub(crate) fn run(
    args: &ServerArgs,
    replay: Option<(Replay, Option<PathBuf>)>,
) -> Result<(), Failure> {
    if let Some((replay, root)) = replay {
        let mut inputs = Inputs::Replay(replay);
        // The trace's chain and signatures stand in for the identity.
        let identity = Identity::placeholder();
        let tls = tls::server(identity, &args.alpn, None, &mut inputs)?;
        let root = root.as_deref().unwrap_or(&args.root);
        if !root.is_dir() {
            return Err(Failure::other(format!(
                "the recorded server served {}, which is not here: give the directory of the \
                 files it served (conformance replay --root DIR)",
                root.display()
            )));
        }
        let listen = args.listen;
        let server =
            Server::bind(listen, root, tls, EndpointConfig::default(), args.retry, None, &inputs)?;
        return server.serve(&AtomicBool::new(false)).map(drop);
    }
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Identity::from_pem_files(cert, key)?,
        _ => {
            let identity = Identity::self_signed()?;
            println!("generated a self-signed certificate, SHA-256 {}", identity.fingerprint());
            identity
        }
    };
    let trace_dir = args.trace_dir.as_deref();
    let mut inputs = Inputs::live(trace_dir.is_some());
    let tls = tls::server(identity, &args.alpn, args.common.keylog_path(), &mut inputs)?;
    let endpoint = args.common.endpoint_config()?;
    let mut server =
        Server::bind(args.listen, &args.root, tls, endpoint, args.retry, trace_dir, &inputs)?;
    server.log_connections();
    println!("listening on {}", server.local_addr());
    let _ = io::stdout().flush();
    // SIGINT or SIGTERM: close the connections, flush their logs, exit 0.
    // A second signal while that runs exits at once (status 1).
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(signal, stop.clone()))
            .map_err(|e| Failure::other(format!("cannot handle signal {signal}: {e}")))?;
    }
    server.serve(&stop).map(drop)
}

/// The server's trace, `<unix seconds>_<port>_server.pcapng` in `dir`: one
/// file for the socket, every connection in it (Wireshark tells them apart
/// by connection ID).
fn server_trace(dir: &Path, local: SocketAddr) -> Result<Trace, Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::other(format!("cannot create {}: {e}", dir.display())))?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = dir.join(format!("{secs}_{}_server.pcapng", local.port()));
    let mut trace = Trace::create(&path)
        .map_err(|e| Failure::other(format!("cannot create {}: {e}", path.display())))?;
    trace.add_start_input(crate::tool::command_line());
    Ok(trace)
}

/// A file server on a driver with its own `mio::Poll`.
pub(crate) struct Server {
    driver: Driver,
    poll: mio::Poll,
    files: Files,
}

impl Server {
    pub(crate) fn bind(
        listen: SocketAddr,
        root: &Path,
        mut tls: rustls::ServerConfig,
        endpoint: EndpointConfig,
        retry: bool,
        trace_dir: Option<&Path>,
        inputs: &Inputs,
    ) -> Result<Self, Failure> {
        let root = root
            .canonicalize()
            .map_err(|e| Failure::other(format!("cannot serve {}: {e}", root.display())))?;
        let mut transport = TransportConfig::default();
        // Neither hq-interop nor this server's HTTP/3 (no HTTP Datagrams,
        // RFC 9297) has a use for DATAGRAM frames: not offering them makes
        // a peer that sends them anyway a protocol violation (RFC 9221 §3)
        // instead of a queue to fill.
        transport.datagram_receive_buffer(None);
        if let Some(replay) = inputs.replay() {
            let config = ServerConfig { tls: Arc::new(tls), transport: Arc::new(transport) };
            let driver = Driver::replay(replay.clone(), endpoint, Some(config))
                .map_err(|e| Failure::other(format!("cannot replay: {e}")))?;
            return Self::finish(driver, root, retry);
        }
        let socket = UdpSocket::bind(listen)
            .map_err(|e| Failure::other(format!("cannot listen on {listen}: {e}")))?;
        let trace = trace_dir.map(|dir| server_trace(dir, socket.local_addr())).transpose()?;
        let trace = trace.map(|mut trace| {
            tls.key_log = trace.key_log(tls.key_log.clone());
            trace.record_tls_inputs(inputs.log().cloned().unwrap_or_default());
            for cert in inputs.chain() {
                trace.add_start_input(InputRecord::Certificate(cert.to_vec()));
            }
            trace
        });
        let config = ServerConfig { tls: Arc::new(tls), transport: Arc::new(transport) };
        let mut driver = Driver::with_seed(socket, endpoint, Some(config), inputs.seed());
        if let Some(trace) = trace {
            driver.set_trace(trace);
        }
        Self::finish(driver, root, retry)
    }

    fn finish(mut driver: Driver, root: PathBuf, retry: bool) -> Result<Self, Failure> {
        let seed = driver.seed().unwrap_or_default();
        if retry {
            driver.set_incoming_policy(IncomingPolicy::Retry);
        }
        let poll = mio::Poll::new().map_err(|e| Failure::other(format!("mio: {e}")))?;
        driver.register(poll.registry(), TOKEN).map_err(|e| Failure::other(format!("mio: {e}")))?;
        let files = Files {
            root,
            streams: HashMap::new(),
            h3: H3Server::new(Grease::new(&seed)),
            log: false,
            open: HashMap::new(),
        };
        Ok(Self { driver, poll, files })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.driver.local_addr()
    }

    /// Prints one line to stderr per connection when it ends: the peer's
    /// address and why.
    pub(crate) fn log_connections(&mut self) {
        self.files.log = true;
    }

    /// Turns GSO and GRO off on the server's socket (`quic perf`).
    pub(crate) fn disable_offload(&self) -> Result<(), Failure> {
        let socket = self.driver.socket();
        socket.disable_gso();
        socket.disable_gro().map_err(|e| Failure::other(format!("cannot turn UDP GRO off: {e}")))
    }

    /// Serves until `stop` is set (checked every 50 ms).
    pub(crate) fn serve(mut self, stop: &AtomicBool) -> Result<DriverStats, Failure> {
        let mut events = mio::Events::with_capacity(64);
        // A replay stops where its trace ends, or where the original
        // flushed outside a wake-up: its shutdown.
        let replay = self.driver.replaying().cloned();
        let replay_stops = |r: &Replay| r.ended() || r.at_flush();
        while !stop.load(Ordering::Relaxed) && !replay.as_ref().is_some_and(replay_stops) {
            let cap = Duration::from_millis(50);
            let timeout = self.driver.timeout(self.driver.now()).map_or(cap, |t| t.min(cap));
            match self.poll.poll(&mut events, Some(timeout)) {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                    return Err(Failure::other(format!("mio: {e}")));
                }
                _ => {}
            }
            let now = self.driver.now();
            for event in events.iter() {
                self.driver.handle_mio_event(now, event);
            }
            let files = &mut self.files;
            // A stream blocked on a full send buffer resumes on its
            // `Writable` event: no wake-up walks every stream.
            self.driver.process(now, |endpoint, event| files.on_event(endpoint, now, event));
        }
        self.shut_down();
        Ok(self.driver.stats())
    }

    /// Closes every open connection and waits, at most a second, for them
    /// to drain, so that clients learn at once and every connection's qlog
    /// ends with its close. hq-interop connections close at once
    /// (application code 0, "server shutting down"); HTTP/3 ones get a
    /// GOAWAY and close with H3_NO_ERROR once their requests in flight are
    /// answered, or after half a second.
    fn shut_down(&mut self) {
        let now = self.driver.now();
        // In handle order, not the map's random one: a replay closes them
        // in the order the original did.
        let mut open: Vec<ConnectionHandle> = self.files.open.keys().copied().collect();
        open.sort_unstable();
        if open.is_empty() {
            return;
        }
        if self.files.log {
            eprintln!("quic: shutting down: closing {} connection(s)", open.len());
        }
        for h in open {
            if self.files.h3.contains(h) {
                continue;
            }
            if let Some(conn) = self.driver.endpoint().connection(h) {
                conn.close(now, VarInt::from_u32(0), b"server shutting down");
            }
        }
        self.files.h3.goaway(self.driver.endpoint(), now);
        self.driver.flush(now);
        let grace = now + Duration::from_millis(500);
        let deadline = now + Duration::from_secs(1);
        let mut events = mio::Events::with_capacity(64);
        let replay = self.driver.replaying().cloned();
        while !self.files.open.is_empty()
            && self.driver.now() < deadline
            && !replay.as_ref().is_some_and(Replay::ended)
        {
            let now = self.driver.now();
            let cap = deadline.saturating_duration_since(now);
            let timeout = self.driver.timeout(now).map_or(cap, |t| t.min(cap));
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return;
            }
            let now = self.driver.now();
            for event in events.iter() {
                self.driver.handle_mio_event(now, event);
            }
            let files = &mut self.files;
            self.driver.process(now, |endpoint, event| files.on_event(endpoint, now, event));
            if now >= grace {
                self.files.h3.close_all(self.driver.endpoint(), now);
            }
        }
    }
}

/// Per-stream state of the file server.
enum Stream {
    /// Reading the request line.
    Request(Vec<u8>),
    /// Sending a file: what `write_bytes` has not taken yet, then the rest.
    Sending { file: File, pending: Bytes },
}

struct Files {
    root: PathBuf,
    /// hq-interop request streams.
    streams: HashMap<(ConnectionHandle, StreamId), Stream>,
    /// The HTTP/3 connections.
    h3: H3Server,
    /// Print a line per connection when it ends.
    log: bool,
    /// Connections accepted whose end has not been printed, and their peers.
    open: HashMap<ConnectionHandle, SocketAddr>,
}

impl Files {
    fn on_event(&mut self, endpoint: &mut Endpoint, now: Instant, event: DriverEvent) {
        let (h, event) = match event {
            DriverEvent::Accepted(h) => {
                if let Some(conn) = endpoint.connection(h) {
                    self.open.insert(h, conn.remote_address());
                    if conn.alpn() == Some(h3_proto::ALPN_H3) {
                        self.h3.start(conn, h, now);
                    }
                }
                return;
            }
            DriverEvent::Connection(h, event) => (h, event),
            _ => return,
        };
        if let Event::Drained = event {
            // The endpoint may have forgotten the connection already (its
            // handle then finds nothing). Every end comes with
            // `ConnectionLost`; should one not, it is still reported.
            self.streams.retain(|(c, _), _| *c != h);
            let error = endpoint.connection(h).and_then(|c| c.error()).cloned();
            let h3 = self.h3.end(h, error.as_ref());
            if let Some(peer) = self.open.remove(&h) {
                let reason =
                    h3.or_else(|| error.map(|e| e.to_string())).unwrap_or_else(|| "drained".into());
                self.report(peer, &reason);
            }
            return;
        }
        let Some(conn) = endpoint.connection(h) else { return };
        if self.h3.contains(h) || conn.alpn() == Some(h3_proto::ALPN_H3) {
            self.h3.handle_event(conn, h, now, &event, &self.root);
            if let Event::ConnectionLost(e) = &event {
                let reason = self.h3.end(h, Some(e)).unwrap_or_else(|| e.to_string());
                self.open.remove(&h);
                self.report(conn.remote_address(), &reason);
            }
            return;
        }
        while let Some(id) = conn.accept_stream(Dir::Bi) {
            self.streams.insert((h, id), Stream::Request(Vec::new()));
            self.step(conn, h, id);
        }
        while let Some(id) = conn.accept_stream(Dir::Uni) {
            // hq-interop uses no unidirectional streams.
            let _ = conn.stop(id, VarInt::from_u32(codes::BAD_REQUEST));
        }
        match event {
            Event::Stream(StreamEvent::Readable(id) | StreamEvent::Writable(id)) => {
                self.step(conn, h, id);
            }
            Event::Stream(StreamEvent::Stopped(id, _)) => {
                self.streams.remove(&(h, id));
                let _ = conn.reset(id, VarInt::from_u32(0));
            }
            Event::ConnectionLost(e) => {
                self.streams.retain(|(c, _), _| *c != h);
                self.open.remove(&h);
                self.report(conn.remote_address(), &e.to_string());
            }
            _ => {}
        }
    }

    /// Prints `quic: PEER closed: REASON`.
    fn report(&self, peer: SocketAddr, reason: &str) {
        if self.log {
            eprintln!("quic: {peer} closed: {reason}");
        }
    }

    /// Advances one stream as far as it goes now.
    fn step(&mut self, conn: &mut Connection, h: ConnectionHandle, id: StreamId) {
        let Some(stream) = self.streams.get_mut(&(h, id)) else { return };
        if let Stream::Request(request) = stream {
            match read_request(conn, id, request) {
                Ok(None) => return,
                Ok(Some(path)) => match open(&self.root, &path) {
                    Some(file) => *stream = Stream::Sending { file, pending: Bytes::new() },
                    None => return self.fail(conn, h, id, codes::NOT_FOUND),
                },
                Err(code) => return self.fail(conn, h, id, code),
            }
        }
        let Stream::Sending { file, pending } = stream else { return };
        loop {
            if pending.is_empty() {
                let mut buf = vec![0; CHUNK];
                match file.read(&mut buf) {
                    Ok(0) => {
                        let _ = conn.finish(id);
                        self.streams.remove(&(h, id));
                        return;
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        *pending = Bytes::from(buf);
                    }
                    Err(_) => return self.fail(conn, h, id, codes::INTERNAL_ERROR),
                }
            }
            match conn.write_bytes(id, pending.clone()) {
                Ok(0) | Err(WriteError::Blocked) => return,
                Ok(n) => *pending = pending.slice(n..),
                Err(_) => {
                    self.streams.remove(&(h, id));
                    return;
                }
            }
        }
    }

    fn fail(&mut self, conn: &mut Connection, h: ConnectionHandle, id: StreamId, code: u32) {
        self.streams.remove(&(h, id));
        let _ = conn.reset(id, VarInt::from_u32(code));
        let _ = conn.stop(id, VarInt::from_u32(code));
    }
}

/// The file a request path names under `root` (canonical), if it lies
/// inside; what both protocols serve.
///
/// Whatever lies outside the root answers exactly as a missing file does
/// (hq-interop's `NOT_FOUND`, HTTP/3's 404), whether or not it exists: a
/// distinct answer would let a client map the file system beyond the
/// root. The path is taken literally
/// (no percent-decoding), a leading `/` and the query are dropped, and `.`
/// and `..` are resolved lexically first: a path that climbs above the root
/// at any point is refused even if it comes back in (`/../www/x` would
/// reveal the root's name). What is left is canonicalised (symbolic links
/// resolved) and must still start with `root`.
pub(crate) fn open(root: &Path, path: &str) -> Option<File> {
    let relative = path.split(['?', '#']).next().unwrap_or("");
    let mut inside = PathBuf::new();
    for segment in relative.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if !inside.pop() {
                    return None;
                }
            }
            name => inside.push(name),
        }
    }
    let canonical = root.join(inside).canonicalize().ok()?;
    if !canonical.starts_with(root) || !canonical.is_file() {
        return None;
    }
    File::open(&canonical).ok()
}

/// Reads what has arrived of a request; the path once the line is complete.
fn read_request(
    conn: &mut Connection,
    id: StreamId,
    request: &mut Vec<u8>,
) -> Result<Option<String>, u32> {
    let mut fin = false;
    loop {
        match conn.read_chunk(id, MAX_REQUEST) {
            Ok(Some(chunk)) => {
                request.extend_from_slice(&chunk);
                if request.len() > MAX_REQUEST {
                    return Err(codes::BAD_REQUEST);
                }
            }
            Ok(None) => {
                fin = true;
                break;
            }
            Err(ReadError::Blocked) => break,
            Err(_) => return Err(codes::BAD_REQUEST),
        }
    }
    let line = match request.iter().position(|&b| b == b'\n') {
        Some(end) => &request[..end],
        None if fin => &request[..],
        None => return Ok(None),
    };
    let line = std::str::from_utf8(line).map_err(|_| codes::BAD_REQUEST)?.trim_end_matches('\r');
    match line.strip_prefix("GET ") {
        Some(path) if path.starts_with('/') => Ok(Some(path.trim().to_owned())),
        _ => Err(codes::BAD_REQUEST),
    }
}
