//! The TLS handshake between two in-memory sessions: levels, keys,
//! transport parameters, ALPN, certificate failures, level violations and
//! seeded determinism.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, HandshakeKind, RootCertStore, ServerConfig, SignatureScheme};

use super::*;
use crate::cid::ConnectionId;
use crate::crypto::seeded::endpoint_provider;
use crate::crypto::tls_inputs::{
    RecordingTime, ReplaySigningKey, ReplayTime, TlsInput, TlsInputLog, recording_server_resolver,
    replay_server_resolver, signing_key,
};
use crate::crypto::{
    CryptoError, HeaderKey, PacketKey, open_payload, remove_header_protection, seal_packet,
};
use crate::testing::{self, SeededGroup, TestPki};
use crate::token::StatelessResetToken;
use crate::varint::VarInt;

const ALPN: &[u8] = b"hq-test";

/// One side of the in-memory handshake: its session, what it sent (with the
/// level each chunk went at), the keys it was handed, and its error.
struct Peer {
    tls: TlsSession,
    sent: Vec<(EncryptionLevel, Vec<u8>)>,
    delivered: usize,
    handshake_keys: Option<Keys>,
    one_rtt: Option<(Keys, Secrets)>,
    error: Option<TransportError>,
}

impl Peer {
    fn new(tls: TlsSession) -> Self {
        Self {
            tls,
            sent: Vec::new(),
            delivered: 0,
            handshake_keys: None,
            one_rtt: None,
            error: None,
        }
    }

    /// Drains the session's output the way a connection does.
    fn drain(&mut self) {
        loop {
            let level = self.tls.write_level();
            let mut buf = Vec::new();
            let change = self.tls.write_handshake(&mut buf);
            if !buf.is_empty() {
                self.sent.push((level, buf));
            }
            match change {
                Some(KeyChange::Handshake { keys }) => {
                    assert!(self.handshake_keys.is_none() && self.one_rtt.is_none());
                    self.handshake_keys = Some(keys);
                }
                Some(KeyChange::OneRtt { keys, secrets }) => {
                    assert!(self.handshake_keys.is_some() && self.one_rtt.is_none());
                    self.one_rtt = Some((keys, secrets));
                }
                None => break,
            }
        }
    }

    fn levels(&self) -> Vec<EncryptionLevel> {
        self.sent.iter().map(|(level, _)| *level).collect()
    }
}

/// Moves the unsent chunks of `from` into `to`, `split` bytes at a time.
fn deliver(from: &mut Peer, to: &mut Peer, split: usize) -> bool {
    let mut moved = false;
    while from.delivered < from.sent.len() && to.error.is_none() {
        let (level, data) = &from.sent[from.delivered];
        from.delivered += 1;
        moved = true;
        for chunk in data.chunks(split) {
            if let Err(e) = to.tls.read_handshake(*level, chunk) {
                to.error = Some(e);
                break;
            }
        }
        to.drain();
    }
    moved
}

struct Pair {
    client: Peer,
    server: Peer,
}

impl Pair {
    fn new(client: ClientConfig, server: ServerConfig) -> Self {
        Self::with_configs(Arc::new(client), Arc::new(server), TestPki::SERVER_NAME)
    }

    fn with_configs(client: Arc<ClientConfig>, server: Arc<ServerConfig>, name: &str) -> Self {
        let client = TlsSession::client(client, name, &client_params(), Version::V1).unwrap();
        let server = TlsSession::server(server, &server_params(), Version::V1).unwrap();
        let mut pair = Self { client: Peer::new(client), server: Peer::new(server) };
        pair.client.drain();
        pair
    }

    /// Runs the handshake until neither side has anything more to send.
    fn run(&mut self, split: usize) -> &mut Self {
        while deliver(&mut self.client, &mut self.server, split)
            | deliver(&mut self.server, &mut self.client, split)
        {}
        self
    }

    fn assert_complete(&self) {
        assert_eq!(self.client.error, None);
        assert_eq!(self.server.error, None);
        assert!(!self.client.tls.is_handshaking());
        assert!(!self.server.tls.is_handshaking());
    }
}

fn seeded_pair(seed: u64) -> Pair {
    let pki = TestPki::new(seed);
    Pair::new(
        testing::client_config(&pki, &[ALPN], seed),
        testing::server_config(&pki, &[ALPN], seed ^ 0x005e_57e5),
    )
}

fn client_params() -> TransportParameters {
    TransportParameters {
        initial_max_data: VarInt::from_u32(100_000),
        initial_max_streams_bidi: VarInt::from_u32(10),
        initial_source_connection_id: ConnectionId::from_slice(&[1, 2, 3, 4]),
        ..TransportParameters::default()
    }
}

