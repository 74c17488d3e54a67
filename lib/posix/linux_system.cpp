// The real System on Linux.
#include "posix/system.hpp"

#include "core/parse_integer.hpp"
#include "posix/linux_proc.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <string_view>

namespace pidlock::detail {
namespace {

using linux_proc::read_small_file;

// glibc no longer caches getpid(), and the library asks on every acquire
// and release (a forked child must never remove its parent's lock): one
// system call each time, on a path that is made of a dozen. Cached here,
// and forgotten in the child of every fork() (pthread_atfork). A child of
// a raw clone() that runs this library is not supported (nor is it by
// glibc's own pid-dependent state).
std::atomic<pid_t> cached_pid{0};

void forget_cached_pid() { cached_pid.store(0, std::memory_order_relaxed); }

std::atomic<std::uint64_t> fork_count{0};
void count_fork() { fork_count.fetch_add(1, std::memory_order_relaxed); }

pid_t own_pid() {
  pid_t pid = cached_pid.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  static const bool registered = ::pthread_atfork(count_fork, nullptr, forget_cached_pid) == 0;
  pid = ::getpid();
  if (registered) cached_pid.store(pid, std::memory_order_relaxed);
  return pid;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The holder's exclusive lock covers byte 0; waiters' shared announcements
// cover byte 1 (see System::announce_waiter). A lock of one byte, not the
// whole file, so that the two never conflict.
constexpr off_t kHolderByte = 0;
constexpr off_t kWaiterByte = 1;

struct flock byte_lock(short type, off_t byte) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return fl;
}

// Is a lock that conflicts with an exclusive one on `byte` held through
// another open file description? (F_OFD_GETLK ignores our own.)
LockQuery query_byte(int fd, off_t byte) {
  struct flock fl = byte_lock(F_WRLCK, byte);
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) {
    if (errno == ENOLCK || errno == EOPNOTSUPP || errno == EINVAL) return LockQuery::kUnsupported;
    return LockQuery::kError;
  }
  return fl.l_type == F_UNLCK ? LockQuery::kFree : LockQuery::kHeld;
}

class LinuxSystem final : public System {
 public:
  int openat(int dirfd, const char* name, int flags, mode_t mode) override {
    return ::openat(dirfd, name, flags, mode);
  }
  int close(int fd) override { return ::close(fd); }
  ssize_t pread(int fd, void* buf, size_t count, off_t offset) override {
    return ::pread(fd, buf, count, offset);
  }
  ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) override {
    return ::pwrite(fd, buf, count, offset);
  }
  int fsync(int fd) override { return ::fsync(fd); }
  int fstat(int fd, struct stat* st) override { return ::fstat(fd, st); }
  int fstatat(int dirfd, const char* name, struct stat* st, int flags) override {
    return ::fstatat(dirfd, name, st, flags);
  }
  int unlinkat(int dirfd, const char* name, int flags) override {
    return ::unlinkat(dirfd, name, flags);
  }
  int fchmod(int fd, mode_t mode) override { return ::fchmod(fd, mode); }
  int fchown(int fd, uid_t owner, gid_t group) override { return ::fchown(fd, owner, group); }
  int ftruncate(int fd, off_t length) override { return ::ftruncate(fd, length); }
  int futimens(int fd, const struct timespec times[2]) override {
    return ::futimens(fd, times);
  }
  int set_cloexec(int fd, bool on) override {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) return -1;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    return ::fcntl(fd, F_SETFD, flags);
  }


  int list_directory(int dirfd, std::vector<std::string>* names) override {
    // fdopendir() takes over the descriptor it is given, and its position:
    // a duplicate keeps the caller's descriptor as it was.
    const int copy = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return -1;
    DIR* dir = ::fdopendir(copy);
    if (dir == nullptr) {
      const int saved = errno;
      ::close(copy);
      errno = saved;
      return -1;
    }
    ::rewinddir(dir);
    names->clear();
    int saved = 0;
    try {
      errno = 0;
      while (const struct dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != "..") names->emplace_back(name);
      }
      saved = errno;  // 0 at the end of the folder
    } catch (const std::bad_alloc&) {
      saved = ENOMEM;
    }
    ::closedir(dir);
    errno = saved;
    return saved == 0 ? 0 : -1;
  }

  int poll(struct pollfd* fds, nfds_t count, int timeout_ms) override { return ::poll(fds, count, timeout_ms); }

  // Open-file-description locks (Linux >= 3.15): owned by the open file
  // description, not the process, so that (unlike classic POSIX locks) a
  // close() of another descriptor of the same file elsewhere in the process
  // does not drop them, two descriptions in one process conflict, and the
  // lock is released by the kernel when the last descriptor closes, which
  // includes the holder being killed.
  KernelLock try_lock(int fd) override {
    struct flock fl = byte_lock(F_WRLCK, kHolderByte);
    if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return KernelLock::kAcquired;
    switch (errno) {
      case EAGAIN:
      case EACCES:
        return KernelLock::kHeldByOther;
      case ENOLCK:
      case EOPNOTSUPP:
      case EINVAL:  // kernel without OFD locks
        return KernelLock::kUnsupported;
      default:
        return KernelLock::kError;
    }
  }

  int wait_lock(int fd) override {
    struct flock fl = byte_lock(F_WRLCK, kHolderByte);
    return ::fcntl(fd, F_OFD_SETLKW, &fl);
  }

  LockQuery query_lock(int fd) override { return query_byte(fd, kHolderByte); }

  int unlock(int fd) override {
    struct flock fl = byte_lock(F_UNLCK, kHolderByte);
    return ::fcntl(fd, F_OFD_SETLK, &fl);
  }

  int announce_waiter(int fd) override {
    struct flock fl = byte_lock(F_RDLCK, kWaiterByte);
    return ::fcntl(fd, F_OFD_SETLK, &fl);
  }

  int withdraw_waiter(int fd) override {
    struct flock fl = byte_lock(F_UNLCK, kWaiterByte);
    return ::fcntl(fd, F_OFD_SETLK, &fl);
  }

  LockQuery query_waiters(int fd) override { return query_byte(fd, kWaiterByte); }

  int kill(pid_t pid, int sig) override { return ::kill(pid, sig); }
  pid_t getpid() override { return own_pid(); }
  pid_t getppid() override { return ::getppid(); }
  uid_t geteuid() override { return ::geteuid(); }
  gid_t getegid() override { return ::getegid(); }

  bool process_stat(pid_t pid, ProcessStat* out) override {
    // A pid of our namespace, looked up in /proc's (see linux_proc.hpp).
    linux_proc::ProcessFolder folder(pid, own_pid());
    std::string text;
    if (!folder.valid() || !read_small_file(folder.path("stat").c_str(), &text) || !folder.still_valid())
      return false;
    // The command name (field 2) may contain spaces and ')': the fields we
    // want follow the last ')'.
    auto open_paren = text.find('(');
    auto close_paren = text.rfind(')');
    if (open_paren == std::string::npos || close_paren == std::string::npos || close_paren < open_paren)
      return false;
    // Fields 3 (state), 4 (ppid) and 22 (starttime), each parsed whole:
    // a field that is not a number is an unreadable stat, not a zero.
    std::string_view rest = std::string_view(text).substr(close_paren + 1);
    std::string_view fields[20];  // fields 3..22
    for (std::string_view& field : fields) {
      const std::size_t begin = rest.find_first_not_of(' ');
      if (begin == std::string_view::npos) return false;
      rest.remove_prefix(begin);
      field = rest.substr(0, rest.find_first_of(" \n"));
      rest.remove_prefix(field.size());
    }
    const std::optional<pid_t> ppid = parse_integer<pid_t>(fields[1]);
    const std::optional<std::uint64_t> start = parse_integer<std::uint64_t>(fields[19]);
    if (fields[0].size() != 1 || !ppid || !start) return false;
    out->state = fields[0][0];
    out->parent = *ppid;
    out->start_ticks = *start;
    out->name = text.substr(open_paren + 1, close_paren - open_paren - 1);
    return true;
  }

  int process_scan(const FileId* directory, const FileId* file, ProcessScan* out) override {
    return linux_proc::scan(directory, file, out);
  }

  LockQuery query_flock(int fd) override {
    // A shared flock conflicts only with an exclusive one, so two
    // inspectors asking at once never see each other.
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
      ::flock(fd, LOCK_UN);
      return LockQuery::kFree;
    }
    if (errno == EWOULDBLOCK) return LockQuery::kHeld;
    if (errno == EINVAL || errno == ENOLCK || errno == EOPNOTSUPP) return LockQuery::kUnsupported;
    return LockQuery::kError;
  }

  int shm_stat(int id, SharedMemoryStat* out) override {
    struct shmid_ds ds {};
    if (::shmctl(id, IPC_STAT, &ds) != 0) return -1;
    out->key = static_cast<std::int64_t>(ds.shm_perm.__key);
    out->attached = static_cast<std::uint64_t>(ds.shm_nattch);
    out->creator = ds.shm_cpid;
    out->last_attached = ds.shm_lpid;
    return 0;
  }

  int connect_unix(const char* path) override {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    const std::size_t length = std::strlen(path);
    if (length >= sizeof addr.sun_path) {
      errno = ENAMETOOLONG;
      return -1;
    }
    std::memcpy(addr.sun_path, path, length + 1);
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return -1;
    // Non-blocking: a listener whose backlog is full answers EAGAIN at once
    // instead of making us wait for it; it listens all the same.
    int rc = ::connect(s, reinterpret_cast<const struct sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::close(s);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS) return 0;
    errno = err;
    return -1;
  }

  ssize_t send_datagram(const char* address, const void* data, size_t size) override {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    const std::size_t length = std::strlen(address);
    if (length == 0 || (address[0] != '/' && address[0] != '@')) {
      errno = EAFNOSUPPORT;  // systemd also knows vsock: addresses; we do not
      return -1;
    }
    if (length >= sizeof addr.sun_path) {
      errno = ENAMETOOLONG;
      return -1;
    }
    std::memcpy(addr.sun_path, address, length);
    // An abstract name starts with a NUL byte and is exactly `length` bytes
    // long (no terminating NUL); a path is terminated as usual.
    socklen_t addr_length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + length);
    if (address[0] == '@') {
      addr.sun_path[0] = '\0';
    } else {
      addr_length += 1;
    }
    int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    ssize_t sent = ::sendto(s, data, size, MSG_NOSIGNAL, reinterpret_cast<const struct sockaddr*>(&addr), addr_length);
    int err = errno;
    ::close(s);
    errno = err;
    return sent;
  }

  std::string boot_id() override {
    std::string text;
    if (!read_small_file("/proc/sys/kernel/random/boot_id", &text)) return {};
    return trim(text);
  }

  std::optional<std::uint64_t> pid_namespace(pid_t pid) override {
    linux_proc::ProcessFolder folder(pid, own_pid());
    struct stat st {};
    if (!folder.valid() || ::stat(folder.path("ns/pid").c_str(), &st) != 0 || !folder.still_valid())
      return std::nullopt;
    return static_cast<std::uint64_t>(st.st_ino);
  }

  std::string hostname() override {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return {};
    return buf;
  }

  std::int64_t boot_time() override {
    std::string text;
    if (!read_small_file("/proc/stat", &text)) return 0;
    auto at = text.find("\nbtime ");
    if (at == std::string::npos) return 0;
    return std::strtoll(text.c_str() + at + 7, nullptr, 10);
  }

  long clock_ticks_per_second() override { return ::sysconf(_SC_CLK_TCK); }

  pid_t pid_max() override {
    std::string text;
    if (!read_small_file("/proc/sys/kernel/pid_max", &text)) return 4194304;  // Linux's limit
    long v = std::strtol(text.c_str(), nullptr, 10);
    return v > 0 ? static_cast<pid_t>(v) : 4194304;
  }

  std::int64_t now() override { return static_cast<std::int64_t>(std::time(nullptr)); }
};

}  // namespace

std::uint64_t forks_so_far() noexcept { return fork_count.load(std::memory_order_relaxed); }

System& real_system() noexcept {
  // Never destroyed: a LockManager with static storage duration releases
  // its locks from its destructor at exit, possibly after this function's
  // statics would have been destroyed.
  alignas(LinuxSystem) static unsigned char storage[sizeof(LinuxSystem)];
  static LinuxSystem* instance = ::new (static_cast<void*>(storage)) LinuxSystem;
  return *instance;
}

}  // namespace pidlock::detail
