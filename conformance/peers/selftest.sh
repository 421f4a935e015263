#!/usr/bin/env bash
# Self-test of the interop peers, all on 127.0.0.1 (about 5 s once installed):
#   1. install.sh (skip with --no-install)
#   2. hq_server.py + hq_client.py: 1K.bin and 1M.bin on one connection, SHA-256 checked
#   3. the same with Retry, QUIC v2, ChaCha20 and a key update
#   4. gtlsserver + gtlsclient (ngtcp2, h3): 1K.bin and 1M.bin, SHA-256 checked
#   5. hq_client.py (ALPN hq-interop) against gtlsserver (h3 only): refused with
#      CONNECTION_CLOSE 0x178 (TLS alert 120, no_application_protocol)
#   6. h3_client.py against the same gtlsserver: 1K.bin and 1M.bin, both QPACK
#      encoders used the dynamic table
#   7. h3_server.py + h3_client.py, then gtlsclient against the same h3_server.py:
#      1K.bin and 1M.bin each, both QPACK encoders used the dynamic table
# Ends with "N passed, N failed"; exit status 1 if anything failed.
# Logs are kept in a temporary folder when a check fails (its path is printed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ "${1:-}" != "--no-install" ]; then
  bash "$here/install.sh"
fi
env_lines=$(bash "$here/peers-env.sh") || exit 1
eval "$env_lines"

work=$(mktemp -d)
server_pid=
passed=0 failed=0
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  if [ "$failed" -eq 0 ]; then rm -rf "$work"; else echo "logs kept in $work"; fi
}
trap cleanup EXIT

pass() {
  echo "PASS  $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL  $*"
  failed=$((failed + 1))
}

