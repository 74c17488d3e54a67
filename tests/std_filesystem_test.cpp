// The public API takes std::filesystem::path wherever it takes a path
// (pidlock::Path converts from both it and boost::filesystem::path), and a
// held lock's path converts back. Compiling this file is half the test.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

namespace {

using namespace pidlock_test;
namespace stdfs = std::filesystem;

TEST(StdFilesystem, EveryPathTakingCallAcceptsAStdPath) {
  TempDir dir;
  const stdfs::path folder = dir.path();
  const stdfs::path lock = folder / "std.pid";
  pidlock::LockManager manager;

  pidlock::AcquireOptions options;
  options.data_directory = folder / "data";  // a field of type Path
  pidlock::LockHandle h = manager.acquire(lock, options);
  ASSERT_TRUE(h.held());
  EXPECT_EQ(h.record().data_directory, (folder / "data").string());
  const stdfs::path back = h.path();
  EXPECT_EQ(back, lock);

  EXPECT_EQ(manager.inspect(lock).verdict, pidlock::Verdict::kHeld);
  std::error_code ec;
  EXPECT_EQ(manager.inspect(lock, {}, ec).verdict, pidlock::Verdict::kHeld);
  EXPECT_FALSE(ec);
  EXPECT_FALSE(manager.break_stale(lock).removed);
  EXPECT_FALSE(h.release());
  const pidlock::Inspection free = manager.wait_until_free(lock, std::chrono::milliseconds(0), nullptr, {}, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(free.verdict, pidlock::Verdict::kFree);
  pidlock::LockHandle again = manager.acquire(lock, {}, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(again.release());

  const stdfs::path data = folder / "datadir";
  stdfs::create_directory(data);
  stdfs::permissions(data, stdfs::perms::owner_all, stdfs::perm_options::replace);
  pidlock::LockHandle guard = pidlock::guard_data_directory(manager, data);
  EXPECT_EQ(stdfs::path(guard.path()), stdfs::canonical(data) / "pidlock.pid");
  EXPECT_FALSE(guard.release());

  pidlock::LockHandle socket_lock = pidlock::lock_unix_socket(manager, folder / "s.sock");
  EXPECT_EQ(stdfs::path(socket_lock.path()), folder / "s.sock.lock");
  EXPECT_FALSE(socket_lock.release());
}

TEST(StdFilesystem, BoostPathsAndStringsStillWork) {
  TempDir dir;
  pidlock::LockManager manager;
  const boost::filesystem::path boost_lock = boost::filesystem::path(dir.path()) / "boost.pid";
  pidlock::LockHandle a = manager.acquire(boost_lock);
  const boost::filesystem::path& as_boost = a.path();
  EXPECT_EQ(as_boost, boost_lock);
  pidlock::LockHandle b = manager.acquire(dir / "string.pid");
  pidlock::LockHandle c = manager.acquire((dir / "literal.pid").c_str());
  EXPECT_TRUE(a.held() && b.held() && c.held());
  pidlock::Path converted = stdfs::path("/a/b");
  EXPECT_EQ(converted.string(), "/a/b");
  EXPECT_EQ(stdfs::path(pidlock::Path("/c/d")), stdfs::path("/c/d"));
}

}  // namespace
