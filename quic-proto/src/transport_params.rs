//! QUIC transport parameters: the typed set each endpoint declares in the TLS
//! handshake, its wire encoding, and the checks a receiver applies (RFC 9000
//! §7.4, §18; version_information from RFC 9368 §3-4; max_datagram_frame_size
//! from RFC 9221 §3; grease_quic_bit from RFC 9287 §3).
//!
//! [`TransportParameters::decode`] checks everything that can be judged from
//! the parameters alone. The connection still owns the checks that need its
//! state: that the connection ID parameters match the packets seen (RFC 9000
//! §7.3), and what version_information means for the negotiated version
//! (RFC 9368 §4).

use core::fmt;
use core::time::Duration;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use bytes::BufMut;

use crate::cid::ConnectionId;
use crate::coding::Reader;
use crate::error::TransportError;
use crate::random::RandomSource;
use crate::stream_id::Side;
use crate::token::StatelessResetToken;
use crate::varint::VarInt;
use crate::version::Version;

#[cfg(test)]
mod tests;

/// A transport parameter identifier (RFC 9000 §18, §22.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransportParameterId(pub VarInt);

macro_rules! parameter_ids {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $wire:literal, bit $bit:literal;)*) => {
        impl TransportParameterId {
            $($(#[$doc])* pub const $name: Self = Self(VarInt::from_u32($value));)*

            /// The registered name of a parameter this crate understands.
            pub fn name(self) -> Option<&'static str> {
                match self.0.into_inner() {
                    $($value => Some($wire),)*
                    _ => None,
                }
            }

            /// A distinct bit per understood parameter, for duplicate detection.
            fn seen_bit(self) -> Option<u32> {
                match self.0.into_inner() {
                    $($value => Some(1 << $bit),)*
                    _ => None,
                }
            }

            fn duplicate_reason(self) -> &'static str {
                match self.0.into_inner() {
                    $($value => concat!("duplicate ", $wire, " transport parameter"),)*
                    _ => "duplicate transport parameter",
                }
            }
        }
    };
}

parameter_ids! {
    /// original_destination_connection_id (0x00), server only.
    ORIGINAL_DESTINATION_CONNECTION_ID = 0x00, "original_destination_connection_id", bit 0;
    /// max_idle_timeout (0x01), in milliseconds.
    MAX_IDLE_TIMEOUT = 0x01, "max_idle_timeout", bit 1;
    /// stateless_reset_token (0x02), server only.
    STATELESS_RESET_TOKEN = 0x02, "stateless_reset_token", bit 2;
    /// max_udp_payload_size (0x03).
    MAX_UDP_PAYLOAD_SIZE = 0x03, "max_udp_payload_size", bit 3;
    /// initial_max_data (0x04).
    INITIAL_MAX_DATA = 0x04, "initial_max_data", bit 4;
    /// initial_max_stream_data_bidi_local (0x05).
    INITIAL_MAX_STREAM_DATA_BIDI_LOCAL = 0x05, "initial_max_stream_data_bidi_local", bit 5;
    /// initial_max_stream_data_bidi_remote (0x06).
    INITIAL_MAX_STREAM_DATA_BIDI_REMOTE = 0x06, "initial_max_stream_data_bidi_remote", bit 6;
    /// initial_max_stream_data_uni (0x07).
    INITIAL_MAX_STREAM_DATA_UNI = 0x07, "initial_max_stream_data_uni", bit 7;
    /// initial_max_streams_bidi (0x08).
    INITIAL_MAX_STREAMS_BIDI = 0x08, "initial_max_streams_bidi", bit 8;
    /// initial_max_streams_uni (0x09).
    INITIAL_MAX_STREAMS_UNI = 0x09, "initial_max_streams_uni", bit 9;
    /// ack_delay_exponent (0x0a).
    ACK_DELAY_EXPONENT = 0x0a, "ack_delay_exponent", bit 10;
    /// max_ack_delay (0x0b), in milliseconds.
    MAX_ACK_DELAY = 0x0b, "max_ack_delay", bit 11;
    /// disable_active_migration (0x0c), zero-length.
    DISABLE_ACTIVE_MIGRATION = 0x0c, "disable_active_migration", bit 12;
    /// preferred_address (0x0d), server only.
    PREFERRED_ADDRESS = 0x0d, "preferred_address", bit 13;
    /// active_connection_id_limit (0x0e).
    ACTIVE_CONNECTION_ID_LIMIT = 0x0e, "active_connection_id_limit", bit 14;
    /// initial_source_connection_id (0x0f).
    INITIAL_SOURCE_CONNECTION_ID = 0x0f, "initial_source_connection_id", bit 15;
    /// retry_source_connection_id (0x10), server only.
    RETRY_SOURCE_CONNECTION_ID = 0x10, "retry_source_connection_id", bit 16;
    /// version_information (0x11, RFC 9368 §3).
    VERSION_INFORMATION = 0x11, "version_information", bit 17;
    /// max_datagram_frame_size (0x20, RFC 9221 §3).
    MAX_DATAGRAM_FRAME_SIZE = 0x20, "max_datagram_frame_size", bit 18;
    /// grease_quic_bit (0x2ab2, RFC 9287 §3), zero-length.
    GREASE_QUIC_BIT = 0x2ab2, "grease_quic_bit", bit 19;
}

