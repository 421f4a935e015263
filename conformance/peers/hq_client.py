#!/usr/bin/env python3
"""hq-interop client (aioquic): downloads files the way the QUIC interop runner does.

    hq_client.py https://127.0.0.1:4433/1K.bin https://127.0.0.1:4433/1M.bin \\
        --output-dir /tmp/got --ca "$QUIC_TEST_PEERS_CA"

ALPN "hq-interop" (HTTP/0.9 style): for each URL the client opens a
bidirectional stream, sends "GET /path\\r\\n" and FIN, and takes every byte the
server sends back on that stream, up to its FIN, as the file.  All URLs must
name the same server; they are fetched concurrently on one connection.

A file is written to OUTPUT_DIR/<last path segment> only once its stream has
ended with FIN; an incomplete download leaves no file behind.

Output: progress and errors on stderr, and one summary line on stdout:
    hq-client: OK 2/2 files, 1049600 bytes in 0.104 s ...
    hq-client: FAILED 1/2 files ...: /missing.bin: stream reset by the server (error 0x10)
Exit status: 0 only if every file arrived complete; 1 if not (or on a
connection error or timeout); 2 for bad arguments.

Loopback only: the server address must be 127.0.0.0/8 or ::1 (or a name that
resolves to one, such as localhost), and the client's socket is bound to the
loopback address of the same family.

Certificate: --ca FILE verifies the server against that CA (default:
$QUIC_TEST_PEERS_CA when set, else the certifi bundle); --insecure skips
verification.  The TLS server name is the URL's host unless --sni is given; an
IP address is matched against the certificate's IP subjectAltNames.
"""

import argparse
import asyncio
import ipaddress
import os
import socket
import ssl
import sys
import time
from urllib.parse import unquote, urlsplit

from aioquic_env import require_aioquic  # noqa: E402  (before any aioquic import)

require_aioquic("hq-client", __file__)

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    StreamDataReceived,
    StreamReset,
)
from aioquic.quic.logger import QuicFileLogger
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite, Epoch

ALPN = "hq-interop"
T0 = time.monotonic()

TRANSPORT_ERRORS = {
    0x0: "NO_ERROR", 0x1: "INTERNAL_ERROR", 0x2: "CONNECTION_REFUSED", 0x3: "FLOW_CONTROL_ERROR",
    0x4: "STREAM_LIMIT_ERROR", 0x5: "STREAM_STATE_ERROR", 0x6: "FINAL_SIZE_ERROR",
    0x7: "FRAME_ENCODING_ERROR", 0x8: "TRANSPORT_PARAMETER_ERROR", 0x9: "CONNECTION_ID_LIMIT_ERROR",
    0xA: "PROTOCOL_VIOLATION", 0xB: "INVALID_TOKEN", 0xC: "APPLICATION_ERROR",
    0xD: "CRYPTO_BUFFER_EXCEEDED", 0xE: "KEY_UPDATE_ERROR", 0xF: "AEAD_LIMIT_REACHED",
    0x10: "NO_VIABLE_PATH", 0x11: "VERSION_NEGOTIATION_ERROR",
}
TLS_ALERTS = {
    10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure", 42: "bad_certificate",
    43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 50: "decode_error",
    51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
    109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
    116: "certificate_required", 120: "no_application_protocol",
}


def log(msg: str) -> None:
    print(f"[hq-client +{time.monotonic() - T0:6.3f}s] {msg}", file=sys.stderr, flush=True)


def describe_close(event: ConnectionTerminated) -> str:
    code = event.error_code
    if 0x100 <= code <= 0x1FF:
        name = f"CRYPTO_ERROR, TLS alert {code - 0x100} {TLS_ALERTS.get(code - 0x100, '')}".rstrip()
    else:
        name = TRANSPORT_ERRORS.get(code, "unknown code")
    text = f"error 0x{code:x} ({name})"
    if event.frame_type is not None:
        text += f", frame type 0x{event.frame_type:x}"
    if event.reason_phrase:
        text += f", reason {event.reason_phrase!r}"
    return text


class Download:
    """One URL: its request stream, the partial file and the outcome."""

    def __init__(self, path: str, dest: str):
        self.path = path
        self.dest = dest
        self.part = os.path.join(os.path.dirname(dest), "." + os.path.basename(dest) + ".part")
        self.fh = open(self.part, "wb")
        self.nbytes = 0
        self.error = None  # why it failed, once it did
        self.done = asyncio.get_running_loop().create_future()

    def feed(self, data: bytes, fin: bool) -> None:
        if self.done.done():
            return
        self.fh.write(data)
        self.nbytes += len(data)
        if fin:
            self.fh.close()
            os.replace(self.part, self.dest)
            self.done.set_result(True)

    def fail(self, why: str) -> None:
        if self.done.done():
            return
        self.error = why
        self.fh.close()
        try:
            os.unlink(self.part)
        except FileNotFoundError:
            pass
        self.done.set_result(False)


