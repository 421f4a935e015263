//! The QPACK offline interop formats (the qpackers/qifs collection): QIF
//! text for field sections, and the record format encoders write.
//!
//! - A QIF file holds one field section per paragraph (paragraphs are
//!   separated by an empty line); each line is `name<TAB>value`; lines
//!   starting with `#` are comments.
//! - An encoded file is a sequence of records
//!   `stream id (u64, big endian) | length (u32, big endian) | bytes`.
//!   Stream 0 carries encoder instructions; any other stream one encoded
//!   field section, the n-th section of the QIF on stream n.
//!
//! [`decode_records`] and [`encode_sections`] replay them through this
//! crate's [`Decoder`] and [`Encoder`] under the settings the file names
//! give (`<qif>.out.<table size>.<blocked streams>.<ack mode>`).

use core::fmt;

use super::{Decoded, Decoder, Encoder, EncoderConfig, Field};

/// Why a QIF or an encoded file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QifError {
    /// A QIF line without a tab between name and value (1-based line).
    NoTab(usize),
    /// An encoded file ending inside a record.
    TruncatedRecord,
    /// A record a decoder refused.
    Decode {
        /// The record's stream (0: the encoder stream).
        stream_id: u64,
        /// What the decoder said.
        error: super::Error,
    },
    /// Field sections still blocked when the input ended.
    StillBlocked(usize),
}

impl fmt::Display for QifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTab(line) => write!(f, "line {line}: no tab between name and value"),
            Self::TruncatedRecord => f.write_str("the input ends inside a record"),
            Self::Decode { stream_id: 0, error } => write!(f, "encoder stream: {error}"),
            Self::Decode { stream_id, error } => write!(f, "stream {stream_id}: {error}"),
            Self::StillBlocked(n) => write!(f, "{n} field sections still blocked at the end"),
        }
    }
}

impl std::error::Error for QifError {}

/// The field sections of a QIF file, in order (comments dropped).
pub fn parse_qif(text: &[u8]) -> Result<Vec<Vec<Field>>, QifError> {
    let mut sections = Vec::new();
    let mut section = Vec::new();
    for (number, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"#") {
            continue;
        }
        if line.is_empty() {
            if !section.is_empty() {
                sections.push(std::mem::take(&mut section));
            }
            continue;
        }
        let tab = line.iter().position(|&b| b == b'\t').ok_or(QifError::NoTab(number + 1))?;
        section.push(Field::new(&line[..tab], &line[tab + 1..]));
    }
    if !section.is_empty() {
        sections.push(section);
    }
    Ok(sections)
}

/// Writes field sections as QIF text: lines of `name<TAB>value`, each
/// section followed by an empty line.
pub fn write_qif<'a>(sections: impl IntoIterator<Item = &'a [Field]>, out: &mut Vec<u8>) {
    for section in sections {
        for field in section {
            out.extend_from_slice(&field.name);
            out.push(b'\t');
            out.extend_from_slice(&field.value);
            out.push(b'\n');
        }
        out.push(b'\n');
    }
}

