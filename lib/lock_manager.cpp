#include <pidlock/canceller.hpp>
#include <pidlock/lock_manager.hpp>

#include "held_lock.hpp"
#include "log.hpp"
#include "posix/notifier.hpp"
#include "process_table.hpp"

#include <boost/filesystem/operations.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <cstdio>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>
#include <cctype>
#include <chrono>
#include <thread>

namespace pidlock {
namespace detail {

void log_failure(const Failure& failure, const std::string& path) {
  PIDLOCK_LOG(error) << describe_error(failure.code, failure.operation, path, failure.detail);
}

void throw_failure(const Failure& failure, const std::string& path) {
  throw Error(failure.code, failure.operation, path, failure.detail);
}

Failure open_location(const boost::filesystem::path& path, LockLocation* out) {
  out->path = path.string();
  if (path.empty()) return pidlock_failure(errc::invalid_argument, "acquire", "the lock path is empty");
  boost::filesystem::path name = path.filename();
  if (name.empty() || name == "." || name == ".." || name == "/")
    return pidlock_failure(errc::invalid_argument, "acquire", "the lock path does not name a file");
  out->name = name.string();
  boost::filesystem::path folder = path.parent_path();
  if (folder.empty()) folder = ".";
  int fd = open_at(AT_FDCWD, folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return system_failure("open lock folder", folder.string());
  out->dir.reset(fd);
  return {};
}

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

Failure refuse_kind(mode_t mode) {
  if (S_ISLNK(mode))
    return pidlock_failure(errc::symlink_at_lock_path, "open lock file",
                           "refusing to follow it; remove the link or point pidlock at the real path");
  return pidlock_failure(errc::not_a_regular_file, "open lock file",
                         std::string("the path is ") + file_kind(mode) + "; nothing was opened or removed");
}

}  // namespace

Failure open_existing(const LockLocation& loc, ExistingFile* out) {
  *out = ExistingFile{};
  // lstat first: opening a device or FIFO could block or have side effects
  // (a tape rewinds on open). O_NOFOLLOW|O_NONBLOCK below closes the race
  // with a swap after this check.
  struct stat lst {};
  if (sys().fstatat(loc.dir.get(), loc.name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      out->vanished = true;
      return {};
    }
    return system_failure("stat lock file");
  }
  if (!S_ISREG(lst.st_mode)) return refuse_kind(lst.st_mode);
  int fd = open_at(loc.dir.get(), loc.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      out->vanished = true;
      return {};
    }
    if (errno == ELOOP) return refuse_kind(S_IFLNK);
    return system_failure("open lock file");
  }
  out->fd.reset(fd);
  if (sys().fstat(fd, &out->st) != 0) return system_failure("stat lock file");
  if (!S_ISREG(out->st.st_mode)) return refuse_kind(out->st.st_mode);
  if (out->st.st_dev != lst.st_dev || out->st.st_ino != lst.st_ino) {
    // Replaced between lstat and open: look again.
    *out = ExistingFile{};
    out->vanished = true;
  }
  return {};
}

Failure read_record(int fd, const std::string& /*path*/, ParsedRecord* out) {
  // A holder rewrites its record with one pwrite; a read that overlaps it
  // can see a mix of old and new bytes, which the checksum exposes. Such a
  // window is microseconds long, so a few quick re-reads settle it; a
  // record still torn after that was damaged for good (its writer died
  // mid-write) and is judged as unparsable.
  char buf[kMaxRecordBytes + 1];
  for (int attempt = 0;; ++attempt) {
    ssize_t n = read_at(fd, buf, sizeof buf, 0);
    if (n < 0) return system_failure("read lock file");
    *out = parse_record(std::string_view(buf, static_cast<size_t>(n)));
    if (!out->torn || attempt >= 20) return {};
    std::this_thread::sleep_for(std::chrono::microseconds(50 * (attempt + 1)));
  }
}

Failure names_same_file(const LockLocation& loc, const struct stat& st, bool* same) {
  *same = false;
  struct stat now {};
  if (sys().fstatat(loc.dir.get(), loc.name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return system_failure("stat lock file");
  }
  *same = now.st_dev == st.st_dev && now.st_ino == st.st_ino;
  return {};
}

Failure remove_if_same(const LockLocation& loc, const struct stat& st, bool* removed) {
  *removed = false;
  bool same = false;
  if (Failure f = names_same_file(loc, st, &same)) return f;
  if (!same) return {};
  sys().checkpoint("takeover.verified");
  if (sys().unlinkat(loc.dir.get(), loc.name.c_str(), 0) != 0) {
    if (errno == ENOENT) return {};
    return system_failure("remove stale lock file");
  }
  *removed = true;
  sys().checkpoint("takeover.removed");
  return {};
}

namespace {

// The lock file this process is about to publish: an unnamed (or, where the
// file system has no O_TMPFILE, a temporarily named) inode, already locked
// and holding the complete record.
struct Prepared {
  UniqueFd fd;
  std::string temp_name;  // empty for an unnamed file
  bool without_kernel_lock = false;
  struct stat st {};
  bool in_table = false;
  const LockLocation* loc = nullptr;

  ~Prepared() { reset(); }

  // Gives the file up: out of the table, its temporary name removed.
  void reset() {
    if (in_table) table_erase(st.st_dev, st.st_ino);
    in_table = false;
    if (!temp_name.empty()) sys().unlinkat(loc->dir.get(), temp_name.c_str(), 0);
    temp_name.clear();
    fd.reset();
  }
};

std::atomic<unsigned> temp_counter{0};

// Is `suffix` what prepare() appends to ".NAME.pidlock-": "PID-N-CLOCK",
// three runs of digits?
bool generated_suffix(const char* suffix) {
  int runs = 0;
  const char* p = suffix;
  for (;;) {
    const char* start = p;
    while (*p >= '0' && *p <= '9') ++p;
    if (p == start) return false;
    ++runs;
    if (*p == '\0') return runs == 3;
    if (*p != '-' || runs == 3) return false;
    ++p;
  }
}

// Removes hidden temporaries of the no-O_TMPFILE fallback (see prepare())
// that a crash left beside the lock: nobody holds their kernel lock (their
// creator is gone) and they are older than a creator needs to lock one.
// With `locked_inode` (a stale lock file whose kernel lock we hold), removes
// only that inode's other names, at once: its lock being ours proves that
// no creator is using them. Returns how many names it removed.
int sweep_orphaned_temps(const LockLocation& loc, const struct stat* locked_inode = nullptr) {
  constexpr std::int64_t kMinimumAge = 10;  // seconds; a creator locks at once
  int dfd = ::dup(loc.dir.get());
  if (dfd < 0) return 0;
  DIR* dir = ::fdopendir(dfd);
  if (dir == nullptr) {
    close_fd(dfd);
    return 0;
  }
  ::rewinddir(dir);
  const std::string prefix = "." + loc.name + ".pidlock-";
  int removed = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    if (std::strncmp(entry->d_name, prefix.c_str(), prefix.size()) != 0) continue;
    if (!generated_suffix(entry->d_name + prefix.size())) continue;  // a user's lookalike
    UniqueFd fd(open_at(loc.dir.get(), entry->d_name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || sys().fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (locked_inode != nullptr) {
      if (st.st_dev != locked_inode->st_dev || st.st_ino != locked_inode->st_ino) continue;
    } else {
      if (sys().now() - static_cast<std::int64_t>(st.st_mtime) < kMinimumAge) continue;
      if (sys().try_lock(fd.get()) != KernelLock::kAcquired) continue;
      // Only what the fallback writes: nothing yet, or a pidlock record.
      ParsedRecord parsed;
      if (read_record(fd.get(), loc.path, &parsed)) continue;
      bool ours = parsed.empty || (parsed.record && parsed.record->format == RecordFormat::kPidlock) ||
                  parsed.torn;
      if (!ours) continue;
    }
    struct stat named {};
    if (sys().fstatat(loc.dir.get(), entry->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
        named.st_dev == st.st_dev && named.st_ino == st.st_ino &&
        sys().unlinkat(loc.dir.get(), entry->d_name, 0) == 0) {
      ++removed;
      PIDLOCK_LOG(info) << "removed orphaned temporary \"" << entry->d_name << "\" beside \"" << loc.path << "\"";
    }
  }
  ::closedir(dir);
  return removed;
}

Failure prepare(const LockLocation& loc, const AcquireOptions& options, const HolderRecord& record,
                Prepared* out) {
  out->loc = &loc;
  int fd = sys().open_unnamed(loc.dir.get(), options.mode, !options.inheritable);
  if (fd < 0 && errno == EOPNOTSUPP) {
    // No O_TMPFILE here (some network and FUSE file systems): fall back to a
    // hidden name beside the lock, removed right after the link. A crash in
    // that window leaves the hidden file behind; O_TMPFILE cannot.
    sweep_orphaned_temps(loc);
    // The clock keeps a later process with a recycled pid off a name that
    // a crash left behind.
    std::string temp = "." + loc.name + ".pidlock-" + std::to_string(sys().getpid()) + "-" +
                       std::to_string(temp_counter.fetch_add(1)) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    fd = open_at(loc.dir.get(), temp.c_str(),
                 O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | (options.inheritable ? 0 : O_CLOEXEC),
                 options.mode);
    if (fd >= 0) out->temp_name = temp;
  }
  if (fd < 0) return system_failure("create lock file");
  out->fd.reset(fd);
  sys().checkpoint("acquire.created");
  if (sys().fstat(fd, &out->st) != 0) return system_failure("stat lock file");
  // The mode must not depend on the umask (the usual umask leaves 0600 alone).
  if ((out->st.st_mode & 07777) != options.mode && sys().fchmod(fd, options.mode) != 0)
    return system_failure("set mode of lock file");
  // Lock before the file has a name: no one can ever see our file unlocked.
  switch (sys().try_lock(fd)) {
    case KernelLock::kAcquired:
      break;
    case KernelLock::kUnsupported:
      // No lock on this file system (or, transiently, none to be had: lockd
      // out of locks). Say so in the record, so that nobody takes the free
      // kernel lock for proof that we are gone: the pid rules judge us.
      out->without_kernel_lock = true;
      break;
    case KernelLock::kHeldByOther:
      errno = EDEADLK;  // impossible for a brand-new inode
      return system_failure("lock new lock file");
    case KernelLock::kError:
      return system_failure("lock new lock file");
  }
  sys().checkpoint("acquire.locked");
  HolderRecord published = record;
  published.without_kernel_lock = out->without_kernel_lock;
  std::string bytes = format_record(published);
  if (!write_all_at(fd, bytes.data(), bytes.size(), 0)) return system_failure("write lock file");
  sys().checkpoint("acquire.written");
  if (options.durable && fsync_fd(fd) != 0) return system_failure("fsync lock file");
  // Enter the table before the file has a name, so that another thread of
  // this process that finds the file knows it is ours.
  if (!table_insert(out->st.st_dev, out->st.st_ino))
    return pidlock_failure(errc::already_held_by_this_process, "acquire");
  out->in_table = true;
  return {};
}

int publish(const LockLocation& loc, const Prepared& prepared) {
  if (prepared.temp_name.empty())
    return sys().link_unnamed(prepared.fd.get(), loc.dir.get(), loc.name.c_str());
  return sys().linkat(loc.dir.get(), prepared.temp_name.c_str(), loc.dir.get(), loc.name.c_str());
}

// The canonical path of the lock's folder: the kernel's name for the folder
// descriptor we hold (one readlink), or, without /proc, Boost's canonical().
Failure resolve_folder(const LockLocation& loc, const boost::filesystem::path& path,
                       boost::filesystem::path* out) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", loc.dir.get());
  char target[PATH_MAX + 1];
  ssize_t n = ::readlink(link, target, PATH_MAX);
  if (n > 0 && target[0] == '/') {
    *out = std::string(target, static_cast<size_t>(n));
    return {};
  }
  boost::system::error_code ec;
  boost::filesystem::path parent = path.parent_path().empty() ? boost::filesystem::path(".") : path.parent_path();
  *out = boost::filesystem::canonical(parent, ec);
  if (ec) return Failure{std::error_code(ec.value(), std::system_category()), "resolve lock folder", parent.string()};
  return {};
}

// Takes over a stale lock file in place: we hold its kernel lock and it is
// the file at the path. Writes our record over it (then cuts off any old
// tail; a reader in between sees a checksum mismatch and reads again) and
// enters it in the process table. *adopted stays false, with no failure,
// when the file's mode cannot be made ours (EPERM: another owner).
Failure adopt_stale(const LockLocation& loc, const AcquireOptions& options, const HolderRecord& record,
                    ExistingFile& file, bool* adopted) {
  *adopted = false;
  const int fd = file.fd.get();
  // A file of ours that has the mode already is left alone: fchmod would
  // wake every waiter watching the file (IN_ATTRIB) in the middle of a
  // hand-off. Another owner's file goes through fchmod, whose EPERM says
  // it is not ours to rewrite.
  if (((file.st.st_mode & 07777) != options.mode || file.st.st_uid != ::geteuid()) &&
      sys().fchmod(fd, options.mode) != 0) {
    if (errno == EPERM) return {};
    return system_failure("set mode of lock file");
  }
  if (options.inheritable && sys().set_cloexec(fd, false) != 0) return system_failure("make lock file inheritable");
  bool same = false;
  if (Failure f = names_same_file(loc, file.st, &same)) return f;
  if (!same) return {};  // renamed away meanwhile
  sys().checkpoint("takeover.verified");
  HolderRecord ours = record;
  ours.without_kernel_lock = false;  // we hold this file's kernel lock
  std::string bytes = format_record(ours);
  // A record a little shorter than the old one (a hand-off between two
  // holders) is padded to its length, which saves the truncate.
  constexpr off_t kMaxPadding = 64;
  const auto natural = static_cast<off_t>(bytes.size());
  if (natural < file.st.st_size && file.st.st_size - natural <= kMaxPadding)
    bytes = format_record(ours, static_cast<size_t>(file.st.st_size));
  // Once we start writing, the stale record is gone either way; if we fail
  // after that, remove the file (still ours: we hold its lock) rather than
  // leave a half-rewritten one naming us, who will not hold it.
  auto give_up = [&](Failure f) {
    bool named = false;
    if (!names_same_file(loc, file.st, &named) && named) sys().unlinkat(loc.dir.get(), loc.name.c_str(), 0);
    return f;
  };
  if (!write_all_at(fd, bytes.data(), bytes.size(), 0)) return give_up(system_failure("write lock file"));
  if (static_cast<off_t>(bytes.size()) < file.st.st_size &&
      retry_eintr([&] { return sys().ftruncate(fd, static_cast<off_t>(bytes.size())); }) != 0)
    return give_up(system_failure("truncate lock file"));
  sys().checkpoint("takeover.written");
  if (options.durable && fsync_fd(fd) != 0) return give_up(system_failure("fsync lock file"));
  if (!table_insert(file.st.st_dev, file.st.st_ino))
    return pidlock_failure(errc::already_held_by_this_process, "acquire");
  Failure last_look = names_same_file(loc, file.st, &same);
  if (last_look || !same) {
    // Our record stays in the file, whose kernel lock drops with our
    // descriptor: a stale lock the next acquire takes over.
    table_erase(file.st.st_dev, file.st.st_ino);
    if (last_look) return last_look;
    return pidlock_failure(errc::lock_lost, "acquire", "the lock file was renamed or removed during the take-over");
  }
  *adopted = true;
  return {};
}

// What a look at an existing lock file found.
struct Examined {
  ExistingFile file;
  KernelEvidence kernel = KernelEvidence::kNone;
  bool locked_by_us = false;
  int no_write_errno = 0;  // why a writable open failed (EACCES, EROFS, EPERM), or 0
  Inspection inspection;

  // Why a stale file we could not lock may not be taken over or removed.
  int write_denied_errno() const { return no_write_errno != 0 ? no_write_errno : EACCES; }
};

// Opens, locks (when `take_lock`) or queries, reads and judges the file at
// `loc`. With take_lock, a stale verdict backed by kernel evidence leaves
// us holding the stale inode's kernel lock.
Failure examine(const LockLocation& loc, const JudgeOptions& options, bool take_lock, Examined* out,
                ChangeNotifier* notifier = nullptr) {
  Failure f = open_existing(loc, &out->file);
  if (f || out->file.vanished) return f;
  if (notifier != nullptr) {
    // Watch the inode before asking about its lock: a release or death after
    // the question then always produces an event, so a waiter cannot sleep
    // through it.
    if (std::error_code ec = notifier->watch_file(out->file.fd.get(), FileEvents::kHolderGone))
      return Failure{ec, "watch lock file", ""};
  }
  if (table_contains(out->file.st.st_dev, out->file.st.st_ino)) {
    ParsedRecord parsed;
    if (Failure rf = read_record(out->file.fd.get(), loc.path, &parsed)) return rf;
    out->inspection.verdict = Verdict::kHeld;
    out->inspection.reason = Reason::kHeldByThisProcess;
    out->inspection.detail = "this process holds the lock";
    out->inspection.holder = parsed.record;
    out->inspection.kernel_lock_evidence = true;
    return {};
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
  if (take_lock && out->kernel == KernelEvidence::kFree) {
    // Taking an OFD write lock needs a writable description.
    int fd = open_at(loc.dir.get(), loc.name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      out->file = ExistingFile{};
      out->file.vanished = true;
      return {};
    }
    if (fd < 0 && errno != EACCES && errno != EROFS && errno != EPERM) return system_failure("open lock file");
    if (fd < 0) out->no_write_errno = errno;
    if (fd >= 0) {
      UniqueFd rw(fd);
      struct stat st {};
      if (sys().fstat(fd, &st) != 0) return system_failure("stat lock file");
      if (st.st_dev != out->file.st.st_dev || st.st_ino != out->file.st.st_ino) {
        out->file = ExistingFile{};
        out->file.vanished = true;  // replaced meanwhile: look again
        return {};
      }
      out->file.fd = std::move(rw);
      out->file.writable = true;
      switch (sys().try_lock(fd)) {
        case KernelLock::kAcquired:
          out->locked_by_us = true;
          // Its size as of now: the last holder may have rewritten the
          // record (update_status, or the mark of a release to waiters)
          // since the stat above, and a take-over must cover all of it.
          if (sys().fstat(fd, &out->file.st) != 0) return system_failure("stat lock file");
          break;
        case KernelLock::kHeldByOther: out->kernel = KernelEvidence::kHeld; break;
        case KernelLock::kUnsupported: out->kernel = KernelEvidence::kNone; break;
        case KernelLock::kError: return system_failure("lock existing lock file");
      }
    }
  }
  ParsedRecord parsed;
  if (Failure rf = read_record(out->file.fd.get(), loc.path, &parsed)) return rf;
  out->inspection = judge(parsed, out->kernel, options, self_identity(), /*describe_holder_pid=*/notifier == nullptr);
  return {};
}

Inspection free_inspection() {
  Inspection i;
  i.verdict = Verdict::kFree;
  i.reason = Reason::kNoLockFile;
  i.detail = "there is no lock file";
  return i;
}

// Retries of one attempt while a kernel lock is held by someone other than
// the recorded (dead) holder: usually a contender between taking a stale
// file's lock and removing it, or a holder the kernel has not finished
// closing (see Waiter::settle_after_close), which lasts microseconds.
// 40 x 250 us covers scheduling delays; a lock still held after that is
// held for real (a child that inherited the descriptor outlived the holder).
constexpr int kContestedRetries = 40;
constexpr std::chrono::microseconds kContestedPause{250};

// Sleeps between examinations of a held lock until the kernel reports a
// change of the file last examined: unlinked, renamed or replaced (its link
// count or name changes); its last writable descriptor closed (release or
// death of the holder); or, for holders known only by pid, the process's
// exit (pidfd).
class Waiter {
 public:
  Waiter(std::optional<std::chrono::milliseconds> timeout, const Canceller* canceller,
         std::chrono::milliseconds recheck_interval)
      : notifier_(thread_notifier()), canceller_(canceller), recheck_(recheck_interval) {
    if (timeout) deadline_ = std::chrono::steady_clock::now() + *timeout;
  }

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
  Failure start() {
    if (notifier_->error()) return Failure{notifier_->error(), "create inotify instance", ""};
    notifier_->drain();  // what retired watches reported since the last wait
    return {};
  }

  ChangeNotifier* notifier() { return notifier_.get(); }

  // Sleeps until something may have changed. `found` is what the last look
  // saw; its holder's pid is watched when only pid evidence keeps it held.
  // Closes found's descriptor first: a waiter must not sit on the kernel
  // lock of a foreign file it took only to judge it.
  Wake sleep(Examined& found) {
    settles_ = 0;
    const Inspection& insp = found.inspection;
    if (found.kernel != KernelEvidence::kHeld && found.file.fd.valid()) {
      // No kernel-lock holder to wait for: stop watching closes, so that
      // closing our own writable descriptor below does not wake us.
      if (std::error_code ec = notifier_->watch_file(found.file.fd.get(), FileEvents::kRenamed)) {
        errno = ec.value();
        return Wake::kError;
      }
    }
    found.file.fd.reset();
    if (found.kernel != KernelEvidence::kHeld && insp.holder &&
        (insp.reason == Reason::kPidAlive || insp.reason == Reason::kPidAliveOtherUser)) {
      if (pid_watched_ != insp.holder->pid) {
        pidfd_ = open_process_watch(insp.holder->pid);
        pid_watched_ = insp.holder->pid;
        if (!pidfd_.valid()) return Wake::kEvent;  // gone already, or no pidfd: look again
      }
    } else {
      pidfd_.reset();
      pid_watched_ = 0;
    }
    return sleep_for_events();
  }

  // Sleeps on the file watch alone: for a waiter that announced itself on
  // the file it watches (see announce()), whose holder holds its kernel
  // lock. Every hand-off, release and death closes the holder's
  // description (IN_CLOSE_WRITE); unlink and rename change the file.
  Wake sleep_announced() {
    settles_ = 0;
    pidfd_.reset();
    pid_watched_ = 0;
    return sleep_for_events();
  }

  bool cancelled() const { return canceller_ != nullptr && canceller_->cancelled(); }

  // The kernel reports a close (IN_CLOSE_WRITE) before it drops the closing
  // description's lock (__fput: fsnotify_close, then locks_remove_file), so
  // a look right after the holder's death can still find the lock held --
  // and no further event comes. After such a wake, a lock still held is
  // looked at again shortly (kContestedRetries x kContestedPause), not
  // slept on.
  bool settle_after_close(KernelEvidence kernel) {
    if (kernel != KernelEvidence::kHeld || !saw_close() || settles_ >= kContestedRetries)
      return false;
    if (deadline_ && std::chrono::steady_clock::now() >= *deadline_) return false;
    ++settles_;
    std::this_thread::sleep_for(kContestedPause);
    return true;
  }

  // Did the last wake come from the recheck timer or a change of the file
  // other than a close -- so that its name must be looked at again?
  bool name_may_have_changed() const { return rechecking_ || notifier_->saw_change(); }
  bool saw_close() const { return !rechecking_ && notifier_->saw_close(); }

 private:
  // Sleeps until the watch or the pidfd reports, the recheck interval
  // passes (kEvent: look again) or the deadline does (kTimeout).
  Wake sleep_for_events() {
    std::chrono::steady_clock::duration limit = recheck_;
    bool deadline_first = false;
    if (deadline_) {
      auto left = *deadline_ - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) return Wake::kTimeout;
      if (left < limit) {
        limit = left;
        deadline_first = true;
      }
    }
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      Wake w = sleep_until({notifier_->fd(), pidfd_.get()}, canceller_ ? canceller_->native_handle() : -1,
                           until - std::chrono::steady_clock::now());
      rechecking_ = w == Wake::kTimeout && !deadline_first;
      if (rechecking_) return Wake::kEvent;  // periodic recheck
      if (w != Wake::kEvent) return w;
      // Events of retired watches (files waited on before) are not worth
      // another look; only the file we watch, or the holder's exit, is.
      if (notifier_->drain() || readable(pidfd_.get())) return Wake::kEvent;
    }
  }

  // One inotify instance per thread, reused by its waits: closing an
  // instance waits for an RCU grace period (hundreds of microseconds to
  // milliseconds), which would otherwise sit in every hand-off. A forked
  // child gets its own instead of sharing its parent's. Shared, not
  // borrowed: a wait nested in this one (a log sink that acquires) may
  // replace the thread's instance, and this wait keeps the one it uses.
  static std::shared_ptr<ChangeNotifier> thread_notifier() {
    thread_local std::shared_ptr<ChangeNotifier> notifier;
    thread_local pid_t owner = 0;
    pid_t self = sys().getpid();
    if (!notifier || owner != self || notifier->error() || notifier.use_count() > 1) {
      notifier = std::make_shared<ChangeNotifier>();
      owner = self;
    }
    return notifier;
  }

  static bool readable(int fd) {
    if (fd < 0) return false;
    struct pollfd p {fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

  std::shared_ptr<ChangeNotifier> notifier_;
  const Canceller* canceller_;
  std::chrono::milliseconds recheck_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  UniqueFd pidfd_;
  pid_t pid_watched_ = 0;
  int settles_ = 0;
  bool rechecking_ = false;
};

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

// A descriptor of the announced file, registered with the
// AnnouncementRegistry while it stands for a waiter. It leaves the
// registry before it closes, so that a child forked in between never
// points a number that another thread has reused at /dev/null.
class AnnouncementFd {
 public:
  AnnouncementFd() = default;
  ~AnnouncementFd() { reset(); }
  AnnouncementFd(const AnnouncementFd&) = delete;
  AnnouncementFd& operator=(const AnnouncementFd&) = delete;

  void adopt(UniqueFd fd) {
    reset();
    fd_ = std::move(fd);
    if (fd_.valid()) AnnouncementRegistry::add(fd_.get());
  }
  int get() const noexcept { return fd_.get(); }
  bool valid() const noexcept { return fd_.valid(); }
  void reset() { UniqueFd closed_here = take(); }
  // The descriptor, no longer a waiter's: ours holds the lock now.
  UniqueFd take() {
    if (fd_.valid()) AnnouncementRegistry::remove(fd_.get());
    return std::move(fd_);
  }

 private:
  UniqueFd fd_;
};

// A held lock file on which this process waits announced
// (System::announce_waiter): its holder then hands the lock over in place
// rather than removing the file (see hand_over in lock_handle.cpp), and
// the waiter keeps watching and locking the same file from one holder to
// the next. `fd` is writable, as an exclusive OFD lock needs.
struct Announced {
  AnnouncementFd fd;
  struct stat st {};
  pid_t holder = 0;  // the holder on record when we last looked
};

// Opens the file `found` looked at for writing and announces us on it.
// False, with nothing announced, where that cannot be done (no write
// permission, the file replaced meanwhile, a holder that locks the whole
// file): the waiter then waits the usual way.
bool announce(const LockLocation& loc, const Examined& found, Announced* out, pid_t holder) {
  int fd = open_at(loc.dir.get(), loc.name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return false;
  UniqueFd rw(fd);
  struct stat st {};
  if (sys().fstat(fd, &st) != 0 || st.st_dev != found.file.st.st_dev || st.st_ino != found.file.st.st_ino)
    return false;
  if (sys().announce_waiter(fd) != 0) return false;
  out->fd.adopt(std::move(rw));
  out->st = st;
  out->holder = holder;
  return true;
}

// Gives up an announcement. Its holder may have handed the lock to us
// just now; a file released for waiters that none of them takes would
// stay behind (stale, and taken over by the next acquire). So if the lock
// is free, the file released, and nobody else waits, remove it.
void leave_announced(const LockLocation& loc, Announced& a) {
  if (a.fd.valid() && sys().try_lock(a.fd.get()) == KernelLock::kAcquired &&
      sys().query_waiters(a.fd.get()) == LockQuery::kFree) {
    ParsedRecord parsed;
    if (!read_record(a.fd.get(), loc.path, &parsed) && parsed.record && parsed.record->status == kReleasedStatus) {
      bool removed = false;
      (void)remove_if_same(loc, a.st, &removed);
    }
  }
  a.fd.reset();
}

enum class InPlace {
  kWon,    // we hold the announced file's lock; `found` describes it, judged
  kMoved,  // its name names another file, or none: look again
  kEnded,  // the wait ended (deadline, cancel, error of the sleep)
};

// Waits on the announced file until its holder releases or dies and we
// lock it, or its name moves on. One try of the lock per wake, and no file
// to open while someone else holds it.
Failure wait_announced(const LockLocation& loc, const JudgeOptions& options, Waiter& waiter, Announced& a,
                       Examined* found, InPlace* outcome, Wake* ended) {
  bool woke = false;
  for (;;) {
    switch (sys().try_lock(a.fd.get())) {
      case KernelLock::kAcquired: {
        found->file.fd = a.fd.take();
        found->file.writable = true;
        found->locked_by_us = true;
        found->kernel = KernelEvidence::kFree;
        if (sys().fstat(found->file.fd.get(), &found->file.st) != 0) return system_failure("stat lock file");
        ParsedRecord parsed;
        if (Failure f = read_record(found->file.fd.get(), loc.path, &parsed)) return f;
        // We hold the lock, so a pidlock record's verdict rests on that.
        // Without our parent's pid (a system call) the pid rules judge a
        // foreign record naming our parent as held instead of unknown: both
        // count as held.
        found->inspection = judge(parsed, KernelEvidence::kFree, options, self_identity(/*with_parent=*/false), false);
        *outcome = InPlace::kWon;
        return {};
      }
      case KernelLock::kHeldByOther:
        break;
      case KernelLock::kUnsupported:
        a.fd.reset();
        *outcome = InPlace::kMoved;
        return {};
      case KernelLock::kError:
        return system_failure("lock existing lock file");
    }
    if (woke && waiter.saw_close()) {
      // A close, and the lock is held: either a waiter took it over from a
      // holder that released (the record says released, or names the new
      // holder), or a dead holder's lock is not gone yet (the record still
      // names it; see Waiter::settle_after_close).
      ParsedRecord parsed;
      if (Failure f = read_record(a.fd.get(), loc.path, &parsed)) return f;
      const bool handed_on =
          parsed.record && (parsed.record->status == kReleasedStatus || parsed.record->pid != a.holder);
      if (parsed.record) a.holder = parsed.record->pid;
      if (!handed_on && waiter.settle_after_close(KernelEvidence::kHeld)) continue;
    }
    Wake w = waiter.sleep_announced();
    woke = true;
    if (w != Wake::kEvent) {
      *ended = w;
      *outcome = InPlace::kEnded;
      return {};
    }
    if (waiter.name_may_have_changed()) {
      bool same = false;
      if (Failure f = names_same_file(loc, a.st, &same)) return f;
      if (!same) {
        a.fd.reset();
        *outcome = InPlace::kMoved;
        return {};
      }
    }
  }
}

}  // namespace
}  // namespace detail

using namespace detail;

struct LockManager::Impl {
  mutable std::mutex mutex;
  // Every lock acquired through this manager, in order of acquisition. The
  // handles own the locks; the manager only remembers them for
  // release_all() and touch_all().
  std::vector<std::weak_ptr<HeldLock>> acquired;

  void remember(const LockHandle& handle) {
    std::lock_guard<std::mutex> guard(mutex);
    // Forget released locks now and then, so the list stays proportional
    // to the locks held.
    if (acquired.size() >= 64 && acquired.size() == acquired.capacity()) {
      acquired.erase(std::remove_if(acquired.begin(), acquired.end(),
                                    [](const std::weak_ptr<HeldLock>& w) {
                                      auto s = w.lock();
                                      return !s || !s->active.load();
                                    }),
                     acquired.end());
    }
    acquired.push_back(HandleAccess::state(handle));
  }

  std::vector<std::shared_ptr<HeldLock>> held() const {
    std::lock_guard<std::mutex> guard(mutex);
    std::vector<std::shared_ptr<HeldLock>> out;
    for (const auto& w : acquired)
      if (auto s = w.lock(); s && s->active.load()) out.push_back(std::move(s));
    return out;
  }
};

LockManager::LockManager() : impl_(std::make_unique<Impl>()) {}

LockManager::~LockManager() { (void)release_all(); }

std::error_code LockManager::release_all() noexcept {
  std::error_code first;
  try {
    auto locks = impl_->held();
    for (auto it = locks.rbegin(); it != locks.rend(); ++it) {
      std::error_code ec = release_state(**it);
      if (ec && ec != make_error_code(errc::not_held) && !first) first = ec;
    }
    std::lock_guard<std::mutex> guard(impl_->mutex);
    impl_->acquired.clear();
  } catch (const std::bad_alloc&) {
    first = std::make_error_code(std::errc::not_enough_memory);
  }
  return first;
}

std::error_code LockManager::touch_all() noexcept {
  std::error_code first;
  try {
    for (const auto& s : impl_->held()) {
      std::error_code ec = touch_state(*s);
      if (ec && !first) first = ec;
    }
  } catch (const std::bad_alloc&) {
    first = std::make_error_code(std::errc::not_enough_memory);
  }
  return first;
}

std::size_t LockManager::held_count() const noexcept {
  try {
    return impl_->held().size();
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

namespace detail {
namespace {

// The whole acquire; reports failures with their context through `failure`
// (and the holder's verdict through `held` when failure is errc::held).
LockHandle acquire_impl(const boost::filesystem::path& path, const AcquireOptions& options,
                        Failure& failure, Inspection& held) {
  if (is_remote_address(path.string())) {
    if (!valid_status(options.status)) {
      failure = pidlock_failure(errc::invalid_argument, "acquire", "malformed status word");
      return {};
    }
    auto state = remote_acquire(path.string(), options, failure, held);
    return state ? HandleAccess::make(std::move(state)) : LockHandle();
  }
  if (!valid_status(options.status)) {
    failure = pidlock_failure(errc::invalid_argument, "acquire",
                              "status must be 1 to " + std::to_string(kMaxStatusLength) +
                                  " printable characters without spaces");
    return {};
  }
  if (options.max_attempts < 1) {
    failure = pidlock_failure(errc::invalid_argument, "acquire", "max_attempts must be at least 1");
    return {};
  }
  LockLocation loc;
  if ((failure = open_location(path, &loc))) return {};

  const SelfIdentity self = self_identity(/*with_parent=*/false);  // judge() calls get a full one
  HolderRecord record = make_record(self, self.pid);
  record.status = options.status;
  boost::filesystem::path folder;
  if ((failure = resolve_folder(loc, path, &folder))) return {};
  boost::filesystem::path data_dir =
      options.data_directory.empty() ? folder : boost::filesystem::absolute(options.data_directory);
  record.data_directory = data_dir.lexically_normal().string();
  if (record.data_directory.find('\n') != std::string::npos) {
    failure = pidlock_failure(errc::invalid_argument, "acquire", "the data directory contains a newline");
    return {};
  }

  Prepared prepared;
  std::optional<Inspection> previous;
  int contested = 0;
  const bool waits = options.wait || options.timeout.has_value();
  std::optional<Waiter> waiter;
  // A handle for the file `fd` (whose dev/ino `st` holds, already in the
  // process table), now holding the kernel lock and our record.
  auto make_handle = [&](UniqueFd fd, const struct stat& st) {
    auto state = std::make_shared<HeldLock>();
    state->dev = st.st_dev;
    state->ino = st.st_ino;
    state->fd = std::move(fd);
    state->path = folder / loc.name;
    state->record = record;
    state->took_over = previous.has_value();
    state->previous = std::move(previous);
    state->owner_pid = self.pid;
    state->durable = options.durable;
    state->inheritable = options.inheritable;
    state->forks_at_acquire = forks_so_far();
    if (state->took_over) {
      PIDLOCK_LOG(warning) << "acquired lock file \"" << loc.path << "\" by taking over a stale lock of "
                           << (state->previous->holder ? describe_holder(*state->previous->holder)
                                                       : std::string("an unknown holder"))
                           << " [" << to_string(state->previous->reason) << ": " << state->previous->detail << "]";
    } else {
      PIDLOCK_LOG(info) << "acquired lock file \"" << loc.path << "\" (pid " << self.pid << ")";
    }
    return HandleAccess::make(std::move(state));
  };

  // Another process is in the middle of taking the file over: look again
  // after kContestedPause, at most kContestedRetries times, without
  // spending an attempt.
  int attempt = 0;
  auto pause_for_contender = [&] {
    ++contested;
    if (!waits) --attempt;
    std::this_thread::sleep_for(kContestedPause);
  };

  Announced announced;
  std::pair<dev_t, ino_t> not_announced{0, 0};  // a file announce() refused
  while (attempt < options.max_attempts) {
    Examined found;
    if (announced.fd.valid()) {
      InPlace outcome = InPlace::kMoved;
      Wake ended = Wake::kError;
      if ((failure = wait_announced(loc, options.judge, *waiter, announced, &found, &outcome, &ended))) {
        leave_announced(loc, announced);
        return {};
      }
      if (outcome == InPlace::kMoved) continue;
      if (outcome == InPlace::kEnded) {
        if (ended == Wake::kTimeout) {  // report the holder now on record, described in full
          ParsedRecord parsed;
          (void)read_record(announced.fd.get(), loc.path, &parsed);
          held = judge(parsed, KernelEvidence::kHeld, options.judge, self_identity());
        }
        failure = ended == Wake::kTimeout     ? pidlock_failure(errc::held, "acquire")
                  : ended == Wake::kCancelled ? pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled")
                                              : system_failure("wait for lock file");
        leave_announced(loc, announced);  // after system_failure() read errno
        return {};
      }
    } else {
      if (!prepared.fd.valid()) {
        if ((failure = prepare(loc, options, record, &prepared))) return {};
        record.without_kernel_lock = prepared.without_kernel_lock;
      }
      sys().checkpoint("acquire.before_link");
      if (publish(loc, prepared) == 0) {
        sys().checkpoint("acquire.linked");
        if (!prepared.temp_name.empty()) {
          sys().unlinkat(loc.dir.get(), prepared.temp_name.c_str(), 0);
          prepared.temp_name.clear();
        }
        if (options.durable && fsync_fd(loc.dir.get()) != 0) {
          failure = system_failure("fsync lock folder");
          sys().unlinkat(loc.dir.get(), loc.name.c_str(), 0);  // ours: same inode, locked
          return {};
        }
        struct stat named {};
        if (sys().fstatat(loc.dir.get(), loc.name.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0) {
          failure = system_failure("stat lock file after creating it");
          // The name is ours: nobody else may remove or replace a file whose
          // kernel lock we hold, so take back what we published.
          if (failure.code != std::error_code(ENOENT, std::system_category()))
            sys().unlinkat(loc.dir.get(), loc.name.c_str(), 0);
          return {};
        }
        if (named.st_dev != prepared.st.st_dev || named.st_ino != prepared.st.st_ino) {
          failure = pidlock_failure(errc::lock_lost, "acquire",
                                    "the lock file was replaced right after it was created");
          return {};
        }
        prepared.in_table = false;  // the handle owns the table entry now
        return make_handle(std::move(prepared.fd), prepared.st);
      }
      if (errno != EEXIST) {
        failure = system_failure("create lock file");
        return {};
      }
      // A waiting acquire is bounded by its deadline; max_attempts bounds the
      // races of an acquire that does not wait.
      if (!waits) ++attempt;
      if (waits && !waiter) {
        waiter.emplace(options.timeout, options.canceller, options.recheck_interval);
        if ((failure = waiter->start())) return {};
      }
      if ((failure = examine(loc, options.judge, /*take_lock=*/true, &found, waits ? waiter->notifier() : nullptr)))
        return {};
      if (found.file.vanished) continue;
    }
    const Inspection& insp = found.inspection;
    if (insp.reason == Reason::kHeldByThisProcess) {
      failure = pidlock_failure(errc::already_held_by_this_process, "acquire",
                                "release the existing handle first; a second acquire never breaks or drops it");
      return {};
    }
    if (insp.verdict == Verdict::kStale) {
      if (found.file.st.st_nlink > 1 && found.locked_by_us && sweep_orphaned_temps(loc, &found.file.st) > 0) {
        // A crash between link() and the removal of the fallback's hidden
        // name left the lock file with a second name; that name is gone now.
        if (sys().fstat(found.file.fd.get(), &found.file.st) != 0) {
          failure = system_failure("stat lock file");
          return {};
        }
      }
      if (found.file.st.st_nlink > 1) {
        failure = pidlock_failure(errc::hard_linked_lock_file, "acquire",
                                  "it has " + std::to_string(found.file.st.st_nlink) +
                                      " links; remove it by hand if it really is a stale lock");
        return {};
      }
      if (!found.locked_by_us && found.kernel != KernelEvidence::kNone) {
        if (insp.reason == Reason::kReleased && contested < kContestedRetries) {
          // Released to an announced waiter, which takes it over in a
          // moment; we could not, but may create our own file after that.
          pause_for_contender();
          continue;
        }
        // We could only open it read-only: we may not take it over.
        errno = found.write_denied_errno();
        failure = system_failure("take over stale lock file",
                                 "the file is stale but cannot be opened for writing, which a safe take-over needs");
        return {};
      }
      if (found.locked_by_us) {
        // We hold the stale inode's kernel lock: take the file over in place
        // rather than remove it. The path then never goes empty, so no third
        // contender can slip its own file in between, and the contender that
        // proved the holder dead is the one that holds the lock and learns
        // (took_over) that recovery is due.
        bool adopted = false;
        if ((failure = adopt_stale(loc, options, record, found.file, &adopted))) return {};
        if (adopted) {
          // A file its holder released to us is a hand-off, not a
          // take-over: no recovery is due.
          if (insp.reason != Reason::kReleased) previous = insp;
          record.without_kernel_lock = false;
          return make_handle(std::move(found.file.fd), found.file.st);
        }
        // Not ours to rewrite (another owner's file we may not chmod): fall
        // back to removing it, which the kernel lock still makes safe.
      }
      bool removed = false;
      if ((failure = remove_if_same(loc, found.file.st, &removed))) return {};
      if (removed) {
        if (insp.reason != Reason::kReleased) previous = insp;
        PIDLOCK_LOG(debug) << "removed stale lock file \"" << loc.path << "\": " << insp.detail;
      }
      continue;  // found.file closes here, dropping the stale inode's lock
    }
    // Held or unknown. If the path no longer names the file we judged,
    // it changed under us: look again.
    bool same = false;
    if ((failure = names_same_file(loc, found.file.st, &same))) return {};
    if (!same) continue;
    if (waits && waiter->settle_after_close(found.kernel)) continue;
    if (waits && found.kernel == KernelEvidence::kHeld &&
        not_announced != std::make_pair(found.file.st.st_dev, found.file.st.st_ino)) {
      if (announce(loc, found, &announced, insp.holder ? insp.holder->pid : 0)) {
        prepared.reset();  // taken over in place, the lock needs no file of ours
        continue;
      }
      not_announced = {found.file.st.st_dev, found.file.st.st_ino};
    }
    if (waits) {
      switch (waiter->sleep(found)) {
        case Wake::kEvent: continue;
        case Wake::kTimeout:  // report the holder we last saw, described in full
          held = judge(ParsedRecord{insp.holder, false, false, false, {}}, found.kernel, options.judge,
                       self_identity());
          failure = pidlock_failure(errc::held, "acquire");
          return {};
        case Wake::kCancelled:
          failure = pidlock_failure(errc::cancelled, "acquire", "the wait was cancelled");
          return {};
        case Wake::kError:
          failure = system_failure("wait for lock file");
          return {};
      }
    } else if (found.kernel == KernelEvidence::kHeld && insp.holder && contested < kContestedRetries) {
      Inspection by_pid = judge(ParsedRecord{insp.holder, false, false, false, {}}, KernelEvidence::kNone,
                                options.judge, self_identity());
      if (by_pid.verdict == Verdict::kStale) {
        // The recorded holder is gone yet the kernel lock is held: a
        // contender is taking the stale file over, or a process that
        // inherited the descriptor lives on. Give the first a moment.
        pause_for_contender();
        continue;
      }
    }
    held = insp;
    failure = pidlock_failure(errc::held, "acquire");
    return {};
  }
  failure = pidlock_failure(errc::too_many_attempts, "acquire",
                            "the lock file was re-created " + std::to_string(options.max_attempts) +
                                " times while we tried to take it over");
  return {};
}

// Runs `f` (which reports through a Failure) for a noexcept entry point,
// turning stray exceptions into error codes.
template <typename F>
void guarded(Failure& failure, F&& f) noexcept {
  try {
    f();
  } catch (const std::bad_alloc&) {
    failure = Failure{std::make_error_code(std::errc::not_enough_memory), "allocate", ""};
  } catch (const boost::filesystem::filesystem_error& e) {
    failure = Failure{std::error_code(e.code().value(), std::system_category()), "resolve path", e.what()};
  } catch (const std::exception& e) {
    failure = Failure{std::make_error_code(std::errc::io_error), "unexpected failure", e.what()};
  }
}

}  // namespace
}  // namespace detail

using namespace detail;

namespace {

// Both acquire() forms: reports through `failure` and `held`.
LockHandle acquire_reporting(const boost::filesystem::path& path, const AcquireOptions& options,
                             Failure& failure, Inspection& held) noexcept {
  LockHandle handle;
  guarded(failure, [&] { handle = acquire_impl(path, options, failure, held); });
  if (failure.code == make_error_code(errc::held)) {
    PIDLOCK_LOG(info) << LockHeldError(path.string(), held).what();
  } else if (failure.code == make_error_code(errc::cancelled)) {
    PIDLOCK_LOG(info) << "acquire of \"" << path.string() << "\" cancelled";
  } else if (failure) {
    log_failure(failure, path.string());
  }
  return handle;
}

}  // namespace

LockHandle LockManager::acquire(const boost::filesystem::path& path, const AcquireOptions& options,
                                std::error_code& ec, Inspection* holder) noexcept {
  Failure failure;
  Inspection held;
  LockHandle handle = acquire_reporting(path, options, failure, held);
  if (handle) {
    try {
      impl_->remember(handle);
    } catch (const std::bad_alloc&) {
      // Still a valid lock; only release_all() will not see it.
    }
  }
  ec = failure.code;
  if (failure.code == make_error_code(errc::held) && holder != nullptr) *holder = std::move(held);
  return handle;
}

LockHandle LockManager::acquire(const boost::filesystem::path& path, const AcquireOptions& options) {
  Failure failure;
  Inspection held;
  LockHandle handle = acquire_reporting(path, options, failure, held);
  if (handle) impl_->remember(handle);
  if (failure.code == make_error_code(errc::held)) throw LockHeldError(path.string(), std::move(held));
  if (failure) throw_failure(failure, path.string());
  return handle;
}

namespace {

Inspection inspect_impl(const boost::filesystem::path& path, const JudgeOptions& options, Failure& failure) {
  if (is_remote_address(path.string())) return remote_inspect(path.string(), options, failure);
  LockLocation loc;
  if ((failure = open_location(path, &loc))) return {};
  for (int attempt = 0; attempt < 100; ++attempt) {
    Examined found;
    if ((failure = examine(loc, options, /*take_lock=*/false, &found))) return {};
    if (!found.file.vanished) return found.inspection;
    struct stat st {};
    if (sys().fstatat(loc.dir.get(), loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
      return free_inspection();
  }
  failure = pidlock_failure(errc::too_many_attempts, "inspect lock file", "the file kept changing");
  return {};
}

Inspection wait_impl(const boost::filesystem::path& path, std::optional<std::chrono::milliseconds> timeout,
                     const Canceller* canceller, const JudgeOptions& options, Failure& failure) {
  if (is_remote_address(path.string())) return remote_wait_until_free(path.string(), timeout, canceller, failure);
  LockLocation loc;
  if ((failure = open_location(path, &loc))) return {};
  Waiter waiter(timeout, canceller, std::chrono::milliseconds(1000));
  if ((failure = waiter.start())) return {};
  for (;;) {
    Examined found;
    if ((failure = examine(loc, options, /*take_lock=*/false, &found, waiter.notifier()))) return {};
    if (found.file.vanished) {
      struct stat st {};
      if (sys().fstatat(loc.dir.get(), loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
        return free_inspection();
      continue;
    }
    if (found.inspection.verdict == Verdict::kStale) return found.inspection;
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

BreakResult break_impl(const boost::filesystem::path& path, const JudgeOptions& options, Failure& failure) {
  BreakResult result;
  if (is_remote_address(path.string())) {
    // A lease-based lock is never stale: it vanishes when its lease ends.
    result.inspection = remote_inspect(path.string(), options, failure);
    return result;
  }
  LockLocation loc;
  if ((failure = open_location(path, &loc))) return result;
  for (int attempt = 0; attempt < 100; ++attempt) {
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

Inspection LockManager::inspect(const boost::filesystem::path& path, const JudgeOptions& options,
                                std::error_code& ec) const noexcept {
  Failure failure;
  Inspection result;
  guarded(failure, [&] { result = inspect_impl(path, options, failure); });
  ec = failure.code;
  return result;
}

Inspection LockManager::inspect(const boost::filesystem::path& path, const JudgeOptions& options) const {
  Failure failure;
  Inspection result;
  guarded(failure, [&] { result = inspect_impl(path, options, failure); });
  if (failure) throw_failure(failure, path.string());
  return result;
}

Inspection LockManager::wait_until_free(const boost::filesystem::path& path,
                                        std::optional<std::chrono::milliseconds> timeout,
                                        const Canceller* canceller, const JudgeOptions& options,
                                        std::error_code& ec) noexcept {
  Failure failure;
  Inspection result;
  guarded(failure, [&] { result = wait_impl(path, timeout, canceller, options, failure); });
  if (failure && failure.code != make_error_code(errc::held) && failure.code != make_error_code(errc::cancelled))
    log_failure(failure, path.string());
  ec = failure.code;
  return result;
}

BreakResult LockManager::break_stale(const boost::filesystem::path& path, const JudgeOptions& options,
                                     std::error_code& ec) noexcept {
  Failure failure;
  BreakResult result;
  guarded(failure, [&] { result = break_impl(path, options, failure); });
  if (failure) log_failure(failure, path.string());
  ec = failure.code;
  return result;
}

BreakResult LockManager::break_stale(const boost::filesystem::path& path, const JudgeOptions& options) {
  Failure failure;
  BreakResult result;
  guarded(failure, [&] { result = break_impl(path, options, failure); });
  if (failure) {
    log_failure(failure, path.string());
    throw_failure(failure, path.string());
  }
  return result;
}

}  // namespace pidlock
