#include "lease_enforcement.hpp"

#include "cli.hpp"

#include <pidlock/lock_watch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace pidlock::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Without pidfd_open (Linux < 5.3) the child's exit is polled this often.
constexpr std::chrono::milliseconds kExitPoll{50};

int pidfd_of(pid_t child) noexcept {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
#else
  (void)child;
  errno = ENOSYS;
  return -1;
#endif
}

int status_of(int wait_status) noexcept {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return kSoftware;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string format_seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", std::max(0.0, seconds(d)));
  return buf;
}

}  // namespace

LeaseEnforcement::LeaseEnforcement(const LockHandle& handle, std::string lock,
                                   std::optional<std::chrono::milliseconds> kill_after)
    : handle_(handle), lock_(std::move(lock)), kill_after_(kill_after), active_(handle.safe_until().has_value()) {
  const std::vector<std::string> ours = {"PIDLOCK_LOCK=", "PIDLOCK_FENCING_TOKEN="};
  for (char** e = environ; e && *e; ++e) {
    bool replaced = false;
    for (const auto& name : ours) replaced = replaced || std::strncmp(*e, name.c_str(), name.size()) == 0;
    if (!replaced) variables_.emplace_back(*e);
  }
  variables_.push_back("PIDLOCK_LOCK=" + lock_);
  if (auto token = handle.fencing_token()) variables_.push_back("PIDLOCK_FENCING_TOKEN=" + std::to_string(*token));
  for (auto& v : variables_) envp_.push_back(v.data());
  envp_.push_back(nullptr);
}

void LeaseEnforcement::in_child(pid_t parent) const noexcept {
  if (!active_) return;
  // The signal comes when the thread that forked us ends: pidlock's main
  // thread, which lives until pidlock exits. A set-user-ID COMMAND loses
  // the setting at exec (the kernel clears it), as documented.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kLockLost);  // pidlock died before prctl
}

Clock::time_point LeaseEnforcement::kill_time(Clock::time_point now) const {
  // Halfway to the moment etcd could let someone else in leaves the other
  // half for COMMAND to die and the scheduler to be late.
  std::optional<Clock::time_point> safe = handle_.safe_until();
  Clock::time_point at = safe && *safe > now ? now + (*safe - now) / 2 : now;
  if (kill_after_) at = std::min(at, now + *kill_after_);
  return at;
}

void LeaseEnforcement::stop(pid_t child, const std::string& reason) {
  const Clock::time_point now = Clock::now();
  kill_at_ = kill_time(now);
  if (*kill_at_ <= now) {
    // pidlock noticed too late (it was stopped, say): the lock may already
    // be someone else's, so no grace at all.
    print_error("lost the lock \"" + lock_ + "\" while COMMAND ran (" + reason + "); killing COMMAND (pid " +
                std::to_string(child) + ") at once");
    ::kill(child, SIGKILL);
    killed_ = true;
    return;
  }
  print_error("lost the lock \"" + lock_ + "\" while COMMAND ran (" + reason + "); stopping COMMAND (pid " +
              std::to_string(child) + "): SIGTERM now, SIGKILL in " + format_seconds(*kill_at_ - now) + " s");
  ::kill(child, SIGTERM);
}

int LeaseEnforcement::wait(pid_t child) {
  std::error_code ec;
  // No periodic recheck: the lock's own monitor reports every loss at once.
  LockWatch watch(handle_, std::chrono::milliseconds(0), ec);
  if (ec) print_error("cannot watch the lock \"" + lock_ + "\" (" + ec.message() + "); COMMAND runs unwatched");
  const int pidfd = pidfd_of(child);
  for (;;) {
    if (!kill_at_ && !ec && !watch.check()) stop(child, watch.loss_reason());
    int wait_status = 0;
    pid_t r = ::waitpid(child, &wait_status, WNOHANG);
    if (r == child) {
      if (pidfd >= 0) ::close(pidfd);
      return kill_at_ ? kLockLost : status_of(wait_status);
    }
    if (r < 0 && errno != EINTR) {
      if (pidfd >= 0) ::close(pidfd);
      return kSoftware;
    }
    const Clock::time_point now = Clock::now();
    if (kill_at_ && !killed_ && now >= *kill_at_) {
      ::kill(child, SIGKILL);
      killed_ = true;
      continue;
    }
    int timeout_ms = pidfd >= 0 ? -1 : static_cast<int>(kExitPoll.count());
    if (kill_at_ && !killed_) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*kill_at_ - now).count();
      timeout_ms = timeout_ms < 0 ? static_cast<int>(left) : std::min<int>(timeout_ms, static_cast<int>(left));
    }
    struct pollfd fds[2] = {{pidfd, POLLIN, 0}, {kill_at_ || ec ? -1 : watch.native_handle(), POLLIN, 0}};
    // EINTR (a relayed signal) just loops.
    (void)::poll(fds, 2, timeout_ms);
  }
}

}  // namespace pidlock::cli
