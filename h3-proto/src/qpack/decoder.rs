//! The QPACK decoder (RFC 9204 §2.2): applies the peer encoder's
//! instructions (§4.3) to its dynamic table, decodes field sections (§4.5)
//! or holds them while blocked (§2.2.1), and writes decoder instructions
//! (§4.4) for the peer's encoder.

use std::collections::VecDeque;

use super::dynamic_table::{DynamicTable, Entry};
use super::field::{Field, line_size, read_string};
use super::{Cause, Error, int, static_entry};

/// What decoding a field section gave.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Decoded {
    /// The field lines, in order.
    Fields(Vec<Field>),
    /// The section needs dynamic table entries not received yet; the
    /// decoder holds it and [`Decoder::poll_unblocked`] returns it later.
    Blocked,
}

#[derive(Debug)]
struct BlockedSection {
    stream_id: u64,
    required_insert_count: u64,
    /// Kept from when the prefix was read: reconstructing the Required
    /// Insert Count later, with more inserts, could wrap differently.
    base: u64,
    /// The field lines, after the prefix.
    lines: Vec<u8>,
}

/// A QPACK decoder: one per HTTP/3 connection, for the peer's encoder.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    max_table_capacity: u64,
    max_blocked_streams: u64,
    max_field_section_size: u64,
    /// Encoder stream bytes received but not yet a whole instruction.
    pending: Vec<u8>,
    blocked: Vec<BlockedSection>,
    /// Sections decoded after being blocked, for `poll_unblocked`.
    unblocked: VecDeque<(u64, Result<Vec<Field>, Error>)>,
    /// Decoder instructions not yet taken by `poll_decoder_stream`.
    instructions: Vec<u8>,
    /// The Known Received Count the peer's encoder will have once it reads
    /// `instructions` (RFC 9204 §2.1.4).
    known_received_count: u64,
}

impl Decoder {
    /// A decoder that announced `max_table_capacity`
    /// (SETTINGS_QPACK_MAX_TABLE_CAPACITY), `max_blocked_streams`
    /// (SETTINGS_QPACK_BLOCKED_STREAMS) and `max_field_section_size`
    /// (SETTINGS_MAX_FIELD_SECTION_SIZE; `u64::MAX` for none) in its
    /// SETTINGS.
    pub fn new(
        max_table_capacity: u64,
        max_blocked_streams: u64,
        max_field_section_size: u64,
    ) -> Self {
        Self {
            table: DynamicTable::new(max_table_capacity),
            max_table_capacity,
            max_blocked_streams,
            max_field_section_size,
            pending: Vec::new(),
            blocked: Vec::new(),
            unblocked: VecDeque::new(),
            instructions: Vec::new(),
            known_received_count: 0,
        }
    }

    /// Sets the dynamic table capacity as if the encoder had sent Set
    /// Dynamic Table Capacity: for replaying encoders written against
    /// QPACK drafts in which the table started at its maximum capacity
    /// (RFC 9204 §3.2.3 starts it at zero), such as the qpack-05 files of
    /// the QPACK interop collection. Never needed in HTTP/3.
    pub fn assume_capacity(&mut self, capacity: u64) -> Result<(), Error> {
        self.table.set_capacity(capacity).map_err(Error::encoder_stream)
    }

    /// Entries inserted into the dynamic table so far.
    pub fn insert_count(&self) -> u64 {
        self.table.insert_count()
    }

    /// Streams whose field section waits for encoder instructions.
    pub fn blocked_streams(&self) -> usize {
        self.blocked.len()
    }

    /// Applies bytes received on the peer's encoder stream. A partial
    /// instruction at the end is kept for the next call. Sections this
    /// unblocks are decoded and wait in [`Decoder::poll_unblocked`].
    pub fn handle_encoder_stream(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut at = 0;
        let result = if self.pending.is_empty() {
            self.apply_instructions(data, &mut at).map(|()| {
                self.pending.extend_from_slice(&data[at..]);
            })
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(data);
            let result = self.apply_instructions(&buf, &mut at);
            buf.drain(..at);
            self.pending = buf;
            result
        };
        result.map_err(Error::encoder_stream)?;
        self.decode_unblocked();
        Ok(())
    }

