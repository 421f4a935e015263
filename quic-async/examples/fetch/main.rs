//! Downloads URLs over one QUIC connection with HTTP/3, or with
//! hq-interop (HTTP/0.9 over QUIC, the interop runner's protocol) when the
//! server picks that.
//!
//! ```text
//! cargo run -p quic-async --example fetch -- [--ca FILE | --insecure] [--output-dir DIR] URL...
//! ```
//!
//! Every URL must name the same `https://host:port`. The client offers the
//! ALPNs `h3` then `hq-interop` and speaks whichever the server picks:
//! HTTP/3 with h3-proto, the sans-I/O HTTP/3 layer, run on the connection
//! through `Connection::with_proto` and `Connection::stream_events`
//! (`h3.rs`); hq-interop with quic-async's stream objects (`hq.rs`). Each
//! file is fetched on its own stream, all at once; per file the status
//! (HTTP/3) and size are printed, and with `--output-dir` the body of each
//! successful one is saved under its last path segment. Exit status: 0
//! all downloaded (status 200), 1 a download failed or a status was not
//! 200, 2 bad usage.

mod h3;
mod hq;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use quic_async::Endpoint;
use quic_proto::connection::{ClientConfig, TransportConfig};
use quic_proto::crypto::session::config::client_config;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

const HQ_INTEROP: &[u8] = b"hq-interop";
/// The protocols offered, the first preferred.
const ALPN: [&[u8]; 2] = [h3_proto::ALPN_H3, HQ_INTEROP];
/// The largest file fetched.
const MAX_FILE: usize = 1 << 30;

/// A response: its status (HTTP/3 only; hq-interop has none) and body.
struct Download {
    status: Option<u16>,
    body: Vec<u8>,
}

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
            let alpn = ALPN.iter().map(|a| a.to_vec()).collect();
            client_config(provider, time, Arc::new(roots), None, alpn).map_err(|e| e.to_string())?
        }
        None => {
            let verifier = quic_mio::insecure::AnyCertificate::new(&provider);
            let mut tls = rustls::ClientConfig::builder_with_details(provider, time)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            tls.alpn_protocols = ALPN.iter().map(|a| a.to_vec()).collect();
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
    let alpn = conn.alpn().unwrap_or_default();
    eprintln!(
        "connected to {remote} ({}) in {:.1} ms",
        String::from_utf8_lossy(&alpn),
        start.elapsed().as_secs_f64() * 1e3
    );
    let paths: Vec<&str> =
        args.urls.iter().map(|u| split_url(u).map(|(_, p)| p)).collect::<Result<_, _>>()?;
    // Per path: the response, or why there is none.
    let results: Vec<Result<Download, String>> = match &alpn[..] {
        h3_proto::ALPN_H3 => {
            let fetched = h3::get_all(&conn, authority, &paths, MAX_FILE).await;
            eprintln!("QPACK: {} dynamic table entries from the server", fetched.qpack_inserts);
            let download = |r: h3::Response| Download { status: Some(r.status), body: r.body };
            fetched.responses.into_iter().map(|r| r.map(download)).collect()
        }
        HQ_INTEROP => {
            let bodies = hq::get_all(&conn, &paths, MAX_FILE).await;
            conn.close(quic_proto::varint::VarInt::from_u32(0), b"");
            bodies.into_iter().map(|r| r.map(|body| Download { status: None, body })).collect()
        }
        other => {
            let other = String::from_utf8_lossy(other);
            return Err(format!("the server chose ALPN {other:?}, which was not offered"));
        }
    };
    let mut failed = 0;
    for (path, result) in paths.iter().zip(results) {
        match result {
            Ok(Download { status, body }) => {
                match status {
                    Some(status) => println!("{path}: {status}, {} bytes", body.len()),
                    None => println!("{path}: {} bytes", body.len()),
                }
                if status.is_some_and(|s| s != 200) {
                    failed += 1;
                } else if let Some(dir) = &args.output_dir {
                    let name = path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("index");
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                    std::fs::write(dir.join(name), body).map_err(|e| e.to_string())?;
                }
            }
            Err(e) => {
                println!("{path}: failed: {e}");
                failed += 1;
            }
        }
    }
    let _ = conn.closed().await;
    eprintln!(
        "{} of {} downloaded in {:.1} ms",
        paths.len() - failed,
        paths.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    if failed > 0 { Err(format!("{failed} of {} failed", paths.len())) } else { Ok(()) }
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
