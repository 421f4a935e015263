//! `quic client`: downloads URLs over hq-interop, all on one connection,
//! several streams at once (as many as the server's stream limit allows).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use quic_mio::driver::DriverStats;
use quic_mio::{Driver, DriverEvent};
use quic_proto::connection::{
    ClientConfig, ConnectionError, Event, ReadError, StreamEvent, TransportConfig,
};
use quic_proto::endpoint::EndpointConfig;
use quic_proto::{Dir, Instant, StreamId, TransportErrorCode, VarInt, Version};

use crate::perf::Checksum;
use crate::server::codes;
use crate::tls::{self, Trust};
use crate::{ClientArgs, Failure};

const TOKEN: mio::Token = mio::Token(0);

/// Where downloaded bytes go.
pub(crate) enum Sink {
    /// Files in this directory.
    Dir(PathBuf),
    /// Nowhere: only their SHA-256 is kept (the demo).
    Hash,
    /// Nowhere: only a cheap [`Checksum`] is kept, no SHA-256 (`quic perf`).
    Checksum,
}

/// What a download needs.
pub(crate) struct Options {
    pub(crate) server: SocketAddr,
    pub(crate) server_name: String,
    pub(crate) paths: Vec<String>,
    pub(crate) tls: rustls::ClientConfig,
    pub(crate) version: Version,
    pub(crate) key_update: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) sink: Sink,
    pub(crate) endpoint: EndpointConfig,
    /// Use GSO and GRO where the kernel has them; false turns both off.
    pub(crate) offload: bool,
}

/// What a download measured.
pub(crate) struct Summary {
    pub(crate) files: usize,
    pub(crate) bytes: u64,
    pub(crate) total: Duration,
    pub(crate) transfer: Duration,
    pub(crate) handshake: Duration,
    pub(crate) rtt: Duration,
    pub(crate) lost: u64,
    pub(crate) key_updates: u64,
    /// SHA-256 of each file, in request order (none with [`Sink::Checksum`]).
    pub(crate) sha256: Vec<[u8; 32]>,
    /// [`Checksum`] of each file, in request order (only with [`Sink::Checksum`]).
    pub(crate) checksums: Vec<u64>,
    pub(crate) driver: DriverStats,
}

