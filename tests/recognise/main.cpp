// The recognition tests' main: quiet logging, and this process a child
// subreaper, so that processes orphaned by a killed parent (PostgreSQL
// backends after their postmaster's SIGKILL, COMMANDs of a killed pidlock)
// come to us and are reaped, rather than to a pid 1 that may never reap.
#include <pidlock/logging.hpp>

#include <gtest/gtest.h>

#include <sys/prctl.h>

int main(int argc, char** argv) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
