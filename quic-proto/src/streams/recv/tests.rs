use super::*;
use crate::error::TransportErrorCode;
use proptest::prelude::*;

fn b(data: &[u8]) -> Bytes {
    Bytes::copy_from_slice(data)
}

fn read_all(buf: &mut RecvBuffer) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = buf.read_chunk(usize::MAX) {
        out.extend_from_slice(&chunk);
    }
    out
}

fn code(r: Result<impl fmt::Debug, TransportError>) -> TransportErrorCode {
    r.expect_err("expected an error").code
}

#[test]
fn in_order_data_is_read_without_copying() {
    let mut buf = RecvBuffer::new();
    let data = Bytes::from_static(b"hello world");
    assert_eq!(buf.insert(0, data.clone(), false), Ok(11));
    let chunk = buf.read_chunk(5).unwrap();
    assert_eq!((&chunk[..], chunk.as_ptr()), (&b"hello"[..], data.as_ptr()));
    assert_eq!(buf.consumed(), 5);
    let rest = buf.read_chunk(100).unwrap();
    assert_eq!((&rest[..], rest.as_ptr()), (&b" world"[..], data[5..].as_ptr()));
    assert_eq!(buf.read_chunk(100), None);
    assert_eq!((buf.consumed(), buf.buffered()), (11, 0));
}

#[test]
fn out_of_order_and_overlapping_data_is_deduplicated() {
    let mut buf = RecvBuffer::new();
    assert_eq!(buf.insert_slice(6, b"world", false), Ok(5));
    assert_eq!(buf.read_chunk(100), None);
    let mut out = [0; 20];
    assert_eq!(buf.read(&mut out), 0);
    // Overlaps both sides of the hole: only the hole is new.
    assert_eq!(buf.insert_slice(3, b"lo worl", false), Ok(3));
    assert_eq!(buf.insert_slice(0, b"hel", false), Ok(3));
    assert_eq!(buf.insert_slice(0, b"hello world", true), Ok(0));
    assert_eq!(buf.read(&mut out[..4]), 4);
    assert_eq!(buf.read(&mut out[4..]), 7);
    assert_eq!(&out[..11], b"hello world");
    assert!(buf.is_finished() && buf.is_all_received());
}

#[test]
fn an_empty_stream_finishes_on_a_bare_fin() {
    let mut buf = RecvBuffer::new();
    assert!(!buf.is_finished());
    assert_eq!(buf.insert(0, Bytes::new(), true), Ok(0));
    assert_eq!(buf.final_size(), Some(0));
    assert!(buf.is_all_received() && buf.is_finished());
    assert_eq!(buf.read_chunk(10), None);
}

