// Crash at every step (issue 5, guarantee G2): for every checkpoint an
// operation passes (lib/posix/system.hpp), a child process runs the
// operation with a FaultSystem that kills it exactly there -- _exit() or
// raise(SIGKILL) -- and the parent then checks that:
//  * the lock's folder is consistent: only the lock file (whose record
//    parses) besides the files that were there before, no temp files;
//  * inspect() calls the leftover lock stale (never held, never unknown);
//  * the next acquire succeeds by itself, with took_over() exactly when a
//    lock file was left behind, and its record names us;
//  * no foreign file was removed or changed.
// CrashAtEveryStep.* does not hard-code the steps: a first run records the
// sequence of checkpoints the operation passes, and every position in it is
// a crash point. A creator that dies between its open(O_CREAT|O_EXCL) and
// its write leaves an empty file: in creation while young (unknown), stale
// once older than a creator needs, and the next acquire takes it over by
// itself either way (after its pauses for a creator, while young).
// CrashAt.NextAcquireSucceedsByItself names the steps instead, so that each
// is proven to be reached by its operation.
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

using namespace pidlock_test;

enum class Operation { kFreshAcquire, kTakeOver, kUpdate, kRelease, kReleaseToWaiter };
enum class Stale { kNone, kKilledPidlock, kEmpty, kPostgresDead, kDeadPidFile, kDeadPid };

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

// One operation, and the folder and file system it runs in.
struct Scenario {
  Operation op = Operation::kFreshAcquire;
  Stale stale = Stale::kNone;  // the file a take-over finds
  bool foreign_files = true;   // a data directory's other files beside the lock
  // A user's file whose name starts like older versions' temporaries
  // (".postmaster.pid.pidlock-") but is not one.
  bool lookalike = false;
};

// Where the child dies: at checkpoint number `index` (-1: never, only
// record the steps), or at the first pass of the checkpoint named `step`.
struct Crash {
  int index = -1;
  std::string step;
  Death death = Death::kExit;
};

struct Prepared {
  std::string lock;
  std::string stale_bytes;  // the stale file's content, for kTakeOver
};

std::string stale_content(Stale stale, const std::string& lock, const std::string& data_dir) {
  switch (stale) {
    case Stale::kKilledPidlock: EXPECT_GT(leave_stale_lock(lock), 0); return read_file(lock);
    case Stale::kEmpty: return "";
    case Stale::kPostgresDead: return postmaster_pid(dead_pid(), data_dir, now());
    case Stale::kDeadPidFile: {
      // X11's and UUCP's layout: the pid right-aligned in ten columns.
      char padded[16];
      std::snprintf(padded, sizeof padded, "%10d\n", static_cast<int>(dead_pid()));
      return padded;
    }
    case Stale::kDeadPid: return std::to_string(dead_pid()) + "\n";  // a plain pid file
    case Stale::kNone: break;
  }
  return "";
}

// Puts the foreign files and, for a take-over, a stale lock file in `dir`.
Prepared prepare(const TempDir& dir, const Scenario& sc) {
  Prepared s;
  s.lock = dir / "postmaster.pid";
  if (sc.foreign_files) {
    write_file(dir / "PG_VERSION", "16\n");
    write_file(dir / "postmaster.opts", "/usr/lib/postgresql/16/bin/postgres\n");
  }
  if (sc.lookalike) write_file(dir / ".postmaster.pid.pidlock-backup", "a user's file, not a temporary\n");
  if (sc.op == Operation::kTakeOver) {
    s.stale_bytes = stale_content(sc.stale, s.lock, dir.path());
    // CrashAt's pid file is private (0600), the others readable.
    if (sc.stale != Stale::kKilledPidlock) write_file(s.lock, s.stale_bytes, sc.stale == Stale::kDeadPid ? 0600 : 0644);
  }
  return s;
}

// In the child: the operation, with the crash armed around it alone.
int run_operation(FaultSystem& system, const Prepared& s, Operation op, const Crash& crash, int report) {
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
  if (crash.step.empty()) {
    system.crash_at(crash.index, crash.death, report);
  } else {
    system.crash_at(crash.step, crash.death);
  }
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
  system.no_crash();
  ::_exit(0);  // keep whatever the operation left, like a crash right after it
}

