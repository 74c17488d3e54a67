#include "posix/notifier.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <vector>

namespace pidlock::detail {
namespace {

// The folder's own rename or removal (IN_MOVE_SELF, IN_DELETE_SELF) changes
// what the lock path names as surely as a change of the entry itself.
constexpr std::uint32_t kFolderMask =
    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MOVE_SELF | IN_DELETE_SELF | IN_ONLYDIR;

// A waiter must not watch IN_CLOSE_WRITE of a file every waiter opens for
// writing, or waiters would wake each other forever; waiters therefore open
// lock files read-only while waiting (IN_CLOSE_NOWRITE, not watched) and
// only the holder's (or a breaker's) writable descriptor reports a close.
constexpr std::uint32_t kHolderGoneMask = IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
constexpr std::uint32_t kChangedMask = IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
constexpr std::uint32_t kRenamedMask = IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

std::string fd_path(int fd) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  return path;
}

}  // namespace

ChangeNotifier::ChangeNotifier() {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) error_ = last_error();
  inotify_.reset(fd);
}

std::error_code ChangeNotifier::watch_folder(int dirfd, const std::string& name) {
  name_ = name;
  int wd = ::inotify_add_watch(inotify_.get(), fd_path(dirfd).c_str(), kFolderMask);
  if (wd < 0) return last_error();
  folder_wd_ = wd;
  return {};
}

std::error_code ChangeNotifier::watch_file(int fd, FileEvents events) {
  // inotify follows the /proc/self/fd magic link to the inode itself, so the
  // watch is on the file we opened even if the path changed meanwhile.
  int wd = ::inotify_add_watch(inotify_.get(), fd_path(fd).c_str(),
                               events == FileEvents::kHolderGone ? kHolderGoneMask
                               : events == FileEvents::kChanged  ? kChangedMask
                                                                 : kRenamedMask);
  if (wd < 0) return last_error();
  if (file_wd_ != wd) retire();
  file_wd_ = wd;
  // The same inode watched again (a waiter looking at an unchanged file)
  // is the current watch, not a retired one.
  retired_.erase(std::remove(retired_.begin(), retired_.end(), wd), retired_.end());
  return {};
}

void ChangeNotifier::retire() {
  if (file_wd_ >= 0 && file_wd_ != folder_wd_) {
    if (retired_.size() >= kMaxRetired) {
      ::inotify_rm_watch(inotify_.get(), retired_.front());  // may be gone already: ignore errors
      retired_.erase(retired_.begin());
    }
    retired_.push_back(file_wd_);
  }
  file_wd_ = -1;
}

bool ChangeNotifier::drain() {
  alignas(struct inotify_event) char buf[16 * 1024];
  constexpr std::size_t kLargestEvent = sizeof(struct inotify_event) + NAME_MAX + 1;
  bool relevant = false;
  saw_close_ = false;
  saw_change_ = false;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      if (ev->mask & IN_Q_OVERFLOW) {
        relevant = true;  // lost events: assume the worst
        saw_change_ = true;
      } else if (ev->wd == folder_wd_) {
        if (ev->len == 0 || name_ == ev->name) relevant = true;  // len 0: the folder itself
      } else if (ev->wd == file_wd_) {
        relevant = true;
        if (ev->mask & IN_CLOSE_WRITE) saw_close_ = true;
        if (ev->mask & ~static_cast<std::uint32_t>(IN_CLOSE_WRITE)) saw_change_ = true;
        if (ev->mask & IN_IGNORED) file_wd_ = -1;  // its file is gone, and the watch with it
      } else if (ev->mask & IN_IGNORED) {
        // A retired watch went with its file.
        retired_.erase(std::remove(retired_.begin(), retired_.end(), ev->wd), retired_.end());
      }
      p += sizeof(struct inotify_event) + ev->len;
    }
    // One read returns every queued event that fits; read again only when
    // the buffer may have cut the queue short.
    if (static_cast<std::size_t>(n) + kLargestEvent <= sizeof buf) break;
  }
  return relevant;
}

UniqueFd open_process_watch(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
#else
  (void)pid;
#endif
  return UniqueFd();
}

Wake sleep_until(std::initializer_list<int> fds, int cancel_fd,
                 std::optional<std::chrono::steady_clock::duration> timeout) {
  std::vector<struct pollfd> pfds;
  for (int fd : fds)
    if (fd >= 0) pfds.push_back({fd, POLLIN, 0});
  if (cancel_fd >= 0) pfds.push_back({cancel_fd, POLLIN, 0});
  int ms = -1;
  if (timeout) {
    auto count = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
    ms = count < 0 ? 0 : count > 1000000000 ? 1000000000 : static_cast<int>(count);
  }
  int rc = ::poll(pfds.data(), pfds.size(), ms);
  if (rc < 0) return errno == EINTR ? Wake::kEvent : Wake::kError;
  if (rc == 0) return Wake::kTimeout;
  if (cancel_fd >= 0 && (pfds.back().revents & POLLIN)) return Wake::kCancelled;
  return Wake::kEvent;
}

}  // namespace pidlock::detail
