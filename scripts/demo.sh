#!/usr/bin/env bash
# The README's first command: installs only what the demo needs (a compiler,
# CMake, Boost.Filesystem), builds only the library and the pidlock command
# (Release, into build/), and runs the demonstration.
# Options (passed to setup.sh): -j N or PIDLOCK_JOBS=N; PIDLOCK_SKIP_APT=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh --lean "$@"
build_dir="${PIDLOCK_BUILD_DIR:-build}"

# The demonstration: the pidlock command on a real lock: a job run under it,
# status (also as JSON), an overlapping run refused, a SIGKILLed holder and
# the automatic take-over after it, and waiting for a holder. (The library's
# own demo, examples/guard_demo.cpp, guards a data directory; the test
# command builds and runs it.)
exec ./scripts/cli_demo.sh "$build_dir/tools/pidlock"
