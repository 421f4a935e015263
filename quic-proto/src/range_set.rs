//! A set of `u64` values stored as disjoint, non-adjacent half-open ranges.
//!
//! Packet numbers received (ACK generation), stream bytes received
//! (reassembly) and stream bytes acknowledged (send buffers) are all sets of
//! this shape: mostly one long run with a few holes.

use core::ops::Range;
use std::collections::BTreeMap;

/// Disjoint, non-adjacent `start..end` ranges, kept merged.
///
/// The set does not bound itself: owners holding peer-controlled ranges cap
/// [`RangeSet::len`] and shed ranges (for example with [`RangeSet::pop_min`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start -> end (exclusive).
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of disjoint ranges (not values).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set holds no values.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: u64) -> bool {
        self.map.range(..=value).next_back().is_some_and(|(_, &end)| value < end)
    }

    /// Whether every value of `range` is in the set (true for an empty range).
    pub fn contains_range(&self, range: Range<u64>) -> bool {
        if range.is_empty() {
            return true;
        }
        self.map.range(..=range.start).next_back().is_some_and(|(_, &end)| range.end <= end)
    }

    /// Adds one value; returns whether it was new.
    pub fn insert_one(&mut self, value: u64) -> bool {
        match value.checked_add(1) {
            Some(end) => self.insert(value..end),
            // u64::MAX cannot be stored in a half-open range; QUIC values
            // stay below 2^62, so this is unreachable for wire values.
            None => false,
        }
    }

    /// Adds `range`; returns whether any value in it was new.
    pub fn insert(&mut self, range: Range<u64>) -> bool {
        if range.is_empty() {
            return false;
        }
        let (mut start, mut end) = (range.start, range.end);
        // A range starting at or before `start` that reaches it: merge.
        if let Some((&s, &e)) = self.map.range(..=start).next_back()
            && e >= start
        {
            if e >= end {
                return false;
            }
            start = s;
        }
        // Ranges starting inside `start..=end` are swallowed.
        while let Some((&s, &e)) = self.map.range(start..=end).next() {
            self.map.remove(&s);
            end = end.max(e);
        }
        self.map.insert(start, end);
        true
    }

    /// Removes every value of `range` from the set.
    pub fn remove(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        // A range starting before `range.start` may overlap: trim it.
        if let Some((&s, &e)) = self.map.range(..range.start).next_back()
            && e > range.start
        {
            self.map.insert(s, range.start);
            if e > range.end {
                self.map.insert(range.end, e);
                return;
            }
        }
        while let Some((&s, &e)) = self.map.range(range.start..range.end).next() {
            self.map.remove(&s);
            if e > range.end {
                self.map.insert(range.end, e);
                break;
            }
        }
    }

    /// The smallest value.
    pub fn min(&self) -> Option<u64> {
        self.map.first_key_value().map(|(&s, _)| s)
    }

    /// The largest value.
    pub fn max(&self) -> Option<u64> {
        self.map.last_key_value().map(|(_, &e)| e - 1)
    }

    /// The lowest range.
    pub fn first(&self) -> Option<Range<u64>> {
        self.map.first_key_value().map(|(&s, &e)| s..e)
    }

    /// The highest range.
    pub fn last(&self) -> Option<Range<u64>> {
        self.map.last_key_value().map(|(&s, &e)| s..e)
    }

    /// Removes and returns the lowest range.
    pub fn pop_min(&mut self) -> Option<Range<u64>> {
        self.map.pop_first().map(|(s, e)| s..e)
    }

    /// The ranges, lowest first (`.rev()` for highest first).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Range<u64>> + Clone + '_ {
        self.map.iter().map(|(&s, &e)| s..e)
    }

    /// The ranges overlapping `range`, clipped to it, lowest first.
    pub fn iter_within(&self, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let first =
            self.map.range(..=range.start).next_back().map(|(&s, _)| s).unwrap_or(range.start);
        self.map
            .range(first..range.end)
            .map(move |(&s, &e)| s.max(range.start)..e.min(range.end))
            .filter(|r| !r.is_empty())
    }

    /// Total number of values in the set.
    pub fn total(&self) -> u64 {
        self.map.iter().map(|(s, e)| e - s).sum()
    }
}

impl core::fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn inserts_merge_and_report_novelty() {
        let mut s = RangeSet::new();
        assert!(s.insert(5..10));
        assert!(!s.insert(6..8));
        assert!(s.insert(10..12)); // adjacent: merges
        assert_eq!(s.first(), Some(5..12));
        assert_eq!(s.len(), 1);
        assert!(s.insert(0..2));
        assert!(s.insert(1..6));
        assert_eq!((s.first(), s.len()), (Some(0..12), 1));
        assert!(s.insert_one(20));
        assert_eq!((s.min(), s.max(), s.len(), s.total()), (Some(0), Some(20), 2, 13));
        assert!(!s.insert_one(u64::MAX));
    }

    #[test]
    fn removal_splits() {
        let mut s = RangeSet::new();
        s.insert(0..100);
        s.remove(10..20);
        s.remove(50..50);
        s.remove(90..200);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0..10, 20..90]);
        assert_eq!(s.iter_within(5..25).collect::<Vec<_>>(), [5..10, 20..25]);
        assert!(s.contains_range(20..90) && !s.contains_range(5..25));
        assert_eq!(s.pop_min(), Some(0..10));
    }

    fn model(s: &RangeSet) -> BTreeSet<u64> {
        s.iter().flatten().collect()
    }

    proptest! {
        /// The set agrees with a plain set of values after any sequence of
        /// inserts and removes, and stays merged (no empty, overlapping or
        /// adjacent ranges).
        #[test]
        fn matches_a_set_model(ops in proptest::collection::vec((any::<bool>(), 0u64..200, 0u64..20), 0..60)) {
            let mut s = RangeSet::new();
            let mut m = BTreeSet::new();
            for (insert, start, len) in ops {
                let r = start..start + len;
                if insert {
                    let new = r.clone().any(|v| !m.contains(&v));
                    prop_assert_eq!(s.insert(r.clone()), new);
                    m.extend(r);
                } else {
                    s.remove(r.clone());
                    for v in r { m.remove(&v); }
                }
                prop_assert_eq!(&model(&s), &m);
                let ranges: Vec<_> = s.iter().collect();
                for w in ranges.windows(2) {
                    prop_assert!(w[0].end < w[1].start);
                }
                prop_assert!(ranges.iter().all(|r| !r.is_empty()));
                for v in 0..220 {
                    prop_assert_eq!(s.contains(v), m.contains(&v));
                }
            }
        }
    }
}
