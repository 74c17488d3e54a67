// The C API's results: pidlock's errors as errno values (the table in
// include/pidlock/pidlock.h) and messages copied into the caller's
// pidlock_error; and the log threshold, the other half of reporting.
#include "c_api/objects.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include <pidlock/logging.hpp>

namespace pidlock::c_api {
namespace {

// One errno value per pidlock::errc, chosen so that a C caller's habits
// work: EAGAIN (EWOULDBLOCK) is what flock(LOCK_NB) says of a held lock,
// ELOOP what open(O_NOFOLLOW) says of a symlink, EDEADLK what a second
// fcntl lock or pthread_mutex_lock says of a lock one holds already.
int errno_of_errc(errc e, bool waited) noexcept {
  switch (e) {
    case errc::held: return waited ? ETIMEDOUT : EAGAIN;
    case errc::already_held_by_this_process: return EDEADLK;
    case errc::not_a_regular_file: return ENOTSUP;
    case errc::symlink_at_lock_path: return ELOOP;
    case errc::hard_linked_lock_file: return EMLINK;
    case errc::too_many_attempts: return EBUSY;
    case errc::lock_lost: return ENOLCK;
    case errc::not_held: return EBADF;
    case errc::invalid_argument: return EINVAL;
    case errc::unsafe_data_directory: return EPERM;
    case errc::cancelled: return ECANCELED;
    case errc::not_a_socket: return ENOTSOCK;
    case errc::misconfigured: return EINVAL;
  }
  return EIO;
}

}  // namespace

int errno_of(const std::error_code& code, bool waited) noexcept {
  if (!code) return 0;
  if (code.category() == error_category()) return errno_of_errc(static_cast<errc>(code.value()), waited);
  if (code.category() == std::system_category() || code.category() == std::generic_category())
    return code.value() > 0 ? code.value() : EIO;
  return EIO;
}

void begin(pidlock_error* err) noexcept {
  if (err == nullptr) return;
  err->code = 0;
  err->message[0] = '\0';
}

int fail(pidlock_error* err, int code, const char* message) noexcept {
  if (err != nullptr) {
    err->code = code;
    std::strncpy(err->message, message, sizeof err->message - 1);
    err->message[sizeof err->message - 1] = '\0';
  }
  return code;
}

int null_argument(pidlock_error* err, const char* function) noexcept {
  char message[128];
  std::snprintf(message, sizeof message, "%s: a required argument is null", function);
  return fail(err, EINVAL, message);
}

int fail_with_current_exception(pidlock_error* err) noexcept {
  try {
    throw;
  } catch (const Error& e) {
    return fail(err, errno_of(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(err, ENOMEM, "out of memory");
  } catch (const std::system_error& e) {
    return fail(err, errno_of(e.code()), e.what());
  } catch (const std::exception& e) {
    return fail(err, EIO, e.what());
  } catch (...) {
    return fail(err, EIO, "unexpected failure");
  }
}

}  // namespace pidlock::c_api

static_assert(PIDLOCK_LOG_OFF == static_cast<int>(pidlock::LogThreshold::kOff) &&
              PIDLOCK_LOG_INFO == static_cast<int>(pidlock::LogThreshold::kInfo));

extern "C" void pidlock_set_log_level(pidlock_log_level level) {
  pidlock::set_log_threshold(static_cast<pidlock::LogThreshold>(level));
}

extern "C" void pidlock_set_log_handler(pidlock_log_handler handler, void* context) {
  if (handler == nullptr) {
    pidlock::set_log_handler(nullptr);
    return;
  }
  pidlock::set_log_handler([handler, context](pidlock::LogLevel level, std::string_view message) {
    const std::string text(message);  // the C side wants a terminated string
    handler(context, static_cast<pidlock_log_level>(level), text.c_str());
  });
}
