#!/usr/bin/python3
"""Python `filelock` in the acquire+release cycle table (docs/benchmarks.md).

    filelock_cycle.py DIR LABEL [SECONDS]

Acquires and releases FileLock(DIR/cycle.lock) in a loop for about SECONDS
(default 1), three times, and prints one CSV row per repetition:
label,cycles,real_us,cpu_us (per cycle). filelock 3.9 on Linux is
UnixFileLock: open + flock(LOCK_EX | LOCK_NB) on acquire, flock(LOCK_UN) +
close on release; the file is left in place and nothing is written, like
the floor. The per-cycle time includes the interpreter: it is what a
Python user of filelock pays.
"""
import os
import sys
import time

from filelock import FileLock


def main():
    folder, label = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    lock = FileLock(os.path.join(folder, "cycle.lock"))
    for _ in range(100):  # warm-up
        lock.acquire()
        lock.release()
    print("label,cycles,real_us,cpu_us")
    for _ in range(3):
        cycles = 0
        start, start_cpu = time.perf_counter(), time.process_time()
        deadline = start + seconds
        while True:
            for _ in range(200):
                lock.acquire()
                lock.release()
            cycles += 200
            if time.perf_counter() >= deadline:
                break
        real = (time.perf_counter() - start) / cycles * 1e6
        cpu = (time.process_time() - start_cpu) / cycles * 1e6
        print(f"{label},{cycles},{real:.3f},{cpu:.3f}")
    os.unlink(os.path.join(folder, "cycle.lock"))


if __name__ == "__main__":
    main()