class HqClientProtocol(QuicConnectionProtocol):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.downloads = {}  # stream id -> Download
        self.ready = asyncio.get_running_loop().create_future()  # True: handshake done; False: closed first
        self.handshake = None
        self.terminated = None
        self.key_update = False

    def request(self, dl: Download) -> None:
        sid = self._quic.get_next_available_stream_id()
        self.downloads[sid] = dl
        self._quic.send_stream_data(sid, f"GET {dl.path}\r\n".encode(), end_stream=True)

    def quic_event_received(self, event) -> None:
        if isinstance(event, HandshakeCompleted):
            self.handshake = event
            if not self.ready.done():
                self.ready.set_result(True)
            if self.key_update:
                # aioquic defers it until the handshake is confirmed (RFC 9001 §6.1).
                self._quic.request_key_update()
        elif isinstance(event, StreamDataReceived):
            dl = self.downloads.get(event.stream_id)
            if dl is not None:
                dl.feed(event.data, event.end_stream)
        elif isinstance(event, StreamReset):
            dl = self.downloads.get(event.stream_id)
            if dl is not None:
                dl.fail(f"stream reset by the server (error 0x{event.error_code:x}) after {dl.nbytes} bytes")
        elif isinstance(event, ConnectionTerminated):
            self.terminated = event
            if not self.ready.done():
                self.ready.set_result(False)
            for dl in self.downloads.values():
                dl.fail(f"connection closed after {dl.nbytes} bytes: {describe_close(event)}")

    def details(self) -> str:
        """Negotiated parameters, for the summary (read from aioquic internals if present)."""
        q = self._quic
        parts = [f"alpn={self.handshake.alpn_protocol if self.handshake else None}"]
        version = getattr(q, "_version", None)
        if version is not None:
            parts.append(f"version=0x{version:08x}")
        schedule = getattr(getattr(q, "tls", None), "key_schedule", None)
        if schedule is not None:
            parts.append(f"cipher={schedule.cipher_suite.name}")
        retries = getattr(q, "_retry_count", None)
        if retries is not None:
            parts.append(f"retry={'yes' if retries else 'no'}")
        if self.key_update:
            one_rtt = getattr(q, "_cryptos", {}).get(Epoch.ONE_RTT)
            phase = getattr(getattr(one_rtt, "send", None), "key_phase", None)
            parts.append(f"key_update={'done' if phase == 1 else 'not done'}")
        return " ".join(parts)


def parse_urls(urls):
    """-> (host, port, [path]) or raise ValueError."""
    origin, paths = None, []
    for url in urls:
        u = urlsplit(url)
        if u.scheme != "https" or not u.hostname:
            raise ValueError(f"{url!r} is not an https://HOST:PORT/PATH URL")
        this = (u.hostname, u.port or 443)
        if origin is None:
            origin = this
        elif this != origin:
            raise ValueError(f"{url!r}: every URL must name the same server as the first ({origin[0]}:{origin[1]})")
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        paths.append(path)
    return origin[0], origin[1], paths


