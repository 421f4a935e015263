//! Frame type codepoints (RFC 9000 §12.4 Table 3, RFC 9221 §4).

use core::fmt;

use crate::error::TransportError;
use crate::space::EncryptionLevel;
use crate::varint::VarInt;

/// A frame type, as the variable-length integer that starts every frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameType(pub VarInt);

macro_rules! frame_types {
    ($($name:ident = $value:expr,)*) => {
        impl FrameType {
            $(
                #[doc = concat!("The ", stringify!($name), " frame type.")]
                pub const $name: Self = Self(VarInt::from_u32($value));
            )*

            /// The RFC name of a defined frame type.
            pub fn name(self) -> Option<&'static str> {
                match self.0.into_inner() {
                    $(x if x == $value => Some(stringify!($name)),)*
                    0x08..=0x0f => Some("STREAM"),
                    _ => None,
                }
            }
        }
    };
}

frame_types! {
    PADDING = 0x00,
    PING = 0x01,
    ACK = 0x02,
    ACK_ECN = 0x03,
    RESET_STREAM = 0x04,
    STOP_SENDING = 0x05,
    CRYPTO = 0x06,
    NEW_TOKEN = 0x07,
    STREAM = 0x08,
    MAX_DATA = 0x10,
    MAX_STREAM_DATA = 0x11,
    MAX_STREAMS_BIDI = 0x12,
    MAX_STREAMS_UNI = 0x13,
    DATA_BLOCKED = 0x14,
    STREAM_DATA_BLOCKED = 0x15,
    STREAMS_BLOCKED_BIDI = 0x16,
    STREAMS_BLOCKED_UNI = 0x17,
    NEW_CONNECTION_ID = 0x18,
    RETIRE_CONNECTION_ID = 0x19,
    PATH_CHALLENGE = 0x1a,
    PATH_RESPONSE = 0x1b,
    CONNECTION_CLOSE = 0x1c,
    APPLICATION_CLOSE = 0x1d,
    HANDSHAKE_DONE = 0x1e,
    DATAGRAM = 0x30,
    DATAGRAM_WITH_LEN = 0x31,
}

impl FrameType {
    /// STREAM frame type bit: an Offset field is present.
    pub const STREAM_OFF_BIT: u64 = 0x04;
    /// STREAM frame type bit: a Length field is present.
    pub const STREAM_LEN_BIT: u64 = 0x02;
    /// STREAM frame type bit: this frame ends the stream.
    pub const STREAM_FIN_BIT: u64 = 0x01;

    /// Whether this is one of the eight STREAM types 0x08-0x0f.
    pub fn is_stream(self) -> bool {
        (0x08..=0x0f).contains(&self.0.into_inner())
    }

    /// Whether a frame of this type makes its packet ack-eliciting, so the
    /// peer must acknowledge it within its max_ack_delay and the sender arms
    /// its PTO timer for it.
    ///
    /// RFC 9002 §2: all frames other than ACK, PADDING and CONNECTION_CLOSE.
    /// DATAGRAM is ack-eliciting too (RFC 9221 §5.2), as is any extension
    /// frame (RFC 9000 §19.21).
    pub fn is_ack_eliciting(self) -> bool {
        !matches!(
            self,
            Self::PADDING
                | Self::ACK
                | Self::ACK_ECN
                | Self::CONNECTION_CLOSE
                | Self::APPLICATION_CLOSE
        )
    }

    /// Whether a frame of this type makes its packet count toward bytes in
    /// flight for congestion control: ack-eliciting frames and PADDING
    /// (RFC 9002 §2). A packet of only ACK and CONNECTION_CLOSE frames does
    /// not.
    pub fn counts_in_flight(self) -> bool {
        self.is_ack_eliciting() || self == Self::PADDING
    }

    /// Whether this is a probing frame (RFC 9000 §9.1): PATH_CHALLENGE,
    /// PATH_RESPONSE, NEW_CONNECTION_ID or PADDING. A packet of only probing
    /// frames does not migrate the connection to the address it came from.
    pub fn is_probing(self) -> bool {
        matches!(
            self,
            Self::PATH_CHALLENGE | Self::PATH_RESPONSE | Self::NEW_CONNECTION_ID | Self::PADDING
        )
    }

    /// Whether a frame of this type may appear in a packet protected at
    /// `level`: the "Pkts" column of RFC 9000 §12.4 Table 3, plus DATAGRAM in
    /// 0-RTT and 1-RTT (RFC 9221 §6). Unknown types are allowed nowhere, as
    /// they cannot be decoded.
    ///
    /// RETIRE_CONNECTION_ID follows the table (0-RTT allowed) although
    /// RFC 9000 §12.5 lets a server reject it in 0-RTT.
    pub fn is_allowed_at(self, level: EncryptionLevel) -> bool {
        let bit = match level {
            EncryptionLevel::Initial => I,
            EncryptionLevel::Handshake => H,
            EncryptionLevel::ZeroRtt => Z,
            EncryptionLevel::OneRtt => O,
        };
        self.allowed_levels() & bit != 0
    }

    /// The levels of [`FrameType::is_allowed_at`] as a bit set.
    fn allowed_levels(self) -> u8 {
        match self.0.into_inner() {
            // PADDING, PING
            0x00 | 0x01 => I | H | Z | O,
            // ACK, ACK_ECN, CRYPTO
            0x02 | 0x03 | 0x06 => I | H | O,
            //= https://www.rfc-editor.org/rfc/rfc9000#section-12.5
            //# CONNECTION_CLOSE frames signaling errors at the QUIC layer (type 0x1c) MAY
            //# appear in any packet number space.
            0x1c => I | H | Z | O,
            //= https://www.rfc-editor.org/rfc/rfc9000#section-12.5
            //# CONNECTION_CLOSE frames signaling
            //# application errors (type 0x1d) MUST only appear in the application data packet
            //# number space.
            //
            //= https://www.rfc-editor.org/rfc/rfc9000#section-12.5
            //# All other frame types MUST only be sent in the application data packet number
            //# space.
            //
            //= https://www.rfc-editor.org/rfc/rfc9221#section-6
            //# All application data transmitted with the
            //# DATAGRAM frame, like the STREAM frame, MUST be protected either by 0-RTT or
            //# 1-RTT keys.
            0x04 | 0x05 | 0x08..=0x1a | 0x1d | 0x30 | 0x31 => Z | O,
            // NEW_TOKEN, PATH_RESPONSE, HANDSHAKE_DONE
            0x07 | 0x1b | 0x1e => O,
            _ => 0,
        }
    }

    /// `Ok` if a frame of this type may appear at `level`, else the
    /// PROTOCOL_VIOLATION to close the connection with. Call it for every
    /// frame of a received packet before acting on the frame.
    pub fn check_allowed_at(self, level: EncryptionLevel) -> Result<(), TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-12.4
        //# An endpoint MUST treat receipt of a
        //# frame in a packet type that is not permitted as a connection error of type
        //# PROTOCOL_VIOLATION.
        if self.is_allowed_at(level) {
            Ok(())
        } else {
            Err(TransportError::protocol_violation("frame not allowed at this encryption level")
                .with_frame(self))
        }
    }
}

// Bits of `FrameType::allowed_levels`, named after Table 3's Pkts letters.
const I: u8 = 1;
const H: u8 = 2;
const Z: u8 = 4;
const O: u8 = 8;

impl fmt::Debug for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) if self.is_stream() => write!(f, "{name}({:#04x})", self.0.into_inner()),
            Some(name) => f.write_str(name),
            None => write!(f, "FrameType({:#x})", self.0.into_inner()),
        }
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