// Runs the operation in a child that dies as `crash` says. Returns the wait
// status; *steps receives the checkpoints it passed (counted crashes only).
int run_child(const Prepared& s, const Scenario& sc, const Crash& crash, std::vector<std::string>* steps) {
  Child child = Child::fork([&](int report) -> int {
    static FaultSystem* system = new FaultSystem();  // lives until _exit
    d::set_system(system);
    return run_operation(*system, s, sc.op, crash, report);
  });
  steps->clear();
  while (std::optional<std::string> step = child.read_line()) steps->push_back(*step);
  return child.wait();
}

// 1. The folder: the foreign files untouched, at most the lock file more.
void check_folder(const TempDir& dir, const std::map<std::string, std::string>& foreign_before,
                  std::map<std::string, std::string>* after) {
  *after = snapshot(dir.path());
  for (const auto& [n, bytes] : foreign_before) {
    ASSERT_TRUE(after->count(n)) << "foreign file " << n << " was removed";
    EXPECT_EQ(after->at(n), bytes) << "foreign file " << n << " was changed";
  }
  for (const auto& [n, bytes] : *after) {
    if (n == "postmaster.pid" || foreign_before.count(n)) continue;
    ADD_FAILURE() << "left behind in the lock's folder: " << n << " (" << bytes.size() << " bytes)";
  }
}

// 2. What is left parses (or is the untouched stale file, or a crashed
//    creator's empty file).
void check_leftover(const std::string& bytes, const Prepared& s, Operation op) {
  if (op == Operation::kTakeOver && bytes == s.stale_bytes) return;  // not yet removed
  if (bytes.empty() && (op == Operation::kFreshAcquire || op == Operation::kTakeOver)) return;
  pidlock::ParsedRecord parsed = pidlock::parse_record(bytes);
  ASSERT_TRUE(parsed.record.has_value()) << "record does not parse: " << parsed.problem;
  EXPECT_EQ(parsed.record->format, pidlock::RecordFormat::kPidlock);
  if (op == Operation::kUpdate) {
    EXPECT_TRUE(parsed.record->status == "starting" || parsed.record->status == "ready") << parsed.record->status;
  }
}

// Everything the parent checks after the child died at `where`.
void check_recovery(const TempDir& dir, const Prepared& s, const Scenario& sc,
                    const std::map<std::string, std::string>& foreign_before, const std::string& where) {
  SCOPED_TRACE(where);
  std::map<std::string, std::string> after;
  check_folder(dir, foreign_before, &after);
  if (::testing::Test::HasFatalFailure()) return;
  const bool lock_left = after.count("postmaster.pid") != 0;
  const bool empty_left = lock_left && after.at("postmaster.pid").empty();
  if (lock_left) check_leftover(after.at("postmaster.pid"), s, sc.op);
  if (::testing::Test::HasFatalFailure()) return;

  // 3. The verdict: stale if something is left, free otherwise; a young
  //    empty file is in creation (unknown), and stale a minute later.
  pidlock::LockManager m;
  std::error_code ec;
  pidlock::Inspection insp = m.inspect(s.lock, {}, ec);
  ASSERT_FALSE(ec) << "inspect: " << ec.message();
  EXPECT_EQ(insp.verdict, !lock_left    ? pidlock::Verdict::kFree
                          : empty_left ? pidlock::Verdict::kUnknown
                                       : pidlock::Verdict::kStale)
      << pidlock::to_string(insp.reason) << ": " << insp.detail;
  if (empty_left) {
    EXPECT_EQ(insp.reason, pidlock::Reason::kEmptyFile) << insp.detail;
    FaultSystem later;
    later.advance_clock(60);
    ScopedSystem scoped(&later);
    pidlock::Inspection old = m.inspect(s.lock, {}, ec);
    ASSERT_FALSE(ec) << "inspect a minute later: " << ec.message();
    EXPECT_EQ(old.verdict, pidlock::Verdict::kStale) << old.detail;
    EXPECT_EQ(old.reason, pidlock::Reason::kEmptyFile) << old.detail;
  }

  // 4. The next acquire recovers by itself, and runs recovery unless the
  //    file was released to a waiter; its record names us, and only the
  //    foreign files and the lock file are there.
  const bool released = insp.reason == pidlock::Reason::kReleased;
  EXPECT_TRUE(!released || sc.op == Operation::kReleaseToWaiter) << insp.detail;
  pidlock::LockHandle h = m.acquire(s.lock, {}, ec);
  ASSERT_TRUE(h) << "next acquire needs a person: " << ec.message();
  EXPECT_EQ(h.took_over(), lock_left && !released);
  EXPECT_EQ(h.record().pid, ::getpid());
  EXPECT_EQ(first_line(s.lock), std::to_string(::getpid()));
  EXPECT_EQ(dir.entries().size(), foreign_before.size() + 1) << "only the lock file besides the foreign files";
  EXPECT_FALSE(h.release());

  // 5. Only the foreign files remain, all of them.
  auto final_state = snapshot(dir.path());
  for (const auto& [n, bytes] : foreign_before)
    EXPECT_TRUE(final_state.count(n)) << "foreign file " << n << " was removed by the recovery";
  for (const auto& [n, bytes] : final_state)
    EXPECT_TRUE(foreign_before.count(n)) << "left behind after recovery and release: " << n;
  EXPECT_EQ(final_state.size(), foreign_before.size());
}

