//! `conformance replay FILE.pcapng`: replays a trace of the `quic` tool
//! (docs/traces.md) and, where the replay differs, decodes the recorded
//! and the replayed datagram side by side: headers in the clear, payloads
//! opened with the trace's secrets (Initial keys from the client's
//! Destination Connection IDs, RFC 9001 §5.2; the others from the key
//! log), frames listed.

use std::fmt::Write as _;
use std::path::Path;

use quic_mio::socket::trace::{self, TraceItem};
use quic_mio::tool::{ReplayOptions, Replayed};
use quic_proto::crypto::{
    CipherSuite, DirectionalKeys, Keys, open_payload, remove_header_protection,
};
use quic_proto::frame::Frames;
use quic_proto::keylog::KeyLogLine;
use quic_proto::packet::{
    CoalescedPackets, LongType, PacketNumberLen, PartialDecode, ProtectedHeader,
    decode_packet_number,
};
use quic_proto::{Side, Version};

/// Replays `file`, returning the replay and a report to print: the command,
/// the comparison's last line (`identical: ...` or `differs at ...`), and
/// for a difference both datagrams decoded.
pub fn replay(file: &Path, options: &ReplayOptions) -> Result<(Replayed, String), String> {
    let replayed = quic_mio::tool::replay(file, options)?;
    let mut out = String::new();
    let _ = writeln!(out, "replaying {} trace: {}", replayed.role, replayed.command_line.join(" "));
    match &replayed.outcome {
        Ok(summary) => {
            let _ = writeln!(out, "replayed {}: {summary}", replayed.role);
        }
        Err(e) => {
            let _ = writeln!(out, "replayed {} failed: {e}", replayed.role);
        }
    }
    if let Some(d) = &replayed.report.divergence {
        let bytes =
            std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let context = Context::new(&bytes, &replayed.inputs.key_log);
        let sender = if replayed.role == "client" { Side::Client } else { Side::Server };
        match &d.expected {
            Some(expected) => {
                let _ = writeln!(
                    out,
                    "recorded datagram {} ({} bytes to {}):\n{}",
                    d.outbound_index,
                    expected.payload.len(),
                    expected.remote,
                    context.describe(&expected.payload, sender)
                );
            }
            None => {
                let _ = writeln!(out, "recorded: no datagram at this point");
            }
        }
        match &d.actual {
            Some((payload, to)) => {
                let _ = writeln!(
                    out,
                    "replayed datagram ({} bytes to {to}):\n{}",
                    payload.len(),
                    context.describe(payload, sender)
                );
                if let Some(e) = &d.expected {
                    let at = e.payload.iter().zip(payload).position(|(a, b)| a != b);
                    let at = at.unwrap_or(e.payload.len().min(payload.len()));
                    let _ = writeln!(out, "first differing byte: offset {at}");
                }
            }
            None => {
                let _ = writeln!(out, "replayed: no datagram at this point");
            }
        }
    }
    let _ = writeln!(out, "{}", replayed.report);
    Ok((replayed, out))
}

/// What decoding a trace's datagrams needs: the candidate Initial
/// Destination Connection IDs, connection ID lengths and secrets.
struct Context {
    initial_dcids: Vec<Vec<u8>>,
    cid_lens: Vec<usize>,
    secrets: Vec<(String, Vec<u8>)>,
    version: Version,
}

impl Context {
    fn new(file: &[u8], key_log: &str) -> Self {
        let mut initial_dcids = Vec::new();
        let mut cid_lens = Vec::new();
        let mut version = Version::V1;
        let items = trace::read(file).unwrap_or_default();
        for item in &items {
            let TraceItem::Datagram(d) = item else { continue };
            for p in CoalescedPackets::new(&d.payload, 8, true) {
                let Ok(p) = p else { break };
                match p.decode.header() {
                    ProtectedHeader::Long(h) => {
                        version = h.version;
                        if !cid_lens.contains(&h.scid.len()) {
                            cid_lens.push(h.scid.len());
                        }
                        // A client's Initials carry the DCID its keys come
                        // from (the first, or the Retry's SCID after one).
                        if h.ty == LongType::Initial && !initial_dcids.contains(&h.dcid.to_vec()) {
                            initial_dcids.push(h.dcid.to_vec());
                        }
                    }
                    ProtectedHeader::Retry(h) => initial_dcids.push(h.scid.to_vec()),
                    _ => {}
                }
            }
        }
        if cid_lens.is_empty() {
            cid_lens.push(8);
        }
        let secrets = key_log
            .lines()
            .filter_map(KeyLogLine::parse)
            .map(|l| (l.label.to_owned(), l.secret))
            .collect();
        Self { initial_dcids, cid_lens, secrets, version }
    }

