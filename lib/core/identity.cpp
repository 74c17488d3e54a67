#include "core/identity.hpp"

#include "posix/system.hpp"

#include <mutex>

namespace pidlock::detail {

std::int64_t start_epoch(const SelfIdentity& self, std::uint64_t ticks) {
  if (self.boot_time <= 0 || self.ticks_per_second <= 0) return 0;
  return self.boot_time + static_cast<std::int64_t>(ticks / static_cast<std::uint64_t>(self.ticks_per_second));
}

namespace {

std::mutex& identity_mutex() {
  static auto* mutex = new std::mutex;  // never destroyed: used at exit
  return *mutex;
}

// Everything but the pid-dependent fields is constant for the life of the
// process; re-reading /proc on every acquire would dominate its cost. The
// caller holds identity_mutex().
const SelfIdentity& cached_identity() {
  static SelfIdentity cached;
  static System* cached_for = nullptr;
  System& s = sys();
  pid_t pid = s.getpid();
  if (cached_for != &s || cached.pid != pid) {
    SelfIdentity id;
    id.pid = pid;
    id.boot_id = s.boot_id();
    id.pid_namespace = s.pid_namespace(pid);
    id.host = s.hostname();
    id.boot_time = s.boot_time();
    id.ticks_per_second = s.clock_ticks_per_second();
    id.pid_max = s.pid_max();
    ProcessStat st;
    if (s.process_stat(pid, &st)) {
      id.start_ticks = st.start_ticks;
      id.start_time = start_epoch(id, st.start_ticks);
    }
    if (id.start_time == 0) id.start_time = s.now();
    cached = id;
    cached_for = &s;
  }
  return cached;
}

}  // namespace

SelfIdentity self_identity(bool with_parent) {
  SelfIdentity out;
  {
    std::lock_guard<std::mutex> guard(identity_mutex());
    out = cached_identity();
  }
  out.parent = with_parent ? sys().getppid() : 0;  // changes when the parent dies
  return out;
}

HolderRecord own_record() {
  std::lock_guard<std::mutex> guard(identity_mutex());
  const SelfIdentity& self = cached_identity();
  return make_record(self, self.pid);
}

HolderRecord make_record(const SelfIdentity& self, pid_t pid) {
  HolderRecord rec;
  rec.format = RecordFormat::kPidlock;
  rec.format_version = kRecordFormatVersion;
  rec.pid = pid;
  rec.boot_id = self.boot_id;
  rec.host = self.host;
  if (pid == self.pid) {
    rec.start_time = self.start_time;
    if (self.start_ticks) rec.process_start_ticks = self.start_ticks;
    rec.pid_namespace = self.pid_namespace;
  } else {
    ProcessStat st;
    if (sys().process_stat(pid, &st)) {
      rec.process_start_ticks = st.start_ticks;
      rec.start_time = start_epoch(self, st.start_ticks);
    }
    if (rec.start_time == 0) rec.start_time = sys().now();
    // Line 1 is `pid` as our pid namespace numbers it, even where the
    // process itself lives in a namespace of its own (`unshare --pid`
    // without --fork puts our children there): the record names ours.
    rec.pid_namespace = self.pid_namespace;
  }
  return rec;
}

}  // namespace pidlock::detail
