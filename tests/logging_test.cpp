// Rule 20 (G8): pidlock prints nothing unless the host installs a log
// handler; a handler gets every record at the documented level;
// set_log_threshold filters them; <pidlock/boost_log.hpp> forwards them to
// Boost.Log on channel "pidlock".
#include <pidlock/boost_log.hpp>
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <boost/log/attributes/value_extraction.hpp>
#include <boost/log/core.hpp>
#include <boost/log/sinks/basic_sink_backend.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/trivial.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using namespace pidlock_test;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::LogLevel;

struct Record {
  LogLevel level = LogLevel::kTrace;
  std::string message;
};

// The records a handler received.
class Captured {
 public:
  pidlock::LogHandler handler() {
    return [this](LogLevel level, std::string_view message) {
      std::lock_guard<std::mutex> guard(mutex_);
      records_.push_back({level, std::string(message)});
    };
  }
  std::vector<Record> take() {
    std::lock_guard<std::mutex> guard(mutex_);
    return std::exchange(records_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<Record> records_;
};

const Record* find(const std::vector<Record>& records, LogLevel level, const std::string& text) {
  for (const Record& r : records)
    if (r.level == level && r.message.find(text) != std::string::npos) return &r;
  return nullptr;
}

class Logging : public ::testing::Test {
 protected:
  void SetUp() override {
    pidlock::set_log_handler(captured_.handler());
    pidlock::set_log_threshold(pidlock::LogThreshold::kInfo);
  }
  void TearDown() override {
    pidlock::set_log_handler({});
    pidlock::set_log_threshold(pidlock::LogThreshold::kOff);  // as the suites' main
  }
  Captured captured_;
  TempDir dir_;
};

TEST_F(Logging, AcquireTakeOverLossAndFailureReachTheHandlerAtTheirLevels) {
  EXPECT_EQ(pidlock::log_threshold(), pidlock::LogThreshold::kInfo);
  const std::string lock = dir_ / "logged.pid";
  LockManager manager;
  {
    LockHandle h = manager.acquire(lock);
    auto records = captured_.take();
    EXPECT_TRUE(find(records, LogLevel::kInfo, "acquired")) << "no info record for the acquisition";
    EXPECT_TRUE(find(records, LogLevel::kInfo, lock));
    EXPECT_FALSE(h.release());
    EXPECT_TRUE(find(captured_.take(), LogLevel::kInfo, "released")) << "no info record for the release";
  }

  // A take-over: warning, naming the previous holder's pid.
  const pid_t dead = leave_stale_lock(lock);
  captured_.take();
  LockHandle h = manager.acquire(lock);
  ASSERT_TRUE(h.took_over());
  auto records = captured_.take();
  const Record* warning = find(records, LogLevel::kWarning, "pid " + std::to_string(dead));
  ASSERT_TRUE(warning) << "the take-over must be a warning naming pid " << dead;
  EXPECT_NE(warning->message.find(lock), std::string::npos) << warning->message;

  // A lost lock: warning.
  ASSERT_EQ(::unlink(lock.c_str()), 0);
  EXPECT_EQ(h.release(), pidlock::errc::lock_lost);
  EXPECT_TRUE(find(captured_.take(), LogLevel::kWarning, lock)) << "a lost lock is a warning";

  // A failure: error.
  std::error_code ec;
  LockHandle failed = manager.acquire(dir_ / "missing/x.pid", {}, ec);
  ASSERT_TRUE(ec);
  EXPECT_TRUE(find(captured_.take(), LogLevel::kError, "missing")) << "a failure is an error record";
  for (const Record& r : records) EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;
}

TEST_F(Logging, ThresholdOffSilencesEverything) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  EXPECT_EQ(pidlock::log_threshold(), pidlock::LogThreshold::kOff);
  const std::string lock = dir_ / "quiet.pid";
  LockManager manager;
  write_file(lock, "");  // a stale empty file: a take-over, which would warn
  LockHandle h = manager.acquire(lock);
  ASSERT_TRUE(h.took_over());
  EXPECT_FALSE(h.release());
  std::error_code ec;
  LockHandle failed = manager.acquire(dir_ / "missing/x.pid", {}, ec);
  EXPECT_TRUE(captured_.take().empty());
}

TEST_F(Logging, ThresholdWarningKeepsOnlyWarningsAndErrors) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kWarning);
  const std::string lock = dir_ / "warn.pid";
  LockManager manager;
  write_file(lock, "");  // a stale empty file
  LockHandle h = manager.acquire(lock);
  EXPECT_FALSE(h.release());
  auto records = captured_.take();
  ASSERT_FALSE(records.empty()) << "the take-over warning is kept";
  for (const Record& r : records) EXPECT_GE(r.level, LogLevel::kWarning) << r.message;
}

TEST_F(Logging, AnEmptyHandlerSilencesAndAThrowingHandlerFailsNothing) {
  const std::string lock = dir_ / "handlers.pid";
  LockManager manager;
  pidlock::set_log_handler({});
  EXPECT_FALSE(manager.acquire(lock).release());
  EXPECT_TRUE(captured_.take().empty());

  int calls = 0;
  pidlock::set_log_handler([&calls](LogLevel, std::string_view) {
    ++calls;
    throw std::runtime_error("a broken log handler");
  });
  write_file(lock, "");  // a take-over: warning, then info records
  LockHandle h = manager.acquire(lock);
  EXPECT_TRUE(h.took_over());
  EXPECT_FALSE(h.release());
  EXPECT_GE(calls, 2);
}

