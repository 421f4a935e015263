//! The attacker: datagrams no genuine client sends, as fast as allowed.
//!
//! - Undecryptable Initials: a server that keeps state for an Initial
//!   before its protection verifies can be filled with connections by
//!   anyone (DESIGN.md "Hostile input"; RFC 9000 §21.1.1).
//! - Genuine Initials from spoofed addresses that never complete: the
//!   handshake-state exhaustion RFC 9000 §8.1 and §21.1.1 answer with
//!   Retry and caps.
//! - Short-header garbage: what a server does for packets it cannot route
//!   (RFC 9000 §10.3, stateless resets, must stay cheap and bounded).
//! - Frame floods from an authenticated peer, forged past our own
//!   connection's logic with `Connection::forge_packet`: every queue a
//!   frame can fill needs a bound (RFC 9000 §21.9 and the per-frame
//!   sections).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quic_proto::connection::{ClientConfig, Connection, DatagramMeta};
use quic_proto::frame::{FrameType, NewConnectionId, PathChallenge, ResetStream};
use quic_proto::{
    ConnectionId, Dir, RandomSource, SeededRandom, StatelessResetToken, StreamId, VarInt,
};

use super::{Attack, FrameFlood};
use crate::udp::{Clock, drive};

/// The size of the Initials sent: the least a server must accept (RFC 9000 §14.1).
const INITIAL_SIZE: usize = 1200;
/// Client-opened bidirectional streams the RESET_STREAM flood cycles over,
/// at most (fewer if the server allows fewer).
const RESET_STREAMS: usize = 64;

/// What the attacker did.
#[derive(Clone, Debug, Default)]
pub struct AttackerStats {
    /// Datagrams sent.
    pub packets: u64,
    /// UDP payload bytes sent.
    pub bytes: u64,
    /// Sends the socket refused.
    pub send_errors: u64,
    /// Frame floods: handshakes completed (a new one after the server
    /// closes the last).
    pub connections: u64,
    /// Frame floods: why the server ended the attacker's connections, and
    /// why handshakes failed, with how often.
    pub closes: std::collections::BTreeMap<String, u64>,
}

/// Spaces sends out to at most `rate` per second.
#[derive(Debug)]
struct Pacer {
    rate: Option<u64>,
    start: Instant,
}

impl Pacer {
    /// Waits until the `sent`-th datagram is due.
    fn wait(&self, sent: u64) {
        let Some(rate) = self.rate.filter(|&r| r > 0) else { return };
        let due = self.start + Duration::from_secs_f64(sent as f64 / rate as f64);
        let ahead = due.saturating_duration_since(Instant::now());
        if !ahead.is_zero() {
            std::thread::sleep(ahead);
        }
    }
}

/// One attack, ready to run on its own thread.
pub(super) struct Attacker {
    attack: Attack,
    target: SocketAddr,
    server_name: String,
    config: ClientConfig,
    rng: SeededRandom,
    pacer: Pacer,
    count: Option<u64>,
    deadline: Instant,
    sockets: Vec<UdpSocket>,
    stats: AttackerStats,
}

