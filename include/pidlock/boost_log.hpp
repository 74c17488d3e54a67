/// \file
/// A log handler that forwards pidlock's records to Boost.Log.
///
/// \code
///   #include <pidlock/boost_log.hpp>
///   pidlock::log_to_boost_log();  // at start-up, once
/// \endcode
/// Each record then goes through boost::log::core with two attributes:
/// \verbatim
///   "Channel"  = "pidlock"                          (std::string)
///   "Severity" = boost::log::trivial::severity_level
/// \endverbatim
/// Route them like any Boost.Log record: add a sink and filter on the
/// channel. Note that Boost.Log prints every record to std::clog as long as
/// no sink is added at all.
///
/// This header is the only part of pidlock that uses Boost.Log, and it is
/// header-only: a program that includes it links Boost::log itself
/// (`find_package(Boost COMPONENTS log)`, `-lboost_log -lboost_thread`);
/// the library does not depend on Boost.Log.
///
/// Thread safety: as set_log_handler().
#ifndef PIDLOCK_BOOST_LOG_HPP
#define PIDLOCK_BOOST_LOG_HPP

#include <pidlock/logging.hpp>

#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_channel_logger.hpp>
#include <boost/log/trivial.hpp>

#include <string>
#include <string_view>

namespace pidlock {

/// The Boost.Log severity of a pidlock level.
inline boost::log::trivial::severity_level boost_log_severity(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace: return boost::log::trivial::trace;
    case LogLevel::kDebug: return boost::log::trivial::debug;
    case LogLevel::kInfo: return boost::log::trivial::info;
    case LogLevel::kWarning: return boost::log::trivial::warning;
    case LogLevel::kError:
    case LogLevel::kOff: break;
  }
  return boost::log::trivial::error;
}

/// A handler that emits each record through Boost.Log, on channel
/// kLogChannel, with boost_log_severity(level).
inline LogHandler boost_log_handler() {
  using Logger = boost::log::sources::severity_channel_logger_mt<boost::log::trivial::severity_level,
                                                                  std::string>;
  return [](LogLevel level, std::string_view message) {
    // Never destroyed: locks released by static destructors at exit still
    // log, possibly after a function-local static would have been destroyed.
    static Logger* const logger = new Logger(boost::log::keywords::channel = std::string(kLogChannel));
    BOOST_LOG_SEV(*logger, boost_log_severity(level)) << message;
  };
}

/// Installs boost_log_handler() (see set_log_handler()).
inline void log_to_boost_log() { set_log_handler(boost_log_handler()); }

}  // namespace pidlock

#endif  // PIDLOCK_BOOST_LOG_HPP
