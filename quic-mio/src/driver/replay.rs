//! Replaying a trace through a driver: the recorded inbound datagrams go to
//! a fresh endpoint at their recorded times, the driver's clock reads the
//! recorded times, and every datagram the endpoint sends is compared, byte
//! for byte, with the one the trace recorded at that point
//! (docs/traces.md, "Replay").
//!
//! A [`Replay`] is built from a trace file; [`Driver::replay`] makes a
//! driver that takes its inputs from it instead of a socket. The
//! application runs exactly as it did when recording: it calls
//! [`Driver::now`], [`Driver::timeout`] (always zero in replay: nothing is
//! waited for), [`Driver::process`], [`Driver::flush`] and
//! [`Driver::connect`], and the replay checks that each call comes where
//! the trace's wake-up and flush records say the original came. The first
//! difference ends the replay ([`Replay::ended`]); [`Replay::report`] says
//! what matched and what differed.
//!
//! [`Driver::replay`]: super::Driver::replay
//! [`Driver::now`]: super::Driver::now
//! [`Driver::timeout`]: super::Driver::timeout
//! [`Driver::process`]: super::Driver::process
//! [`Driver::flush`]: super::Driver::flush
//! [`Driver::connect`]: super::Driver::connect

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use quic_proto::Instant;
use quic_proto::connection::DatagramMeta;

use crate::socket::trace::{self, Direction, InputRecord, TraceItem, TracedDatagram};

/// What a trace asks of the driver, in order.
#[derive(Clone, Debug)]
enum Step {
    /// A datagram the original received at this time.
    Inbound(Instant, TracedDatagram),
    /// A datagram the original's endpoint produced.
    Outbound(Instant, TracedDatagram),
    /// A `process` call at this time.
    Wakeup(Instant),
    /// A `flush` or `connect` call at this time.
    Flush(Instant),
    /// A send that found the socket full.
    Blocked(Instant),
    /// The socket's GSO limit changed.
    Gso(u16),
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Self::Inbound(t, d) => {
                format!("a {}-byte datagram from {} at {}", d.payload.len(), d.remote, ms(*t))
            }
            Self::Outbound(t, d) => {
                format!("a {}-byte datagram to {} at {}", d.payload.len(), d.remote, ms(*t))
            }
            Self::Wakeup(t) => format!("a wake-up at {}", ms(*t)),
            Self::Flush(t) => format!("an application flush at {}", ms(*t)),
            Self::Blocked(t) => format!("a blocked send at {}", ms(*t)),
            Self::Gso(n) => format!("a GSO limit of {n}"),
        }
    }
}

fn ms(t: Instant) -> String {
    format!("{:.3} ms", t.as_nanos() as f64 / 1e6)
}

/// The inputs of a trace besides its steps.
#[derive(Clone, Debug, Default)]
pub struct TraceInputs {
    /// The endpoint's seed.
    pub seed: Option<[u8; 32]>,
    /// Unix time (ns) of the driver clock's zero.
    pub clock_origin: u64,
    /// The traced program's command line, if it recorded one.
    pub command_line: Option<Vec<String>>,
    /// The signatures the endpoint's TLS key made, in order: (scheme,
    /// SHA-256 of the message, signature).
    pub signatures: Vec<(u16, [u8; 32], Vec<u8>)>,
    /// The TLS clock's readings (Unix seconds), in order.
    pub time_reads: Vec<u64>,
    /// The certificate chain the endpoint presented (DER, end entity first).
    pub certificates: Vec<Vec<u8>>,
    /// Every NSS key log line the trace holds.
    pub key_log: String,
    /// The socket's GSO limit when the trace began.
    pub gso_segments: Option<u16>,
    /// Where the first datagram the endpoint sent went (a client's server).
    pub first_destination: Option<SocketAddr>,
}

/// Where a replay departed from its trace.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// What differed, in a sentence.
    pub reason: String,
    /// The recorded outbound datagram at the point of difference, if the
    /// trace had one there.
    pub expected: Option<TracedDatagram>,
    /// What the replayed endpoint sent instead, if anything: the payload
    /// and its destination.
    pub actual: Option<(Vec<u8>, SocketAddr)>,
    /// The 1-based number of the outbound datagram compared (matched ones
    /// plus this one).
    pub outbound_index: usize,
}

