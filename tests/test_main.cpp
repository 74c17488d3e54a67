// The tests' main: quiet logging (the logging test turns it back on for
// itself), then GoogleTest.
#include <pidlock/logging.hpp>

#include <gtest/gtest.h>

int main(int argc, char** argv) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
