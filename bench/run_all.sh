#!/bin/sh
# Runs every pidlock benchmark and writes docs/benchmarks.md.
#
#   bench/run_all.sh [--quick]
#
# Builds Release into $PIDLOCK_BENCH_BUILD (default /tmp/build-bench), then
#   1. micro_bench (Google Benchmark, JSON)      -> docs/bench-results/micro.json
#   1b. Python filelock's cycle                   -> docs/bench-results/filelock_cycle.csv
#   2. system calls per cycle (strace -c)         -> docs/bench-results/syscalls.csv
#   2b. cycle cost beside PostgreSQL's cycle: instructions (callgrind) and
#       interleaved wall medians, tmpfs and disk, without and with fsync;
#       the held lock's name in /proc/PID/fd       -> cycle_cost.csv, proc_fd.txt
#   3. hand-off, take-over, loss, throughput     -> docs/bench-results/*.csv, handoff.md
#   3b. command start-up (hyperfine) and peak memory -> cli_startup.json, cli_peak.csv
#   4. dotlockfile take-over without -p (one trial, about 5.5 minutes of
#      sleeping; runs in the background during 1-3; skipped with --quick)
#   5. plots (gnuplot) and docs/benchmarks.md (bench/render_report.py)
# About 8 minutes in all (2 with --quick). Needs the packages of
# bench/setup.sh. Benchmarks are not tests: nothing here is run by ctest.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PIDLOCK_BENCH_BUILD:-/tmp/build-bench}
OUT=$ROOT/docs/bench-results
QUICK=
[ "${1:-}" = "--quick" ] && QUICK=--quick
PY=/usr/bin/python3  # Debian's python, where python3-filelock lives

mkdir -p "$OUT"
echo "== build ($BUILD)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPIDLOCK_BUILD_BENCH=ON \
  -DPIDLOCK_BUILD_TESTS=OFF -DPIDLOCK_BUILD_EXAMPLES=OFF >/dev/null
make -C "$BUILD" -j"$(nproc)" --no-print-directory pidlock_micro_bench pidlock_handoff \
  pidlock_syscall_driver stamp_helper peak_rss >/dev/null
# The CLI peer 'pidlock run' is measured when the CLI builds.
CLI=
if make -C "$BUILD" -j"$(nproc)" --no-print-directory pidlock_cli >/dev/null 2>&1 && \
   [ -x "$BUILD/tools/pidlock" ]; then
  CLI=$BUILD/tools/pidlock
else
  echo "   (no pidlock CLI in this tree: 'pidlock run' is skipped)"
fi
B=$BUILD/bench

# Start the one slow trial first, so that it sleeps while the rest runs.
NOPID_PID=
rm -f "$OUT/takeover_dotlockfile_nopid.csv"
if [ -z "$QUICK" ] && command -v dotlockfile >/dev/null; then
  echo "== dotlockfile take-over without -p (background, ~5.5 min)"
  "$B/pidlock_handoff" takeover --impl dotlockfile --trials 1 \
    >"$OUT/takeover_dotlockfile_nopid.csv" 2>/dev/null &
  NOPID_PID=$!
fi

{
  echo "nproc=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo "tmpfs=$(df -T /dev/shm | awk 'NR==2 {print $2}') (/dev/shm)"
  echo "disk=$(df -T /tmp | awk 'NR==2 {print $2 " on " $1}') (/tmp)"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "flock=$(flock --version 2>/dev/null | head -1)"
  echo "python_filelock=$($PY -c 'import filelock; print(filelock.__version__)' 2>/dev/null || echo missing)"
  echo "liblockfile=$(dpkg-query -W -f='${Version}' liblockfile-bin 2>/dev/null || echo missing)"
  echo "procmail=$(dpkg-query -W -f='${Version}' procmail 2>/dev/null || echo missing)"
} >"$OUT/machine.txt"

echo "== micro_bench"
MIN_TIME=0.2
REPS=3
[ -n "$QUICK" ] && MIN_TIME=0.05 && REPS=1
"$B/pidlock_micro_bench" --benchmark_format=json --benchmark_out="$OUT/micro.json" \
  --benchmark_out_format=json --benchmark_min_time="$MIN_TIME" --benchmark_repetitions="$REPS" \
  --benchmark_report_aggregates_only=true >/dev/null

