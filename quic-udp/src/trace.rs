//! Packet traces: every UDP datagram a driver receives and sends, written
//! as pcapng (draft-ietf-opsawg-pcapng) that Wireshark and tshark open and
//! decrypt as they are (docs/traces.md).
//!
//! - One Section Header Block, then one Interface Description Block of
//!   link type `LINKTYPE_RAW` (101, raw IPv4 or IPv6) with nanosecond
//!   timestamps (`if_tsresol` = 9).
//! - One Enhanced Packet Block per datagram, after GSO splitting and GRO
//!   splitting: the datagram wrapped in a synthesized IPv4 or IPv6 header
//!   (ECN in the TOS / traffic class byte, checksums correct) and a UDP
//!   header, its direction in `epb_flags`, its time the driver clock's
//!   [`Instant`] the core saw, mapped onto the wall clock.
//! - Decryption Secrets Blocks (type `0x0000000A`, secrets type `TLSK`)
//!   holding the NSS key log lines of the TLS sessions, each written before
//!   the first packet that follows its secrets' appearance. rustls logs a
//!   secret while the core handles a datagram or polls a transmit, so a
//!   driver records an inbound datagram *after* handing it to the core: the
//!   secrets it yields (say, the handshake secrets a ServerHello brings)
//!   then precede it, as Wireshark's single pass needs.
//!
//! [`Trace::key_log`] wraps a TLS configuration's key log so that secrets
//! reach the trace as well as wherever they went before.

use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use quic_proto::Instant;
use quic_proto::connection::EcnCodepoint;
use quic_proto::crypto::tls_inputs::{TlsInput, TlsInputLog};
use quic_proto::keylog::nss_line;

/// pcapng block types.
const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 0x0000_0001;
const ENHANCED_PACKET: u32 = 0x0000_0006;
const DECRYPTION_SECRETS: u32 = 0x0000_000A;
/// A Custom Block that may be copied into a new file (pcapng §4.8):
/// readers that do not know its enterprise number skip it.
const CUSTOM_COPYABLE: u32 = 0x0000_0BAD;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// `LINKTYPE_RAW`: each packet starts with an IPv4 or IPv6 header; one
/// interface carries both families, as a dual-stack socket does.
pub const LINKTYPE_RAW: u16 = 101;
/// Decryption Secrets Block secrets type: an NSS key log ("TLSK").
pub const SECRETS_TLS_KEY_LOG: u32 = 0x544c_534b;

/// The Private Enterprise Number of this project's custom blocks: 32473,
/// the IANA number for examples and documentation (RFC 5612), until the
/// project registers one.
pub const TRACE_PEN: u32 = 32_473;

