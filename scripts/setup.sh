#!/usr/bin/env bash
# Installs what pidlock needs (Debian/Ubuntu, via apt), then configures and
# builds it into build/. Two modes:
#
#   setup.sh --lean   what the demo needs: the library and the pidlock
#                     command, Release, nothing else (scripts/demo.sh)
#   setup.sh          everything the tests need: tests, examples, the etcd
#                     backend, the peers they compare with (scripts/test.sh)
#
# It says which packages it installs before it does. Packages that start a
# service when installed (etcd-server, postgresql-15: the tests start their
# own servers on loopback) are prevented from starting during the install,
# and the services of those this script installed are then stopped and
# disabled, so nothing is left running or enabled. Safe to run again: apt
# is skipped when every package is there, and the build is incremental.
#
# Options and environment:
#   --lean, PIDLOCK_SETUP=lean   the lean mode above
#   -j N, PIDLOCK_JOBS=N         parallel build jobs (default: nproc)
#   PIDLOCK_SKIP_APT=1           never call apt (you installed the packages yourself)
#   PIDLOCK_BUILD_DIR=dir        build somewhere other than build/
#   PIDLOCK_CMAKE_ARGS           extra arguments for the configure step
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=${PIDLOCK_SETUP:-full}
jobs=${PIDLOCK_JOBS:-$(nproc 2>/dev/null || echo 2)}
while [ $# -gt 0 ]; do
  case $1 in
    --lean) mode=lean ;;
    -j) jobs=$2; shift ;;
    -j*) jobs=${1#-j} ;;
    *) echo "setup.sh: unknown argument '$1' (usage: setup.sh [--lean] [-j N])" >&2; exit 64 ;;
  esac
  shift
done

# The library needs only a compiler, CMake and Boost.Filesystem.
lean_packages=(g++ make cmake libboost-filesystem-dev)
# The tests and examples: Boost.Log (<pidlock/boost_log.hpp>'s tests),
# GoogleTest, Google Benchmark; the peers they compare with: flock(1)
# (util-linux), Python's filelock, dotlockfile (liblockfile-bin); clang;
# pkg-config for the packaging test (pkgconf); the etcd backend's libcurl
# and nlohmann-json, real etcd servers (etcd-server, etcd-client) and TLS
# certificates (openssl); a real PostgreSQL 15 for the recognition tests
# (tests/recognise/, which skip without it, saying so).
test_packages=(
  libboost-log-dev libgtest-dev libgmock-dev libbenchmark-dev
  util-linux python3 python3-filelock liblockfile-bin clang pkgconf
  libcurl4-openssl-dev nlohmann-json3-dev etcd-server etcd-client openssl
  postgresql-15 postgresql-client-15
)
# Packages whose installation starts (and enables) a service, and its name.
declare -A services=([etcd-server]=etcd [postgresql-15]=postgresql)

packages=("${lean_packages[@]}")
if [ "$mode" != lean ]; then packages+=("${test_packages[@]}"); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi

# Stops and disables the service of every package in "$@" that has one.
quiet_services() {
  local p s
  for p in "$@"; do
    s=${services[$p]:-}
    [ -n "$s" ] || continue
    echo "setup: stopping and disabling the $s service that $p installs (the tests start their own)"
    if [ -d /run/systemd/system ]; then
      "${sudo[@]}" systemctl disable --now "$s" >/dev/null 2>&1 || true
    else
      "${sudo[@]}" service "$s" stop >/dev/null 2>&1 || true
      "${sudo[@]}" update-rc.d "$s" disable >/dev/null 2>&1 || true
    fi
  done
}

if [ "${#missing[@]}" -gt 0 ] && [ "${PIDLOCK_SKIP_APT:-0}" != 1 ]; then
  echo "setup ($mode): installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d exit 101 forbids starting services during this install
  # (honoured by invoke-rc.d and deb-systemd-invoke); only if none exists.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scripts/setup.sh of pidlock: no service starts during its apt-get install\nexit 101\n' |
      "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  status=0
  { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; } || status=$?
  if [ "$own_policy" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
  [ "$status" = 0 ] || exit "$status"
  quiet_services "${missing[@]}"
else
  echo "setup ($mode): all packages present"
fi

build_dir="${PIDLOCK_BUILD_DIR:-build}"
if [ "$mode" = lean ]; then
  # shellcheck disable=SC2086  # PIDLOCK_CMAKE_ARGS is a list of words
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DPIDLOCK_WITH_ETCD=OFF \
    -DPIDLOCK_BUILD_TESTS=OFF -DPIDLOCK_BUILD_EXAMPLES=OFF -DPIDLOCK_BUILD_SHARED=OFF ${PIDLOCK_CMAKE_ARGS:-}
  cmake --build "$build_dir" -j"$jobs" --target pidlock_cli
else
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPIDLOCK_WITH_ETCD=ON \
    -DPIDLOCK_BUILD_TESTS=ON -DPIDLOCK_BUILD_EXAMPLES=ON -DPIDLOCK_BUILD_SHARED=ON ${PIDLOCK_CMAKE_ARGS:-}
  cmake --build "$build_dir" -j"$jobs"
fi
