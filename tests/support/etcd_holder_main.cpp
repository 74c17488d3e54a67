// pidlock_etcd_holder: a real process that holds an etcd lock for the tests
// and the benchmark.
//
//   pidlock_etcd_holder ADDRESS [wait]
//
// Acquires ADDRESS (waiting when asked), prints "acquired TOKEN" or
// "held VERDICT REASON" / "error MESSAGE", then obeys commands on stdin, one
// a line, answering one line each on stdout:
//   release        -> "released CODE"        (CODE: error value, 0 = ok)
//   recheck        -> "recheck OURS CODE"    (OURS: 1 or 0)
//   status WORD    -> "updated CODE"
//   time           -> "time NANOSECONDS"     (CLOCK_MONOTONIC, for hand-off)
//   release-timed  -> "released CODE T0"     (T0: monotonic ns just before)
// A loss of the lock is reported when it happens, from a LossMonitor:
//   "lost NANOSECONDS REASON" (CLOCK_MONOTONIC when it was reported). End of
// input releases the lock and exits.
#include <pidlock/pidlock.hpp>

#include <time.h>
#include <unistd.h>

#include <iostream>
#include <mutex>
#include <optional>
#include <string>

namespace {

std::mutex out_mutex;

void say(const std::string& line) {
  std::lock_guard<std::mutex> guard(out_mutex);
  std::string l = line + "\n";
  ssize_t n = ::write(1, l.data(), l.size());
  (void)n;
}

long long now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: pidlock_etcd_holder ADDRESS [wait]\n";
    return 2;
  }
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  pidlock::LockManager manager;
  pidlock::AcquireOptions options;
  options.status = "ready";
  options.wait = argc > 2 && std::string(argv[2]) == "wait";
  std::error_code ec;
  pidlock::Inspection holder;
  pidlock::LockHandle handle = manager.acquire(argv[1], options, ec, &holder);
  if (ec == pidlock::errc::held) {
    say(std::string("held ") + pidlock::to_string(holder.verdict) + " " + pidlock::to_string(holder.reason));
    return 3;
  }
  if (ec) {
    say("error " + ec.message());
    return 1;
  }
  say("acquired " + std::to_string(handle.fencing_token().value_or(0)) + " " + std::to_string(now_ns()));
  std::optional<pidlock::LossMonitor> monitor;
  monitor.emplace(handle, [](const std::string& reason) { say("lost " + std::to_string(now_ns()) + " " + reason); });
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "release" || line == "release-timed") {
      long long t0 = now_ns();
      monitor.reset();
      std::error_code rc = handle.release();
      say("released " + std::to_string(rc.value()) + (line == "release-timed" ? " " + std::to_string(t0) : ""));
    } else if (line == "recheck") {
      bool ours = handle.recheck(ec);
      say("recheck " + std::string(ours ? "1" : "0") + " " + std::to_string(ec.value()));
    } else if (line.rfind("status ", 0) == 0) {
      handle.update_status(line.substr(7), ec);
      say("updated " + std::to_string(ec.value()));
    } else if (line == "time") {
      say("time " + std::to_string(now_ns()));
    } else {
      say("unknown command " + line);
    }
  }
  monitor.reset();
  return 0;
}
