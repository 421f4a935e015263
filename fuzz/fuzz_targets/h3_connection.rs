//! An HTTP/3 connection (client or server) against a raw peer that opens,
//! writes, finishes and resets streams as the input says, over the
//! in-memory transport: the layer never panics, answers what it accepts,
//! and whenever it closes the connection it has closed the transport with
//! the same error code.
#![no_main]

use h3_proto::message::response_fields;
use h3_proto::transport::Transport;
use h3_proto::transport::memory::{self, MemoryTransport};
use h3_proto::{Config, Connection, Event};
use libfuzzer_sys::fuzz_target;
use quic_proto::{Dir, Side, StreamId, VarInt};

/// Takes a length-prefixed chunk (one byte of length) off the input.
fn chunk<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((&len, rest)) = data.split_first() else { return &[] };
    let len = (len as usize).min(rest.len());
    let (chunk, rest) = rest.split_at(len);
    *data = rest;
    chunk
}

fn byte(data: &mut &[u8]) -> u8 {
    let Some((&b, rest)) = data.split_first() else { return 0 };
    *data = rest;
    b
}

/// Runs the connection under test and plays a simple application on it.
fn step(conn: &mut Connection, t: &mut MemoryTransport, side: Side) {
    conn.handle_all(t);
    let mut buf = [0u8; 512];
    while let Some(event) = conn.poll_event() {
        match event {
            Event::Headers { stream, .. } if side == Side::Server => {
                let _ = conn.send_response(t, stream, &response_fields(200, &[]), false);
                let _ = conn.send_data(t, stream, b"response body");
                let _ = conn.finish(t, stream);
            }
            Event::Data(stream) => while conn.recv_data(t, stream, &mut buf) > 0 {},
            Event::PushPromise { push_id, .. } if push_id % 2 == 1 => {
                let _ = conn.cancel_push(t, push_id);
            }
            Event::Closed(error) => {
                let closed = t.closed().expect("a connection error closes the transport");
                assert_eq!(closed.1, error.code.to_varint());
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let side = if byte(&mut data) & 1 == 0 { Side::Server } else { Side::Client };
    let mut config = Config::default();
    config.max_pushes(u64::from(byte(&mut data) % 4));
    config.max_field_section_size(1 << (8 + byte(&mut data) % 10));
    let (client_t, server_t) = memory::pair();
    let (mut peer, mut t) = match side {
        Side::Server => (client_t, server_t),
        Side::Client => (server_t, client_t),
    };
    let mut conn = Connection::new(side, config, 0x5eed);
    conn.open(&mut t).expect("opens");
    let mut streams: Vec<StreamId> = Vec::new();
    if side == Side::Client {
        let fields = h3_proto::message::request_fields("GET", "https", "fuzz", "/", &[]);
        for _ in 0..2 {
            if let Ok(id) = conn.send_request(&mut t, &fields, true) {
                streams.push(id);
            }
        }
    }
    let mut ops = 0;
    while !data.is_empty() && ops < 256 {
        ops += 1;
        match byte(&mut data) % 7 {
            0 => {
                if let Some(id) = peer.open(Dir::Uni) {
                    let _ = peer.write(id, chunk(&mut data));
                    streams.push(id);
                }
            }
            1 if side == Side::Server => {
                if let Some(id) = peer.open(Dir::Bi) {
                    let _ = peer.write(id, chunk(&mut data));
                    streams.push(id);
                }
            }
            2 | 1 => {
                let pick = byte(&mut data) as usize;
                let bytes = chunk(&mut data);
                if let Some(&id) = streams.get(pick % streams.len().max(1)) {
                    let _ = peer.write(id, bytes);
                }
            }
            3 => {
                let pick = byte(&mut data) as usize;
                if let Some(&id) = streams.get(pick % streams.len().max(1)) {
                    let _ = peer.finish(id);
                }
            }
            4 => {
                let pick = byte(&mut data) as usize;
                let code = VarInt::from_u32(0x100 + u32::from(byte(&mut data) % 16));
                if let Some(&id) = streams.get(pick % streams.len().max(1)) {
                    let _ = peer.reset(id, code);
                }
            }
            5 => {
                // The raw peer also drains what the connection sent it.
                let mut buf = [0u8; 4096];
                for id in streams.clone() {
                    while let Ok(Some(_)) = peer.read(id, &mut buf) {}
                }
                while let Some(id) = peer.accept(Dir::Uni) {
                    while let Ok(Some(_)) = peer.read(id, &mut buf) {}
                }
            }
            _ => {
                if side == Side::Server {
                    let _ = conn.goaway(&mut t);
                }
            }
        }
        step(&mut conn, &mut t, side);
    }
    step(&mut conn, &mut t, side);
});
