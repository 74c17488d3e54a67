#!/usr/bin/env bash
# Long etcd churn run: `pidlock run --wait` loops on one etcd lock
# (three-member cluster on loopback, each loop behind its own fault
# proxies), with random SIGKILLs of jobs and of pidlock and random
# partitions that cost the holder its lock; a witness (a kernel lock each
# job holds) counts jobs that ran at once, which must be 0. ctest runs the
# same test for 15 s; this runs it for SECONDS (default 600).
#
#   scripts/etcd-churn.sh [SECONDS]
#
# Builds into PIDLOCK_BUILD_DIR (default build/) with PIDLOCK_WITH_ETCD=ON.
# Prints one "[ churn ]" summary line; record it in docs/etcd.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${PIDLOCK_BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPIDLOCK_WITH_ETCD=ON >/dev/null
nice cmake --build "$build" -j2 --target pidlock_etcd_tests >/dev/null
PIDLOCK_ETCD_CHURN_SECONDS="${1:-600}" exec "$build/tests/etcd/pidlock_etcd_tests" \
  --gtest_filter='EtcdRunTest.ChurnWithKillsAndPartitionsNeverOverlaps'
