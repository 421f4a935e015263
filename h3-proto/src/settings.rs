//! HTTP/3 settings (RFC 9114 §7.2.4): the SETTINGS frame's payload, with
//! the QPACK settings of RFC 9204 §5 and the extension settings
//! SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3, RFC 9220 §3) and
//! SETTINGS_H3_DATAGRAM (RFC 9297 §2.1.1).

use core::fmt;

use quic_proto::VarInt;
use quic_proto::coding::Reader;

use crate::error::H3Error;
use crate::frame::{FrameHeader, FrameType};
use crate::grease;

#[cfg(test)]
pub(crate) mod tests;

/// A setting identifier (RFC 9114 §7.2.4.1, §11.2.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SettingId(pub VarInt);

macro_rules! setting_ids {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl SettingId {
            $($(#[$doc])* pub const $name: Self = Self(VarInt::from_u32($value));)*

            /// The registered name of an identifier this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0.into_inner() {
                    $(x if x == $value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

setting_ids! {
    /// Reserved (0x00): no HTTP/2 setting had this identifier either.
    H2_RESERVED = 0x00;
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY (0x01, RFC 9204 §5).
    QPACK_MAX_TABLE_CAPACITY = 0x01;
    /// Reserved: HTTP/2's SETTINGS_ENABLE_PUSH.
    H2_ENABLE_PUSH = 0x02;
    /// Reserved: HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS.
    H2_MAX_CONCURRENT_STREAMS = 0x03;
    /// Reserved: HTTP/2's SETTINGS_INITIAL_WINDOW_SIZE.
    H2_INITIAL_WINDOW_SIZE = 0x04;
    /// Reserved: HTTP/2's SETTINGS_MAX_FRAME_SIZE.
    H2_MAX_FRAME_SIZE = 0x05;
    /// SETTINGS_MAX_FIELD_SECTION_SIZE (0x06, RFC 9114 §7.2.4.1).
    MAX_FIELD_SECTION_SIZE = 0x06;
    /// SETTINGS_QPACK_BLOCKED_STREAMS (0x07, RFC 9204 §5).
    QPACK_BLOCKED_STREAMS = 0x07;
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x08, RFC 8441 §3, RFC 9220 §3).
    ENABLE_CONNECT_PROTOCOL = 0x08;
    /// SETTINGS_H3_DATAGRAM (0x33, RFC 9297 §2.1.1).
    H3_DATAGRAM = 0x33;
}

impl SettingId {
    /// Whether this is one of the identifiers RFC 9114 §11.2.2 reserves
    /// because HTTP/2 used them (0x00, 0x02 to 0x05).
    pub fn is_h2_reserved(self) -> bool {
        matches!(self.0.into_inner(), 0x00 | 0x02..=0x05)
    }

    //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4.1
    //# Setting identifiers of the format `0x1f * N + 0x21` for non-negative integer
    //# values of `N` are reserved to exercise the requirement that unknown identifiers
    //# be ignored.
    /// Whether this is a reserved (greasing) identifier `0x1f * N + 0x21`.
    pub fn is_reserved(self) -> bool {
        grease::is_reserved(self.0.into_inner())
    }

    /// The reserved identifier `0x1f * n + 0x21`, or `None` if it would
    /// not fit a variable-length integer.
    pub fn reserved(n: u64) -> Option<Self> {
        grease::nth(n).map(Self)
    }

    /// A reserved identifier chosen by the caller's `random`.
    pub fn grease(random: u64) -> Self {
        Self(grease::pick(random))
    }
}

impl fmt::Debug for SettingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SettingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "setting {:#x}", self.0.into_inner()),
        }
    }
}

/// The settings one endpoint declares in its SETTINGS frame, each at its
/// default until the frame says otherwise (RFC 9114 §7.2.4.1, RFC 9204
/// §5): use [`Settings::default`] for the peer's settings before its
/// SETTINGS frame arrives, and set fields on it for one's own.
///
/// Unknown identifiers are ignored on receipt and not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Settings {
    /// SETTINGS_QPACK_MAX_TABLE_CAPACITY: the largest dynamic table the
    /// sender's QPACK decoder accepts. Default 0: no dynamic table.
    pub qpack_max_table_capacity: VarInt,
    /// SETTINGS_MAX_FIELD_SECTION_SIZE: the largest field section (RFC
    /// 9114 §4.2.2) the sender will accept. Default `None`: unlimited.
    pub max_field_section_size: Option<VarInt>,
    /// SETTINGS_QPACK_BLOCKED_STREAMS: how many streams the sender's QPACK
    /// decoder lets block. Default 0.
    pub qpack_blocked_streams: VarInt,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL: whether the sender (a server)
    /// accepts extended CONNECT. Default `false`.
    pub enable_connect_protocol: bool,
    /// SETTINGS_H3_DATAGRAM: whether the sender supports HTTP Datagrams.
    /// Default `false`.
    pub h3_datagram: bool,
}

