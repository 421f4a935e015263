//! `quic-udp`: the UDP socket quic-proto's drivers (quic-mio, quic-async)
//! send and receive QUIC datagrams on, a non-blocking `std::net::UdpSocket`
//! with the Linux fast paths QUIC benefits from, and the clock mapping they
//! share. One module, so the fast paths are written once.
//!
//! - **GSO** (`UDP_SEGMENT`): one `sendmsg` carries a batch of equal-sized
//!   datagrams ([`Transmit::segment_size`]); the kernel splits it.
//! - **GRO** (`UDP_GRO`): one `recvmsg` returns several datagrams of one
//!   sender coalesced; [`RecvMeta::stride`] says where to split them.
//! - **ECN** (RFC 9000 §13.4): marks are read from `IP_TOS`/`IPV6_TCLASS`
//!   and set per datagram.
//! - **Local address** (`IP_PKTINFO`/`IPV6_PKTINFO`): a wildcard-bound
//!   server learns which address a datagram was sent to, and answers from
//!   it ([`Transmit::src_ip`]).
//! - **Dual stack**: a socket bound to an IPv6 address also carries IPv4;
//!   IPv4 peers appear with IPv4 addresses, never IPv4-mapped ones.
//!
//! [`trace`] writes what a driver sends and receives as pcapng, with the
//! TLS secrets that decrypt it (docs/traces.md).
//!
//! Each feature is detected when the socket is set up. A kernel (or a
//! device) that refuses GSO when it is first used (`EIO`, `EINVAL`,
//! `ENOPROTOOPT`) gets it turned off, and the batch is sent again one
//! datagram at a time; an `EINVAL` caused by the ECN or source-address
//! control messages turns those off the same way. Elsewhere than Linux the
//! socket sends and receives one plain datagram at a time.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use quic_proto::connection::{EcnCodepoint, Transmit};

#[cfg(target_os = "linux")]
use crate::sys_linux as sys;

mod gather;
#[cfg(target_os = "linux")]
mod sys_linux;
pub mod trace;

pub use gather::{Gatherer, SendCounts};

/// A driver's clock as quic-proto's [`quic_proto::Instant`]: the time
/// since `epoch`, the driver's chosen origin.
pub fn instant_since(epoch: std::time::Instant) -> quic_proto::Instant {
    quic_proto::Instant::from_nanos(epoch.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64)
}

/// What a receive returned besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// The sender.
    pub remote: SocketAddr,
    /// Bytes written to the buffer: one datagram, or several (GRO).
    pub len: usize,
    /// The size of each datagram in the buffer but the last, which may be
    /// shorter; equal to `len` for a single datagram.
    pub stride: usize,
    /// The ECN marking the datagrams arrived with, where the socket can tell.
    pub ecn: Option<EcnCodepoint>,
    /// The local address the datagrams were sent to, where the socket can tell.
    pub local_ip: Option<IpAddr>,
}

impl RecvMeta {
    /// The datagrams in `buf[..self.len]`, split at `stride`.
    pub fn datagrams<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let len = self.len.min(buf.len());
        buf[..len].chunks(self.stride.max(1))
    }
}

/// A UDP socket for QUIC; see the crate docs. With the `mio` feature it is
/// a `mio::event::Source`; elsewhere an event loop watches its descriptor
/// (`AsFd`).
#[derive(Debug)]
pub struct UdpSocket {
    io: std::net::UdpSocket,
    local: SocketAddr,
    ipv6: bool,
    /// Datagrams per GSO send; 1 without GSO.
    gso_segments: AtomicUsize,
    /// Datagrams the kernel may coalesce per receive; 1 without GRO.
    gro_segments: AtomicUsize,
    ecn_send: AtomicBool,
    src_ip_send: AtomicBool,
    ecn_recv: bool,
    pktinfo: bool,
    /// Tests: make the next GSO sends fail as a kernel without GSO would.
    #[cfg(any(test, feature = "testing"))]
    fail_gso: AtomicBool,
    /// Tests: refuse sends carrying ECN or a source address, as a kernel
    /// without IP_TOS cmsgs on IPv6 sockets or pktinfo sends does.
    #[cfg(any(test, feature = "testing"))]
    fail_extras: AtomicBool,
    /// Tests: every n-th send call says `WouldBlock` (0: never), as a full
    /// send buffer does; counts the calls.
    #[cfg(any(test, feature = "testing"))]
    block_every: AtomicUsize,
    #[cfg(any(test, feature = "testing"))]
    send_count: AtomicUsize,
}

/// The bytes a GSO batch may carry: an IP datagram is at most 65,535 bytes,
/// less the IPv6 (40) and UDP (8) headers, rounded down for slack.
pub const MAX_GSO_BYTES: usize = 64_000;

/// A receive buffer size that holds the largest GRO batch.
pub const RECV_BUF_SIZE: usize = 65_536;

/// Socket buffers asked for: at the default (about 200 KiB) a fast sender on
/// loopback overruns the receiver. The kernel caps it at net.core.*mem_max.
const SOCKET_BUFFER: usize = 4 << 20;

