//! Linux `sendmsg`/`recvmsg` with control messages: UDP GSO (`UDP_SEGMENT`),
//! GRO (`UDP_GRO`), ECN (`IP_TOS`/`IPV6_TCLASS`) and the local address
//! (`IP_PKTINFO`/`IPV6_PKTINFO`). The only `unsafe` code of the crate lives
//! here, because libc's socket calls and `CMSG_*` helpers require it.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use quic_proto::connection::EcnCodepoint;

/// The largest number of segments the kernel takes in one GSO send
/// (`UDP_MAX_SEGMENTS` in include/linux/udp.h).
pub(crate) const MAX_GSO_SEGMENTS: usize = 64;

/// Room for every control message we send (UDP_SEGMENT, a TOS or traffic
/// class, an in6_pktinfo) or receive (UDP_GRO, TOS, TCLASS, pktinfo), with
/// alignment slack. `u64` elements keep the buffer aligned for `cmsghdr`.
const CONTROL_WORDS: usize = 32;

/// What [`recv`] learned about one `recvmsg`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) remote: SocketAddr,
    /// The GRO segment size, when the kernel coalesced datagrams.
    pub(crate) stride: Option<usize>,
    pub(crate) ecn: Option<EcnCodepoint>,
    pub(crate) local_ip: Option<IpAddr>,
    /// The datagram did not fit in the buffer.
    pub(crate) truncated: bool,
}

/// What one `sendmsg` carries besides its bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendParams {
    pub(crate) destination: SocketAddr,
    pub(crate) ecn: Option<EcnCodepoint>,
    pub(crate) segment_size: Option<u16>,
    pub(crate) src_ip: Option<IpAddr>,
}

fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: `value` is a live c_int and the length passed is its size;
    // setsockopt only reads it. An invalid fd or option is reported as -1.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

fn get_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and `len` holds the size of
    // `value`, so the kernel writes at most that many bytes.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &raw mut len) };
    (rc == 0).then_some(value)
}

/// Which features the kernel accepted when the socket was set up.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Setup {
    pub(crate) gso: bool,
    pub(crate) gro: bool,
    pub(crate) ecn: bool,
    pub(crate) pktinfo: bool,
}

/// Turns on every receive-side feature the kernel has, and probes for GSO.
/// `ipv6` sockets also get the IPv4 options, for the IPv4-mapped traffic a
/// dual-stack socket carries. Each refusal just leaves its feature off.
pub(crate) fn configure(socket: &impl AsRawFd, ipv6: bool) -> Setup {
    let fd = socket.as_raw_fd();
    let mut setup = Setup::default();
    let v4_ecn = set_int_option(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, 1);
    let v4_info = set_int_option(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
    // RFC 9000 §14: QUIC datagrams must not be fragmented; PROBE sets DF
    // without letting the kernel's path MTU cache shrink our sends.
    let _ = set_int_option(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE);
    if ipv6 {
        setup.ecn = set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1);
        setup.pktinfo = set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1);
        let _ = set_int_option(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
        );
    } else {
        setup.ecn = v4_ecn;
        setup.pktinfo = v4_info;
    }
    setup.gro = set_int_option(fd, libc::SOL_UDP, libc::UDP_GRO, 1);
    // Reading UDP_SEGMENT succeeds exactly on kernels that know the option
    // (4.18+); setting it would change the default for every send.
    setup.gso = get_int_option(fd, libc::SOL_UDP, libc::UDP_SEGMENT).is_some();
    setup
}

/// Turns GRO on or off; whether the kernel took the setting.
pub(crate) fn set_gro(socket: &impl AsRawFd, on: bool) -> bool {
    set_int_option(socket.as_raw_fd(), libc::SOL_UDP, libc::UDP_GRO, libc::c_int::from(on))
}

/// An aligned control-message buffer.
#[repr(C)]
struct Control([u64; CONTROL_WORDS]);

impl Control {
    fn new() -> Self {
        Self([0; CONTROL_WORDS])
    }

    fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr().cast()
    }

    const fn capacity() -> usize {
        CONTROL_WORDS * size_of::<u64>()
    }
}

/// Appends control messages to a `msghdr` whose control buffer is zeroed.
struct Encoder<'a> {
    msg: &'a mut libc::msghdr,
    cmsg: *mut libc::cmsghdr,
    len: usize,
}

impl<'a> Encoder<'a> {
    fn new(msg: &'a mut libc::msghdr) -> Self {
        // SAFETY: `msg.msg_control`/`msg_controllen` describe a live, zeroed,
        // aligned buffer (`Control`); CMSG_FIRSTHDR only reads those fields.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
        Self { msg, cmsg, len: 0 }
    }

    fn push<T: Copy>(&mut self, level: libc::c_int, ty: libc::c_int, value: T) {
        let size = size_of::<T>() as libc::c_uint;
        // SAFETY: CMSG_SPACE is pure arithmetic.
        let space = unsafe { libc::CMSG_SPACE(size) } as usize;
        // Our messages are few and small; running out means a bug here, and
        // the message is then dropped rather than written out of bounds.
        if self.cmsg.is_null() || self.len + space > Control::capacity() {
            debug_assert!(false, "control buffer too small");
            return;
        }
        // SAFETY: `self.cmsg` points into the control buffer with at least
        // `space` bytes left (checked above), so the header and the data
        // (written unaligned) fit; CMSG_NXTHDR reads only within
        // `msg_controllen` of a zeroed buffer.
        unsafe {
            (*self.cmsg).cmsg_level = level;
            (*self.cmsg).cmsg_type = ty;
            (*self.cmsg).cmsg_len = libc::CMSG_LEN(size) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(self.cmsg).cast::<T>(), value);
            self.len += space;
            self.cmsg = libc::CMSG_NXTHDR(self.msg, self.cmsg);
        }
    }

    fn finish(self) {
        self.msg.msg_controllen = self.len as _;
        if self.len == 0 {
            self.msg.msg_control = std::ptr::null_mut();
        }
    }
}