impl Default for Settings {
    //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4.1
    //# SETTINGS_MAX_FIELD_SECTION_SIZE (0x06):
    //# : The default value is unlimited.
    fn default() -> Self {
        Self {
            qpack_max_table_capacity: VarInt::ZERO,
            max_field_section_size: None,
            qpack_blocked_streams: VarInt::ZERO,
            enable_connect_protocol: false,
            h3_datagram: false,
        }
    }
}

impl Settings {
    /// The most settings a SETTINGS frame may carry before it is refused
    /// with H3_EXCESSIVE_LOAD.
    ///
    /// Every identifier must be remembered to find duplicates, unknown
    /// ones included, so the count needs a bound of its own besides the
    /// frame's length limit: 64 identifiers make the duplicate check a
    /// scan of a fixed array and cost no allocation. Registered HTTP/3
    /// settings number about a dozen, so a legitimate peer with a few
    /// grease entries stays far below.
    pub const MAX_ENTRIES: usize = 64;

    /// The maximum field section size as an integer, `u64::MAX` when
    /// unlimited: the form the QPACK [`crate::qpack::Decoder`] takes.
    pub fn max_field_section_size_or_max(&self) -> u64 {
        self.max_field_section_size.map_or(u64::MAX, VarInt::into_inner)
    }

    /// Decodes a SETTINGS frame's payload (exactly its Length field's
    /// bytes). Settings it omits keep their defaults.
    pub fn decode_payload(payload: &[u8]) -> Result<Self, H3Error> {
        let mut settings = Self::default();
        let mut seen = [VarInt::ZERO; Self::MAX_ENTRIES];
        let mut count = 0;
        let mut r = Reader::new(payload);
        while !r.is_empty() {
            //= https://www.rfc-editor.org/rfc/rfc9114#section-7.1
            //# A frame payload that contains additional bytes after the
            //# identified fields or a frame payload that terminates before the end of the
            //# identified fields MUST be treated as a connection error of type
            //# H3_FRAME_ERROR.
            let (Ok(id), Ok(value)) = (VarInt::decode(&mut r), VarInt::decode(&mut r)) else {
                return Err(frame_error("payload ends inside a setting"));
            };
            let id = SettingId(id);

            //= https://www.rfc-editor.org/rfc/rfc9114#section-10.5
            //# The ability to send undefined protocol elements that the peer is required to
            //# ignore can be abused to cause a peer to expend additional processing time.  This
            //# might be done by setting multiple undefined SETTINGS parameters, unknown frame
            //# types, or unknown stream types.
            if count == Self::MAX_ENTRIES {
                return Err(H3Error::excessive_load("more settings than this endpoint accepts")
                    .with_frame(FrameType::SETTINGS));
            }

            //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4
            //# The same setting identifier MUST NOT occur more than once in the SETTINGS frame.
            //# A receiver MAY treat the presence of duplicate setting identifiers as a
            //# connection error of type H3_SETTINGS_ERROR.
            if seen[..count].contains(&id.0) {
                return Err(settings_error("duplicate setting identifier"));
            }
            seen[count] = id.0;
            count += 1;

            //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4.1
            //# Setting identifiers that were defined in {{RFC9113}} where there is no
            //# corresponding HTTP/3 setting have also been reserved ({{iana-settings}}). These
            //# reserved settings MUST NOT be sent, and their receipt MUST be treated as a
            //# connection error of type H3_SETTINGS_ERROR.
            if id.is_h2_reserved() {
                return Err(settings_error("HTTP/2 setting identifier"));
            }

            match id {
                SettingId::QPACK_MAX_TABLE_CAPACITY => settings.qpack_max_table_capacity = value,
                SettingId::MAX_FIELD_SECTION_SIZE => settings.max_field_section_size = Some(value),
                SettingId::QPACK_BLOCKED_STREAMS => settings.qpack_blocked_streams = value,
                // RFC 8441 §3 and RFC 9297 §2.1.1 allow only 0 and 1 (they
                // are not among the spec texts, so not quoted). Any other
                // value is "an error in the payload of a SETTINGS frame",
                // which RFC 9114 §8.1 gives H3_SETTINGS_ERROR for.
                SettingId::ENABLE_CONNECT_PROTOCOL => {
                    settings.enable_connect_protocol = flag(value)?;
                }
                SettingId::H3_DATAGRAM => settings.h3_datagram = flag(value)?,
                //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4
                //# An implementation MUST ignore any parameter with an identifier it does
                //# not understand.
                _ => {}
            }
        }
        Ok(settings)
    }

