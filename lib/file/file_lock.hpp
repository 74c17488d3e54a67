// A held lock file: the descriptor that carries the kernel lock, and the
// inode it locks. Implements the held-lock interface (held_lock.hpp).
#ifndef PIDLOCK_FILE_FILE_LOCK_HPP
#define PIDLOCK_FILE_FILE_LOCK_HPP

#include "held_lock.hpp"
#include "posix/syscalls.hpp"

#include <sys/stat.h>

#include <cstdint>

namespace pidlock::detail {

// How a lock file was acquired, as its FileLock needs to know it.
struct FileLockSetup {
  boost::filesystem::path path;  // absolute: the canonical folder / name
  HolderRecord record;
  std::optional<Inspection> previous;  // the stale lock taken over, if any
  pid_t owner_pid = 0;
  bool durable = true;
  bool inheritable = false;
};

class FileLock final : public HeldLock {
 public:
  // Takes `fd` (kernel-locked, holding setup.record, already in the process
  // table) and the inode `st` describes.
  FileLock(FileLockSetup&& setup, UniqueFd fd, const struct stat& st);

  int native_handle() const noexcept override { return fd_.get(); }

 private:
  Failure release_locked() override;
  bool recheck_locked(std::string* why, std::error_code* ec) override;
  Failure write_record(const HolderRecord& next) override;
  Failure touch_locked() override;
  std::unique_ptr<LossSource> watch_locked(Failure* failure) override;

  // Removes the file if the path still names it, before the descriptor
  // (and so the kernel lock) goes.
  Failure remove_named_file(UniqueFd* pin);

  UniqueFd fd_;
  struct stat st_ {};  // the locked inode (st_dev, st_ino)
  const bool durable_;
  // Could another process have the lock's open file description (an
  // inheritable lock, or a fork since the acquire)? Then closing ours does
  // not tell the waiters that the lock is free (see hand_over).
  const bool inheritable_;
  const std::uint64_t forks_at_acquire_;
};

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_FILE_LOCK_HPP
