//! Tokens: stateless reset tokens and packets (RFC 9000 §10.3), and the
//! address validation tokens of Retry packets and NEW_TOKEN frames (§8.1).

use core::fmt;
use core::time::Duration;
use std::net::{IpAddr, SocketAddr};

use crate::cid::ConnectionId;
use crate::random::RandomSource;
use crate::time::Instant;

/// A 16-byte stateless reset token (RFC 9000 §10.3), as carried in the
/// stateless_reset_token and preferred_address transport parameters and in
/// NEW_CONNECTION_ID frames.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatelessResetToken([u8; StatelessResetToken::LEN]);

impl StatelessResetToken {
    /// The token length in bytes.
    pub const LEN: usize = 16;

    /// A token holding `bytes`.
    pub const fn new(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// A token drawn from `rng`. Production tokens are usually derived from a
    /// static key and the connection ID instead (RFC 9000 §10.3.2), so that
    /// they survive loss of connection state.
    pub fn random(rng: &mut dyn RandomSource) -> Self {
        let mut bytes = [0; Self::LEN];
        rng.fill(&mut bytes);
        Self(bytes)
    }

    /// The token's bytes.
    pub const fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl From<[u8; StatelessResetToken::LEN]> for StatelessResetToken {
    fn from(bytes: [u8; StatelessResetToken::LEN]) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for StatelessResetToken {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for StatelessResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatelessResetToken(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The static key stateless reset tokens are derived from (RFC 9000
/// §10.3.2): the token for a connection ID is HMAC-SHA256(key, cid)
/// truncated to 16 bytes, so an endpoint that lost a connection's state can
/// still reset it, and no table of tokens is needed.
pub struct ResetKey(aws_lc_rs::hmac::Key);

impl ResetKey {
    /// A key from 32 random bytes. Every endpoint behind one address (a
    /// cluster sharing connection IDs) must use the same key.
    pub fn new(rng: &mut dyn RandomSource) -> Self {
        let mut secret = [0u8; 32];
        rng.fill(&mut secret);
        Self::from_secret(&secret)
    }

    /// A key from a secret shared across restarts or cluster members.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret))
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.2
    //# The stateless reset token MUST be difficult to guess.
    /// The token for `cid`.
    pub fn token(&self, cid: &[u8]) -> StatelessResetToken {
        let tag = aws_lc_rs::hmac::sign(&self.0, cid);
        let mut out = [0u8; StatelessResetToken::LEN];
        out.copy_from_slice(&tag.as_ref()[..StatelessResetToken::LEN]);
        StatelessResetToken::new(out)
    }
}

impl fmt::Debug for ResetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetKey(..)")
    }
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-10.3
//# Endpoints MUST discard packets that are too small to be valid QUIC packets.  To
//# give an example, with the set of AEAD functions defined in {{QUIC-TLS}}, short
//# header packets that are smaller than 21 bytes are never valid.
/// The smallest datagram that can be a stateless reset (or any short header packet).
pub const MIN_STATELESS_RESET_LEN: usize = 21;

/// Writes a stateless reset answering a datagram of `trigger_len` bytes, or
/// returns `false` (writing nothing) when none may be sent because the
/// answer could not be both smaller than the trigger and at least 21 bytes.
///
/// The reset is a short header packet of unpredictable bytes ending in
/// `token` (RFC 9000 §10.3).
pub fn write_stateless_reset(
    token: &StatelessResetToken,
    trigger_len: usize,
    rng: &mut dyn RandomSource,
    buf: &mut Vec<u8>,
) -> bool {
    //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.3
    //# An endpoint MUST ensure that every Stateless Reset that it sends is smaller than
    //# the packet that triggered it, unless it maintains state sufficient to prevent
    //# looping.
    let Some(max_len) = trigger_len.checked_sub(1).filter(|l| *l >= MIN_STATELESS_RESET_LEN) else {
        return false;
    };
    //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3
    //# An endpoint that
    //# sends a Stateless Reset in response to a packet that is 43 bytes or shorter
    //# SHOULD send a Stateless Reset that is one byte shorter than the packet it
    //# responds to.
    let len = if trigger_len <= 43 {
        max_len
    } else {
        // 41 bytes or more is hard to tell from a real packet; vary the size
        // so resets have no fingerprint, never reaching the trigger's size.
        let span = (max_len - 41).min(40) as u64 + 1;
        41 + rng.below(span) as usize
    };
    let start = buf.len();
    buf.resize(start + len - StatelessResetToken::LEN, 0);
    rng.fill(&mut buf[start..]);
    //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3
    //# Endpoints MUST send Stateless Resets formatted as a packet with a short header.
    buf[start] = 0x40 | (buf[start] & 0x3f);
    buf.extend_from_slice(token.as_bytes());
    true
}

/// Whether a datagram ends in one of `tokens` (compared in constant time).
///
/// Call only for datagrams whose first packet could not be processed
/// (RFC 9000 §10.3.1), and only with tokens of the peer of the connection
/// the datagram was routed to.
pub fn is_stateless_reset<'a>(
    datagram: &[u8],
    tokens: impl IntoIterator<Item = &'a StatelessResetToken>,
) -> bool {
    if datagram.len() < MIN_STATELESS_RESET_LEN {
        return false;
    }
    let tail = &datagram[datagram.len() - StatelessResetToken::LEN..];
    //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.1
    //# When comparing a datagram to stateless reset token values, endpoints MUST
    //# perform the comparison without leaking information about the value of the
    //# token.
    tokens.into_iter().fold(false, |found, token| {
        found | aws_lc_rs::constant_time::verify_slices_are_equal(tail, token.as_bytes()).is_ok()
    })
}

/// What a valid address-validation token says (RFC 9000 §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidatedToken {
    /// A token this endpoint sent in a Retry packet.
    Retry {
        /// The Destination Connection ID of the client's first Initial,
        /// echoed in original_destination_connection_id.
        original_dcid: ConnectionId,
        /// The Source Connection ID of the Retry, echoed in
        /// retry_source_connection_id.
        retry_scid: ConnectionId,
    },
    /// A token this endpoint sent in a NEW_TOKEN frame.
    NewToken,
}

/// Why a token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token this key sealed for this address (forged, corrupted,
    /// from another server, or presented from another address).
    Invalid,
    /// A genuine token past its lifetime.
    Expired,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Invalid => "address validation token is not valid for this address",
            Self::Expired => "address validation token has expired",
        })
    }
}

