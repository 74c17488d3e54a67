#!/bin/sh
# Cost of one acquire + release cycle, pidlock beside its peers, measured
# two ways in one run:
#   * user-space instructions per cycle (callgrind; deterministic, so it
#     shows a change even on a loaded machine): (Ir(N) - Ir(0)) / N;
#   * wall time per cycle, the median of ROUNDS runs of N cycles, the
#     implementations interleaved round by round so that they share the
#     machine's load.
#
#   bench/cycle_cost.sh DRIVER DIR [N] [ROUNDS] [IMPL...]
#
# DRIVER is pidlock_syscall_driver; DIR the folder (tmpfs or disk) the lock
# file lives in. Prints CSV: impl,dir,instructions_per_cycle,wall_us_median.
set -eu
DRIVER=$1
DIR=$2
N=${3:-20000}
ROUNDS=${4:-9}
shift 4 2>/dev/null || shift $#
IMPLS=${*:-"pidlock_nosync pg_nosync"}
CG_N=2000

instructions() {  # IMPL CYCLES -> total Ir of the run
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$DRIVER" "$1" "$2" "$DIR" 2>"$out" >/dev/null
  sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$out"
  rm -f "$out"
}

now_ns() { date +%s%N; }

TIMES=$(mktemp)
r=0
while [ "$r" -lt "$ROUNDS" ]; do
  for impl in $IMPLS; do
    t0=$(now_ns)
    "$DRIVER" "$impl" "$N" "$DIR"
    t1=$(now_ns)
    echo "$impl $(( (t1 - t0) ))" >>"$TIMES"
  done
  r=$((r + 1))
done

echo "impl,dir,instructions_per_cycle,wall_us_median"
for impl in $IMPLS; do
  ir=""
  if command -v valgrind >/dev/null; then
    i0=$(instructions "$impl" 0)
    i1=$(instructions "$impl" "$CG_N")
    ir=$(( (i1 - i0) / CG_N ))
  fi
  med=$(awk -v impl="$impl" '$1 == impl {print $2}' "$TIMES" | sort -n |
        awk -v n="$N" '{a[NR] = $1} END {printf "%.2f", a[int((NR + 1) / 2)] / n / 1000}')
  echo "$impl,$DIR,$ir,$med"
done
rm -f "$TIMES"
