// Internal logging (see include/pidlock/logging.hpp).
//
// Records are formatted here and handed to emit_record() (logging.cpp),
// which passes them to the handler the host installed, if any. The library
// itself uses no logging framework: <pidlock/boost_log.hpp> is a header-only
// handler for hosts that want Boost.Log.
#ifndef PIDLOCK_LOG_HPP
#define PIDLOCK_LOG_HPP

#include <pidlock/logging.hpp>

#include <sstream>
#include <string>

namespace pidlock::detail {

// True if a handler is installed and records of `level` pass the threshold
// (two atomic loads).
bool log_enabled(LogThreshold level) noexcept;

// Delivers one record to the installed handler.
void emit_record(LogThreshold level, const std::string& message) noexcept;

// One record under construction; delivered when the statement ends.
class LogLine {
 public:
  explicit LogLine(LogThreshold level) : level_(level) {}
  ~LogLine() { emit_record(level_, stream_.str()); }
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogThreshold level_;
  std::ostringstream stream_;
};

inline constexpr LogThreshold kLogLevel_trace = LogThreshold::kTrace;
inline constexpr LogThreshold kLogLevel_debug = LogThreshold::kDebug;
inline constexpr LogThreshold kLogLevel_info = LogThreshold::kInfo;
inline constexpr LogThreshold kLogLevel_warning = LogThreshold::kWarning;
inline constexpr LogThreshold kLogLevel_error = LogThreshold::kError;

}  // namespace pidlock::detail

// PIDLOCK_LOG(info) << "text";  The operands are evaluated only when the
// level passes the threshold.
#define PIDLOCK_LOG(level)                                                   \
  if (!::pidlock::detail::log_enabled(::pidlock::detail::kLogLevel_##level)) { \
  } else                                                                     \
    ::pidlock::detail::LogLine(::pidlock::detail::kLogLevel_##level).stream()

#endif  // PIDLOCK_LOG_HPP
