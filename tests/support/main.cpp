// The main of pidlock's GoogleTest suites: the library's logging off (the
// take-overs and failures these tests provoke on purpose would bury a real
// failure's output; the tests of logging turn it on for themselves), then
// GoogleTest.
#include <pidlock/logging.hpp>

#include <gtest/gtest.h>

int main(int argc, char** argv) {
  pidlock::set_log_threshold(pidlock::LogThreshold::kOff);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