impl Attacker {
    /// Binds the attack's sockets: for spoofed Initials, `sources` of them
    /// on random 127.0.0.0/8 addresses (Linux routes the whole block to
    /// loopback), else one on the loopback address.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        attack: Attack,
        target: SocketAddr,
        server_name: String,
        config: ClientConfig,
        seed: u64,
        rate: Option<u64>,
        count: Option<u64>,
        sources: usize,
        deadline: Instant,
    ) -> Result<Self, String> {
        let mut rng = SeededRandom::from_u64(seed);
        let mut sockets = Vec::new();
        match attack {
            Attack::None => {}
            Attack::SpoofedInitials => {
                if !target.is_ipv4() {
                    return Err("spoofed-initials needs an IPv4 loopback target".into());
                }
                while sockets.len() < sources.max(1) {
                    let mut b = [0u8; 3];
                    rng.fill(&mut b);
                    let ip = Ipv4Addr::new(127, b[0], b[1], b[2]);
                    if ip == Ipv4Addr::LOCALHOST || b == [255, 255, 255] || b == [0, 0, 0] {
                        continue;
                    }
                    let socket = UdpSocket::bind((ip, 0))
                        .map_err(|e| format!("cannot bind a UDP socket on {ip}: {e}"))?;
                    sockets.push(socket);
                }
            }
            _ => {
                let ip: IpAddr = if target.is_ipv4() {
                    Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                };
                sockets
                    .push(UdpSocket::bind((ip, 0)).map_err(|e| format!("cannot bind {ip}: {e}"))?);
            }
        }
        Ok(Self {
            attack,
            target,
            server_name,
            config,
            rng,
            pacer: Pacer { rate, start: Instant::now() },
            count,
            deadline,
            sockets,
            stats: AttackerStats::default(),
        })
    }

    /// Floods until `stop` is set, the deadline passes or the count is sent.
    pub(super) fn run(mut self, stop: &AtomicBool) -> AttackerStats {
        self.pacer.start = Instant::now();
        match self.attack {
            Attack::None => {
                while self.running(stop) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Attack::InitialGarbage => self.datagrams(stop, Self::garbage_initial),
            Attack::SpoofedInitials => self.datagrams(stop, Self::spoofed_initial),
            Attack::ShortGarbage => self.datagrams(stop, Self::short_garbage),
            Attack::Frames(kind) => self.frames(stop, kind),
        }
        self.stats
    }

    fn running(&self, stop: &AtomicBool) -> bool {
        !stop.load(Ordering::Relaxed)
            && Instant::now() < self.deadline
            && self.count.is_none_or(|c| self.stats.packets < c)
    }

    fn send(&mut self, socket: usize, datagram: &[u8]) {
        self.pacer.wait(self.stats.packets);
        match self.sockets[socket].send_to(datagram, self.target) {
            Ok(n) => {
                self.stats.packets += 1;
                self.stats.bytes += n as u64;
            }
            Err(_) => self.stats.send_errors += 1,
        }
    }

    /// Sends what `make` writes (into `buf`, returning the socket to send
    /// from) until told to stop.
    fn datagrams(&mut self, stop: &AtomicBool, make: fn(&mut Self, &mut Vec<u8>) -> usize) {
        let mut buf = Vec::with_capacity(INITIAL_SIZE);
        while self.running(stop) {
            buf.clear();
            let socket = make(self, &mut buf);
            if buf.is_empty() {
                // Nothing to send (a failed Initial): count it as tried.
                self.stats.send_errors += 1;
                continue;
            }
            self.send(socket, &buf);
        }
    }

    /// A v1 long-header Initial with random connection IDs (DCID 8 to 20
    /// bytes) and a random payload: its protection cannot verify.
    fn garbage_initial(&mut self, buf: &mut Vec<u8>) -> usize {
        let mut r = [0u8; 4];
        self.rng.fill(&mut r);
        // Long header, fixed bit, type Initial (0), random reserved and
        // packet number length bits (protected anyway).
        buf.push(0xc0 | (r[0] & 0x0f));
        buf.extend_from_slice(&1u32.to_be_bytes());
        let dcid_len = 8 + usize::from(r[1] % 13);
        let scid_len = usize::from(r[2] % 21);
        for len in [dcid_len, scid_len] {
            buf.push(len as u8);
            let at = buf.len();
            buf.resize(at + len, 0);
            self.rng.fill(&mut buf[at..]);
        }
        buf.push(0); // no token
        let length = INITIAL_SIZE - buf.len() - 2;
        buf.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
        let at = buf.len();
        buf.resize(INITIAL_SIZE, 0);
        self.rng.fill(&mut buf[at..]);
        0
    }

    /// The first datagram of a genuine connection attempt, from the next
    /// spoofed source; the attempt is then forgotten.
    fn spoofed_initial(&mut self, buf: &mut Vec<u8>) -> usize {
        let socket = (self.stats.packets as usize) % self.sockets.len();
        let rng = Box::new(SeededRandom::from_u64(self.rng.next_u64()));
        let clock = Clock::new();
        let Ok(mut conn) =
            Connection::connect(clock.now(), &self.config, &self.server_name, self.target, rng)
        else {
            return socket;
        };
        match conn.poll_transmit(clock.now(), buf) {
            Some(t) => buf.truncate(t.segment_size.unwrap_or(t.size).min(t.size)),
            None => buf.clear(),
        }
        socket
    }

    /// Random bytes with the first bit 0: a short header with a random DCID.
    fn short_garbage(&mut self, buf: &mut Vec<u8>) -> usize {
        let mut r = [0u8; 2];
        self.rng.fill(&mut r);
        let len = 21 + usize::from(u16::from_le_bytes(r)) % (INITIAL_SIZE - 20);
        buf.resize(len, 0);
        self.rng.fill(buf);
        buf[0] &= 0x7f;
        0
    }

    /// Connects, then sends packets full of `kind` frames on the
    /// connection while handling what the server sends, so that it stays
    /// open; connects again when the server closes it.
    fn frames(&mut self, stop: &AtomicBool, kind: FrameFlood) {
        let clock = Clock::new();
        while self.running(stop) {
            let mut conn = match self.connect(&clock) {
                Ok(conn) => conn,
                Err(e) => {
                    *self.stats.closes.entry(e).or_default() += 1;
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            self.stats.connections += 1;
            let mut forger = Forger::new(kind, &conn);
            if self.sockets[0].set_nonblocking(true).is_err() {
                return;
            }
            while self.running(stop) && !conn.is_closed() {
                let frames = forger.frames(&mut conn, &mut self.rng);
                let packet = conn.forge_packet(clock.now(), &frames);
                self.send(0, &packet);
                if self.stats.packets.is_multiple_of(4) {
                    self.service(&mut conn, &clock);
                }
            }
            if let Some(e) = conn.error() {
                *self.stats.closes.entry(format!("closed: {e}")).or_default() += 1;
            } else {
                conn.close(clock.now(), VarInt::from_u32(0), b"flood over");
                self.service(&mut conn, &clock);
            }
        }
    }

    /// A connection to the target, handshake completed.
    fn connect(&mut self, clock: &Clock) -> Result<Connection, String> {
        let socket = &self.sockets[0];
        socket.set_nonblocking(false).map_err(|e| e.to_string())?;
        let rng = Box::new(SeededRandom::from_u64(self.rng.next_u64()));
        let mut conn =
            Connection::connect(clock.now(), &self.config, &self.server_name, self.target, rng)
                .map_err(|e| format!("cannot connect: {e}"))?;
        let limit =
            self.deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(5));
        drive(&mut conn, socket, clock, limit, "the handshake", |c, _| {
            c.is_handshake_complete() || c.is_closed()
        })
        .map_err(|e| format!("handshake: {e}"))?;
        match conn.error() {
            Some(e) => Err(format!("handshake: {e}")),
            None => Ok(conn),
        }
    }

    /// Takes what the server sent (acknowledgments, responses), runs due
    /// timers and sends what the connection itself has to send.
    fn service(&mut self, conn: &mut Connection, clock: &Clock) {
        let mut buf = [0u8; 2048];
        for _ in 0..64 {
            let Ok((n, from)) = self.sockets[0].recv_from(&mut buf) else { break };
            let meta = DatagramMeta { remote: from, local_ip: None, ecn: None };
            conn.handle_datagram(clock.now(), meta, BytesMut::from(&buf[..n]));
        }
        let now = clock.now();
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now);
        }
        let mut out = Vec::with_capacity(1500);
        while let Some(t) = conn.poll_transmit(clock.now(), &mut out) {
            let segment = t.segment_size.unwrap_or(t.size).max(1);
            for chunk in out[..t.size].chunks(segment) {
                let _ = self.sockets[0].send_to(chunk, t.destination);
            }
            out.clear();
        }
    }
}

