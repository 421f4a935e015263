//! The network model of the [`Pair`](super::Pair): per direction, a link
//! with latency, bandwidth and a tail-dropping queue, random loss,
//! reordering, an MTU and ECN-CE marking, behind a per-datagram hook.

use core::cmp::Ordering;
use core::time::Duration;
use std::collections::VecDeque;

use crate::connection::EcnCodepoint;
use crate::random::{RandomSource, SeededRandom};
use crate::stream_id::Side;
use crate::time::Instant;

/// Which way a datagram travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// From the client to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Direction {
    /// Both directions, client to server first.
    pub const BOTH: [Self; 2] = [Self::ClientToServer, Self::ServerToClient];

    /// The direction in which `side` sends.
    pub fn from_sender(side: Side) -> Self {
        match side {
            Side::Client => Self::ClientToServer,
            Side::Server => Self::ServerToClient,
        }
    }

    /// The side that sends in this direction.
    pub fn sender(self) -> Side {
        match self {
            Self::ClientToServer => Side::Client,
            Self::ServerToClient => Side::Server,
        }
    }

    /// The side that receives in this direction.
    pub fn receiver(self) -> Side {
        !self.sender()
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// A datagram just sent, as the hook sees it before the link model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatagramInFlight {
    /// Which way it goes.
    pub direction: Direction,
    /// Its position among the datagrams sent in this direction, from 0.
    pub index: u64,
    /// When it was sent.
    pub sent_at: Instant,
    /// Its bytes; the hook may rewrite them.
    pub data: Vec<u8>,
    /// Its ECN marking; the hook may change it.
    pub ecn: Option<EcnCodepoint>,
}

/// What the hook decides for a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the link model (which may still lose or delay it).
    Deliver,
    /// Drop it (counted as [`LinkStats::dropped_by_hook`]).
    Drop,
    /// Hand it to the link model with this much extra delay.
    Delay(Duration),
}

/// The per-datagram hook: called for every datagram sent, in send order.
pub type Hook = Box<dyn FnMut(&mut DatagramInFlight) -> Verdict>;

/// The network model of one direction. Private fields, chained setters,
/// documented defaults: 10 ms latency, unlimited bandwidth, a 64 KiB
/// queue, no loss, no reordering, a 1500-byte MTU, no ECN marks.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub(super) latency: Duration,
    bandwidth: Option<u64>,
    queue_limit: usize,
    loss: f64,
    reorder: f64,
    reorder_delay: Duration,
    mtu: usize,
    ce: f64,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            bandwidth: None,
            queue_limit: 64 * 1024,
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            mtu: 1500,
            ce: 0.0,
        }
    }
}

impl Link {
    /// One-way propagation delay. Default 10 ms.
    pub fn latency(&mut self, latency: Duration) -> &mut Self {
        self.latency = latency;
        self
    }

    /// Bytes per second the link serialises; `None` is infinitely fast (no
    /// queue). Default `None`.
    pub fn bandwidth(&mut self, bytes_per_second: Option<u64>) -> &mut Self {
        self.bandwidth = bytes_per_second.filter(|b| *b > 0);
        self
    }

    /// Bytes waiting for serialisation before arrivals are tail-dropped
    /// (only with a bandwidth). Default 64 KiB.
    pub fn queue_limit(&mut self, bytes: usize) -> &mut Self {
        self.queue_limit = bytes;
        self
    }

    /// Fraction of datagrams lost at random, from 0 to 1. Default 0.
    pub fn loss(&mut self, fraction: f64) -> &mut Self {
        self.loss = fraction;
        self
    }

    /// Fraction of datagrams held back by a random extra delay of up to
    /// `max_extra_delay`, so that later ones overtake them. Default none.
    pub fn reorder(&mut self, fraction: f64, max_extra_delay: Duration) -> &mut Self {
        self.reorder = fraction;
        self.reorder_delay = max_extra_delay;
        self
    }

    /// Largest datagram the link carries; larger ones are dropped (no
    /// fragmentation, as with DF set). Default 1500.
    pub fn mtu(&mut self, mtu: usize) -> &mut Self {
        self.mtu = mtu;
        self
    }

    /// Fraction of datagrams that arrive marked ECN-CE. Unlike a real
    /// router, the model marks datagrams sent without ECT too, so a test can
    /// exercise the receiver's ECN counting on its own. Default 0.
    pub fn ce_marking(&mut self, fraction: f64) -> &mut Self {
        self.ce = fraction;
        self
    }
}

