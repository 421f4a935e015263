use proptest::prelude::*;

use super::*;
use crate::qpack::{Decoded, Decoder, ErrorCode};

fn f(name: &str, value: &str) -> Field {
    Field::new(name, value)
}

/// Moves encoder instructions to the decoder and decoder instructions back.
fn sync(e: &mut Encoder, d: &mut Decoder) {
    let mut buf = Vec::new();
    e.poll_encoder_stream(&mut buf);
    d.handle_encoder_stream(&buf).unwrap();
    buf.clear();
    d.poll_decoder_stream(&mut buf);
    e.handle_decoder_stream(&buf).unwrap();
}

#[test]
fn repeated_fields_shrink_to_a_byte_each() {
    let mut e = Encoder::new(EncoderConfig::default());
    let mut d = Decoder::new(4096, 16, u64::MAX);
    e.apply_settings(4096, 16);
    let fields =
        vec![f(":method", "GET"), f(":authority", "example.com"), f("x-custom", "some value")];
    // First seen: sent as literals, nothing inserted.
    let mut first = Vec::new();
    e.encode(0, &fields, &mut first);
    assert_eq!(e.insert_count(), 0, "a line seen once may never recur");
    assert_eq!(d.decode_section(0, &first).unwrap(), Decoded::Fields(fields.clone()));
    // Seen again: inserted and referenced.
    let mut second = Vec::new();
    e.encode(4, &fields, &mut second);
    assert_eq!(e.insert_count(), 2, ":method GET is in the static table");
    assert_eq!(d.decode_section(4, &second).unwrap(), Decoded::Blocked);
    sync(&mut e, &mut d);
    assert_eq!(d.poll_unblocked(), Some((4, Ok(fields.clone()))));
    sync(&mut e, &mut d);
    // From then on, a byte a line.
    let mut third = Vec::new();
    e.encode(8, &fields, &mut third);
    assert_eq!(third.len(), 2 + 3, "prefix and one byte a line");
    assert_eq!(d.decode_section(8, &third).unwrap(), Decoded::Fields(fields));
}

#[test]
fn without_settings_only_the_static_table_is_used() {
    let mut e = Encoder::new(EncoderConfig::default());
    let mut out = Vec::new();
    e.encode(0, &[f("x-a", "b"), f(":path", "/")], &mut out);
    let mut instructions = Vec::new();
    e.poll_encoder_stream(&mut instructions);
    //= https://www.rfc-editor.org/rfc/rfc9204#section-3.2.3
    //= type=test
    //# When the maximum table capacity is zero, the encoder MUST NOT insert entries
    //# into the dynamic table and MUST NOT send any encoder instructions on the encoder
    //# stream.
    assert!(instructions.is_empty());
    assert_eq!(&out[..2], [0, 0]);
    let mut d = Decoder::new(0, 0, u64::MAX);
    assert_eq!(
        d.decode_section(0, &out).unwrap(),
        Decoded::Fields(vec![f("x-a", "b"), f(":path", "/")])
    );
}

#[test]
fn blocked_streams_stay_within_the_peers_limit() {
    let mut e = Encoder::new(EncoderConfig::default());
    e.apply_settings(4096, 2);
    for stream in 0..5u64 {
        let mut out = Vec::new();
        e.encode(stream * 4, &[f("x-stream", &stream.to_string())], &mut out);
        //= https://www.rfc-editor.org/rfc/rfc9204#section-2.1.2
        //= type=test
        //# An encoder MUST limit the number of streams that could become blocked to the
        //# value of SETTINGS_QPACK_BLOCKED_STREAMS at all times.
        assert!(e.blocked_streams() <= 2);
    }
    assert_eq!(e.blocked_streams(), 2);
}

#[test]
fn unacknowledged_entries_are_never_evicted() {
    // Room for two entries of 42 bytes; the decoder acknowledges nothing.
    let mut e = Encoder::new(EncoderConfig::default());
    e.apply_settings(100, 100);
    let mut d = Decoder::new(100, 100, u64::MAX);
    for i in 0..10 {
        let mut out = Vec::new();
        // Twice, so that it is worth inserting.
        let fields = vec![f("x-key", &format!("value{i}")), f("x-key", &format!("value{i}"))];
        e.encode(i * 4, &fields, &mut out);
        let mut buf = Vec::new();
        e.poll_encoder_stream(&mut buf);
        // The decoder would fail with an eviction of a referenced entry.
        d.handle_encoder_stream(&buf).unwrap();
        assert_eq!(d.decode_section(i * 4, &out).unwrap(), Decoded::Fields(fields));
    }
    //= https://www.rfc-editor.org/rfc/rfc9204#section-2.1.1
    //= type=test
    //# If the dynamic table does not contain enough room for a new entry without
    //# evicting other entries, and the entries that would be evicted are not
    //# evictable, the encoder MUST NOT insert that entry into the dynamic table
    //# (including duplicates of existing entries).
    assert_eq!(e.insert_count(), 2);
}