    /// Applies the whole instructions at the start of `buf[*at..]`,
    /// advancing `at` past each one.
    fn apply_instructions(&mut self, buf: &[u8], at: &mut usize) -> Result<(), Cause> {
        while *at < buf.len() {
            match self.apply_instruction(&buf[*at..]) {
                Ok(used) => *at += used,
                Err(Cause::Truncated) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn apply_instruction(&mut self, buf: &[u8]) -> Result<usize, Cause> {
        let first = buf[0];
        // An entry's name and value together fit the capacity less 32: a
        // longer string is refused as soon as its length is read, so a
        // peer cannot make this decoder buffer a huge partial instruction.
        let max_string = self.table.capacity().saturating_sub(32);
        if first & 0x80 != 0 {
            // Insert with Name Reference (§4.3.2).
            let (index, mut at) = int::decode(buf, 6)?;
            let name = if first & 0x40 != 0 {
                //= https://www.rfc-editor.org/rfc/rfc9204#section-3.1
                //# If this index is received on the encoder stream,
                //# this MUST be treated as a connection error of type QPACK_ENCODER_STREAM_ERROR.
                static_entry(index)?.0.as_bytes().to_vec()
            } else {
                //= https://www.rfc-editor.org/rfc/rfc9204#section-2.2.3
                //# If the decoder encounters a reference in an encoder instruction to a dynamic
                //# table entry that has already been evicted, it MUST treat this as a connection
                //# error of type QPACK_ENCODER_STREAM_ERROR.
                self.table.get_relative(index)?.name.clone()
            };
            let (value, used) =
                read_string(&buf[at..], 7, max_string.saturating_sub(name.len() as u64))
                    .map_err(too_large_is_entry_too_large)?;
            at += used;
            self.table.insert(Entry { name, value })?;
            Ok(at)
        } else if first & 0x40 != 0 {
            // Insert with Literal Name (§4.3.3).
            let (name, mut at) =
                read_string(buf, 5, max_string).map_err(too_large_is_entry_too_large)?;
            let (value, used) =
                read_string(&buf[at..], 7, max_string.saturating_sub(name.len() as u64))
                    .map_err(too_large_is_entry_too_large)?;
            at += used;
            self.table.insert(Entry { name, value })?;
            Ok(at)
        } else if first & 0x20 != 0 {
            // Set Dynamic Table Capacity (§4.3.1).
            let (capacity, at) = int::decode(buf, 5)?;
            self.table.set_capacity(capacity)?;
            Ok(at)
        } else {
            // Duplicate (§4.3.4).
            let (index, at) = int::decode(buf, 5)?;
            let entry = self.table.get_relative(index)?.clone();
            self.table.insert(entry)?;
            Ok(at)
        }
    }

    /// Decodes the encoded field section of a HEADERS (or PUSH_PROMISE)
    /// frame on `stream_id`. A section that needs entries not received yet
    /// is kept (its bytes count against the stream's flow control until
    /// then, RFC 9204 §2.2.1) and comes back from `poll_unblocked`. Hand
    /// over a stream's next section only once its previous one is decoded:
    /// each blocked section counts as a blocked stream.
    ///
    /// An error with [`Error::is_stream_error`] concerns this stream alone
    /// (the decoder has queued a Stream Cancellation for it); any other
    /// error is the connection's.
    pub fn decode_section(&mut self, stream_id: u64, section: &[u8]) -> Result<Decoded, Error> {
        let (required_insert_count, base, at) =
            self.read_prefix(section).map_err(Error::decompression)?;
        if required_insert_count > self.table.insert_count() {
            // Sections are counted, not streams: the HTTP/3 layer reads no
            // further on a stream whose section is blocked, so each blocked
            // stream holds one section, and the held bytes stay bounded by
            // the limit times the largest section it accepts.
            if self.blocked.len() as u64 >= self.max_blocked_streams {
                //= https://www.rfc-editor.org/rfc/rfc9204#section-2.1.2
                //# If a decoder encounters
                //# more blocked streams than it promised to support, it MUST treat this as a
                //# connection error of type QPACK_DECOMPRESSION_FAILED.
                return Err(Error::decompression(Cause::TooManyBlockedStreams));
            }
            self.blocked.push(BlockedSection {
                stream_id,
                required_insert_count,
                base,
                lines: section[at..].to_vec(),
            });
            return Ok(Decoded::Blocked);
        }
        self.finish_section(stream_id, required_insert_count, base, &section[at..])
            .map(Decoded::Fields)
    }

    /// A section decoded after being blocked: its stream and field lines
    /// (or the error decoding them met). Call after each
    /// `handle_encoder_stream` until it returns `None`.
    pub fn poll_unblocked(&mut self) -> Option<(u64, Result<Vec<Field>, Error>)> {
        self.unblocked.pop_front()
    }

    /// The application stopped reading `stream_id` or the peer reset it:
    /// forgets its blocked section and tells the encoder its references
    /// there are gone (Stream Cancellation, RFC 9204 §4.4.2).
    pub fn cancel_stream(&mut self, stream_id: u64) {
        self.blocked.retain(|b| b.stream_id != stream_id);
        self.unblocked.retain(|(id, _)| *id != stream_id);
        //= https://www.rfc-editor.org/rfc/rfc9204#section-2.2.2.2
        //# A decoder with a
        //# maximum dynamic table capacity (Section 3.2.3) equal to
        //# zero MAY omit sending Stream Cancellations, because the encoder cannot have any
        //# dynamic table references.
        if self.max_table_capacity > 0 {
            int::encode(stream_id, 6, 0x40, &mut self.instructions);
        }
    }

    /// Appends the decoder instructions due to `out`, for the decoder
    /// stream: Section Acknowledgments and Stream Cancellations queued so
    /// far, then an Insert Count Increment for inserts the encoder does not
    /// know arrived (coalesced into one, RFC 9204 §2.2.2.3).
    pub fn poll_decoder_stream(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.instructions);
        let inserts = self.table.insert_count();
        if inserts > self.known_received_count {
            int::encode(inserts - self.known_received_count, 6, 0x00, out);
            self.known_received_count = inserts;
        }
    }

    /// Reads the encoded field section prefix (RFC 9204 §4.5.1): Required
    /// Insert Count, Base, and where the field lines start.
    fn read_prefix(&self, section: &[u8]) -> Result<(u64, u64, usize), Cause> {
        let (encoded, at) = int::decode(section, 8)?;
        let required = self.required_insert_count(encoded)?;
        let sign = section.get(at).ok_or(Cause::Truncated)? & 0x80 != 0;
        let (delta, used) = int::decode(&section[at..], 7)?;
        let base = if sign {
            //= https://www.rfc-editor.org/rfc/rfc9204#section-4.5.1.2
            //# An endpoint MUST treat a field block with a Sign bit of 1 as
            //# invalid if the value of Required Insert Count is less than or equal to the value
            //# of Delta Base.
            required.checked_sub(delta).and_then(|b| b.checked_sub(1)).ok_or(Cause::NegativeBase)?
        } else {
            required.checked_add(delta).ok_or(Cause::IntegerOverflow)?
        };
        Ok((required, base, at + used))
    }

    /// RFC 9204 §4.5.1.1's reconstruction of the Required Insert Count.
    fn required_insert_count(&self, encoded: u64) -> Result<u64, Cause> {
        if encoded == 0 {
            return Ok(0);
        }
        let max_entries = self.max_table_capacity / 32;
        let full_range = 2 * max_entries;
        //= https://www.rfc-editor.org/rfc/rfc9204#section-4.5.1.1
        //# If the decoder encounters a value of EncodedInsertCount that
        //# could not have been produced by a conformant encoder, it MUST treat this as a
        //# connection error of type QPACK_DECOMPRESSION_FAILED.
        if encoded > full_range {
            return Err(Cause::BadRequiredInsertCount);
        }
        let max_value = self.table.insert_count() + max_entries;
        let max_wrapped = max_value / full_range * full_range;
        let mut required = max_wrapped + encoded - 1;
        if required > max_value {
            if required <= full_range {
                return Err(Cause::BadRequiredInsertCount);
            }
            required -= full_range;
        }
        if required == 0 {
            return Err(Cause::BadRequiredInsertCount);
        }
        Ok(required)
    }

    /// Decodes field lines against a table that has every entry they may
    /// name, then acknowledges the section or, if it was too large,
    /// cancels the stream.
    fn finish_section(
        &mut self,
        stream_id: u64,
        required_insert_count: u64,
        base: u64,
        lines: &[u8],
    ) -> Result<Vec<Field>, Error> {
        match self.decode_lines(required_insert_count, base, lines) {
            Ok(fields) => {
                //= https://www.rfc-editor.org/rfc/rfc9204#section-2.2.2.1
                //# After the decoder finishes decoding a field section encoded using
                //# representations containing dynamic table references, it MUST emit a Section
                //# Acknowledgment instruction (Section 4.4.1).
                if required_insert_count > 0 {
                    int::encode(stream_id, 7, 0x80, &mut self.instructions);
                    self.known_received_count =
                        self.known_received_count.max(required_insert_count);
                }
                Ok(fields)
            }
            Err(Cause::FieldSectionTooLarge) => {
                // Reading this section is abandoned: its references are
                // released with a Stream Cancellation (§2.2.2.2).
                self.cancel_stream(stream_id);
                Err(Error::decompression(Cause::FieldSectionTooLarge))
            }
            Err(cause) => Err(Error::decompression(cause)),
        }
    }

    fn decode_lines(&self, required: u64, base: u64, mut buf: &[u8]) -> Result<Vec<Field>, Cause> {
        let mut fields = Vec::new();
        let mut size = 0u64;
        while let Some(&first) = buf.first() {
            let max_len = self.max_field_section_size.saturating_sub(size + 32);
            let (field, used) = if first & 0x80 != 0 {
                // Indexed Field Line (§4.5.2).
                let (index, used) = int::decode(buf, 6)?;
                let (name, value) = if first & 0x40 != 0 {
                    let (name, value) = static_entry(index)?;
                    (name.as_bytes().to_vec(), value.as_bytes().to_vec())
                } else {
                    let entry = self.dynamic(required, base_relative(base, index)?)?;
                    (entry.name.clone(), entry.value.clone())
                };
                (Field { name, value, never_index: false }, used)
            } else if first & 0x40 != 0 {
                // Literal Field Line with Name Reference (§4.5.4).
                let (index, at) = int::decode(buf, 4)?;
                let name = if first & 0x10 != 0 {
                    static_entry(index)?.0.as_bytes().to_vec()
                } else {
                    self.dynamic(required, base_relative(base, index)?)?.name.clone()
                };
                let (value, used) = read_string(&buf[at..], 7, max_len)?;
                (Field { name, value, never_index: first & 0x20 != 0 }, at + used)
            } else if first & 0x20 != 0 {
                // Literal Field Line with Literal Name (§4.5.6).
                let (name, at) = read_string(buf, 3, max_len)?;
                let (value, used) = read_string(&buf[at..], 7, max_len)?;
                (Field { name, value, never_index: first & 0x10 != 0 }, at + used)
            } else if first & 0x10 != 0 {
                // Indexed Field Line with Post-Base Index (§4.5.3).
                let (index, used) = int::decode(buf, 4)?;
                let entry = self.dynamic(required, post_base(base, index)?)?;
                (Field::new(entry.name.clone(), entry.value.clone()), used)
            } else {
                // Literal Field Line with Post-Base Name Reference (§4.5.5).
                let (index, at) = int::decode(buf, 3)?;
                let name = self.dynamic(required, post_base(base, index)?)?.name.clone();
                let (value, used) = read_string(&buf[at..], 7, max_len)?;
                (Field { name, value, never_index: first & 0x08 != 0 }, at + used)
            };
            // The decoded size is checked line by line, so a small section
            // of references to large entries (a decompression bomb) stops
            // at the limit instead of filling memory.
            size += line_size(field.name.len(), field.value.len());
            if size > self.max_field_section_size {
                return Err(Cause::FieldSectionTooLarge);
            }
            fields.push(field);
            buf = &buf[used..];
        }
        Ok(fields)
    }

    /// The dynamic entry at `absolute`, which the section's Required
    /// Insert Count must cover.
    fn dynamic(&self, required: u64, absolute: u64) -> Result<&Entry, Cause> {
        //= https://www.rfc-editor.org/rfc/rfc9204#section-2.2.3
        //# If the decoder encounters a reference in a field line representation to a
        //# dynamic table entry that has already been evicted or that has an absolute
        //# index greater than or equal to the declared Required Insert Count
        //# (Section 4.5.1), it MUST treat this as a connection error of type
        //# QPACK_DECOMPRESSION_FAILED.
        if absolute >= required {
            return Err(Cause::BadDynamicIndex);
        }
        self.table.get_absolute(absolute)
    }

    /// Decodes every blocked section the table now covers, in arrival order.
    fn decode_unblocked(&mut self) {
        let inserts = self.table.insert_count();
        if !self.blocked.iter().any(|b| b.required_insert_count <= inserts) {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.blocked)
            .into_iter()
            .partition(|b| b.required_insert_count <= inserts);
        self.blocked = waiting;
        for section in ready {
            let result = self.finish_section(
                section.stream_id,
                section.required_insert_count,
                section.base,
                &section.lines,
            );
            self.unblocked.push_back((section.stream_id, result));
        }
    }
}

/// Field-line relative index to absolute: 0 is `base - 1` (§3.2.5).
fn base_relative(base: u64, relative: u64) -> Result<u64, Cause> {
    base.checked_sub(1).and_then(|b| b.checked_sub(relative)).ok_or(Cause::BadDynamicIndex)
}

/// Post-Base index to absolute: 0 is `base` (§3.2.6).
fn post_base(base: u64, index: u64) -> Result<u64, Cause> {
    base.checked_add(index).ok_or(Cause::BadDynamicIndex)
}

/// On the encoder stream a string too long for the table is an entry too
/// large, whatever the field-section wording of `read_string`.
fn too_large_is_entry_too_large(cause: Cause) -> Cause {
    if cause == Cause::FieldSectionTooLarge { Cause::EntryTooLarge } else { cause }
}

#[cfg(test)]
mod tests;
