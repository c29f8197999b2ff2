#!/usr/bin/env bash
# trace-rpc-gateway tests: the unit tests (test_gateway.c), a short fuzz run
# of the JSON-RPC parser, then the real gateway against real anvil nodes,
# with test/gateway/faultproxy.py injecting faults between them.
#
#   bash test/gateway/run.sh            (FUZZ_SECONDS=10 by default; 0 skips)
#
# Prints "ok - ..." / "not ok - ..." lines and "N passed, N failed"; exits
# non-zero when anything failed.  Loopback only; every process it starts is
# stopped by pid on exit; waits are polls with deadlines.  Installs anvil
# into <repo>/.cache/npm when it is missing (test/lib/anvil.sh).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/test/lib/anvil.sh"
GW_BIN=${TRACE_GATEWAY_BIN:-$root/worker/bin/trace-rpc-gateway}   # e.g. a sanitizer build
scratch=$(mktemp -d /tmp/trace-gateway-test.XXXXXX)
ANVIL_LOG_DIR=$scratch
MARKER="gwsecret$RANDOM$$marker"     # the credential that must never leak
export TEST_RPC_KEY=$MARKER
passed=0
failed=0
GW_PID=
PX_PID=

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
  failed=$((failed + 1)); echo "not ok - $1"; shift
  local l; for l in "$@"; do printf '#   %s\n' "$l"; done
}
# check NAME CMD...: ok when CMD succeeds.
check() { local n=$1; shift; if "$@"; then ok "$n"; else not_ok "$n"; fi; }
say() { printf '# %s\n' "$*"; }

