// The only file of the library that uses Boost.Log (see log.hpp for why).
#include "core/log.hpp"

#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_channel_logger.hpp>
#include <boost/log/trivial.hpp>

namespace pidlock::detail {
namespace {

using Logger = boost::log::sources::severity_channel_logger_mt<boost::log::trivial::severity_level, std::string>;

Logger& logger() {
  // Never destroyed: locks released by static destructors at exit still
  // log, possibly after this function's statics would have been destroyed.
  static Logger* instance = new Logger(boost::log::keywords::channel = std::string(kLogChannel));
  return *instance;
}

boost::log::trivial::severity_level severity(LogThreshold level) {
  switch (level) {
    case LogThreshold::kTrace: return boost::log::trivial::trace;
    case LogThreshold::kDebug: return boost::log::trivial::debug;
    case LogThreshold::kInfo: return boost::log::trivial::info;
    case LogThreshold::kWarning: return boost::log::trivial::warning;
    case LogThreshold::kError:
    case LogThreshold::kOff: break;
  }
  return boost::log::trivial::error;
}

}  // namespace

void emit_record(LogThreshold level, const std::string& message) noexcept {
  try {
    BOOST_LOG_SEV(logger(), severity(level)) << message;
  } catch (...) {
    // Logging must never turn a lock operation into a failure.
  }
}

}  // namespace pidlock::detail
