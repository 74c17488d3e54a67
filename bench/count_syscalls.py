#!/usr/bin/python3
"""System calls per lock cycle, counted with strace.

    count_syscalls.py DRIVER OUT_CSV [N]

Runs `strace -f -c` on DRIVER (pidlock_syscall_driver) with 0 and N cycles
(default 2000) per implementation, on tmpfs, and writes per-cycle counts:
(calls at N - calls at 0) / N for every system call, so that process
start-up and the one warm-up cycle cancel out. strace slows every call by a
large factor: these are counts, not times.
"""
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile

IMPLS = ["floor_flock", "pidlock_nosync", "pidlock_fsync", "pg_fsync", "liblockfile"]
LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$")


def count(driver, impl, n, workdir):
    out = os.path.join(workdir, "strace.txt")
    rc = subprocess.run(["strace", "-f", "-c", "-o", out, driver, impl, str(n), workdir],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if rc.returncode != 0:
        return None
    calls = {}
    with open(out) as f:
        for line in f:
            m = LINE.match(line)
            if m and m.group(3) != "total":
                calls[m.group(3)] = int(m.group(1))
    return calls


def at_0_and_n(driver, impls, n, measure, tool):
    """Yields (impl, measure at 0 cycles, measure at n cycles) per impl that
    ran, in a fresh folder on tmpfs; measure(driver, impl, cycles, folder)
    returns None when the driver failed."""
    workdir = tempfile.mkdtemp(prefix="pidlock-count-", dir="/dev/shm")
    try:
        for impl in impls:
            base = measure(driver, impl, 0, workdir)
            full = measure(driver, impl, n, workdir)
            if base is None or full is None:
                print(f"{tool}: {impl}: driver failed or unsupported; skipped", file=sys.stderr)
                continue
            yield impl, base, full
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    driver, out_csv = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    if shutil.which("strace") is None:
        sys.exit("count_syscalls.py: strace not installed (apt-get install strace)")
    rows = []
    for impl, base, full in at_0_and_n(driver, IMPLS, n, count, "count_syscalls.py"):
        per = {k: (full.get(k, 0) - base.get(k, 0)) / n for k in set(full) | set(base)}
        per = {k: v for k, v in per.items() if v >= 0.01}
        total = sum(per.values())
        rows.append((impl, total, per))
        detail = ", ".join(f"{k} {v:g}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
        print(f"{impl:16s} {total:6.2f} syscalls/cycle: {detail}", file=sys.stderr)
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["impl", "syscalls_per_cycle", "breakdown"])
        for impl, total, per in rows:
            w.writerow([impl, f"{total:.2f}",
                        " ".join(f"{k}={v:g}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))])


if __name__ == "__main__":
    main()
