//! Smoke test of the interop peer harness (`conformance/peers/`, driven by
//! `conformance::peers`): the peers are installed, our aioquic hq-interop
//! server and client fetch 1 KB between themselves, ngtcp2's h3 pair does
//! the same, and an hq-interop client is refused by the h3-only ngtcp2
//! server with no_application_protocol. Over HTTP/3, every pairing of the
//! h3 peers but ngtcp2 with itself (aioquic with aioquic, ngtcp2 client to
//! aioquic server, aioquic client to ngtcp2 server) fetches 1K.bin and
//! 1M.bin on one connection, and the aioquic end shows that both QPACK
//! encoders used the dynamic table. A peer that is not installed fails the
//! test with what is missing; run `bash conformance/peers/install.sh`.

use std::time::Duration;

use conformance::peers::{
    ClientConfig, ClientKind, Finished, PeerEnv, PeerServer, QpackStats, ScratchDir, ServerConfig,
    ServerKind, run_client, verify_downloads,
};

fn env() -> PeerEnv {
    PeerEnv::load().unwrap_or_else(|e| panic!("{e}"))
}

/// A finished client run and what the server said about it.
struct Fetched {
    run: Finished,
    server_log: String,
    /// The server's QPACK line per connection (aioquic h3 server only).
    server_qpack: Vec<QpackStats>,
}