/// What happened on one direction's link so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Datagrams the sender handed to the link.
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Datagrams handed to the receiver.
    pub delivered: u64,
    /// Their bytes.
    pub delivered_bytes: u64,
    /// Datagrams dropped for any reason (the sum of the next four).
    pub dropped: u64,
    /// Dropped by the hook.
    pub dropped_by_hook: u64,
    /// Dropped for exceeding the MTU.
    pub dropped_too_big: u64,
    /// Lost at random.
    pub lost: u64,
    /// Tail-dropped at a full queue.
    pub tail_dropped: u64,
    /// Delivered marked ECN-CE by the link.
    pub ce_marked: u64,
    /// Given a reordering delay.
    pub reordered: u64,
    /// Put on the link by [`Pair::inject`](super::Pair::inject) rather than sent by an endpoint.
    pub injected: u64,
    /// Arrived at the server endpoint before it had accepted a connection
    /// and did not make it accept one (not a client Initial, or an attempt
    /// the incoming policy retried, refused or ignored).
    pub undeliverable: u64,
}

/// Why the link dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The hook said [`Verdict::Drop`].
    Hook,
    /// Larger than the link's MTU.
    TooBig,
    /// Random loss.
    Loss,
    /// The queue was full.
    QueueFull,
}

/// What became of a traced datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives (or arrived) at this time with this ECN marking.
    Delivered {
        /// Arrival time.
        at: Instant,
        /// The marking the receiver sees.
        ecn: Option<EcnCodepoint>,
    },
    /// The link dropped it.
    Dropped(DropReason),
}

/// One datagram sent by an endpoint, for determinism checks and debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// When it was sent.
    pub time: Instant,
    /// Which way.
    pub direction: Direction,
    /// The bytes the endpoint sent (before any hook rewrote them).
    pub data: Vec<u8>,
    /// What the link did with it.
    pub fate: Fate,
}

pub(super) struct LinkState {
    pub(super) config: Link,
    rng: SeededRandom,
    /// When the serialiser finishes the datagrams queued so far.
    busy_until: Instant,
    /// Departure times and sizes of datagrams queued or being serialised.
    queue: VecDeque<(Instant, usize)>,
    queued_bytes: usize,
    pub(super) next_index: u64,
    pub(super) stats: LinkStats,
}

impl LinkState {
    /// A link with `config`, its randomness from `rng`, idle since `start`.
    pub(super) fn new(config: Link, rng: SeededRandom, start: Instant) -> Self {
        Self {
            config,
            rng,
            busy_until: start,
            queue: VecDeque::new(),
            queued_bytes: 0,
            next_index: 0,
            stats: LinkStats::default(),
        }
    }

    fn chance(&mut self, fraction: f64) -> bool {
        if fraction <= 0.0 {
            return false;
        }
        if fraction >= 1.0 {
            return true;
        }
        // 53 random bits: exact for every f64 fraction.
        let r = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        r < fraction
    }

    /// Runs the model over a datagram sent at `now`: its arrival time, or
    /// why it is dropped.
    pub(super) fn carry(
        &mut self,
        now: Instant,
        len: usize,
        extra: Duration,
        ecn: &mut Option<EcnCodepoint>,
    ) -> Result<Instant, DropReason> {
        if len > self.config.mtu {
            return Err(DropReason::TooBig);
        }
        if self.chance(self.config.loss) {
            return Err(DropReason::Loss);
        }
        let mut departure = now;
        if let Some(bandwidth) = self.config.bandwidth {
            while self.queue.front().is_some_and(|(t, _)| *t <= now) {
                let (_, size) = self.queue.pop_front().expect("checked");
                self.queued_bytes -= size;
            }
            if self.queued_bytes + len > self.config.queue_limit {
                return Err(DropReason::QueueFull);
            }
            let nanos = (len as u128 * 1_000_000_000).div_ceil(u128::from(bandwidth));
            let serialisation = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            departure = self.busy_until.max(now) + serialisation;
            self.busy_until = departure;
            self.queue.push_back((departure, len));
            self.queued_bytes += len;
        }
        if self.chance(self.config.ce) {
            *ecn = Some(EcnCodepoint::Ce);
            self.stats.ce_marked += 1;
        }
        let mut arrival = departure + self.config.latency + extra;
        if self.chance(self.config.reorder) {
            let max = u64::try_from(self.config.reorder_delay.as_nanos()).unwrap_or(u64::MAX);
            arrival += Duration::from_nanos(1 + self.rng.below(max.max(1)));
            self.stats.reordered += 1;
        }
        Ok(arrival)
    }

    pub(super) fn count_drop(&mut self, reason: DropReason) {
        self.stats.dropped += 1;
        match reason {
            DropReason::Hook => self.stats.dropped_by_hook += 1,
            DropReason::TooBig => self.stats.dropped_too_big += 1,
            DropReason::Loss => self.stats.lost += 1,
            DropReason::QueueFull => self.stats.tail_dropped += 1,
        }
    }
}

/// A datagram on a link, ordered by arrival time then send order.
pub(super) struct Queued {
    pub(super) at: Instant,
    pub(super) seq: u64,
    pub(super) direction: Direction,
    pub(super) data: Vec<u8>,
    pub(super) ecn: Option<EcnCodepoint>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}