    /// Calls `f` with each setting that differs from its default, in
    /// identifier order: the ones [`Settings::encode`] writes. Defaults
    /// are omitted, which a receiver reads back as the same values.
    pub(crate) fn for_each(&self, mut f: impl FnMut(SettingId, VarInt)) {
        let one = VarInt::from_u32(1);
        if self.qpack_max_table_capacity != VarInt::ZERO {
            f(SettingId::QPACK_MAX_TABLE_CAPACITY, self.qpack_max_table_capacity);
        }
        if let Some(size) = self.max_field_section_size {
            f(SettingId::MAX_FIELD_SECTION_SIZE, size);
        }
        if self.qpack_blocked_streams != VarInt::ZERO {
            f(SettingId::QPACK_BLOCKED_STREAMS, self.qpack_blocked_streams);
        }
        if self.enable_connect_protocol {
            f(SettingId::ENABLE_CONNECT_PROTOCOL, one);
        }
        if self.h3_datagram {
            f(SettingId::H3_DATAGRAM, one);
        }
    }

    /// The SETTINGS payload length [`Settings::encode`] declares.
    pub fn payload_len(&self) -> usize {
        let mut len = 0;
        self.for_each(|id, value| len += id.0.size() + value.size());
        len
    }

    /// The number of bytes [`Settings::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let len = self.payload_len();
        FrameHeader::encoded_len(FrameType::SETTINGS, len as u64) + len
    }

    /// Appends a whole SETTINGS frame (header and payload) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        FrameHeader::encode(FrameType::SETTINGS, self.payload_len() as u64, out);
        self.for_each(|id, value| {
            id.0.encode(out);
            value.encode(out);
        });
    }

    //= https://www.rfc-editor.org/rfc/rfc9114#section-7.2.4.1
    //# Endpoints SHOULD include at
    //# least one such setting in their SETTINGS frame.
    /// Like [`Settings::encode`], with one reserved setting added: an
    /// identifier `0x1f * N + 0x21`, a value below 2^14 and a position
    /// among the others, all drawn from the caller's `random`. Writes
    /// more than [`Settings::encoded_len`] bytes.
    pub fn encode_with_grease(&self, random: u64, out: &mut Vec<u8>) {
        let grease_id = SettingId::grease(random);
        let grease_value = VarInt::from_u32((random >> 32) as u32 & 0x3fff);
        let mut count = 0;
        self.for_each(|_, _| count += 1);
        let position = (random >> 56) % (count + 1);

        let len = self.payload_len() + grease_id.0.size() + grease_value.size();
        FrameHeader::encode(FrameType::SETTINGS, len as u64, out);
        let mut index = 0;
        let mut put = |id: SettingId, value: VarInt| {
            if index == position {
                grease_id.0.encode(out);
                grease_value.encode(out);
            }
            id.0.encode(out);
            value.encode(out);
            index += 1;
        };
        self.for_each(&mut put);
        if position == count {
            grease_id.0.encode(out);
            grease_value.encode(out);
        }
    }
}

fn flag(value: VarInt) -> Result<bool, H3Error> {
    match value.into_inner() {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(settings_error("boolean setting other than 0 or 1")),
    }
}

fn frame_error(reason: &'static str) -> H3Error {
    H3Error::frame_error(reason).with_frame(FrameType::SETTINGS)
}

fn settings_error(reason: &'static str) -> H3Error {
    H3Error::settings_error(reason).with_frame(FrameType::SETTINGS)
}
