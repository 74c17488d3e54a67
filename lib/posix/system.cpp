#include "posix/system.hpp"

#include <atomic>

namespace pidlock::detail {
namespace {
std::atomic<System*> current{nullptr};
}  // namespace

System& sys() noexcept {
  System* s = current.load(std::memory_order_acquire);
  return s != nullptr ? *s : real_system();
}

System* set_system(System* replacement) noexcept {
  System* previous = current.exchange(replacement, std::memory_order_acq_rel);
  return previous != nullptr ? previous : &real_system();
}

}  // namespace pidlock::detail
