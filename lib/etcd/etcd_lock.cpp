#include "etcd/etcd_lock.hpp"

#include <pidlock/error.hpp>

#include "etcd/base64.hpp"
#include "core/log.hpp"
#include "posix/notifier.hpp"
#include "posix/system.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

namespace pidlock::detail::etcd {

namespace {

// Keep-alives go out every TTL/3, as etcd's own clients do: two may be lost
// before the lease is in danger.
std::chrono::milliseconds keep_alive_interval(std::chrono::seconds ttl) {
  return std::max(std::chrono::milliseconds(200), std::chrono::duration_cast<std::chrono::milliseconds>(ttl) / 3);
}

// After a keep-alive no member answered, try again this soon (other members
// may be electing a leader, which takes about one election timeout).
constexpr std::chrono::milliseconds kKeepAliveRetry{250};
constexpr std::chrono::milliseconds kWatchOpenTimeout{1000};

UniqueFd make_eventfd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw std::system_error(last_error(), "create eventfd");
  return UniqueFd(fd);
}

void signal_fd(int fd) noexcept {
  std::uint64_t one = 1;
  ssize_t n;
  do {
    n = ::write(fd, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
}

std::chrono::milliseconds clamp_timeout(Clock::duration left) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left);
  return std::clamp(ms, std::chrono::milliseconds(100), kRequestTimeout);
}

}  // namespace

EtcdLock::EtcdLock(Grant grant, boost::filesystem::path address, HolderRecord record)
    : HeldLock(std::move(address), std::move(record), std::nullopt, sys().getpid()),
      grant_(std::move(grant)),
      client_(grant_.address.endpoints),
      deadline_(grant_.lease_deadline.time_since_epoch().count()),
      loss_fd_(make_eventfd()),
      stop_fd_(make_eventfd()) {
  monitor_ = std::thread([this] { run(); });
}

EtcdLock::~EtcdLock() {
  if (!acquired_here()) {
    // A forked child: the monitor thread exists only in the parent. Joining
    // the copied std::thread would wait for a thread that is not there, and
    // cleaning up the curl handle could disturb the parent's connection, so
    // both are leaked on purpose (the child is about to exit or exec).
    (void)new std::thread(std::move(monitor_));
    client_.abandon();
    return;
  }
  stop_monitor();
}

void EtcdLock::stop_monitor() noexcept {
  if (!monitor_.joinable()) return;
  signal_fd(stop_fd_.get());
  monitor_.join();
}

void EtcdLock::extend(Clock::time_point to) noexcept {
  Clock::rep want = to.time_since_epoch().count();
  Clock::rep have = deadline_.load();
  while (want > have && !deadline_.compare_exchange_weak(have, want)) {
  }
}

void EtcdLock::lose(const std::string& why) {
  {
    std::lock_guard<std::mutex> guard(loss_mutex_);
    if (lost_.load()) return;
    loss_reason_ = why;
    lost_.store(true);
  }
  // Level-triggered on purpose: stays readable, so every watcher sees it.
  signal_fd(loss_fd_.get());
  PIDLOCK_LOG(warning) << "lost etcd lock \"" << grant_.address.text << "\" (lease " << grant_.lease_id
                       << ", fencing token " << grant_.token << "): " << why;
}

bool EtcdLock::lost(std::string* why) {
  if (!lost_.load()) return false;
  std::lock_guard<std::mutex> guard(loss_mutex_);
  *why = loss_reason_;
  return true;
}

bool EtcdLock::not_ours(const KeyValue* kv, bool deleted, std::string* why) const {
  if (deleted || kv == nullptr) {
    *why = "the key " + grant_.address.key + " was deleted (the lease expired, or someone removed it)";
    return true;
  }
  if (static_cast<std::uint64_t>(kv->create_revision) != grant_.token) {
    *why = "the key " + grant_.address.key + " was re-created by another holder (fencing token " +
           std::to_string(kv->create_revision) + ", ours " + std::to_string(grant_.token) + ")";
    return true;
  }
  if (kv->lease != grant_.lease_id) {
    *why = "the key " + grant_.address.key + " was rewritten under another lease (" + std::to_string(kv->lease) + ")";
    return true;
  }
  return false;
}

