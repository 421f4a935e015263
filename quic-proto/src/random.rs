//! Injected randomness: connection IDs, tokens, packet-number skips and
//! greasing all draw from one [`RandomSource`] handed in by the driver, so a
//! seeded run replays byte for byte.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// Where the core gets its random bytes.
///
/// Implementations must be cryptographically strong for production use:
/// connection IDs, stateless reset tokens and Retry tokens come from here.
pub trait RandomSource: Send {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);

    /// A uniformly random `u64`.
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }

    /// A uniformly random value in `0..bound`; `bound` must be non-zero.
    ///
    /// Uses rejection sampling so that small bounds are not biased.
    fn below(&mut self, bound: u64) -> u64 {
        assert!(bound != 0, "RandomSource::below needs a non-zero bound");
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % bound;
            }
        }
    }
}

/// A deterministic, cryptographically strong source: ChaCha20 keyed by a
/// 32-byte seed. Two sources with the same seed produce the same bytes.
///
/// Tests and trace replay use it with a printed seed; a server may also use
/// it seeded once from [`SystemRandom`] for speed.
#[derive(Clone, Debug)]
pub struct SeededRandom {
    rng: ChaCha20Rng,
}

impl SeededRandom {
    /// A source keyed by `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { rng: ChaCha20Rng::from_seed(seed) }
    }

    /// A source keyed by a 64-bit seed (convenient for printed test seeds).
    pub fn from_u64(seed: u64) -> Self {
        let mut s = [0; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Self::from_seed(s)
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest);
    }
}

/// The operating system's generator, through aws-lc-rs.
///
/// The core never creates one itself: a driver constructs it and passes it in.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRandom;

impl RandomSource for SystemRandom {
    // The one sanctioned use of OS randomness in this crate: the driver
    // chooses to construct this type; the state machines only see the trait.
    #[allow(clippy::disallowed_methods)]
    fn fill(&mut self, dest: &mut [u8]) {
        // aws-lc-rs only fails here if the OS generator is unusable, in which
        // case no secure QUIC endpoint can run at all.
        aws_lc_rs::rand::fill(dest).expect("the OS random generator failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_replay() {
        let mut a = SeededRandom::from_u64(7);
        let mut b = SeededRandom::from_u64(7);
        let mut c = SeededRandom::from_u64(8);
        let (mut x, mut y, mut z) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn below_stays_in_bounds() {
        let mut r = SeededRandom::from_u64(1);
        let mut seen = [false; 3];
        for _ in 0..200 {
            let v = r.below(3);
            seen[v as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn system_source_fills() {
        let mut a = [0u8; 32];
        SystemRandom.fill(&mut a);
        // 2^-256 chance of a false failure.
        assert_ne!(a, [0u8; 32]);
    }
}
