#!/usr/bin/env python3
"""HTTP/3 file server (aioquic's H3Connection), with the QPACK dynamic table on.

    h3_server.py --host 127.0.0.1 --port 4433 --cert cert.pem --key key.pem --root www/

ALPN "h3" only.  On each request stream:
    GET /path   200 with content-length and the bytes of ROOT/path
    HEAD /path  200 with content-length, no body
    404 (short text body) when ROOT/path is not a file under ROOT;
    405 (with allow: GET, HEAD) for any other method.
A client that offers no "h3" is refused by aioquic with CONNECTION_CLOSE
0x178 (TLS alert no_application_protocol).  QUIC v1 and v2 are accepted.

QPACK: the decoder's table capacity and blocked-streams limit, announced in
SETTINGS, are --qpack-capacity (default 4096) and --qpack-blocked (default
16); the encoder (ls-qpack, through pylsqpack) uses whatever table the
client's SETTINGS allow.  Per connection the log shows the client's
SETTINGS when they arrive, and when the connection ends (or the server
stops) a line
    [h3-server ...] connection #1 qpack: local_capacity=4096 ... received_dynamic=2 ...
counting field sections that referenced the dynamic table in each
direction and the encoder/decoder stream bytes (see h3_peer.py).

Readiness: once the UDP socket is bound it prints, on stderr,
    h3-server: listening on 127.0.0.1 port 4433 ...
It exits 0 on SIGTERM or SIGINT, or when --lifetime runs out; 1 when it
cannot start (unreadable certificate or key, missing root, port in use),
naming the reason; 2 for bad arguments.  Only loopback addresses
(127.0.0.0/8, ::1) may be bound.
"""

import argparse
import asyncio
import ipaddress
import os
import signal
import sys
import time
from urllib.parse import unquote

from aioquic_env import require_aioquic  # noqa: E402  (before any aioquic import)

require_aioquic("h3-server", __file__)

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, ProtocolNegotiated
from aioquic.quic.logger import QuicFileLogger

from h3_peer import DEFAULT_BLOCKED_STREAMS, DEFAULT_TABLE_CAPACITY, QpackH3Connection, describe_close, describe_settings

ALPN = "h3"
SERVER = b"conformance-h3-server (aioquic)"


