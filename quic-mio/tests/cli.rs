//! The `quic` binary end to end on loopback: `quic server` and `quic client`
//! as separate processes (over HTTP/3, their default, and hq-interop), and
//! `quic demo`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const QUIC: &str = env!("CARGO_BIN_EXE_quic");

/// A served directory with a 1 KB and a 1 MB file, a certificate, and a
/// secret file next to (not inside) the served directory.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("small.txt"), data(1000, 1)).unwrap();
        std::fs::write(root.join("large.bin"), data(1 << 20, 2)).unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"not for clients").unwrap();
        let (cert, key) = certificate();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn serve(&self, extra: &[&str]) -> Server {
        self.spawn_server(extra, Stdio::inherit())
    }

    /// `serve`, with the server's stderr piped (in `Server::child`).
    fn serve_piped(&self, extra: &[&str]) -> Server {
        self.spawn_server(extra, Stdio::piped())
    }

    fn spawn_server(&self, extra: &[&str], stderr: Stdio) -> Server {
        let mut child = Command::new(QUIC)
            .args(["server", "--listen", "127.0.0.1:0", "--root"])
            .arg(self.path("www"))
            .arg("--cert")
            .arg(self.path("cert.pem"))
            .arg("--key")
            .arg(self.path("key.pem"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("quic server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the server says where it listens").unwrap();
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.to_owned();
            }
        };
        Server { child, addr }
    }

    /// Runs `quic client` for `paths` on `server`, trusting the site's certificate.
    fn client(&self, server: &Server, paths: &[&str], extra: &[&str]) -> Output {
        let out = self.path("out");
        let urls = paths.iter().map(|p| format!("https://localhost:{}{p}", server.port()));
        Command::new(QUIC)
            .arg("client")
            .args(urls)
            .arg("--output-dir")
            .arg(&out)
            .arg("--ca")
            .arg(self.path("cert.pem"))
            .args(extra)
            .output()
            .expect("quic client runs")
    }
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic bytes (an LCG), different per seed.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

fn certificate() -> (String, String) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

fn sha256(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_default();
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref().to_vec()
}

fn check_success(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "client failed: {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn check_downloaded(site: &Site, names: &[&str]) {
    for name in names {
        assert_eq!(
            sha256(&site.path("out").join(name)),
            sha256(&site.path("www").join(name)),
            "{name} arrived intact"
        );
    }
}

/// The one-line reason and the exit code of a failed run.
fn failure(output: &Output) -> (i32, String) {
    assert!(!output.status.success(), "the run should fail");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "one line of reason: {stderr}");
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn downloads_small_and_large_files_concurrently() {
    let site = Site::new();
    let server = site.serve(&[]);
    let stdout = check_success(&site.client(&server, &["/small.txt", "/large.bin"], &[]));
    check_downloaded(&site, &["small.txt", "large.bin"]);
    assert!(stdout.contains("downloaded 2 files, 1049576 bytes"), "summary: {stdout}");
    assert!(stdout.contains("handshake") && stdout.contains("RTT") && stdout.contains("lost"));
    // HTTP/3 is the default both ways; the second request found the
    // `:authority` and `user-agent` the first one had (our encoder inserts
    // a line the second time it sees it), in a 4096-byte table.
    assert!(stdout.contains("; over h3, qpack: encoder table 4096 bytes"), "{stdout}");
}

/// The QPACK figures at the end of an h3 summary line: the encoder's
/// table capacity and the decoder's inserts.
fn qpack_figures(line: &str) -> (u64, u64) {
    let rest = line.split("qpack: encoder table ").nth(1).unwrap_or_else(|| panic!("{line}"));
    let (capacity, rest) = rest.split_once(" bytes, decoder inserts ").unwrap();
    (capacity.parse().unwrap(), rest.trim().parse().unwrap())
}

