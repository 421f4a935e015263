#!/usr/bin/env bash
# Installs the independent QUIC peers that the interop tests run against, and
# prepares their certificates and test files.  Idempotent: when everything is
# present it only checks and prints the versions (well under 5 s).
#
#   bash conformance/peers/install.sh
#
# What it puts in place (Debian 12):
#   * Debian packages ngtcp2-client (gtlsclient), ngtcp2-server (gtlsserver),
#     tshark and openssl, with apt-get; needs root, or sudo without a password,
#     and only while one of them is missing.  `apt-get update` runs at most
#     once, and only when the package lists are empty or the install failed.
#   * aioquic 1.7.2 from PyPI in a venv in the state directory.
#   * In the state directory ${QUIC_TEST_PEERS_HOME:-$HOME/.cache/quic-proto-peers}:
#     certs/ca.pem (test CA), certs/cert.pem + certs/key.pem (ECDSA P-256 server
#     certificate for localhost, 127.0.0.1 and ::1, signed by ca.pem),
#     www/1K.bin, www/1M.bin, www/50M.bin (random bytes; QUIC_TEST_PEERS_50M=0
#     skips the 50 MiB one), www.sha256, logs/, and env (export lines).
# Ends with one line per tool and its version.  Exits non-zero, naming the
# missing piece, if anything could not be installed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=paths.sh source-path=SCRIPTDIR
. "$here/paths.sh"

t_start=$(date +%s.%N)
say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}

# ---- Debian packages ---------------------------------------------------------
deb_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# as_root CMD...: run as root: directly, or through sudo when it needs no
# password (checked once by need_root, before the first use).
sudo=()
as_root() { "${sudo[@]}" "$@"; }
need_root() {
  [ "$(id -u)" -ne 0 ] || return 0
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    die "Debian packages $* are missing, and installing them needs root: run this script as root" \
      "(or as a user with sudo that needs no password), or have an administrator run: apt-get install $*"
  fi
}

# A base Python that can make a venv with pip (python3 -m venv needs ensurepip,
# which Debian's own python3 only has with python3-venv).
base_python() {
  local c p
  for c in "${QUIC_TEST_PEERS_BASE_PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$c" ] || continue
    p=$(command -v "$c" 2>/dev/null) || continue
    if "$p" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this installer needs Debian (12) or a derivative"
need=()
for p in ngtcp2-client ngtcp2-server tshark openssl; do
  deb_installed "$p" || need+=("$p")
done
base_py=$(base_python || true)
if [ -z "$base_py" ]; then
  deb_installed python3-venv || need+=(python3-venv)
fi

if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; cannot install ${need[*]}"
  need_root "${need[@]}"
  say "installing Debian packages: ${need[*]}"
  # tshark pulls in wireshark-common, which asks whether non-root users may
  # capture; answer "no" in advance so the install never prompts.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
  apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${need[@]}"
  }
  updated=
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
    updated=1
  fi
  if ! apt_install; then
    [ -z "$updated" ] || die "apt-get install ${need[*]} failed"
    say "apt-get install failed; updating the package lists once and retrying"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
    apt_install || die "apt-get install ${need[*]} failed"
  fi
  for p in "${need[@]}"; do
    deb_installed "$p" || die "Debian package $p is still not installed"
  done
  # ngtcp2-server ships ngtcp2d.service (gtlsserver on localhost:7777); on a
  # host run by systemd, keep it from running: the tests start their own.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now ngtcp2d.service >/dev/null 2>&1 || true
  fi
  [ -n "$base_py" ] || base_py=$(base_python) || die "no python3 that can make a venv, even after installing python3-venv"
fi

# ---- state directory (one installer at a time) ------------------------------
mkdir -p "$QTP_HOME" || die "cannot create the state directory $QTP_HOME"
exec 9>"$QTP_HOME/.install.lock"
flock -w 900 9 || die "another install.sh has held $QTP_HOME/.install.lock for 15 minutes"

# ---- aioquic in a venv -------------------------------------------------------
aioquic_ok() {
  [ -x "$QTP_PYTHON" ] &&
    "$QTP_PYTHON" -c "import sys, aioquic; sys.exit(aioquic.__version__ != '$QTP_AIOQUIC_VERSION')" 2>/dev/null
}
if ! aioquic_ok; then
  [ -n "$base_py" ] || die "no python3 (3.9 or later) with the venv and ensurepip modules; install python3-venv"
  say "creating $QTP_VENV with $base_py and installing aioquic==$QTP_AIOQUIC_VERSION from PyPI"
  "$base_py" -m venv --clear "$QTP_VENV" || die "python3 -m venv $QTP_VENV failed"
  "$QTP_PYTHON" -m pip install -q --disable-pip-version-check --no-input "aioquic==$QTP_AIOQUIC_VERSION" ||
    die "pip install aioquic==$QTP_AIOQUIC_VERSION failed (is PyPI reachable?)"
  aioquic_ok || die "aioquic $QTP_AIOQUIC_VERSION is not importable by $QTP_PYTHON after pip install"
