//! The TLS 1.3 handshake as QUIC carries it (RFC 9001 §4, §8.1-§8.4): a
//! rustls QUIC session behind an interface that speaks encryption levels,
//! this crate's keys and transport errors.
//!
//! The connection feeds the in-order bytes of each level's CRYPTO stream to
//! [`TlsSession::read_handshake`], then drains [`TlsSession::write_handshake`]
//! and installs the keys it hands back:
//!
//! ```text
//! loop {
//!     let level = tls.write_level();          // level of the bytes below
//!     let change = tls.write_handshake(&mut buf);
//!     queue `buf` as CRYPTO data at `level`;
//!     match change { Some(keys) => install(keys), None => break }
//! }
//! ```
//!
//! The peer's transport parameters (RFC 9000 §7.4, RFC 9001 §8.2) and the
//! negotiated application protocol (RFC 9001 §8.1) come out of the session
//! too. Default rustls configurations for QUIC are built in [`config`].

pub mod config;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::quic as rq;
use rustls::{AlertDescription, HandshakeKind, HandshakeType, PeerMisbehaved, ProtocolVersion};

use super::keys::{CipherSuite, DirectionalKeys, Keys, Secrets, rustls_version};
use crate::error::{TransportError, TransportErrorCode};
use crate::space::EncryptionLevel;
use crate::stream_id::Side;
use crate::transport_params::TransportParameters;
use crate::version::Version;

pub use config::TlsConfigError;

/// Bytes of CRYPTO data this session holds for an encryption level TLS does
/// not read yet. TLS 1.3 never legitimately sends ahead of the reader's level
/// (the keys to decrypt such data come from the messages that precede it), so
/// the bound only has to be generous enough for reordering, while stopping a
/// peer from parking unbounded data here. RFC 9000 §7.5 asks for at least
/// 4096 bytes of CRYPTO buffering.
const MAX_DEFERRED_CRYPTO: usize = 16 * 1024;

/// Offset of the legacy_session_id length in a ClientHello message: after
/// the handshake header (type, 3-byte length), legacy_version and random.
const SESSION_ID_LEN_OFFSET: usize = 1 + 3 + 2 + 32;

/// New keys the handshake produced, to install before sending or reading
/// the bytes that follow them (RFC 9001 §4.1.4).
#[non_exhaustive]
pub enum KeyChange {
    /// Keys for Handshake packets, both directions.
    Handshake {
        /// Header and packet keys for the Handshake level.
        keys: Keys,
    },
    /// Keys for 1-RTT packets, both directions, and the secrets every later
    /// key phase derives from (RFC 9001 §6).
    OneRtt {
        /// Header and packet keys for key phase 0.
        keys: Keys,
        /// The secrets for key phase 1 onwards: call
        /// [`Secrets::next_packet_keys`] once per key update.
        secrets: Secrets,
    },
}

impl KeyChange {
    /// The encryption level these keys protect.
    pub fn level(&self) -> EncryptionLevel {
        match self {
            Self::Handshake { .. } => EncryptionLevel::Handshake,
            Self::OneRtt { .. } => EncryptionLevel::OneRtt,
        }
    }

    fn from_rustls(change: rq::KeyChange) -> Self {
        match change {
            rq::KeyChange::Handshake { keys } => Self::Handshake { keys: Keys::from_rustls(keys) },
            rq::KeyChange::OneRtt { keys, next } => {
                Self::OneRtt { keys: Keys::from_rustls(keys), secrets: Secrets::from_rustls(next) }
            }
        }
    }
}

impl fmt::Debug for KeyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyChange({:?})", self.level())
    }
}

/// Output rustls produced that `write_handshake` has not handed out yet, in
/// the order it was produced: bytes belong to the level in force when they
/// were produced, so a key change splits them.
enum Pending {
    Data(Vec<u8>),
    Keys(Box<KeyChange>),
}

