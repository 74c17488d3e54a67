// Noticing a lost lock (LockWatch, LossMonitor): damage done by another
// process -- delete, rename, replace, overwrite -- is seen through each of
// the three forms; the holder's own updates are not a loss; the periodic
// recheck runs on its timer.
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <iostream>
#include <string>
#include <tuple>

namespace {

using namespace pidlock_test;
using std::chrono::milliseconds;
using namespace std::chrono_literals;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::LockWatch;
using pidlock::LossMonitor;

enum class Damage { kDelete, kRename, kReplace, kOverwrite };
enum class Form { kWaitForLoss, kNativeHandle, kMonitor };

const char* name(Damage d) {
  switch (d) {
    case Damage::kDelete: return "Delete";
    case Damage::kRename: return "Rename";
    case Damage::kReplace: return "Replace";
    case Damage::kOverwrite: return "Overwrite";
  }
  return "?";
}
const char* name(Form f) {
  switch (f) {
    case Form::kWaitForLoss: return "WaitForLoss";
    case Form::kNativeHandle: return "NativeHandle";
    case Form::kMonitor: return "Monitor";
  }
  return "?";
}

// Another pid of the same width as ours, for line 1.
std::string other_pid_text() {
  std::string pid = std::to_string(::getpid());
  std::string other(pid.size(), pid[0] == '1' ? '2' : '1');
  return other;
}

// Damages the lock file from a child process; true if the child did it.
bool damage_from_another_process(Damage damage, const TempDir& dir, const std::string& path) {
  Child vandal = Child::fork([&]() -> int {
    switch (damage) {
      case Damage::kDelete:
        return ::unlink(path.c_str()) == 0 ? 0 : 1;
      case Damage::kRename:
        return ::rename(path.c_str(), (dir / "moved-away").c_str()) == 0 ? 0 : 1;
      case Damage::kReplace: {
        const std::string other = dir / "impostor";
        int fd = ::open(other.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) return 1;
        std::string text = std::to_string(::getpid()) + "\n";
        bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        ::close(fd);
        return written && ::rename(other.c_str(), path.c_str()) == 0 ? 0 : 1;
      }
      case Damage::kOverwrite: {
        int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return 1;
        std::string text = other_pid_text();
        bool written = ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size());
        ::close(fd);
        return written ? 0 : 1;
      }
    }
    return 1;
  });
  return vandal.exited_with(0);
}

class LossTest : public ::testing::TestWithParam<std::tuple<Damage, Form>> {};

TEST_P(LossTest, DamageByAnotherProcessIsNoticed) {
  const auto [damage, form] = GetParam();
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(path);
  // A long recheck interval: only the kernel's notifications can report the
  // loss within the bounds below.
  const milliseconds interval = 60s;

  switch (form) {
    case Form::kWaitForLoss: {
      LockWatch watch(handle, interval);
      EXPECT_TRUE(watch.check());
      EXPECT_FALSE(watch.wait_for_loss(100ms)) << "lost before any damage: " << watch.loss_reason();
      ASSERT_TRUE(damage_from_another_process(damage, dir, path));
      EXPECT_TRUE(watch.wait_for_loss(2s)) << "loss not noticed";
      EXPECT_TRUE(watch.lost());
      EXPECT_FALSE(watch.loss_reason().empty());
      EXPECT_FALSE(watch.check()) << "a lost lock stays lost";
      break;
    }
    case Form::kNativeHandle: {
      LockWatch watch(handle, interval);
      EXPECT_TRUE(watch.check());
      struct pollfd p {watch.native_handle(), POLLIN, 0};
      EXPECT_EQ(::poll(&p, 1, 100), 0) << "readable before any damage";
      ASSERT_TRUE(damage_from_another_process(damage, dir, path));
      ASSERT_TRUE(readable_within(watch.native_handle(), 2s)) << "no event for the damage";
      EXPECT_FALSE(watch.check());
      EXPECT_TRUE(watch.lost());
      EXPECT_FALSE(watch.loss_reason().empty());
      break;
    }
    case Form::kMonitor: {
      std::promise<std::string> lost;
      std::future<std::string> reason = lost.get_future();
      int calls = 0;
      {
        LossMonitor monitor(
            handle,
            [&](const std::string& why) {
              ++calls;
              lost.set_value(why);
            },
            interval);
        EXPECT_EQ(reason.wait_for(100ms), std::future_status::timeout) << "called before any damage";
        ASSERT_TRUE(damage_from_another_process(damage, dir, path));
        ASSERT_EQ(reason.wait_for(2s), std::future_status::ready) << "callback not called";
        EXPECT_FALSE(reason.get().empty());
      }
      EXPECT_EQ(calls, 1);
      break;
    }
  }
  // The lost lock's release removes nothing that is not its own.
  std::error_code released = handle.release();
  if (damage == Damage::kReplace) {
    EXPECT_EQ(released, pidlock::errc::lock_lost);
    EXPECT_TRUE(exists(path)) << "release removed the impostor";
  }
  if (damage == Damage::kRename) {
    EXPECT_TRUE(exists(dir / "moved-away")) << "release removed the renamed file";
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllDamagesAllForms, LossTest,
    ::testing::Combine(::testing::Values(Damage::kDelete, Damage::kRename, Damage::kReplace, Damage::kOverwrite),
                       ::testing::Values(Form::kWaitForLoss, Form::kNativeHandle, Form::kMonitor)),
    [](const ::testing::TestParamInfo<LossTest::ParamType>& info) {
      return std::string(name(std::get<0>(info.param))) + "_" + name(std::get<1>(info.param));
    });

TEST(Loss, TheHoldersOwnUpdatesAreNotALoss) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(path);
  LockWatch watch(handle, 60s);
  std::promise<void> called;
  std::future<void> monitor_fired = called.get_future();
  LossMonitor monitor(handle, [&](const std::string&) { called.set_value(); }, 60s);
  EXPECT_TRUE(watch.check());

  const char* statuses[] = {"ready", "stopping", "standby", "a-much-longer-status-word", "ready"};
  for (const char* status : statuses) {
    handle.update_status(status);
    // The write is an event on the file: the watch must look, and find the
    // lock still ours.
    EXPECT_TRUE(readable_within(watch.native_handle(), 2s)) << "an update made no event";
    EXPECT_TRUE(watch.check()) << "after update to " << status << ": " << watch.loss_reason();
  }
  EXPECT_FALSE(watch.wait_for_loss(200ms)) << watch.loss_reason();
  EXPECT_FALSE(watch.lost());
  EXPECT_EQ(monitor_fired.wait_for(0ms), std::future_status::timeout) << "the monitor reported a loss";
  EXPECT_TRUE(handle.recheck());
}