async def run(args) -> int:
    try:
        host, port, paths = parse_urls(args.urls)
    except ValueError as e:
        print(f"hq-client: error: {e}", file=sys.stderr)
        return 2
    names, seen = [], {}
    for p in paths:
        name = os.path.basename(unquote(p.split("?", 1)[0])) or "index.html"
        if name in seen:
            print(f"hq-client: error: {p} and {seen[name]} would both be saved as {name}", file=sys.stderr)
            return 2
        seen[name] = p
        names.append(name)

    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as e:
        print(f"hq-client: error: cannot resolve {host}: {e}", file=sys.stderr)
        return 1
    family, addr = infos[0][0], infos[0][4]
    if not ipaddress.ip_address(addr[0]).is_loopback:
        print(f"hq-client: error: refusing {host} ({addr[0]}): only loopback addresses are allowed", file=sys.stderr)
        return 2

    cfg = QuicConfiguration(
        is_client=True,
        alpn_protocols=[ALPN],
        server_name=args.sni or host,
        max_data=128 * 1024 * 1024,
        max_stream_data=64 * 1024 * 1024,
        idle_timeout=30.0,
    )
    if args.insecure:
        cfg.verify_mode = ssl.CERT_NONE
    elif args.ca:
        cfg.load_verify_locations(cafile=args.ca)
    if args.chacha20:
        cfg.cipher_suites = [CipherSuite.CHACHA20_POLY1305_SHA256]
    cfg.supported_versions = [QuicProtocolVersion.VERSION_2 if args.version == "2" else QuicProtocolVersion.VERSION_1]
    if args.keylog:
        cfg.secrets_log_file = open(args.keylog, "a", buffering=1)
    if args.quic_log:
        os.makedirs(args.quic_log, exist_ok=True)
        cfg.quic_logger = QuicFileLogger(args.quic_log)

    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
    conn = QuicConnection(configuration=cfg)
    transport, proto = await loop.create_datagram_endpoint(lambda: HqClientProtocol(conn), sock=sock)
    proto.key_update = args.key_update
    downloads = []
    problem = None
    t_start = time.monotonic()
    try:
        proto.connect(addr)
        try:
            connected = await asyncio.wait_for(asyncio.shield(proto.ready), args.timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(f"no handshake with {addr[0]} port {port} within {args.timeout:g} s (is the server running?)")
        if not connected:
            raise RuntimeError(
                "the connection closed before the handshake completed: " + describe_close(proto.terminated)
            )
        log(f"connected to {addr[0]} port {port}: {proto.details()}")
        for p, name in zip(paths, names):
            dl = Download(p, os.path.join(args.output_dir, name))
            downloads.append(dl)
            proto.request(dl)
        proto.transmit()
        remaining = max(0.1, args.timeout - (time.monotonic() - t_start))
        try:
            await asyncio.wait_for(asyncio.gather(*(d.done for d in downloads)), remaining)
        except asyncio.TimeoutError:
            for d in downloads:
                d.fail(f"timed out after {args.timeout:g} s with {d.nbytes} bytes")
    except RuntimeError as e:
        problem = str(e)
    finally:
        elapsed = time.monotonic() - t_start
        proto.close()
        try:
            await asyncio.wait_for(proto.wait_closed(), 1.0 if proto.handshake else 0.2)
        except asyncio.TimeoutError:
            pass
        transport.close()

    ok_files = [d for d in downloads if d.error is None and d.done.done()]
    total = sum(d.nbytes for d in ok_files)
    for d in downloads:
        if d.error is None:
            log(f"{d.path}: {d.nbytes} bytes -> {d.dest}")
        else:
            log(f"{d.path}: FAILED: {d.error}")
    if problem is None and len(ok_files) != len(paths):
        bad = next(d for d in downloads if d.error is not None)
        problem = f"{bad.path}: {bad.error}"
    rate = total / elapsed / 1e6 if elapsed > 0 else 0.0
    verdict = "OK" if problem is None else "FAILED"
    line = (
        f"hq-client: {verdict} {len(ok_files)}/{len(paths)} files, {total} bytes in {elapsed:.3f} s "
        f"({rate:.2f} MB/s); {proto.details()}"
    )
    if problem is not None:
        print(f"hq-client: error: {problem}", file=sys.stderr)
        line += f"; {problem}"
    print(line, flush=True)
    return 0 if problem is None else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("urls", nargs="+", metavar="URL", help="https://HOST:PORT/PATH (all on one server)")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="where to write the files (created if needed)")
    verify = p.add_mutually_exclusive_group()
    verify.add_argument("--ca", metavar="FILE", default=os.environ.get("QUIC_TEST_PEERS_CA"),
                        help="PEM CA file to verify the server with (default: $QUIC_TEST_PEERS_CA)")
    verify.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
    p.add_argument("--sni", metavar="NAME", help="TLS server name (default: the URL's host)")
    p.add_argument("--keylog", metavar="FILE", help="append TLS secrets to FILE (SSLKEYLOGFILE format)")
    p.add_argument("--quic-log", metavar="DIR", help="write a qlog of the connection into DIR")
    p.add_argument("--chacha20", action="store_true", help="offer only TLS_CHACHA20_POLY1305_SHA256")
    p.add_argument("--key-update", action="store_true", help="initiate a key update once the handshake is confirmed")
    p.add_argument("--version", choices=["1", "2"], default="1", help="QUIC version to use: 1 (RFC 9000) or 2 (RFC 9369)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="limit for the handshake and all downloads together (default: %(default)s)")
    args = p.parse_args()
    if args.ca and not args.insecure and not os.path.isfile(args.ca):
        p.error(f"--ca {args.ca}: no such file")
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as e:
        p.error(f"--output-dir {args.output_dir}: {e}")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("hq-client: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
