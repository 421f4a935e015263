//! HTTP/3 frame type codepoints (RFC 9114 §7.2, §11.2.1; PRIORITY_UPDATE
//! from RFC 9218 §7.2).

use core::fmt;

use quic_proto::VarInt;

use crate::grease;

/// A frame type, the variable-length integer that starts every HTTP/3
/// frame. Any value may arrive; the named ones are associated consts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameType(pub VarInt);

macro_rules! frame_types {
    ($($(#[$doc:meta])* $name:ident = $value:expr, $wire:literal;)*) => {
        impl FrameType {
            $($(#[$doc])* pub const $name: Self = Self(VarInt::from_u32($value));)*

            /// The registered name of a frame type this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0.into_inner() {
                    $(x if x == $value => Some($wire),)*
                    _ => None,
                }
            }
        }
    };
}

frame_types! {
    /// DATA (0x00): request or response content.
    DATA = 0x00, "DATA";
    /// HEADERS (0x01): a QPACK-encoded field section.
    HEADERS = 0x01, "HEADERS";
    /// Reserved: HTTP/2's PRIORITY; never valid in HTTP/3.
    H2_PRIORITY = 0x02, "H2_PRIORITY";
    /// CANCEL_PUSH (0x03): a push ID the sender gives up on.
    CANCEL_PUSH = 0x03, "CANCEL_PUSH";
    /// SETTINGS (0x04): the first frame of each control stream.
    SETTINGS = 0x04, "SETTINGS";
    /// PUSH_PROMISE (0x05): a push ID and the promised request's fields.
    PUSH_PROMISE = 0x05, "PUSH_PROMISE";
    /// Reserved: HTTP/2's PING; never valid in HTTP/3.
    H2_PING = 0x06, "H2_PING";
    /// GOAWAY (0x07): graceful shutdown from a stream or push ID.
    GOAWAY = 0x07, "GOAWAY";
    /// Reserved: HTTP/2's WINDOW_UPDATE; never valid in HTTP/3.
    H2_WINDOW_UPDATE = 0x08, "H2_WINDOW_UPDATE";
    /// Reserved: HTTP/2's CONTINUATION; never valid in HTTP/3.
    H2_CONTINUATION = 0x09, "H2_CONTINUATION";
    /// MAX_PUSH_ID (0x0d): the largest push ID a server may use.
    MAX_PUSH_ID = 0x0d, "MAX_PUSH_ID";
    /// PRIORITY_UPDATE for a request stream (0xf0700, RFC 9218 §7.2).
    PRIORITY_UPDATE_REQUEST = 0xf0700, "PRIORITY_UPDATE(request)";
    /// PRIORITY_UPDATE for a push stream (0xf0701, RFC 9218 §7.2).
    PRIORITY_UPDATE_PUSH = 0xf0701, "PRIORITY_UPDATE(push)";
}

impl FrameType {
    /// Whether this is one of the HTTP/2 frame types RFC 9114 §11.2.1
    /// reserves (0x02, 0x06, 0x08, 0x09): receiving one is
    /// H3_FRAME_UNEXPECTED wherever it arrives.
    pub fn is_h2_reserved(self) -> bool {
        matches!(
            self,
            Self::H2_PRIORITY | Self::H2_PING | Self::H2_WINDOW_UPDATE | Self::H2_CONTINUATION
        )
    }

    //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.8
    //# Frame types of the format `0x1f * N + 0x21` for non-negative integer values of
    //# `N` are reserved to exercise the requirement that unknown types be ignored
    /// Whether this is a reserved (greasing) type `0x1f * N + 0x21`.
    pub fn is_reserved(self) -> bool {
        grease::is_reserved(self.0.into_inner())
    }

    /// The reserved type `0x1f * n + 0x21`, or `None` if it would not fit
    /// a variable-length integer.
    pub fn reserved(n: u64) -> Option<Self> {
        grease::nth(n).map(Self)
    }

    /// A reserved type chosen by the caller's `random`.
    pub fn grease(random: u64) -> Self {
        Self(grease::pick(random))
    }

    /// Whether the wire layer buffers a whole frame of this type before
    /// decoding it, so that [`crate::frame::FrameHeader::decode`] applies
    /// the caller's payload limit. DATA is streamed and unknown types are
    /// skipped, so neither is buffered.
    pub fn is_buffered(self) -> bool {
        matches!(
            self,
            Self::HEADERS
                | Self::CANCEL_PUSH
                | Self::SETTINGS
                | Self::PUSH_PROMISE
                | Self::GOAWAY
                | Self::MAX_PUSH_ID
                | Self::PRIORITY_UPDATE_REQUEST
                | Self::PRIORITY_UPDATE_PUSH
        )
    }

    /// Whether the payload is exactly one variable-length integer
    /// (CANCEL_PUSH, GOAWAY, MAX_PUSH_ID), so 1 to 8 bytes long.
    pub fn is_single_varint(self) -> bool {
        matches!(self, Self::CANCEL_PUSH | Self::GOAWAY | Self::MAX_PUSH_ID)
    }
}

impl fmt::Debug for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.name() {
            f.write_str(name)
        } else if self.is_reserved() {
            write!(f, "reserved frame type {:#x}", self.0.into_inner())
        } else {
            write!(f, "unknown frame type {:#x}", self.0.into_inner())
        }
    }
}
