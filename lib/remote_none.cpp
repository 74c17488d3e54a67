// The remote-store entry points of a build without any remote backend
// (PIDLOCK_WITH_ETCD=OFF): such addresses are refused with a clear error.
#include "held_lock.hpp"
#include "remote_lock.hpp"

namespace pidlock::detail {

namespace {
Failure unsupported() {
  return pidlock_failure(errc::invalid_argument, "use lock address",
                         "this build of pidlock has no etcd support (configure with -DPIDLOCK_WITH_ETCD=ON)");
}
}  // namespace

bool is_remote_address(const std::string& address) { return address.rfind("etcd://", 0) == 0; }

std::shared_ptr<HeldLock> remote_acquire(const std::string&, const AcquireOptions&, Failure& failure, Inspection&) {
  failure = unsupported();
  return nullptr;
}

Inspection remote_inspect(const std::string&, const JudgeOptions&, Failure& failure) {
  failure = unsupported();
  return {};
}

Inspection remote_wait_until_free(const std::string&, std::optional<std::chrono::milliseconds>, const Canceller*,
                                  Failure& failure) {
  failure = unsupported();
  return {};
}

}  // namespace pidlock::detail
