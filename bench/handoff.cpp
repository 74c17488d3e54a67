// Multi-process latency and throughput harness: pidlock against the kernel
// floor and the peers (docs/benchmarks.md lists them).
//
//   pidlock_handoff suite --out DIR [--quick]   everything below; CSV into DIR,
//                                               Markdown tables on stdout
//   pidlock_handoff handoff    --impl I --waiters N [--count C] [--hold-us H]
//       I: flock | "flock, releaser busy N us" | "record floor" | pidlock | "pidlock durable=false"
//          | "python filelock" | flock(1) | dotlockfile | "pidlock run"
//   pidlock_handoff takeover   --impl I [--trials T]
//   pidlock_handoff loss       [--trials T]
//   pidlock_handoff throughput --impl I --procs P [--seconds S]
//
// Method. Every timestamp is CLOCK_MONOTONIC, exchanged through a MAP_SHARED
// page (struct bench_shared, bench/shared_state.h) in /dev/shm.
//  * Hand-off: a holder stamps release_ns immediately before releasing; the
//    next holder reads the clock immediately after acquiring. The releaser
//    then sleeps until another process holds the lock (a futex on the
//    shared generation counter), so each sample is a hand-off to a process
//    that was already waiting; a holder keeps the lock for hold_us and
//    then until every other process of the experiment is asleep (state S
//    in /proc), so that all waiters are blocked before the next release. The first
//    (waiters + 1) hand-offs are a warm-up and are discarded.
//  * CLI peers (flock(1), dotlockfile, pidlock run): "acquired" is the
//    instant the command they run starts; that command is stamp_helper,
//    whose first instruction reads the clock. Their samples therefore
//    include the CLI's exit, the next CLI's lock, fork and exec.
//  * Take-over: the harness stamps kill_ns and SIGKILLs the holder while a
//    contender is blocked; the contender reads the clock once it holds.
//  * Loss: a holder blocks in LockWatch::wait_for_loss(); the harness stamps
//    and unlinks the lock file; the holder reads the clock when it returns.
//  * Throughput: P processes acquire and release in a loop for S seconds;
//    each counts its acquisitions in the shared page.
#include "shared_state.h"

#include <pidlock/pidlock.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "pidlock_handoff: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

// Where the programs under test live; set from the command line/environment.
struct Tools {
  std::string helper;   // stamp_helper
  std::string python;   // /usr/bin/python3
  std::string waiter;   // filelock_waiter.py
  std::string cli;      // build/tools/pidlock, empty if not built
  std::string dir;      // the lock folder (tmpfs)
};
Tools tools;

bool executable(const std::string& path) { return !path.empty() && ::access(path.c_str(), X_OK) == 0; }

bool on_path(const char* name) {
  std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// The shared page, backed by a file in /dev/shm so that exec'd programs
// (stamp_helper, python) can map it by name.
struct Shared {
  std::string path;
  bench_shared* s = nullptr;

  Shared() {
    path = "/dev/shm/pidlock-bench-" + std::to_string(::getpid()) + ".shm";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) die("create " + path);
    if (::ftruncate(fd, sizeof(bench_shared)) != 0) die("size " + path);
    void* p = ::mmap(nullptr, sizeof(bench_shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap " + path);
    ::close(fd);
    s = static_cast<bench_shared*>(p);
  }
  ~Shared() {
    ::munmap(s, sizeof(bench_shared));
    ::unlink(path.c_str());
  }
  void reset() { std::memset(static_cast<void*>(s), 0, sizeof(bench_shared)); }
};

struct Stats {
  std::size_t n = 0;
  double p50 = NAN, p99 = NAN, mean = NAN, min = NAN, max = NAN;  // microseconds
};

Stats stats_of(std::vector<int64_t> ns) {
  Stats st;
  st.n = ns.size();
  if (ns.empty()) return st;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    // Nearest rank: the smallest sample with at least q of the samples at or below it.
    std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(ns.size())));
    return static_cast<double>(ns[std::min(ns.size() - 1, rank == 0 ? 0 : rank - 1)]) / 1000.0;
  };
  st.p50 = at(0.50);
  st.p99 = at(0.99);
  st.min = static_cast<double>(ns.front()) / 1000.0;
  st.max = static_cast<double>(ns.back()) / 1000.0;
  double sum = 0;
  for (int64_t v : ns) sum += static_cast<double>(v);
  st.mean = sum / static_cast<double>(ns.size()) / 1000.0;
  return st;
}

std::vector<int64_t> samples(const bench_shared* s, std::size_t skip) {
  std::vector<int64_t> out;
  std::size_t n = std::min<std::size_t>(s->count, BENCH_MAX_SAMPLES);
  for (std::size_t i = skip; i < n; ++i) out.push_back(s->samples[i]);
  return out;
}

