// A held lock file: the descriptor that carries the kernel lock, and the
// inode it locks. Implements the held-lock interface (held_lock.hpp).
//
// Releasing removes only what is still ours, and only while no other
// process holds the lock:
//  * the path must still name our inode, and the file must still hold the
//    record we last wrote (same holder: pid and start time); otherwise
//    nothing is removed and the release reports errc::lock_lost;
//  * a lock whose open file description another process may share (an
//    inheritable lock, or one held across a fork) lives as long as any of
//    them holds it: the release closes our descriptor, then takes the lock
//    again through a new one, and removes the file only if that succeeds;
//  * with a waiter announced, the file is handed over in place instead of
//    removed (handoff.hpp);
//  * a process that inherited the lock through fork() and never claimed it
//    (claim()) only closes its descriptor.
#ifndef PIDLOCK_FILE_FILE_LOCK_HPP
#define PIDLOCK_FILE_FILE_LOCK_HPP

#include "held_lock.hpp"
#include "posix/syscalls.hpp"

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace pidlock::detail {

// How a lock file was acquired, as its FileLock needs to know it.
struct FileLockSetup {
  boost::filesystem::path path;  // absolute: the canonical folder / name
  HolderRecord record;
  std::string written;  // the bytes of `record` as they are in the file
  std::optional<Inspection> previous;  // the stale lock taken over, if any
  pid_t owner_pid = 0;
  bool durable = true;
  bool inheritable = false;
};

class FileLock final : public HeldLock {
 public:
  // Takes `fd` (kernel-locked, holding setup.written, already in the
  // process table) and the inode `st` describes.
  FileLock(FileLockSetup&& setup, UniqueFd fd, const struct stat& st);

  ~FileLock() override;

  int native_handle() const noexcept override { return fd_number_.load(); }

  // In a forked child that is about to acquire, or wait for, the lock file
  // `st` describes: gives up the share of that lock it inherited from its
  // parent, if it has one. Holding it, the child would wait for itself.
  // True if a share was given up.
  static bool give_up_inherited_share(const struct stat& st);

 private:
  enum class Ownership {
    kOurs,               // the path names our inode, which holds our record
    kLost,               // deleted, renamed, replaced or overwritten: *why says which
    kLeftToInheritor,    // a child of ours that shares the lock claimed it
  };

  Failure release_locked() override;
  bool recheck_locked(std::string* why, std::error_code* ec) override;
  Failure write_record(const HolderRecord& next) override;
  Failure touch_locked() override;
  std::unique_ptr<LossSource> watch_locked(Failure* failure) override;
  Failure claim_locked(const HolderRecord& next) override;

  // Is the file still ours? *size is its size when it is.
  Failure ownership(Ownership* out, std::string* why, off_t* size);
  // Does the file hold our record: the bytes we wrote, or a record naming
  // the same holder?
  Failure holds_our_record(int fd, bool* ours, off_t* size);
  bool claimed_by_our_child();
  // The release of a lock that only this process holds.
  Failure release_alone(off_t size);
  // The release of a lock another process may share (see the top).
  Failure release_shared(off_t size);
  // Its end, once the lock is ours again through `again`.
  Failure release_regained(UniqueFd again, bool marked);
  // Could another process share our open file description?
  bool shared() const noexcept;
  void close_fd() noexcept;

  UniqueFd fd_;
  std::atomic<int> fd_number_;  // fd_.get(), readable from any thread
  struct stat st_ {};  // the locked inode (st_dev, st_ino)
  std::string written_;  // the record's bytes as we last wrote them
  bool share_given_up_ = false;  // see give_up_inherited_share()
  const bool durable_;
  // Could another process have the lock's open file description (an
  // inheritable lock, or a fork since the acquire)?
  const bool inheritable_;
  const std::uint64_t forks_at_acquire_;
  // Links of the registry of every FileLock of this process (intrusive, so
  // that an acquire allocates no node; see file_lock.cpp).
  FileLock* registry_prev_ = nullptr;
  FileLock* registry_next_ = nullptr;
  friend class FileLockRegistry;
};

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_FILE_LOCK_HPP
