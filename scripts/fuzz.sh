#!/usr/bin/env bash
# Builds pidlock's libFuzzer targets with clang (ASan + UBSan) and runs each
# one for SECONDS (default 60), starting from the seed corpora in
# fuzz/corpus/. New inputs go to a scratch copy, never into the repository.
# A crash leaves its reproducer in $PIDLOCK_FUZZ_DIR/artifacts and makes
# the script fail.
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment: PIDLOCK_FUZZ_DIR (default /tmp/pidlock-fuzz) for the build,
# corpora and artifacts; PIDLOCK_FUZZ_JOBS (default 1) parallel workers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
work="${PIDLOCK_FUZZ_DIR:-/tmp/pidlock-fuzz}"
jobs="${PIDLOCK_FUZZ_JOBS:-1}"
mkdir -p "$work/artifacts"

# A build tree configured from another checkout cannot be reused.
cache="$work/build/CMakeCache.txt"
if [ -f "$cache" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD/fuzz" "$cache"; then rm -rf "$work/build"; fi
cmake -S fuzz -B "$work/build" -DCMAKE_CXX_COMPILER="${PIDLOCK_FUZZ_CXX:-clang++}" >"$work/configure.log" \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 --target record_parser_fuzz verdict_fuzz

status=0
for target in record_parser_fuzz verdict_fuzz; do
  corpus_name="${target%_fuzz}"
  corpus="$work/corpus/$corpus_name"
  mkdir -p "$corpus"
  cp -n fuzz/corpus/"$corpus_name"/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: $target for ${seconds}s"
  if ! ASAN_OPTIONS="halt_on_error=1:detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/fuzz/ubsan.supp" \
      "$work/build/$target" "$corpus" \
      -max_total_time="$seconds" -rss_limit_mb=512 -max_len=8192 -timeout=10 \
      $([ "$jobs" -gt 1 ] && echo "-jobs=$jobs -workers=$jobs") -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$target-" >"$work/$target.log" 2>&1; then
    echo "fuzz: $target FAILED; last lines of $work/$target.log:"
    tail -40 "$work/$target.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added|cov:" "$work/$target.log" | tail -3 || true
  fi
done
exit "$status"