// Runs `body` in a child that leads its own process group, so that every
// process the experiment starts (including exec'd CLIs and their children)
// can be killed together. Waits up to `limit`; returns false on timeout.
bool run_group(const std::function<void()>& body, std::chrono::seconds limit) {
  pid_t runner = ::fork();
  if (runner < 0) die("fork");
  if (runner == 0) {
    ::setpgid(0, 0);
    body();
    ::_exit(0);
  }
  ::setpgid(runner, runner);
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(runner, &status, WNOHANG);
    if (r == runner) {
      ::kill(-runner, SIGKILL);  // stragglers (orphaned helpers)
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-runner, SIGKILL);
      ::waitpid(runner, &status, 0);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Reaps every child of the calling process.
void reap_all() {
  int status = 0;
  while (::waitpid(-1, &status, 0) > 0 || errno == EINTR) {
  }
}

pid_t spawn(const std::function<void()>& child) {
  pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    child();
    ::_exit(0);
  }
  return pid;
}

[[noreturn]] void exec_argv(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::fprintf(stderr, "pidlock_handoff: exec %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

// Runs `argv` to completion; returns its exit status (or 128 + signal).
int run_command(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) exec_argv(argv);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string lock_path() { return tools.dir + "/bench.lock"; }

void clear_lock_dir() {
  ::unlink(lock_path().c_str());
}

// ------------------------------------------------------------------ hand-off

struct HandoffResult {
  std::string impl;
  int waiters = 0;
  Stats st;
  uint64_t self_wins = 0;
  int hold_us = 0;
  bool timed_out = false;
  std::string note;
};

// Library waiters: acquire (blocking), stamp, hold, stamp, release.
void pidlock_waiter(bench_shared* s, uint64_t id, bool durable) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  pidlock::LockManager manager;
  pidlock::AcquireOptions options;
  options.wait = true;
  options.durable = durable;
  for (;;) {
    std::error_code ec;
    pidlock::LockHandle h = manager.acquire(lock_path(), options, ec);
    uint64_t t1 = bench_now_ns();
    if (ec) {
      std::fprintf(stderr, "pidlock_handoff: acquire: %s\n", ec.message().c_str());
      ::_exit(3);
    }
    if (!bench_on_acquired(s, id, t1)) {
      (void)h.release();
      return;
    }
    bench_hold_then_stamp(s, id);
    (void)h.release();
    bench_wait_turn(s, id);
    if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) return;
  }
}

// The kernel floor: flock(LOCK_EX) on a descriptor kept open, flock(LOCK_UN)
// to release. With `busy_after_unlock_us`, the releaser keeps its CPU that
// long after its unlock (a spin, no system call) before it sleeps, as a
// program does that goes on working after a release: on a machine with few
// CPUs the woken waiter may be queued behind it (bench/findings.md).
void flock_waiter(bench_shared* s, uint64_t id, int busy_after_unlock_us) {
  int fd = ::open(lock_path().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) die("open lock");
  for (;;) {
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) die("flock");
    }
    uint64_t t1 = bench_now_ns();
    if (!bench_on_acquired(s, id, t1)) {
      ::flock(fd, LOCK_UN);
      return;
    }
    bench_hold_then_stamp(s, id);
    ::flock(fd, LOCK_UN);
    if (busy_after_unlock_us > 0) {
      const uint64_t until = bench_now_ns() + static_cast<uint64_t>(busy_after_unlock_us) * 1000u;
      while (bench_now_ns() < until) {
      }
    }
    bench_wait_turn(s, id);
    if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) return;
  }
}

struct flock one_byte(short type, off_t start) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = 1;
  return fl;
}

