#!/usr/bin/env bash
# Start-up cost of the pidlock command, as a whole process:
#   pidlock run LOCK -- true     against     flock LOCK true
# Both take a lock, fork, exec true, wait and exit; the target is a ratio of
# at most 1.5. Uses hyperfine when installed (Debian package hyperfine),
# otherwise a bash loop.
#
# Usage: bench/cli_startup.sh [PIDLOCK_BINARY] [RUNS]
#   PIDLOCK_BINARY  default: build/tools/pidlock (relative to the repository)
#   RUNS            default: 500
# With BENCH_JSON=FILE, hyperfine's results go to FILE as JSON; with
# BENCH_PEAK=FILE, the peak resident set sizes go to FILE as CSV
# (bench/run_all.sh uses both).
# The lock lives in a fresh folder under ${TMPDIR:-/tmp}; set TMPDIR to
# measure another file system, and BENCH_NO_HYPERFINE=1 to force the loop.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pidlock=${1:-$repo/build/tools/pidlock}
runs=${2:-500}

if [[ ! -x $pidlock ]]; then
  echo "cli_startup.sh: no pidlock binary at $pidlock (build it, or pass its path)" >&2
  exit 64
fi
if ! command -v flock >/dev/null; then
  echo "cli_startup.sh: flock(1) is not installed (Debian package util-linux)" >&2
  exit 69
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/pidlock-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
lock=$dir/bench.lock
true_bin=$(command -v true)  # the program, not the shell builtin

echo "pidlock: $pidlock ($("$pidlock" --version))"
echo "lock:    $lock ($(stat -f -c %T "$dir") file system), $runs runs each"
echo

if [[ -z ${BENCH_NO_HYPERFINE:-} ]] && command -v hyperfine >/dev/null; then
  # -N: no intermediate shell, so only the commands themselves are timed.
  # hyperfine's own report adds the CPU time (User, System), which a
  # loaded machine disturbs far less than the wall time.
  hyperfine -N --warmup 20 --runs "$runs" --style basic \
    --export-markdown "$dir/table.md" ${BENCH_JSON:+--export-json "$BENCH_JSON"} \
    -n "flock LOCK true" "flock $lock $true_bin" \
    -n "pidlock run LOCK -- true" "$pidlock run $lock -- $true_bin" | grep -E '^(Benchmark|  Time|  Range)'
  echo
  cat "$dir/table.md"
  # The ratio of the means, from the "Relative" column of pidlock's row.
  ratio=$(awk -F'|' '/pidlock run/ { gsub(/ /, "", $6); split($6, r, "±"); print r[1] }' "$dir/table.md")
else
  # A bash loop: mean wall time per run, in milliseconds.
  mean_ms() {
    local start end i
    for ((i = 0; i < 20; i++)); do "$@"; done  # warm-up
    start=$EPOCHREALTIME
    for ((i = 0; i < runs; i++)); do "$@"; done
    end=$EPOCHREALTIME
    awk -v s="$start" -v e="$end" -v n="$runs" 'BEGIN { printf "%.3f", (e - s) * 1000 / n }'
  }
  flock_ms=$(mean_ms flock "$lock" "$true_bin")
  pidlock_ms=$(mean_ms "$pidlock" run "$lock" -- "$true_bin")
  ratio=$(awk -v p="$pidlock_ms" -v f="$flock_ms" 'BEGIN { printf "%.2f", p / f }')
  printf '| %-26s | %10s | %8s |\n' Command "Mean [ms]" Relative
  printf '|%s|%s|%s|\n' "----------------------------" "------------" "----------"
  printf '| %-26s | %10s | %8s |\n' "flock LOCK true" "$flock_ms" 1.00
  printf '| %-26s | %10s | %8s |\n' "pidlock run LOCK -- true" "$pidlock_ms" "$ratio"
fi

# Peak memory: the largest resident set among each command's processes
# (the locker and the `true` it runs), through bench/peak_rss.c (a tiny
# static launcher: a large one would count its own pre-exec image), the
# largest of 5 runs. PEAK_RSS names the built helper.
peak_rss=${PEAK_RSS:-$(dirname "$pidlock")/../bench/peak_rss}
peak_kib() {
  local best=0 kib i
  for ((i = 0; i < 5; i++)); do
    kib=$("$peak_rss" "$@") || return 1
    ((kib > best)) && best=$kib
  done
  echo "$best"
}
if [[ -x $peak_rss ]]; then
  flock_kib=$(peak_kib flock "$lock" "$true_bin")
  pidlock_kib=$(peak_kib "$pidlock" run "$lock" -- "$true_bin")
  echo
  echo "peak RSS: flock $flock_kib KiB, pidlock run $pidlock_kib KiB"
  [[ -z ${BENCH_PEAK:-} ]] || printf 'impl,peak_rss_kib\nflock LOCK true,%s\npidlock run LOCK -- true,%s\n' \
    "$flock_kib" "$pidlock_kib" >"$BENCH_PEAK"
else
  echo "(no $peak_rss: peak memory not measured; build the bench targets or set PEAK_RSS)"
fi

echo
echo "ratio pidlock/flock: $ratio (target: at most 1.5)"
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.5) }' || { echo "over target" >&2; exit 1; }
