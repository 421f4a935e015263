use super::*;

/// A sink the test reads back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One parsed block: type and body, with the framing checked.
#[derive(Debug)]
struct Block {
    kind: u32,
    body: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Splits a little-endian pcapng file into blocks, checking that each
/// length is a multiple of 4 and repeated at the block's end.
fn blocks(file: &[u8]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < file.len() {
        let kind = u32_at(file, at);
        let total = u32_at(file, at + 4) as usize;
        assert!(total >= 12 && total.is_multiple_of(4), "block at {at}: length {total}");
        assert!(at + total <= file.len(), "block at {at} runs past the end");
        assert_eq!(u32_at(file, at + total - 4) as usize, total, "trailing length at {at}");
        out.push(Block { kind, body: file[at + 8..at + total - 4].to_vec() });
        at += total;
    }
    out
}

/// Options from `body[at..]`: (code, value) up to opt_endofopt, which must
/// end the body; each value padded to 4 bytes.
fn options(body: &[u8], mut at: usize) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let (code, len) = (u16_at(body, at), usize::from(u16_at(body, at + 2)));
        if code == OPT_END {
            assert_eq!(len, 0);
            assert_eq!(at + 4, body.len(), "opt_endofopt ends the block");
            return out;
        }
        out.push((code, body[at + 4..at + 4 + len].to_vec()));
        at += 4 + len.next_multiple_of(4);
    }
}

fn option(options: &[(u16, Vec<u8>)], code: u16) -> Option<&[u8]> {
    options.iter().find(|(c, _)| *c == code).map(|(_, v)| v.as_slice())
}

/// An enhanced packet block's (timestamp, packet, flags).
fn epb(block: &Block) -> (u64, Vec<u8>, u32) {
    assert_eq!(block.kind, ENHANCED_PACKET);
    let b = &block.body;
    assert_eq!(u32_at(b, 0), 0, "interface 0");
    let time = (u64::from(u32_at(b, 4)) << 32) | u64::from(u32_at(b, 8));
    let (captured, original) = (u32_at(b, 12) as usize, u32_at(b, 16) as usize);
    assert_eq!(captured, original, "whole packets");
    let packet = b[20..20 + captured].to_vec();
    let opts = options(b, 20 + captured.next_multiple_of(4));
    let flags = u32::from_le_bytes(option(&opts, EPB_FLAGS).unwrap().try_into().unwrap());
    (time, packet, flags)
}

#[test]
fn blocks_are_framed_aligned_and_secrets_come_first() {
    let sink = Shared::default();
    let mut trace = Trace::new(Box::new(sink.clone())).unwrap();
    trace.origin_unix_nanos = 1_700_000_000_000_000_000;
    let log = trace.key_log(Arc::new(rustls::KeyLogFile::new()));
    log.log("CLIENT_TRAFFIC_SECRET_0", &[0xab; 32], &[0x01; 32]);
    let local: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let remote: SocketAddr = "127.0.0.2:50000".parse().unwrap();
    let t = Instant::from_nanos(1_500_000_123);
    // 5 bytes: the IPv4 packet (20 + 8 + 5 = 33 bytes) needs 3 of padding.
    trace.record(t, Direction::Inbound, local, remote, Some(EcnCodepoint::Ce), b"hello").unwrap();
    trace.record(t, Direction::Outbound, local, remote, None, b"hey!").unwrap();
    drop(trace);
    let file = sink.0.lock().unwrap().clone();
    let blocks = blocks(&file);
    let kinds: Vec<u32> = blocks.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            SECTION_HEADER,
            INTERFACE_DESCRIPTION,
            DECRYPTION_SECRETS,
            ENHANCED_PACKET,
            ENHANCED_PACKET
        ]
    );

    let shb = &blocks[0].body;
    assert_eq!(u32_at(shb, 0), BYTE_ORDER_MAGIC);
    assert_eq!((u16_at(shb, 4), u16_at(shb, 6)), (1, 0));
    assert_eq!(i64::from_le_bytes(shb[8..16].try_into().unwrap()), -1);
    assert!(option(&options(shb, 16), SHB_USERAPPL).unwrap().starts_with(b"quic-udp "));

    let idb = &blocks[1].body;
    assert_eq!(u16_at(idb, 0), LINKTYPE_RAW);
    assert_eq!(option(&options(idb, 8), IF_TSRESOL), Some(&[9u8][..]));

    let dsb = &blocks[2].body;
    assert_eq!(u32_at(dsb, 0), SECRETS_TLS_KEY_LOG);
    let len = u32_at(dsb, 4) as usize;
    let text = std::str::from_utf8(&dsb[8..8 + len]).unwrap();
    assert_eq!(text, nss_line("CLIENT_TRAFFIC_SECRET_0", &[0xab; 32], &[0x01; 32]));
    assert_eq!(dsb.len(), 8 + len.next_multiple_of(4), "no options, padded");

    let (time, packet, flags) = epb(&blocks[3]);
    assert_eq!(time, 1_700_000_001_500_000_123);
    assert_eq!(flags, FLAG_INBOUND);
    assert_eq!(packet.len(), 33);
    assert_eq!(packet[0], 0x45);
    assert_eq!(packet[1], 0b11, "CE in the TOS byte");
    assert_eq!(u16::from_be_bytes([packet[2], packet[3]]), 33);
    assert_eq!(&packet[12..16], &[127, 0, 0, 2], "inbound: from the remote");
    assert_eq!(&packet[16..20], &[127, 0, 0, 1]);
    assert_eq!(checksum(&[&packet[..20]]), 0, "IPv4 header checksum");
    let udp = &packet[20..];
    assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), 50000);
    assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 4433);
    assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), 13);
    let pseudo = [&packet[12..20], &[0, 17, 0, 13][..]].concat();
    assert_eq!(checksum(&[&pseudo, udp]), 0, "UDP checksum");
    assert_eq!(&udp[8..], b"hello");

    let (_, packet, flags) = epb(&blocks[4]);
    assert_eq!(flags, FLAG_OUTBOUND);
    assert_eq!(packet[1], 0, "Not-ECT");
    assert_eq!(&packet[12..16], &[127, 0, 0, 1], "outbound: from the local address");
}

