// LockHandle: the public face of a held lock; the store's HeldLock does
// the work (held_lock.hpp).
#include <pidlock/lock_handle.hpp>

#include "core/identity.hpp"
#include "core/log.hpp"
#include "held_lock.hpp"

namespace pidlock {

using namespace detail;

namespace {

const Path kEmptyPath;
const std::optional<Inspection> kNoInspection;

}  // namespace

LockHandle::LockHandle() noexcept = default;
LockHandle::LockHandle(std::shared_ptr<HeldLock> state) noexcept : state_(std::move(state)) {}
LockHandle::~LockHandle() {
  if (held()) (void)release();  // errors are logged by the lock
}
LockHandle::LockHandle(LockHandle&& other) noexcept = default;
LockHandle& LockHandle::operator=(LockHandle&& other) noexcept {
  if (this != &other) {
    if (held()) (void)release();
    state_ = std::move(other.state_);
  }
  return *this;
}

// A released handle keeps its state (so that a call racing the release in
// another thread never sees it vanish) but answers like an empty one.
bool LockHandle::held() const noexcept { return state_ != nullptr && state_->active(); }
const Path& LockHandle::path() const noexcept { return held() ? state_->path() : kEmptyPath; }
HolderRecord LockHandle::record() const {
  if (!held()) throw Error(make_error_code(errc::not_held), "read record", "");
  return state_->record();
}
bool LockHandle::took_over() const noexcept { return held() && state_->took_over(); }
const std::optional<Inspection>& LockHandle::previous_holder() const noexcept {
  return held() ? state_->previous_holder() : kNoInspection;
}
int LockHandle::native_handle() const noexcept { return held() ? state_->native_handle() : -1; }
std::optional<std::uint64_t> LockHandle::fencing_token() const noexcept {
  return held() ? state_->fencing_token() : std::nullopt;
}
std::optional<std::chrono::steady_clock::time_point> LockHandle::safe_until() const noexcept {
  return held() ? state_->safe_until() : std::nullopt;
}

void LockHandle::update_status(std::string_view status, std::error_code& ec) noexcept {
  if (!state_) {
    ec = make_error_code(errc::not_held);
    return;
  }
  if (!valid_status(status)) {
    ec = make_error_code(errc::invalid_argument);
    return;
  }
  ec = state_->update([&](HolderRecord& next) { next.status = std::string(status); });
  if (!ec) {
    PIDLOCK_LOG(debug) << "lock file \"" << state_->path().string() << "\": status " << status;
    state_->notify_status(status);
  }
}

void LockHandle::update_status(std::string_view status) {
  std::error_code ec;
  update_status(status, ec);
  if (ec) throw Error(ec, "update status of lock file", path().string());
}

void LockHandle::set_line(std::size_t line, std::string_view text, std::error_code& ec) noexcept {
  if (!state_) {
    ec = make_error_code(errc::not_held);
    return;
  }
  HolderRecord probe;
  if (!set_application_line(probe, line, text)) {
    ec = make_error_code(errc::invalid_argument);
    return;
  }
  ec = state_->update([&](HolderRecord& next) { set_application_line(next, line, text); });
}

void LockHandle::set_line(std::size_t line, std::string_view text) {
  std::error_code ec;
  set_line(line, text, ec);
  if (ec) throw Error(ec, "set line " + std::to_string(line) + " of lock file", path().string());
}

void LockHandle::update_holder_pid(pid_t pid, std::error_code& ec) noexcept {
  if (!state_) {
    ec = make_error_code(errc::not_held);
    return;
  }
  if (pid <= 0) {
    ec = make_error_code(errc::invalid_argument);
    return;
  }
  ec = state_->update([&](HolderRecord& next) {
    HolderRecord named = make_record(self_identity(), pid);
    named.data_directory = next.data_directory;
    named.status = next.status;
    named.without_kernel_lock = next.without_kernel_lock;
    named.application_lines = std::move(next.application_lines);
    next = std::move(named);
  });
}

void LockHandle::update_holder_pid(pid_t pid) {
  std::error_code ec;
  update_holder_pid(pid, ec);
  if (ec) throw Error(ec, "update holder of lock file", path().string());
}

bool LockHandle::recheck(std::error_code& ec) const noexcept {
  ec.clear();
  if (!state_) {
    ec = make_error_code(errc::not_held);
    return false;
  }
  std::string why;
  return state_->recheck(&why, &ec);
}

bool LockHandle::recheck() const {
  std::error_code ec;
  bool ours = recheck(ec);
  if (ec) throw Error(ec, "recheck lock file", path().string());
  return ours;
}

std::error_code LockHandle::release() noexcept {
  if (!state_) return make_error_code(errc::not_held);
  return state_->release();
}

void LockHandle::claim(std::error_code& ec) noexcept { ec = state_ ? state_->claim() : make_error_code(errc::not_held); }

void LockHandle::claim() {
  std::error_code ec;
  claim(ec);
  if (ec) throw Error(ec, "claim lock file", state_ ? state_->path().string() : std::string());
}

void LockHandle::touch(std::error_code& ec) noexcept {
  ec = state_ ? state_->touch() : make_error_code(errc::not_held);
}

void LockHandle::touch() {
  std::error_code ec;
  touch(ec);
  if (ec) throw Error(ec, "touch lock file", path().string());
}

}  // namespace pidlock