finish() {
  [ -n "$GW_PID" ] && { disown "$GW_PID" 2>/dev/null; kill -KILL "$GW_PID" 2>/dev/null; }
  [ -n "$PX_PID" ] && kill -KILL "$PX_PID" 2>/dev/null
  anvil_stop
  if [ "$failed" -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$scratch"; else echo "# output kept in $scratch"; fi
  echo "$passed passed, $failed failed"
}
trap finish EXIT

. "$root/test/lib/ports.sh"

# pyj EXPR: evaluates EXPR with d = the JSON document on stdin; prints it.
pyj() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(json.dumps(r) if not isinstance(r,str) else r)' "$1"; }

# post PROVIDER BODY [curl args]: sets CODE and BODY; keeps every answer.
post() {
  local p=$1 b=$2 out; shift 2
  out=$(curl -s -m 30 -w '\n%{http_code}' -H 'Content-Type: application/json' --data-binary "$b" "$@" \
        "http://127.0.0.1:$GWP/rpc/$p")
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
  printf '%s\n' "$BODY" >>"$scratch/responses.log"
}
req() { printf '{"jsonrpc":"2.0","id":%s,"method":"%s","params":%s}' "$1" "$2" "${3:-[]}"; }

metrics() { curl -s -m 5 "http://127.0.0.1:$GWP/metrics"; }
# metric 'name{labels}': its value (0 when absent).
metric() { metrics | awk -v k="$1" '$1 == k {print $2; f=1} END {if (!f) print 0}'; }
err_metric() { metric "trace_gateway_upstream_errors_total{provider=\"$1\",url=\"${3:-1}\",host=\"127.0.0.1:${4:-$PXP}\",class=\"$2\"}"; }

fault() { curl -s -m 5 -d "{\"mode\":\"$1\",\"count\":${2:-1}${3:+,\"retry_after\":$3}}" "http://127.0.0.1:$PXP/__fault" >/dev/null; }
proxy_config() { curl -s -m 5 -d "$1" "http://127.0.0.1:$PXP/__config" >/dev/null; }
proxy_reset() { curl -s -m 5 -d '{}' "http://127.0.0.1:$PXP/__reset" >/dev/null; }
pstat() { curl -s -m 5 "http://127.0.0.1:$PXP/__stats" | pyj "$1"; }
ms() { date +%s%3N; }

# ---------------------------------------------------------------------------
say "building"
if ! make -s -C "$root/worker" trace-rpc-gateway >"$scratch/build.log" 2>&1; then
  not_ok "trace-rpc-gateway builds" "$(tail -5 "$scratch/build.log")"; exit 1
fi
ok "trace-rpc-gateway builds -Wall -Wextra -Werror"

say "unit tests"
if make -s -C "$root/worker" tests/test_gateway >"$scratch/unit-build.log" 2>&1; then
  "$root/worker/tests/test_gateway" >"$scratch/unit.log" 2>&1
  urc=$?
  grep -E '^(ok|not ok) ' "$scratch/unit.log" | sed -E 's/^(ok|not ok) [0-9]+ - /\1 - unit: /'
  passed=$((passed + $(grep -c '^ok ' "$scratch/unit.log")))
  failed=$((failed + $(grep -c '^not ok ' "$scratch/unit.log")))
  [ "$urc" -ne 0 ] && ! grep -q '^not ok ' "$scratch/unit.log" && not_ok "unit tests exit 0"
else
  not_ok "unit tests build" "$(tail -5 "$scratch/unit-build.log")"
fi

secs=${FUZZ_SECONDS:-10}
if [ "$secs" -gt 0 ] && command -v clang >/dev/null 2>&1; then
  say "fuzzing the JSON-RPC parser for ${secs}s"
  mkdir -p "$scratch/fuzz/corpus"
  printf '%s' '{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x1","toBlock":"0x20"}]}' >"$scratch/fuzz/corpus/req"
  printf '%s' '[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":"a","error":{"code":-32005,"message":"rate limit"}},{"jsonrpc":"2.0","id":3,"result":[]}]' >"$scratch/fuzz/corpus/batch"
  printf '%s' '{"jsonrpc":"2.0","id":1,"result":{"number":"0x1","transactions":[]}}' >"$scratch/fuzz/corpus/single"
  # found by this fuzzer: valid JSON answers with numbers jansson cannot hold
  printf '%s' '{"jsonrpc":"2.0","id":1,"result":1e999}' >"$scratch/fuzz/corpus/big-real"
  printf '%s' '[{"jsonrpc":"2.0","id":3,"result":123456789012345678901234567890},{"jsonrpc":"2.0","id":1,"result":0},{"jsonrpc":"2.0","id":"a","result":0}]' >"$scratch/fuzz/corpus/big-int"
  if make -s -C "$root/worker" tests/fuzz_jsonrpc >"$scratch/fuzz/build.log" 2>&1 &&
     cp "$root/worker/tests/fuzz_jsonrpc" "$scratch/fuzz/fuzz_rpc"; then
    (cd "$scratch/fuzz" && ./fuzz_rpc -max_total_time="$secs" -max_len=8192 -timeout=5 -rss_limit_mb=1024 \
       -artifact_prefix="$scratch/fuzz/" corpus) >"$scratch/fuzz/fuzz.log" 2>&1
    if [ $? -eq 0 ]; then
      ok "fuzz: JSON-RPC parser and id matcher, ${secs}s under ASan/UBSan ($(grep -Eo 'Done [0-9]+ runs' "$scratch/fuzz/fuzz.log"))"
    else
      not_ok "fuzz: JSON-RPC parser" "$(grep -E 'ERROR|runtime error' "$scratch/fuzz/fuzz.log" | head -3)"
    fi
  else
    not_ok "fuzz target builds" "$(head -3 "$scratch/fuzz/build.log")"
  fi
fi

# ---------------------------------------------------------------------------
say "anvil nodes, the fault proxy and the gateway"
if ! anvil_install; then
  not_ok "anvil is installed (npm @foundry-rs/anvil-linux-*)"; exit 1
fi
A1=$(free_port); A2=$(free_port); PXP=$(free_port); GWP=$(free_port)
anvil_start "$A1" || { not_ok "anvil starts on $A1"; exit 1; }
anvil_start "$A2" || { not_ok "anvil starts on $A2"; exit 1; }
python3 "$here/faultproxy.py" "$PXP" "http://127.0.0.1:$A1/" >"$scratch/proxy.log" 2>&1 &
PX_PID=$!
disown "$PX_PID"
for _ in $(seq 1 100); do curl -s -m 1 "http://127.0.0.1:$PXP/__stats" >/dev/null && break; sleep 0.05; done

cat >"$scratch/gateway.conf" <<CONF
# The test gateway: fast retries, small caps.
listen = '127.0.0.1:$GWP, unix:$scratch/gw.sock'
max_request_size = 64kB
max_batch = 100
backoff_base = 20ms
backoff_max = 200ms
drain_timeout = 2s

# Through the fault proxy, with a credential in the URL path.
provider.flaky.chain_id = 31337
provider.flaky.url = 'http://127.0.0.1:$PXP/v3/\${TEST_RPC_KEY}'
provider.flaky.timeout = 2s
provider.flaky.low_speed_limit = 1kB
provider.flaky.low_speed_time = 1s
provider.flaky.max_response_size = 256kB
provider.flaky.failure_threshold = 1000
provider.flaky.retry_after_max = 2s
provider.flaky.rate_limit = 200
provider.flaky.rate_increase = 0.01
provider.flaky.methods = 'default, eth_getBalance'

# The same, giving up fast: for faults that do not stop.
provider.fragile.chain_id = 31337
provider.fragile.url = 'http://127.0.0.1:$PXP/v3/\${TEST_RPC_KEY}'
provider.fragile.retries = 1
provider.fragile.timeout = 1s
provider.fragile.low_speed_time = 1s
provider.fragile.failure_threshold = 1000
provider.fragile.getlogs_max_splits = 2

# Two real nodes, the first preferred.
provider.pair.chain_id = 31337
provider.pair.url = 'http://127.0.0.1:$A2/'
provider.pair.url = 'http://127.0.0.1:$A1/'
provider.pair.connect_timeout = 1s

provider.capped.chain_id = 31337
provider.capped.url = 'http://127.0.0.1:$A1/'
provider.capped.rate_limit = 20

provider.trickle.chain_id = 31337
provider.trickle.url = 'http://127.0.0.1:$A1/'
provider.trickle.rate_limit = 1
provider.trickle.queue_timeout = 0ms

provider.narrow.chain_id = 31337
provider.narrow.url = 'http://127.0.0.1:$PXP/'
provider.narrow.max_concurrency = 2
provider.narrow.failure_threshold = 1000

provider.wrongchain.chain_id = 1
provider.wrongchain.url = 'http://127.0.0.1:$A1/'
CONF

"$GW_BIN" --check-config -c "$scratch/gateway.conf" >"$scratch/check-config.out" 2>&1
check "--check-config accepts the test config" grep -q "provider.flaky.url = 'http://127.0.0.1:$PXP/...'" "$scratch/check-config.out"

"$GW_BIN" -c "$scratch/gateway.conf" >"$scratch/gateway.log" 2>&1 &
GW_PID=$!
up=
for _ in $(seq 1 100); do
  [ "$(curl -s -m 1 "http://127.0.0.1:$GWP/healthz")" = ok ] && { up=1; break; }
  sleep 0.05
done
if [ -z "$up" ]; then not_ok "the gateway starts" "$(tail -5 "$scratch/gateway.log")"; exit 1; fi
ok "the gateway starts; GET /healthz answers ok"

# Every provider that goes through the proxy checks its chain id first:
# let that happen before any fault is queued.
for p in flaky fragile narrow; do post $p "$(req 0 eth_chainId)"; done

# ---- forwarding -------------------------------------------------------------
post flaky "$(req 1 eth_chainId)"
check "a request is forwarded and answered" [ "$CODE" = 200 ] && [ "$(pyj 'd["result"]' <<<"$BODY")" = 0x7a69 ]

post flaky "$(req 7 eth_getBlockByNumber '["0x0",true]')"
direct=$(anvil_rpc "$A1" "$(req 7 eth_getBlockByNumber '["0x0",true]')")
check "a block comes back exactly as the node sent it" [ "$CODE" = 200 ] && [ "$BODY" = "$direct" ]

post flaky "$(req 8 eth_getBlockByNumber '["0xzz",false]')"
n0=$(pstat 'd["requests"]')
check "an upstream JSON-RPC error passes through with status 200" \
  [ "$CODE" = 200 ] && [ "$(pyj 'd["error"]["code"]' <<<"$BODY")" = -32602 ]
post flaky "$(req 9 eth_getBlockByNumber '["0xzz",false]')"
check "... and is not retried" [ "$(pstat 'd["requests"]')" = $((n0 + 1)) ]

# ---- batches ----------------------------------------------------------------
proxy_config '{"reverse_batches": true}'
batch="[$(req 3 eth_blockNumber),$(req '"a"' eth_chainId),$(req 1 net_version),$(req 2 anvil_mine)]"
post flaky "$batch"
check "a batch is answered in request order though upstream reversed it" \
  [ "$(pyj '[x["id"] for x in d]' <<<"$BODY")" = '[3, "a", 1, 2]' ]
check "... each answer is the right one" \
  [ "$(pyj '[d[1]["result"], d[3]["error"]["code"]]' <<<"$BODY")" = '["0x7a69", -32601]' ]
check "... and went upstream as one batch of the 3 allowed requests" [ "$(pstat 'd["batch_sizes"][-1]')" = 3 ]
proxy_config '{"reverse_batches": false}'

# ---- allow-list, bad requests ----------------------------------------------
n0=$(pstat 'd["requests"]')
post flaky "$(req 5 anvil_mine)"
check "anvil_mine is refused with -32601 and the documented message" \
  [ "$CODE" = 200 ] && [ "$(pyj 'd["error"]["message"]' <<<"$BODY")" = "method anvil_mine is not allowed by the gateway" ] \
  && [ "$(pyj 'd["id"]' <<<"$BODY")" = 5 ]
post flaky "$(req 6 evm_snapshot)"
post flaky "$(req 6 eth_sendRawTransaction '["0x00"]')"
check "evm_* and eth_sendRawTransaction are refused too" [ "$(pyj 'd["error"]["code"]' <<<"$BODY")" = -32601 ]
check "... without calling upstream" [ "$(pstat 'd["requests"]')" = "$n0" ]
post flaky "$(req 6 eth_getBalance '["0x0000000000000000000000000000000000000000","latest"]')"
check "a method added to the allow-list is forwarded" [ "$CODE" = 200 ] && [ "$(pyj 'd["result"]' <<<"$BODY")" = 0x0 ]

post nosuch "$(req 1 eth_chainId)"
check "an unknown provider is 404 with a JSON error" \
  [ "$CODE" = 404 ] && pyj 'd["error"]["message"]' <<<"$BODY" | grep -q 'unknown provider "nosuch"'
post flaky '{"jsonrpc":"2.0","id":1,'
check "invalid JSON is 400 / -32700" [ "$CODE" = 400 ] && [ "$(pyj 'd["error"]["code"]' <<<"$BODY")" = -32700 ]
post flaky '[]'
check "an empty batch is 400 / -32600" [ "$CODE" = 400 ] && [ "$(pyj 'd["error"]["code"]' <<<"$BODY")" = -32600 ]
post flaky "[$(req 1 eth_chainId),$(req 1 eth_blockNumber)]"
check "a batch repeating an id is 400" [ "$CODE" = 400 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GWP/rpc/flaky")
check "GET on /rpc/<provider> is 405" [ "$code" = 405 ]
python3 -c 'import json; print(json.dumps([{"jsonrpc":"2.0","id":i,"method":"eth_chainId","params":["x"*200]} for i in range(400)]))' >"$scratch/big.json"
post flaky "@$scratch/big.json"
check "a request over max_request_size is 413 (Content-Length)" [ "$CODE" = 413 ]
post flaky "@$scratch/big.json" -H 'Transfer-Encoding: chunked'
check "a chunked request over max_request_size is 413 too" [ "$CODE" = 413 ]
post flaky "$(req 1 eth_chainId)"
check "... and the gateway serves on" [ "$CODE" = 200 ]

# ---- faults, recovered by a retry -------------------------------------------
# recover NAME MODE COUNT CLASS [RETRY_AFTER]: the next COUNT upstream calls
# fail with MODE; the request still succeeds and CLASS is counted COUNT times.
recover() {
  local name=$1 mode=$2 count=$3 class=$4 ra=${5:-} before after t0
  before=$(err_metric flaky "$class")
  fault "$mode" "$count" "$ra"
  t0=$(ms)
  post flaky "$(req 11 eth_blockNumber)"
  ELAPSED=$(( $(ms) - t0 ))
  after=$(err_metric flaky "$class")
  if [ "$CODE" = 200 ] && [[ "$(pyj 'd.get("result","")' <<<"$BODY")" == 0x* ]] &&
     [ $((after - before)) -eq "$count" ]; then
    ok "$name: retried to success, $class counted $count"
  else
    not_ok "$name: retried to success, $class counted $count" "HTTP $CODE $BODY" "$class: $before -> $after"
  fi
}
cap0=$(metric 'trace_gateway_rate_cuts_total{provider="flaky"}')
recover "429 burst with Retry-After: 1" 429 2 http_429 1
check "... Retry-After was honoured (waited ${ELAPSED} ms >= 1800)" [ "$ELAPSED" -ge 1800 ]
rate=$(metric 'trace_gateway_rate_limit{provider="flaky"}')
check "... AIMD cut the rate below the cap (now $rate req/s)" \
  python3 -c "import sys; sys.exit(0 if float('$rate') < 200 else 1)"
check "... and counted the cut" [ "$(metric 'trace_gateway_rate_cuts_total{provider="flaky"}')" -gt "$cap0" ]
recover "503 outage" 503 2 http_5xx
recover "truncated body (Content-Length)" truncate 1 truncated
recover "truncated body (connection close)" truncate_close 1 invalid_json
recover "non-JSON body" nonjson 1 invalid_json
recover "wrong JSON-RPC id" wrong_id 1 id_mismatch
recover "slow trickled body" slow 1 timeout
recover "huge body of unknown length" huge 1 too_large
recover "huge body with Content-Length" huge_cl 1 too_large
recover "a hanging upstream" hang 1 timeout
recover "JSON-RPC rate-limit error (-32005)" rpc_limit 1 rpc_limit
recover "404 echoing the credential-bearing path" echo404 1 http_4xx
recover "redirect" redirect 1 redirect
check "... the redirect was never followed" [ "$(pstat 'd["redirect_hits"]')" = 0 ]
before=$(err_metric flaky id_mismatch)
fault drop_one 1
post flaky "[$(req 1 eth_chainId),$(req 2 eth_blockNumber)]"
check "a batch answered without one of its ids is retried" \
  [ "$CODE" = 200 ] && [ "$(pyj 'len(d)' <<<"$BODY")" = 2 ] && [ "$(err_metric flaky id_mismatch)" = $((before + 1)) ]

# ---- faults that do not stop: a clean error, never garbage ------------------
# persist MODE STATUS: both attempts of "fragile" fail; the client gets STATUS
# with a JSON-RPC error for its id.
persist() {
  local mode=$1 want=$2
  fault "$mode" 2
  post fragile "$(req 42 eth_blockNumber)"
  if [ "$CODE" = "$want" ] && [ "$(pyj 'd["id"]' <<<"$BODY")" = 42 ] &&
     [ "$(pyj 'd["error"]["code"]' <<<"$BODY")" = -32603 ] &&
     pyj 'd["error"]["message"]' <<<"$BODY" | grep -q '^gateway: fragile: ' &&
     ! grep -q -e '<html>' -e '0xabab' <<<"$BODY"; then
    ok "persistent $mode: HTTP $want with a JSON-RPC error, nothing of the bad body"
  else
    not_ok "persistent $mode: HTTP $want with a JSON-RPC error" "HTTP $CODE ${BODY:0:300}"
  fi
}
persist nonjson 502
persist wrong_id 502
persist truncate 502
persist huge 502
persist 503 502
persist 429 503
persist rpc_limit 503
persist slow 504
check "no fault left queued" [ "$(pstat 'd["faults_left"]')" = 0 ]

# ---- eth_getLogs range splitting --------------------------------------------
say "logs: a contract that logs its calldata, 12 transactions"
anvil_rpc "$A1" '{"jsonrpc":"2.0","id":1,"method":"anvil_setCode","params":["0x00000000000000000000000000000000000000aa","0x366000600037366000a000"]}' >/dev/null
for i in $(seq 1 12); do
  anvil_rpc "$A1" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sendTransaction\",\"params\":[{\"from\":\"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\",\"to\":\"0x00000000000000000000000000000000000000aa\",\"data\":\"0x$(printf '%02x' "$i")\"}]}" >/dev/null
done
for _ in $(seq 1 100); do
  n=$(anvil_rpc "$A1" "$(req 1 eth_blockNumber)" | pyj 'int(d["result"],16)')
  [ "$n" -ge 12 ] && break; sleep 0.05
done
anvil_rpc "$A1" '{"jsonrpc":"2.0","id":1,"method":"anvil_mine","params":["0x8"]}' >/dev/null
head=$(anvil_rpc "$A1" "$(req 1 eth_blockNumber)" | pyj 'd["result"]')
filter="[{\"fromBlock\":\"0x0\",\"toBlock\":\"$head\",\"address\":\"0x00000000000000000000000000000000000000aa\"}]"
want=$(anvil_rpc "$A1" "$(req 77 eth_getLogs "$filter")" | pyj 'd["result"]')
proxy_config '{"max_logs_range": 4}'
s0=$(metric 'trace_gateway_getlogs_splits_total{provider="flaky"}')
post flaky "$(req 77 eth_getLogs "$filter")"
got=$(pyj 'd.get("result")' <<<"$BODY")
check "eth_getLogs over 0..$head with a 4-block provider limit: split and merged equal to the node's answer" \
  [ "$CODE" = 200 ] && [ "$got" = "$want" ] && [ "$(pyj 'len(d)' <<<"$want")" -ge 12 ]
check "... through sub-requests ($(( $(metric 'trace_gateway_getlogs_splits_total{provider="flaky"}') - s0 )))" \
  [ "$(metric 'trace_gateway_getlogs_splits_total{provider="flaky"}')" -gt "$s0" ]
post flaky "[$(req 1 eth_blockNumber),$(req 2 eth_getLogs "$filter")]"
check "... also inside a batch" [ "$CODE" = 200 ] && [ "$(pyj 'd[1]["result"]' <<<"$BODY")" = "$want" ]
post fragile "$(req 78 eth_getLogs "$filter")"
check "out of split budget: the range error passes through, never a partial result" \
  [ "$CODE" = 200 ] && pyj 'd["error"]["message"]' <<<"$BODY" | grep -q 'query returned more than' \
  && [ "$(pyj 'd["id"]' <<<"$BODY")" = 78 ]
proxy_config '{"max_logs_range": 0}'

# ---- rate and concurrency limits -------------------------------------------
t0=$(ms)
seq 1 30 | xargs -P 10 -I{} curl -s -m 20 -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
  --data-binary "$(req 1 eth_blockNumber)" "http://127.0.0.1:$GWP/rpc/capped" >"$scratch/capped.out"
dt=$(( $(ms) - t0 ))
check "rate_limit 20/s: 30 concurrent requests all served, spread over ${dt} ms (>= 1200)" \
  [ "$(grep -c '^200$' "$scratch/capped.out")" = 30 ] && [ "$dt" -ge 1200 ]
post trickle "$(req 1 eth_blockNumber)"; c1=$CODE
post trickle "$(req 2 eth_blockNumber)"
check "rate_limit 1/s with queue_timeout 0: the second request at once is 503" \
  [ "$c1" = 200 ] && [ "$CODE" = 503 ] && pyj 'd["error"]["message"]' <<<"$BODY" | grep -q 'rate limit' \
  && [ "$(metric 'trace_gateway_queue_rejects_total{provider="trickle"}')" -ge 1 ]
proxy_reset
proxy_config '{"delay": 0.3}'
seq 1 6 | xargs -P 6 -I{} curl -s -m 20 -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
  --data-binary "$(req 1 eth_blockNumber)" "http://127.0.0.1:$GWP/rpc/narrow" >"$scratch/narrow.out"
check "max_concurrency 2: 6 parallel requests served, at most 2 upstream at once ($(pstat 'd["max_inflight"]'))" \
  [ "$(grep -c '^200$' "$scratch/narrow.out")" = 6 ] && [ "$(pstat 'd["max_inflight"]')" -le 2 ]
proxy_config '{"delay": 0}'

# ---- failover between two anvil nodes --------------------------------------
for i in 1 2 3; do post pair "$(req $i eth_blockNumber)"; done
c1=$(metric "trace_gateway_upstream_requests_total{provider=\"pair\",url=\"1\",host=\"127.0.0.1:$A2\"}")
check "pair: the first URL serves while it is healthy ($c1 calls)" [ "$CODE" = 200 ] && [ "$c1" -ge 3 ]
anvil_stop "$A2" KILL
okn=0
for i in $(seq 1 10); do post pair "$(req $i eth_blockNumber)"; [ "$CODE" = 200 ] && okn=$((okn + 1)); done
c2=$(metric "trace_gateway_upstream_requests_total{provider=\"pair\",url=\"2\",host=\"127.0.0.1:$A1\"}")
conn=$(err_metric pair connect 1 "$A2")
check "pair: after kill -9 of the first node, 10/10 requests succeed via the second ($okn ok, $c2 calls)" \
  [ "$okn" = 10 ] && [ "$c2" -ge 10 ]
check "... the failures were counted as connect errors ($conn) and failovers" \
  [ "$conn" -ge 1 ] && [ "$(metric 'trace_gateway_failovers_total{provider="pair"}')" -ge 1 ]
h1=$(metric "trace_gateway_url_health{provider=\"pair\",url=\"1\",host=\"127.0.0.1:$A2\"}")
h2=$(metric "trace_gateway_url_health{provider=\"pair\",url=\"2\",host=\"127.0.0.1:$A1\"}")
check "... and the dead URL's health ($h1) is below the live one's ($h2)" \
  python3 -c "import sys; sys.exit(0 if float('$h1') < float('$h2') else 1)"

# ---- chain id check ---------------------------------------------------------
post wrongchain "$(req 1 eth_blockNumber)"
check "a URL serving another chain is never used: 502" \
  [ "$CODE" = 502 ] && pyj 'd["error"]["message"]' <<<"$BODY" | grep -q 'another chain' \
  && [ "$(metric "trace_gateway_url_chain_verified{provider=\"wrongchain\",url=\"1\",host=\"127.0.0.1:$A1\"}")" = -1 ]
check "... and the log says why" grep -q 'provider=wrongchain host=127.0.0.1:[0-9]* serves chain id 31337, configured 1' "$scratch/gateway.log"

# ---- the unix socket --------------------------------------------------------
out=$(curl -s -m 5 --unix-socket "$scratch/gw.sock" -H 'Content-Type: application/json' \
  --data-binary "$(req 1 eth_chainId)" http://localhost/rpc/flaky)
check "the unix socket listener serves too" [ "$(pyj 'd["result"]' <<<"$out")" = 0x7a69 ]

# ---- metrics ----------------------------------------------------------------
metrics >"$scratch/metrics.txt"
check "GET /metrics is well-formed Prometheus text" python3 - "$scratch/metrics.txt" <<'PY'
import re, sys
seen_type, families, last = set(), [], None
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.eE+-]+|\+Inf|NaN)$')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        name = line.split()[2]
        assert name not in seen_type, "family twice: " + name
        seen_type.add(name); last = name
        continue
    if line.startswith("#") or not line:
        continue
    m = sample.match(line)
    assert m, "bad line: " + line
    base = re.sub(r'_(bucket|sum|count)$', '', m.group(1))
    assert m.group(1) == last or base == last, "sample outside its family: " + line
PY
missing=
for class in timeout http_429 http_5xx http_4xx invalid_json id_mismatch too_large truncated redirect rpc_limit; do
  [ "$(err_metric flaky $class)" -ge 1 ] || missing="$missing $class"
done
check "every error class seen is counted for its URL (missing:${missing:- none})" [ -z "$missing" ]
check "requests are counted by provider, method and outcome" \
  grep -q 'trace_gateway_requests_total{provider="flaky",method="eth_blockNumber",outcome="ok"} [1-9]' "$scratch/metrics.txt"
check "... refused methods as other/not_allowed" \
  grep -q 'trace_gateway_requests_total{provider="flaky",method="other",outcome="not_allowed"} [1-9]' "$scratch/metrics.txt"
check "the latency histogram, bytes and URL health are there" \
  grep -q 'trace_gateway_upstream_latency_seconds_count{provider="flaky"} [1-9]' "$scratch/metrics.txt" \
  && grep -q 'trace_gateway_upstream_received_bytes_total{provider="flaky"} [1-9]' "$scratch/metrics.txt" \
  && grep -q "trace_gateway_url_up{provider=\"flaky\",url=\"1\",host=\"127.0.0.1:$PXP\"} 1" "$scratch/metrics.txt"

# ---- logs and credentials ---------------------------------------------------
check "every upstream error is logged with provider, host, method and class" \
  grep -q "upstream error: provider=flaky host=127.0.0.1:$PXP method=eth_blockNumber class=invalid_json" "$scratch/gateway.log"
check "the credential was really sent upstream (in the URL path the proxy saw)" \
  grep -q "/v3/$MARKER" <<<"$(pstat 'd["paths"]')"
hits=$(cat "$scratch/gateway.log" "$scratch/metrics.txt" "$scratch/check-config.out" "$scratch/responses.log" | grep -c "$MARKER")
check "the credential appears nowhere: logs, metrics, --check-config, answers ($hits hits)" [ "$hits" = 0 ]

# ---- start-up refusals (exit 2: configuration) ---------------------------
out=$(env -u TEST_RPC_KEY "$GW_BIN" -c "$scratch/gateway.conf" 2>&1); rc=$?
check "an unset credential variable stops the start, named (exit $rc: configuration)" \
  [ "$rc" = 2 ] && grep -q 'TEST_RPC_KEY is not set' <<<"$out"
out=$("$GW_BIN" -c "$scratch/gateway.conf" --listen=0.0.0.0:$(free_port) 2>&1); rc=$?
check "a non-loopback listen address is refused without allow_remote (exit $rc)" \
  [ "$rc" = 2 ] && grep -q 'not a loopback address' <<<"$out"
out=$("$GW_BIN" -c "$scratch/gateway.conf" --listen=0.0.0.0:$(free_port) --check-config 2>&1); rc=$?
check "--check-config catches it too (exit $rc)" [ "$rc" = 2 ] && grep -q 'not a loopback address' <<<"$out"

# ---- SIGHUP: reloadable settings applied, the rest named -------------------
cp "$scratch/gateway.conf" "$scratch/gateway.conf.orig"
printf 'log_level = debug\nmax_batch = 7\n' >>"$scratch/gateway.conf"
kill -HUP "$GW_PID"
reloaded=
for _ in $(seq 1 100); do grep -q 'reloaded .*log_level debug' "$scratch/gateway.log" && { reloaded=1; break; }; sleep 0.05; done
check "SIGHUP reloads: log_level applied" [ -n "$reloaded" ]
check "... and the log names max_batch as needing a restart" \
  grep -q 'reload: max_batch cannot change without a restart' "$scratch/gateway.log"
post flaky "$(req 1 eth_chainId)"
check "... and the gateway serves on" [ "$CODE" = 200 ]
printf 'provider.flaky.url = ${NOPE_NOT_SET}\n' >>"$scratch/gateway.conf"
kill -HUP "$GW_PID"
for _ in $(seq 1 100); do grep -q 'reload failed' "$scratch/gateway.log" && break; sleep 0.05; done
check "a bad file on reload keeps the running settings (logged)" \
  grep -q 'reload failed, keeping the current settings: .*NOPE_NOT_SET is not set' "$scratch/gateway.log"
cp "$scratch/gateway.conf.orig" "$scratch/gateway.conf"

# ---- shutdown ---------------------------------------------------------------
kill -TERM "$GW_PID"
gone=
for _ in $(seq 1 100); do kill -0 "$GW_PID" 2>/dev/null || { gone=1; break; }; sleep 0.05; done
wait "$GW_PID"; rc=$?
check "SIGTERM: the gateway exits 0 within 5 s and removes its unix socket" \
  [ -n "$gone" ] && [ "$rc" = 0 ] && [ ! -e "$scratch/gw.sock" ]
GW_PID=

# A second SIGINT exits at once, with a request still in flight (exit 1).
"$GW_BIN" -c "$scratch/gateway.conf" --drain-timeout=30s >"$scratch/gateway2.log" 2>&1 &
GW_PID=$!
for _ in $(seq 1 100); do [ "$(curl -s -m 1 "http://127.0.0.1:$GWP/healthz")" = ok ] && break; sleep 0.05; done
proxy_reset
fault hang 5
curl -s -m 30 -o /dev/null -H 'Content-Type: application/json' --data-binary "$(req 1 eth_blockNumber)" \
  "http://127.0.0.1:$GWP/rpc/fragile" &
hung=$!
for _ in $(seq 1 100); do [ "$(pstat 'd["requests"]')" -ge 1 ] 2>/dev/null && break; sleep 0.05; done
kill -INT "$GW_PID"
for _ in $(seq 1 100); do grep -q 'SIGINT: draining' "$scratch/gateway2.log" && break; sleep 0.05; done
t0=$(ms)
kill -INT "$GW_PID"
gone=
for _ in $(seq 1 60); do kill -0 "$GW_PID" 2>/dev/null || { gone=1; break; }; sleep 0.05; done
wait "$GW_PID"; rc=$?
check "a second SIGINT exits now, a request in flight (exit $rc in $(( $(ms) - t0 )) ms)" \
  [ -n "$gone" ] && [ "$rc" = 1 ] && grep -q 'second SIGINT: exiting now' "$scratch/gateway2.log"
GW_PID=
kill "$hung" 2>/dev/null; wait "$hung" 2>/dev/null
[ "$failed" -eq 0 ]