#[test]
fn ipv6_packets_carry_ecn_in_the_traffic_class_and_a_udp_checksum() {
    let src: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
    let dst: SocketAddr = "[2001:db8::2]:5555".parse().unwrap();
    let packet = ip_udp_packet(src, dst, Some(EcnCodepoint::Ect0), b"abc");
    assert_eq!(packet.len(), 40 + 8 + 3);
    assert_eq!(packet[0] >> 4, 6);
    let traffic_class = (u32::from_be_bytes(packet[..4].try_into().unwrap()) >> 20) as u8;
    assert_eq!(traffic_class, 0b10, "ECT(0)");
    assert_eq!(u16::from_be_bytes([packet[4], packet[5]]), 11, "payload length");
    assert_eq!((packet[6], packet[7]), (17, HOP_LIMIT));
    let pseudo = [&packet[8..40], &[0, 0, 0, 11, 0, 0, 0, 17][..]].concat();
    assert_eq!(checksum(&[&pseudo, &packet[40..]]), 0);
}

#[test]
fn a_dual_stack_wildcard_with_an_ipv4_peer_is_written_as_ipv4() {
    let local: SocketAddr = "[::]:443".parse().unwrap();
    let remote: SocketAddr = "[::ffff:10.0.0.1]:5555".parse().unwrap();
    let packet = ip_udp_packet(local, remote, None, b"x");
    assert_eq!(packet[0], 0x45);
    assert_eq!(&packet[12..20], &[0, 0, 0, 0, 10, 0, 0, 1]);
}

#[test]
fn an_unspecified_source_takes_the_routes_address_then_the_one_datagrams_arrived_on() {
    let sink = Shared::default();
    let mut trace = Trace::new(Box::new(sink.clone())).unwrap();
    let remote: SocketAddr = "127.0.0.1:443".parse().unwrap();
    let (wildcard, seen): (SocketAddr, SocketAddr) =
        ("0.0.0.0:5000".parse().unwrap(), "127.0.0.3:5000".parse().unwrap());
    let t = Instant::ZERO;
    trace.record(t, Direction::Outbound, wildcard, remote, None, b"1").unwrap();
    trace.record(t, Direction::Inbound, seen, remote, None, b"2").unwrap();
    trace.record(t, Direction::Outbound, wildcard, remote, None, b"3").unwrap();
    drop(trace);
    let file = sink.0.lock().unwrap().clone();
    let addresses: Vec<(Vec<u8>, Vec<u8>)> = blocks(&file)[2..]
        .iter()
        .map(|b| {
            let packet = epb(b).1;
            (packet[12..16].to_vec(), packet[16..20].to_vec())
        })
        .collect();
    let (a, c) = (vec![127, 0, 0, 1], vec![127, 0, 0, 3]);
    assert_eq!(addresses, [(a.clone(), a.clone()), (a.clone(), c.clone()), (c, a)]);
}

