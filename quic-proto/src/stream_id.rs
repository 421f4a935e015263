//! Stream IDs (RFC 9000 §2.1), and the `Side` and `Dir` they encode.

use core::fmt;
use core::ops::Not;

use crate::varint::VarInt;

/// Which end of a connection: the one that sent the first Initial, or the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The endpoint that initiated the connection.
    Client,
    /// The endpoint that accepted it.
    Server,
}

impl Side {
    /// Whether this is the client side.
    pub fn is_client(self) -> bool {
        self == Side::Client
    }

    /// Whether this is the server side.
    pub fn is_server(self) -> bool {
        self == Side::Server
    }
}

impl Not for Side {
    type Output = Side;
    fn not(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Whether a stream carries data both ways or only from its initiator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Bidirectional.
    Bi,
    /// Unidirectional: only the initiator sends.
    Uni,
}

/// A stream ID: a 62-bit integer whose two low bits give the initiator and
/// direction (RFC 9000 §2.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(VarInt);

impl StreamId {
    //= https://www.rfc-editor.org/rfc/rfc9000#section-2.1
    //# The least significant bit (0x01) of the stream ID identifies the
    //# initiator of the stream.  Client-initiated streams have even-numbered
    //# stream IDs (with the bit set to 0), and server-initiated streams have
    //# odd-numbered stream IDs (with the bit set to 1).
    //
    //# The second least significant bit (0x02) of the stream ID
    //# distinguishes between bidirectional streams (with the bit set to 0)
    //# and unidirectional streams (with the bit set to 1).

    /// The `index`th stream of `dir` opened by `initiator` (0-based), or
    /// `None` if that ID would not fit in 62 bits.
    pub fn new(initiator: Side, dir: Dir, index: u64) -> Option<Self> {
        let low = match initiator {
            Side::Client => 0,
            Side::Server => 1,
        } | match dir {
            Dir::Bi => 0,
            Dir::Uni => 2,
        };
        let id = index.checked_mul(4)?.checked_add(low)?;
        VarInt::from_u64(id).ok().map(Self)
    }

    /// The side that opened the stream.
    pub fn initiator(self) -> Side {
        if self.0.into_inner() & 1 == 0 { Side::Client } else { Side::Server }
    }

    /// The stream's direction.
    pub fn dir(self) -> Dir {
        if self.0.into_inner() & 2 == 0 { Dir::Bi } else { Dir::Uni }
    }

    /// The stream's position among the streams of its initiator and direction.
    pub fn index(self) -> u64 {
        self.0.into_inner() >> 2
    }

    /// The ID as the integer carried on the wire.
    pub const fn to_varint(self) -> VarInt {
        self.0
    }
}

impl From<VarInt> for StreamId {
    fn from(x: VarInt) -> Self {
        Self(x)
    }
}

impl From<StreamId> for VarInt {
    fn from(x: StreamId) -> VarInt {
        x.0
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", self.0)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.initiator() {
            Side::Client => "client",
            Side::Server => "server",
        };
        let dir = match self.dir() {
            Dir::Bi => "bi",
            Dir::Uni => "uni",
        };
        write!(f, "{side} {dir} stream {}", self.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    //= https://www.rfc-editor.org/rfc/rfc9000#section-2.1
    //= type=test
    //# The two least significant bits from a stream ID therefore identify a
    //# stream as one of four types, as summarized in Table 1.
    #[test]
    fn low_bits_give_type() {
        let table = [
            (0x00, Side::Client, Dir::Bi),
            (0x01, Side::Server, Dir::Bi),
            (0x02, Side::Client, Dir::Uni),
            (0x03, Side::Server, Dir::Uni),
        ];
        for (bits, side, dir) in table {
            let id = StreamId::new(side, dir, 5).unwrap();
            assert_eq!(id.to_varint().into_inner(), 20 + bits);
            assert_eq!((id.initiator(), id.dir(), id.index()), (side, dir, 5));
        }
        assert!(StreamId::new(Side::Client, Dir::Bi, 1 << 60).is_none());
        assert_eq!(
            StreamId::new(Side::Server, Dir::Uni, 0).unwrap().to_string(),
            "server uni stream 0"
        );
        assert_eq!(!Side::Client, Side::Server);
    }
}
