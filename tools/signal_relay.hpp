// Passing SIGTERM, SIGINT and SIGHUP on to COMMAND, for `pidlock run`.
//
// pidlock must outlive COMMAND to remove the lock file after it, so it
// does not die of these signals itself: it forwards them to COMMAND and
// exits with COMMAND's status once COMMAND ends. A signal that arrives
// before COMMAND exists (while waiting for the lock) ends the wait instead,
// and pidlock then dies of it without running COMMAND.
//
// Process-wide: at most one SignalRelay may exist. Not thread-safe (the
// tool is single-threaded).
#ifndef PIDLOCK_TOOLS_SIGNAL_RELAY_HPP
#define PIDLOCK_TOOLS_SIGNAL_RELAY_HPP

#include <signal.h>
#include <sys/types.h>

namespace pidlock {
class Canceller;
}

namespace pidlock::cli {

class SignalRelay {
 public:
  // Installs the handlers. A signal that pidlock's parent set to be ignored
  // (nohup) stays ignored, by pidlock and by COMMAND, as a shell does.
  SignalRelay();
  // Restores the previous dispositions and signal mask.
  ~SignalRelay();
  SignalRelay(const SignalRelay&) = delete;
  SignalRelay& operator=(const SignalRelay&) = delete;

  // Until COMMAND exists, a signal also cancels this canceller (a waiting
  // acquire). Null: none.
  void set_canceller(Canceller* canceller) noexcept;

  // Holds the signals back (they stay pending) until unblock(); used around
  // fork so that none is lost between fork and set_child().
  void block() noexcept;
  void unblock() noexcept;

  // The first signal received before set_child(), or 0.
  int pending() const noexcept;

  // From now on signals go to `child`.
  void set_child(pid_t child) noexcept;

  // In the forked child, before exec: default dispositions and the signal
  // mask pidlock was started with. Async-signal-safe.
  void restore_in_child() const noexcept;

  // Dies of `signal` as if it had not been caught, so that pidlock's parent
  // sees the signal; returns 128 + signal if the signal does not kill.
  [[nodiscard]] int die_of(int signal) noexcept;

 private:
  static constexpr int kSignals[] = {SIGTERM, SIGINT, SIGHUP};
  static constexpr int kCount = 3;
  bool installed_[kCount] = {};
  struct sigaction previous_[kCount] = {};
  sigset_t original_mask_{};
  sigset_t relayed_{};
};

}  // namespace pidlock::cli

#endif  // PIDLOCK_TOOLS_SIGNAL_RELAY_HPP
