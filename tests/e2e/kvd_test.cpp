// End to end: the example daemon kvd (examples/kv_daemon) run as real
// processes against one data directory, stopped with real SIGKILL and
// SIGTERM, talked to over its real Unix socket. What an operator would see:
// a refused second start, a crash and the automatic recovery, a clean stop,
// and a daemon that stops by itself when its lock file is deleted.
#include "support/test_support.hpp"

#include <pidlock/holder_record.hpp>

#include <gtest/gtest.h>

#include <boost/filesystem.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef PIDLOCK_KVD
#error "PIDLOCK_KVD must name the kvd binary"
#endif

namespace {

namespace fs = boost::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// One kvd process, its stdout and stderr captured in files.
class Kvd {
 public:
  Kvd(const fs::path& data_dir, const fs::path& output_prefix) : err_(output_prefix.string() + ".err") {
    pidlock_test::Stdio stdio;
    stdio.output_file = output_prefix.string() + ".out";
    stdio.error_file = err_;
    process_ = pidlock_test::Child::spawn({PIDLOCK_KVD, "--data-dir", data_dir.string()}, stdio);
  }

  pid_t pid() const { return process_.pid(); }
  std::string out() const { return pidlock_test::try_read_file(process_.output_file()).value_or(""); }
  std::string err() const { return pidlock_test::try_read_file(err_).value_or(""); }

  // Waits until kvd says it is ready; false if it exited or took too long.
  bool wait_ready(std::chrono::milliseconds limit = 5s) {
    bool exited = false;
    bool ready = pidlock_test::eventually(
        [&] { return contains(out(), "kvd: ready on ") || (exited = !process_.running()); }, limit);
    return ready && !exited;
  }

  // The exit status (128 + signal when killed), or -1 if still running
  // after `limit`.
  int wait_exit(std::chrono::milliseconds limit = 5s) {
    std::optional<int> status = process_.wait(limit);
    return status ? pidlock_test::exit_code(*status) : -1;
  }

  void signal(int signo) { process_.kill(signo); }

 private:
  std::string err_;
  pidlock_test::Child process_;
};

// Sends one request line to kvd's socket and returns the reply line.
std::string request(const fs::path& socket_path, const std::string& line) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    std::string data = line + '\n';
    if (::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size())) {
      char c;
      while (::recv(fd, &c, 1, 0) == 1 && c != '\n') reply += c;
    }
  } else {
    reply = std::string("connect: ") + std::strerror(errno);
  }
  ::close(fd);
  return reply;
}

class KvdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(data_dir_.c_str(), 0700), 0);  // guard_data_directory wants 0700
  }

  // kvd number `n` of this test, its output in root_/kvd-n.{out,err}.
  std::unique_ptr<Kvd> start(int n) { return std::make_unique<Kvd>(data_dir_, root_ / ("kvd-" + std::to_string(n))); }

  fs::path lock_file() const { return data_dir_ / "pidlock.pid"; }
  fs::path socket_path() const { return data_dir_ / "kvd.sock"; }

  pidlock_test::TempDir temp_;
  fs::path root_ = temp_.path();
  fs::path data_dir_ = root_ / "data";
};

TEST_F(KvdTest, SecondInstanceIsRefusedWithExit75NamingTheFirstsPid) {
  auto first = start(1);
  ASSERT_TRUE(first->wait_ready()) << first->err();

  auto second = start(2);
  EXPECT_EQ(second->wait_exit(), 75);
  const std::string refusal = second->err();
  EXPECT_TRUE(contains(refusal, "already exists")) << refusal;
  EXPECT_TRUE(contains(refusal, "PID " + std::to_string(first->pid()))) << refusal;
  EXPECT_TRUE(contains(refusal, data_dir_.string())) << refusal;

  // The refusal changed nothing for the first.
  EXPECT_EQ(request(socket_path(), "SET k v"), "OK");
  EXPECT_EQ(request(socket_path(), "GET k"), "VALUE v");
}

TEST_F(KvdTest, LockFileNamesTheServerAndSaysReadyWhileServing) {
  auto kvd = start(1);
  ASSERT_TRUE(kvd->wait_ready()) << kvd->err();
  pidlock::ParsedRecord parsed = pidlock::parse_record(pidlock_test::read_file(lock_file().string()));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->pid, kvd->pid());
  EXPECT_EQ(parsed.record->data_directory, data_dir_.string());
  EXPECT_EQ(parsed.record->status, "ready");
}

TEST_F(KvdTest, AfterSigkillTheNextStartTakesOverRecoversAndServesEarlierWrites) {
  auto first = start(1);
  ASSERT_TRUE(first->wait_ready()) << first->err();
  ASSERT_EQ(request(socket_path(), "SET greeting hello, world"), "OK");
  ASSERT_EQ(request(socket_path(), "SET doomed 1"), "OK");
  ASSERT_EQ(request(socket_path(), "DEL doomed"), "OK");

  first->signal(SIGKILL);
  ASSERT_EQ(first->wait_exit(), 128 + SIGKILL);
  ASSERT_TRUE(fs::exists(lock_file()));    // left behind, as after any crash
  ASSERT_TRUE(fs::exists(socket_path()));  // and so is the socket

  auto second = start(2);
  ASSERT_TRUE(second->wait_ready()) << second->err();
  EXPECT_TRUE(contains(second->out(), "recovered after unclean shutdown of pid " + std::to_string(first->pid())))
      << second->out();
  EXPECT_EQ(request(socket_path(), "GET greeting"), "VALUE hello, world");
  EXPECT_EQ(request(socket_path(), "GET doomed"), "NOT_FOUND");
}