impl TransportParameterId {
    /// The largest `N` for which the reserved identifier `31 * N + 27` still
    /// fits in a variable-length integer.
    pub const MAX_RESERVED_INDEX: u64 = (VarInt::MAX.into_inner() - 27) / 31;

    //= https://www.rfc-editor.org/rfc/rfc9000#section-18.1
    //# Transport parameters with an identifier of the form `31 * N + 27` for
    //# integer values of N are reserved to exercise the requirement that
    //# unknown transport parameters be ignored.
    /// The `n`th reserved (greasing) identifier, `31 * n + 27`, or `None` if
    /// `n` exceeds [`TransportParameterId::MAX_RESERVED_INDEX`].
    pub fn reserved(n: u64) -> Option<Self> {
        let id = n.checked_mul(31)?.checked_add(27)?;
        VarInt::from_u64(id).ok().map(Self)
    }

    /// Whether this is a reserved identifier of the form `31 * N + 27`.
    pub fn is_reserved(self) -> bool {
        let x = self.0.into_inner();
        x >= 27 && (x - 27).is_multiple_of(31)
    }

    /// Whether only a server may send this parameter (RFC 9000 §18.2).
    pub fn is_server_only(self) -> bool {
        matches!(
            self,
            Self::ORIGINAL_DESTINATION_CONNECTION_ID
                | Self::PREFERRED_ADDRESS
                | Self::RETRY_SOURCE_CONNECTION_ID
                | Self::STATELESS_RESET_TOKEN
        )
    }
}

impl From<VarInt> for TransportParameterId {
    fn from(x: VarInt) -> Self {
        Self(x)
    }
}

impl fmt::Debug for TransportParameterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "TransportParameterId({:#x})", self.0.into_inner()),
        }
    }
}

impl fmt::Display for TransportParameterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown transport parameter {:#x}", self.0.into_inner()),
        }
    }
}

/// The server's preferred_address transport parameter (RFC 9000 §9.6, §18.2).
///
/// On the wire each address family is always present; an all-zero address
/// and port (`0.0.0.0:0`, `[::]:0`) means the server offers no address of
/// that family, which this type models as `None`. IPv6 flow information and
/// scope ID are not carried: they decode as 0 and are dropped when encoding.
/// `Some(0.0.0.0:0)` therefore encodes exactly like `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PreferredAddress {
    /// The IPv4 address and port, if the server offers one.
    pub ipv4: Option<SocketAddrV4>,
    /// The IPv6 address and port, if the server offers one.
    pub ipv6: Option<SocketAddrV6>,
    /// A connection ID with sequence number 1; never zero-length.
    pub connection_id: ConnectionId,
    /// The stateless reset token for `connection_id`.
    pub stateless_reset_token: StatelessResetToken,
}

impl PreferredAddress {
    /// Bytes before the connection ID: IPv4 address and port, IPv6 address
    /// and port, connection ID length.
    const FIXED_PREFIX: usize = 4 + 2 + 16 + 2 + 1;

    fn encoded_len(&self) -> usize {
        Self::FIXED_PREFIX + self.connection_id.len() + StatelessResetToken::LEN
    }

