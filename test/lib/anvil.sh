# test/lib/anvil.sh: a real Ethereum dev node (anvil, from Foundry) for the
# tests, installed from npm into <repo>/.cache/npm on first use.
# Source it, then:
#
#   anvil_install              sets ANVIL_BIN (installs when missing); 0 or 1
#   anvil_start PORT [ARG...]  starts anvil on 127.0.0.1:PORT (extra anvil
#                              arguments allowed), waits until it answers
#                              eth_chainId; sets ANVIL_PID; 0 or 1
#   anvil_stop [PORT [SIG]]    stops the anvil on PORT (default: every one
#                              this shell started) by pid, with SIG (default
#                              TERM; KILL for a crash), and waits until it
#                              is gone
#   anvil_rpc PORT JSON        POSTs one JSON-RPC body to it, prints the answer
#
# ANVIL_BIN may be set beforehand to use another binary.  Logs go to
# ${ANVIL_LOG_DIR:-/tmp}/trace-anvil-PORT.log.  Processes are tracked by
# pid only, never by name.

ANVIL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ANVIL_CACHE=${ANVIL_CACHE:-$ANVIL_ROOT/.cache/npm}
declare -A ANVIL_PIDS=()

anvil_install() {
  local arch pkg
  if [ -n "${ANVIL_BIN:-}" ] && [ -x "$ANVIL_BIN" ]; then
    return 0
  fi
  case $(uname -m) in
    x86_64|amd64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "anvil_install: unsupported machine $(uname -m)" >&2; return 1 ;;
  esac
  pkg="@foundry-rs/anvil-linux-$arch"
  for cand in "$ANVIL_CACHE/node_modules/.bin/anvil" "$ANVIL_CACHE/node_modules/$pkg/bin/anvil"; do
    if [ -x "$cand" ] && "$cand" --version >/dev/null 2>&1; then
      ANVIL_BIN=$cand
      return 0
    fi
  done
  command -v npm >/dev/null 2>&1 || { echo "anvil_install: npm is missing (make deps)" >&2; return 1; }
  echo "# installing $pkg into $ANVIL_CACHE" >&2
  mkdir -p "$ANVIL_CACHE"
  npm install --prefix "$ANVIL_CACHE" --no-audit --no-fund --loglevel=error "$pkg" >&2 || {
    echo "anvil_install: npm install $pkg failed" >&2; return 1; }
  for cand in "$ANVIL_CACHE/node_modules/.bin/anvil" "$ANVIL_CACHE/node_modules/$pkg/bin/anvil"; do
    if [ -x "$cand" ] && "$cand" --version >/dev/null 2>&1; then
      ANVIL_BIN=$cand
      return 0
    fi
  done
  echo "anvil_install: no anvil binary in $pkg" >&2
  return 1
}

anvil_rpc() {
  curl -s -m 10 -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$1/"
}

anvil_start() {
  local port=$1; shift
  local log="${ANVIL_LOG_DIR:-/tmp}/trace-anvil-$port.log" i
  anvil_install || return 1
  "$ANVIL_BIN" --host 127.0.0.1 --port "$port" --silent "$@" >"$log" 2>&1 &
  ANVIL_PID=$!
  disown "$ANVIL_PID" 2>/dev/null    # no job-control noise when it is killed
  ANVIL_PIDS[$port]=$ANVIL_PID
  for i in $(seq 1 200); do
    if anvil_rpc "$port" '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' 2>/dev/null | grep -q result; then
      return 0
    fi
    kill -0 "$ANVIL_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "anvil_start: anvil on port $port did not come up (log: $log)" >&2
  return 1
}

anvil_stop() {
  local ports=("$@") sig=TERM p pid i
  if [ $# -ge 2 ]; then sig=$2; ports=("$1"); fi
  [ $# -eq 0 ] && ports=("${!ANVIL_PIDS[@]}")
  for p in "${ports[@]}"; do
    pid=${ANVIL_PIDS[$p]:-}
    [ -n "$pid" ] || continue
    kill -"$sig" "$pid" 2>/dev/null
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    unset "ANVIL_PIDS[$p]"
  done
  return 0
}
