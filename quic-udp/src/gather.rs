//! Gathering a driver's outgoing datagrams into GSO batches: a run of
//! datagrams to one destination, with one ECN mark and source address, all
//! of one size but the last, goes out in one `sendmsg`.

use std::io;

use quic_proto::connection::Transmit;

use crate::{MAX_GSO_BYTES, UdpSocket};

/// Counts of what [`UdpSocket::send_batch`] did, for a driver's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendCounts {
    /// Send system calls that succeeded.
    pub calls: u64,
    /// Datagrams they carried.
    pub datagrams: u64,
    /// Datagrams dropped after a send error (loss recovery resends what
    /// they carried).
    pub errors: u64,
}

impl UdpSocket {
    /// Sends what is left of a batch, `data[*offset..]` (described by
    /// `transmit`, as [`Gatherer::next`] made it), going on after partial
    /// sends and advancing `offset`. `Ok` once all of it is gone (sent, or
    /// dropped after an error other than `WouldBlock`); `WouldBlock` when
    /// the socket is full: call again, with the same `offset`, once it is
    /// writable.
    pub fn send_batch(
        &self,
        transmit: &Transmit,
        data: &[u8],
        offset: &mut usize,
        counts: &mut SendCounts,
    ) -> io::Result<()> {
        let segment = transmit.segment_size.unwrap_or(data.len()).max(1);
        while *offset < data.len() {
            let rest = &data[*offset..];
            let t = Transmit {
                size: rest.len(),
                segment_size: transmit.segment_size.filter(|&s| s < rest.len()),
                ..*transmit
            };
            match self.send(&t, rest) {
                Ok(n) => {
                    counts.calls += 1;
                    counts.datagrams += n.div_ceil(segment) as u64;
                    *offset += n.max(1);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, to = %t.destination, "send failed");
                    counts.errors += rest.len().div_ceil(segment) as u64;
                    *offset = data.len();
                }
            }
        }
        Ok(())
    }
}

/// Builds GSO batches from the datagrams a driver polls (quic-proto's
/// `poll_transmit`). A datagram that cannot join the batch being built is
/// carried over to head the next one, so nothing is polled and dropped.
#[derive(Debug)]
pub struct Gatherer {
    /// Where the next batch is built.
    batch: Vec<u8>,
    /// Where each further datagram is polled; holds `carry`'s bytes.
    scratch: Vec<u8>,
    /// A datagram polled that did not fit the last batch: the next one's head.
    carry: Option<Transmit>,
}

impl Default for Gatherer {
    fn default() -> Self {
        Self::new()
    }
}

impl Gatherer {
    /// An empty gatherer.
    pub fn new() -> Self {
        Self {
            batch: Vec::with_capacity(MAX_GSO_BYTES),
            scratch: Vec::with_capacity(2048),
            carry: None,
        }
    }

    /// The next batch: its transmit (with `segment_size` set when it holds
    /// more than one datagram) and its bytes, or `None` when `poll` has
    /// nothing more. At most `max_segments` datagrams and `MAX_GSO_BYTES`
    /// bytes. Hand the buffer back with [`Gatherer::recycle`] once sent.
    pub fn next(
        &mut self,
        max_segments: usize,
        mut poll: impl FnMut(&mut Vec<u8>) -> Option<Transmit>,
    ) -> Option<(Transmit, Vec<u8>)> {
        let head = match self.carry.take() {
            Some(t) => {
                std::mem::swap(&mut self.batch, &mut self.scratch);
                t
            }
            None => poll(&mut self.batch)?,
        };
        self.batch.truncate(head.size);
        let mut transmit = head;
        let segment = head.size;
        let mut count = 1;
        if head.segment_size.is_none() && max_segments > 1 && segment > 0 {
            while count < max_segments && self.batch.len() + segment <= MAX_GSO_BYTES {
                let Some(next) = poll(&mut self.scratch) else { break };
                let fits = next.destination == head.destination
                    && next.ecn == head.ecn
                    && next.src_ip == head.src_ip
                    && next.segment_size.is_none()
                    && next.size <= segment
                    && next.size > 0;
                if !fits {
                    self.carry = Some(next);
                    break;
                }
                self.batch.extend_from_slice(&self.scratch[..next.size]);
                count += 1;
                if next.size < segment {
                    // Only the last datagram of a GSO batch may be shorter.
                    break;
                }
            }
        }
        if count > 1 {
            transmit.size = self.batch.len();
            transmit.segment_size = Some(segment);
        }
        Some((transmit, std::mem::take(&mut self.batch)))
    }

    /// Takes back a batch's buffer (cleared) for the next batch.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        self.batch = buf;
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn t(to: &str, size: usize) -> Transmit {
        let destination: SocketAddr = to.parse().unwrap();
        Transmit { destination, ecn: None, size, segment_size: None, src_ip: None }
    }

    /// Polls a fixed list, each datagram filled with its index.
    fn source(list: Vec<Transmit>) -> impl FnMut(&mut Vec<u8>) -> Option<Transmit> {
        let mut it = list.into_iter().enumerate();
        move |buf| {
            let (i, t) = it.next()?;
            buf.clear();
            buf.resize(t.size, i as u8);
            Some(t)
        }
    }

    #[test]
    fn runs_of_equal_datagrams_batch_and_the_rest_carry_over() {
        let a = "10.0.0.1:1";
        let b = "10.0.0.2:1";
        let mut poll =
            source(vec![t(a, 100), t(a, 100), t(a, 60), t(a, 100), t(b, 100), t(b, 100)]);
        let mut g = Gatherer::new();
        let (t1, d1) = g.next(64, &mut poll).unwrap();
        assert_eq!((t1.size, t1.segment_size), (260, Some(100)), "the short one ends the batch");
        assert_eq!(&d1[200..], &[2; 60][..]);
        g.recycle(d1);
        let (t2, d2) = g.next(64, &mut poll).unwrap();
        assert_eq!((t2.size, t2.segment_size, t2.destination), (100, None, a.parse().unwrap()));
        assert_eq!(d2, vec![3; 100]);
        g.recycle(d2);
        let (t3, d3) = g.next(64, &mut poll).unwrap();
        assert_eq!((t3.size, t3.segment_size), (200, Some(100)), "the carried one heads a batch");
        assert_eq!(&d3[..100], &[4; 100][..]);
        assert!(g.next(64, &mut poll).is_none());
    }

    #[test]
    fn batches_stop_at_the_segment_count_and_without_gso_stay_single() {
        let mut poll = source((0..10).map(|_| t("10.0.0.1:1", 1200)).collect());
        let mut g = Gatherer::new();
        let (first, _) = g.next(4, &mut poll).unwrap();
        assert_eq!(first.size, 4 * 1200);
        let (single, _) = g.next(1, &mut poll).unwrap();
        assert_eq!((single.size, single.segment_size), (1200, None));
    }
}
