//! QPACK never panics on peer input: arbitrary encoder-stream bytes and
//! field sections into a decoder, arbitrary decoder-stream bytes into an
//! encoder that has sent something. Whatever decodes re-encodes, and our
//! encoding decodes back to the same field lines.
#![no_main]

use h3_proto::qpack::{Decoded, Decoder, Encoder, EncoderConfig, Field};
use libfuzzer_sys::fuzz_target;

/// Splits `data` into chunks, each prefixed by a one-byte length.
fn chunks(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = (len as usize).min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&settings, data)) = data.split_first() else { return };
    let capacity = [0u64, 64, 256, 4096][(settings & 3) as usize];
    let blocked = u64::from(settings >> 2 & 3);
    let limit = if settings & 0x10 != 0 { 1 << 12 } else { u64::MAX };
    let mut decoder = Decoder::new(capacity, blocked, limit);
    let mut decoded: Vec<Vec<Field>> = Vec::new();
    // Even chunks go to the encoder stream, odd ones are field sections.
    for (i, chunk) in chunks(data).into_iter().enumerate() {
        if i % 2 == 0 {
            if decoder.handle_encoder_stream(chunk).is_err() {
                break;
            }
            while let Some((_, result)) = decoder.poll_unblocked() {
                if let Ok(fields) = result {
                    decoded.push(fields);
                }
            }
        } else {
            match decoder.decode_section(i as u64 * 4, chunk) {
                Ok(Decoded::Fields(fields)) => decoded.push(fields),
                Ok(Decoded::Blocked) => {}
                Err(e) if e.is_stream_error() => {}
                Err(_) => break,
            }
        }
        let mut out = Vec::new();
        decoder.poll_decoder_stream(&mut out);
    }
    // What decoded re-encodes and decodes back, through fresh instances.
    let mut encoder = Encoder::new(EncoderConfig::default());
    encoder.apply_settings(capacity, blocked);
    let mut peer = Decoder::new(capacity, blocked, u64::MAX);
    for (i, fields) in decoded.iter().enumerate() {
        let mut section = Vec::new();
        encoder.encode(i as u64 * 4, fields, &mut section);
        let mut instructions = Vec::new();
        encoder.poll_encoder_stream(&mut instructions);
        peer.handle_encoder_stream(&instructions).expect("our instructions decode");
        match peer.decode_section(i as u64 * 4, &section).expect("our section decodes") {
            Decoded::Fields(back) => {
                let strip = |f: &[Field]| {
                    f.iter().map(|f| (f.name.clone(), f.value.clone())).collect::<Vec<_>>()
                };
                assert_eq!(strip(&back), strip(fields));
            }
            Decoded::Blocked => panic!("every instruction was delivered first"),
        }
        let mut feedback = Vec::new();
        peer.poll_decoder_stream(&mut feedback);
        encoder.handle_decoder_stream(&feedback).expect("our feedback is valid");
    }
    // Arbitrary decoder-stream bytes into an encoder with outstanding state.
    let _ = encoder.handle_decoder_stream(data);
});