/// One endpoint's side of the TLS 1.3 handshake of a QUIC connection.
///
/// Create it with [`TlsSession::client`] or [`TlsSession::server`]; the
/// client's ClientHello is ready to write at once. After a TLS or level
/// error every later call returns the same error: the connection closes.
pub struct TlsSession {
    conn: rq::Connection,
    side: Side,
    pending: VecDeque<Pending>,
    /// The level of the bytes at the front of `pending`.
    write_level: EncryptionLevel,
    /// The level TLS reads handshake bytes from (RFC 9001 §4.1.3).
    read_level: EncryptionLevel,
    /// Data received ahead of `read_level`: [Handshake, 1-RTT].
    deferred: [Vec<u8>; 2],
    /// Bytes of Initial CRYPTO data read so far (the server checks the
    /// ClientHello's legacy_session_id as it goes past).
    initial_read: usize,
    /// Set once the handshake-completion checks ran.
    complete_checked: bool,
    error: Option<TransportError>,
    tls_error: Option<rustls::Error>,
}

impl TlsSession {
    /// Starts the client side of a handshake with the server `server_name`
    /// (a DNS name or an IP address, checked against the server's
    /// certificate), sending `params` in the quic_transport_parameters
    /// extension. The ClientHello is then ready for [`Self::write_handshake`]
    /// at the Initial level.
    ///
    /// `config` must list at least one ALPN protocol and support TLS 1.3
    /// with a QUIC-capable cipher suite; [`config::client_config`] builds
    /// one that does.
    pub fn client(
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
        params: &TransportParameters,
        version: Version,
    ) -> Result<Self, TlsConfigError> {
        check_alpn(&config.alpn_protocols)?;
        let version = rustls_version(version).map_err(|_| TlsConfigError::UnsupportedVersion)?;
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsConfigError::InvalidServerName)?;
        let conn = rq::ClientConnection::new(config, version, name, encode(params))
            .map_err(TlsConfigError::Tls)?;
        Ok(Self::new(conn.into(), Side::Client))
    }

    /// Starts the server side of a handshake, to send `params` in its
    /// EncryptedExtensions. Feed it the client's Initial CRYPTO data.
    ///
    /// `config` must list at least one ALPN protocol, support TLS 1.3 with a
    /// QUIC-capable cipher suite, and set `max_early_data_size` to 0
    /// (0-RTT off) or `u32::MAX` (RFC 9001 §4.6.1); [`config::server_config`]
    /// builds one that does.
    pub fn server(
        config: Arc<rustls::ServerConfig>,
        params: &TransportParameters,
        version: Version,
    ) -> Result<Self, TlsConfigError> {
        check_alpn(&config.alpn_protocols)?;
        let version = rustls_version(version).map_err(|_| TlsConfigError::UnsupportedVersion)?;
        let conn = rq::ServerConnection::new(config, version, encode(params))
            .map_err(TlsConfigError::Tls)?;
        Ok(Self::new(conn.into(), Side::Server))
    }

    fn new(conn: rq::Connection, side: Side) -> Self {
        let mut session = Self {
            conn,
            side,
            pending: VecDeque::new(),
            write_level: EncryptionLevel::Initial,
            read_level: EncryptionLevel::Initial,
            deferred: [Vec::new(), Vec::new()],
            initial_read: 0,
            complete_checked: false,
            error: None,
            tls_error: None,
        };
        // The client's ClientHello is produced at construction.
        session.collect_output();
        session
    }

    /// Which side of the handshake this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Hands TLS the next in-order bytes of the CRYPTO stream at `level`.
    ///
    /// Call with each run of new contiguous data the connection's CRYPTO
    /// reassembler releases, then drain [`Self::write_handshake`]. Data for
    /// a level TLS does not read yet is held until it does (RFC 9001 §4.1.3).
    ///
    /// Errors are connection errors: TLS alerts become CRYPTO_ERROR
    /// (0x0100 + alert, RFC 9001 §4.8); CRYPTO data at 0-RTT or beyond the
    /// end of a finished level is a PROTOCOL_VIOLATION. After an error the
    /// session is dead and repeats the error.
    pub fn read_handshake(
        &mut self,
        level: EncryptionLevel,
        data: &[u8],
    ) -> Result<(), TransportError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if data.is_empty() {
            return Ok(());
        }
        if level == EncryptionLevel::ZeroRtt {
            //= https://www.rfc-editor.org/rfc/rfc9001#section-8.3
            //# A server MUST treat receipt of a CRYPTO frame in a 0-RTT packet as a
            //# connection error of type PROTOCOL_VIOLATION.
            // A client never accepts 0-RTT packets at all, so the same holds there.
            return Err(
                self.fail(TransportError::protocol_violation("CRYPTO frame in a 0-RTT packet"))
            );
        }
        if level < self.read_level {
            //= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.3
            //# If the packet is from a previously installed encryption level, it MUST NOT
            //# contain data that extends past the end of previously received data in that
            //# flow. Implementations MUST treat any violations of this requirement as a
            //# connection error of type PROTOCOL_VIOLATION.
            // The reassembler only releases data past what it released before,
            // so any data here extends the flow.
            return Err(self.fail(TransportError::protocol_violation(
                "CRYPTO data beyond the end of a finished encryption level",
            )));
        }
        if level > self.read_level {
            //= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.3
            //# If the packet is from a new encryption level, it is saved for later processing
            //# by TLS.  Once TLS moves to receiving from this encryption level, saved data
            //# can be provided to TLS.
            let held = &mut self.deferred[deferred_index(level)];
            if held.len() + data.len() > MAX_DEFERRED_CRYPTO {
                return Err(self.fail(TransportError::crypto_buffer_exceeded(
                    "too much CRYPTO data ahead of the TLS read level",
                )));
            }
            held.extend_from_slice(data);
            return Ok(());
        }

        if level == EncryptionLevel::Initial {
            self.check_client_hello(data)?;
        }

        let mut input = std::borrow::Cow::Borrowed(data);
        loop {
            if let Err(e) = self.conn.read_hs(&input) {
                return Err(self.fail_tls(e));
            }
            self.collect_output();
            self.check_handshake_complete()?;
            // A read that moved TLS to the next level releases what was
            // saved for it.
            let next = match self.read_level {
                EncryptionLevel::Initial | EncryptionLevel::ZeroRtt => break,
                level => std::mem::take(&mut self.deferred[deferred_index(level)]),
            };
            if next.is_empty() {
                break;
            }
            input = std::borrow::Cow::Owned(next);
        }
        Ok(())
    }

    /// Appends handshake bytes to send to `buf`, all at the level
    /// [`Self::write_level`] returned before the call, and returns the keys
    /// of the next level if the bytes stop at a key change.
    ///
    /// Call after [`Self::read_handshake`] (and once after creating a
    /// client) until it returns `None`: each `Some` moves
    /// [`Self::write_level`] on, and the bytes after it belong to the new
    /// level. Keys come out in order: Handshake, then 1-RTT.
    pub fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<KeyChange> {
        while let Some(pending) = self.pending.pop_front() {
            match pending {
                Pending::Data(data) => buf.extend_from_slice(&data),
                Pending::Keys(change) => {
                    self.write_level = change.level();
                    return Some(*change);
                }
            }
        }
        None
    }

    /// The level of the bytes the next [`Self::write_handshake`] appends:
    /// the level to send them at (RFC 9001 §4.1.3), Initial, then Handshake,
    /// then 1-RTT (session tickets).
    pub fn write_level(&self) -> EncryptionLevel {
        self.write_level
    }

    /// The level whose CRYPTO data TLS expects next. Data at lower levels
    /// is an error; data at higher levels is held until TLS gets there.
    pub fn read_level(&self) -> EncryptionLevel {
        self.read_level
    }

    /// Whether [`Self::write_handshake`] has bytes or keys to hand out.
    pub fn has_pending_output(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether the TLS handshake is still running. It is complete (RFC 9001
    /// §4.1.1) once this is false: TLS has sent its Finished and verified
    /// the peer's. At the server this also confirms the handshake (§4.1.2).
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The application protocol ALPN selected, once the server chose one
    /// (the server knows it after the ClientHello, the client after
    /// EncryptedExtensions).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The negotiated cipher suite, once the ServerHello has been sent or
    /// received; `None` before, or for a suite outside [`CipherSuite`].
    pub fn negotiated_cipher_suite(&self) -> Option<CipherSuite> {
        self.conn.negotiated_cipher_suite().and_then(|s| CipherSuite::from_rustls(s.suite()))
    }

    /// The peer's transport parameters, decoded and validated (RFC 9000
    /// §7.4, §18.2), once TLS has received them: the server after the
    /// ClientHello, the client after EncryptedExtensions.
    ///
    /// They are authenticated only once the handshake completes (RFC 9001
    /// §8.2). A decoding error is a TRANSPORT_PARAMETER_ERROR to close the
    /// connection with. The connection still checks the connection ID
    /// parameters against the packets it saw (RFC 9000 §7.3).
    pub fn peer_transport_parameters(&self) -> Option<Result<TransportParameters, TransportError>> {
        let bytes = self.conn.quic_transport_parameters()?;
        Some(TransportParameters::decode(!self.side, bytes))
    }

    /// Keys for 0-RTT packets, if this handshake attempts early data: at a
    /// client resuming a session with early data enabled, after the
    /// ClientHello is written; at a server accepting it, after the
    /// ClientHello is read. Keys only the client seals and the server opens.
    pub fn zero_rtt_keys(&self) -> Option<DirectionalKeys> {
        self.conn.zero_rtt_keys().map(DirectionalKeys::from_rustls)
    }

    /// At a client, whether the server accepted 0-RTT data; meaningful once
    /// the handshake completes. Always false at a server.
    pub fn is_early_data_accepted(&self) -> bool {
        match &self.conn {
            rq::Connection::Client(c) => c.is_early_data_accepted(),
            rq::Connection::Server(_) => false,
        }
    }

    /// The certificate chain the peer presented, end entity first, once it
    /// has been received and verified.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// At a server, the name the client asked for in its server_name
    /// extension (SNI), once the ClientHello is read. `None` at a client.
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            rq::Connection::Client(_) => None,
            rq::Connection::Server(s) => s.server_name(),
        }
    }

    /// How the handshake went (full, with a HelloRetryRequest, resumed),
    /// once that is known.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.conn.handshake_kind()
    }

    /// The rustls error behind the last failure, for logs: the
    /// [`TransportError`] keeps only a fixed reason phrase.
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        self.tls_error.as_ref()
    }

    /// Moves everything rustls has to send into `pending`, tagged by level,
    /// and moves the read level on as new keys arrive.
    fn collect_output(&mut self) {
        loop {
            let mut data = Vec::new();
            let change = self.conn.write_hs(&mut data);
            if !data.is_empty() {
                self.pending.push_back(Pending::Data(data));
            }
            let Some(change) = change else { break };
            let change = KeyChange::from_rustls(change);
            match change.level() {
                // Both sides read the peer's next messages under Handshake
                // keys from the moment those keys exist.
                EncryptionLevel::Handshake => self.read_level = EncryptionLevel::Handshake,
                // The client gets 1-RTT keys on reading the server's
                // Finished; the server may still send session tickets, under
                // 1-RTT keys. The server gets them before the client's
                // Finished, which it still reads at the Handshake level.
                _ if self.side.is_client() => self.read_level = EncryptionLevel::OneRtt,
                _ => {}
            }
            self.pending.push_back(Pending::Keys(Box::new(change)));
        }
        if self.side.is_server() && !self.conn.is_handshaking() {
            self.read_level = EncryptionLevel::OneRtt;
        }
    }

    /// At a server, refuses the TLS 1.3 middlebox compatibility mode, which
    /// rustls itself would accept, as `data` (the next Initial bytes) goes
    /// past the first ClientHello's legacy_session_id length.
    fn check_client_hello(&mut self, data: &[u8]) -> Result<(), TransportError> {
        let start = self.initial_read;
        self.initial_read = start.saturating_add(data.len());
        if self.side.is_client() {
            return Ok(());
        }
        let len = SESSION_ID_LEN_OFFSET.checked_sub(start).and_then(|i| data.get(i));
        //= https://www.rfc-editor.org/rfc/rfc9001#section-8.4
        //# A
        //# server SHOULD treat the receipt of a TLS ClientHello with a non-empty
        //# legacy_session_id field as a connection error of type PROTOCOL_VIOLATION.
        if len.is_some_and(|&len| len != 0) {
            return Err(self.fail(TransportError::protocol_violation(
                "ClientHello requests TLS middlebox compatibility mode",
            )));
        }
        Ok(())
    }

    /// Checks what RFC 9001 requires of a completed handshake, once.
    fn check_handshake_complete(&mut self) -> Result<(), TransportError> {
        if self.complete_checked || self.conn.is_handshaking() {
            return Ok(());
        }
        self.complete_checked = true;
        //= https://www.rfc-editor.org/rfc/rfc9001#section-4.2
        //# An
        //# endpoint MUST terminate the connection if a version of TLS older than 1.3 is
        //# negotiated.
        // rustls never negotiates anything else for QUIC; this guards
        // against that changing underneath us.
        if self.conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
            let code = TransportErrorCode::crypto(u8::from(AlertDescription::ProtocolVersion));
            return Err(self.fail(TransportError::new(code, "TLS version older than 1.3")));
        }
        //= https://www.rfc-editor.org/rfc/rfc9001#section-8.1
        //# When using ALPN, endpoints MUST immediately close a connection (see {{Section
        //# 10.2 of QUIC-TRANSPORT}}) with a no_application_protocol TLS alert (QUIC error
        //# code 0x0178; see {{tls-errors}}) if an application protocol is not negotiated.
        // rustls already fails the handshake with this alert when the lists do
        // not meet (both sides are required to offer ALPN); this is the backstop.
        if self.conn.alpn_protocol().is_none() {
            return Err(self.fail(no_application_protocol()));
        }
        Ok(())
    }

    fn fail(&mut self, error: TransportError) -> TransportError {
        self.pending.clear();
        self.error = Some(error.clone());
        error
    }

    /// Turns a rustls failure into the connection error to close with.
    fn fail_tls(&mut self, e: rustls::Error) -> TransportError {
        let error = match &e {
            //= https://www.rfc-editor.org/rfc/rfc9001#section-4.1.3
            //# When TLS provides keys for a higher encryption level,
            //# if there is data from a previous encryption level that TLS has not consumed,
            //# this MUST be treated as a connection error of type PROTOCOL_VIOLATION.
            // rustls refuses to change keys while handshake bytes of the old
            // level wait behind the message that changed them.
            rustls::Error::PeerMisbehaved(PeerMisbehaved::KeyEpochWithPendingFragment) => {
                TransportError::protocol_violation(
                    "handshake data continues past a change of encryption level",
                )
            }
            //= https://www.rfc-editor.org/rfc/rfc9001#section-4.4
            //# More specifically,
            //# servers MUST NOT send post-handshake TLS CertificateRequest messages, and
            //# clients MUST treat receipt of such messages as a connection error of type
            //# PROTOCOL_VIOLATION.
            rustls::Error::InappropriateHandshakeMessage {
                got_type: HandshakeType::CertificateRequest,
                ..
            } if self.side.is_client() && !self.conn.is_handshaking() => {
                TransportError::protocol_violation("post-handshake CertificateRequest")
            }
            _ => match self.conn.alert() {
                //= https://www.rfc-editor.org/rfc/rfc9001#section-4.8
                //# The AlertDescription value is
                //# added to 0x0100 to produce a QUIC error code from the range reserved for
                //# CRYPTO_ERROR; see {{Section 20.1 of QUIC-TRANSPORT}}.
                //= https://www.rfc-editor.org/rfc/rfc9001#section-4.8
                //# a QUIC endpoint MUST treat any alert from TLS as if it were at the
                //# "fatal" level.
                Some(alert) => {
                    TransportError::new(TransportErrorCode::crypto(u8::from(alert)), tls_reason(&e))
                }
                // No alert means rustls failed on its own account (no
                // randomness, a broken configuration), not over the peer.
                None => TransportError::internal_error(tls_reason(&e)),
            },
        };
        self.tls_error = Some(e);
        self.fail(error)
    }
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("side", &self.side)
            .field("write_level", &self.write_level)
            .field("read_level", &self.read_level)
            .field("handshaking", &self.conn.is_handshaking())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