// The record floor: the fewest system calls a hand-off can make that keeps
// a record naming the holder, as pidlock's design needs (bench/findings.md,
// section 1). Each process keeps one writable descriptor of the lock file
// and, as pidlock's announced waiters do, a shared lock on its second byte.
// It waits in F_OFD_SETLKW on the first byte, so the kernel queues and wakes
// it as it does flock's waiters (the cheapest wake there is; pidlock waits
// in poll() on inotify). Holding the lock, it reads the previous record,
// writes its own and checks that the name still names the file: 3 calls.
// Releasing, it asks whether a waiter is announced, checks the name, marks
// the record released and unlocks: 4 calls. flock has 1 on each side.
// Nothing else: no close, no parsing, no checksum, a fixed 200-byte record.
void record_floor_waiter(bench_shared* s, uint64_t id) {
  const std::string path = lock_path();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) die("open lock");
  struct flock announce = one_byte(F_RDLCK, 1);
  if (::fcntl(fd, F_OFD_SETLK, &announce) != 0) die("announce a waiter");
  char record[200];
  std::memset(record, 'x', sizeof record);
  record[sizeof record - 1] = '\n';
  char previous[512];
  struct stat named {};
  for (;;) {
    struct flock lock = one_byte(F_WRLCK, 0);
    while (::fcntl(fd, F_OFD_SETLKW, &lock) != 0) {
      if (errno != EINTR) die("F_OFD_SETLKW");
    }
    if (::pread(fd, previous, sizeof previous, 0) < 0) die("read the record");
    if (::pwrite(fd, record, sizeof record, 0) != static_cast<ssize_t>(sizeof record)) die("write the record");
    if (::fstatat(AT_FDCWD, path.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0) die("stat the name");
    uint64_t t1 = bench_now_ns();
    struct flock unlock = one_byte(F_UNLCK, 0);
    if (!bench_on_acquired(s, id, t1)) {
      ::fcntl(fd, F_OFD_SETLK, &unlock);
      return;
    }
    bench_hold_then_stamp(s, id);
    struct flock waiters = one_byte(F_WRLCK, 1);
    if (::fcntl(fd, F_OFD_GETLK, &waiters) != 0) die("ask for waiters");
    if (::fstatat(AT_FDCWD, path.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0) die("stat the name");
    if (::pwrite(fd, record, sizeof record, 0) != static_cast<ssize_t>(sizeof record)) die("mark released");
    if (::fcntl(fd, F_OFD_SETLK, &unlock) != 0) die("unlock");
    bench_wait_turn(s, id);
    if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) return;
  }
}

// CLI peers: the driver runs the CLI, which runs stamp_helper while it
// holds the lock; the driver then waits for its turn like the others.
void cli_driver(bench_shared* s, uint64_t id, const std::vector<std::string>& argv) {
  for (;;) {
    int rc = run_command(argv);
    if (rc != 0) {
      std::fprintf(stderr, "pidlock_handoff: %s exited with %d\n", argv[0].c_str(), rc);
      ::_exit(3);
    }
    if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) return;
    bench_wait_turn(s, id);
    if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) return;
  }
}

std::vector<std::string> cli_argv(const std::string& impl, const std::string& shm, uint64_t id) {
  std::vector<std::string> helper = {tools.helper, shm, std::to_string(id), "handoff"};
  std::vector<std::string> argv;
  if (impl == "flock(1)") {
    argv = {"flock", lock_path()};
  } else if (impl == "dotlockfile") {
    argv = {"dotlockfile", "-l", "-r", "-1", lock_path()};
  } else if (impl == "pidlock run") {
    argv = {tools.cli, "run", "--wait", lock_path(), "--"};
  }
  argv.insert(argv.end(), helper.begin(), helper.end());
  return argv;
}

// "flock, releaser busy N us": the floor whose releaser keeps its CPU for
// N microseconds after its unlock; 0 for any other implementation.
constexpr const char* kBusyFloorPrefix = "flock, releaser busy ";
int busy_floor_us(const std::string& impl) {
  const std::string prefix = kBusyFloorPrefix;
  if (impl.compare(0, prefix.size(), prefix) != 0) return 0;
  return std::atoi(impl.c_str() + prefix.size());
}
std::string busy_floor(int us) { return kBusyFloorPrefix + std::to_string(us) + " us"; }

bool is_cli(const std::string& impl) {
  return impl == "flock(1)" || impl == "dotlockfile" || impl == "pidlock run";
}

int default_hold_us(const std::string& impl) {
  // Long enough for the releaser to be blocked again before the next
  // release: a library call takes microseconds; a CLI re-queues through a
  // fork and an exec.
  if (is_cli(impl)) return 5000;
  return 1000;
}

HandoffResult handoff(Shared& sh, const std::string& impl, int waiters, int count, int hold_us) {
  HandoffResult r;
  r.impl = impl;
  r.waiters = waiters;
  r.hold_us = hold_us >= 0 ? hold_us : default_hold_us(impl);
  const int procs = waiters + 1;
  // dotlockfile sleeps 5 s per retry: no time for a warm-up there.
  const int warmup = impl == "dotlockfile" ? 0 : procs;
  sh.reset();
  sh.s->target = static_cast<uint64_t>(count + warmup);
  sh.s->hold_ns = static_cast<uint64_t>(r.hold_us) * 1000u;
  clear_lock_dir();
  bench_shared* s = sh.s;
  std::string shm = sh.path;
  auto limit = std::chrono::seconds(impl == "dotlockfile" ? 120 : 90);
  r.timed_out = !run_group(
      [&] {
        for (int i = 0; i < procs; ++i) {
          uint64_t id = static_cast<uint64_t>(i + 1);
          spawn([&, id] {
            if (impl == "pidlock") pidlock_waiter(s, id, true);
            else if (impl == "pidlock durable=false") pidlock_waiter(s, id, false);
            else if (impl == "flock") flock_waiter(s, id, 0);
            else if (busy_floor_us(impl) > 0) flock_waiter(s, id, busy_floor_us(impl));
            else if (impl == "record floor") record_floor_waiter(s, id);
            else if (impl == "python filelock")
              exec_argv({tools.python, tools.waiter, shm, lock_path(), std::to_string(id), "handoff"});
            else cli_driver(s, id, cli_argv(impl, shm, id));
          });
        }
        reap_all();
      },
      limit);
  r.st = stats_of(samples(s, static_cast<std::size_t>(warmup)));
  r.self_wins = s->self_wins;
  clear_lock_dir();
  return r;
}

