#!/usr/bin/env bash
# Tells a test harness where the interop peers are, and whether install.sh has
# put them in place.
#
#   env=$(bash conformance/peers/peers-env.sh) || exit 1; eval "$env"
#
# Prints these lines (values quoted as by printf %q; ordinary paths print as
# they are), for the state directory ${QUIC_TEST_PEERS_HOME:-$HOME/.cache/quic-proto-peers}:
#   export QUIC_TEST_PEERS_DIR=...         this folder (the peer programs)
#   export QUIC_TEST_PEERS_HOME=...        the state directory
#   export QUIC_TEST_PEERS_PYTHON=...      the venv's python, with aioquic
#   export QUIC_TEST_PEERS_CERT=...        server certificate (localhost, 127.0.0.1, ::1)
#   export QUIC_TEST_PEERS_KEY=...         its private key
#   export QUIC_TEST_PEERS_CA=...          the CA that signed it
#   export QUIC_TEST_PEERS_WWW=...         document root: 1K.bin, 1M.bin, 50M.bin
#   export QUIC_TEST_PEERS_LOGS=...        a folder for logs
#   export QUIC_TEST_PEERS_GTLSCLIENT=...  ngtcp2's h3 client
#   export QUIC_TEST_PEERS_GTLSSERVER=...  ngtcp2's h3 server
#   export QUIC_TEST_PEERS_TSHARK=...
# Exit status 1 when something is missing: stderr then has one line per
# missing piece and the command that installs it; stdout has no lines.
set -euo pipefail
# shellcheck source=paths.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/paths.sh"

if ! missing=$(qtp_missing); then
  {
    echo "peers-env.sh: the interop peers are not installed in $QTP_HOME:"
    while IFS= read -r line; do echo "  - $line"; done <<<"$missing"
    echo "peers-env.sh: run: bash $QTP_DIR/install.sh"
  } >&2
  exit 1
fi
qtp_exports
