//! `quic client`: downloads URLs, all on one connection, several streams at
//! once (as many as the server's stream limit allows), over HTTP/3
//! ([`crate::tool::client_h3`]) or hq-interop, whichever ALPN the server chose.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::driver::{DriverStats, Replay};
use crate::{Driver, DriverEvent, Trace, UdpSocket};
use aws_lc_rs::digest;
use quic_proto::connection::{
    ClientConfig, ConnectionError, Event, ReadError, StreamEvent, TransportConfig,
};
use quic_proto::endpoint::EndpointConfig;
use quic_proto::{Dir, Instant, StreamId, TransportErrorCode, VarInt, Version};

use crate::tool::client_h3::{Grease, H3Client, H3Figures};
use crate::tool::perf::Checksum;
use crate::tool::server::codes;
use crate::tool::tls::{self, Inputs, Trust};
use crate::tool::{ClientArgs, Failure};

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
    /// The `:authority` of HTTP/3 requests: `host[:port]` as the URL has it.
    pub(crate) authority: String,
    pub(crate) paths: Vec<String>,
    pub(crate) tls: rustls::ClientConfig,
    pub(crate) version: Version,
    pub(crate) key_update: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) sink: Sink,
    pub(crate) endpoint: EndpointConfig,
    /// Use GSO and GRO where the kernel has them; false turns both off.
    pub(crate) offload: bool,
    /// Record the connection here (its key log already wraps `tls`'s).
    pub(crate) trace: Option<Trace>,
    /// The endpoint's seed (the one `tls` was built with), or the trace
    /// this download replays.
    pub(crate) inputs: Inputs,
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
    /// What HTTP/3 did, when it was the protocol.
    pub(crate) h3: Option<H3Figures>,
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
        if let Some(h3) = &self.h3 {
            write!(
                f,
                "; over h3, qpack: encoder table {} bytes, decoder inserts {}",
                h3.encoder_capacity, h3.decoder_inserts
            )?;
        }
        Ok(())
    }
}

/// `quic client`; with `replay`, the same command replayed from its trace
/// (nothing written but the comparison: files are hashed, not stored).
pub(crate) fn run(args: &ClientArgs, replay: Option<Replay>) -> Result<Summary, Failure> {
    let mut origin = None;
    let mut paths = Vec::new();
    for url in &args.urls {
        let url = parse_url(url)?;
        match &origin {
            None => origin = Some((url.host, url.port, url.authority)),
            Some((host, port, _)) if (host, *port) == (&url.host, url.port) => {}
            Some(_) => return Err(Failure::other("all URLs must name the same server")),
        }
        paths.push(url.path);
    }
    let (host, port, authority) = origin.ok_or_else(|| Failure::other("no URL given"))?;
    if let Some(replay) = replay {
        let server = replay.inputs().first_destination.ok_or_else(|| {
            Failure::other("the trace has no datagram to the server: nothing to replay")
        })?;
        // The chain is not checked again: the trace's run accepted it (a
        // run whose client refused it replays up to the refusal, then
        // differs). Signatures are still checked, over the same bytes.
        let trust = Trust::Insecure;
        let inputs = Inputs::Replay(replay);
        let tls = tls::client(trust, &args.alpn, args.chacha20, None, &inputs)?;
        return download(Options {
            server,
            server_name: host,
            authority,
            paths,
            tls,
            version: if args.version == "2" { Version::V2 } else { Version::V1 },
            key_update: args.key_update,
            handshake_timeout: Duration::from_secs(args.timeout),
            sink: Sink::Hash,
            endpoint: EndpointConfig::default(),
            offload: true,
            trace: None,
            inputs,
        });
    }
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
    let inputs = Inputs::live(args.trace.is_some());
    let mut tls =
        tls::client(trust, &args.alpn, args.chacha20, args.common.keylog_path(), &inputs)?;
    let trace = match &args.trace {
        Some(path) => {
            let mut trace = Trace::create(path)
                .map_err(|e| Failure::other(format!("cannot create {}: {e}", path.display())))?;
            trace.add_start_input(crate::tool::command_line());
            tls.key_log = trace.key_log(tls.key_log.clone());
            trace.record_tls_inputs(inputs.log().cloned().unwrap_or_default());
            Some(trace)
        }
        None => None,
    };
    std::fs::create_dir_all(&args.output_dir)
        .map_err(|e| Failure::other(format!("cannot create {}: {e}", args.output_dir.display())))?;
    download(Options {
        server,
        server_name: host,
        authority,
        paths,
        tls,
        version: if args.version == "2" { Version::V2 } else { Version::V1 },
        key_update: args.key_update,
        handshake_timeout: Duration::from_secs(args.timeout),
        sink: Sink::Dir(args.output_dir.clone()),
        endpoint: args.common.endpoint_config()?,
        offload: true,
        trace,
        inputs,
    })
}

