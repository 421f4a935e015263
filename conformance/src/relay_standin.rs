//! STAND-IN for `conformance::relay`, written only so that the matrix
//! compiles before the real relay lands; the merge deletes this file and the
//! `relay` alias in lib.rs. Same API; what it emulates: delay, jitter,
//! bandwidth with a packet queue, random and burst loss, corruption,
//! blackhole windows and dropping the first datagrams. No reordering and no
//! rebinding (those return errors).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The impairments of one direction.
#[derive(Clone, Debug, Default)]
pub struct Direction {
    /// One-way delay.
    pub delay: Duration,
    /// Up to this much more delay, uniformly drawn.
    pub jitter: Duration,
    /// Bits per second; `None`: unlimited.
    pub bandwidth: Option<u64>,
    /// Datagrams waiting for the link at most; 0: unlimited.
    pub queue: usize,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Gilbert-Elliott loss: (probability of entering the bad state,
    /// probability of staying in it); datagrams in the bad state are lost.
    pub burst_loss: Option<(f64, f64)>,
    /// Probability that a datagram has a byte flipped.
    pub corrupt: f64,
    /// Probability that a datagram is held back by `reorder_delay` (not
    /// emulated by the stand-in).
    pub reorder: f64,
    /// See `reorder`.
    pub reorder_delay: Duration,
    /// Windows (start, end) from the relay's start in which every datagram is lost.
    pub blackholes: Vec<(Duration, Duration)>,
    /// The first this many datagrams are dropped.
    pub drop_first: usize,
}

/// What to relay where, and how.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The server's address.
    pub server: SocketAddr,
    /// Client to server.
    pub to_server: Direction,
    /// Server to client.
    pub to_client: Direction,
    /// Seed of the impairments' randomness.
    pub seed: u64,
}

impl RelayConfig {
    /// No impairment.
    pub fn new(server: SocketAddr, seed: u64) -> RelayConfig {
        RelayConfig {
            server,
            to_server: Direction::default(),
            to_client: Direction::default(),
            seed,
        }
    }
}

/// Which way a datagram went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayDir {
    /// From the client.
    ToServer,
    /// From the server.
    ToClient,
}

/// What became of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Passed on intact.
    Delivered,
    /// Dropped by random or burst loss, or `drop_first`.
    Lost,
    /// Passed on with a byte changed.
    Corrupted,
    /// Dropped in a blackhole window.
    Blackholed,
    /// Dropped because the queue was full.
    QueueFull,
}

/// One datagram the relay saw, as it arrived.
#[derive(Clone, Debug)]
pub struct Record {
    /// When it arrived, from the relay's start.
    pub at: Duration,
    /// Which way.
    pub dir: RelayDir,
    /// Its bytes as sent.
    pub data: Vec<u8>,
    /// What became of it.
    pub fate: Fate,
}

/// A running relay; dropping it stops it.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    seed: u64,
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Link {
    cfg: Direction,
    seen: usize,
    bad: bool,
    free_at: Instant,
    queue: VecDeque<(Instant, Vec<u8>)>,
}

impl Link {
    fn new(cfg: Direction, now: Instant) -> Self {
        Self { cfg, seen: 0, bad: false, free_at: now, queue: VecDeque::new() }
    }