/// The records of a trace's custom blocks: replay's inputs besides the
/// datagrams (docs/traces.md). Each record is `type: u16, length: u16`
/// (little-endian), the value, zero padding to 4 bytes; the padding reads
/// as a record of type 0, which ends the block.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputRecord {
    /// The Unix time, in nanoseconds, of the driver clock's zero: a packet
    /// block's timestamp minus it is the `Instant` the core was given.
    /// Value: u64, little-endian.
    ClockOrigin(u64),
    /// The 32-byte seed of the endpoint's `SeededRandom`: with it, every
    /// random draw of the endpoint and its connections (keys for stateless
    /// resets and tokens, connection IDs, packet number skips, greasing)
    /// replays.
    EndpointSeed([u8; 32]),
    /// A driver wake-up began at this driver-clock time (nanoseconds,
    /// u64 LE): the driver ran the endpoint's due timers, handed its
    /// events to the application and polled transmits, all at this `now`.
    Wakeup(u64),
    /// The driver stopped polling transmits at this time (u64 LE
    /// nanoseconds) because the socket would block; the datagrams already
    /// recorded were produced, the rest is polled at a later wake-up.
    SendBlocked(u64),
    /// The command line that started the traced program, arguments
    /// separated by NUL bytes (UTF-8, at most 65,535 bytes; longer ones
    /// are cut at a character boundary).
    CommandLine(String),
    /// The application asked the driver to send at this time (u64 LE
    /// nanoseconds) outside a wake-up (`Driver::flush`, `Driver::connect`):
    /// it acted on the endpoint just before.
    Flush(u64),
    /// A signature the traced endpoint's TLS key made (a CertificateVerify):
    /// the scheme (`rustls::SignatureScheme` as u16, LE), the SHA-256 of the
    /// signed message, then the signature. ECDSA and RSA-PSS signatures are
    /// randomized, so replay returns these instead of signing.
    Signature {
        /// The TLS signature scheme.
        scheme: u16,
        /// SHA-256 of the message signed.
        message_sha256: [u8; 32],
        /// The signature.
        signature: Vec<u8>,
    },
    /// A read of the TLS clock (certificate validity, ticket ages): seconds
    /// since the Unix epoch, u64 LE.
    TimeRead(u64),
    /// One certificate (DER) of the chain the traced endpoint presents, in
    /// chain order, end entity first: replay presents the same chain (the
    /// private key is not needed, signatures being recorded).
    Certificate(Vec<u8>),
    /// The socket's GSO segment limit (u16 LE) from here on: how many
    /// equal datagrams the driver gathers into one send, which decides how
    /// far polling ran ahead when a send blocked.
    GsoSegments(u16),
}

impl InputRecord {
    /// Record type of [`InputRecord::ClockOrigin`].
    pub const CLOCK_ORIGIN: u16 = 1;
    /// Record type of [`InputRecord::EndpointSeed`].
    pub const ENDPOINT_SEED: u16 = 2;
    /// Record type of [`InputRecord::Wakeup`].
    pub const WAKEUP: u16 = 5;
    /// Record type of [`InputRecord::SendBlocked`].
    pub const SEND_BLOCKED: u16 = 6;
    /// Record type of [`InputRecord::CommandLine`].
    pub const COMMAND_LINE: u16 = 7;
    /// Record type of [`InputRecord::Flush`].
    pub const FLUSH: u16 = 8;
    /// Record type of [`InputRecord::Signature`].
    pub const SIGNATURE: u16 = 3;
    /// Record type of [`InputRecord::TimeRead`].
    pub const TIME_READ: u16 = 4;
    /// Record type of [`InputRecord::Certificate`].
    pub const CERTIFICATE: u16 = 9;
    /// Record type of [`InputRecord::GsoSegments`].
    pub const GSO_SEGMENTS: u16 = 10;