bool EtcdLock::keep_alive(Client& client, std::chrono::milliseconds timeout, bool* unreachable,
                          std::error_code* ec) {
  *unreachable = false;
  const Clock::time_point sent = Clock::now();
  Reply r = client.call("/v3/lease/keepalive", Json{{"ID", std::to_string(grant_.lease_id)}}, timeout);
  if (r.status == Reply::Status::kUnreachable) {
    *unreachable = true;
    *ec = r.error;
    PIDLOCK_LOG(debug) << "etcd lock \"" << grant_.address.text << "\": keep-alive of lease " << grant_.lease_id
                       << " failed: " << r.message;
    return true;
  }
  if (r.status == Reply::Status::kRefused) {
    lose("etcd refused to keep lease " + std::to_string(grant_.lease_id) + " alive: " + r.message);
    return false;
  }
  const Json& result = r.body.contains("result") ? r.body["result"] : r.body;
  std::int64_t ttl = int_field(result, "TTL");
  if (ttl <= 0) {
    lose("lease " + std::to_string(grant_.lease_id) + " expired (etcd reports no time left)");
    return false;
  }
  extend(sent + std::chrono::seconds(ttl));
  return true;
}

void EtcdLock::run() noexcept {
  try {
    monitor();
  } catch (const std::exception& e) {
    // Without its monitor the lock cannot be kept: say so rather than hold
    // a lock that will silently expire.
    try {
      lose(std::string("the keep-alive thread failed: ") + e.what());
    } catch (...) {
      signal_fd(loss_fd_.get());
    }
  }
}

void EtcdLock::monitor() {
  Client client(grant_.address.endpoints);
  WatchStream watch(grant_.address.endpoints, grant_.preferred);
  const auto interval = keep_alive_interval(grant_.ttl);
  Clock::time_point next_keep_alive = Clock::now() + interval;
  std::string problem;
  // From the revision after our creation: any later change of the key is
  // reported, even one that happens before the watch is in place.
  bool watching = watch.open(grant_.address.key, static_cast<std::int64_t>(grant_.token) + 1, kWatchOpenTimeout,
                             &problem, stop_fd_.get());
  std::vector<WatchEvent> events;
  for (;;) {
    Clock::time_point now = Clock::now();
    if (now >= deadline()) {
      lose("no keep-alive of lease " + std::to_string(grant_.lease_id) + " succeeded for its whole ttl of " +
           std::to_string(grant_.ttl.count()) + " s (etcd unreachable, or this process was stopped): it may " +
           "have expired and the key may belong to someone else");
      return;
    }
    if (now >= next_keep_alive) {
      bool unreachable = false;
      std::error_code ec;
      if (!keep_alive(client, clamp_timeout(deadline() - now), &unreachable, &ec)) return;
      next_keep_alive = unreachable ? Clock::now() + kKeepAliveRetry : now + interval;
      continue;
    }
    Clock::time_point until = std::min(next_keep_alive, deadline());
    if (!watching) {
      watching = watch.reopen(kWatchOpenTimeout, &problem, stop_fd_.get());
      if (!watching) {
        if (sleep_until({}, stop_fd_.get(), until - Clock::now()) == Wake::kCancelled) return;
        continue;
      }
    }
    switch (watch.wait(until, stop_fd_.get(), &events)) {
      case WatchStream::Result::kCancelled:
        return;  // release() or the destructor stops us
      case WatchStream::Result::kTimeout:
        break;
      case WatchStream::Result::kBroken:
        watching = false;  // resumes from the revision after the last event
        break;
      case WatchStream::Result::kCompacted: {
        // The history we would resume from is gone: look at the key itself,
        // then watch from what we saw.
        Reply r = client.call("/v3/kv/range", Json{{"key", base64_encode(grant_.address.key)}});
        watching = false;
        if (r.ok()) {
          auto kv = first_kv(r.body);
          std::string why;
          if (not_ours(kv ? &*kv : nullptr, false, &why)) {
            lose(why);
            return;
          }
          watching = watch.open(grant_.address.key, int_field(r.body["header"], "revision") + 1, kWatchOpenTimeout,
                                &problem, stop_fd_.get());
        }
        break;
      }
      case WatchStream::Result::kEvents:
        for (const auto& ev : events) {
          std::string why;
          if (not_ours(&ev.kv, ev.deleted, &why)) {
            lose(why);
            return;
          }
        }
        break;
    }
  }
}

