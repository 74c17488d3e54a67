/* The command that CLI peers (flock(1), dotlockfile, pidlock run) run while
 * they hold the lock. Its first instruction reads CLOCK_MONOTONIC: for a
 * CLI, "acquired" is the instant the command it runs starts, so CLI samples
 * include the CLI's own start-up, lock, fork and exec of this helper.
 * Linked statically so that the helper adds no dynamic-loading time of its
 * own to what is measured.
 *
 *   stamp_helper SHM ID handoff    record a hand-off sample, hold, stamp, exit
 *   stamp_helper SHM ID takeover   record a take-over sample, then hold forever
 *   stamp_helper SHM ID fcfs       record ID as the next in acquisition order,
 *                                  hold hold_ns, exit
 */
#include "shared_state.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char** argv) {
  uint64_t t1 = bench_now_ns();
  if (argc != 4) {
    fprintf(stderr, "usage: stamp_helper SHM ID handoff|takeover|fcfs\n");
    return 2;
  }
  int fd = open(argv[1], O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    perror("stamp_helper: open shared file");
    return 2;
  }
  struct bench_shared* s =
      mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (s == MAP_FAILED) {
    perror("stamp_helper: mmap");
    return 2;
  }
  close(fd);
  uint64_t id = strtoull(argv[2], NULL, 10);
  if (strcmp(argv[3], "handoff") == 0) {
    if (bench_on_acquired(s, id, t1)) bench_hold_then_stamp(s, id);
    return 0;
  }
  if (strcmp(argv[3], "fcfs") == 0) {
    if (s->count < BENCH_MAX_SAMPLES) s->samples[s->count++] = (int64_t)id;
    if (s->hold_ns) bench_sleep_ns(s->hold_ns);
    return 0;
  }
  /* takeover: the harness stamped kill_ns right before killing the holder. */
  if (s->count < BENCH_MAX_SAMPLES) s->samples[s->count++] = (int64_t)(t1 - s->kill_ns);
  __atomic_store_n(&s->holder_id, id, __ATOMIC_SEQ_CST);
  bench_bump_gen(s);
  for (;;) pause();
}