#[test]
fn input_records_round_trip_in_a_custom_block_before_the_packets() {
    let sink = Shared::default();
    let mut trace = Trace::new(Box::new(sink.clone())).unwrap();
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    trace.begin(Instant::from_nanos(5), &[InputRecord::EndpointSeed(seed)]).unwrap();
    let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
    trace.record(Instant::from_nanos(7), Direction::Inbound, local, local, None, b"x").unwrap();
    drop(trace);
    let file = sink.0.lock().unwrap().clone();
    let blocks = blocks(&file);
    let kinds: Vec<u32> = blocks.iter().map(|b| b.kind).collect();
    assert_eq!(kinds, [SECTION_HEADER, INTERFACE_DESCRIPTION, CUSTOM_COPYABLE, ENHANCED_PACKET]);
    assert_eq!(u32_at(&blocks[2].body, 0), TRACE_PEN);
    let records = InputRecord::decode_all(&blocks[2].body[4..]);
    let [InputRecord::ClockOrigin(origin), InputRecord::EndpointSeed(read)] = records[..] else {
        panic!("{records:?}");
    };
    assert_eq!(read, seed);
    // The packet's timestamp less the origin is the core's `Instant`.
    assert_eq!(epb(&blocks[3]).0 - origin, 7);
}

#[test]
fn input_records_skip_unknown_types_and_stop_at_a_malformed_tail() {
    let mut data = Vec::new();
    InputRecord::ClockOrigin(9).encode(&mut data);
    data.extend_from_slice(&[0x99, 0, 3, 0, 1, 2, 3, 0]); // unknown type 0x99, padded
    InputRecord::EndpointSeed([4; 32]).encode(&mut data);
    data.extend_from_slice(&[2, 0, 32, 0, 1]); // a seed record cut short
    assert_eq!(
        InputRecord::decode_all(&data),
        [InputRecord::ClockOrigin(9), InputRecord::EndpointSeed([4; 32])]
    );
    assert_eq!(InputRecord::decode_all(&[2, 0]), []);
}

#[test]
fn driver_input_records_round_trip() {
    let records = [
        InputRecord::Wakeup(1),
        InputRecord::SendBlocked(u64::MAX),
        InputRecord::Flush(3),
        InputRecord::CommandLine("quic\0client\0https://[::1]:4433/é".into()),
    ];
    let mut data = Vec::new();
    for r in &records {
        r.encode(&mut data);
    }
    assert_eq!(data.len() % 4, 0, "records are padded to 4 bytes");
    assert_eq!(InputRecord::decode_all(&data), records);
    // A command line past 65,535 bytes is cut at a character boundary.
    let long = "é".repeat(40_000);
    let mut data = Vec::new();
    InputRecord::CommandLine(long.clone()).encode(&mut data);
    let [InputRecord::CommandLine(cut)] = &InputRecord::decode_all(&data)[..] else {
        panic!("one record");
    };
    assert_eq!(cut.len(), 65_534);
    assert!(long.starts_with(cut.as_str()));
    // Values of the wrong size, and command lines that are not UTF-8, are
    // skipped.
    let data = [5, 0, 4, 0, 1, 2, 3, 4, 7, 0, 2, 0, 0xff, 0xfe, 0, 0];
    assert_eq!(InputRecord::decode_all(&data), []);
}

