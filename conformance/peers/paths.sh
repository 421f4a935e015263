# shellcheck shell=bash disable=SC2034  # variables read by the scripts that source this
# Paths of the interop peers; sourced by install.sh and peers-env.sh, never run.
#
# Everything the installer makes lives in one state directory, so this folder
# (part of the repository) stays clean and may even be read-only:
#   QUIC_TEST_PEERS_HOME (default $HOME/.cache/quic-proto-peers)
#     venv/           Python venv with aioquic (venv/bin/python runs hq_*.py)
#     certs/          ca.pem (test CA), cert.pem + key.pem (server, signed by ca.pem)
#     www/            1K.bin, 1M.bin and (unless QUIC_TEST_PEERS_50M=0) 50M.bin
#     www.sha256      sha256sum of the files in www/
#     logs/           a place for peer logs, key logs and qlogs
#     env             the export lines of peers-env.sh, for `. "$HOME/env"`
#
# After sourcing, qtp_missing lists (one line each, on stdout) whatever the
# installer should have put in place and did not; it returns 1 if anything is
# missing.

QTP_AIOQUIC_VERSION=1.7.2
QTP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${HOME:-}" ]; then
  HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
fi
QUIC_TEST_PEERS_HOME="${QUIC_TEST_PEERS_HOME:-$HOME/.cache/quic-proto-peers}"
case "$QUIC_TEST_PEERS_HOME" in
  /*) ;;
  *) QUIC_TEST_PEERS_HOME="$PWD/$QUIC_TEST_PEERS_HOME" ;;
esac
QTP_HOME=$QUIC_TEST_PEERS_HOME
QTP_VENV=$QTP_HOME/venv
QTP_PYTHON=$QTP_VENV/bin/python
QTP_CERT=$QTP_HOME/certs/cert.pem
QTP_KEY=$QTP_HOME/certs/key.pem
QTP_CA=$QTP_HOME/certs/ca.pem
QTP_WWW=$QTP_HOME/www
QTP_LOGS=$QTP_HOME/logs

# qtp_tool NAME: absolute path of a program, also looking in the sbin folders
# that a non-root user's PATH lacks on Debian (gtlsserver is in /usr/sbin).
qtp_tool() {
  local d
  if command -v "$1" 2>/dev/null; then return 0; fi
  for d in /usr/sbin /sbin /usr/local/sbin; do
    if [ -x "$d/$1" ]; then
      echo "$d/$1"
      return 0
    fi
  done
  return 1
}

# qtp_missing: print one line per missing piece; status 1 if any.
qtp_missing() {
  local miss=0 t f size
  for t in gtlsclient:ngtcp2-client gtlsserver:ngtcp2-server tshark:tshark; do
    if ! qtp_tool "${t%%:*}" >/dev/null; then
      echo "program ${t%%:*} (Debian package ${t#*:}) is not installed"
      miss=1
    fi
  done
  if [ ! -x "$QTP_PYTHON" ]; then
    echo "Python venv $QTP_VENV does not exist"
    miss=1
  elif ! compgen -G "$QTP_VENV/lib/python3*/site-packages/aioquic-$QTP_AIOQUIC_VERSION.dist-info" >/dev/null; then
    echo "aioquic $QTP_AIOQUIC_VERSION is not installed in $QTP_VENV"
    miss=1
  fi
  for f in "$QTP_CA" "$QTP_CERT" "$QTP_KEY"; do
    if [ ! -r "$f" ] || [ ! -s "$f" ]; then
      echo "certificate file $f is missing"
      miss=1
    fi
  done
  for f in 1K.bin:1024 1M.bin:1048576; do
    size=$(stat -c %s "$QTP_WWW/${f%%:*}" 2>/dev/null || echo 0)
    if [ "$size" != "${f#*:}" ]; then
      echo "test file $QTP_WWW/${f%%:*} is missing or not ${f#*:} bytes"
      miss=1
    fi
  done
  return "$miss"
}

# qtp_exports: the export lines a harness needs (values quoted by printf %q).
qtp_exports() {
  local name value var
  for name in DIR HOME PYTHON CERT KEY CA WWW LOGS GTLSCLIENT GTLSSERVER TSHARK; do
    case $name in
      GTLSCLIENT) value=$(qtp_tool gtlsclient || true) ;;
      GTLSSERVER) value=$(qtp_tool gtlsserver || true) ;;
      TSHARK) value=$(qtp_tool tshark || true) ;;
      *) var=QTP_$name; value=${!var} ;;
    esac
    printf 'export QUIC_TEST_PEERS_%s=%q\n' "$name" "$value"
  done
}
