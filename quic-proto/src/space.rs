//! Packet number spaces and encryption levels (RFC 9000 §12.3, RFC 9001 §4).

/// A packet number space: each has its own packet numbers and ACKs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpaceId {
    /// Initial packets.
    Initial,
    /// Handshake packets.
    Handshake,
    /// 0-RTT and 1-RTT packets (the application data space).
    Data,
}

impl SpaceId {
    /// All spaces, in the order their keys become available.
    pub const ALL: [Self; 3] = [Self::Initial, Self::Handshake, Self::Data];
}

/// The keys a packet is protected with; decides which frames it may carry
/// (RFC 9000 §12.4 Table 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EncryptionLevel {
    /// Initial keys, derived from the client's first Destination Connection ID.
    Initial,
    /// 0-RTT (early data) keys.
    ZeroRtt,
    /// Handshake keys.
    Handshake,
    /// 1-RTT (application data) keys.
    OneRtt,
}

impl EncryptionLevel {
    /// The packet number space packets at this level belong to.
    pub fn space(self) -> SpaceId {
        match self {
            Self::Initial => SpaceId::Initial,
            Self::Handshake => SpaceId::Handshake,
            Self::ZeroRtt | Self::OneRtt => SpaceId::Data,
        }
    }
}