    /// Whether the record fits a record's 16-bit length (a certificate or
    /// signature longer than 65,535 bytes does not, and is not written).
    pub fn fits(&self) -> bool {
        match self {
            Self::Certificate(der) => der.len() <= usize::from(u16::MAX),
            Self::Signature { signature, .. } => signature.len() + 34 <= usize::from(u16::MAX),
            _ => true,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        if !self.fits() {
            return;
        }
        let number;
        let signed;
        let (kind, value): (u16, &[u8]) = match self {
            Self::ClockOrigin(nanos) => {
                number = nanos.to_le_bytes();
                (Self::CLOCK_ORIGIN, &number)
            }
            Self::EndpointSeed(seed) => (Self::ENDPOINT_SEED, seed),
            Self::Wakeup(nanos) => {
                number = nanos.to_le_bytes();
                (Self::WAKEUP, &number)
            }
            Self::SendBlocked(nanos) => {
                number = nanos.to_le_bytes();
                (Self::SEND_BLOCKED, &number)
            }
            Self::Flush(nanos) => {
                number = nanos.to_le_bytes();
                (Self::FLUSH, &number)
            }
            Self::Signature { scheme, message_sha256, signature } => {
                let mut v = Vec::with_capacity(34 + signature.len());
                v.extend_from_slice(&scheme.to_le_bytes());
                v.extend_from_slice(message_sha256);
                v.extend_from_slice(signature);
                signed = v;
                (Self::SIGNATURE, &signed)
            }
            Self::TimeRead(secs) => {
                number = secs.to_le_bytes();
                (Self::TIME_READ, &number)
            }
            Self::Certificate(der) => (Self::CERTIFICATE, der),
            Self::GsoSegments(n) => {
                number = u64::from(*n).to_le_bytes();
                (Self::GSO_SEGMENTS, &number[..2])
            }
            Self::CommandLine(line) => {
                let mut end = line.len().min(usize::from(u16::MAX));
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                (Self::COMMAND_LINE, &line.as_bytes()[..end])
            }
        };
        put_u16(out, kind);
        put_u16(out, value.len() as u16);
        out.extend_from_slice(value);
        pad(out);
    }

    /// The records of a custom block's data (after its enterprise number);
    /// unknown record types and values of the wrong size are skipped, a
    /// malformed tail ends the list.
    pub fn decode_all(mut data: &[u8]) -> Vec<Self> {
        let mut out = Vec::new();
        while data.len() >= 4 {
            let kind = u16::from_le_bytes([data[0], data[1]]);
            let len = usize::from(u16::from_le_bytes([data[2], data[3]]));
            if kind == 0 {
                break;
            }
            let Some(value) = data.get(4..4 + len) else { break };
            let u64_value = <[u8; 8]>::try_from(value).ok().map(u64::from_le_bytes);
            let record = match (kind, u64_value) {
                (Self::CLOCK_ORIGIN, Some(v)) => Some(Self::ClockOrigin(v)),
                (Self::WAKEUP, Some(v)) => Some(Self::Wakeup(v)),
                (Self::SEND_BLOCKED, Some(v)) => Some(Self::SendBlocked(v)),
                (Self::FLUSH, Some(v)) => Some(Self::Flush(v)),
                (Self::TIME_READ, Some(v)) => Some(Self::TimeRead(v)),
                (Self::GSO_SEGMENTS, _) => <[u8; 2]>::try_from(value)
                    .ok()
                    .map(|b| Self::GsoSegments(u16::from_le_bytes(b))),
                (Self::CERTIFICATE, _) => Some(Self::Certificate(value.to_vec())),
                (Self::SIGNATURE, _) if value.len() >= 34 => Some(Self::Signature {
                    scheme: u16::from_le_bytes([value[0], value[1]]),
                    message_sha256: value[2..34].try_into().unwrap_or_default(),
                    signature: value[34..].to_vec(),
                }),
                (Self::ENDPOINT_SEED, _) => value.try_into().ok().map(Self::EndpointSeed),
                (Self::COMMAND_LINE, _) => {
                    std::str::from_utf8(value).ok().map(|s| Self::CommandLine(s.to_owned()))
                }
                _ => None,
            };
            out.extend(record);
            data = data.get(4 + len.next_multiple_of(4)..).unwrap_or_default();
        }
        out
    }
}

/// Option codes.
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;

/// `epb_flags` direction bits (pcapng §4.3.1).
const FLAG_INBOUND: u32 = 0b01;
const FLAG_OUTBOUND: u32 = 0b10;

/// The hop limit written in synthesized IP headers; the real one is not
/// known to a UDP socket and does not matter to a reader.
const HOP_LIMIT: u8 = 64;

/// Which way a datagram went, seen from the traced endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received from `remote`.
    Inbound,
    /// Sent to `remote`.
    Outbound,
}