std::error_code EtcdLock::revoke_lease() noexcept {
  if (released_) return make_error_code(errc::not_held);
  released_ = true;
  stop_monitor();
  try {
    // Revoking the lease deletes, in the same raft entry, exactly the keys
    // attached to it. Only our transaction ever attached a key to this
    // lease, so this removes our key if, and only if, it is still ours: the
    // same guarantee as a "delete if create_revision == token" transaction,
    // in one round trip instead of two.
    Reply r = client_.call("/v3/lease/revoke", Json{{"ID", std::to_string(grant_.lease_id)}});
    std::string why;
    if (r.status == Reply::Status::kUnreachable) {
      PIDLOCK_LOG(error) << "release etcd lock \"" << grant_.address.text << "\": etcd cannot be reached ("
                         << r.message << "); the key stays until lease " << grant_.lease_id << " expires, within "
                         << grant_.ttl.count() << " s";
      return r.error ? r.error : std::make_error_code(std::errc::host_unreachable);
    }
    if (r.status == Reply::Status::kRefused && r.grpc_code != kGrpcNotFound) {
      PIDLOCK_LOG(error) << "release etcd lock \"" << grant_.address.text << "\": etcd refused to revoke lease "
                         << grant_.lease_id << ": " << r.message;
      return std::make_error_code(std::errc::io_error);
    }
    if (r.status == Reply::Status::kRefused) lose("lease " + std::to_string(grant_.lease_id) + " had expired");
    if (lost(&why)) {
      PIDLOCK_LOG(warning) << "release etcd lock \"" << grant_.address.text << "\": the lock was already lost ("
                           << why << ")";
      return make_error_code(errc::lock_lost);
    }
    PIDLOCK_LOG(info) << "released etcd lock \"" << grant_.address.text << "\" (lease " << grant_.lease_id
                      << ", fencing token " << grant_.token << ")";
    return {};
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  } catch (const std::exception&) {
    return std::make_error_code(std::errc::io_error);
  }
}

bool EtcdLock::check_key(std::string* why, std::error_code* ec) noexcept {
  try {
    if (lost(why)) return false;
    if (Clock::now() >= deadline()) {
      lose("no keep-alive of lease " + std::to_string(grant_.lease_id) + " succeeded for its whole ttl");
      lost(why);
      return false;
    }
    Reply r = client_.call("/v3/kv/range", Json{{"key", base64_encode(grant_.address.key)}});
    if (r.status == Reply::Status::kUnreachable) {
      // The lease may well be alive (the monitor decides that by its
      // deadline); the question stays open.
      *ec = r.error ? r.error : std::make_error_code(std::errc::host_unreachable);
      PIDLOCK_LOG(warning) << "recheck etcd lock \"" << grant_.address.text << "\": " << r.message;
      return false;
    }
    if (r.status == Reply::Status::kRefused) {
      *ec = std::make_error_code(std::errc::io_error);
      PIDLOCK_LOG(warning) << "recheck etcd lock \"" << grant_.address.text << "\": " << r.message;
      return false;
    }
    auto kv = first_kv(r.body);
    std::string reason;
    if (not_ours(kv ? &*kv : nullptr, false, &reason)) {
      lose(reason);
      lost(why);
      return false;
    }
    return true;
  } catch (const std::bad_alloc&) {
    *ec = std::make_error_code(std::errc::not_enough_memory);
  } catch (const std::exception&) {
    *ec = std::make_error_code(std::errc::io_error);
  }
  return false;
}