/// Writes the frames of one forged packet.
struct Forger {
    kind: FrameFlood,
    /// RESET_STREAM: the streams cycled over, and the next one's place.
    /// They are opened on our side too (nothing is sent on them), so that
    /// our connection takes the server's answers to the resets (its own
    /// RESET_STREAM, STOP_SENDING) instead of closing.
    streams: Vec<StreamId>,
    next_stream: usize,
    /// NEW_CONNECTION_ID: the next sequence number, and the length of the
    /// connection's IDs (new ones must match).
    next_seq: u64,
    cid_len: usize,
}

impl Forger {
    fn new(kind: FrameFlood, conn: &Connection) -> Self {
        let cid_len = conn.local_cids().next().map_or(8, |c| c.len()).max(1);
        // A connection driven alone has issued only its handshake ID (0).
        Self { kind, streams: Vec::new(), next_stream: 0, next_seq: 1, cid_len }
    }

    /// As many frames of the kind as one packet holds.
    fn frames(&mut self, conn: &mut Connection, rng: &mut SeededRandom) -> Vec<u8> {
        let capacity = conn.forge_capacity();
        let mut buf = Vec::with_capacity(capacity);
        match self.kind {
            FrameFlood::Ping => buf.resize(capacity, FrameType::PING.0.into_inner() as u8),
            FrameFlood::Datagram => {
                // Zero-length DATAGRAM frames with a Length field: two bytes
                // each, every one a datagram for the application.
                let ty = FrameType::DATAGRAM_WITH_LEN.0.into_inner() as u8;
                while buf.len() + 2 <= capacity {
                    buf.extend_from_slice(&[ty, 0]);
                }
            }
            FrameFlood::PathChallenge => loop {
                let mut frame = PathChallenge { data: [0; 8] };
                rng.fill(&mut frame.data);
                if buf.len() + frame.encoded_len() > capacity {
                    break;
                }
                frame.encode(&mut buf);
            },
            FrameFlood::ResetStream => loop {
                if self.next_stream >= self.streams.len() {
                    // Fresh streams as the server's limit allows: once both
                    // sides of a stream are closed, resets of it are moot.
                    let fresh: Vec<_> =
                        (0..RESET_STREAMS).map_while(|_| conn.open_stream(Dir::Bi)).collect();
                    if !fresh.is_empty() {
                        self.streams = fresh;
                    }
                    self.next_stream = 0;
                }
                let Some(&id) = self.streams.get(self.next_stream) else { break };
                let code = VarInt::from_u32(rng.next_u64() as u32 & 0x3fff_ffff);
                let frame = ResetStream { id, error_code: code, final_size: VarInt::ZERO };
                if buf.len() + frame.encoded_len() > capacity {
                    break;
                }
                frame.encode(&mut buf);
                self.next_stream += 1;
            },
            // Each new ID retires all before it: the server must send a
            // RETIRE_CONNECTION_ID for each and switch to the new one. Our
            // connection issues the same IDs itself first, so that it
            // accepts those retirements.
            FrameFlood::NewConnectionId => {
                while let Ok(sequence) = VarInt::try_from(self.next_seq) {
                    let frame = NewConnectionId {
                        sequence,
                        retire_prior_to: sequence,
                        id: ConnectionId::random(rng, self.cid_len),
                        reset_token: StatelessResetToken::random(rng),
                    };
                    if buf.len() + frame.encoded_len() > capacity {
                        break;
                    }
                    conn.issue_cid(frame.id, frame.reset_token);
                    frame.encode(&mut buf);
                    self.next_seq += 1;
                }
            }
        }
        buf
    }
}