#[test]
fn size_known_before_all_data_arrives() {
    let mut buf = RecvBuffer::new();
    assert_eq!(buf.insert_slice(5, b"world", true), Ok(5));
    assert_eq!(buf.final_size(), Some(10));
    assert!(!buf.is_all_received());
    assert_eq!(buf.insert_slice(0, b"hello", false), Ok(5));
    assert!(buf.is_all_received() && !buf.is_finished());
    assert_eq!(read_all(&mut buf), b"helloworld");
    assert!(buf.is_finished());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.5
//= type=test
//# Once a final size for a stream is known, it cannot change.  If a RESET_STREAM or
//# STREAM frame is received indicating a change in the final size for the stream,
//# an endpoint SHOULD respond with an error of type FINAL_SIZE_ERROR; see
//# {{error-handling}} for details on error handling.
#[test]
fn a_changed_final_size_is_an_error() {
    let mut buf = RecvBuffer::new();
    buf.insert_slice(0, b"abc", true).unwrap();
    assert_eq!(code(buf.insert_slice(0, b"ab", true)), TransportErrorCode::FINAL_SIZE_ERROR);
    assert_eq!(
        code(buf.insert_slice(3, b"", false).and(buf.insert_slice(3, b"d", true))),
        TransportErrorCode::FINAL_SIZE_ERROR
    );
    assert_eq!(code(buf.on_reset(4)), TransportErrorCode::FINAL_SIZE_ERROR);
    assert_eq!(code(buf.on_reset(2)), TransportErrorCode::FINAL_SIZE_ERROR);
    // The same final size again is fine.
    assert_eq!(buf.insert_slice(1, b"bc", true), Ok(0));
    assert_eq!(read_all(&mut buf), b"abc");
    assert_eq!(buf.on_reset(3), Ok(0));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-4.5
//= type=test
//# A receiver SHOULD treat
//# receipt of data at or beyond the final size as an error of type
//# FINAL_SIZE_ERROR, even after a stream is closed.
#[test]
fn data_beyond_the_final_size_is_an_error() {
    let mut buf = RecvBuffer::new();
    buf.insert_slice(10, b"", true).unwrap();
    let e = buf.insert_slice(9, b"xy", false).unwrap_err();
    assert_eq!(
        (e.code, e.reason),
        (TransportErrorCode::FINAL_SIZE_ERROR, "data beyond final size")
    );
    assert_eq!(code(buf.insert_slice(10, b"x", false)), TransportErrorCode::FINAL_SIZE_ERROR);
    assert_eq!(code(buf.insert_slice(11, b"", false)), TransportErrorCode::FINAL_SIZE_ERROR);
    assert_eq!(buf.insert_slice(10, b"", false), Ok(0));
    // Still enforced once the stream is read to the end, and after a reset.
    buf.insert_slice(0, &[7; 10], false).unwrap();
    assert_eq!(read_all(&mut buf), [7; 10]);
    assert!(buf.is_finished());
    assert_eq!(code(buf.insert_slice(10, b"x", false)), TransportErrorCode::FINAL_SIZE_ERROR);
    let mut reset = RecvBuffer::new();
    reset.on_reset(5).unwrap();
    assert_eq!(reset.insert_slice(0, b"abcde", false), Ok(0));
    assert_eq!(code(reset.insert_slice(4, b"xy", false)), TransportErrorCode::FINAL_SIZE_ERROR);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-20.1
//= type=test
//# (2) an endpoint received a STREAM frame or
//# a RESET_STREAM frame containing a final size that was lower than the size of
//# stream data that was already received
#[test]
fn a_final_size_below_received_data_is_an_error() {
    let mut buf = RecvBuffer::new();
    buf.insert_slice(10, b"abc", false).unwrap();
    assert_eq!(code(buf.insert_slice(0, b"abc", true)), TransportErrorCode::FINAL_SIZE_ERROR);
    assert_eq!(code(buf.on_reset(12)), TransportErrorCode::FINAL_SIZE_ERROR);
    assert_eq!(buf.final_size(), None);
    // Equal to the data received is fine.
    assert_eq!(buf.insert_slice(13, b"", true), Ok(0));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
//= type=test
//# Receipt of a frame that exceeds this limit MUST be treated as a
//# connection error of type FRAME_ENCODING_ERROR or FLOW_CONTROL_ERROR.
#[test]
fn data_beyond_the_offset_limit_is_an_error() {
    let max = VarInt::MAX.into_inner();
    let mut buf = RecvBuffer::new();
    assert_eq!(code(buf.insert_slice(max, b"x", false)), TransportErrorCode::FRAME_ENCODING_ERROR);
    assert_eq!(
        code(buf.insert_slice(u64::MAX, b"x", false)),
        TransportErrorCode::FRAME_ENCODING_ERROR
    );
    assert_eq!(code(buf.on_reset(max + 1)), TransportErrorCode::FRAME_ENCODING_ERROR);
    assert_eq!(buf.insert_slice(max - 1, b"x", true), Ok(1));
    assert_eq!(buf.final_size(), Some(max));
}

#[test]
fn reset_discards_data_and_releases_credit() {
    let mut buf = RecvBuffer::new();
    buf.insert_slice(0, b"abcd", false).unwrap();
    buf.insert_slice(10, b"xy", false).unwrap();
    assert_eq!(buf.read_chunk(2).as_deref(), Some(&b"ab"[..]));
    assert_eq!(buf.on_reset(20), Ok(18));
    assert!(buf.is_reset() && !buf.is_finished() && !buf.is_all_received());
    assert_eq!((buf.consumed(), buf.buffered()), (20, 0));
    assert_eq!(buf.read_chunk(10), None);
    assert_eq!(buf.read_unordered(), None);
    assert_eq!(buf.insert_slice(4, b"efgh", false), Ok(0));
    assert_eq!(buf.insert_slice(19, b"z", true), Ok(0));
    assert_eq!(buf.on_reset(20), Ok(0));
    assert_eq!(buf.consumed(), 20);
}

#[test]
fn stop_counts_later_data_as_consumed() {
    let mut buf = RecvBuffer::new();
    buf.insert_slice(0, b"abcd", false).unwrap();
    buf.insert_slice(8, b"ij", false).unwrap();
    assert_eq!(buf.stop(), 10);
    assert_eq!(buf.stop(), 0);
    assert!(buf.is_stopped());
    assert_eq!((buf.consumed(), buf.buffered()), (10, 0));
    assert_eq!(buf.insert_slice(12, b"mn", false), Ok(0));
    assert_eq!(buf.consumed(), 14);
    assert_eq!(buf.read_chunk(10), None);
    // Final-size rules still hold, and a reset releases the rest.
    assert_eq!(code(buf.insert_slice(0, b"a", true)), TransportErrorCode::FINAL_SIZE_ERROR);
    assert_eq!(buf.on_reset(16), Ok(2));
    assert_eq!(buf.consumed(), 16);
}

#[test]
fn unordered_reads_deliver_each_byte_once() {
    let mut buf = RecvBuffer::new();
    buf.insert_slice(5, b"fghij", false).unwrap();
    assert_eq!(buf.read_unordered(), Some((5, b(b"fghij"))));
    assert!(buf.is_unordered());
    buf.insert_slice(0, b"abcdefg", false).unwrap();
    assert_eq!(buf.read_unordered(), Some((0, b(b"abcde"))));
    assert_eq!(buf.read_unordered(), None);
    assert_eq!(buf.consumed(), 10);
    // Already delivered data is not delivered again.
    assert_eq!(buf.insert_slice(3, b"defghij", true), Ok(0));
    assert_eq!(buf.read_unordered(), None);
    assert!(buf.is_finished());
    // Ordered reads are over once unordered ones began.
    let mut other = RecvBuffer::new();
    other.insert_slice(0, b"ab", false).unwrap();
    assert_eq!(other.read_unordered().map(|(o, _)| o), Some(0));
    other.insert_slice(2, b"cd", false).unwrap();
    assert_eq!(other.read_chunk(10), None);
    assert_eq!(other.read(&mut [0; 4]), 0);
    assert_eq!(other.read_unordered(), Some((2, b(b"cd"))));
}

#[test]
fn too_many_holes_is_an_internal_error_and_changes_nothing() {
    let mut buf = RecvBuffer::with_limits(3, u64::MAX);
    for i in 0..3 {
        buf.insert_slice(i * 10, b"x", false).unwrap();
    }
    let before = format!("{buf:?}");
    let e = buf.insert_slice(35, b"y", false).unwrap_err();
    assert_eq!((e.code, e.reason), (TransportErrorCode::INTERNAL_ERROR, TOO_FRAGMENTED));
    assert_eq!(format!("{buf:?}"), before);
    // Filling a hole, or extending a range, is fine.
    assert_eq!(buf.insert_slice(1, &[0; 9], false), Ok(9));
    assert_eq!(buf.insert_slice(35, b"y", false), Ok(1));
}

#[test]
fn too_much_out_of_order_data_is_an_internal_error() {
    let mut buf = RecvBuffer::with_limits(100, 10);
    buf.insert_slice(0, &[1; 50], false).unwrap(); // readable: not counted
    buf.insert_slice(60, &[1; 8], false).unwrap();
    let before = format!("{buf:?}");
    let e = buf.insert_slice(70, &[1; 3], false).unwrap_err();
    assert_eq!((e.code, e.reason), (TransportErrorCode::INTERNAL_ERROR, TOO_MUCH_OUT_OF_ORDER));
    assert_eq!(format!("{buf:?}"), before);
    // Filling the hole makes it all readable.
    buf.insert_slice(50, &[1; 10], false).unwrap();
    assert_eq!(buf.insert_slice(70, &[1; 10], false), Ok(10));
}

#[test]
fn many_small_in_order_frames_are_compacted() {
    let mut buf = RecvBuffer::with_limits(4, u64::MAX);
    let data: Vec<u8> = (0..200u8).collect();
    for (i, byte) in data.iter().enumerate() {
        buf.insert_slice(i as u64, &[*byte], false).unwrap();
        assert!(buf.segments.len() <= 8);
    }
    assert_eq!(buf.buffered(), 200);
    assert_eq!(read_all(&mut buf), data);
}

#[test]
fn compaction_keeps_holes() {
    let mut buf = RecvBuffer::with_limits(3, u64::MAX);
    for i in 0..20 {
        buf.insert_slice(i, &[i as u8], false).unwrap();
        buf.insert_slice(100 + i, &[100 + i as u8], false).unwrap();
    }
    assert!(buf.segments.len() <= 6);
    assert_eq!(read_all(&mut buf), (0..20).collect::<Vec<u8>>());
    buf.insert_slice(20, &(20..100).collect::<Vec<u8>>(), true).unwrap_err();
    buf.insert_slice(20, &(20..100).collect::<Vec<u8>>(), false).unwrap();
    assert_eq!(read_all(&mut buf), (20..120).collect::<Vec<u8>>());
}

/// The attack of RFC 9000 §21.7 on memory rather than on flow control: a
/// sender of one-byte fragments, each in its own full-sized datagram,
/// leaving a hole before each, within a window of `WINDOW` bytes. Kept as
/// slices, the fragments would pin 1472 times the data; the buffer keeps
/// it within `PIN_FACTOR` times what it holds.
#[test]
fn tiny_fragments_in_large_datagrams_pin_a_bounded_multiple() {
    const WINDOW: u64 = 64 * 1024;
    const DATAGRAM: usize = 1472;
    let mut buf = RecvBuffer::with_limits(usize::MAX, WINDOW);
    let mut most = 0;
    for i in 0..WINDOW / 2 {
        let datagram = Bytes::from(vec![pattern(2 * i + 1); DATAGRAM]);
        buf.insert_in(2 * i + 1, datagram.slice(7..8), false, DATAGRAM).unwrap();
        assert!(buf.pinned() <= PIN_FACTOR * buf.buffered());
        most = most.max(buf.pinned());
    }
    assert_eq!(buf.buffered(), WINDOW / 2);
    assert!(most <= PIN_FACTOR * WINDOW, "{most} bytes pinned");
    // Reads leave the bound in place too: fill the holes, read half.
    for i in 0..WINDOW / 2 {
        let datagram = Bytes::from(vec![pattern(2 * i); DATAGRAM]);
        buf.insert_in(2 * i, datagram.slice(0..1), false, DATAGRAM).unwrap();
    }
    let mut half = vec![0; WINDOW as usize / 2];
    assert_eq!(buf.read(&mut half), half.len());
    assert!(buf.pinned() <= PIN_FACTOR * buf.buffered());
}

/// Full-sized frames in their datagrams (the common case) are never
/// copied: the copying is for fragments much smaller than their datagrams.
#[test]
fn full_sized_frames_are_kept_without_copying() {
    let mut buf = RecvBuffer::new();
    let datagram = Bytes::from(vec![1; 1472]);
    let frame = datagram.slice(40..1440);
    // Out of order, so the data waits in the buffer.
    for i in 1..100u64 {
        buf.insert_in(i * 1400, frame.clone(), false, 1472).unwrap();
    }
    buf.insert_in(0, frame.clone(), false, 1472).unwrap();
    let chunk = buf.read_chunk(usize::MAX).unwrap();
    assert_eq!(chunk.as_ptr(), frame.as_ptr());
    assert_eq!(buf.pinned(), 99 * 1472);
}

/// A byte string, cut into frames that cover it, plus duplicates of random
/// pieces, shuffled; each frame that reaches the end may carry the FIN.
fn segmented() -> impl Strategy<Value = (Vec<u8>, Vec<(usize, usize, bool)>)> {
    proptest::collection::vec(any::<u8>(), 0..300).prop_flat_map(|data| {
        let len = data.len();
        let cuts = proptest::collection::vec(0..=len, 0..20);
        let dups = proptest::collection::vec((0..=len, 0..=len), 0..10);
        let fins = proptest::collection::vec(any::<bool>(), 40);
        (Just(data), cuts, dups, fins).prop_flat_map(move |(data, mut cuts, dups, fins)| {
            cuts.push(0);
            cuts.push(len);
            cuts.sort_unstable();
            cuts.dedup();
            let mut frames: Vec<(usize, usize, bool)> =
                cuts.windows(2).map(|w| (w[0], w[1], false)).collect();
            if frames.is_empty() {
                frames.push((0, 0, false));
            }
            frames.extend(dups.into_iter().map(|(a, b)| (a.min(b), a.max(b), false)));
            for (frame, fin) in frames.iter_mut().zip(&fins) {
                frame.2 = frame.1 == len && *fin;
            }
            // At least one frame carries the FIN.
            frames.push((len, len, true));
            (Just(data), Just(frames).prop_shuffle())
        })
    })
}

fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8
}

fn check(offset: u64, data: &[u8]) -> Result<(), TestCaseError> {
    for (i, &byte) in data.iter().enumerate() {
        prop_assert_eq!(byte, pattern(offset + i as u64), "byte at {}", offset + i as u64);
    }
    Ok(())
}

proptest! {
    /// Random segmentation, duplication and reordering, with reads in
    /// between, always reassembles to exactly the original bytes.
    #[test]
    fn ordered_reads_reassemble_the_stream(
        (data, frames) in segmented(),
        owned in any::<bool>(),
        footprints in proptest::collection::vec(prop_oneof![Just(0usize), 0usize..3000], 40),
        read_sizes in proptest::collection::vec(0usize..50, 60),
    ) {
        // Each insert adds at most one received range: the cap never trips.
        let mut buf = RecvBuffer::with_limits(frames.len(), u64::MAX);
        let mut out = Vec::new();
        let mut new_total = 0;
        for (i, &(start, end, fin)) in frames.iter().enumerate() {
            // Slices of larger "datagrams" exercise the copying that
            // bounds the memory pinned.
            let footprint = footprints[i % footprints.len()];
            let n = if owned {
                let datagram = Bytes::from(data.clone());
                buf.insert_in(start as u64, datagram.slice(start..end), fin, footprint)
            } else {
                buf.insert_slice(start as u64, &data[start..end], fin)
            };
            new_total += n.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut tmp = vec![0; read_sizes[i % read_sizes.len()]];
            let n = buf.read(&mut tmp);
            out.extend_from_slice(&tmp[..n]);
            prop_assert_eq!(buf.consumed(), out.len() as u64);
            prop_assert!(buf.pinned() <= PIN_FACTOR * buf.buffered());
        }
        prop_assert_eq!(new_total, data.len());
        prop_assert!(buf.is_all_received());
        out.extend(read_all(&mut buf));
        prop_assert_eq!(&out, &data);
        prop_assert!(buf.is_finished());
        prop_assert_eq!(buf.buffered(), 0);
    }

    /// Unordered reads return each byte exactly once, at its offset.
    #[test]
    fn unordered_reads_return_each_byte_once(
        (data, frames) in segmented(),
        reads in proptest::collection::vec(0usize..3, 60),
    ) {
        let mut buf = RecvBuffer::with_limits(frames.len(), u64::MAX);
        let mut seen = vec![false; data.len()];
        let mut take = |buf: &mut RecvBuffer| -> Result<bool, TestCaseError> {
            let Some((offset, chunk)) = buf.read_unordered() else { return Ok(false) };
            prop_assert!(!chunk.is_empty());
            for (i, byte) in chunk.iter().enumerate() {
                let at = offset as usize + i;
                prop_assert_eq!(*byte, data[at]);
                prop_assert!(!seen[at], "byte {} delivered twice", at);
                seen[at] = true;
            }
            Ok(true)
        };
        for (i, &(start, end, fin)) in frames.iter().enumerate() {
            buf.insert_slice(start as u64, &data[start..end], fin)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for _ in 0..reads[i % reads.len()] {
                take(&mut buf)?;
            }
        }
        while take(&mut buf)? {}
        prop_assert!(seen.iter().all(|&s| s));
        prop_assert!(buf.is_finished());
        prop_assert_eq!(buf.consumed(), data.len() as u64);
    }

    /// Arbitrary operations with peer-chosen offsets never panic, keep the
    /// buffer's accounting consistent, and deliver the bytes that were sent
    /// (through caps, compaction, stops and resets).
    #[test]
    fn arbitrary_inputs_never_panic(
        ops in proptest::collection::vec((0u8..8, prop_oneof![
            0u64..200,
            Just(VarInt::MAX.into_inner()),
            (VarInt::MAX.into_inner() - 100)..=VarInt::MAX.into_inner(),
            any::<u64>(),
        ], 0usize..60, any::<bool>()), 0..80),
        max_fragments in 1usize..6,
        max_out_of_order in 0u64..300,
    ) {
        let mut buf = RecvBuffer::with_limits(max_fragments, max_out_of_order);
        let mut consumed = 0;
        for (kind, offset, len, fin) in ops {
            let ordered = !buf.is_unordered() && !buf.is_stopped() && !buf.is_reset();
            match kind {
                0..=1 => {
                    let data: Vec<u8> = (0..len as u64).map(|i| pattern(offset.wrapping_add(i))).collect();
                    let _ = buf.insert_slice(offset, &data, fin);
                }
                2..=3 => {
                    // A slice of a "datagram" of up to ~1.5 KB.
                    let data: Bytes = (0..len as u64).map(|i| pattern(offset.wrapping_add(i))).collect();
                    let footprint = (offset % 1500) as usize * usize::from(kind == 2);
                    let _ = buf.insert_in(offset, data, fin, footprint);
                }
                4 => {
                    if let Some(chunk) = buf.read_chunk(len) {
                        prop_assert!(ordered && chunk.len() <= len);
                        check(consumed, &chunk)?;
                    }
                }
                5 => {
                    if let Some((at, chunk)) = buf.read_unordered() {
                        check(at, &chunk)?;
                    }
                }
                6 => { let _ = buf.on_reset(offset); }
                _ => {
                    if fin {
                        let _ = buf.stop();
                    } else {
                        let mut tmp = [0; 7];
                        let n = buf.read(&mut tmp);
                        check(consumed, &tmp[..n])?;
                    }
                }
            }
            prop_assert!(buf.consumed() >= consumed);
            consumed = buf.consumed();
            let stored: u64 = buf.segments.values().map(|s| s.data.len() as u64).sum();
            prop_assert_eq!(stored, buf.buffered());
            prop_assert!(buf.segments.values().all(|s| !s.data.is_empty()));
            // The memory accounting: consistent, and within the bound.
            let pinned: u64 = buf.segments.values().map(|s| s.pinned).sum();
            prop_assert_eq!(pinned, buf.pinned());
            prop_assert!(buf.segments.values().all(|s| s.pinned >= s.data.len() as u64));
            prop_assert!(buf.pinned() <= PIN_FACTOR * buf.buffered());
            prop_assert!(buf.received.len() <= max_fragments);
            if let Some(size) = buf.final_size() {
                prop_assert!(buf.max_received_offset() <= size);
            }
        }
    }
}