TEST(Loss, ThePeriodicRecheckRunsOnItsTimer) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(path);
  {
    // Without any change and with a long interval, nothing wakes the watch.
    LockWatch quiet(handle, 60s);
    EXPECT_TRUE(quiet.check());
    EXPECT_FALSE(readable_within(quiet.native_handle(), 300ms)) << "woke without a change";
  }
  // With 100 ms, the timer wakes it again and again; each check finds the
  // lock still ours.
  LockWatch watch(handle, 100ms);
  EXPECT_TRUE(watch.check());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(readable_within(watch.native_handle(), 2s)) << "the recheck timer did not fire";
    EXPECT_TRUE(watch.check());
  }
  // And check() consumed the expiry: right after it, nothing is pending
  // (the next expiry is 100 ms away; allow it to be close).
  EXPECT_TRUE(watch.check());
  EXPECT_FALSE(watch.lost());
}

// A loss inotify cannot see: another process overwrites line 1 through a
// shared mapping (writes through mmap make no IN_MODIFY event). Only the
// periodic recheck can find it -- the safety net for NFS and the like.
TEST(Loss, ThePeriodicRecheckFindsALossWithoutANotification) {
  TempDir dir;
  const std::string path = dir / "postmaster.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(path);
  LockWatch timed(handle, 100ms);
  LockWatch notified_only(handle, 60s);
  EXPECT_TRUE(timed.check());
  EXPECT_TRUE(notified_only.check());

  Child vandal = Child::fork([&]() -> int {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return 1;
    std::string text = other_pid_text();
    void* map = ::mmap(nullptr, text.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 2;
    std::memcpy(map, text.data(), text.size());
    ::munmap(map, text.size());
    return 0;  // the close at exit makes IN_CLOSE_WRITE, which a holder's watch ignores
  });
  ASSERT_TRUE(vandal.exited_with(0));
  EXPECT_TRUE(timed.wait_for_loss(2s)) << "the periodic recheck did not find the overwritten record";
  EXPECT_FALSE(timed.loss_reason().empty());
  // The premise, reported but not required (a watch that learns to see
  // such writes would be an improvement): notifications missed this one.
  if (!notified_only.check())
    std::cout << "note: the notification-only watch saw the mmap write too\n";
}

// Renaming the lock's folder (say, `mv /srv/db /srv/db.old`) also leaves
// the lock path naming nothing: recheck() calls that a loss, so the watch
// should report it like a rename of the file itself.
TEST(Loss, RenamingTheLocksFolderIsNoticed) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_EQ(::mkdir(data.c_str(), 0700), 0);
  const std::string path = data + "/postmaster.pid";
  LockManager manager;
  LockHandle handle = manager.acquire(path);
  LockWatch watch(handle, 60s);
  EXPECT_TRUE(watch.check());
  Child mover = Child::fork([&]() -> int { return ::rename(data.c_str(), (dir / "data.old").c_str()) == 0 ? 0 : 1; });
  ASSERT_TRUE(mover.exited_with(0));
  bool noticed = watch.wait_for_loss(2s);
  EXPECT_TRUE(noticed) << "the folder's own rename was not watched (recheck() says lost: "
                       << !handle.recheck() << ")";
  EXPECT_FALSE(watch.loss_reason().empty());
}

}  // namespace
