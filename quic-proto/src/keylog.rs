//! TLS secrets in the NSS key log format (the `SSLKEYLOGFILE` format that
//! Wireshark and tshark read), for clients and servers alike.
//!
//! [`NssKeyLog`] implements rustls' `KeyLog`: set it as the `key_log` of a
//! `rustls::ClientConfig` or `ServerConfig`. It writes to a sink the driver
//! provides (a file opened for `SSLKEYLOGFILE` or `--keylog`), so the core
//! opens no file itself. [`KeyLogLine::parse`] reads lines back, which is
//! how a recorded trace gets decrypted: the 1-RTT secrets feed
//! `crypto::DirectionalKeys::from_secret`.

use core::fmt;
use std::io::Write;
use std::sync::Mutex;

/// A rustls key log writing NSS key log lines to a sink.
pub struct NssKeyLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl NssKeyLog {
    /// Logs to `out`, one line per secret, flushed after each line so that
    /// a capture tool reading the file concurrently sees secrets in time.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out: Mutex::new(out) }
    }
}

impl fmt::Debug for NssKeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NssKeyLog(..)")
    }
}

impl rustls::KeyLog for NssKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = nss_line(label, client_random, secret);
        // A poisoned lock only means another thread panicked mid-write; the
        // sink is still usable. Logging is best effort: an I/O error must not
        // break the handshake.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }
}

/// One key log line: `LABEL <client random hex> <secret hex>\n`.
pub fn nss_line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    let mut line =
        String::with_capacity(label.len() + 2 + 2 * (client_random.len() + secret.len()) + 1);
    line.push_str(label);
    line.push(' ');
    push_hex(&mut line, client_random);
    line.push(' ');
    push_hex(&mut line, secret);
    line.push('\n');
    line
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

/// A parsed key log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLogLine {
    /// The secret's label, e.g. `CLIENT_TRAFFIC_SECRET_0`.
    pub label: String,
    /// The ClientHello random that identifies the TLS session.
    pub client_random: Vec<u8>,
    /// The secret.
    pub secret: Vec<u8>,
}

impl KeyLogLine {
    /// Parses one line (without or with its newline); `None` for comments,
    /// blank lines and anything malformed.
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut parts = line.split(' ');
        let label = parts.next()?.to_owned();
        let client_random = from_hex(parts.next()?)?;
        let secret = from_hex(parts.next()?)?;
        if parts.next().is_some() || client_random.len() != 32 || secret.is_empty() {
            return None;
        }
        Some(Self { label, client_random, secret })
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes().chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::{CipherSuite, DirectionalKeys, open_payload, remove_header_protection};
    use crate::frame::{Frame, Frames};
    use crate::packet::{PacketNumberLen, PartialDecode, ProtectedHeader, decode_packet_number};
    use crate::stream_id::{Dir, Side};
    use crate::testing::pair::{DEFAULT_ALPN, Direction, Pair};
    use crate::testing::{TestPki, client_config, server_config};
    use crate::version::Version;

    /// A sink tests can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn lines(&self) -> Vec<KeyLogLine> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().filter_map(KeyLogLine::parse).collect()
        }
    }

    #[test]
    fn lines_round_trip_and_junk_is_refused() {
        let line = nss_line("CLIENT_TRAFFIC_SECRET_0", &[0xab; 32], &[0x01, 0xff]);
        assert!(line.starts_with("CLIENT_TRAFFIC_SECRET_0 abab"));
        assert!(line.ends_with(" 01ff\n"));
        let parsed = KeyLogLine::parse(&line).unwrap();
        assert_eq!(parsed.client_random, vec![0xab; 32]);
        assert_eq!(parsed.secret, vec![0x01, 0xff]);
        for junk in ["", "# comment", "LABEL", "LABEL zz 00", "LABEL 00 00", "A b c d"] {
            assert_eq!(KeyLogLine::parse(junk), None, "{junk:?}");
        }
    }

    /// Both sides log the same secrets for one session, and the logged
    /// client 1-RTT secret decrypts a packet the client sent: what a
    /// Wireshark user, or a trace replay, relies on.
    #[test]
    fn logged_secrets_decrypt_the_clients_packets() {
        let seed = 71;
        let pki = TestPki::new(seed);
        let (client_log, server_log) = (Shared::default(), Shared::default());
        let mut client_tls = client_config(&pki, &[DEFAULT_ALPN], seed);
        client_tls.key_log = Arc::new(NssKeyLog::new(Box::new(client_log.clone())));
        let mut server_tls = server_config(&pki, &[DEFAULT_ALPN], seed + 1);
        server_tls.key_log = Arc::new(NssKeyLog::new(Box::new(server_log.clone())));
        let mut pair = Pair::builder(seed)
            .client_tls(Arc::new(client_tls))
            .server_tls(Arc::new(server_tls))
            .build();
        pair.handshake();
        let data = crate::testing::pair::payload(5_000, 1);
        assert_eq!(pair.transfer(Side::Client, Dir::Uni, &data), data);

        let (client_lines, server_lines) = (client_log.lines(), server_log.lines());
        let labels: Vec<&str> = client_lines.iter().map(|l| l.label.as_str()).collect();
        for label in [
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
        ] {
            assert!(labels.contains(&label), "client logged {label}: {labels:?}");
            let c = client_lines.iter().find(|l| l.label == label).unwrap();
            let s = server_lines.iter().find(|l| l.label == label).expect("server logs it too");
            assert_eq!((&c.client_random, &c.secret), (&s.client_random, &s.secret), "{label}");
        }

        let secret =
            &client_lines.iter().find(|l| l.label == "CLIENT_TRAFFIC_SECRET_0").unwrap().secret;
        let suites: &[CipherSuite] = if secret.len() == 48 {
            &[CipherSuite::Aes256GcmSha384]
        } else {
            &[CipherSuite::Aes128GcmSha256, CipherSuite::ChaCha20Poly1305Sha256]
        };
        let short: Vec<Vec<u8>> = pair
            .trace()
            .iter()
            .filter(|r| r.direction == Direction::ClientToServer && r.data[0] & 0x80 == 0)
            .map(|r| r.data.clone())
            .collect();
        assert!(!short.is_empty(), "the client sent 1-RTT packets");
        let mut stream_bytes = 0;
        for datagram in &short {
            let decode = PartialDecode::parse(datagram, 8, false).expect("short header");
            assert!(matches!(decode.header(), ProtectedHeader::Short(_)));
            let pn_offset = decode.pn_offset().unwrap();
            let opened = suites.iter().find_map(|suite| {
                let keys = DirectionalKeys::from_secret(*suite, Version::V1, secret).ok()?;
                let mut packet = datagram.clone();
                let (pn_len, truncated) =
                    remove_header_protection(&keys.header, &mut packet, pn_offset).ok()?;
                let pn = decode_packet_number(None, truncated, PacketNumberLen::new(pn_len)?);
                let header_len = pn_offset + pn_len;
                let len =
                    open_payload(&keys.packet, pn.into_inner(), &mut packet, header_len).ok()?;
                Some(packet[header_len..header_len + len].to_vec())
            });
            let payload = opened.expect("the logged secret opens the client's packet");
            for frame in Frames::new(&payload) {
                if let Frame::Stream(s) = frame.expect("valid frames") {
                    stream_bytes += s.data.len();
                }
            }
        }
        assert!(stream_bytes >= data.len(), "decrypted {stream_bytes} stream bytes");
    }
}
