#!/bin/sh
# Builds PostgreSQL 15 from Debian's source package with its data directory
# lock (postmaster.pid) held through pidlock's C API, and runs its tests.
# docs/postgres.md says what the patch changes and what the tests showed.
#
#   examples/postgres/build.sh          fetch, patch, build, install
#   examples/postgres/build.sh check    then: make check and the TAP suites
#                                       of src/bin/pg_ctl, initdb, pg_resetwal
#                                       and pg_upgrade
#
# Everything goes to $PGWORK (default /var/tmp/pidlock-postgres), which
# $PG_USER must be able to reach:
#   apt/                   a private apt configuration (deb-src lines, lists,
#                          cache): nothing under /etc/apt or /var/lib/apt is
#                          written, except by installing the build packages
#   postgresql-15-<ver>/   the source, patched with pidlock.patch
#   pidlock-build/, pidlock/   this repository's library, built and installed
#   install/               the patched server, installed with DESTDIR (Debian's
#                          patches fix pkglibdir at /usr/lib/postgresql/15/lib,
#                          so the tree is install/$PGWORK/inst/... and
#                          install/usr/lib/...; PostgreSQL finds its files
#                          relative to its bin/): bin is printed at the end
#   check-*.log            the test runs
# Run as root (sudo): it installs the build packages that are missing and
# builds and tests as $PG_USER (default postgres, the user that Debian's
# postgresql-15 package creates), since PostgreSQL refuses to run as root.
# Safe to run again: each step skips or redoes only what it must. $JOBS (default: the
# number of processors) bounds make and cmake. Building takes many minutes on
# two cores; ccache (in $PGWORK/ccache) makes a rebuild quick.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${PGWORK:-/var/tmp/pidlock-postgres}
user=${PG_USER:-postgres}
jobs=${JOBS:-$(nproc)}
# The source version is pinned so that the patch applies; Debian 12's
# archive keeps it (apt-cache showsrc postgresql-15 lists what it has).
version=${PG_DEB_VERSION:-15.18-0+deb12u1}
upstream=${version%%-*}
src="$work/postgresql-15-$upstream"

as_user() { runuser -u "$user" -- env CCACHE_DIR="$work/ccache" PKG_CONFIG_PATH="$work/pidlock/lib/pkgconfig" "$@"; }

die() { echo "build.sh: $*" >&2; exit 1; }

# Only the missing ones: naming an installed package to apt-get install
# would upgrade it (and what depends on it).
install_packages() {
  missing=""
  for p in bison flex libreadline-dev zlib1g-dev libicu-dev libipc-run-perl pkg-config \
           ccache dpkg-dev cmake g++ libboost-filesystem-dev libboost-log-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
      missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  echo "build.sh: installing$missing"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null
}

# The marker file says the extraction (and Debian's patches) finished: an
# interrupted one is thrown away and done again.
fetch_source() {
  [ -f "$src/.build-sh-fetched" ] && return
  rm -rf "$src"
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  cat > "$work/apt/sources.list" <<EOF
deb-src [signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
EOF
  apt="-o Dir::Etc::SourceList=$work/apt/sources.list -o Dir::Etc::SourceParts=/dev/null"
  apt="$apt -o Dir::State::Lists=$work/apt/lists -o Dir::Cache=$work/apt/cache"
  # shellcheck disable=SC2086
  apt-get $apt update >/dev/null
  # shellcheck disable=SC2086
  (cd "$work" && apt-get $apt source --only-source "postgresql-15=$version")
  touch "$src/.build-sh-fetched"
}

build_pidlock() {
  cmake -S "$repo" -B "$work/pidlock-build" -DCMAKE_BUILD_TYPE=Release \
    -DPIDLOCK_BUILD_TESTS=OFF -DPIDLOCK_BUILD_EXAMPLES=OFF -DPIDLOCK_BUILD_TOOLS=OFF \
    -DPIDLOCK_BUILD_SHARED=ON -DPIDLOCK_INSTALL=ON -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_INSTALL_PREFIX="$work/pidlock" >/dev/null
  cmake --build "$work/pidlock-build" -j "$jobs" >/dev/null
  cmake --install "$work/pidlock-build" >/dev/null
}

patch_and_build() {
  if ! patch -d "$src" -p1 -R --dry-run -s < "$here/pidlock.patch" >/dev/null 2>&1; then
    patch -d "$src" -p1 -s < "$here/pidlock.patch"
  fi
  mkdir -p "$work/ccache" "$work/install"
  chown -R "$user" "$work/ccache" "$work/install" "$src"
  if [ ! -f "$src/config.status" ]; then
    as_user sh -c "cd '$src' && ./configure --prefix='$work/inst' --enable-tap-tests --enable-debug --with-icu CC='ccache gcc'" >"$work/configure.log"
  fi
  as_user make -C "$src" -j "$jobs" >"$work/make.log"
  as_user make -C "$src" install DESTDIR="$work/install" >>"$work/make.log"
  echo "build.sh: patched server in $work/install$work/inst/bin"
}

# Runs one suite as $user; its log is check-<name>.log. Keeps going when a
# suite fails, so that every count is reported.
run_suite() {
  name=$1
  shift
  if as_user make -C "$src" "$@" >"$work/check-$name.log" 2>&1; then status=passed; else status=FAILED; fi
  echo "build.sh: $name: $status ($work/check-$name.log)"
}

check() {
  run_suite regress check
  run_suite pg_ctl -C src/bin/pg_ctl check PROVE_FLAGS=-v
  run_suite initdb -C src/bin/initdb check PROVE_FLAGS=-v
  # Two more that read postmaster.pid: pg_resetwal refuses a running
  # server's directory; pg_upgrade reads lines 4-5 (port, socket directory).
  run_suite pg_resetwal -C src/bin/pg_resetwal check PROVE_FLAGS=-v
  run_suite pg_upgrade -C src/bin/pg_upgrade check PROVE_FLAGS=-v
  grep -hE "All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed" "$work/check-regress.log" || true
  for suite in pg_ctl initdb pg_resetwal pg_upgrade; do
    echo "$suite: $(grep -hE "^Files=|^Result:" "$work/check-$suite.log" | cut -d'(' -f1 | tr '\n' ' ')"
  done
}

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): see the header"
id "$user" >/dev/null 2>&1 ||
  die "no user $user: install postgresql-15 (which creates it) or set PG_USER"
mkdir -p "$work"
runuser -u "$user" -- test -x "$work" ||
  die "$user cannot reach $work: set PGWORK to a folder it can (default /var/tmp/pidlock-postgres)"
install_packages
fetch_source
build_pidlock
patch_and_build
if [ "${1:-}" = check ]; then check; fi