    fn encode<B: BufMut>(&self, buf: &mut B) {
        let v4 = self.ipv4.unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        buf.put_slice(&v4.ip().octets());
        buf.put_u16(v4.port());
        let v6 = self.ipv6.unwrap_or(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
        buf.put_slice(&v6.ip().octets());
        buf.put_u16(v6.port());
        buf.put_u8(self.connection_id.len() as u8);
        buf.put_slice(&self.connection_id);
        buf.put_slice(self.stateless_reset_token.as_bytes());
    }

    fn decode(value: &[u8]) -> Result<Self, TransportError> {
        const MALFORMED: &str = "preferred_address length does not match its contents";
        let mut r = Reader::new(value);
        let mut read = || -> Result<_, crate::coding::UnexpectedEnd> {
            let v4 = SocketAddrV4::new(Ipv4Addr::from(r.array::<4>()?), r.u16()?);
            let v6 = SocketAddrV6::new(Ipv6Addr::from(r.array::<16>()?), r.u16()?, 0, 0);
            let cid_len = usize::from(r.u8()?);
            let cid = r.bytes(cid_len)?;
            let token = r.array::<{ StatelessResetToken::LEN }>()?;
            Ok((v4, v6, cid, token))
        };
        let (v4, v6, cid, token) = read().map_err(|_| tp_error(MALFORMED))?;
        if !r.is_empty() {
            return Err(tp_error(MALFORMED));
        }
        let connection_id = ConnectionId::from_slice(cid)
            .ok_or(tp_error("preferred_address connection ID longer than 20 bytes"))?;
        //= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
        //# Similarly,
        //# a server MUST NOT include a zero-length connection ID in this transport
        //# parameter.  A client MUST treat a violation of these requirements as a
        //# connection error of type TRANSPORT_PARAMETER_ERROR.
        if connection_id.is_empty() {
            return Err(tp_error("preferred_address with a zero-length connection ID"));
        }
        let unspecified_v4 = v4.ip().is_unspecified() && v4.port() == 0;
        let unspecified_v6 = v6.ip().is_unspecified() && v6.port() == 0;
        Ok(Self {
            ipv4: (!unspecified_v4).then_some(v4),
            ipv6: (!unspecified_v6).then_some(v6),
            connection_id,
            stateless_reset_token: StatelessResetToken::new(token),
        })
    }
}

/// Version Information (RFC 9368 §3): the version the sender chose for the
/// connection and the versions it makes available.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VersionInformation {
    /// The version the sender chose for this connection.
    pub chosen: Version,
    /// From a client, the versions its first flight is compatible with, most
    /// preferred first, including `chosen`. From a server, its Fully Deployed
    /// Versions in no particular order; may be empty and need not include
    /// `chosen`.
    pub available: Vec<Version>,
}

impl VersionInformation {
    fn encoded_len(&self) -> usize {
        4 * (1 + self.available.len())
    }

    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u32(self.chosen.0);
        for v in &self.available {
            buf.put_u32(v.0);
        }
    }

    fn decode(sender: Side, value: &[u8]) -> Result<Self, TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9368#section-4
        //# Both endpoints MUST parse their peer's Version Information during the handshake.
        //# If that leads to a parsing failure (for example, if it is too short or if
        //# its length is not divisible by four), then the endpoint MUST close the
        //# connection; if the connection was using QUIC version 1, that connection closure
        //# MUST use a transport error of type TRANSPORT_PARAMETER_ERROR.
        //
        // Every version this crate speaks (1 and 2) closes with
        // TRANSPORT_PARAMETER_ERROR here; RFC 9369 inherits the RFC 9000 codes.
        if value.len() < 4 {
            return Err(tp_error("version_information too short for a Chosen Version"));
        }
        if !value.len().is_multiple_of(4) {
            return Err(tp_error("version_information length not a multiple of 4"));
        }
        let mut r = Reader::new(value);
        let mut next =
            || r.u32().map(Version).map_err(|_| tp_error("truncated version_information"));
        let chosen = next()?;
        let mut available = Vec::with_capacity(value.len() / 4 - 1);
        for _ in 1..value.len() / 4 {
            available.push(next()?);
        }
        //= https://www.rfc-editor.org/rfc/rfc9368#section-4
        //# If an endpoint
        //# receives a Chosen Version equal to zero, or any Available Version equal to zero,
        //# it MUST treat it as a parsing failure.
        if chosen == Version::NEGOTIATION {
            return Err(tp_error("version_information Chosen Version is zero"));
        }
        if available.contains(&Version::NEGOTIATION) {
            return Err(tp_error("version_information Available Version is zero"));
        }
        //= https://www.rfc-editor.org/rfc/rfc9368#section-4
        //# If a server receives Version
        //# Information where the Chosen Version is not included in Available Versions, it
        //# MUST treat it as a parsing failure.
        if sender.is_client() && !available.contains(&chosen) {
            return Err(tp_error("client version_information omits its Chosen Version"));
        }
        Ok(Self { chosen, available })
    }
}

