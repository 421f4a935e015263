//! `quinn-endpoint`: an hq-interop (HTTP/0.9 over QUIC, the interop
//! runner's protocol) file server and client on quinn 0.11, so that the
//! interop matrix can pair our stack with quinn over the relay.
//!
//! `quinn-endpoint server --listen ADDR --root DIR --cert PEM --key PEM
//! [--retry]` serves `GET /path` requests, one per bidirectional stream.
//! `quinn-endpoint client URL... --output-dir DIR --ca PEM [--chacha20]`
//! fetches the URLs concurrently over one connection. TLS secrets go to
//! `SSLKEYLOGFILE` when it is set. Exit status 0 on success, 1 otherwise
//! (with one line on stderr).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const ALPN: &[u8] = b"hq-interop";

#[derive(Parser, Debug)]
#[command(name = "quinn-endpoint", about = "hq-interop server and client on quinn")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve the files under a directory.
    Server {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Validate client addresses with a Retry first.
        #[arg(long)]
        retry: bool,
    },
    /// Download URLs (`https://host:port/path`) over one connection.
    Client {
        #[arg(required = true)]
        urls: Vec<String>,
        #[arg(long)]
        output_dir: PathBuf,
        #[arg(long)]
        ca: PathBuf,
        /// Offer only TLS_CHACHA20_POLY1305_SHA256.
        #[arg(long)]
        chacha20: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quinn-endpoint: tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Cmd::Server { listen, root, cert, key, retry } => {
                server(listen, &root, &cert, &key, retry).await
            }
            Cmd::Client { urls, output_dir, ca, chacha20, timeout } => {
                let run = client(&urls, &output_dir, &ca, chacha20);
                match tokio::time::timeout(Duration::from_secs(timeout), run).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("timed out after {timeout} s")),
                }
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quinn-endpoint: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

async fn server(
    listen: SocketAddr,
    root: &Path,
    cert: &Path,
    key: &Path,
    retry: bool,
) -> Result<(), String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.key_log = Arc::new(rustls::KeyLogFile::new());
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    // The runner's multiplexing case wants at most 1000 concurrent streams.
    transport.max_concurrent_bidi_streams(1000u32.into());
    config.transport_config(Arc::new(transport));
    let endpoint = quinn::Endpoint::server(config, listen).map_err(|e| e.to_string())?;
    eprintln!("quinn-endpoint: listening on {listen}");
    let root = Arc::new(root.to_path_buf());
    while let Some(incoming) = endpoint.accept().await {
        if retry && !incoming.remote_address_validated() {
            let _ = incoming.retry();
            continue;
        }
        let root = root.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                let root = root.clone();
                tokio::spawn(async move {
                    let Ok(req) = recv.read_to_end(4096).await else { return };
                    let req = String::from_utf8_lossy(&req);
                    let path = req
                        .trim_end()
                        .strip_prefix("GET /")
                        .filter(|p| !p.contains("..") && !p.contains('/'));
                    match path.and_then(|p| std::fs::read(root.join(p)).ok()) {
                        Some(body) => {
                            let _ = send.write_all(&body).await;
                            let _ = send.finish();
                            let _ = send.stopped().await;
                        }
                        None => {
                            let _ = send.reset(0u32.into());
                        }
                    }
                });
            }
        });
    }
    Ok(())
}

async fn client(urls: &[String], out: &Path, ca: &Path, chacha20: bool) -> Result<(), String> {
    let mut target = None;
    let mut paths = Vec::new();
    for u in urls {
        let rest = u.strip_prefix("https://").ok_or_else(|| format!("not an https URL: {u}"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let addr: SocketAddr = authority.parse().map_err(|e| format!("{authority}: {e}"))?;
        target.get_or_insert(addr);
        paths.push(path.to_owned());
    }
    let addr = target.ok_or("no URL")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        roots
            .add(c.map_err(|e| format!("{}: {e}", ca.display()))?)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let mut prov = provider();
    let initial = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|s| s.quic_suite())
        .ok_or("no AES-128-GCM QUIC suite")?;
    if chacha20 {
        prov.cipher_suites
            .retain(|s| s.suite() == rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(prov))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.key_log = Arc::new(rustls::KeyLogFile::new());
    let crypto =
        QuicClientConfig::with_initial(Arc::new(tls), initial).map_err(|e| e.to_string())?;
    let bind: SocketAddr = if addr.is_ipv6() { "[::1]:0".parse() } else { "127.0.0.1:0".parse() }
        .map_err(|_| "bind")?;
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let server_name = addr.ip().to_string();
    let conn = endpoint
        .connect(addr, &server_name)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut tasks = Vec::new();
    for path in paths {
        let conn = conn.clone();
        let out = out.to_path_buf();
        tasks.push(tokio::spawn(async move {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            send.write_all(format!("GET /{path}\r\n").as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            send.finish().map_err(|e| e.to_string())?;
            let body = recv.read_to_end(usize::MAX).await.map_err(|e| format!("/{path}: {e}"))?;
            let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
            std::fs::write(out.join(&name), body).map_err(|e| format!("{name}: {e}"))
        }));
    }
    let mut first_error = None;
    for t in tasks {
        let r = t.await.map_err(|e| e.to_string()).and_then(|r| r);
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    }
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    first_error.map_or(Ok(()), Err)
}
