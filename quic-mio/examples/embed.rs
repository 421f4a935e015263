//! Embedding the quic-mio driver in an application's own `mio::Poll` loop,
//! next to a TCP listener: a QUIC server that answers every bidirectional
//! stream with a greeting, and a TCP status port that prints how many
//! connections the QUIC endpoint holds. docs/embedding.md walks through it.
//!
//! Run: `cargo run -p quic-mio --example embed`, then
//! `quic client --insecure https://127.0.0.1:4433/` and `nc 127.0.0.1 8080`.

use std::io::{self, Write};
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use quic_mio::{Driver, DriverEvent};
use quic_proto::Dir;
use quic_proto::connection::{Event, ServerConfig, StreamEvent, TransportConfig};
use quic_proto::crypto::session::config::server_config;
use quic_proto::endpoint::EndpointConfig;
use rustls::pki_types::PrivateKeyDer;

const QUIC: Token = Token(0);
const STATUS: Token = Token(1);

fn main() -> io::Result<()> {
    // TLS: a self-signed certificate, ALPN hq-interop (`quic client` offers h3, then hq-interop).
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(io::Error::other)?;
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let tls = server_config(
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        Arc::new(rustls::time_provider::DefaultTimeProvider),
        vec![certified.cert.der().clone()],
        key,
        None,
        vec![b"hq-interop".to_vec()],
    )
    .map_err(io::Error::other)?;
    let server =
        ServerConfig { tls: Arc::new(tls), transport: Arc::new(TransportConfig::default()) };

    // The application's own poll, with its own sources.
    let mut poll = Poll::new()?;
    let mut status = TcpListener::bind("127.0.0.1:8080".parse().unwrap())?;
    poll.registry().register(&mut status, STATUS, Interest::READABLE)?;

    // The QUIC endpoint joins it under a token of the application's choice.
    let mut driver =
        Driver::bind("[::]:4433".parse().unwrap(), EndpointConfig::default(), Some(server))?;
    driver.register(poll.registry(), QUIC)?;
    println!("QUIC on {}, status on 127.0.0.1:8080", driver.local_addr());

    let mut events = Events::with_capacity(128);
    loop {
        // Wait for readiness, but no longer than the endpoint's next deadline.
        let timeout = driver.timeout(driver.now());
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        let now = driver.now();
        for event in events.iter() {
            match event.token() {
                QUIC => driver.handle_mio_event(now, event),
                STATUS => loop {
                    match status.accept() {
                        Ok((mut stream, _)) => {
                            let count = driver.endpoint().connection_count();
                            // Best effort: a status line fits a fresh socket's buffer.
                            let _ = writeln!(stream, "{count} QUIC connections");
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                },
                _ => {}
            }
        }
        // Timers, events (answered right here), then everything to send.
        driver.process(now, |endpoint, event| {
            let DriverEvent::Connection(handle, event) = event else { return };
            let Some(conn) = endpoint.connection(handle) else { return };
            if let Event::Stream(StreamEvent::Opened(Dir::Bi)) = event {
                while let Some(id) = conn.accept_stream(Dir::Bi) {
                    // A short answer fits the stream's send buffer at once.
                    let _ = conn.write(id, b"hello from quic-mio\n");
                    let _ = conn.finish(id);
                }
            }
        });
    }
}