/// Starts `server_kind`, runs `client_kind` for `names` against it, stops
/// the server, and checks that the client succeeded and that every file
/// arrived byte for byte.
fn fetch(server_kind: ServerKind, client_kind: ClientKind, names: &[&str]) -> Fetched {
    let env = env();
    let mut cfg = ServerConfig::new(server_kind);
    cfg.lifetime = Duration::from_secs(60);
    let mut server = PeerServer::start(&env, &cfg)
        .unwrap_or_else(|e| panic!("cannot start the {server_kind:?} peer server: {e}"));
    let dir = ScratchDir::new("smoke").expect("scratch folder");
    let mut cfg = ClientConfig::new(client_kind, dir.path());
    cfg.timeout = Duration::from_secs(20);
    let paths: Vec<String> = names.iter().map(|n| format!("/{n}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let run = run_client(&env, &cfg, server.addr(), &paths)
        .unwrap_or_else(|e| panic!("cannot run the {client_kind:?} peer client: {e}"));
    let server_log = server.stop();
    assert!(
        run.success(),
        "{client_kind:?} client against {server_kind:?} server failed\n{}\nserver log:\n{server_log}",
        run.report()
    );
    if let Err(e) = verify_downloads(&env, dir.path(), names) {
        panic!("{e}\n{}\nserver log:\n{server_log}", run.report());
    }
    let server_qpack = QpackStats::find_all(&server_log);
    eprintln!(
        "{client_kind:?} <- {server_kind:?}: {} in {:.2} s\n  client: {:?}\n  server: {server_qpack:?}",
        names.join(" + "),
        run.elapsed.as_secs_f64(),
        run.qpack_stats()
    );
    Fetched { run, server_log, server_qpack }
}

fn fetch_1k(server_kind: ServerKind, client_kind: ClientKind) {
    fetch(server_kind, client_kind, &["1K.bin"]);
}

#[test]
fn aioquic_hq_server_and_client_transfer_1k() {
    fetch_1k(ServerKind::AioquicHq, ClientKind::AioquicHq);
}

#[test]
fn ngtcp2_h3_server_and_client_transfer_1k() {
    fetch_1k(ServerKind::Ngtcp2H3, ClientKind::Ngtcp2H3);
}

#[test]
fn ngtcp2_server_refuses_hq_interop_with_no_application_protocol() {
    let env = env();
    let server = PeerServer::start(&env, &ServerConfig::new(ServerKind::Ngtcp2H3))
        .unwrap_or_else(|e| panic!("cannot start gtlsserver: {e}"));
    let dir = ScratchDir::new("smoke-alpn").expect("scratch folder");
    let mut cfg = ClientConfig::new(ClientKind::AioquicHq, dir.path());
    cfg.timeout = Duration::from_secs(30);
    let run = run_client(&env, &cfg, server.addr(), &["/1K.bin"])
        .unwrap_or_else(|e| panic!("cannot run hq_client.py: {e}"));
    assert_eq!(run.exit, Some(1), "expected exit status 1\n{}", run.report());
    assert!(
        run.stdout.contains("error 0x178") && run.stdout.contains("no_application_protocol"),
        "expected CONNECTION_CLOSE 0x178 (no_application_protocol)\n{}",
        run.report()
    );
}

// ---- HTTP/3 with the QPACK dynamic table ---------------------------------

const H3_FILES: [&str; 2] = ["1K.bin", "1M.bin"];

/// The one connection's QPACK line of the aioquic h3 server's log.
fn only_connection(f: &Fetched) -> &QpackStats {
    assert_eq!(
        f.server_qpack.len(),
        1,
        "expected one connection with a qpack line\nserver log:\n{}",
        f.server_log
    );
    &f.server_qpack[0]
}

/// The aioquic h3 client's QPACK line.
fn client_qpack(f: &Fetched) -> QpackStats {
    f.run
        .qpack_stats()
        .unwrap_or_else(|| panic!("no qpack line from h3_client.py\n{}", f.run.report()))
}

/// Both encoders referenced the dynamic table, as seen by the aioquic end:
/// the other side's in the sections this end decoded, this end's in the
/// sections the other side decoded (the downloads prove it decoded them).
fn assert_dynamic_table_both_ways(q: &QpackStats, what: &str, context: &str) {
    assert!(
        q.peer_used_dynamic_table() && q.we_used_dynamic_table(),
        "{what}: the QPACK dynamic table was not used both ways: {q:?}\n{context}"
    );
    assert!(
        q.encoder_bytes_sent.unwrap_or(0) > 0 && q.encoder_bytes_received.unwrap_or(0) > 0,
        "{what}: no encoder-stream inserts in one direction: {q:?}\n{context}"
    );
}

#[test]
fn aioquic_h3_server_and_client_transfer_with_dynamic_table() {
    let f = fetch(ServerKind::AioquicH3, ClientKind::AioquicH3, &H3_FILES);
    assert!(f.run.stdout.starts_with("h3-client: OK 2/2 files"), "{}", f.run.report());
    assert!(f.run.stdout.contains("alpn=h3"), "{}", f.run.report());
    let client = client_qpack(&f);
    assert_eq!((client.peer_capacity, client.peer_blocked), (Some(4096), Some(16)), "{client:?}");
    assert_dynamic_table_both_ways(&client, "h3_client.py", &f.run.report());
    let server = only_connection(&f);
    assert_eq!((server.peer_capacity, server.peer_blocked), (Some(4096), Some(16)), "{server:?}");
    assert_dynamic_table_both_ways(server, "h3_server.py", &f.server_log);
    // What one end encoded with the table, the other decoded with it.
    assert_eq!(client.sent_dynamic, server.received_dynamic, "{client:?}\n{server:?}");
    assert_eq!(server.sent_dynamic, client.received_dynamic, "{client:?}\n{server:?}");
}

#[test]
fn ngtcp2_client_downloads_from_aioquic_h3_server() {
    let f = fetch(ServerKind::AioquicH3, ClientKind::Ngtcp2H3, &H3_FILES);
    let server = only_connection(&f);
    // gtlsclient's SETTINGS, hard-coded in ngtcp2's example client.
    assert_eq!((server.peer_capacity, server.peer_blocked), (Some(4096), Some(100)), "{server:?}");
    assert_eq!(server.received_sections, 2, "{server:?}\n{}", f.server_log);
    assert_dynamic_table_both_ways(server, "h3_server.py <- gtlsclient", &f.server_log);
}

#[test]
fn aioquic_h3_client_downloads_from_ngtcp2_server() {
    let f = fetch(ServerKind::Ngtcp2H3, ClientKind::AioquicH3, &H3_FILES);
    let client = client_qpack(&f);
    // gtlsserver's SETTINGS, hard-coded in ngtcp2's example server.
    assert_eq!((client.peer_capacity, client.peer_blocked), (Some(4096), Some(100)), "{client:?}");
    assert_eq!(client.received_sections, 2, "{client:?}\n{}", f.run.report());
    assert_dynamic_table_both_ways(&client, "h3_client.py -> gtlsserver", &f.run.report());
}

#[test]
fn aioquic_h3_client_fails_on_404() {
    let env = env();
    let mut server = PeerServer::start(&env, &ServerConfig::new(ServerKind::AioquicH3))
        .unwrap_or_else(|e| panic!("cannot start h3_server.py: {e}"));
    let dir = ScratchDir::new("smoke-404").expect("scratch folder");
    let mut cfg = ClientConfig::new(ClientKind::AioquicH3, dir.path());
    cfg.timeout = Duration::from_secs(20);
    let run = run_client(&env, &cfg, server.addr(), &["/1K.bin", "/missing.bin"])
        .unwrap_or_else(|e| panic!("cannot run h3_client.py: {e}"));
    let log = server.stop();
    assert_eq!(run.exit, Some(1), "expected exit status 1\n{}\nserver log:\n{log}", run.report());
    assert!(
        run.stdout.starts_with("h3-client: FAILED 1/2 files")
            && run.stdout.contains("/missing.bin: status 404"),
        "{}",
        run.report()
    );
    assert!(log.contains("GET /missing.bin -> 404"), "server log:\n{log}");
    verify_downloads(&env, dir.path(), &["1K.bin"]).unwrap_or_else(|e| panic!("{e}"));
    assert!(!dir.path().join("missing.bin").exists(), "no file for a refused download");
}
