// Rule 9: kill(pid, 0) == EPERM (a live process of another user), judged by
// a process that really dropped root. Rule 19: system errors name the path
// and the errno text.
//
// We run as root, for which kill() never says EPERM and file modes never
// refuse: every test here drops privileges in a forked child, proves that
// the drop happened, and reports back through a pipe.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace {

using namespace pidlock_test;
using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;

constexpr uid_t kOtherUser = 65533;

// A live process owned by `uid`, sleeping until killed.
Child sleeper_as(uid_t uid) {
  Child c = Child::fork([uid](int report) -> int {
    bool dropped = drop_privileges(uid);
    write_string(report, dropped ? "dropped\n" : "not dropped\n");
    if (!dropped) return 1;
    for (;;) ::pause();
  });
  EXPECT_EQ(c.read_line(), std::optional<std::string>("dropped"));
  return c;
}

TEST(PermissionDenied, LiveProcessOfAnotherUserIsHeldByDefaultAndStaleUnderAssumeDead) {
  Child other = sleeper_as(kNobody);
  ASSERT_FALSE(other.reaped());
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  const std::string lock = dir / "postmaster.pid";
  // Its true start time: the record is the one this process would write.
  write_file(lock, postmaster_pid(other.pid(), dir.path(), proc_start_epoch(other.pid())), 0666);
  const pid_t target = other.pid();

  Child judge = Child::fork([&](int report) -> int {
    if (!drop_privileges(kOtherUser)) {
      write_string(report, "drop failed\n");
      return 1;
    }
    errno = 0;
    const int rc = ::kill(target, 0);
    const int err = errno;
    write_string(report, "kill " + std::to_string(rc) + " " + (err == EPERM ? "EPERM" : std::to_string(err)) + "\n");
    LockManager manager;
    write_string(report, "inspect " + describe(manager.inspect(lock)) + "\n");
    pidlock::JudgeOptions assume_dead;
    assume_dead.permission_denied = pidlock::PermissionDeniedPolicy::kAssumeDead;
    write_string(report, "inspect-assume-dead " + describe(manager.inspect(lock, assume_dead)) + "\n");

    std::error_code ec;
    Inspection held;
    LockHandle refused = manager.acquire(lock, {}, ec, &held);
    write_string(report, "acquire " + (ec == pidlock::errc::held ? describe(held) : ec.message()) + "\n");
    pidlock::AcquireOptions options;
    options.judge = assume_dead;
    LockHandle taken = manager.acquire(lock, options, ec);
    write_string(report, "acquire-assume-dead " +
                             (ec ? ec.message()
                                 : std::string(taken.took_over() ? "took-over " : "fresh ") +
                                       pidlock::to_string(taken.previous_holder()->reason)) +
                             "\n");
    return 0;
  });
  EXPECT_EQ(judge.read_line(), std::optional<std::string>("kill -1 EPERM"))
      << "the judging process must get EPERM from kill(pid, 0)";
  const std::string alive_other_user = describe(Verdict::kHeld, Reason::kPidAliveOtherUser);
  const std::string dead_other_user = describe(Verdict::kStale, Reason::kPidDeadOtherUser);
  EXPECT_EQ(judge.read_line().value_or(""), "inspect " + alive_other_user);
  EXPECT_EQ(judge.read_line().value_or(""), "inspect-assume-dead " + dead_other_user);
  EXPECT_EQ(judge.read_line().value_or(""), "acquire " + alive_other_user);
  EXPECT_EQ(judge.read_line().value_or(""),
            std::string("acquire-assume-dead took-over ") + pidlock::to_string(Reason::kPidDeadOtherUser));
  EXPECT_EQ(exit_code(judge.wait()), 0);
  EXPECT_EQ(::kill(target, 0), 0) << "the other user's process was never signalled";
}

TEST(PermissionDenied, AsRootTheSameRecordIsPlainlyAlive) {
  // The control: without the privilege drop there is no EPERM.
  Child other = sleeper_as(kNobody);
  TempDir dir;
  const std::string lock = dir / "postmaster.pid";
  write_file(lock, postmaster_pid(other.pid(), dir.path(), proc_start_epoch(other.pid())), 0600);
  LockManager manager;
  pidlock::JudgeOptions assume_dead;
  assume_dead.permission_denied = pidlock::PermissionDeniedPolicy::kAssumeDead;
  EXPECT_EQ(describe(manager.inspect(lock, assume_dead)), describe(Verdict::kHeld, Reason::kPidAlive));
}

