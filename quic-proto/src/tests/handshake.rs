//! The handshake: Initial padding, anti-amplification, HelloRetryRequest,
//! client certificates, and connection ID authentication through transport
//! parameters (RFC 9000 §7, §8.1, §14.1; RFC 9001 §4).

use std::cell::Cell;
use std::rc::Rc;

use core::time::Duration;

use crate::cid::ConnectionId;
use crate::connection::{ConnectionError, Event};
use crate::crypto::{Keys, open_payload, remove_header_protection, seal_packet};
use crate::error::TransportErrorCode;
use crate::frame::Frames;
use crate::packet::{PartialDecode, ProtectedHeader};
use crate::space::EncryptionLevel;
use crate::stream_id::Side;
use crate::testing::SeededGroup;
use crate::testing::pair::{Direction, Pair, Verdict};
use crate::version::Version;

/// The first packet of `datagram` if it is an Initial: its header fields
/// and its decrypted frames, opened with the Initial keys derived from
/// `odcid` for packets `sender` sent.
struct OpenedInitial {
    dcid: ConnectionId,
    scid: ConnectionId,
    /// Offset of the SCID bytes in the packet.
    scid_at: usize,
    packet_len: usize,
    pn_offset: usize,
    pn: u64,
    /// Header (unprotected) and plaintext payload, then the tag's room.
    plain: Vec<u8>,
    payload: core::ops::Range<usize>,
}

fn open_initial(datagram: &[u8], odcid: &ConnectionId, sender: Side) -> Option<OpenedInitial> {
    let d = PartialDecode::parse(datagram, 0, false).ok()?;
    if d.encryption_level() != Some(EncryptionLevel::Initial) {
        return None;
    }
    let ProtectedHeader::Long(h) = d.header() else { return None };
    let (dcid, scid) = (h.dcid, h.scid);
    let pn_offset = d.pn_offset()?;
    let packet_len = d.packet_len();
    // The receiver's view: its remote keys open what `sender` sealed.
    let keys = Keys::initial(Version::V1, odcid, !sender).ok()?;
    let mut plain = datagram[..packet_len].to_vec();
    let (pn_len, truncated) =
        remove_header_protection(&keys.remote.header, &mut plain, pn_offset).ok()?;
    // Early Initial packets have small numbers: the truncated one is exact.
    let pn = u64::from(truncated);
    let header_len = pn_offset + pn_len;
    let len = open_payload(&keys.remote.packet, pn, &mut plain, header_len).ok()?;
    let scid_at = 1 + 4 + 1 + dcid.len() + 1;
    Some(OpenedInitial {
        dcid,
        scid,
        scid_at,
        packet_len,
        pn_offset,
        pn,
        plain,
        payload: header_len..header_len + len,
    })
}

/// Whether any frame in an opened Initial is ack-eliciting.
fn is_ack_eliciting(p: &OpenedInitial) -> bool {
    Frames::new(&p.plain[p.payload.clone()]).any(|f| f.is_ok_and(|f| f.is_ack_eliciting()))
}

/// The Destination Connection ID of the client's first Initial: the key
/// to every Initial packet of the connection.
fn original_dcid(pair: &Pair) -> ConnectionId {
    let first = pair.trace().iter().find(|r| r.direction == Direction::ClientToServer).unwrap();
    let d = PartialDecode::parse(&first.data, 0, false).unwrap();
    let ProtectedHeader::Long(h) = d.header() else { panic!("the first packet is long") };
    h.dcid
}

