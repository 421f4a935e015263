//! quic-async's client downloads from an independent server: aioquic's
//! hq-interop server and its HTTP/3 server (`conformance/peers`, QPACK
//! dynamic table on), every file compared byte for byte with the peer's
//! `www/`. The HTTP/3 client is the `fetch` example's (h3-proto through
//! `Connection::with_proto` and `Connection::stream_events`). The peers must be installed (`bash
//! conformance/peers/install.sh`, which `scripts/test` runs); when they are
//! not, the test fails naming what is missing.

use std::sync::Arc;
use std::time::Duration;

use conformance::peers::{PeerEnv, PeerServer, ServerConfig, ServerKind};
use futures_lite::io::AsyncWriteExt;
use quic_async::Endpoint;
use quic_proto::connection::{ClientConfig, TransportConfig};
use quic_proto::crypto::session::config::client_config;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[path = "../examples/fetch/h3.rs"]
mod fetch_h3;

fn tls(env: &PeerEnv) -> ClientConfig {
    tls_with_alpn(env, b"hq-interop")
}

fn tls_with_alpn(env: &PeerEnv, alpn: &[u8]) -> ClientConfig {
    let certs: Vec<_> =
        CertificateDer::pem_file_iter(&env.ca).unwrap().collect::<Result<_, _>>().unwrap();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let time = Arc::new(rustls::time_provider::DefaultTimeProvider);
    let tls = client_config(provider, time, Arc::new(roots), None, vec![alpn.to_vec()]).unwrap();
    ClientConfig {
        tls: Arc::new(tls),
        transport: Arc::new(TransportConfig::default()),
        version: quic_proto::Version::V1,
    }
}

#[test]
fn downloads_from_aioquic_on_async_std_and_smol() {
    let env = PeerEnv::load().unwrap_or_else(|e| panic!("interop peers missing: {e}"));
    let mut cfg = ServerConfig::new(ServerKind::AioquicHq);
    cfg.lifetime = Duration::from_secs(120);
    let mut server = PeerServer::start(&env, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&'static str> =
        ["1K.bin", "1M.bin", "50M.bin"].into_iter().filter(|n| env.www_file(n).exists()).collect();
    assert!(names.len() >= 2, "the peers' www/ lacks its files");
    let client = tls(&env);
    let download = |names: Vec<&'static str>| {
        let (client, env, addr) = (client.clone(), env.clone(), server.addr());
        async move {
            let local = "127.0.0.1:0".parse().unwrap();
            let endpoint = Endpoint::client(local).unwrap();
            let conn = endpoint.connect(&client, addr, "localhost").unwrap().await.unwrap();
            for name in names {
                let (mut send, mut recv) = conn.open_bi().await.unwrap();
                send.write_all(format!("GET /{name}\r\n").as_bytes()).await.unwrap();
                send.close().await.unwrap();
                let body = recv.read_to_end(64 << 20).await.unwrap();
                let expected = std::fs::read(env.www_file(name)).unwrap();
                assert!(body == expected, "{name}: {} bytes differ from www/", body.len());
            }
            conn.close(quic_proto::varint::VarInt::from_u32(0), b"");
        }
    };
    async_std::task::block_on(async_std::future::timeout(
        Duration::from_secs(60),
        download(names.clone()),
    ))
    .unwrap_or_else(|_| panic!("async-std download timed out; aioquic log:\n{}", server.log()));
    smol::block_on(download(names));
    let _ = server.stop();
}

#[test]
fn downloads_over_h3_from_aioquic() {
    let env = PeerEnv::load().unwrap_or_else(|e| panic!("interop peers missing: {e}"));
    let mut cfg = ServerConfig::new(ServerKind::AioquicH3);
    cfg.lifetime = Duration::from_secs(120);
    let mut server = PeerServer::start(&env, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> =
        ["1K.bin", "1M.bin", "50M.bin"].into_iter().filter(|n| env.www_file(n).exists()).collect();
    assert!(names.len() >= 2, "the peers' www/ lacks its files");
    let mut paths: Vec<String> = names.iter().map(|n| format!("/{n}")).collect();
    paths.push("/no-such-file".into());
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let client = tls_with_alpn(&env, h3_proto::ALPN_H3);
    let fetched =
        async_std::task::block_on(async_std::future::timeout(Duration::from_secs(60), async {
            let endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            let conn =
                endpoint.connect(&client, server.addr(), "localhost").unwrap().await.unwrap();
            let fetched = fetch_h3::get_all(&conn, "localhost", &paths, 64 << 20).await;
            // HTTP/3 closed the connection with H3_NO_ERROR.
            let _ = conn.closed().await;
            fetched
        }))
        .unwrap_or_else(|_| panic!("HTTP/3 download timed out; aioquic log:\n{}", server.log()));
    let log = server.stop();
    for (path, response) in paths.iter().zip(fetched.responses) {
        let response = response.unwrap_or_else(|e| panic!("{path}: {e}; aioquic log:\n{log}"));
        match env.www_file(&path[1..]) {
            file if file.exists() => {
                assert_eq!(response.status, 200, "{path}");
                let expected = std::fs::read(file).unwrap();
                assert!(response.body == expected, "{path}: {} bytes differ", response.body.len());
            }
            _ => assert_eq!(response.status, 404, "{path}"),
        }
    }
    // aioquic's encoder put its response fields in the dynamic table, and
    // this end's decoder resolved the references to them.
    assert!(fetched.qpack_inserts > 0, "no dynamic table entries; aioquic log:\n{log}");
}