fi

# ---- certificates ------------------------------------------------------------
certs=$QTP_HOME/certs
certs_ok() {
  local f
  for f in "$QTP_CA" "$QTP_CERT" "$QTP_KEY"; do [ -s "$f" ] || return 1; done
  # still valid for a day, and the server certificate chains to the CA
  openssl x509 -checkend 86400 -noout -in "$QTP_CA" >/dev/null 2>&1 &&
    openssl x509 -checkend 86400 -noout -in "$QTP_CERT" >/dev/null 2>&1 &&
    openssl verify -CAfile "$QTP_CA" "$QTP_CERT" >/dev/null 2>&1
}
if ! certs_ok; then
  say "making a test CA and a server certificate in $certs"
  mkdir -p "$certs"
  tmp=$(mktemp -d)
  cat >"$tmp/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = quic-proto test peers CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -config "$tmp/openssl.cnf" -extensions ca_ext -days 3650 \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>"$tmp/err" || die "openssl (CA): $(cat "$tmp/err")"
  openssl req -new "${ec[@]}" -config "$tmp/openssl.cnf" -subj "/CN=localhost" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.csr" 2>"$tmp/err" || die "openssl (CSR): $(cat "$tmp/err")"
  openssl x509 -req -in "$tmp/cert.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 365 -extfile "$tmp/openssl.cnf" -extensions leaf_ext -out "$tmp/cert.pem" 2>"$tmp/err" ||
    die "openssl (certificate): $(cat "$tmp/err")"
  mv "$tmp/ca.key" "$tmp/ca.pem" "$tmp/key.pem" "$tmp/cert.pem" "$certs/"
  rm -rf "$tmp"
  certs_ok || die "the new certificate in $certs does not verify against its CA"
fi

# ---- test files --------------------------------------------------------------
mkdir -p "$QTP_WWW" "$QTP_LOGS"
files=(1K.bin:1024 1M.bin:1048576)
[ "${QUIC_TEST_PEERS_50M:-1}" = 0 ] || files+=(50M.bin:52428800)
changed=
for f in "${files[@]}"; do
  name=${f%%:*} size=${f#*:}
  if [ "$(stat -c %s "$QTP_WWW/$name" 2>/dev/null || echo 0)" != "$size" ]; then
    head -c "$size" /dev/urandom >"$QTP_WWW/.$name.tmp"
    mv "$QTP_WWW/.$name.tmp" "$QTP_WWW/$name"
    changed=1
  fi
done
sums=$QTP_HOME/www.sha256
if [ -n "$changed" ] || [ ! -s "$sums" ] || [ "$(wc -l <"$sums")" != "$(find "$QTP_WWW" -maxdepth 1 -type f -name '*.bin' | wc -l)" ]; then
  (cd "$QTP_WWW" && sha256sum -- *.bin) >"$sums.tmp"
  mv "$sums.tmp" "$sums"
fi

# ---- the env file and the final check ---------------------------------------
qtp_exports >"$QTP_HOME/env.tmp"
mv "$QTP_HOME/env.tmp" "$QTP_HOME/env"
if ! missing=$(qtp_missing); then
  die "the install is incomplete:"$'\n'"$missing"
fi

deb_version() { dpkg-query -W -f='${Version}' "$1"; }
echo "state: $QTP_HOME (env: $QTP_HOME/env; www: $(cd "$QTP_WWW" && echo *.bin))"
echo "gtlsclient: ngtcp2-client $(deb_version ngtcp2-client) ($(qtp_tool gtlsclient))"
echo "gtlsserver: ngtcp2-server $(deb_version ngtcp2-server) ($(qtp_tool gtlsserver))"
echo "tshark: $(deb_version tshark) ($(qtp_tool tshark))"
echo "openssl: $(openssl version | cut -d' ' -f2)"
echo "python: $("$QTP_PYTHON" -c 'import platform; print(platform.python_version())') ($QTP_PYTHON)"
echo "aioquic: $("$QTP_PYTHON" -c 'import aioquic; print(aioquic.__version__)')"
say "done in $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
