// pidlock_torture: many real processes contend for one lock while a killer
// SIGKILLs them at random moments, and a witness in shared memory checks
// that two live processes are never inside the critical section at once
// (guarantee G1) and that every crash is recovered from by itself (G2).
//
//   pidlock_torture [--procs N] [--acquisitions M] [--seconds S]
//                   [--lock-dir DIR] [--kill-interval-us U] [--seed X]
//                   [--self-kill-permille P] [--quiet]
//
// Stops after M acquisitions in all (0: no bound) or S seconds, whichever
// comes first; reaching the time limit before M acquisitions is a failure
// ("every round finishes"), unless M is 0. Exit status 0 only if no
// violation, no stall, no unexpected error, a final acquire succeeds by
// itself, and nothing but the lock file is left in the lock's folder.
//
// The witness. Each process has a token: its pid and the low 32 bits of its
// start time in clock ticks (pid_max is often 32768, so pids are reused
// within one run; a pid and a start tick together are not). Inside the
// critical section a process installs its token in `owner` with a
// compare-and-swap from 0, and swaps it back to 0 before it releases.
//  * A holder's swap back failing means someone else entered while it was
//    still inside: a violation, exact, because the holder is alive by
//    definition while it runs.
//  * A swap in that fails finds the previous owner's token. That owner was
//    killed inside the critical section (the only way a token stays), or it
//    is still alive there. Only if it is really dead may the new holder
//    replace the token. "Really dead" is: no such process, a zombie, or the
//    pid now names another process (other start tick). A process being
//    killed has PF_EXITING set from the start of do_exit(), before its
//    descriptors (and so its kernel lock) are closed, and only becomes a
//    zombie after; we wait for such a process to finish dying. A previous
//    owner that is alive and not exiting still holds the lock (it swaps its
//    token out before releasing): that is a violation.
#include <pidlock/pidlock.hpp>

#include "support/fault_system.hpp"
#include "support/files.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// --- phases: where a contender is, for the killer and the kill statistics.
// The checkpoint names come from the seam (lib/posix/system.hpp).
const char* const kSteps[] = {
    "acquire.created",    "acquire.locked",   "acquire.written",
    "takeover.verified", "takeover.removed", "takeover.written",
    "update.before_write", "update.written",   "release.verified",  "release.removed",
    "release.handed_over",
};
constexpr int kStepCount = sizeof kSteps / sizeof kSteps[0];

enum Phase : int {
  kIdle = 0,          // between rounds, or sleeping before a retry
  kAcquiring = 1,     // inside acquire(), before its first checkpoint
  kFirstStep = 2,     // kFirstStep + i: just passed checkpoint kSteps[i]
  kCritical = kFirstStep + kStepCount,
  kUpdating,          // inside update_status(), before its checkpoints
  kReleasing,         // inside release(), before its checkpoints
  kPhaseCount,
};

std::string phase_name(int p) {
  if (p == kIdle) return "idle/retry";
  if (p == kAcquiring) return "acquire";
  if (p >= kFirstStep && p < kCritical) return kSteps[p - kFirstStep];
  if (p == kCritical) return "critical section";
  if (p == kUpdating) return "update_status";
  if (p == kReleasing) return "release";
  return "?";
}

constexpr int kMaxProcs = 256;

struct Slot {
  std::atomic<pid_t> pid{0};
  std::atomic<int> phase{kIdle};
  std::atomic<bool> self_killed{false};  // died by its own raise(SIGKILL)
};

