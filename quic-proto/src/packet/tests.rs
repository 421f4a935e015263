//! Tests for packet header parsing and building: RFC 9001 Appendix A and
//! RFC 9369 Appendix A vectors, every decode error, and property tests.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::cid::ConnectionId;
use crate::error::TransportErrorCode;
use crate::random::SeededRandom;
use crate::space::EncryptionLevel;
use crate::version::Version;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn cid(s: &str) -> ConnectionId {
    ConnectionId::from_slice(&hex(s)).unwrap()
}

fn pn(x: u64) -> PacketNumber {
    PacketNumber::new(x).unwrap()
}

fn pn_len(bytes: usize) -> PacketNumberLen {
    PacketNumberLen::new(bytes).unwrap()
}

fn parse(buf: &[u8]) -> Result<PartialDecode<'_>, PacketDecodeError> {
    PartialDecode::parse(buf, 0, false)
}

fn long<'a>(pd: &PartialDecode<'a>) -> LongHeader<'a> {
    match pd.header() {
        ProtectedHeader::Long(h) => h.clone(),
        other => panic!("not a long header: {other:?}"),
    }
}

/// Applies a header protection mask (RFC 9001 §5.4.1) in place: the same
/// operation protects and unprotects.
fn apply_mask(packet: &mut [u8], pn_offset: usize, mask: &[u8]) {
    let bits = if packet[0] & 0x80 != 0 { 0x0f } else { 0x1f };
    packet[0] ^= mask[0] & bits;
    let len = PacketNumberLen::from_first_byte(packet[0]).bytes();
    for i in 0..len {
        packet[pn_offset + i] ^= mask[1 + i];
    }
}

/// The sending header a parsed, unprotected packet corresponds to.
fn to_header(pd: &PartialDecode<'_>) -> Header {
    let first = pd.packet()[0];
    match pd.header() {
        ProtectedHeader::Long(h) if h.ty == LongType::Initial => Header::Initial {
            version: h.version,
            dcid: h.dcid,
            scid: h.scid,
            token: Bytes::copy_from_slice(h.token),
        },
        ProtectedHeader::Long(h) => {
            Header::Long { ty: h.ty, version: h.version, dcid: h.dcid, scid: h.scid }
        }
        ProtectedHeader::Short(h) => {
            Header::Short { spin: h.spin, key_phase: key_phase(first), dcid: h.dcid }
        }
        other => panic!("no packet number: {other:?}"),
    }
}

/// Encodes `header` with `payload_len` zero bytes of payload (AEAD tag
/// included) and a filled-in Length field.
fn build(header: &Header, pn: PacketNumber, len: PacketNumberLen, payload_len: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let enc = header.encode(pn, len, &mut buf);
    buf.resize(buf.len() + payload_len, 0);
    enc.set_payload_len(&mut buf, payload_len).unwrap();
    buf
}

/// RFC 9001 Appendix A.2: the client Initial, protected.
const CLIENT_INITIAL_V1: &[&str] = &[
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11d242b123dc9bd8bab936b47d92ec356c",
    "0bab7df5976d27cd449f63300099f3991c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c",
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df621230c83711b39343fa028cea7f7fb5ff89",
    "eac2308249a02252155e2347b63d58c5457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208",
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec4e15daf8500a6ef69ec4e3feb6b1d98e",
    "610ac8b7ec3faf6ad760b7bad1db4ba3485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db",
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c7b4378e846d29f37ed7b4ea9ec5d82e7",
    "961b7f25a9323851f681d582363aa5f89937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556",
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c7468449a13d8e3b95811a198f3491de3e7",
    "fe942b330407abf82a4ed7c1b311663ac69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00",
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632291d6a418211cc2962e20fe47feb3edf",
    "330f2c603a9d48c0fcb5699dbfe5896425c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd",
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ffef132eef2fa09346aee33c28eb130ff2",
    "8f5b766953334113211996d20011a198e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd",
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73203a4a13e96f5432ec0fd4a1ee65accd",
    "d5e3904df54c1da510b0ff20dcc0c77fcb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e",
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03adea2e1fbc5aa463d08ca19896d2bf59a07",
    "1b851e6c239052172f296bfb5e72404790a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2",
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f440591f355e12d439ff150aab7613499d",
    "bd49adabc8676eef023b15b65bfc5ca06948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e",
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0be79e2fb8f5d5fbbe2e30ecadd220723",
    "c8c0aea8078cdfcb3868263ff8f0940054da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab",
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9f96f3ca9ec1dde434da7d2d392b905dd",
    "f3d1f9af93d1af5950bd493f5aa731b4056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064",
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241e221af44860018ab0856972e194cd934",
];

const CLIENT_DCID: &str = "8394c8f03e515708";
const SERVER_SCID: &str = "f067a5502a4262b5";

/// RFC 9001 Appendix A.3: the server Initial, protected.
const SERVER_INITIAL_V1: &str = "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc42158407dd074ee";

/// RFC 9369 Appendix A.3: the version 2 server Initial, protected.
const SERVER_INITIAL_V2: &str = "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698baeea26b91eb761d9b89237bbf87263017915358230035f7fd3945d88965cf17f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca84bed8521e2e140";