// --- rule 19: error messages ---

TEST(ErrorMessages, MissingLockFolderNamesPathAndErrno) {
  TempDir dir;
  const std::string lock = dir / "no-such-folder/x.pid";
  LockManager manager;
  try {
    LockHandle h = manager.acquire(lock);
    FAIL() << "acquire in a missing folder succeeded";
  } catch (const pidlock::LockHeldError&) {
    FAIL() << "a missing folder is not a held lock";
  } catch (const pidlock::Error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
    const std::string what = e.what();
    EXPECT_NE(what.find(lock), std::string::npos) << what;
    EXPECT_NE(what.find(std::strerror(ENOENT)), std::string::npos) << what;
    EXPECT_EQ(e.path(), lock);
    EXPECT_FALSE(e.operation().empty());
  }
  std::error_code ec;
  LockHandle h = manager.acquire(lock, {}, ec);
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
  EXPECT_FALSE(h.held());
  EXPECT_FALSE(exists(dir / "no-such-folder"));
}

TEST(ErrorMessages, ReadOnlyFolderForAnotherUserGivesEaccesNamingThePath) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // others may enter, not write
  const std::string lock = dir / "ro.pid";
  const std::string secret = dir / "secret.pid";
  write_file(secret, "garbage\n", 0600);  // stale-looking, unreadable to others
  Child child = Child::fork([&](int report) -> int {
    if (!drop_privileges(kNobody)) {
      write_string(report, "drop failed\n");
      return 1;
    }
    write_string(report, "euid " + std::to_string(::geteuid()) + "\n");
    LockManager manager;
    try {
      LockHandle h = manager.acquire(lock);
      write_string(report, "acquired\n");
    } catch (const pidlock::Error& e) {
      write_string(report, std::string(e.code() == std::errc::permission_denied ? "EACCES " : "other ") +
                               e.what() + "\n");
    }
    std::error_code ec;
    manager.inspect(secret, {}, ec);
    write_string(report, std::string("inspect ") + (ec == std::errc::permission_denied ? "EACCES" : ec.message()) + "\n");
    try {
      manager.inspect(secret);
      write_string(report, "inspected\n");
    } catch (const pidlock::Error& e) {
      write_string(report, std::string("inspect-what ") + e.what() + "\n");
    }
    return 0;
  });
  EXPECT_EQ(child.read_line(), std::optional<std::string>("euid 65534"));
  auto line = child.read_line();
  ASSERT_TRUE(line);
  EXPECT_EQ(line->rfind("EACCES ", 0), 0u) << *line;
  EXPECT_NE(line->find(lock), std::string::npos) << *line;
  EXPECT_NE(line->find(std::strerror(EACCES)), std::string::npos) << *line;
  EXPECT_EQ(child.read_line(), std::optional<std::string>("inspect EACCES"));
  line = child.read_line();
  ASSERT_TRUE(line);
  EXPECT_NE(line->find(secret), std::string::npos) << *line;
  EXPECT_NE(line->find(std::strerror(EACCES)), std::string::npos) << *line;
  EXPECT_EQ(exit_code(child.wait()), 0);
  EXPECT_FALSE(exists(lock)) << "nothing left behind";
  EXPECT_EQ(read_file(secret), "garbage\n");
}

TEST(ErrorMessages, PidlockErrorsHaveTheirOwnCategory) {
  std::error_code ec = pidlock::errc::held;
  EXPECT_EQ(&ec.category(), &pidlock::error_category());
  EXPECT_STREQ(ec.category().name(), "pidlock");
  EXPECT_FALSE(ec.message().empty());
  EXPECT_NE(ec, std::error_code(EAGAIN, std::system_category()));
  pidlock::Error e(std::make_error_code(std::errc::no_space_on_device), "write lock file", "/x/y.pid", "detail");
  EXPECT_STREQ(e.what(), ("write lock file \"/x/y.pid\": " + std::string(std::strerror(ENOSPC)) + " (detail)").c_str());
}

}  // namespace
