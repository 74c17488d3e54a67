// lock_unix_socket with real sockets and real processes: a socket left by
// a SIGKILLed server is removed once its lock is taken over; anything else
// at the socket path is refused and kept; a live server keeps both.
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

using namespace pidlock_test;
using std::chrono::milliseconds;

using pidlock::errc;
using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;

struct sockaddr_un address_of(const std::string& path) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  return addr;
}

// bind() (and, for connect_to, connect()) on `path`: 0 or errno.
int bind_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct sockaddr_un addr = address_of(path);
  int rc = ::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}
int connect_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct sockaddr_un addr = address_of(path);
  int rc = ::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

std::string contents(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(UnixSocket, AStaleSocketOfAKilledServerIsRemovedOnTakeOver) {
  TempDir dir;
  const std::string socket = dir / ".s.PGSQL.5432";
  HeldInChild server(socket, HeldInChild::Kind::kUnixSocket);
  ASSERT_TRUE(server.ok());
  const pid_t server_pid = server.pid();
  ASSERT_TRUE(is_socket(socket));
  server.kill();
  ASSERT_TRUE(is_socket(socket)) << "the killed server's socket file should remain";
  EXPECT_EQ(bind_to(socket), EADDRINUSE) << "the premise: a leftover socket blocks bind()";

  LockManager manager;
  std::error_code ec;
  LockHandle handle = pidlock::lock_unix_socket(manager, socket, {}, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(handle.took_over());
  ASSERT_TRUE(handle.previous_holder() && handle.previous_holder()->holder);
  EXPECT_EQ(handle.previous_holder()->holder->pid, server_pid);
  EXPECT_EQ(handle.path().filename().string(), ".s.PGSQL.5432.lock");
  EXPECT_FALSE(exists(socket)) << "the stale socket was not removed";
  EXPECT_EQ(bind_to(socket), 0);
  ::unlink(socket.c_str());
}

TEST(UnixSocket, ARegularFileAtTheSocketPathIsRefusedAndKept) {
  TempDir dir;
  const std::string socket = dir / ".s.PGSQL.5432";
  const std::string lock = socket + ".lock";
  {
    std::ofstream out(socket);
    out << "precious data, not a socket\n";
  }
  LockManager manager;
  std::error_code ec;
  LockHandle handle = pidlock::lock_unix_socket(manager, socket, {}, ec);
  EXPECT_EQ(ec, errc::not_a_socket);
  EXPECT_FALSE(handle.held());
  EXPECT_EQ(contents(socket), "precious data, not a socket\n");
  EXPECT_EQ(manager.held_count(), 0u);
  EXPECT_FALSE(exists(lock)) << "the lock taken for the check was left behind";

  // The throwing form throws the same error.
  try {
    LockHandle never = pidlock::lock_unix_socket(manager, socket);
    ADD_FAILURE() << "lock_unix_socket accepted a regular file";
  } catch (const pidlock::Error& e) {
    EXPECT_EQ(e.code(), errc::not_a_socket);
  }
  EXPECT_EQ(contents(socket), "precious data, not a socket\n");

  // The lock is free for another process.
  Child other = Child::fork([&]() -> int {
    LockManager m;
    std::error_code e;
    LockHandle h = m.acquire(lock, {}, e);
    return e ? 1 : 0;
  });
  EXPECT_TRUE(other.exited_with(0)) << "the socket's lock is still held";
}

TEST(UnixSocket, ALiveServerKeepsItsLockAndItsSocket) {
  TempDir dir;
  const std::string socket = dir / ".s.PGSQL.5432";
  HeldInChild server(socket, HeldInChild::Kind::kUnixSocket);
  ASSERT_TRUE(server.ok());
  struct stat before {};
  ASSERT_EQ(::lstat(socket.c_str(), &before), 0);

  LockManager manager;
  std::error_code ec;
  Inspection holder;
  LockHandle handle = pidlock::lock_unix_socket(manager, socket, {}, ec, &holder);
  EXPECT_EQ(ec, errc::held);
  EXPECT_FALSE(handle.held());
  ASSERT_TRUE(holder.holder);
  EXPECT_EQ(holder.holder->pid, server.pid());
  struct stat after {};
  ASSERT_EQ(::lstat(socket.c_str(), &after), 0);
  EXPECT_TRUE(S_ISSOCK(after.st_mode));
  EXPECT_EQ(after.st_ino, before.st_ino) << "the live socket was replaced";
  EXPECT_EQ(connect_to(socket), 0) << "the live server is unreachable";
  EXPECT_TRUE(server.release());
}

}  // namespace
