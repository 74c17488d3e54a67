#!/usr/bin/env bash
# Long torture run: 1,000,000 acquisitions by 16 processes under
# random SIGKILLs, then the same checks as the short CI run. About 8 minutes
# on 2 cores. Builds pidlock_torture into PIDLOCK_BUILD_DIR (default build/)
# if needed; extra arguments go to pidlock_torture (e.g. --procs 32).
#
#   scripts/torture-long.sh [pidlock_torture flags...]
#
# Record the final summary in docs/torture.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${PIDLOCK_BUILD_DIR:-build}"
if [ ! -x "$build/tests/torture/pidlock_torture" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j2 --target pidlock_torture
fi
exec "$build/tests/torture/pidlock_torture" --procs 16 --acquisitions 1000000 --seconds 10800 \
  --kill-interval-us 2000 "$@"
