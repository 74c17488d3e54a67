// Hand-off in place: both sides of the protocol by which a releasing
// holder gives its lock file to a waiting process without removing it.
//
//  * A waiter that may open the file for writing announces itself with a
//    shared OFD lock on the file's second byte (System::announce_waiter);
//    the holder's lock covers the first byte, so the two never conflict.
//    It keeps that descriptor and its announcement from holder to holder,
//    and waits in the kernel's queue for the holder's byte (F_OFD_SETLKW),
//    which grants the lock to waiters in the order they asked and wakes
//    only the first at each release.
//  * A releasing holder that finds a waiter announced (one F_OFD_GETLK)
//    does not remove the file: it rewrites the record in place with status
//    kReleasedStatus, drops its lock and closes. The kernel grants the lock
//    to the first waiter in its queue, which takes the file over in place, with
//    took_over() false. A holder that dies instead leaves its own record,
//    which the first waiter takes over as a stale lock.
#ifndef PIDLOCK_FILE_HANDOFF_HPP
#define PIDLOCK_FILE_HANDOFF_HPP

#include <pidlock/holder_record.hpp>
#include <pidlock/options.hpp>

#include "core/failure.hpp"
#include "file/examine.hpp"
#include "file/lock_location.hpp"
#include "file/waiter.hpp"

#include <boost/filesystem/path.hpp>

#include <sys/stat.h>

namespace pidlock::detail {

// --- the waiter's side ---

// A descriptor of the announced file, registered (see handoff.cpp) while it
// stands for a waiter, so that a child forked meanwhile drops its copy.
class AnnouncementFd {
 public:
  AnnouncementFd() = default;
  ~AnnouncementFd() { reset(); }
  AnnouncementFd(const AnnouncementFd&) = delete;
  AnnouncementFd& operator=(const AnnouncementFd&) = delete;

  void adopt(UniqueFd fd);
  int get() const noexcept { return fd_.get(); }
  bool valid() const noexcept { return fd_.valid(); }
  void reset() { UniqueFd closed_here = take(); }
  // The descriptor, no longer a waiter's: ours holds the lock now.
  UniqueFd take();

 private:
  UniqueFd fd_;
};

// A held lock file on which this process waits announced. `fd` is
// writable, as an exclusive OFD lock needs.
struct Announced {
  AnnouncementFd fd;
  struct stat st {};
};

// Opens the file `found` looked at for writing and announces us on it.
// False, with nothing announced, where that cannot be done (no write
// permission, the file replaced meanwhile, a holder that locks the whole
// file): the waiter then waits the usual way.
bool announce(const LockLocation& loc, const Examined& found, Announced* out);

// Gives up an announcement, removing a file released to us that nobody
// else waits for.
void leave_announced(const LockLocation& loc, Announced& a);

enum class InPlace {
  kWon,    // we hold the announced file's lock; `found` describes it, judged
  kMoved,  // its name names another file, or none: look again
  kUnqueued,  // the file system locks but will not queue (F_OFD_SETLKW fails
              // with ENOLCK, EOPNOTSUPP, ...): wait unannounced
  kEnded,  // the wait ended (deadline, cancel, error of the sleep): *ended says how
};

// Waits in the kernel's queue on the announced file until its holder
// releases or dies and the lock is ours, or its name moves on, or the wait
// ends (deadline, cancel).
Failure wait_announced(const LockLocation& loc, const JudgeOptions& options, Waiter& waiter, Announced& a,
                       Examined* found, InPlace* outcome, Wake* ended);

// --- the holder's side (see FileLock::release_locked) ---

// Is a waiter announced on the holder's file `fd`?
bool waiter_announced(int fd);

// Marks the record released for the announced waiters: rewrites it in
// place with the status kReleasedStatus, never shorter than `file_size`
// (no truncate, no stale tail), and leaves the bytes written in *written.
// False if the write failed; a write that fails part-way leaves a torn
// record, and the caller then releases the usual way.
bool mark_released(int fd, const HolderRecord& record, off_t file_size, std::string* written);

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_HANDOFF_HPP
