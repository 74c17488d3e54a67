#include "file/file_lock.hpp"

#include "core/log.hpp"
#include "file/handoff.hpp"
#include "file/lock_location.hpp"
#include "file/process_table.hpp"
#include "posix/notifier.hpp"

#include "file/examine.hpp"

#include <fcntl.h>

#include <unistd.h>

#include <mutex>
#include <thread>

namespace pidlock::detail {

// Every FileLock of this process, and in a forked child those of its
// parent: the child's memory holds copies of them, and their descriptors
// are still open, each a share of its parent's lock. A list threaded
// through the locks themselves: entering and leaving it allocates nothing.
class FileLockRegistry {
 public:
  static std::mutex& mutex() {
    static auto* m = new std::mutex;  // never destroyed: used at exit
    return *m;
  }
  // The caller holds mutex().
  static void insert(FileLock* lock) {
    lock->registry_next_ = head_;
    if (head_ != nullptr) head_->registry_prev_ = lock;
    head_ = lock;
  }
  static void erase(FileLock* lock) {
    if (lock->registry_prev_ != nullptr) lock->registry_prev_->registry_next_ = lock->registry_next_;
    else head_ = lock->registry_next_;
    if (lock->registry_next_ != nullptr) lock->registry_next_->registry_prev_ = lock->registry_prev_;
    lock->registry_prev_ = lock->registry_next_ = nullptr;
  }
  template <typename Visit>
  static void for_each(Visit visit) {
    for (FileLock* lock = head_; lock != nullptr;) {
      FileLock* next = lock->registry_next_;
      visit(lock);
      lock = next;
    }
  }

