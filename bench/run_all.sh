#!/bin/sh
# Runs every pidlock benchmark and writes docs/benchmarks.md.
#
#   bench/run_all.sh [--quick]
#
# Builds Release into $PIDLOCK_BENCH_BUILD (default /tmp/build-bench), then
#   1. micro_bench (Google Benchmark, JSON)      -> docs/bench-results/micro.json,
#      the fsync cycles apart                     -> micro_fsync.json
#   1b. Python filelock's cycle                   -> docs/bench-results/filelock_cycle.csv
#   2. system calls per cycle (strace -c)         -> docs/bench-results/syscalls.csv
#   2b. user-space instructions per cycle (callgrind, when valgrind is
#       installed)                                -> docs/bench-results/instructions.csv
#   3. hand-off, take-over, loss, throughput     -> docs/bench-results/*.csv, handoff.md
#   3a. waiter CPU per hand-off (1-64 waiters), acquisition order against
#       arrival order, the held lock's name in /proc/PID/fd
#                                                 -> waiter_cpu.csv, fcfs.csv, fd_name.csv
#   3b. command start-up (hyperfine) and peak memory -> cli_startup.json, cli_peak.csv
#   4. dotlockfile take-over without -p (one trial, about 5.5 minutes of
#      sleeping; runs in the background during 1-3; skipped with --quick)
#   5. plots (gnuplot) and docs/benchmarks.md (bench/render_report.py)
# About 6 minutes in all (2 with --quick) on 2 loaded CPUs. Needs the packages of
# bench/setup.sh. Benchmarks are not tests: nothing here is run by ctest.
#
# The disk file system is ext4: /tmp when it is ext4, else (an overlay, say)
# a loop-mounted ext4 image made here and removed on exit (as root, with
# mkfs.ext4; PIDLOCK_BENCH_LOOP_EXT4=1 forces it); otherwise /tmp, and the
# report says which file system it was. PIDLOCK_BENCH_DISK_DIR overrides.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PIDLOCK_BENCH_BUILD:-/tmp/build-bench}
OUT=$ROOT/docs/bench-results
QUICK=
[ "${1:-}" = "--quick" ] && QUICK=--quick
PY=/usr/bin/python3  # Debian's python, where python3-filelock lives

mkdir -p "$OUT"

DISK_IMG=
DISK_MNT=
cleanup() {
  if [ -n "$DISK_MNT" ]; then umount "$DISK_MNT" 2>/dev/null || true; rmdir "$DISK_MNT" 2>/dev/null || true; fi
  if [ -n "$DISK_IMG" ]; then rm -f "$DISK_IMG"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fs_of() { stat -f -c %T "$1" 2>/dev/null || echo unknown; }
DISK_NOTE=
if [ -n "${PIDLOCK_BENCH_DISK_DIR:-}" ]; then
  DISK=$PIDLOCK_BENCH_DISK_DIR
elif [ "$(fs_of /tmp)" = ext2/ext3 ] && [ -z "${PIDLOCK_BENCH_LOOP_EXT4:-}" ]; then
  DISK=/tmp
elif [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null; then
  DISK_IMG=$(mktemp /var/tmp/pidlock-bench-ext4.XXXXXX)
  DISK_MNT=$(mktemp -d /tmp/pidlock-bench-ext4.XXXXXX)
  if truncate -s 256M "$DISK_IMG" && mkfs.ext4 -q -F "$DISK_IMG" && mount -o loop "$DISK_IMG" "$DISK_MNT"; then
    DISK=$DISK_MNT
    DISK_NOTE="ext4 on a loop-mounted 256 MiB image in /var/tmp ($(fs_of /var/tmp)); /tmp is $(fs_of /tmp)"
  else
    rmdir "$DISK_MNT"; DISK_MNT=
    DISK=/tmp
    DISK_NOTE="not ext4: /tmp is $(fs_of /tmp) and the loop mount of an ext4 image failed"
  fi
else
  DISK=/tmp
  DISK_NOTE="not ext4: /tmp is $(fs_of /tmp) (a loop-mounted ext4 image needs root and mkfs.ext4)"
fi
export PIDLOCK_BENCH_DISK_DIR=$DISK
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
  echo "disk=$(df -T "$DISK" | awk 'NR==2 {print $2 " on " $1}') ($DISK)"
  echo "disk_note=$DISK_NOTE"
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
# Repetitions interleaved at random, so that a burst of load does not fall
# on one implementation only. The fsync cycles run on their own, after a
# sync: interleaved with the others, the journal commits they cause on
# ext4 land on the cycles without fsync that follow them.
micro() {  # FILTER JSON
  sync
  "$B/pidlock_micro_bench" --benchmark_filter="$1" --benchmark_format=json --benchmark_out="$OUT/$2" \
    --benchmark_out_format=json --benchmark_min_time="$MIN_TIME" --benchmark_repetitions="$REPS" \
    --benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true >/dev/null
}
# It crashed once (SIGSEGV inside libstdc++, not reproduced since): retry once.
for part in "-fsync micro.json" "fsync micro_fsync.json"; do
  set -- $part
  if ! micro "$1" "$2"; then
    echo "   (micro_bench $1 failed; running it again)"
    echo "micro_bench_retried=$1" >>"$OUT/machine.txt"
    micro "$1" "$2"
  fi
done

echo "== python filelock cycle"
FLC_SECONDS=1
[ -n "$QUICK" ] && FLC_SECONDS=0.2
FLC_TMPFS=$(mktemp -d /dev/shm/pidlock-flc.XXXXXX)
FLC_DISK=$(mktemp -d "$DISK/pidlock-flc.XXXXXX")
{
  $PY "$ROOT/bench/filelock_cycle.py" "$FLC_TMPFS" tmpfs "$FLC_SECONDS"
  $PY "$ROOT/bench/filelock_cycle.py" "$FLC_DISK" disk "$FLC_SECONDS" | tail -n +2
} >"$OUT/filelock_cycle.csv" || echo "   (python3-filelock missing: no filelock row)"
rmdir "$FLC_TMPFS" "$FLC_DISK"

echo "== system calls per cycle (strace)"
$PY "$ROOT/bench/count_syscalls.py" "$B/pidlock_syscall_driver" "$OUT/syscalls.csv" 2000

if command -v valgrind >/dev/null; then
  echo "== instructions per cycle (callgrind)"
  $PY "$ROOT/bench/count_instructions.py" "$B/pidlock_syscall_driver" "$OUT/instructions.csv" 1000
else
  rm -f "$OUT/instructions.csv"
  echo "   (valgrind missing: no instruction counts)"
fi

echo "== waiter CPU per hand-off, acquisition order, the held lock's name"
"$B/pidlock_handoff" goals --out "$OUT" ${CLI:+--cli "$CLI"} $QUICK
if [ -n "$CLI" ]; then
  # The command: what /proc/PID/fd of 'pidlock run' shows while it holds.
  FD_DIR=$(mktemp -d /dev/shm/pidlock-fd.XXXXXX)
  SHOWN=$("$CLI" run "$FD_DIR/cli.lock" -- sh -c 'for f in /proc/$PPID/fd/*; do readlink "$f"; done' |
    grep -F "$FD_DIR/" | head -n 1 || true)
  YES=no
  [ "$SHOWN" = "$FD_DIR/cli.lock" ] && YES=yes
  printf '"pidlock run","%s","%s",%s\n' "$FD_DIR/cli.lock" "$SHOWN" "$YES" >>"$OUT/fd_name.csv"
  rm -rf "$FD_DIR"
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
