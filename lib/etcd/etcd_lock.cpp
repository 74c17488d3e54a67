#include "etcd/etcd_lock.hpp"

#include <pidlock/error.hpp>

#include "core/log.hpp"
#include "etcd/base64.hpp"
#include "etcd/key_watch.hpp"
#include "posix/notifier.hpp"
#include "posix/system.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

namespace pidlock::detail::etcd {

namespace {

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

Cluster cluster_of(const Grant& g) { return g.address.cluster; }

}  // namespace

EtcdLock::EtcdLock(Grant grant, boost::filesystem::path address, HolderRecord record)
    : HeldLock(std::move(address), std::move(record), std::nullopt, sys().getpid()),
      grant_(std::move(grant)),
      client_(cluster_of(grant_)),
      keeper_(grant_.lease_id, grant_.ttl, grant_.renewed_at),
      loss_fd_(make_eventfd()),
      stop_fd_(make_eventfd()) {
  client_.expect_cluster(grant_.cluster_id);
  client_.prefer(grant_.preferred);
  monitor_ = std::thread([this] { run(); });
}

EtcdLock::~EtcdLock() {
  if (!acquired_here()) {
    // A forked child: the monitor thread exists only in the parent. Joining
    // the copied std::thread would wait for a thread that is not there, and
    // cleaning up the curl handles could disturb the parent's connections,
    // so both are leaked on purpose (the child is about to exit or exec).
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

Clock::time_point EtcdLock::call_deadline() const {
  return std::min(Clock::now() + kCallTimeout, keeper_.give_up_at());
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
    *why = "the key " + grant_.key + " was deleted (the lease ended, or someone removed it)";
    return true;
  }
  if (static_cast<std::uint64_t>(kv->create_revision) != grant_.token) {
    *why = "the key " + grant_.key + " was re-created by another holder (fencing token " +
           std::to_string(kv->create_revision) + ", ours " + std::to_string(grant_.token) + ")";
    return true;
  }
  if (kv->lease != grant_.lease_id) {
    *why = "the key " + grant_.key + " was rewritten under another lease (" + std::to_string(kv->lease) + ")";
    return true;
  }
  return false;
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

bool EtcdLock::still_ours(const std::vector<WatchEvent>& events) {
  for (const auto& ev : events) {
    std::string why;
    if (not_ours(&ev.kv, ev.deleted, &why)) {
      lose(why);
      return false;
    }
  }
  return true;
}

bool EtcdLock::resume_after_compaction(Client& client, KeyWatch& watch, Clock::time_point until) {
  // The history we would resume from is gone: look at the key itself, then
  // watch from what we saw.
  Reply r = client.call("/v3/kv/range", Json{{"key", base64_encode(grant_.key)}}, until, stop_fd_.get());
  if (!r.ok()) return true;  // the watch tries again
  std::vector<KeyValue> kvs = range_kvs(r.body);
  std::string why;
  if (not_ours(kvs.empty() ? nullptr : &kvs[0], false, &why)) {
    lose(why);
    return false;
  }
  watch.start(grant_.key, header_revision(r.body) + 1, /*deletes_only=*/false);
  return true;
}

void EtcdLock::monitor() {
  Client client(cluster_of(grant_));
  client.expect_cluster(grant_.cluster_id);
  client.prefer(grant_.preferred);
  KeyWatch watch(client, grant_.preferred);
  // From the revision after our key's creation: any later change of it is
  // reported, even one that happens before the watch is in place.
  watch.start(grant_.key, static_cast<std::int64_t>(grant_.token) + 1, /*deletes_only=*/false);
  Clock::time_point next_renewal = keeper_.next_renewal();
  std::vector<WatchEvent> events;
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (now >= keeper_.give_up_at()) {
      lose("no keep-alive of lease " + std::to_string(grant_.lease_id) + " succeeded for 2/3 of its ttl of " +
           std::to_string(grant_.ttl.count()) + " s (etcd unreachable, without quorum, or this process was " +
           "stopped); given up a third of the ttl before etcd could give the lock to anyone else");
      return;
    }
    if (now >= next_renewal) {
      std::string why;
      switch (keeper_.renew(client, &why, stop_fd_.get())) {
        case LeaseKeeper::Result::kRenewed:
          next_renewal = keeper_.next_renewal();
          break;
        case LeaseKeeper::Result::kGone:
          lose(why);
          return;
        case LeaseKeeper::Result::kUnanswered:
          if (sleep_until({}, stop_fd_.get(), std::chrono::milliseconds(0)) == Wake::kCancelled) return;
          PIDLOCK_LOG(debug) << "etcd lock \"" << grant_.address.text << "\": keep-alive of lease "
                             << grant_.lease_id << " unanswered: " << why;
          next_renewal = Clock::now() + kRenewRetry;
          break;
      }
      continue;
    }
    const Clock::time_point until = std::min(next_renewal, keeper_.give_up_at());
    switch (watch.wait(until, stop_fd_.get(), &events)) {
      case KeyWatch::Result::kCancelled:
        return;  // release() or the destructor stops us
      case KeyWatch::Result::kTimeout:
        break;
      case KeyWatch::Result::kEvents:
        if (!still_ours(events)) return;
        break;
      case KeyWatch::Result::kCompacted:
        if (!resume_after_compaction(client, watch, until)) return;
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
    // attached to it. Only our queue transaction (and our own updates,
    // which compare the lease) ever attached a key to this lease, so this
    // removes our key if, and only if, it is still ours: the guarantee of a
    // "delete if create_revision == token" transaction, in one write.
    Reply r = client_.call("/v3/lease/revoke", Json{{"ID", std::to_string(grant_.lease_id)}});
    std::string why;
    if (r.status == Reply::Status::kUnreachable || r.status == Reply::Status::kMisconfigured) {
      PIDLOCK_LOG(error) << "release etcd lock \"" << grant_.address.text << "\": etcd cannot be reached ("
                         << r.message << "); the key stays until lease " << grant_.lease_id << " expires, within "
                         << grant_.ttl.count() << " s";
      return r.error ? r.error : std::make_error_code(std::errc::host_unreachable);
    }
    if (r.status == Reply::Status::kRefused && r.grpc_code != kGrpcNotFound) {
      PIDLOCK_LOG(error) << "release etcd lock \"" << grant_.address.text << "\": etcd refused to revoke lease "
                         << grant_.lease_id << ": " << r.message;
      return std::make_error_code(r.grpc_code == kGrpcPermissionDenied ? std::errc::permission_denied
                                                                        : std::errc::io_error);
    }
    if (r.status == Reply::Status::kRefused) lose("lease " + std::to_string(grant_.lease_id) + " had ended");
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
    if (Clock::now() >= keeper_.give_up_at()) {
      lose("no keep-alive of lease " + std::to_string(grant_.lease_id) + " succeeded for 2/3 of its ttl");
      lost(why);
      return false;
    }
    Reply r = client_.call("/v3/kv/range", Json{{"key", base64_encode(grant_.key)}}, call_deadline());
    if (!r.ok()) {
      // The lease may well be alive (the monitor decides that by the
      // keeper's give-up time); the question stays open.
      *ec = r.status == Reply::Status::kUnreachable
                ? (r.error ? r.error : std::make_error_code(std::errc::host_unreachable))
                : std::make_error_code(std::errc::io_error);
      PIDLOCK_LOG(warning) << "recheck etcd lock \"" << grant_.address.text << "\": " << r.message;
      return false;
    }
    std::vector<KeyValue> kvs = range_kvs(r.body);
    std::string reason;
    if (not_ours(kvs.empty() ? nullptr : &kvs[0], false, &reason)) {
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
    const std::string key = base64_encode(grant_.key);
    const std::string lease = std::to_string(grant_.lease_id);
    // Only while the key is still the one we created, under our lease.
    Json txn = {
        {"compare",
         Json::array({Json{{"target", "CREATE"}, {"key", key}, {"result", "EQUAL"},
                           {"create_revision", std::to_string(grant_.token)}},
                      Json{{"target", "LEASE"}, {"key", key}, {"result", "EQUAL"}, {"lease", lease}}})},
        {"success", Json::array({Json{{"request_put",
                                       {{"key", key}, {"value", base64_encode(format_record(record))}, {"lease", lease}}}}})}};
    Reply r = client_.call("/v3/kv/txn", txn, call_deadline());
    if (r.status == Reply::Status::kUnreachable) return r.error ? r.error : std::make_error_code(std::errc::host_unreachable);
    if (!r.ok()) {
      PIDLOCK_LOG(error) << "update etcd lock \"" << grant_.address.text << "\": " << r.message;
      return std::make_error_code(r.grpc_code == kGrpcPermissionDenied ? std::errc::permission_denied
                                                                        : std::errc::io_error);
    }
    if (!r.body.value("succeeded", false)) {
      lose("the key " + grant_.key + " is no longer ours (found while updating the record)");
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
    switch (keeper_.renew(client_, &why)) {
      case LeaseKeeper::Result::kRenewed:
        return {};
      case LeaseKeeper::Result::kGone:
        lose(why);
        return make_error_code(errc::lock_lost);
      case LeaseKeeper::Result::kUnanswered:
        break;
    }
    return std::make_error_code(std::errc::host_unreachable);
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