/// What the writer writes, the reader reads back: records, secrets, and
/// datagrams with their addresses, ECN, direction and time.
#[test]
fn the_reader_returns_what_the_writer_wrote() {
    let sink = Shared::default();
    let mut trace = Trace::new(Box::new(sink.clone())).unwrap();
    trace.add_start_input(InputRecord::CommandLine("quic\0client".into()));
    trace.begin(Instant::from_nanos(5), &[InputRecord::EndpointSeed([3; 32])]).unwrap();
    let origin = trace.origin_unix_nanos;
    let signature = InputRecord::Signature {
        scheme: 0x0403,
        message_sha256: [9; 32],
        signature: vec![1, 2, 3, 4, 5],
    };
    let more = [
        signature.clone(),
        InputRecord::TimeRead(1_800_000_000),
        InputRecord::Certificate(vec![0x30; 700]),
        InputRecord::GsoSegments(64),
        InputRecord::Wakeup(77),
    ];
    trace.record_inputs(&more).unwrap();
    let log = trace.key_log(Arc::new(rustls::KeyLogFile::new()));
    log.log("SERVER_TRAFFIC_SECRET_0", &[0xab; 32], &[0x02; 32]);
    let v4_local: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let v4_remote: SocketAddr = "127.0.0.9:50000".parse().unwrap();
    let v6_local: SocketAddr = "[::1]:4433".parse().unwrap();
    let v6_remote: SocketAddr = "[::1]:6000".parse().unwrap();
    let t = Instant::from_nanos(1_234);
    trace
        .record(t, Direction::Inbound, v4_local, v4_remote, Some(EcnCodepoint::Ect0), b"a")
        .unwrap();
    trace
        .record(t, Direction::Outbound, v6_local, v6_remote, Some(EcnCodepoint::Ce), b"bcd")
        .unwrap();
    drop(trace);
    let file = sink.0.lock().unwrap().clone();
    let items = read(&file).unwrap();
    let [
        TraceItem::Inputs(start),
        TraceItem::Inputs(inputs),
        TraceItem::Secrets(secrets),
        TraceItem::Datagram(a),
        TraceItem::Datagram(b),
    ] = &items[..]
    else {
        panic!("{items:?}");
    };
    assert_eq!(
        start[..],
        [
            InputRecord::ClockOrigin(origin),
            InputRecord::EndpointSeed([3; 32]),
            InputRecord::CommandLine("quic\0client".into())
        ]
    );
    assert_eq!(inputs[..], more[..]);
    assert_eq!(secrets, &nss_line("SERVER_TRAFFIC_SECRET_0", &[0xab; 32], &[0x02; 32]));
    let expected_a = TracedDatagram {
        unix_nanos: origin + 1_234,
        direction: Direction::Inbound,
        local: v4_local,
        remote: v4_remote,
        ecn: Some(EcnCodepoint::Ect0),
        payload: b"a".to_vec(),
    };
    assert_eq!(a, &expected_a);
    assert_eq!((b.direction, b.local, b.remote), (Direction::Outbound, v6_local, v6_remote));
    assert_eq!((b.ecn, &b.payload[..]), (Some(EcnCodepoint::Ce), &b"bcd"[..]));
}

/// Records too long for a record's 16-bit length are left out, not cut.
#[test]
fn records_longer_than_a_record_can_say_are_not_written() {
    let huge = InputRecord::Certificate(vec![1; 70_000]);
    assert!(!huge.fits());
    let mut data = Vec::new();
    huge.encode(&mut data);
    InputRecord::Wakeup(1).encode(&mut data);
    assert_eq!(InputRecord::decode_all(&data), [InputRecord::Wakeup(1)]);
}

/// Every truncation and every single-byte corruption of a trace is read
/// without panicking: an error, or the items that still parse.
#[test]
fn the_reader_survives_truncated_and_corrupted_traces() {
    let sink = Shared::default();
    let mut trace = Trace::new(Box::new(sink.clone())).unwrap();
    trace.begin(Instant::ZERO, &[InputRecord::EndpointSeed([1; 32])]).unwrap();
    let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let remote: SocketAddr = "[::1]:2".parse().unwrap();
    trace.record(Instant::ZERO, Direction::Inbound, local, local, None, b"xyz").unwrap();
    trace.record(Instant::ZERO, Direction::Outbound, remote, remote, None, b"xyzw").unwrap();
    drop(trace);
    let file = sink.0.lock().unwrap().clone();
    assert_eq!(read(&file).unwrap().len(), 3);
    for end in 0..file.len() {
        let _ = read(&file[..end]);
    }
    for at in 0..file.len() {
        for value in [0x00, 0xff, 0x7f, 0x80, file[at] ^ 0x01] {
            let mut bad = file.clone();
            bad[at] = value;
            let _ = read(&bad);
        }
    }
    let err = read(b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x1a\x2b\x3c\x4d").unwrap_err();
    assert!(err.to_string().contains("little-endian"), "{err}");
    assert!(read(b"").is_err());
}