/// The transport parameters one endpoint declares (RFC 9000 §7.4, §18.2).
///
/// [`TransportParameters::default`] holds the values the RFCs assume for an
/// absent parameter, so a decoded set is always complete. Values a receiver
/// would reject (say an `ack_delay_exponent` above 20) are the caller's
/// responsibility when encoding: the endpoint's configuration validates them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportParameters {
    /// original_destination_connection_id (0x00): the Destination Connection
    /// ID of the client's first Initial. Server only. Default: absent.
    pub original_destination_connection_id: Option<ConnectionId>,
    /// max_idle_timeout (0x01), carried in whole milliseconds (sub-millisecond
    /// precision is dropped when encoding). Zero, the default, means the
    /// sender sets no idle timeout.
    pub max_idle_timeout: Duration,
    /// stateless_reset_token (0x02) for the connection ID the server chose in
    /// the handshake. Server only. Default: absent.
    pub stateless_reset_token: Option<StatelessResetToken>,
    /// max_udp_payload_size (0x03): the largest UDP payload the sender is
    /// willing to receive. At least 1200; default 65527.
    pub max_udp_payload_size: VarInt,
    /// initial_max_data (0x04): the initial connection-level flow control
    /// limit. Default 0.
    pub initial_max_data: VarInt,
    /// initial_max_stream_data_bidi_local (0x05): the initial flow control
    /// limit for bidirectional streams the sender opens. Default 0.
    pub initial_max_stream_data_bidi_local: VarInt,
    /// initial_max_stream_data_bidi_remote (0x06): the initial flow control
    /// limit for bidirectional streams the receiver opens. Default 0.
    pub initial_max_stream_data_bidi_remote: VarInt,
    /// initial_max_stream_data_uni (0x07): the initial flow control limit for
    /// unidirectional streams the receiver opens. Default 0.
    pub initial_max_stream_data_uni: VarInt,
    /// initial_max_streams_bidi (0x08): how many bidirectional streams the
    /// receiver may open initially. At most 2^60; default 0.
    pub initial_max_streams_bidi: VarInt,
    /// initial_max_streams_uni (0x09): how many unidirectional streams the
    /// receiver may open initially. At most 2^60; default 0.
    pub initial_max_streams_uni: VarInt,
    /// ack_delay_exponent (0x0a): the scale of the ACK Delay field in the
    /// sender's ACK frames. At most 20; default 3.
    pub ack_delay_exponent: u8,
    /// max_ack_delay (0x0b), carried in whole milliseconds: the longest the
    /// sender delays an acknowledgment. Below 2^14 ms; default 25 ms.
    pub max_ack_delay: Duration,
    /// disable_active_migration (0x0c): the sender does not support active
    /// migration away from its handshake address. Default false.
    pub disable_active_migration: bool,
    /// preferred_address (0x0d): an address to migrate to after the
    /// handshake. Server only. Default: absent.
    pub preferred_address: Option<PreferredAddress>,
    /// active_connection_id_limit (0x0e): how many of the receiver's
    /// connection IDs the sender is willing to store. At least 2; default 2.
    pub active_connection_id_limit: VarInt,
    /// initial_source_connection_id (0x0f): the Source Connection ID of the
    /// sender's first Initial. Required by RFC 9000 §7.3, which the
    /// connection checks. Default: absent.
    pub initial_source_connection_id: Option<ConnectionId>,
    /// retry_source_connection_id (0x10): the Source Connection ID of the
    /// server's Retry, present exactly when the server sent one. Server only.
    /// Default: absent.
    pub retry_source_connection_id: Option<ConnectionId>,
    /// version_information (0x11, RFC 9368 §3). Default: absent.
    pub version_information: Option<VersionInformation>,
    /// max_datagram_frame_size (0x20, RFC 9221 §3): the largest DATAGRAM
    /// frame the sender accepts. Absent (the default) or zero means no
    /// DATAGRAM support; both are kept distinct for a faithful round trip.
    pub max_datagram_frame_size: Option<VarInt>,
    /// grease_quic_bit (0x2ab2, RFC 9287 §3): the sender accepts packets with
    /// the fixed bit cleared. Default false.
    pub grease_quic_bit: bool,
}

impl TransportParameters {
    /// The max_udp_payload_size assumed when the parameter is absent: the
    /// largest UDP payload IPv4 and IPv6 permit.
    pub const DEFAULT_MAX_UDP_PAYLOAD_SIZE: VarInt = VarInt::from_u32(65527);
    /// The ack_delay_exponent assumed when the parameter is absent.
    pub const DEFAULT_ACK_DELAY_EXPONENT: u8 = 3;
    /// The max_ack_delay assumed when the parameter is absent.
    pub const DEFAULT_MAX_ACK_DELAY: Duration = Duration::from_millis(25);
    /// The active_connection_id_limit assumed when the parameter is absent.
    pub const DEFAULT_ACTIVE_CONNECTION_ID_LIMIT: VarInt = VarInt::from_u32(2);

    /// The smallest valid max_udp_payload_size.
    pub const MIN_MAX_UDP_PAYLOAD_SIZE: u64 = 1200;
    /// The largest valid ack_delay_exponent.
    pub const MAX_ACK_DELAY_EXPONENT: u8 = 20;
    /// max_ack_delay must be below this many milliseconds (2^14).
    pub const MAX_ACK_DELAY_BOUND_MS: u64 = 1 << 14;
    /// The largest valid initial_max_streams_bidi or initial_max_streams_uni:
    /// a higher count would imply stream IDs beyond 2^62 - 1.
    pub const MAX_STREAMS_LIMIT: u64 = 1 << 60;

