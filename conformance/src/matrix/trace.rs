//! The packets a relay saw, decoded as far as the checks need: long header
//! fields (types, versions, connection IDs, Retry tokens) from the clear
//! text, Initial payloads with the Initial keys (RFC 9001 §5.2), and the
//! key phase of 1-RTT packets with the header protection keys of the key
//! log's traffic secrets (RFC 9001 §5.4, §6).

use std::collections::{BTreeMap, BTreeSet};

use quic_proto::crypto::{
    CipherSuite, DirectionalKeys, Keys, open_payload, remove_header_protection,
};
use quic_proto::keylog::KeyLogLine;
use quic_proto::packet::{
    CoalescedPackets, LongType, PacketNumberLen, PartialDecode, ProtectedHeader,
    decode_packet_number, key_phase,
};
use quic_proto::{Side, Version};

use crate::relay::{Fate, Record, RelayDir};

/// One QUIC packet of a datagram.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Which way its datagram went.
    pub dir: RelayDir,
    /// What the relay did with the datagram.
    pub fate: Fate,
    /// Index of its datagram in the records.
    pub datagram: usize,
    /// The datagram's size (UDP payload).
    pub datagram_len: usize,
    /// Kind and header fields.
    pub kind: Kind,
    /// The packet's bytes (still protected).
    pub bytes: Vec<u8>,
    /// Where the packet number starts, for protected packets.
    pub pn_offset: Option<usize>,
}

/// What kind of packet, with the fields the checks read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Initial, 0-RTT or Handshake.
    Long {
        /// Initial, 0-RTT or Handshake.
        ty: LongType,
        /// Its version.
        version: Version,
        /// Destination Connection ID.
        dcid: Vec<u8>,
        /// Source Connection ID.
        scid: Vec<u8>,
        /// Token (Initial only; else empty).
        token: Vec<u8>,
    },
    /// Retry.
    Retry {
        /// Its version.
        version: Version,
        /// The Source Connection ID the client must use.
        scid: Vec<u8>,
        /// The address validation token.
        token: Vec<u8>,
    },
    /// 1-RTT.
    Short,
    /// Version Negotiation.
    VersionNegotiation,
    /// Anything else (an unknown version, or undecodable).
    Other,
}

/// All packets of a run, in the order the relay saw them.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The packets.
    pub packets: Vec<Packet>,
    /// The relay's records they came from, in arrival order.
    pub records: Vec<Record>,
}

impl Trace {
    /// Decodes every datagram's headers. Short headers are parsed with the
    /// DCID length of the connection's first long header in that direction
    /// (the CID the sender chose for the receiver).
    pub fn new(records: &[Record]) -> Self {
        let mut packets = Vec::new();
        // The short header DCID length per direction: the SCID length the
        // other side announced in its long headers.
        let mut cid_len = [8usize, 8usize];
        for (i, r) in records.iter().enumerate() {
            let slot = match r.dir {
                RelayDir::ToServer => 0,
                RelayDir::ToClient => 1,
            };
            for p in CoalescedPackets::new(&r.data, cid_len[slot], true) {
                let Ok(p) = p else { break };
                let bytes = r.data[p.range.clone()].to_vec();
                let kind = kind_of(&p.decode);
                if let Kind::Long { scid, .. } = &kind {
                    cid_len[1 - slot] = scid.len();
                }
                packets.push(Packet {
                    dir: r.dir,
                    fate: r.fate,
                    datagram: i,
                    datagram_len: r.data.len(),
                    kind,
                    pn_offset: p.decode.pn_offset(),
                    bytes,
                });
            }
        }
        Self { packets, records: records.to_vec() }
    }

    /// Long header packets of `ty` in direction `dir`.
    pub fn long(&self, dir: RelayDir, ty: LongType) -> impl Iterator<Item = &Packet> {
        self.packets.iter().filter(move |p| {
            p.dir == dir && matches!(&p.kind, Kind::Long { ty: t, .. } if *t == ty)
        })
    }

    /// The versions of the long header packets of `ty` sent in `dir`.
    pub fn versions(&self, dir: RelayDir, ty: LongType) -> BTreeSet<u32> {
        self.long(dir, ty)
            .filter_map(|p| match &p.kind {
                Kind::Long { version, .. } => Some(version.0),
                _ => None,
            })
            .collect()
    }

