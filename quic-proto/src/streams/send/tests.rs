use super::*;
use proptest::prelude::*;

fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8
}

fn bytes_at(offset: u64, len: usize) -> Vec<u8> {
    (offset..offset + len as u64).map(pattern).collect()
}

fn chunk(offset: u64, len: usize, fin: bool) -> SendChunk {
    SendChunk { offset, data: Bytes::from(bytes_at(offset, len)), fin }
}

const NO_LIMIT: u64 = u64::MAX;

#[test]
fn small_writes_coalesce_into_one_chunk() {
    let mut buf = SendBuffer::default();
    for i in 0..10 {
        assert_eq!(buf.write(&bytes_at(i * 3, 3)), Ok(3));
    }
    assert_eq!(buf.end(), 30);
    assert_eq!(buf.unsent(), 30);
    assert_eq!(buf.next_transmit_offset(NO_LIMIT), Some(0));
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), Some(chunk(0, 30, false)));
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), None);
    assert_eq!((buf.sent_offset(), buf.unacked(), buf.unsent()), (30, 30, 0));
}

#[test]
fn owned_writes_are_not_copied() {
    let mut buf = SendBuffer::default();
    let data = Bytes::from(bytes_at(0, 100));
    assert_eq!(buf.write_bytes(data.clone()), Ok(100));
    let c = buf.poll_transmit(40, NO_LIMIT).unwrap();
    assert_eq!(c.data.as_ptr(), data.as_ptr());
    let c = buf.poll_transmit(100, NO_LIMIT).unwrap();
    assert_eq!((c.offset, c.data.len()), (40, 60));
    assert_eq!(c.data.as_ptr(), data[40..].as_ptr());
}

#[test]
fn chunks_stop_at_storage_boundaries_and_continue() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 10)).unwrap();
    buf.write_bytes(Bytes::from(bytes_at(10, 10))).unwrap();
    buf.write(&bytes_at(20, 10)).unwrap();
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), Some(chunk(0, 10, false)));
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), Some(chunk(10, 10, false)));
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), Some(chunk(20, 10, false)));
}

#[test]
fn retransmissions_go_before_new_data() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 100)).unwrap();
    for i in 0..3 {
        assert_eq!(buf.poll_transmit(10, NO_LIMIT), Some(chunk(i * 10, 10, false)));
    }
    assert_eq!(buf.on_lost(10..20, false), 10);
    assert!(buf.has_retransmit());
    assert_eq!(buf.next_transmit_offset(NO_LIMIT), Some(10));
    assert_eq!(buf.poll_transmit(4, NO_LIMIT), Some(chunk(10, 4, false)));
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), Some(chunk(14, 6, false)));
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), Some(chunk(30, 10, false)));
}

#[test]
fn acked_data_is_never_resent() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 30)).unwrap();
    let _ = buf.poll_transmit(30, NO_LIMIT).unwrap();
    assert_eq!(buf.on_ack(10..20, false), 10);
    // A loss of the whole frame requeues only the unacknowledged parts.
    assert_eq!(buf.on_lost(0..30, false), 20);
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), Some(chunk(0, 10, false)));
    // An ack after the loss (a spurious loss) cancels the retransmission.
    assert_eq!(buf.on_ack(25..30, false), 5);
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), Some(chunk(20, 5, false)));
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), None);
    // Only the resent 20..25 is new; repeated acks count nothing.
    assert_eq!(buf.on_ack(10..30, false), 5);
    assert_eq!(buf.on_ack(10..30, false), 0);
}

#[test]
fn acknowledged_front_is_freed() {
    let mut buf = SendBuffer::new(100);
    buf.write(&bytes_at(0, 100)).unwrap();
    assert_eq!(buf.write(&[1]), Err(BufferWriteError::Blocked));
    for _ in 0..4 {
        let _ = buf.poll_transmit(25, NO_LIMIT).unwrap();
    }
    buf.on_ack(25..50, false);
    assert_eq!((buf.acked_offset(), buf.buffered(), buf.room()), (0, 100, 0));
    buf.on_ack(0..25, false);
    assert_eq!((buf.acked_offset(), buf.buffered(), buf.room()), (50, 50, 50));
    assert_eq!(buf.chunks.len(), 2);
    buf.on_ack(50..60, false);
    // Part of a chunk acked: the chunk is trimmed to start at `base`.
    assert_eq!(buf.chunks.front().map(|(s, c)| (*s, c.len())), Some((60, 15)));
    buf.on_ack(60..100, false);
    assert!(buf.is_empty());
    assert_eq!((buf.buffered(), buf.unacked()), (0, 0));
}

