//! Stream exchanges over a [`Pair`]: open streams on either side, write
//! and finish them, read them on the other, and check what arrived.

use core::time::Duration;

use bytes::Bytes;

use super::Pair;
use crate::connection::{Connection, ReadError, WriteError};
use crate::random::{RandomSource, SeededRandom};
use crate::stream_id::{Dir, Side, StreamId};

impl Pair {
    /// Sends `data` on a new stream of `dir` opened by `from`, finishes it,
    /// and reads it on the other side; returns what arrived.
    pub fn transfer(&mut self, from: Side, dir: Dir, data: &Bytes) -> Vec<u8> {
        let spec = StreamTransfer::one_way(from, dir, data.clone());
        let mut results = self.transfer_streams(&[spec]);
        results.pop().expect("one result per stream").request_received
    }

    /// Runs several stream exchanges at once: each opens a stream (waiting
    /// for stream credit when the peer's limit is reached), sends its
    /// request and FIN, and on a bidirectional stream the peer answers with
    /// its response and FIN. Returns what each side read, in `specs` order.
    ///
    /// Panics (with the seed) on an unexpected stream error, or if the
    /// exchange does not finish within 10 minutes of virtual time.
    pub fn transfer_streams(&mut self, specs: &[StreamTransfer]) -> Vec<TransferResult> {
        let mut states: Vec<Exchange> = specs.iter().map(|_| Exchange::default()).collect();
        let deadline = self.now + Duration::from_secs(600);
        let mut read_buf = vec![0u8; 64 * 1024];
        loop {
            // Open what stream credit allows, in order per (side, dir).
            for (i, spec) in specs.iter().enumerate() {
                if states[i].id.is_some() {
                    continue;
                }
                let earlier_waits = specs[..i]
                    .iter()
                    .zip(&states)
                    .any(|(s, st)| st.id.is_none() && s.opener == spec.opener && s.dir == spec.dir);
                if earlier_waits {
                    continue;
                }
                states[i].id = self.conn(spec.opener).open_stream(spec.dir);
            }
            // A peer learns of streams by accepting them (streams the test
            // opened itself are accepted and ignored).
            for side in [Side::Client, Side::Server] {
                let Some(conn) = self.nodes[super::side_index(side)].connection_mut() else {
                    continue;
                };
                for dir in [Dir::Bi, Dir::Uni] {
                    while let Some(accepted) = conn.accept_stream(dir) {
                        let ours = specs
                            .iter()
                            .zip(states.iter_mut())
                            .find(|(spec, st)| spec.opener != side && st.id == Some(accepted));
                        if let Some((_, st)) = ours {
                            st.accepted = true;
                        }
                    }
                }
            }
            let mut all_done = true;
            for (i, spec) in specs.iter().enumerate() {
                let st = &mut states[i];
                let Some(id) = st.id else {
                    all_done = false;
                    continue;
                };
                let peer = !spec.opener;
                let seed = self.seed;
                let opener = self.conn(spec.opener);
                write_all(opener, id, &spec.request, &mut st.request_written, seed);
                if spec.dir == Dir::Bi && !st.response_done {
                    read_all(
                        opener,
                        id,
                        &mut read_buf,
                        &mut st.response,
                        &mut st.response_done,
                        seed,
                    );
                }
                if st.accepted {
                    let acceptor = self.conn(peer);
                    if !st.request_done {
                        read_all(
                            acceptor,
                            id,
                            &mut read_buf,
                            &mut st.request,
                            &mut st.request_done,
                            seed,
                        );
                    }
                    if spec.dir == Dir::Bi {
                        write_all(acceptor, id, &spec.response, &mut st.response_written, seed);
                    }
                }
                all_done &= st.request_done && (spec.dir == Dir::Uni || st.response_done);
            }
            if all_done {
                break;
            }
            assert!(self.now < deadline, "seed {}: stream transfers did not finish", self.seed);
            assert!(self.step(), "seed {}: stream transfers stalled at {:?}", self.seed, self.now);
        }
        specs
            .iter()
            .zip(states)
            .map(|(_, st)| TransferResult {
                id: st.id.expect("every stream opened"),
                request_received: st.request,
                response_received: st.response,
            })
            .collect()
    }
}

/// Writes what remains of `data` and then the FIN; `written` tracks
/// progress across calls (`usize::MAX` once the FIN is queued).
fn write_all(conn: &mut Connection, id: StreamId, data: &Bytes, written: &mut usize, seed: u64) {
    while *written < data.len() {
        match conn.write_bytes(id, data.slice(*written..)) {
            Ok(n) => *written += n,
            Err(WriteError::Blocked) => return,
            Err(e) => panic!("seed {seed}: write on {id:?} failed: {e}"),
        }
    }
    if *written == data.len() {
        match conn.finish(id) {
            Ok(()) => *written = usize::MAX,
            Err(e) => panic!("seed {seed}: finishing {id:?} failed: {e}"),
        }
    }
}

/// Reads everything available on `id` into `out`; sets `done` at the FIN.
fn read_all(
    conn: &mut Connection,
    id: StreamId,
    buf: &mut [u8],
    out: &mut Vec<u8>,
    done: &mut bool,
    seed: u64,
) {
    loop {
        match conn.read(id, buf) {
            Ok(Some(n)) => out.extend_from_slice(&buf[..n]),
            Ok(None) => {
                *done = true;
                return;
            }
            Err(ReadError::Blocked) => return,
            Err(e) => panic!("seed {seed}: read on {id:?} failed: {e}"),
        }
    }
}

/// One stream exchange for [`Pair::transfer_streams`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamTransfer {
    /// The side that opens the stream and sends `request`.
    pub opener: Side,
    /// Bidirectional or unidirectional.
    pub dir: Dir,
    /// What the opener sends, then FIN.
    pub request: Bytes,
    /// What the peer answers on a bidirectional stream, then FIN; must be
    /// empty on a unidirectional one.
    pub response: Bytes,
}

impl StreamTransfer {
    /// `data` from `opener` on a new stream of `dir`, with an empty
    /// response on a bidirectional stream.
    pub fn one_way(opener: Side, dir: Dir, data: Bytes) -> Self {
        Self { opener, dir, request: data, response: Bytes::new() }
    }
}

/// What [`Pair::transfer_streams`] read for one exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferResult {
    /// The stream used.
    pub id: StreamId,
    /// What the peer read of the request.
    pub request_received: Vec<u8>,
    /// What the opener read of the response (empty on unidirectional streams).
    pub response_received: Vec<u8>,
}

#[derive(Default)]
struct Exchange {
    id: Option<StreamId>,
    accepted: bool,
    request_written: usize,
    response_written: usize,
    request: Vec<u8>,
    request_done: bool,
    response: Vec<u8>,
    response_done: bool,
}

/// `len` bytes from a [`SeededRandom`] keyed by `seed`: test payloads that
/// are the same on every run.
pub fn payload(len: usize, seed: u64) -> Bytes {
    let mut data = vec![0u8; len];
    SeededRandom::from_u64(seed).fill(&mut data);
    Bytes::from(data)
}