/// RFC 9001 Appendix A.4 and RFC 9369 Appendix A.4: Retry packets.
const RETRY_V1: &str = "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba";
const RETRY_V2: &str = "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6";

#[test]
fn rfc9001_client_initial_unprotected() {
    let header = hex("c300000001088394c8f03e5157080000449e00000002");
    let mut packet = header.clone();
    // Length 0x449e = 1182: the 4-byte packet number and 1178 more bytes.
    packet.resize(18 + 1182, 0);
    let pd = parse(&packet).unwrap();
    assert_eq!(
        long(&pd),
        LongHeader {
            ty: LongType::Initial,
            version: Version::V1,
            dcid: cid(CLIENT_DCID),
            scid: ConnectionId::EMPTY,
            token: &[],
            length: 1182,
        }
    );
    assert_eq!(pd.pn_offset(), Some(18));
    assert_eq!(pd.sample_range(), Some(22..38));
    assert_eq!(pd.packet_len(), 1200);
    assert_eq!(pd.encryption_level(), Some(EncryptionLevel::Initial));
    assert_eq!(read_packet_number(&packet, 18, None), Ok((pn(2), pn_len(4))));
    assert_eq!(check_reserved_bits(packet[0]), Ok(()));

    let h = Header::Initial {
        version: Version::V1,
        dcid: cid(CLIENT_DCID),
        scid: ConnectionId::EMPTY,
        token: Bytes::new(),
    };
    let mut buf = Vec::new();
    let enc = h.encode(pn(2), pn_len(4), &mut buf);
    enc.set_payload_len(&mut buf, 1178).unwrap();
    assert_eq!(buf, header);
    assert_eq!((enc.pn_offset(), enc.header_len(), enc.sample_offset()), (18, 22, 22));
    assert_eq!(h.encoded_len(pn_len(4)), header.len());
}

#[test]
fn rfc9001_client_initial_protected() {
    let mut packet = hex(&CLIENT_INITIAL_V1.concat());
    assert_eq!(packet.len(), 1200);
    let pd = parse(&packet).unwrap();
    // The unprotected fields read the same as in the unprotected header.
    let h = long(&pd);
    assert_eq!(
        (h.ty, h.version, h.dcid, h.scid),
        (LongType::Initial, Version::V1, cid(CLIENT_DCID), ConnectionId::EMPTY)
    );
    assert_eq!((h.token, h.length), (&[][..], 1182));
    assert_eq!(pd.packet_len(), 1200);
    let pn_offset = pd.pn_offset().unwrap();
    let sample = pd.sample_range().unwrap();
    assert_eq!(packet[sample], hex("d1b1c98dd7689fb8ec11d242b123dc9b"));
    apply_mask(&mut packet, pn_offset, &hex("437b9aec36"));
    assert_eq!(packet[..22], hex("c300000001088394c8f03e5157080000449e00000002"));
    assert_eq!(read_packet_number(&packet, pn_offset, None), Ok((pn(2), pn_len(4))));
}

#[test]
fn rfc9001_server_initial() {
    let mut packet = hex(SERVER_INITIAL_V1);
    let pd = parse(&packet).unwrap();
    let h = long(&pd);
    assert_eq!(
        (h.ty, h.version, h.dcid, h.scid),
        (LongType::Initial, Version::V1, ConnectionId::EMPTY, cid(SERVER_SCID))
    );
    assert_eq!(h.length, 0x75);
    assert_eq!(pd.packet_len(), packet.len());
    let pn_offset = pd.pn_offset().unwrap();
    assert_eq!(packet[pd.sample_range().unwrap()], hex("2cd0991cd25b0aac406a5816b6394100"));
    apply_mask(&mut packet, pn_offset, &hex("2ec0d8356a"));
    let unprotected = hex("c1000000010008f067a5502a4262b50040750001");
    assert_eq!(packet[..unprotected.len()], unprotected);
    assert_eq!(read_packet_number(&packet, pn_offset, Some(pn(0))), Ok((pn(1), pn_len(2))));

    let header = Header::Initial {
        version: Version::V1,
        dcid: ConnectionId::EMPTY,
        scid: cid(SERVER_SCID),
        token: Bytes::new(),
    };
    assert_eq!(build(&header, pn(1), pn_len(2), 0x75 - 2)[..20], unprotected);
}

