#include "core/log.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>

namespace pidlock {
namespace {

std::atomic<LogThreshold> threshold{LogThreshold::kInfo};
// Mirrors `handler != nullptr` below, so that log_enabled() is one atomic
// load and a program without a handler never builds a record.
std::atomic<bool> handler_installed{false};

// The installed handler. Callers copy the shared_ptr under the mutex and
// call it outside, so a handler replaced during a call stays alive until
// that call returns, and a slow handler never blocks set_log_handler().
struct HandlerSlot {
  std::mutex mutex;
  std::shared_ptr<const LogHandler> handler;
};

HandlerSlot& slot() {
  // Never destroyed: locks released by static destructors at exit still
  // log, possibly after a function-local static would have been destroyed.
  static HandlerSlot* const instance = new HandlerSlot;
  return *instance;
}

}  // namespace

const char* to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: break;
  }
  return "off";
}

void set_log_handler(LogHandler handler) {
  std::shared_ptr<const LogHandler> next;
  if (handler) next = std::make_shared<const LogHandler>(std::move(handler));
  HandlerSlot& s = slot();
  {
    std::lock_guard<std::mutex> guard(s.mutex);
    s.handler.swap(next);
    handler_installed.store(s.handler != nullptr, std::memory_order_relaxed);
  }
  // `next` now holds the previous handler, destroyed here outside the mutex
  // (or later, by the last call still running it).
}

void set_log_threshold(LogThreshold t) noexcept { threshold.store(t, std::memory_order_relaxed); }
LogThreshold log_threshold() noexcept { return threshold.load(std::memory_order_relaxed); }

namespace detail {

bool log_enabled(LogThreshold level) noexcept {
  if (!handler_installed.load(std::memory_order_relaxed)) return false;
  LogThreshold t = threshold.load(std::memory_order_relaxed);
  return t != LogThreshold::kOff && static_cast<int>(level) >= static_cast<int>(t);
}

void emit_record(LogThreshold level, const std::string& message) noexcept {
  std::shared_ptr<const LogHandler> handler;
  try {
    HandlerSlot& s = slot();
    std::lock_guard<std::mutex> guard(s.mutex);
    handler = s.handler;
  } catch (...) {
    return;  // std::system_error from the mutex: drop the record
  }
  if (!handler) return;
  try {
    (*handler)(level, message);
  } catch (...) {
    // Logging must never turn a lock operation into a failure.
  }
}

}  // namespace detail
}  // namespace pidlock
