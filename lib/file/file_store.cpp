// The lock-file store: locks at local paths (see lock_manager.hpp for the
// design, and docs/how-it-works.md for the map of this folder).
#include "store.hpp"

#include "core/log.hpp"
#include "file/acquirer.hpp"
#include "file/examine.hpp"
#include "file/file_lock.hpp"
#include "file/lock_location.hpp"
#include "file/waiter.hpp"

#include <fcntl.h>

namespace pidlock::detail {

namespace {

// Gives up on a path whose file keeps changing while we look.
constexpr int kMaxLooks = 100;

// Is there nothing at `loc` (ENOENT)? Other failures count as "something":
// the caller looks again.
bool nothing_at(const LockLocation& loc) {
  struct stat st {};
  return sys().fstatat(AT_FDCWD, loc.at.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
}

class FileStore final : public Store {
 public:
  std::shared_ptr<HeldLock> acquire(const boost::filesystem::path& path, const AcquireOptions& options,
                                    Failure& failure, Inspection& held) override {
    Acquirer acquirer(path, options);
    return acquirer.run(&failure, &held);
  }

  Inspection inspect(const boost::filesystem::path& path, const JudgeOptions& options, Failure& failure) override {
    LockLocation loc;
    if ((failure = open_location(path, &loc))) return {};
    for (int look = 0; look < kMaxLooks; ++look) {
      Examined found;
      if ((failure = examine(loc, options, /*take_lock=*/false, &found))) return {};
      if (!found.file.vanished) return found.inspection;
      if (nothing_at(loc)) return free_inspection();
    }
    failure = pidlock_failure(errc::too_many_attempts, "inspect lock file", "the file kept changing");
    return {};
  }

  Inspection wait_until_free(const boost::filesystem::path& path, std::optional<std::chrono::milliseconds> timeout,
                             const Canceller* canceller, const JudgeOptions& options, Failure& failure) override;

  BreakResult break_stale(const boost::filesystem::path& path, const JudgeOptions& options,
                          Failure& failure) override;
};

Inspection FileStore::wait_until_free(const boost::filesystem::path& path,
                                      std::optional<std::chrono::milliseconds> timeout, const Canceller* canceller,
                                      const JudgeOptions& options, Failure& failure) {
  LockLocation loc;
  if ((failure = open_location(path, &loc))) return {};
  Waiter waiter(timeout, canceller, std::chrono::milliseconds(1000));
  if ((failure = waiter.start())) return {};
  for (;;) {
    Examined found;
    if ((failure = examine(loc, options, /*take_lock=*/false, &found, waiter.notifier()))) return {};
    if (found.file.vanished) {
      if (nothing_at(loc)) return free_inspection();
      continue;
    }
    if (found.inspection.verdict == Verdict::kStale) return found.inspection;
    if (found.kernel == KernelEvidence::kHeld && FileLock::give_up_inherited_share(found.file.st)) continue;
    if (waiter.settle_after_close(found.kernel)) continue;
    switch (waiter.sleep(found)) {
      case Wake::kEvent: continue;
      case Wake::kTimeout:
        failure = pidlock_failure(errc::held, "wait for lock file", "timed out");
        return found.inspection;
      case Wake::kCancelled:
        failure = pidlock_failure(errc::cancelled, "wait for lock file");
        return found.inspection;
      case Wake::kError:
        failure = system_failure("wait for lock file");
        return found.inspection;
    }
  }
}

// Removes the file only if it is stale, by the take-over's rule: we hold
// its kernel lock (or the file system has none) and it is still the file
// at the path.
BreakResult FileStore::break_stale(const boost::filesystem::path& path, const JudgeOptions& options,
                                   Failure& failure) {
  BreakResult result;
  LockLocation loc;
  if ((failure = open_location(path, &loc))) return result;
  for (int look = 0; look < kMaxLooks; ++look) {
    Examined found;
    if ((failure = examine(loc, options, /*take_lock=*/true, &found))) return result;
    if (found.file.vanished) {
      result.inspection = free_inspection();
      return result;
    }
    result.inspection = found.inspection;
    if (found.inspection.verdict != Verdict::kStale) return result;
    if (found.file.st.st_nlink > 1) {
      failure = pidlock_failure(errc::hard_linked_lock_file, "break lock file",
                                "it has " + std::to_string(found.file.st.st_nlink) + " links");
      return result;
    }
    if (!found.locked_by_us && found.kernel != KernelEvidence::kNone) {
      errno = found.write_denied_errno();
      failure = system_failure("break lock file", "the file cannot be opened for writing, which a safe removal needs");
      return result;
    }
    if ((failure = remove_if_same(loc, found.file.st, &result.removed))) return result;
    if (result.removed) {
      PIDLOCK_LOG(warning) << "removed stale lock file \"" << loc.path << "\" of "
                           << (found.inspection.holder ? describe_holder(*found.inspection.holder)
                                                       : std::string("an unknown holder"))
                           << " [" << to_string(found.inspection.reason) << ": " << found.inspection.detail << "]";
      return result;
    }
    // Replaced while we judged it: judge the new file.
  }
  failure = pidlock_failure(errc::too_many_attempts, "break lock file", "the file kept changing");
  return result;
}

}  // namespace

Store& file_store() {
  static FileStore* store = new FileStore;  // never destroyed: used at exit
  return *store;
}

}  // namespace pidlock::detail