// ----------------------------------------------------------------- take-over

struct TrialResult {
  std::string impl;
  Stats st;
  bool timed_out = false;
  std::string note;
};

// A contender for the take-over trials: becomes ready, blocks, records the
// take-over sample when it holds, then holds until it is killed.
void pidlock_contender(bench_shared* s, uint64_t id) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  pidlock::LockManager manager;
  pidlock::AcquireOptions options;
  // A first, non-waiting try fills the process's caches (its identity,
  // read from /proc once) as in a long-running daemon, so that the trial
  // measures the take-over and not this process's first acquire.
  { std::error_code ec; (void)manager.acquire(lock_path(), options, ec); }
  options.wait = true;
  __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
  std::error_code ec;
  pidlock::LockHandle h = manager.acquire(lock_path(), options, ec);
  uint64_t t1 = bench_now_ns();
  if (ec) ::_exit(3);
  s->samples[s->count++] = static_cast<int64_t>(t1 - s->kill_ns);
  __atomic_store_n(&s->holder_id, id, __ATOMIC_SEQ_CST);
  bench_bump_gen(s);
  for (;;) ::pause();
}

void flock_contender(bench_shared* s, uint64_t id) {
  int fd = ::open(lock_path().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) ::_exit(3);
  __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
  while (::flock(fd, LOCK_EX) != 0) {
  }
  uint64_t t1 = bench_now_ns();
  s->samples[s->count++] = static_cast<int64_t>(t1 - s->kill_ns);
  __atomic_store_n(&s->holder_id, id, __ATOMIC_SEQ_CST);
  bench_bump_gen(s);
  for (;;) ::pause();
}

// procmail's lockfile(1) only creates the file; it runs no command. Its
// "acquired" instant is its successful exit, seen by this process.
void procmail_contender(bench_shared* s, uint64_t id, int lock_timeout_s) {
  __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
  int rc = run_command({"lockfile", "-1", "-l", std::to_string(lock_timeout_s), "-s", "0", lock_path()});
  uint64_t t1 = bench_now_ns();
  if (rc != 0) ::_exit(3);
  s->samples[s->count++] = static_cast<int64_t>(t1 - s->kill_ns);
  __atomic_store_n(&s->holder_id, id, __ATOMIC_SEQ_CST);
  bench_bump_gen(s);
  for (;;) ::pause();
}

// Waits until `pid` sleeps (state S in /proc/PID/stat): a contender that
// is blocked waiting for the lock, not one still starting up.
void wait_sleeping(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    auto paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S') return;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

int settle_ms(const std::string& impl) {
  if (impl == "pidlock" || impl == "flock") return 5;
  return 300;  // exec'd peers: their first attempt must have failed
}

TrialResult takeover(Shared& sh, const std::string& impl, int trials) {
  TrialResult r;
  r.impl = impl;
  sh.reset();
  clear_lock_dir();
  bench_shared* s = sh.s;
  std::string shm = sh.path;
  auto start_contender = [&](uint64_t id) -> pid_t {
    return spawn([&, id] {
      ::setpgid(0, 0);  // killed as a group: a CLI and the helper it runs
      if (impl == "pidlock") pidlock_contender(s, id);
      else if (impl == "flock") flock_contender(s, id);
      else if (impl == "python filelock")
        exec_argv({tools.python, tools.waiter, shm, lock_path(), std::to_string(id), "takeover"});
      else if (impl == "procmail lockfile -l 1") procmail_contender(s, id, 1);
      else {
        __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
        std::vector<std::string> argv = {"dotlockfile", "-l", "-r", "-1"};
        if (impl == "dotlockfile -p") argv.push_back("-p");
        argv.insert(argv.end(), {lock_path(), tools.helper, shm, std::to_string(id), "takeover"});
        exec_argv(argv);
      }
    });
  };
  auto wait_gen_change = [&](uint32_t g, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (__atomic_load_n(&s->gen, __ATOMIC_SEQ_CST) == g) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      bench_futex_wait(&s->gen, g, 1000000u);
    }
    return true;
  };
  const bool slow = impl.rfind("dotlockfile", 0) == 0 || impl.rfind("procmail", 0) == 0;
  const auto per_trial = std::chrono::seconds(impl == "dotlockfile" ? 420 : slow ? 40 : 10);
  auto limit = per_trial * (trials + 1) + std::chrono::seconds(10);
  r.timed_out = !run_group(
      [&] {
        // The first holder takes the free lock; its sample is not a take-over.
        uint32_t g = s->gen;
        s->kill_ns = bench_now_ns();
        pid_t holder = start_contender(1);
        if (!wait_gen_change(g, per_trial)) return;
        for (int i = 1; i <= trials; ++i) {
          uint64_t ready = __atomic_load_n(&s->ready, __ATOMIC_SEQ_CST);
          pid_t next = start_contender(static_cast<uint64_t>(i + 1));
          while (__atomic_load_n(&s->ready, __ATOMIC_SEQ_CST) == ready)
            std::this_thread::sleep_for(std::chrono::microseconds(100));
          wait_sleeping(next, std::chrono::milliseconds(2000));
          std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms(impl)));
          g = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST);
          __atomic_store_n(&s->kill_ns, bench_now_ns(), __ATOMIC_SEQ_CST);
          ::kill(-holder, SIGKILL);
          int status = 0;
          ::waitpid(holder, &status, 0);
          bool ok = wait_gen_change(g, per_trial);
          holder = next;
          if (!ok) break;
        }
        ::kill(-holder, SIGKILL);
        reap_all();
      },
      limit);
  r.st = stats_of(samples(s, 1));
  clear_lock_dir();
  return r;
}

