// The C API's loss watch: LockWatch's descriptor for a C event loop.
#include "c_api/objects.hpp"

#include <cerrno>
#include <chrono>

using pidlock::c_api::call;
using pidlock::c_api::null_argument;

extern "C" {

int pidlock_watch_new(const pidlock_lock* lock, long recheck_interval_ms, pidlock_watch** watch,
                      pidlock_error* err) {
  return call(err, [&] {
    if (lock == nullptr || watch == nullptr) return null_argument(err, "pidlock_watch_new");
    const std::chrono::milliseconds interval =
        recheck_interval_ms > 0 ? std::chrono::milliseconds(recheck_interval_ms) : pidlock::kDefaultRecheckInterval;
    *watch = new pidlock_watch{pidlock::LockWatch(lock->handle, interval)};
    return 0;
  });
}

int pidlock_watch_fd(const pidlock_watch* watch) { return watch->value.native_handle(); }

int pidlock_watch_check(pidlock_watch* watch, pidlock_error* err) {
  return call(err, [&] {
    if (watch == nullptr) return null_argument(err, "pidlock_watch_check");
    if (watch->value.check()) return 0;
    return pidlock::c_api::fail(err, ENOLCK, ("lock lost: " + watch->value.loss_reason()).c_str());
  });
}

void pidlock_watch_free(pidlock_watch* watch) { delete watch; }

}  // extern "C"
