// The logging example of docs/guide.md, compiled and checked: a program adds
// its own Boost.Log sink for pidlock's records, filters them by channel and
// severity, and silences them with set_log_threshold(LogThreshold::kOff).
// If this file changes, change the guide's excerpt with it.
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

// ---- docs/guide.md, "Logging": begin ----
#include <boost/core/null_deleter.hpp>
#include <boost/log/core.hpp>
#include <boost/log/expressions.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sinks/text_ostream_backend.hpp>
#include <boost/log/trivial.hpp>

#include <ostream>

using TextSink = boost::log::sinks::synchronous_sink<boost::log::sinks::text_ostream_backend>;

// Sends pidlock's records of `min_severity` and above to `out`, one line
// each: "pidlock warning: acquired lock file ... by taking over ...".
// Records of other channels (the program's own) are left to other sinks.
boost::shared_ptr<TextSink> route_pidlock_log(std::ostream& out,
                                              boost::log::trivial::severity_level min_severity) {
  namespace expr = boost::log::expressions;
  auto sink = boost::make_shared<TextSink>();
  sink->locked_backend()->add_stream(boost::shared_ptr<std::ostream>(&out, boost::null_deleter()));
  sink->locked_backend()->auto_flush(true);
  sink->set_filter(expr::attr<std::string>("Channel") == pidlock::kLogChannel &&
                   boost::log::trivial::severity >= min_severity);
  sink->set_formatter(expr::stream << "pidlock " << boost::log::trivial::severity << ": "
                                   << expr::smessage);
  boost::log::core::get()->add_sink(sink);
  return sink;
}
// ---- docs/guide.md, "Logging": end ----

#include <boost/filesystem.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_channel_logger.hpp>

#include <sstream>
#include <string>

namespace {

namespace fs = boost::filesystem;
using boost::log::trivial::severity_level;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class LoggingGuide : public ::testing::Test {
 protected:
  void TearDown() override {
    if (sink_) boost::log::core::get()->remove_sink(sink_);
    pidlock::set_log_threshold(pidlock::LogThreshold::kInfo);  // the default
  }

  // Leaves a stale lock at lock_: a child acquires it and exits without
  // releasing, so the kernel lock is gone but the file stays. Returns its pid.
  pid_t leave_stale_lock() { return pidlock_test::leave_stale_lock(lock_.string()); }

  pidlock_test::TempDir dir_;
  fs::path lock_ = fs::path(dir_.path()) / "job.lock";
  std::ostringstream out_;
  boost::shared_ptr<TextSink> sink_;
};

TEST_F(LoggingGuide, WarningSinkGetsTakeOversButNotAcquisitionsNorOtherChannels) {
  sink_ = route_pidlock_log(out_, severity_level::warning);

  pidlock::LockManager locks;
  ASSERT_FALSE(locks.acquire(lock_).release());  // info records only
  boost::log::sources::severity_channel_logger<severity_level, std::string> app(
      boost::log::keywords::channel = std::string("app"));
  BOOST_LOG_SEV(app, severity_level::error) << "the program's own record";
  EXPECT_EQ(out_.str(), "");

  const pid_t dead = leave_stale_lock();
  pidlock::LockHandle lock = locks.acquire(lock_);
  ASSERT_TRUE(lock.took_over());
  const std::string text = out_.str();
  EXPECT_TRUE(contains(text, "pidlock warning: acquired lock file \"" + lock_.string() +
                                 "\" by taking over a stale lock of pid " + std::to_string(dead)))
      << text;
  EXPECT_FALSE(contains(text, "the program's own record")) << text;
}

TEST_F(LoggingGuide, InfoSinkGetsAcquisitionsAndReleases) {
  sink_ = route_pidlock_log(out_, severity_level::info);
  pidlock::LockManager locks;
  ASSERT_FALSE(locks.acquire(lock_).release());
  const std::string text = out_.str();
  EXPECT_TRUE(contains(text, "pidlock info: acquired lock file \"" + lock_.string() + "\"")) << text;
  EXPECT_TRUE(contains(text, "pidlock info: released lock file \"" + lock_.string() + "\"")) << text;
}

TEST_F(LoggingGuide, ThresholdOffSilencesPidlockEvenForTakeOvers) {
  sink_ = route_pidlock_log(out_, severity_level::trace);
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  EXPECT_EQ(pidlock::log_threshold(), pidlock::LogThreshold::kOff);

  leave_stale_lock();
  pidlock::LockManager locks;
  pidlock::LockHandle lock = locks.acquire(lock_);
  ASSERT_TRUE(lock.took_over());
  ASSERT_FALSE(lock.release());
  EXPECT_EQ(out_.str(), "");

  // And back on: the same sink sees records again.
  pidlock::set_log_threshold(pidlock::LogThreshold::kInfo);
  ASSERT_FALSE(locks.acquire(lock_).release());
  EXPECT_TRUE(contains(out_.str(), "pidlock info: acquired")) << out_.str();
}

}  // namespace
