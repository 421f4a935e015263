//! An in-memory transfer through every layer of quic-proto that exists
//! today: STREAM and ACK frames in 1-RTT short-header packets, truncated
//! packet numbers, AEAD and header protection, a key update halfway through,
//! and a link that reorders packets and injects junk datagrams.
//!
//! There is no connection state machine yet, so this drives the wire format
//! and packet protection directly, the way `Connection` will. No loss: the
//! link never drops a real packet, because retransmission belongs to the
//! recovery layer that does not exist yet.

use core::ops::RangeInclusive;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use quic_proto::crypto::{
    CipherSuite, CryptoError, DirectionalKeys, HeaderKey, PacketKey, PacketKeySet, Secrets,
    open_payload, remove_header_protection, seal_packet,
};
use quic_proto::frame::{AckEncoder, Frame, Frames, StreamHeader};
use quic_proto::packet::{
    CoalescedPackets, Header, PacketNumber, PacketNumberLen, check_reserved_bits,
    decode_packet_number, key_phase,
};
use quic_proto::{ConnectionId, Dir, RandomSource, SeededRandom, Side, StreamId, VarInt, Version};

/// What to transfer and how.
#[derive(Clone, Copy, Debug)]
pub struct TransferConfig {
    /// Bytes to send on one stream.
    pub size: usize,
    /// Cipher suite for both directions.
    pub suite: CipherSuite,
    /// QUIC version whose key-derivation labels are used.
    pub version: Version,
    /// Datagram size.
    pub datagram_size: usize,
    /// Seed for the data, the secrets, the connection ID and the link.
    pub seed: u64,
    /// Packets the sender sends before the receiver acknowledges.
    pub burst: usize,
    /// Per-packet chance, in percent, that the link swaps it with the next.
    pub reorder_percent: u64,
    /// Per-burst chance, in percent, that the link injects a junk datagram.
    pub junk_percent: u64,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            size: 100 * 1024 * 1024,
            suite: CipherSuite::Aes128GcmSha256,
            version: Version::V1,
            datagram_size: 1452,
            seed: 1,
            burst: 16,
            reorder_percent: 5,
            junk_percent: 10,
        }
    }
}

/// What happened, for printing.
#[derive(Clone, Debug)]
pub struct TransferReport {
    /// Data packets sent (and received: the link loses none).
    pub data_packets: u64,
    /// ACK packets sent back.
    pub ack_packets: u64,
    /// Packets the link reordered.
    pub reordered: u64,
    /// Junk datagrams injected by the link and dropped by the receiver.
    pub junk_dropped: u64,
    /// Key updates completed (each side moved to the next key phase).
    pub key_updates: u64,
    /// Longest packet-number field used (bytes).
    pub max_pn_len: usize,
    /// SHA-256 of the data sent.
    pub sent_sha256: [u8; 32],
    /// SHA-256 of the data reassembled by the receiver.
    pub received_sha256: [u8; 32],
    /// Wall time for the transfer, hashing excluded (both sides run on this
    /// thread).
    pub elapsed: Duration,
}

impl TransferReport {
    /// Whether the receiver got exactly what was sent.
    pub fn verified(&self) -> bool {
        self.sent_sha256 == self.received_sha256
    }
}

/// Why a transfer failed.
#[derive(Debug)]
pub enum TransferError {
    /// A packet that should have been accepted was not.
    Rejected(&'static str),
    /// Data did not arrive complete.
    Incomplete {
        /// Bytes received.
        received: usize,
        /// Bytes expected.
        expected: usize,
    },
}

impl core::fmt::Display for TransferError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Rejected(why) => write!(f, "a valid packet was rejected: {why}"),
            Self::Incomplete { received, expected } => {
                write!(f, "only {received} of {expected} bytes arrived")
            }
        }
    }
}

impl std::error::Error for TransferError {}

