//! Downloads hq-interop URLs over one QUIC connection (HTTP/0.9 on QUIC, the
//! interop runner's protocol; HTTP/3 once h3-proto exists).
//!
//! ```text
//! cargo run -p quic-async --example fetch -- [--ca FILE | --insecure] [--output-dir DIR] URL...
//! ```
//!
//! Every URL must name the same `https://host:port`. Each file is fetched
//! on its own stream, all at once; with `--output-dir` each is saved under
//! its last path segment, otherwise only its size is printed. Exit status:
//! 0 all downloaded, 1 a download failed, 2 bad usage.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use futures_lite::io::AsyncWriteExt;
use quic_async::Endpoint;
use quic_proto::connection::{ClientConfig, TransportConfig};
use quic_proto::crypto::session::config::client_config;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

const HQ_INTEROP: &[u8] = b"hq-interop";
/// The largest file fetched.
const MAX_FILE: usize = 1 << 30;

struct Args {
    ca: Option<PathBuf>,
    insecure: bool,
    output_dir: Option<PathBuf>,
    urls: Vec<String>,
}

fn usage(error: &str) -> ExitCode {
    eprintln!("fetch: {error}");
    eprintln!("usage: fetch [--ca FILE | --insecure] [--output-dir DIR] URL...");
    ExitCode::from(2)
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { ca: None, insecure: false, output_dir: None, urls: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ca" => args.ca = Some(it.next().ok_or("--ca needs a file")?.into()),
            "--insecure" => args.insecure = true,
            "--output-dir" => {
                args.output_dir = Some(it.next().ok_or("--output-dir needs a folder")?.into());
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => args.urls.push(a),
        }
    }
    if args.urls.is_empty() {
        return Err("no URL given".into());
    }
    if args.ca.is_some() == args.insecure {
        return Err("give exactly one of --ca FILE and --insecure".into());
    }
    Ok(args)
}

/// `https://host:port/path` as (authority, path).
fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url.strip_prefix("https://").ok_or_else(|| format!("{url}: not https://"))?;
    let at = rest.find('/').unwrap_or(rest.len());
    let path = if at == rest.len() { "/" } else { &rest[at..] };
    Ok((&rest[..at], path))
}

fn tls(args: &Args) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let time: Arc<dyn rustls::time_provider::TimeProvider> =
        Arc::new(rustls::time_provider::DefaultTimeProvider);
    let tls = match &args.ca {
        Some(ca) => {
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
            let mut roots = RootCertStore::empty();
            if roots.add_parsable_certificates(certs).0 == 0 {
                return Err(format!("no usable CA certificate in {}", ca.display()));
            }
            client_config(provider, time, Arc::new(roots), None, vec![HQ_INTEROP.to_vec()])
                .map_err(|e| e.to_string())?
        }
        None => {
            let verifier = quic_mio::insecure::AnyCertificate::new(&provider);
            let mut tls = rustls::ClientConfig::builder_with_details(provider, time)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            tls.alpn_protocols = vec![HQ_INTEROP.to_vec()];
            tls
        }
    };
    Ok(ClientConfig {
        tls: Arc::new(tls),
        transport: Arc::new(TransportConfig::default()),
        version: quic_proto::Version::V1,
    })
}

async fn fetch(args: Args) -> Result<(), String> {
    let (authority, _) = split_url(&args.urls[0])?;
    for url in &args.urls {
        if split_url(url)?.0 != authority {
            return Err(format!("{url}: every URL must name {authority}"));
        }
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let with_port = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:443")
    };
    let remote: SocketAddr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let config = tls(&args)?;
    let local: SocketAddr =
        if remote.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }.expect("addr");
    let endpoint = Endpoint::client(local).map_err(|e| format!("bind: {e}"))?;
    let start = Instant::now();
    let conn = endpoint
        .connect(&config, remote, host)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| format!("{remote}: {e}"))?;
    eprintln!("connected to {remote} in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    let downloads = args.urls.iter().map(|url| {
        let conn = conn.clone();
        async move {
            let (_, path) = split_url(url)?;
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            send.write_all(format!("GET {path}\r\n").as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            send.close().await.map_err(|e| e.to_string())?;
            let body = recv.read_to_end(MAX_FILE).await.map_err(|e| format!("{url}: {e}"))?;
            Ok::<_, String>((path.to_owned(), body))
        }
    });
    let mut failed = None;
    for result in join_all(downloads.collect()).await {
        match result {
            Ok((path, body)) => {
                println!("{path}: {} bytes", body.len());
                if let Some(dir) = &args.output_dir {
                    let name = path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("index");
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                    std::fs::write(dir.join(name), body).map_err(|e| e.to_string())?;
                }
            }
            Err(e) => failed = Some(e),
        }
    }
    conn.close(quic_proto::varint::VarInt::from_u32(0), b"");
    let _ = conn.closed().await;
    failed.map_or(Ok(()), Err)
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

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    match async_io::block_on(fetch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fetch: {e}");
            ExitCode::from(1)
        }
    }
}
