//! Stateless reset tokens (RFC 9000 §10.3).

use core::fmt;

use crate::random::RandomSource;

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
