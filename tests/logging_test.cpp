// Rule 20 (G8): pidlock's Boost.Log records reach a sink the embedding
// program adds, on channel "pidlock", at the documented severities;
// set_log_threshold silences them.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <boost/log/attributes/value_extraction.hpp>
#include <boost/log/core.hpp>
#include <boost/log/sinks/basic_sink_backend.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/trivial.hpp>

#include <signal.h>
#include <unistd.h>

#include <mutex>
#include <vector>

namespace {

using namespace pidlock_test;
using pidlock::LockHandle;
using pidlock::LockManager;
namespace logging = boost::log;
using Severity = logging::trivial::severity_level;

struct Captured {
  std::string channel;
  Severity severity = Severity::trace;
  std::string message;
};

class CaptureBackend
    : public logging::sinks::basic_sink_backend<logging::sinks::synchronized_feeding> {
 public:
  void consume(const logging::record_view& rec) {
    Captured c;
    if (auto ch = logging::extract<std::string>("Channel", rec)) c.channel = *ch;
    if (auto sev = logging::extract<Severity>("Severity", rec)) c.severity = *sev;
    if (auto msg = logging::extract<std::string>("Message", rec)) c.message = *msg;
    std::lock_guard<std::mutex> guard(mutex_);
    records_.push_back(std::move(c));
  }
  std::vector<Captured> take() {
    std::lock_guard<std::mutex> guard(mutex_);
    return std::exchange(records_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<Captured> records_;
};

class Logging : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = boost::make_shared<CaptureBackend>();
    sink_ = boost::make_shared<logging::sinks::synchronous_sink<CaptureBackend>>(backend_);
    logging::core::get()->add_sink(sink_);
    pidlock::set_log_threshold(pidlock::LogThreshold::kInfo);
  }
  void TearDown() override {
    pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
    logging::core::get()->remove_sink(sink_);
  }
  // The records of channel "pidlock" (all records must be on it).
  std::vector<Captured> take() {
    std::vector<Captured> all = backend_->take();
    for (const Captured& c : all) EXPECT_EQ(c.channel, pidlock::kLogChannel) << c.message;
    return all;
  }
  static const Captured* find(const std::vector<Captured>& records, Severity severity, const std::string& text) {
    for (const Captured& c : records)
      if (c.severity == severity && c.message.find(text) != std::string::npos) return &c;
    return nullptr;
  }

  boost::shared_ptr<CaptureBackend> backend_;
  boost::shared_ptr<logging::sinks::synchronous_sink<CaptureBackend>> sink_;
};

TEST_F(Logging, AcquireTakeOverAndReleaseAreRecordedOnChannelPidlock) {
  EXPECT_EQ(pidlock::log_threshold(), pidlock::LogThreshold::kInfo);
  TempDir dir;
  const std::string lock = dir / "logged.pid";
  LockManager manager;
  {
    LockHandle h = manager.acquire(lock);
    auto records = take();
    EXPECT_TRUE(find(records, Severity::info, "acquired")) << "no info record for the acquisition";
    EXPECT_TRUE(find(records, Severity::info, lock));
    EXPECT_FALSE(h.release());
    records = take();
    EXPECT_TRUE(find(records, Severity::info, "released")) << "no info record for the release";
  }

  // A take-over: warning, naming the previous holder's pid.
  Child holder = Child::holder({"acquire", lock});
  ASSERT_TRUE(holder.read_line());
  holder.kill();
  holder.wait();
  take();
  LockHandle h = manager.acquire(lock);
  ASSERT_TRUE(h.took_over());
  auto records = take();
  const Captured* warning = find(records, Severity::warning, "pid " + std::to_string(holder.pid()));
  ASSERT_TRUE(warning) << "the take-over must be a warning naming pid " << holder.pid();
  EXPECT_NE(warning->message.find(lock), std::string::npos) << warning->message;

  // A lost lock: warning.
  ASSERT_EQ(::unlink(lock.c_str()), 0);
  EXPECT_EQ(h.release(), pidlock::errc::lock_lost);
  records = take();
  EXPECT_TRUE(find(records, Severity::warning, lock)) << "a lost lock is a warning";

  // A failure: error.
  std::error_code ec;
  LockHandle failed = manager.acquire(dir / "missing/x.pid", {}, ec);
  ASSERT_TRUE(ec);
  records = take();
  EXPECT_TRUE(find(records, Severity::error, "missing")) << "a failure is an error record";
}

TEST_F(Logging, ThresholdOffSilencesEverything) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  EXPECT_EQ(pidlock::log_threshold(), pidlock::LogThreshold::kOff);
  TempDir dir;
  const std::string lock = dir / "quiet.pid";
  LockManager manager;
  write_file(lock, "");  // a stale empty file: a take-over, which would warn
  LockHandle h = manager.acquire(lock);
  ASSERT_TRUE(h.took_over());
  EXPECT_FALSE(h.release());
  std::error_code ec;
  LockHandle failed = manager.acquire(dir / "missing/x.pid", {}, ec);
  EXPECT_TRUE(take().empty());
}

TEST_F(Logging, ThresholdWarningKeepsOnlyWarningsAndErrors) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kWarning);
  TempDir dir;
  const std::string lock = dir / "warn.pid";
  LockManager manager;
  write_file(lock, "");  // a stale empty file
  LockHandle h = manager.acquire(lock);
  EXPECT_FALSE(h.release());
  auto records = take();
  ASSERT_FALSE(records.empty()) << "the take-over warning is kept";
  for (const Captured& c : records) EXPECT_GE(c.severity, Severity::warning) << c.message;
}

}  // namespace
