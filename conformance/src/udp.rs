//! A minimal blocking UDP driver for one `quic_proto::Connection`, used by
//! the interop tests. It follows the driving contract (drain transmits,
//! then wait until the deadline or a datagram, then feed it in) with
//! std's socket and clock. The production drivers are quic-mio and
//! quic-async; this one exists so the conformance tests need neither.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use bytes::BytesMut;
use quic_proto::connection::{AcceptParams, Connection, DatagramMeta, ServerConfig};
use quic_proto::{ConnectionId, Instant, StatelessResetToken, SystemRandom};

/// Maps std's clock onto the core's `Instant`.
#[derive(Clone, Copy, Debug)]
pub struct Clock(std::time::Instant);

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self(std::time::Instant::now())
    }

    /// The current time as the core sees it.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Why driving stopped.
#[derive(Debug)]
pub enum DriveError {
    /// The socket failed.
    Io(io::Error),
    /// The condition was not met in time.
    TimedOut(&'static str),
}

impl core::fmt::Display for DriveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "socket error: {e}"),
            Self::TimedOut(what) => write!(f, "timed out waiting for {what}"),
        }
    }
}

impl std::error::Error for DriveError {}

impl From<io::Error> for DriveError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Sends everything the connection has to send.
pub fn flush(conn: &mut Connection, socket: &UdpSocket, clock: &Clock) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1500);
    while let Some(t) = conn.poll_transmit(clock.now(), &mut buf) {
        socket.send_to(&buf[..t.size], t.destination)?;
    }
    Ok(())
}

/// Drives `conn` until `done` returns true (it is called after every
/// input, and may read, write and poll events), or `limit` passes.
pub fn drive(
    conn: &mut Connection,
    socket: &UdpSocket,
    clock: &Clock,
    limit: Duration,
    what: &'static str,
    mut done: impl FnMut(&mut Connection, Instant) -> bool,
) -> Result<(), DriveError> {
    let deadline = std::time::Instant::now() + limit;
    let mut rbuf = vec![0u8; 65536];
    loop {
        flush(conn, socket, clock)?;
        if done(conn, clock.now()) {
            flush(conn, socket, clock)?;
            return Ok(());
        }
        flush(conn, socket, clock)?;
        if std::time::Instant::now() > deadline {
            return Err(DriveError::TimedOut(what));
        }
        let now = clock.now();
        let wait = conn
            .poll_timeout()
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_micros(100), Duration::from_millis(50));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut rbuf) {
            Ok((n, from)) => {
                receive(conn, clock, from, &rbuf[..n]);
                // Take whatever else is queued without blocking.
                socket.set_nonblocking(true)?;
                for _ in 0..64 {
                    match socket.recv_from(&mut rbuf) {
                        Ok((n, from)) => receive(conn, clock, from, &rbuf[..n]),
                        Err(_) => break,
                    }
                }
                socket.set_nonblocking(false)?;
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
        let now = clock.now();
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now);
        }
    }
}

fn receive(conn: &mut Connection, clock: &Clock, from: SocketAddr, data: &[u8]) {
    let meta = DatagramMeta { remote: from, local_ip: None, ecn: None };
    conn.handle_datagram(clock.now(), meta, BytesMut::from(data));
}

/// The first datagram a server receives, and the connection IDs of the
/// client Initial in it, for `Connection::accept`.
#[derive(Debug)]
pub struct FirstInitial {
    /// The client's address.
    pub from: SocketAddr,
    /// The datagram.
    pub datagram: Vec<u8>,
    /// The Initial's version.
    pub version: quic_proto::Version,
    /// Its Destination Connection ID.
    pub dcid: ConnectionId,
    /// Its Source Connection ID.
    pub scid: ConnectionId,
}

/// Waits for a datagram that starts with a client Initial.
pub fn wait_for_initial(socket: &UdpSocket, limit: Duration) -> Result<FirstInitial, DriveError> {
    socket.set_read_timeout(Some(limit))?;
    let mut rbuf = vec![0u8; 65536];
    loop {
        let (n, from) = socket.recv_from(&mut rbuf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                DriveError::TimedOut("a client Initial")
            }
            _ => DriveError::Io(e),
        })?;
        let Ok(d) = quic_proto::packet::PartialDecode::parse(&rbuf[..n], 0, false) else {
            continue;
        };
        if let quic_proto::packet::ProtectedHeader::Long(h) = d.header()
            && h.ty == quic_proto::packet::LongType::Initial
        {
            return Ok(FirstInitial {
                from,
                datagram: rbuf[..n].to_vec(),
                version: h.version,
                dcid: h.dcid,
                scid: h.scid,
            });
        }
    }
}

/// Waits (up to `limit`) for a client's first Initial on `socket` and
/// accepts it as a server connection under `config`, the Initial already
/// fed in; drive it next. Connection IDs and the reset token are random.
pub fn accept_first(
    socket: &UdpSocket,
    config: &ServerConfig,
    clock: &Clock,
    limit: Duration,
) -> Result<Connection, String> {
    let first = wait_for_initial(socket, limit).map_err(|e| e.to_string())?;
    let params = AcceptParams {
        version: first.version,
        remote: first.from,
        client_dcid: first.dcid,
        client_scid: first.scid,
        local_cid: ConnectionId::random(&mut SystemRandom, 8),
        reset_token: StatelessResetToken::random(&mut SystemRandom),
        retry: None,
    };
    let mut conn = Connection::accept(clock.now(), config, params, Box::new(SystemRandom))
        .map_err(|e| format!("accepting the client's Initial: {e}"))?;
    receive(&mut conn, clock, first.from, &first.datagram);
    Ok(conn)
}

/// Feeds a datagram (the first Initial) to a connection.
pub fn feed(conn: &mut Connection, clock: &Clock, from: SocketAddr, data: &[u8]) {
    receive(conn, clock, from, data);
}
