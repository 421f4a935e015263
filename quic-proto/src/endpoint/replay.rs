//! Single use for address validation tokens (RFC 9000 §8.1.3, §8.1.4):
//! a bounded replay filter over the tokens a server accepted.
//!
//! Two Bloom filter generations per token kind: the current one records
//! the tokens accepted since it started, the previous one those of the
//! period before. A generation is retired when its period (the token
//! lifetime) has passed or it holds its capacity, and from then on a token
//! issued before the retired generation's end could have been used unseen,
//! so it is refused as if replayed. Memory is fixed: `capacity` x
//! [`BITS_PER_TOKEN`] bits per generation, two generations per kind.
//!
//! False positives: with at most `capacity` tokens per generation and
//! [`HASHES`] bit positions per token, each generation answers "seen" for
//! a fresh token with probability at most (1 - e^(-20/29))^20, about
//! 9 x 10^-7, so under 2 x 10^-6 for both together. A false positive
//! costs a genuine client its fast path (a NEW_TOKEN token counts as none;
//! a Retry token is refused), never a forged client an entry.

use core::time::Duration;

use crate::time::Instant;

//= https://www.rfc-editor.org/rfc/rfc9000#section-8.1.4
//# Attackers could replay tokens to use servers as amplifiers in DDoS attacks. To
//# protect against such attacks, servers MUST ensure that replay of tokens is
//# prevented or limited.

/// Bits of filter per token of capacity.
pub(super) const BITS_PER_TOKEN: usize = 29;
/// Bit positions per token: (BITS_PER_TOKEN) x ln 2, rounded.
pub(super) const HASHES: u64 = 20;

/// A token's identity in the filter: its kind byte and AEAD nonce.
pub(super) type TokenId = [u8; 13];

#[derive(Debug)]
struct Generation {
    bits: Vec<u64>,
    count: usize,
    start: Instant,
}

impl Generation {
    fn new(capacity: usize, start: Instant) -> Self {
        let words = (capacity.max(1) * BITS_PER_TOKEN).div_ceil(64);
        Self { bits: vec![0; words], count: 0, start }
    }

    /// The bit positions of `id`, by double hashing. The nonce is random
    /// and authenticated, so its bytes are already uniform; `key` keeps the
    /// positions unpredictable from outside all the same.
    fn positions(&self, id: &TokenId, key: u64) -> impl Iterator<Item = usize> + '_ {
        let word = |at: usize| u64::from_le_bytes(id[at..at + 8].try_into().expect("8 bytes"));
        let h1 = word(1) ^ key;
        let h2 = (word(5) ^ key.rotate_left(29) ^ u64::from(id[0])) | 1;
        let m = (self.bits.len() * 64) as u64;
        (0..HASHES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    fn contains(&self, id: &TokenId, key: u64) -> bool {
        self.positions(id, key).all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }

    fn insert(&mut self, id: &TokenId, key: u64) {
        let positions: Vec<usize> = self.positions(id, key).collect();
        for p in positions {
            self.bits[p / 64] |= 1 << (p % 64);
        }
        self.count += 1;
    }
}

/// The replay filter for one kind of token.
#[derive(Debug)]
pub(super) struct ReplayFilter {
    capacity: usize,
    period: Duration,
    key: u64,
    /// Allocated on first use: a client endpoint never pays for it.
    current: Option<Generation>,
    previous: Option<Generation>,
    /// Tokens issued before this may have been used in a generation that
    /// is gone.
    forgotten_before: Option<Instant>,
}

impl ReplayFilter {
    pub(super) fn new(capacity: usize, period: Duration, key: u64) -> Self {
        Self { capacity, period, key, current: None, previous: None, forgotten_before: None }
    }