// ---------------------------------------------------------------------- loss

TrialResult loss(Shared& sh, int trials) {
  TrialResult r;
  r.impl = "pidlock LockWatch";
  sh.reset();
  clear_lock_dir();
  bench_shared* s = sh.s;
  r.timed_out = !run_group(
      [&] {
        for (int i = 0; i < trials; ++i) {
          uint64_t ready = s->ready;
          uint32_t g = s->gen;
          pid_t holder = spawn([&] {
            pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
            pidlock::LockManager manager;
            pidlock::AcquireOptions options;
            options.durable = false;
            pidlock::LockHandle h = manager.acquire(lock_path(), options);
            pidlock::LockWatch watch(h);  // default 60 s recheck: only inotify can be this fast
            __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
            bool lost = watch.wait_for_loss(std::chrono::milliseconds(10000));
            uint64_t t1 = bench_now_ns();
            if (lost) s->samples[s->count++] = static_cast<int64_t>(t1 - s->kill_ns);
            bench_bump_gen(s);
            ::_exit(0);  // the lock is gone; nothing to release
          });
          while (__atomic_load_n(&s->ready, __ATOMIC_SEQ_CST) == ready)
            std::this_thread::sleep_for(std::chrono::microseconds(100));
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          __atomic_store_n(&s->kill_ns, bench_now_ns(), __ATOMIC_SEQ_CST);
          ::unlink(lock_path().c_str());
          while (__atomic_load_n(&s->gen, __ATOMIC_SEQ_CST) == g) bench_futex_wait(&s->gen, g, 1000000u);
          int status = 0;
          ::waitpid(holder, &status, 0);
        }
      },
      std::chrono::seconds(120));
  r.st = stats_of(samples(s, 0));
  return r;
}

// ---------------------------------------------------------------- throughput

struct ThroughputResult {
  std::string impl;
  int procs = 0;
  double seconds = 0;
  uint64_t total = 0;
  uint64_t min_share = 0, max_share = 0;
  double per_second() const { return seconds > 0 ? static_cast<double>(total) / seconds : 0; }
};

ThroughputResult throughput(Shared& sh, const std::string& impl, int procs, double seconds) {
  ThroughputResult r;
  r.impl = impl;
  r.procs = procs;
  sh.reset();
  clear_lock_dir();
  bench_shared* s = sh.s;
  std::vector<uint64_t> snapshot(static_cast<std::size_t>(procs));
  double elapsed = 0;
  // The snapshot is taken inside the runner; pass it back through the page.
  run_group(
      [&] {
        for (int i = 0; i < procs; ++i) {
          spawn([&, i] {
            int fd = -1;
            pidlock::LockManager manager;
            pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
            pidlock::AcquireOptions options;
            options.wait = true;
            options.durable = impl == "pidlock";
            if (impl == "flock") {
              fd = ::open(lock_path().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
              if (fd < 0) ::_exit(3);
            }
            __atomic_add_fetch(&s->ready, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&s->gen, __ATOMIC_SEQ_CST) == 0) bench_futex_wait(&s->gen, 0, 1000000u);
            while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
              if (fd >= 0) {
                ::flock(fd, LOCK_EX);
                __atomic_add_fetch(&s->acquisitions[i], 1, __ATOMIC_RELAXED);
                ::flock(fd, LOCK_UN);
              } else {
                std::error_code ec;
                pidlock::LockHandle h = manager.acquire(lock_path(), options, ec);
                if (ec) ::_exit(3);
                __atomic_add_fetch(&s->acquisitions[i], 1, __ATOMIC_RELAXED);
                (void)h.release();
              }
            }
          });
        }
        while (__atomic_load_n(&s->ready, __ATOMIC_SEQ_CST) < static_cast<uint64_t>(procs))
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        uint64_t before[BENCH_MAX_PROCS];
        for (int i = 0; i < procs; ++i) before[i] = __atomic_load_n(&s->acquisitions[i], __ATOMIC_SEQ_CST);
        auto t0 = std::chrono::steady_clock::now();
        bench_bump_gen(s);
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        uint64_t after[BENCH_MAX_PROCS];
        for (int i = 0; i < procs; ++i) after[i] = __atomic_load_n(&s->acquisitions[i], __ATOMIC_SEQ_CST);
        double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        __atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
        reap_all();
        for (int i = 0; i < procs; ++i) s->samples[i] = static_cast<int64_t>(after[i] - before[i]);
        std::memcpy(&s->kill_ns, &dt, sizeof dt);
      },
      std::chrono::seconds(60));
  std::memcpy(&elapsed, &s->kill_ns, sizeof elapsed);
  r.seconds = elapsed;
  r.min_share = UINT64_MAX;
  for (int i = 0; i < procs; ++i) {
    uint64_t n = static_cast<uint64_t>(s->samples[i]);
    r.total += n;
    r.min_share = std::min(r.min_share, n);
    r.max_share = std::max(r.max_share, n);
  }
  clear_lock_dir();
  return r;
}

