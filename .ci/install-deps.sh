#!/usr/bin/env bash
# Installs the Debian packages Trace needs to build, test, benchmark and
# demo on a bare Debian 12 (debootstrap minbase with git and make).
# Idempotent: installs only what is missing; needs root or sudo when something is.
#
#   .ci/install-deps.sh          install what is missing
#   .ci/install-deps.sh --list   print the package list, one a line
#
# Every command a script calls must come from this list, the base system, or
# the project itself: .ci/check-commands.py checks that in `make test`.
set -euo pipefail

packages=(
  # build: the extension (PGXS; clang and llvm for its JIT bitcode), the
  # programs, the fuzzers (clang's libFuzzer and sanitizers)
  build-essential clang llvm libclang-rt-14-dev
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  libpq-dev libjansson-dev libcurl4-openssl-dev libyaml-dev libmicrohttpd-dev
  libseccomp-dev libzstd-dev
  # test, bench and demo tools: TAP (prove, IPC::Run), the UDF sandbox and
  # its languages (Python; Rust for the example UDF; Node below), pgbouncer,
  # the scripts' HTTP client (anvil_start, the fault proxies), ps, ss (free
  # ports), ACLs for a checkout the postgres user cannot enter (make demo)
  libipc-run-perl bubblewrap python3 cargo pgbouncer curl procps iproute2 acl
  # npm reaches its registry over TLS
  ca-certificates
)

# Node.js (UDFs in TypeScript, anvil and the peers from npm): Debian's
# packages when no node/npm is on the machine; an existing installation
# (e.g. NodeSource's, which bundles npm) is used as it is.
node_packages=(nodejs npm)

if [ "${1:-}" = --list ]; then
  printf '%s\n' "${packages[@]}" "${node_packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