/// How far a replay got.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    /// Inbound datagrams handed to the endpoint.
    pub inbound: usize,
    /// Outbound datagrams that matched the trace byte for byte.
    pub matched: usize,
    /// Outbound datagrams in the trace.
    pub outbound_total: usize,
    /// Wake-ups and flushes replayed.
    pub calls: usize,
    /// Steps the trace still held when the application finished.
    pub left: usize,
    /// The first difference, if any.
    pub divergence: Option<Divergence>,
}

impl ReplayReport {
    /// Every recorded step replayed and every outbound datagram identical.
    pub fn identical(&self) -> bool {
        self.divergence.is_none() && self.left == 0 && self.matched == self.outbound_total
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.identical() {
            return write!(
                f,
                "identical: {} datagrams out matched byte for byte; {} in, {} wake-ups and flushes",
                self.matched, self.inbound, self.calls
            );
        }
        match &self.divergence {
            Some(d) => write!(
                f,
                "differs at outbound datagram {}: {} ({} of {} matched before it)",
                d.outbound_index, d.reason, self.matched, self.outbound_total
            ),
            None => write!(
                f,
                "incomplete: the application finished with {} recorded steps left \
                 ({} of {} datagrams out matched)",
                self.left, self.matched, self.outbound_total
            ),
        }
    }
}

#[derive(Debug)]
struct State {
    steps: VecDeque<Step>,
    last_time: Instant,
    gso_segments: usize,
    report: ReplayReport,
}

/// A trace being replayed. Clones share it: the driver drives it, the
/// caller reads [`Replay::report`] when the application is done.
#[derive(Clone, Debug)]
pub struct Replay {
    state: Arc<Mutex<State>>,
    inputs: Arc<TraceInputs>,
}

/// Why a trace cannot be replayed.
#[derive(Debug)]
pub struct ReplayError(pub String);

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplayError {}

impl Replay {
    /// A replay of the pcapng trace in `file` (as [`crate::Trace`] writes).
    pub fn from_bytes(file: &[u8]) -> Result<Self, ReplayError> {
        let items = trace::read(file).map_err(|e| ReplayError(e.to_string()))?;
        Self::from_items(items)
    }

