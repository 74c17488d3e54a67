#include "signal_relay.hpp"

#include <pidlock/canceller.hpp>

#include <cerrno>
#include <unistd.h>

namespace pidlock::cli {

namespace {

// Shared with the handler; sig_atomic_t-sized so that reads and writes of
// them are atomic with respect to the handler.
volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_pending = 0;
Canceller* volatile g_canceller = nullptr;

void relay(int signal, siginfo_t* info, void*) {
  int saved_errno = errno;
  pid_t child = g_child;
  if (child > 0) {
    // A signal the terminal sent (Ctrl-C, hang-up) went to the whole
    // foreground process group, so COMMAND, if it shares ours (it does
    // only in a terminal's foreground, see run_command.cpp), has it
    // already; forwarding it would deliver it twice. Otherwise COMMAND has
    // a group of its own, and every signal reaches it through us, once.
    bool group_signal = info && info->si_code == SI_KERNEL && getpgid(child) == getpgrp();
    if (!group_signal) (void)kill(child, signal);
  } else {
    if (g_pending == 0) g_pending = signal;
    if (Canceller* canceller = g_canceller) canceller->cancel();
  }
  errno = saved_errno;
}

}  // namespace

SignalRelay::SignalRelay() {
  sigemptyset(&relayed_);
  for (int signal : kSignals) sigaddset(&relayed_, signal);
  sigprocmask(SIG_SETMASK, nullptr, &original_mask_);
  struct sigaction action {};
  action.sa_sigaction = relay;
  action.sa_mask = relayed_;
  // SA_RESTART: read() and waitpid() in `run` resume after a forwarded
  // signal instead of failing with EINTR.
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  for (int i = 0; i < kCount; ++i) {
    if (sigaction(kSignals[i], nullptr, &previous_[i]) != 0) continue;
    if (previous_[i].sa_handler == SIG_IGN) continue;
    installed_[i] = sigaction(kSignals[i], &action, nullptr) == 0;
  }
}

SignalRelay::~SignalRelay() {
  for (int i = 0; i < kCount; ++i)
    if (installed_[i]) sigaction(kSignals[i], &previous_[i], nullptr);
  g_child = 0;
  g_canceller = nullptr;
  sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
}

void SignalRelay::set_canceller(Canceller* canceller) noexcept { g_canceller = canceller; }

void SignalRelay::block() noexcept { sigprocmask(SIG_BLOCK, &relayed_, nullptr); }

void SignalRelay::unblock() noexcept { sigprocmask(SIG_UNBLOCK, &relayed_, nullptr); }

int SignalRelay::pending() const noexcept { return g_pending; }

void SignalRelay::set_child(pid_t child) noexcept {
  g_canceller = nullptr;
  g_child = child;
}

void SignalRelay::restore_in_child() const noexcept {
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  for (int i = 0; i < kCount; ++i)
    if (installed_[i]) sigaction(kSignals[i], &fallback, nullptr);
  sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
}

int SignalRelay::die_of(int signal) noexcept {
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(signal, &fallback, nullptr);
  sigset_t just_this;
  sigemptyset(&just_this);
  sigaddset(&just_this, signal);
  sigprocmask(SIG_UNBLOCK, &just_this, nullptr);
  raise(signal);
  return 128 + signal;
}

}  // namespace pidlock::cli
