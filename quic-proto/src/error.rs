//! Transport error codes (RFC 9000 §20) and the error a peer's protocol
//! violation turns into.

use core::fmt;

use crate::frame::FrameType;
use crate::varint::VarInt;

/// A QUIC transport error code, as carried in a CONNECTION_CLOSE frame of
/// type 0x1c (RFC 9000 §20.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransportErrorCode(VarInt);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr,)*) => {
        impl TransportErrorCode {
            $($(#[$doc])* pub const $name: Self = Self(VarInt::from_u32($value));)*

            /// The RFC name of a code, if it is a defined one.
            pub fn name(self) -> Option<&'static str> {
                match self.0.into_inner() {
                    $(x if x == $value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// An endpoint uses this with CONNECTION_CLOSE to signal that the
    /// connection is being closed abruptly in the absence of any error.
    NO_ERROR = 0x00,
    /// The endpoint encountered an internal error and cannot continue.
    INTERNAL_ERROR = 0x01,
    /// The server refused to accept a new connection.
    CONNECTION_REFUSED = 0x02,
    /// More data was received than permitted in advertised data limits.
    FLOW_CONTROL_ERROR = 0x03,
    /// A stream was opened beyond the advertised stream limit.
    STREAM_LIMIT_ERROR = 0x04,
    /// A frame was received for a stream not in a state that permits it.
    STREAM_STATE_ERROR = 0x05,
    /// A stream's final size was exceeded, changed or contradicted.
    FINAL_SIZE_ERROR = 0x06,
    /// A frame was badly formatted.
    FRAME_ENCODING_ERROR = 0x07,
    /// Transport parameters were malformed, invalid, absent or duplicated.
    TRANSPORT_PARAMETER_ERROR = 0x08,
    /// More connection IDs were provided than active_connection_id_limit.
    CONNECTION_ID_LIMIT_ERROR = 0x09,
    /// A protocol compliance error not covered by a more specific code.
    PROTOCOL_VIOLATION = 0x0a,
    /// A server received a client Initial with an invalid Token field.
    INVALID_TOKEN = 0x0b,
    /// The application or application protocol caused the connection to be
    /// closed (used in a transport CONNECTION_CLOSE before the handshake
    /// confirms the application context, RFC 9000 §10.2.3).
    APPLICATION_ERROR = 0x0c,
    /// More data was received in CRYPTO frames than can be buffered.
    CRYPTO_BUFFER_EXCEEDED = 0x0d,
    /// A key update error.
    KEY_UPDATE_ERROR = 0x0e,
    /// The AEAD confidentiality or integrity limit was reached.
    AEAD_LIMIT_REACHED = 0x0f,
    /// No path supports the connection.
    NO_VIABLE_PATH = 0x10,
    /// Version negotiation failed or was tampered with (RFC 9368 §10.2).
    VERSION_NEGOTIATION_ERROR = 0x11,
}

impl TransportErrorCode {
    /// The code carrying a TLS alert: CRYPTO_ERROR is 0x0100 + the alert
    /// (RFC 9000 §20.1, RFC 9001 §4.8).
    pub const fn crypto(alert: u8) -> Self {
        Self(VarInt::from_u32(0x100 + alert as u32))
    }

    /// The TLS alert, if this is in the CRYPTO_ERROR range 0x0100-0x01ff.
    pub fn tls_alert(self) -> Option<u8> {
        // `checked_sub`, not `then_some(x - 0x100)`: that subtraction would
        // be evaluated, and overflow, for every code below the range.
        let alert = self.0.into_inner().checked_sub(0x100)?;
        u8::try_from(alert).ok()
    }

    /// The code as the integer carried on the wire.
    pub const fn to_varint(self) -> VarInt {
        self.0
    }
}

impl From<VarInt> for TransportErrorCode {
    fn from(x: VarInt) -> Self {
        Self(x)
    }
}

impl fmt::Debug for TransportErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TransportErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name() {
            f.write_str(name)
        } else if let Some(alert) = self.tls_alert() {
            write!(f, "CRYPTO_ERROR(alert {alert})")
        } else {
            write!(f, "unknown transport error {:#x}", self.0.into_inner())
        }
    }
}

/// A protocol violation by the peer. The connection closes with a
/// CONNECTION_CLOSE frame carrying `code`, `frame_type` and `reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportError {
    /// The error code to send.
    pub code: TransportErrorCode,
    /// The type of the frame that triggered the error, if one did.
    pub frame_type: Option<FrameType>,
    /// A short human-readable explanation (sent as the reason phrase).
    pub reason: &'static str,
}

impl TransportError {
    /// An error with `code` and `reason`, not tied to a frame.
    pub const fn new(code: TransportErrorCode, reason: &'static str) -> Self {
        Self { code, frame_type: None, reason }
    }

    /// The same error, attributed to a frame of type `frame_type`.
    pub const fn with_frame(mut self, frame_type: FrameType) -> Self {
        self.frame_type = Some(frame_type);
        self
    }
}

macro_rules! constructors {
    ($($fn_name:ident => $code:ident,)*) => {
        impl TransportError {
            $(
                #[doc = concat!("A ", stringify!($code), " error with `reason`.")]
                pub const fn $fn_name(reason: &'static str) -> Self {
                    Self::new(TransportErrorCode::$code, reason)
                }
            )*
        }
    };
}

constructors! {
    internal_error => INTERNAL_ERROR,
    flow_control_error => FLOW_CONTROL_ERROR,
    stream_limit_error => STREAM_LIMIT_ERROR,
    stream_state_error => STREAM_STATE_ERROR,
    final_size_error => FINAL_SIZE_ERROR,
    frame_encoding_error => FRAME_ENCODING_ERROR,
    transport_parameter_error => TRANSPORT_PARAMETER_ERROR,
    connection_id_limit_error => CONNECTION_ID_LIMIT_ERROR,
    protocol_violation => PROTOCOL_VIOLATION,
    invalid_token => INVALID_TOKEN,
    crypto_buffer_exceeded => CRYPTO_BUFFER_EXCEEDED,
    key_update_error => KEY_UPDATE_ERROR,
    aead_limit_reached => AEAD_LIMIT_REACHED,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(t) = self.frame_type {
            write!(f, " in {t}")?;
        }
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for TransportError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer's PROTOCOL_VIOLATION (0xa) logged to qlog panicked the
    /// `quic` client (debug build) in the interop matrix's handshakeloss
    /// case against aioquic.
    #[test]
    fn codes_below_the_crypto_range_have_no_alert() {
        assert_eq!(TransportErrorCode::PROTOCOL_VIOLATION.tls_alert(), None);
        assert_eq!(TransportErrorCode::from(VarInt::from_u32(0xff)).tls_alert(), None);
        assert_eq!(TransportErrorCode::from(VarInt::from_u32(0x100)).tls_alert(), Some(0));
        assert_eq!(TransportErrorCode::from(VarInt::from_u32(0x1ff)).tls_alert(), Some(0xff));
    }

    #[test]
    fn names_and_crypto_range() {
        assert_eq!(TransportErrorCode::FLOW_CONTROL_ERROR.to_varint().into_inner(), 3);
        assert_eq!(TransportErrorCode::AEAD_LIMIT_REACHED.name(), Some("AEAD_LIMIT_REACHED"));
        let hs = TransportErrorCode::crypto(40);
        assert_eq!(hs.to_varint().into_inner(), 0x128);
        assert_eq!(hs.tls_alert(), Some(40));
        assert_eq!(hs.to_string(), "CRYPTO_ERROR(alert 40)");
        assert_eq!(TransportErrorCode::from(VarInt::from_u32(0x200)).tls_alert(), None);
        assert_eq!(
            TransportErrorCode::from(VarInt::from_u32(0x200)).to_string(),
            "unknown transport error 0x200"
        );
        let e =
            TransportError::protocol_violation("ack of unsent packet").with_frame(FrameType::ACK);
        assert_eq!(e.to_string(), "PROTOCOL_VIOLATION in ACK: ack of unsent packet");
    }
}
