#!/usr/bin/env bash
# Builds and runs the etcd benchmark: pidlock-on-etcd against `etcdctl
# lock` on a local three-member cluster (loopback only).
#   bench/etcd/run.sh [--iterations N] [--handoffs M]
# Needs: etcd-server etcd-client libcurl4-openssl-dev nlohmann-json3-dev.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=${PIDLOCK_ETCD_BENCH_BUILD:-/tmp/build-etcd-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPIDLOCK_WITH_ETCD=ON -DPIDLOCK_BUILD_BENCH=ON \
  -DPIDLOCK_BUILD_TESTS=OFF -DPIDLOCK_BUILD_EXAMPLES=OFF >/dev/null
nice cmake --build "$build" --target pidlock_etcd_bench -j"$(nproc)" >/dev/null
echo "pidlock $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(etcd --version | head -1), $(nproc) CPUs"
"$build/bench/etcd/pidlock_etcd_bench" "$@"
