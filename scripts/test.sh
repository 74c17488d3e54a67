#!/usr/bin/env bash
# Sets everything up, builds, and runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh
build_dir="${PIDLOCK_BUILD_DIR:-build}"
ctest --test-dir "$build_dir" --output-on-failure -j2