fn server_params() -> TransportParameters {
    TransportParameters {
        initial_max_data: VarInt::from_u32(250_000),
        initial_max_streams_uni: VarInt::from_u32(3),
        original_destination_connection_id: ConnectionId::from_slice(&[9; 8]),
        initial_source_connection_id: ConnectionId::from_slice(&[5, 6, 7]),
        stateless_reset_token: Some(StatelessResetToken::new([0xab; 16])),
        ..TransportParameters::default()
    }
}

/// Seals a short-header packet with one side's keys and opens it with the
/// other's; returns the opened payload.
fn seal_and_open(
    seal_hp: &HeaderKey,
    seal_key: &PacketKey,
    open_hp: &HeaderKey,
    open_key: &PacketKey,
    pn: u64,
) -> Result<Vec<u8>, CryptoError> {
    let payload = b"an application payload long enough to sample";
    let mut packet = vec![0x41]; // short header, 2-byte packet number
    packet.extend_from_slice(&[7; 8]);
    packet.extend_from_slice(&(pn as u16).to_be_bytes());
    packet.extend_from_slice(payload);
    packet.extend_from_slice(&[0; 16]);
    seal_packet(seal_hp, seal_key, pn, &mut packet, 9)?;
    let sealed = packet.clone();
    let (pn_len, truncated) = remove_header_protection(open_hp, &mut packet, 9)?;
    assert_eq!((pn_len, u64::from(truncated)), (2, pn));
    let len = open_payload(open_key, pn, &mut packet, 9 + pn_len)?;
    assert_ne!(&sealed[11..11 + payload.len()], payload, "payload left in the clear");
    Ok(packet[11..11 + len].to_vec())
}

fn assert_keys_match(sender: &Keys, receiver: &Keys) {
    let opened = seal_and_open(
        &sender.local.header,
        &sender.local.packet,
        &receiver.remote.header,
        &receiver.remote.packet,
        258,
    )
    .unwrap();
    assert_eq!(opened, b"an application payload long enough to sample");
}

fn crypto_code(alert: u8) -> TransportErrorCode {
    TransportErrorCode::crypto(alert)
}