// --------------------------------------------------------------------- output

std::string fmt(double v, int prec = 1) {
  if (std::isnan(v)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

std::string fmt_us(double us) {
  if (std::isnan(us)) return "–";
  if (us >= 1e6) return fmt(us / 1e6, 2) + " s";
  if (us >= 1e4) return fmt(us / 1e3, 1) + " ms";
  return fmt(us, us < 100 ? 1 : 0) + " µs";
}

struct Options {
  std::string command;
  std::string impl;
  std::string out;
  int waiters = 1, count = 200, hold_us = -1, trials = 200, procs = 2;
  double seconds = 1.0;
  bool quick = false;
};

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) {
    std::fprintf(stderr, "usage: pidlock_handoff suite|handoff|takeover|loss|throughput [options]\n");
    std::exit(2);
  }
  o.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pidlock_handoff: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--impl") o.impl = next();
    else if (a == "--out") o.out = next();
    else if (a == "--waiters") o.waiters = std::stoi(next());
    else if (a == "--count") o.count = std::stoi(next());
    else if (a == "--hold-us") o.hold_us = std::stoi(next());
    else if (a == "--trials") o.trials = std::stoi(next());
    else if (a == "--procs") o.procs = std::stoi(next());
    else if (a == "--seconds") o.seconds = std::stod(next());
    else if (a == "--quick") o.quick = true;
    else if (a == "--dir") tools.dir = next();
    else if (a == "--cli") tools.cli = next();
    else {
      std::fprintf(stderr, "pidlock_handoff: unknown option %s\n", a.c_str());
      std::exit(2);
    }
  }
  return o;
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<std::size_t>(n));
  return p.substr(0, p.rfind('/'));
}

void write_handoff_csv(std::ostream& out, const HandoffResult& r) {
  out << '"' << r.impl << "\"," << r.waiters << ',' << r.st.n << ',' << fmt(r.st.p50, 2) << ','
      << fmt(r.st.p99, 2) << ',' << fmt(r.st.mean, 2) << ',' << fmt(r.st.min, 2) << ',' << fmt(r.st.max, 2)
      << ',' << r.hold_us << ',' << r.self_wins << ',' << (r.timed_out ? 1 : 0) << ",\"" << r.note << "\"\n";
}

void write_trial_csv(std::ostream& out, const TrialResult& r) {
  out << '"' << r.impl << "\"," << r.st.n << ',' << fmt(r.st.p50, 2) << ',' << fmt(r.st.p99, 2) << ','
      << fmt(r.st.mean, 2) << ',' << fmt(r.st.min, 2) << ',' << fmt(r.st.max, 2) << ','
      << (r.timed_out ? 1 : 0) << ",\"" << r.note << "\"\n";
}

