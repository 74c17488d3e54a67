// EXPECT_EXIT_CODE(outcome, code), ASSERT_EXIT_CODE(outcome, code): a
// program run with Child::spawn(...).finish() ended by exiting (not by a
// signal) with `code`; a failure shows what it wrote on stdout and stderr.
#ifndef PIDLOCK_TESTS_SUPPORT_EXIT_CODE_HPP
#define PIDLOCK_TESTS_SUPPORT_EXIT_CODE_HPP

#include "support/child.hpp"

#include <gtest/gtest.h>

#define EXPECT_EXIT_CODE(outcome, expected)                                               \
  do {                                                                                    \
    const ::pidlock_test::Outcome& o_ = (outcome);                                        \
    EXPECT_TRUE(o_.exited) << "killed by signal " << o_.signal << "; stderr: " << o_.err; \
    EXPECT_EQ(o_.code, (expected)) << "stdout: " << o_.out << "\nstderr: " << o_.err;     \
  } while (0)

#define ASSERT_EXIT_CODE(outcome, expected)                                               \
  do {                                                                                    \
    const ::pidlock_test::Outcome& o_ = (outcome);                                        \
    ASSERT_TRUE(o_.exited) << "killed by signal " << o_.signal << "; stderr: " << o_.err; \
    ASSERT_EQ(o_.code, (expected)) << "stdout: " << o_.out << "\nstderr: " << o_.err;     \
  } while (0)

#endif  // PIDLOCK_TESTS_SUPPORT_EXIT_CODE_HPP
