#!/usr/bin/env bash
# Sets everything up, builds, and runs pidlock's main demonstration.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh
build_dir="${PIDLOCK_BUILD_DIR:-build}"

# The demonstration: the pidlock command on a real lock: a job run under it,
# status (also as JSON), an overlapping run refused, a SIGKILLed holder and
# the automatic take-over after it, and waiting for a holder. (The library's
# own demo, build/examples/pidlock_guard_demo, guards a data directory.)
exec ./scripts/cli_demo.sh "$build_dir/tools/pidlock"
