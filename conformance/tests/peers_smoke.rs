//! Smoke test of the interop peer harness (`conformance/peers/`, driven by
//! `conformance::peers`): the peers are installed, our aioquic hq-interop
//! server and client fetch 1 KB between themselves, ngtcp2's h3 pair does
//! the same, and an hq-interop client is refused by the h3-only ngtcp2
//! server with no_application_protocol. A peer that is not installed fails
//! the test with what is missing; run `bash conformance/peers/install.sh`.

use conformance::peers::{
    ClientConfig, ClientKind, PeerEnv, PeerServer, ScratchDir, ServerConfig, ServerKind,
    run_client, verify_downloads,
};

fn env() -> PeerEnv {
    PeerEnv::load().unwrap_or_else(|e| panic!("{e}"))
}

fn fetch_1k(server_kind: ServerKind, client_kind: ClientKind) {
    let env = env();
    let mut server = PeerServer::start(&env, &ServerConfig::new(server_kind))
        .unwrap_or_else(|e| panic!("cannot start the {server_kind:?} peer server: {e}"));
    let dir = ScratchDir::new("smoke").expect("scratch folder");
    let mut cfg = ClientConfig::new(client_kind, dir.path());
    cfg.timeout = std::time::Duration::from_secs(30);
    let run = run_client(&env, &cfg, server.addr(), &["/1K.bin"])
        .unwrap_or_else(|e| panic!("cannot run the {client_kind:?} peer client: {e}"));
    let server_log = server.stop();
    assert!(
        run.success(),
        "{client_kind:?} client against {server_kind:?} server failed\n{}\nserver log:\n{server_log}",
        run.report()
    );
    if let Err(e) = verify_downloads(&env, dir.path(), &["1K.bin"]) {
        panic!("{e}\n{}\nserver log:\n{server_log}", run.report());
    }
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
    cfg.timeout = std::time::Duration::from_secs(30);
    let run = run_client(&env, &cfg, server.addr(), &["/1K.bin"])
        .unwrap_or_else(|e| panic!("cannot run hq_client.py: {e}"));
    assert_eq!(run.exit, Some(1), "expected exit status 1\n{}", run.report());
    assert!(
        run.stdout.contains("error 0x178") && run.stdout.contains("no_application_protocol"),
        "expected CONNECTION_CLOSE 0x178 (no_application_protocol)\n{}",
        run.report()
    );
}