impl Summary {
    /// Megabytes (10^6 bytes) per second over the transfer.
    pub(crate) fn rate(&self) -> f64 {
        self.bytes as f64 / self.transfer.as_secs_f64().max(1e-9) / 1e6
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "downloaded {} file{}, {} bytes in {:.3} s ({:.1} MB/s); handshake {:.1} ms, \
             RTT {:.2} ms, {} packets lost",
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.bytes,
            self.total.as_secs_f64(),
            self.rate(),
            self.handshake.as_secs_f64() * 1e3,
            self.rtt.as_secs_f64() * 1e3,
            self.lost,
        )?;
        if self.key_updates > 0 {
            write!(
                f,
                ", {} key update{}",
                self.key_updates,
                if self.key_updates == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

pub(crate) fn run(args: &ClientArgs) -> Result<Summary, Failure> {
    let mut authority = None;
    let mut paths = Vec::new();
    for url in &args.urls {
        let (host, port, path) = parse_url(url)?;
        match &authority {
            None => authority = Some((host, port)),
            Some(a) if *a == (host.clone(), port) => {}
            Some(_) => return Err(Failure::other("all URLs must name the same server")),
        }
        paths.push(path);
    }
    let (host, port) = authority.ok_or_else(|| Failure::other("no URL given"))?;
    let server = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| Failure::other(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| Failure::other(format!("{host} has no address")))?;
    let trust = match (&args.ca, args.insecure) {
        (_, true) => Trust::Insecure,
        (Some(ca), false) => Trust::File(ca.clone()),
        (None, false) => Trust::System,
    };
    let tls = tls::client(trust, &args.alpn, args.chacha20, args.common.keylog_path())?;
    std::fs::create_dir_all(&args.output_dir)
        .map_err(|e| Failure::other(format!("cannot create {}: {e}", args.output_dir.display())))?;
    download(Options {
        server,
        server_name: host,
        paths,
        tls,
        version: if args.version == "2" { Version::V2 } else { Version::V1 },
        key_update: args.key_update,
        handshake_timeout: Duration::from_secs(args.timeout),
        sink: Sink::Dir(args.output_dir.clone()),
        endpoint: args.common.endpoint_config()?,
        offload: true,
    })
}

/// Splits `https://host[:port]/path` (an IPv6 host in brackets).
fn parse_url(url: &str) -> Result<(String, u16, String), Failure> {
    let bad = || Failure::other(format!("not an https://host[:port]/path URL: {url}"));
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if after.is_empty() => 443,
            None => return Err(bad()),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (host, p.parse().map_err(|_| bad())?),
            None => (authority, 443),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

/// The file name a path is saved under: its last segment.
fn file_name(path: &str) -> String {
    let last = path.split(['?', '#']).next().unwrap_or("").rsplit('/').next().unwrap_or("");
    match last {
        "" => "index.html".to_owned(),
        ".." | "." => "download".to_owned(),
        name => name.to_owned(),
    }
}

/// A file being downloaded: written under a temporary name in the output
/// directory, renamed to its own name once complete; removed if the
/// download does not complete, so no partial or empty file is left.
struct PartFile {
    out: BufWriter<File>,
    temp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl PartFile {
    /// Creates the temporary file for `name` in `dir`; `index` tells apart
    /// the requests of one run.
    fn create(dir: &Path, name: &str, index: usize) -> Result<Self, Failure> {
        let target = dir.join(name);
        let temp = dir.join(format!(".{name}.{}-{index}.part", std::process::id()));
        let file = File::create(&temp)
            .map_err(|e| Failure::other(format!("cannot create {}: {e}", temp.display())))?;
        Ok(Self { out: BufWriter::with_capacity(1 << 20, file), temp, target, done: false })
    }

    /// Flushes the file and gives it its name.
    fn complete(&mut self) -> io::Result<()> {
        self.out.flush()?;
        std::fs::rename(&self.temp, &self.target)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// One requested file.
struct Download {
    path: String,
    out: Option<PartFile>,
    hash: Option<digest::Context>,
    checksum: Option<Checksum>,
    bytes: u64,
    done: bool,
}

/// Connects, requests every path, and stores or hashes the answers.
pub(crate) fn download(options: Options) -> Result<Summary, Failure> {
    let mio_err = |e: io::Error| Failure::other(format!("mio: {e}"));
    let bind: SocketAddr = if options.server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let mut driver = Driver::bind(bind, options.endpoint, None)
        .map_err(|e| Failure::other(format!("cannot bind a UDP socket: {e}")))?;
    let mut poll = mio::Poll::new().map_err(mio_err)?;
    if !options.offload {
        driver.socket().disable_gso();
        driver
            .socket()
            .disable_gro()
            .map_err(|e| Failure::other(format!("cannot turn UDP GRO off: {e}")))?;
    }
    driver.register(poll.registry(), TOKEN).map_err(mio_err)?;
    let mut downloads = Vec::new();
    for (index, path) in options.paths.iter().enumerate() {
        let out = match &options.sink {
            Sink::Dir(dir) => Some(PartFile::create(dir, &file_name(path), index)?),
            Sink::Hash | Sink::Checksum => None,
        };
        let checksum = matches!(options.sink, Sink::Checksum);
        downloads.push(Download {
            path: path.clone(),
            out,
            hash: (!checksum).then(|| digest::Context::new(&digest::SHA256)),
            checksum: checksum.then(Checksum::default),
            bytes: 0,
            done: false,
        });
    }
    let config = ClientConfig {
        tls: Arc::new(options.tls),
        transport: Arc::new(TransportConfig::default()),
        version: options.version,
    };
    let start = driver.now();
    let handle = driver
        .connect(start, &config, &options.server_name, options.server)
        .map_err(|e| Failure::other(format!("cannot start the connection: {e}")))?;
    let mut state = State {
        downloads,
        streams: HashMap::new(),
        next: 0,
        remaining: options.paths.len(),
        handshake: None,
        requested: None,
        key_update: options.key_update,
        failure: None,
        finished_at: None,
    };
    let mut events = mio::Events::with_capacity(64);
    // A progress line for people watching a terminal; never in pipes or tests.
    let mut progress =
        Progress::new(matches!(options.sink, Sink::Dir(_)) && io::stderr().is_terminal(), start);
    while state.remaining > 0 && state.failure.is_none() {
        progress.show(driver.now(), &state);
        let now = driver.now();
        if state.handshake.is_none()
            && now.saturating_duration_since(start) > options.handshake_timeout
        {
            abandon(&mut driver, handle, b"handshake timed out");
            return Err(Failure::new(
                Failure::TIMED_OUT,
                format!(
                    "timed out: no handshake with {} within {} s",
                    options.server,
                    options.handshake_timeout.as_secs()
                ),
            ));
        }
        let cap = Duration::from_millis(100);
        let timeout = driver.timeout(now).map_or(cap, |t| t.min(cap));
        match poll.poll(&mut events, Some(timeout)) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(mio_err(e)),
            _ => {}
        }
        let now = driver.now();
        for event in events.iter() {
            driver.handle_mio_event(now, event);
        }
        driver.process(now, |endpoint, event| {
            let DriverEvent::Connection(h, event) = event else { return };
            if let Some(conn) = endpoint.connection(h) {
                state.on_event(conn, now, start, event);
            }
        });
    }
    progress.clear();
    if let Some(failure) = state.failure {
        abandon(&mut driver, handle, b"download failed");
        return Err(failure);
    }
    let end = state.finished_at.unwrap_or_else(|| driver.now());
    let stats = driver.connection(handle).map(|c| c.stats()).unwrap_or_default();
    if let Some(conn) = driver.connection(handle) {
        conn.close(end, VarInt::from_u32(0), b"done");
    }
    driver.flush(driver.now());
    let files = state.downloads.len();
    let (mut sha256, mut checksums) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for d in state.downloads {
        bytes += d.bytes;
        if let Some(hash) = d.hash {
            let mut out = [0; 32];
            out.copy_from_slice(hash.finish().as_ref());
            sha256.push(out);
        }
        checksums.extend(d.checksum.map(Checksum::finish));
    }
    let handshake = state.handshake.unwrap_or_default();
    let requested = state.requested.unwrap_or(start);
    Ok(Summary {
        files,
        bytes,
        total: end.saturating_duration_since(start),
        transfer: end.saturating_duration_since(requested),
        handshake,
        rtt: stats.smoothed_rtt,
        lost: stats.packets_lost,
        key_updates: stats.key_updates,
        sha256,
        checksums,
        driver: driver.stats(),
    })
}

/// Closes a connection the client gives up on (a failed download, a
/// handshake that takes too long) so that the server learns at once
/// instead of at its idle timeout, and sends the CONNECTION_CLOSE.
fn abandon(driver: &mut Driver, handle: quic_proto::endpoint::ConnectionHandle, reason: &[u8]) {
    let now = driver.now();
    if let Some(conn) = driver.connection(handle) {
        // hq-interop defines no error codes; 1 tells the server the
        // client stopped for a reason of its own (0 is a clean close).
        conn.close(now, VarInt::from_u32(1), reason);
    }
    driver.flush(now);
}

/// The terminal progress line: files done, bytes, rate.
struct Progress {
    enabled: bool,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new(enabled: bool, start: Instant) -> Self {
        Self { enabled, start, last: None }
    }

    fn show(&mut self, now: Instant, state: &State) {
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_millis(200));
        if !self.enabled || !due {
            return;
        }
        self.last = Some(now);
        let bytes: u64 = state.downloads.iter().map(|d| d.bytes).sum();
        let done = state.downloads.len() - state.remaining;
        let secs = now.saturating_duration_since(self.start).as_secs_f64().max(1e-3);
        eprint!(
            "\r{done}/{} files, {:.1} MB, {:.1} MB/s ",
            state.downloads.len(),
            bytes as f64 / 1e6,
            bytes as f64 / secs / 1e6
        );
    }

    fn clear(&self) {
        if self.enabled && self.last.is_some() {
            // Erase the line so the summary starts clean.
            eprint!("\r\x1b[2K");
        }
    }
}

struct State {
    downloads: Vec<Download>,
    streams: HashMap<StreamId, usize>,
    /// The next download to request.
    next: usize,
    remaining: usize,
    handshake: Option<Duration>,
    requested: Option<Instant>,
    /// A key update is still to be initiated.
    key_update: bool,
    failure: Option<Failure>,
    finished_at: Option<Instant>,
}

impl State {
    fn on_event(
        &mut self,
        conn: &mut quic_proto::connection::Connection,
        now: Instant,
        start: Instant,
        event: Event,
    ) {
        match event {
            Event::HandshakeCompleted => {
                self.handshake = Some(now.saturating_duration_since(start));
                self.requested = Some(now);
                self.open_streams(conn);
            }
            Event::Stream(StreamEvent::Available(Dir::Bi)) => self.open_streams(conn),
            Event::Stream(StreamEvent::Readable(id)) => self.read(conn, now, id),
            Event::ConnectionLost(e) if self.failure.is_none() && self.remaining > 0 => {
                self.failure = Some(connection_failure(&e));
            }
            _ => {}
        }
        if self.key_update && conn.is_handshake_complete() && conn.force_key_update(now) {
            self.key_update = false;
        }
    }

    fn open_streams(&mut self, conn: &mut quic_proto::connection::Connection) {
        while self.next < self.downloads.len() {
            let Some(id) = conn.open_stream(Dir::Bi) else { return };
            let request = format!("GET {}\r\n", self.downloads[self.next].path);
            if conn.write(id, request.as_bytes()).is_err() || conn.finish(id).is_err() {
                self.failure = Some(Failure::other("cannot send a request"));
                return;
            }
            self.streams.insert(id, self.next);
            self.next += 1;
        }
    }

    fn read(&mut self, conn: &mut quic_proto::connection::Connection, now: Instant, id: StreamId) {
        let Some(&index) = self.streams.get(&id) else { return };
        let d = &mut self.downloads[index];
        loop {
            match conn.read_chunk(id, usize::MAX) {
                Ok(Some(chunk)) => {
                    d.bytes += chunk.len() as u64;
                    if let Some(hash) = &mut d.hash {
                        hash.update(&chunk);
                    }
                    if let Some(checksum) = &mut d.checksum {
                        checksum.update(&chunk);
                    }
                    if let Some(part) = &mut d.out
                        && let Err(e) = part.out.write_all(&chunk)
                    {
                        self.failure = Some(Failure::other(format!("cannot write: {e}")));
                        return;
                    }
                }
                Ok(None) => {
                    if let Some(part) = &mut d.out
                        && let Err(e) = part.complete()
                    {
                        self.failure = Some(Failure::other(format!(
                            "cannot write {}: {e}",
                            part.target.display()
                        )));
                        return;
                    }
                    d.done = true;
                    self.streams.remove(&id);
                    self.remaining -= 1;
                    if self.remaining == 0 {
                        self.finished_at = Some(now);
                    }
                    return;
                }
                Err(ReadError::Blocked) => return,
                Err(ReadError::Reset(code)) => {
                    let reason = match code.into_inner() {
                        c if c == u64::from(codes::NOT_FOUND) => "not found",
                        c if c == u64::from(codes::FORBIDDEN) => "forbidden",
                        c if c == u64::from(codes::BAD_REQUEST) => "bad request",
                        _ => "refused",
                    };
                    self.failure = Some(Failure::new(
                        Failure::FILE,
                        format!(
                            "GET {}: {reason} (the server reset the stream, code {:#x})",
                            d.path,
                            code.into_inner()
                        ),
                    ));
                    return;
                }
                Err(ReadError::ConnectionLost(e)) => {
                    let failure = connection_failure(&e);
                    let message = format!("GET {}: {}", d.path, failure.message);
                    self.failure = Some(Failure::new(failure.code, message));
                    return;
                }
                Err(e) => {
                    self.failure = Some(Failure::other(format!("GET {}: {e}", d.path)));
                    return;
                }
            }
        }
    }
}

/// The exit code and reason for a lost connection.
fn connection_failure(e: &ConnectionError) -> Failure {
    match e {
        ConnectionError::TimedOut => Failure::new(Failure::TIMED_OUT, format!("{e}")),
        ConnectionError::TransportError(t) if t.code.tls_alert().is_some() => {
            Failure::new(Failure::TLS, format!("TLS handshake failed (certificate rejected?): {e}"))
        }
        ConnectionError::ConnectionClosed { code, .. } if code.tls_alert().is_some() => {
            Failure::new(Failure::TLS, format!("the server rejected the TLS handshake: {e}"))
        }
        ConnectionError::ConnectionClosed { code, .. }
            if *code == TransportErrorCode::CONNECTION_REFUSED =>
        {
            Failure::new(Failure::REFUSED, format!("connection refused: {e}"))
        }
        _ => Failure::new(Failure::REFUSED, format!("connection lost: {e}")),
    }
}
