#!/usr/bin/python3
"""User-space instructions per lock cycle, counted with callgrind.

    count_instructions.py DRIVER OUT_CSV [N]

Runs `valgrind --tool=callgrind` on DRIVER (pidlock_syscall_driver) with 0
and N cycles (default 1000) per implementation, on tmpfs, and writes
(instructions at N - instructions at 0) / N, so that process start-up and
the warm-up cycle cancel out. Instruction counts do not move with the
machine's load, unlike times; they leave out the kernel's side of every
system call (count_syscalls.py counts those calls).
"""
import csv
import os
import re
import shutil
import subprocess
import sys

from count_syscalls import at_0_and_n

IMPLS = ["floor_flock", "pg_nosync", "pg_fsync", "pidlock_nosync", "pidlock_fsync", "liblockfile"]
TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)")


def instructions(driver, impl, n, workdir):
    out = os.path.join(workdir, "callgrind.out")
    rc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                         driver, impl, str(n), workdir],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if rc.returncode != 0 or not os.path.exists(out):
        return None
    with open(out) as f:
        for line in f:
            m = TOTALS.match(line)
            if m:
                return int(m.group(1))
    return None


def main():
    driver, out_csv = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    if shutil.which("valgrind") is None:
        sys.exit("count_instructions.py: valgrind not installed (apt-get install valgrind)")
    rows = []
    for impl, base, full in at_0_and_n(driver, IMPLS, n, instructions, "count_instructions.py"):
        rows.append((impl, (full - base) / n))
        print(f"{impl:16s} {rows[-1][1]:10.0f} instructions/cycle", file=sys.stderr)
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["impl", "instructions_per_cycle"])
        for impl, per in rows:
            w.writerow([impl, f"{per:.0f}"])


if __name__ == "__main__":
    main()