// Lives in a MAP_SHARED|MAP_ANONYMOUS mapping made before the first fork,
// so it survives every kill. Only lock-free atomics in here.
struct Shared {
  std::atomic<std::uint64_t> owner{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> acquisitions{0};
  std::atomic<std::uint64_t> waiting_acquisitions{0};
  std::atomic<std::uint64_t> takeovers{0};
  std::atomic<std::uint64_t> updates{0};
  std::atomic<std::uint64_t> releases{0};
  std::atomic<std::uint64_t> rechecks{0};
  std::atomic<std::uint64_t> held_retries{0};
  std::atomic<std::uint64_t> wait_timeouts{0};
  std::atomic<std::uint64_t> races{0};  // too_many_attempts
  std::atomic<std::uint64_t> dead_owner_cleared{0};
  std::atomic<std::uint64_t> self_kills{0};
  std::atomic<std::uint64_t> violations{0};
  std::atomic<std::uint64_t> unexpected{0};
  std::atomic<std::uint64_t> kills_by_phase[kPhaseCount];
  std::atomic<std::uint64_t> self_kills_by_phase[kPhaseCount];
  Slot slots[kMaxProcs];
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "witness needs lock-free 64-bit atomics");

struct Config {
  int procs = 16;
  std::uint64_t acquisitions = 10000;
  double seconds = 60;
  std::string lock_dir = "/tmp";
  long kill_interval_us = 4000;  // mean time between kills
  unsigned seed = 0;
  int self_kill_permille = 1;    // per checkpoint: raise(SIGKILL) there
  int durable_permille = 20;     // acquires with fsync of file and folder
  bool quiet = false;
};

Shared* g_shared = nullptr;
Config g_config;
std::string g_lock_path;

// --- facts about processes, read from /proc independently of the library.
struct ProcFacts {
  bool exists = false;
  char state = '?';
  unsigned long flags = 0;
  unsigned long long start_ticks = 0;
};

ProcFacts read_proc(pid_t pid) {
  ProcFacts f;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return f;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return f;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return f;
  // Fields after the command: 3 state, 4 ppid, 5 pgrp, 6 session, 7 tty,
  // 8 tpgid, 9 flags, ..., 22 starttime.
  if (std::sscanf(p + 1,
                  " %c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                  &f.state, &f.flags, &f.start_ticks) != 3)
    return f;
  f.exists = true;
  return f;
}

std::uint64_t make_token(pid_t pid, unsigned long long start_ticks) {
  return (static_cast<std::uint64_t>(start_ticks & 0xffffffffu) << 32) | static_cast<std::uint32_t>(pid);
}
pid_t token_pid(std::uint64_t t) { return static_cast<pid_t>(t & 0xffffffffu); }
std::uint32_t token_ticks(std::uint64_t t) { return static_cast<std::uint32_t>(t >> 32); }

enum class Liveness { kDead, kExiting, kAlive };

constexpr unsigned long kPfExiting = 0x00000004;  // include/linux/sched.h

Liveness liveness(std::uint64_t token) {
  pid_t pid = token_pid(token);
  if (::kill(pid, 0) != 0 && errno == ESRCH) return Liveness::kDead;
  ProcFacts f = read_proc(pid);
  if (!f.exists) return Liveness::kDead;
  if (f.state == 'Z' || f.state == 'X' || f.state == 'x') return Liveness::kDead;
  if ((f.start_ticks & 0xffffffffu) != token_ticks(token)) return Liveness::kDead;  // pid reused
  if (f.flags & kPfExiting) return Liveness::kExiting;
  return Liveness::kAlive;
}

// --- the contender's System: records where it is, widens windows, and
// sometimes dies exactly at a step.
class TortureSystem : public pidlock_test::FaultSystem {
 public:
  TortureSystem(Slot* slot, std::mt19937_64* rng) : slot_(slot), rng_(rng) {}

  void checkpoint(const char* step) override {
    int phase = kIdle;
    for (int i = 0; i < kStepCount; ++i)
      if (std::strcmp(step, kSteps[i]) == 0) phase = kFirstStep + i;
    if (phase != kIdle) slot_->phase.store(phase, std::memory_order_relaxed);
    std::uint64_t r = (*rng_)();
    // Rare steps die more often, so that every step sees crashes in a
    // short run: a take-over happens once per killed holder, while the
    // acquire steps run on every attempt.
    int weight = 1;
    if (std::strncmp(step, "takeover.", 9) == 0) weight = 50;
    else if (std::strncmp(step, "update.", 7) == 0 || std::strncmp(step, "release.", 8) == 0) weight = 10;
    else if (std::strcmp(step, "acquire.locked") == 0) weight = 5;
    if (g_config.self_kill_permille > 0 &&
        static_cast<int>(r % 100000) < g_config.self_kill_permille * 100 * weight) {
      g_shared->self_kills.fetch_add(1);
      g_shared->self_kills_by_phase[phase].fetch_add(1);
      slot_->self_killed.store(true);
      ::raise(SIGKILL);
    }
    // Now and then linger a little, so that the killer lands inside the
    // short windows between steps more often.
    if ((r >> 16) % 8 == 0) spin_us(static_cast<int>((r >> 24) % 40));
    FaultSystem::checkpoint(step);
  }

  static void spin_us(int us) {
    auto until = Clock::now() + std::chrono::microseconds(us);
    while (Clock::now() < until) {
    }
  }

 private:
  Slot* slot_;
  std::mt19937_64* rng_;
};

void report(const char* what, const std::string& detail) {
  std::fprintf(stderr, "pidlock_torture [pid %d]: %s: %s\n", static_cast<int>(::getpid()), what, detail.c_str());
}

void violation(const std::string& detail) {
  g_shared->violations.fetch_add(1);
  report("VIOLATION", detail);
}

void unexpected(const std::string& detail) {
  // Print the first few; count all.
  if (g_shared->unexpected.fetch_add(1) < 20) report("unexpected", detail);
}

std::string token_text(std::uint64_t t) {
  return "pid " + std::to_string(token_pid(t)) + " (start tick " + std::to_string(token_ticks(t)) + ")";
}

// Enters the witness; false (after counting a violation) if a live process
// is recorded inside.
bool witness_enter(std::uint64_t me) {
  std::uint64_t current = 0;
  for (;;) {
    if (g_shared->owner.compare_exchange_strong(current, me)) return true;
    if (current == me) {
      violation("witness already names this process on entry");
      return false;
    }
    // `current` is the previous owner's token: killed inside, or alive.
    Liveness l = liveness(current);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (l == Liveness::kExiting && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      l = liveness(current);
    }
    if (l == Liveness::kDead) {
      g_shared->dead_owner_cleared.fetch_add(1);
      continue;  // compare-and-swap the dead owner's token for ours
    }
    ProcFacts f = read_proc(token_pid(current));
    violation("acquired the lock while " + token_text(current) + " is still inside the critical section (state " +
              std::string(1, f.state) + ", flags 0x" + [&] {
                char b[32];
                std::snprintf(b, sizeof b, "%lx", f.flags);
                return std::string(b);
              }() + ")");
    return false;
  }
}

void witness_leave(std::uint64_t me) {
  std::uint64_t expected = me;
  if (!g_shared->owner.compare_exchange_strong(expected, 0)) {
    violation("while this process held the lock, " + token_text(expected) + " entered the critical section");
  }
}

const char* kStatuses[] = {"ready", "busy", "standby", "stopping", "recovering-long-status-word-xyz"};

[[noreturn]] void contender(int slot_index, unsigned seed) {
  Slot* slot = &g_shared->slots[slot_index];
  std::mt19937_64 rng(seed ^ (static_cast<std::uint64_t>(::getpid()) << 20) ^
                      static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
  ProcFacts self = read_proc(::getpid());
  const std::uint64_t me = make_token(::getpid(), self.start_ticks);
  static TortureSystem* system = new TortureSystem(slot, &rng);  // lives until _exit
  pidlock::detail::set_system(system);
  pidlock::LockManager manager;
  const std::uint64_t target = g_config.acquisitions;

  while (!g_shared->stop.load() && (target == 0 || g_shared->acquisitions.load() < target)) {
    slot->phase.store(kAcquiring);
    pidlock::AcquireOptions options;
    const bool waiting = rng() % 3 == 0;
    if (waiting) options.timeout = std::chrono::milliseconds(2000);
    options.durable = g_config.durable_permille > 0 && static_cast<int>(rng() % 1000) < g_config.durable_permille;
    std::error_code ec;
    pidlock::Inspection holder;
    pidlock::LockHandle handle = manager.acquire(g_lock_path, options, ec, &holder);
    if (!handle) {
      slot->phase.store(kIdle);
      if (ec == pidlock::errc::held) {
        if (waiting) {
          g_shared->wait_timeouts.fetch_add(1);
        } else {
          g_shared->held_retries.fetch_add(1);
          // A stale or unknown verdict on a file nobody can hold is a wedge
          // in the making; a held verdict is normal.
          if (holder.verdict == pidlock::Verdict::kStale)
            unexpected(std::string("acquire failed with 'held' but the verdict is stale: ") + holder.detail);
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 400));
        }
      } else if (ec == pidlock::errc::too_many_attempts) {
        g_shared->races.fetch_add(1);
      } else {
        unexpected("acquire failed: " + ec.message() + " [" + ec.category().name() + " " +
                   std::to_string(ec.value()) + "]");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      continue;
    }
    slot->phase.store(kCritical);
    if (!witness_enter(me)) {
      // Leave the lock as the protocol says, without touching the witness.
      slot->phase.store(kReleasing);
      (void)handle.release();
      slot->phase.store(kIdle);
      continue;
    }
    g_shared->acquisitions.fetch_add(1);
    if (waiting) g_shared->waiting_acquisitions.fetch_add(1);
    if (handle.took_over()) g_shared->takeovers.fetch_add(1);

    // The critical section: a little work, sometimes a check that the file
    // on disk is still ours, sometimes a status update.
    TortureSystem::spin_us(static_cast<int>(rng() % 60));
    if (rng() % 4 == 0) {
      std::error_code rec;
      bool ours = handle.recheck(rec);
      g_shared->rechecks.fetch_add(1);
      if (rec)
        unexpected("recheck failed: " + rec.message());
      else if (!ours)
        violation("recheck says the lock file is no longer ours while we hold the lock");
    }
    if (rng() % 3 == 0) {
      slot->phase.store(kUpdating);
      std::error_code uec;
      handle.update_status(kStatuses[rng() % (sizeof kStatuses / sizeof kStatuses[0])], uec);
      slot->phase.store(kCritical);
      if (uec)
        unexpected("update_status failed: " + uec.message());
      else
        g_shared->updates.fetch_add(1);
    }
    witness_leave(me);
    slot->phase.store(kReleasing);
    std::error_code rel = handle.release();
    slot->phase.store(kIdle);
    if (rel == pidlock::errc::lock_lost)
      violation("release: the lock file was removed or replaced while we held it");
    else if (rel)
      unexpected("release failed: " + rel.message());
    else
      g_shared->releases.fetch_add(1);
  }
  slot->phase.store(kIdle);
  std::fflush(stderr);
  ::_exit(0);
}

pid_t spawn(int slot_index, unsigned seed) {
  // Reset the slot before fork: a child can reach a checkpoint and kill
  // itself before the parent runs again, and a reset after fork would erase
  // its self_killed mark (the kill would then be counted as a crash).
  g_shared->slots[slot_index].phase.store(kIdle);
  g_shared->slots[slot_index].self_killed.store(false);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("pidlock_torture: fork");
    std::exit(2);
  }
  if (pid == 0) contender(slot_index, seed);
  g_shared->slots[slot_index].pid.store(pid);
  return pid;
}

void usage() {
  std::fprintf(stderr,
               "usage: pidlock_torture [--procs N] [--acquisitions M] [--seconds S] [--lock-dir DIR]\n"
               "                       [--kill-interval-us U] [--self-kill-permille P] [--seed X]\n"
               "                       [--durable-permille D] [--quiet]\n");
  std::exit(2);
}

Config parse_args(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--procs") c.procs = std::stoi(value());
    else if (a == "--acquisitions") c.acquisitions = std::stoull(value());
    else if (a == "--seconds") c.seconds = std::stod(value());
    else if (a == "--lock-dir") c.lock_dir = value();
    else if (a == "--kill-interval-us") c.kill_interval_us = std::stol(value());
    else if (a == "--self-kill-permille") c.self_kill_permille = std::stoi(value());
    else if (a == "--durable-permille") c.durable_permille = std::stoi(value());
    else if (a == "--seed") c.seed = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--quiet") c.quiet = true;
    else usage();
  }
  if (c.procs < 2 || c.procs > kMaxProcs || c.seconds <= 0 || c.kill_interval_us < 0) usage();
  if (c.seed == 0) c.seed = static_cast<unsigned>(std::random_device{}());
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  g_config = parse_args(argc, argv);
  const Config& cfg = g_config;
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);