void print_markdown(const std::vector<HandoffResult>& hres, const std::vector<TrialResult>& tres,
                    const TrialResult& lr) {
  // Hand-off: one row per implementation, p50 / p99 per waiter count, and
  // the p50 ratio against the flock floor at the same waiter count.
  std::map<int, double> floor_p50;
  for (const auto& r : hres)
    if (r.impl == "flock") floor_p50[r.waiters] = r.st.p50;
  std::vector<std::string> order;
  for (const auto& r : hres)
    if (std::find(order.begin(), order.end(), r.impl) == order.end()) order.push_back(r.impl);
  std::cout << "### Hand-off latency (release -> next holder holds), p50 / p99 (x flock floor p50)\n\n";
  std::cout << "| implementation | 1 waiter | 4 waiters | 16 waiters | 64 waiters |\n|---|---|---|---|---|\n";
  for (const auto& impl : order) {
    std::cout << "| " << impl;
    for (int w : {1, 4, 16, 64}) {
      auto it = std::find_if(hres.begin(), hres.end(),
                             [&](const HandoffResult& r) { return r.impl == impl && r.waiters == w; });
      if (it == hres.end() || it->st.n == 0) {
        std::cout << " | –";
        continue;
      }
      std::cout << " | " << fmt_us(it->st.p50) << " / " << fmt_us(it->st.p99);
      if (floor_p50.count(w) && floor_p50[w] > 0) std::cout << " (" << fmt(it->st.p50 / floor_p50[w], 1) << "x)";
      if (it->st.n < 50) std::cout << " n=" << it->st.n;
    }
    std::cout << " |\n";
  }
  std::cout << "\n### Take-over after SIGKILL of the holder (kill -> new holder holds)\n\n";
  std::cout << "| implementation | n | p50 | p99 | max |\n|---|---|---|---|---|\n";
  for (const auto& r : tres)
    std::cout << "| " << r.impl << " | " << r.st.n << " | " << fmt_us(r.st.p50) << " | " << fmt_us(r.st.p99)
              << " | " << fmt_us(r.st.max) << " |\n";
  std::cout << "\n### Loss detection (lock file deleted -> holder notices)\n\n";
  std::cout << "| implementation | n | p50 | p99 | max |\n|---|---|---|---|---|\n";
  std::cout << "| " << lr.impl << " | " << lr.st.n << " | " << fmt_us(lr.st.p50) << " | " << fmt_us(lr.st.p99)
            << " | " << fmt_us(lr.st.max) << " |\n";
  std::cout << "| PostgreSQL (recheck once a minute) | – | 60 s (expected) | 120 s (worst) | 120 s |\n\n";
}

