//! Reading a trace back: the blocks of a pcapng file as the datagrams,
//! secrets and input records [`Trace`](super::Trace) wrote, in file order.
//! Replay (`conformance replay`) and the tests read traces with it.
//!
//! The reader accepts what this crate writes and what tools that copy
//! blocks (editcap, Wireshark's "save as") keep of it: little-endian
//! sections, raw-IP interfaces (`LINKTYPE_RAW`) with any `if_tsresol`,
//! Enhanced Packet Blocks with `epb_flags`, Decryption Secrets Blocks and
//! this project's custom blocks. Every length is checked: a malformed file
//! is an error naming the byte offset, never a panic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use quic_proto::connection::EcnCodepoint;

use super::{
    BYTE_ORDER_MAGIC, CUSTOM_COPYABLE, DECRYPTION_SECRETS, Direction, ENHANCED_PACKET, EPB_FLAGS,
    FLAG_INBOUND, FLAG_OUTBOUND, IF_TSRESOL, INTERFACE_DESCRIPTION, InputRecord, LINKTYPE_RAW,
    OPT_END, SECRETS_TLS_KEY_LOG, SECTION_HEADER, TRACE_PEN,
};

/// A Custom Block that must not be copied (pcapng §4.8); read like the
/// copyable kind.
const CUSTOM_NO_COPY: u32 = 0x4000_0BAD;

/// One datagram of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedDatagram {
    /// The packet block's time, nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
    /// Received or sent by the traced endpoint.
    pub direction: Direction,
    /// The traced endpoint's address for it.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The ECN mark in the IP header (`None`: Not-ECT).
    pub ecn: Option<EcnCodepoint>,
    /// The UDP payload: one QUIC datagram.
    pub payload: Vec<u8>,
}

/// What a trace holds, block by block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceItem {
    /// A custom block of this project's records.
    Inputs(Vec<InputRecord>),
    /// An Enhanced Packet Block holding a UDP datagram.
    Datagram(TracedDatagram),
    /// A Decryption Secrets Block of NSS key log lines.
    Secrets(String),
}

/// Why a trace could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// Byte offset of the block at fault.
    pub offset: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed trace at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for ReadError {}

/// One interface of the current section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: u16,
    /// Timestamp units per second.
    units_per_second: u64,
}

/// Reads the items of a pcapng trace in file order. Blocks of other kinds
/// (other enterprises' custom blocks, statistics, name resolution) are
/// skipped; packets on interfaces that are not raw IP, and packets that
/// are not UDP, are skipped too.
pub fn read(file: &[u8]) -> Result<Vec<TraceItem>, ReadError> {
    let mut items = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut at = 0;
    let mut section = false;
    while at < file.len() {
        let err = |reason: &str| ReadError { offset: at, reason: reason.to_owned() };
        let header = file.get(at..at + 8).ok_or_else(|| err("truncated block header"))?;
        let kind = u32_le(header, 0);
        if kind == SECTION_HEADER {
            let magic = file.get(at + 8..at + 12).ok_or_else(|| err("truncated section header"))?;
            if u32_le(magic, 0) != BYTE_ORDER_MAGIC {
                return Err(err("not a little-endian pcapng section"));
            }
            section = true;
            interfaces.clear();
        } else if !section {
            return Err(err("not a pcapng file (no section header block first)"));
        }
        let total = u32_le(header, 4) as usize;
        if total < 12 || !total.is_multiple_of(4) {
            return Err(err("block length not a multiple of 4 of at least 12"));
        }
        let block = file.get(at..at + total).ok_or_else(|| err("block runs past the end"))?;
        if u32_le(block, total - 4) as usize != total {
            return Err(err("block's trailing length differs from its leading length"));
        }
        let body = &block[8..total - 4];
        match kind {
            INTERFACE_DESCRIPTION => interfaces.push(interface(body).map_err(&err)?),
            ENHANCED_PACKET => {
                if let Some(d) = packet(body, &interfaces).map_err(&err)? {
                    items.push(TraceItem::Datagram(d));
                }
            }
            DECRYPTION_SECRETS => {
                let secrets_type = u32_le(body.get(..8).ok_or_else(|| err("short secrets"))?, 0);
                let len = u32_le(body, 4) as usize;
                let data = body.get(8..8 + len).ok_or_else(|| err("secrets run past block"))?;
                if secrets_type == SECRETS_TLS_KEY_LOG {
                    items.push(TraceItem::Secrets(String::from_utf8_lossy(data).into_owned()));
                }
            }
            CUSTOM_COPYABLE | CUSTOM_NO_COPY => {
                let pen = body.get(..4).map(|b| u32_le(b, 0));
                if pen == Some(TRACE_PEN) {
                    items.push(TraceItem::Inputs(InputRecord::decode_all(&body[4..])));
                }
            }
            _ => {}
        }
        at += total;
    }
    if !section {
        return Err(ReadError { offset: 0, reason: "empty file".to_owned() });
    }
    Ok(items)
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The options from `body[at..]` as (code, value) pairs, up to
/// `opt_endofopt` or the end of the body.
fn options(body: &[u8], mut at: usize) -> Result<Vec<(u16, &[u8])>, &'static str> {
    let mut out = Vec::new();
    while at + 4 <= body.len() {
        let (code, len) = (u16_le(body, at), usize::from(u16_le(body, at + 2)));
        if code == OPT_END {
            break;
        }
        let value = body.get(at + 4..at + 4 + len).ok_or("option runs past its block")?;
        out.push((code, value));
        at += 4 + len.next_multiple_of(4);
    }
    Ok(out)
}

