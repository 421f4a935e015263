//! The QPACK encoder (RFC 9204 §2.1): chooses representations for field
//! lines (§4.5), inserts into the dynamic table with encoder instructions
//! (§4.3) within the peer's SETTINGS_QPACK_MAX_TABLE_CAPACITY and
//! SETTINGS_QPACK_BLOCKED_STREAMS, and follows the peer decoder's
//! instructions (§4.4) to know which entries it may reference or evict.

use std::collections::{BTreeMap, VecDeque};

use super::field::{Field, line_size, write_string};
use super::static_table::STATIC_TABLE;
use super::{Cause, Error, int};

/// How an [`Encoder`] uses the dynamic table.
#[derive(Clone, Debug)]
pub struct EncoderConfig {
    max_table_capacity: u64,
    max_outstanding_sections: usize,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self { max_table_capacity: 4096, max_outstanding_sections: 1024 }
    }
}

impl EncoderConfig {
    /// The largest dynamic table this encoder uses, whatever larger
    /// capacity the peer allows (default 4096 bytes; 0 uses only the
    /// static table).
    pub fn max_table_capacity(&mut self, bytes: u64) -> &mut Self {
        self.max_table_capacity = bytes;
        self
    }

    /// How many sections with dynamic references may await the peer's
    /// acknowledgment before new sections stop referencing the dynamic
    /// table (default 1024): the encoder's memory stays bounded when a
    /// peer never acknowledges.
    pub fn max_outstanding_sections(&mut self, count: usize) -> &mut Self {
        self.max_outstanding_sections = count;
        self
    }
}

#[derive(Debug)]
struct Entry {
    name: Vec<u8>,
    value: Vec<u8>,
    /// Unacknowledged sections referencing the entry.
    refs: u32,
}

impl Entry {
    fn size(&self) -> u64 {
        line_size(self.name.len(), self.value.len())
    }
}

/// A section with dynamic references the decoder has not acknowledged.
#[derive(Debug)]
struct Outstanding {
    required_insert_count: u64,
    /// Absolute indices referenced, each once.
    refs: Vec<u64>,
}

/// Inserts the peer has not acknowledged beyond which lines a section
/// cannot reference yet are not inserted.
const MAX_UNACKNOWLEDGED_INSERTS: u64 = 32;

/// FNV-1a over a line's name and value, for the history of recent lines.
fn line_hash(field: &Field) -> u64 {
    fnv1a(field.name.iter().chain(&[0xff]).chain(&field.value))
}

/// FNV-1a over a name alone.
fn name_hash(name: &[u8]) -> u64 {
    fnv1a(name.iter())
}