#[test]
fn rfc9369_initials() {
    // Client Initial: header, sample and mask from RFC 9369 Appendix A.2.
    let unprotected = hex("d36b3343cf088394c8f03e5157080000449e00000002");
    let mut packet = hex("d76b3343cf088394c8f03e5157080000449ea0c95e82");
    packet.extend(hex("ffe67b6abcdb4298b485dd04de806071"));
    packet.resize(1200, 0);
    let pd = parse(&packet).unwrap();
    let h = long(&pd);
    assert_eq!(
        (h.ty, h.version, h.dcid, h.length),
        (LongType::Initial, Version::V2, cid(CLIENT_DCID), 1182)
    );
    assert_eq!(packet[pd.sample_range().unwrap()], hex("ffe67b6abcdb4298b485dd04de806071"));
    apply_mask(&mut packet, 18, &hex("94a0c95e80"));
    assert_eq!(packet[..22], unprotected);
    let header = Header::Initial {
        version: Version::V2,
        dcid: cid(CLIENT_DCID),
        scid: ConnectionId::EMPTY,
        token: Bytes::new(),
    };
    assert_eq!(build(&header, pn(2), pn_len(4), 1178)[..22], unprotected);

    // Server Initial.
    let mut packet = hex(SERVER_INITIAL_V2);
    let pd = parse(&packet).unwrap();
    let h = long(&pd);
    assert_eq!(
        (h.ty, h.version, h.scid, h.length),
        (LongType::Initial, Version::V2, cid(SERVER_SCID), 0x75)
    );
    assert_eq!(pd.packet_len(), packet.len());
    assert_eq!(packet[pd.sample_range().unwrap()], hex("6f05d8a4398c47089698baeea26b91eb"));
    apply_mask(&mut packet, 18, &hex("4dd92e91ea"));
    assert_eq!(packet[..20], hex("d16b3343cf0008f067a5502a4262b50040750001"));
    assert_eq!(read_packet_number(&packet, 18, Some(pn(0))), Ok((pn(1), pn_len(2))));
}

#[test]
fn short_header_chacha_samples() {
    // RFC 9001 Appendix A.5 and RFC 9369 Appendix A.5: an empty connection
    // ID, a 3-byte packet number, the smallest possible packet.
    for (packet, mask) in [
        ("4cfe4189655e5cd55c41f69080575d7999c25a5bfb", "aefefe7d03"),
        ("5558b1c60ae7b6b932bc27d786f4bc2bb20f2162ba", "97580e32bf"),
    ] {
        let mut packet = hex(packet);
        let pd = parse(&packet).unwrap();
        assert_eq!(
            pd.header(),
            &ProtectedHeader::Short(ShortHeader { spin: false, dcid: ConnectionId::EMPTY })
        );
        assert_eq!((pd.pn_offset(), pd.sample_range()), (Some(1), Some(5..21)));
        assert_eq!(pd.packet_len(), 21);
        assert_eq!(pd.encryption_level(), Some(EncryptionLevel::OneRtt));
        assert_eq!((pd.version(), pd.scid(), pd.is_long()), (None, None, false));
        apply_mask(&mut packet, 1, &hex(mask));
        assert_eq!(packet[..4], hex("4200bff4"));
        let (number, len) = read_packet_number(&packet, 1, Some(pn(654360563))).unwrap();
        assert_eq!((number, len), (pn(654360564), pn_len(3)));
        assert!(!key_phase(packet[0]));
        assert_eq!(check_reserved_bits(packet[0]), Ok(()));
        let header = Header::Short { spin: false, key_phase: false, dcid: ConnectionId::EMPTY };
        assert_eq!(build(&header, number, len, 17)[..4], hex("4200bff4"));
    }
    // One byte short of a sample.
    assert_eq!(
        parse(&hex("4cfe4189655e5cd55c41f69080575d7999c25a5b")),
        Err(PacketDecodeError::TooShortForSample)
    );
}

/// Computes the Retry Integrity Tag as RFC 9001 §5.8 defines it, to check
/// the pseudo-packet byte for byte against the published tags.
fn retry_tag(version: Version, pseudo: &[u8]) -> Vec<u8> {
    use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let (key, nonce) = match version {
        Version::V1 => ("be0c690b9f66575a1d766b54e368c84e", "461599d35d632bf2239825bb"),
        _ => ("8fb4b01b56ac48e260fbcbcead7ccc92", "d86969bc2d7c6d9990efb04a"),
    };
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &hex(key)).unwrap());
    let nonce = Nonce::try_assume_unique_for_key(&hex(nonce)).unwrap();
    key.seal_in_place_separate_tag(nonce, Aad::from(pseudo), &mut []).unwrap().as_ref().to_vec()
}

#[test]
fn rfc9001_and_rfc9369_retry() {
    for (version, bytes, unused) in [(Version::V1, RETRY_V1, 0x0f), (Version::V2, RETRY_V2, 0x0f)] {
        let packet = hex(bytes);
        let pd = parse(&packet).unwrap();
        let ProtectedHeader::Retry(retry) = pd.header() else { panic!("not a Retry") };
        assert_eq!(retry.version, version);
        assert_eq!(retry.dcid, ConnectionId::EMPTY);
        assert_eq!(retry.scid, cid(SERVER_SCID));
        assert_eq!(retry.token, b"token");
        assert_eq!(retry.integrity_tag[..], packet[packet.len() - 16..]);
        assert_eq!((pd.pn_offset(), pd.sample_range(), pd.encryption_level()), (None, None, None));
        assert_eq!(pd.packet_len(), packet.len());

        //= https://www.rfc-editor.org/rfc/rfc9001#section-5.8
        //= type=test
        //# The Retry Pseudo-Packet is not sent over the wire. It is computed by taking
        //# the transmitted Retry packet, removing the Retry Integrity Tag, and prepending
        //# the two following fields:
        let odcid = cid(CLIENT_DCID);
        let pseudo = pd.retry_pseudo_packet(&odcid).unwrap();
        assert_eq!(pseudo[..9], hex("088394c8f03e515708"));
        assert_eq!(pseudo[9..], packet[..packet.len() - 16]);
        assert_eq!(retry_tag(version, &pseudo), retry.integrity_tag);

        let mut buf = Vec::new();
        encode_retry_without_tag(
            version,
            &ConnectionId::EMPTY,
            &cid(SERVER_SCID),
            b"token",
            unused,
            &mut buf,
        );
        assert_eq!(retry_pseudo_packet(&odcid, &buf), pseudo);
        buf.extend(retry_tag(version, &retry_pseudo_packet(&odcid, &buf)));
        assert_eq!(buf, packet);
    }
    // Not a Retry: no pseudo-packet.
    assert_eq!(
        parse(&hex(SERVER_INITIAL_V1)).unwrap().retry_pseudo_packet(&ConnectionId::EMPTY),
        None
    );
}