    /// Appends the parameters to `buf`, as the body of the
    /// quic_transport_parameters TLS extension.
    ///
    /// Parameters go in ascending identifier order; those equal to their
    /// default are omitted, which the receiver reads back as the same value.
    /// Exactly [`TransportParameters::encoded_len`] bytes are written.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        self.for_each_param(|id, value| value.encode_param(id, buf));
    }

    /// Like [`TransportParameters::encode`], but adds one reserved parameter
    /// (RFC 9000 §18.1) with a random identifier `31 * N + 27`, a random
    /// value of 0 to 16 bytes, at a random position, all drawn from `rng`.
    /// Peers that wrongly reject unknown parameters then fail early and
    /// visibly. Writes more than [`TransportParameters::encoded_len`] bytes:
    /// the extra is the reserved parameter's full encoding.
    pub fn encode_with_grease<B: BufMut>(&self, rng: &mut dyn RandomSource, buf: &mut B) {
        let id =
            TransportParameterId::reserved(rng.below(TransportParameterId::MAX_RESERVED_INDEX + 1))
                .expect("N is at most MAX_RESERVED_INDEX, so 31 * N + 27 fits a VarInt");
        let mut value = [0; MAX_GREASE_LEN];
        let value = &mut value[..rng.below(MAX_GREASE_LEN as u64 + 1) as usize];
        rng.fill(value);

        let mut count = 0u64;
        self.for_each_param(|_, _| count += 1);
        let position = rng.below(count + 1);

        let mut index = 0;
        self.for_each_param(|param_id, param| {
            if index == position {
                Value::Bytes(value).encode_param(id, buf);
            }
            param.encode_param(param_id, buf);
            index += 1;
        });
        if position == count {
            Value::Bytes(value).encode_param(id, buf);
        }
    }

    /// The exact number of bytes [`TransportParameters::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let mut len = 0;
        self.for_each_param(|id, value| len += value.param_len(id));
        len
    }

    /// Parses and validates the body of a peer's quic_transport_parameters
    /// extension. `sender` is the side that sent it: the peer.
    ///
    /// Call once the TLS stack hands over the peer's extension. On error,
    /// close the connection with the returned TRANSPORT_PARAMETER_ERROR.
    /// Unknown and reserved parameters are skipped. The checks that need
    /// connection state (RFC 9000 §7.3 connection ID authentication, RFC 9368
    /// §4 version downgrade checks) are left to the caller.
    pub fn decode(sender: Side, bytes: &[u8]) -> Result<Self, TransportError> {
        let mut params = Self::default();
        let mut seen = 0u32;
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            let id = VarInt::decode(&mut r)
                .map_err(|_| tp_error("truncated transport parameter identifier"))?;
            let id = TransportParameterId(id);
            let len = VarInt::decode(&mut r)
                .map_err(|_| tp_error("truncated transport parameter length"))?;
            let value = usize::try_from(len.into_inner())
                .ok()
                .and_then(|len| r.bytes(len).ok())
                .ok_or(tp_error("transport parameter value runs past the end"))?;

            //= https://www.rfc-editor.org/rfc/rfc9000#section-7.4.2
            //# An
            //# endpoint MUST ignore transport parameters that it does not support.
            //
            // That includes the reserved 31 * N + 27 identifiers. Duplicates
            // are only tracked for understood parameters: remembering every
            // unknown identifier would let a peer buy quadratic work or
            // unbounded memory with two-byte parameters.
            let Some(bit) = id.seen_bit() else { continue };

            //= https://www.rfc-editor.org/rfc/rfc9000#section-7.4
            //# An endpoint MUST NOT send a parameter more than once in a given transport
            //# parameters extension.  An endpoint SHOULD treat receipt of duplicate transport
            //# parameters as a connection error of type TRANSPORT_PARAMETER_ERROR.
            if seen & bit != 0 {
                return Err(tp_error(id.duplicate_reason()));
            }
            seen |= bit;

            //= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
            //# A client MUST NOT include any server-only transport parameter:
            //# original_destination_connection_id, preferred_address,
            //# retry_source_connection_id, or stateless_reset_token. A server MUST treat
            //# receipt of any of these transport parameters as a connection error of type
            //# TRANSPORT_PARAMETER_ERROR.
            if sender.is_client() && id.is_server_only() {
                return Err(tp_error(match id {
                    TransportParameterId::ORIGINAL_DESTINATION_CONNECTION_ID => {
                        "client sent original_destination_connection_id"
                    }
                    TransportParameterId::PREFERRED_ADDRESS => "client sent preferred_address",
                    TransportParameterId::RETRY_SOURCE_CONNECTION_ID => {
                        "client sent retry_source_connection_id"
                    }
                    _ => "client sent stateless_reset_token",
                }));
            }

            params.decode_param(sender, id, value)?;
        }

        //= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
        //# A server that chooses
        //# a zero-length connection ID MUST NOT provide a preferred address.
        //
        // initial_source_connection_id is the connection ID the server chose;
        // whether it matches the packets is checked by the connection (§7.3).
        if params.preferred_address.is_some()
            && params.initial_source_connection_id.is_some_and(|cid| cid.is_empty())
        {
            return Err(tp_error(
                "preferred_address from a server using a zero-length connection ID",
            ));
        }
        Ok(params)
    }

    //= https://www.rfc-editor.org/rfc/rfc9000#section-7.4
    //# An endpoint MUST treat receipt of a transport parameter with an invalid value as
    //# a connection error of type TRANSPORT_PARAMETER_ERROR.
    /// Parses one understood, not yet seen parameter into `self`.
    fn decode_param(
        &mut self,
        sender: Side,
        id: TransportParameterId,
        value: &[u8],
    ) -> Result<(), TransportError> {
        type Id = TransportParameterId;
        match id {
            Id::ORIGINAL_DESTINATION_CONNECTION_ID => {
                self.original_destination_connection_id = Some(cid_value(
                    value,
                    "original_destination_connection_id longer than 20 bytes",
                )?);
            }
            Id::MAX_IDLE_TIMEOUT => {
                let ms = int_value(value, "malformed max_idle_timeout")?;
                self.max_idle_timeout = Duration::from_millis(ms.into_inner());
            }
            Id::STATELESS_RESET_TOKEN => {
                let token = <[u8; StatelessResetToken::LEN]>::try_from(value)
                    .map_err(|_| tp_error("stateless_reset_token is not 16 bytes"))?;
                self.stateless_reset_token = Some(StatelessResetToken::new(token));
            }
            Id::MAX_UDP_PAYLOAD_SIZE => {
                let size = int_value(value, "malformed max_udp_payload_size")?;
                //= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
                //# Values below 1200 are invalid.
                if size.into_inner() < Self::MIN_MAX_UDP_PAYLOAD_SIZE {
                    return Err(tp_error("max_udp_payload_size below 1200"));
                }
                self.max_udp_payload_size = size;
            }
            Id::INITIAL_MAX_DATA => {
                self.initial_max_data = int_value(value, "malformed initial_max_data")?;
            }
            Id::INITIAL_MAX_STREAM_DATA_BIDI_LOCAL => {
                self.initial_max_stream_data_bidi_local =
                    int_value(value, "malformed initial_max_stream_data_bidi_local")?;
            }
            Id::INITIAL_MAX_STREAM_DATA_BIDI_REMOTE => {
                self.initial_max_stream_data_bidi_remote =
                    int_value(value, "malformed initial_max_stream_data_bidi_remote")?;
            }
            Id::INITIAL_MAX_STREAM_DATA_UNI => {
                self.initial_max_stream_data_uni =
                    int_value(value, "malformed initial_max_stream_data_uni")?;
            }
            Id::INITIAL_MAX_STREAMS_BIDI => {
                self.initial_max_streams_bidi = streams_value(
                    value,
                    "malformed initial_max_streams_bidi",
                    "initial_max_streams_bidi above 2^60",
                )?;
            }
            Id::INITIAL_MAX_STREAMS_UNI => {
                self.initial_max_streams_uni = streams_value(
                    value,
                    "malformed initial_max_streams_uni",
                    "initial_max_streams_uni above 2^60",
                )?;
            }
            Id::ACK_DELAY_EXPONENT => {
                let exponent = int_value(value, "malformed ack_delay_exponent")?;
                //= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
                //# Values above 20 are invalid.
                if exponent.into_inner() > u64::from(Self::MAX_ACK_DELAY_EXPONENT) {
                    return Err(tp_error("ack_delay_exponent above 20"));
                }
                self.ack_delay_exponent = exponent.into_inner() as u8;
            }
            Id::MAX_ACK_DELAY => {
                let ms = int_value(value, "malformed max_ack_delay")?;
                //= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
                //# Values of 2^14 or greater are invalid.
                if ms.into_inner() >= Self::MAX_ACK_DELAY_BOUND_MS {
                    return Err(tp_error("max_ack_delay of 2^14 ms or more"));
                }
                self.max_ack_delay = Duration::from_millis(ms.into_inner());
            }
            Id::DISABLE_ACTIVE_MIGRATION => {
                //= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
                //# This parameter is a zero-length value.
                if !value.is_empty() {
                    return Err(tp_error("disable_active_migration is not zero-length"));
                }
                self.disable_active_migration = true;
            }
            Id::PREFERRED_ADDRESS => {
                self.preferred_address = Some(PreferredAddress::decode(value)?);
            }
            Id::ACTIVE_CONNECTION_ID_LIMIT => {
                let limit = int_value(value, "malformed active_connection_id_limit")?;
                //= https://www.rfc-editor.org/rfc/rfc9000#section-18.2
                //# The value of the active_connection_id_limit parameter MUST be at least 2.
                //# An endpoint that receives a value less than 2 MUST close the connection
                //# with an error of type TRANSPORT_PARAMETER_ERROR.
                if limit.into_inner() < 2 {
                    return Err(tp_error("active_connection_id_limit below 2"));
                }
                self.active_connection_id_limit = limit;
            }
            Id::INITIAL_SOURCE_CONNECTION_ID => {
                self.initial_source_connection_id =
                    Some(cid_value(value, "initial_source_connection_id longer than 20 bytes")?);
            }
            Id::RETRY_SOURCE_CONNECTION_ID => {
                self.retry_source_connection_id =
                    Some(cid_value(value, "retry_source_connection_id longer than 20 bytes")?);
            }
            Id::VERSION_INFORMATION => {
                self.version_information = Some(VersionInformation::decode(sender, value)?);
            }
            Id::MAX_DATAGRAM_FRAME_SIZE => {
                // Every value is valid: 0 means no DATAGRAM support (RFC 9221 §3).
                self.max_datagram_frame_size =
                    Some(int_value(value, "malformed max_datagram_frame_size")?);
            }
            Id::GREASE_QUIC_BIT => {
                // RFC 9287 §3: the value is empty, and a receiver that
                // understands the parameter treats a non-empty value as a
                // TRANSPORT_PARAMETER_ERROR. (No spec text in the repository
                // to quote in duvet form.)
                if !value.is_empty() {
                    return Err(tp_error("grease_quic_bit is not zero-length"));
                }
                self.grease_quic_bit = true;
            }
            // Only identifiers with a seen_bit get here, and each has an arm
            // above; anything else would be ignored like an unknown one.
            _ => {}
        }
        Ok(())
    }

    /// Calls `f` with each parameter that differs from its default, in
    /// ascending identifier order. Encoding and length both go through here,
    /// so they cannot disagree.
    fn for_each_param<'a>(&'a self, mut f: impl FnMut(TransportParameterId, Value<'a>)) {
        type Id = TransportParameterId;
        if let Some(cid) = &self.original_destination_connection_id {
            f(Id::ORIGINAL_DESTINATION_CONNECTION_ID, Value::Cid(cid));
        }
        let idle = millis(self.max_idle_timeout);
        if idle != VarInt::ZERO {
            f(Id::MAX_IDLE_TIMEOUT, Value::Int(idle));
        }
        if let Some(token) = &self.stateless_reset_token {
            f(Id::STATELESS_RESET_TOKEN, Value::Token(token));
        }
        let ints = [
            (
                Id::MAX_UDP_PAYLOAD_SIZE,
                self.max_udp_payload_size,
                Self::DEFAULT_MAX_UDP_PAYLOAD_SIZE,
            ),
            (Id::INITIAL_MAX_DATA, self.initial_max_data, VarInt::ZERO),
            (
                Id::INITIAL_MAX_STREAM_DATA_BIDI_LOCAL,
                self.initial_max_stream_data_bidi_local,
                VarInt::ZERO,
            ),
            (
                Id::INITIAL_MAX_STREAM_DATA_BIDI_REMOTE,
                self.initial_max_stream_data_bidi_remote,
                VarInt::ZERO,
            ),
            (Id::INITIAL_MAX_STREAM_DATA_UNI, self.initial_max_stream_data_uni, VarInt::ZERO),
            (Id::INITIAL_MAX_STREAMS_BIDI, self.initial_max_streams_bidi, VarInt::ZERO),
            (Id::INITIAL_MAX_STREAMS_UNI, self.initial_max_streams_uni, VarInt::ZERO),
            (
                Id::ACK_DELAY_EXPONENT,
                VarInt::from(self.ack_delay_exponent),
                VarInt::from(Self::DEFAULT_ACK_DELAY_EXPONENT),
            ),
            (Id::MAX_ACK_DELAY, millis(self.max_ack_delay), millis(Self::DEFAULT_MAX_ACK_DELAY)),
        ];
        for (id, value, default) in ints {
            if value != default {
                f(id, Value::Int(value));
            }
        }
        if self.disable_active_migration {
            f(Id::DISABLE_ACTIVE_MIGRATION, Value::Empty);
        }
        if let Some(address) = &self.preferred_address {
            f(Id::PREFERRED_ADDRESS, Value::PreferredAddress(address));
        }
        if self.active_connection_id_limit != Self::DEFAULT_ACTIVE_CONNECTION_ID_LIMIT {
            f(Id::ACTIVE_CONNECTION_ID_LIMIT, Value::Int(self.active_connection_id_limit));
        }
        if let Some(cid) = &self.initial_source_connection_id {
            f(Id::INITIAL_SOURCE_CONNECTION_ID, Value::Cid(cid));
        }
        if let Some(cid) = &self.retry_source_connection_id {
            f(Id::RETRY_SOURCE_CONNECTION_ID, Value::Cid(cid));
        }
        if let Some(info) = &self.version_information {
            f(Id::VERSION_INFORMATION, Value::VersionInformation(info));
        }
        if let Some(size) = self.max_datagram_frame_size {
            f(Id::MAX_DATAGRAM_FRAME_SIZE, Value::Int(size));
        }
        if self.grease_quic_bit {
            f(Id::GREASE_QUIC_BIT, Value::Empty);
        }
    }
}