/// One side's 1-RTT keys across key phases (RFC 9001 §6).
struct PhaseKeys {
    secrets: Secrets,
    phase: bool,
    current: PacketKeySet,
    next: PacketKeySet,
    /// The peer's previous-phase key, for packets reordered across an update.
    prev_remote: Option<PacketKey>,
    /// First packet number the peer sent in the current phase.
    phase_start: Option<u64>,
    local_hp: HeaderKey,
    remote_hp: HeaderKey,
}

impl PhaseKeys {
    fn new(cfg: &TransferConfig, side: Side, client: &[u8], server: &[u8]) -> Self {
        let hp = |s: &[u8]| DirectionalKeys::from_secret(cfg.suite, cfg.version, s).unwrap().header;
        let (local, remote) = match side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        let mut secrets = Secrets::from_raw(cfg.suite, cfg.version, side, client, server)
            .expect("secret lengths match the suite");
        let current = secrets.next_packet_keys();
        let next = secrets.next_packet_keys();
        Self {
            secrets,
            phase: false,
            current,
            next,
            prev_remote: None,
            phase_start: None,
            local_hp: hp(local),
            remote_hp: hp(remote),
        }
    }

    /// Moves to the next key phase (initiating, or following the peer).
    fn step(&mut self) {
        let next = std::mem::replace(&mut self.next, self.secrets.next_packet_keys());
        let old = std::mem::replace(&mut self.current, next);
        self.prev_remote = Some(old.remote);
        self.phase = !self.phase;
        self.phase_start = None;
    }

    /// Opens a packet whose header protection is removed, choosing the key
    /// by its Key Phase bit; follows the peer into a new phase when a packet
    /// of the next phase authenticates.
    fn open(&mut self, bit: bool, pn: u64, packet: &mut [u8], header_len: usize) -> OpenResult {
        if bit == self.phase {
            let len = open_payload(&self.current.remote, pn, packet, header_len)?;
            self.phase_start = Some(self.phase_start.map_or(pn, |s| s.min(pn)));
            return Ok((len, false));
        }
        // The other phase: older packets reordered across our update use the
        // previous key; newer ones announce the peer's update.
        let older = self.phase_start.is_some_and(|start| pn < start);
        if let (true, Some(prev)) = (older, &self.prev_remote) {
            return Ok((open_payload(prev, pn, packet, header_len)?, false));
        }
        let len = open_payload(&self.next.remote, pn, packet, header_len)?;
        self.step();
        self.phase_start = Some(pn);
        Ok((len, true))
    }
}

type OpenResult = Result<(usize, bool), CryptoError>;

/// Builds and seals one short-header packet whose payload `fill` writes.
fn build_packet(
    keys: &PhaseKeys,
    dcid: ConnectionId,
    pn: u64,
    largest_acked: Option<u64>,
    datagram_size: usize,
    fill: impl FnOnce(&mut Vec<u8>, usize),
) -> (Vec<u8>, usize) {
    let pn = PacketNumber::new(pn).expect("demo packet numbers stay far below 2^62");
    let largest_acked = largest_acked.and_then(PacketNumber::new);
    let pn_len = pn.encoded_len(largest_acked);
    let mut buf = Vec::with_capacity(datagram_size);
    let header = Header::Short { spin: false, key_phase: keys.phase, dcid };
    let partial = header.encode(pn, pn_len, &mut buf);
    let tag_len = keys.current.local.tag_len();
    let room = datagram_size - partial.header_len() - tag_len;
    fill(&mut buf, room);
    // Pad so that header protection has a full sample (RFC 9001 §5.4.2).
    let min_len = partial.header_len() + partial.min_payload_len();
    let padded_len = (buf.len() + tag_len).max(min_len);
    buf.resize(padded_len, 0);
    seal_packet(
        &keys.local_hp,
        &keys.current.local,
        pn.into_inner(),
        &mut buf,
        partial.pn_offset(),
    )
    .expect("the demo pads every packet to a sealable size");
    (buf, pn_len.bytes())
}

/// The receiver's record of packet numbers seen, as merged ranges, largest first.
#[derive(Default)]
struct Received {
    ranges: Vec<RangeInclusive<u64>>,
}

