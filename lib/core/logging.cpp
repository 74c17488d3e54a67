#include "core/log.hpp"

#include <atomic>

namespace pidlock {
namespace {
std::atomic<LogThreshold> threshold{LogThreshold::kInfo};
}  // namespace

void set_log_threshold(LogThreshold t) noexcept { threshold.store(t, std::memory_order_relaxed); }
LogThreshold log_threshold() noexcept { return threshold.load(std::memory_order_relaxed); }

namespace detail {

bool log_enabled(LogThreshold level) noexcept {
  LogThreshold t = threshold.load(std::memory_order_relaxed);
  return t != LogThreshold::kOff && static_cast<int>(level) >= static_cast<int>(t);
}

}  // namespace detail
}  // namespace pidlock
