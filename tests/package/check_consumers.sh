#!/usr/bin/env bash
# Builds small consumer programs against pidlock in every way the README
# documents and runs them:
#   installed package: find_package (static and shared targets) and
#                      pkg-config (pidlock = shared, pidlock-static = static,
#                      each also with --static), checking which one each
#                      links with readelf
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

# links_shared BINARY: does it need libpidlock.so at run time?
links_shared() { readelf -d "$1" | grep -q 'NEEDED.*libpidlock\.so'; }
# expect_static / expect_shared BINARY: say so, or fail.
expect_static() { if links_shared "$1"; then echo "$1 needs libpidlock.so, expected static" >&2; exit 1; fi; }
expect_shared() { links_shared "$1" || { echo "$1 does not need libpidlock.so, expected shared" >&2; exit 1; }; }

for target in pidlock::pidlock pidlock::pidlock_shared; do
  step "find_package, $target"
  cmake -S "$here/consumer" -B "$work/pkg-${target##*::}" -DMODE=package -DTARGET="$target" \
    -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
  cmake --build "$work/pkg-${target##*::}" -j"$jobs" >/dev/null
  # CMake puts the imported libpidlock.so's folder in the build tree's
  # RPATH by itself: the consumer runs without LD_LIBRARY_PATH.
  "$work/pkg-${target##*::}/consumer" "$work"
done
expect_static "$work/pkg-pidlock/consumer"
expect_shared "$work/pkg-pidlock_shared/consumer"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exact-version="$(pkg-config --modversion pidlock)" pidlock
pkg-config --exact-version="$(pkg-config --modversion pidlock)" pidlock-static
# pc_consumer NAME PKG-CONFIG-ARGUMENTS... : builds consumer/main.cpp as NAME.
pc_consumer() {
  local name=$1
  shift
  step "pkg-config $*"
  # shellcheck disable=SC2046
  c++ -std=c++17 "$here/consumer/main.cpp" -o "$work/$name" $(pkg-config --cflags --libs "$@") "${extra[@]}"
}

extra=(-Wl,-rpath,"$libdir")
pc_consumer pc-shared pidlock
expect_shared "$work/pc-shared"
"$work/pc-shared" "$work"
pc_consumer pc-shared-static-flag --static pidlock
expect_shared "$work/pc-shared-static-flag"
"$work/pc-shared-static-flag" "$work"

step "a shared consumer without an rpath does not start (the guide says so)"
extra=()
pc_consumer pc-no-rpath pidlock
if "$work/pc-no-rpath" "$work" 2>"$work/no-rpath.err"; then
  echo "expected a failure to load libpidlock.so without an rpath" >&2
  exit 1
fi
grep -q 'libpidlock.so' "$work/no-rpath.err"

pc_consumer pc-static pidlock-static
expect_static "$work/pc-static"
"$work/pc-static" "$work"
pc_consumer pc-static-static-flag --static pidlock-static
expect_static "$work/pc-static-static-flag"
"$work/pc-static-static-flag" "$work"

for mode in subdirectory fetchcontent; do
  step "$mode"
  cmake -S "$here/consumer" -B "$work/$mode" -DMODE=$mode -DPIDLOCK_SOURCE_DIR="$src" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$work/$mode" -j"$jobs" --target consumer >/dev/null
  "$work/$mode/consumer" "$work"
done
echo "all consumers built and ran"