fn fnv1a<'a>(bytes: impl Iterator<Item = &'a u8>) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A representation chosen for one field line, before the Base is known.
enum Line<'a> {
    Static(u64),
    Dynamic(u64),
    StaticName(u64, &'a Field),
    DynamicName(u64, &'a Field),
    Literal(&'a Field),
}

/// A QPACK encoder: one per HTTP/3 connection, for the peer's decoder.
#[derive(Debug)]
pub struct Encoder {
    config: EncoderConfig,
    entries: VecDeque<Entry>,
    /// Entries ever inserted: the Insert Count.
    inserted: u64,
    size: u64,
    capacity: u64,
    /// The peer decoder's SETTINGS_QPACK_MAX_TABLE_CAPACITY.
    peer_max_capacity: u64,
    /// The peer decoder's SETTINGS_QPACK_BLOCKED_STREAMS.
    max_blocked_streams: u64,
    known_received_count: u64,
    /// Per stream, its unacknowledged sections with dynamic references,
    /// oldest first.
    outstanding: BTreeMap<u64, VecDeque<Outstanding>>,
    outstanding_count: usize,
    /// Encoder instructions not yet taken by `poll_encoder_stream`.
    instructions: Vec<u8>,
    /// Decoder stream bytes that are not yet a whole instruction.
    pending: Vec<u8>,
    /// Hashes of recent lines that were not static-table matches, and of
    /// their names.
    history: VecDeque<(u64, u64)>,
    /// Whether Set Dynamic Table Capacity has gone out.
    capacity_sent: bool,
    settings_applied: bool,
}

impl Encoder {
    /// An encoder that uses only the static table until
    /// [`Encoder::apply_settings`] tells it what the peer's decoder allows.
    pub fn new(config: EncoderConfig) -> Self {
        Self {
            config,
            entries: VecDeque::new(),
            inserted: 0,
            size: 0,
            capacity: 0,
            peer_max_capacity: 0,
            max_blocked_streams: 0,
            known_received_count: 0,
            outstanding: BTreeMap::new(),
            outstanding_count: 0,
            instructions: Vec::new(),
            pending: Vec::new(),
            history: VecDeque::new(),
            capacity_sent: false,
            settings_applied: false,
        }
    }

    /// The peer's SETTINGS arrived: SETTINGS_QPACK_MAX_TABLE_CAPACITY and
    /// SETTINGS_QPACK_BLOCKED_STREAMS. Call once; later calls are ignored
    /// (HTTP/3 SETTINGS come once). The table's capacity becomes the
    /// smaller of the peer's limit and [`EncoderConfig::max_table_capacity`].
    pub fn apply_settings(&mut self, max_table_capacity: u64, blocked_streams: u64) {
        if self.settings_applied {
            return;
        }
        self.settings_applied = true;
        self.peer_max_capacity = max_table_capacity;
        self.max_blocked_streams = blocked_streams;
        //= https://www.rfc-editor.org/rfc/rfc9204#section-3.2.3
        //# The encoder MUST NOT set a dynamic table capacity that exceeds this maximum, but
        //# it can choose to use a lower dynamic table capacity
        //
        // The decoder hears of the capacity with the first insert (Set
        // Dynamic Table Capacity goes out then): a connection that never
        // inserts never spends the instruction.
        //= https://www.rfc-editor.org/rfc/rfc9204#section-3.2.3
        //# When the maximum table capacity is zero, the encoder MUST NOT insert entries
        //# into the dynamic table and MUST NOT send any encoder instructions on the encoder
        //# stream.
        self.capacity = max_table_capacity.min(self.config.max_table_capacity);
    }

    /// The dynamic table's capacity in use.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Entries inserted so far.
    pub fn insert_count(&self) -> u64 {
        self.inserted
    }

    /// Appends the encoder instructions written so far to `out`, for the
    /// encoder stream. Send them before or with the field sections encoded
    /// since: a section referencing them blocks the peer until they arrive.
    pub fn poll_encoder_stream(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.instructions);
    }

    /// Encodes `fields` as the field section for `stream_id` into `out`,
    /// inserting into the dynamic table (and writing encoder instructions)
    /// where that pays.
    pub fn encode(&mut self, stream_id: u64, fields: &[Field], out: &mut Vec<u8>) {
        // Whether this section may reference entries the decoder has not
        // acknowledged: it may block the stream.
        //= https://www.rfc-editor.org/rfc/rfc9204#section-2.1.2
        //# An encoder MUST limit the number of streams that could become blocked to the
        //# value of SETTINGS_QPACK_BLOCKED_STREAMS at all times.
        let may_block = self.stream_may_block(stream_id)
            || (self.blocked_streams() as u64) < self.max_blocked_streams;
        let use_dynamic =
            self.capacity > 0 && self.outstanding_count < self.config.max_outstanding_sections;
        let mut lines = Vec::with_capacity(fields.len());
        let mut refs: Vec<u64> = Vec::new();
        for field in fields {
            let line = self.choose(field, use_dynamic, may_block, &mut refs);
            lines.push(line);
        }
        let required_insert_count = refs.iter().max().map_or(0, |&m| m + 1);
        self.write_section(required_insert_count, &lines, out);
        if required_insert_count > 0 {
            refs.sort_unstable();
            refs.dedup();
            self.outstanding
                .entry(stream_id)
                .or_default()
                .push_back(Outstanding { required_insert_count, refs });
            self.outstanding_count += 1;
        }
    }

    /// Picks the representation of one field line, inserting it first
    /// when that pays. `refs` collects the section's dynamic references
    /// (each counted on its entry at once, so later inserts of the same
    /// section cannot evict it).
    fn choose<'a>(
        &mut self,
        field: &'a Field,
        use_dynamic: bool,
        may_block: bool,
        refs: &mut Vec<u64>,
    ) -> Line<'a> {
        let (static_exact, static_name) = find_static(&field.name, &field.value);
        //= https://www.rfc-editor.org/rfc/rfc9204#section-4.5.4
        //# When the 'N' bit is set, the encoded field
        //# line MUST always be encoded with a literal representation.
        if let Some(index) = static_exact.filter(|_| !field.never_index) {
            return Line::Static(index);
        }
        if !use_dynamic {
            return static_name.map_or(Line::Literal(field), |i| Line::StaticName(i, field));
        }
        let known = self.known_received_count;
        let usable = |abs: u64| abs < known || may_block;
        let (exact, mut dynamic_name) = self.find_dynamic(field);
        if !field.never_index {
            let (seen, seen_name) = self.remember(field);
            match exact {
                Some(abs) if abs < self.draining_index() => {
                    // About to be evicted: a Duplicate (a byte or two)
                    // keeps the line in the table, and references go to
                    // the copy so that the original can drain.
                    if self.duplicate(abs) && may_block {
                        let copy = self.inserted - 1;
                        self.reference(copy, refs);
                        return Line::Dynamic(copy);
                    }
                    // (The copy may have evicted the original.)
                    if usable(abs) && abs >= self.dropped() {
                        self.reference(abs, refs);
                        return Line::Dynamic(abs);
                    }
                }
                Some(abs) if usable(abs) => {
                    self.reference(abs, refs);
                    return Line::Dynamic(abs);
                }
                Some(_) => {}
                None => {
                    if self.worth_inserting(seen, may_block) {
                        if self.insert(field, static_name, dynamic_name) && may_block {
                            let abs = self.inserted - 1;
                            self.reference(abs, refs);
                            return Line::Dynamic(abs);
                        }
                    } else if static_name.is_none()
                        && dynamic_name.is_none()
                        && self.worth_inserting(seen_name, may_block)
                    {
                        // A name that recurs with new values: the name
                        // alone goes in, for the literals below to name.
                        if self.insert(&Field::new(field.name.clone(), Vec::new()), None, None) {
                            dynamic_name = Some(self.inserted - 1);
                        }
                    }
                }
            }
        }
        if let Some(index) = static_name {
            return Line::StaticName(index, field);
        }
        // The table may have changed above (an insert that this section
        // cannot reference, an eviction): the name's entry must still be
        // present.
        if let Some(abs) = dynamic_name.filter(|&abs| usable(abs) && abs >= self.dropped()) {
            self.reference(abs, refs);
            return Line::DynamicName(abs, field);
        }
        Line::Literal(field)
    }

    /// Notes `field` in the history of recent lines: whether the line,
    /// and whether its name, were there.
    fn remember(&mut self, field: &Field) -> (bool, bool) {
        let (line, name) = (line_hash(field), name_hash(&field.name));
        let seen = self.history.iter().any(|&(l, _)| l == line);
        let seen_name = seen || self.history.iter().any(|&(_, n)| n == name);
        if self.history.len() >= self.history_len() {
            self.history.pop_front();
        }
        self.history.push_back((line, name));
        (seen, seen_name)
    }

    /// Lines remembered: about twice what the table holds.
    fn history_len(&self) -> usize {
        (self.capacity / 16).clamp(16, 1024) as usize
    }

    /// Whether inserting a line (or a name) not in the table pays: only
    /// if it was `seen` recently, as what recurs is likely to recur again;
    /// a one-off line would cost its bytes twice (inserted, and sent or
    /// referenced) and push out lines that do recur. Inserts the peer has
    /// not acknowledged are capped when this section cannot use them: a
    /// peer that acknowledges nothing does not make every line cost twice.
    fn worth_inserting(&self, seen: bool, may_block: bool) -> bool {
        seen && (may_block
            || self.inserted - self.known_received_count < MAX_UNACKNOWLEDGED_INSERTS)
    }

    /// The smallest absolute index the encoder still references: entries
    /// below it sit in the oldest quarter of the capacity, next to be
    /// evicted (RFC 9204 §2.1.1.1's draining index).
    fn draining_index(&self) -> u64 {
        let drain = (self.size + self.capacity / 4).saturating_sub(self.capacity);
        let mut freed = 0;
        let mut index = self.dropped();
        for entry in &self.entries {
            if freed >= drain {
                break;
            }
            freed += entry.size();
            index += 1;
        }
        index
    }

    fn reference(&mut self, abs: u64, refs: &mut Vec<u64>) {
        if !refs.contains(&abs) {
            refs.push(abs);
            let dropped = self.dropped();
            self.entries[(abs - dropped) as usize].refs += 1;
        }
    }

    fn dropped(&self) -> u64 {
        self.inserted - self.entries.len() as u64
    }

    /// The newest entries matching `field` exactly and by name alone, by
    /// absolute index.
    fn find_dynamic(&self, field: &Field) -> (Option<u64>, Option<u64>) {
        let dropped = self.dropped();
        let mut name_match = None;
        for (i, entry) in self.entries.iter().enumerate().rev() {
            if entry.name == field.name {
                let abs = dropped + i as u64;
                if entry.value == field.value {
                    return (Some(abs), name_match.or(Some(abs)));
                }
                name_match = name_match.or(Some(abs));
            }
        }
        (None, name_match)
    }

    /// How many of the oldest entries must go to fit `size` more bytes, or
    /// `None` if one of them is not evictable.
    fn room_for(&self, size: u64) -> Option<usize> {
        if size > self.capacity {
            return None;
        }
        //= https://www.rfc-editor.org/rfc/rfc9204#section-2.1.1
        //# If the dynamic table does not contain enough room for a new entry without
        //# evicting other entries, and the entries that would be evicted are not
        //# evictable, the encoder MUST NOT insert that entry into the dynamic table
        //# (including duplicates of existing entries).
        let mut freed = 0;
        let mut evict = 0;
        let dropped = self.dropped();
        while self.size - freed + size > self.capacity {
            let entry = self.entries.get(evict)?;
            let abs = dropped + evict as u64;
            if entry.refs > 0 || abs >= self.known_received_count {
                return None;
            }
            freed += entry.size();
            evict += 1;
        }
        Some(evict)
    }

    /// Sends Set Dynamic Table Capacity (§4.3.1) before the first insert.
    fn announce_capacity(&mut self) {
        if !self.capacity_sent {
            self.capacity_sent = true;
            int::encode(self.capacity, 5, 0x20, &mut self.instructions);
        }
    }

    /// Evicts `evict` entries and appends `entry`.
    fn push_entry(&mut self, evict: usize, entry: Entry) {
        for _ in 0..evict {
            let old = self.entries.pop_front().expect("room_for counted present entries");
            self.size -= old.size();
        }
        self.size += entry.size();
        self.entries.push_back(entry);
        self.inserted += 1;
    }

    /// Inserts `field` if room can be made by evicting only evictable
    /// entries; writes the instruction. Whether it was inserted.
    fn insert(
        &mut self,
        field: &Field,
        static_name: Option<u64>,
        dynamic_name: Option<u64>,
    ) -> bool {
        let Some(evict) = self.room_for(field.size()) else { return false };
        self.announce_capacity();
        // The instruction names the entry by what exists before eviction
        // (the decoder evicts while inserting, after reading the name).
        let dropped = self.dropped();
        if let Some(index) = static_name {
            int::encode(index, 6, 0xc0, &mut self.instructions);
        } else if let Some(abs) = dynamic_name.filter(|&abs| abs >= dropped) {
            int::encode(self.inserted - 1 - abs, 6, 0x80, &mut self.instructions);
        } else {
            write_string(&field.name, 5, 0x40, &mut self.instructions);
        }
        write_string(&field.value, 7, 0, &mut self.instructions);
        let entry = Entry { name: field.name.clone(), value: field.value.clone(), refs: 0 };
        self.push_entry(evict, entry);
        true
    }

    /// Duplicates the entry at `abs` (§4.3.4) if room can be made.
    fn duplicate(&mut self, abs: u64) -> bool {
        let dropped = self.dropped();
        let original = &self.entries[(abs - dropped) as usize];
        // The decoder copies the entry before evicting for the copy; so
        // may this encoder, even if the original is among the evicted.
        let entry = Entry { name: original.name.clone(), value: original.value.clone(), refs: 0 };
        let Some(evict) = self.room_for(entry.size()) else { return false };
        self.announce_capacity();
        int::encode(self.inserted - 1 - abs, 5, 0x00, &mut self.instructions);
        self.push_entry(evict, entry);
        true
    }

    fn write_section(&self, required_insert_count: u64, lines: &[Line<'_>], out: &mut Vec<u8>) {
        // Base is the Required Insert Count: every reference is relative
        // to it, the newest referenced entry is index 0, and the prefix is
        // as short as it gets.
        let base = required_insert_count;
        let encoded = if required_insert_count == 0 {
            0
        } else {
            // A reference implies an entry, which implies a capacity of at
            // least 32: `max_entries` is not zero here.
            let max_entries = (self.peer_max_capacity / 32).max(1);
            required_insert_count % (2 * max_entries) + 1
        };
        int::encode(encoded, 8, 0, out);
        int::encode(0, 7, 0, out);
        for line in lines {
            match *line {
                Line::Static(index) => int::encode(index, 6, 0xc0, out),
                Line::Dynamic(abs) => int::encode(base - 1 - abs, 6, 0x80, out),
                Line::StaticName(index, field) => {
                    let n = if field.never_index { 0x20 } else { 0 };
                    int::encode(index, 4, 0x50 | n, out);
                    write_string(&field.value, 7, 0, out);
                }
                Line::DynamicName(abs, field) => {
                    let n = if field.never_index { 0x20 } else { 0 };
                    int::encode(base - 1 - abs, 4, 0x40 | n, out);
                    write_string(&field.value, 7, 0, out);
                }
                Line::Literal(field) => {
                    let n = if field.never_index { 0x10 } else { 0 };
                    write_string(&field.name, 3, 0x20 | n, out);
                    write_string(&field.value, 7, 0, out);
                }
            }
        }
    }

    /// Whether `stream_id` already has a section that may block.
    fn stream_may_block(&self, stream_id: u64) -> bool {
        self.outstanding.get(&stream_id).is_some_and(|sections| {
            sections.iter().any(|s| s.required_insert_count > self.known_received_count)
        })
    }

    /// Streams with a section the decoder may not be able to decode yet.
    pub fn blocked_streams(&self) -> usize {
        self.outstanding
            .values()
            .filter(|sections| {
                sections.iter().any(|s| s.required_insert_count > self.known_received_count)
            })
            .count()
    }

    /// Applies bytes received on the peer's decoder stream (a partial
    /// instruction at the end is kept for the next call).
    pub fn handle_decoder_stream(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(data);
        let mut at = 0;
        while at < buf.len() {
            match self.apply_instruction(&buf[at..]) {
                Ok(used) => at += used,
                Err(Cause::Truncated) => break,
                Err(cause) => return Err(Error::decoder_stream(cause)),
            }
        }
        buf.drain(..at);
        self.pending = buf;
        Ok(())
    }

    fn apply_instruction(&mut self, buf: &[u8]) -> Result<usize, Cause> {
        let first = buf[0];
        if first & 0x80 != 0 {
            // Section Acknowledgment (§4.4.1).
            let (stream_id, used) = int::decode(buf, 7)?;
            //= https://www.rfc-editor.org/rfc/rfc9204#section-4.4.1
            //# If an encoder receives a Section Acknowledgment instruction referring to a
            //# stream on which every encoded field section with a non-zero Required Insert
            //# Count has already been acknowledged, this MUST be treated as a connection error
            //# of type QPACK_DECODER_STREAM_ERROR.
            let sections =
                self.outstanding.get_mut(&stream_id).ok_or(Cause::UnexpectedAcknowledgment)?;
            let section = sections.pop_front().ok_or(Cause::UnexpectedAcknowledgment)?;
            if sections.is_empty() {
                self.outstanding.remove(&stream_id);
            }
            self.release(&section);
            self.known_received_count =
                self.known_received_count.max(section.required_insert_count);
            Ok(used)
        } else if first & 0x40 != 0 {
            // Stream Cancellation (§4.4.2).
            let (stream_id, used) = int::decode(buf, 6)?;
            for section in self.outstanding.remove(&stream_id).unwrap_or_default() {
                self.release(&section);
            }
            Ok(used)
        } else {
            // Insert Count Increment (§4.4.3).
            let (increment, used) = int::decode(buf, 6)?;
            //= https://www.rfc-editor.org/rfc/rfc9204#section-4.4.3
            //# An encoder that receives an Increment field equal to zero, or one that increases
            //# the Known Received Count beyond what the encoder has sent, MUST treat this as a
            //# connection error of type QPACK_DECODER_STREAM_ERROR.
            let known = self.known_received_count + increment;
            if increment == 0 || known > self.inserted {
                return Err(Cause::BadIncrement);
            }
            self.known_received_count = known;
            Ok(used)
        }
    }

    fn release(&mut self, section: &Outstanding) {
        self.outstanding_count -= 1;
        let dropped = self.dropped();
        for &abs in &section.refs {
            // Referenced entries were not evictable, so they are present.
            let entry = &mut self.entries[(abs - dropped) as usize];
            entry.refs -= 1;
        }
    }
}

/// The static table entry equal to `name: value`, and the first one with
/// that name.
fn find_static(name: &[u8], value: &[u8]) -> (Option<u64>, Option<u64>) {
    let mut name_match = None;
    for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
        if n.as_bytes() == name {
            if v.as_bytes() == value {
                return (Some(i as u64), name_match.or(Some(i as u64)));
            }
            name_match = name_match.or(Some(i as u64));
        }
    }
    (None, name_match)
}

#[cfg(test)]
mod tests;