#[test]
fn retry_errors() {
    let packet = hex(RETRY_V1);
    // Header and token only: too short for the tag.
    assert_eq!(parse(&packet[..20]), Err(PacketDecodeError::UnexpectedEnd));
    // The tag is always the last 16 bytes, whatever precedes it.
    let pd = parse(&packet[..packet.len() - 1]).unwrap();
    let ProtectedHeader::Retry(retry) = pd.header() else { panic!("not a Retry") };
    assert_eq!(retry.token, b"toke");
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.5.2
    //= type=test
    //# A client MUST discard a Retry packet with a zero-length Retry
    //# Token field.
    let mut empty_token = packet[..15].to_vec();
    empty_token.extend([0; 16]);
    assert_eq!(parse(&empty_token), Err(PacketDecodeError::EmptyRetryToken));
}

#[test]
fn version_negotiation_round_trip() {
    let client_dcid = [0xab; 30];
    let client_scid = hex("c0ffee");
    let supported = [Version::V1, Version::V2, Version(0x1a2a3a4a)];
    let mut rng = SeededRandom::from_u64(7);
    let mut seen_unused = 0u8;
    for _ in 0..16 {
        let mut buf = Vec::new();
        encode_version_negotiation(&client_dcid, &client_scid, &supported, &mut rng, &mut buf);
        assert_eq!(buf[0] & 0xc0, 0xc0);
        seen_unused |= buf[0] & 0x3f;
        assert_eq!(buf[1..5], [0; 4]);
        let pd = parse(&buf).unwrap();
        let ProtectedHeader::VersionNegotiation(vn) = pd.header() else { panic!("not VN") };
        //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2.1
        //= type=test
        //# The server MUST include the value from the Source Connection ID field of the
        //# packet it receives in the Destination Connection ID field.
        assert_eq!(vn.dcid, &client_scid[..]);
        assert_eq!(vn.scid, &client_dcid[..]);
        assert_eq!(vn.versions().collect::<Vec<_>>(), supported);
        assert_eq!(
            (pd.version(), pd.pn_offset(), pd.packet_len()),
            (Some(Version::NEGOTIATION), None, buf.len())
        );
        assert_eq!(pd.dcid(), &client_scid[..]);
        assert_eq!(pd.scid(), Some(&client_dcid[..]));
    }
    assert_ne!(seen_unused, 0, "the unused bits are random");
}

#[test]
fn version_negotiation_parsing() {
    //= https://www.rfc-editor.org/rfc/rfc8999#section-6
    //= type=test
    //# The remaining 7 bits, labeled "Unused", can be set to
    //# any value when sending and MUST be ignored on receipt.
    let mut vn = hex("80 00000000 00 00 00000001");
    assert!(parse(&vn).is_ok());
    // Longest connection IDs of any version: 255 bytes.
    let mut long_cids = hex("80 00000000");
    long_cids.push(255);
    long_cids.extend([1; 255]);
    long_cids.push(255);
    long_cids.extend([2; 255]);
    long_cids.extend(hex("6b3343cf"));
    let pd = parse(&long_cids).unwrap();
    assert_eq!((pd.dcid().len(), pd.scid().unwrap().len()), (255, 255));

    //= https://www.rfc-editor.org/rfc/rfc8999#section-6
    //= type=test
    //# An endpoint MUST ignore a packet that contains no Supported Version
    //# fields or contains a truncated Supported Version value.
    assert_eq!(parse(&vn[..7]), Err(PacketDecodeError::InvalidVersionNegotiation));
    vn.push(0);
    assert_eq!(parse(&vn), Err(PacketDecodeError::InvalidVersionNegotiation));
    assert_eq!(parse(&vn[..6]), Err(PacketDecodeError::UnexpectedEnd));
}

