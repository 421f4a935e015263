//! `quic`: a QUIC file server and client over HTTP/3 and hq-interop, and a
//! loopback demo. The tool lives in the library (`quic_mio::tool`) so that
//! trace replay (`conformance replay`) can run the same code.

fn main() -> std::process::ExitCode {
    quic_mio::tool::main()
}
