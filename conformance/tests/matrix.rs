//! The interop matrix's fast cases, self → self and self ↔ aioquic (and a
//! few self ↔ quinn), run
//! through the same code as `conformance matrix --quick` and judged the same
//! way (files, handshakes, versions, Retry tokens, ClientHello suites, loss
//! actually applied, the anti-amplification limit, path validation after
//! NAT rebinding). Fails, naming what is missing, when the peers are not
//! installed (`bash conformance/peers/install.sh`).

use conformance::matrix::endpoint::{Kind, Programs, find_or_build_quic};
use conformance::matrix::{Case, Options, Outcome, run_one};
use conformance::peers::PeerEnv;

/// One test, so that the cases run one after another: on two cores,
/// parallel transfers would measure the machine, not the stacks.
#[test]
fn fast_cases_pass_between_self_and_aioquic() {
    let env = PeerEnv::load().expect("the interop peers (aioquic, ngtcp2) must be installed");
    let quic = find_or_build_quic().expect("the quic binary must exist or build");
    // Cargo builds this package's binaries for its integration tests.
    let quinn = Some(env!("CARGO_BIN_EXE_quinn-endpoint").into());
    let progs = Programs { env, quic, quinn };
    let seed = std::env::var("QUIC_MATRIX_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    println!("matrix seed {seed} (set QUIC_MATRIX_SEED to change it)");
    let opts = Options { peers: vec![], cases: vec![], seed, quick: true };
    let pairs =
        [(Kind::Ours, Kind::Ours), (Kind::Ours, Kind::Aioquic), (Kind::Aioquic, Kind::Ours)];
    let cases = [
        Case::Handshake,
        Case::Transfer,
        Case::Http3,
        Case::Retry,
        Case::ChaCha20,
        Case::TransferLoss,
        Case::HandshakeLoss,
        Case::HandshakeCorruption,
        Case::AmplificationLimit,
    ];
    let mut failures = Vec::new();
    for case in cases {
        for (client, server) in pairs {
            let outcome = run_one(&progs, &opts, case, client, server);
            println!("{} {}→{}: {outcome:?}", case.name(), client.name(), server.name());
            if !matches!(outcome, Outcome::Pass(_)) {
                failures.push(format!(
                    "{} {}→{}: {outcome:?}",
                    case.name(),
                    client.name(),
                    server.name()
                ));
            }
        }
    }
    // quinn, through this crate's quinn-endpoint.
    let quinn_pairs = [(Kind::Ours, Kind::Quinn), (Kind::Quinn, Kind::Ours)];
    for case in [Case::Handshake, Case::Retry, Case::ChaCha20] {
        for (client, server) in quinn_pairs {
            let outcome = run_one(&progs, &opts, case, client, server);
            println!("{} {}→{}: {outcome:?}", case.name(), client.name(), server.name());
            if !matches!(outcome, Outcome::Pass(_)) {
                failures.push(format!(
                    "{} {}→{}: {outcome:?}",
                    case.name(),
                    client.name(),
                    server.name()
                ));
            }
        }
    }
    // NAT rebinding: our client answers aioquic's path validation on each
    // new path; our server does not handle rebinding yet (#14) and the
    // matrix must say so.
    for case in [Case::RebindPort, Case::RebindAddr] {
        let outcome = run_one(&progs, &opts, case, Kind::Ours, Kind::Aioquic);
        println!("{} self→aioquic: {outcome:?}", case.name());
        if !matches!(outcome, Outcome::Pass(_)) {
            failures.push(format!("{} self→aioquic: {outcome:?}", case.name()));
        }
        match run_one(&progs, &opts, case, Kind::Aioquic, Kind::Ours) {
            Outcome::Unsupported(why) if why.contains("#14") => {}
            other => failures.push(format!(
                "{} aioquic→self: expected unsupported (#14), got {other:?}",
                case.name()
            )),
        }
    }
    // v2 as the runner means it (a v1 Initial upgraded by compatible version
    // negotiation) does not exist here yet: the matrix must say so rather
    // than fail or pass.
    for (client, server) in pairs {
        match run_one(&progs, &opts, Case::V2, client, server) {
            Outcome::Unsupported(why) if why.contains("RFC 9368") || why.contains("compatible") => {
            }
            other => failures.push(format!(
                "v2 {}→{}: expected unsupported (no compatible version negotiation), got {other:?}",
                client.name(),
                server.name()
            )),
        }
    }
    assert!(failures.is_empty(), "matrix cases failed (seed {seed}):\n{}", failures.join("\n"));
}
