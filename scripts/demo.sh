#!/usr/bin/env bash
# Sets everything up, builds, and runs pidlock's main demonstration.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh
build_dir="${PIDLOCK_BUILD_DIR:-build}"

# The demonstration: a data directory guarded through start-up, a refused
# second start, a SIGKILLed holder and the automatic take-over after it.
# (When the pidlock command-line tool lands, its demo goes here.)
exec "$build_dir/examples/pidlock_guard_demo"
