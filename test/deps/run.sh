#!/usr/bin/env bash
# The install contract (issue 12): every command the scripts call is
# installed by .ci/install-deps.sh, in the base system, a builtin, or the
# project's own (.ci/check-commands.py).  Then the check is shown to fail:
# with curl or acl taken out of the package list it must name the missing
# command and a script that calls it.
#
#   bash test/deps/run.sh
#
# Prints "ok - ..." / "not ok - ..." lines; exits non-zero when any failed.
# Run after `make deps` (make test does): the listed packages must be
# installed for dpkg to map their commands.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
check=$root/.ci/check-commands.py
scratch=$(mktemp -d /tmp/trace-deps-test.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
failed=0

ok() { echo "ok - $1"; }
not_ok() {
  failed=$((failed + 1)); echo "not ok - $1"; shift
  local l; for l in "$@"; do printf '#   %s\n' "$l"; done
}

out=$(python3 "$check" 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
  ok "every command the scripts call is installed or provided ($(tail -1 <<<"$out"))"
else
  not_ok "every command the scripts call is installed or provided" "${out//$'\n'/$'\n'#   }"
fi

# without_package PKG COMMAND SCRIPT: the check, given the list without PKG,
# fails and names COMMAND where SCRIPT calls it.
without_package() {
  local pkg=$1 cmd=$2 script=$3
  bash "$root/.ci/install-deps.sh" --list | grep -vx "$pkg" >"$scratch/packages"
  out=$(python3 "$check" --packages "$scratch/packages" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] && grep -Eq "^$script:[0-9]+: $cmd: from package $pkg, which" <<<"$out"; then
    ok "without $pkg in the list the check fails, naming $cmd in $script"
  else
    not_ok "without $pkg in the list the check fails, naming $cmd in $script" "exit $rc" "$(head -5 <<<"$out")"
  fi
}
without_package curl curl test/lib/anvil.sh
without_package acl setfacl dags/demo/demo.sh
without_package procps ps test/worker/lib.sh
without_package iproute2 ss bench/lib.sh

# A command no package provides (a script calling a tool nobody installs).
printf '#!/usr/bin/env bash\nset -e\nno-such-tool-%s --version | grep x\n' "$$" >"$scratch/script.sh"
out=$(cd "$root" && python3 "$check" --extra "$scratch/script.sh" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "script.sh:3: no-such-tool-$$: not installed by .ci/install-deps.sh" <<<"$out"; then
  ok "a command no package provides is named with its script and line"
else
  not_ok "a command no package provides is named with its script and line" "exit $rc" "$(tail -3 <<<"$out")"
fi

[ $failed -eq 0 ]
