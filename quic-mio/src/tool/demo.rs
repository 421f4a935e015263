//! `quic demo`: a server and a client on loopback, a generated file, a
//! verified download, the figures. Over hq-interop: the demo shows the
//! transport, and its figures stay comparable with earlier runs
//! (`quic server`/`client` speak HTTP/3 by default).

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aws_lc_rs::digest;
use quic_proto::endpoint::EndpointConfig;
use quic_proto::{RandomSource, SeededRandom, Version};

use crate::tool::client::{self, Options, Sink};
use crate::tool::scratch::ScratchDir;
use crate::tool::server::Server;
use crate::tool::tls::{self, Identity, Inputs, Trust};
use crate::tool::{DemoArgs, Failure, HQ_INTEROP};

pub(crate) fn run(args: &DemoArgs) -> Result<(), Failure> {
    if args.size == 0 {
        return Err(Failure::other("--size must be at least 1 MiB"));
    }
    let size = args.size << 20;
    let dir = ScratchDir::new("quic-demo")?;
    dir.ensure_room(size)?;
    run_in(args, size, dir.path())
}

/// Writes `size` bytes (whole MiB) of a ChaCha20 stream (incompressible,
/// cheap to make) to `path`, handing each 1 MiB chunk to `fold` as it goes.
pub(crate) fn write_generated(
    path: &std::path::Path,
    size: u64,
    mut fold: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut rng = SeededRandom::from_u64(1);
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..size >> 20 {
        rng.fill(&mut chunk);
        fold(&chunk);
        out.write_all(&chunk)?;
    }
    out.flush()
}

fn run_in(args: &DemoArgs, size: u64, dir: &std::path::Path) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::other(format!("demo files in {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    // The file: a ChaCha20 stream (incompressible, cheap to make), hashed
    // as it is written.
    let mut expected = digest::Context::new(&digest::SHA256);
    write_generated(&dir.join("demo.bin"), size, |chunk| expected.update(chunk)).map_err(io)?;
    let expected = expected.finish();

    let keylog = std::env::var_os("SSLKEYLOGFILE").map(std::path::PathBuf::from);
    let identity = Identity::self_signed()?;
    let chain = identity.chain.clone();
    let mut server_inputs = Inputs::live(false);
    let server_tls =
        tls::server(identity, &[HQ_INTEROP.to_owned()], keylog.clone(), &mut server_inputs)?;
    let endpoint = EndpointConfig::default();
    let server = Server::bind(
        ([127, 0, 0, 1], 0).into(),
        dir,
        server_tls,
        endpoint,
        false,
        None,
        &server_inputs,
    )?;
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let server_stop = stop.clone();
    let server = std::thread::spawn(move || server.serve(&server_stop));

    let client_inputs = Inputs::live(false);
    let client_tls = tls::client(
        Trust::Certs(chain),
        &[HQ_INTEROP.to_owned()],
        args.chacha20,
        keylog,
        &client_inputs,
    )?;
    let result = client::download(Options {
        server: addr,
        server_name: "localhost".to_owned(),
        authority: format!("localhost:{}", addr.port()),
        paths: vec!["/demo.bin".to_owned()],
        tls: client_tls,
        version: Version::V1,
        key_update: false,
        handshake_timeout: Duration::from_secs(10),
        sink: Sink::Hash,
        trace: None,
        endpoint: EndpointConfig::default(),
        offload: true,
        inputs: client_inputs,
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let server_stats = server.join().map_err(|_| Failure::other("the server thread panicked"))?;
    let summary = result?;
    let server_stats = server_stats?;
    if summary.bytes != size || summary.sha256.first().map(|h| &h[..]) != Some(expected.as_ref()) {
        return Err(Failure::other(format!(
            "demo: the download does not match the file ({} of {size} bytes)",
            summary.bytes
        )));
    }
    println!("{summary}");
    println!("SHA-256 verified ({} MiB, server on {addr})", size >> 20);
    let per = |n: u64, calls: u64| n as f64 / calls.max(1) as f64;
    println!(
        "server sent {} datagrams in {} sends ({:.1} per send, GSO); client received {} in {} receives ({:.1} per receive, GRO)",
        server_stats.datagrams_sent,
        server_stats.send_calls,
        per(server_stats.datagrams_sent, server_stats.send_calls),
        summary.driver.datagrams_received,
        summary.driver.receive_calls,
        per(summary.driver.datagrams_received, summary.driver.receive_calls),
    );
    Ok(())
}