/// Appends one record of the encoded format.
pub fn write_record(stream_id: u64, data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// The records of an encoded file: stream and bytes, in file order.
pub fn parse_records(mut input: &[u8]) -> Result<Vec<(u64, &[u8])>, QifError> {
    let mut records = Vec::new();
    while !input.is_empty() {
        let header = input.get(..12).ok_or(QifError::TruncatedRecord)?;
        let stream_id = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(header[8..].try_into().expect("4 bytes")) as usize;
        let data = input.get(12..12 + len).ok_or(QifError::TruncatedRecord)?;
        records.push((stream_id, data));
        input = &input[12 + len..];
    }
    Ok(records)
}

/// Decodes an encoded file with a decoder that announced `table_size`
/// and `blocked_streams`: the field sections by stream, in stream order.
///
/// The table starts at `table_size`, not at zero: the collection's files
/// (qpack-05) predate RFC 9204's zero initial capacity, and some start
/// inserting without a Set Dynamic Table Capacity. Files that do set it
/// (ours) decode the same.
pub fn decode_records(
    input: &[u8],
    table_size: u64,
    blocked_streams: u64,
) -> Result<Vec<(u64, Vec<Field>)>, QifError> {
    let mut decoder = Decoder::new(table_size, blocked_streams, u64::MAX);
    decoder
        .assume_capacity(table_size)
        .map_err(|error| QifError::Decode { stream_id: 0, error })?;
    let mut sections = Vec::new();
    for (stream_id, data) in parse_records(input)? {
        let error = |error| QifError::Decode { stream_id, error };
        if stream_id == 0 {
            decoder.handle_encoder_stream(data).map_err(error)?;
            while let Some((stream_id, fields)) = decoder.poll_unblocked() {
                sections.push((
                    stream_id,
                    fields.map_err(|error| QifError::Decode { stream_id, error })?,
                ));
            }
        } else if let Decoded::Fields(fields) =
            decoder.decode_section(stream_id, data).map_err(error)?
        {
            sections.push((stream_id, fields));
        }
    }
    if decoder.blocked_streams() > 0 {
        return Err(QifError::StillBlocked(decoder.blocked_streams()));
    }
    sections.sort_by_key(|&(stream_id, _)| stream_id);
    Ok(sections)
}

/// Encodes field sections (the n-th on stream n) for a decoder that
/// announced `table_size` and `blocked_streams`, as records: each
/// section's encoder instructions before it. With `ack_mode` each section
/// is acknowledged (and each insert counted) as soon as it is written, as
/// a decoder reading everything at once would; without it the encoder
/// hears nothing back.
pub fn encode_sections(
    sections: &[Vec<Field>],
    table_size: u64,
    blocked_streams: u64,
    ack_mode: bool,
) -> Vec<u8> {
    let mut encoder = Encoder::new(EncoderConfig::default().max_table_capacity(table_size).clone());
    encoder.apply_settings(table_size, blocked_streams);
    let mut decoder = Decoder::new(table_size, blocked_streams, u64::MAX);
    let mut out = Vec::new();
    let mut instructions = Vec::new();
    let mut section = Vec::new();
    for (i, fields) in sections.iter().enumerate() {
        let stream_id = i as u64 + 1;
        section.clear();
        encoder.encode(stream_id, fields, &mut section);
        instructions.clear();
        encoder.poll_encoder_stream(&mut instructions);
        if !instructions.is_empty() {
            write_record(0, &instructions, &mut out);
        }
        write_record(stream_id, &section, &mut out);
        if ack_mode {
            // Our own decoder plays the peer; what it acknowledges is
            // what a decoder that received everything would.
            let mut feedback = Vec::new();
            let ok = decoder.handle_encoder_stream(&instructions).is_ok()
                && decoder.decode_section(stream_id, &section).is_ok();
            debug_assert!(ok, "our encoder's output decodes");
            decoder.poll_decoder_stream(&mut feedback);
            let ok = encoder.handle_decoder_stream(&feedback).is_ok();
            debug_assert!(ok, "our decoder's feedback is valid");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qif_text_round_trips_without_comments() {
        let text = b"# stream 4\n:path\t/index.html\n\n# x\n:authority\twww.ietf.org\nx\t\n\n";
        let sections = parse_qif(text).unwrap();
        assert_eq!(
            sections,
            vec![
                vec![Field::new(":path", "/index.html")],
                vec![Field::new(":authority", "www.ietf.org"), Field::new("x", "")]
            ]
        );
        let mut out = Vec::new();
        write_qif(sections.iter().map(Vec::as_slice), &mut out);
        assert_eq!(out, b":path\t/index.html\n\n:authority\twww.ietf.org\nx\t\n\n");
        assert_eq!(parse_qif(b"a\tb\nno tab\n"), Err(QifError::NoTab(2)));
    }

    #[test]
    fn records_round_trip_and_truncation_is_an_error() {
        let mut out = Vec::new();
        write_record(0, b"abc", &mut out);
        write_record(7, b"", &mut out);
        assert_eq!(parse_records(&out).unwrap(), vec![(0, &b"abc"[..]), (7, &b""[..])]);
        assert_eq!(parse_records(&out[..out.len() - 1]), Err(QifError::TruncatedRecord));
        assert_eq!(parse_records(&out[..5]), Err(QifError::TruncatedRecord));
    }
}
