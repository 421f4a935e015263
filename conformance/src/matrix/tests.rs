//! The amplificationlimit accounting on hand-made relay records.

use std::time::Duration;

use super::amplification_walk;
use crate::relay::{Fate, Record, RelayDir};

/// A datagram holding one long header packet of `ty` (Initial 0,
/// Handshake 2), padded to `size` bytes.
fn long(ty: u8, size: usize) -> Vec<u8> {
    let mut d = vec![0xc0 | (ty << 4), 0, 0, 0, 1, 8];
    d.extend_from_slice(&[1; 8]);
    d.push(8);
    d.extend_from_slice(&[2; 8]);
    if ty == 0 {
        d.push(0); // token length
    }
    let len = size - d.len() - 2;
    d.extend_from_slice(&(0x4000 | len as u16).to_be_bytes());
    d.resize(size, 0);
    d
}

fn record(ms: u64, dir: RelayDir, data: Vec<u8>, fate: Fate) -> Record {
    Record { at: Duration::from_millis(ms), dir, data, fate, client: 0, mapping: None }
}

#[test]
fn the_server_may_send_up_to_four_times_what_it_received_before_validation() {
    let delay = Duration::from_millis(15);
    let to_server = |ms, data| record(ms, RelayDir::ToServer, data, Fate::Delivered);
    let to_client = |ms, size| record(ms, RelayDir::ToClient, vec![0; size], Fate::Delivered);
    // 1200 bytes in: 3600 out is within the limit, then the client's
    // Handshake packet validates its address and anything goes.
    let within = [
        to_server(0, long(0, 1200)),
        to_client(16, 1200),
        to_client(17, 1200),
        to_client(18, 1199),
        record(20, RelayDir::ToServer, long(0, 1200), Fate::Lost),
        to_server(40, long(2, 1200)),
        to_client(56, 1200),
        to_client(57, 1200),
    ];
    assert_eq!(amplification_walk(&within, delay), Ok(()));
    // A fourth full datagram reaches 4x: a violation. The client's lost
    // datagram does not count, and the server's datagrams count from
    // when they left it.
    let beyond = [
        to_server(0, long(0, 1200)),
        record(1, RelayDir::ToServer, long(0, 1200), Fate::Lost),
        to_client(16, 1200),
        to_client(17, 1200),
        to_client(18, 1200),
        to_client(19, 1200),
        to_server(40, long(2, 1200)),
    ];
    let err = amplification_walk(&beyond, delay).unwrap_err();
    assert!(err.contains("before the client's address was validated"), "{err}");
    // A client that never validates: the walk says so.
    let never = [to_server(0, long(0, 1200)), to_client(16, 1200)];
    assert!(amplification_walk(&never, delay).unwrap_err().contains("never sent a Handshake"));
}
