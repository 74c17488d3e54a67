#!/usr/bin/env bash
# The main job: the pidlock command on a real lock, as an operator or a cron
# job uses it. Runs a job under a lock, shows `status` (for people and as
# JSON), refuses an overlapping run, SIGKILLs the job and shows the next run
# taking the lock over, then waits for a holder with `wait`. Every step is
# checked; the script exits non-zero if one misbehaves.
# Usage: cli_demo.sh PATH-TO-pidlock
set -euo pipefail
pidlock=$1
dir=$(mktemp -d)
lock="$dir/hourly.lock"
job_pid=
cleanup() {
  [ -n "$job_pid" ] && kill -KILL "$job_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
check() {  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    echo "demo: FAILED: $1 (expected $2, got $3)" >&2
    exit 1
  fi
  echo "   ok: $1"
}

say "a job runs under the lock: pidlock run $lock -- sleep 300"
"$pidlock" run "$lock" -- sleep 300 &
runner=$!
for _ in $(seq 100); do [ -s "$lock" ] && break; sleep 0.05; done
"$pidlock" status "$lock" && rc=0 || rc=$?
check "status says held (exit 0)" 0 "$rc"
job_pid=$(head -n 1 "$lock")
check "line 1 of the lock file is the job's own pid" "sleep" "$(ps -o comm= -p "$job_pid")"

say "pidlock status --json $lock"
"$pidlock" status --json "$lock"

say "the next run overlaps and is refused (exit 75, EX_TEMPFAIL)"
"$pidlock" run "$lock" -- echo "must not run" && rc=0 || rc=$?
check "overlapping run refused" 75 "$rc"

say "the job is killed with SIGKILL: pidlock run reports it and releases the lock"
kill -KILL "$job_pid"
wait "$runner" 2>/dev/null && rc=0 || rc=$?
check "pidlock run reports the signal as 128+9" 137 "$rc"
job_pid=
"$pidlock" status "$lock" && rc=0 || rc=$?
check "the lock is free again (exit 3)" 3 "$rc"

say "the next run gets the lock; the record names the job's own pid"
"$pidlock" run "$lock" -- sh -c 'echo "   job running as pid $$, record says $(head -n 1 '"$lock"')"'
"$pidlock" status "$lock" && rc=0 || rc=$?
check "after the job, the lock is free (exit 3)" 3 "$rc"

say "pidlock run and its job both SIGKILLed (a crash): the file stays, stale; the next run takes it over"
"$pidlock" run "$lock" -- sleep 300 &
runner=$!
for _ in $(seq 100); do [ -s "$lock" ] && break; sleep 0.05; done
job_pid=$(head -n 1 "$lock")
kill -KILL "$runner" "$job_pid"
wait "$runner" 2>/dev/null || true
job_pid=
sleep 0.1
"$pidlock" status "$lock" && rc=0 || rc=$?
check "holder and job SIGKILLed: status says stale (exit 1)" 1 "$rc"
"$pidlock" run --verbose "$lock" -- true
check "the take-over left no file behind" "absent" "$([ -e "$lock" ] && echo present || echo absent)"

say "pidlock wait: returns as soon as the holder is gone"
"$pidlock" run "$lock" -- sleep 0.5 &
runner=$!
for _ in $(seq 100); do [ -s "$lock" ] && break; sleep 0.05; done
start=$(date +%s%N)
"$pidlock" wait --timeout 10 "$lock" && rc=0 || rc=$?
check "wait returned 0 when the job ended" 0 "$rc"
echo "   waited $(( ($(date +%s%N) - start) / 1000000 )) ms"
wait "$runner"

echo
echo "demo: all checks passed"
