// Internal logging macro over Boost.Log (see include/pidlock/logging.hpp).
#ifndef PIDLOCK_LOG_HPP
#define PIDLOCK_LOG_HPP

#include <pidlock/logging.hpp>

#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_channel_logger.hpp>
#include <boost/log/trivial.hpp>

namespace pidlock::detail {

using Logger = boost::log::sources::severity_channel_logger_mt<
    boost::log::trivial::severity_level, std::string>;

// The library's logger, created on first use so that a program that never
// logs pays nothing for Boost.Log at start-up.
Logger& logger();

// True if records of `level` pass the threshold.
bool log_enabled(boost::log::trivial::severity_level level) noexcept;

}  // namespace pidlock::detail

#define PIDLOCK_LOG(level)                                                      \
  if (!::pidlock::detail::log_enabled(::boost::log::trivial::level)) {          \
  } else                                                                        \
    BOOST_LOG_SEV(::pidlock::detail::logger(), ::boost::log::trivial::level)

#endif  // PIDLOCK_LOG_HPP