#[test]
fn writes_beyond_the_bound_are_partial_then_refused() {
    let mut buf = SendBuffer::new(10);
    assert_eq!(buf.write(&bytes_at(0, 8)), Ok(8));
    assert_eq!(buf.write_bytes(Bytes::from(bytes_at(8, 5))), Ok(2));
    assert_eq!(buf.write(&bytes_at(10, 1)), Err(BufferWriteError::Blocked));
    assert_eq!(buf.write(&[]), Ok(0));
    let _ = buf.poll_transmit(4, NO_LIMIT).unwrap();
    buf.on_ack(0..4, false);
    assert_eq!(buf.room(), 4);
    assert_eq!(buf.write(&bytes_at(10, 9)), Ok(4));
    buf.set_max_buffered(0);
    assert_eq!(buf.write(&bytes_at(14, 1)), Err(BufferWriteError::Blocked));
}

#[test]
fn flow_control_limits_new_data_but_not_retransmissions() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 50)).unwrap();
    assert_eq!(buf.poll_transmit(100, 20), Some(chunk(0, 20, false)));
    assert_eq!(buf.poll_transmit(100, 20), None);
    assert_eq!(buf.next_transmit_offset(20), None);
    buf.on_lost(0..20, false);
    assert_eq!(buf.poll_transmit(100, 0), Some(chunk(0, 20, false)));
    assert_eq!(buf.poll_transmit(100, 30), Some(chunk(20, 10, false)));
}

#[test]
fn fin_rides_on_the_last_data() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 20)).unwrap();
    buf.finish();
    buf.finish();
    assert_eq!(buf.write(&[0]), Err(BufferWriteError::Finished));
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), Some(chunk(0, 10, false)));
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), Some(chunk(10, 10, true)));
    assert!(buf.is_fin_sent());
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), None);
    buf.on_ack(0..20, false);
    assert!(!buf.is_fully_acked());
    buf.on_ack(10..20, true);
    assert!(buf.is_fully_acked() && buf.is_empty());
}

#[test]
fn fin_alone_when_finished_after_sending() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 5)).unwrap();
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), Some(chunk(0, 5, false)));
    buf.finish();
    // A bare FIN needs no room for data, nor flow-control credit.
    assert_eq!(buf.next_transmit_offset(5), Some(5));
    assert_eq!(buf.poll_transmit(0, 5), Some(chunk(5, 0, true)));
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), None);
    // The FIN is lost: it goes out again, alone.
    buf.on_lost(5..5, true);
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), Some(chunk(5, 0, true)));
    buf.on_ack(0..5, false);
    buf.on_ack(5..5, true);
    assert!(buf.is_fully_acked());
    // A late loss report of the acked FIN changes nothing.
    buf.on_lost(5..5, true);
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), None);
}

#[test]
fn lost_fin_rides_on_retransmitted_data() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 20)).unwrap();
    buf.finish();
    assert_eq!(buf.poll_transmit(20, NO_LIMIT), Some(chunk(0, 20, true)));
    buf.on_lost(0..20, true);
    // Storage boundary-free here; max_len splits it and the FIN goes last.
    assert_eq!(buf.poll_transmit(15, NO_LIMIT), Some(chunk(0, 15, false)));
    assert_eq!(buf.poll_transmit(15, NO_LIMIT), Some(chunk(15, 5, true)));
    // max_len 0 cannot carry retransmitted data, but the FIN can go alone
    // (its offset is known), and the data follows without it.
    buf.on_lost(15..20, true);
    assert_eq!(buf.poll_transmit(0, NO_LIMIT), Some(chunk(20, 0, true)));
    assert_eq!(buf.poll_transmit(0, NO_LIMIT), None);
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), Some(chunk(15, 5, false)));
}

