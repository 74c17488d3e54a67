#include "support/verdicts.hpp"

namespace pidlock_test {

std::string describe(pidlock::Verdict verdict, pidlock::Reason reason) {
  return std::string(pidlock::to_string(verdict)) + " " + pidlock::to_string(reason);
}

std::string describe(const pidlock::Inspection& inspection) {
  return describe(inspection.verdict, inspection.reason);
}

}  // namespace pidlock_test