free_port() {
  "$QUIC_TEST_PEERS_PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_bound PORT: until a UDP socket is bound to PORT (at most 15 s) and the server still runs.
wait_bound() {
  local hex i
  hex=$(printf ':%04X ' "$1")
  for ((i = 0; i < 150; i++)); do
    kill -0 "$server_pid" 2>/dev/null || return 1
    if grep -q "$hex" /proc/net/udp /proc/net/udp6 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# start_server NAME CMD...: start a server in the background (lifetime 60 s), log in $work/NAME.log.
start_server() {
  local name=$1
  shift
  timeout -k 2 60 "$@" >"$work/$name.log" 2>&1 &
  server_pid=$!
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# same_files DIR NAME...: each file in DIR has the SHA-256 of the one in www/.
same_files() {
  local dir=$1 name want got
  shift
  for name in "$@"; do
    want=$(sha256sum <"$QUIC_TEST_PEERS_WWW/$name" | cut -d' ' -f1)
    got=$(sha256sum <"$dir/$name" 2>/dev/null | cut -d' ' -f1) || got=missing
    if [ "$want" != "$got" ]; then
      echo "      $dir/$name: sha256 $got, want $want" >&2
      return 1
    fi
    echo "      $name sha256 $got"
  done
}

hq_client() {
  timeout -k 2 40 "$QUIC_TEST_PEERS_PYTHON" "$here/hq_client.py" --ca "$QUIC_TEST_PEERS_CA" --timeout 30 "$@"
}
h3_client() {
  timeout -k 2 40 "$QUIC_TEST_PEERS_PYTHON" "$here/h3_client.py" --ca "$QUIC_TEST_PEERS_CA" --timeout 30 "$@"
}

# dynamic_both_ways TEXT: TEXT has a qpack line where both encoders referenced the
# dynamic table (sent_dynamic and received_dynamic above 0).
dynamic_both_ways() {
  local line
  line=$(grep -o 'qpack: local_capacity=.*' <<<"$1" | tail -n 1)
  echo "      $line"
  [[ $line == *" sent_dynamic="[1-9]* ]] && [[ $line == *" received_dynamic="[1-9]* ]]
}

# --- 2. aioquic pair -----------------------------------------------------------
port=$(free_port)
start_server hq "$QUIC_TEST_PEERS_PYTHON" "$here/hq_server.py" --port "$port" --lifetime 55 \
  --cert "$QUIC_TEST_PEERS_CERT" --key "$QUIC_TEST_PEERS_KEY" --root "$QUIC_TEST_PEERS_WWW"
if wait_bound "$port" &&
  hq_client "https://127.0.0.1:$port/1K.bin" "https://127.0.0.1:$port/1M.bin" --output-dir "$work/hq" &&
  same_files "$work/hq" 1K.bin 1M.bin; then
  pass "hq_server.py <- hq_client.py: 1K.bin + 1M.bin on one connection"
else
  fail "hq_server.py <- hq_client.py (server log: $work/hq.log)"
fi
stop_server

# --- 3. aioquic pair with Retry, QUIC v2, ChaCha20 and a key update --------------
port=$(free_port)
start_server hq-retry "$QUIC_TEST_PEERS_PYTHON" "$here/hq_server.py" --port "$port" --lifetime 55 --retry \
  --cert "$QUIC_TEST_PEERS_CERT" --key "$QUIC_TEST_PEERS_KEY" --root "$QUIC_TEST_PEERS_WWW"
if wait_bound "$port" &&
  out=$(hq_client "https://localhost:$port/1M.bin" --output-dir "$work/hq2" --version 2 --chacha20 --key-update) &&
  echo "      $out" && [[ $out == *"version=0x6b3343cf"*"retry=yes key_update=done"* ]] &&
  same_files "$work/hq2" 1M.bin; then
  pass "hq_server.py --retry <- hq_client.py --version 2 --chacha20 --key-update"
else
  fail "hq_server.py --retry <- hq_client.py --version 2 --chacha20 --key-update (server log: $work/hq-retry.log)"
fi
stop_server

# --- 4. ngtcp2 pair over h3 ------------------------------------------------------
port=$(free_port)
start_server ngtcp2 "$QUIC_TEST_PEERS_GTLSSERVER" -q --htdocs="$QUIC_TEST_PEERS_WWW" 127.0.0.1 "$port" \
  "$QUIC_TEST_PEERS_KEY" "$QUIC_TEST_PEERS_CERT"
mkdir -p "$work/ng"
if wait_bound "$port" &&
  timeout -k 2 30 "$QUIC_TEST_PEERS_GTLSCLIENT" -q --exit-on-all-streams-close --download="$work/ng" \
    127.0.0.1 "$port" "https://localhost:$port/1K.bin" "https://localhost:$port/1M.bin" &&
  same_files "$work/ng" 1K.bin 1M.bin; then
  pass "gtlsserver <- gtlsclient over h3: 1K.bin + 1M.bin"
else
  fail "gtlsserver <- gtlsclient over h3 (server log: $work/ngtcp2.log)"
fi

# --- 5. hq-interop against the h3-only gtlsserver (same server) ---------------------
set +e
out=$(hq_client "https://127.0.0.1:$port/1K.bin" --output-dir "$work/alpn" 2>"$work/alpn.log")
rc=$?
set -e
echo "      exit $rc: $out"
if [ "$rc" -eq 1 ] && [[ $out == *"error 0x178 (CRYPTO_ERROR, TLS alert 120 no_application_protocol)"* ]]; then
  pass "hq_client.py -> gtlsserver: refused with 0x178 no_application_protocol"
else
  fail "hq_client.py -> gtlsserver: expected exit 1 and error 0x178 (client log: $work/alpn.log)"
fi

# --- 6. h3_client.py against the same gtlsserver ----------------------------------
if out=$(h3_client "https://127.0.0.1:$port/1K.bin" "https://127.0.0.1:$port/1M.bin" --output-dir "$work/h3ng" 2>"$work/h3ng.log") &&
  dynamic_both_ways "$out" && same_files "$work/h3ng" 1K.bin 1M.bin; then
  pass "gtlsserver <- h3_client.py: 1K.bin + 1M.bin, QPACK dynamic table used both ways"
else
  fail "gtlsserver <- h3_client.py (client log: $work/h3ng.log; stdout: ${out:-})"
fi
stop_server

# --- 7. h3_server.py <- h3_client.py, then <- gtlsclient -----------------------------
port=$(free_port)
start_server h3 "$QUIC_TEST_PEERS_PYTHON" "$here/h3_server.py" --port "$port" --lifetime 55 \
  --cert "$QUIC_TEST_PEERS_CERT" --key "$QUIC_TEST_PEERS_KEY" --root "$QUIC_TEST_PEERS_WWW"
if wait_bound "$port" &&
  out=$(h3_client "https://127.0.0.1:$port/1K.bin" "https://127.0.0.1:$port/1M.bin" --output-dir "$work/h3" 2>"$work/h3c.log") &&
  dynamic_both_ways "$out" && same_files "$work/h3" 1K.bin 1M.bin; then
  pass "h3_server.py <- h3_client.py: 1K.bin + 1M.bin, QPACK dynamic table used both ways"
else
  fail "h3_server.py <- h3_client.py (server log: $work/h3.log; client log: $work/h3c.log)"
fi
mkdir -p "$work/h3ngc"
if timeout -k 2 30 "$QUIC_TEST_PEERS_GTLSCLIENT" -q --exit-on-all-streams-close --download="$work/h3ngc" \
  127.0.0.1 "$port" "https://localhost:$port/1K.bin" "https://localhost:$port/1M.bin" &&
  same_files "$work/h3ngc" 1K.bin 1M.bin; then
  # h3_server.py logs a connection's qpack line when it ends (after the
  # closing period) or when the server stops: stop it to have the line.
  stop_server
  if dynamic_both_ways "$(grep -F 'connection #2 qpack:' "$work/h3.log")"; then
    pass "h3_server.py <- gtlsclient: 1K.bin + 1M.bin, QPACK dynamic table used both ways"
  else
    fail "h3_server.py <- gtlsclient: no qpack line with the table used both ways (server log: $work/h3.log)"
  fi
else
  fail "h3_server.py <- gtlsclient (server log: $work/h3.log)"
fi
stop_server

echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
