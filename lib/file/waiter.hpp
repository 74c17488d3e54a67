// Sleeping between looks at a held lock file, until the kernel reports a
// change of the file last examined: unlinked, renamed or replaced (its link
// count or name changes); its last writable descriptor closed (release or
// death of the holder); or, for holders known only by pid, the process's
// exit (pidfd). Used by waiting acquires and wait_until_free.
#ifndef PIDLOCK_FILE_WAITER_HPP
#define PIDLOCK_FILE_WAITER_HPP

#include "core/failure.hpp"
#include "file/examine.hpp"
#include "posix/lock_request.hpp"
#include "posix/notifier.hpp"

#include <chrono>
#include <memory>
#include <optional>

namespace pidlock {
class Canceller;
}

namespace pidlock::detail {

class Waiter {
 public:
  Waiter(std::optional<std::chrono::milliseconds> timeout, const Canceller* canceller,
         std::chrono::milliseconds recheck_interval);
  // The file watch stays behind, retired (see ChangeNotifier::retire()):
  // removing it here would put tens of microseconds into every hand-off.
  ~Waiter() { notifier_->retire(); }
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Call before the first look. No folder watch: every change of what the
  // lock's name refers to reaches the watch examine() puts on the file it
  // looked at -- unlink, rename away and replacement by rename change the
  // file's link count (IN_ATTRIB), release and death close it
  // (IN_CLOSE_WRITE) -- and a folder watch would wake every waiter for
  // every other file of a busy folder (/tmp, /run).
  Failure start();

  ChangeNotifier* notifier() { return notifier_.get(); }

  // Sleeps until something may have changed. `found` is what the last look
  // saw; its holder's pid is watched when only pid evidence keeps it held.
  // Closes found's descriptor first: a waiter must not sit on the kernel
  // lock of a foreign file it took only to judge it.
  Wake sleep(Examined& found);

  // Sleeps on the file watch alone: for a waiter that announced itself on
  // the file it watches (see handoff.hpp), whose holder holds its kernel
  // lock. Every hand-off, release and death closes the holder's
  // description (IN_CLOSE_WRITE); unlink and rename change the file.
  Wake sleep_announced();

  // Waits in the kernel's queue for the holder lock of `fd` (a waiter's
  // own writable description of the file it watches): the lock is granted
  // to waiters in the order they asked, and a release or a holder's death
  // wakes the first of them alone. kEvent with *locked true: the lock is
  // ours. A wait without deadline or canceller blocks in the call itself;
  // one with either keeps its place in the queue through `request` (a
  // thread of its own) and sleeps on it, the canceller and the file watch,
  // and returns kEvent with *locked false when the watch or the periodic
  // recheck says the file's name must be looked at again -- `request`
  // keeps its place meanwhile; kTimeout, kCancelled and kError end it.
  Wake queue_for_lock(int fd, LockRequest& request, bool* locked);

  // The kernel reports a close (IN_CLOSE_WRITE) before it drops the closing
  // description's lock (__fput: fsnotify_close, then locks_remove_file), so
  // a look right after the holder's death can still find the lock held --
  // and no further event comes. After such a wake, a lock still held is
  // looked at again shortly (kContestedRetries x kContestedPause), not
  // slept on.
  bool settle_after_close(KernelEvidence kernel);

  // Did the last wake come from the recheck timer or a change of the file
  // other than a close -- so that its name must be looked at again?
  bool name_may_have_changed() const { return rechecking_ || notifier_->saw_change(); }
  bool saw_close() const { return !rechecking_ && notifier_->saw_close(); }

 private:
  Wake sleep_for_events(int extra_fd = -1);
  static std::shared_ptr<ChangeNotifier> thread_notifier();
  static bool readable(int fd);

  std::shared_ptr<ChangeNotifier> notifier_;
  const Canceller* canceller_;
  std::chrono::milliseconds recheck_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  UniqueFd pidfd_;
  pid_t pid_watched_ = 0;
  int settles_ = 0;
  bool rechecking_ = false;
};

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_WAITER_HPP
