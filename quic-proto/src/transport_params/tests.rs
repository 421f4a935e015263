use super::*;
use crate::error::TransportErrorCode;
use crate::random::SeededRandom;
use proptest::collection::vec;
use proptest::prelude::*;

fn cid(bytes: &[u8]) -> ConnectionId {
    ConnectionId::from_slice(bytes).unwrap()
}

fn encode(params: &TransportParameters) -> Vec<u8> {
    let mut out = Vec::new();
    params.encode(&mut out);
    assert_eq!(out.len(), params.encoded_len());
    out
}

/// The reason of the TRANSPORT_PARAMETER_ERROR decoding `bytes` must give.
fn reject(sender: Side, bytes: &[u8]) -> &'static str {
    let e = TransportParameters::decode(sender, bytes).unwrap_err();
    assert_eq!(e.code, TransportErrorCode::TRANSPORT_PARAMETER_ERROR, "{e}");
    assert_eq!(e.frame_type, None);
    e.reason
}

/// One parameter's wire encoding, for hand-built inputs.
fn param(id: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    VarInt::from_u64(id).unwrap().encode(&mut out);
    VarInt::try_from(value.len()).unwrap().encode(&mut out);
    out.extend_from_slice(value);
    out
}

/// A parameter whose value is one variable-length integer.
fn int_param(id: u64, value: u64) -> Vec<u8> {
    let mut v = Vec::new();
    VarInt::from_u64(value).unwrap().encode(&mut v);
    param(id, &v)
}

/// Splits an encoding into (identifier, value) pairs without interpreting them.
fn raw_params(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let id = VarInt::decode(&mut r).unwrap().into_inner();
        let len = VarInt::decode(&mut r).unwrap().into_inner() as usize;
        out.push((id, r.bytes(len).unwrap().to_vec()));
    }
    out
}

fn client_example() -> TransportParameters {
    TransportParameters {
        max_idle_timeout: Duration::from_secs(10),
        initial_max_data: VarInt::from_u32(1 << 20),
        initial_max_streams_bidi: VarInt::from_u32(100),
        disable_active_migration: true,
        active_connection_id_limit: VarInt::from_u32(4),
        initial_source_connection_id: Some(cid(&[0xaa, 0xbb, 0xcc, 0xdd])),
        version_information: Some(VersionInformation {
            chosen: Version::V1,
            available: vec![Version::V1, Version::V2],
        }),
        max_datagram_frame_size: Some(VarInt::from_u32(65535)),
        grease_quic_bit: true,
        ..TransportParameters::default()
    }
}

fn server_example() -> TransportParameters {
    TransportParameters {
        original_destination_connection_id: Some(cid(&[
            0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08,
        ])),
        stateless_reset_token: Some(StatelessResetToken::new([0x11; 16])),
        max_udp_payload_size: VarInt::from_u32(1472),
        ack_delay_exponent: 2,
        max_ack_delay: Duration::from_millis(20),
        preferred_address: Some(PreferredAddress {
            ipv4: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4433)),
            ipv6: None,
            connection_id: cid(&[0x01, 0x02]),
            stateless_reset_token: StatelessResetToken::new([0x22; 16]),
        }),
        initial_source_connection_id: Some(cid(&[5, 5, 5])),
        retry_source_connection_id: Some(cid(&[6])),
        ..TransportParameters::default()
    }
}

#[test]
fn defaults_encode_to_nothing() {
    let params = TransportParameters::default();
    assert_eq!(params.max_udp_payload_size.into_inner(), 65527);
    assert_eq!(params.ack_delay_exponent, 3);
    assert_eq!(params.max_ack_delay, Duration::from_millis(25));
    assert_eq!(params.active_connection_id_limit.into_inner(), 2);
    assert_eq!(params.max_idle_timeout, Duration::ZERO);
    assert_eq!(params.max_datagram_frame_size, None);
    assert_eq!(encode(&params), []);
    assert_eq!(params.encoded_len(), 0);
    for sender in [Side::Client, Side::Server] {
        assert_eq!(TransportParameters::decode(sender, &[]), Ok(params.clone()));
    }
}

#[test]
fn client_example_bytes() {
    let params = client_example();
    let expected: &[u8] = &[
        0x01, 0x02, 0x67, 0x10, // max_idle_timeout 10000 ms
        0x04, 0x04, 0x80, 0x10, 0x00, 0x00, // initial_max_data 2^20
        0x08, 0x02, 0x40, 0x64, // initial_max_streams_bidi 100
        0x0c, 0x00, // disable_active_migration
        0x0e, 0x01, 0x04, // active_connection_id_limit 4
        0x0f, 0x04, 0xaa, 0xbb, 0xcc, 0xdd, // initial_source_connection_id
        0x11, 0x0c, 0x00, 0x00, 0x00, 0x01, // version_information: chosen v1,
        0x00, 0x00, 0x00, 0x01, 0x6b, 0x33, 0x43, 0xcf, // available v1, v2
        0x20, 0x04, 0x80, 0x00, 0xff, 0xff, // max_datagram_frame_size 65535
        0x6a, 0xb2, 0x00, // grease_quic_bit
    ];
    assert_eq!(encode(&params), expected);
    assert_eq!(TransportParameters::decode(Side::Client, expected), Ok(params.clone()));
    assert_eq!(TransportParameters::decode(Side::Server, expected), Ok(params));
}