#[test]
fn unsupported_version_yields_invariant_fields() {
    // A version 1 rule (CID length at most 20) must not apply to other
    // versions, and nothing past the connection IDs is interpreted.
    let mut packet = hex("c5 1a2a3a4a");
    packet.push(21);
    packet.extend([9; 21]);
    packet.push(0);
    packet.extend([0xff; 3]);
    let pd = parse(&packet).unwrap();
    assert_eq!(
        pd.header(),
        &ProtectedHeader::UnsupportedVersion(InvariantLongHeader {
            version: Version(0x1a2a3a4a),
            dcid: &[9; 21],
            scid: &[],
        })
    );
    assert_eq!((pd.packet_len(), pd.pn_offset(), pd.has_length()), (packet.len(), None, false));
    // The server's answer echoes the IDs back, swapped.
    let mut vn = Vec::new();
    encode_version_negotiation(
        pd.dcid(),
        pd.scid().unwrap(),
        Version::SUPPORTED,
        &mut SeededRandom::from_u64(1),
        &mut vn,
    );
    let answer = parse(&vn).unwrap();
    assert_eq!((answer.dcid(), answer.scid()), (&[][..], Some(&[9; 21][..])));
    assert_eq!(parse(&packet[..7]), Err(PacketDecodeError::UnexpectedEnd));

    // The fixed bit is version specific.
    packet[0] = 0x80;
    assert!(parse(&packet).is_ok());
}