impl Received {
    fn insert(&mut self, pn: u64) {
        // First range (descending) that starts at or below `pn`.
        let pos = self.ranges.iter().position(|r| *r.start() <= pn).unwrap_or(self.ranges.len());
        if self.ranges.get(pos).is_some_and(|r| r.contains(&pn)) {
            return;
        }
        self.ranges.insert(pos, pn..=pn);
        // Join with the range below (pos + 1), then with the one above (pos - 1).
        if let Some(below) = self.ranges.get(pos + 1).cloned()
            && *below.end() + 1 == pn
        {
            self.ranges[pos] = *below.start()..=pn;
            self.ranges.remove(pos + 1);
        }
        if pos > 0 && *self.ranges[pos - 1].start() == *self.ranges[pos].end() + 1 {
            self.ranges[pos - 1] = *self.ranges[pos].start()..=*self.ranges[pos - 1].end();
            self.ranges.remove(pos);
        }
    }

    fn largest(&self) -> Option<u64> {
        self.ranges.first().map(|r| *r.end())
    }
}

/// Runs the transfer and reports what happened.
pub fn run(cfg: &TransferConfig) -> Result<TransferReport, TransferError> {
    let mut rng = SeededRandom::from_u64(cfg.seed);
    let mut data = vec![0u8; cfg.size];
    rng.fill(&mut data);
    let sent_sha256 = sha256(&data);

    let secret_len = if cfg.suite == CipherSuite::Aes256GcmSha384 { 48 } else { 32 };
    let (mut client_secret, mut server_secret) = (vec![0; secret_len], vec![0; secret_len]);
    rng.fill(&mut client_secret);
    rng.fill(&mut server_secret);
    let mut sender = PhaseKeys::new(cfg, Side::Client, &client_secret, &server_secret);
    let mut receiver = PhaseKeys::new(cfg, Side::Server, &client_secret, &server_secret);
    let server_cid = ConnectionId::random(&mut rng, 8);
    let client_cid = ConnectionId::random(&mut rng, 8);
    let stream = StreamId::new(Side::Client, Dir::Bi, 0).expect("stream 0 exists");

    let mut report = TransferReport {
        data_packets: 0,
        ack_packets: 0,
        reordered: 0,
        junk_dropped: 0,
        key_updates: 0,
        max_pn_len: 0,
        sent_sha256,
        received_sha256: [0; 32],
        elapsed: Duration::ZERO,
    };
    let started = Instant::now();

    let mut output = vec![0u8; cfg.size];
    let mut received_bytes = 0usize;
    let mut fin_at = None;
    let mut offset = 0usize;
    let mut fin_sent = false;
    let (mut next_pn, mut ack_pn) = (0u64, 0u64);
    let mut largest_acked: Option<u64> = None;
    let mut receiver_largest_acked: Option<u64> = None;
    let mut received = Received::default();
    let mut sender_rx_largest: Option<PacketNumber> = None;
    let mut link: VecDeque<Vec<u8>> = VecDeque::new();

    while !fin_sent {
        // The sender fills a burst of packets with STREAM frames.
        for _ in 0..cfg.burst {
            if fin_sent {
                break;
            }
            if offset >= cfg.size / 2 && report.key_updates == 0 && sender.phase == receiver.phase {
                // RFC 9001 §6: the sender initiates a key update halfway.
                sender.step();
            }
            let (packet, pn_len) = build_packet(
                &sender,
                server_cid,
                next_pn,
                largest_acked,
                cfg.datagram_size,
                |buf, room| {
                    let offset_v = VarInt::try_from(offset).expect("size below 2^62");
                    let fits = StreamHeader::max_data_len(stream, offset_v, room, false)
                        .expect("a datagram holds a STREAM frame");
                    let n = fits.min(cfg.size - offset);
                    let fin = offset + n == cfg.size;
                    StreamHeader { id: stream, offset: offset_v, data_len: None, fin }.encode(buf);
                    buf.extend_from_slice(&data[offset..offset + n]);
                    offset += n;
                    fin_sent = fin;
                },
            );
            report.max_pn_len = report.max_pn_len.max(pn_len);
            next_pn += 1;
            report.data_packets += 1;
            link.push_back(packet);
        }

        // The link reorders and injects junk.
        let mut batch: Vec<Vec<u8>> = link.drain(..).collect();
        for i in 0..batch.len().saturating_sub(1) {
            if rng.below(100) < cfg.reorder_percent {
                batch.swap(i, i + 1);
                report.reordered += 1;
            }
        }
        if rng.below(100) < cfg.junk_percent {
            let mut junk = vec![0u8; 1 + rng.below(cfg.datagram_size as u64) as usize];
            rng.fill(&mut junk);
            // Make half of them look like short headers for our CID.
            if junk.len() > 30 && rng.below(2) == 0 {
                junk[0] = 0x40 | (junk[0] & 0x3f);
                junk[1..9].copy_from_slice(&server_cid);
            }
            let at = rng.below(batch.len() as u64 + 1) as usize;
            batch.insert(at, junk);
        }

        // The receiver processes every datagram.
        for mut datagram in batch {
            match receive(
                &mut receiver,
                &mut datagram,
                received.largest().and_then(PacketNumber::new),
            ) {
                Ok(Some((pn, payload_range, updated))) => {
                    received.insert(pn);
                    if updated {
                        report.key_updates += 1;
                    }
                    for frame in Frames::new(&datagram[payload_range]) {
                        match frame.map_err(|_| TransferError::Rejected("bad frame"))? {
                            Frame::Stream(s) => {
                                let start = s.offset.into_inner() as usize;
                                let end = start + s.data.len();
                                if end > cfg.size {
                                    return Err(TransferError::Rejected("data past the end"));
                                }
                                output[start..end].copy_from_slice(s.data);
                                received_bytes += s.data.len();
                                if s.fin {
                                    fin_at = Some(end);
                                }
                            }
                            Frame::Padding { .. } => {}
                            _ => return Err(TransferError::Rejected("unexpected frame")),
                        }
                    }
                }
                Ok(None) => report.junk_dropped += 1,
                Err(why) => return Err(TransferError::Rejected(why)),
            }
        }

        // The receiver acknowledges everything so far in one ACK packet.
        let (ack, _) = build_packet(
            &receiver,
            client_cid,
            ack_pn,
            receiver_largest_acked,
            cfg.datagram_size,
            |buf, room| {
                let mut enc = AckEncoder::new(received.ranges.iter().cloned(), VarInt::ZERO)
                    .expect("at least one packet was received");
                enc.fit_to(room);
                enc.encode(buf);
            },
        );
        // The sender's ACKs of ACK-only packets are never sent (they are not
        // ack-eliciting), so the receiver encodes against nothing acked.
        receiver_largest_acked = None;
        ack_pn += 1;
        report.ack_packets += 1;

        let mut ack = ack;
        let Some((pn, range, _)) =
            receive(&mut sender, &mut ack, sender_rx_largest).map_err(TransferError::Rejected)?
        else {
            return Err(TransferError::Rejected("ACK packet dropped"));
        };
        sender_rx_largest = PacketNumber::new(pn);
        for frame in Frames::new(&ack[range]) {
            match frame.map_err(|_| TransferError::Rejected("bad ACK frame"))? {
                Frame::Ack(a) => largest_acked = Some(a.largest()),
                Frame::Padding { .. } => {}
                _ => return Err(TransferError::Rejected("unexpected frame in ACK packet")),
            }
        }
    }

    if received_bytes != cfg.size || fin_at != Some(cfg.size) {
        return Err(TransferError::Incomplete { received: received_bytes, expected: cfg.size });
    }
    report.elapsed = started.elapsed();
    report.received_sha256 = sha256(&output);
    Ok(report)
}