impl Default for TransportParameters {
    /// The values RFC 9000 §18.2, RFC 9221 §3, RFC 9287 §3 and RFC 9368 §3
    /// assume when a parameter is absent.
    fn default() -> Self {
        Self {
            original_destination_connection_id: None,
            max_idle_timeout: Duration::ZERO,
            stateless_reset_token: None,
            max_udp_payload_size: Self::DEFAULT_MAX_UDP_PAYLOAD_SIZE,
            initial_max_data: VarInt::ZERO,
            initial_max_stream_data_bidi_local: VarInt::ZERO,
            initial_max_stream_data_bidi_remote: VarInt::ZERO,
            initial_max_stream_data_uni: VarInt::ZERO,
            initial_max_streams_bidi: VarInt::ZERO,
            initial_max_streams_uni: VarInt::ZERO,
            ack_delay_exponent: Self::DEFAULT_ACK_DELAY_EXPONENT,
            max_ack_delay: Self::DEFAULT_MAX_ACK_DELAY,
            disable_active_migration: false,
            preferred_address: None,
            active_connection_id_limit: Self::DEFAULT_ACTIVE_CONNECTION_ID_LIMIT,
            initial_source_connection_id: None,
            retry_source_connection_id: None,
            version_information: None,
            max_datagram_frame_size: None,
            grease_quic_bit: false,
        }
    }
}

