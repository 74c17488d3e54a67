// Helpers of the waiting-and-watching tests: temporary folders, pipes with
// deadlines, and real forked children that are SIGKILLed and reaped if a
// test ends early. Children never return into GoogleTest: they _exit.
#ifndef PIDLOCK_TESTS_WAITING_WAITING_SUPPORT_HPP
#define PIDLOCK_TESTS_WAITING_WAITING_SUPPORT_HPP

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace waiting_test {

using std::chrono::milliseconds;

// Generous bound for anything that should happen "at once": machines are
// shared and noisy, so this only catches hangs, never measures speed.
inline constexpr milliseconds kPatience{10000};

// A fresh folder under /tmp, removed with its content at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  // Names in the folder (hidden ones too), sorted.
  std::vector<std::string> entries() const;

 private:
  std::string path_;
};

// A close-on-exec pipe whose ends close at destruction.
class Pipe {
 public:
  Pipe();
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void close_read();
  void close_write();

 private:
  int fds_[2] = {-1, -1};
};

// One byte / one line on a pipe. Reads give up at the timeout (nullopt) or
// at EOF (nullopt).
bool write_byte(int fd, char c = '.');
std::optional<char> read_byte(int fd, milliseconds timeout = kPatience);
bool write_line(int fd, const std::string& line);
std::optional<std::string> read_line(int fd, milliseconds timeout = kPatience);
// True if `fd` becomes readable (data or EOF) within `timeout`.
bool readable_within(int fd, milliseconds timeout);

// A forked child. The child runs body() and _exits with its return value
// (an exception: 125). Destruction SIGKILLs and reaps a child still there.
class Child {
 public:
  static Child fork(const std::function<int()>& body);
  Child() = default;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  void kill(int signal);
  // Waits for the child to end, up to `timeout`; returns its wait status,
  // or nullopt if it is still running.
  std::optional<int> wait(milliseconds timeout = kPatience);
  // wait(), then: did it exit normally with `code`?
  bool exited_with(int code, milliseconds timeout = kPatience);

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// Blocks until thread `tid` of process `pid` sleeps in poll() with a
// non-zero timeout -- where a waiting acquire, wait_until_free and
// wait_for_loss sleep -- as /proc/<pid>/task/<tid>/syscall shows. This is how
// a test knows a waiter is really waiting before it changes the lock,
// without guessing with a sleep. False if that does not happen in time.
bool wait_until_sleeping_in_poll(pid_t pid, pid_t tid, milliseconds timeout = kPatience);
inline bool wait_until_sleeping_in_poll(pid_t pid, milliseconds timeout = kPatience) {
  return wait_until_sleeping_in_poll(pid, pid, timeout);
}
pid_t current_tid();

// A lock held by a forked child: the child closes the descriptors it
// inherited (so that it shares none of the test's locks), acquires `path`
// (or, with `socket`, lock_unix_socket(path) and binds and listens on a
// socket there), reports through a pipe, and holds until release() or
// kill().
class HeldInChild {
 public:
  enum class Kind { kLockFile, kUnixSocket };
  explicit HeldInChild(const std::string& path, Kind kind = Kind::kLockFile);
  // Did the child acquire the lock?
  bool ok() const { return ok_; }
  pid_t pid() const { return child_.pid(); }
  // Asks the child to release and exit; true if it released without error.
  bool release();
  // SIGKILLs the child and reaps it (its lock file stays behind).
  void kill();

 private:
  Pipe ready_;
  Pipe go_;
  Child child_;
  bool ok_ = false;
};

// CPU time (user + system) a process has used, from /proc/<pid>/stat.
std::optional<milliseconds> cpu_time(pid_t pid);

// Seconds-and-nanoseconds of the file's mtime (lstat), nullopt if missing.
std::optional<struct timespec> mtime_of(const std::string& path);
bool exists(const std::string& path);

}  // namespace waiting_test

#endif  // PIDLOCK_TESTS_WAITING_WAITING_SUPPORT_HPP