#[test]
fn long_header_errors() {
    let header = Header::Long {
        ty: LongType::Handshake,
        version: Version::V1,
        dcid: cid("0102030405060708"),
        scid: cid("0a0b"),
    };
    let packet = build(&header, pn(0), pn_len(1), 19);
    let pd = parse(&packet).unwrap();
    assert_eq!(long(&pd).length, 20);
    // Every truncation inside the header fails cleanly.
    let pn_offset = pd.pn_offset().unwrap();
    for len in 0..pn_offset {
        assert_eq!(parse(&packet[..len]), Err(PacketDecodeError::UnexpectedEnd), "prefix {len}");
    }
    for len in pn_offset..packet.len() {
        assert_eq!(
            parse(&packet[..len]),
            Err(PacketDecodeError::LengthExceedsDatagram),
            "prefix {len}"
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc9001#section-5.4.2
    //= type=test
    //# An endpoint MUST discard packets that are not long enough to contain a complete
    //# sample.
    let short = build(&header, pn(0), pn_len(1), 18);
    assert_eq!(parse(&short), Err(PacketDecodeError::TooShortForSample));

    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
    //= type=test
    //# Packets containing a zero value for this bit are not
    //# valid packets in this version and MUST be discarded.
    let mut greased = packet.clone();
    greased[0] &= !0x40;
    assert_eq!(parse(&greased), Err(PacketDecodeError::FixedBitZero));
    assert!(PartialDecode::parse(&greased, 0, true).is_ok());

    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
    //= type=test
    //# Endpoints that receive a version 1 long header with a value larger than 20
    //# MUST drop the packet.
    for at in [5, 6 + 8] {
        let mut long_cid = packet.clone();
        long_cid[at] = 21;
        long_cid.extend([0; 30]);
        assert_eq!(parse(&long_cid), Err(PacketDecodeError::CidTooLong));
    }

    // A Length field that is a valid varint but far beyond the datagram.
    let mut huge = packet[..pn_offset - 2].to_vec();
    huge.extend(hex("ffffffffffffffff"));
    huge.extend([0; 40]);
    assert_eq!(parse(&huge), Err(PacketDecodeError::LengthExceedsDatagram));

    // An Initial whose Token Length runs past the datagram.
    let mut initial = hex("c0 00000001 00 00");
    initial.extend(hex("bfffffffffffffff"));
    initial.extend([0; 40]);
    assert_eq!(parse(&initial), Err(PacketDecodeError::UnexpectedEnd));

    assert_eq!(parse(&[]), Err(PacketDecodeError::UnexpectedEnd));
}

#[test]
fn short_header_errors() {
    let header = Header::Short { spin: true, key_phase: true, dcid: cid("0102030405060708") };
    let packet = build(&header, pn(5), pn_len(1), 19);
    let pd = PartialDecode::parse(&packet, 8, false).unwrap();
    assert_eq!(
        pd.header(),
        &ProtectedHeader::Short(ShortHeader { spin: true, dcid: cid("0102030405060708") })
    );
    assert_eq!(pd.sample_range(), Some(13..29));
    assert!(key_phase(packet[0]));
    assert_eq!(
        PartialDecode::parse(&packet[..28], 8, false),
        Err(PacketDecodeError::TooShortForSample)
    );
    assert_eq!(PartialDecode::parse(&packet[..8], 8, false), Err(PacketDecodeError::UnexpectedEnd));
    assert_eq!(PartialDecode::parse(&[0x40; 60], 21, false), Err(PacketDecodeError::CidTooLong));

    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.3.1
    //= type=test
    //# Packets containing a zero value
    //# for this bit are not valid packets in this version and MUST be discarded.
    let mut greased = packet.clone();
    greased[0] &= !0x40;
    assert_eq!(PartialDecode::parse(&greased, 8, false), Err(PacketDecodeError::FixedBitZero));
    assert!(PartialDecode::parse(&greased, 8, true).is_ok());
}

#[test]
fn reserved_bits() {
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
    //= type=test
    //# An endpoint MUST treat receipt of a packet that has a non-zero value for these
    //# bits after removing both packet and header protection as a connection error
    //# of type PROTOCOL_VIOLATION.
    for first in [0xc4, 0xc8, 0xec, 0xd4] {
        assert_eq!(
            check_reserved_bits(first).unwrap_err().code,
            TransportErrorCode::PROTOCOL_VIOLATION
        );
    }
    for first in [0xc0, 0xc3, 0xf3, 0x83] {
        assert_eq!(check_reserved_bits(first), Ok(()));
    }
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.3.1
    //= type=test
    //# An endpoint MUST treat
    //# receipt of a packet that has a non-zero value for these bits, after removing
    //# both packet and header protection, as a connection error of type
    //# PROTOCOL_VIOLATION.
    for first in [0x48, 0x50, 0x7f] {
        assert_eq!(
            check_reserved_bits(first).unwrap_err().code,
            TransportErrorCode::PROTOCOL_VIOLATION
        );
    }
    for first in [0x40, 0x67, 0x24] {
        assert_eq!(check_reserved_bits(first), Ok(()));
    }
}

#[test]
fn read_packet_number_errors() {
    assert_eq!(read_packet_number(&[], 0, None), Err(PacketDecodeError::UnexpectedEnd));
    assert_eq!(read_packet_number(&[0x43, 1, 2], 1, None), Err(PacketDecodeError::UnexpectedEnd));
    assert_eq!(read_packet_number(&[0x40], 5, None), Err(PacketDecodeError::UnexpectedEnd));
    assert_eq!(read_packet_number(&[0x41, 1, 2], 1, None), Ok((pn(0x0102), pn_len(2))));
}

#[test]
fn length_field_limits() {
    let header = Header::Long {
        ty: LongType::ZeroRtt,
        version: Version::V2,
        dcid: ConnectionId::EMPTY,
        scid: ConnectionId::EMPTY,
    };
    let mut buf = vec![0xee; 3];
    let enc = header.encode(pn(9), pn_len(2), &mut buf);
    assert_eq!(enc.start(), 3);
    assert_eq!(enc.max_payload_len(), Some(16381));
    assert_eq!(enc.min_payload_len(), 18);
    assert_eq!(enc.set_payload_len(&mut buf, 16382), Err(PayloadTooLong));
    assert_eq!(enc.set_payload_len(&mut buf, usize::MAX), Err(PayloadTooLong));
    assert_eq!(buf[3 + 7..3 + 9], [0x40, 0x00], "unchanged after an error");
    enc.set_payload_len(&mut buf, 16381).unwrap();
    assert_eq!(buf[3 + 7..3 + 9], [0x7f, 0xff]);

    let short = Header::Short { spin: false, key_phase: false, dcid: ConnectionId::EMPTY };
    let mut buf = Vec::new();
    let enc = short.encode(pn(9), pn_len(1), &mut buf);
    assert_eq!((enc.max_payload_len(), enc.min_payload_len()), (None, 19));
    assert_eq!(enc.set_payload_len(&mut buf, 1 << 20), Ok(()));
    assert_eq!(buf, [0x40, 9]);
}

#[test]
fn initial_without_token_via_long() {
    let dcid = cid("01020304");
    let via_long = Header::Long { ty: LongType::Initial, version: Version::V1, dcid, scid: dcid };
    let initial = Header::Initial { version: Version::V1, dcid, scid: dcid, token: Bytes::new() };
    assert_eq!(build(&via_long, pn(3), pn_len(1), 40), build(&initial, pn(3), pn_len(1), 40));
    assert_eq!(via_long.encoded_len(pn_len(1)), initial.encoded_len(pn_len(1)));
}

#[test]
#[should_panic(expected = "no long header packet types")]
fn encoding_an_unknown_version_is_a_caller_bug() {
    let header = Header::Long {
        ty: LongType::Handshake,
        version: Version(7),
        dcid: ConnectionId::EMPTY,
        scid: ConnectionId::EMPTY,
    };
    let _ = header.encode(pn(0), pn_len(1), &mut Vec::new());
}

#[test]
#[should_panic(expected = "cannot encode a Retry")]
fn encoding_a_retry_header_is_a_caller_bug() {
    let header = Header::Long {
        ty: LongType::Retry,
        version: Version::V1,
        dcid: ConnectionId::EMPTY,
        scid: ConnectionId::EMPTY,
    };
    let _ = header.encode(pn(0), pn_len(1), &mut Vec::new());
}

/// A server's flight: Initial (RFC 9001 A.3), Handshake and 1-RTT.
fn server_flight() -> Vec<u8> {
    let mut datagram = hex(SERVER_INITIAL_V1);
    let handshake = Header::Long {
        ty: LongType::Handshake,
        version: Version::V1,
        dcid: ConnectionId::EMPTY,
        scid: cid(SERVER_SCID),
    };
    datagram.extend(build(&handshake, pn(0), pn_len(1), 40));
    let short = Header::Short { spin: false, key_phase: false, dcid: ConnectionId::EMPTY };
    datagram.extend(build(&short, pn(0), pn_len(1), 30));
    datagram
}

#[test]
fn coalesced_initial_handshake_short() {
    //= https://www.rfc-editor.org/rfc/rfc9000#section-12.2
    //= type=test
    //# Receivers MUST be able to process coalesced packets.
    let datagram = server_flight();
    let packets: Vec<_> = CoalescedPackets::new(&datagram, 0, false).map(Result::unwrap).collect();
    let ranges: Vec<_> = packets.iter().map(|p| p.range.clone()).collect();
    assert_eq!(ranges, [0..135, 135..135 + 58, 135 + 58..datagram.len()]);
    let levels: Vec<_> = packets.iter().map(|p| p.decode.encryption_level().unwrap()).collect();
    assert_eq!(
        levels,
        [EncryptionLevel::Initial, EncryptionLevel::Handshake, EncryptionLevel::OneRtt]
    );
    for p in &packets {
        assert_eq!(p.decode.packet(), &datagram[p.range.clone()]);
    }

    // Bytes after a short header packet belong to it.
    let mut short_first = datagram[135 + 58..].to_vec();
    short_first.extend(hex(SERVER_INITIAL_V1));
    let packets: Vec<_> = CoalescedPackets::new(&short_first, 0, false).collect();
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].as_ref().unwrap().range, 0..short_first.len());

    assert_eq!(CoalescedPackets::new(&[], 0, false).count(), 0);
}

