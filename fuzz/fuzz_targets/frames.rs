//! Frame decoding never panics, and every frame it accepts re-encodes to
//! exactly `encoded_len()` bytes that decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quic_proto::frame::{Frame, Frames};

fuzz_target!(|data: &[u8]| {
    for frame in Frames::new(data) {
        let Ok(frame) = frame else { break };
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out.len(), frame.encoded_len(), "encoded_len of {frame:?}");
        let again: Vec<Frame<'_>> = Frames::new(&out).collect::<Result<_, _>>().expect("re-decode");
        // PADDING runs may merge with neighbours; everything else is one frame.
        if !matches!(frame, Frame::Padding { .. }) {
            assert_eq!(again, [frame]);
        }
    }
});
