// Crash at every step (issue 5, guarantee G2): for every checkpoint an
// operation passes (lib/posix/system.hpp), a child process runs the
// operation with a System whose checkpoint() kills it exactly there —
// _exit() or raise(SIGKILL) — and the parent then checks that:
//  * the lock's folder is consistent: only the lock file (whose record
//    parses) besides the files that were there before, no temp files;
//  * inspect() calls the leftover lock stale (never held, never unknown);
//  * the next acquire succeeds by itself, with took_over() exactly when a
//    lock file was left behind;
//  * no foreign file was removed or changed.
// The steps are not hard-coded: a first run records the sequence of
// checkpoints the operation passes (a take-over passes
// "acquire.before_link" twice), and every position in it is a crash point.
#include "fault_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace pidlock_faults {
namespace {

enum class Operation { kFreshAcquire, kTakeOver, kUpdate, kRelease, kReleaseToWaiter };
enum class Stale { kNone, kKilledPidlock, kEmpty, kPostgresDead, kDeadPidFile };
enum class Death { kExit, kSigkill };

const char* name(Operation o) {
  switch (o) {
    case Operation::kFreshAcquire: return "fresh acquire";
    case Operation::kTakeOver: return "take-over";
    case Operation::kUpdate: return "update_status";
    case Operation::kRelease: return "release";
    case Operation::kReleaseToWaiter: return "release to a waiter";
  }
  return "?";
}

constexpr int kDiedAtStep = 77;

// Records the checkpoints it passes (into a pipe) and dies at the
// `crash_at`-th one after arm().
class CrashSystem : public d::SystemWrapper {
 public:
  CrashSystem(int report_fd, int crash_at, Death death, bool no_tmpfile)
      : SystemWrapper(d::real_system()), report_fd_(report_fd), crash_at_(crash_at), death_(death),
        no_tmpfile_(no_tmpfile) {}
  void arm() { armed_ = true; }
  void disarm() { armed_ = false; }
  void checkpoint(const char* step) override {
    if (!armed_) return;
    if (seen_++ == crash_at_) {
      if (death_ == Death::kExit) ::_exit(kDiedAtStep);
      ::raise(SIGKILL);
    }
    std::string line = std::string(step) + "\n";
    (void)!::write(report_fd_, line.data(), line.size());
  }
  int open_unnamed(int dirfd, mode_t mode, bool cloexec) override {
    if (no_tmpfile_) {
      errno = EOPNOTSUPP;  // a file system without O_TMPFILE
      return -1;
    }
    return SystemWrapper::open_unnamed(dirfd, mode, cloexec);
  }