int suite(Shared& sh, const Options& o) {
  if (o.out.empty()) {
    std::fprintf(stderr, "pidlock_handoff suite: --out DIR is required\n");
    return 2;
  }
  const int count = o.quick ? 50 : o.count;
  const int trials = o.quick ? 30 : o.trials;
  std::vector<int> waiter_counts = {1, 4, 16, 64};

  // The busy floors show how much of a hand-off is the releaser's own CPU
  // time after its unlock; the record floor, what the system calls of a
  // hand-off that keeps a record cost by themselves (bench/findings.md,
  // section 1).
  std::vector<std::string> impls = {"flock",   busy_floor(10),          busy_floor(30),   "record floor",
                                    "pidlock", "pidlock durable=false", "python filelock"};
  if (on_path("flock")) impls.push_back("flock(1)");
  if (executable(tools.cli)) impls.push_back("pidlock run");
  else std::fprintf(stderr, "pidlock_handoff: no pidlock CLI (tools/pidlock not built): skipping 'pidlock run'\n");

  std::ofstream hcsv(o.out + "/handoff.csv");
  hcsv << "impl,waiters,n,p50_us,p99_us,mean_us,min_us,max_us,hold_us,self_wins,timed_out,note\n";
  std::vector<HandoffResult> hres;
  for (int w : waiter_counts) {
    for (const auto& impl : impls) {
      HandoffResult r = handoff(sh, impl, w, count, o.hold_us);
      std::fprintf(stderr, "handoff %-22s waiters=%-3d n=%-4zu p50=%s p99=%s%s\n", impl.c_str(), w, r.st.n,
                   fmt_us(r.st.p50).c_str(), fmt_us(r.st.p99).c_str(), r.timed_out ? " TIMED OUT" : "");
      write_handoff_csv(hcsv, r);
      hcsv.flush();
      hres.push_back(r);
    }
  }
  if (on_path("dotlockfile")) {
    // dotlockfile polls: 5 s, then 10 s, ... A handful of hand-offs is all
    // the time budget allows.
    HandoffResult r = handoff(sh, "dotlockfile", 1, o.quick ? 2 : 4, -1);
    r.note = "polls every 5 s (+5 s per retry); few samples";
    std::fprintf(stderr, "handoff dotlockfile waiters=1 n=%zu p50=%s\n", r.st.n, fmt_us(r.st.p50).c_str());
    write_handoff_csv(hcsv, r);
    hres.push_back(r);
  }

  std::ofstream tcsv(o.out + "/takeover.csv");
  tcsv << "impl,n,p50_us,p99_us,mean_us,min_us,max_us,timed_out,note\n";
  std::vector<TrialResult> tres;
  std::vector<std::pair<std::string, int>> takeovers = {
      {"flock", trials}, {"pidlock", trials}, {"python filelock", o.quick ? 10 : 40}};
  if (on_path("dotlockfile")) takeovers.push_back({"dotlockfile -p", o.quick ? 1 : 3});
  if (on_path("lockfile")) takeovers.push_back({"procmail lockfile -l 1", o.quick ? 1 : 3});
  for (const auto& [impl, n] : takeovers) {
    TrialResult r = takeover(sh, impl, n);
    std::fprintf(stderr, "takeover %-24s n=%-4zu p50=%s p99=%s%s\n", impl.c_str(), r.st.n,
                 fmt_us(r.st.p50).c_str(), fmt_us(r.st.p99).c_str(), r.timed_out ? " TIMED OUT" : "");
    write_trial_csv(tcsv, r);
    tcsv.flush();
    tres.push_back(r);
  }

  std::ofstream lcsv(o.out + "/loss.csv");
  lcsv << "impl,n,p50_us,p99_us,mean_us,min_us,max_us,timed_out,note\n";
  TrialResult lr = loss(sh, trials);
  lr.note = "file deleted -> LockWatch::wait_for_loss returns";
  std::fprintf(stderr, "loss n=%zu p50=%s p99=%s\n", lr.st.n, fmt_us(lr.st.p50).c_str(), fmt_us(lr.st.p99).c_str());
  write_trial_csv(lcsv, lr);

  print_markdown(hres, tres, lr);

  std::ofstream pcsv(o.out + "/throughput.csv");
  pcsv << "impl,procs,seconds,acquisitions,per_second,min_share,max_share\n";
  std::vector<int> procs = {2, 4, 8, 16, 32, 64};
  for (int p : procs) {
    for (const char* impl : {"flock", "pidlock durable=false", "pidlock"}) {
      ThroughputResult r = throughput(sh, impl, p, o.quick ? 0.3 : o.seconds);
      std::fprintf(stderr, "throughput %-22s procs=%-3d %.0f/s (min %llu, max %llu per process)\n", impl, p,
                   r.per_second(), static_cast<unsigned long long>(r.min_share),
                   static_cast<unsigned long long>(r.max_share));
      pcsv << '"' << r.impl << "\"," << r.procs << ',' << fmt(r.seconds, 3) << ',' << r.total << ','
           << fmt(r.per_second(), 0) << ',' << r.min_share << ',' << r.max_share << '\n';
      pcsv.flush();
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::string here = self_dir();
  if (tools.helper.empty()) tools.helper = here + "/stamp_helper";
  tools.python = "/usr/bin/python3";  // Debian's, where python3-filelock is installed
  if (const char* w = std::getenv("PIDLOCK_BENCH_WAITER")) tools.waiter = w;
  else tools.waiter = here + "/filelock_waiter.py";
  if (tools.cli.empty()) {
    if (const char* c = std::getenv("PIDLOCK_CLI")) tools.cli = c;
  }
  std::string made_dir;
  if (tools.dir.empty()) {
    made_dir = "/dev/shm/pidlock-bench-" + std::to_string(::getpid());
    if (::mkdir(made_dir.c_str(), 0700) != 0) die("mkdir " + made_dir);
    tools.dir = made_dir;
  }
  ::signal(SIGPIPE, SIG_IGN);
  int rc = 0;
  Shared sh;
  if (o.command == "suite") {
    rc = suite(sh, o);
  } else if (o.command == "handoff") {
    HandoffResult r = handoff(sh, o.impl, o.waiters, o.count, o.hold_us);
    std::cout << "impl,waiters,n,p50_us,p99_us,mean_us,min_us,max_us,hold_us,self_wins,timed_out,note\n";
    write_handoff_csv(std::cout, r);
  } else if (o.command == "takeover") {
    TrialResult r = takeover(sh, o.impl, o.trials);
    std::cout << "impl,n,p50_us,p99_us,mean_us,min_us,max_us,timed_out,note\n";
    write_trial_csv(std::cout, r);
  } else if (o.command == "loss") {
    TrialResult r = loss(sh, o.trials);
    std::cout << "impl,n,p50_us,p99_us,mean_us,min_us,max_us,timed_out,note\n";
    write_trial_csv(std::cout, r);
  } else if (o.command == "throughput") {
    ThroughputResult r = throughput(sh, o.impl, o.procs, o.seconds);
    std::cout << "impl,procs,seconds,acquisitions,per_second,min_share,max_share\n";
    std::cout << '"' << r.impl << "\"," << r.procs << ',' << fmt(r.seconds, 3) << ',' << r.total << ','
              << fmt(r.per_second(), 0) << ',' << r.min_share << ',' << r.max_share << '\n';
  } else {
    std::fprintf(stderr, "pidlock_handoff: unknown command %s\n", o.command.c_str());
    rc = 2;
  }
  if (!made_dir.empty()) {
    ::unlink((made_dir + "/bench.lock").c_str());
    ::rmdir(made_dir.c_str());
  }
  return rc;
}