fn interface(body: &[u8]) -> Result<Interface, &'static str> {
    if body.len() < 8 {
        return Err("short interface description");
    }
    let mut units_per_second = 1_000_000; // pcapng's default: microseconds
    for (code, value) in options(body, 8)? {
        if code == IF_TSRESOL {
            let &v = value.first().ok_or("empty if_tsresol")?;
            let exponent = u32::from(v & 0x7f);
            let base: u64 = if v & 0x80 == 0 { 10 } else { 2 };
            units_per_second =
                base.checked_pow(exponent).ok_or("if_tsresol finer than this reader counts")?;
        }
    }
    Ok(Interface { link_type: u16_le(body, 0), units_per_second })
}

fn packet(body: &[u8], interfaces: &[Interface]) -> Result<Option<TracedDatagram>, &'static str> {
    if body.len() < 20 {
        return Err("short packet block");
    }
    let interface = *interfaces.get(u32_le(body, 0) as usize).ok_or("packet on no interface")?;
    let units = (u64::from(u32_le(body, 4)) << 32) | u64::from(u32_le(body, 8));
    let captured = u32_le(body, 12) as usize;
    let original = u32_le(body, 16) as usize;
    let data = body.get(20..20 + captured).ok_or("packet data runs past its block")?;
    let mut direction = None;
    for (code, value) in options(body, 20 + captured.next_multiple_of(4))? {
        if code == EPB_FLAGS && value.len() == 4 {
            direction = match u32_le(value, 0) & 0b11 {
                FLAG_INBOUND => Some(Direction::Inbound),
                FLAG_OUTBOUND => Some(Direction::Outbound),
                _ => None,
            };
        }
    }
    if interface.link_type != LINKTYPE_RAW {
        return Ok(None);
    }
    if captured != original {
        return Err("packet truncated by the capture's snap length");
    }
    let Some((src, dst, ecn, payload)) = ip_udp(data)? else { return Ok(None) };
    let direction = direction.ok_or("packet without a direction (epb_flags)")?;
    let (local, remote) = match direction {
        Direction::Inbound => (dst, src),
        Direction::Outbound => (src, dst),
    };
    let unix_nanos = u64::try_from(
        u128::from(units) * 1_000_000_000 / u128::from(interface.units_per_second.max(1)),
    )
    .map_err(|_| "timestamp past the year 2554")?;
    Ok(Some(TracedDatagram {
        unix_nanos,
        direction,
        local,
        remote,
        ecn,
        payload: payload.to_vec(),
    }))
}

/// Source, destination, ECN and payload of a raw IPv4 or IPv6 packet
/// carrying UDP; `None` for other protocols.
#[allow(clippy::type_complexity)]
fn ip_udp(
    packet: &[u8],
) -> Result<Option<(SocketAddr, SocketAddr, Option<EcnCodepoint>, &[u8])>, &'static str> {
    let &first = packet.first().ok_or("empty packet")?;
    let (src, dst, tos, protocol, udp) = match first >> 4 {
        4 => {
            let header_len = usize::from(first & 0x0f) * 4;
            if header_len < 20 || packet.len() < header_len {
                return Err("short IPv4 header");
            }
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            let end = total.clamp(header_len, packet.len());
            let src: [u8; 4] = packet[12..16].try_into().map_err(|_| "short IPv4 header")?;
            let dst: [u8; 4] = packet[16..20].try_into().map_err(|_| "short IPv4 header")?;
            (
                IpAddr::from(Ipv4Addr::from(src)),
                IpAddr::from(Ipv4Addr::from(dst)),
                packet[1],
                packet[9],
                &packet[header_len..end],
            )
        }
        6 => {
            if packet.len() < 40 {
                return Err("short IPv6 header");
            }
            let tos = ((u16::from_be_bytes([packet[0], packet[1]]) >> 4) & 0xff) as u8;
            let payload_len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            let end = (40 + payload_len).min(packet.len());
            let src: [u8; 16] = packet[8..24].try_into().map_err(|_| "short IPv6 header")?;
            let dst: [u8; 16] = packet[24..40].try_into().map_err(|_| "short IPv6 header")?;
            (
                IpAddr::from(Ipv6Addr::from(src)),
                IpAddr::from(Ipv6Addr::from(dst)),
                tos,
                packet[6],
                &packet[40..end],
            )
        }
        _ => return Err("neither IPv4 nor IPv6"),
    };
    if protocol != 17 {
        return Ok(None);
    }
    if udp.len() < 8 {
        return Err("short UDP header");
    }
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < 8 || udp_len > udp.len() {
        return Err("UDP length disagrees with the packet");
    }
    Ok(Some((
        SocketAddr::new(src, src_port),
        SocketAddr::new(dst, dst_port),
        EcnCodepoint::from_bits(tos),
        &udp[8..udp_len],
    )))
}
