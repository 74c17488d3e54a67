#include "file/file_lock.hpp"

#include "core/log.hpp"
#include "file/handoff.hpp"
#include "file/lock_location.hpp"
#include "file/process_table.hpp"
#include "posix/notifier.hpp"

#include <fcntl.h>

namespace pidlock::detail {

FileLock::FileLock(FileLockSetup&& setup, UniqueFd fd, const struct stat& st)
    : HeldLock(std::move(setup.path), std::move(setup.record), std::move(setup.previous), setup.owner_pid),
      fd_(std::move(fd)),
      st_(st),
      durable_(setup.durable),
      inheritable_(setup.inheritable),
      forks_at_acquire_(forks_so_far()) {}

Failure FileLock::release_locked() {
  Failure failure;
  // Holds the name's dentry until after our close. Without it, unlink()
  // of a file created through O_TMPFILE drops the dentry's last reference
  // and tears down every waiter's inotify watch on the spot, before the
  // waiters run (tmpfs: unlink ~4x slower, each hand-off ~45 us later);
  // with it, that happens at close(pin), after they were woken.
  UniqueFd pin;
  // A forked child only closes its inherited descriptor: the parent's
  // description stays open, so the kernel lock stays the parent's.
  if (acquired_here()) {
    const bool shared = inheritable_ || forks_so_far() != forks_at_acquire_;
    bool handed = false;
    try {
      handed = hand_over(fd_.get(), path(), st_, record(), shared);
    } catch (const std::bad_alloc&) {
      // Nothing was changed yet: release the usual way.
    }
    if (handed) {
      fd_.reset();  // the waiters' watches report this close
      return {};
    }
    failure = remove_named_file(&pin);
    table_erase(st_.st_dev, st_.st_ino);
  }
  fd_.reset();
  pin.reset();
  return failure;
}

Failure FileLock::remove_named_file(UniqueFd* pin) {
  Failure failure;
  try {
    NameLook look;
    failure = names_same_file(AT_FDCWD, path().c_str(), st_, &look, pin);
    if (!failure && look.same) {
      sys().checkpoint("release.verified");
      // Remove the name before the kernel lock drops: a contender that
      // gets the lock afterwards finds either no file or its own.
      if (sys().unlinkat(AT_FDCWD, path().c_str(), 0) != 0 && errno != ENOENT)
        failure = system_failure("remove lock file");
      sys().checkpoint("release.removed");
    } else if (!failure) {
      failure = pidlock_failure(errc::lock_lost, "release lock file", std::string(look.why()) + "; nothing was removed");
    }
    if (!failure) {
      PIDLOCK_LOG(info) << "released lock file \"" << path().string() << "\"";
    } else if (failure.code == make_error_code(errc::lock_lost)) {
      PIDLOCK_LOG(warning) << describe_error(failure.code, failure.operation, path().string(), failure.detail);
    } else {
      log_failure(failure, path().string());
    }
  } catch (...) {
    failure = Failure{std::make_error_code(std::errc::not_enough_memory), "release lock file", ""};
  }
  return failure;
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
    if (parsed.record && parsed.record->pid == record().pid) return true;
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
  sys().checkpoint("update.written");
  if (durable_ && fsync_fd(fd_.get()) != 0) return system_failure("fsync lock file");
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