echo "== python filelock cycle"
FLC_SECONDS=1
[ -n "$QUICK" ] && FLC_SECONDS=0.2
FLC_TMPFS=$(mktemp -d /dev/shm/pidlock-flc.XXXXXX)
FLC_DISK=$(mktemp -d /tmp/pidlock-flc.XXXXXX)
{
  $PY "$ROOT/bench/filelock_cycle.py" "$FLC_TMPFS" tmpfs "$FLC_SECONDS"
  $PY "$ROOT/bench/filelock_cycle.py" "$FLC_DISK" disk "$FLC_SECONDS" | tail -n +2
} >"$OUT/filelock_cycle.csv" || echo "   (python3-filelock missing: no filelock row)"
rmdir "$FLC_TMPFS" "$FLC_DISK"

echo "== system calls per cycle (strace)"
$PY "$ROOT/bench/count_syscalls.py" "$B/pidlock_syscall_driver" "$OUT/syscalls.csv" 2000

echo "== cycle cost beside PostgreSQL's cycle (bench/cycle_cost.sh)"
CC_N=20000; CC_FSYNC_N=300; CC_ROUNDS=7
[ -n "$QUICK" ] && CC_N=2000 && CC_FSYNC_N=30 && CC_ROUNDS=3
CC_TMPFS=$(mktemp -d /dev/shm/pidlock-cc.XXXXXX)
CC_DISK=$(mktemp -d /tmp/pidlock-cc.XXXXXX)
{
  echo "fs,impl,instructions_per_cycle,wall_us_median"
  for fs in tmpfs disk; do
    d=$CC_TMPFS; [ $fs = disk ] && d=$CC_DISK
    "$ROOT/bench/cycle_cost.sh" "$B/pidlock_syscall_driver" "$d" $CC_N $CC_ROUNDS pidlock_nosync pg_nosync |
      tail -n +2 | sed "s|^\([^,]*\),[^,]*,|$fs,\1,|"
  done
  "$ROOT/bench/cycle_cost.sh" "$B/pidlock_syscall_driver" "$CC_DISK" $CC_FSYNC_N $CC_ROUNDS \
    pidlock_fsync pg_fsync pg_fsync_dir | tail -n +2 | sed "s|^\([^,]*\),[^,]*,|disk,\1,|"
} >"$OUT/cycle_cost.csv"
rm -rf "$CC_TMPFS" "$CC_DISK"
# Goal: the held lock shows under its own name (ls -l /proc/PID/fd, lsof).
rm -f "$OUT/proc_fd.txt"
if [ -n "$CLI" ]; then
  PF=$(mktemp -d /tmp/pidlock-pf.XXXXXX)
  "$CLI" run "$PF/named.lock" -- sh -c 'ls -l /proc/$$/fd' >"$PF/fds" 2>/dev/null || true
  if grep -q "$PF/named.lock\$" "$PF/fds"; then echo "named" >"$OUT/proc_fd.txt"
  else echo "not named: $(grep -i lock "$PF/fds" | head -1)" >"$OUT/proc_fd.txt"; fi
  rm -rf "$PF"
fi

echo "== hand-off, take-over, loss, throughput"
"$B/pidlock_handoff" suite --out "$OUT" ${CLI:+--cli "$CLI"} $QUICK >"$OUT/handoff.md"
cat "$OUT/handoff.md"

if [ -n "$CLI" ] && command -v hyperfine >/dev/null; then
  echo "== command start-up and peak memory (hyperfine)"
  RUNS=300
  [ -n "$QUICK" ] && RUNS=50
  BENCH_JSON="$OUT/cli_startup.json" BENCH_PEAK="$OUT/cli_peak.csv" \
    bash "$ROOT/bench/cli_startup.sh" "$CLI" "$RUNS" || true  # over target: reported, not fatal
fi

if [ -n "$NOPID_PID" ]; then
  echo "== waiting for the dotlockfile take-over without -p"
  wait "$NOPID_PID" || true
fi
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

echo "== report"
$PY "$ROOT/bench/render_report.py" "$OUT" "$ROOT/docs/benchmarks.md" "$ROOT/bench/findings.md"
echo "wrote $ROOT/docs/benchmarks.md"