/// The longest value a reserved parameter gets from
/// [`TransportParameters::encode_with_grease`]: enough to look like real
/// data, short enough not to crowd the ClientHello.
const MAX_GREASE_LEN: usize = 16;

/// One parameter's value, borrowed for encoding.
#[derive(Clone, Copy)]
enum Value<'a> {
    Int(VarInt),
    Empty,
    Cid(&'a ConnectionId),
    Token(&'a StatelessResetToken),
    PreferredAddress(&'a PreferredAddress),
    VersionInformation(&'a VersionInformation),
    Bytes(&'a [u8]),
}

impl Value<'_> {
    fn len(self) -> usize {
        match self {
            Value::Int(x) => x.size(),
            Value::Empty => 0,
            Value::Cid(cid) => cid.len(),
            Value::Token(_) => StatelessResetToken::LEN,
            Value::PreferredAddress(address) => address.encoded_len(),
            Value::VersionInformation(info) => info.encoded_len(),
            Value::Bytes(bytes) => bytes.len(),
        }
    }

    fn length_field(self) -> VarInt {
        VarInt::try_from(self.len()).expect("an in-memory value is shorter than 2^62 bytes")
    }

    /// The size of the whole (identifier, length, value) tuple.
    fn param_len(self, id: TransportParameterId) -> usize {
        id.0.size() + self.length_field().size() + self.len()
    }

    fn encode_param<B: BufMut>(self, id: TransportParameterId, buf: &mut B) {
        id.0.encode(buf);
        self.length_field().encode(buf);
        match self {
            Value::Int(x) => x.encode(buf),
            Value::Empty => {}
            Value::Cid(cid) => buf.put_slice(cid),
            Value::Token(token) => buf.put_slice(token.as_bytes()),
            Value::PreferredAddress(address) => address.encode(buf),
            Value::VersionInformation(info) => info.encode(buf),
            Value::Bytes(bytes) => buf.put_slice(bytes),
        }
    }
}

fn tp_error(reason: &'static str) -> TransportError {
    TransportError::transport_parameter_error(reason)
}

/// A duration as whole milliseconds, saturating at the largest VarInt.
fn millis(d: Duration) -> VarInt {
    VarInt::saturating_from_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A value that must be exactly one variable-length integer.
fn int_value(value: &[u8], malformed: &'static str) -> Result<VarInt, TransportError> {
    let mut r = Reader::new(value);
    let x = VarInt::decode(&mut r).map_err(|_| tp_error(malformed))?;
    if !r.is_empty() {
        return Err(tp_error(malformed));
    }
    Ok(x)
}

/// An initial_max_streams_* value.
fn streams_value(
    value: &[u8],
    malformed: &'static str,
    too_large: &'static str,
) -> Result<VarInt, TransportError> {
    let count = int_value(value, malformed)?;
    //= https://www.rfc-editor.org/rfc/rfc9000#section-4.6
    //# If either is received, the connection MUST be closed immediately with a connection
    //# error of type TRANSPORT_PARAMETER_ERROR if the offending value was received in a
    //# transport parameter or of type FRAME_ENCODING_ERROR if it was received in a
    //# frame
    if count.into_inner() > TransportParameters::MAX_STREAMS_LIMIT {
        return Err(tp_error(too_large));
    }
    Ok(count)
}

/// A connection ID value, which version 1 limits to 20 bytes (RFC 9000 §17.2).
fn cid_value(value: &[u8], too_long: &'static str) -> Result<ConnectionId, TransportError> {
    ConnectionId::from_slice(value).ok_or(tp_error(too_long))
}
