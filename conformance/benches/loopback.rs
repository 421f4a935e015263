//! Single-connection download throughput on loopback over real UDP, in the
//! same run: quic-proto through each of its drivers (the conformance
//! crate's simple blocking driver: one datagram per syscall, no GSO/GRO;
//! quic-mio's driver with GSO/GRO; quic-async on async-io with the same
//! socket layer) against quinn (tokio, with its GSO/GRO socket layer).
//! Prints MB/s and ratios, so each adapter's cost is visible; never
//! asserted.
//!
//! Run: `cargo bench -p conformance --bench loopback` (QUIC_BENCH_MIB sets
//! the size, default 100).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use conformance::loopback::{download, file};
use quic_proto::testing::TestPki;

const ALPN: &[u8] = b"quic-proto-bench";

#[path = "loopback/drivers.rs"]
mod drivers;

fn quinn_download(size: usize, seed: u64) -> Duration {
    let pki = TestPki::new(seed);
    let data = file(size, seed);
    let expected = digest::digest(&digest::SHA256, &data).as_ref().to_vec();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_cert_chain(), pki.server_key())
        .unwrap();
    server_tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut client_tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    client_tls.alpn_protocols = vec![ALPN.to_vec()];

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server_crypto = quinn::crypto::rustls::QuicServerConfig::try_from(server_tls).unwrap();
    let server_endpoint = server_rt.block_on(async {
        quinn::Endpoint::server(
            quinn::ServerConfig::with_crypto(Arc::new(server_crypto)),
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap()
    });
    let addr = server_endpoint.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        server_rt.block_on(async move {
            let conn = server_endpoint.accept().await.unwrap().await.unwrap();
            let (mut send, mut recv) = conn.accept_bi().await.unwrap();
            let _request = recv.read_to_end(64).await.unwrap();
            send.write_chunk(data).await.unwrap();
            send.finish().unwrap();
            conn.closed().await;
        })
    });
    let elapsed = rt.block_on(async move {
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_tls).unwrap();
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let conn = endpoint.connect(addr, TestPki::SERVER_NAME).unwrap().await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(format!("GET {size}\n").as_bytes()).await.unwrap();
        send.finish().unwrap();
        let start = Instant::now();
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut received = 0;
        while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.unwrap() {
            ctx.update(&chunk.bytes);
            received += chunk.bytes.len();
        }
        let elapsed = start.elapsed();
        assert_eq!(received, size);
        assert_eq!(ctx.finish().as_ref(), &expected[..], "quinn download verified");
        conn.close(0u32.into(), b"done");
        endpoint.wait_idle().await;
        elapsed
    });
    server.join().unwrap();
    elapsed
}

fn main() {
    let mib: usize =
        std::env::var("QUIC_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let size = mib * 1024 * 1024;
    println!("loopback download, {mib} MiB on one stream, best of 3 runs (SHA-256 verified)");
    let mut ours = Duration::MAX;
    let mut mio = Duration::MAX;
    let mut async_io = Duration::MAX;
    let mut quinn = Duration::MAX;
    for run in 0..3 {
        let r = download(size, run + 1).expect("quic-proto download");
        assert!(r.verified, "quic-proto download verified");
        ours = ours.min(r.transfer);
        mio = mio.min(drivers::quic_mio_download(size, run + 1));
        async_io = async_io.min(drivers::quic_async_download(size, run + 1));
        quinn = quinn.min(quinn_download(size, run + 1));
    }
    let rate = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
    println!("quic-proto (blocking test driver)  {:>8.1} MB/s", rate(ours));
    println!("quic-proto + quic-mio (GSO/GRO)    {:>8.1} MB/s", rate(mio));
    println!("quic-proto + quic-async (async-io) {:>8.1} MB/s", rate(async_io));
    println!("quinn 0.11 (tokio)                 {:>8.1} MB/s", rate(quinn));
    println!("quic-mio / quinn throughput        {:>8.2}x", rate(mio) / rate(quinn));
    println!("quic-async / quinn throughput      {:>8.2}x", rate(async_io) / rate(quinn));
    println!("quic-async / quic-mio throughput   {:>8.2}x", rate(async_io) / rate(mio));
}