    /// Whether a token issued at `issued` may have been accepted before
    /// (or, rarely, is a false positive).
    pub(super) fn seen(&mut self, now: Instant, id: &TokenId, issued: Instant) -> bool {
        self.rotate(now);
        if self.forgotten_before.is_some_and(|t| issued < t) {
            return true;
        }
        [&self.current, &self.previous].into_iter().flatten().any(|g| g.contains(id, self.key))
    }

    /// Records a token as used.
    pub(super) fn insert(&mut self, now: Instant, id: &TokenId) {
        self.rotate(now);
        let current = self.current.get_or_insert_with(|| Generation::new(self.capacity, now));
        current.insert(id, self.key);
    }

    fn rotate(&mut self, now: Instant) {
        let Some(current) = &self.current else { return };
        if current.count < self.capacity && now < current.start + self.period {
            return;
        }
        if self.previous.take().is_some() {
            // Its tokens are forgotten: anything issued before the end of
            // its period (the start of the one after it) could replay.
            self.forgotten_before = Some(current.start);
        }
        let fresh = Generation::new(self.capacity, now);
        self.previous = self.current.replace(fresh);
    }

    /// Tokens recorded in the live generations (for tests and stats).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        [&self.current, &self.previous].into_iter().flatten().map(|g| g.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{RandomSource, SeededRandom};

    fn id(rng: &mut SeededRandom) -> TokenId {
        let mut id = [0u8; 13];
        rng.fill(&mut id);
        id[0] = 2;
        id
    }

    const T0: Instant = Instant::from_nanos(1_000_000_000);

    #[test]
    fn a_token_is_seen_after_use_and_not_before() {
        let mut f = ReplayFilter::new(100, Duration::from_secs(10), 7);
        let mut rng = SeededRandom::from_u64(1);
        let a = id(&mut rng);
        assert!(!f.seen(T0, &a, T0));
        f.insert(T0, &a);
        assert!(f.seen(T0, &a, T0));
        // Still seen one period later (in the previous generation).
        let later = T0 + Duration::from_secs(15);
        assert!(f.seen(later, &a, T0));
    }

    #[test]
    fn false_positives_stay_under_the_stated_rate_at_capacity() {
        let capacity = 20_000;
        let mut f = ReplayFilter::new(capacity, Duration::from_secs(3600), 0x5eed);
        let mut rng = SeededRandom::from_u64(2);
        // Fill both generations to capacity.
        for _ in 0..2 * capacity - 1 {
            f.insert(T0, &id(&mut rng));
        }
        assert_eq!(f.len(), 2 * capacity - 1);
        let trials = 300_000;
        let hits = (0..trials).filter(|_| f.seen(T0, &id(&mut rng), T0)).count();
        // 1.8e-6 x 300,000 = 0.5 expected.
        assert!(hits <= 4, "{hits} false positives in {trials}");
    }

    #[test]
    fn tokens_older_than_the_remembered_window_count_as_seen() {
        let period = Duration::from_secs(10);
        let mut f = ReplayFilter::new(100, period, 7);
        let mut rng = SeededRandom::from_u64(3);
        f.insert(T0, &id(&mut rng));
        // Two rotations retire the first generation.
        f.insert(T0 + period, &id(&mut rng));
        f.insert(T0 + 2 * period, &id(&mut rng));
        let fresh = id(&mut rng);
        let now = T0 + 2 * period;
        assert!(f.seen(now, &fresh, T0), "issued while the forgotten generation was live");
        assert!(!f.seen(now, &fresh, T0 + period), "issued within the remembered window");
    }

    #[test]
    fn a_full_generation_rotates_early_and_memory_stays_fixed() {
        let mut f = ReplayFilter::new(10, Duration::from_secs(3600), 7);
        let mut rng = SeededRandom::from_u64(4);
        for _ in 0..1_000 {
            f.insert(T0, &id(&mut rng));
        }
        assert!(f.len() <= 20);
        let words = (10 * BITS_PER_TOKEN).div_ceil(64);
        assert_eq!(f.current.as_ref().unwrap().bits.len(), words);
    }
}