#[test]
fn empty_stream_sends_one_bare_fin() {
    let mut buf = SendBuffer::default();
    assert_eq!(buf.poll_transmit(10, NO_LIMIT), None);
    buf.finish();
    assert_eq!(buf.poll_transmit(10, 0), Some(chunk(0, 0, true)));
    buf.on_ack(0..0, true);
    assert!(buf.is_fully_acked());
}

#[test]
fn reports_outside_what_was_sent_are_ignored() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 50)).unwrap();
    let _ = buf.poll_transmit(10, NO_LIMIT).unwrap();
    assert_eq!(buf.on_ack(10..50, false), 0);
    assert_eq!(buf.on_lost(20..u64::MAX, true), 0);
    assert_eq!(buf.on_ack(u64::MAX - 1..u64::MAX, true), 0);
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 40..5;
    assert_eq!(buf.on_lost(backwards.clone(), false), 0);
    assert_eq!(buf.on_ack(backwards, false), 0);
    // A FIN never sent cannot be acknowledged.
    buf.finish();
    buf.on_ack(0..10, true);
    assert!(!buf.is_fully_acked());
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), Some(chunk(10, 40, true)));
    assert_eq!(buf.on_ack(0..50, true), 40);
    assert!(buf.is_fully_acked());
}

/// Regression: a loss report for a frame wholly below the acknowledged
/// front clipped to a backwards range, which `RangeSet` lookups panic on.
#[test]
fn late_loss_of_a_frame_below_the_acked_front() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 23)).unwrap();
    assert_eq!(buf.poll_transmit(1, NO_LIMIT), Some(chunk(0, 1, false)));
    assert_eq!(buf.poll_transmit(1, NO_LIMIT), Some(chunk(1, 1, false)));
    buf.on_ack(0..2, false);
    assert_eq!(buf.on_lost(0..1, false), 0);
    assert_eq!(buf.poll_transmit(5, NO_LIMIT), Some(chunk(2, 5, false)));
}

#[test]
fn reset_frees_everything_and_reports_the_final_size() {
    let mut buf = SendBuffer::default();
    buf.write(&bytes_at(0, 50)).unwrap();
    let _ = buf.poll_transmit(30, NO_LIMIT).unwrap();
    assert_eq!(buf.reset(), 30);
    assert!(buf.is_reset() && buf.is_empty());
    assert_eq!(buf.poll_transmit(100, NO_LIMIT), None);
    assert_eq!(buf.next_transmit_offset(NO_LIMIT), None);
    assert_eq!(buf.write(&[1]), Err(BufferWriteError::Reset));
    assert_eq!((buf.on_ack(0..30, false), buf.on_lost(0..30, false)), (0, 0));
    buf.finish();
    assert!(!buf.is_finished());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
//= type=test
//# The largest offset delivered
//# on a stream -- the sum of the offset and data length -- cannot exceed
//# 2<sup>62</sup>-1, as it is not possible to provide flow control credit for that
//# data.
#[test]
fn writes_stop_at_the_stream_offset_limit() {
    let mut buf = SendBuffer::new(u64::MAX);
    let near = MAX_STREAM_END - 3;
    (buf.base, buf.frozen_end, buf.sent) = (near, near, near);
    assert_eq!(buf.write(&[1; 10]), Ok(3));
    assert_eq!(buf.end(), MAX_STREAM_END);
    assert_eq!(buf.write(&[1]), Err(BufferWriteError::OffsetLimit));
    assert_eq!(buf.write_bytes(Bytes::from_static(b"x")), Err(BufferWriteError::OffsetLimit));
    let c = buf.poll_transmit(usize::MAX, NO_LIMIT).unwrap();
    assert_eq!((c.offset, c.end()), (near, MAX_STREAM_END));
    buf.finish();
    assert_eq!(
        buf.poll_transmit(usize::MAX, NO_LIMIT).map(|c| (c.offset, c.fin)),
        Some((MAX_STREAM_END, true))
    );
    buf.on_ack(near..MAX_STREAM_END, true);
    assert!(buf.is_fully_acked());
}

#[test]
fn gaps_lists_the_uncovered_parts() {
    let mut set = RangeSet::new();
    set.insert(5..10);
    set.insert(20..30);
    assert_eq!(gaps(&set, 0..40).collect::<Vec<_>>(), [0..5, 10..20, 30..40]);
    assert_eq!(gaps(&set, 6..25).collect::<Vec<_>>(), [Range { start: 10, end: 20 }]);
    assert_eq!(gaps(&set, 5..10).count(), 0);
    assert_eq!(gaps(&set, 7..7).count(), 0);
}

/// What the model knows of each byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Byte {
    Unsent,
    InFlight,
    Acked,
    Lost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fin {
    None,
    Pending,
    InFlight,
    Lost,
    Acked,
}

#[derive(Clone, Debug)]
enum Op {
    Write { len: usize, owned: bool },
    Poll { max_len: usize, credit: u64 },
    Ack(usize),
    Lose(usize),
    Finish,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..80, any::<bool>()).prop_map(|(len, owned)| Op::Write { len, owned }),
        4 => (0usize..60, prop_oneof![Just(u64::MAX), 0u64..100]).prop_map(|(max_len, credit)| Op::Poll { max_len, credit }),
        3 => any::<usize>().prop_map(Op::Ack),
        2 => any::<usize>().prop_map(Op::Lose),
        1 => Just(Op::Finish),
    ]
}

