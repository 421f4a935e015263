//! Genuine clients during a flood: a fresh connection every interval, each
//! a full handshake and, optionally, an hq-interop GET, all on one
//! quic-mio client endpoint.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quic_mio::{Driver, DriverEvent};
use quic_proto::connection::{ClientConfig, Connection, Event, ReadError, StreamEvent};
use quic_proto::endpoint::{ConnectionHandle, EndpointConfig};
use quic_proto::{Dir, StreamId, VarInt};

/// What the genuine clients saw.
#[derive(Clone, Debug, Default)]
pub struct GenuineStats {
    /// Connections started.
    pub attempts: u64,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Attempts that did all that was asked (the handshake, and the GET
    /// when there was one).
    pub successes: u64,
    /// Time from the first Initial to the completed handshake, per
    /// completed handshake.
    pub handshake_latencies: Vec<Duration>,
    /// Time from the first Initial to the whole response, per completed GET.
    pub get_latencies: Vec<Duration>,
    /// Why attempts failed, with how many failed so.
    pub failures: BTreeMap<String, u64>,
}

impl GenuineStats {
    /// Successes per attempt; 0 without attempts.
    pub fn success_rate(&self) -> f64 {
        if self.attempts == 0 { 0.0 } else { self.successes as f64 / self.attempts as f64 }
    }

    fn fail(&mut self, reason: impl Into<String>) {
        *self.failures.entry(reason.into()).or_default() += 1;
    }
}

/// When and what the genuine clients do.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub(super) target: SocketAddr,
    pub(super) server_name: String,
    pub(super) config: ClientConfig,
    /// Start connecting at `begin`, stop starting new attempts at `end`.
    pub(super) begin: Instant,
    pub(super) end: Instant,
    pub(super) interval: Duration,
    /// An attempt not done this long after it started has failed.
    pub(super) timeout: Duration,
    /// The path to GET once connected, if any.
    pub(super) get: Option<String>,
}

#[derive(Debug)]
struct Attempt {
    started: Instant,
    stream: Option<StreamId>,
    /// The outcome is counted; only the drain is awaited.
    done: bool,
}

/// Runs the plan; returns once every attempt succeeded, failed or timed
/// out (at the latest `end + timeout` and a little).
pub(super) fn run(plan: &Plan) -> Result<GenuineStats, String> {
    let local: SocketAddr = match plan.target {
        SocketAddr::V4(_) => ([127, 0, 0, 1], 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
    };
    let mut driver = Driver::bind(local, EndpointConfig::default(), None)
        .map_err(|e| format!("genuine clients: cannot bind {local}: {e}"))?;
    let mut poll = mio::Poll::new().map_err(|e| format!("mio: {e}"))?;
    driver.register(poll.registry(), mio::Token(0)).map_err(|e| format!("mio: {e}"))?;
    let mut events = mio::Events::with_capacity(64);
    let mut stats = GenuineStats::default();
    let mut attempts: HashMap<ConnectionHandle, Attempt> = HashMap::new();
    std::thread::sleep(plan.begin.saturating_duration_since(Instant::now()));
    let mut next = plan.begin;
    // Past this, nothing is waited for.
    let last = plan.end + plan.timeout + Duration::from_millis(200);
    loop {
        let now = Instant::now();
        let pending = attempts.values().any(|a| !a.done);
        if (now >= plan.end && !pending) || now >= last {
            break;
        }
        if now >= next && now < plan.end {
            next += plan.interval;
            stats.attempts += 1;
            let qnow = driver.now();
            match driver.connect(qnow, &plan.config, &plan.server_name, plan.target) {
                Ok(h) => {
                    attempts.insert(h, Attempt { started: now, stream: None, done: false });
                }
                Err(e) => stats.fail(format!("cannot connect: {e}")),
            }
        }
        let qnow = driver.now();
        for (&h, a) in attempts.iter_mut().filter(|(_, a)| !a.done) {
            if now.duration_since(a.started) >= plan.timeout {
                a.done = true;
                stats.fail(if a.stream.is_some() {
                    "GET timed out"
                } else {
                    "handshake timed out"
                });
                if let Some(conn) = driver.connection(h) {
                    conn.close(qnow, VarInt::from_u32(0), b"timed out");
                }
            }
        }
        let until_next =
            if now < plan.end { next.saturating_duration_since(now) } else { Duration::MAX };
        let cap = until_next.min(Duration::from_millis(20));
        let timeout = driver.timeout(driver.now()).map_or(cap, |t| t.min(cap));
        if let Err(e) = poll.poll(&mut events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return Err(format!("mio: {e}"));
        }
        let qnow = driver.now();
        for event in events.iter() {
            driver.handle_mio_event(qnow, event);
        }
        driver.process(qnow, |endpoint, event| {
            let DriverEvent::Connection(h, event) = event else { return };
            if let Event::Drained = event {
                attempts.remove(&h);
                return;
            }
            let (Some(a), Some(conn)) = (attempts.get_mut(&h), endpoint.connection(h)) else {
                return;
            };
            on_event(plan, &mut stats, a, conn, qnow, event);
        });
    }
    Ok(stats)
}

fn on_event(
    plan: &Plan,
    stats: &mut GenuineStats,
    a: &mut Attempt,
    conn: &mut Connection,
    qnow: quic_proto::Instant,
    event: Event,
) {
    if a.done {
        return;
    }
    let now = Instant::now();
    match event {
        Event::HandshakeCompleted => {
            stats.handshakes += 1;
            stats.handshake_latencies.push(now.duration_since(a.started));
            let Some(path) = &plan.get else {
                return finish(stats, a, conn, qnow, None);
            };
            let Some(id) = conn.open_stream(Dir::Bi) else {
                a.done = true;
                return stats.fail("no stream allowed");
            };
            let request = format!("GET {path}\r\n");
            if conn.write(id, request.as_bytes()).is_err() || conn.finish(id).is_err() {
                a.done = true;
                return stats.fail("cannot write the request");
            }
            a.stream = Some(id);
        }
        Event::Stream(StreamEvent::Readable(id)) if a.stream == Some(id) => loop {
            match conn.read_chunk(id, usize::MAX) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let latency = now.duration_since(a.started);
                    return finish(stats, a, conn, qnow, Some(latency));
                }
                Err(ReadError::Blocked) => return,
                Err(ReadError::Reset(code)) => {
                    a.done = true;
                    return stats.fail(format!("GET refused, code {:#x}", code.into_inner()));
                }
                Err(e) => {
                    a.done = true;
                    return stats.fail(format!("GET failed: {e}"));
                }
            }
        },
        Event::ConnectionLost(e) => {
            a.done = true;
            stats.fail(format!("connection lost: {e}"));
        }
        _ => {}
    }
}

/// Counts a success and closes the connection.
fn finish(
    stats: &mut GenuineStats,
    a: &mut Attempt,
    conn: &mut Connection,
    qnow: quic_proto::Instant,
    get: Option<Duration>,
) {
    a.done = true;
    stats.successes += 1;
    stats.get_latencies.extend(get);
    conn.close(qnow, VarInt::from_u32(0), b"done");
}
