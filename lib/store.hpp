// The store interface: where locks live. LockManager picks a store once per
// call, from the lock's address, and everything after that is the store's:
//
//   "etcd://host:port,.../prefix/name"  -> the etcd store (etcd/etcd_store.cpp)
//   anything else                       -> a lock file (file/file_store.cpp)
//
// A store reports failures through a Failure (with the holder's verdict in
// `held` when the failure is errc::held); LockManager logs them and turns
// them into error codes or exceptions. Stores are stateless and shared by
// every LockManager of the process.
#ifndef PIDLOCK_STORE_HPP
#define PIDLOCK_STORE_HPP

#include <pidlock/inspection.hpp>
#include <pidlock/lock_manager.hpp>
#include <pidlock/options.hpp>

#include "core/failure.hpp"
#include "held_lock.hpp"

#include <boost/filesystem/path.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace pidlock::detail {

class Store {
 public:
  virtual ~Store() = default;
  // See LockManager::acquire. Null with `failure` set on failure.
  virtual std::shared_ptr<HeldLock> acquire(const boost::filesystem::path& address, const AcquireOptions& options,
                                            Failure& failure, Inspection& held) = 0;
  // See LockManager::inspect.
  virtual Inspection inspect(const boost::filesystem::path& address, const JudgeOptions& options,
                             Failure& failure) = 0;
  // See LockManager::wait_until_free.
  virtual Inspection wait_until_free(const boost::filesystem::path& address,
                                     std::optional<std::chrono::milliseconds> timeout, const Canceller* canceller,
                                     const JudgeOptions& options, Failure& failure) = 0;
  // See LockManager::break_stale.
  virtual BreakResult break_stale(const boost::filesystem::path& address, const JudgeOptions& options,
                                  Failure& failure) = 0;
};

// The store that `address` names; null, with `failure` set, for an address
// whose store this build does not have.
Store* store_for(const boost::filesystem::path& address, Failure& failure);

// The stores, for store_for().
Store& file_store();
#if PIDLOCK_HAVE_ETCD
Store& etcd_store();
#endif

}  // namespace pidlock::detail

#endif  // PIDLOCK_STORE_HPP