/// The parts of an `https://host[:port]/path` URL the client uses.
struct Url {
    /// The host, without the brackets of an IPv6 address.
    host: String,
    port: u16,
    /// `host[:port]` exactly as the URL wrote it.
    authority: String,
    path: String,
}

/// Splits `https://host[:port]/path` (an IPv6 host in brackets).
fn parse_url(url: &str) -> Result<Url, Failure> {
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
    Ok(Url { host: host.to_owned(), port, authority: authority.to_owned(), path: path.to_owned() })
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
pub(crate) struct Download {
    pub(crate) path: String,
    out: Option<PartFile>,
    hash: Option<digest::Context>,
    checksum: Option<Checksum>,
    bytes: u64,
}

/// The requested files and how far they got: what either protocol
/// reports its responses to.
pub(crate) struct Downloads {
    pub(crate) list: Vec<Download>,
    /// Files not complete yet.
    remaining: usize,
    /// Why the run failed: the first failure wins.
    failure: Option<Failure>,
    /// When the last file completed.
    finished_at: Option<Instant>,
}

impl Downloads {
    /// Whether the run is over: every file arrived, or one failed.
    fn over(&self) -> bool {
        self.remaining == 0 || self.failure.is_some()
    }

    /// Records why the run failed, unless it already failed.
    pub(crate) fn fail(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
    }

    /// Body bytes of file `index`: stored, hashed, counted.
    pub(crate) fn receive(&mut self, index: usize, chunk: &[u8]) {
        let d = &mut self.list[index];
        d.bytes += chunk.len() as u64;
        if let Some(hash) = &mut d.hash {
            hash.update(chunk);
        }
        if let Some(checksum) = &mut d.checksum {
            checksum.update(chunk);
        }
        if let Some(part) = &mut d.out
            && let Err(e) = part.out.write_all(chunk)
        {
            self.fail(Failure::other(format!("cannot write: {e}")));
        }
    }

    /// File `index` arrived whole: it gets its name.
    pub(crate) fn complete(&mut self, index: usize, now: Instant) {
        if let Some(part) = &mut self.list[index].out
            && let Err(e) = part.complete()
        {
            let message = format!("cannot write {}: {e}", part.target.display());
            return self.fail(Failure::other(message));
        }
        self.remaining -= 1;
        if self.remaining == 0 {
            self.finished_at = Some(now);
        }
    }
}

/// Connects, requests every path, and stores or hashes the answers.
pub(crate) fn download(options: Options) -> Result<Summary, Failure> {
    let mio_err = |e: io::Error| Failure::other(format!("mio: {e}"));
    let bind: SocketAddr = if options.server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let mut driver = match options.inputs.replay() {
        Some(replay) => Driver::replay(replay.clone(), options.endpoint, None)
            .map_err(|e| Failure::other(format!("cannot replay: {e}")))?,
        None => {
            let socket = UdpSocket::bind(bind)
                .map_err(|e| Failure::other(format!("cannot bind a UDP socket: {e}")))?;
            Driver::with_seed(socket, options.endpoint, None, options.inputs.seed())
        }
    };
    let mut poll = mio::Poll::new().map_err(mio_err)?;
    if !options.offload {
        driver.socket().disable_gso();
        driver
            .socket()
            .disable_gro()
            .map_err(|e| Failure::other(format!("cannot turn UDP GRO off: {e}")))?;
    }
    if let Some(trace) = options.trace {
        driver.set_trace(trace);
    }
    driver.register(poll.registry(), TOKEN).map_err(mio_err)?;
    let mut list = Vec::new();
    for (index, path) in options.paths.iter().enumerate() {
        let out = match &options.sink {
            Sink::Dir(dir) => Some(PartFile::create(dir, &file_name(path), index)?),
            Sink::Hash | Sink::Checksum => None,
        };
        let checksum = matches!(options.sink, Sink::Checksum);
        list.push(Download {
            path: path.clone(),
            out,
            hash: (!checksum).then(|| digest::Context::new(&digest::SHA256)),
            checksum: checksum.then(Checksum::default),
            bytes: 0,
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
    let remaining = list.len();
    let mut state = State {
        downloads: Downloads { list, remaining, failure: None, finished_at: None },
        streams: HashMap::new(),
        next: 0,
        h3: None,
        authority: options.authority,
        handshake: None,
        requested: None,
        key_update: options.key_update,
        grease: Grease::new(&options.inputs.seed()),
    };
    let mut events = mio::Events::with_capacity(64);
    // A progress line for people watching a terminal; never in pipes or tests.
    let mut progress =
        Progress::new(matches!(options.sink, Sink::Dir(_)) && io::stderr().is_terminal(), start);
    let replay = options.inputs.replay();
    while !state.downloads.over() && !replay.is_some_and(Replay::ended) {
        progress.show(driver.now(), &state.downloads);
        let now = driver.now();
        if state.handshake.is_none()
            && now.saturating_duration_since(start) > options.handshake_timeout
        {
            abandon(&mut driver, handle, false, b"handshake timed out");
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
        let timeout = match state.h3.as_ref().and_then(H3Client::deadline) {
            Some(deadline) => timeout.min(deadline.saturating_duration_since(now)),
            None => timeout,
        };
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
                state.on_event(conn, now, start, &event);
            }
        });
        if let (Some(h3), Some(conn)) = (&mut state.h3, driver.connection(handle)) {
            h3.handle_timeout(conn, now, &mut state.downloads);
        }
    }
    progress.clear();
    if replay.is_some_and(Replay::ended) && !state.downloads.over() {
        return Err(Failure::other("the replay ended before the downloads did"));
    }
    let over_h3 = state.h3.is_some();
    if let Some(failure) = state.downloads.failure {
        abandon(&mut driver, handle, over_h3, b"download failed");
        return Err(failure);
    }
    let end = state.downloads.finished_at.unwrap_or_else(|| driver.now());
    let stats = driver.connection(handle).map(|c| c.stats()).unwrap_or_default();
    if let Some(conn) = driver.connection(handle) {
        conn.close(end, close_code(over_h3, false), b"done");
    }
    driver.flush(driver.now());
    let files = state.downloads.list.len();
    let (mut sha256, mut checksums) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for d in state.downloads.list {
        bytes += d.bytes;
        if let Some(hash) = d.hash {
            let mut out = [0; 32];
            out.copy_from_slice(hash.finish().as_ref());
            sha256.push(out);
        }
        checksums.extend(d.checksum.map(Checksum::finish));
    }
    let handshake = state.handshake.unwrap_or_default();
    let requested = state.h3.as_ref().and_then(H3Client::first_request).or(state.requested);
    let requested = requested.unwrap_or(start);
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
        h3: state.h3.as_ref().map(H3Client::figures),
    })
}

