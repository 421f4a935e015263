//! The hq-interop half of `fetch` (HTTP/0.9 over QUIC, the interop
//! runner's protocol): each GET on a bidirectional stream of its own
//! through quic-async's stream objects, all at once.

use futures_lite::io::AsyncWriteExt;
use quic_async::Connection;

/// GETs every path at once on `conn` (whose ALPN is `hq-interop`), each
/// body up to `max_body` bytes: per path, in order, the body or why there
/// is none.
pub(crate) async fn get_all(
    conn: &Connection,
    paths: &[&str],
    max_body: usize,
) -> Vec<Result<Vec<u8>, String>> {
    let downloads = paths.iter().map(|path| async move {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(format!("GET {path}\r\n").as_bytes()).await.map_err(|e| e.to_string())?;
        send.close().await.map_err(|e| e.to_string())?;
        recv.read_to_end(max_body).await.map_err(|e| e.to_string())
    });
    join_all(downloads.collect()).await
}

/// Runs every future at once, on this task, and returns their outputs in
/// order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future completed")).collect()
}
