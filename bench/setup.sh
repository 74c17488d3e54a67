#!/bin/sh
# Installs what bench/run_all.sh needs on Debian 12 (run as root).
#   the peers:    util-linux (flock(1)), python3-filelock, liblockfile-bin
#                 (dotlockfile), liblockfile-dev (lockfile_create in
#                 micro_bench), procmail (lockfile(1))
#   the tools:    libbenchmark-dev (Google Benchmark), strace (system-call
#                 counts), valgrind (callgrind instruction counts),
#                 gnuplot-nox (plots), hyperfine (optional, for
#                 bench/cli_startup.sh), e2fsprogs (mkfs.ext4, for a
#                 loop-mounted ext4 where /tmp is not ext4)
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  build-essential cmake libboost-filesystem-dev libboost-log-dev libgtest-dev \
  libbenchmark-dev \
  util-linux python3 python3-filelock liblockfile-bin liblockfile-dev procmail \
  strace valgrind gnuplot-nox hyperfine e2fsprogs