 private:
  int report_fd_;
  int crash_at_;
  Death death_;
  bool no_tmpfile_;
  bool armed_ = false;
  int seen_ = 0;
};

struct Setup {
  std::string lock;
  std::string data_dir;
  std::string stale_bytes;  // the stale file's content, for kTakeOver
};

// Puts foreign files and, for a take-over, a stale lock file in `dir`.
// With `lookalike`, also a user's file whose name starts like the
// fallback's temporaries (".postmaster.pid.pidlock-") but is not one.
Setup prepare(const TempDir& dir, Operation op, Stale stale, bool lookalike = false) {
  Setup s;
  s.lock = dir / "postmaster.pid";
  s.data_dir = dir.path();
  write_bytes(dir / "PG_VERSION", "16\n");
  write_bytes(dir / "postmaster.opts", "/usr/lib/postgresql/16/bin/postgres\n");
  if (lookalike) write_bytes(dir / ".postmaster.pid.pidlock-backup", "a user's file, not a temporary\n");
  if (op == Operation::kTakeOver) {
    switch (stale) {
      case Stale::kKilledPidlock: EXPECT_TRUE(make_stale_pidlock_file(s.lock)); break;
      case Stale::kEmpty: write_bytes(s.lock, ""); break;
      case Stale::kPostgresDead: {
        pid_t dead = fork_child([] { return 0; });
        wait_child(dead);
        write_bytes(s.lock, postmaster_pid(dead, s.data_dir, static_cast<long long>(std::time(nullptr))));
        break;
      }
      case Stale::kDeadPidFile: {
        // X11's and UUCP's layout: the pid right-aligned in ten columns.
        pid_t dead = fork_child([] { return 0; });
        wait_child(dead);
        char padded[16];
        std::snprintf(padded, sizeof padded, "%10d\n", static_cast<int>(dead));
        write_bytes(s.lock, padded);
        break;
      }
      case Stale::kNone: break;
    }
    s.stale_bytes = read_bytes(s.lock);
  }
  return s;
}

// Runs `op` in a child that dies at checkpoint `crash_at` (-1: never).
// Returns the wait status; *steps receives the checkpoints it passed.
int run_child(const Setup& s, Operation op, int crash_at, Death death, bool no_tmpfile,
              std::vector<std::string>* steps) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
  pid_t pid = fork_child([&] {
    ::close(p[0]);
    static CrashSystem* system = new CrashSystem(p[1], crash_at, death, no_tmpfile);
    d::set_system(system);
    pidlock::LockManager m;
    std::error_code ec;
    pidlock::LockHandle h;
    if (op == Operation::kUpdate || op == Operation::kRelease || op == Operation::kReleaseToWaiter) {
      h = m.acquire(s.lock, {}, ec);
      if (!h) return 10;
    }
    if (op == Operation::kReleaseToWaiter) {
      // A waiter's announcement, through a second open file description
      // (it dies with this process).
      int waiter = ::open(s.lock.c_str(), O_RDWR | O_CLOEXEC);
      if (waiter < 0 || d::real_system().announce_waiter(waiter) != 0) return 14;
    }
    system->arm();
    switch (op) {
      case Operation::kFreshAcquire:
      case Operation::kTakeOver:
        h = m.acquire(s.lock, {}, ec);
        if (!h) return 11;
        break;
      case Operation::kUpdate:
        h.update_status("ready", ec);
        if (ec) return 12;
        break;
      case Operation::kRelease:
      case Operation::kReleaseToWaiter:
        if (h.release()) return 13;
        break;
    }
    system->disarm();
    ::_exit(0);  // keep whatever the operation left, like a crash right after it
  });
  ::close(p[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  steps->clear();
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    steps->push_back(text.substr(start, nl - start));
  return wait_child(pid);
}

bool is_known(const std::string& name, const std::map<std::string, std::string>& before) {
  return before.count(name) != 0;
}

// The same file system as the crashed child's, seen later: without
// O_TMPFILE, and (for the fallback's sweep of orphaned temporaries, which
// spares files younger than a creator needs to lock them) a minute on.
class LaterWithoutTmpfile : public d::SystemWrapper {
 public:
  LaterWithoutTmpfile() : SystemWrapper(d::real_system()) {}
  int open_unnamed(int, mode_t, bool) override {
    errno = EOPNOTSUPP;
    return -1;
  }
  std::int64_t now() override { return SystemWrapper::now() + 60; }
};

// Everything the parent checks after the child died at `where`.
void check_recovery(const TempDir& dir, const Setup& s, Operation op, bool no_tmpfile,
                    const std::map<std::string, std::string>& foreign_before, const std::string& where) {
  SCOPED_TRACE(where);
  LaterWithoutTmpfile later;
  ScopedSystem scoped(no_tmpfile ? static_cast<d::System*>(&later) : &d::real_system());
  const std::string lock_name = "postmaster.pid";
  // 1. The folder: the foreign files untouched, at most the lock file more
  //    (and, without O_TMPFILE, the crashed creator's hidden temporary,
  //    which the next acquire must sweep).
  auto after = snapshot(dir.path());
  for (const auto& [n, bytes] : foreign_before) {
    ASSERT_TRUE(after.count(n)) << "foreign file " << n << " was removed";
    EXPECT_EQ(after.at(n), bytes) << "foreign file " << n << " was changed";
  }
  for (const auto& [n, bytes] : after) {
    if (n == lock_name || is_known(n, foreign_before)) continue;
    if (no_tmpfile && n.rfind("." + lock_name + ".pidlock-", 0) == 0) continue;
    ADD_FAILURE() << "left behind in the lock's folder: " << n << " (" << bytes.size() << " bytes)";
  }
  const bool lock_left = after.count(lock_name) != 0;

  // 2. What is left parses (or is the untouched stale file).
  if (lock_left) {
    const std::string& bytes = after.at(lock_name);
    if (op == Operation::kTakeOver && bytes == s.stale_bytes) {
      // The stale file, not yet removed.
    } else {
      pidlock::ParsedRecord parsed = pidlock::parse_record(bytes);
      ASSERT_TRUE(parsed.record.has_value()) << "record does not parse: " << parsed.problem;
      EXPECT_EQ(parsed.record->format, pidlock::RecordFormat::kPidlock);
      if (op == Operation::kUpdate) {
        EXPECT_TRUE(parsed.record->status == "starting" || parsed.record->status == "ready") << parsed.record->status;
      }
    }
  }

  // 3. The verdict: stale if something is left, free otherwise.
  pidlock::LockManager m;
  std::error_code ec;
  pidlock::Inspection insp = m.inspect(s.lock, {}, ec);
  ASSERT_FALSE(ec) << "inspect: " << ec.message();
  EXPECT_EQ(insp.verdict, lock_left ? pidlock::Verdict::kStale : pidlock::Verdict::kFree)
      << pidlock::to_string(insp.reason) << ": " << insp.detail;

  // 4. The next acquire recovers by itself, and runs recovery unless the
  //    file was released to a waiter.
  const bool released = insp.reason == pidlock::Reason::kReleased;
  EXPECT_TRUE(!released || op == Operation::kReleaseToWaiter) << insp.detail;
  pidlock::LockHandle h = m.acquire(s.lock, {}, ec);
  ASSERT_TRUE(h) << "next acquire needs a person: " << ec.message();
  EXPECT_EQ(h.took_over(), lock_left && !released);
  EXPECT_EQ(h.record().pid, ::getpid());
  EXPECT_FALSE(h.release());

  // 5. Only the foreign files remain, all of them.
  auto final_state = snapshot(dir.path());
  for (const auto& [n, bytes] : foreign_before)
    EXPECT_TRUE(final_state.count(n)) << "foreign file " << n << " was removed by the recovery";
  for (const auto& [n, bytes] : final_state)
    EXPECT_TRUE(is_known(n, foreign_before)) << "left behind after recovery and release: " << n;
  EXPECT_EQ(final_state.size(), foreign_before.size());
}

// Runs the whole matrix for one operation.
void crash_everywhere(Operation op, Stale stale, bool no_tmpfile, const std::vector<std::string>& must_see,
                      bool lookalike = false) {
  // Record the steps.
  std::vector<std::string> steps;
  {
    TempDir dir;
    Setup s = prepare(dir, op, stale, lookalike);
    int status = run_child(s, op, -1, Death::kExit, no_tmpfile, &steps);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << name(op) << " without a crash failed: " << describe_status(status);
  }
  std::string sequence;
  for (const std::string& step : steps) sequence += " " + step;
  std::printf("%s%s passes %zu checkpoints:%s\n", name(op), no_tmpfile ? " [no O_TMPFILE]" : "", steps.size(),
              sequence.c_str());
  for (const std::string& step : must_see)
    EXPECT_NE(std::find(steps.begin(), steps.end(), step), steps.end()) << name(op) << " never passes " << step;

  for (Death death : {Death::kExit, Death::kSigkill}) {
    for (int k = 0; k < static_cast<int>(steps.size()); ++k) {
      const std::string where = std::string(name(op)) + ": died (" +
                                (death == Death::kExit ? "_exit" : "SIGKILL") + ") at step #" + std::to_string(k) +
                                " " + steps[static_cast<size_t>(k)] + (no_tmpfile ? " [no O_TMPFILE]" : "");
      TempDir dir;
      Setup s = prepare(dir, op, stale, lookalike);
      auto foreign = snapshot(dir.path());
      foreign.erase("postmaster.pid");
      std::vector<std::string> passed;
      int status = run_child(s, op, k, death, no_tmpfile, &passed);
      bool died = death == Death::kExit ? (WIFEXITED(status) && WEXITSTATUS(status) == kDiedAtStep)
                                        : (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
      ASSERT_TRUE(died) << where << ": the child did not die there (" << describe_status(status) << ")";
      ASSERT_EQ(passed.size(), static_cast<size_t>(k)) << where;
      check_recovery(dir, s, op, no_tmpfile, foreign, where);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(CrashAtEveryStep, FreshAcquire) {
  crash_everywhere(Operation::kFreshAcquire, Stale::kNone, false,
                   {"acquire.created", "acquire.locked", "acquire.written", "acquire.before_link", "acquire.linked"});
}

TEST(CrashAtEveryStep, TakeOverOfKilledHolder) {
  crash_everywhere(Operation::kTakeOver, Stale::kKilledPidlock, false, {"acquire.before_link", "takeover.verified"});
}

TEST(CrashAtEveryStep, TakeOverOfEmptyFile) {
  crash_everywhere(Operation::kTakeOver, Stale::kEmpty, false, {"takeover.verified"});
}

TEST(CrashAtEveryStep, TakeOverOfDeadPostgresqlRecord) {
  crash_everywhere(Operation::kTakeOver, Stale::kPostgresDead, false, {"takeover.verified"});
}

// (A file that is not a lock record is never taken over at all: see
// tests/recognise/layout_table_test.cpp.)
TEST(CrashAtEveryStep, TakeOverOfDeadPlainPidFile) {
  crash_everywhere(Operation::kTakeOver, Stale::kDeadPidFile, false, {"takeover.verified"});
}

TEST(CrashAtEveryStep, UpdateStatus) {
  crash_everywhere(Operation::kUpdate, Stale::kNone, false, {"update.before_write", "update.written"});
}

TEST(CrashAtEveryStep, Release) {
  crash_everywhere(Operation::kRelease, Stale::kNone, false, {"release.verified", "release.removed"});
}

// With a waiter announced, release leaves the file to it: marked released,
// then unlocked. A crash before the mark leaves a stale lock (recovery
// due), after it a released one (none due).
TEST(CrashAtEveryStep, ReleaseToAWaiter) {
  crash_everywhere(Operation::kReleaseToWaiter, Stale::kNone, false, {"release.verified", "release.handed_over"});
}

// The fallback for file systems without O_TMPFILE publishes the record
// through a hidden temporary name: create ".NAME.pidlock-PID-...", lock,
// write, link() to NAME, unlink the temporary name. A crash leaves the
// temporary (and, after the link, a second name of the lock file); the next
// acquire on that file system must clean both up. (Found here: the lock
// file with two names was refused forever as hard-linked, and orphaned
// temporaries were never removed; fixed in lib/.)
TEST(CrashAtEveryStep, FreshAcquireWithoutTmpfile) {
  crash_everywhere(Operation::kFreshAcquire, Stale::kNone, true, {"acquire.created", "acquire.linked"});
}

TEST(CrashAtEveryStep, TakeOverWithoutTmpfile) {
  crash_everywhere(Operation::kTakeOver, Stale::kKilledPidlock, true, {"takeover.verified"});
}

}  // namespace
}  // namespace pidlock_faults

namespace pidlock_faults {
namespace {

// The sweep of orphaned fallback temporaries must remove only what the
// fallback created.
TEST(CrashAtEveryStep, SweepSparesAForeignLookalike) {
  // A user's ".NAME.pidlock-backup" does not have the generated suffix
  // (PID-N-CLOCK) and does not hold a pidlock record: it must survive.
  crash_everywhere(Operation::kFreshAcquire, Stale::kNone, true, {"acquire.created"}, /*lookalike=*/true);
}

}  // namespace
}  // namespace pidlock_faults
