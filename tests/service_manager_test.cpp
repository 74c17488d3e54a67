// sd_notify (service_manager.hpp): with NOTIFY_SOCKET set, status updates
// and the release of a lock that said READY=1 reach the service manager as
// datagrams, on a path socket or an abstract one; only the owner's release
// says STOPPING=1; nothing is sent without NOTIFY_SOCKET or when the lock
// was told not to; a broken NOTIFY_SOCKET never fails a lock operation.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace {

using namespace pidlock_test;
TEST(ServiceManager, StatusUpdatesAndReleaseAreNotifiedOnAPathSocket) {
  NotifySocket manager_socket(NotifySocket::Kind::kPath);
  TempDir dir;
  pidlock::LockManager locks;
  pidlock::LockHandle h = locks.acquire(dir / "daemon.pid");
  EXPECT_TRUE(manager_socket.empty()) << "acquiring says nothing; the daemon says when it is ready";
  h.update_status("recovering");
  EXPECT_EQ(manager_socket.receive(), "STATUS=recovering");
  h.update_status("ready");
  EXPECT_EQ(manager_socket.receive(), "READY=1\nSTATUS=ready");
  EXPECT_FALSE(h.release());
  EXPECT_EQ(manager_socket.receive(), "STOPPING=1");
  EXPECT_TRUE(manager_socket.empty());
}

TEST(ServiceManager, AbstractSocketAndAnExplicitStoppingAreNotSaidTwice) {
  NotifySocket manager_socket(NotifySocket::Kind::kAbstract);
  TempDir dir;
  pidlock::LockManager locks;
  pidlock::LockHandle h = locks.acquire(dir / "daemon.pid");
  h.update_status("standby");
  EXPECT_EQ(manager_socket.receive(), "READY=1\nSTATUS=standby");
  h.update_status("stopping");
  EXPECT_EQ(manager_socket.receive(), "STOPPING=1\nSTATUS=stopping");
  EXPECT_FALSE(h.release());
  EXPECT_TRUE(manager_socket.empty()) << "STOPPING=1 was said already";
}

TEST(ServiceManager, OnlyTheOwnersReleaseSaysStopping) {
  NotifySocket manager_socket(NotifySocket::Kind::kPath);
  TempDir dir;
  pidlock::LockManager locks;
  pidlock::LockHandle h = locks.acquire(dir / "daemon.pid");
  h.update_status("ready");
  EXPECT_EQ(manager_socket.receive(), "READY=1\nSTATUS=ready");
  // A forked child that inherited the handle releases its copy: the lock
  // stays the parent's, and the service is not stopping.
  Child child = Child::fork([&] { return h.release() ? 1 : 0; });
  ASSERT_TRUE(child.exited_with(0)) << describe_status(child.wait());
  EXPECT_TRUE(manager_socket.empty());
  EXPECT_FALSE(h.release());
  EXPECT_EQ(manager_socket.receive(), "STOPPING=1");
}

TEST(ServiceManager, NothingIsSentWhenTheLockIsToldNotTo) {
  NotifySocket manager_socket(NotifySocket::Kind::kPath);
  TempDir dir;
  pidlock::LockManager locks;
  pidlock::AcquireOptions options;
  options.notify_service_manager = false;
  pidlock::LockHandle h = locks.acquire(dir / "job.pid", options);
  h.update_status("ready");
  EXPECT_FALSE(h.release());
  EXPECT_TRUE(manager_socket.empty());

  // The public helper still speaks for the program.
  std::error_code ec;
  EXPECT_TRUE(pidlock::notify_service_manager("WATCHDOG=1", ec));
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(manager_socket.receive(), "WATCHDOG=1");
}

TEST(ServiceManager, WithoutNotifySocketNothingIsSentAndNothingFails) {
  ::unsetenv("NOTIFY_SOCKET");
  std::error_code ec;
  EXPECT_FALSE(pidlock::notify_service_manager("READY=1", ec));
  EXPECT_FALSE(ec) << ec.message();
  TempDir dir;
  pidlock::LockManager locks;
  pidlock::LockHandle h = locks.acquire(dir / "plain.pid");
  h.update_status("ready");
  EXPECT_FALSE(h.release());
}

// A NOTIFY_SOCKET nobody listens on, or of a form we do not speak: the
// helper reports it, the lock operations succeed and log a warning.
TEST(ServiceManager, ABrokenNotifySocketIsAWarningNotAFailure) {
  TempDir dir;
  std::string warnings;
  pidlock::set_log_handler([&warnings](pidlock::LogLevel level, std::string_view message) {
    if (level == pidlock::LogLevel::kWarning) warnings.append(message).push_back('\n');
  });
  pidlock::set_log_threshold(pidlock::LogThreshold::kWarning);

  const std::string nobody = dir / "nobody-listens";
  ::setenv("NOTIFY_SOCKET", nobody.c_str(), 1);
  std::error_code ec;
  EXPECT_FALSE(pidlock::notify_service_manager("READY=1", ec));
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory) << ec.message();
  ::setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
  EXPECT_FALSE(pidlock::notify_service_manager("READY=1", ec));
  EXPECT_EQ(ec, std::errc::address_family_not_supported) << ec.message();

  pidlock::LockManager locks;
  pidlock::LockHandle h = locks.acquire(dir / "daemon.pid");
  h.update_status("ready");  // does not throw
  EXPECT_EQ(h.record().status, "ready");
  EXPECT_FALSE(h.release());
  ::unsetenv("NOTIFY_SOCKET");
  pidlock::set_log_handler({});
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  EXPECT_NE(warnings.find("could not notify the service manager at NOTIFY_SOCKET=vsock:2:1234"), std::string::npos)
      << warnings;
}

}  // namespace
