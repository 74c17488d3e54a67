#include "held_lock.hpp"

#include "core/identity.hpp"
#include "service_manager.hpp"
#include "posix/system.hpp"

#include <new>

namespace pidlock::detail {

HeldLock::HeldLock(boost::filesystem::path&& address, HolderRecord&& record, std::optional<Inspection>&& previous,
                   pid_t owner_pid)
    : path_(std::move(address)), previous_(std::move(previous)), owner_pid_(owner_pid), record_(std::move(record)) {}

bool HeldLock::acquired_here() const noexcept { return owner_pid_ == sys().getpid(); }

HolderRecord HeldLock::record() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return record_;
}

std::error_code HeldLock::claim() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (!active_.load()) return make_error_code(errc::not_held);
  if (acquired_here()) return {};
  Failure failure;
  guarded(failure, [&] {
    HolderRecord next = make_record(self_identity(), sys().getpid());
    next.data_directory = record_.data_directory;
    next.status = record_.status;
    next.without_kernel_lock = record_.without_kernel_lock;
    next.application_lines = record_.application_lines;
    failure = claim_locked(next);
    if (failure) return;
    record_ = std::move(next);
    owner_pid_ = sys().getpid();
  });
  if (failure) log_failure(failure, path_.string());
  return failure.code;
}

void HeldLock::notify_status(std::string_view status) noexcept {
  if (!notify_service_manager_.load()) return;
  try {
    notify_or_warn(status_notification(status), path_.string());
    if (announces_ready(status)) owes_stopping_.store(true);
    if (status == "stopping") owes_stopping_.store(false);
  } catch (const std::bad_alloc&) {
    // Only the notification is lost; the status is in the lock file.
  }
}

std::error_code HeldLock::release() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (!active_.exchange(false)) return make_error_code(errc::not_held);
  // Before the file goes: the service is stopping from now on.
  if (acquired_here() && owes_stopping_.exchange(false)) {
    try {
      notify_or_warn("STOPPING=1", path_.string());
    } catch (const std::bad_alloc&) {
    }
  }
  Failure failure;
  guarded(failure, [&] { failure = release_locked(); });
  return failure.code;
}

bool HeldLock::recheck(std::string* why, std::error_code* ec) noexcept {
  ec->clear();
  std::lock_guard<std::mutex> guard(mutex_);
  if (!active_.load()) {
    *why = "the lock was released";
    return false;
  }
  try {
    return recheck_locked(why, ec);
  } catch (const std::bad_alloc&) {
    *ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return false;
}

std::error_code HeldLock::update(const std::function<void(HolderRecord&)>& change) noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  Failure failure;
  guarded(failure, [&] {
    if (!active_.load()) {
      failure = pidlock_failure(errc::not_held, "update lock");
      return;
    }
    HolderRecord next = record_;
    change(next);
    failure = write_record(next);
    if (!failure) record_ = std::move(next);
  });
  if (failure) log_failure(failure, path_.string());
  return failure.code;
}

std::error_code HeldLock::touch() noexcept {
  std::lock_guard<std::mutex> guard(mutex_);
  if (!active_.load()) return make_error_code(errc::not_held);
  Failure failure;
  guarded(failure, [&] { failure = touch_locked(); });
  if (failure) log_failure(failure, path_.string());
  return failure.code;
}

std::unique_ptr<LossSource> HeldLock::watch_for_loss(Failure* failure) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (!active_.load()) {
    *failure = pidlock_failure(errc::not_held, "watch lock");
    return nullptr;
  }
  return watch_locked(failure);
}

bool valid_status(std::string_view status) noexcept {
  if (status.empty() || status.size() > kMaxStatusLength || status == kReleasedStatus) return false;
  for (unsigned char c : status)
    if (c <= ' ' || c >= 0x7f) return false;
  return true;
}

}  // namespace pidlock::detail
