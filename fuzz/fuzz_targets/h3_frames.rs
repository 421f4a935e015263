//! The HTTP/3 wire decoders (frame headers, frame payloads, SETTINGS,
//! unidirectional stream headers) never panic on any input; every frame
//! they accept re-encodes to exactly `encoded_len()` bytes that decode to
//! the same frame; and every prefix of an accepted frame reads as
//! "need more bytes".
#![no_main]

use h3_proto::frame::{Frame, FrameHeader, FrameType};
use h3_proto::settings::Settings;
use h3_proto::stream_type::UniStreamHeader;
use libfuzzer_sys::fuzz_target;
use quic_proto::VarInt;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the buffering limit, from none to unbounded.
    let Some((&limit, data)) = data.split_first() else { return };
    let limit = match limit {
        0 => 0,
        0xff => u64::MAX,
        n => 1u64 << (n % 24),
    };

    // A stream of frames, read the way the connection layer will: the
    // header, then the payload taken whole, streamed or skipped.
    let mut rest = data;
    let mut first = true;
    loop {
        let parsed = Frame::parse(rest, limit);
        // The header decoder alone agrees with `parse` about the header.
        let header = FrameHeader::decode(rest, limit);
        match (&parsed, &header) {
            (Err(a), Err(b)) => assert_eq!(a, b),
            (Err(_), Ok(Some(h))) | (Ok(None), Ok(Some(h))) => assert!(h.ty.is_buffered()),
            (Ok(Some((_, n))), Ok(Some(h))) => assert!(*n >= h.header_len),
            (Ok(None), Ok(None)) => {}
            _ => panic!("parse {parsed:?} but header {header:?}"),
        }
        let Ok(Some((frame, consumed))) = parsed else { break };
        assert!(consumed > 0 && consumed <= rest.len());

        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out.len(), frame.encoded_len(), "encoded_len of {frame:?}");
        let again = Frame::parse(&out, u64::MAX).expect("re-decode").expect("complete");
        assert_eq!(again, (frame, out.len()));

        // Truncation anywhere inside the frame (header only, for DATA and
        // unknown types) asks for more bytes. Once per input: quadratic.
        if first {
            for end in 0..consumed {
                assert_eq!(Frame::parse(&rest[..end], limit), Ok(None), "prefix {end}");
            }
            first = false;
        }

        let skip = match frame {
            Frame::Data { len } | Frame::Unknown { len, .. } => len,
            _ => 0,
        };
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        rest = rest.get(consumed.saturating_add(skip)..).unwrap_or(&[]);
    }

    // The payload decoder on its own, with a type taken from the input.
    if let Some((&ty, payload)) = data.split_first() {
        let ty = match ty % 12 {
            0 => FrameType::PRIORITY_UPDATE_REQUEST,
            1 => FrameType::PRIORITY_UPDATE_PUSH,
            n => FrameType(VarInt::from_u32(u32::from(n) - 2)),
        };
        if let Ok(frame) = Frame::decode_payload(ty, payload) {
            assert_eq!(frame.ty(), ty);
        }
    }

    if let Ok(settings) = Settings::decode_payload(data) {
        let mut out = Vec::new();
        settings.encode(&mut out);
        assert_eq!(out.len(), settings.encoded_len());
        let header = FrameHeader::decode(&out, u64::MAX).unwrap().unwrap();
        assert_eq!(Settings::decode_payload(&out[header.header_len..]), Ok(settings));
    }

    if let Some((header, len)) = UniStreamHeader::decode(data) {
        assert!(header.encoded_len() <= len && len <= data.len());
        for end in 0..len {
            assert_eq!(UniStreamHeader::decode(&data[..end]), None);
        }
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(UniStreamHeader::decode(&out), Some((header, out.len())));
    }
});
