#include "log.hpp"

#include <atomic>

namespace pidlock {
namespace {
std::atomic<LogThreshold> threshold{LogThreshold::kInfo};
}  // namespace

void set_log_threshold(LogThreshold t) noexcept { threshold.store(t, std::memory_order_relaxed); }
LogThreshold log_threshold() noexcept { return threshold.load(std::memory_order_relaxed); }

namespace detail {

Logger& logger() {
  // Never destroyed, for the same reason as real_system(): locks released
  // by static destructors at exit still log.
  static Logger* instance = new Logger(boost::log::keywords::channel = std::string(kLogChannel));
  return *instance;
}

bool log_enabled(boost::log::trivial::severity_level level) noexcept {
  LogThreshold t = threshold.load(std::memory_order_relaxed);
  if (t == LogThreshold::kOff) return false;
  // trivial: trace=0, debug=1, info=2, warning=3, error=4, fatal=5.
  return static_cast<int>(level) >= static_cast<int>(t);
}

}  // namespace detail
}  // namespace pidlock