TEST_F(KvdTest, RecoveryDropsATornLastWriteButACleanStartRefusesOne) {
  auto first = start(1);
  ASSERT_TRUE(first->wait_ready()) << first->err();
  ASSERT_EQ(request(socket_path(), "SET kept 1"), "OK");
  first->signal(SIGKILL);
  ASSERT_EQ(first->wait_exit(), 128 + SIGKILL);
  // What a crash in the middle of an append leaves: a record without its
  // newline, never acknowledged to any client.
  std::ofstream(data_dir_.string() + "/kvd.log", std::ios::app) << "SET half";

  auto second = start(2);
  ASSERT_TRUE(second->wait_ready()) << second->err();
  EXPECT_TRUE(contains(second->out(), "dropped 8 bytes of a torn write")) << second->out();
  EXPECT_EQ(request(socket_path(), "GET kept"), "VALUE 1");
  EXPECT_EQ(request(socket_path(), "GET half"), "NOT_FOUND");
  second->signal(SIGTERM);
  ASSERT_EQ(second->wait_exit(), 0) << second->err();

  // After a clean shutdown a torn log cannot be a crash's: refuse to guess.
  std::ofstream(data_dir_.string() + "/kvd.log", std::ios::app) << "SET half";
  auto third = start(3);
  EXPECT_EQ(third->wait_exit(), 1);
  EXPECT_TRUE(contains(third->err(), "torn write, yet the last shutdown was clean")) << third->err();
}

TEST_F(KvdTest, SigtermShutsDownCleanlyRemovingSocketAndLockFiles) {
  auto first = start(1);
  ASSERT_TRUE(first->wait_ready()) << first->err();
  ASSERT_EQ(request(socket_path(), "SET survives yes"), "OK");

  first->signal(SIGTERM);
  EXPECT_EQ(first->wait_exit(), 0) << first->err();
  EXPECT_TRUE(contains(first->out(), "kvd: shut down cleanly")) << first->out();
  EXPECT_FALSE(fs::exists(socket_path()));
  EXPECT_FALSE(fs::exists(data_dir_ / "kvd.sock.lock"));
  EXPECT_FALSE(fs::exists(lock_file()));

  // The next start is a clean one: no recovery, and the data is there.
  auto second = start(2);
  ASSERT_TRUE(second->wait_ready()) << second->err();
  EXPECT_FALSE(contains(second->out(), "recovered")) << second->out();
  EXPECT_EQ(request(socket_path(), "GET survives"), "VALUE yes");
}

// Run as examples/kv_daemon/kvd.service runs it (Type=notify): the service
// manager hears READY=1 once kvd serves, and STOPPING=1 at SIGTERM.
TEST_F(KvdTest, UnderSystemdReadyAndStoppingReachTheNotifySocket) {
  pidlock_test::NotifySocket systemd;  // NOTIFY_SOCKET, inherited by kvd
  auto first = start(1);
  ASSERT_TRUE(first->wait_ready()) << first->err();
  std::optional<std::string> message = systemd.receive();
  // Any earlier status words come first, each its own STATUS= datagram.
  while (message && !contains(*message, "READY=1")) message = systemd.receive();
  ASSERT_TRUE(message) << "no READY=1; kvd said: " << first->err();
  EXPECT_EQ(*message, "READY=1\nSTATUS=ready");
  EXPECT_EQ(request(socket_path(), "SET k v"), "OK");

  first->signal(SIGTERM);
  EXPECT_EQ(systemd.receive(), "STOPPING=1\nSTATUS=stopping");
  EXPECT_EQ(first->wait_exit(), 0) << first->err();
  EXPECT_TRUE(systemd.empty()) << "STOPPING=1 is said once";
}

TEST_F(KvdTest, DeletedLockFileStopsTheServerWithinTwoSeconds) {
  auto kvd = start(1);
  ASSERT_TRUE(kvd->wait_ready()) << kvd->err();
  ASSERT_EQ(request(socket_path(), "SET k v"), "OK");

  const auto deleted_at = Clock::now();
  ASSERT_EQ(::unlink(lock_file().c_str()), 0);
  const int status = kvd->wait_exit(2s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - deleted_at);
  EXPECT_NE(status, -1) << "kvd still running " << took.count() << " ms after its lock file was deleted";
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(kvd->err(), "data directory lock file is invalid; shutting down")) << kvd->err();
  // It cleaned up only what was still its own: the socket and its lock.
  EXPECT_FALSE(fs::exists(socket_path()));
  EXPECT_FALSE(fs::exists(data_dir_ / "kvd.sock.lock"));
  std::cout << "kvd stopped " << took.count() << " ms after its lock file was deleted\n";
}

}  // namespace
