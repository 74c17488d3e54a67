#!/usr/bin/python3
"""A Python `filelock` waiter for bench/handoff.cpp.

    filelock_waiter.py SHM LOCKPATH ID handoff    loop: acquire, stamp, hold, release
    filelock_waiter.py SHM LOCKPATH ID takeover   acquire, record, hold until killed
    filelock_waiter.py SHM LOCKPATH ID fcfs       acquire, record ID in acquisition
                                                  order, hold, release

SHM is the file behind struct bench_shared (bench/shared_state.h); the
offsets below are that struct's. filelock 3.9 on Linux is UnixFileLock:
flock(LOCK_EX | LOCK_NB) retried every poll_interval (0.05 s by default),
which this script leaves at its default because that is what users get.
"""
import mmap
import os
import struct
import sys
import time

from filelock import FileLock

RELEASE, GEN, STOP, COUNT, TARGET, HOLD = 0, 8, 12, 16, 24, 32
HOLDER, LAST_RELEASER, SELF_WINS, KILL, READY = 40, 48, 56, 64, 72
SAMPLES, MAX_SAMPLES = 80 + 8 * 128, 4096


def now():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def u64(m, off):
    return struct.unpack_from("<Q", m, off)[0]


def put(m, off, value, fmt="<Q"):
    struct.pack_into(fmt, m, off, value)


def bump_gen(m):
    put(m, GEN, (struct.unpack_from("<I", m, GEN)[0] + 1) & 0xFFFFFFFF, "<I")


def main():
    shm, lock_path, ident, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    fd = os.open(shm, os.O_RDWR)
    m = mmap.mmap(fd, 0)
    os.close(fd)
    lock = FileLock(lock_path)
    if mode == "fcfs":
        put(m, READY, u64(m, READY) + 1)
        lock.acquire()
        count = u64(m, COUNT)
        if count < MAX_SAMPLES:
            put(m, SAMPLES + 8 * count, ident, "<q")
            put(m, COUNT, count + 1)
        time.sleep(u64(m, HOLD) / 1e9)
        lock.release()
        return
    if mode == "takeover":
        put(m, READY, u64(m, READY) + 1)
        lock.acquire()
        t1 = now()
        count = u64(m, COUNT)
        if count < MAX_SAMPLES:
            put(m, SAMPLES + 8 * count, t1 - u64(m, KILL), "<q")
            put(m, COUNT, count + 1)
        put(m, HOLDER, ident)
        bump_gen(m)
        while True:
            time.sleep(3600)
    while True:
        lock.acquire()
        t1 = now()
        if struct.unpack_from("<I", m, STOP)[0]:
            put(m, HOLDER, ident)
            bump_gen(m)
            lock.release()
            return
        released = u64(m, RELEASE)
        if released:
            count = u64(m, COUNT)
            if u64(m, LAST_RELEASER) == ident:
                put(m, SELF_WINS, u64(m, SELF_WINS) + 1)
            elif count < MAX_SAMPLES:
                put(m, SAMPLES + 8 * count, t1 - released, "<q")
                put(m, COUNT, count + 1)
        put(m, HOLDER, ident)
        if u64(m, COUNT) >= u64(m, TARGET):
            put(m, STOP, 1, "<I")
        bump_gen(m)
        hold = u64(m, HOLD)
        if hold:
            time.sleep(hold / 1e9)
        put(m, LAST_RELEASER, ident)
        put(m, RELEASE, now())
        lock.release()
        # Wait until another process holds it, so each sample is a hand-off.
        while u64(m, HOLDER) == ident and not struct.unpack_from("<I", m, STOP)[0]:
            time.sleep(0.0002)
        if struct.unpack_from("<I", m, STOP)[0]:
            return


if __name__ == "__main__":
    main()
