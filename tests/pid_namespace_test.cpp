// Rule 8: a holder in another pid namespace (unshare --pid --fork) is held
// by its kernel lock, never judged by its pid, and taken over once the
// namespace is gone.
#include <pidlock/pidlock.hpp>

#include "support/test_support.hpp"
#include "core/judge.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace {

using namespace pidlock_test;
using pidlock::Inspection;
using pidlock::LockHandle;
using pidlock::LockManager;
using pidlock::Reason;
using pidlock::Verdict;

// The children of `pid` (from /proc/PID/task/PID/children).
std::vector<pid_t> children_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  long child;
  while (in >> child) out.push_back(static_cast<pid_t>(child));
  return out;
}

// Runs pidlock_test_holder as pid 1 of a new pid namespace.
struct NamespacedHolder {
  Child unshare;
  pid_t outside_pid = 0;  // the holder's pid in our namespace
  std::string ready;      // its report
};

NamespacedHolder start_namespaced_holder(const std::string& lock) {
  NamespacedHolder h;
  h.unshare = Child::spawn({"unshare", "--pid", "--fork", "--kill-child", holder_program(), "acquire", lock});
  auto line = h.unshare.read_line();
  h.ready = line.value_or("(no report)");
  auto kids = children_of(h.unshare.pid());
  if (kids.size() == 1) h.outside_pid = kids[0];
  return h;
}

TEST(PidNamespace, HolderInAnotherNamespaceIsHeldByKernelLockThenTakenOver) {
  TempDir dir;
  const std::string lock = dir / "ns.pid";
  NamespacedHolder h = start_namespaced_holder(lock);
  ASSERT_EQ(h.ready.rfind("ready 1 ", 0), 0u) << "the holder is pid 1 of its namespace: " << h.ready;
  ASSERT_GT(h.outside_pid, 0);
  ASSERT_NE(pid_namespace_inode("/proc/" + std::to_string(h.outside_pid) + "/ns/pid"),
            pid_namespace_inode("/proc/self/ns/pid"));
  EXPECT_EQ(first_line(lock), "1") << "line 1 holds the pid as the holder sees it";

  LockManager manager;
  for (int i = 0; i < 3; ++i) {
    Inspection insp = manager.inspect(lock);
    EXPECT_EQ(insp.verdict, Verdict::kHeld);
    EXPECT_EQ(insp.reason, Reason::kKernelLockHeld) << insp.detail;
    ASSERT_TRUE(insp.holder);
    EXPECT_EQ(insp.holder->pid, 1);
  }
  std::error_code ec;
  Inspection held;
  LockHandle blocked = manager.acquire(lock, {}, ec, &held);
  EXPECT_EQ(ec, pidlock::errc::held) << "pid 1 here is init, but the kernel lock decides";
  EXPECT_EQ(held.reason, Reason::kKernelLockHeld);
  EXPECT_FALSE(manager.break_stale(lock).removed);
  EXPECT_TRUE(exists(lock));

  // Kill the whole namespace: its pid 1, and with it every process in it.
  ASSERT_EQ(::kill(h.outside_pid, SIGKILL), 0);
  h.unshare.wait();
  LockHandle ours = manager.acquire(lock);
  EXPECT_TRUE(ours.took_over());
  ASSERT_TRUE(ours.previous_holder() && ours.previous_holder()->holder);
  EXPECT_EQ(ours.previous_holder()->holder->pid, 1);
  EXPECT_EQ(ours.previous_holder()->reason, Reason::kKernelLockFree);
}

TEST(PidNamespace, RecordNamesTheHoldersOwnPidNamespace) {
  // The record's pid-namespace must describe the namespace in which line 1
  // is meaningful: the holder's, not that of whatever /proc/1 names in the
  // (outer) /proc the holder can see.
  TempDir dir;
  const std::string lock = dir / "ns-record.pid";
  NamespacedHolder h = start_namespaced_holder(lock);
  ASSERT_EQ(h.ready.rfind("ready 1 ", 0), 0u) << h.ready;
  ASSERT_GT(h.outside_pid, 0);
  pidlock::ParsedRecord parsed = pidlock::parse_record(read_file(lock));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  ASSERT_TRUE(parsed.record->pid_namespace);
  EXPECT_EQ(*parsed.record->pid_namespace,
            pid_namespace_inode("/proc/" + std::to_string(h.outside_pid) + "/ns/pid"));
  EXPECT_NE(*parsed.record->pid_namespace, pid_namespace_inode("/proc/self/ns/pid"));
  ASSERT_TRUE(parsed.record->process_start_ticks);
  EXPECT_EQ(*parsed.record->process_start_ticks, proc_start_ticks(h.outside_pid))
      << "the holder's own start, not that of /proc/1 outside";
}

TEST(PidNamespace, RecordFromAnotherNamespaceWithoutKernelEvidenceIsUnknown) {
  using namespace pidlock::detail;
  SelfIdentity self = self_identity();
  ASSERT_TRUE(self.pid_namespace);
  pidlock::HolderRecord r = make_record(self, ::getpid());
  r.pid = 1;
  r.pid_namespace = *self.pid_namespace + 1;
  r.process_start_ticks.reset();
  r.status = "ready";
  r.data_directory = "/srv/db";
  pidlock::ParsedRecord parsed = pidlock::parse_record(pidlock::format_record(r));
  ASSERT_TRUE(parsed.record);
  Inspection i = judge(parsed, KernelEvidence::kNone, {}, self);
  EXPECT_EQ(i.verdict, Verdict::kUnknown);
  EXPECT_EQ(i.reason, Reason::kOtherPidNamespace) << i.detail;

  // Even naming a pid that does not exist here.
  r.pid = dead_pid();
  i = judge(pidlock::parse_record(pidlock::format_record(r)), KernelEvidence::kNone, {}, self);
  EXPECT_EQ(i.reason, Reason::kOtherPidNamespace);

  // With kernel evidence, the namespace does not matter.
  i = judge(pidlock::parse_record(pidlock::format_record(r)), KernelEvidence::kFree, {}, self);
  EXPECT_EQ(i.verdict, Verdict::kStale);
  EXPECT_EQ(i.reason, Reason::kKernelLockFree);
}

}  // namespace
