#include <pidlock/lock_handle.hpp>

#include "held_lock.hpp"
#include "log.hpp"
#include "process_table.hpp"

#include <fcntl.h>
#include <sys/stat.h>

namespace pidlock {

using namespace detail;

namespace {

const boost::filesystem::path kEmptyPath;
const std::optional<Inspection> kNoInspection;

// Does the path still name the handle's inode? ENOENT and another inode
// are "no" (with the reason in *why); other failures are errors. With
// `pin`, looks through an O_PATH descriptor of the name, left open in *pin
// (see release_state). With `named`, leaves the name's stat there.
Failure check_still_ours(const HeldLock& s, bool* ours, std::string* why, UniqueFd* pin = nullptr,
                         struct stat* named = nullptr) {
  struct stat local {};
  struct stat& st = named != nullptr ? *named : local;
  *ours = false;
  int rc = -1;
  if (pin != nullptr) {
    pin->reset(open_at(AT_FDCWD, s.path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (pin->valid()) rc = sys().fstat(pin->get(), &st);
  } else {
    rc = sys().fstatat(AT_FDCWD, s.path.c_str(), &st, AT_SYMLINK_NOFOLLOW);
  }
  if (rc != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      *why = "the lock file was deleted or renamed";
      return {};
    }
    return system_failure("stat lock file");
  }
  if (st.st_dev != s.dev || st.st_ino != s.ino) {
    *why = "the lock file was replaced by another file";
    return {};
  }
  *ours = true;
  return {};
}

// Rewrites the record in place (see update_status in the header).
Failure rewrite(HeldLock& s, const HolderRecord& next) {
  if (s.remote) {
    if (!s.active.load()) return pidlock_failure(errc::not_held, "update lock");
    if (std::error_code ec = s.remote->update(next)) return Failure{ec, "update lock", ""};
    s.record = next;
    return {};
  }
  if (!s.fd.valid()) return pidlock_failure(errc::not_held, "update lock file");
  bool ours = false;
  std::string why;
  if (Failure f = check_still_ours(s, &ours, &why)) return f;
  if (!ours) return pidlock_failure(errc::lock_lost, "update lock file", why + "; nothing was written");
  struct stat st {};
  if (sys().fstat(s.fd.get(), &st) != 0) return system_failure("stat lock file");
  // Never shorter than the file: a truncate would show readers an empty
  // or cut record, and a shorter write would leave old bytes at the end.
  std::string bytes = format_record(next, static_cast<size_t>(st.st_size));
  sys().checkpoint("update.before_write");
  if (!write_all_at(s.fd.get(), bytes.data(), bytes.size(), 0)) return system_failure("write lock file");
  sys().checkpoint("update.written");
  if (s.durable && fsync_fd(s.fd.get()) != 0) return system_failure("fsync lock file");
  s.record = next;
  return {};
}

std::error_code report(const Failure& f, const HeldLock& s) {
  if (f) log_failure(f, s.path.string());
  return f.code;
}

// Releases to a waiter, if one is announced (System::announce_waiter):
// instead of removing the file, marks the record released (status
// kReleasedStatus) and drops the kernel lock. The first waiter to lock the
// file then takes it over in place, and the others go on waiting on the
// same file -- no new inode, no re-examination, no watch to re-create.
// False, with the lock still held, when nobody waits or the hand-over
// cannot be done safely (the file is no longer ours, the write failed):
// release_state then releases the usual way, removing the file (or
// reporting the loss).
bool hand_over(HeldLock& state) {
  if (sys().query_waiters(state.fd.get()) != LockQuery::kHeld) return false;
  struct stat st {};  // the name's, which is our file's
  bool ours = false;
  std::string why;
  if (check_still_ours(state, &ours, &why, nullptr, &st) || !ours) return false;
  sys().checkpoint("release.verified");
  HolderRecord released = state.record;
  released.status = std::string(kReleasedStatus);
  // Never shorter than the file, like update_status: no truncate, no stale
  // tail. A write that fails part-way leaves a torn record; the usual
  // release then removes the file, and the waiters follow the name.
  std::string bytes = format_record(released, static_cast<size_t>(st.st_size));
  if (!write_all_at(state.fd.get(), bytes.data(), bytes.size(), 0)) return false;
  sys().checkpoint("release.handed_over");
  PIDLOCK_LOG(info) << "released lock file \"" << state.path.string() << "\" to a waiting process";
  // Out of the process table before the lock is free: another thread of
  // this process may be among the waiters.
  table_erase(state.dev, state.ino);
  // Unlock before the close: the close event wakes the waiters, and the
  // kernel sends it before it drops a closing description's locks.
  (void)sys().unlock(state.fd.get());
  // A description that a child shares stays open after our close, which
  // then reports nothing: wake the waiters by touching the file instead
  // (IN_ATTRIB).
  if (state.inheritable || forks_so_far() != state.forks_at_acquire) (void)sys().futimens(state.fd.get(), nullptr);
  return true;
}

}  // namespace

LockHandle::LockHandle() noexcept = default;
LockHandle::LockHandle(std::shared_ptr<HeldLock> state) noexcept : state_(std::move(state)) {}
LockHandle::~LockHandle() {
  if (state_) (void)release();  // errors are logged by release_state
}
LockHandle::LockHandle(LockHandle&& other) noexcept = default;
LockHandle& LockHandle::operator=(LockHandle&& other) noexcept {
  if (this != &other) {
    if (state_) (void)release();
    state_ = std::move(other.state_);
  }
  return *this;
}

bool LockHandle::held() const noexcept { return state_ != nullptr && state_->active.load(); }
const boost::filesystem::path& LockHandle::path() const noexcept { return state_ ? state_->path : kEmptyPath; }
const HolderRecord& LockHandle::record() const {
  if (!state_) throw Error(make_error_code(errc::not_held), "read record", "");
  return state_->record;
}
bool LockHandle::took_over() const noexcept { return state_ && state_->took_over; }
const std::optional<Inspection>& LockHandle::previous_holder() const noexcept {
  return state_ ? state_->previous : kNoInspection;
}
int LockHandle::native_handle() const noexcept { return state_ ? state_->fd.get() : -1; }
std::optional<std::uint64_t> LockHandle::fencing_token() const noexcept {
  if (state_ && state_->remote) return state_->remote->fencing_token();
  return std::nullopt;
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
  std::lock_guard<std::mutex> guard(state_->mutex);
  try {
    HolderRecord next = state_->record;
    next.status = std::string(status);
    ec = report(rewrite(*state_, next), *state_);
    if (!ec) {
      PIDLOCK_LOG(debug) << "lock file \"" << state_->path.string() << "\": status " << status;
    }
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

void LockHandle::update_status(std::string_view status) {
  std::error_code ec;
  update_status(status, ec);
  if (ec) throw Error(ec, "update status of lock file", state_ ? state_->path.string() : std::string());
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
  std::lock_guard<std::mutex> guard(state_->mutex);
  try {
    HolderRecord next = make_record(self_identity(), pid);
    next.data_directory = state_->record.data_directory;
    next.status = state_->record.status;
    next.without_kernel_lock = state_->record.without_kernel_lock;
    ec = report(rewrite(*state_, next), *state_);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

void LockHandle::update_holder_pid(pid_t pid) {
  std::error_code ec;
  update_holder_pid(pid, ec);
  if (ec) throw Error(ec, "update holder of lock file", state_ ? state_->path.string() : std::string());
}

bool LockHandle::recheck(std::error_code& ec) const noexcept {
  ec.clear();
  if (!state_) {
    ec = make_error_code(errc::not_held);
    return false;
  }
  std::string why;
  return recheck_state(*state_, &why, &ec);
}

namespace detail {

bool valid_status(std::string_view status) noexcept {
  if (status.empty() || status.size() > kMaxStatusLength || status == kReleasedStatus) return false;
  for (unsigned char c : status)
    if (c <= ' ' || c >= 0x7f) return false;
  return true;
}

bool recheck_state(HeldLock& state, std::string* why, std::error_code* ec) noexcept {
  ec->clear();
  std::lock_guard<std::mutex> guard(state.mutex);
  if (state.remote) {
    if (!state.active.load()) {
      *why = "the lock was released";
      return false;
    }
    return state.remote->recheck(why, ec);
  }
  if (!state.fd.valid()) {
    *why = "the lock was released";
    return false;
  }
  try {
    bool ours = false;
    if (Failure f = check_still_ours(state, &ours, why)) {
      *ec = f.code;
      return false;
    }
    if (ours) {
      ParsedRecord parsed;
      if (Failure f = read_record(state.fd.get(), state.path.string(), &parsed)) {
        *ec = f.code;
        return false;
      }
      if (parsed.record && parsed.record->pid == state.record.pid) return true;
      *why = "the lock file's record was overwritten by someone else";
    }
    PIDLOCK_LOG(warning) << "lost lock file \"" << state.path.string() << "\": " << *why;
  } catch (const std::bad_alloc&) {
    *ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return false;
}

}  // namespace detail

bool LockHandle::recheck() const {
  std::error_code ec;
  bool ours = recheck(ec);
  if (ec) throw Error(ec, "recheck lock file", state_ ? state_->path.string() : std::string());
  return ours;
}

std::error_code LockHandle::release() noexcept {
  if (!state_) return make_error_code(errc::not_held);
  std::shared_ptr<HeldLock> state = std::move(state_);
  return release_state(*state);
}

void LockHandle::touch(std::error_code& ec) noexcept {
  ec = state_ ? touch_state(*state_) : make_error_code(errc::not_held);
}

void LockHandle::touch() {
  std::error_code ec;
  touch(ec);
  if (ec) throw Error(ec, "touch lock file", state_ ? state_->path.string() : std::string());
}

namespace detail {

std::error_code touch_state(HeldLock& state) noexcept {
  std::lock_guard<std::mutex> guard(state.mutex);
  if (state.remote) return state.active.load() ? state.remote->touch() : make_error_code(errc::not_held);
  if (!state.fd.valid()) return make_error_code(errc::not_held);
  if (sys().futimens(state.fd.get(), nullptr) != 0) {
    Failure f = system_failure("touch lock file");
    log_failure(f, state.path.string());
    return f.code;
  }
  return {};
}

std::error_code release_state(HeldLock& state) noexcept {
  std::lock_guard<std::mutex> guard(state.mutex);
  if (state.remote) {
    if (!state.active.exchange(false)) return make_error_code(errc::not_held);
    // Like a lock file, a forked child never gives up its parent's lock.
    return state.owner_pid == sys().getpid() ? state.remote->release() : std::error_code();
  }
  if (!state.fd.valid()) return make_error_code(errc::not_held);
  state.active.store(false);
  Failure failure;
  // Holds the name's dentry until after our close. Without it, unlink()
  // of a file created through O_TMPFILE drops the dentry's last reference
  // and tears down every waiter's inotify watch on the spot, before the
  // waiters run (tmpfs: unlink ~4x slower, each hand-off ~45 us later);
  // with it, that happens at close(pin), after they were woken.
  UniqueFd pin;
  if (state.owner_pid == sys().getpid()) {
    try {
      if (hand_over(state)) {
        state.fd.reset();  // the waiters' watches report this close
        return {};
      }
      bool ours = false;
      std::string why;
      failure = check_still_ours(state, &ours, &why, &pin);
      if (!failure && ours) {
        sys().checkpoint("release.verified");
        // Remove the name before the kernel lock drops: a contender that
        // gets the lock afterwards finds either no file or its own.
        if (sys().unlinkat(AT_FDCWD, state.path.c_str(), 0) != 0 && errno != ENOENT)
          failure = system_failure("remove lock file");
        sys().checkpoint("release.removed");
      } else if (!failure) {
        failure = pidlock_failure(errc::lock_lost, "release lock file", why + "; nothing was removed");
      }
      if (!failure) {
        PIDLOCK_LOG(info) << "released lock file \"" << state.path.string() << "\"";
      } else if (failure.code == make_error_code(errc::lock_lost)) {
        PIDLOCK_LOG(warning) << describe_error(failure.code, failure.operation, state.path.string(),
                                               failure.detail);
      } else {
        log_failure(failure, state.path.string());
      }
    } catch (...) {
      failure = Failure{std::make_error_code(std::errc::not_enough_memory), "release lock file", ""};
    }
    table_erase(state.dev, state.ino);
  }
  // A forked child only closes its inherited descriptor: the parent's
  // description stays open, so the kernel lock stays the parent's.
  state.fd.reset();
  pin.reset();
  return failure.code;
}

}  // namespace detail

}  // namespace pidlock
