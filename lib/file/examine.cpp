#include "file/examine.hpp"

#include "file/process_table.hpp"
#include "file/signs_of_life.hpp"
#include "posix/notifier.hpp"

#include <fcntl.h>

namespace pidlock::detail {

namespace {

bool young_and_empty(const struct stat& st) {
  return st.st_size == 0 && sys().now() - static_cast<std::int64_t>(st.st_mtim.tv_sec) < kYoungFile;
}

Inspection in_creation_inspection() {
  Inspection i;
  i.verdict = Verdict::kUnknown;
  i.reason = Reason::kEmptyFile;
  i.detail = "the file is empty, young and not locked: a process is probably creating it (an empty file older "
             "than " + std::to_string(kYoungFile) + " s that nobody locks is stale)";
  return i;
}

// The verdict on a file this process holds (its inode is in the table).
Failure judge_own(const Examined& found, Inspection* out) {
  ParsedRecord parsed;
  if (Failure f = read_record(found.file.fd.get(), &parsed)) return f;
  out->verdict = Verdict::kHeld;
  out->reason = Reason::kHeldByThisProcess;
  out->detail = found.held_by_other_thread ? "another thread of this process holds the lock"
                                           : "this process holds the lock";
  out->holder = parsed.record;
  out->kernel_lock_evidence = true;
  return {};
}

// Takes the kernel lock of a file whose lock looked free: an OFD write
// lock needs a writable description, opened here and kept in `out` if it
// still names the inode examined.
Failure take_free_lock(const LockLocation& loc, Examined* out) {
  int fd = open_at(AT_FDCWD, loc.at.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    out->file = ExistingFile{};
    out->file.vanished = true;
    return {};
  }
  if (fd < 0 && errno != EACCES && errno != EROFS && errno != EPERM) return system_failure("open lock file");
  if (fd < 0) {
    out->no_write_errno = errno;
    return {};
  }
  UniqueFd rw(fd);
  struct stat st {};
  if (sys().fstat(fd, &st) != 0) return system_failure("stat lock file");
  if (st.st_dev != out->file.st.st_dev || st.st_ino != out->file.st.st_ino) {
    out->file = ExistingFile{};
    out->file.vanished = true;  // replaced meanwhile: look again
    return {};
  }
  out->file.fd = std::move(rw);
  switch (sys().try_lock(fd)) {
    case KernelLock::kAcquired:
      out->locked_by_us = true;
      // Its size as of now: the last holder may have rewritten the record
      // (update_status, or the mark of a release to waiters) since the
      // stat above, and a take-over must cover all of it.
      if (sys().fstat(fd, &out->file.st) != 0) return system_failure("stat lock file");
      break;
    case KernelLock::kHeldByOther: out->kernel = KernelEvidence::kHeld; break;
    case KernelLock::kUnsupported: out->kernel = KernelEvidence::kNone; break;
    case KernelLock::kError: return system_failure("lock existing lock file");
  }
  return {};
}

}  // namespace

Failure examine(const LockLocation& loc, const JudgeOptions& options, bool take_lock, Examined* out,
                ChangeNotifier* notifier, bool creation_grace) {
  Failure f = open_existing(loc, &out->file);
  if (f || out->file.vanished) return f;
  if (notifier != nullptr) {
    // Watch the inode before asking about its lock: a release or death after
    // the question then always produces an event, so a waiter cannot sleep
    // through it.
    if (std::error_code ec = notifier->watch_file(out->file.fd.get(), FileEvents::kHolderGone))
      return Failure{ec, "watch lock file", ""};
  }
  switch (table_lookup(out->file.st.st_dev, out->file.st.st_ino)) {
    case TableEntry::kAbsent: break;
    case TableEntry::kOtherThread: out->held_by_other_thread = true; return judge_own(*out, &out->inspection);
    case TableEntry::kThisThread: return judge_own(*out, &out->inspection);
  }
  // Ask first, through the read-only descriptor: a held lock (the common
  // case for waiters) then costs no writable open, whose close would wake
  // every waiter watching the file (see linux_notifier.cpp).
  switch (sys().query_lock(out->file.fd.get())) {
    case LockQuery::kFree: out->kernel = KernelEvidence::kFree; break;
    case LockQuery::kHeld: out->kernel = KernelEvidence::kHeld; break;
    case LockQuery::kUnsupported: out->kernel = KernelEvidence::kNone; break;
    case LockQuery::kError: return system_failure("query kernel lock of lock file");
  }
  // A file in creation is not locked to be judged (its creator's lock
  // would fail on ours), nor searched for signs of life: its creator has it
  // open, and the search costs a scan of /proc. An empty file that another
  // program flock()s (flock(1), Python's filelock) is that program's.
  if (creation_grace && out->kernel == KernelEvidence::kFree && young_and_empty(out->file.st) &&
      sys().query_flock(out->file.fd.get()) != LockQuery::kHeld) {
    out->in_creation = true;
    out->inspection = in_creation_inspection();
    return {};
  }
  if (take_lock && out->kernel == KernelEvidence::kFree) {
    if (Failure lf = take_free_lock(loc, out)) return lf;
    if (out->file.vanished) return {};
  }
  ParsedRecord parsed;
  if (Failure rf = read_record(out->file.fd.get(), &parsed)) return rf;
  out->inspection = judge(parsed, out->kernel, options, self_identity(), /*describe_holder_pid=*/notifier == nullptr,
                          last_change(out->file.st));
  // Stale by its record alone is not proof enough (signs_of_life.hpp).
  if (needs_signs_of_life(out->inspection))
    look_for_signs_of_life(out->file.fd.get(), out->file.st, out->inspection);
  return {};
}

std::int64_t last_change(const struct stat& st) { return st.st_mtim.tv_sec; }

Inspection free_inspection() {
  Inspection i;
  i.verdict = Verdict::kFree;
  i.reason = Reason::kNoLockFile;
  i.detail = "there is no lock file";
  return i;
}

}  // namespace pidlock::detail
