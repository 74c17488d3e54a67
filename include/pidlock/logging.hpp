/// \file
/// pidlock's log records, and how a host program receives them.
///
/// The library prints nothing by itself. A program that wants pidlock's
/// records installs a handler with set_log_handler(): a function that gets
/// each record's level and text. Acquisitions and releases are `kInfo`;
/// take-overs of a stale lock (with the previous holder) and lost locks are
/// `kWarning`; failures are `kError`; decisions along the way are `kDebug`.
/// Without a handler no record is even created (one atomic load).
///
/// Ready-made handlers: `<pidlock/boost_log.hpp>` forwards records to
/// Boost.Log (channel "pidlock", boost::log::trivial severities); the guide
/// (docs/guide.md, "Logging") has recipes for journald and syslog.
///
/// Thread safety: every function here is thread-safe. A handler may be
/// called from several threads at once, and from any thread that uses the
/// library (including destructors at exit); it must not call back into
/// set_log_handler(). A handler replaced while another thread is inside it
/// stays alive until that call returns. Exceptions thrown by a handler are
/// swallowed: logging never turns a lock operation into a failure.
#ifndef PIDLOCK_LOGGING_HPP
#define PIDLOCK_LOGGING_HPP

#include <pidlock/export.hpp>

#include <functional>
#include <string_view>

namespace pidlock {

/// A severity. As a threshold, records below it are not created at all;
/// kOff silences everything. Default threshold: kInfo.
enum class LogThreshold { kTrace, kDebug, kInfo, kWarning, kError, kOff };

/// The level of one record (never kOff).
using LogLevel = LogThreshold;

/// "trace", "debug", "info", "warning", "error" ("off" for kOff).
PIDLOCK_EXPORT const char* to_string(LogLevel level) noexcept;

/// Receives one record: its level and its text (one line, no newline; the
/// view is valid only during the call).
using LogHandler = std::function<void(LogLevel level, std::string_view message)>;

/// Installs `handler` for the whole process, replacing the previous one; an
/// empty handler (the default) silences pidlock.
PIDLOCK_EXPORT void set_log_handler(LogHandler handler);

/// Sets the threshold for the whole process; LogThreshold::kOff silences pidlock.
PIDLOCK_EXPORT void set_log_threshold(LogThreshold threshold) noexcept;
/// The current threshold.
PIDLOCK_EXPORT LogThreshold log_threshold() noexcept;

/// The name pidlock's records carry where a log system wants one (the
/// "Channel" attribute of the Boost.Log handler, a syslog tag, ...).
inline constexpr const char* kLogChannel = "pidlock";

}  // namespace pidlock

#endif  // PIDLOCK_LOGGING_HPP