#[test]
fn server_example_bytes() {
    let params = server_example();
    let expected = [
        &[0x00, 0x08, 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08][..], // odcid
        &[0x02, 0x10],
        &[0x11; 16],                             // stateless_reset_token
        &[0x03, 0x02, 0x45, 0xc0],               // max_udp_payload_size 1472
        &[0x0a, 0x01, 0x02],                     // ack_delay_exponent 2
        &[0x0b, 0x01, 0x14],                     // max_ack_delay 20 ms
        &[0x0d, 0x2b, 192, 0, 2, 1, 0x11, 0x51], // preferred_address: 192.0.2.1:4433
        &[0; 18],                                // no IPv6 address: [::]:0
        &[0x02, 0x01, 0x02],                     // connection ID
        &[0x22; 16],                             // its reset token
        &[0x0f, 0x03, 5, 5, 5],                  // initial_source_connection_id
        &[0x10, 0x01, 6],                        // retry_source_connection_id
    ]
    .concat();
    assert_eq!(encode(&params), expected);
    assert_eq!(TransportParameters::decode(Side::Server, &expected), Ok(params));
}

#[test]
fn explicit_defaults_and_long_encodings_are_accepted() {
    // Every parameter at its default, spelled out, some in non-minimal
    // varints: the same set as an empty extension.
    let bytes = [
        param(0x01, &[0x40, 0x00]),
        param(0x03, &[0x80, 0x00, 0xff, 0xf7]),
        param(0x04, &[0x00]),
        param(0x0a, &[0x40, 0x03]),
        param(0x0b, &[0x19]),
        param(0x0e, &[0x02]),
    ]
    .concat();
    assert_eq!(
        TransportParameters::decode(Side::Client, &bytes),
        Ok(TransportParameters::default())
    );
}

#[test]
fn durations_are_whole_milliseconds() {
    let params = TransportParameters {
        max_idle_timeout: Duration::from_micros(1500),
        max_ack_delay: Duration::from_micros(25_900),
        ..TransportParameters::default()
    };
    // max_ack_delay truncates to 25 ms, the default, so it is omitted.
    assert_eq!(encode(&params), [0x01, 0x01, 0x01]);
}

#[test]
fn preferred_address_families() {
    let v6 = SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 443, 0, 0);
    let mut params = TransportParameters {
        preferred_address: Some(PreferredAddress {
            ipv4: None,
            ipv6: Some(v6),
            connection_id: cid(&[9; 20]),
            stateless_reset_token: StatelessResetToken::new([3; 16]),
        }),
        ..TransportParameters::default()
    };
    let bytes = encode(&params);
    assert_eq!(bytes.len(), 2 + 4 + 2 + 16 + 2 + 1 + 20 + 16);
    assert_eq!(TransportParameters::decode(Side::Server, &bytes), Ok(params.clone()));

    // An address of 0.0.0.0 with a non-zero port is not "absent".
    let odd = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 1);
    params.preferred_address.as_mut().unwrap().ipv4 = Some(odd);
    let decoded = TransportParameters::decode(Side::Server, &encode(&params)).unwrap();
    assert_eq!(decoded.preferred_address.unwrap().ipv4, Some(odd));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-7.4.2
