// A verdict with its reason as one string, "held kernel-lock-held": what
// the tests compare (a child reports it through a pipe) and print.
#ifndef PIDLOCK_TESTS_SUPPORT_VERDICTS_HPP
#define PIDLOCK_TESTS_SUPPORT_VERDICTS_HPP

#include <pidlock/inspection.hpp>

#include <string>

namespace pidlock_test {

std::string describe(pidlock::Verdict verdict, pidlock::Reason reason);
std::string describe(const pidlock::Inspection& inspection);

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_VERDICTS_HPP
