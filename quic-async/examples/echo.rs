//! An echo server and a client in one process, on loopback: the client
//! sends each argument on a stream of its own and prints what comes back.
//!
//! ```text
//! cargo run -p quic-async --example echo -- hello world
//! ```
//!
//! Certificates come from quic-proto's test PKI (its `testing` feature), so
//! the example needs no files. The server half is what a real echo server
//! looks like: accept connections, accept streams, write back what each
//! stream carried.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use quic_async::{Connection, Endpoint};
use quic_proto::connection::{ClientConfig, ServerConfig, TransportConfig};
use quic_proto::testing::{TestPki, client_config, server_config};

const ALPN: &[u8] = b"echo";

async fn serve_connection(conn: Connection) {
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        // Streams one after the other, for brevity; a server would spawn a
        // task per stream on its executor.
        let mut data = Vec::new();
        if AsyncReadExt::read_to_end(&mut recv, &mut data).await.is_ok() {
            let _ = send.write_all(&data).await;
            let _ = send.close().await;
        }
    }
}

async fn run(words: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let pki = TestPki::new(1);
    let transport = Arc::new(TransportConfig::default());
    let server_tls = ServerConfig {
        tls: Arc::new(server_config(&pki, &[ALPN], 2)),
        transport: transport.clone(),
    };
    let client_tls = ClientConfig {
        tls: Arc::new(client_config(&pki, &[ALPN], 3)),
        transport,
        version: quic_proto::Version::V1,
    };
    let localhost: SocketAddr = "127.0.0.1:0".parse()?;
    let server = Endpoint::server(server_tls, localhost)?;
    let addr = server.local_addr();
    std::thread::spawn(move || {
        async_io::block_on(async move {
            while let Some(incoming) = server.accept().await {
                if let Ok(connecting) = incoming.accept()
                    && let Ok(conn) = connecting.await
                {
                    std::thread::spawn(move || async_io::block_on(serve_connection(conn)));
                }
            }
        });
    });
    let client = Endpoint::client(localhost)?;
    let conn = client.connect(&client_tls, addr, TestPki::SERVER_NAME)?.await?;
    println!("connected to {addr}, RTT {:?}", conn.rtt());
    for word in words {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(word.as_bytes()).await?;
        send.close().await?;
        let mut back = Vec::new();
        AsyncReadExt::read_to_end(&mut recv, &mut back).await?;
        println!("{word} -> {}", String::from_utf8_lossy(&back));
    }
    conn.close(quic_proto::varint::VarInt::from_u32(0), b"bye");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    if words.is_empty() {
        words = vec!["hello".into(), "QUIC".into()];
    }
    // Either runtime: async-std's `task::block_on` or smol's `block_on`
    // work the same; async-io's is the smallest.
    async_io::block_on(run(words))
}
