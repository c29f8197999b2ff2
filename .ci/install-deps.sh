#!/usr/bin/env bash
# Installs the Debian packages Trace needs to build, test and demo.
# Idempotent: installs only what is missing; needs root or sudo when something is.
set -euo pipefail

packages=(
  build-essential clang llvm
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  libpq-dev libjansson-dev libcurl4-openssl-dev libyaml-dev
  libipc-run-perl libclang-rt-14-dev
  bubblewrap libseccomp-dev pgbouncer python3
  libmicrohttpd-dev libzstd-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js (UDFs in TypeScript, anvil and the peers from npm): Debian's
# packages when no node/npm is on the machine; an existing installation
# (e.g. NodeSource's, which bundles npm) is used as it is.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
