#include "core/failure.hpp"

#include "core/log.hpp"

#include <boost/filesystem/exception.hpp>

#include <new>

namespace pidlock::detail {

void log_failure(const Failure& failure, const std::string& path) {
  PIDLOCK_LOG(error) << describe_error(failure.code, failure.operation, path, failure.detail);
}

void throw_failure(const Failure& failure, const std::string& path) {
  throw Error(failure.code, failure.operation, path, failure.detail);
}

Failure failure_of_current_exception() noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return Failure{std::make_error_code(std::errc::not_enough_memory), "allocate", ""};
  } catch (const boost::filesystem::filesystem_error& e) {
    try {
      return Failure{std::error_code(e.code().value(), std::system_category()), "resolve path", e.what()};
    } catch (...) {
    }
  } catch (const std::exception& e) {
    try {
      return Failure{std::make_error_code(std::errc::io_error), "unexpected failure", e.what()};
    } catch (...) {
    }
  } catch (...) {
  }
  // An exception of unknown type, or no memory left to describe one.
  return Failure{std::make_error_code(std::errc::io_error), {}, {}};
}

}  // namespace pidlock::detail