/// A pcapng writer: blocks, in order, to any byte sink. [`Trace`] uses it;
/// it is public for tools that write their own captures.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block (naming `application` in
    /// `shb_userappl`) and one raw-IP interface with nanosecond timestamps,
    /// interface 0.
    pub fn new(mut out: W, application: &str) -> io::Result<Self> {
        let mut shb = Vec::with_capacity(64);
        put_u32(&mut shb, BYTE_ORDER_MAGIC);
        put_u16(&mut shb, 1); // major version
        put_u16(&mut shb, 0); // minor version
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length: unknown
        put_option(&mut shb, SHB_USERAPPL, application.as_bytes());
        put_option(&mut shb, OPT_END, &[]);
        write_block(&mut out, SECTION_HEADER, &shb)?;

        let mut idb = Vec::with_capacity(32);
        put_u16(&mut idb, LINKTYPE_RAW);
        put_u16(&mut idb, 0); // reserved
        put_u32(&mut idb, 0); // snap length: no limit
        put_option(&mut idb, IF_NAME, b"udp");
        put_option(&mut idb, IF_TSRESOL, &[9]); // 10^-9 s
        put_option(&mut idb, OPT_END, &[]);
        write_block(&mut out, INTERFACE_DESCRIPTION, &idb)?;
        Ok(Self { out })
    }

    /// Writes one Enhanced Packet Block on interface 0: `packet` (a raw IP
    /// packet), captured whole, at `unix_nanos`, with its direction and an
    /// optional comment.
    pub fn packet(
        &mut self,
        unix_nanos: u64,
        direction: Direction,
        packet: &[u8],
        comment: Option<&str>,
    ) -> io::Result<()> {
        let len = u32::try_from(packet.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet too long"))?;
        let mut epb = Vec::with_capacity(packet.len() + 48);
        put_u32(&mut epb, 0); // interface
        put_u32(&mut epb, (unix_nanos >> 32) as u32);
        put_u32(&mut epb, unix_nanos as u32);
        put_u32(&mut epb, len); // captured
        put_u32(&mut epb, len); // original
        epb.extend_from_slice(packet);
        pad(&mut epb);
        let flags = match direction {
            Direction::Inbound => FLAG_INBOUND,
            Direction::Outbound => FLAG_OUTBOUND,
        };
        put_option(&mut epb, EPB_FLAGS, &flags.to_le_bytes());
        if let Some(comment) = comment {
            put_option(&mut epb, OPT_COMMENT, comment.as_bytes());
        }
        put_option(&mut epb, OPT_END, &[]);
        write_block(&mut self.out, ENHANCED_PACKET, &epb)
    }

    /// Writes a Decryption Secrets Block of `secrets_type` (e.g.
    /// [`SECRETS_TLS_KEY_LOG`]). Readers apply it to the packets after it.
    pub fn secrets(&mut self, secrets_type: u32, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "secrets too long"))?;
        let mut dsb = Vec::with_capacity(data.len() + 12);
        put_u32(&mut dsb, secrets_type);
        put_u32(&mut dsb, len);
        dsb.extend_from_slice(data);
        pad(&mut dsb);
        write_block(&mut self.out, DECRYPTION_SECRETS, &dsb)
    }

    /// Writes a copyable Custom Block of enterprise number `pen` holding
    /// `data` (zero-padded to 4 bytes: the data must say where it ends).
    pub fn custom(&mut self, pen: u32, data: &[u8]) -> io::Result<()> {
        let mut block = Vec::with_capacity(data.len() + 8);
        put_u32(&mut block, pen);
        block.extend_from_slice(data);
        pad(&mut block);
        write_block(&mut self.out, CUSTOM_COPYABLE, &block)
    }

    /// Flushes the sink.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The sink.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Zero bytes up to a multiple of 4: every block body and option value is
/// 32-bit aligned.
fn pad(buf: &mut Vec<u8>) {
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn put_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    put_u16(buf, code);
    // Option values here are short (names, flags, comments we write).
    put_u16(buf, value.len().min(usize::from(u16::MAX)) as u16);
    buf.extend_from_slice(&value[..value.len().min(usize::from(u16::MAX))]);
    pad(buf);
}

/// Type, total length, body (already aligned), total length again.
fn write_block(out: &mut impl Write, block_type: u32, body: &[u8]) -> io::Result<()> {
    debug_assert!(body.len().is_multiple_of(4), "block bodies are aligned by put_option/pad");
    let total = u32::try_from(body.len() + 12)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "block too long"))?;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}