    /// Handshakes as the interop runner counts them: distinct Source
    /// Connection IDs of the server's Initial packets.
    pub fn handshakes(&self) -> usize {
        self.long(RelayDir::ToClient, LongType::Initial)
            .filter_map(|p| match &p.kind {
                Kind::Long { scid, .. } => Some(scid.clone()),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// The tokens of the server's Retry packets.
    pub fn retry_tokens(&self) -> Vec<Vec<u8>> {
        self.packets
            .iter()
            .filter(|p| p.dir == RelayDir::ToClient)
            .filter_map(|p| match &p.kind {
                Kind::Retry { token, .. } => Some(token.clone()),
                _ => None,
            })
            .collect()
    }

    /// The tokens of the client's Initial packets (empty ones left out).
    pub fn client_initial_tokens(&self) -> Vec<Vec<u8>> {
        self.long(RelayDir::ToServer, LongType::Initial)
            .filter_map(|p| match &p.kind {
                Kind::Long { token, .. } if !token.is_empty() => Some(token.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether any Version Negotiation packet was sent.
    pub fn has_version_negotiation(&self) -> bool {
        self.packets.iter().any(|p| p.kind == Kind::VersionNegotiation)
    }

    /// The payloads of the client's Initial packets that decrypt with the
    /// Initial keys of their DCID (a Retry changes the DCID; each packet is
    /// tried with its own).
    pub fn client_initial_payloads(&self) -> Vec<Vec<u8>> {
        self.long(RelayDir::ToServer, LongType::Initial)
            .filter(|p| p.fate != Fate::Corrupted)
            .filter_map(|p| {
                let Kind::Long { version, dcid, .. } = &p.kind else { return None };
                let keys = Keys::initial(*version, dcid, Side::Server).ok()?;
                decrypt(&keys.remote, p, None)
            })
            .collect()
    }

    /// The client's Initial packets in order, as (packet number, token),
    /// for those that open with the Initial keys of their own DCID, of the
    /// first client Initial's DCID or of a Retry's SCID (the keys a Retry
    /// makes the client switch to).
    pub fn client_initial_numbers(&self) -> Vec<(u64, Vec<u8>)> {
        let mut dcids: Vec<Vec<u8>> = Vec::new();
        for p in &self.packets {
            match &p.kind {
                Kind::Long { ty: LongType::Initial, dcid, .. }
                    if p.dir == RelayDir::ToServer && dcids.is_empty() =>
                {
                    dcids.push(dcid.clone());
                }
                Kind::Retry { scid, .. } => dcids.push(scid.clone()),
                _ => {}
            }
        }
        let mut largest = None;
        self.long(RelayDir::ToServer, LongType::Initial)
            .filter(|p| p.fate != Fate::Corrupted)
            .filter_map(|p| {
                let Kind::Long { version, dcid, token, .. } = &p.kind else { return None };
                let opened = std::iter::once(dcid).chain(&dcids).find_map(|d| {
                    let keys = Keys::initial(*version, d, Side::Server).ok()?;
                    decrypt_pn(&keys.remote, p, largest)
                })?;
                largest = Some(largest.map_or(opened.0, |l: u64| l.max(opened.0)));
                Some((opened.0, token.clone()))
            })
            .collect()
    }

    /// ClientHellos the client sent, counting retransmissions: Initial
    /// packets carrying a CRYPTO frame at offset 0.
    pub fn client_hellos(&self) -> Vec<Vec<u8>> {
        self.client_initial_payloads().iter().filter_map(|p| crypto_at_zero(p)).collect()
    }

    /// Counts of 1-RTT packets by key phase (phase 0, phase 1) in `dir`,
    /// decoded with the header protection key of the key log's first
    /// traffic secret for that direction. `None` when the key log has no
    /// such secret or no suite's keys open the first packet.
    pub fn key_phases(&self, keylog: &str, dir: RelayDir) -> Option<(usize, usize)> {
        let label = match dir {
            RelayDir::ToServer => "CLIENT_TRAFFIC_SECRET_0",
            RelayDir::ToClient => "SERVER_TRAFFIC_SECRET_0",
        };
        let secrets: Vec<Vec<u8>> = keylog
            .lines()
            .filter_map(KeyLogLine::parse)
            .filter(|l| l.label == label)
            .map(|l| l.secret)
            .collect();
        let shorts: Vec<&Packet> = self
            .packets
            .iter()
            .filter(|p| p.dir == dir && p.kind == Kind::Short && p.fate != Fate::Corrupted)
            .collect();
        let first = shorts.first()?;
        let version = self
            .packets
            .iter()
            .find_map(|p| match &p.kind {
                Kind::Long { ty: LongType::Handshake, version, .. } => Some(*version),
                _ => None,
            })
            .unwrap_or(Version::V1);
        for secret in &secrets {
            for suite in CipherSuite::ALL {
                let Ok(keys) = DirectionalKeys::from_secret(suite, version, secret) else {
                    continue;
                };
                if decrypt(&keys, first, Some(0)).is_none() {
                    continue;
                }
                let mut counts = (0, 0);
                for p in &shorts {
                    let Some(off) = p.pn_offset else { continue };
                    let mut b = p.bytes.clone();
                    if remove_header_protection(&keys.header, &mut b, off).is_ok() {
                        if key_phase(b[0]) {
                            counts.1 += 1;
                        } else {
                            counts.0 += 1;
                        }
                    }
                }
                return Some(counts);
            }
        }
        None
    }
}

fn kind_of(d: &PartialDecode<'_>) -> Kind {
    match d.header() {
        ProtectedHeader::Long(h) => Kind::Long {
            ty: h.ty,
            version: h.version,
            dcid: h.dcid.to_vec(),
            scid: h.scid.to_vec(),
            token: h.token.to_vec(),
        },
        ProtectedHeader::Retry(h) => {
            Kind::Retry { version: h.version, scid: h.scid.to_vec(), token: h.token.to_vec() }
        }
        ProtectedHeader::Short(_) => Kind::Short,
        ProtectedHeader::VersionNegotiation(_) => Kind::VersionNegotiation,
        _ => Kind::Other,
    }
}

/// Removes header protection and opens the payload; `largest` is the
/// largest packet number seen so far in the space, if known.
fn decrypt(keys: &DirectionalKeys, p: &Packet, largest: Option<u64>) -> Option<Vec<u8>> {
    decrypt_pn(keys, p, largest).map(|(_, plain)| plain)
}

/// [`decrypt`], also returning the packet number.
fn decrypt_pn(keys: &DirectionalKeys, p: &Packet, largest: Option<u64>) -> Option<(u64, Vec<u8>)> {
    let off = p.pn_offset?;
    let mut b = p.bytes.clone();
    let (pn_len, truncated) = remove_header_protection(&keys.header, &mut b, off).ok()?;
    let len = PacketNumberLen::new(pn_len)?;
    let largest = largest.and_then(quic_proto::packet::PacketNumber::new);
    let pn = decode_packet_number(largest, truncated, len).into_inner();
    let header_len = off + pn_len;
    let n = open_payload(&keys.packet, pn, &mut b, header_len).ok()?;
    Some((pn, b[header_len..header_len + n].to_vec()))
}

fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let first = *b.get(*i)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*i..*i + len)?;
    *i += len;
    let mut v = u64::from(first & 0x3f);
    for x in &bytes[1..] {
        v = (v << 8) | u64::from(*x);
    }
    Some(v)
}

/// The data of a CRYPTO frame at offset 0 in an Initial payload.
fn crypto_at_zero(payload: &[u8]) -> Option<Vec<u8>> {
    crypto_frames(payload).into_iter().find(|(o, _)| *o == 0).map(|(_, d)| d)
}

/// The CRYPTO frames (offset, data) of an Initial or Handshake payload,
/// skipping PADDING, PING and ACK frames; parsing stops at any other frame
/// (only CONNECTION_CLOSE may appear in these spaces besides).
fn crypto_frames(payload: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let _ = crypto_frames_into(payload, &mut out);
    out
}

fn crypto_frames_into(payload: &[u8], out: &mut Vec<(u64, Vec<u8>)>) -> Option<()> {
    let mut i = 0;
    while i < payload.len() {
        let ty = varint(payload, &mut i)?;
        match ty {
            0x00 | 0x01 => {}
            0x02 | 0x03 => {
                varint(payload, &mut i)?;
                varint(payload, &mut i)?;
                let ranges = varint(payload, &mut i)?;
                varint(payload, &mut i)?;
                for _ in 0..ranges {
                    varint(payload, &mut i)?;
                    varint(payload, &mut i)?;
                }
                if ty == 0x03 {
                    for _ in 0..3 {
                        varint(payload, &mut i)?;
                    }
                }
            }
            0x06 => {
                let offset = varint(payload, &mut i)?;
                let len = varint(payload, &mut i)? as usize;
                let data = payload.get(i..i + len)?;
                out.push((offset, data.to_vec()));
                i += len;
            }
            _ => return None,
        }
    }
    Some(())
}

/// The server's `initial_max_streams_bidi` transport parameter (RFC 9000
/// §18.2), read from its EncryptedExtensions: the server's Handshake
/// packets decrypted with the key log's SERVER_HANDSHAKE_TRAFFIC_SECRET,
/// their CRYPTO frames put in order. `None` when that fails.
pub fn server_max_streams_bidi(trace: &Trace, keylog: &str) -> Option<u64> {
    let secrets: Vec<Vec<u8>> = keylog
        .lines()
        .filter_map(KeyLogLine::parse)
        .filter(|l| l.label == "SERVER_HANDSHAKE_TRAFFIC_SECRET")
        .map(|l| l.secret)
        .collect();
    let packets: Vec<&Packet> = trace
        .long(RelayDir::ToClient, LongType::Handshake)
        .filter(|p| p.fate != Fate::Corrupted)
        .collect();
    let first = packets.first()?;
    let Kind::Long { version, .. } = &first.kind else { return None };
    for secret in &secrets {
        for suite in CipherSuite::ALL {
            let Ok(keys) = DirectionalKeys::from_secret(suite, *version, secret) else {
                continue;
            };
            if decrypt(&keys, first, None).is_none() {
                continue;
            }
            let mut frames = Vec::new();
            let mut largest = None;
            for p in &packets {
                if let Some((pn, plain)) = decrypt_pn(&keys, p, largest) {
                    largest = Some(largest.map_or(pn, |l: u64| l.max(pn)));
                    frames.extend(crypto_frames(&plain));
                }
            }
            frames.sort_by_key(|(o, _)| *o);
            let mut stream = Vec::new();
            for (o, d) in frames {
                let o = o as usize;
                if o <= stream.len() && o + d.len() > stream.len() {
                    stream.extend_from_slice(&d[stream.len() - o..]);
                }
            }
            return encrypted_extensions_max_streams_bidi(&stream);
        }
    }
    None
}

/// Finds EncryptedExtensions (type 8) at the start of the server's
/// Handshake CRYPTO stream and reads parameter 0x08 from its
/// quic_transport_parameters extension (0x39).
fn encrypted_extensions_max_streams_bidi(stream: &[u8]) -> Option<u64> {
    if *stream.first()? != 8 {
        return None;
    }
    let len = usize::from(stream[1]) << 16
        | usize::from(*stream.get(2)?) << 8
        | usize::from(*stream.get(3)?);
    let body = stream.get(4..4 + len)?;
    let ext_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let mut exts = body.get(2..2 + ext_len)?;
    while exts.len() >= 4 {
        let ty = u16::from_be_bytes([exts[0], exts[1]]);
        let n = usize::from(u16::from_be_bytes([exts[2], exts[3]]));
        let data = exts.get(4..4 + n)?;
        if ty == 0x39 {
            let mut i = 0;
            while i < data.len() {
                let id = varint(data, &mut i)?;
                let l = varint(data, &mut i)? as usize;
                let v = data.get(i..i + l)?;
                if id == 0x08 {
                    let mut j = 0;
                    return varint(v, &mut j);
                }
                i += l;
            }
            return None;
        }
        exts = &exts[4 + n..];
    }
    None
}

/// The cipher suites a ClientHello (a TLS handshake message starting with
/// its type byte 1) offers.
pub fn client_hello_suites(hello: &[u8]) -> Option<Vec<u16>> {
    if *hello.first()? != 1 {
        return None;
    }
    // type(1) length(3) legacy_version(2) random(32)
    let mut i = 38;
    let sid_len = usize::from(*hello.get(i)?);
    i += 1 + sid_len;
    let n = usize::from(u16::from_be_bytes([*hello.get(i)?, *hello.get(i + 1)?]));
    i += 2;
    let list = hello.get(i..i + n)?;
    Some(list.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect())
}

/// The long header packet types of a datagram's packets, in order (a
/// short header packet ends the list: nothing can follow it).
pub fn long_types(datagram: &[u8]) -> Vec<LongType> {
    let mut out = Vec::new();
    for p in CoalescedPackets::new(datagram, 0, true) {
        let Ok(p) = p else { break };
        match p.decode.header() {
            ProtectedHeader::Long(h) => out.push(h.ty),
            _ => break,
        }
    }
    out
}

/// The end (offset + length) of the furthest CRYPTO frame in the server's
/// Handshake packets, opened with the key log's
/// `SERVER_HANDSHAKE_TRAFFIC_SECRET`s. `None` when none opens.
pub fn server_handshake_crypto_end(trace: &Trace, keylog: &str) -> Option<u64> {
    let secrets: Vec<Vec<u8>> = keylog
        .lines()
        .filter_map(KeyLogLine::parse)
        .filter(|l| l.label == "SERVER_HANDSHAKE_TRAFFIC_SECRET")
        .map(|l| l.secret)
        .collect();
    let mut end = None;
    for p in &trace.packets {
        let Kind::Long { ty: LongType::Handshake, version, .. } = &p.kind else { continue };
        if p.dir != RelayDir::ToClient {
            continue;
        }
        let opened = secrets.iter().find_map(|secret| {
            CipherSuite::ALL.into_iter().find_map(|suite| {
                let keys = DirectionalKeys::from_secret(suite, *version, secret).ok()?;
                decrypt(&keys, p, None)
            })
        });
        let Some(payload) = opened else { continue };
        for (offset, data) in crypto_frames(&payload) {
            let e = offset + data.len() as u64;
            end = Some(end.map_or(e, |x: u64| x.max(e)));
        }
    }
    end
}

/// The 1-RTT keys of one direction of one TLS session from a key log,
/// following key updates (RFC 9001 §6): the header protection key stays,
/// the packet key of phase n+1 derives from phase n's secret.
struct OneRttKeys {
    header: quic_proto::crypto::HeaderKey,
    secrets: quic_proto::crypto::Secrets,
    phases: Vec<quic_proto::crypto::PacketKey>,
    current: usize,
}

impl OneRttKeys {
    /// The keys for packets `dir` carries, for each session and suite in
    /// the key log.
    fn all(keylog: &str, dir: RelayDir, version: Version) -> Vec<Self> {
        let lines: Vec<KeyLogLine> = keylog.lines().filter_map(KeyLogLine::parse).collect();
        let mut out = Vec::new();
        for client in lines.iter().filter(|l| l.label == "CLIENT_TRAFFIC_SECRET_0") {
            let Some(server) = lines.iter().find(|l| {
                l.label == "SERVER_TRAFFIC_SECRET_0" && l.client_random == client.client_random
            }) else {
                continue;
            };
            let (side, own) = match dir {
                RelayDir::ToServer => (Side::Client, &client.secret),
                RelayDir::ToClient => (Side::Server, &server.secret),
            };
            for suite in CipherSuite::ALL {
                let Ok(base) = DirectionalKeys::from_secret(suite, version, own) else { continue };
                let Ok(secrets) = quic_proto::crypto::Secrets::from_raw(
                    suite,
                    version,
                    side,
                    &client.secret,
                    &server.secret,
                ) else {
                    continue;
                };
                out.push(Self { header: base.header, secrets, phases: Vec::new(), current: 0 });
            }
        }
        out
    }

    fn phase(&mut self, n: usize) -> &quic_proto::crypto::PacketKey {
        while self.phases.len() <= n {
            let next = self.secrets.next_packet_keys();
            self.phases.push(next.local);
        }
        &self.phases[n]
    }

    /// Opens a short header packet: the current key phase, or the next
    /// one when its key phase bit says so (or the previous, for a late
    /// packet).
    fn open(&mut self, p: &Packet, largest: Option<u64>) -> Option<(u64, Vec<u8>)> {
        let off = p.pn_offset?;
        let mut b = p.bytes.clone();
        let (pn_len, truncated) = remove_header_protection(&self.header, &mut b, off).ok()?;
        let len = PacketNumberLen::new(pn_len)?;
        let largest = largest.and_then(quic_proto::packet::PacketNumber::new);
        let pn = decode_packet_number(largest, truncated, len).into_inner();
        let header_len = off + pn_len;
        let bit = usize::from(key_phase(b[0]));
        let mut tries = vec![self.current];
        if self.current % 2 != bit {
            tries = vec![self.current + 1];
            if self.current > 0 {
                tries.push(self.current - 1);
            }
        }
        for n in tries {
            let mut attempt = b.clone();
            if let Ok(len) = open_payload(self.phase(n), pn, &mut attempt, header_len) {
                self.current = self.current.max(n);
                return Some((pn, attempt[header_len..header_len + len].to_vec()));
            }
        }
        None
    }
}

/// PATH_CHALLENGE and PATH_RESPONSE data in the 1-RTT packets of `dir`,
/// by record index: the packets opened with the key log's traffic secrets
/// for that direction, key updates followed, packet numbers decoded
/// against the largest so far.
#[allow(clippy::type_complexity)]
pub fn path_frames(
    trace: &Trace,
    keylog: &str,
    dir: RelayDir,
) -> BTreeMap<usize, (Vec<[u8; 8]>, Vec<[u8; 8]>)> {
    use quic_proto::frame::{Frame, Frames};
    let version = trace
        .packets
        .iter()
        .find_map(|p| match &p.kind {
            Kind::Long { ty: LongType::Handshake, version, .. } => Some(*version),
            _ => None,
        })
        .unwrap_or(Version::V1);
    let mut candidates = OneRttKeys::all(keylog, dir, version);
    let mut out: BTreeMap<usize, (Vec<[u8; 8]>, Vec<[u8; 8]>)> = BTreeMap::new();
    let mut chosen: Option<usize> = None;
    let mut largest = None;
    for p in trace.packets.iter().filter(|p| p.dir == dir && p.kind == Kind::Short) {
        if p.fate == Fate::Corrupted {
            continue;
        }
        let opened = match chosen {
            Some(i) => candidates[i].open(p, largest),
            None => candidates.iter_mut().enumerate().find_map(|(i, k)| {
                let r = k.open(p, largest)?;
                chosen = Some(i);
                Some(r)
            }),
        };
        let Some((pn, plain)) = opened else { continue };
        largest = Some(largest.map_or(pn, |l: u64| l.max(pn)));
        // IMMEDIATE_ACK (0x1f, draft-ietf-quic-ack-frequency), which
        // quinn sends, has no fields; quic-proto's decoder rightly refuses
        // it unnegotiated, so step over it here.
        let mut frames = Frames::new(&plain);
        loop {
            let rest = frames.remaining();
            match frames.next() {
                None => break,
                Some(Ok(Frame::PathChallenge(c))) => {
                    out.entry(p.datagram).or_default().0.push(c.data);
                }
                Some(Ok(Frame::PathResponse(r))) => {
                    out.entry(p.datagram).or_default().1.push(r.data);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) if rest.first() == Some(&0x1f) => frames = Frames::new(&rest[1..]),
                Some(Err(_)) => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_suites_are_read() {
        let mut hello = vec![1, 0, 0, 50, 3, 3];
        hello.extend([0u8; 32]);
        hello.push(0);
        hello.extend([0, 4, 0x13, 0x03, 0x13, 0x01]);
        assert_eq!(client_hello_suites(&hello), Some(vec![0x1303, 0x1301]));
    }

    #[test]
    fn crypto_frame_at_zero_is_found_after_padding_and_ack() {
        let payload = [0u8, 0, 0x02, 5, 0, 0, 0, 0x06, 0, 3, 7, 8, 9, 0, 0];
        assert_eq!(crypto_at_zero(&payload), Some(vec![7, 8, 9]));
    }
}