std::error_code EtcdLock::put_record(const HolderRecord& record) noexcept {
  try {
    std::string why;
    if (lost(&why)) return make_error_code(errc::lock_lost);
    const std::string key = base64_encode(grant_.address.key);
    const std::string lease = std::to_string(grant_.lease_id);
    // Only while the key is still the one we created, under our lease.
    Json txn = {
        {"compare",
         Json::array({Json{{"target", "CREATE"}, {"key", key}, {"result", "EQUAL"},
                           {"create_revision", std::to_string(grant_.token)}},
                      Json{{"target", "LEASE"}, {"key", key}, {"result", "EQUAL"}, {"lease", lease}}})},
        {"success", Json::array({Json{{"request_put",
                                       {{"key", key}, {"value", base64_encode(format_record(record))}, {"lease", lease}}}}})}};
    Reply r = client_.call("/v3/kv/txn", txn);
    if (r.status == Reply::Status::kUnreachable) return r.error ? r.error : std::make_error_code(std::errc::host_unreachable);
    if (r.status == Reply::Status::kRefused) {
      PIDLOCK_LOG(error) << "update etcd lock \"" << grant_.address.text << "\": " << r.message;
      return std::make_error_code(std::errc::io_error);
    }
    if (!r.body.value("succeeded", false)) {
      lose("the key " + grant_.address.key + " is no longer ours (found while updating the record)");
      return make_error_code(errc::lock_lost);
    }
    return {};
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  } catch (const std::exception&) {
    return std::make_error_code(std::errc::io_error);
  }
}

std::error_code EtcdLock::refresh_lease() noexcept {
  try {
    std::string why;
    if (lost(&why)) return make_error_code(errc::lock_lost);
    bool unreachable = false;
    std::error_code ec;
    if (!keep_alive(client_, kRequestTimeout, &unreachable, &ec)) return make_error_code(errc::lock_lost);
    if (unreachable) return ec ? ec : std::make_error_code(std::errc::host_unreachable);
    return {};
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  } catch (const std::exception&) {
    return std::make_error_code(std::errc::io_error);
  }
}

namespace {

// The loss descriptor is level-triggered: it stays readable once the lock
// is lost, and every check while it is readable rechecks.
class EtcdLossSource final : public LossSource {
 public:
  explicit EtcdLossSource(int fd) : fd_(fd) {}
  int fd() const noexcept override { return fd_; }
  bool consume() override {
    struct pollfd p {fd_, POLLIN, 0};
    return sys().poll(&p, 1, 0) == 1;
  }

 private:
  int fd_;
};

}  // namespace

Failure EtcdLock::release_locked() {
  // Like a lock file, a forked child never gives up its parent's lock.
  if (!acquired_here()) return {};
  return Failure{revoke_lease(), "release etcd lock", ""};
}

Failure EtcdLock::write_record(const HolderRecord& next) { return Failure{put_record(next), "update lock", ""}; }

Failure EtcdLock::touch_locked() { return Failure{refresh_lease(), "touch lock", ""}; }

// The lease is kept alive by a thread that a forked child does not have:
// a child acquires its own lock instead.
Failure EtcdLock::claim_locked(const HolderRecord& /*next*/) {
  return pidlock_failure(errc::invalid_argument, "claim etcd lock",
                         "an etcd lock cannot pass to a forked child; acquire it in the child");
}

std::unique_ptr<LossSource> EtcdLock::watch_locked(Failure* /*failure*/) {
  return std::make_unique<EtcdLossSource>(loss_fd_.get());
}

}  // namespace pidlock::detail::etcd
