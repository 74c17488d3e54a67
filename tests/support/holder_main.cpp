// pidlock_test_holder: a small program the tests fork/exec to get a real,
// separate process doing one thing with a lock. It reports on stdout, one
// line per event, so that tests synchronise on pipes rather than on sleeps.
//
//   acquire LOCK [inheritable]  acquire, print "ready <pid> <fd>", then sleep
//                               until killed; on failure print
//                               "held <reason>" (exit 2) or "error <what>"
//                               (exit 3)
//   try-acquire LOCK            acquire and release at once; print
//                               "acquired", "held <reason>" or "error <what>"
//                               and exit 0, 2 or 3
//   fd-status N                 print "open" or "closed" for descriptor N
//                               (inherited across exec?), then sleep until
//                               killed
//   ofd-lock FILE               open FILE read-write, take an exclusive OFD
//                               lock (F_OFD_SETLK), print "ready", sleep
//   sleep                       print "ready <pid>", sleep until killed
//   inspect LOCK                print "<verdict> <reason>" (or "error
//                               <what>") and exit 0
//   hand-to-child LOCK          acquire, fork a child that sleeps, name it
//                               the holder (update_holder_pid, as `pidlock
//                               run` does), print "ready <child pid>", sleep
//   list-fds FILE               print a line per open descriptor, in
//                               order: "N", or "N FILE" if it is open on
//                               FILE (same device and inode); exit 0
//   count-signals               print "ready <pid>", then a line "<signal>
//                               from <sender pid>" for each SIGTERM, SIGINT
//                               and SIGHUP received; exit 0 on SIGUSR1
#include <pidlock/pidlock.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <set>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

[[noreturn]] void sleep_forever() {
  for (;;) ::pause();
}

void say(const std::string& line) {
  std::string out = line + "\n";
  (void)!::write(STDOUT_FILENO, out.data(), out.size());
}

int usage() {
  std::fprintf(stderr, "usage: pidlock_test_holder acquire|try-acquire|fd-status|ofd-lock|inspect|hand-to-child|list-fds|count-signals|sleep ...\n");
  return 64;
}

int report_failure(const std::error_code& ec, const pidlock::Inspection& holder) {
  if (ec == pidlock::errc::held) {
    say(std::string("held ") + pidlock::to_string(holder.reason));
    return 2;
  }
  say("error " + ec.message());
  return 3;
}

// Acquires `path`, or says why not and exits 2 (held) or 3 (error).
pidlock::LockHandle acquire_or_exit(pidlock::LockManager& manager, const char* path,
                                    const pidlock::AcquireOptions& options = {}) {
  std::error_code ec;
  pidlock::Inspection holder;
  pidlock::LockHandle handle = manager.acquire(path, options, ec, &holder);
  if (ec) std::exit(report_failure(ec, holder));
  return handle;
}

[[noreturn]] void acquire(const char* path, bool inheritable) {
  pidlock::AcquireOptions options;
  options.inheritable = inheritable;
  pidlock::LockManager manager;
  pidlock::LockHandle handle = acquire_or_exit(manager, path, options);
  say("ready " + std::to_string(::getpid()) + " " + std::to_string(handle.native_handle()));
  sleep_forever();
}

int try_acquire(const char* path) {
  pidlock::LockManager manager;
  pidlock::LockHandle handle = acquire_or_exit(manager, path);
  std::error_code release_ec = handle.release();
  say(release_ec ? "error release: " + release_ec.message() : std::string("acquired"));
  return release_ec ? 3 : 0;
}

int ofd_lock(const char* path) {
  int fd = ::open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    say(std::string("error open: ") + std::strerror(errno));
    return 3;
  }
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    say(std::string("error F_OFD_SETLK: ") + std::strerror(errno));
    return 3;
  }
  say("ready");
  sleep_forever();
}

int inspect(const char* path) {
  pidlock::LockManager manager;
  std::error_code ec;
  pidlock::Inspection insp = manager.inspect(path, {}, ec);
  say(ec ? "error " + ec.message()
         : std::string(pidlock::to_string(insp.verdict)) + " " + pidlock::to_string(insp.reason));
  return 0;
}

int hand_to_child(const char* path) {
  pidlock::LockManager manager;
  pidlock::LockHandle handle = acquire_or_exit(manager, path);
  pid_t child = ::fork();
  if (child == 0) sleep_forever();
  std::error_code ec;
  handle.update_holder_pid(child, ec);
  if (ec) {
    say("error update_holder_pid: " + ec.message());
    return 3;
  }
  say("ready " + std::to_string(child));
  sleep_forever();
}

// Reads /proc/self/fd itself: a shell listing its descriptors (`ls
// /proc/$$/fd | ...`) sees the pipes of its own pipeline come and go.
int list_fds(const char* path) {
  struct stat file {};
  const bool file_exists = ::stat(path, &file) == 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    say(std::string("error opendir: ") + std::strerror(errno));
    return 3;
  }
  std::set<int> fds;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    int fd = std::atoi(entry->d_name);
    if (fd != ::dirfd(dir)) fds.insert(fd);
  }
  ::closedir(dir);
  for (int fd : fds) {
    struct stat st {};
    bool is_file = file_exists && ::fstat(fd, &st) == 0 && st.st_dev == file.st_dev && st.st_ino == file.st_ino;
    say(std::to_string(fd) + (is_file ? std::string(" ") + path : std::string()));
  }
  return 0;
}

// Blocked and taken with sigwaitinfo, one at a time, so that each one is
// seen with its sender (two of one kind pending at once still count once).
int count_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signal : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, signal);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  say("ready " + std::to_string(::getpid()));
  for (;;) {
    siginfo_t info {};
    int signal = sigwaitinfo(&set, &info);
    if (signal == SIGUSR1) return 0;
    if (signal > 0) say(std::string(strsignal(signal)) + " from " + std::to_string(info.si_pid));
  }
}

}  // namespace

int main(int argc, char** argv) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  if (mode == "acquire" && argc >= 3) acquire(argv[2], argc >= 4 && std::string(argv[3]) == "inheritable");
  if (mode == "try-acquire" && argc >= 3) return try_acquire(argv[2]);
  if (mode == "fd-status" && argc >= 3) {
    say(::fcntl(std::atoi(argv[2]), F_GETFD) >= 0 ? "open" : "closed");
    sleep_forever();
  }
  if (mode == "ofd-lock" && argc >= 3) return ofd_lock(argv[2]);
  if (mode == "inspect" && argc >= 3) return inspect(argv[2]);
  if (mode == "hand-to-child" && argc >= 3) return hand_to_child(argv[2]);
  if (mode == "list-fds" && argc >= 3) return list_fds(argv[2]);
  if (mode == "count-signals") return count_signals();
  if (mode == "sleep") {
    say("ready " + std::to_string(::getpid()));
    sleep_forever();
  }
  return usage();
}
