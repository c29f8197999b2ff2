#!/usr/bin/env bash
# The checks that keep code and docs saying the same thing where one is
# made from the other, and the layout rules of worker/ (docs/architecture.md):
#
#   - every SQLSTATE the SQL and C code raise or test is listed in
#     extension/errcodes.txt, and every listed Trace code is used;
#   - docs/sql-api.md's error table is what errcodes.txt says;
#   - docs/worker.md's and docs/gateway.md's settings tables are what the
#     programs' settings tables say (`--help=markdown`);
#   - lib/ includes only lib/ headers, chain/ only lib/ and chain/, a
#     program folder no other program's;
#   - no C function in worker/'s library, chain code, programs and tests is
#     longer than 120 lines.
#
# Prints "ok - ..." / "not ok - ..." and "N passed, N failed"; builds the
# programs first (make -C worker).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
  failed=$((failed + 1)); echo "not ok - $1"; shift
  local l; for l in "$@"; do printf '#   %s\n' "$l"; done
}
cd "$root" || exit 1
list=extension/errcodes.txt
gen=extension/gen_errcodes.sh

# ---- SQLSTATEs ---------------------------------------------------------------
listed=$(awk '!/^#/ && NF >= 3 {print $1}' "$list" | sort -u)
used=$( (grep -rhoE "'TR[0-9A-Z]{3}'" extension/sql/*.sql | tr -d "'";
         grep -rhoE '"TR[0-9A-Z]{3}"' extension/*.c worker --include=*.c | tr -d '"') | sort -u)
missing=$(comm -13 <(echo "$listed") <(echo "$used") | tr '\n' ' ')
if [ -z "$missing" ]; then ok "every SQLSTATE the SQL and C code use is in $list"
else not_ok "every SQLSTATE the SQL and C code use is in $list" "not listed: $missing"; fi
unused=
for code in $(echo "$listed" | grep '^TR'); do
  name=$(awk -v c="$code" '$1 == c {print toupper($2)}' "$list")
  grep -rqE "'$code'|$code|ERRCODE_TRACE_$name|TRACE_SQLSTATE_$name" extension/sql extension/*.c worker \
    --include=*.sql --include=*.c || unused="$unused $code"
done
if [ -z "$unused" ]; then ok "every Trace SQLSTATE in $list is raised or tested somewhere"
else not_ok "every Trace SQLSTATE in $list is raised or tested somewhere" "unused:$unused"; fi

# section FILE NAME: the lines between <!-- NAME --> and <!-- /NAME -->.
section() { awk -v b="<!-- $2 -->" -v e="<!-- /$2 -->" '$0 == e {p = 0} p; $0 == b {p = 1}' "$1"; }

# same LABEL FILE NAME CMD...: the section equals CMD's output.
same() {
  local label=$1 file=$2 name=$3 want have; shift 3
  want=$("$@" 2>&1); have=$(section "$file" "$name")
  if [ -z "$have" ]; then not_ok "$label" "no <!-- $name --> section in $file"
  elif [ "$want" = "$have" ]; then ok "$label"
  else not_ok "$label" "$file differs from \`$*\`:" "$(diff <(echo "$have") <(echo "$want") | head -8)"; fi
}
same "docs/sql-api.md's error table is errcodes.txt's" docs/sql-api.md errcodes \
  sh -c "sh $gen markdown < $list"

# ---- settings tables ---------------------------------------------------------
if make -s -C worker all >/tmp/trace-lint-build.$$ 2>&1; then
  same "docs/worker.md's settings table is trace-worker's" docs/worker.md settings \
    worker/bin/trace-worker --help=markdown
  same "docs/gateway.md's settings table is trace-rpc-gateway's" docs/gateway.md settings \
    worker/bin/trace-rpc-gateway --help=markdown
else
  not_ok "the programs build" "$(tail -5 /tmp/trace-lint-build.$$)"
fi
rm -f /tmp/trace-lint-build.$$

# ---- layout ------------------------------------------------------------------
# includes FOLDER ALLOWED...: quoted includes of FOLDER's files that are no
# header of the allowed folders.
includes() {
  local dir=$1 f h bad=; shift
  for f in $(find "worker/$dir" -name '*.[ch]'); do
    for h in $(grep -hoE '^#include "[^"]+"' "$f" | cut -d'"' -f2); do
      local found=
      for a in "$@"; do [ -e "worker/$a/$h" ] && found=1; done
      [ -n "$found" ] || bad="$bad $f:$h"
    done
  done
  echo "$bad"
}
w=trace-worker
check_includes() {
  local label=$1 bad; shift
  bad=$(includes "$@")
  if [ -z "$bad" ]; then ok "$label"; else not_ok "$label" "$bad"; fi
}
check_includes "lib/ includes only lib/ headers" lib lib
check_includes "chain/ includes only lib/ and chain/ headers" chain lib chain
check_includes "trace-worker/ includes nothing of another program" $w lib chain $w $w/operators \
  $w/operators/udf $w/operators/chain
check_includes "trace-rpc-gateway/ includes nothing of another program" trace-rpc-gateway lib chain \
  trace-rpc-gateway
exits=$(grep -nE '\b(exit|_exit|abort)\s*\(' worker/lib/*.c | grep -v '^\s*\*' || true)
if [ -z "$exits" ]; then ok "nothing in lib/ exits the process"
else not_ok "nothing in lib/ exits the process" "$exits"; fi

# ---- function length ---------------------------------------------------------
# (worker/parquet keeps its own build and rules until it joins this layout.)
long=$(find worker/lib worker/chain worker/trace-worker worker/trace-rpc-gateway worker/tests \
         -name '*.c' | sort | xargs awk '
  FNR == 1 { name = "" }
  /^[A-Za-z_][A-Za-z0-9_]*\(/ { split($0, a, "("); name = a[1]; start = FNR }
  /^\{/ && name != "" { open = start }
  /^\}/ && open { if (FNR - open + 1 > 120) printf "%s:%d %s (%d lines)\n", FILENAME, open, name, FNR - open + 1; open = 0; name = "" }')
if [ -z "$long" ]; then ok "no C function in worker/{lib,chain,trace-*,tests} is longer than 120 lines"
else not_ok "no C function in worker/{lib,chain,trace-*,tests} is longer than 120 lines" "$long"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