def log(msg: str) -> None:
    print(f"[h3-server {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Stats:
    connections = 0
    requests = 0
    bytes_sent = 0
    live = set()  # protocols whose connection has not ended


class H3ServerProtocol(QuicConnectionProtocol):
    root = ""  # set by main()
    qpack = (DEFAULT_TABLE_CAPACITY, DEFAULT_BLOCKED_STREAMS)  # set by main()

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.h3 = None
        self.number = 0
        self.settings_logged = False
        self.reported = False
        self.answered = set()  # request streams with a response (later HEADERS are trailers)

    def resolve(self, target: str):
        """Absolute path of the file a request target names, or None."""
        path = unquote(target.split("?", 1)[0])
        if not path.startswith("/"):
            return None
        full = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
        if not full.startswith(self.root + os.sep) or not os.path.isfile(full):
            return None
        return full

    def respond(self, sid: int, status: int, body: bytes, extra=(), send_body=True) -> None:
        headers = [
            (b":status", str(status).encode()),
            (b"server", SERVER),
            (b"content-type", b"application/octet-stream" if status == 200 else b"text/plain"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        if send_body and body:
            self.h3.send_headers(sid, headers)
            self.h3.send_data(sid, body, end_stream=True)
        else:
            self.h3.send_headers(sid, headers, end_stream=True)

    def on_request(self, event: HeadersReceived) -> None:
        sid = event.stream_id
        fields = {}
        for name, value in event.headers:
            fields.setdefault(name, value)
        method = fields.get(b":method", b"").decode("latin-1")
        path = fields.get(b":path", b"").decode("latin-1")
        Stats.requests += 1
        if method not in ("GET", "HEAD"):
            self.respond(sid, 405, b"method not allowed\n", extra=[(b"allow", b"GET, HEAD")])
            log(f"connection #{self.number} stream {sid}: {method} {path} -> 405")
            return
        full = self.resolve(path)
        if full is None:
            self.respond(sid, 404, b"not found\n", send_body=method == "GET")
            log(f"connection #{self.number} stream {sid}: {method} {path} -> 404")
            return
        with open(full, "rb") as f:
            data = f.read()
        self.respond(sid, 200, data, send_body=method == "GET")
        if method == "GET":
            Stats.bytes_sent += len(data)
        log(f"connection #{self.number} stream {sid}: {method} {path} -> 200, content-length {len(data)}")

    def report(self, why: str) -> None:
        if self.reported or self.h3 is None:
            return
        self.reported = True
        log(f"connection #{self.number} {why}; {self.h3.qpack_verdict()}")
        log(f"connection #{self.number} {self.h3.qpack_report()}")

    def quic_event_received(self, event) -> None:
        if isinstance(event, ProtocolNegotiated):
            # Before any request stream, even one in 0-RTT.
            Stats.connections += 1
            self.number = Stats.connections
            Stats.live.add(self)
            if event.alpn_protocol == ALPN:
                self.h3 = QpackH3Connection(self._quic, *self.qpack)
                log(f"connection #{self.number}: our SETTINGS: {describe_settings(self.h3.sent_settings)}")
        elif isinstance(event, HandshakeCompleted):
            log(f"connection #{self.number}: handshake completed, alpn={event.alpn_protocol} resumed={event.session_resumed}")
        elif isinstance(event, ConnectionTerminated):
            Stats.live.discard(self)
            self.report(f"closed: {describe_close(event)}")
        if self.h3 is None:
            return
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and h3_event.stream_id not in self.answered:
                self.answered.add(h3_event.stream_id)
                self.on_request(h3_event)
            elif isinstance(h3_event, DataReceived):
                pass  # request bodies are ignored (GET and HEAD have none)
        if not self.settings_logged and self.h3.received_settings is not None:
            self.settings_logged = True
            log(f"connection #{self.number}: peer SETTINGS: {describe_settings(self.h3.received_settings)}")
        self.transmit()


async def serve_until_stopped(args, cfg) -> int:
    stop = asyncio.Event()
    tickets = {}
    try:
        server = await serve(
            args.host,
            args.port,
            configuration=cfg,
            create_protocol=H3ServerProtocol,
            session_ticket_fetcher=lambda label: tickets.pop(label, None),
            session_ticket_handler=lambda t: tickets.__setitem__(t.ticket, t),
            retry=args.retry,
        )
    except OSError as e:
        print(f"h3-server: error: cannot bind UDP {args.host} port {args.port}: {e}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, stop.set)
    print(
        f"h3-server: listening on {args.host} port {args.port} alpn={ALPN} retry={'on' if args.retry else 'off'} "
        f"qpack_capacity={args.qpack_capacity} qpack_blocked={args.qpack_blocked} root={H3ServerProtocol.root}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.wait_for(stop.wait(), args.lifetime)
        log("stopping on a signal")
    except asyncio.TimeoutError:
        log(f"stopping: --lifetime {args.lifetime:g} s is over")
    for proto in list(Stats.live):
        proto.report("still open at exit")
    server.close()
    log(f"served {Stats.requests} requests ({Stats.bytes_sent} body bytes) over {Stats.connections} connections")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind: 127.0.0.1 (default) or ::1")
    p.add_argument("--port", type=int, required=True, help="UDP port to bind")
    p.add_argument("--cert", required=True, metavar="FILE", help="PEM certificate (chain)")
    p.add_argument("--key", required=True, metavar="FILE", help="PEM private key")
    p.add_argument("--root", required=True, metavar="DIR", help="folder whose files are served")
    p.add_argument("--retry", action="store_true", help="validate client addresses with a Retry packet")
    p.add_argument("--keylog", metavar="FILE", help="append TLS secrets to FILE (SSLKEYLOGFILE format)")
    p.add_argument("--quic-log", metavar="DIR", help="write one qlog per connection into DIR")
    p.add_argument("--qpack-capacity", type=int, default=DEFAULT_TABLE_CAPACITY, metavar="BYTES",
                   help="QPACK_MAX_TABLE_CAPACITY we announce (default: %(default)s; 0 turns the table off)")
    p.add_argument("--qpack-blocked", type=int, default=DEFAULT_BLOCKED_STREAMS, metavar="N",
                   help="QPACK_BLOCKED_STREAMS we announce (default: %(default)s)")
    p.add_argument("--lifetime", type=float, default=600.0, metavar="SECONDS",
                   help="exit after this long at the latest (default: %(default)s)")
    args = p.parse_args()

    try:
        if not ipaddress.ip_address(args.host).is_loopback:
            p.error(f"--host {args.host}: only loopback addresses (127.0.0.0/8, ::1) may be bound")
    except ValueError:
        p.error(f"--host {args.host}: not an IP address")
    if not 0 < args.port < 65536:
        p.error(f"--port {args.port}: not a port number")
    if args.qpack_capacity < 0 or args.qpack_blocked < 0:
        p.error("--qpack-capacity and --qpack-blocked must not be negative")
    if not os.path.isdir(args.root):
        print(f"h3-server: error: --root {args.root}: no such directory", file=sys.stderr)
        return 1

    cfg = QuicConfiguration(
        is_client=False,
        alpn_protocols=[ALPN],
        max_data=128 * 1024 * 1024,
        max_stream_data=64 * 1024 * 1024,
        idle_timeout=30.0,
    )
    try:
        cfg.load_cert_chain(args.cert, args.key)
    except (OSError, ValueError) as e:
        print(f"h3-server: error: cannot load --cert {args.cert} / --key {args.key}: {e}", file=sys.stderr)
        return 1
    if args.keylog:
        cfg.secrets_log_file = open(args.keylog, "a", buffering=1)
    if args.quic_log:
        os.makedirs(args.quic_log, exist_ok=True)
        cfg.quic_logger = QuicFileLogger(args.quic_log)
    H3ServerProtocol.root = os.path.realpath(args.root)
    H3ServerProtocol.qpack = (args.qpack_capacity, args.qpack_blocked)
    return asyncio.run(serve_until_stopped(args, cfg))


if __name__ == "__main__":
    sys.exit(main())