/// A packet that authenticated: its number, where its plaintext payload lies
/// in the datagram, and whether it moved the receiver to a new key phase.
type Opened = (u64, core::ops::Range<usize>, bool);

/// Unprotects one datagram holding one short-header packet. `Ok(None)`:
/// dropped as undecodable or unauthenticated (junk). `Err`: authenticated
/// but invalid, which would close a real connection.
fn receive(
    keys: &mut PhaseKeys,
    datagram: &mut [u8],
    largest: Option<PacketNumber>,
) -> Result<Option<Opened>, &'static str> {
    let Some(Ok(packet)) = CoalescedPackets::new(datagram, 8, false).next() else {
        return Ok(None);
    };
    let (range, pn_offset) = match packet.decode.pn_offset() {
        Some(off) if !packet.decode.is_long() => (packet.range, off),
        _ => return Ok(None),
    };
    let packet = &mut datagram[range.clone()];
    let Ok((pn_len, truncated)) = remove_header_protection(&keys.remote_hp, packet, pn_offset)
    else {
        return Ok(None);
    };
    let len = PacketNumberLen::new(pn_len).expect("1 to 4 bytes");
    let pn = decode_packet_number(largest, truncated, len).into_inner();
    let header_len = pn_offset + pn_len;
    let bit = key_phase(packet[0]);
    let Ok((plain_len, updated)) = keys.open(bit, pn, packet, header_len) else {
        return Ok(None);
    };
    check_reserved_bits(packet[0]).map_err(|e| e.reason)?;
    let start = range.start + header_len;
    Ok(Some((pn, start..start + plain_len, updated)))
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cfg: TransferConfig) -> TransferReport {
        let report = run(&cfg).unwrap_or_else(|e| panic!("seed {}: {e}", cfg.seed));
        assert!(report.verified(), "seed {}: SHA-256 mismatch", cfg.seed);
        assert_eq!(report.key_updates, 1, "seed {}: one key update", cfg.seed);
        report
    }

    #[test]
    fn transfer_verifies_for_every_suite_and_version() {
        for suite in CipherSuite::ALL {
            for version in [Version::V1, Version::V2] {
                let cfg = TransferConfig { size: 300_000, suite, version, ..Default::default() };
                let report = check(cfg);
                assert!(report.data_packets > 200);
            }
        }
    }

    #[test]
    fn transfer_survives_heavy_reordering_and_junk() {
        let seed = std::env::var("QUIC_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
        let cfg = TransferConfig {
            size: 500_000,
            seed,
            reorder_percent: 40,
            junk_percent: 100,
            burst: 32,
            ..Default::default()
        };
        let report = check(cfg);
        assert!(report.reordered > 50, "seed {seed}: reordering happened");
        assert!(report.junk_dropped > 5, "seed {seed}: junk was injected and dropped");
    }

    #[test]
    fn received_ranges_merge() {
        let mut r = Received::default();
        for pn in [5, 3, 4, 9, 1, 7, 8, 0, 2, 6, 6] {
            r.insert(pn);
        }
        assert_eq!(r.ranges, vec![0..=9]);
        let mut r = Received::default();
        for pn in [10, 2, 5, 4] {
            r.insert(pn);
        }
        assert_eq!(r.ranges, vec![10..=10, 4..=5, 2..=2]);
        assert_eq!(r.largest(), Some(10));
    }

    #[test]
    fn received_ranges_match_a_set_model() {
        for seed in 0..50 {
            let mut rng = SeededRandom::from_u64(seed);
            let (mut r, mut model) = (Received::default(), std::collections::BTreeSet::new());
            for _ in 0..200 {
                let pn = rng.below(120);
                r.insert(pn);
                model.insert(pn);
            }
            let from_ranges: Vec<u64> = r.ranges.iter().rev().flat_map(|x| x.clone()).collect();
            assert_eq!(from_ranges, model.iter().copied().collect::<Vec<_>>(), "seed {seed}");
            for pair in r.ranges.windows(2) {
                assert!(
                    *pair[1].end() + 1 < *pair[0].start(),
                    "seed {seed}: disjoint, not adjacent"
                );
            }
        }
    }
}
