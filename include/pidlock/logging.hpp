/// \file
/// pidlock's log records (Boost.Log).
///
/// pidlock emits records through Boost.Log's core with two attributes:
/// \verbatim
///   "Channel"  = "pidlock"                          (std::string)
///   "Severity" = boost::log::trivial::severity_level
/// \endverbatim
/// Acquisitions and releases are `info`; take-overs of a stale lock (with the
/// previous holder) and lost locks are `warning`; failures are `error`;
/// decisions along the way are `debug`.
///
/// Route them like any Boost.Log record: add your sink to
/// boost::log::core::get() and filter on the "Channel" attribute. Without any
/// sink Boost.Log prints everything to std::clog; to silence pidlock, call
/// set_log_threshold(LogThreshold::kOff) or filter its channel out.
///
/// Thread safety: set_log_threshold is thread-safe.
#ifndef PIDLOCK_LOGGING_HPP
#define PIDLOCK_LOGGING_HPP

#include <pidlock/export.hpp>

namespace pidlock {

/// Records below the threshold are not created at all (cheap: one atomic
/// load). Default: kInfo.
enum class LogThreshold { kTrace, kDebug, kInfo, kWarning, kError, kOff };

/// Sets the threshold for the whole process; LogThreshold::kOff silences pidlock.
PIDLOCK_EXPORT void set_log_threshold(LogThreshold threshold) noexcept;
/// The current threshold.
PIDLOCK_EXPORT LogThreshold log_threshold() noexcept;

/// The value of the "Channel" attribute on pidlock's records.
inline constexpr const char* kLogChannel = "pidlock";

}  // namespace pidlock

#endif  // PIDLOCK_LOGGING_HPP
