// Rule 10 (G1): many real processes breaking one stale lock at once, and
// acquire/release churn with a shared-memory check of mutual exclusion.
// Rule 17: inspect() never makes a concurrent acquire fail; durable on/off.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <map>

namespace {

using namespace pidlock_test;
using pidlock::AcquireOptions;
using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;

AcquireOptions fast_options() {
  AcquireOptions o;
  o.durable = false;  // durability does not change the race; fsyncs would dominate the time
  return o;
}

// Leaves a stale pidlock file at `lock`: a forked holder acquires it and is
// SIGKILLed. Returns the dead holder's pid.
pid_t make_stale_lock(const std::string& lock) {
  Child holder = Child::fork([&](int report) -> int {
    LockManager m;
    std::error_code ec;
    LockHandle h = m.acquire(lock, fast_options(), ec);
    write_string(report, ec ? "error " + ec.message() + "\n" : std::string("ready\n"));
    for (;;) ::pause();
  });
  EXPECT_EQ(holder.read_line(), std::optional<std::string>("ready"));
  holder.kill(SIGKILL);
  holder.wait();
  return holder.pid();
}

// One round: `contenders` processes wait for "go" (EOF on a pipe) and call
// acquire at once; winners hold until "finish". Checks that exactly one
// wins and every other one gets errc::held. Counts in *without_take_over
// the rounds whose winner did not learn that it took over a stale lock.
void break_stale_lock_with(int contenders, const std::string& lock, int round, int* without_take_over) {
  const pid_t dead = make_stale_lock(lock);
  Pipe go;
  Pipe finish;
  std::vector<Child> kids;
  for (int i = 0; i < contenders; ++i) {
    kids.push_back(Child::fork([&](int report) -> int {
      go.close_write();
      finish.close_write();
      wait_for_eof(go.read_end());
      LockManager m;
      std::error_code ec;
      Inspection insp;
      LockHandle h = m.acquire(lock, fast_options(), ec, &insp);
      if (h) {
        const bool took_over = h.took_over() && h.previous_holder() && h.previous_holder()->holder &&
                               h.previous_holder()->holder->pid == dead;
        write_string(report, std::string("won ") + (took_over ? "took-over" : "no-take-over") + "\n");
        wait_for_eof(finish.read_end());
        return h.release() ? 2 : 0;
      }
      write_string(report, ec == pidlock::errc::held ? "held\n" : "error " + ec.message() + "\n");
      return 0;
    }));
  }
  go.close_write();  // everyone starts now
  int winners = 0;
  pid_t winner = 0;
  for (Child& k : kids) {
    std::string line = k.read_line().value_or("(no report)");
    if (line.rfind("won", 0) == 0) {
      ++winners;
      winner = k.pid();
      if (line != "won took-over") ++*without_take_over;
    } else {
      EXPECT_EQ(line, "held") << "round " << round << ": a loser must see errc::held, nothing else";
    }
  }
  ASSERT_EQ(winners, 1) << "round " << round << " with " << contenders << " contenders";
  EXPECT_EQ(first_line(lock), std::to_string(winner)) << "round " << round;
  EXPECT_TRUE(kernel_lock_held(lock));
  finish.close_write();
  for (Child& k : kids) EXPECT_EQ(exit_code(k.wait()), 0) << "round " << round;
  EXPECT_FALSE(exists(lock)) << "the winner released it";
}

TEST(Contention, TwoProcessesBreakingOneStaleLockExactlyOneWins) {
  TempDir dir;
  const std::string lock = dir / "two.pid";
  int without_take_over = 0;
  for (int round = 0; round < 200 && !HasFatalFailure(); ++round)
    break_stale_lock_with(2, lock, round, &without_take_over);
  RecordProperty("rounds_won_without_take_over", without_take_over);
}

TEST(Contention, EightProcessesBreakingOneStaleLockExactlyOneWins) {
  TempDir dir;
  const std::string lock = dir / "eight.pid";
  int without_take_over = 0;
  for (int round = 0; round < 50 && !HasFatalFailure(); ++round)
    break_stale_lock_with(8, lock, round, &without_take_over);
  RecordProperty("rounds_won_without_take_over", without_take_over);
}

TEST(Contention, WinnerOfAStaleLockRaceAlwaysLearnsItTookOver) {
  // took_over() is how a database learns that it must run crash recovery.
  // When several starters race for a crashed holder's lock, the one that
  // wins must be told, whichever of them removed the stale file.
  TempDir dir;
  const std::string lock = dir / "recovery.pid";
  int without_take_over = 0;
  for (int round = 0; round < 60 && !HasFatalFailure(); ++round)
    break_stale_lock_with(3, lock, round, &without_take_over);
  EXPECT_EQ(without_take_over, 0)
      << "rounds out of 60 whose winner reported took_over() == false although the previous holder was "
         "SIGKILLed: crash recovery would be skipped";
}

TEST(Contention, DurableTakeOverRaceExactlyOneWins) {
  // The same race with the default (durable) options, fewer rounds.
  TempDir dir;
  const std::string lock = dir / "durable.pid";
  for (int round = 0; round < 10; ++round) {
    make_stale_lock(lock);
    Pipe go;
    std::vector<Child> kids;
    for (int i = 0; i < 4; ++i) {
      kids.push_back(Child::fork([&](int report) -> int {
        go.close_write();
        wait_for_eof(go.read_end());
        LockManager m;
        std::error_code ec;
        LockHandle h = m.acquire(lock, {}, ec);
        write_string(report, h ? std::string("won\n") : ec == pidlock::errc::held ? "held\n" : "error\n");
        // Keep it until the parent has read every report (it kills us).
        for (;;) ::pause();
      }));
    }
    go.close_write();
    int winners = 0;
    for (Child& k : kids) {
      std::string line = k.read_line().value_or("");
      winners += line == "won";
      EXPECT_TRUE(line == "won" || line == "held") << line;
    }
    EXPECT_EQ(winners, 1) << "round " << round;
    for (Child& k : kids) k.kill();  // the winner dies holding: stale again
    for (Child& k : kids) k.wait();
  }
}

// Shared between processes (MAP_SHARED | MAP_ANONYMOUS).
struct SharedCounters {
  std::atomic<int> inside;
  std::atomic<int> max_inside;
  std::atomic<long> entries;
  std::atomic<long> held_failures;
  std::atomic<long> other_failures;
  std::atomic<long> lost;
};

TEST(Contention, AcquireReleaseChurnNeverHasTwoHoldersInside) {
  void* mem = ::mmap(nullptr, sizeof(SharedCounters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) SharedCounters{};
  TempDir dir;
  const std::string lock = dir / "churn.pid";
  constexpr int kProcesses = 4;
  constexpr int kCycles = 150;
  Pipe go;
  std::vector<Child> kids;
  for (int p = 0; p < kProcesses; ++p) {
    kids.push_back(Child::fork([&, p](int) -> int {
      go.close_write();
      wait_for_eof(go.read_end());
      LockManager m;
      AcquireOptions options = fast_options();
      for (int done = 0; done < kCycles;) {
        std::error_code ec;
        LockHandle h = m.acquire(lock, options, ec);
        if (!h) {
          if (ec == pidlock::errc::held) {
            shared->held_failures++;
          } else {
            shared->other_failures++;
          }
          sched_yield();
          continue;
        }
        int now_inside = ++shared->inside;
        int prev = shared->max_inside.load();
        while (now_inside > prev && !shared->max_inside.compare_exchange_weak(prev, now_inside)) {
        }
        shared->entries++;
        for (int spin = 0; spin < 3; ++spin) sched_yield();
        if (!h.recheck()) shared->lost++;
        --shared->inside;
        if ((done + p) % 10 == 0) {
          // A forked child that inherited the handle releases it while we
          // hold it: it must only close its descriptor (G5).
          Child forked = Child::fork([&](int) -> int { return h.release() ? 1 : 0; });
          if (exit_code(forked.wait()) != 0) shared->other_failures++;
          if (!h.recheck()) shared->lost++;
        }
        if (h.release()) shared->other_failures++;
        ++done;
      }
      return 0;
    }));
  }
  go.close_write();
  for (Child& k : kids) EXPECT_EQ(exit_code(k.wait()), 0);
  EXPECT_EQ(shared->max_inside.load(), 1) << "two holders were inside at once";
  EXPECT_EQ(shared->entries.load(), kProcesses * kCycles);
  EXPECT_EQ(shared->other_failures.load(), 0);
  EXPECT_EQ(shared->lost.load(), 0) << "a holder's recheck() failed while it held the lock";
  EXPECT_FALSE(exists(lock));
  ::munmap(mem, sizeof(SharedCounters));
}

TEST(Contention, ChurnWithHoldersKilledInsideTheCriticalSection) {
  // Holders that die holding the lock (SIGKILL from the parent) must never
  // let two live holders in, and must never wedge the lock.
  void* mem = ::mmap(nullptr, sizeof(SharedCounters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) SharedCounters{};
  TempDir dir;
  const std::string lock = dir / "killed-churn.pid";
  constexpr int kRounds = 60;
  for (int round = 0; round < kRounds; ++round) {
    Pipe go;
    std::vector<Child> kids;
    for (int p = 0; p < 3; ++p) {
      kids.push_back(Child::fork([&](int report) -> int {
        go.close_write();
        wait_for_eof(go.read_end());
        LockManager m;
        for (;;) {
          std::error_code ec;
          LockHandle h = m.acquire(lock, fast_options(), ec);
          if (!h) {
            if (ec != pidlock::errc::held) shared->other_failures++;
            sched_yield();
            continue;
          }
          int now_inside = ++shared->inside;
          int prev = shared->max_inside.load();
          while (now_inside > prev && !shared->max_inside.compare_exchange_weak(prev, now_inside)) {
          }
          shared->entries++;
          write_string(report, "in\n");
          for (;;) ::pause();  // die inside, holding: the parent kills us
        }
      }));
    }
    go.close_write();
    // Kill each holder as it reports being inside; the next one takes over.
    std::vector<bool> done(kids.size(), false);
    for (size_t processed = 0; processed < kids.size();) {
      std::vector<struct pollfd> fds;
      std::vector<size_t> index;
      for (size_t i = 0; i < kids.size(); ++i) {
        if (done[i]) continue;
        fds.push_back({kids[i].report_fd(), POLLIN, 0});
        index.push_back(i);
      }
      ASSERT_GT(::poll(fds.data(), fds.size(), 20000), 0) << "nobody got the lock: wedged";
      for (size_t j = 0; j < fds.size(); ++j) {
        if (fds[j].revents == 0) continue;
        Child& kid = kids[index[j]];
        EXPECT_EQ(kid.read_line(), std::optional<std::string>("in"));
        // Still only one inside: the others are spinning on errc::held.
        EXPECT_EQ(shared->inside.load(), 1);
        --shared->inside;  // it leaves the section by dying
        kid.kill();
        kid.wait();
        done[index[j]] = true;
        ++processed;
        break;
      }
    }
  }
  EXPECT_EQ(shared->max_inside.load(), 1);
  EXPECT_EQ(shared->entries.load(), 3L * kRounds);
  EXPECT_EQ(shared->other_failures.load(), 0);
  ::munmap(mem, sizeof(SharedCounters));
}

// --- rule 17: inspect() never makes a concurrent acquire fail ---

TEST(SafeDefaults, InspectNeverMakesAConcurrentAcquireFail) {
  TempDir dir;
  const std::string lock = dir / "inspected.pid";
  Pipe stop;
  Child inspector = Child::fork([&](int report) -> int {
    stop.close_write();
    LockManager m;
    long inspections = 0, errors = 0;
    for (;;) {
      struct pollfd p {stop.read_end(), POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) break;  // EOF: stop
      std::error_code ec;
      m.inspect(lock, {}, ec);
      ++inspections;
      if (ec) ++errors;
    }
    write_string(report, std::to_string(inspections) + " " + std::to_string(errors) + "\n");
    return 0;
  });
  stop.close_read();
  LockManager manager;
  int held_failures = 0, takeovers = 0;
  for (int i = 0; i < 400; ++i) {
    // Every other cycle starts from a stale (empty) file, which acquire
    // must take over: a kernel lock taken by inspect() would block that.
    if (i % 2 == 1) write_file(lock, "", 0600);
    std::error_code ec;
    pidlock::Inspection holder;
    LockHandle h = manager.acquire(lock, fast_options(), ec, &holder);
    if (ec == pidlock::errc::held) {
      ++held_failures;
      ADD_FAILURE() << "cycle " << i << ": acquire failed as held: " << pidlock::to_string(holder.reason) << ": "
                    << holder.detail;
      continue;
    }
    ASSERT_FALSE(ec) << ec.message();
    takeovers += h.took_over();
    EXPECT_FALSE(h.release());
  }
  stop.close_write();
  auto line = inspector.read_line();
  ASSERT_TRUE(line);
  long inspections = 0, errors = 0;
  ASSERT_EQ(std::sscanf(line->c_str(), "%ld %ld", &inspections, &errors), 2);
  EXPECT_GT(inspections, 100) << "the inspector must really have run concurrently";
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(held_failures, 0);
  EXPECT_EQ(takeovers, 200);
  EXPECT_EQ(exit_code(inspector.wait()), 0);
}

class Durability : public ::testing::TestWithParam<bool> {};

TEST_P(Durability, AcquireTakeOverAndReleaseWork) {
  TempDir dir;
  const std::string lock = dir / "durable.pid";
  AcquireOptions options;
  options.durable = GetParam();
  LockManager manager;
  {
    LockHandle h = manager.acquire(lock, options);
    EXPECT_FALSE(h.took_over());
    EXPECT_EQ(first_line(lock), std::to_string(::getpid()));
    EXPECT_TRUE(kernel_lock_held(lock));
    h.update_status("ready");
    EXPECT_EQ(pidlock::parse_record(read_file(lock)).record->status, "ready");
  }
  EXPECT_FALSE(exists(lock)) << "the destructor releases";
  const pid_t dead = make_stale_lock(lock);
  LockHandle h = manager.acquire(lock, options);
  EXPECT_TRUE(h.took_over());
  EXPECT_EQ(h.previous_holder()->holder->pid, dead);
  EXPECT_FALSE(h.release());
  EXPECT_FALSE(exists(lock));
}

INSTANTIATE_TEST_SUITE_P(OnOff, Durability, ::testing::Bool());

}  // namespace
