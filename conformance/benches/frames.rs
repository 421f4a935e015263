//! Frame codec throughput: encode and decode 1200-byte packet payloads full
//! of STREAM frames, led by an ACK frame with several ranges.
//!
//! Run: `cargo bench -p conformance --bench frames`. Prints packets/s,
//! frames/s and MB/s of payload; never asserted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use quic_proto::frame::{AckEncoder, Frame, Frames, StreamHeader};
use quic_proto::{Dir, Side, StreamId, VarInt};

const PAYLOAD_LEN: usize = 1200;

/// One packet payload: an ACK with `ack_ranges` ranges, then STREAM frames of
/// `chunk` bytes (with Length fields) on rotating streams until full.
fn encode_payload(buf: &mut Vec<u8>, data: &[u8], pn: u64, ack_ranges: u64, chunk: usize) -> usize {
    buf.clear();
    let largest = 10_000 + pn;
    let ranges = (0..ack_ranges).map(move |i| largest - i * 4 - 1..=largest - i * 4);
    let ack = AckEncoder::new(ranges, VarInt::from_u32(25)).expect("non-empty");
    ack.encode(buf);
    let mut frames = 1;
    let mut i = 0u64;
    loop {
        let room = PAYLOAD_LEN - buf.len();
        let id = StreamId::new(Side::Client, Dir::Bi, i % 4).expect("small index");
        let offset = VarInt::from_u32((pn as u32).wrapping_mul(1200) & 0x3fff_ffff);
        let Some(fits) = StreamHeader::max_data_len(id, offset, room, true) else { break };
        let n = fits.min(chunk);
        if n == 0 {
            break;
        }
        StreamHeader { id, offset, data_len: Some(n), fin: false }.encode(buf);
        buf.extend_from_slice(&data[..n]);
        frames += 1;
        i += 1;
    }
    frames
}

fn measure(budget: Duration, mut f: impl FnMut(u64) -> usize) -> (f64, f64) {
    let (mut best_pps, mut best_fps) = (0f64, 0f64);
    let mut pn = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let (mut packets, mut frames) = (0u64, 0usize);
        while start.elapsed() < budget {
            frames += f(pn);
            pn += 1;
            packets += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        if packets as f64 / secs > best_pps {
            best_pps = packets as f64 / secs;
            best_fps = frames as f64 / secs;
        }
    }
    (best_pps, best_fps)
}

fn main() {
    let budget = Duration::from_millis(300);
    let data = vec![0xa5u8; PAYLOAD_LEN];
    println!("frame codec: {PAYLOAD_LEN}-byte payloads of one ACK + STREAM frames, best of 5 runs");
    for (ack_ranges, chunk) in [(1u64, 1200usize), (8, 100), (32, 40)] {
        let mut buf = Vec::with_capacity(PAYLOAD_LEN);
        let frames_per_packet = encode_payload(&mut buf, &data, 0, ack_ranges, chunk);
        let (enc_pps, enc_fps) = measure(budget, |pn| {
            let n = encode_payload(&mut buf, &data, pn, ack_ranges, chunk);
            black_box(&buf);
            n
        });
        let packet = buf.clone();
        let (dec_pps, dec_fps) = measure(budget, |_| {
            let mut n = 0;
            let mut bytes = 0;
            for frame in Frames::new(black_box(&packet)) {
                match frame.expect("valid") {
                    Frame::Stream(s) => bytes += s.data.len(),
                    Frame::Ack(a) => bytes += a.ranges().count(),
                    _ => {}
                }
                n += 1;
            }
            black_box(bytes);
            n
        });
        let label = format!("{ack_ranges:>2} ACK ranges, {chunk:>4}-byte STREAM chunks");
        let mbps = |pps: f64| pps * PAYLOAD_LEN as f64 / 1e6;
        println!(
            "{label} ({frames_per_packet:>2} frames/packet)  encode {enc_pps:>10.0} pkt/s {enc_fps:>11.0} frames/s {:>7.0} MB/s",
            mbps(enc_pps)
        );
        println!(
            "{:<55}  decode {dec_pps:>10.0} pkt/s {dec_fps:>11.0} frames/s {:>7.0} MB/s",
            "",
            mbps(dec_pps)
        );
    }
}
