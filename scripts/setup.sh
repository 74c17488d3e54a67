#!/usr/bin/env bash
# Installs what pidlock needs to build and test (Debian/Ubuntu, via apt),
# then configures and builds it into build/. Safe to run again: apt is
# skipped when every package is already installed, and the build is
# incremental.
#
# Environment:
#   PIDLOCK_SKIP_APT=1     never call apt (you installed the packages yourself)
#   PIDLOCK_BUILD_DIR=dir  build somewhere other than build/
#   PIDLOCK_CMAKE_ARGS     extra arguments for the configure step
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Build: compiler, CMake, Boost.Filesystem and Boost.Log (the library's
# only dependencies), GoogleTest and Google Benchmark (tests, bench).
# Tests and benchmarks also compare pidlock with peers and use: flock(1)
# (util-linux), Python's filelock, dotlockfile (liblockfile-bin), clang;
# the packaging test builds a consumer with pkg-config (pkgconf). The etcd
# backend (PIDLOCK_WITH_ETCD, on here) needs libcurl and nlohmann-json; its
# tests start real etcd servers on loopback (etcd-server, etcd-client) and
# make TLS certificates with openssl.
# Test-only: the recognition tests (tests/recognise/) run a real PostgreSQL
# 15 server as user postgres (postgresql-15, with psql); without it they
# skip, saying so.
packages=(
  g++ make cmake
  libboost-filesystem-dev libboost-log-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  util-linux python3 python3-filelock liblockfile-bin clang pkgconf
  libcurl4-openssl-dev nlohmann-json3-dev etcd-server etcd-client openssl
  postgresql-15 postgresql-client-15
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ] && [ "${PIDLOCK_SKIP_APT:-0}" != 1 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update
  "${sudo[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
else
  echo "setup: all packages present"
fi

build_dir="${PIDLOCK_BUILD_DIR:-build}"
# shellcheck disable=SC2086  # PIDLOCK_CMAKE_ARGS is a list of words
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPIDLOCK_WITH_ETCD=ON ${PIDLOCK_CMAKE_ARGS:-}
cmake --build "$build_dir" -j2