fn sockaddr_from(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data for which all zeroes is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn sockaddr_to(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in (family and length
            // checked); sockaddr_storage is aligned for it.
            let sin = unsafe { &*(std::ptr::from_ref(storage).cast::<libc::sockaddr_in>()) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// One `sendmsg` of `buf` (a GSO batch when `params.segment_size` is set).
/// `ipv6`: the socket's family; IPv4 destinations must then be mapped.
pub(crate) fn send(
    socket: &impl AsRawFd,
    ipv6: bool,
    params: &SendParams,
    buf: &[u8],
) -> io::Result<usize> {
    let destination = match (ipv6, params.destination) {
        (true, SocketAddr::V4(a)) => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        (_, d) => d,
    };
    // IPv4 traffic (IPv4-mapped on a dual-stack socket included) takes the
    // IPv4 options; the kernel applies them to the IPv4 header it builds.
    let v4_traffic = match destination {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
    };
    let (mut name, name_len) = sockaddr_from(destination);
    let mut iov = libc::iovec { iov_base: buf.as_ptr().cast_mut().cast(), iov_len: buf.len() };
    let mut control = Control::new();
    // SAFETY: msghdr is plain data for which all zeroes is valid.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&raw mut name).cast();
    msg.msg_namelen = name_len;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr();
    msg.msg_controllen = Control::capacity() as _;
    let mut encoder = Encoder::new(&mut msg);
    if let Some(ecn) = params.ecn {
        let tos = libc::c_int::from(ecn.bits());
        if v4_traffic {
            encoder.push(libc::IPPROTO_IP, libc::IP_TOS, tos);
        } else {
            encoder.push(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tos);
        }
    }
    if let Some(segment) = params.segment_size {
        encoder.push(libc::SOL_UDP, libc::UDP_SEGMENT, segment);
    }
    match params.src_ip {
        Some(IpAddr::V4(ip)) if v4_traffic => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            encoder.push(libc::IPPROTO_IP, libc::IP_PKTINFO, info);
        }
        Some(ip) if !v4_traffic => {
            let ip = match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr { s6_addr: ip.octets() },
                ipi6_ifindex: 0,
            };
            encoder.push(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info);
        }
        // An IPv6 source for IPv4 traffic cannot be expressed; let the
        // kernel choose.
        _ => {}
    }
    encoder.finish();
    loop {
        // SAFETY: `msg` points at live buffers (`name`, `iov` over `buf`,
        // `control`) whose lengths it states; sendmsg only reads them.
        let rc = unsafe { libc::sendmsg(socket.as_raw_fd(), &raw const msg, 0) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One `recvmsg` into `buf`.
pub(crate) fn recv(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: sockaddr_storage and msghdr are plain data; zeroes are valid.
    let mut name: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut control = Control::new();
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&raw mut name).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr();
    msg.msg_controllen = Control::capacity() as _;
    let len = loop {
        // SAFETY: `msg` describes live, writable buffers of the stated
        // lengths (`name`, `buf` through `iov`, `control`); the kernel
        // writes within them and updates the lengths.
        let rc = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut msg, 0) };
        if rc >= 0 {
            break rc as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let remote = sockaddr_to(&name, msg.msg_namelen)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no source address"))?;
    let mut received = Received {
        len,
        remote: unmap(remote),
        stride: None,
        ecn: None,
        local_ip: None,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
    };
    // SAFETY: `msg` was filled by recvmsg: its control fields describe
    // `control`, which lives until the end of this function.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/NXTHDR return headers that lie within the
        // control buffer; the data read for each type is checked against
        // the header's length first.
        unsafe {
            let header = &*cmsg;
            let data_len = (header.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            let data = libc::CMSG_DATA(cmsg);
            match (header.cmsg_level, header.cmsg_type) {
                // Linux delivers IP_TOS as one byte (some systems: an int).
                (libc::IPPROTO_IP, libc::IP_TOS) if data_len >= 1 => {
                    received.ecn = EcnCodepoint::from_bits(*data);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if data_len >= 4 => {
                    let class = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    received.ecn = EcnCodepoint::from_bits(class as u8);
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if data_len >= size_of::<libc::in_pktinfo>() =>
                {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    let ip = Ipv4Addr::from(info.ipi_addr.s_addr.to_ne_bytes());
                    received.local_ip = Some(IpAddr::V4(ip));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if data_len >= size_of::<libc::in6_pktinfo>() =>
                {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                    received.local_ip =
                        Some(ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4));
                }
                (libc::SOL_UDP, libc::UDP_GRO) if data_len >= 4 => {
                    let size = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    if size > 0 {
                        received.stride = Some(size as usize);
                    }
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok(received)
}

/// An IPv4-mapped address as the IPv4 address it stands for.
pub(crate) fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, a.port())),
            None => addr,
        },
        v4 => v4,
    }
}
