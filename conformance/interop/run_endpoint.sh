#!/usr/bin/env bash
# The QUIC interop runner's endpoint interface for this stack's `quic`
# binary (see docs/interop.md). The runner sets:
#   ROLE          client | server
#   TESTCASE      the case's name (handshake, transfer, retry, ...)
#   REQUESTS      client: space-separated URLs to download into /downloads
#   SSLKEYLOGFILE where to log TLS secrets
#   QLOGDIR       where to write qlog files
# and mounts /www (files to serve), /downloads (where the client saves) and
# /certs (cert.pem, priv.key). Exit status 127 means "this endpoint does not
# support the case", as the runner expects.
#
# Outside the runner's containers the paths can be moved with WWW,
# DOWNLOADS, CERTS, PORT (server, default 443) and QUIC (the binary,
# default `quic` on PATH).
set -u

QUIC=${QUIC:-quic}
WWW=${WWW:-/www}
DOWNLOADS=${DOWNLOADS:-/downloads}
CERTS=${CERTS:-/certs}
PORT=${PORT:-443}
ROLE=${ROLE:?ROLE must be client or server}
TESTCASE=${TESTCASE:?TESTCASE must name the case}

common=()
[ -n "${SSLKEYLOGFILE:-}" ] && common+=(--keylog "$SSLKEYLOGFILE")
[ -n "${QLOGDIR:-}" ] && common+=(--qlog-dir "$QLOGDIR")

alpn=hq-interop
client_opts=()
server_opts=()
multiconnect=0
case "$TESTCASE" in
  handshake|transfer|longrtt|multiplexing|blackhole|handshakeloss|transferloss| \
  handshakecorruption|transfercorruption|ipv6|goodput|crosstraffic|amplificationlimit)
    ;;
  # NAT rebinding happens to the client, which only has to answer the
  # server's path validation; our server does not follow a rebinding yet (#14).
  rebind-port|rebind-addr)
    if [ "$ROLE" = server ]; then
      echo "run_endpoint.sh: $TESTCASE: the server does not handle NAT rebinding yet" >&2
      exit 127
    fi ;;
  chacha20) client_opts+=(--chacha20) ;;
  keyupdate) client_opts+=(--key-update) ;;
  retry) server_opts+=(--retry) ;;
  http3) alpn=h3 ;;
  # Not yet in this stack: resumption and 0-RTT (#13), migration and ECN
  # marking (#14), compatible version negotiation from v1 to v2 (RFC 9368).
  resumption|zerortt|connectionmigration|ecn|v2)
    echo "run_endpoint.sh: $TESTCASE is not supported by this stack yet" >&2
    exit 127 ;;
  *)
    echo "run_endpoint.sh: unknown test case $TESTCASE" >&2
    exit 127 ;;
esac
case "$TESTCASE" in
  handshakeloss|handshakecorruption) multiconnect=1 ;;
esac

case "$ROLE" in
  server)
    exec "$QUIC" server --listen "[::]:$PORT" --root "$WWW" \
      --cert "$CERTS/cert.pem" --key "$CERTS/priv.key" --alpn "$alpn" \
      "${server_opts[@]}" "${common[@]}"
    ;;
  client)
    # The runner's clients are not given the CA: certificates are not
    # checked (signatures still are).
    read -r -a urls <<< "${REQUESTS:?REQUESTS must list the URLs}"
    mkdir -p "$DOWNLOADS"
    run() {
      "$QUIC" client --insecure --output-dir "$DOWNLOADS" --alpn "$alpn" \
        "${client_opts[@]}" "${common[@]}" "$@"
    }
    if [ "$multiconnect" = 1 ]; then
      for u in "${urls[@]}"; do
        run "$u" || exit $?
      done
    else
      run "${urls[@]}"
    fi
    ;;
  *)
    echo "run_endpoint.sh: ROLE must be client or server, not $ROLE" >&2
    exit 1 ;;
esac
