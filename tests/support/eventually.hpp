// Waiting for a state that no pipe announces (a file appearing, a process
// being reparented): poll it every few milliseconds, with a bound.
#ifndef PIDLOCK_TESTS_SUPPORT_EVENTUALLY_HPP
#define PIDLOCK_TESTS_SUPPORT_EVENTUALLY_HPP

#include <chrono>
#include <thread>

namespace pidlock_test {

// Calls `done` every 5 ms until it is true (then true) or `limit` passes
// (then false).
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace pidlock_test

#endif  // PIDLOCK_TESTS_SUPPORT_EVENTUALLY_HPP
