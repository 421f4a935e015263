//! The QPACK dynamic table (RFC 9204 §3.2): entries by absolute index,
//! sizes, capacity, eviction, and the three ways of naming an entry
//! (absolute, relative to the insertion point or to a Base, post-Base).
//!
//! Bytes are kept as `Vec<u8>`: field names and values are octets, not
//! necessarily UTF-8.

use std::collections::VecDeque;

use super::Cause;

/// What an entry costs beyond its name and value (RFC 9204 §3.2.1).
pub(crate) const ENTRY_OVERHEAD: u64 = 32;

/// One field line in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

impl Entry {
    //= https://www.rfc-editor.org/rfc/rfc9204#section-3.2.1
    //# The size of an entry is the sum of its name's length in bytes, its value's
    //# length in bytes, and 32 additional bytes.
    pub(crate) fn size(&self) -> u64 {
        self.name.len() as u64 + self.value.len() as u64 + ENTRY_OVERHEAD
    }
}

/// The dynamic table: newest entries at the back.
#[derive(Debug, Default)]
pub(crate) struct DynamicTable {
    entries: VecDeque<Entry>,
    /// Entries ever inserted (the next absolute index).
    inserted: u64,
    size: u64,
    capacity: u64,
    /// The largest capacity the encoder may set
    /// (SETTINGS_QPACK_MAX_TABLE_CAPACITY).
    max_capacity: u64,
}

impl DynamicTable {
    /// An empty table whose capacity may be set up to `max_capacity`.
    pub(crate) fn new(max_capacity: u64) -> Self {
        Self { max_capacity, ..Self::default() }
    }

    #[cfg(test)]
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Entries ever inserted: the Insert Count.
    pub(crate) fn insert_count(&self) -> u64 {
        self.inserted
    }

    /// Entries evicted so far: the smallest absolute index still present.
    pub(crate) fn dropped(&self) -> u64 {
        self.inserted - self.entries.len() as u64
    }

    /// Set Dynamic Table Capacity (RFC 9204 §4.3.1), evicting as needed.
    pub(crate) fn set_capacity(&mut self, capacity: u64) -> Result<(), Cause> {
        //= https://www.rfc-editor.org/rfc/rfc9204#section-4.3.1
        //# The decoder MUST treat a new dynamic table capacity
        //# value that exceeds this limit as a connection error of type
        //# QPACK_ENCODER_STREAM_ERROR.
        if capacity > self.max_capacity {
            return Err(Cause::CapacityExceeded);
        }
        self.capacity = capacity;
        self.evict_to(capacity);
        Ok(())
    }

    fn evict_to(&mut self, limit: u64) {
        while self.size > limit {
            let old = self.entries.pop_front().expect("a non-zero size has entries");
            self.size -= old.size();
        }
    }

    /// Inserts an entry (evicting the oldest to make room); its absolute
    /// index is the insert count before the call.
    pub(crate) fn insert(&mut self, entry: Entry) -> Result<u64, Cause> {
        let size = entry.size();
        //= https://www.rfc-editor.org/rfc/rfc9204#section-3.2.2
        //# It is an
        //# error if the encoder attempts to add an entry that is larger than the dynamic
        //# table capacity; the decoder MUST treat this as a connection error of type
        //# QPACK_ENCODER_STREAM_ERROR.
        if size > self.capacity {
            return Err(Cause::EntryTooLarge);
        }
        // The new entry may copy an entry about to be evicted: the caller
        // made `entry` (owned bytes) before this point, so eviction cannot
        // take its name or value away (RFC 9204 §3.2.2's caution).
        self.evict_to(self.capacity - size);
        self.entries.push_back(entry);
        self.size += size;
        self.inserted += 1;
        Ok(self.inserted - 1)
    }

    /// The entry at absolute index `index`, if still present.
    pub(crate) fn get_absolute(&self, index: u64) -> Result<&Entry, Cause> {
        let at = index.checked_sub(self.dropped()).ok_or(Cause::BadDynamicIndex)?;
        usize::try_from(at).ok().and_then(|i| self.entries.get(i)).ok_or(Cause::BadDynamicIndex)
    }