#[test]
fn handshake_reaches_one_rtt_with_matching_keys() {
    let mut pair = seeded_pair(1);
    pair.run(usize::MAX);
    pair.assert_complete();
    let (client, server) = (&pair.client, &pair.server);

    let (c_hs, s_hs) =
        (client.handshake_keys.as_ref().unwrap(), server.handshake_keys.as_ref().unwrap());
    assert_keys_match(c_hs, s_hs);
    assert_keys_match(s_hs, c_hs);
    let (c_1rtt, s_1rtt) =
        (&client.one_rtt.as_ref().unwrap().0, &server.one_rtt.as_ref().unwrap().0);
    assert_keys_match(c_1rtt, s_1rtt);
    assert_keys_match(s_1rtt, c_1rtt);
    // Keys of different levels do not open each other's packets.
    let err = seal_and_open(
        &c_1rtt.local.header,
        &c_1rtt.local.packet,
        &s_1rtt.remote.header,
        &s_hs.remote.packet,
        5,
    );
    assert_eq!(err, Err(CryptoError::DecryptFailed));

    // ClientHello, then Finished; ServerHello, then EncryptedExtensions to
    // Finished, then session tickets under 1-RTT keys.
    use EncryptionLevel::{Handshake, Initial, OneRtt};
    assert_eq!(client.levels(), [Initial, Handshake]);
    assert_eq!(server.levels(), [Initial, Handshake, OneRtt]);
    assert_eq!((client.tls.write_level(), server.tls.write_level()), (OneRtt, OneRtt));
    assert_eq!((client.tls.read_level(), server.tls.read_level()), (OneRtt, OneRtt));
    assert!(!client.tls.has_pending_output() && !server.tls.has_pending_output());

    assert_eq!(client.tls.alpn(), Some(ALPN));
    assert_eq!(server.tls.alpn(), Some(ALPN));
    let suite = client.tls.negotiated_cipher_suite();
    assert_eq!(suite, Some(CipherSuite::Aes256GcmSha384));
    assert_eq!(server.tls.negotiated_cipher_suite(), suite);
    assert_eq!(client.tls.handshake_kind(), Some(HandshakeKind::Full));
    assert_eq!(server.tls.server_name(), Some(TestPki::SERVER_NAME));
    assert_eq!(client.tls.server_name(), None);
    assert_eq!(client.tls.side(), Side::Client);
    assert_eq!(server.tls.side(), Side::Server);
    assert_eq!(
        client.tls.peer_certificates().map(<[_]>::to_vec),
        Some(TestPki::new(1).server_cert_chain())
    );
    assert_eq!(server.tls.peer_certificates(), None, "no client certificate was asked for");
    assert!(client.tls.zero_rtt_keys().is_none());
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-8.2
//= type=test
//# The quic_transport_parameters extension is carried in the ClientHello and the
//# EncryptedExtensions messages during the handshake.
#[test]
fn transport_parameters_are_exchanged_and_decoded() {
    let mut pair = seeded_pair(2);
    assert!(pair.server.tls.peer_transport_parameters().is_none());
    assert!(pair.client.tls.peer_transport_parameters().is_none());
    // The server has the client's after the ClientHello alone.
    deliver(&mut pair.client, &mut pair.server, usize::MAX);
    assert_eq!(pair.server.tls.peer_transport_parameters(), Some(Ok(client_params())));
    pair.run(usize::MAX);
    pair.assert_complete();
    assert_eq!(pair.client.tls.peer_transport_parameters(), Some(Ok(server_params())));
    assert_eq!(pair.server.tls.peer_transport_parameters(), Some(Ok(client_params())));
}

#[test]
fn server_only_parameter_from_a_client_is_a_transport_parameter_error() {
    let pki = TestPki::new(3);
    let client = Arc::new(testing::client_config(&pki, &[ALPN], 3));
    let server = Arc::new(testing::server_config(&pki, &[ALPN], 4));
    let mut params = client_params();
    params.stateless_reset_token = Some(StatelessResetToken::new([1; 16]));
    let mut client =
        Peer::new(TlsSession::client(client, "localhost", &params, Version::V1).unwrap());
    let mut server = Peer::new(TlsSession::server(server, &server_params(), Version::V1).unwrap());
    client.drain();
    deliver(&mut client, &mut server, usize::MAX);
    let err = server.tls.peer_transport_parameters().unwrap().unwrap_err();
    assert_eq!(err.code, TransportErrorCode::TRANSPORT_PARAMETER_ERROR);
}

#[test]
fn key_update_interoperates() {
    let mut pair = seeded_pair(5);
    pair.run(usize::MAX);
    pair.assert_complete();
    let (c_keys, mut c_secrets) = pair.client.one_rtt.take().unwrap();
    let (s_keys, mut s_secrets) = pair.server.one_rtt.take().unwrap();
    for phase in 1..=3u64 {
        let c_next = c_secrets.next_packet_keys();
        let s_next = s_secrets.next_packet_keys();
        //= https://www.rfc-editor.org/rfc/rfc9001#section-6.1
        //= type=test
        //# The header protection key is not updated.
        let opened = seal_and_open(
            &c_keys.local.header,
            &c_next.local,
            &s_keys.remote.header,
            &s_next.remote,
            phase,
        );
        assert!(opened.is_ok(), "client to server, phase {phase}");
        let opened = seal_and_open(
            &s_keys.local.header,
            &s_next.local,
            &c_keys.remote.header,
            &c_next.remote,
            phase,
        );
        assert!(opened.is_ok(), "server to client, phase {phase}");
        // The new phase does not open the old phase's packets.
        let stale = seal_and_open(
            &c_keys.local.header,
            &c_keys.local.packet,
            &s_keys.remote.header,
            &s_next.remote,
            phase,
        );
        assert_eq!(stale, Err(CryptoError::DecryptFailed));
    }
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-8.1
//= type=test
//# When using ALPN, endpoints MUST immediately close a connection (see {{Section
//# 10.2 of QUIC-TRANSPORT}}) with a no_application_protocol TLS alert (QUIC error
//# code 0x0178; see {{tls-errors}}) if an application protocol is not negotiated.
#[test]
fn alpn_mismatch_fails_with_no_application_protocol() {
    let pki = TestPki::new(6);
    let mut pair = Pair::new(
        testing::client_config(&pki, &[b"h3"], 6),
        testing::server_config(&pki, &[b"hq-interop"], 7),
    );
    pair.run(usize::MAX);
    let err = pair.server.error.clone().unwrap();
    assert_eq!(err.code.to_varint().into_inner(), 0x178);
    assert_eq!(err.code.tls_alert(), Some(120));
    assert!(matches!(pair.server.tls.tls_error(), Some(rustls::Error::NoApplicationProtocol)));
    // The session stays failed and sends nothing more.
    assert_eq!(pair.server.tls.read_handshake(EncryptionLevel::Initial, b"more"), Err(err));
    assert_eq!(pair.server.levels(), []);
    assert!(pair.server.tls.write_handshake(&mut Vec::new()).is_none());
}

#[test]
fn alpn_picks_the_servers_preference_among_shared_protocols() {
    let pki = TestPki::new(8);
    let mut pair = Pair::new(
        testing::client_config(&pki, &[b"h3", b"hq-interop"], 8),
        testing::server_config(&pki, &[b"hq-interop", b"h3"], 9),
    );
    pair.run(usize::MAX);
    pair.assert_complete();
    assert_eq!(pair.client.tls.alpn(), Some(&b"hq-interop"[..]));
}

#[test]
fn empty_alpn_or_bad_inputs_are_refused() {
    let pki = TestPki::new(10);
    let mut client = testing::client_config(&pki, &[ALPN], 10);
    client.alpn_protocols.clear();
    let err = TlsSession::client(Arc::new(client), "localhost", &client_params(), Version::V1);
    assert!(matches!(err, Err(TlsConfigError::NoAlpnProtocols)));

    let mut server = testing::server_config(&pki, &[ALPN], 11);
    server.alpn_protocols = vec![Vec::new()];
    let err = TlsSession::server(Arc::new(server), &server_params(), Version::V1);
    assert!(matches!(err, Err(TlsConfigError::NoAlpnProtocols)));

    let client = Arc::new(testing::client_config(&pki, &[ALPN], 10));
    let err =
        TlsSession::client(client.clone(), "localhost", &client_params(), Version(0x1a2a_3a4a));
    assert!(matches!(err, Err(TlsConfigError::UnsupportedVersion)));
    let err = TlsSession::client(client, "not a name", &client_params(), Version::V1);
    assert!(matches!(err, Err(TlsConfigError::InvalidServerName)));

    // rustls rejects early data sizes QUIC does not allow (RFC 9001 §4.6.1).
    let mut server = testing::server_config(&pki, &[ALPN], 11);
    server.max_early_data_size = 1000;
    let err = TlsSession::server(Arc::new(server), &server_params(), Version::V1);
    assert!(matches!(err, Err(TlsConfigError::Tls(_))));
}

#[test]
fn quic_v2_handshake_completes() {
    let pki = TestPki::new(12);
    let client = Arc::new(testing::client_config(&pki, &[ALPN], 12));
    let server = Arc::new(testing::server_config(&pki, &[ALPN], 13));
    let mut pair = Pair {
        client: Peer::new(
            TlsSession::client(client, "localhost", &client_params(), Version::V2).unwrap(),
        ),
        server: Peer::new(TlsSession::server(server, &server_params(), Version::V2).unwrap()),
    };
    pair.client.drain();
    pair.run(usize::MAX);
    pair.assert_complete();
    assert_keys_match(
        &pair.client.one_rtt.as_ref().unwrap().0,
        &pair.server.one_rtt.as_ref().unwrap().0,
    );
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.4
//= type=test
//# A client MUST authenticate the identity of the server.
#[test]
fn wrong_server_name_fails_with_bad_certificate() {
    let pki = TestPki::new(14);
    let mut pair = Pair::with_configs(
        Arc::new(testing::client_config(&pki, &[ALPN], 14)),
        Arc::new(testing::server_config(&pki, &[ALPN], 15)),
        "example.com",
    );
    pair.run(usize::MAX);
    let err = pair.client.error.clone().unwrap();
    assert_eq!(err.code, crypto_code(42), "{err}"); // bad_certificate
    assert!(matches!(pair.client.tls.tls_error(), Some(rustls::Error::InvalidCertificate(_))));
    assert!(pair.client.one_rtt.is_none());
    assert_eq!(pair.client.levels(), [EncryptionLevel::Initial], "no Finished after a failure");
}

#[test]
fn untrusted_certificate_fails_with_unknown_ca() {
    let trusted = TestPki::new(16);
    let other = TestPki::new(17);
    let mut pair = Pair::new(
        testing::client_config(&trusted, &[ALPN], 16),
        testing::server_config(&other, &[ALPN], 18),
    );
    pair.run(usize::MAX);
    let err = pair.client.error.clone().unwrap();
    assert_eq!(err.code, crypto_code(48), "{err}"); // unknown_ca
    assert_eq!(err.code.to_varint().into_inner(), 0x130);
}

#[test]
fn client_certificates_are_verified_when_required() {
    let pki = TestPki::new(19);
    let server =
        |seed| testing::server_config_with(&pki, &[ALPN], testing::seeded_provider(seed), true);
    let mut pair = Pair::new(
        testing::client_config_with(&pki, &[ALPN], testing::seeded_provider(19), true),
        server(20),
    );
    pair.run(usize::MAX);
    pair.assert_complete();
    assert_eq!(
        pair.server.tls.peer_certificates().map(<[_]>::to_vec),
        Some(pki.client_cert_chain())
    );

    // A client without a certificate is turned away with certificate_required.
    let mut pair = Pair::new(testing::client_config(&pki, &[ALPN], 21), server(22));
    pair.run(usize::MAX);
    let err = pair.server.error.clone().unwrap();
    assert_eq!(err.code, crypto_code(116), "{err}");
}

#[test]
fn hello_retry_request_when_the_first_key_share_is_unsupported() {
    let pki = TestPki::new(23);
    let client_provider = testing::provider_with_random(
        Box::new(crate::SeededRandom::from_u64(23)),
        &[SeededGroup::Secp256r1, SeededGroup::X25519],
    );
    let server_provider = testing::provider_with_random(
        Box::new(crate::SeededRandom::from_u64(24)),
        &[SeededGroup::X25519],
    );
    let mut pair = Pair::new(
        testing::client_config_with(&pki, &[ALPN], client_provider, false),
        testing::server_config_with(&pki, &[ALPN], server_provider, false),
    );
    pair.run(usize::MAX);
    pair.assert_complete();
    assert_eq!(pair.client.tls.handshake_kind(), Some(HandshakeKind::FullWithHelloRetryRequest));
    assert_eq!(pair.server.tls.handshake_kind(), Some(HandshakeKind::FullWithHelloRetryRequest));
    use EncryptionLevel::{Handshake, Initial, OneRtt};
    // ClientHello twice at Initial; HelloRetryRequest and ServerHello at Initial.
    assert_eq!(pair.client.levels(), [Initial, Initial, Handshake]);
    assert_eq!(pair.server.levels(), [Initial, Initial, Handshake, OneRtt]);
    assert_keys_match(
        &pair.client.one_rtt.as_ref().unwrap().0,
        &pair.server.one_rtt.as_ref().unwrap().0,
    );
}

#[test]
fn p256_and_p384_key_exchange_complete() {
    for group in [SeededGroup::Secp256r1, SeededGroup::Secp384r1] {
        let pki = TestPki::new(25);
        let provider = |seed| {
            testing::provider_with_random(Box::new(crate::SeededRandom::from_u64(seed)), &[group])
        };
        let mut pair = Pair::new(
            testing::client_config_with(&pki, &[ALPN], provider(25), false),
            testing::server_config_with(&pki, &[ALPN], provider(26), false),
        );
        pair.run(usize::MAX);
        pair.assert_complete();
        assert_eq!(pair.client.tls.handshake_kind(), Some(HandshakeKind::Full), "{group:?}");
    }
}

#[test]
fn handshake_fed_one_byte_at_a_time_completes() {
    let mut pair = seeded_pair(27);
    pair.run(1);
    pair.assert_complete();
    assert_keys_match(
        &pair.client.one_rtt.as_ref().unwrap().0,
        &pair.server.one_rtt.as_ref().unwrap().0,
    );
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.3
//= type=test
//# If the packet is from a new encryption level, it is saved for later processing
//# by TLS.  Once TLS moves to receiving from this encryption level, saved data
//# can be provided to TLS.
#[test]
fn data_ahead_of_the_read_level_waits_for_it() {
    let mut pair = seeded_pair(28);
    deliver(&mut pair.client, &mut pair.server, usize::MAX);
    // The server's Handshake flight overtakes its ServerHello.
    let server = &pair.server;
    let (initial, handshake) = (&server.sent[0], &server.sent[1]);
    assert_eq!((initial.0, handshake.0), (EncryptionLevel::Initial, EncryptionLevel::Handshake));
    let client = &mut pair.client;
    client.tls.read_handshake(EncryptionLevel::Handshake, &handshake.1).unwrap();
    client.drain();
    assert!(client.handshake_keys.is_none(), "nothing happens before the ServerHello");
    assert_eq!(client.tls.read_level(), EncryptionLevel::Initial);
    client.tls.read_handshake(EncryptionLevel::Initial, &initial.1).unwrap();
    client.drain();
    assert!(client.handshake_keys.is_some() && client.one_rtt.is_some());
    pair.server.delivered = 2;
    pair.run(usize::MAX);
    pair.assert_complete();
}

#[test]
fn too_much_data_ahead_of_the_read_level_is_refused() {
    let mut pair = seeded_pair(29);
    let big = vec![0u8; MAX_DEFERRED_CRYPTO / 2 + 1];
    pair.server.tls.read_handshake(EncryptionLevel::OneRtt, &big).unwrap();
    let err = pair.server.tls.read_handshake(EncryptionLevel::OneRtt, &big).unwrap_err();
    assert_eq!(err.code, TransportErrorCode::CRYPTO_BUFFER_EXCEEDED);
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-8.3
//= type=test
//# A server MUST treat receipt of a CRYPTO frame in a 0-RTT packet as a
//# connection error of type PROTOCOL_VIOLATION.
#[test]
fn crypto_data_at_zero_rtt_is_a_protocol_violation() {
    let mut pair = seeded_pair(30);
    let err = pair.server.tls.read_handshake(EncryptionLevel::ZeroRtt, b"\x01").unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION);
    // The session stays failed, whatever comes next.
    assert_eq!(pair.server.tls.read_handshake(EncryptionLevel::Initial, b""), Err(err));
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.3
//= type=test
//# If the packet is from a previously installed encryption level, it MUST NOT
//# contain data that extends past the end of previously received data in that
//# flow. Implementations MUST treat any violations of this requirement as a
//# connection error of type PROTOCOL_VIOLATION.
#[test]
fn new_data_at_a_finished_level_is_a_protocol_violation() {
    let mut pair = seeded_pair(31);
    pair.run(usize::MAX);
    pair.assert_complete();
    let err = pair.server.tls.read_handshake(EncryptionLevel::Initial, b"\x01").unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION);
    let err = pair.client.tls.read_handshake(EncryptionLevel::Handshake, b"\x14").unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION);
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.3
//= type=test
//# When TLS provides keys for a higher encryption level,
//# if there is data from a previous encryption level that TLS has not consumed,
//# this MUST be treated as a connection error of type PROTOCOL_VIOLATION.
#[test]
fn data_after_a_key_change_at_the_old_level_is_a_protocol_violation() {
    let mut pair = seeded_pair(32);
    deliver(&mut pair.client, &mut pair.server, usize::MAX);
    // The ServerHello with the start of the next message glued on, all as
    // Initial data.
    let mut glued = pair.server.sent[0].1.clone();
    glued.extend_from_slice(&pair.server.sent[1].1[..10]);
    let err = pair.client.tls.read_handshake(EncryptionLevel::Initial, &glued).unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION, "{err}");
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-4.4
//= type=test
//# More specifically,
//# servers MUST NOT send post-handshake TLS CertificateRequest messages, and
//# clients MUST treat receipt of such messages as a connection error of type
//# PROTOCOL_VIOLATION.
#[test]
fn post_handshake_certificate_request_is_a_protocol_violation() {
    let mut pair = seeded_pair(33);
    pair.run(usize::MAX);
    pair.assert_complete();
    // CertificateRequest: empty context, signature_algorithms = [ed25519].
    let request = [0x0d, 0, 0, 0x0b, 0, 0, 0x08, 0, 0x0d, 0, 0x04, 0, 0x02, 0x08, 0x07];
    let err = pair.client.tls.read_handshake(EncryptionLevel::OneRtt, &request).unwrap_err();
    assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION, "{err}");
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-8.4
//= type=test
//# A
//# server SHOULD treat the receipt of a TLS ClientHello with a non-empty
//# legacy_session_id field as a connection error of type PROTOCOL_VIOLATION.
#[test]
fn compatibility_mode_client_hello_is_a_protocol_violation() {
    for split in [usize::MAX, 1] {
        let mut pair = seeded_pair(37);
        let hello = &pair.client.sent[0].1;
        //= https://www.rfc-editor.org/rfc/rfc9001#section-8.4
        //= type=test
        //# A client MUST NOT request the use of the TLS 1.3 compatibility mode.
        assert_eq!(hello[SESSION_ID_LEN_OFFSET], 0, "rustls sends an empty session ID");
        // The same ClientHello with a 32-byte legacy_session_id.
        let mut compat = hello[..SESSION_ID_LEN_OFFSET].to_vec();
        compat.push(32);
        compat.extend_from_slice(&[0x33; 32]);
        compat.extend_from_slice(&hello[SESSION_ID_LEN_OFFSET + 1..]);
        let body_len = (compat.len() - 4) as u32;
        compat[1..4].copy_from_slice(&body_len.to_be_bytes()[1..]);
        let err = compat
            .chunks(split)
            .find_map(|chunk| pair.server.tls.read_handshake(EncryptionLevel::Initial, chunk).err())
            .expect("refused");
        assert_eq!(err.code, TransportErrorCode::PROTOCOL_VIOLATION, "{err}");
        assert_eq!(err.reason, "ClientHello requests TLS middlebox compatibility mode");
    }
}

//= https://www.rfc-editor.org/rfc/rfc9001#section-6
//= type=test
//# Endpoints MUST treat the receipt of a TLS KeyUpdate
//# message as a connection error of type 0x010a, equivalent to a
//# fatal TLS alert of unexpected_message; see {{tls-errors}}.
#[test]
fn tls_key_update_is_an_unexpected_message() {
    let mut pair = seeded_pair(38);
    pair.run(usize::MAX);
    pair.assert_complete();
    let key_update = [0x18, 0, 0, 1, 0];
    let err = pair.client.tls.read_handshake(EncryptionLevel::OneRtt, &key_update).unwrap_err();
    assert_eq!(err.code.to_varint().into_inner(), 0x10a, "{err}");
}

#[test]
fn garbage_from_the_peer_is_a_crypto_error_not_a_panic() {
    let mut pair = seeded_pair(34);
    // A ServerHello-typed message whose body is nonsense.
    let err = pair
        .client
        .tls
        .read_handshake(EncryptionLevel::Initial, &[2, 0, 0, 4, 1, 2, 3, 4])
        .unwrap_err();
    let alert = err.code.tls_alert().expect("a TLS alert");
    assert_eq!(alert, 50, "{err}"); // decode_error
}

#[test]
fn resumption_with_zero_rtt_keys() {
    let pki = TestPki::new(35);
    let mut client = testing::client_config(&pki, &[ALPN], 35);
    client.enable_early_data = true;
    let mut server = testing::server_config(&pki, &[ALPN], 36);
    server.max_early_data_size = u32::MAX;
    let (client, server) = (Arc::new(client), Arc::new(server));

    let mut first = Pair::with_configs(client.clone(), server.clone(), TestPki::SERVER_NAME);
    first.run(usize::MAX);
    first.assert_complete();
    assert!(first.client.tls.zero_rtt_keys().is_none());

    // The second connection resumes with the ticket the first received.
    let mut second = Pair::with_configs(client, server, TestPki::SERVER_NAME);
    let client_0rtt = second.client.tls.zero_rtt_keys().expect("0-RTT keys after the ClientHello");
    deliver(&mut second.client, &mut second.server, usize::MAX);
    let server_0rtt = second.server.tls.zero_rtt_keys().expect("server accepts 0-RTT");
    let opened = seal_and_open(
        &client_0rtt.header,
        &client_0rtt.packet,
        &server_0rtt.header,
        &server_0rtt.packet,
        0,
    );
    assert!(opened.is_ok());
    second.run(usize::MAX);
    second.assert_complete();
    assert_eq!(second.client.tls.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(second.client.tls.is_early_data_accepted());
    assert!(second.client.tls.peer_certificates().is_some(), "resumption keeps the server's chain");
}

/// Everything both sides sent, and a packet sealed under each side's 1-RTT
/// keys: equal transcripts mean equal TLS output and equal traffic secrets.
fn transcript(seed: u64) -> Vec<(Side, EncryptionLevel, Vec<u8>)> {
    let mut pair = seeded_pair(seed);
    pair.run(usize::MAX);
    pair.assert_complete();
    let mut out = Vec::new();
    for peer in [&pair.client, &pair.server] {
        let side = peer.tls.side();
        out.extend(peer.sent.iter().map(|(level, data)| (side, *level, data.clone())));
        let keys = &peer.one_rtt.as_ref().unwrap().0;
        let mut packet = vec![0x41; 64];
        seal_packet(&keys.local.header, &keys.local.packet, 1, &mut packet, 9).unwrap();
        out.push((side, EncryptionLevel::OneRtt, packet));
    }
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = transcript(77);
    let b = transcript(77);
    assert_eq!(a, b);
    let c = transcript(78);
    assert_eq!(a.len(), c.len());
    // Every message differs: randoms, key shares and certificates all move.
    for (x, y) in a.iter().zip(&c) {
        assert_eq!((x.0, x.1), (y.0, y.1));
        assert_ne!(x.2, y.2);
    }
}

#[test]
fn session_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<TlsSession>();
    assert_send::<KeyChange>();
}

/// A CA and an ECDSA P-256 "localhost" certificate: ECDSA signatures draw a
/// fresh nonce, so this server's CertificateVerify differs run to run unless
/// the trace supplies it. The keys come from the OS generator (through
/// rcgen); each test builds the PKI once and reuses it across its runs.
struct EcdsaPki {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl EcdsaPki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec![TestPki::SERVER_NAME.to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key))
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        Self {
            roots: Arc::new(roots),
            chain: vec![leaf.der().clone()],
            key: PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        }
    }
}

/// How the server of [`ecdsa_run`] signs and reads its clock.
enum ServerInputs {
    /// Signs with the key, reads a fixed clock, records both.
    Record(TlsInputLog),
    /// Answers from recorded inputs.
    Replay(Arc<ReplaySigningKey>, Arc<ReplayTime>),
    /// Signs with the key, reads a fixed clock, records nothing.
    Plain,
}

/// Seeded endpoints (the same seeds every time) and the ECDSA server.
fn ecdsa_pair(pki: &EcdsaPki, inputs: ServerInputs) -> Pair {
    let client_provider = Arc::new(endpoint_provider(&[1; 32]));
    let server_provider = Arc::new(endpoint_provider(&[2; 32]));
    let fixed: Arc<dyn TimeProvider> = Arc::new(testing::FixedTime::DEFAULT);
    let server_time: Arc<dyn TimeProvider> = match &inputs {
        ServerInputs::Record(log) => Arc::new(RecordingTime::new(fixed.clone(), log.clone())),
        ServerInputs::Replay(_, time) => time.clone(),
        ServerInputs::Plain => fixed.clone(),
    };
    let client =
        config::client_config(client_provider, fixed, pki.roots.clone(), None, vec![ALPN.to_vec()])
            .unwrap();
    let mut server = config::server_config(
        server_provider.clone(),
        server_time,
        pki.chain.clone(),
        pki.key.clone_key(),
        None,
        vec![ALPN.to_vec()],
    )
    .unwrap();
    let key = || signing_key(&server_provider, pki.key.clone_key()).unwrap();
    match inputs {
        ServerInputs::Record(log) => {
            server.cert_resolver = recording_server_resolver(pki.chain.clone(), key(), log);
        }
        ServerInputs::Replay(replay, _) => {
            server.cert_resolver = replay_server_resolver(pki.chain.clone(), replay);
        }
        ServerInputs::Plain => {}
    }
    Pair::new(client, server)
}

/// A completed [`ecdsa_pair`] handshake: everything both sides sent,
/// client first.
fn ecdsa_run(pki: &EcdsaPki, inputs: ServerInputs) -> Vec<(Side, EncryptionLevel, Vec<u8>)> {
    let mut pair = ecdsa_pair(pki, inputs);
    pair.run(usize::MAX);
    pair.assert_complete();
    [&pair.client, &pair.server]
        .into_iter()
        .flat_map(|peer| {
            let side = peer.tls.side();
            peer.sent.iter().map(move |(level, data)| (side, *level, data.clone()))
        })
        .collect()
}

#[test]
fn recorded_ecdsa_signature_and_clock_replay_the_handshake_byte_for_byte() {
    let pki = EcdsaPki::new();
    let log = TlsInputLog::new();
    let recorded_run = ecdsa_run(&pki, ServerInputs::Record(log.clone()));
    let inputs = log.take();
    assert!(!log.overflowed());

    // Exactly one signature, the server's CertificateVerify, and it is the
    // one on the wire.
    let signatures: Vec<_> =
        inputs.iter().filter(|i| matches!(i, TlsInput::Signature { .. })).collect();
    assert_eq!(signatures.len(), 1, "{inputs:?}");
    let TlsInput::Signature { scheme, signature, .. } = signatures[0] else { unreachable!() };
    assert_eq!(*scheme, u16::from(SignatureScheme::ECDSA_NISTP256_SHA256));
    let server_handshake: Vec<u8> = recorded_run
        .iter()
        .filter(|(side, level, _)| *side == Side::Server && *level == EncryptionLevel::Handshake)
        .flat_map(|(_, _, data)| data.iter().copied())
        .collect();
    assert!(
        server_handshake.windows(signature.len()).any(|w| w == signature.as_slice()),
        "the recorded signature is not in the server's Handshake flight"
    );
    // Every clock read of the server was recorded, and it read the clock.
    let times: Vec<_> = inputs
        .iter()
        .filter_map(|i| match i {
            TlsInput::Time { unix_secs } => Some(*unix_secs),
            TlsInput::Signature { .. } => None,
        })
        .collect();
    assert!(!times.is_empty());
    assert!(times.iter().all(|&t| t == testing::FixedTime::DEFAULT.0.as_secs()), "{times:?}");

    // Replayed: same seeds, recorded inputs, the same bytes on both sides.
    let replay_key = Arc::new(ReplaySigningKey::from_inputs(&inputs));
    let replay_time = Arc::new(ReplayTime::from_inputs(&inputs));
    let replayed_run =
        ecdsa_run(&pki, ServerInputs::Replay(replay_key.clone(), replay_time.clone()));
    assert_eq!(replayed_run, recorded_run);
    assert_eq!(replay_key.remaining(), 0);
    assert_eq!(replay_time.remaining(), 0);

    // Without the recorded signature the same seeds give other bytes: the
    // signature is a real input, not something the seed already fixes.
    let fresh_run = ecdsa_run(&pki, ServerInputs::Plain);
    assert_eq!(fresh_run.len(), recorded_run.len());
    assert_ne!(fresh_run, recorded_run);
    // The hellos, drawn from the seeds alone, still match.
    assert_eq!(fresh_run[0], recorded_run[0]);
}

#[test]
fn replay_with_a_signature_for_another_transcript_fails_the_handshake() {
    let pki = EcdsaPki::new();
    let log = TlsInputLog::new();
    ecdsa_run(&pki, ServerInputs::Record(log.clone()));
    let inputs = log.take();
    let diverged: Vec<_> = inputs
        .iter()
        .filter_map(|i| match i {
            TlsInput::Signature { scheme, signature, .. } => {
                Some((*scheme, [0u8; 32], signature.clone()))
            }
            TlsInput::Time { .. } => None,
        })
        .collect();
    let replay_key = Arc::new(ReplaySigningKey::new(diverged));
    let replay_time = Arc::new(ReplayTime::from_inputs(&inputs));
    let mut pair = ecdsa_pair(&pki, ServerInputs::Replay(replay_key, replay_time));
    pair.run(usize::MAX);
    assert!(pair.server.error.is_some());
    let tls_error = pair.server.tls.tls_error().map(ToString::to_string).unwrap_or_default();
    assert!(tls_error.contains("replay:"), "{tls_error}");
}