// The files of a prepared folder that are not the lock.
std::map<std::string, std::string> foreign_files(const TempDir& dir) {
  auto foreign = snapshot(dir.path());
  foreign.erase("postmaster.pid");
  return foreign;
}

// Records the checkpoints the scenario's operation passes.
std::vector<std::string> record_steps(const Scenario& sc) {
  std::vector<std::string> steps;
  TempDir dir;
  Prepared s = prepare(dir, sc);
  int status = run_child(s, sc, Crash{}, &steps);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << name(sc.op) << " without a crash failed: " << describe_status(status);
  std::string sequence;
  for (const std::string& step : steps) sequence += " " + step;
  std::printf("%s passes %zu checkpoints:%s\n", name(sc.op), steps.size(), sequence.c_str());
  return steps;
}

// Runs the whole matrix for one operation.
void crash_everywhere(const Scenario& sc, const std::vector<std::string>& must_see) {
  const std::vector<std::string> steps = record_steps(sc);
  if (::testing::Test::HasFailure()) return;
  for (const std::string& step : must_see)
    EXPECT_NE(std::find(steps.begin(), steps.end(), step), steps.end()) << name(sc.op) << " never passes " << step;

  for (Death death : {Death::kExit, Death::kSigkill}) {
    for (int k = 0; k < static_cast<int>(steps.size()); ++k) {
      const std::string where = std::string(name(sc.op)) + ": died (" +
                                (death == Death::kExit ? "_exit" : "SIGKILL") + ") at step #" + std::to_string(k) +
                                " " + steps[static_cast<size_t>(k)];
      TempDir dir;
      Prepared s = prepare(dir, sc);
      auto foreign = foreign_files(dir);
      std::vector<std::string> passed;
      int status = run_child(s, sc, Crash{k, "", death}, &passed);
      bool died = death == Death::kExit ? (WIFEXITED(status) && WEXITSTATUS(status) == kDiedAtStep)
                                        : (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
      ASSERT_TRUE(died) << where << ": the child did not die there (" << describe_status(status) << ")";
      ASSERT_EQ(passed.size(), static_cast<size_t>(k)) << where;
      check_recovery(dir, s, sc, foreign, where);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(CrashAtEveryStep, FreshAcquire) {
  crash_everywhere({Operation::kFreshAcquire}, {"acquire.created", "acquire.locked", "acquire.written"});
}

TEST(CrashAtEveryStep, TakeOverOfKilledHolder) {
  crash_everywhere({Operation::kTakeOver, Stale::kKilledPidlock}, {"takeover.verified", "takeover.written"});
}

TEST(CrashAtEveryStep, TakeOverOfEmptyFile) {
  crash_everywhere({Operation::kTakeOver, Stale::kEmpty}, {"takeover.verified"});
}

TEST(CrashAtEveryStep, TakeOverOfDeadPostgresqlRecord) {
  crash_everywhere({Operation::kTakeOver, Stale::kPostgresDead}, {"takeover.verified"});
}

// (A file that is not a lock record is never taken over at all: see
// tests/recognise/layout_table_test.cpp.)
TEST(CrashAtEveryStep, TakeOverOfDeadPlainPidFile) {
  crash_everywhere({Operation::kTakeOver, Stale::kDeadPidFile}, {"takeover.verified"});
}

TEST(CrashAtEveryStep, UpdateStatus) {
  crash_everywhere({Operation::kUpdate}, {"update.before_write", "update.written"});
}

TEST(CrashAtEveryStep, Release) {
  crash_everywhere({Operation::kRelease}, {"release.verified", "release.removed"});
}

// With a waiter announced, release leaves the file to it: marked released,
// then unlocked. A crash before the mark leaves a stale lock (recovery
// due), after it a released one (none due).
TEST(CrashAtEveryStep, ReleaseToAWaiter) {
  crash_everywhere({Operation::kReleaseToWaiter}, {"release.verified", "release.handed_over"});
}

// Older versions created lock files through a hidden temporary name
// (".NAME.pidlock-PID-N-CLOCK"); a user's ".NAME.pidlock-backup" is no such
// name and must survive every crash and recovery.
TEST(CrashAtEveryStep, RecoverySparesAForeignLookalike) {
  Scenario sc{Operation::kFreshAcquire, Stale::kNone};
  sc.lookalike = true;
  crash_everywhere(sc, {"acquire.created"});
}

// --- each named step, reached by its operation ---

struct CrashCase {
  const char* step;
  Operation operation;
};

class CrashAt : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CrashAt, NextAcquireSucceedsByItself) {
  const CrashCase c = GetParam();
  Scenario sc{c.operation, Stale::kDeadPid};
  sc.foreign_files = false;
  TempDir dir;
  Prepared s = prepare(dir, sc);
  std::vector<std::string> passed;
  int status = run_child(s, sc, Crash{-1, c.step, Death::kExit}, &passed);
  EXPECT_EQ(exit_code(status), kDiedAtStep) << "step " << c.step << " was never reached";
  check_recovery(dir, s, sc, {}, std::string("after a crash at ") + c.step);
}

INSTANTIATE_TEST_SUITE_P(
    Steps, CrashAt,
    ::testing::Values(CrashCase{"acquire.created", Operation::kFreshAcquire},
                      CrashCase{"acquire.locked", Operation::kFreshAcquire},
                      CrashCase{"acquire.written", Operation::kFreshAcquire},
                      CrashCase{"takeover.verified", Operation::kTakeOver},
                      CrashCase{"takeover.written", Operation::kTakeOver},
                      CrashCase{"update.before_write", Operation::kUpdate},
                      CrashCase{"update.written", Operation::kUpdate},
                      CrashCase{"release.verified", Operation::kRelease},
                      CrashCase{"release.removed", Operation::kRelease}),
    [](const ::testing::TestParamInfo<CrashCase>& info) {
      std::string n = info.param.step;
      std::replace(n.begin(), n.end(), '.', '_');
      return n;
    });

TEST(CrashAt, TornUpdateByADyingHolderIsTakenOver) {
  // The holder dies in the middle of rewriting its record: the write of
  // the new, longer record stops short of its end. The next acquire must
  // not wait for a checksum that never comes right.
  TempDir dir;
  const std::string lock = dir / "torn.pid";
  Child crasher = Child::fork([&]() -> int {
    pidlock::LockManager m;
    pidlock::LockHandle h = m.acquire(lock);
    struct HalfWriteThenDie : d::SystemWrapper {
      HalfWriteThenDie() : SystemWrapper(d::real_system()) {}
      ssize_t pwrite(int fd, const void* b, size_t c, off_t o) override {
        // All but the end of the longer record: its checksum line is cut.
        SystemWrapper::pwrite(fd, b, c - 5, o);
        ::_exit(kDiedAtStep);
      }
    } dying;
    ScopedSystem scope(&dying);
    h.update_status("a-much-longer-status-word");
    return 0;
  });
  EXPECT_EQ(exit_code(crasher.wait()), kDiedAtStep);
  pidlock::ParsedRecord parsed = pidlock::parse_record(read_file(lock));
  EXPECT_FALSE(parsed.record) << "the record is torn for good";
  pidlock::LockManager manager;
  const std::int64_t t0 = monotonic_ms();
  pidlock::LockHandle h = manager.acquire(lock);
  EXPECT_LT(monotonic_ms() - t0, 2000);
  EXPECT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->reason, pidlock::Reason::kUnparsable);
}

}  // namespace
