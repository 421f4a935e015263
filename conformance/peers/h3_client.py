#!/usr/bin/env python3
"""HTTP/3 client (aioquic's H3Connection), with the QPACK dynamic table on.

    h3_client.py https://127.0.0.1:4433/1K.bin https://127.0.0.1:4433/1M.bin \\
        --output-dir /tmp/got --ca "$QUIC_TEST_PEERS_CA"

ALPN "h3" only.  All URLs must name the same server; after the handshake
the client waits (up to 2 s) for the server's SETTINGS, so that its QPACK
encoder may use the table the server allows, then sends every GET at once
on one connection.  A file is written to OUTPUT_DIR/<last path segment>
only when its response was 200, its stream ended, and its length matched
any content-length; an incomplete or refused download leaves no file.

QPACK: the decoder's table capacity and blocked-streams limit, announced in
our SETTINGS, are --qpack-capacity (default 4096) and --qpack-blocked
(default 16).  The encoder (ls-qpack) uses whatever the server's SETTINGS
allow.

Output: progress and errors on stderr; on stdout, four lines:
    h3-client: OK 2/2 files, 1049600 bytes in 0.144 s (7.29 MB/s); alpn=h3 version=0x00000001 ...
    h3-client: peer SETTINGS: QPACK_MAX_TABLE_CAPACITY=4096 QPACK_BLOCKED_STREAMS=16 ...
    h3-client: dynamic table used by our encoder: yes (2/2 sections), by the peer's encoder: yes (...)
    h3-client: qpack: local_capacity=4096 local_blocked=16 peer_capacity=4096 ... received_dynamic=2 ...
(the first says FAILED and why when something failed; the qpack words are
read by conformance::peers::QpackStats, see h3_peer.py for what they count).
Exit status: 0 only if every file arrived complete with status 200; 1 if
not (non-200, reset, connection error, timeout); 2 for bad arguments.

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

require_aioquic("h3-client", __file__)

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.h3.connection import ErrorCode
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamReset
from aioquic.quic.logger import QuicFileLogger
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite, Epoch

from h3_peer import DEFAULT_BLOCKED_STREAMS, DEFAULT_TABLE_CAPACITY, QpackH3Connection, describe_close, describe_settings

ALPN = "h3"
USER_AGENT = b"conformance-h3-client (aioquic)"
SETTINGS_WAIT = 2.0
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[h3-client +{time.monotonic() - T0:6.3f}s] {msg}", file=sys.stderr, flush=True)


class Download:
    """One URL: its request stream, the partial file and the outcome."""

    def __init__(self, path: str, dest: str):
        self.path = path
        self.dest = dest
        self.part = os.path.join(os.path.dirname(dest), "." + os.path.basename(dest) + ".part")
        self.fh = open(self.part, "wb")
        self.status = None
        self.content_length = None
        self.nbytes = 0
        self.refusal = b""  # the start of a non-200 response's body
        self.error = None  # why it failed, once it did
        self.done = asyncio.get_running_loop().create_future()

    def on_headers(self, headers, fin: bool) -> None:
        if self.done.done():
            return
        if self.status is not None:  # trailers
            if fin:
                self.finish()
            return
        fields = dict(headers)
        self.status = fields.get(b":status", b"").decode("latin-1")
        length = fields.get(b"content-length")
        if length is not None and length.isdigit():
            self.content_length = int(length)
        if fin:
            self.finish()

    def on_data(self, data: bytes, fin: bool) -> None:
        if self.done.done():
            return
        if self.status == "200":
            self.fh.write(data)
        elif len(self.refusal) < 200:
            self.refusal += data[: 200 - len(self.refusal)]
        self.nbytes += len(data)
        if fin:
            self.finish()

    def finish(self) -> None:
        if self.status != "200":
            body = self.refusal.decode("utf-8", "replace").strip()
            self.fail(f"status {self.status}" + (f" ({body!r})" if body else ""))
        elif self.content_length is not None and self.content_length != self.nbytes:
            self.fail(f"{self.nbytes} body bytes but content-length {self.content_length}")
        else:
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


class H3ClientProtocol(QuicConnectionProtocol):
    def __init__(self, *a, qpack=(DEFAULT_TABLE_CAPACITY, DEFAULT_BLOCKED_STREAMS), **kw):
        super().__init__(*a, **kw)
        self.h3 = QpackH3Connection(self._quic, *qpack)
        self.downloads = {}  # stream id -> Download
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()  # True: handshake done; False: closed first
        self.settings = loop.create_future()  # set once the server's SETTINGS arrived
        self.handshake = None
        self.terminated = None
        self.key_update = False

    def request(self, dl: Download, authority: str) -> None:
        sid = self._quic.get_next_available_stream_id()
        self.downloads[sid] = dl
        self.h3.send_headers(
            sid,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", dl.path.encode()),
                (b"user-agent", USER_AGENT),
                (b"accept", b"*/*"),
            ],
            end_stream=True,
        )

    def quic_event_received(self, event) -> None:
        if isinstance(event, HandshakeCompleted):
            self.handshake = event
            if not self.ready.done():
                self.ready.set_result(True)
            if self.key_update:
                # aioquic defers it until the handshake is confirmed (RFC 9001 §6.1).
                self._quic.request_key_update()
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
        for h3_event in self.h3.handle_event(event):
            dl = self.downloads.get(getattr(h3_event, "stream_id", None))
            if dl is None or getattr(h3_event, "push_id", None) is not None:
                continue
            if isinstance(h3_event, HeadersReceived):
                dl.on_headers(h3_event.headers, h3_event.stream_ended)
            elif isinstance(h3_event, DataReceived):
                dl.on_data(h3_event.data, h3_event.stream_ended)
        if not self.settings.done() and self.h3.received_settings is not None:
            self.settings.set_result(True)

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
        print(f"h3-client: error: {e}", file=sys.stderr)
        return 2
    names, seen = [], {}
    for p in paths:
        name = os.path.basename(unquote(p.split("?", 1)[0])) or "index.html"
        if name in seen:
            print(f"h3-client: error: {p} and {seen[name]} would both be saved as {name}", file=sys.stderr)
            return 2
        seen[name] = p
        names.append(name)

    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as e:
        print(f"h3-client: error: cannot resolve {host}: {e}", file=sys.stderr)
        return 1
    family, addr = infos[0][0], infos[0][4]
    if not ipaddress.ip_address(addr[0]).is_loopback:
        print(f"h3-client: error: refusing {host} ({addr[0]}): only loopback addresses are allowed", file=sys.stderr)
        return 2
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

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
    qpack = (args.qpack_capacity, args.qpack_blocked)
    transport, proto = await loop.create_datagram_endpoint(lambda: H3ClientProtocol(conn, qpack=qpack), sock=sock)
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
        try:
            await asyncio.wait_for(asyncio.shield(proto.settings), SETTINGS_WAIT)
            log(f"peer SETTINGS: {describe_settings(proto.h3.received_settings)}")
        except asyncio.TimeoutError:
            log(f"no SETTINGS from the server within {SETTINGS_WAIT:g} s; requesting anyway (static table only)")
        if proto.terminated is not None:
            raise RuntimeError("the connection closed: " + describe_close(proto.terminated))
        for p, name in zip(paths, names):
            dl = Download(p, os.path.join(args.output_dir, name))
            downloads.append(dl)
            proto.request(dl, authority)
        proto.transmit()
        remaining = max(0.1, args.timeout - (time.monotonic() - t_start))
        try:
            await asyncio.wait_for(asyncio.gather(*(d.done for d in downloads)), remaining)
        except asyncio.TimeoutError:
            for d in downloads:
                d.fail(f"timed out after {args.timeout:g} s with {d.nbytes} bytes (status {d.status})")
    except RuntimeError as e:
        problem = str(e)
    finally:
        elapsed = time.monotonic() - t_start
        proto.close(error_code=ErrorCode.H3_NO_ERROR)
        try:
            await asyncio.wait_for(proto.wait_closed(), 1.0 if proto.handshake else 0.2)
        except asyncio.TimeoutError:
            pass
        transport.close()

    ok_files = [d for d in downloads if d.error is None and d.done.done()]
    total = sum(d.nbytes for d in ok_files)
    for d in downloads:
        if d.error is None:
            log(f"{d.path}: status {d.status}, {d.nbytes} bytes -> {d.dest}")
        else:
            log(f"{d.path}: FAILED: {d.error}")
    if problem is None and len(ok_files) != len(paths):
        bad = next(d for d in downloads if d.error is not None)
        problem = f"{bad.path}: {bad.error}"
    rate = total / elapsed / 1e6 if elapsed > 0 else 0.0
    verdict = "OK" if problem is None else "FAILED"
    line = (
        f"h3-client: {verdict} {len(ok_files)}/{len(paths)} files, {total} bytes in {elapsed:.3f} s "
        f"({rate:.2f} MB/s); {proto.details()}"
    )
    if problem is not None:
        print(f"h3-client: error: {problem}", file=sys.stderr)
        line += f"; {problem}"
    print(line)
    print(f"h3-client: peer SETTINGS: {describe_settings(proto.h3.received_settings)}")
    print(f"h3-client: {proto.h3.qpack_verdict()}")
    print(f"h3-client: {proto.h3.qpack_report()}", flush=True)
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
    p.add_argument("--qpack-capacity", type=int, default=DEFAULT_TABLE_CAPACITY, metavar="BYTES",
                   help="QPACK_MAX_TABLE_CAPACITY we announce (default: %(default)s; 0 turns the table off)")
    p.add_argument("--qpack-blocked", type=int, default=DEFAULT_BLOCKED_STREAMS, metavar="N",
                   help="QPACK_BLOCKED_STREAMS we announce (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="limit for the handshake and all downloads together (default: %(default)s)")
    args = p.parse_args()
    if args.ca and not args.insecure and not os.path.isfile(args.ca):
        p.error(f"--ca {args.ca}: no such file")
    if args.qpack_capacity < 0 or args.qpack_blocked < 0:
        p.error("--qpack-capacity and --qpack-blocked must not be negative")
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as e:
        p.error(f"--output-dir {args.output_dir}: {e}")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("h3-client: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
