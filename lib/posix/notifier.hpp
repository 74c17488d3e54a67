// Kernel notifications for waiting and watching (Linux: inotify, pidfd,
// timerfd, epoll). Another platform provides the same class over kqueue.
#ifndef PIDLOCK_POSIX_NOTIFIER_HPP
#define PIDLOCK_POSIX_NOTIFIER_HPP

#include "posix/syscalls.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace pidlock::detail {

// What a watch on a lock file reports.
enum class FileEvents {
  // A waiter's view: the holder's last descriptor closed (it released or
  // died), or the file lost its name.
  kHolderGone,
  // A holder's view: the file was written, renamed, deleted or re-linked.
  kChanged,
  // A waiter's view of a foreign file (PostgreSQL's, say) whose holder is
  // known only by pid: its name changed. Not closes: the waiter itself
  // opens such a file for writing to lock it, and its own close must not
  // wake it.
  kRenamed,
};

class ChangeNotifier {
 public:
  // Creates the inotify instance; check error() afterwards.
  ChangeNotifier();
  std::error_code error() const noexcept { return error_; }
  int fd() const noexcept { return inotify_.get(); }

  // Watches the folder open as `dirfd` for entries named `name` appearing,
  // disappearing or being renamed.
  std::error_code watch_folder(int dirfd, const std::string& name);
  // Watches the inode of the open file `fd`. Replaces the previous file
  // watch, which is retired rather than removed (see retire()).
  std::error_code watch_file(int fd, FileEvents events);
  // Consumes pending notifications; true if any concerned our name or file.
  bool drain();
  // Did the last drain() see the watched file's last writable descriptor
  // close (IN_CLOSE_WRITE)?
  bool saw_close() const noexcept { return saw_close_; }
  // Did it see the watched file change in any other way (unlinked,
  // renamed, its attributes changed), or lose events?
  bool saw_change() const noexcept { return saw_change_; }
  // Stops reporting the current file watch without removing it: removing a
  // watch costs tens of microseconds, which would sit in every hand-off,
  // while the watch of a deleted file goes by itself once its last
  // descriptor closes (IN_IGNORED). At most kMaxRetired retired watches
  // live on (on files that are never deleted); older ones are removed.
  void retire();

 private:
  static constexpr std::size_t kMaxRetired = 16;

  UniqueFd inotify_;
  std::error_code error_;
  std::string name_;
  int folder_wd_ = -1;
  int file_wd_ = -1;
  std::vector<int> retired_;  // oldest first
  bool saw_close_ = false;
  bool saw_change_ = false;
};

// A descriptor that becomes readable when process `pid` exits (pidfd), or
// -1 where the kernel has none.
UniqueFd open_process_watch(pid_t pid);

// How a sleep ended.
enum class Wake { kEvent, kTimeout, kCancelled, kError };

// Sleeps in poll() until one of `fds` (any of which may be -1) is readable,
// `cancel_fd` is readable, or `timeout` passes (none: no limit). EINTR is
// treated as an event, so callers re-check and sleep again.
Wake sleep_until(std::initializer_list<int> fds, int cancel_fd,
                 std::optional<std::chrono::steady_clock::duration> timeout);

}  // namespace pidlock::detail

#endif  // PIDLOCK_POSIX_NOTIFIER_HPP
