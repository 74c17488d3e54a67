#!/usr/bin/env bash
# The README's second command: installs everything the tests need (and
# leaves no service running or enabled: see setup.sh), builds everything
# (RelWithDebInfo, etcd backend on, into build/), and runs every test.
# Options (passed to setup.sh): -j N or PIDLOCK_JOBS=N; PIDLOCK_SKIP_APT=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh "$@"
build_dir="${PIDLOCK_BUILD_DIR:-build}"
jobs=${PIDLOCK_JOBS:-$(nproc 2>/dev/null || echo 2)}
prev=
for a in "$@"; do
  if [ "$prev" = -j ]; then jobs=$a; fi
  case $a in -j?*) jobs=${a#-j} ;; esac
  prev=$a
done
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs"