    /// A replay of a trace's items ([`trace::read`]).
    pub fn from_items(items: Vec<TraceItem>) -> Result<Self, ReplayError> {
        let mut inputs = TraceInputs::default();
        let mut steps = VecDeque::new();
        let mut origin = None;
        let mut outbound_total = 0;
        for item in items {
            match item {
                TraceItem::Secrets(lines) => inputs.key_log.push_str(&lines),
                TraceItem::Datagram(d) => {
                    let origin = origin.ok_or_else(|| {
                        ReplayError("a datagram comes before the trace's clock origin".into())
                    })?;
                    let t = Instant::from_nanos(d.unix_nanos.saturating_sub(origin));
                    steps.push_back(match d.direction {
                        Direction::Inbound => Step::Inbound(t, d),
                        Direction::Outbound => {
                            outbound_total += 1;
                            inputs.first_destination.get_or_insert(d.remote);
                            Step::Outbound(t, d)
                        }
                    });
                }
                TraceItem::Inputs(records) => {
                    for record in records {
                        match record {
                            InputRecord::ClockOrigin(o) => {
                                origin = Some(o);
                                inputs.clock_origin = o;
                            }
                            InputRecord::EndpointSeed(s) => inputs.seed = Some(s),
                            InputRecord::CommandLine(line) => {
                                inputs.command_line =
                                    Some(line.split('\0').map(str::to_owned).collect());
                            }
                            InputRecord::Signature { scheme, message_sha256, signature } => {
                                inputs.signatures.push((scheme, message_sha256, signature));
                            }
                            InputRecord::TimeRead(secs) => inputs.time_reads.push(secs),
                            InputRecord::Certificate(der) => inputs.certificates.push(der),
                            InputRecord::GsoSegments(n)
                                if origin.is_some() && !steps.is_empty() =>
                            {
                                steps.push_back(Step::Gso(n));
                            }
                            InputRecord::GsoSegments(n) => inputs.gso_segments = Some(n),
                            InputRecord::Wakeup(t) => {
                                steps.push_back(Step::Wakeup(Instant::from_nanos(t)));
                            }
                            InputRecord::Flush(t) => {
                                steps.push_back(Step::Flush(Instant::from_nanos(t)));
                            }
                            InputRecord::SendBlocked(t) => {
                                steps.push_back(Step::Blocked(Instant::from_nanos(t)));
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        if origin.is_none() {
            return Err(ReplayError(
                "the trace has no clock origin: it was not written by a driver's Trace".into(),
            ));
        }
        if !steps.iter().any(|s| matches!(s, Step::Wakeup(_) | Step::Flush(_))) {
            return Err(ReplayError(
                "the trace has no wake-up or flush records: it was recorded before the driver \
                 recorded its calls, and cannot be replayed"
                    .into(),
            ));
        }
        let gso_segments = usize::from(inputs.gso_segments.unwrap_or(1)).max(1);
        let state = State {
            steps,
            last_time: Instant::ZERO,
            gso_segments,
            report: ReplayReport { outbound_total, ..ReplayReport::default() },
        };
        Ok(Self { state: Arc::new(Mutex::new(state)), inputs: Arc::new(inputs) })
    }

    /// The trace's inputs besides its steps.
    pub fn inputs(&self) -> &TraceInputs {
        &self.inputs
    }

    /// How the replay went so far (steps left counted now).
    pub fn report(&self) -> ReplayReport {
        let state = self.lock();
        let mut report = state.report.clone();
        report.left = state.steps.iter().filter(|s| !matches!(s, Step::Gso(_))).count();
        report
    }

    /// The replay is over: the trace is exhausted, or the endpoint or the
    /// application departed from it. The application should stop.
    pub fn ended(&self) -> bool {
        let state = self.lock();
        state.report.divergence.is_some() || state.steps.iter().all(|s| matches!(s, Step::Gso(_)))
    }

    /// The next recorded call is an application flush (`Driver::flush`),
    /// not a wake-up: the original application acted outside its loop
    /// here (the `quic` server's shutdown, say).
    pub fn at_flush(&self) -> bool {
        let state = self.lock();
        let next = state.steps.iter().find(|s| !matches!(s, Step::Outbound(..) | Step::Gso(_)));
        matches!(next, Some(Step::Flush(_)))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The driver clock: the time of the next recorded call (wake-up or
    /// flush), or the last one once the trace is exhausted.
    pub(super) fn now(&self) -> Instant {
        let mut state = self.lock();
        let next = state.steps.iter().find_map(|s| match s {
            Step::Wakeup(t) | Step::Flush(t) | Step::Blocked(t) => Some(*t),
            _ => None,
        });
        match next {
            Some(t) => {
                state.last_time = t;
                t
            }
            None => state.last_time,
        }
    }

    pub(super) fn gso_segments(&self) -> usize {
        let mut state = self.lock();
        while let Some(Step::Gso(n)) = state.steps.front() {
            state.gso_segments = usize::from(*n).max(1);
            state.steps.pop_front();
        }
        state.gso_segments
    }

    /// The inbound datagrams recorded before the next wake-up, each with
    /// the time the original handed it over (its read, at or before the
    /// wake-up); then consumes the wake-up. `None` if the next call the
    /// trace recorded is not a wake-up at `now` (the difference is then in
    /// the report).
    #[allow(clippy::type_complexity)]
    pub(super) fn wakeup(&self, now: Instant) -> Option<Vec<(Instant, DatagramMeta, Vec<u8>)>> {
        let mut state = self.lock();
        if state.report.divergence.is_some() {
            return None;
        }
        let mut inbound = Vec::new();
        loop {
            match state.steps.front() {
                Some(Step::Inbound(t, _)) if *t <= now => {
                    let Some(Step::Inbound(t, d)) = state.steps.pop_front() else { return None };
                    let local_ip = Some(d.local.ip()).filter(|ip| !ip.is_unspecified());
                    let meta = DatagramMeta { remote: d.remote, local_ip, ecn: d.ecn };
                    inbound.push((t, meta, d.payload));
                }
                Some(Step::Gso(n)) => {
                    state.gso_segments = usize::from(*n).max(1);
                    state.steps.pop_front();
                }
                Some(Step::Wakeup(t)) if *t == now => {
                    state.steps.pop_front();
                    state.report.inbound += inbound.len();
                    state.report.calls += 1;
                    return Some(inbound);
                }
                None if inbound.is_empty() => return None,
                other => {
                    let found = other.map_or_else(|| "the end of the trace".into(), Step::describe);
                    let reason = format!(
                        "the application woke the driver at {}; the trace has {found}",
                        ms(now)
                    );
                    state.diverge(reason, None, None);
                    return None;
                }
            }
        }
    }

    /// An application flush at `now`: true if the trace has one here.
    pub(super) fn flush(&self, now: Instant) -> bool {
        let mut state = self.lock();
        if state.report.divergence.is_some() {
            return false;
        }
        match state.steps.front() {
            Some(Step::Flush(t)) if *t == now => {
                state.steps.pop_front();
                state.report.calls += 1;
                true
            }
            other => {
                let found = other.map_or_else(|| "the end of the trace".into(), Step::describe);
                let reason =
                    format!("the application flushed at {}; the trace has {found}", ms(now));
                state.diverge(reason, None, None);
                false
            }
        }
    }

    /// One datagram the endpoint produced: true if it is the recorded one.
    pub(super) fn outbound(&self, datagram: &[u8], destination: SocketAddr) -> bool {
        let mut state = self.lock();
        if state.report.divergence.is_some() {
            return false;
        }
        match state.steps.front() {
            Some(Step::Outbound(_, d))
                if d.payload == datagram && same_address(d.remote, destination) =>
            {
                state.steps.pop_front();
                state.report.matched += 1;
                true
            }
            Some(Step::Outbound(..)) => {
                let Some(Step::Outbound(_, d)) = state.steps.pop_front() else { return false };
                let reason = if d.payload == datagram {
                    format!("same bytes, sent to {destination} instead of {}", d.remote)
                } else {
                    "the bytes differ".to_owned()
                };
                state.diverge(reason, Some(d), Some((datagram.to_vec(), destination)));
                false
            }
            other => {
                let found = other.map_or_else(|| "the end of the trace".into(), Step::describe);
                let reason = format!("the endpoint sent a datagram where the trace has {found}");
                state.diverge(reason, None, Some((datagram.to_vec(), destination)));
                false
            }
        }
    }

    /// Whether the original's send blocked here; consumes the record.
    pub(super) fn send_blocks(&self) -> bool {
        let mut state = self.lock();
        if matches!(state.steps.front(), Some(Step::Blocked(_))) {
            state.steps.pop_front();
            return true;
        }
        false
    }

    /// The endpoint has nothing more to send: the trace must not expect more
    /// datagrams here.
    pub(super) fn drained(&self) {
        let mut state = self.lock();
        if state.report.divergence.is_some() {
            return;
        }
        if let Some(Step::Outbound(..)) = state.steps.front() {
            let Some(Step::Outbound(_, d)) = state.steps.pop_front() else { return };
            state.diverge(
                "the endpoint had nothing more to send; the trace has this datagram".to_owned(),
                Some(d),
                None,
            );
        }
    }
}

impl State {
    fn diverge(
        &mut self,
        reason: String,
        expected: Option<TracedDatagram>,
        actual: Option<(Vec<u8>, SocketAddr)>,
    ) {
        let outbound_index = self.report.matched + 1;
        self.report.divergence = Some(Divergence { reason, expected, actual, outbound_index });
    }
}

/// Addresses equal, an IPv4 address and its IPv4-mapped form included.
fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |s: SocketAddr| match s {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => s,
        },
        v4 => v4,
    };
    canon(a) == canon(b)
}

#[cfg(test)]
mod tests;