 private:
  static inline FileLock* head_ = nullptr;
};

FileLock::FileLock(FileLockSetup&& setup, UniqueFd fd, const struct stat& st)
    : HeldLock(std::move(setup.path), std::move(setup.record), std::move(setup.previous), setup.owner_pid),
      fd_(std::move(fd)),
      fd_number_(fd_.get()),
      st_(st),
      written_(std::move(setup.written)),
      durable_(setup.durable),
      inheritable_(setup.inheritable),
      forks_at_acquire_(forks_so_far()) {
  std::lock_guard<std::mutex> guard(FileLockRegistry::mutex());
  FileLockRegistry::insert(this);
}

FileLock::~FileLock() {
  std::lock_guard<std::mutex> guard(FileLockRegistry::mutex());
  FileLockRegistry::erase(this);
}

bool FileLock::give_up_inherited_share(const struct stat& st) {
  std::lock_guard<std::mutex> guard(FileLockRegistry::mutex());
  bool gave_up = false;
  FileLockRegistry::for_each([&](FileLock* lock) {
    gave_up |= lock->with_mutex([&] {
      if (lock->acquired_here() || lock->share_given_up_ || !lock->fd_.valid() || lock->st_.st_dev != st.st_dev ||
          lock->st_.st_ino != st.st_ino)
        return false;
      lock->share_given_up_ = true;
      // The number stays open, on /dev/null, for the inherited handle that
      // still refers to it; its release closes it.
      UniqueFd null(open_at(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC));
      if (!null.valid() || ::dup3(null.get(), lock->fd_.get(), O_CLOEXEC) < 0) lock->close_fd();
      PIDLOCK_LOG(debug) << "gave up the share of lock file \"" << lock->path().string()
                         << "\" inherited from the parent process, to acquire it";
      return true;
    });
  });
  return gave_up;
}

bool FileLock::shared() const noexcept { return inheritable_ || forks_so_far() != forks_at_acquire_; }

void FileLock::close_fd() noexcept {
  fd_number_.store(-1);
  fd_.reset();
}

namespace {

// Do two records name the same holder: the same pid, started at the same
// moment of the same boot?
bool same_holder(const HolderRecord& a, const HolderRecord& b) {
  return a.pid == b.pid && a.process_start_ticks == b.process_start_ticks && a.boot_id == b.boot_id;
}

}  // namespace

Failure FileLock::holds_our_record(int fd, bool* ours, off_t* size) {
  *ours = false;
  char buf[kMaxRecordBytes + 1];
  const ssize_t n = read_at(fd, buf, sizeof buf, 0);
  if (n < 0) return system_failure("read lock file");
  *size = static_cast<off_t>(n);
  if (std::string_view(buf, static_cast<size_t>(n)) == written_) {
    *ours = true;
    return {};
  }
  // Rewritten since our last write: by a process that shares our
  // descriptor (a forked child's update_status, still naming our holder),
  // by one that claimed the lock, or by someone else. A rewrite in
  // progress reads as torn: read_record reads again.
  ParsedRecord parsed;
  if (Failure f = read_record(fd, &parsed)) return f;
  *ours = parsed.record && same_holder(*parsed.record, current_record());
  return {};
}

Failure FileLock::ownership(Ownership* out, std::string* why, off_t* size) {
  *out = Ownership::kLost;
  NameLook look;
  if (Failure f = names_same_file(AT_FDCWD, path().c_str(), st_, &look)) return f;
  if (!look.same) {
    *why = look.why();
    return {};
  }
  bool ours = false;
  if (Failure f = holds_our_record(fd_.get(), &ours, size)) return f;
  if (ours) {
    *out = Ownership::kOurs;
  } else if (shared() && claimed_by_our_child()) {
    *out = Ownership::kLeftToInheritor;
  } else {
    *why = "the lock file's record was overwritten by someone else";
  }
  return {};
}

// Does the file's record name a child of ours that shares the lock and
// claimed it (LockHandle::claim): a live process whose parent we are, and
// which started when the record says?
bool FileLock::claimed_by_our_child() {
  ParsedRecord parsed;
  if (read_record(fd_.get(), &parsed) || !parsed.record || parsed.record->format != RecordFormat::kPidlock)
    return false;
  ProcessStat st;
  return sys().process_stat(parsed.record->pid, &st) && st.parent == sys().getpid() &&
         parsed.record->process_start_ticks == st.start_ticks;
}

Failure FileLock::release_locked() {
  // A process that inherited the lock and never claimed it only closes its
  // descriptor: the lock stays with the description's other holders.
  if (!acquired_here()) {
    close_fd();
    return {};
  }
  Failure failure;
  try {
    Ownership own = Ownership::kLost;
    std::string why;
    off_t size = 0;
    failure = ownership(&own, &why, &size);
    if (!failure && own == Ownership::kOurs) {
      failure = shared() ? release_shared(size) : release_alone(size);
    } else if (!failure && own == Ownership::kLost) {
      failure = pidlock_failure(errc::lock_lost, "release lock file", why + "; nothing was removed");
    } else if (!failure) {
      PIDLOCK_LOG(info) << "left lock file \"" << path().string()
                        << "\" to the process that inherited and claimed it; nothing was removed";
    }
  } catch (const std::bad_alloc&) {
    failure = Failure{std::make_error_code(std::errc::not_enough_memory), "release lock file", ""};
  }
  table_erase(st_.st_dev, st_.st_ino);
  close_fd();
  if (failure.code == make_error_code(errc::lock_lost)) {
    PIDLOCK_LOG(warning) << describe_error(failure.code, failure.operation, path().string(), failure.detail);
  } else if (failure) {
    log_failure(failure, path().string());
  }
  return failure;
}

// Only we hold the lock: hand the file to an announced waiter, or remove
// it, before our close drops the lock.
Failure FileLock::release_alone(off_t size) {
  sys().checkpoint("release.verified");
  std::string marked;
  if (waiter_announced(fd_.get()) && mark_released(fd_.get(), current_record(), size, &marked)) {
    written_ = std::move(marked);
    sys().checkpoint("release.handed_over");
    PIDLOCK_LOG(info) << "released lock file \"" << path().string() << "\" to a waiting process";
    // Out of the process table before the lock is free: another thread of
    // this process may be among the waiters.
    table_erase(st_.st_dev, st_.st_ino);
    // Unlock before the close: the close event wakes the waiters, and the
    // kernel sends it before it drops a closing description's locks.
    (void)sys().unlock(fd_.get());
    return {};
  }
  // Remove the name before the kernel lock drops: a contender that gets
  // the lock afterwards finds either no file or its own.
  if (sys().unlinkat(AT_FDCWD, path().c_str(), 0) != 0 && errno != ENOENT) return system_failure("remove lock file");
  sys().checkpoint("release.removed");
  PIDLOCK_LOG(info) << "released lock file \"" << path().string() << "\"";
  return {};
}

// Another process may share our open file description, and with it the
// kernel lock: a forked child, or the program an inheritable lock was
// passed to (a job's background child, say). Unlocking would drop the lock
// for them too, and removing the file would let the next acquire start
// beside them. So we close our descriptor only, then try the lock through
// a new one: if we get it, nobody else holds it, and we hand the file over
// or remove it as usual; if not, it stays, held by whoever shares it.
Failure FileLock::release_shared(off_t size) {
  const bool waiters = waiter_announced(fd_.get());
  // Marked released first: whoever takes the lock next -- a waiter that
  // wins it the moment we close, or anyone once the last process sharing
  // it lets go -- takes the file over with no recovery due: its owner
  // released it.
  std::string bytes;
  const bool marked = mark_released(fd_.get(), current_record(), size, &bytes);
  if (marked) written_ = std::move(bytes);
  table_erase(st_.st_dev, st_.st_ino);
  close_fd();
  UniqueFd again(open_at(AT_FDCWD, path().c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!again.valid()) return errno == ENOENT ? Failure{} : system_failure("open lock file");
  struct stat now {};
  if (sys().fstat(again.get(), &now) != 0) return system_failure("stat lock file");
  if (now.st_dev != st_.st_dev || now.st_ino != st_.st_ino) return {};  // taken over and replaced already
  for (int tries = 0;; ++tries) {
    switch (sys().try_lock(again.get())) {
      case KernelLock::kAcquired: return release_regained(std::move(again), marked);
      case KernelLock::kUnsupported: return release_regained(std::move(again), marked);
      case KernelLock::kError: return system_failure("lock lock file");
      case KernelLock::kHeldByOther: break;
    }
    // Held by a waiter we released it to, or by a process that shares the
    // description: a child between fork() and exec() lets go in a moment.
    if (waiters || tries >= kContestedRetries) break;
    std::this_thread::sleep_for(kContestedPause);
  }
  PIDLOCK_LOG(info) << "released lock file \"" << path().string()
                    << "\"; it stays held by a waiter it was handed to, or by a process that inherited it";
  return {};
}

// We hold the lock again through `again`, so nobody else does.
Failure FileLock::release_regained(UniqueFd again, bool marked) {
  if (marked && waiter_announced(again.get())) {
    (void)sys().unlock(again.get());
    PIDLOCK_LOG(info) << "released lock file \"" << path().string() << "\" to a waiting process";
    return {};  // closing `again` wakes the waiters
  }
  bool ours = false;
  off_t size = 0;
  if (Failure f = holds_our_record(again.get(), &ours, &size)) return f;
  NameLook look;
  if (Failure f = names_same_file(AT_FDCWD, path().c_str(), st_, &look)) return f;
  if (!ours || !look.same) return {};  // no longer ours to remove
  if (sys().unlinkat(AT_FDCWD, path().c_str(), 0) != 0 && errno != ENOENT) return system_failure("remove lock file");
  PIDLOCK_LOG(info) << "released lock file \"" << path().string() << "\"";
  return {};
}

bool FileLock::recheck_locked(std::string* why, std::error_code* ec) {
  NameLook look;
  if (Failure f = names_same_file(AT_FDCWD, path().c_str(), st_, &look)) {
    *ec = f.code;
    return false;
  }
  if (look.same) {
    ParsedRecord parsed;
    if (Failure f = read_record(fd_.get(), &parsed)) {
      *ec = f.code;
      return false;
    }
    if (parsed.record && parsed.record->pid == current_record().pid) return true;
    *why = "the lock file's record was overwritten by someone else";
  } else {
    *why = look.why();
  }
  PIDLOCK_LOG(warning) << "lost lock file \"" << path().string() << "\": " << *why;
  return false;
}

Failure FileLock::write_record(const HolderRecord& next) {
  NameLook look;
  if (Failure f = names_same_file(AT_FDCWD, path().c_str(), st_, &look)) return f;
  if (!look.same)
    return pidlock_failure(errc::lock_lost, "update lock file", std::string(look.why()) + "; nothing was written");
  struct stat st {};
  if (sys().fstat(fd_.get(), &st) != 0) return system_failure("stat lock file");
  // Never shorter than the file: a truncate would show readers an empty
  // or cut record, and a shorter write would leave old bytes at the end.
  std::string bytes = format_record(next, static_cast<size_t>(st.st_size));
  sys().checkpoint("update.before_write");
  if (!write_all_at(fd_.get(), bytes.data(), bytes.size(), 0)) return system_failure("write lock file");
  written_ = std::move(bytes);
  sys().checkpoint("update.written");
  if (durable_ && fsync_fd(fd_.get()) != 0) return system_failure("fsync lock file");
  return {};
}

Failure FileLock::claim_locked(const HolderRecord& next) {
  if (Failure f = write_record(next)) return f;
  (void)table_insert(st_.st_dev, st_.st_ino);  // a forked child's table starts empty
  return {};
}

Failure FileLock::touch_locked() {
  if (sys().futimens(fd_.get(), nullptr) != 0) return system_failure("touch lock file");
  return {};
}

namespace {

// News of a lock file's loss: inotify watches of its folder entry (deleted,
// renamed, replaced) and of the file itself (written, re-linked).
class FileLossSource final : public LossSource {
 public:
  int fd() const noexcept override { return notifier_.fd(); }
  bool consume() override { return notifier_.drain(); }

  Failure start(const boost::filesystem::path& path, int lock_fd) {
    if (notifier_.error()) return Failure{notifier_.error(), "create inotify instance", ""};
    boost::filesystem::path parent = path.parent_path();
    UniqueFd folder(open_at(AT_FDCWD, parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!folder.valid()) return system_failure("open lock folder");
    if (auto ec = notifier_.watch_folder(folder.get(), path.filename().string()))
      return Failure{ec, "watch lock folder", ""};
    if (auto ec = notifier_.watch_file(lock_fd, FileEvents::kChanged)) return Failure{ec, "watch lock file", ""};
    return {};
  }

 private:
  ChangeNotifier notifier_;
};

}  // namespace

std::unique_ptr<LossSource> FileLock::watch_locked(Failure* failure) {
  auto source = std::make_unique<FileLossSource>();
  if ((*failure = source->start(path(), fd_.get()))) return nullptr;
  return source;
}

}  // namespace pidlock::detail