  std::string templ = cfg.lock_dir + "/pidlock-torture.XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    std::perror(("pidlock_torture: mkdtemp " + templ).c_str());
    return 2;
  }
  const std::string dir = buf.data();
  g_lock_path = dir + "/torture.lock";

  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("pidlock_torture: mmap");
    return 2;
  }
  g_shared = new (mem) Shared();

  std::printf("pidlock_torture: %d processes, target %" PRIu64 " acquisitions, at most %.0f s, seed %u, lock %s\n",
              cfg.procs, cfg.acquisitions, cfg.seconds, cfg.seed, g_lock_path.c_str());
  std::fflush(stdout);

  std::mt19937_64 rng(cfg.seed);
  std::vector<bool> killed_by_us(static_cast<size_t>(cfg.procs), false);
  for (int i = 0; i < cfg.procs; ++i) spawn(i, static_cast<unsigned>(rng()));

  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
  std::uint64_t kills = 0, crashes = 0, respawns = 0;
  bool stalled = false;
  std::uint64_t last_count = 0;
  auto last_progress = start;
  auto last_report = start;

  auto reap = [&](bool respawn) {
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      int i = 0;
      while (i < cfg.procs && g_shared->slots[i].pid.load() != pid) ++i;
      if (i == cfg.procs) continue;
      g_shared->slots[i].pid.store(0);
      bool ours = killed_by_us[static_cast<size_t>(i)] || g_shared->slots[i].self_killed.exchange(false);
      killed_by_us[static_cast<size_t>(i)] = false;
      bool normal = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
      if (!normal && !(killed && ours)) {
        ++crashes;
        std::fprintf(stderr, "pidlock_torture: contender %d crashed (status 0x%x)\n", static_cast<int>(pid), status);
      }
      // A contender exits by itself only when the run is over.
      if (respawn && !normal) {
        spawn(i, static_cast<unsigned>(rng()));
        ++respawns;
      }
    }
  };

  while (true) {
    auto now = Clock::now();
    std::uint64_t count = g_shared->acquisitions.load();
    if (cfg.acquisitions != 0 && count >= cfg.acquisitions) break;
    if (now >= deadline) break;
    if (count != last_count) {
      last_count = count;
      last_progress = now;
    } else if (now - last_progress > std::chrono::seconds(20)) {
      stalled = true;
      std::fprintf(stderr, "pidlock_torture: STALL: no acquisition for 20 s\n");
      break;
    }
    if (!cfg.quiet && now - last_report > std::chrono::seconds(10)) {
      last_report = now;
      std::printf("  ... %.0f s: %" PRIu64 " acquisitions, %" PRIu64 " kills, %" PRIu64 " take-overs\n",
                  std::chrono::duration<double>(now - start).count(), count, kills + g_shared->self_kills.load(),
                  g_shared->takeovers.load());
      std::fflush(stdout);
    }

    // The killer: sleep a random time, pick a victim (half the time one
    // that is inside an operation), maybe wait a few more microseconds,
    // kill it.
    if (cfg.kill_interval_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % static_cast<std::uint64_t>(2 * cfg.kill_interval_us + 1)));
      int victim = -1;
      if (rng() % 5 < 2) {
        // The holder's phases: after the link, the critical section,
        // update and release; and contenders in the middle of a take-over.
        std::vector<int> busy;
        for (int i = 0; i < cfg.procs; ++i) {
          int ph = g_shared->slots[i].phase.load();
          bool holder_phase = ph == kFirstStep + 4 || ph >= kFirstStep + 5;
          if (holder_phase && g_shared->slots[i].pid.load() > 0) busy.push_back(i);
        }
        if (!busy.empty()) victim = busy[rng() % busy.size()];
      }
      if (victim < 0) victim = static_cast<int>(rng() % static_cast<std::uint64_t>(cfg.procs));
      if (rng() % 2 == 0) TortureSystem::spin_us(static_cast<int>(rng() % 100));
      pid_t pid = g_shared->slots[victim].pid.load();
      // Only pids not yet reaped (reaping happens on this thread), so the
      // pid cannot have been reused by another process.
      // Not one that already killed itself at a checkpoint (an unreaped
      // zombie still accepts kill()), so that no death is counted twice.
      if (pid > 0 && !killed_by_us[static_cast<size_t>(victim)] && !g_shared->slots[victim].self_killed.load()) {
        int phase = g_shared->slots[victim].phase.load();
        if (::kill(pid, SIGKILL) == 0) {
          killed_by_us[static_cast<size_t>(victim)] = true;
          g_shared->kills_by_phase[phase].fetch_add(1);
          ++kills;
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    reap(/*respawn=*/true);
  }

  // Stop everyone and wait for every round to finish.
  g_shared->stop.store(true);
  const auto stop_time = Clock::now();
  std::vector<int> hung;
  while (true) {
    reap(/*respawn=*/false);
    bool any = false;
    for (int i = 0; i < cfg.procs; ++i) any = any || g_shared->slots[i].pid.load() > 0;
    if (!any) break;
    if (Clock::now() - stop_time > std::chrono::seconds(30)) {
      for (int i = 0; i < cfg.procs; ++i) {
        pid_t pid = g_shared->slots[i].pid.load();
        if (pid > 0) {
          std::fprintf(stderr, "pidlock_torture: contender %d did not finish its round (phase %s)\n",
                       static_cast<int>(pid), phase_name(g_shared->slots[i].phase.load()).c_str());
          hung.push_back(pid);
          ::kill(pid, SIGKILL);
        }
      }
      while (::waitpid(-1, nullptr, 0) > 0) {
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  // Every process is gone. The lock must not need a person: only the lock
  // file (or nothing) in its folder, a stale or free verdict, and a plain
  // acquire that succeeds by itself.
  bool final_ok = true;
  // Anything but the lock file counts as left behind.
  std::vector<std::string> before_final;
  for (const std::string& n : pidlock_test::list_folder(dir))
    if (n != "torture.lock") before_final.push_back(n);
  std::string final_state = "no lock file";
  pidlock::LockManager manager;
  {
    std::vector<std::string> names = pidlock_test::list_folder(dir);
    if (std::find(names.begin(), names.end(), "torture.lock") != names.end()) {
      pidlock::ParsedRecord parsed = pidlock::parse_record(pidlock_test::try_read_file(g_lock_path).value_or(""));
      final_state = std::string("lock file left behind, ") +
                    (parsed.record ? std::string(pidlock::to_string(parsed.record->format)) + " record"
                                   : "unparsed: " + parsed.problem);
    }
  }
  // Inspected a minute later: a crashed creator's empty file is "in
  // creation" (unknown) while young, stale after that. The final acquire
  // runs on the real clock, and takes even a young one over by itself.
  pidlock_test::FaultSystem later;
  later.advance_clock(60);
  pidlock::detail::set_system(&later);
  std::error_code iec;
  pidlock::Inspection insp = manager.inspect(g_lock_path, {}, iec);
  pidlock::detail::set_system(nullptr);
  if (iec || (insp.verdict != pidlock::Verdict::kStale && insp.verdict != pidlock::Verdict::kFree)) {
    final_ok = false;
    std::fprintf(stderr, "pidlock_torture: final inspection: %s (%s: %s)\n",
                 iec ? iec.message().c_str() : pidlock::to_string(insp.verdict), pidlock::to_string(insp.reason),
                 insp.detail.c_str());
  }
  std::error_code aec;
  pidlock::LockHandle final_handle = manager.acquire(g_lock_path, {}, aec);
  bool final_took_over = false;
  if (!final_handle) {
    final_ok = false;
    std::fprintf(stderr, "pidlock_torture: final acquire FAILED: %s\n", aec.message().c_str());
  } else {
    final_took_over = final_handle.took_over();
    if (std::error_code rec = final_handle.release()) {
      final_ok = false;
      std::fprintf(stderr, "pidlock_torture: final release failed: %s\n", rec.message().c_str());
    }
  }
  const std::vector<std::string> leftovers = pidlock_test::list_folder(dir);

  const Shared& s = *g_shared;
  const std::uint64_t acquisitions = s.acquisitions.load();
  const bool finished = cfg.acquisitions == 0 || acquisitions >= cfg.acquisitions;
  std::uint64_t takeover_kills = 0;
  for (int p = 0; p < kPhaseCount; ++p) {
    if (phase_name(p).rfind("takeover.", 0) == 0) takeover_kills += s.kills_by_phase[p] + s.self_kills_by_phase[p];
  }
  std::printf("pidlock_torture: %.1f s, %d processes, seed %u\n", elapsed, cfg.procs, cfg.seed);
  std::printf("  acquisitions   %" PRIu64 " (%" PRIu64 " by waiting acquires), %.0f/s\n", acquisitions,
              s.waiting_acquisitions.load(), acquisitions / elapsed);
  std::printf("  kills          %" PRIu64 " (killer %" PRIu64 ", at a checkpoint %" PRIu64 "; respawns %" PRIu64 ")\n",
              kills + s.self_kills.load(), kills, s.self_kills.load(), respawns);
  std::printf("  kills by phase");
  for (int p = 0; p < kPhaseCount; ++p) {
    std::uint64_t k = s.kills_by_phase[p] + s.self_kills_by_phase[p];
    if (k) std::printf(" %s=%" PRIu64, phase_name(p).c_str(), k);
  }
  std::printf("\n");
  std::printf("  take-overs     %" PRIu64 " (dead witness owners replaced: %" PRIu64 ", kills during take-over %" PRIu64 ")\n",
              s.takeovers.load(), s.dead_owner_cleared.load(), takeover_kills);
  std::printf("  updates %" PRIu64 ", rechecks %" PRIu64 ", releases %" PRIu64 ", held retries %" PRIu64
              ", wait timeouts %" PRIu64 ", create races %" PRIu64 "\n",
              s.updates.load(), s.rechecks.load(), s.releases.load(), s.held_retries.load(), s.wait_timeouts.load(),
              s.races.load());
  std::printf("  final: %s, %zu temporaries; acquire %s%s; left after release: %s\n", final_state.c_str(),
              before_final.size(), final_ok ? "ok" : "FAILED", final_took_over ? " (took over)" : "",
              leftovers.empty() ? "nothing" : "SOMETHING");
  for (const auto& n : leftovers) std::printf("    leftover: %s\n", n.c_str());
  std::printf("  violations     %" PRIu64 "\n", s.violations.load());
  std::printf("  unexpected errors %" PRIu64 ", crashes %" PRIu64 ", hung %zu, stalled %s, rounds finished %s\n",
              s.unexpected.load(), crashes, hung.size(), stalled ? "YES" : "no", finished ? "yes" : "NO");

  bool ok = s.violations.load() == 0 && s.unexpected.load() == 0 && crashes == 0 && hung.empty() && !stalled &&
            finished && final_ok && leftovers.empty();
  std::printf("pidlock_torture: %s\n", ok ? "PASS" : "FAIL");
  if (ok) ::rmdir(dir.c_str());
  return ok ? 0 : 1;
}
