//! HTTP/3 error codes (RFC 9114 §8.1, with the QPACK codes of RFC 9204 §6)
//! and the error a peer's protocol violation at the wire layer turns into.

use core::fmt;

use quic_proto::VarInt;

use crate::frame::FrameType;
use crate::{grease, qpack};

/// An HTTP/3 application error code, as carried by CONNECTION_CLOSE (type
/// 0x1d), RESET_STREAM and STOP_SENDING (RFC 9114 §8.1).
///
/// Any value may arrive: unknown codes are kept as they are, and a receiver
/// treats them as [`ErrorCode::H3_NO_ERROR`] (RFC 9114 §8).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(VarInt);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr,)*) => {
        impl ErrorCode {
            $($(#[$doc])* pub const $name: Self = Self(VarInt::from_u32($value));)*

            /// The registered name of a code defined by RFC 9114 or RFC 9204.
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
    /// No error: the connection or stream closes with nothing to signal.
    H3_NO_ERROR = 0x100,
    /// The peer violated protocol requirements in a way no more specific
    /// code matches, or the endpoint declines to use the specific one.
    H3_GENERAL_PROTOCOL_ERROR = 0x101,
    /// An internal error has occurred in the HTTP stack.
    H3_INTERNAL_ERROR = 0x102,
    /// The peer created a stream that this endpoint will not accept.
    H3_STREAM_CREATION_ERROR = 0x103,
    /// A stream required by the HTTP/3 connection was closed or reset.
    H3_CLOSED_CRITICAL_STREAM = 0x104,
    /// A frame was not permitted in the current state or on the stream.
    H3_FRAME_UNEXPECTED = 0x105,
    /// A frame failed its layout requirements or had an invalid size.
    H3_FRAME_ERROR = 0x106,
    /// The peer is exhibiting a behavior that might generate excessive load.
    H3_EXCESSIVE_LOAD = 0x107,
    /// A stream ID or push ID was used incorrectly (past or reducing a
    /// limit, or reused).
    H3_ID_ERROR = 0x108,
    /// The payload of a SETTINGS frame was in error.
    H3_SETTINGS_ERROR = 0x109,
    /// No SETTINGS frame began the control stream.
    H3_MISSING_SETTINGS = 0x10a,
    /// A server rejected a request without any application processing.
    H3_REQUEST_REJECTED = 0x10b,
    /// The request or its response (pushed ones too) is cancelled.
    H3_REQUEST_CANCELLED = 0x10c,
    /// The client's stream ended without a fully formed request.
    H3_REQUEST_INCOMPLETE = 0x10d,
    /// An HTTP message was malformed and cannot be processed.
    H3_MESSAGE_ERROR = 0x10e,
    /// The TCP connection of a CONNECT request was reset or closed abnormally.
    H3_CONNECT_ERROR = 0x10f,
    /// The operation cannot be served over HTTP/3; retry over HTTP/1.1.
    H3_VERSION_FALLBACK = 0x110,
    /// QPACK: an encoded field section could not be decoded (RFC 9204 §6).
    QPACK_DECOMPRESSION_FAILED = 0x200,
    /// QPACK: an encoder stream instruction was invalid (RFC 9204 §6).
    QPACK_ENCODER_STREAM_ERROR = 0x201,
    /// QPACK: a decoder stream instruction was invalid (RFC 9204 §6).
    QPACK_DECODER_STREAM_ERROR = 0x202,
}

impl ErrorCode {
    /// The code as the integer carried on the wire.
    pub const fn to_varint(self) -> VarInt {
        self.0
    }

    //= https://www.rfc-editor.org/rfc/rfc9114#section-8.1
    //# Error codes of the format `0x1f * N + 0x21` for non-negative integer values of
    //# `N` are reserved to exercise the requirement that unknown error codes be treated
    //# as equivalent to H3_NO_ERROR
    /// Whether this is a reserved (greasing) code `0x1f * N + 0x21`.
    pub fn is_reserved(self) -> bool {
        grease::is_reserved(self.0.into_inner())
    }

    /// The reserved code `0x1f * n + 0x21`, or `None` if it would not fit
    /// a variable-length integer.
    pub fn reserved(n: u64) -> Option<Self> {
        grease::nth(n).map(Self)
    }

    //= https://www.rfc-editor.org/rfc/rfc9114#section-8.1
    //# Implementations SHOULD select an
    //# error code from this space with some probability when they would have sent
    //# H3_NO_ERROR.
    /// A reserved code chosen by the caller's `random`: send it, when some
    /// random draw says so, where [`ErrorCode::H3_NO_ERROR`] would go.
    pub fn grease(random: u64) -> Self {
        Self(grease::pick(random))
    }
}

impl From<VarInt> for ErrorCode {
    fn from(x: VarInt) -> Self {
        Self(x)
    }
}

impl From<ErrorCode> for VarInt {
    fn from(x: ErrorCode) -> Self {
        x.0
    }
}

impl From<qpack::ErrorCode> for ErrorCode {
    fn from(x: qpack::ErrorCode) -> Self {
        match x {
            qpack::ErrorCode::DecompressionFailed => Self::QPACK_DECOMPRESSION_FAILED,
            qpack::ErrorCode::EncoderStream => Self::QPACK_ENCODER_STREAM_ERROR,
            qpack::ErrorCode::DecoderStream => Self::QPACK_DECODER_STREAM_ERROR,
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name() {
            f.write_str(name)
        } else if self.is_reserved() {
            write!(f, "reserved error code {:#x}", self.0.into_inner())
        } else {
            write!(f, "unknown error code {:#x}", self.0.into_inner())
        }
    }
}

/// A protocol violation by the peer found while decoding HTTP/3 wire
/// data. The connection layer closes the connection (or, where the RFC
/// allows, resets the stream) with `code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H3Error {
    /// The error code to send.
    pub code: ErrorCode,
    /// The type of the frame that triggered the error, if one did.
    pub frame_type: Option<FrameType>,
    /// A short human-readable explanation (sent as the reason phrase).
    pub reason: &'static str,
}

impl H3Error {
    /// An error with `code` and `reason`, not tied to a frame.
    pub const fn new(code: ErrorCode, reason: &'static str) -> Self {
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
        impl H3Error {
            $(
                #[doc = concat!("An ", stringify!($code), " error with `reason`.")]
                pub const fn $fn_name(reason: &'static str) -> Self {
                    Self::new(ErrorCode::$code, reason)
                }
            )*
        }
    };
}

constructors! {
    general_protocol_error => H3_GENERAL_PROTOCOL_ERROR,
    stream_creation_error => H3_STREAM_CREATION_ERROR,
    frame_unexpected => H3_FRAME_UNEXPECTED,
    frame_error => H3_FRAME_ERROR,
    excessive_load => H3_EXCESSIVE_LOAD,
    id_error => H3_ID_ERROR,
    settings_error => H3_SETTINGS_ERROR,
    missing_settings => H3_MISSING_SETTINGS,
}

impl fmt::Display for H3Error {
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

impl std::error::Error for H3Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_rfc9114_and_rfc9204_by_value_and_name() {
        let table: [(u64, &str); 20] = [
            (0x100, "H3_NO_ERROR"),
            (0x101, "H3_GENERAL_PROTOCOL_ERROR"),
            (0x102, "H3_INTERNAL_ERROR"),
            (0x103, "H3_STREAM_CREATION_ERROR"),
            (0x104, "H3_CLOSED_CRITICAL_STREAM"),
            (0x105, "H3_FRAME_UNEXPECTED"),
            (0x106, "H3_FRAME_ERROR"),
            (0x107, "H3_EXCESSIVE_LOAD"),
            (0x108, "H3_ID_ERROR"),
            (0x109, "H3_SETTINGS_ERROR"),
            (0x10a, "H3_MISSING_SETTINGS"),
            (0x10b, "H3_REQUEST_REJECTED"),
            (0x10c, "H3_REQUEST_CANCELLED"),
            (0x10d, "H3_REQUEST_INCOMPLETE"),
            (0x10e, "H3_MESSAGE_ERROR"),
            (0x10f, "H3_CONNECT_ERROR"),
            (0x110, "H3_VERSION_FALLBACK"),
            (0x200, "QPACK_DECOMPRESSION_FAILED"),
            (0x201, "QPACK_ENCODER_STREAM_ERROR"),
            (0x202, "QPACK_DECODER_STREAM_ERROR"),
        ];
        for (value, name) in table {
            let code = ErrorCode::from(VarInt::from_u64(value).unwrap());
            assert_eq!(code.name(), Some(name));
            assert_eq!(code.to_string(), name);
            assert_eq!(format!("{code:?}"), name);
            assert!(!code.is_reserved());
        }
        assert_eq!(ErrorCode::H3_VERSION_FALLBACK.to_varint().into_inner(), 0x110);
        assert_eq!(
            ErrorCode::from(VarInt::from_u32(0x111)).to_string(),
            "unknown error code 0x111"
        );
        assert_eq!(
            ErrorCode::from(qpack::ErrorCode::EncoderStream),
            ErrorCode::QPACK_ENCODER_STREAM_ERROR
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc9114#section-8.1
    //= type=test
    //# Error codes of the format `0x1f * N + 0x21` for non-negative integer values of
    //# `N` are reserved to exercise the requirement that unknown error codes be treated
    //# as equivalent to H3_NO_ERROR
    #[test]
    fn grease_codes_are_reserved() {
        assert_eq!(ErrorCode::reserved(0).map(|c| c.to_varint().into_inner()), Some(0x21));
        assert_eq!(ErrorCode::reserved(u64::MAX), None);
        for random in [0, 1, 0xdead_beef, u64::MAX] {
            let code = ErrorCode::grease(random);
            assert!(code.is_reserved() && code.name().is_none(), "{code}");
        }
        assert_eq!(ErrorCode::grease(0).to_string(), "reserved error code 0x21");
    }

    #[test]
    fn display_names_code_frame_and_reason() {
        let err = H3Error::frame_error("trailing bytes").with_frame(FrameType::GOAWAY);
        assert_eq!(err.to_string(), "H3_FRAME_ERROR in GOAWAY: trailing bytes");
        assert_eq!(H3Error::settings_error("").to_string(), "H3_SETTINGS_ERROR");
    }
}