struct Model {
    bytes: Vec<Byte>,
    fin: Fin,
    /// Every frame handed out: (range, fin).
    frames: Vec<(Range<u64>, bool)>,
}

impl Model {
    fn first(&self, state: Byte) -> Option<u64> {
        self.bytes.iter().position(|&b| b == state).map(|i| i as u64)
    }

    /// Polls once, checking the chunk against the model; returns whether a
    /// chunk came out.
    fn poll(
        &mut self,
        buf: &mut SendBuffer,
        max_len: usize,
        limit: u64,
    ) -> Result<bool, TestCaseError> {
        let end = self.bytes.len() as u64;
        let first_lost = self.first(Byte::Lost);
        let first_unsent = self.first(Byte::Unsent);
        let fin_due = matches!(self.fin, Fin::Pending | Fin::Lost);
        let Some(c) = buf.poll_transmit(max_len, limit) else {
            prop_assert!(first_lost.is_none() || max_len == 0);
            prop_assert!(first_unsent.is_none_or(|u| max_len == 0 || u >= limit));
            prop_assert!(!fin_due || first_unsent.is_some());
            return Ok(false);
        };
        prop_assert!(c.data.len() <= max_len);
        prop_assert_eq!(&c.data[..], &bytes_at(c.offset, c.data.len())[..]);
        let range = c.offset..c.end();
        if let Some(lost) = first_lost.filter(|_| max_len > 0) {
            // Retransmission first, lowest first, only lost bytes.
            prop_assert_eq!(c.offset, lost);
            prop_assert!(!c.data.is_empty());
            prop_assert!(range.clone().all(|i| self.bytes[i as usize] == Byte::Lost));
        } else if c.data.is_empty() {
            prop_assert!(c.fin && fin_due && first_unsent.is_none() && c.offset == end);
        } else {
            prop_assert_eq!(Some(c.offset), first_unsent);
            prop_assert!(c.end() <= limit);
            prop_assert!(range.clone().all(|i| self.bytes[i as usize] == Byte::Unsent));
        }
        prop_assert_eq!(c.fin, fin_due && c.end() == end, "fin whenever due at the end");
        for i in range.clone() {
            self.bytes[i as usize] = Byte::InFlight;
        }
        if c.fin {
            self.fin = Fin::InFlight;
        }
        self.frames.push((range, c.fin));
        Ok(true)
    }

    fn ack(&mut self, buf: &mut SendBuffer, i: usize) {
        let (range, fin) = self.frames[i].clone();
        buf.on_ack(range.clone(), fin);
        for b in range {
            self.bytes[b as usize] = Byte::Acked;
        }
        if fin {
            self.fin = Fin::Acked;
        }
    }

