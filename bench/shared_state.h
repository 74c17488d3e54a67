/* The shared-memory page through which the benchmark processes exchange
 * timestamps. C, not C++, because stamp_helper.c (exec'd by the CLI peers)
 * includes it; bench/filelock_waiter.py reads and writes the same offsets
 * with struct.pack_into, so the layout is fixed and must not change without
 * changing that script.
 *
 * Timing method (bench/handoff.cpp): a holder stores CLOCK_MONOTONIC in
 * release_ns immediately before it releases; the next holder reads the
 * clock immediately after it acquires, and the difference is one hand-off
 * sample. Only the current holder writes the sample fields, so the lock
 * under test is itself what serialises those writes.
 */
#ifndef PIDLOCK_BENCH_SHARED_STATE_H
#define PIDLOCK_BENCH_SHARED_STATE_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_PROCS 128
#define BENCH_MAX_SAMPLES 4096

struct bench_shared {
  uint64_t release_ns;    /*  0: clock just before the last release; 0 = none yet */
  uint32_t gen;           /*  8: futex word, bumped at every acquisition */
  uint32_t stop;          /* 12: set once enough samples were taken */
  uint64_t count;         /* 16: samples taken */
  uint64_t target;        /* 24: samples wanted */
  uint64_t hold_ns;       /* 32: how long a holder keeps the lock */
  uint64_t holder_id;     /* 40: id (1-based) of the current holder */
  uint64_t last_releaser; /* 48: id of the process that released last */
  uint64_t self_wins;     /* 56: re-acquisitions by the releaser itself (discarded) */
  uint64_t kill_ns;       /* 64: take-over / loss trials: clock just before the event */
  uint64_t ready;         /* 72: processes that are about to wait */
  uint64_t acquisitions[BENCH_MAX_PROCS]; /* 80: throughput counters */
  int64_t samples[BENCH_MAX_SAMPLES];     /* 80 + 8 * BENCH_MAX_PROCS = 1104 */
};

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_futex_wake(uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Sleeps while *word == expected, at most timeout_ns (writers that cannot
 * call futex, like the Python waiter, are caught by the timeout). */
static inline void bench_futex_wait(uint32_t* word, uint32_t expected, uint64_t timeout_ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
  ts.tv_nsec = (long)(timeout_ns % 1000000000u);
  syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

static inline void bench_sleep_ns(uint64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static inline void bench_bump_gen(struct bench_shared* s) {
  __atomic_add_fetch(&s->gen, 1, __ATOMIC_SEQ_CST);
  bench_futex_wake(&s->gen);
}

/* Called by a process right after it acquired the lock, with the clock
 * already read into t1. Returns 0 when the run is over (release and leave). */
static inline int bench_on_acquired(struct bench_shared* s, uint64_t id, uint64_t t1) {
  if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
    __atomic_store_n(&s->holder_id, id, __ATOMIC_SEQ_CST);
    bench_bump_gen(s);
    return 0;
  }
  uint64_t released = s->release_ns;
  if (released != 0) {
    /* A releaser that got the lock straight back is not a hand-off. */
    if (s->last_releaser == id) {
      s->self_wins++;
    } else if (s->count < BENCH_MAX_SAMPLES) {
      s->samples[s->count++] = (int64_t)(t1 - released);
    }
  }
  __atomic_store_n(&s->holder_id, id, __ATOMIC_SEQ_CST);
  if (s->count >= s->target) __atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
  bench_bump_gen(s);
  return 1;
}

/* True when every other process of the caller's process group is asleep
 * (state S or D, or a zombie): all waiters are blocked waiting for the
 * lock, none is still starting up (a CLI being exec'd) or still examining
 * the previous hand-off. On a loaded machine a fixed hold time alone does
 * not guarantee that. */
static inline int bench_group_asleep(void) {
  pid_t self = getpid(), group = getpgrp();
  DIR* proc = opendir("/proc");
  if (proc == NULL) return 1;
  int asleep = 1;
  struct dirent* e;
  while (asleep && (e = readdir(proc)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE* f = fopen(path, "r");
    if (f == NULL) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char* paren = strrchr(buf, ')');
    char state;
    int pid, ppid, pgrp;
    if (paren == NULL || sscanf(buf, "%d", &pid) != 1 ||
        sscanf(paren + 2, "%c %d %d", &state, &ppid, &pgrp) != 3)
      continue;
    if (pgrp == group && pid != self && state != 'S' && state != 'D' && state != 'Z') asleep = 0;
  }
  closedir(proc);
  return asleep;
}

/* Holds for hold_ns and until the other processes are blocked (at most
 * 2 s), then stamps the release. Call right before releasing. */
static inline void bench_hold_then_stamp(struct bench_shared* s, uint64_t id) {
  if (s->hold_ns) bench_sleep_ns(s->hold_ns);
  uint64_t give_up = bench_now_ns() + 2000000000u;
  while (!bench_group_asleep() && bench_now_ns() < give_up) bench_sleep_ns(200000u);
  s->last_releaser = id;
  __atomic_store_n(&s->release_ns, bench_now_ns(), __ATOMIC_SEQ_CST);
}

/* After releasing: waits until another process has taken the lock, so that
 * every sample is a hand-off to a process that was already waiting. */
static inline void bench_wait_turn(struct bench_shared* s, uint64_t id) {
  for (;;) {
    uint32_t g = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->holder_id, __ATOMIC_SEQ_CST) != id) return;
    if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) return;
    bench_futex_wait(&s->gen, g, 2000000u);
  }
}

#endif /* PIDLOCK_BENCH_SHARED_STATE_H */