/// `--alpn hq-interop` on either side still gets hq-interop, and a client
/// that insists on h3 is refused in TLS by a server that does not speak it.
#[test]
fn hq_interop_still_works_both_ways() {
    let site = Site::new();
    let both = site.serve(&[]);
    let hq = ["--alpn", "hq-interop"];
    let stdout = check_success(&site.client(&both, &["/small.txt", "/large.bin"], &hq));
    check_downloaded(&site, &["small.txt", "large.bin"]);
    assert!(stdout.contains("downloaded 2 files, 1049576 bytes"), "{stdout}");
    assert!(!stdout.contains("h3"), "hq-interop was spoken: {stdout}");

    let hq_only = site.serve(&hq);
    std::fs::remove_dir_all(site.path("out")).unwrap();
    let stdout = check_success(&site.client(&hq_only, &["/large.bin"], &[]));
    check_downloaded(&site, &["large.bin"]);
    assert!(!stdout.contains("h3"), "the client fell back to hq-interop: {stdout}");
    let (code, reason) = failure(&site.client(&hq_only, &["/small.txt"], &["--alpn", "h3"]));
    assert_eq!(code, 5, "{reason}");
    assert!(reason.contains("CRYPTO_ERROR(alert 120)"), "no_application_protocol: {reason}");
}

#[test]
fn h3_missing_file_is_a_404() {
    let site = Site::new();
    let server = site.serve(&[]);
    let (code, reason) = failure(&site.client(&server, &["/small.txt", "/nope.txt"], &[]));
    assert_eq!(code, 6, "{reason}");
    assert!(reason.ends_with("GET /nope.txt: not found (status 404)"), "{reason}");
    assert!(!site.path("out").join("nope.txt").exists(), "no file for a failed download");
}

/// More requests than the server's stream limit (100 at once): the rest go
/// out as the server raises it (MAX_STREAMS, then `SendError::StreamLimit`
/// no more).
#[test]
fn h3_requests_beyond_the_stream_limit_wait_for_more_streams() {
    let site = Site::new();
    let server = site.serve(&[]);
    let paths = vec!["/small.txt"; 150];
    let stdout = check_success(&site.client(&server, &paths, &[]));
    assert!(stdout.contains("downloaded 150 files, 150000 bytes"), "{stdout}");
    assert!(stdout.contains("over h3"), "{stdout}");
    check_downloaded(&site, &["small.txt"]);
    assert_eq!(out_files(&site), ["small.txt"], "no part file left");
}

/// One HTTP/3 response as [`h3_requests`] saw it.
#[derive(Debug, Default)]
struct H3Response {
    fields: Vec<h3_proto::qpack::Field>,
    body: Vec<u8>,
    done: bool,
}

impl H3Response {
    fn field(&self, name: &str) -> Option<String> {
        let field = self.fields.iter().find(|f| f.name == name.as_bytes())?;
        Some(String::from_utf8_lossy(&field.value).into_owned())
    }
}

