//! Hash maps keyed from the injected randomness.
//!
//! hashbrown's default hasher seeds itself from process state (addresses),
//! so iteration order would differ between two runs with one seed, and a
//! recorded run would not replay. Keys here are often peer-chosen (stream
//! IDs, connection IDs), so the hash must still be unpredictable to the
//! peer: each map's hasher takes a secret 64-bit seed drawn from the
//! connection's or endpoint's `RandomSource`. Seeded runs replay; production
//! runs (system randomness) resist hash flooding.

use crate::random::RandomSource;

/// A hasher keyed by a seed from the injected randomness.
pub(crate) type KeyedState = foldhash::fast::FixedState;

/// A hash map with a [`KeyedState`] hasher.
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, KeyedState>;

/// A hash set with a [`KeyedState`] hasher.
pub(crate) type Set<K> = hashbrown::HashSet<K, KeyedState>;

/// A hasher keyed from `rng`.
pub(crate) fn keyed(rng: &mut dyn RandomSource) -> KeyedState {
    KeyedState::with_seed(rng.next_u64())
}

/// An empty map keyed from `rng`.
pub(crate) fn map<K, V>(rng: &mut dyn RandomSource) -> Map<K, V> {
    Map::with_hasher(keyed(rng))
}

/// An empty set keyed from `rng`.
pub(crate) fn set<K>(rng: &mut dyn RandomSource) -> Set<K> {
    Set::with_hasher(keyed(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    #[test]
    fn iteration_order_follows_the_seed() {
        let order = |seed| {
            let mut m: Map<u64, ()> = map(&mut SeededRandom::from_u64(seed));
            for k in 0..64 {
                m.insert(k * 4, ());
            }
            m.keys().copied().collect::<Vec<_>>()
        };
        assert_eq!(order(1), order(1), "one seed, one order");
        assert_ne!(order(1), order(2), "the seed keys the hash");
    }
}