#[test]
fn bad_decoder_instructions_are_decoder_stream_errors() {
    let mut e = Encoder::new(EncoderConfig::default());
    e.apply_settings(4096, 16);
    //= https://www.rfc-editor.org/rfc/rfc9204#section-4.4.1
    //= type=test
    //# If an encoder receives a Section Acknowledgment instruction referring to a
    //# stream on which every encoded field section with a non-zero Required Insert
    //# Count has already been acknowledged, this MUST be treated as a connection error
    //# of type QPACK_DECODER_STREAM_ERROR.
    let err = e.handle_decoder_stream(&[0x84]).unwrap_err();
    assert_eq!(
        err,
        Error { code: ErrorCode::DecoderStream, cause: Cause::UnexpectedAcknowledgment }
    );
    //= https://www.rfc-editor.org/rfc/rfc9204#section-4.4.3
    //= type=test
    //# An encoder that receives an Increment field equal to zero, or one that increases
    //# the Known Received Count beyond what the encoder has sent, MUST treat this as a
    //# connection error of type QPACK_DECODER_STREAM_ERROR.
    assert_eq!(e.handle_decoder_stream(&[0x00]).unwrap_err().cause, Cause::BadIncrement);
    let mut out = Vec::new();
    e.encode(0, &[f("x-a", "b"), f("x-a", "b")], &mut out);
    assert_eq!(e.insert_count(), 1);
    assert_eq!(e.handle_decoder_stream(&[0x02]).unwrap_err().cause, Cause::BadIncrement);
    e.handle_decoder_stream(&[0x01]).unwrap();
    // A partial instruction waits for its end.
    e.handle_decoder_stream(&[0xff]).unwrap();
    e.handle_decoder_stream(&[0x01]).unwrap_err();
}

#[test]
fn a_stream_cancellation_releases_references() {
    let mut e = Encoder::new(EncoderConfig::default());
    e.apply_settings(100, 100);
    let mut out = Vec::new();
    e.encode(0, &[f("x-key", "value0"), f("x-key", "value0")], &mut out);
    e.encode(4, &[f("x-key", "value1"), f("x-key", "value1")], &mut out);
    e.handle_decoder_stream(&[0x02]).unwrap(); // both inserts received
    assert_eq!(e.insert_count(), 2);
    // Seen twice, a line is worth inserting, but the table is full of
    // referenced entries.
    e.encode(8, &[f("x-key", "value2"), f("x-key", "value2")], &mut out);
    assert_eq!(e.insert_count(), 2, "entry 0 is still referenced by streams 0 and 4");
    // (Stream 4 named entry 0's name for its first, literal, line.)
    e.handle_decoder_stream(&[0x40]).unwrap(); // Stream Cancellation, stream 0
    e.encode(12, &[f("x-key", "value2")], &mut out);
    assert_eq!(e.insert_count(), 2, "entry 0 is still referenced by stream 4");
    e.handle_decoder_stream(&[0x44]).unwrap(); // Stream Cancellation, stream 4
    e.encode(16, &[f("x-key", "value2")], &mut out);
    assert_eq!(e.insert_count(), 3);
}

proptest! {
    /// Random sections over random settings, decoded by our decoder with
    /// instructions delivered late or early: every section decodes to its
    /// input, and the decoder never sees an error.
    #[test]
    fn round_trips_through_the_decoder(
        capacity in prop_oneof![Just(0u64), Just(64), Just(256), Just(4096)],
        blocked in 0u64..4,
        sections in proptest::collection::vec(
            (proptest::collection::vec((0usize..12, 0usize..6, any::<bool>()), 0..8), any::<bool>()),
            1..40,
        ),
    ) {
        let names = ["x-a", ":path", ":authority", "cookie", "user-agent", "x-long-name-here",
            "accept", "content-type", "x-b", "etag", "location", "server"];
        let values = ["", "/", "text/html", "a-fairly-long-value-for-a-header", "1", "zzz"];
        let mut e = Encoder::new(EncoderConfig::default());
        e.apply_settings(capacity, blocked);
        let mut d = Decoder::new(capacity, blocked, u64::MAX);
        let mut pending: Vec<(u64, Vec<u8>, Vec<Field>)> = Vec::new();
        for (i, (lines, deliver)) in sections.into_iter().enumerate() {
            let fields: Vec<Field> = lines.iter().map(|&(n, v, never)| Field {
                name: names[n].into(), value: values[v].into(), never_index: never,
            }).collect();
            let stream = i as u64 * 4;
            let mut out = Vec::new();
            e.encode(stream, &fields, &mut out);
            pending.push((stream, out, fields));
            if deliver {
                sync(&mut e, &mut d);
                for (stream, out, fields) in pending.drain(..) {
                    match d.decode_section(stream, &out).unwrap() {
                        Decoded::Fields(got) => prop_assert_eq!(got, fields),
                        Decoded::Blocked => prop_assert!(false, "everything was delivered"),
                    }
                }
                sync(&mut e, &mut d);
            }
        }
    }
}
