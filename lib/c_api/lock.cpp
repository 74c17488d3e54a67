// The C API's held locks: acquire, release and the calls on a held lock,
// each a thin wrapper of LockManager and LockHandle.
#include "c_api/objects.hpp"

#include <cerrno>
#include <memory>

using namespace pidlock;
using pidlock::c_api::call;
using pidlock::c_api::null_argument;

namespace pidlock::c_api {

LockManager& manager() {
  static LockManager* const instance = new LockManager;
  return *instance;
}

JudgeOptions judge_options(const pidlock_judge_options* options) {
  JudgeOptions judge;
  if (options == nullptr) return judge;
  if (options->permission_denied_means_dead) judge.permission_denied = PermissionDeniedPolicy::kAssumeDead;
  if (options->own_pids != nullptr)
    judge.own_pids.assign(options->own_pids, options->own_pids + options->own_pid_count);
  return judge;
}

namespace {

AcquireOptions acquire_options(const pidlock_acquire_options* options) {
  pidlock_acquire_options defaults;
  pidlock_acquire_options_init(&defaults);
  const pidlock_acquire_options& o = options != nullptr ? *options : defaults;
  AcquireOptions cpp;
  cpp.judge = judge_options(&o.judge);
  if (o.data_directory != nullptr) cpp.data_directory = o.data_directory;
  if (o.status != nullptr) cpp.status = o.status;
  cpp.wait = o.wait != 0;
  if (o.timeout_ms >= 0) cpp.timeout = std::chrono::milliseconds(o.timeout_ms);
  if (o.recheck_interval_ms > 0) cpp.recheck_interval = std::chrono::milliseconds(o.recheck_interval_ms);
  cpp.mode = static_cast<mode_t>(o.mode);
  if (o.group >= 0) cpp.group = static_cast<gid_t>(o.group);
  cpp.durable = o.durable != 0;
  cpp.inheritable = o.inheritable != 0;
  cpp.max_attempts = o.max_attempts;
  cpp.canceller = o.canceller != nullptr ? &o.canceller->value : nullptr;
  return cpp;
}

// A held lock refused for being held: EAGAIN, or ETIMEDOUT after a timed
// wait, with the holder's inspection for the caller if it asked.
int held(const LockHeldError& e, bool waited, pidlock_inspection** holder, pidlock_error* err) {
  if (holder != nullptr) *holder = new pidlock_inspection(e.holder());
  return fail(err, errno_of(e.code(), waited), e.what());
}

}  // namespace
}  // namespace pidlock::c_api

extern "C" {

void pidlock_judge_options_init(pidlock_judge_options* options) {
  options->permission_denied_means_dead = 0;
  options->own_pids = nullptr;
  options->own_pid_count = 0;
}

void pidlock_acquire_options_init(pidlock_acquire_options* options) {
  const AcquireOptions cpp;
  pidlock_judge_options_init(&options->judge);
  options->data_directory = nullptr;
  options->status = nullptr;
  options->wait = 0;
  options->timeout_ms = -1;
  options->recheck_interval_ms = static_cast<long>(cpp.recheck_interval.count());
  options->mode = cpp.mode;
  options->group = -1;
  options->durable = cpp.durable ? 1 : 0;
  options->inheritable = 0;
  options->max_attempts = cpp.max_attempts;
  options->canceller = nullptr;
}

int pidlock_acquire(const char* path, const pidlock_acquire_options* options, pidlock_lock** lock,
                    pidlock_inspection** holder, pidlock_error* err) {
  return call(err, [&] {
    if (holder != nullptr) *holder = nullptr;
    if (path == nullptr || lock == nullptr) return null_argument(err, "pidlock_acquire");
    *lock = nullptr;
    const AcquireOptions cpp = pidlock::c_api::acquire_options(options);
    auto made = std::make_unique<pidlock_lock>();
    try {
      made->handle = pidlock::c_api::manager().acquire(path, cpp);
    } catch (const LockHeldError& e) {
      return pidlock::c_api::held(e, cpp.timeout.has_value(), holder, err);
    }
    made->path = made->handle.path().string();
    if (const std::optional<Inspection>& previous = made->handle.previous_holder()) made->previous.emplace(*previous);
    *lock = made.release();
    return 0;
  });
}

int pidlock_release(pidlock_lock* lock, pidlock_error* err) {
  pidlock::c_api::begin(err);
  if (lock == nullptr) return 0;
  std::unique_ptr<pidlock_lock> owned(lock);
  std::error_code ec = owned->handle.release();
  if (!ec) return 0;
  return pidlock::c_api::fail(err, pidlock::c_api::errno_of(ec),
                              describe_error(ec, "release lock file", owned->path).c_str());
}

const char* pidlock_lock_path(const pidlock_lock* lock) { return lock->path.c_str(); }
int pidlock_lock_fd(const pidlock_lock* lock) { return lock->handle.native_handle(); }
int pidlock_took_over(const pidlock_lock* lock) { return lock->previous.has_value() ? 1 : 0; }
const pidlock_inspection* pidlock_previous_holder(const pidlock_lock* lock) {
  return lock->previous ? &*lock->previous : nullptr;
}

int pidlock_lock_record(const pidlock_lock* lock, pidlock_record** record, pidlock_error* err) {
  return call(err, [&] {
    if (lock == nullptr || record == nullptr) return null_argument(err, "pidlock_lock_record");
    *record = new pidlock_record(lock->handle.record());
    return 0;
  });
}

int pidlock_update_status(pidlock_lock* lock, const char* status, pidlock_error* err) {
  return call(err, [&] {
    if (lock == nullptr || status == nullptr) return null_argument(err, "pidlock_update_status");
    lock->handle.update_status(status);
    return 0;
  });
}

int pidlock_set_line(pidlock_lock* lock, unsigned line, const char* text, pidlock_error* err) {
  return call(err, [&] {
    if (lock == nullptr || text == nullptr) return null_argument(err, "pidlock_set_line");
    lock->handle.set_line(line, text);
    return 0;
  });
}

int pidlock_update_holder_pid(pidlock_lock* lock, pid_t pid, pidlock_error* err) {
  return call(err, [&] {
    if (lock == nullptr) return null_argument(err, "pidlock_update_holder_pid");
    lock->handle.update_holder_pid(pid);
    return 0;
  });
}

int pidlock_claim(pidlock_lock* lock, pidlock_error* err) {
  return call(err, [&] {
    if (lock == nullptr) return null_argument(err, "pidlock_claim");
    lock->handle.claim();
    return 0;
  });
}

int pidlock_touch(pidlock_lock* lock, pidlock_error* err) {
  return call(err, [&] {
    if (lock == nullptr) return null_argument(err, "pidlock_touch");
    lock->handle.touch();
    return 0;
  });
}

int pidlock_recheck(const pidlock_lock* lock, pidlock_error* err) {
  return call(err, [&] {
    if (lock == nullptr) return null_argument(err, "pidlock_recheck");
    if (lock->handle.recheck()) return 0;
    const std::error_code lost = make_error_code(errc::lock_lost);
    return pidlock::c_api::fail(err, ENOLCK, describe_error(lost, "recheck lock file", lock->path).c_str());
  });
}

int pidlock_canceller_new(pidlock_canceller** canceller, pidlock_error* err) {
  return call(err, [&] {
    if (canceller == nullptr) return null_argument(err, "pidlock_canceller_new");
    *canceller = new pidlock_canceller;
    return 0;
  });
}

void pidlock_cancel(pidlock_canceller* canceller) { canceller->value.cancel(); }
void pidlock_canceller_free(pidlock_canceller* canceller) { delete canceller; }

}  // extern "C"