impl UdpSocket {
    /// Binds a non-blocking UDP socket to `addr`. An IPv6 address gives a
    /// dual-stack socket (`IPV6_V6ONLY` off): `[::]:port` also receives
    /// IPv4.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let domain = socket2::Domain::for_address(addr);
        let socket =
            socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        if addr.is_ipv6() {
            // Some systems (BSDs, or Linux with bindv6only=1) default to
            // IPv6 only; not supporting dual stack is not an error.
            let _ = socket.set_only_v6(false);
        }
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.bind(&addr.into())?;
        Self::from_std(socket.into())
    }

    /// Wraps a bound std socket (set to non-blocking here) and turns on
    /// the features the kernel supports.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let ipv6 = local.is_ipv6();
        #[cfg(target_os = "linux")]
        let setup = sys::configure(&socket, ipv6);
        #[cfg(target_os = "linux")]
        let (gso, gro, ecn, pktinfo) = (
            if setup.gso { sys::MAX_GSO_SEGMENTS } else { 1 },
            if setup.gro { sys::MAX_GSO_SEGMENTS } else { 1 },
            setup.ecn,
            setup.pktinfo,
        );
        #[cfg(not(target_os = "linux"))]
        let (gso, gro, ecn, pktinfo) = (1, 1, false, false);
        Ok(Self {
            io: socket,
            local,
            ipv6,
            gso_segments: AtomicUsize::new(gso),
            gro_segments: AtomicUsize::new(gro),
            ecn_send: AtomicBool::new(cfg!(target_os = "linux")),
            src_ip_send: AtomicBool::new(cfg!(target_os = "linux")),
            ecn_recv: ecn,
            pktinfo,
            #[cfg(any(test, feature = "testing"))]
            fail_gso: AtomicBool::new(false),
            #[cfg(any(test, feature = "testing"))]
            fail_extras: AtomicBool::new(false),
            #[cfg(any(test, feature = "testing"))]
            block_every: AtomicUsize::new(0),
            #[cfg(any(test, feature = "testing"))]
            send_count: AtomicUsize::new(0),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// How many datagrams one send may carry (GSO); 1 when GSO is off or
    /// was found not to work.
    pub fn max_gso_segments(&self) -> usize {
        self.gso_segments.load(Ordering::Relaxed)
    }

    /// How many datagrams one receive may return (GRO); 1 without GRO.
    pub fn gro_segments(&self) -> usize {
        self.gro_segments.load(Ordering::Relaxed)
    }

    /// Whether received datagrams report their ECN marks.
    pub fn ecn_supported(&self) -> bool {
        self.ecn_recv
    }

    /// Whether received datagrams report their local address.
    pub fn pktinfo_supported(&self) -> bool {
        self.pktinfo
    }

    /// Turns GSO off (for tests and for devices known to mishandle it).
    pub fn disable_gso(&self) {
        self.gso_segments.store(1, Ordering::Relaxed);
    }

    /// Turns GRO off (for measurements and for devices known to mishandle
    /// it): each receive then returns one datagram. A no-op when GRO is
    /// already off. If the kernel refuses (`UDP_GRO` set to 0), GRO stays
    /// on, receives still split the batches they get, and the error says so.
    pub fn disable_gro(&self) -> io::Result<()> {
        if self.gro_segments() <= 1 {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        if !sys::set_gro(&self.io, false) {
            let e = io::Error::last_os_error();
            tracing::debug!(error = %e, "UDP GRO could not be turned off");
            return Err(e);
        }
        self.gro_segments.store(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends what `poll_transmit` wrote to `buf[..transmit.size]`: one
    /// datagram, or a GSO batch when `transmit.segment_size` is smaller
    /// than the size. Returns the bytes sent, which is `transmit.size`
    /// unless a batch sent one datagram at a time hit `WouldBlock` midway;
    /// then the rest (from the returned offset, a multiple of the segment
    /// size) is still to be sent. `WouldBlock` with nothing sent is an error.
    pub fn send(&self, transmit: &Transmit, buf: &[u8]) -> io::Result<usize> {
        let buf = &buf[..transmit.size.min(buf.len())];
        let segment = match transmit.segment_size {
            Some(s) if s > 0 && s < buf.len() => s,
            _ => return self.send_one(transmit, buf, None),
        };
        if self.max_gso_segments() > 1 {
            match self.send_one(transmit, buf, Some(segment)) {
                Err(e) if gso_refused(&e) => {
                    tracing::debug!(error = %e, "UDP GSO refused; sending datagrams one by one");
                    self.disable_gso();
                }
                result => return result,
            }
        }
        let mut sent = 0;
        for datagram in buf.chunks(segment) {
            match self.send_one(transmit, datagram, None) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && sent > 0 => return Ok(sent),
                Err(e) if sent == 0 => return Err(e),
                // A later datagram of the batch failed for good: it is lost,
                // like any datagram, and QUIC recovers it.
                Err(e) => tracing::debug!(error = %e, "datagram dropped"),
            }
            sent += datagram.len();
        }
        Ok(sent)
    }

    #[cfg(target_os = "linux")]
    fn send_one(&self, t: &Transmit, buf: &[u8], segment: Option<usize>) -> io::Result<usize> {
        #[cfg(any(test, feature = "testing"))]
        if segment.is_some() && self.fail_gso.load(Ordering::Relaxed) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        #[cfg(any(test, feature = "testing"))]
        {
            let every = self.block_every.load(Ordering::Relaxed);
            let n = self.send_count.fetch_add(1, Ordering::Relaxed) + 1;
            if every > 0 && n.is_multiple_of(every) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let params = sys::SendParams {
            destination: t.destination,
            ecn: t.ecn.filter(|_| self.ecn_send.load(Ordering::Relaxed)),
            segment_size: segment.map(|s| s.min(usize::from(u16::MAX)) as u16),
            src_ip: t.src_ip.filter(|_| self.src_ip_send.load(Ordering::Relaxed)),
        };
        #[cfg(any(test, feature = "testing"))]
        let refuse_extras = self.fail_extras.load(Ordering::Relaxed);
        #[cfg(not(any(test, feature = "testing")))]
        let refuse_extras = false;
        let result = if refuse_extras && (params.ecn.is_some() || params.src_ip.is_some()) {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        } else {
            sys::send(&self.io, self.ipv6, &params, buf)
        };
        match result {
            // Kernels without IP_TOS on IPv6 sockets, or without pktinfo
            // sends, say EINVAL: drop those extras for good and try again.
            Err(e)
                if e.raw_os_error() == Some(libc::EINVAL)
                    && segment.is_none()
                    && (params.ecn.is_some() || params.src_ip.is_some()) =>
            {
                tracing::debug!(error = %e, "ECN or source address refused; sending without");
                self.ecn_send.store(false, Ordering::Relaxed);
                self.src_ip_send.store(false, Ordering::Relaxed);
                self.send_one(t, buf, None)
            }
            result => result,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn send_one(&self, t: &Transmit, buf: &[u8], _segment: Option<usize>) -> io::Result<usize> {
        self.io.send_to(buf, t.destination)
    }

    /// Receives into `buf` (at least [`RECV_BUF_SIZE`] bytes to take a
    /// whole GRO batch). Datagrams that did not fit are dropped and the
    /// next one is read; `WouldBlock` when nothing is queued.
    #[cfg(target_os = "linux")]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        loop {
            let r = sys::recv(&self.io, buf)?;
            if r.truncated {
                tracing::debug!(from = %r.remote, "truncated datagram dropped");
                continue;
            }
            return Ok(RecvMeta {
                remote: r.remote,
                len: r.len,
                stride: r.stride.unwrap_or(r.len).min(r.len.max(1)),
                ecn: r.ecn,
                local_ip: r.local_ip,
            });
        }
    }

    /// Receives one datagram into `buf`; `WouldBlock` when nothing is queued.
    #[cfg(not(target_os = "linux"))]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        let (len, remote) = self.io.recv_from(buf)?;
        Ok(RecvMeta { remote, len, stride: len, ecn: None, local_ip: None })
    }

    /// Tests (`testing` feature): simulate a kernel that refuses ECN and source-address control
    /// messages on sends with `EINVAL`.
    #[cfg(any(test, feature = "testing"))]
    pub fn fail_extras_sends(&self) {
        self.fail_extras.store(true, Ordering::Relaxed);
    }

    /// Tests (`testing` feature): make every `n`-th send call fail with `WouldBlock`, as a
    /// socket whose send buffer is full does.
    #[cfg(any(test, feature = "testing"))]
    pub fn block_every_nth_send(&self, n: usize) {
        self.block_every.store(n, Ordering::Relaxed);
    }

    /// Tests (`testing` feature): simulate a kernel that refuses GSO sends with `EIO`.
    #[cfg(any(test, feature = "testing"))]
    pub fn fail_gso_sends(&self) {
        self.fail_gso.store(true, Ordering::Relaxed);
    }
}

/// Errors with which a kernel or device refuses a GSO send: `EIO` (a device
/// without checksum offload), `EINVAL` (segment size or count out of range,
/// or no GSO support), `ENOPROTOOPT` (kernel without UDP_SEGMENT).
fn gso_refused(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}

/// The socket's descriptor, so that other event loops can watch it
/// (quic-async wraps it in `async_io::Async`); reads and writes still go through
/// [`UdpSocket::recv`] and [`UdpSocket::send`].
#[cfg(unix)]
impl std::os::fd::AsFd for UdpSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.io.as_fd()
    }
}

/// With the `mio` feature, on Unix: register the socket with a
/// `mio::Registry` like any mio source.
#[cfg(all(feature = "mio", unix))]
impl mio::event::Source for UdpSocket {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        mio::unix::SourceFd(&self.io.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        mio::unix::SourceFd(&self.io.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        mio::unix::SourceFd(&self.io.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests;