    /// Each packet of `datagram`, sent by `sender`: header fields, and the
    /// frames where a key opens it.
    fn describe(&self, datagram: &[u8], sender: Side) -> String {
        let mut out = String::new();
        for &cid_len in &self.cid_lens {
            out.clear();
            let mut all_opened = true;
            for p in CoalescedPackets::new(datagram, cid_len, true) {
                let Ok(p) = p else {
                    let _ = writeln!(out, "  (the rest does not parse as a QUIC packet)");
                    all_opened = false;
                    break;
                };
                let bytes = &datagram[p.range.clone()];
                let (line, opened) = self.packet(&p.decode, bytes, sender);
                all_opened &= opened;
                out.push_str(&line);
            }
            if all_opened {
                break;
            }
        }
        if out.is_empty() {
            out.push_str("  (empty)\n");
        }
        out
    }

    fn packet(&self, decode: &PartialDecode<'_>, bytes: &[u8], sender: Side) -> (String, bool) {
        let (head, labels): (String, &[&str]) = match decode.header() {
            ProtectedHeader::Long(h) => {
                let label: &[&str] = match (h.ty, sender) {
                    (LongType::Handshake, Side::Client) => &["CLIENT_HANDSHAKE_TRAFFIC_SECRET"],
                    (LongType::Handshake, Side::Server) => &["SERVER_HANDSHAKE_TRAFFIC_SECRET"],
                    (LongType::ZeroRtt, _) => &["CLIENT_EARLY_TRAFFIC_SECRET"],
                    _ => &[],
                };
                let head = format!(
                    "  {:?} v{:#x} dcid {} scid {} ({} bytes)",
                    h.ty,
                    h.version.0,
                    hex(&h.dcid),
                    hex(&h.scid),
                    bytes.len()
                );
                (head, label)
            }
            ProtectedHeader::Short(_) => {
                let label: &[&str] = match sender {
                    Side::Client => &["CLIENT_TRAFFIC_SECRET_0", "CLIENT_TRAFFIC_SECRET_1"],
                    Side::Server => &["SERVER_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_1"],
                };
                (format!("  1-RTT ({} bytes)", bytes.len()), label)
            }
            other => return (format!("  {other:?}\n"), true),
        };
        let Some(pn_offset) = decode.pn_offset() else { return (format!("{head}\n"), true) };
        let is_initial =
            matches!(decode.header(), ProtectedHeader::Long(h) if h.ty == LongType::Initial);
        let mut keys: Vec<DirectionalKeys> = Vec::new();
        if is_initial {
            for dcid in &self.initial_dcids {
                if let Ok(k) = Keys::initial(self.version, dcid, sender) {
                    keys.push(k.local);
                }
            }
        }
        for (label, secret) in &self.secrets {
            if labels.contains(&label.as_str()) {
                for suite in CipherSuite::ALL {
                    if let Ok(k) = DirectionalKeys::from_secret(suite, self.version, secret) {
                        keys.push(k);
                    }
                }
            }
        }
        for k in &keys {
            let Some((pn, plain)) = open(k, bytes, pn_offset) else { continue };
            let mut line = format!("{head} pn {pn}:\n");
            for frame in Frames::new(&plain) {
                let text = match frame {
                    Ok(f) => format!("{f:?}"),
                    Err(e) => format!("malformed: {e}"),
                };
                let text: String = text.chars().take(160).collect();
                let _ = writeln!(line, "    {text}");
            }
            return (line, true);
        }
        (format!("{head}: no key in the trace opens it\n"), false)
    }
}

fn open(keys: &DirectionalKeys, bytes: &[u8], pn_offset: usize) -> Option<(u64, Vec<u8>)> {
    let mut b = bytes.to_vec();
    let (pn_len, truncated) = remove_header_protection(&keys.header, &mut b, pn_offset).ok()?;
    let len = PacketNumberLen::new(pn_len)?;
    let pn = decode_packet_number(None, truncated, len).into_inner();
    let header_len = pn_offset + pn_len;
    let n = open_payload(&keys.packet, pn, &mut b, header_len).ok()?;
    Some((pn, b[header_len..header_len + n].to_vec()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