TEST_F(Logging, HandlersCanBeReplacedWhileOtherThreadsLog) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kDebug);
  std::atomic<int> calls{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> lockers;
  for (int t = 0; t < 3; ++t)
    lockers.emplace_back([&, t] {
      LockManager manager;
      const std::string lock = dir_ / ("thread" + std::to_string(t) + ".pid");
      for (int i = 0; i < 100; ++i) EXPECT_FALSE(manager.acquire(lock).release());
    });
  std::thread swapper([&] {
    while (!stop) {
      // Each handler owns state that dies with it: a call on a destroyed
      // handler would touch freed memory (which the sanitizer stages see).
      auto owned = std::make_shared<int>(1);
      pidlock::set_log_handler([owned, &calls](LogLevel, std::string_view) { calls += *owned; });
      pidlock::set_log_handler({});
    }
  });
  for (std::thread& t : lockers) t.join();
  stop = true;
  swapper.join();
  pidlock::set_log_handler(captured_.handler());
  EXPECT_FALSE(LockManager().acquire(dir_ / "after.pid").release());
  EXPECT_TRUE(find(captured_.take(), LogLevel::kInfo, "acquired"));
}

// The default, in a child whose stdout and stderr go to a file: no handler
// means nothing printed, even for take-overs and failures at the lowest
// threshold, and even with Boost.Log in the program (whose core prints
// every record to std::clog while no sink is added).
TEST_F(Logging, WithoutAHandlerNothingIsPrinted) {
  const std::string output = dir_ / "output";
  const std::string lock = dir_ / "default.pid";
  Child child = Child::fork([&] {
    const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) return 2;
    pidlock::set_log_handler({});
    pidlock::set_log_threshold(pidlock::LogThreshold::kTrace);
    (void)boost::log::core::get();
    write_file(lock, "");  // stale: a take-over warning
    LockManager manager;
    LockHandle h = manager.acquire(lock);
    if (!h.took_over() || h.release()) return 3;
    std::error_code ec;
    LockHandle failed = manager.acquire(dir_ / "missing/x.pid", {}, ec);
    return ec ? 0 : 4;
  });
  ASSERT_TRUE(child.exited_with(0)) << describe_status(child.wait());
  EXPECT_EQ(read_file(output), "");

  // The same child with a handler that prints proves the file would show it.
  Child loud = Child::fork([&] {
    const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::dup2(fd, 2) < 0) return 2;
    pidlock::set_log_handler([](LogLevel level, std::string_view message) {
      std::fprintf(stderr, "%s %.*s\n", pidlock::to_string(level), int(message.size()), message.data());
    });
    pidlock::set_log_threshold(pidlock::LogThreshold::kInfo);
    return LockManager().acquire(lock).release() ? 3 : 0;
  });
  ASSERT_TRUE(loud.exited_with(0)) << describe_status(loud.wait());
  EXPECT_NE(read_file(output).find("info acquired lock file"), std::string::npos) << read_file(output);
}

// <pidlock/boost_log.hpp>: records reach a Boost.Log sink on channel
// "pidlock" with boost::log::trivial severities.
using Severity = boost::log::trivial::severity_level;

class BoostCapture
    : public boost::log::sinks::basic_sink_backend<boost::log::sinks::synchronized_feeding> {
 public:
  struct Entry {
    std::string channel;
    Severity severity = Severity::trace;
    std::string message;
  };
  void consume(const boost::log::record_view& rec) {
    Entry e;
    if (auto ch = boost::log::extract<std::string>("Channel", rec)) e.channel = *ch;
    if (auto sev = boost::log::extract<Severity>("Severity", rec)) e.severity = *sev;
    if (auto msg = boost::log::extract<std::string>("Message", rec)) e.message = *msg;
    std::lock_guard<std::mutex> guard(mutex_);
    entries_.push_back(std::move(e));
  }
  std::vector<Entry> take() {
    std::lock_guard<std::mutex> guard(mutex_);
    return std::exchange(entries_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<Entry> entries_;
};

TEST_F(Logging, BoostLogHandlerUsesChannelPidlockAndTrivialSeverities) {
  auto backend = boost::make_shared<BoostCapture>();
  auto sink = boost::make_shared<boost::log::sinks::synchronous_sink<BoostCapture>>(backend);
  boost::log::core::get()->add_sink(sink);
  pidlock::log_to_boost_log();

  const std::string lock = dir_ / "boost.pid";
  LockManager manager;
  EXPECT_FALSE(manager.acquire(lock).release());
  const pid_t dead = leave_stale_lock(lock);
  backend->take();
  EXPECT_FALSE(manager.acquire(lock).release());
  boost::log::core::get()->remove_sink(sink);

  bool warned = false, informed = false;
  for (const BoostCapture::Entry& e : backend->take()) {
    EXPECT_EQ(e.channel, pidlock::kLogChannel) << e.message;
    if (e.severity == Severity::warning && e.message.find("pid " + std::to_string(dead)) != std::string::npos)
      warned = true;
    if (e.severity == Severity::info && e.message.find("released") != std::string::npos) informed = true;
  }
  EXPECT_TRUE(warned) << "the take-over is a Boost.Log warning naming pid " << dead;
  EXPECT_TRUE(informed) << "the release is a Boost.Log info record";
  EXPECT_EQ(pidlock::boost_log_severity(LogLevel::kDebug), Severity::debug);
  EXPECT_EQ(pidlock::boost_log_severity(LogLevel::kError), Severity::error);
}

}  // namespace