/// Sends `(method, path, body)` requests to the server on `port` over one
/// HTTP/3 connection, all at once after its SETTINGS, and returns the
/// responses in order: what `quic client` cannot ask (HEAD, other methods,
/// request bodies), from a client made of the quic-mio driver and
/// h3-proto.
fn h3_requests(port: u16, requests: &[(&str, &str, &[u8])]) -> Vec<H3Response> {
    use h3_proto::Event as H3Event;
    use h3_proto::transport::QuicTransport;
    use quic_mio::DriverEvent;
    use quic_proto::connection::Event;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(quic_mio::insecure::AnyCertificate::new(&provider))
        .with_no_client_auth();
    tls.alpn_protocols = vec![h3_proto::ALPN_H3.to_vec()];
    let config = quic_proto::connection::ClientConfig {
        tls: Arc::new(tls),
        transport: Arc::default(),
        version: quic_proto::Version::V1,
    };
    let bind = "127.0.0.1:0".parse().unwrap();
    let mut driver =
        quic_mio::Driver::bind(bind, quic_proto::endpoint::EndpointConfig::default(), None)
            .unwrap();
    let mut poll = mio::Poll::new().unwrap();
    driver.register(poll.registry(), mio::Token(0)).unwrap();
    let addr = ([127, 0, 0, 1], port).into();
    let handle = driver.connect(driver.now(), &config, "localhost", addr).unwrap();
    let mut h3 = h3_proto::Connection::new(quic_proto::Side::Client, Default::default(), 7);
    let mut responses: Vec<H3Response> = requests.iter().map(|_| H3Response::default()).collect();
    let mut streams = HashMap::new();
    let mut opened = false;
    let mut buf = vec![0; 1 << 16];
    let mut events = mio::Events::with_capacity(64);
    let started = std::time::Instant::now();
    while !responses.iter().all(|r| r.done) {
        assert!(started.elapsed() < Duration::from_secs(10), "no answers: {responses:?}");
        let now = driver.now();
        let timeout = driver
            .timeout(now)
            .map_or(Duration::from_millis(50), |t| t.min(Duration::from_millis(50)));
        poll.poll(&mut events, Some(timeout)).unwrap();
        let now = driver.now();
        for event in events.iter() {
            driver.handle_mio_event(now, event);
        }
        driver.process(now, |endpoint, event| {
            let DriverEvent::Connection(h, event) = event else { return };
            let Some(conn) = endpoint.connection(h) else { return };
            let mut t = QuicTransport { connection: conn, now };
            // The server's streams may be reported before the handshake
            // completes (its SETTINGS are 0.5-RTT data), but sections go
            // out only once this end's streams are open: `handle_all`
            // catches up on what came before.
            if !opened && t.connection.is_handshake_complete() {
                h3.open(&mut t).unwrap();
                h3.handle_all(&mut t);
                opened = true;
            }
            match &event {
                Event::Stream(e) if opened => h3.handle_stream_event(&mut t, e),
                Event::ConnectionLost(e) => panic!("connection lost: {e}"),
                _ => {}
            }
            while let Some(event) = h3.poll_event() {
                match event {
                    H3Event::Settings(_) => {
                        for (index, (method, path, body)) in requests.iter().enumerate() {
                            let authority = format!("localhost:{port}");
                            let fields = h3_proto::message::request_fields(
                                method,
                                "https",
                                &authority,
                                path,
                                &[],
                            );
                            let id = h3.send_request(&mut t, &fields, body.is_empty()).unwrap();
                            if !body.is_empty() {
                                // One DATA frame (at most 64 KiB): what the
                                // transport does not take yet, h3-proto queues.
                                assert_eq!(h3.send_data(&mut t, id, body).unwrap(), body.len());
                                h3.finish(&mut t, id).unwrap();
                            }
                            streams.insert(id, index);
                        }
                    }
                    H3Event::Headers { stream, fields, .. } => {
                        responses[streams[&stream]].fields = fields;
                    }
                    H3Event::Data(stream) => loop {
                        let n = h3.recv_data(&mut t, stream, &mut buf);
                        if n == 0 {
                            break;
                        }
                        responses[streams[&stream]].body.extend_from_slice(&buf[..n]);
                    },
                    H3Event::Finished(stream) => responses[streams[&stream]].done = true,
                    // A server that answers before reading the whole
                    // request stops the rest of it (RFC 9114 §4.1); the
                    // response still comes whole.
                    H3Event::Stopped { code, .. }
                        if code == h3_proto::error::ErrorCode::H3_NO_ERROR => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        });
    }
    let now = driver.now();
    if let Some(conn) = driver.connection(handle) {
        conn.close(now, h3_proto::error::ErrorCode::H3_NO_ERROR.to_varint(), b"done");
    }
    driver.flush(now);
    responses
}

/// GET and HEAD of a file (HEAD: the same fields, no body), 404 for a
/// missing one, 405 with `allow` for other methods; request bodies are
/// read and dropped.
#[test]
fn h3_server_answers_head_and_refuses_other_methods() {
    let site = Site::new();
    let server = site.serve(&[]);
    let body = data(30_000, 3);
    let responses = h3_requests(
        server.port(),
        &[
            ("GET", "/small.txt", b""),
            ("HEAD", "/large.bin", b""),
            ("HEAD", "/nope.txt", b""),
            ("GET", "/../secret.txt", b""),
            ("POST", "/small.txt", &body),
            ("DELETE", "/small.txt", b""),
            ("GET", "/large.bin", &body),
        ],
    );
    let status = |r: &H3Response| r.field(":status").unwrap();
    let [get, head, head_missing, outside, post, delete, get_with_body] = &responses[..] else {
        panic!("{responses:?}")
    };
    assert_eq!(status(get), "200");
    assert_eq!(get.body, data(1000, 1));
    assert_eq!(get.field("content-length").as_deref(), Some("1000"));
    assert_eq!(get.field("content-type").as_deref(), Some("text/plain"));
    assert_eq!(status(head), "200");
    assert_eq!(head.field("content-length").as_deref(), Some("1048576"), "{head:?}");
    assert_eq!(head.field("content-type").as_deref(), Some("application/octet-stream"));
    assert!(head.body.is_empty(), "HEAD has no body");
    assert_eq!(status(head_missing), "404");
    assert!(head_missing.body.is_empty(), "HEAD has no body");
    assert_eq!(status(outside), "404", "outside the root looks missing");
    assert_eq!(outside.body, b"not found\n");
    for refused in [post, delete] {
        assert_eq!(status(refused), "405", "{refused:?}");
        assert_eq!(refused.field("allow").as_deref(), Some("GET, HEAD"));
        assert_eq!(refused.body, b"method not allowed\n");
    }
    assert_eq!(status(get_with_body), "200");
    assert_eq!(get_with_body.body, data(1 << 20, 2), "the request's body changed nothing");
}

#[test]
fn unknown_alpn_is_refused() {
    for args in [
        &["client", "https://127.0.0.1:9/x", "--alpn", "h3,h2", "--insecure"][..],
        &["server", "--listen", "127.0.0.1:0", "--root", ".", "--alpn", "h2"][..],
    ] {
        let out = Command::new(QUIC).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim(),
            "quic: unsupported ALPN \"h2\": this tool speaks h3 and hq-interop",
            "{args:?}"
        );
    }
}

#[test]
fn retry_chacha20_key_update_and_version_2() {
    let site = Site::new();
    let server = site.serve(&["--retry"]);
    let stdout =
        check_success(&site.client(&server, &["/large.bin"], &["--chacha20", "--key-update"]));
    check_downloaded(&site, &["large.bin"]);
    assert!(stdout.contains("key update"), "the key update shows in the summary: {stdout}");
    check_success(&site.client(&server, &["/small.txt"], &["--version", "2"]));
    check_downloaded(&site, &["small.txt"]);
}

/// Regression: `/../secret.txt` (which exists) was refused with code 0x193
/// but `/../nonexistent` answered 0x194, so a client could map the file
/// system outside the root. Every path outside the root now answers as a
/// missing file does, whether or not it exists.
#[test]
fn paths_outside_the_root_look_missing_whether_or_not_they_exist() {
    let site = Site::new();
    let www = site.path("www");
    std::fs::create_dir(www.join("sub")).unwrap();
    std::os::unix::fs::symlink(site.path("secret.txt"), www.join("out.txt")).unwrap();
    std::os::unix::fs::symlink(site.path("nothing.txt"), www.join("dangling.txt")).unwrap();
    std::os::unix::fs::symlink(site.path("."), www.join("up")).unwrap();
    let server = site.serve(&[]);
    let secret = site.path("secret.txt");
    let absolute = format!("/{}", secret.display());
    // Both protocols share the check; each says "missing" its own way.
    let answers = [
        ("h3", "not found (status 404)"),
        ("hq-interop", "not found (the server reset the stream, code 0x194)"),
    ];
    let paths = [
        "/nope.txt",
        "/../secret.txt",
        "/../nothing.txt",
        "/sub/../../secret.txt",
        "/sub/../../nothing.txt",
        // Out and back in: it would reveal the root's name.
        "/../www/small.txt",
        "/out.txt",
        "/dangling.txt",
        "/up/secret.txt",
        "/up/nothing.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        absolute.as_str(),
    ];
    for (alpn, answer) in answers {
        for path in paths {
            let (code, reason) = failure(&site.client(&server, &[path], &["--alpn", alpn]));
            assert_eq!(code, 6, "{alpn} {path}: {reason}");
            assert!(
                reason.ends_with(&format!("GET {path}: {answer}")),
                "{alpn}: {path} answers as a missing file: {reason}"
            );
        }
    }
    assert!(!site.path("out").join("secret.txt").exists(), "no file for a failed download");
    assert_eq!(out_files(&site), Vec::<String>::new(), "no temporary file left either");
    // Inside the root, `..` and `.` still work.
    check_success(&site.client(&server, &["/sub/../small.txt", "/./large.bin"], &[]));
    check_downloaded(&site, &["small.txt", "large.bin"]);
}

#[test]
fn server_prints_a_line_when_a_connection_ends() {
    let site = Site::new();
    let mut server = site.serve_piped(&[]);
    let stderr = BufReader::new(server.child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next_line = || rx.recv_timeout(std::time::Duration::from_secs(5)).expect("a stderr line");
    // HTTP/3: the close code named, and what QPACK did on the connection.
    check_success(&site.client(&server, &["/small.txt", "/large.bin"], &[]));
    let line = next_line();
    assert!(line.starts_with("quic: 127.0.0.1:"), "the peer's address: {line}");
    assert!(
        line.contains(" closed: closed by the peer's application: code 0x100 (H3_NO_ERROR): done; h3, qpack: encoder table 4096 bytes, decoder inserts "),
        "the reason: {line}"
    );
    // The client's encoder inserted its `:authority` and `user-agent`
    // lines for its second request.
    assert!(qpack_figures(&line).1 >= 2, "{line}");
    check_success(&site.client(&server, &["/small.txt"], &["--alpn", "hq-interop"]));
    let line = next_line();
    assert!(
        line.ends_with(" closed: closed by the peer's application: code 0: done"),
        "the reason: {line}"
    );
    // A client that rejects the certificate: the server learns why.
    let output = Command::new(QUIC)
        .args(["client", &format!("https://localhost:{}/small.txt", server.port())])
        .arg("--output-dir")
        .arg(site.path("out2"))
        .output()
        .unwrap();
    assert_eq!(failure(&output).0, 5);
    let line = next_line();
    assert!(line.contains(" closed: closed by the peer: CRYPTO_ERROR"), "{line}");
    // A client whose download fails closes its connection at once (the
    // server would otherwise wait for its 30 s idle timeout).
    assert_eq!(failure(&site.client(&server, &["/nope.txt"], &["--alpn", "hq-interop"])).0, 6);
    let line = next_line();
    assert!(
        line.ends_with(" closed: closed by the peer's application: code 1: download failed"),
        "{line}"
    );
    assert_eq!(failure(&site.client(&server, &["/nope.txt"], &[])).0, 6);
    let line = next_line();
    assert!(
        line.contains(" closed: closed by the peer's application: code 0x100 (H3_NO_ERROR): download failed; h3, "),
        "{line}"
    );
    assert!(rx.try_recv().is_err(), "one line per connection");
}

/// SIGINT closes the open connections (the client learns why at once),
/// completes their qlog files, and exits 0. Over HTTP/3 a GOAWAY comes
/// first; a response still in flight half a second later is cut off by
/// the close (H3_NO_ERROR).
#[test]
fn sigint_shuts_the_server_down_gracefully() {
    let site = Site::new();
    // Sparse: as long to send as a real file, nothing on disk.
    std::fs::File::create(site.path("www").join("huge.bin")).unwrap().set_len(4 << 30).unwrap();
    let qlog = site.path("qlog-shutdown");
    let mut server = site.serve_piped(&["--qlog-dir", qlog.to_str().unwrap()]);
    let out = site.path("out");
    let client = Command::new(QUIC)
        .args(["client", &format!("https://localhost:{}/huge.bin", server.port())])
        .arg("--output-dir")
        .arg(&out)
        .arg("--ca")
        .arg(site.path("cert.pem"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal once data is arriving.
    let started = std::time::Instant::now();
    while out_part_bytes(&out) == 0 {
        assert!(started.elapsed().as_secs() < 20, "the download starts");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the server exits cleanly");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("quic: shutting down: closing 1 connection(s)"), "{stderr}");
    let client = client.wait_with_output().unwrap();
    let (code, reason) = failure(&client);
    assert_eq!(code, 3, "closed by the peer: {reason}");
    assert!(
        reason.contains(
            "connection lost: closed by the peer's application: code 0x100 (H3_NO_ERROR): server shutting down"
        ),
        "{reason}"
    );
    let entry = std::fs::read_dir(&qlog)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("_server.sqlog"))
        .expect("the server's qlog file");
    let log = std::fs::read_to_string(entry).unwrap();
    assert!(log.ends_with("}\n"), "complete records");
    assert!(log.contains("\"name\":\"quic:connection_closed\""), "the close is logged");
    // The GOAWAY went out before the close (the H3 events are in the
    // connection's qlog).
    let goaway = log.find("\"frame_type\":\"goaway\"").expect("a GOAWAY in the qlog");
    assert!(goaway < log.find("quic:connection_closed").unwrap(), "GOAWAY, then the close");
}

/// The bytes in the part files of the output directory.
fn out_part_bytes(out: &Path) -> u64 {
    std::fs::read_dir(out)
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[test]
fn missing_file_fails_with_a_clear_message() {
    let site = Site::new();
    let server = site.serve(&[]);
    let (code, reason) = failure(&site.client(&server, &["/nope.txt"], &[]));
    assert_eq!(code, 6, "{reason}");
    assert!(reason.contains("GET /nope.txt: not found"), "{reason}");
    assert!(!site.path("out").join("nope.txt").exists(), "no file for a failed download");
}

/// The names of the files in the site's output directory.
fn out_files(site: &Site) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(site.path("out"))
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn failed_download_leaves_no_file_but_completed_ones_stay() {
    let site = Site::new();
    let server = site.serve(&[]);
    // small.txt completes; nope.txt fails the run.
    let output = site.client(&server, &["/small.txt", "/large.bin", "/nope.txt"], &[]);
    let (code, reason) = failure(&output);
    assert_eq!(code, 6, "{reason}");
    let files = out_files(&site);
    assert!(!files.iter().any(|f| f == "nope.txt" || f.ends_with(".part")), "{files:?}");
    for name in &files {
        assert_eq!(
            sha256(&site.path("out").join(name)),
            sha256(&site.path("www").join(name)),
            "{name} is only there complete"
        );
    }
    // A run that succeeds leaves exactly the files asked for.
    check_success(&site.client(&server, &["/small.txt", "/large.bin"], &[]));
    assert_eq!(out_files(&site), ["large.bin", "small.txt"]);
    check_downloaded(&site, &["small.txt", "large.bin"]);
}

#[test]
fn untrusted_certificate_is_rejected() {
    let site = Site::new();
    let server = site.serve(&[]);
    let other = site.path("other.pem");
    std::fs::write(&other, certificate().0).unwrap();
    let output = Command::new(QUIC)
        .args(["client", &format!("https://localhost:{}/small.txt", server.port())])
        .arg("--output-dir")
        .arg(site.path("out"))
        .arg("--ca")
        .arg(&other)
        .output()
        .unwrap();
    let (code, reason) = failure(&output);
    assert_eq!(code, 5, "{reason}");
    assert!(reason.contains("TLS handshake failed"), "{reason}");
}

#[test]
fn key_log_file_gets_the_secrets() {
    let site = Site::new();
    let server = site.serve(&[]);
    let keylog = site.path("keys.log");
    let output = Command::new(QUIC)
        .args(["client", &format!("https://127.0.0.1:{}/small.txt", server.port()), "--insecure"])
        .arg("--output-dir")
        .arg(site.path("out"))
        .env("SSLKEYLOGFILE", &keylog)
        .output()
        .unwrap();
    check_success(&output);
    let log = std::fs::read_to_string(&keylog).unwrap();
    assert!(log.contains("CLIENT_TRAFFIC_SECRET_0 "), "{log}");
}

#[test]
fn qlog_dir_gets_a_file_per_connection() {
    let site = Site::new();
    let server = site.serve(&[]);
    let qlog = site.path("qlog");
    let qlog_arg = qlog.to_str().unwrap();
    check_success(&site.client(&server, &["/small.txt"], &["--qlog-dir", qlog_arg]));
    let names: Vec<String> = std::fs::read_dir(&qlog)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("_client.sqlog")), "{names:?}");
    let file = std::fs::read(qlog.join(&names[0])).unwrap();
    assert_eq!(file.first(), Some(&0x1e), "JSON-SEQ records");
    let text = String::from_utf8(file).unwrap();
    assert!(text.contains("\"qlog_version\":\"0.3\",\"qlog_format\":\"JSON-SEQ\""), "{text}");
    assert!(text.contains("\"name\":\"quic:packet_sent\""));
}

/// tshark, from the interop peers' environment (conformance/peers).
fn tshark() -> PathBuf {
    match conformance::peers::PeerEnv::load() {
        Ok(env) => env.tshark,
        Err(e) => panic!(
            "the trace tests need tshark, which `bash conformance/peers/install.sh` \
             installs: {e}"
        ),
    }
}

/// The QUIC frame types tshark decodes in `trace`, per packet, with no
/// key log but the trace's own Decryption Secrets Blocks.
fn tshark_frame_types(tshark: &Path, trace: &Path) -> Vec<Vec<u64>> {
    let output = Command::new(tshark)
        .arg("-r")
        .arg(trace)
        .args(["-Y", "quic", "-T", "fields", "-e", "quic.frame_type"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tshark.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tshark failed on {}: {}\n{stdout}",
        trace.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let head: Vec<&str> = stdout.lines().take(12).collect();
    eprintln!(
        "tshark -r {} -Y quic -T fields -e quic.frame_type (first lines):\n{}",
        trace.display(),
        head.join("\n")
    );
    stdout
        .lines()
        .map(|line| line.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .collect()
}

/// `quic client --trace` and `quic server --trace-dir` write pcapng files
/// in which tshark, given nothing else, decrypts every packet: the TLS
/// secrets are in the files' Decryption Secrets Blocks, ahead of the
/// packets they open.
#[test]
fn traces_decrypt_in_tshark_without_a_key_log() {
    const CRYPTO: u64 = 0x06;
    const HANDSHAKE_DONE: u64 = 0x1e;
    let stream = |t: &u64| (0x08..=0x0f).contains(t);
    let tshark = tshark();
    let site = Site::new();
    let dir = site.path("traces");
    let mut server = site.serve(&["--trace-dir", dir.to_str().unwrap()]);
    let client_trace = site.path("client.pcapng");
    let args = ["--trace", client_trace.to_str().unwrap()];
    check_success(&site.client(&server, &["/small.txt", "/large.bin"], &args));
    // SIGINT: the server closes its connections and ends its trace cleanly.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert_eq!(server.child.wait().unwrap().code(), Some(0), "the server exits cleanly");
    let names: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(names.len(), 1, "one trace for the server's socket: {names:?}");
    let server_trace = &names[0];
    let name = server_trace.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with(&format!("_{}_server.pcapng", server.port())), "{name}");

    // The command line is recorded (record type 7, arguments NUL-separated).
    for (trace, command) in [(&client_trace, "client"), (server_trace, "server")] {
        let file = std::fs::read(trace).unwrap();
        let wanted = format!("\0{command}\0");
        assert!(
            file.windows(wanted.len()).any(|w| w == wanted.as_bytes()),
            "{}: the `quic {command}` command line",
            trace.display()
        );
    }
    for trace in [&client_trace, server_trace] {
        let packets = tshark_frame_types(&tshark, trace);
        assert!(packets.len() > 20, "{}: {} QUIC packets", trace.display(), packets.len());
        let frames: Vec<u64> = packets.iter().flatten().copied().collect();
        assert!(frames.contains(&CRYPTO), "{}: CRYPTO frames", trace.display());
        assert!(frames.contains(&HANDSHAKE_DONE), "{}: 1-RTT HANDSHAKE_DONE", trace.display());
        assert!(frames.iter().any(stream), "{}: 1-RTT STREAM frames", trace.display());
        // Every packet decrypted: each shows at least one frame.
        let opaque = packets.iter().filter(|p| p.is_empty()).count();
        assert_eq!(opaque, 0, "{}: packets tshark could not decrypt", trace.display());
    }
}

#[test]
fn qlog_format_qvis_uses_the_names_qvis_draws() {
    let site = Site::new();
    let server = site.serve(&[]);
    let qlog = site.path("qlog-qvis");
    let qlog_arg = qlog.to_str().unwrap();
    let args = ["--qlog-dir", qlog_arg, "--qlog-format", "qvis"];
    check_success(&site.client(&server, &["/small.txt"], &args));
    let entry = std::fs::read_dir(&qlog).unwrap().next().unwrap().unwrap();
    let text = std::fs::read_to_string(entry.path()).unwrap();
    for name in ["transport:packet_sent", "transport:packet_received", "recovery:metrics_updated"] {
        assert!(text.contains(&format!("\"name\":\"{name}\"")), "{name} in {text}");
    }
    assert!(!text.contains("\"name\":\"quic:"), "{text}");
}

/// A demo file larger than the free space is refused before it is written.
#[test]
fn demo_larger_than_the_disk_is_refused_up_front() {
    let site = Site::new();
    let tmp = site.path("tmp-full");
    std::fs::create_dir(&tmp).unwrap();
    let output = Command::new(QUIC)
        .args(["demo", "--size", "1000000000"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let (code, reason) = failure(&output);
    assert_eq!(code, 1, "{reason}");
    assert!(reason.contains("GiB free"), "{reason}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "nothing left behind");
}

/// An interrupted demo removes its generated file.
#[test]
fn interrupted_demo_leaves_no_file_behind() {
    let site = Site::new();
    let tmp = site.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let demo = Command::new(QUIC)
        .args(["demo", "--size", "1000"])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dir = tmp.join(format!("quic-demo-{}", demo.id()));
    let started = std::time::Instant::now();
    while std::fs::metadata(dir.join("demo.bin")).map_or(0, |m| m.len()) == 0 {
        assert!(started.elapsed().as_secs() < 20, "the demo writes its file");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = demo.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let output = demo.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "128 + SIGINT");
    assert!(String::from_utf8_lossy(&output.stderr).contains("quic: interrupted"));
    assert!(!dir.exists(), "the generated file is removed");
}

#[test]
fn demo_completes() {
    let output = Command::new(QUIC).args(["demo", "--size", "5"]).output().unwrap();
    let stdout = check_success(&output);
    assert!(stdout.contains("SHA-256 verified (5 MiB"), "{stdout}");
}

/// The figures of `quic perf`'s line for one mode (`on` or `off`): every
/// number on it, which must all be positive.
fn perf_figures(stdout: &str, mode: &str) -> Vec<f64> {
    let prefix = format!("GSO/GRO {mode}:");
    let lines: Vec<_> = stdout.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 1, "one {prefix} run: {stdout}");
    let figures: Vec<f64> = lines[0]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .map(|w| w.trim_matches('.').parse().unwrap())
        .collect();
    // MB/s, bytes, seconds, 2 CPU figures, 4 datagrams-per-call figures.
    assert_eq!(figures.len(), 9, "{}", lines[0]);
    assert!(figures.iter().all(|&f| f > 0.0), "positive figures: {}", lines[0]);
    assert_eq!(figures[1], f64::from(8u32 << 20), "the whole file: {}", lines[0]);
    figures
}

#[test]
fn perf_measures_with_and_without_gso() {
    let output = Command::new(QUIC).args(["perf", "--size", "8"]).output().unwrap();
    let stdout = check_success(&output);
    assert!(stdout.contains("no SHA-256"), "{stdout}");
    let on = perf_figures(&stdout, "on");
    let off = perf_figures(&stdout, "off");
    assert!(on[0] > 0.0 && off[0] > 0.0);
    // Without GSO and GRO every send and receive carries one datagram.
    assert!(off[5..].iter().all(|&f| f == 1.0), "{stdout}");

    let output = Command::new(QUIC).args(["perf", "--size", "8", "--no-gso"]).output().unwrap();
    let stdout = check_success(&output);
    assert!(!stdout.contains("GSO/GRO on:"), "only the off run: {stdout}");
    perf_figures(&stdout, "off");
}
