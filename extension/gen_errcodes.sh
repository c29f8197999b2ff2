#!/bin/sh
# gen_errcodes.sh header|markdown < errcodes.txt: what errcodes.txt says,
# as a C header (the Trace codes: TRACE_SQLSTATE_<NAME> "TRxxx" for libpq
# clients, ERRCODE_TRACE_<NAME> for ereport where MAKE_SQLSTATE is known)
# or as the Markdown error table of docs/sql-api.md (every code).
set -eu
mode=${1:?usage: gen_errcodes.sh header|markdown < errcodes.txt}
case $mode in
header)
  awk '
    BEGIN {
      print "/* trace_errcodes.h: generated from extension/errcodes.txt by"
      print " * extension/gen_errcodes.sh: do not edit. */"
      print "#ifndef TRACE_ERRCODES_H"
      print "#define TRACE_ERRCODES_H"
      print ""
    }
    /^#/ || NF < 3 || $1 !~ /^TR/ { next }
    {
      n = toupper($2); code[++k] = $1; name[k] = n
      printf "#define TRACE_SQLSTATE_%s \"%s\"\n", n, $1
    }
    END {
      print ""
      print "#ifdef MAKE_SQLSTATE"
      for (i = 1; i <= k; i++) {
        c = code[i]
        printf "#define ERRCODE_TRACE_%s MAKE_SQLSTATE(%c%s%c, %c%s%c, %c%s%c, %c%s%c, %c%s%c)\n", name[i],
          39, substr(c, 1, 1), 39, 39, substr(c, 2, 1), 39, 39, substr(c, 3, 1), 39,
          39, substr(c, 4, 1), 39, 39, substr(c, 5, 1), 39
      }
      print "#endif"
      print ""
      print "#endif"
    }'
  ;;
markdown)
  awk '
    BEGIN { print "| SQLSTATE | meaning |"; print "|---|---|" }
    /^#/ || NF < 3 { next }
    { m = $0; sub(/^[^ ]+ +[^ ]+ +/, "", m); printf "| `%s` | %s |\n", $1, m }'
  ;;
*)
  echo "gen_errcodes.sh: unknown mode $mode (header or markdown)" >&2; exit 2 ;;
esac
