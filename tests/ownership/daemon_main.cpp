// pidlock_test_daemon: a server that daemonizes the way pidfile(3) users do,
// for the ownership tests. It acquires LOCK (conflicts are reported before
// it detaches), then forks; the child claims the lock, says
// "daemon <pid>" on stdout, sets its status to "ready" and serves until
// SIGTERM, when it releases the lock and exits 0.
//
//   pidlock_test_daemon LOCK fork-return   the parent returns from main at
//                                          once (its LockManager's
//                                          destructor runs), racing the
//                                          child's claim
//   pidlock_test_daemon LOCK fork-wait     the parent returns from main once
//                                          the child has claimed the lock
//   pidlock_test_daemon LOCK daemon3       glibc's daemon(3): the parent
//                                          _exits inside it
//
// Exit status of the parent: 0, or 2 when the lock is held ("held <pid>"
// on stdout), 3 on other errors.
#include <pidlock/pidlock.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void say(const std::string& line) {
  std::string out = line + "\n";
  (void)!::write(STDOUT_FILENO, out.data(), out.size());
}

// The daemon: claims the lock, serves until SIGTERM, releases, exits 0.
int serve(pidlock::LockHandle& lock, int claimed_fd) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &term, nullptr);
  std::error_code ec;
  lock.claim(ec);
  if (ec) {
    say("error claim: " + ec.message());
    return 3;
  }
  lock.update_status("ready", ec);
  if (ec) return 3;
  say("daemon " + std::to_string(::getpid()));
  if (claimed_fd >= 0) {
    (void)!::write(claimed_fd, "c", 1);
    ::close(claimed_fd);
  }
  int sig = 0;
  ::sigwait(&term, &sig);
  return lock.release() ? 4 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  if (argc != 3) {
    std::fprintf(stderr, "usage: pidlock_test_daemon LOCK fork-return|fork-wait|daemon3\n");
    return 64;
  }
  const std::string mode = argv[2];
  pidlock::LockManager manager;
  std::error_code ec;
  pidlock::Inspection holder;
  pidlock::LockHandle lock = manager.acquire(argv[1], {}, ec, &holder);
  if (ec) {
    say(ec == pidlock::errc::held && holder.holder ? "held " + std::to_string(holder.holder->pid)
                                                   : "error " + ec.message());
    return ec == pidlock::errc::held ? 2 : 3;
  }
  if (mode == "daemon3") {
    if (::daemon(/*nochdir=*/1, /*noclose=*/1) != 0) return 3;
    return serve(lock, -1);
  }
  int claimed[2];
  if (::pipe(claimed) != 0) return 3;
  const pid_t child = ::fork();
  if (child < 0) return 3;
  if (child == 0) {
    ::close(claimed[0]);
    ::setsid();
    // Only the waiting parent reads the pipe; after fork-return it is gone.
    if (mode != "fork-wait") ::close(claimed[1]);
    std::exit(serve(lock, mode == "fork-wait" ? claimed[1] : -1));
  }
  ::close(claimed[1]);
  if (mode == "fork-wait") {
    char c = 0;
    if (::read(claimed[0], &c, 1) != 1) return 3;
  }
  ::close(claimed[0]);
  return 0;  // leaves main normally: the handle's and the manager's destructors run
}