#[test]
fn coalesced_stops_at_first_undecodable_packet() {
    // Zeros padding a datagram after its last long header packet.
    let mut padded = hex(SERVER_INITIAL_V1);
    padded.extend([0; 100]);
    let mut it = CoalescedPackets::new(&padded, 0, false);
    assert_eq!(it.next().unwrap().unwrap().range, 0..135);
    assert_eq!(it.next(), Some(Err(PacketDecodeError::FixedBitZero)));
    assert_eq!(it.next(), None);

    // An error in the first packet.
    let mut it = CoalescedPackets::new(&[0xc0, 0, 0], 0, false);
    assert_eq!(it.next(), Some(Err(PacketDecodeError::UnexpectedEnd)));
    assert_eq!(it.next(), None);

    //= https://www.rfc-editor.org/rfc/rfc9000#section-12.2
    //= type=test
    //# Receivers SHOULD ignore any subsequent packets
    //# with a different Destination Connection ID than the first packet in the
    //# datagram.
    let mut mismatch = hex(SERVER_INITIAL_V1);
    let other = Header::Long {
        ty: LongType::Handshake,
        version: Version::V1,
        dcid: cid("01"),
        scid: cid(SERVER_SCID),
    };
    mismatch.extend(build(&other, pn(0), pn_len(1), 40));
    mismatch.extend(build(
        &Header::Short { spin: false, key_phase: false, dcid: ConnectionId::EMPTY },
        pn(1),
        pn_len(1),
        30,
    ));
    let results: Vec<_> =
        CoalescedPackets::new(&mismatch, 0, false).map(|r| r.map(|p| p.range)).collect();
    assert_eq!(results, [Ok(0..135), Err(PacketDecodeError::DcidMismatch)]);

    // Retry and Version Negotiation packets are never coalesced.
    for follower in [hex(RETRY_V1), hex("80 00000000 00 08 f067a5502a4262b5 00000001")] {
        let mut datagram = hex(SERVER_INITIAL_V1);
        datagram.extend(follower);
        let results: Vec<_> =
            CoalescedPackets::new(&datagram, 0, false).map(|r| r.map(|p| p.range)).collect();
        assert_eq!(results, [Ok(0..135), Err(PacketDecodeError::UnexpectedCoalescedPacket)]);
    }
}

fn arb_cid() -> impl Strategy<Value = ConnectionId> {
    proptest::collection::vec(any::<u8>(), 0..=20)
        .prop_map(|b| ConnectionId::from_slice(&b).unwrap())
}

fn arb_version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V1), Just(Version::V2)]
}

fn arb_header() -> impl Strategy<Value = Header> {
    prop_oneof![
        (arb_version(), arb_cid(), arb_cid(), proptest::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(version, dcid, scid, token)| Header::Initial {
                version,
                dcid,
                scid,
                token: token.into()
            }),
        (
            prop_oneof![Just(LongType::ZeroRtt), Just(LongType::Handshake)],
            arb_version(),
            arb_cid(),
            arb_cid()
        )
            .prop_map(|(ty, version, dcid, scid)| Header::Long { ty, version, dcid, scid }),
        (any::<bool>(), any::<bool>(), arb_cid())
            .prop_map(|(spin, key_phase, dcid)| Header::Short { spin, key_phase, dcid }),
    ]
}

