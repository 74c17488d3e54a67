// A failed step of an operation, with what a person needs to act on it, and
// the one way errno becomes such a failure: one error type, one
// errno-to-error function, always with context. Every layer below the
// public API reports through Failure; the public calls turn it into a
// std::error_code or a thrown pidlock::Error naming the path.
#ifndef PIDLOCK_CORE_FAILURE_HPP
#define PIDLOCK_CORE_FAILURE_HPP

#include <pidlock/error.hpp>

#include "posix/syscalls.hpp"

#include <string>
#include <system_error>

namespace pidlock::detail {

struct Failure {
  std::error_code code;
  std::string operation;  // "open lock file", ...
  std::string detail;     // an optional sentence: why, or what to do
  explicit operator bool() const noexcept { return static_cast<bool>(code); }
};

// The failure of the system call that just failed (errno, saved first).
inline Failure system_failure(std::string operation, std::string detail = {}) {
  return Failure{last_error(), std::move(operation), std::move(detail)};
}
inline Failure pidlock_failure(errc code, std::string operation, std::string detail = {}) {
  return Failure{make_error_code(code), std::move(operation), std::move(detail)};
}

// Logs the failure at error level.
void log_failure(const Failure& failure, const std::string& path);
// Throws the failure as pidlock::Error (LockHeldError is thrown by the caller,
// which has the holder's inspection).
[[noreturn]] void throw_failure(const Failure& failure, const std::string& path);

// The failure that the exception being handled stands for (std::bad_alloc,
// a Boost.Filesystem error, anything else). Call only inside a catch block.
Failure failure_of_current_exception() noexcept;

// Runs `f` (which reports through `failure`) for a noexcept entry point,
// turning stray exceptions into failures.
template <typename F>
void guarded(Failure& failure, F&& f) noexcept {
  try {
    f();
  } catch (...) {
    failure = failure_of_current_exception();
  }
}

}  // namespace pidlock::detail

#endif  // PIDLOCK_CORE_FAILURE_HPP