    fn lose(&mut self, buf: &mut SendBuffer, i: usize) {
        let (range, fin) = self.frames[i].clone();
        buf.on_lost(range.clone(), fin);
        for b in range {
            if self.bytes[b as usize] != Byte::Acked {
                self.bytes[b as usize] = Byte::Lost;
            }
        }
        if fin && self.fin != Fin::Acked {
            self.fin = Fin::Lost;
        }
    }
}

proptest! {
    /// Random writes, partial sends, acks and losses in any order, checked
    /// against a per-byte model: polls return the right bytes, lost ones
    /// first, never acknowledged ones; every lost byte comes back until
    /// acknowledged; once everything is acknowledged the buffer is empty.
    #[test]
    fn send_buffer_matches_model(
        max_buffered in 1u64..400,
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        let mut buf = SendBuffer::new(max_buffered);
        let mut m = Model { bytes: Vec::new(), fin: Fin::None, frames: Vec::new() };
        for op in ops {
            match op {
                Op::Write { len, owned } => {
                    let offset = m.bytes.len() as u64;
                    let data = bytes_at(offset, len);
                    let res = if owned { buf.write_bytes(Bytes::from(data)) } else { buf.write(&data) };
                    let room = max_buffered - buf.buffered().min(max_buffered);
                    match res {
                        Ok(n) => {
                            prop_assert!(m.fin == Fin::None);
                            prop_assert!(n <= len && (n == len || buf.room() == 0));
                            m.bytes.extend(std::iter::repeat_n(Byte::Unsent, n));
                        }
                        Err(BufferWriteError::Finished) => prop_assert!(m.fin != Fin::None),
                        Err(BufferWriteError::Blocked) => prop_assert_eq!(room, 0),
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Poll { max_len, credit } => {
                    let limit = buf.sent_offset().saturating_add(credit);
                    let expected = buf.next_transmit_offset(limit);
                    let before = m.frames.len();
                    let out = m.poll(&mut buf, max_len, limit)?;
                    if out && max_len > 0 {
                        prop_assert_eq!(expected, Some(m.frames[before].0.start));
                    }
                }
                Op::Ack(i) if !m.frames.is_empty() => m.ack(&mut buf, i % m.frames.len()),
                Op::Lose(i) if !m.frames.is_empty() => m.lose(&mut buf, i % m.frames.len()),
                Op::Finish => {
                    buf.finish();
                    if m.fin == Fin::None {
                        m.fin = Fin::Pending;
                    }
                }
                Op::Ack(_) | Op::Lose(_) => {}
            }
            let acked = m.bytes.iter().filter(|&&b| b == Byte::Acked).count() as u64;
            let unsent = m.bytes.iter().filter(|&&b| b == Byte::Unsent).count() as u64;
            prop_assert_eq!(buf.end() - buf.unacked() - buf.unsent(), acked);
            prop_assert_eq!(buf.unsent(), unsent);
            prop_assert!(buf.buffered() <= max_buffered);
            let base = m.first(Byte::Unsent).into_iter()
                .chain(m.first(Byte::InFlight)).chain(m.first(Byte::Lost)).min()
                .unwrap_or(m.bytes.len() as u64);
            prop_assert_eq!(buf.acked_offset(), base, "front freed as acknowledged");
        }

        // Drain: finish, declare every frame lost, send everything that
        // comes out, then acknowledge it all.
        buf.finish();
        if m.fin == Fin::None {
            m.fin = Fin::Pending;
        }
        for i in 0..m.frames.len() {
            m.lose(&mut buf, i);
        }
        let first_new = m.frames.len();
        while m.poll(&mut buf, 37, u64::MAX)? {}
        prop_assert!(m.bytes.iter().all(|&b| matches!(b, Byte::Acked | Byte::InFlight)));
        prop_assert!(matches!(m.fin, Fin::Acked | Fin::InFlight));
        for i in first_new..m.frames.len() {
            m.ack(&mut buf, i);
        }
        prop_assert!(buf.is_fully_acked());
        prop_assert!(buf.is_empty());
        prop_assert_eq!((buf.buffered(), buf.unacked()), (0, 0));
        prop_assert_eq!(buf.poll_transmit(100, u64::MAX), None);
    }
}
