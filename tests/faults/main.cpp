// The fault tests' main: pidlock's logging off (failures are what these
// tests cause on purpose), then GoogleTest.
#include <pidlock/logging.hpp>

#include <gtest/gtest.h>

int main(int argc, char** argv) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