/// The application error code the client closes with: HTTP/3's
/// H3_NO_ERROR (a client that gives up has no error to signal, RFC 9114
/// §8.1); for hq-interop, which defines no codes, 0 for a clean close and
/// 1 when the client stops for a reason of its own.
fn close_code(h3: bool, gave_up: bool) -> VarInt {
    match (h3, gave_up) {
        (true, _) => h3_proto::error::ErrorCode::H3_NO_ERROR.to_varint(),
        (false, false) => VarInt::from_u32(0),
        (false, true) => VarInt::from_u32(1),
    }
}

/// Closes a connection the client gives up on (a failed download, a
/// handshake that takes too long) so that the server learns at once
/// instead of at its idle timeout, and sends the CONNECTION_CLOSE.
fn abandon(
    driver: &mut Driver,
    handle: quic_proto::endpoint::ConnectionHandle,
    h3: bool,
    reason: &[u8],
) {
    let now = driver.now();
    if let Some(conn) = driver.connection(handle) {
        conn.close(now, close_code(h3, true), reason);
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

    fn show(&mut self, now: Instant, downloads: &Downloads) {
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_millis(200));
        if !self.enabled || !due {
            return;
        }
        self.last = Some(now);
        let bytes: u64 = downloads.list.iter().map(|d| d.bytes).sum();
        let done = downloads.list.len() - downloads.remaining;
        let secs = now.saturating_duration_since(self.start).as_secs_f64().max(1e-3);
        eprint!(
            "\r{done}/{} files, {:.1} MB, {:.1} MB/s ",
            downloads.list.len(),
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
    downloads: Downloads,
    /// hq-interop: the request streams and their downloads.
    streams: HashMap<StreamId, usize>,
    /// hq-interop: the next download to request.
    next: usize,
    /// HTTP/3, once the handshake chose it.
    h3: Option<H3Client>,
    authority: String,
    handshake: Option<Duration>,
    requested: Option<Instant>,
    /// A key update is still to be initiated.
    key_update: bool,
    /// Grease seeds for the HTTP/3 layer, from the endpoint's seed.
    grease: Grease,
}

impl State {
    fn on_event(
        &mut self,
        conn: &mut quic_proto::connection::Connection,
        now: Instant,
        start: Instant,
        event: &Event,
    ) {
        // The protocol is chosen at the first event after the handshake
        // completed, whichever it is: stream events of the server's
        // 0.5-RTT data can come before `HandshakeCompleted`.
        if self.handshake.is_none() && conn.is_handshake_complete() {
            self.handshake = Some(now.saturating_duration_since(start));
            self.requested = Some(now);
            if conn.alpn() == Some(h3_proto::ALPN_H3) {
                let seed = self.grease.next_seed();
                let h3 = H3Client::new(conn, now, &self.authority, &mut self.downloads, seed);
                self.h3 = Some(h3);
            } else {
                self.open_streams(conn);
            }
        }
        if let Some(h3) = &mut self.h3 {
            h3.handle_event(conn, now, event, &mut self.downloads);
        } else if self.handshake.is_some() {
            match event {
                Event::Stream(StreamEvent::Available(Dir::Bi)) => self.open_streams(conn),
                Event::Stream(StreamEvent::Readable(id)) => self.read(conn, now, *id),
                _ => {}
            }
        }
        if let Event::ConnectionLost(e) = event
            && !self.downloads.over()
        {
            let failure = match (&self.h3, e) {
                // The peer's application code is an HTTP/3 one: named.
                (Some(_), ConnectionError::ApplicationClosed { .. }) => Failure::new(
                    Failure::REFUSED,
                    format!("connection lost: {}", crate::tool::server_h3::describe_end(e)),
                ),
                _ => connection_failure(e),
            };
            self.downloads.fail(failure);
        }
        if self.key_update && conn.is_handshake_complete() && conn.force_key_update(now) {
            self.key_update = false;
        }
    }

    fn open_streams(&mut self, conn: &mut quic_proto::connection::Connection) {
        while self.next < self.downloads.list.len() {
            let Some(id) = conn.open_stream(Dir::Bi) else { return };
            let request = format!("GET {}\r\n", self.downloads.list[self.next].path);
            if conn.write(id, request.as_bytes()).is_err() || conn.finish(id).is_err() {
                self.downloads.fail(Failure::other("cannot send a request"));
                return;
            }
            self.streams.insert(id, self.next);
            self.next += 1;
        }
    }

    fn read(&mut self, conn: &mut quic_proto::connection::Connection, now: Instant, id: StreamId) {
        let Some(&index) = self.streams.get(&id) else { return };
        loop {
            let path = &self.downloads.list[index].path;
            match conn.read_chunk(id, usize::MAX) {
                Ok(Some(chunk)) => {
                    self.downloads.receive(index, &chunk);
                    if self.downloads.failure.is_some() {
                        return;
                    }
                }
                Ok(None) => {
                    self.streams.remove(&id);
                    self.downloads.complete(index, now);
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
                    let message = format!(
                        "GET {path}: {reason} (the server reset the stream, code {:#x})",
                        code.into_inner()
                    );
                    return self.downloads.fail(Failure::new(Failure::FILE, message));
                }
                Err(ReadError::ConnectionLost(e)) => {
                    let failure = connection_failure(&e);
                    let message = format!("GET {path}: {}", failure.message);
                    return self.downloads.fail(Failure::new(failure.code, message));
                }
                Err(e) => {
                    return self.downloads.fail(Failure::other(format!("GET {path}: {e}")));
                }
            }
        }
    }
}

/// The exit code and reason for a lost connection.
pub(crate) fn connection_failure(e: &ConnectionError) -> Failure {
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