impl std::error::Error for TokenError {}

const KIND_RETRY: u8 = 0x01;
const KIND_NEW_TOKEN: u8 = 0x02;
const TOKEN_NONCE_LEN: usize = 12;

//= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.4
//# An address validation token MUST be difficult to guess.  Including a random
//# value with at least 128 bits of entropy in the token would be sufficient, but
//# this depends on the server remembering the value it sends to clients.
/// The key a server seals its Retry and NEW_TOKEN tokens with (AES-256-GCM).
///
/// Tokens carry the time they were issued as an [`Instant`]: they outlive an
/// endpoint restart only if the driver keeps its `Instant` epoch (for
/// example the Unix epoch) and the key.
pub struct TokenKey(aws_lc_rs::aead::LessSafeKey);

impl TokenKey {
    /// A fresh key from `rng`.
    pub fn new(rng: &mut dyn RandomSource) -> Self {
        let mut secret = [0u8; 32];
        rng.fill(&mut secret);
        Self::from_secret(&secret)
    }

    /// A key from a 32-byte secret shared across restarts or cluster members.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, secret)
            .expect("AES-256 keys are 32 bytes");
        Self(aws_lc_rs::aead::LessSafeKey::new(key))
    }

    /// A Retry token for a client at `client`, binding the connection IDs
    /// the server must later echo in its transport parameters.
    pub fn seal_retry(
        &self,
        rng: &mut dyn RandomSource,
        client: SocketAddr,
        original_dcid: &ConnectionId,
        retry_scid: &ConnectionId,
        issued: Instant,
    ) -> Vec<u8> {
        let mut plain = Vec::with_capacity(8 + 2 + original_dcid.len() + retry_scid.len());
        plain.extend_from_slice(&issued.as_nanos().to_be_bytes());
        for cid in [original_dcid, retry_scid] {
            plain.push(cid.len() as u8);
            plain.extend_from_slice(cid);
        }
        self.seal(rng, KIND_RETRY, &address_aad(client, true), plain)
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.3
    //# Tokens sent in NEW_TOKEN frames MUST include information that allows the server
    //# to verify that the client IP address has not changed from when the token was
    //# issued.
    /// A NEW_TOKEN token for a client at `client`. It is bound to the IP
    /// address only: a client's port changes between connections.
    pub fn seal_new_token(
        &self,
        rng: &mut dyn RandomSource,
        client: SocketAddr,
        issued: Instant,
    ) -> Vec<u8> {
        let plain = issued.as_nanos().to_be_bytes().to_vec();
        self.seal(rng, KIND_NEW_TOKEN, &address_aad(client, false), plain)
    }

    fn seal(
        &self,
        rng: &mut dyn RandomSource,
        kind: u8,
        aad: &[u8],
        mut plain: Vec<u8>,
    ) -> Vec<u8> {
        let mut nonce = [0u8; TOKEN_NONCE_LEN];
        rng.fill(&mut nonce);
        let aad = [&[kind][..], aad].concat();
        let tag = self
            .0
            .seal_in_place_separate_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(&aad[..]),
                &mut plain,
            )
            .expect("token plaintexts are far below the AEAD's limit");
        let mut token = Vec::with_capacity(1 + TOKEN_NONCE_LEN + plain.len() + tag.as_ref().len());
        token.push(kind);
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&plain);
        token.extend_from_slice(tag.as_ref());
        token
    }

    /// Opens a token presented by a client at `client` at time `now`.
    /// Retry tokens live for `retry_lifetime`, NEW_TOKEN tokens for
    /// `new_token_lifetime`. A token issued in the future is invalid.
    pub fn open(
        &self,
        token: &[u8],
        client: SocketAddr,
        now: Instant,
        retry_lifetime: Duration,
        new_token_lifetime: Duration,
    ) -> Result<ValidatedToken, TokenError> {
        self.open_issued(token, client, now, retry_lifetime, new_token_lifetime).map(|(t, _)| t)
    }

    /// [`TokenKey::open`], also saying when the token was issued.
    pub(crate) fn open_issued(
        &self,
        token: &[u8],
        client: SocketAddr,
        now: Instant,
        retry_lifetime: Duration,
        new_token_lifetime: Duration,
    ) -> Result<(ValidatedToken, Instant), TokenError> {
        let (&kind, rest) = token.split_first().ok_or(TokenError::Invalid)?;
        let (aad, lifetime) = match kind {
            KIND_RETRY => (address_aad(client, true), retry_lifetime),
            KIND_NEW_TOKEN => (address_aad(client, false), new_token_lifetime),
            _ => return Err(TokenError::Invalid),
        };
        if rest.len() < TOKEN_NONCE_LEN + 16 {
            return Err(TokenError::Invalid);
        }
        let (nonce, sealed) = rest.split_at(TOKEN_NONCE_LEN);
        let nonce = <[u8; TOKEN_NONCE_LEN]>::try_from(nonce).map_err(|_| TokenError::Invalid)?;
        let aad = [&[kind][..], &aad].concat();
        let mut sealed = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(&aad[..]),
                &mut sealed,
            )
            .map_err(|_| TokenError::Invalid)?;
        // Authenticated from here on: the contents are ours, but still parsed
        // defensively.
        let mut r = crate::coding::Reader::new(plain);
        let issued = Instant::from_nanos(r.u64().map_err(|_| TokenError::Invalid)?);
        if issued > now {
            return Err(TokenError::Invalid);
        }
        if now - issued > lifetime {
            return Err(TokenError::Expired);
        }
        if kind == KIND_NEW_TOKEN {
            return Ok((ValidatedToken::NewToken, issued));
        }
        let mut cid = || {
            let len = r.u8().map_err(|_| TokenError::Invalid)?;
            let bytes = r.bytes(len.into()).map_err(|_| TokenError::Invalid)?;
            ConnectionId::from_slice(bytes).ok_or(TokenError::Invalid)
        };
        let retry = ValidatedToken::Retry { original_dcid: cid()?, retry_scid: cid()? };
        Ok((retry, issued))
    }

    /// What tells one sealed token from every other: its kind and the
    /// random AEAD nonce it was sealed under (authenticated, so a valid
    /// token cannot carry another's). `None` if too short to be a token.
    pub(crate) fn token_id(token: &[u8]) -> Option<[u8; 1 + TOKEN_NONCE_LEN]> {
        token.get(..1 + TOKEN_NONCE_LEN)?.try_into().ok()
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// The client address as associated data: IP and port for Retry tokens
/// (used within one connection attempt), IP only for NEW_TOKEN tokens.
fn address_aad(client: SocketAddr, with_port: bool) -> Vec<u8> {
    let mut out = match client.ip() {
        IpAddr::V4(ip) => ip.to_ipv6_mapped().octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    if with_port {
        out.extend_from_slice(&client.port().to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reset_tokens_are_keyed_per_cid() {
        let mut rng = SeededRandom::from_u64(1);
        let key = ResetKey::new(&mut rng);
        let a = key.token(&[1, 2, 3, 4]);
        assert_eq!(a, key.token(&[1, 2, 3, 4]), "derivable again after losing state");
        assert_ne!(a, key.token(&[1, 2, 3, 5]));
        assert_ne!(a, ResetKey::new(&mut rng).token(&[1, 2, 3, 4]));
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-10.3.3
    //= type=test
    //# An endpoint MUST ensure that every Stateless Reset that it sends is smaller than
    //# the packet that triggered it, unless it maintains state sufficient to prevent
    //# looping.
    #[test]
    fn resets_are_smaller_than_their_trigger_and_detectable() {
        let mut rng = SeededRandom::from_u64(2);
        let token = StatelessResetToken::new([0xab; 16]);
        for trigger in 0..1500 {
            let mut buf = Vec::new();
            let sent = write_stateless_reset(&token, trigger, &mut rng, &mut buf);
            assert_eq!(sent, trigger > MIN_STATELESS_RESET_LEN, "trigger {trigger}");
            if !sent {
                assert!(buf.is_empty());
                continue;
            }
            assert!(buf.len() < trigger && buf.len() >= MIN_STATELESS_RESET_LEN);
            if trigger <= 43 {
                assert_eq!(buf.len(), trigger - 1);
            }
            assert_eq!(buf[0] & 0xc0, 0x40, "short header form with the fixed bit");
            assert!(is_stateless_reset(&buf, [&token]));
            let other = StatelessResetToken::new([0xac; 16]);
            assert!(!is_stateless_reset(&buf, [&other]));
            assert!(is_stateless_reset(&buf, [&other, &token]));
        }
        assert!(!is_stateless_reset(&[0xab; 20], [&token]));
    }

    #[test]
    fn retry_tokens_round_trip_and_bind_address_and_time() {
        let mut rng = SeededRandom::from_u64(3);
        let key = TokenKey::new(&mut rng);
        let (odcid, scid) = (
            ConnectionId::from_slice(&[7; 8]).unwrap(),
            ConnectionId::from_slice(&[9; 20]).unwrap(),
        );
        let t0 = Instant::from_millis(1_000);
        let client = addr("192.0.2.1:4433");
        let token = key.seal_retry(&mut rng, client, &odcid, &scid, t0);
        let life = Duration::from_secs(10);
        let open = |token: &[u8], client, now| key.open(token, client, now, life, life);
        assert_eq!(
            open(&token, client, t0 + Duration::from_secs(1)),
            Ok(ValidatedToken::Retry { original_dcid: odcid, retry_scid: scid })
        );
        assert_eq!(
            open(&token, addr("192.0.2.1:4434"), t0),
            Err(TokenError::Invalid),
            "other port"
        );
        assert_eq!(open(&token, addr("192.0.2.2:4433"), t0), Err(TokenError::Invalid), "other IP");
        assert_eq!(open(&token, client, t0 + Duration::from_secs(11)), Err(TokenError::Expired));
        assert_eq!(
            open(&token, client, Instant::from_millis(999)),
            Err(TokenError::Invalid),
            "future"
        );
        let mut forged = token.clone();
        forged[20] ^= 1;
        assert_eq!(open(&forged, client, t0), Err(TokenError::Invalid));
        assert_eq!(open(&[], client, t0), Err(TokenError::Invalid));
        assert_eq!(open(&token[..20], client, t0), Err(TokenError::Invalid));
        let other_key = TokenKey::new(&mut rng);
        assert_eq!(other_key.open(&token, client, t0, life, life), Err(TokenError::Invalid));
        // Two tokens for the same inputs differ (random nonce).
        assert_ne!(token, key.seal_retry(&mut rng, client, &odcid, &scid, t0));
    }

    #[test]
    fn new_tokens_survive_a_port_change_but_not_an_ip_change() {
        let mut rng = SeededRandom::from_u64(4);
        let key = TokenKey::new(&mut rng);
        let t0 = Instant::from_millis(5);
        let token = key.seal_new_token(&mut rng, addr("[2001:db8::1]:1000"), t0);
        let day = Duration::from_secs(86_400);
        assert_eq!(
            key.open(&token, addr("[2001:db8::1]:2000"), t0, day, day),
            Ok(ValidatedToken::NewToken)
        );
        assert_eq!(
            key.open(&token, addr("[2001:db8::2]:1000"), t0, day, day),
            Err(TokenError::Invalid)
        );
        // An IPv4 client and its IPv4-mapped IPv6 form are the same address.
        let v4 = key.seal_new_token(&mut rng, addr("198.51.100.7:1"), t0);
        assert_eq!(
            key.open(&v4, addr("[::ffff:198.51.100.7]:2"), t0, day, day),
            Ok(ValidatedToken::NewToken)
        );
    }
}