/// `payload` as the UDP datagram from `src` to `dst` inside an IPv4 or
/// IPv6 packet with `ecn` in its TOS / traffic class, lengths and
/// checksums correct. Mixed families (a dual-stack socket's IPv6 wildcard
/// with an IPv4 peer) are written as IPv4 when the IPv6 side is the
/// wildcard or IPv4-mapped, else as IPv6 with the IPv4 side mapped.
pub fn ip_udp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    ecn: Option<EcnCodepoint>,
    payload: &[u8],
) -> Vec<u8> {
    let tos = ecn.map_or(0, EcnCodepoint::bits);
    let (src_ip, dst_ip) = same_family(src.ip(), dst.ip());
    let udp_len = payload.len() + 8;
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    // A datagram longer than a UDP length field can say cannot have been
    // sent or received; saturate rather than wrap if one is ever passed.
    udp.extend_from_slice(&(udp_len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(40);
    match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
        }
        (s, d) => {
            pseudo.extend_from_slice(&v6(s).octets());
            pseudo.extend_from_slice(&v6(d).octets());
            pseudo.extend_from_slice(&(udp_len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
        }
    }
    let mut sum = checksum(&[&pseudo, &udp]);
    // RFC 768: a computed zero is sent as all ones (zero means "none").
    if sum == 0 {
        sum = 0xffff;
    }
    udp[6..8].copy_from_slice(&sum.to_be_bytes());

    let mut packet = Vec::with_capacity(udp_len + 40);
    match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            packet.extend_from_slice(&[0x45, tos]);
            packet.extend_from_slice(
                &((udp_len + 20).min(usize::from(u16::MAX)) as u16).to_be_bytes(),
            );
            packet.extend_from_slice(&[0, 0, 0x40, 0]); // identification; DF
            packet.extend_from_slice(&[HOP_LIMIT, 17, 0, 0]);
            packet.extend_from_slice(&s.octets());
            packet.extend_from_slice(&d.octets());
            let sum = checksum(&[&packet[..20]]);
            packet[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        (s, d) => {
            let first = (6u32 << 28) | (u32::from(tos) << 20);
            packet.extend_from_slice(&first.to_be_bytes());
            packet.extend_from_slice(&(udp_len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
            packet.extend_from_slice(&[17, HOP_LIMIT]);
            packet.extend_from_slice(&v6(s).octets());
            packet.extend_from_slice(&v6(d).octets());
        }
    }
    packet.extend_from_slice(&udp);
    packet
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    let (a, b) = (unmapped(a), unmapped(b));
    match (a, b) {
        (IpAddr::V4(_), IpAddr::V6(v6)) if v6.is_unspecified() => (a, Ipv4Addr::UNSPECIFIED.into()),
        (IpAddr::V6(v6), IpAddr::V4(_)) if v6.is_unspecified() => (Ipv4Addr::UNSPECIFIED.into(), b),
        _ => (a, b),
    }
}

/// The source address the kernel would choose for datagrams to `remote`
/// (a connected UDP socket sends nothing), if it has a route.
fn route_source(remote: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = match remote {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let probe = std::net::UdpSocket::bind(any).ok()?;
    probe.connect((remote, 9)).ok()?;
    Some(probe.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &byte in *part {
            match odd.take() {
                Some(high) => sum += u64::from(u16::from_be_bytes([high, byte])),
                None => odd = Some(byte),
            }
        }
    }
    if let Some(high) = odd {
        sum += u64::from(u16::from_be_bytes([high, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Secrets rustls has logged and the trace has not yet written.
type PendingSecrets = Arc<Mutex<String>>;

/// A trace being recorded: the pcapng file of one driver's datagrams and
/// the TLS secrets that decrypt them. Give it to the driver
/// (`quic_mio::Driver::set_trace`) and wrap the TLS configurations' key
/// logs with [`Trace::key_log`].
pub struct Trace {
    writer: PcapngWriter<Box<dyn Write + Send>>,
    pending: PendingSecrets,
    /// Unix time, in nanoseconds, of the driver clock's zero.
    origin_unix_nanos: u64,
    /// The local address an unspecified source is written as: the last
    /// local address inbound datagrams were seen to arrive on, per family.
    learned_v4: Option<IpAddr>,
    learned_v6: Option<IpAddr>,
    /// Inputs the program gave before the driver began the trace, written
    /// in its first custom block.
    start_inputs: Vec<InputRecord>,
    /// Where the TLS configurations record signatures and clock reads.
    tls_inputs: Option<TlsInputLog>,
    /// The TLS input log overflowed and was reported.
    tls_overflow_reported: bool,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace").field("origin_unix_nanos", &self.origin_unix_nanos).finish()
    }
}

impl Trace {
    /// Creates `path` (truncating it) and starts a trace in it.
    pub fn create(path: &std::path::Path) -> io::Result<Self> {
        let file = std::fs::File::create(path)?;
        Self::new(Box::new(io::BufWriter::new(file)))
    }

    /// Starts a trace in `out`. Its timestamps count from the Unix epoch
    /// once the driver has called [`Trace::begin`].
    pub fn new(out: Box<dyn Write + Send>) -> io::Result<Self> {
        let application = concat!("quic-udp ", env!("CARGO_PKG_VERSION"));
        Ok(Self {
            writer: PcapngWriter::new(out, application)?,
            pending: Arc::default(),
            origin_unix_nanos: 0,
            learned_v4: None,
            learned_v6: None,
            start_inputs: Vec::new(),
            tls_inputs: None,
            tls_overflow_reported: false,
        })
    }

    /// Starts the record: a driver calls it when it takes the trace, with
    /// its clock's current reading `now` and the inputs it knows (say, its
    /// endpoint's seed). Sets the wall-clock time of the driver clock's
    /// zero and writes it ([`InputRecord::ClockOrigin`]) and `inputs` as
    /// one custom block, which Wireshark lists as the first frame.
    pub fn begin(&mut self, now: Instant, inputs: &[InputRecord]) -> io::Result<()> {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let unix = u64::try_from(unix.as_nanos()).unwrap_or(u64::MAX);
        self.origin_unix_nanos = unix.saturating_sub(now.as_nanos());
        let mut records = vec![InputRecord::ClockOrigin(self.origin_unix_nanos)];
        records.extend_from_slice(inputs);
        records.append(&mut self.start_inputs);
        self.record_inputs(&records)
    }

    /// Adds an input to the trace's first custom block, written when the
    /// driver begins the trace (say, the program's
    /// [`InputRecord::CommandLine`]).
    pub fn add_start_input(&mut self, record: InputRecord) {
        self.start_inputs.push(record);
    }

    /// Writes the TLS inputs `log` collects (signatures, clock reads:
    /// `quic_proto::crypto::tls_inputs`) into the trace, as
    /// [`InputRecord::Signature`] and [`InputRecord::TimeRead`] records,
    /// with the secrets before each packet. Give the same log to the
    /// recording signing key and clock of the traced TLS configurations.
    pub fn record_tls_inputs(&mut self, log: TlsInputLog) {
        self.tls_inputs = Some(log);
    }

    /// Writes `records` as one custom block ([`TRACE_PEN`]), after any
    /// pending secrets.
    pub fn record_inputs(&mut self, records: &[InputRecord]) -> io::Result<()> {
        self.write_secrets()?;
        self.write_records(records)
    }

    fn write_records(&mut self, records: &[InputRecord]) -> io::Result<()> {
        let mut data = Vec::new();
        for record in records {
            record.encode(&mut data);
        }
        self.writer.custom(TRACE_PEN, &data)
    }

    /// A key log that hands each secret to this trace and then to `inner`
    /// (the configuration's previous key log, e.g. an `SSLKEYLOGFILE`):
    /// set it as the `key_log` of the rustls configuration(s) whose
    /// connections the traced driver carries.
    pub fn key_log(&self, inner: Arc<dyn rustls::KeyLog>) -> Arc<dyn rustls::KeyLog> {
        Arc::new(TraceKeyLog { pending: self.pending.clone(), inner })
    }

    /// Records one datagram at `now` (the driver clock the core saw), after
    /// any secrets logged since the last record. `local` is the traced
    /// socket's address for it (the local address it arrived on or leaves
    /// from, where known).
    pub fn record(
        &mut self,
        now: Instant,
        direction: Direction,
        local: SocketAddr,
        remote: SocketAddr,
        ecn: Option<EcnCodepoint>,
        datagram: &[u8],
    ) -> io::Result<()> {
        self.write_secrets()?;
        let local = self.local_address(direction, local, remote);
        let (src, dst) = match direction {
            Direction::Inbound => (remote, local),
            Direction::Outbound => (local, remote),
        };
        let packet = ip_udp_packet(src, dst, ecn, datagram);
        let time = self.origin_unix_nanos.saturating_add(now.as_nanos());
        self.writer.packet(time, direction, &packet, None)
    }

    /// Writes the secrets logged since the last record, if any, as one
    /// Decryption Secrets Block.
    /// The TLS inputs recorded since, as one custom block after the
    /// secrets.
    pub fn write_secrets(&mut self) -> io::Result<()> {
        let lines = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !lines.is_empty() {
            self.writer.secrets(SECRETS_TLS_KEY_LOG, lines.as_bytes())?;
        }
        let Some(log) = &self.tls_inputs else { return Ok(()) };
        let inputs = log.take();
        if log.overflowed() && !self.tls_overflow_reported {
            self.tls_overflow_reported = true;
            tracing::warn!("TLS inputs were dropped from the trace: it will not replay past them");
        }
        if inputs.is_empty() {
            return Ok(());
        }
        let records: Vec<InputRecord> = inputs
            .into_iter()
            .map(|input| match input {
                TlsInput::Signature { scheme, message_sha256, signature } => {
                    InputRecord::Signature { scheme, message_sha256, signature }
                }
                TlsInput::Time { unix_secs } => InputRecord::TimeRead(unix_secs),
            })
            .collect();
        self.write_records(&records)
    }

    /// Writes out what is buffered (secrets included), so that a reader
    /// (or a killed process) has everything recorded so far.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_secrets()?;
        self.writer.flush()
    }

    /// A wildcard-bound socket sending without a chosen source address:
    /// write the address datagrams were seen arriving on instead or, before
    /// any arrived, the address the kernel's routing would pick for
    /// `remote`, so that both directions of a flow carry the same
    /// addresses. Wireshark keys a QUIC connection's TLS session by them:
    /// a client Initial from 0.0.0.0 leaves the server's answers without
    /// the ClientHello, and so without secrets.
    fn local_address(
        &mut self,
        direction: Direction,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> SocketAddr {
        let ip = unmapped(local.ip());
        let remote_ip = unmapped(remote.ip());
        let v4 = if ip.is_unspecified() { remote_ip.is_ipv4() } else { ip.is_ipv4() };
        let learned = if v4 { &mut self.learned_v4 } else { &mut self.learned_v6 };
        if !ip.is_unspecified() {
            if direction == Direction::Inbound {
                *learned = Some(ip);
            }
            return local;
        }
        // Probed once: without a route the wildcard stays (a probe per
        // datagram would cost a socket each).
        let learned = *learned.get_or_insert_with(|| route_source(remote_ip).unwrap_or(ip));
        SocketAddr::new(learned, local.port())
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// The key log [`Trace::key_log`] returns.
struct TraceKeyLog {
    pending: PendingSecrets,
    inner: Arc<dyn rustls::KeyLog>,
}

impl fmt::Debug for TraceKeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TraceKeyLog(..)")
    }
}

impl rustls::KeyLog for TraceKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = nss_line(label, client_random, secret);
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push_str(&line);
        self.inner.log(label, client_random, secret);
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

mod read;
pub use read::{ReadError, TraceItem, TracedDatagram, read};

#[cfg(test)]
mod tests;
