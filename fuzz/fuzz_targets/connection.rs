//! Authenticated frames: an established connection pair where the input
//! plays one side's peer, sealing arbitrary frame bytes into genuine 1-RTT
//! packets, so that frame processing (streams, flow control, ACKs, CIDs,
//! datagrams, close) sees what an attacker holding the keys can send. The
//! connection may close with an error; it must not panic or hang.
//!
//! Input: chunks of `[side, len_lo, len_hi, frames...]`; side bit 0 picks
//! who sends (0: the client attacks the server), the frames are truncated
//! to one packet. After each chunk the pair runs for 10 ms of virtual time,
//! and for 2 s at the end.

#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use quic_proto::Side;
use quic_proto::testing::pair::Pair;

fuzz_target!(|data: &[u8]| {
    let mut pair = Pair::new(1);
    pair.handshake();
    let mut rest = data;
    while let [side, lo, hi, tail @ ..] = rest {
        let from = if side & 1 == 0 { Side::Client } else { Side::Server };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (frames, next) = tail.split_at(len);
        rest = next;
        let Some(conn) = pair.connection(from) else { break };
        if conn.is_closed() {
            break;
        }
        let frames = &frames[..frames.len().min(conn.forge_capacity())];
        pair.inject_frames(from, frames);
        pair.drive_for(Duration::from_millis(10));
    }
    pair.drive_for(Duration::from_secs(2));
});
