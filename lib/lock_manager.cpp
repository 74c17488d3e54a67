// LockManager: picks the store an address names (store.hpp), and turns the
// store's failures into logs, error codes and exceptions. The stores do
// the rest: file/ for lock files, etcd/ for etcd.
#include <pidlock/lock_manager.hpp>

#include "core/log.hpp"
#include "held_lock.hpp"
#include "store.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

namespace pidlock {

using namespace detail;

struct LockManager::Impl {
  mutable std::mutex mutex;
  // Every lock acquired through this manager, in order of acquisition. The
  // handles own the locks; the manager only remembers them for
  // release_all() and touch_all().
  std::vector<std::weak_ptr<HeldLock>> acquired;

  void remember(const LockHandle& handle) {
    std::lock_guard<std::mutex> guard(mutex);
    // Forget released locks now and then, so the list stays proportional
    // to the locks held.
    if (acquired.size() >= 64 && acquired.size() == acquired.capacity()) {
      acquired.erase(std::remove_if(acquired.begin(), acquired.end(),
                                    [](const std::weak_ptr<HeldLock>& w) {
                                      auto s = w.lock();
                                      return !s || !s->active();
                                    }),
                     acquired.end());
    }
    acquired.push_back(HandleAccess::state(handle));
  }

  std::vector<std::shared_ptr<HeldLock>> held() const {
    std::lock_guard<std::mutex> guard(mutex);
    std::vector<std::shared_ptr<HeldLock>> out;
    for (const auto& w : acquired)
      if (auto s = w.lock(); s && s->active()) out.push_back(std::move(s));
    return out;
  }
};

LockManager::LockManager() : impl_(std::make_unique<Impl>()) {}

LockManager::~LockManager() { (void)release_all(); }

std::error_code LockManager::release_all() noexcept {
  std::error_code first;
  try {
    auto locks = impl_->held();
    for (auto it = locks.rbegin(); it != locks.rend(); ++it) {
      std::error_code ec = (*it)->release();
      if (ec && ec != make_error_code(errc::not_held) && !first) first = ec;
    }
    std::lock_guard<std::mutex> guard(impl_->mutex);
    impl_->acquired.clear();
  } catch (const std::bad_alloc&) {
    first = std::make_error_code(std::errc::not_enough_memory);
  }
  return first;
}

std::error_code LockManager::touch_all() noexcept {
  std::error_code first;
  try {
    for (const auto& s : impl_->held()) {
      std::error_code ec = s->touch();
      if (ec && !first) first = ec;
    }
  } catch (const std::bad_alloc&) {
    first = std::make_error_code(std::errc::not_enough_memory);
  }
  return first;
}

std::size_t LockManager::held_count() const noexcept {
  try {
    return impl_->held().size();
  } catch (const std::bad_alloc&) {
    return 0;
  }
}

namespace {

// Both acquire() forms: reports through `failure` and `held`, logging
// what the store reported.
LockHandle acquire_reporting(const boost::filesystem::path& path, const AcquireOptions& options,
                             Failure& failure, Inspection& held) noexcept {
  LockHandle handle;
  guarded(failure, [&] {
    if (!valid_status(options.status)) {
      failure = pidlock_failure(errc::invalid_argument, "acquire",
                                "status must be 1 to " + std::to_string(kMaxStatusLength) +
                                    " printable characters without spaces");
      return;
    }
    if (Store* store = store_for(path, failure)) {
      if (auto state = store->acquire(path, options, failure, held)) {
        state->set_notify_service_manager(options.notify_service_manager);
        handle = HandleAccess::make(std::move(state));
      }
    }
  });
  if (failure.code == make_error_code(errc::held)) {
    PIDLOCK_LOG(info) << LockHeldError(path.string(), held).what();
  } else if (failure.code == make_error_code(errc::cancelled)) {
    PIDLOCK_LOG(info) << "acquire of \"" << path.string() << "\" cancelled";
  } else if (failure) {
    log_failure(failure, path.string());
  }
  return handle;
}

// Runs one store operation for a public entry point.
template <typename Result, typename Operation>
Result on_store(const boost::filesystem::path& path, Failure& failure, Operation&& operation) noexcept {
  Result result{};
  guarded(failure, [&] {
    if (Store* store = store_for(path, failure)) result = operation(*store);
  });
  return result;
}

}  // namespace

LockHandle LockManager::acquire(const Path& path, const AcquireOptions& options,
                                std::error_code& ec, Inspection* holder) noexcept {
  Failure failure;
  Inspection held;
  LockHandle handle = acquire_reporting(path, options, failure, held);
  if (handle) {
    try {
      impl_->remember(handle);
    } catch (const std::bad_alloc&) {
      // Still a valid lock; only release_all() will not see it.
    }
  }
  ec = failure.code;
  if (failure.code == make_error_code(errc::held) && holder != nullptr) *holder = std::move(held);
  return handle;
}

LockHandle LockManager::acquire(const Path& path, const AcquireOptions& options) {
  Failure failure;
  Inspection held;
  LockHandle handle = acquire_reporting(path, options, failure, held);
  if (handle) impl_->remember(handle);
  if (failure.code == make_error_code(errc::held)) throw LockHeldError(path.string(), std::move(held));
  if (failure) throw_failure(failure, path.string());
  return handle;
}

Inspection LockManager::inspect(const Path& path, const JudgeOptions& options,
                                std::error_code& ec) const noexcept {
  Failure failure;
  Inspection result =
      on_store<Inspection>(path, failure, [&](Store& store) { return store.inspect(path, options, failure); });
  ec = failure.code;
  return result;
}

Inspection LockManager::inspect(const Path& path, const JudgeOptions& options) const {
  Failure failure;
  Inspection result =
      on_store<Inspection>(path, failure, [&](Store& store) { return store.inspect(path, options, failure); });
  if (failure) throw_failure(failure, path.string());
  return result;
}

Inspection LockManager::wait_until_free(const Path& path,
                                        std::optional<std::chrono::milliseconds> timeout,
                                        const Canceller* canceller, const JudgeOptions& options,
                                        std::error_code& ec) noexcept {
  Failure failure;
  Inspection result = on_store<Inspection>(path, failure, [&](Store& store) {
    return store.wait_until_free(path, timeout, canceller, options, failure);
  });
  if (failure && failure.code != make_error_code(errc::held) && failure.code != make_error_code(errc::cancelled))
    log_failure(failure, path.string());
  ec = failure.code;
  return result;
}

BreakResult LockManager::break_stale(const Path& path, const JudgeOptions& options,
                                     std::error_code& ec) noexcept {
  Failure failure;
  BreakResult result =
      on_store<BreakResult>(path, failure, [&](Store& store) { return store.break_stale(path, options, failure); });
  if (failure) log_failure(failure, path.string());
  ec = failure.code;
  return result;
}

BreakResult LockManager::break_stale(const Path& path, const JudgeOptions& options) {
  Failure failure;
  BreakResult result =
      on_store<BreakResult>(path, failure, [&](Store& store) { return store.break_stale(path, options, failure); });
  if (failure) {
    log_failure(failure, path.string());
    throw_failure(failure, path.string());
  }
  return result;
}

}  // namespace pidlock
