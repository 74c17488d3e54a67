// The logging recipes of docs/guide.md, compiled and checked: a plain
// handler; Boost.Log through <pidlock/boost_log.hpp> with a sink that
// filters pidlock's channel; journald (stderr with priority prefixes);
// syslog(3), received on a /dev/log socket the test owns. If a recipe
// changes here, change the guide's excerpt with it.
#include "support/test_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>

// ---- docs/guide.md, "Logging: Boost.Log": begin ----
#include <pidlock/boost_log.hpp>

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
  pidlock::log_to_boost_log();  // pidlock's records into Boost.Log's core
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
// ---- docs/guide.md, "Logging: Boost.Log": end ----

// ---- docs/guide.md, "Logging: journald and syslog": begin ----
#include <syslog.h>
#include <unistd.h>

#include <string>
#include <string_view>

// The syslog(3) priority of a pidlock level.
int syslog_priority(pidlock::LogLevel level) {
  switch (level) {
    case pidlock::LogLevel::kTrace:
    case pidlock::LogLevel::kDebug: return LOG_DEBUG;
    case pidlock::LogLevel::kInfo: return LOG_INFO;
    case pidlock::LogLevel::kWarning: return LOG_WARNING;
    default: return LOG_ERR;
  }
}

// journald: a service's standard error goes to the journal, and a "<N>"
// prefix on a line sets its priority (sd-daemon(3)). One write() per line,
// so that lines of several threads never mix.
pidlock::LogHandler journald_handler(int fd = STDERR_FILENO) {
  return [fd](pidlock::LogLevel level, std::string_view message) {
    std::string line = "<" + std::to_string(syslog_priority(level)) + ">pidlock: ";
    line.append(message).push_back('\n');
    (void)!::write(fd, line.data(), line.size());
  };
}

// syslog: call openlog() once at start-up as usual, e.g.
//   openlog("mydaemon", LOG_PID, LOG_DAEMON);
pidlock::LogHandler syslog_handler() {
  return [](pidlock::LogLevel level, std::string_view message) {
    ::syslog(syslog_priority(level), "pidlock: %.*s", static_cast<int>(message.size()), message.data());
  };
}
// ---- docs/guide.md, "Logging: journald and syslog": end ----

#include <boost/filesystem.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_channel_logger.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace {

namespace fs = boost::filesystem;
using boost::log::trivial::severity_level;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class LoggingGuide : public ::testing::Test {
 protected:
  void SetUp() override { pidlock::set_log_threshold(pidlock::LogThreshold::kInfo); }
  void TearDown() override {
    if (sink_) boost::log::core::get()->remove_sink(sink_);
    pidlock::set_log_handler({});
    pidlock::set_log_threshold(pidlock::LogThreshold::kInfo);  // the default
  }

  // Leaves a stale lock at lock_: a child acquires it and exits without
  // releasing, so the kernel lock is gone but the file stays. Returns its pid.
  pid_t leave_stale_lock() { return pidlock_test::leave_stale_lock(lock_.string()); }
  std::string take_over_text(pid_t dead) const {
    return "acquired lock file \"" + lock_.string() + "\" by taking over a stale lock of pid " +
           std::to_string(dead);
  }

  pidlock_test::TempDir dir_;
  fs::path lock_ = fs::path(dir_.path()) / "job.lock";
  std::ostringstream out_;
  boost::shared_ptr<TextSink> sink_;
};

TEST_F(LoggingGuide, PlainHandlerGetsLevelAndText) {
  const std::string err = dir_ / "stderr";
  pidlock_test::Child child = pidlock_test::Child::fork([&] {
    const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) return 2;
    // ---- docs/guide.md, "Logging: a handler": begin ----
    pidlock::set_log_handler([](pidlock::LogLevel level, std::string_view message) {
      std::fprintf(stderr, "mydaemon: pidlock %s: %.*s\n", pidlock::to_string(level),
                   static_cast<int>(message.size()), message.data());
    });
    // ---- docs/guide.md, "Logging: a handler": end ----
    pidlock::LockManager locks;
    return locks.acquire(lock_).release() ? 3 : 0;
  });
  ASSERT_TRUE(child.exited_with(0)) << pidlock_test::describe_status(child.wait());
  const std::string text = pidlock_test::read_file(err);
  EXPECT_EQ(text.rfind("mydaemon: pidlock info: acquired lock file \"" + lock_.string() + "\"", 0), 0u) << text;
  EXPECT_TRUE(contains(text, "\nmydaemon: pidlock info: released lock file \"" + lock_.string() + "\"")) << text;
}

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
  EXPECT_TRUE(contains(text, "pidlock warning: " + take_over_text(dead))) << text;
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

TEST_F(LoggingGuide, JournaldHandlerWritesPriorityPrefixedLines) {
  pidlock_test::Pipe pipe;
  pidlock::set_log_handler(journald_handler(pipe.write_end()));
  const pid_t dead = leave_stale_lock();
  pidlock::LockManager locks;
  pidlock::LockHandle lock = locks.acquire(lock_);
  ASSERT_TRUE(lock.took_over());
  // LOG_WARNING is 4, LOG_INFO 6.
  auto line = pidlock_test::read_line(pipe.read_end());
  ASSERT_TRUE(line);
  EXPECT_EQ(line->rfind("<4>pidlock: " + take_over_text(dead), 0), 0u) << *line;
  ASSERT_FALSE(lock.release());
  line = pidlock_test::read_line(pipe.read_end());
  ASSERT_TRUE(line);
  EXPECT_EQ(line->rfind("<6>pidlock: released lock file \"" + lock_.string() + "\"", 0), 0u) << *line;
}

// syslog(3) writes to /dev/log. A child gets a mount namespace of its own
// with a fresh /dev, binds a datagram socket at /dev/log there, and uses
// the recipe exactly as a daemon would; it reports the datagram it read.
TEST_F(LoggingGuide, SyslogHandlerSendsToDevLog) {
  const pid_t dead = leave_stale_lock();
  pidlock_test::Child child = pidlock_test::Child::fork([&](int report) {
    auto say = [report](const std::string& text) { return pidlock_test::write_line(report, text) ? 0 : 1; };
    if (::unshare(CLONE_NEWNS) != 0) return say("skip: unshare(CLONE_NEWNS): " + std::string(std::strerror(errno)));
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") != 0)
      return say("skip: mount: " + std::string(std::strerror(errno)));
    const int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "/dev/log");
    if (sock < 0 || ::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return say("no /dev/log");

    ::openlog("mydaemon", LOG_PID, LOG_DAEMON);
    pidlock::set_log_handler(syslog_handler());
    pidlock::LockManager locks;
    pidlock::LockHandle lock = locks.acquire(lock_);
    char buffer[4096];
    const ssize_t n = ::recv(sock, buffer, sizeof buffer, MSG_DONTWAIT);
    return say(n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "nothing received");
  });
  auto line = child.read_line();
  ASSERT_TRUE(child.exited_with(0)) << pidlock_test::describe_status(child.wait());
  ASSERT_TRUE(line);
  if (line->rfind("skip:", 0) == 0) GTEST_SKIP() << *line;
  // <28> = LOG_DAEMON (3 << 3) | LOG_WARNING (4); then a timestamp.
  EXPECT_EQ(line->rfind("<28>", 0), 0u) << *line;
  EXPECT_TRUE(contains(*line, "mydaemon[" + std::to_string(child.pid()) + "]: pidlock: " + take_over_text(dead)))
      << *line;
}

}  // namespace