//= type=test
//# An
//# endpoint MUST ignore transport parameters that it does not support.
#[test]
fn unknown_and_reserved_parameters_are_ignored() {
    let reserved_1000 = TransportParameterId::reserved(1000).unwrap();
    assert_eq!(reserved_1000.0.into_inner(), 31_027);
    assert!(reserved_1000.is_reserved());
    assert!(!TransportParameterId::GREASE_QUIC_BIT.is_reserved());
    assert!(TransportParameterId::reserved(TransportParameterId::MAX_RESERVED_INDEX).is_some());
    assert!(TransportParameterId::reserved(TransportParameterId::MAX_RESERVED_INDEX + 1).is_none());

    let bytes = [
        param(27, &[1, 2, 3]),
        int_param(0x04, 7),
        param(31_027, &[]),
        // Unknown, not reserved, repeated, and with values that would be
        // invalid for any known parameter.
        param(0x21, &[0xff; 40]),
        param(0x21, &[]),
        param(
            TransportParameterId::reserved(TransportParameterId::MAX_RESERVED_INDEX)
                .unwrap()
                .0
                .into_inner(),
            &[0],
        ),
    ]
    .concat();
    let params = TransportParameters::decode(Side::Client, &bytes).unwrap();
    assert_eq!(
        params,
        TransportParameters {
            initial_max_data: VarInt::from_u32(7),
            ..TransportParameters::default()
        }
    );
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-18.1
//= type=test
//# Transport parameters with an identifier of the form `31 * N + 27` for
//# integer values of N are reserved to exercise the requirement that
//# unknown transport parameters be ignored.
#[test]
fn grease_adds_one_reserved_parameter_that_decoders_ignore() {
    let mut positions = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let params = if seed % 2 == 0 { client_example() } else { server_example() };
        let mut rng = SeededRandom::from_u64(seed);
        let mut bytes = Vec::new();
        params.encode_with_grease(&mut rng, &mut bytes);

        let raw = raw_params(&bytes);
        let plain = raw_params(&encode(&params));
        assert_eq!(raw.len(), plain.len() + 1);
        let grease: Vec<_> = raw
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| {
                TransportParameterId(VarInt::from_u64(*id).unwrap()).is_reserved()
            })
            .collect();
        assert_eq!(grease.len(), 1, "seed {seed}");
        let (position, (id, value)) = grease[0];
        positions.insert(position);
        assert!(value.len() <= MAX_GREASE_LEN);
        assert_eq!(bytes.len(), params.encoded_len() + param(*id, value).len());
        // Apart from the reserved parameter, the encoding is unchanged.
        let rest: Vec<_> = raw.iter().filter(|(i, _)| i != id).cloned().collect();
        assert_eq!(rest, plain);

        for sender in [Side::Client, Side::Server] {
            if sender.is_client() && seed % 2 == 1 {
                continue;
            }
            assert_eq!(TransportParameters::decode(sender, &bytes), Ok(params.clone()));
        }
    }
    // The reserved parameter lands first, last and in between.
    assert!(positions.contains(&0));
    assert!(positions.len() > 5);

    // With nothing else to send, the reserved parameter is the whole extension.
    let mut bytes = Vec::new();
    TransportParameters::default().encode_with_grease(&mut SeededRandom::from_u64(1), &mut bytes);
    assert_eq!(raw_params(&bytes).len(), 1);
    assert_eq!(
        TransportParameters::decode(Side::Server, &bytes),
        Ok(TransportParameters::default())
    );
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-7.4
//= type=test
//# An endpoint MUST NOT send a parameter more than once in a given transport
//# parameters extension.  An endpoint SHOULD treat receipt of duplicate transport
//# parameters as a connection error of type TRANSPORT_PARAMETER_ERROR.
#[test]
fn duplicates_are_rejected() {
    let twice = [int_param(0x04, 1), int_param(0x04, 1)].concat();
    assert_eq!(reject(Side::Client, &twice), "duplicate initial_max_data transport parameter");
    // Even when the two copies are separated and disagree.
    let apart = [int_param(0x0a, 2), int_param(0x04, 1), int_param(0x0a, 3)].concat();
    assert_eq!(reject(Side::Server, &apart), "duplicate ack_delay_exponent transport parameter");
    let flags = [param(0x2ab2, &[]), param(0x2ab2, &[])].concat();
    assert_eq!(reject(Side::Server, &flags), "duplicate grease_quic_bit transport parameter");
    let cids = [param(0x0f, &[1]), param(0x0f, &[1])].concat();
    assert_eq!(
        reject(Side::Client, &cids),
        "duplicate initial_source_connection_id transport parameter"
    );
    let dgram = [int_param(0x20, 0), int_param(0x20, 0)].concat();
    assert_eq!(
        reject(Side::Client, &dgram),
        "duplicate max_datagram_frame_size transport parameter"
    );
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-7.4
//= type=test
//# An endpoint MUST treat receipt of a transport parameter with an invalid value as
//# a connection error of type TRANSPORT_PARAMETER_ERROR.
#[test]
fn truncated_and_mis_sized_values_are_rejected() {
    let s = Side::Server;
    assert_eq!(reject(s, &[0x40]), "truncated transport parameter identifier");
    assert_eq!(reject(s, &[0x04]), "truncated transport parameter length");
    assert_eq!(reject(s, &[0x04, 0x40]), "truncated transport parameter length");
    assert_eq!(reject(s, &[0x04, 0x02, 0x01]), "transport parameter value runs past the end");
    assert_eq!(
        reject(s, &[0x04, 0xc0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        "transport parameter value runs past the end"
    );
    // A truncated unknown parameter is still a broken extension.
    assert_eq!(reject(s, &[0x1b, 0x05, 0x00]), "transport parameter value runs past the end");

    // Integer values must be exactly one varint.
    assert_eq!(reject(s, &param(0x04, &[])), "malformed initial_max_data");
    assert_eq!(reject(s, &param(0x04, &[0x01, 0x02])), "malformed initial_max_data");
    assert_eq!(reject(s, &param(0x04, &[0x40])), "malformed initial_max_data");
    let cases: &[(u64, &str)] = &[
        (0x01, "malformed max_idle_timeout"),
        (0x03, "malformed max_udp_payload_size"),
        (0x05, "malformed initial_max_stream_data_bidi_local"),
        (0x06, "malformed initial_max_stream_data_bidi_remote"),
        (0x07, "malformed initial_max_stream_data_uni"),
        (0x08, "malformed initial_max_streams_bidi"),
        (0x09, "malformed initial_max_streams_uni"),
        (0x0a, "malformed ack_delay_exponent"),
        (0x0b, "malformed max_ack_delay"),
        (0x0e, "malformed active_connection_id_limit"),
        (0x20, "malformed max_datagram_frame_size"),
    ];
    for (id, reason) in cases {
        assert_eq!(reject(s, &param(*id, &[])), *reason);
        assert_eq!(reject(s, &param(*id, &[0x80, 0, 0, 0x05, 0x00])), *reason);
    }

    assert_eq!(reject(s, &param(0x02, &[0; 15])), "stateless_reset_token is not 16 bytes");
    assert_eq!(reject(s, &param(0x02, &[0; 17])), "stateless_reset_token is not 16 bytes");
    assert_eq!(reject(s, &param(0x0c, &[0])), "disable_active_migration is not zero-length");

    let mut address = Vec::new();
    server_example().preferred_address.unwrap().encode(&mut address);
    let malformed = "preferred_address length does not match its contents";
    assert_eq!(reject(s, &param(0x0d, &address[..address.len() - 1])), malformed);
    assert_eq!(reject(s, &param(0x0d, &[address.clone(), vec![0]].concat())), malformed);
    assert_eq!(reject(s, &param(0x0d, &address[..24])), malformed);
    // A connection ID length pointing past the end.
    let mut long = address.clone();
    long[24] = 19;
    assert_eq!(reject(s, &param(0x0d, &long)), malformed);
}

#[test]
fn grease_quic_bit_must_be_empty() {
    assert_eq!(reject(Side::Client, &param(0x2ab2, &[0])), "grease_quic_bit is not zero-length");
    assert_eq!(reject(Side::Server, &param(0x2ab2, &[1, 2])), "grease_quic_bit is not zero-length");
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
//= type=test
//# Values below 1200 are invalid.
#[test]
fn max_udp_payload_size_bounds() {
    assert_eq!(reject(Side::Client, &int_param(0x03, 1199)), "max_udp_payload_size below 1200");
    assert_eq!(reject(Side::Client, &int_param(0x03, 0)), "max_udp_payload_size below 1200");
    let p = TransportParameters::decode(Side::Client, &int_param(0x03, 1200)).unwrap();
    assert_eq!(p.max_udp_payload_size.into_inner(), 1200);
    // Above 65527 is valid, if meaningless.
    let p = TransportParameters::decode(Side::Client, &int_param(0x03, 1 << 40)).unwrap();
    assert_eq!(p.max_udp_payload_size.into_inner(), 1 << 40);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
//= type=test
//# Values above 20 are invalid.
#[test]
fn ack_delay_exponent_bounds() {
    assert_eq!(reject(Side::Server, &int_param(0x0a, 21)), "ack_delay_exponent above 20");
    assert_eq!(reject(Side::Server, &int_param(0x0a, 256 + 3)), "ack_delay_exponent above 20");
    let p = TransportParameters::decode(Side::Server, &int_param(0x0a, 20)).unwrap();
    assert_eq!(p.ack_delay_exponent, 20);
    let p = TransportParameters::decode(Side::Server, &int_param(0x0a, 0)).unwrap();
    assert_eq!(p.ack_delay_exponent, 0);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
//= type=test
//# Values of 2^14 or greater are invalid.
#[test]
fn max_ack_delay_bounds() {
    assert_eq!(reject(Side::Client, &int_param(0x0b, 1 << 14)), "max_ack_delay of 2^14 ms or more");
    assert_eq!(reject(Side::Client, &int_param(0x0b, 1 << 40)), "max_ack_delay of 2^14 ms or more");
    let p = TransportParameters::decode(Side::Client, &int_param(0x0b, (1 << 14) - 1)).unwrap();
    assert_eq!(p.max_ack_delay, Duration::from_millis(16383));
    let p = TransportParameters::decode(Side::Client, &int_param(0x0b, 0)).unwrap();
    assert_eq!(p.max_ack_delay, Duration::ZERO);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
//= type=test
//# The value of the active_connection_id_limit parameter MUST be at least 2.
//# An endpoint that receives a value less than 2 MUST close the connection
//# with an error of type TRANSPORT_PARAMETER_ERROR.
#[test]
fn active_connection_id_limit_bounds() {
    for limit in [0, 1] {
        assert_eq!(
            reject(Side::Client, &int_param(0x0e, limit)),
            "active_connection_id_limit below 2"
        );
    }
    let p = TransportParameters::decode(Side::Client, &int_param(0x0e, 2)).unwrap();
    assert_eq!(p.active_connection_id_limit.into_inner(), 2);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
//= type=test
//# If either is received, the connection MUST be closed immediately with a connection
//# error of type TRANSPORT_PARAMETER_ERROR if the offending value was received in a
//# transport parameter or of type FRAME_ENCODING_ERROR if it was received in a
//# frame
#[test]
fn max_streams_bounds() {
    let limit = 1u64 << 60;
    assert_eq!(
        reject(Side::Server, &int_param(0x08, limit + 1)),
        "initial_max_streams_bidi above 2^60"
    );
    assert_eq!(
        reject(Side::Server, &int_param(0x09, limit + 1)),
        "initial_max_streams_uni above 2^60"
    );
    assert_eq!(
        reject(Side::Server, &int_param(0x09, VarInt::MAX.into_inner())),
        "initial_max_streams_uni above 2^60"
    );
    let bytes = [int_param(0x08, limit), int_param(0x09, limit)].concat();
    let p = TransportParameters::decode(Side::Server, &bytes).unwrap();
    assert_eq!(p.initial_max_streams_bidi.into_inner(), limit);
    assert_eq!(p.initial_max_streams_uni.into_inner(), limit);
}

#[test]
fn connection_ids_longer_than_20_bytes_are_rejected() {
    let s = Side::Server;
    assert_eq!(
        reject(s, &param(0x00, &[1; 21])),
        "original_destination_connection_id longer than 20 bytes"
    );
    assert_eq!(
        reject(s, &param(0x0f, &[1; 21])),
        "initial_source_connection_id longer than 20 bytes"
    );
    assert_eq!(
        reject(s, &param(0x10, &[1; 255])),
        "retry_source_connection_id longer than 20 bytes"
    );

    // Addresses, then a connection ID length of 21 that the value does hold.
    let mut address = vec![0; PreferredAddress::FIXED_PREFIX - 1];
    address.push(21);
    address.extend_from_slice(&[7; 21 + 16]);
    assert_eq!(
        reject(s, &param(0x0d, &address)),
        "preferred_address connection ID longer than 20 bytes"
    );

    // 20 bytes and 0 bytes are both fine outside preferred_address.
    let bytes = [param(0x00, &[1; 20]), param(0x0f, &[]), param(0x10, &[])].concat();
    let p = TransportParameters::decode(s, &bytes).unwrap();
    assert_eq!(p.original_destination_connection_id, Some(cid(&[1; 20])));
    assert_eq!(p.initial_source_connection_id, Some(ConnectionId::EMPTY));
    assert_eq!(p.retry_source_connection_id, Some(ConnectionId::EMPTY));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
//= type=test
//# A client MUST NOT include any server-only transport parameter:
//# original_destination_connection_id, preferred_address,
//# retry_source_connection_id, or stateless_reset_token. A server MUST treat
//# receipt of any of these transport parameters as a connection error of type
//# TRANSPORT_PARAMETER_ERROR.
#[test]
fn server_only_parameters_from_a_client_are_rejected() {
    let server = server_example();
    let only = |f: fn(&mut TransportParameters, &TransportParameters)| {
        let mut p = TransportParameters::default();
        f(&mut p, &server);
        encode(&p)
    };
    let cases = [
        (
            only(|p, s| {
                p.original_destination_connection_id = s.original_destination_connection_id
            }),
            "client sent original_destination_connection_id",
        ),
        (only(|p, s| p.preferred_address = s.preferred_address), "client sent preferred_address"),
        (
            only(|p, s| p.retry_source_connection_id = s.retry_source_connection_id),
            "client sent retry_source_connection_id",
        ),
        (
            only(|p, s| p.stateless_reset_token = s.stateless_reset_token),
            "client sent stateless_reset_token",
        ),
    ];
    for (bytes, reason) in &cases {
        assert_eq!(reject(Side::Client, bytes), *reason);
        assert!(TransportParameters::decode(Side::Server, bytes).is_ok());
    }
    // Rejected by identifier even when the value is also broken.
    assert_eq!(reject(Side::Client, &param(0x02, &[])), "client sent stateless_reset_token");
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
//= type=test
//# Similarly,
//# a server MUST NOT include a zero-length connection ID in this transport
//# parameter.  A client MUST treat a violation of these requirements as a
//# connection error of type TRANSPORT_PARAMETER_ERROR.
#[test]
fn preferred_address_connection_id_must_not_be_empty() {
    let mut address = Vec::new();
    PreferredAddress {
        connection_id: ConnectionId::EMPTY,
        ..server_example().preferred_address.unwrap()
    }
    .encode(&mut address);
    assert_eq!(
        reject(Side::Server, &param(0x0d, &address)),
        "preferred_address with a zero-length connection ID"
    );
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
//= type=test
//# A server that chooses
//# a zero-length connection ID MUST NOT provide a preferred address.
#[test]
fn preferred_address_from_a_server_with_a_zero_length_connection_id() {
    let mut params = server_example();
    params.initial_source_connection_id = Some(ConnectionId::EMPTY);
    assert_eq!(
        reject(Side::Server, &encode(&params)),
        "preferred_address from a server using a zero-length connection ID"
    );
    // Order on the wire does not matter.
    let mut address = Vec::new();
    params.preferred_address.unwrap().encode(&mut address);
    let bytes = [param(0x0f, &[]), param(0x0d, &address)].concat();
    let reversed = [param(0x0d, &address), param(0x0f, &[])].concat();
    for b in [bytes, reversed] {
        assert_eq!(
            reject(Side::Server, &b),
            "preferred_address from a server using a zero-length connection ID"
        );
    }
}

fn version_information(versions: &[u32]) -> Vec<u8> {
    let value: Vec<u8> = versions.iter().flat_map(|v| v.to_be_bytes()).collect();
    param(0x11, &value)
}

//= https://www.rfc-editor.org/rfc/rfc9368#section-4
//= type=test
//# Both endpoints MUST parse their peer's Version Information during the handshake.
//# If that leads to a parsing failure (for example, if it is too short or if
//# its length is not divisible by four), then the endpoint MUST close the
//# connection; if the connection was using QUIC version 1, that connection closure
//# MUST use a transport error of type TRANSPORT_PARAMETER_ERROR.
#[test]
fn version_information_length_must_be_whole_versions() {
    for sender in [Side::Client, Side::Server] {
        assert_eq!(
            reject(sender, &param(0x11, &[])),
            "version_information too short for a Chosen Version"
        );
        assert_eq!(
            reject(sender, &param(0x11, &[0, 0, 1])),
            "version_information too short for a Chosen Version"
        );
        for len in [5, 6, 7, 9, 13] {
            let mut value = vec![0, 0, 0, 1];
            value.resize(len, 1);
            assert_eq!(
                reject(sender, &param(0x11, &value)),
                "version_information length not a multiple of 4"
            );
        }
    }
}

//= https://www.rfc-editor.org/rfc/rfc9368#section-4
//= type=test
//# If an endpoint
//# receives a Chosen Version equal to zero, or any Available Version equal to zero,
//# it MUST treat it as a parsing failure.
#[test]
fn version_information_zero_versions_are_rejected() {
    for sender in [Side::Client, Side::Server] {
        assert_eq!(
            reject(sender, &version_information(&[0, 1])),
            "version_information Chosen Version is zero"
        );
        assert_eq!(
            reject(sender, &version_information(&[1, 1, 0])),
            "version_information Available Version is zero"
        );
    }
}

//= https://www.rfc-editor.org/rfc/rfc9368#section-4
//= type=test
//# If a server receives Version
//# Information where the Chosen Version is not included in Available Versions, it
//# MUST treat it as a parsing failure.
#[test]
fn version_information_from_a_client_lists_its_chosen_version() {
    let missing = version_information(&[1, 0x6b33_43cf, 0x1a2a_3a4a]);
    assert_eq!(
        reject(Side::Client, &missing),
        "client version_information omits its Chosen Version"
    );
    let alone = version_information(&[1]);
    assert_eq!(reject(Side::Client, &alone), "client version_information omits its Chosen Version");

    // A server's list need not include its choice, and may be empty.
    let p = TransportParameters::decode(Side::Server, &missing).unwrap();
    assert_eq!(
        p.version_information,
        Some(VersionInformation {
            chosen: Version::V1,
            available: vec![Version::V2, Version(0x1a2a_3a4a)],
        })
    );
    let p = TransportParameters::decode(Side::Server, &alone).unwrap();
    assert_eq!(
        p.version_information,
        Some(VersionInformation { chosen: Version::V1, available: vec![] })
    );
    // Reserved versions are allowed in the list.
    let greased = version_information(&[0x6b33_43cf, 0x0a0a_0a0a, 0x6b33_43cf]);
    assert!(TransportParameters::decode(Side::Client, &greased).is_ok());
}

#[test]
fn max_datagram_frame_size_takes_any_value() {
    for size in [0, 1, 1200, 65535, VarInt::MAX.into_inner()] {
        let p = TransportParameters::decode(Side::Client, &int_param(0x20, size)).unwrap();
        assert_eq!(p.max_datagram_frame_size, Some(VarInt::from_u64(size).unwrap()));
        assert_eq!(encode(&p), int_param(0x20, size));
    }
}

#[test]
fn ids_display_their_names() {
    assert_eq!(TransportParameterId::INITIAL_MAX_DATA.to_string(), "initial_max_data");
    assert_eq!(format!("{:?}", TransportParameterId::GREASE_QUIC_BIT), "grease_quic_bit");
    let unknown = TransportParameterId(VarInt::from_u32(0x1b));
    assert_eq!(unknown.name(), None);
    assert_eq!(unknown.to_string(), "unknown transport parameter 0x1b");
    assert_eq!(
        format!("{:?}", StatelessResetToken::new([0xab; 16])),
        "StatelessResetToken(abababababababababababababababab)"
    );
}

fn any_varint() -> impl Strategy<Value = VarInt> {
    prop_oneof![
        0u64..(1 << 6),
        (1u64 << 6)..(1 << 14),
        (1u64 << 14)..(1 << 30),
        (1u64 << 30)..=VarInt::MAX.into_inner(),
    ]
    .prop_map(|x| VarInt::from_u64(x).unwrap())
}

fn any_cid(len: core::ops::RangeInclusive<usize>) -> impl Strategy<Value = ConnectionId> {
    vec(any::<u8>(), len).prop_map(|b| ConnectionId::from_slice(&b).unwrap())
}

fn any_token() -> impl Strategy<Value = StatelessResetToken> {
    any::<[u8; 16]>().prop_map(StatelessResetToken::new)
}

fn any_preferred_address() -> impl Strategy<Value = PreferredAddress> {
    (
        any::<([u8; 4], u16)>(),
        any::<([u8; 16], u16)>(),
        prop::bool::weighted(0.1),
        any_cid(1..=20),
        any_token(),
    )
        .prop_map(|((v4, p4), (v6, p6), zero, connection_id, stateless_reset_token)| {
            let v4 = SocketAddrV4::new(Ipv4Addr::from(if zero { [0; 4] } else { v4 }), p4);
            let v6 = SocketAddrV6::new(Ipv6Addr::from(v6), p6, 0, 0);
            PreferredAddress {
                // All-zero means "absent" on the wire.
                ipv4: (!(v4.ip().is_unspecified() && v4.port() == 0)).then_some(v4),
                ipv6: (!(v6.ip().is_unspecified() && v6.port() == 0)).then_some(v6),
                connection_id,
                stateless_reset_token,
            }
        })
}

fn any_version_information(sender: Side) -> impl Strategy<Value = VersionInformation> {
    let version = || (1..=u32::MAX).prop_map(Version);
    (version(), vec(version(), 0..6)).prop_map(move |(chosen, mut available)| {
        if sender.is_client() && !available.contains(&chosen) {
            available.push(chosen);
        }
        VersionInformation { chosen, available }
    })
}

/// Any parameter set `sender` may validly send.
fn any_params(sender: Side) -> impl Strategy<Value = TransportParameters> {
    let millis = |max: u64| (0..max).prop_map(Duration::from_millis);
    let streams =
        || (0..=TransportParameters::MAX_STREAMS_LIMIT).prop_map(|x| VarInt::from_u64(x).unwrap());
    (
        (
            prop::option::of(any_cid(0..=20)),
            millis(VarInt::MAX.into_inner()),
            prop::option::of(any_token()),
            (1200..=VarInt::MAX.into_inner()).prop_map(|x| VarInt::from_u64(x).unwrap()),
            any_varint(),
            any_varint(),
            any_varint(),
            any_varint(),
        ),
        (
            streams(),
            streams(),
            0..=TransportParameters::MAX_ACK_DELAY_EXPONENT,
            millis(TransportParameters::MAX_ACK_DELAY_BOUND_MS),
            any::<bool>(),
            prop::option::of(any_preferred_address()),
            (2..=VarInt::MAX.into_inner()).prop_map(|x| VarInt::from_u64(x).unwrap()),
        ),
        (
            prop::option::of(any_cid(0..=20)),
            prop::option::of(any_cid(0..=20)),
            prop::option::of(any_version_information(sender)),
            prop::option::of(any_varint()),
            any::<bool>(),
        ),
    )
        .prop_map(move |(a, b, c)| {
            let mut p = TransportParameters {
                original_destination_connection_id: a.0,
                max_idle_timeout: a.1,
                stateless_reset_token: a.2,
                max_udp_payload_size: a.3,
                initial_max_data: a.4,
                initial_max_stream_data_bidi_local: a.5,
                initial_max_stream_data_bidi_remote: a.6,
                initial_max_stream_data_uni: a.7,
                initial_max_streams_bidi: b.0,
                initial_max_streams_uni: b.1,
                ack_delay_exponent: b.2,
                max_ack_delay: b.3,
                disable_active_migration: b.4,
                preferred_address: b.5,
                active_connection_id_limit: b.6,
                initial_source_connection_id: c.0,
                retry_source_connection_id: c.1,
                version_information: c.2,
                max_datagram_frame_size: c.3,
                grease_quic_bit: c.4,
            };
            if sender.is_client() {
                p.original_destination_connection_id = None;
                p.stateless_reset_token = None;
                p.preferred_address = None;
                p.retry_source_connection_id = None;
            } else if p.preferred_address.is_some()
                && p.initial_source_connection_id == Some(ConnectionId::EMPTY)
            {
                p.initial_source_connection_id = None;
            }
            p
        })
}

/// Hand-built parameter lists: understood, reserved and unknown identifiers
/// with arbitrary values, well-formed as (id, length, value) tuples.
fn any_param_list() -> impl Strategy<Value = Vec<u8>> {
    let id = prop_oneof![
        4 => 0u64..=0x11,
        1 => Just(0x20u64),
        1 => Just(0x2ab2u64),
        1 => (0..=TransportParameterId::MAX_RESERVED_INDEX).prop_map(|n| 31 * n + 27),
        1 => 0..=VarInt::MAX.into_inner(),
    ];
    let value = prop_oneof![
        any_varint().prop_map(|v| {
            let mut out = Vec::new();
            v.encode(&mut out);
            out
        }),
        vec(any::<u8>(), 0..64),
    ];
    vec((id, value), 0..12)
        .prop_map(|params| params.iter().flat_map(|(id, value)| param(*id, value)).collect())
}

proptest! {
    #[test]
    fn server_params_round_trip(params in any_params(Side::Server)) {
        let bytes = encode(&params);
        prop_assert_eq!(bytes.len(), params.encoded_len());
        prop_assert_eq!(TransportParameters::decode(Side::Server, &bytes), Ok(params));
    }

    #[test]
    fn client_params_round_trip(params in any_params(Side::Client)) {
        let bytes = encode(&params);
        prop_assert_eq!(bytes.len(), params.encoded_len());
        prop_assert_eq!(TransportParameters::decode(Side::Client, &bytes), Ok(params.clone()));
        // Nothing a client sends is refused by a client either.
        prop_assert_eq!(TransportParameters::decode(Side::Server, &bytes), Ok(params));
    }

    #[test]
    fn greased_params_round_trip(params in any_params(Side::Server), seed in any::<u64>()) {
        let mut bytes = Vec::new();
        params.encode_with_grease(&mut SeededRandom::from_u64(seed), &mut bytes);
        prop_assert!(bytes.len() > params.encoded_len());
        prop_assert!(bytes.len() <= params.encoded_len() + 8 + 1 + MAX_GREASE_LEN);
        prop_assert_eq!(TransportParameters::decode(Side::Server, &bytes), Ok(params));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        for sender in [Side::Client, Side::Server] {
            if let Err(e) = TransportParameters::decode(sender, &bytes) {
                prop_assert_eq!(e.code, TransportErrorCode::TRANSPORT_PARAMETER_ERROR);
            }
        }
    }

    #[test]
    fn arbitrary_parameter_lists_decode_consistently(bytes in any_param_list()) {
        for sender in [Side::Client, Side::Server] {
            match TransportParameters::decode(sender, &bytes) {
                // Whatever is accepted re-encodes to something that decodes the same.
                Ok(params) => {
                    let again = encode(&params);
                    prop_assert_eq!(TransportParameters::decode(sender, &again), Ok(params));
                }
                Err(e) => prop_assert_eq!(e.code, TransportErrorCode::TRANSPORT_PARAMETER_ERROR),
            }
        }
    }
}

/// The quic_transport_parameters extension of the ClientHello in RFC 9001
/// Appendix A.2 (a real client's parameters, as the RFC publishes them).
#[test]
fn decodes_rfc9001_client_hello_parameters() {
    let bytes = [
        0x04, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x05, 0x04, 0x80, 0x00, 0xff,
        0xff, 0x07, 0x04, 0x80, 0x00, 0xff, 0xff, 0x08, 0x01, 0x10, 0x01, 0x04, 0x80, 0x00, 0x75,
        0x30, 0x09, 0x01, 0x10, 0x0f, 0x08, 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08, 0x06,
        0x04, 0x80, 0x00, 0xff, 0xff,
    ];
    let p = TransportParameters::decode(Side::Client, &bytes).unwrap();
    assert_eq!(p.initial_max_data, VarInt::MAX);
    assert_eq!(p.initial_max_stream_data_bidi_local, VarInt::from_u32(0xffff));
    assert_eq!(p.initial_max_stream_data_bidi_remote, VarInt::from_u32(0xffff));
    assert_eq!(p.initial_max_stream_data_uni, VarInt::from_u32(0xffff));
    assert_eq!(p.initial_max_streams_bidi, VarInt::from_u32(16));
    assert_eq!(p.initial_max_streams_uni, VarInt::from_u32(16));
    assert_eq!(p.max_idle_timeout, Duration::from_millis(30_000));
    assert_eq!(
        p.initial_source_connection_id,
        ConnectionId::from_slice(&[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08])
    );
    assert_eq!(p.max_udp_payload_size, VarInt::from_u32(65527), "absent: the default");
    // Re-encoding gives a set that decodes the same (our order may differ).
    let mut out = Vec::new();
    p.encode(&mut out);
    assert_eq!(out.len(), bytes.len());
    assert_eq!(TransportParameters::decode(Side::Client, &out).unwrap(), p);
}
