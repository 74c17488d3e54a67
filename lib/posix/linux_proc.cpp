#include "posix/linux_proc.hpp"

#include "core/parse_integer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string_view>

namespace pidlock::detail::linux_proc {
namespace {

// The pid that /proc's namespace gives this process (the target of the
// /proc/self link), or 0 without /proc.
pid_t procfs_self() {
  char buf[32];
  ssize_t n = ::readlink("/proc/self", buf, sizeof buf - 1);
  if (n <= 0) return 0;
  return parse_integer<pid_t>(std::string_view(buf, static_cast<size_t>(n))).value_or(0);
}

// Does /proc number processes as our pid namespace does? Asked once per
// process (a fork() into a new namespace gets a new pid, and asks again).
bool procfs_is_ours(pid_t own_pid) {
  static std::atomic<pid_t> asked_for{0};
  static std::atomic<bool> ours{true};
  if (asked_for.load(std::memory_order_acquire) != own_pid) {
    const pid_t seen = procfs_self();
    // Without /proc every read fails anyway; nothing to translate.
    ours.store(seen == 0 || seen == own_pid, std::memory_order_relaxed);
    asked_for.store(own_pid, std::memory_order_release);
  }
  return ours.load(std::memory_order_relaxed);
}

// The "Pid:" line of a pidfd's fdinfo: the pid as /proc's namespace sees
// the process (0: not visible there, -1: exited), or 0 if unreadable.
pid_t pid_in_procfs(int pidfd) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  std::string text;
  if (!read_small_file(path, &text)) return 0;
  const auto at = text.find("\nPid:");
  if (at == std::string::npos) return 0;
  std::string_view rest = std::string_view(text).substr(at + 5);
  rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
  return parse_integer<pid_t>(rest.substr(0, rest.find('\n')), /*allow_negative=*/true).value_or(0);
}

// Field 4 of /proc/PID/stat (the parent), or 0.
pid_t procfs_parent(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::string text;
  if (!read_small_file(path, &text)) return 0;
  const auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos || close_paren + 4 >= text.size()) return 0;
  std::string_view rest = std::string_view(text).substr(close_paren + 4);  // ") S " then ppid
  return parse_integer<pid_t>(rest.substr(0, rest.find(' '))).value_or(0);
}

bool same_file(const struct stat& st, const FileId& id) { return st.st_dev == id.dev && st.st_ino == id.ino; }

// Does process `pid` (in /proc's numbering) have `file` open for writing?
// Readers (an inspecting pidlock, cat, an editor's view) are no holders.
// False with *failed set when its descriptors could not be listed for a
// reason other than the process being gone or another user's.
bool has_open(pid_t pid, const FileId& file, bool* failed) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/fd", static_cast<int>(pid));
  DIR* dir = ::opendir(path);
  if (dir == nullptr) {
    *failed = errno != ENOENT && errno != ESRCH && errno != EACCES && errno != EPERM;
    return false;
  }
  bool found = false;
  while (struct dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    struct stat st {};
    // fstatat follows the /proc/PID/fd/N link to the open file itself,
    // whatever its name is in the holder's mount namespace.
    if (::fstatat(::dirfd(dir), entry->d_name, &st, 0) != 0 || !same_file(st, file)) continue;
    // The link itself carries the descriptor's access mode: its owner
    // write bit is set for a descriptor open for writing.
    struct stat link {};
    if (::fstatat(::dirfd(dir), entry->d_name, &link, AT_SYMLINK_NOFOLLOW) == 0 && (link.st_mode & S_IWUSR) != 0) {
      found = true;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

}  // namespace

bool read_small_file(const char* path, std::string* out) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  out->clear();
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > std::size_t{64} * 1024) break;
  }
  int saved = errno;
  ::close(fd);
  errno = saved;
  return true;
}

ProcessFolder::ProcessFolder(pid_t pid, pid_t own_pid) {
  if (pid <= 0) return;
  if (pid == own_pid) {
    // /proc/self always names us, whichever namespace /proc belongs to.
    self_ = valid_ = true;
    return;
  }
  if (procfs_is_ours(own_pid)) {
    proc_pid_ = pid;
    valid_ = true;
    return;
  }
  // /proc shows another pid namespace: find the process there by a pidfd,
  // which pins it (a pid can be reused once its process is reaped; the
  // pidfd lets still_valid() tell).
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd_ < 0) return;
  proc_pid_ = pid_in_procfs(pidfd_);
  valid_ = proc_pid_ > 0;
}

ProcessFolder::~ProcessFolder() {
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::string ProcessFolder::path(const char* what) const {
  char out[64];
  if (self_)
    std::snprintf(out, sizeof out, "/proc/self/%s", what);
  else
    std::snprintf(out, sizeof out, "/proc/%d/%s", static_cast<int>(proc_pid_), what);
  return out;
}

bool ProcessFolder::still_valid() const {
  if (pidfd_ < 0) return valid_;
  // Fails with ESRCH once the process has been reaped, after which /proc's
  // pid may name another process. A zombie still counts: it keeps its pid.
  return ::syscall(SYS_pidfd_send_signal, pidfd_, 0, nullptr, 0) == 0;
}

int scan(const FileId* directory, const FileId* file, ProcessScan* out) {
  *out = ProcessScan{};
  const pid_t self = procfs_self();
  if (self == 0) {
    errno = ENOENT;
    return -1;
  }
  // Ourselves and our ancestors: the shell that started us in the data
  // directory is no competitor (PostgreSQL's own rule for its parent and
  // grandparent). A bounded walk: a cycle cannot happen, but costs nothing.
  for (pid_t p = self; p > 0 && out->self_and_ancestors.size() < 64; p = procfs_parent(p)) {
    out->self_and_ancestors.push_back(p);
  }
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return -1;
  while (struct dirent* entry = ::readdir(proc)) {
    const std::optional<pid_t> pid = parse_integer<pid_t>(entry->d_name);
    if (!pid || *pid <= 0) continue;
    const auto& skip = out->self_and_ancestors;
    if (std::find(skip.begin(), skip.end(), *pid) != skip.end()) continue;
    ProcessUse use;
    use.pid = *pid;
    char path[64];
    if (directory != nullptr) {
      std::snprintf(path, sizeof path, "/proc/%d/cwd", static_cast<int>(*pid));
      struct stat st {};
      use.in_directory = ::stat(path, &st) == 0 && same_file(st, *directory);
    }
    bool failed = false;
    if (file != nullptr) use.has_file_open = has_open(*pid, *file, &failed);
    if (failed) {
      // EMFILE, ENOMEM, ...: a process we could not look at may be the one.
      const int saved = errno;
      ::closedir(proc);
      errno = saved;
      return -1;
    }
    if (!use.in_directory && !use.has_file_open) continue;
    std::snprintf(path, sizeof path, "/proc/%d/comm", static_cast<int>(*pid));
    if (read_small_file(path, &use.name) && !use.name.empty() && use.name.back() == '\n') use.name.pop_back();
    out->users.push_back(std::move(use));
  }
  ::closedir(proc);
  return 0;
}

}  // namespace pidlock::detail::linux_proc