fn encode(params: &TransportParameters) -> Vec<u8> {
    let mut buf = Vec::with_capacity(params.encoded_len());
    params.encode(&mut buf);
    buf
}

fn check_alpn(protocols: &[Vec<u8>]) -> Result<(), TlsConfigError> {
    //= https://www.rfc-editor.org/rfc/rfc9001#section-8.1
    //# Unless another mechanism is used for agreeing on an application protocol,
    //# endpoints MUST use ALPN for this purpose.
    // This crate has no other mechanism, so a configuration without ALPN
    // protocols is refused rather than left to connect without one.
    if protocols.is_empty() || protocols.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(TlsConfigError::NoAlpnProtocols);
    }
    Ok(())
}

fn deferred_index(level: EncryptionLevel) -> usize {
    match level {
        EncryptionLevel::OneRtt => 1,
        _ => 0,
    }
}

fn no_application_protocol() -> TransportError {
    TransportError::new(
        TransportErrorCode::crypto(u8::from(AlertDescription::NoApplicationProtocol)),
        "no application protocol negotiated",
    )
}

/// A fixed reason phrase for a rustls error: CONNECTION_CLOSE reasons are
/// `&'static str`, and the details stay in [`TlsSession::tls_error`].
fn tls_reason(e: &rustls::Error) -> &'static str {
    use rustls::Error as E;
    match e {
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "unexpected TLS handshake message"
        }
        E::InvalidMessage(_) => "malformed TLS handshake message",
        E::NoCertificatesPresented => "peer presented no certificate",
        E::InvalidCertificate(_) => "peer certificate rejected",
        E::DecryptError => "TLS handshake verification failed",
        E::PeerIncompatible(_) => "peer's TLS parameters are incompatible",
        //= https://www.rfc-editor.org/rfc/rfc9001#section-8.2
        //= type=implication
        //# endpoints that receive ClientHello or
        //# EncryptedExtensions messages without the quic_transport_parameters extension
        //# MUST close the connection with an error of type 0x016d (equivalent to a fatal
        //# TLS missing_extension alert, see {{tls-errors}}).
        // rustls sends missing_extension, which becomes 0x016d above.
        E::PeerMisbehaved(PeerMisbehaved::MissingQuicTransportParameters) => {
            "peer sent no quic_transport_parameters extension"
        }
        E::PeerMisbehaved(_) => "peer violated the TLS protocol",
        E::NoApplicationProtocol => "no application protocol negotiated",
        E::AlertReceived(_) => "TLS alert received",
        E::FailedToGetRandomBytes => "TLS could not get random bytes",
        E::FailedToGetCurrentTime => "TLS could not get the current time",
        _ => "TLS handshake failed",
    }
}