proptest! {
    /// Encoding then parsing gives the header back, at the predicted offsets.
    #[test]
    fn header_round_trip(
        header in arb_header(),
        number in 0..=PacketNumber::MAX.into_inner(),
        len in 1usize..=4,
        extra_payload in 0usize..300,
        prefix in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let number = pn(number);
        let len = pn_len(len);
        let mut buf = prefix.clone();
        let enc = header.encode(number, len, &mut buf);
        prop_assert_eq!(enc.start(), prefix.len());
        prop_assert_eq!(buf.len() - prefix.len(), header.encoded_len(len));
        prop_assert_eq!(enc.header_len(), header.encoded_len(len));
        prop_assert_eq!(enc.pn_len(), len);
        let payload_len = enc.min_payload_len() + extra_payload;
        buf.resize(buf.len() + payload_len, 0x5a);
        enc.set_payload_len(&mut buf, payload_len).unwrap();

        let packet = &buf[prefix.len()..];
        let pd = PartialDecode::parse(packet, header.dcid().len(), false).unwrap();
        prop_assert_eq!(pd.packet_len(), packet.len());
        prop_assert_eq!(pd.pn_offset(), Some(enc.pn_offset()));
        prop_assert_eq!(pd.sample_range(), Some(enc.sample_offset()..enc.sample_offset() + SAMPLE_LEN));
        prop_assert!(pd.sample_range().unwrap().end <= packet.len());
        prop_assert_eq!(pd.dcid(), &header.dcid()[..]);
        prop_assert_eq!(pd.version(), header.version());
        prop_assert_eq!(pd.has_length(), header.is_long());
        if let ProtectedHeader::Long(h) = pd.header() {
            prop_assert_eq!(h.length, len.bytes() + payload_len);
        }
        prop_assert_eq!(to_header(&pd), header);
        prop_assert_eq!(check_reserved_bits(packet[0]), Ok(()));
        let largest = number.into_inner().checked_sub(1).map(pn);
        prop_assert_eq!(read_packet_number(packet, enc.pn_offset(), largest), Ok((number, len)));
    }

    #[test]
    fn retry_round_trip(
        version in arb_version(),
        dcid in arb_cid(),
        scid in arb_cid(),
        odcid in arb_cid(),
        token in proptest::collection::vec(any::<u8>(), 1..100),
        unused in any::<u8>(),
        tag in any::<[u8; 16]>(),
    ) {
        let mut buf = Vec::new();
        encode_retry_without_tag(version, &dcid, &scid, &token, unused, &mut buf);
        let pseudo = retry_pseudo_packet(&odcid, &buf);
        buf.extend(tag);
        let pd = parse(&buf).unwrap();
        let expected = RetryHeader { version, dcid, scid, token: &token, integrity_tag: tag };
        prop_assert_eq!(pd.header(), &ProtectedHeader::Retry(expected));
        prop_assert_eq!(pd.retry_pseudo_packet(&odcid), Some(pseudo));
    }

    #[test]
    fn version_negotiation_round_trip_prop(
        dcid in proptest::collection::vec(any::<u8>(), 0..=255),
        scid in proptest::collection::vec(any::<u8>(), 0..=255),
        versions in proptest::collection::vec(any::<u32>().prop_map(Version), 1..10),
        seed in any::<u64>(),
    ) {
        let mut buf = Vec::new();
        encode_version_negotiation(&dcid, &scid, &versions, &mut SeededRandom::from_u64(seed), &mut buf);
        let pd = parse(&buf).unwrap();
        let ProtectedHeader::VersionNegotiation(vn) = pd.header() else { panic!("not VN") };
        prop_assert_eq!((vn.dcid, vn.scid), (&scid[..], &dcid[..]));
        prop_assert_eq!(vn.versions().collect::<Vec<_>>(), versions);
    }

    /// Arbitrary bytes never panic, and whatever parses stays in bounds.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        local_cid_len in 0usize..=22,
        grease in any::<bool>(),
    ) {
        check_datagram(&bytes, local_cid_len, grease)?;
    }

    /// Corrupting a valid coalesced datagram never panics either.
    #[test]
    fn corrupted_datagrams_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        truncate in any::<prop::sample::Index>(),
        grease in any::<bool>(),
    ) {
        let mut datagram = server_flight();
        for (at, value) in flips {
            let i = at.index(datagram.len());
            datagram[i] = value;
        }
        datagram.truncate(truncate.index(datagram.len() + 1));
        check_datagram(&datagram, 0, grease)?;
    }
}

fn check_datagram(
    datagram: &[u8],
    local_cid_len: usize,
    grease: bool,
) -> Result<(), TestCaseError> {
    let mut end = 0;
    for packet in CoalescedPackets::new(datagram, local_cid_len, grease) {
        let Ok(packet) = packet else { break };
        prop_assert_eq!(packet.range.start, end);
        end = packet.range.end;
        prop_assert!(end <= datagram.len());
        let pd = &packet.decode;
        if let Some(sample) = pd.sample_range() {
            prop_assert!(sample.end <= pd.packet_len());
            let pn_offset = pd.pn_offset().unwrap();
            prop_assert!(read_packet_number(pd.packet(), pn_offset, None).is_ok());
        }
        let _ = pd.retry_pseudo_packet(&ConnectionId::EMPTY);
        if let ProtectedHeader::VersionNegotiation(vn) = pd.header() {
            prop_assert!(vn.versions().count() > 0);
        }
    }
    Ok(())
}
