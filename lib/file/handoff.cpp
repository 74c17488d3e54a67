#include "file/handoff.hpp"

#include "file/signs_of_life.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <vector>

namespace pidlock::detail {

namespace {

// The descriptors through which threads of this process wait announced.
// A child forked meanwhile gets copies, and an OFD lock lives as long as
// any descriptor of its open file description: the child would go on
// announcing a waiter that is not there (every holder would hand its file
// over to nobody and leave it on disk, marked released, naming a live
// pid), and once the waiter won, the child would share the new holder's
// lock (the lock would outlive the holder, and the holder's close would
// wake nobody). So in the child of every fork() these descriptors are
// pointed at /dev/null: the waiting thread does not exist there, and the
// numbers stay open for any code that still refers to them.
class AnnouncementRegistry {
 public:
  static void add(int fd) {
    static const bool registered = ::pthread_atfork(lock, unlock, detach_in_child) == 0;
    (void)registered;  // without the handler a child keeps its copies, as before
    std::lock_guard<std::mutex> guard(mutex());
    fds().push_back(fd);
  }
  static void remove(int fd) {
    std::lock_guard<std::mutex> guard(mutex());
    auto& v = fds();
    v.erase(std::remove(v.begin(), v.end(), fd), v.end());
  }

 private:
  // Never destroyed: a fork or a wait may come after static destruction.
  static std::mutex& mutex() {
    static auto* m = new std::mutex;
    return *m;
  }
  static std::vector<int>& fds() {
    static auto* v = new std::vector<int>;
    return *v;
  }
  // pthread_atfork: held across the fork, so that the child never sees
  // the list half-changed.
  static void lock() { mutex().lock(); }
  static void unlock() { mutex().unlock(); }
  // In the child, only async-signal-safe calls: open, dup3, close. Not
  // through the System seam, whose test doubles are not written for a
  // child between fork and exec.
  static void detach_in_child() {
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd : fds()) {
      if (null < 0 || ::dup3(null, fd, O_CLOEXEC) < 0) ::close(fd);
    }
    if (null >= 0) ::close(null);
    fds().clear();
    mutex().unlock();
  }
};

}  // namespace

// A descriptor leaves the registry before it closes, so that a child
// forked in between never points a number that another thread has reused
// at /dev/null.
void AnnouncementFd::adopt(UniqueFd fd) {
  reset();
  fd_ = std::move(fd);
  if (fd_.valid()) AnnouncementRegistry::add(fd_.get());
}

UniqueFd AnnouncementFd::take() {
  if (fd_.valid()) AnnouncementRegistry::remove(fd_.get());
  return std::move(fd_);
}

bool announce(const LockLocation& loc, const Examined& found, Announced* out) {
  int fd = open_at(AT_FDCWD, loc.at.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return false;
  UniqueFd rw(fd);
  struct stat st {};
  if (sys().fstat(fd, &st) != 0 || st.st_dev != found.file.st.st_dev || st.st_ino != found.file.st.st_ino)
    return false;
  if (sys().announce_waiter(fd) != 0) return false;
  out->fd.adopt(std::move(rw));
  out->st = st;
  return true;
}

// Its holder may have handed the lock to us just now; a file released for
// waiters that none of them takes would stay behind (stale, and taken over
// by the next acquire). So if the lock is free, the file released, and
// nobody else waits, remove it.
void leave_announced(const LockLocation& loc, Announced& a) {
  if (a.fd.valid() && sys().try_lock(a.fd.get()) == KernelLock::kAcquired &&
      sys().query_waiters(a.fd.get()) == LockQuery::kFree) {
    ParsedRecord parsed;
    if (!read_record(a.fd.get(), &parsed) && parsed.record && parsed.record->status == kReleasedStatus) {
      bool removed = false;
      (void)remove_if_same(loc, a.st, &removed);
    }
  }
  a.fd.reset();
}

namespace {

// We hold the announced file's lock: it is `found`'s now, judged.
Failure judge_won(const JudgeOptions& options, Announced& a, Examined* found) {
  found->file.fd = a.fd.take();
  found->locked_by_us = true;
  found->announced = true;
  found->kernel = KernelEvidence::kFree;
  if (sys().fstat(found->file.fd.get(), &found->file.st) != 0) return system_failure("stat lock file");
  ParsedRecord parsed;
  if (Failure f = read_record(found->file.fd.get(), &parsed)) return f;
  // We hold the lock, so a pidlock record's verdict rests on that. Without
  // our parent's pid (a system call) the pid rules judge a foreign record
  // naming our parent as held instead of unknown: both count as held.
  found->inspection = judge(parsed, KernelEvidence::kFree, options, self_identity(/*with_parent=*/false), false,
                            last_change(found->file.st));
  if (needs_signs_of_life(found->inspection))
    look_for_signs_of_life(found->file.fd.get(), found->file.st, found->inspection);
  return {};
}

}  // namespace

namespace {

// A file system (FUSE, some NFS servers) that takes a lock but refuses to
// wait for one: the waiter waits unannounced instead, as on a file it
// cannot open for writing.
bool queueing_unsupported(int err) {
  return err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL;
}

}  // namespace

// In the kernel's queue on the announced file until its lock is ours (a
// release or the holder's death grants it to the first waiter alone), or
// its name moves on, or the wait ends.
Failure wait_announced(const LockLocation& loc, const JudgeOptions& options, Waiter& waiter, Announced& a,
                       Examined* found, InPlace* outcome, Wake* ended) {
  // Only a change of the file's name is worth a wake now: hand-offs and
  // closes reach us through the queue.
  if (std::error_code ec = waiter.notifier()->watch_file(a.fd.get(), FileEvents::kRenamed))
    return Failure{ec, "watch lock file", ""};
  LockRequest request;  // ends (leaving the queue) before a.fd may close
  for (;;) {
    bool locked = false;
    const Wake w = waiter.queue_for_lock(a.fd.get(), request, &locked);
    if (locked) {
      *outcome = InPlace::kWon;
      return judge_won(options, a, found);
    }
    if (w == Wake::kError) {
      if (!queueing_unsupported(errno)) return system_failure("wait for lock file");
      a.fd.reset();
      *outcome = InPlace::kUnqueued;
      return {};
    }
    if (w != Wake::kEvent) {
      *ended = w;
      *outcome = InPlace::kEnded;
      return {};
    }
    NameLook look;
    if (Failure f = names_same_file(loc, a.st, &look)) return f;
    if (!look.same) {
      (void)request.stop();
      a.fd.reset();
      *outcome = InPlace::kMoved;
      return {};
    }
  }
}

bool waiter_announced(int fd) { return sys().query_waiters(fd) == LockQuery::kHeld; }

bool mark_released(int fd, const HolderRecord& record, off_t file_size, std::string* written) {
  HolderRecord released = record;
  released.status = std::string(kReleasedStatus);
  std::string bytes = format_record(released, static_cast<size_t>(file_size));
  if (!write_all_at(fd, bytes.data(), bytes.size(), 0)) return false;
  *written = std::move(bytes);
  return true;
}

}  // namespace pidlock::detail