    /// Encoder-stream relative index: 0 is the newest entry.
    pub(crate) fn get_relative(&self, relative: u64) -> Result<&Entry, Cause> {
        let absolute = self.inserted.checked_sub(1).and_then(|n| n.checked_sub(relative));
        self.get_absolute(absolute.ok_or(Cause::BadDynamicIndex)?)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn e(name: &str, value: &str) -> Entry {
        Entry { name: name.into(), value: value.into() }
    }

    #[test]
    fn rfc9204_b2_sizes_and_indexing() {
        // RFC 9204 B.2: capacity 220; ":authority: www.example.com" (size
        // 57) and ":path: /sample/path" (size 49) make 106.
        let mut t = DynamicTable::new(220);
        t.set_capacity(220).unwrap();
        assert_eq!(t.insert(e(":authority", "www.example.com")), Ok(0));
        assert_eq!(t.insert(e(":path", "/sample/path")), Ok(1));
        assert_eq!(t.size(), 106);
        assert_eq!(t.get_relative(0).unwrap().name, b":path");
        assert_eq!(t.get_absolute(2), Err(Cause::BadDynamicIndex));
        assert_eq!(t.get_relative(2), Err(Cause::BadDynamicIndex));
    }

    #[test]
    fn eviction_frees_room_and_capacity_changes_evict() {
        let mut t = DynamicTable::new(100);
        t.set_capacity(100).unwrap();
        t.insert(e("a", "1")).unwrap(); // 34
        t.insert(e("b", "2")).unwrap(); // 68
        t.insert(e("c", "3")).unwrap(); // evicts "a"
        assert_eq!((t.dropped(), t.size()), (1, 68));
        assert_eq!(t.get_absolute(0), Err(Cause::BadDynamicIndex));
        t.set_capacity(40).unwrap();
        assert_eq!((t.dropped(), t.size()), (2, 34));
        t.set_capacity(0).unwrap();
        assert_eq!((t.dropped(), t.size(), t.insert_count()), (3, 0, 3));
        //= https://www.rfc-editor.org/rfc/rfc9204#section-4.3.1
        //= type=test
        //# The decoder MUST treat a new dynamic table capacity
        //# value that exceeds this limit as a connection error of type
        //# QPACK_ENCODER_STREAM_ERROR.
        assert_eq!(t.set_capacity(101), Err(Cause::CapacityExceeded));
        //= https://www.rfc-editor.org/rfc/rfc9204#section-3.2.2
        //= type=test
        //# It is an
        //# error if the encoder attempts to add an entry that is larger than the dynamic
        //# table capacity; the decoder MUST treat this as a connection error of type
        //# QPACK_ENCODER_STREAM_ERROR.
        assert_eq!(t.insert(e("a", "1")), Err(Cause::EntryTooLarge));
    }

    proptest! {
        /// Against a model: a plain list of every entry ever inserted, of
        /// which the newest that fit the capacity are present.
        #[test]
        fn matches_a_model(
            ops in proptest::collection::vec((0u8..4, 0usize..40, 0u64..300), 1..200),
        ) {
            let mut t = DynamicTable::new(256);
            let mut all: Vec<Entry> = Vec::new();
            let mut capacity = 0u64;
            for (op, len, cap) in ops {
                match op {
                    0 => {
                        let ok = t.set_capacity(cap).is_ok();
                        prop_assert_eq!(ok, cap <= 256);
                        if ok { capacity = cap; }
                    }
                    _ => {
                        let entry = Entry { name: vec![b'n'; len], value: vec![op; len / 2] };
                        let fits = entry.size() <= capacity;
                        prop_assert_eq!(t.insert(entry.clone()).is_ok(), fits);
                        if fits { all.push(entry); }
                    }
                }
                // The model's present entries: newest first while they fit,
                // but never fewer dropped than before (eviction is final).
                prop_assert!(t.size() <= capacity);
                prop_assert_eq!(t.insert_count(), all.len() as u64);
                let mut size = 0;
                for (i, entry) in all.iter().enumerate().rev() {
                    let present = t.get_absolute(i as u64);
                    if (i as u64) < t.dropped() {
                        prop_assert!(present.is_err());
                    } else {
                        prop_assert_eq!(present.ok(), Some(entry));
                        size += entry.size();
                    }
                }
                prop_assert_eq!(size, t.size());
            }
        }
    }
}
