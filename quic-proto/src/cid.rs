//! Connection IDs (RFC 9000 §5.1): opaque, 0 to 20 bytes in version 1.

use core::fmt;
use core::ops::Deref;

use crate::random::RandomSource;

/// A connection ID of up to [`ConnectionId::MAX_LEN`] bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    len: u8,
    bytes: [u8; ConnectionId::MAX_LEN],
}

impl ConnectionId {
    //= https://www.rfc-editor.org/rfc/rfc9000#section-17.2
    //# In QUIC version 1, this value MUST NOT exceed 20 bytes.
    /// The longest connection ID QUIC versions 1 and 2 allow.
    pub const MAX_LEN: usize = 20;

    /// The zero-length connection ID.
    pub const EMPTY: Self = Self { len: 0, bytes: [0; Self::MAX_LEN] };

    /// A connection ID holding `bytes`, or `None` if it is longer than 20 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > Self::MAX_LEN {
            return None;
        }
        let mut out = Self::EMPTY;
        out.len = bytes.len() as u8;
        out.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(out)
    }

    /// A random connection ID of `len` bytes (clamped to 20).
    pub fn random(rng: &mut dyn RandomSource, len: usize) -> Self {
        let mut out = Self::EMPTY;
        out.len = len.min(Self::MAX_LEN) as u8;
        rng.fill(&mut out.bytes[..out.len as usize]);
        out
    }
}

impl Deref for ConnectionId {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl AsRef<[u8]> for ConnectionId {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({self})")
    }
}

impl fmt::Display for ConnectionId {
    /// Lower-case hex, as qlog and key logs write connection IDs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.iter() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Chooses the connection IDs an endpoint issues. Pluggable (`dyn`) so a
/// deployment can encode routing information in them (QUIC-LB); all IDs an
/// endpoint issues have the generator's one length, which is how short
/// header packets are parsed (RFC 9000 §5.1).
pub trait ConnectionIdGenerator: Send + fmt::Debug {
    /// A new connection ID. Must be unpredictable enough that an observer
    /// cannot link it to the connection's other IDs (RFC 9000 §5.1).
    fn generate(&mut self, rng: &mut dyn RandomSource) -> ConnectionId;

    /// The length of every ID this generator makes.
    fn cid_len(&self) -> usize;
}

/// Uniformly random connection IDs of one length.
#[derive(Clone, Copy, Debug)]
pub struct RandomCidGenerator {
    len: usize,
}

impl RandomCidGenerator {
    /// IDs of `len` bytes (clamped to 20). Zero-length IDs are allowed but
    /// rule out migration and sharing a socket between connections.
    pub fn new(len: usize) -> Self {
        Self { len: len.min(ConnectionId::MAX_LEN) }
    }
}

impl Default for RandomCidGenerator {
    /// 8-byte IDs: 64 random bits.
    fn default() -> Self {
        Self::new(8)
    }
}

impl ConnectionIdGenerator for RandomCidGenerator {
    fn generate(&mut self, rng: &mut dyn RandomSource) -> ConnectionId {
        ConnectionId::random(rng, self.len)
    }

    fn cid_len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    #[test]
    fn length_limits_and_display() {
        assert!(ConnectionId::from_slice(&[0; 21]).is_none());
        let cid = ConnectionId::from_slice(&[0x83, 0x94, 0xc8, 0xf0]).unwrap();
        assert_eq!(cid.len(), 4);
        assert_eq!(cid.to_string(), "8394c8f0");
        assert!(ConnectionId::EMPTY.is_empty());
        let r = ConnectionId::random(&mut SeededRandom::from_u64(1), 40);
        assert_eq!(r.len(), 20);
        let mut generator = RandomCidGenerator::default();
        let mut rng = SeededRandom::from_u64(2);
        let (a, b) = (generator.generate(&mut rng), generator.generate(&mut rng));
        assert_eq!((a.len(), generator.cid_len()), (8, 8));
        assert_ne!(a, b);
    }
}