    fn admit(&mut self, rng: &mut Rng, now: Instant, since: Duration, data: &mut Vec<u8>) -> Fate {
        self.seen += 1;
        if self.seen <= self.cfg.drop_first {
            return Fate::Lost;
        }
        if self.cfg.blackholes.iter().any(|(a, b)| since >= *a && since < *b) {
            return Fate::Blackholed;
        }
        if let Some((enter, stay)) = self.cfg.burst_loss {
            self.bad = if self.bad { rng.next() < stay } else { rng.next() < enter };
            if self.bad {
                return Fate::Lost;
            }
        }
        if rng.next() < self.cfg.loss {
            return Fate::Lost;
        }
        if self.cfg.queue > 0 && self.queue.len() >= self.cfg.queue {
            return Fate::QueueFull;
        }
        let mut fate = Fate::Delivered;
        if !data.is_empty() && rng.next() < self.cfg.corrupt {
            let i = ((rng.next() * data.len() as f64) as usize).min(data.len() - 1);
            data[i] ^= 1 << ((rng.next() * 8.0) as u32 % 8);
            fate = Fate::Corrupted;
        }
        let start = self.free_at.max(now);
        let serial = match self.cfg.bandwidth {
            Some(bps) if bps > 0 => {
                Duration::from_nanos(data.len() as u64 * 8 * 1_000_000_000 / bps)
            }
            _ => Duration::ZERO,
        };
        self.free_at = start + serial;
        let jitter = self.cfg.jitter.mul_f64(rng.next());
        self.queue.push_back((self.free_at + self.cfg.delay + jitter, std::mem::take(data)));
        fate
    }
}

impl Relay {
    /// Binds a loopback socket of the server's family and starts relaying.
    pub fn start(cfg: RelayConfig) -> io::Result<Relay> {
        let (lo, any) = match cfg.server.ip() {
            IpAddr::V4(_) => (IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(_) => (IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)),
        };
        let front = UdpSocket::bind(SocketAddr::new(lo, 0))?;
        let back = UdpSocket::bind(SocketAddr::new(any, 0))?;
        front.set_nonblocking(true)?;
        back.set_nonblocking(true)?;
        back.connect(cfg.server)?;
        let addr = front.local_addr()?;
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let seed = cfg.seed;
        let thread = {
            let records = records.clone();
            let stop = stop.clone();
            thread::spawn(move || run(&cfg, &front, &back, &records, &stop))
        };
        Ok(Relay { addr, seed, records, stop, thread: Some(thread) })
    }

    /// Where clients send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seed of its randomness.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Not emulated by the stand-in.
    pub fn rebind_port(&self) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "relay stand-in: no rebinding"))
    }

    /// Not emulated by the stand-in.
    pub fn rebind_addr(&self) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "relay stand-in: no rebinding"))
    }

    /// Every datagram so far.
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Stops relaying and returns every datagram seen.
    pub fn stop(mut self) -> Vec<Record> {
        self.halt();
        self.records()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(
    cfg: &RelayConfig,
    front: &UdpSocket,
    back: &UdpSocket,
    records: &Mutex<Vec<Record>>,
    stop: &AtomicBool,
) {
    let start = Instant::now();
    let mut rng = Rng(cfg.seed);
    let mut up = Link::new(cfg.to_server.clone(), start);
    let mut down = Link::new(cfg.to_client.clone(), start);
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        let now = Instant::now();
        while let Ok((n, from)) = front.recv_from(&mut buf) {
            busy = true;
            client = Some(from);
            let mut data = buf[..n].to_vec();
            let fate = up.admit(&mut rng, now, now - start, &mut data);
            let rec =
                Record { at: now - start, dir: RelayDir::ToServer, data: buf[..n].to_vec(), fate };
            if let Ok(mut r) = records.lock() {
                r.push(rec);
            }
        }
        while let Ok(n) = back.recv(&mut buf) {
            busy = true;
            let mut data = buf[..n].to_vec();
            let fate = down.admit(&mut rng, now, now - start, &mut data);
            let rec =
                Record { at: now - start, dir: RelayDir::ToClient, data: buf[..n].to_vec(), fate };
            if let Ok(mut r) = records.lock() {
                r.push(rec);
            }
        }
        let now = Instant::now();
        while up.queue.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, d)) = up.queue.pop_front() {
                let _ = back.send(&d);
            }
        }
        while down.queue.front().is_some_and(|(t, _)| *t <= now) {
            if let (Some((_, d)), Some(c)) = (down.queue.pop_front(), client) {
                let _ = front.send_to(&d, c);
            }
        }
        if !busy {
            thread::sleep(Duration::from_micros(200));
        }
    }
}
