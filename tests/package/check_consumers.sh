#!/usr/bin/env bash
# Builds small consumer programs against pidlock in every way the README
# documents and runs them:
#   installed package: find_package (static and shared targets) and pkg-config
#   source tree:       add_subdirectory and FetchContent
# Usage: check_consumers.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
jobs=2

step() { printf '== %s\n' "$*"; }

step "install into a temporary prefix"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/pidlock/pidlock.hpp"
test -f "$work/prefix/lib/cmake/pidlock/pidlockConfigVersion.cmake" || test -f "$work/prefix/lib64/cmake/pidlock/pidlockConfigVersion.cmake"
libdir=$(dirname "$(find "$work/prefix" -name pidlock.pc | head -n 1)")/..
ls "$libdir"/libpidlock.a "$libdir"/libpidlock.so.0 >/dev/null

for target in pidlock::pidlock pidlock::pidlock_shared; do
  step "find_package, $target"
  cmake -S "$here/consumer" -B "$work/pkg-${target##*::}" -DMODE=package -DTARGET="$target" \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
  cmake --build "$work/pkg-${target##*::}" -j"$jobs" >/dev/null
  "$work/pkg-${target##*::}/consumer" "$work"
done

step "pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exact-version="$(pkg-config --modversion pidlock)" pidlock
# shellcheck disable=SC2046
c++ -std=c++17 "$here/consumer/main.cpp" -o "$work/pc-consumer" $(pkg-config --cflags --libs pidlock) \
  -Wl,-rpath,"$libdir"
"$work/pc-consumer" "$work"

for mode in subdirectory fetchcontent; do
  step "$mode"
  cmake -S "$here/consumer" -B "$work/$mode" -DMODE=$mode -DPIDLOCK_SOURCE_DIR="$src" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$work/$mode" -j"$jobs" --target consumer >/dev/null
  "$work/$mode/consumer" "$work"
done
echo "all consumers built and ran"