#[test]
fn every_initial_datagram_is_padded() {
    let mut pair = Pair::new(101);
    // Losses make both sides retransmit and probe in Initial packets too.
    // Only datagrams led by a long header are lost: dropping every third
    // 1-RTT datagram as well can fall into step with the server's cycle of
    // two PTO probes and a retransmission, and lose HANDSHAKE_DONE for
    // ever, which is not what this test is about.
    pair.set_hook(|d| {
        let long_header = d.data[0] & 0x80 != 0;
        if long_header && d.index % 3 == 1 { Verdict::Drop } else { Verdict::Deliver }
    });
    pair.handshake();
    let odcid = original_dcid(&pair);
    let (mut client_initials, mut server_eliciting) = (0, 0);
    for r in pair.trace() {
        let sender = r.direction.sender();
        let Some(p) = open_initial(&r.data, &odcid, sender) else { continue };
        match sender {
            //= https://www.rfc-editor.org/rfc/rfc9000#section-14.1
            //= type=test
            //# A client MUST expand the payload of all UDP datagrams carrying Initial packets
            //# to at least the smallest allowed maximum datagram size of 1200 bytes
            Side::Client => {
                client_initials += 1;
                assert!(r.data.len() >= 1200, "client Initial datagram of {}", r.data.len());
            }
            //= https://www.rfc-editor.org/rfc/rfc9000#section-14.1
            //= type=test
            //# Similarly, a server MUST expand the
            //# payload of all UDP datagrams carrying ack-eliciting Initial packets to at least
            //# the smallest allowed maximum datagram size of 1200 bytes.
            Side::Server if is_ack_eliciting(&p) => {
                server_eliciting += 1;
                assert!(r.data.len() >= 1200, "server Initial datagram of {}", r.data.len());
            }
            Side::Server => {}
        }
    }
    assert!(client_initials >= 2 && server_eliciting >= 1, "{client_initials} {server_eliciting}");
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-8.1
//= type=test
//# Prior to validating the client address, servers MUST NOT send more than three
//# times as many bytes as the number of bytes they have received.
#[test]
fn server_stays_within_three_times_while_the_client_is_unheard() {
    let mut pair = Pair::new(102);
    let cut = Rc::new(Cell::new(true));
    let hook_cut = cut.clone();
    // Only the client's first datagram gets through until `cut` lifts.
    pair.set_hook(move |d| {
        let lost = hook_cut.get() && d.direction == Direction::ClientToServer && d.index > 0;
        if lost { Verdict::Drop } else { Verdict::Deliver }
    });
    // Long enough for the server to hit the limit, short enough that the
    // client's backed-off probes still come before its idle timeout.
    let deadline = pair.now() + Duration::from_secs(5);
    while pair.now() < deadline {
        assert!(pair.step());
        let received = pair.link_stats(Direction::ClientToServer).delivered_bytes;
        let sent = pair.link_stats(Direction::ServerToClient).sent_bytes;
        assert!(sent <= 3 * received, "server sent {sent} after receiving {received}");
    }
    let received = pair.link_stats(Direction::ClientToServer).delivered_bytes;
    let sent = pair.link_stats(Direction::ServerToClient).sent_bytes;
    assert_eq!(received, 1200);
    // The server retransmitted until the limit stopped it.
    assert!(sent > 2 * received, "server sent {sent}");
    assert!(pair.link_stats(Direction::ClientToServer).dropped_by_hook >= 3, "client probed");
    // Once the client is heard again, the handshake finishes.
    cut.set(false);
    pair.handshake();
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.7
//= type=test
//# From the perspective of QUIC,
//# HelloRetryRequest is not differentiated from other cryptographic handshake
//# messages that are carried in Initial packets.
#[test]
fn key_share_mismatch_goes_through_hello_retry_request() {
    let mut pair = Pair::builder(103)
        .client_groups(&[SeededGroup::X25519, SeededGroup::Secp256r1])
        .server_groups(&[SeededGroup::Secp256r1])
        .build();
    pair.handshake();
    let hrr = Some(rustls::HandshakeKind::FullWithHelloRetryRequest);
    assert_eq!(pair.client().handshake_kind(), hrr);
    assert_eq!(pair.server().handshake_kind(), hrr);
    let data = crate::testing::pair::payload(10_000, 1);
    assert_eq!(pair.transfer(Side::Client, crate::Dir::Bi, &data), data);

    let mut plain = Pair::new(103);
    plain.handshake();
    assert_eq!(plain.client().handshake_kind(), Some(rustls::HandshakeKind::Full));
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.4
//= type=test
//# A server MAY request that the client authenticate during the handshake. A server
//# MAY refuse a connection if the client is unable to authenticate when requested.
#[test]
fn client_certificates_are_checked_when_required() {
    let mut pair = Pair::builder(104).client_cert(true).require_client_cert(true).build();
    pair.handshake();
    let chain: Vec<Vec<u8>> = pair.pki().client_cert_chain().iter().map(|c| c.to_vec()).collect();
    let seen = pair.server().peer_certificates().map(|c| c.iter().map(|c| c.to_vec()).collect());
    assert_eq!(seen, Some(chain));

    let mut refused = Pair::builder(105).require_client_cert(true).build();
    refused.drive_until(Duration::from_secs(10), |p| {
        p.has_server() && p.server().is_closed() && p.client().is_closed()
    });
    // certificate_required (116), RFC 8446 §4.4.2.4, as CRYPTO_ERROR (RFC 9001 §4.8).
    let code = TransportErrorCode::crypto(116);
    assert_eq!(super::local_error_code(&refused, Side::Server), Some(code));
    assert!(matches!(
        refused.client().error(),
        Some(ConnectionError::ConnectionClosed { code: c, .. }) if *c == code
    ));
    assert!(!refused.server_events().contains(&Event::HandshakeCompleted));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-7.3
//= type=test
//# An endpoint MUST treat the following as a connection error of type
//# TRANSPORT_PARAMETER_ERROR or PROTOCOL_VIOLATION:
//
//= https://www.rfc-editor.org/rfc/rfc9000#section-7.3
//= type=test
//# * a mismatch between values received from a peer in these transport parameters
//#   and the value sent in the corresponding Destination or Source Connection ID
//#   fields of Initial packets.
#[test]
fn rewritten_initial_source_cid_is_a_transport_parameter_error() {
    let mut pair = Pair::new(106);
    // An on-path attacker re-seals the client's first Initial (Initial keys
    // are public) with a Source Connection ID of its choosing.
    pair.set_hook(|d| {
        if d.direction == Direction::ClientToServer && d.index == 0 {
            let odcid = {
                let p = PartialDecode::parse(&d.data, 0, false).unwrap();
                let ProtectedHeader::Long(h) = p.header() else { panic!("long header") };
                h.dcid
            };
            let mut p = open_initial(&d.data, &odcid, Side::Client).expect("the client's Initial");
            assert_eq!(p.dcid, odcid);
            assert_eq!(p.scid.len(), 8);
            p.plain[p.scid_at..p.scid_at + 8].copy_from_slice(&[0xa5; 8]);
            let keys = Keys::initial(Version::V1, &odcid, Side::Client).unwrap();
            seal_packet(&keys.local.header, &keys.local.packet, p.pn, &mut p.plain, p.pn_offset)
                .unwrap();
            d.data[..p.packet_len].copy_from_slice(&p.plain);
        }
        Verdict::Deliver
    });
    pair.drive_until(Duration::from_secs(5), |p| p.has_server() && p.server().is_closed());
    assert_eq!(
        super::local_error_code(&pair, Side::Server),
        Some(TransportErrorCode::TRANSPORT_PARAMETER_ERROR)
    );
    // The server's CONNECTION_CLOSE goes to the attacker's connection ID,
    // which the client's endpoint never issued and so drops (RFC 9000
    // §5.2): the client does not learn the code, and never completes.
    let forged = ConnectionId::from_slice(&[0xa5; 8]).unwrap();
    let to_forged = |r: &crate::testing::pair::TraceRecord| {
        PartialDecode::parse(&r.data, 8, false).is_ok_and(|d| match d.header() {
            ProtectedHeader::Long(h) => h.dcid == forged,
            _ => false,
        })
    };
    let down = pair.trace().iter().filter(|r| r.direction == Direction::ServerToClient);
    assert!(down.clone().count() > 0 && down.clone().all(to_forged));
    pair.drive_for(Duration::from_secs(2));
    assert!(!pair.client().is_handshake_complete());
}
