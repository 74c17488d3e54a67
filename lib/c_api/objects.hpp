// The C API's objects (include/pidlock/pidlock.h): each opaque C handle is
// a C++ object of the public API, and every C function runs its C++ call
// inside call(), which turns any exception into an errno value and a
// message in the caller's pidlock_error. No exception ever crosses into C.
#ifndef PIDLOCK_C_API_OBJECTS_HPP
#define PIDLOCK_C_API_OBJECTS_HPP

#include <pidlock/pidlock.h>
#include <pidlock/pidlock.hpp>

#include <optional>
#include <string>
#include <system_error>

struct pidlock_record {
  explicit pidlock_record(pidlock::HolderRecord record);
  pidlock::HolderRecord value;
  std::string port;  // line 4 of a PostgreSQL file, as text
};

struct pidlock_inspection {
  explicit pidlock_inspection(pidlock::Inspection inspection);
  pidlock::Inspection value;
  std::optional<pidlock_record> record;  // value.holder, for pidlock_inspection_record
};

struct pidlock_lock {
  pidlock::LockHandle handle;
  std::string path;                               // handle.path(), for pidlock_lock_path
  std::optional<pidlock_inspection> previous;     // handle.previous_holder()
};

struct pidlock_watch {
  pidlock::LockWatch value;
};

struct pidlock_canceller {
  pidlock::Canceller value;
};

namespace pidlock::c_api {

// The errno value for `code` (the table in pidlock.h). `waited`: the call
// waited with a timeout, so errc::held means ETIMEDOUT.
int errno_of(const std::error_code& code, bool waited = false) noexcept;

// Clears *err (if any) for a new call.
void begin(pidlock_error* err) noexcept;
// Records a failure in *err (if any) and returns `code`.
int fail(pidlock_error* err, int code, const char* message) noexcept;
// The failure of a null argument.
int null_argument(pidlock_error* err, const char* function) noexcept;
// The errno value of the exception being handled, with its message in *err.
int fail_with_current_exception(pidlock_error* err) noexcept;

// Runs `f` (returning 0 or an errno value) for a C entry point.
template <typename F>
int call(pidlock_error* err, F&& f) noexcept {
  begin(err);
  try {
    return f();
  } catch (...) {
    return fail_with_current_exception(err);
  }
}

// The C++ form of judging options; null means the defaults.
JudgeOptions judge_options(const pidlock_judge_options* options);

// The process's one LockManager for the C API. Never destroyed: a lock the
// program did not release stays to the kernel (see docs/guide.md).
LockManager& manager();

}  // namespace pidlock::c_api

#endif  // PIDLOCK_C_API_OBJECTS_HPP
