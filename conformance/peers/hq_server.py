#!/usr/bin/env python3
"""hq-interop server (aioquic): serves files the way the QUIC interop runner expects.

    hq_server.py --host 127.0.0.1 --port 4433 --cert cert.pem --key key.pem --root www/

ALPN "hq-interop" only (HTTP/0.9 style).  On each client-initiated
bidirectional stream the client sends "GET /path" ended by CRLF (or LF, or
FIN); the server answers with the bytes of ROOT/path followed by FIN.
A request it cannot serve is answered with RESET_STREAM:
    0x10  no such file under ROOT
    0x11  not a "GET /path" request line (or longer than 4096 bytes)
A client offering no ALPN that the server knows is refused by aioquic with
CONNECTION_CLOSE 0x178 (TLS alert no_application_protocol).
QUIC versions 1 and 2 (RFC 9369) are both accepted.

Readiness: once the UDP socket is bound it prints, on stderr,
    hq-server: listening on 127.0.0.1 port 4433 ...
and later one line per connection and per request.  It exits 0 on SIGTERM or
SIGINT, or when --lifetime runs out; 1 when it cannot start (unreadable
certificate or key, missing root, port in use), naming the reason; 2 for bad
arguments.  Only loopback addresses (127.0.0.0/8, ::1) may be bound.
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

require_aioquic("hq-server", __file__)

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamDataReceived
from aioquic.quic.logger import QuicFileLogger

ALPN = "hq-interop"
ERR_NOT_FOUND = 0x10
ERR_BAD_REQUEST = 0x11
MAX_REQUEST = 4096


def log(msg: str) -> None:
    print(f"[hq-server {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Stats:
    connections = 0
    requests = 0
    bytes_sent = 0


class HqServerProtocol(QuicConnectionProtocol):
    root = ""  # set by main()

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.requests = {}  # stream id -> bytearray of the request so far (None once answered)
        self.number = 0

    def resolve(self, target: str):
        """Absolute path of the file a request target names, or None."""
        path = unquote(target.split("?", 1)[0])
        if not path.startswith("/"):
            return None
        full = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
        if not full.startswith(self.root + os.sep) or not os.path.isfile(full):
            return None
        return full

    def answer(self, sid: int, request: bytes) -> None:
        line = request.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
        parts = line.split()
        if len(parts) != 2 or parts[0] != "GET" or not parts[1].startswith("/"):
            log(f"stream {sid}: bad request {line[:80]!r} -> RESET_STREAM 0x{ERR_BAD_REQUEST:x}")
            self._quic.reset_stream(sid, ERR_BAD_REQUEST)
            return
        full = self.resolve(parts[1])
        if full is None:
            log(f"stream {sid}: GET {parts[1]} -> not found, RESET_STREAM 0x{ERR_NOT_FOUND:x}")
            self._quic.reset_stream(sid, ERR_NOT_FOUND)
            return
        with open(full, "rb") as f:
            data = f.read()
        self._quic.send_stream_data(sid, data, end_stream=True)
        Stats.requests += 1
        Stats.bytes_sent += len(data)
        log(f"stream {sid}: GET {parts[1]} -> {len(data)} bytes")

    def quic_event_received(self, event) -> None:
        if isinstance(event, HandshakeCompleted):
            Stats.connections += 1
            self.number = Stats.connections
            log(f"connection #{self.number}: handshake completed, alpn={event.alpn_protocol} resumed={event.session_resumed}")
        elif isinstance(event, StreamDataReceived):
            sid = event.stream_id
            if sid % 4 != 0:  # requests come only on client-initiated bidirectional streams
                return
            buf = self.requests.setdefault(sid, bytearray())
            if buf is None:  # already answered; ignore anything after the request line
                return
            buf += event.data
            if b"\n" in buf or event.end_stream or len(buf) > MAX_REQUEST:
                self.requests[sid] = None
                if len(buf) > MAX_REQUEST and b"\n" not in buf[:MAX_REQUEST]:
                    log(f"stream {sid}: request line longer than {MAX_REQUEST} bytes -> RESET_STREAM")
                    self._quic.reset_stream(sid, ERR_BAD_REQUEST)
                else:
                    self.answer(sid, bytes(buf))
                self.transmit()
        elif isinstance(event, ConnectionTerminated):
            log(
                f"connection #{self.number} closed: error 0x{event.error_code:x}"
                + (f" frame type 0x{event.frame_type:x}" if event.frame_type is not None else "")
                + (f" reason {event.reason_phrase!r}" if event.reason_phrase else "")
            )


async def serve_until_stopped(args, cfg) -> int:
    stop = asyncio.Event()
    tickets = {}
    try:
        server = await serve(
            args.host,
            args.port,
            configuration=cfg,
            create_protocol=HqServerProtocol,
            session_ticket_fetcher=lambda label: tickets.pop(label, None),
            session_ticket_handler=lambda t: tickets.__setitem__(t.ticket, t),
            retry=args.retry,
        )
    except OSError as e:
        print(f"hq-server: error: cannot bind UDP {args.host} port {args.port}: {e}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, stop.set)
    print(
        f"hq-server: listening on {args.host} port {args.port} alpn={ALPN} retry={'on' if args.retry else 'off'} "
        f"root={HqServerProtocol.root}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.wait_for(stop.wait(), args.lifetime)
        log("stopping on a signal")
    except asyncio.TimeoutError:
        log(f"stopping: --lifetime {args.lifetime:g} s is over")
    server.close()
    log(f"served {Stats.requests} requests ({Stats.bytes_sent} bytes) over {Stats.connections} connections")
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
    if not os.path.isdir(args.root):
        print(f"hq-server: error: --root {args.root}: no such directory", file=sys.stderr)
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
        print(f"hq-server: error: cannot load --cert {args.cert} / --key {args.key}: {e}", file=sys.stderr)
        return 1
    if args.keylog:
        cfg.secrets_log_file = open(args.keylog, "a", buffering=1)
    if args.quic_log:
        os.makedirs(args.quic_log, exist_ok=True)
        cfg.quic_logger = QuicFileLogger(args.quic_log)
    HqServerProtocol.root = os.path.realpath(args.root)
    return asyncio.run(serve_until_stopped(args, cfg))


if __name__ == "__main__":
    sys.exit(main())
