//! Socket tests on loopback: plain, GSO and GRO transfers, the GSO
//! fallback, ECN marks, local addresses, IPv4, IPv6 and dual stack.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn bind(ip: IpAddr) -> UdpSocket {
    UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind on loopback")
}

fn transmit(to: SocketAddr, size: usize, segment: Option<usize>) -> Transmit {
    Transmit { destination: to, ecn: None, size, segment_size: segment, src_ip: None }
}

/// Receives until `count` datagrams arrived (or 2 s passed): each
/// datagram's bytes, and the metadata of each receive call.
fn receive(socket: &UdpSocket, count: usize) -> (Vec<Vec<u8>>, Vec<RecvMeta>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = vec![0u8; RECV_BUF_SIZE];
    let (mut datagrams, mut metas) = (Vec::new(), Vec::new());
    while datagrams.len() < count && Instant::now() < deadline {
        match socket.recv(&mut buf) {
            Ok(meta) => {
                datagrams.extend(meta.datagrams(&buf).map(<[u8]>::to_vec));
                metas.push(meta);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("receive failed: {e}"),
        }
    }
    (datagrams, metas)
}

/// A batch of `count` datagrams of `segment` bytes and a shorter last one;
/// each datagram filled with its index.
fn batch(segment: usize, count: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..count {
        data.extend(std::iter::repeat_n(i as u8, segment));
    }
    data.extend(std::iter::repeat_n(0xee, segment / 2));
    data
}

fn check_batch(datagrams: &[Vec<u8>], segment: usize, count: usize) {
    assert_eq!(datagrams.len(), count + 1, "every datagram of the batch arrives");
    for (i, d) in datagrams[..count].iter().enumerate() {
        assert_eq!(d.len(), segment);
        assert!(d.iter().all(|&b| b == i as u8), "datagram {i} intact and in order");
    }
    assert_eq!(datagrams[count].len(), segment / 2);
}

#[test]
fn plain_datagram_ipv4_with_local_address() {
    let (a, b) = (bind(V4), bind(V4));
    let sent = a.send(&transmit(b.local_addr(), 5, None), b"hello").unwrap();
    assert_eq!(sent, 5);
    let (datagrams, metas) = receive(&b, 1);
    assert_eq!(datagrams, vec![b"hello".to_vec()]);
    assert_eq!(metas[0].remote, a.local_addr());
    assert_eq!(metas[0].ecn, None);
    if b.pktinfo_supported() {
        assert_eq!(metas[0].local_ip, Some(V4));
    }
}

#[test]
fn plain_datagram_ipv6_with_local_address() {
    let (a, b) = (bind(V6), bind(V6));
    a.send(&transmit(b.local_addr(), 3, None), b"abc").unwrap();
    let (datagrams, metas) = receive(&b, 1);
    assert_eq!(datagrams, vec![b"abc".to_vec()]);
    assert_eq!(metas[0].remote, a.local_addr());
    if b.pktinfo_supported() {
        assert_eq!(metas[0].local_ip, Some(V6));
    }
}

#[test]
fn ecn_marks_round_trip() {
    for ip in [V4, V6] {
        let (a, b) = (bind(ip), bind(ip));
        if !b.ecn_supported() {
            continue;
        }
        for ecn in [EcnCodepoint::Ect0, EcnCodepoint::Ect1, EcnCodepoint::Ce] {
            let t = Transmit { ecn: Some(ecn), ..transmit(b.local_addr(), 4, None) };
            a.send(&t, b"mark").unwrap();
            let (_, metas) = receive(&b, 1);
            assert_eq!(metas[0].ecn, Some(ecn), "{ecn:?} over {ip}");
        }
        a.send(&transmit(b.local_addr(), 4, None), b"none").unwrap();
        assert_eq!(receive(&b, 1).1[0].ecn, None);
    }
}

#[test]
fn gso_batch_arrives_as_datagrams_and_gro_coalesces() {
    for ip in [V4, V6] {
        let (a, b) = (bind(ip), bind(ip));
        let data = batch(1000, 5);
        let sent = a.send(&transmit(b.local_addr(), data.len(), Some(1000)), &data).unwrap();
        assert_eq!(sent, data.len());
        let (datagrams, metas) = receive(&b, 6);
        check_batch(&datagrams, 1000, 5);
        if a.max_gso_segments() > 1 && b.gro_segments() > 1 {
            // Loopback hands a GSO batch to a GRO socket unsplit.
            assert_eq!(metas.len(), 1, "one receive for the batch over {ip}");
            assert_eq!((metas[0].len, metas[0].stride), (data.len(), 1000));
        }
    }
}

#[test]
fn batch_without_gso_is_sent_datagram_by_datagram() {
    let (a, b) = (bind(V4), bind(V4));
    a.disable_gso();
    let data = batch(700, 3);
    assert_eq!(
        a.send(&transmit(b.local_addr(), data.len(), Some(700)), &data).unwrap(),
        data.len()
    );
    let (datagrams, metas) = receive(&b, 4);
    check_batch(&datagrams, 700, 3);
    assert!(metas.iter().all(|m| m.len == m.stride), "no coalescing without GSO");
}

#[test]
fn gso_batch_to_a_socket_without_gro_arrives_one_datagram_per_receive() {
    for ip in [V4, V6] {
        let (a, b) = (bind(ip), bind(ip));
        b.disable_gro().expect("UDP_GRO can be set to 0");
        assert_eq!(b.gro_segments(), 1);
        // Idempotent.
        b.disable_gro().unwrap();
        let data = batch(1000, 5);
        let sent = a.send(&transmit(b.local_addr(), data.len(), Some(1000)), &data).unwrap();
        assert_eq!(sent, data.len());
        let (datagrams, metas) = receive(&b, 6);
        check_batch(&datagrams, 1000, 5);
        assert_eq!(metas.len(), 6, "one receive per datagram without GRO over {ip}");
        assert!(metas.iter().all(|m| m.len == m.stride));
    }
}

#[test]
fn refused_gso_falls_back_and_stays_off() {
    let (a, b) = (bind(V4), bind(V4));
    a.fail_gso_sends();
    let data = batch(1200, 4);
    let t = transmit(b.local_addr(), data.len(), Some(1200));
    assert_eq!(a.send(&t, &data).unwrap(), data.len(), "the batch is resent without GSO");
    assert_eq!(a.max_gso_segments(), 1, "GSO is off after the kernel refused it");
    check_batch(&receive(&b, 5).0, 1200, 4);
    // Later batches go out datagram by datagram straight away.
    assert_eq!(a.send(&t, &data).unwrap(), data.len());
    check_batch(&receive(&b, 5).0, 1200, 4);
}

#[test]
fn dual_stack_socket_talks_ipv4_with_ipv4_addresses() {
    let server = bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let client = bind(V4);
    let to = SocketAddr::new(V4, server.local_addr().port());
    client.send(&transmit(to, 4, None), b"ping").unwrap();
    let (datagrams, metas) = receive(&server, 1);
    assert_eq!(datagrams, vec![b"ping".to_vec()]);
    assert_eq!(metas[0].remote, client.local_addr(), "an IPv4 peer has an IPv4 address");
    if server.pktinfo_supported() {
        assert_eq!(metas[0].local_ip, Some(V4));
    }
    // Answer from the address the request was sent to, with an ECN mark.
    let reply = Transmit {
        ecn: Some(EcnCodepoint::Ect0),
        src_ip: metas[0].local_ip,
        ..transmit(metas[0].remote, 4, None)
    };
    server.send(&reply, b"pong").unwrap();
    let (datagrams, metas) = receive(&client, 1);
    assert_eq!(datagrams, vec![b"pong".to_vec()]);
    assert_eq!(metas[0].remote, to);
    if client.ecn_supported() {
        assert_eq!(metas[0].ecn, Some(EcnCodepoint::Ect0));
    }
    // And IPv6 on the same socket.
    let client6 = bind(V6);
    client6.send(&transmit(SocketAddr::new(V6, to.port()), 2, None), b"v6").unwrap();
    let (_, metas) = receive(&server, 1);
    assert_eq!(metas[0].remote, client6.local_addr());
    if server.pktinfo_supported() {
        assert_eq!(metas[0].local_ip, Some(V6));
    }
}

#[test]
fn wildcard_socket_sends_from_the_chosen_address() {
    let server = bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let client = bind(V4);
    let t = Transmit { src_ip: Some(V4), ..transmit(client.local_addr(), 2, None) };
    server.send(&t, b"hi").unwrap();
    let (_, metas) = receive(&client, 1);
    assert_eq!(metas[0].remote, SocketAddr::new(V4, server.local_addr().port()));
}

#[test]
fn recv_meta_splits_at_the_stride() {
    let meta =
        RecvMeta { remote: SocketAddr::new(V4, 1), len: 7, stride: 3, ecn: None, local_ip: None };
    let parts: Vec<&[u8]> = meta.datagrams(b"aaabbbc--").collect();
    assert_eq!(parts, vec![&b"aaa"[..], b"bbb", b"c"]);
    // A stride of zero (never reported by a kernel) does not loop forever.
    let zero = RecvMeta { stride: 0, ..meta };
    assert_eq!(zero.datagrams(b"abcdefg").count(), 7);
}

#[cfg(target_os = "linux")]
#[test]
fn linux_features_are_detected() {
    let s = bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    eprintln!(
        "gso {} gro {} ecn {} pktinfo {}",
        s.max_gso_segments(),
        s.gro_segments(),
        s.ecn_supported(),
        s.pktinfo_supported()
    );
    // Both date from before Linux 3.0; GSO (4.18) and GRO (5.0) may be absent.
    assert!(s.ecn_supported() && s.pktinfo_supported());
}

/// A kernel that refuses the ECN or source-address control messages: the
/// datagram still goes out (without them), and they stay off afterwards.
#[test]
fn refused_ecn_and_source_address_fall_back_and_stay_off() {
    for ip in [V4, V6] {
        let (a, b) = (bind(ip), bind(ip));
        a.fail_extras_sends();
        let t = Transmit {
            ecn: Some(EcnCodepoint::Ect0),
            src_ip: Some(ip),
            ..transmit(b.local_addr(), 5, None)
        };
        a.send(&t, b"hello").unwrap();
        let (datagrams, metas) = receive(&b, 1);
        assert_eq!(datagrams, vec![b"hello".to_vec()], "over {ip}");
        assert_eq!(metas[0].ecn, None, "sent without the refused ECN mark over {ip}");
        // Later sends no longer try (and no longer fail).
        a.send(&t, b"again").unwrap();
        assert_eq!(receive(&b, 1).0, vec![b"again".to_vec()]);
    }
}
