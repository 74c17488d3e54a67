// The etcd backend behind LockManager (PIDLOCK_WITH_ETCD=ON): acquire,
// inspect and wait for locks at "etcd://..." addresses. See docs/etcd.md.
//
// A lock is a queue of keys under "NAME/", in etcd's own lock recipe
// (lock_queue.hpp): the key with the smallest create revision holds the
// lock, and that revision is the fencing token. Taking it (acquirer.hpp)
// grants a lease and puts our key under it; holding it (etcd_lock.hpp)
// keeps the lease alive and gives up, reporting the loss, a third of the
// ttl before etcd could let anyone else in (lease_keeper.hpp). Verdicts are
// in verdicts.hpp: the lease is the evidence of life, never a pid.
#include <pidlock/canceller.hpp>

#include "etcd/acquirer.hpp"
#include "etcd/address.hpp"
#include "etcd/client.hpp"
#include "etcd/etcd_lock.hpp"
#include "etcd/key_watch.hpp"
#include "etcd/lock_queue.hpp"
#include "etcd/verdicts.hpp"
#include "core/identity.hpp"
#include "core/judge.hpp"
#include "core/log.hpp"
#include "posix/notifier.hpp"
#include "store.hpp"

#include <boost/filesystem/operations.hpp>

namespace pidlock::detail {

using namespace etcd;

namespace {

// While no member answers, a waiter asks again this often.
constexpr std::chrono::milliseconds kUnreachableRetry{500};

bool parse(const std::string& text, Address* address, Failure& failure) {
  std::string problem;
  if (parse_address(text, address, &problem)) return true;
  failure = pidlock_failure(errc::misconfigured, "parse etcd lock address", problem);
  return false;
}

// The verdict on the lock as it is now, and the holder's key (if any); the
// store revision it is from goes to *revision (0 when etcd could not be
// reached).
Inspection look(Client& client, const Address& address, Failure& failure, std::int64_t* revision,
                std::optional<KeyValue>* holder) {
  *revision = 0;
  Reply r = client.call("/v3/kv/range", holder_request(address.key));
  if (r.status == Reply::Status::kUnreachable) return unknown_inspection(address, r.message);
  if (r.status == Reply::Status::kMisconfigured) {
    failure = pidlock_failure(errc::misconfigured, "read etcd lock", r.message);
    return {};
  }
  if (!r.ok()) {
    failure = Failure{std::make_error_code(r.grpc_code == kGrpcPermissionDenied ? std::errc::permission_denied
                                                                                 : std::errc::io_error),
                      "read etcd lock", "etcd: " + r.message};
    return {};
  }
  *revision = header_revision(r.body);
  std::vector<KeyValue> kvs = range_kvs(r.body);
  if (kvs.empty()) return free_inspection(address);
  *holder = kvs[0];
  return holder_inspection(client, kvs[0], int_field(r.body, "count"), self_identity());
}

}  // namespace

std::shared_ptr<HeldLock> remote_acquire(const std::string& text, const AcquireOptions& options, Failure& failure,
                                         Inspection& held) {
  Address address;
  if (!parse(text, &address, failure)) return nullptr;
  const SelfIdentity self = self_identity();
  HolderRecord record = make_record(self, self.pid);
  record.status = options.status;
  if (!options.data_directory.empty())
    record.data_directory = boost::filesystem::absolute(options.data_directory).lexically_normal().string();
  if (record.data_directory.find('\n') != std::string::npos) {
    failure = pidlock_failure(errc::invalid_argument, "acquire", "the data directory contains a newline");
    return nullptr;
  }
  std::optional<Grant> grant;
  {
    Acquirer acquirer(address, options, format_record(record), self);
    grant = acquirer.run(&failure, &held);
  }
  if (!grant) return nullptr;
  PIDLOCK_LOG(info) << "acquired etcd lock \"" << text << "\" (pid " << self.pid << ", lease " << grant->lease_id
                    << ", ttl " << grant->ttl.count() << " s, fencing token " << grant->token << ")";
  return std::make_shared<EtcdLock>(std::move(*grant), text, record);
}

Inspection remote_inspect(const std::string& text, const JudgeOptions&, Failure& failure) {
  Address address;
  if (!parse(text, &address, failure)) return {};
  Client client(address.cluster);
  std::int64_t revision = 0;
  std::optional<KeyValue> holder;
  return look(client, address, failure, &revision, &holder);
}

Inspection remote_wait_until_free(const std::string& text, std::optional<std::chrono::milliseconds> timeout,
                                  const Canceller* canceller, Failure& failure) {
  Address address;
  if (!parse(text, &address, failure)) return {};
  Client client(address.cluster);
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  const int cancel_fd = canceller ? canceller->native_handle() : -1;
  std::vector<WatchEvent> events;
  for (;;) {
    if (canceller && canceller->cancelled()) {
      failure = pidlock_failure(errc::cancelled, "wait for etcd lock");
      return {};
    }
    std::int64_t revision = 0;
    std::optional<KeyValue> holder;
    Inspection insp = look(client, address, failure, &revision, &holder);
    if (failure || insp.verdict == Verdict::kFree) return insp;
    if (deadline && Clock::now() >= *deadline) {
      failure = pidlock_failure(errc::held, "wait for etcd lock", "timed out");
      return insp;
    }
    // Free means an empty queue: wait for the holder's key to go, then look
    // again (the next in line, if any, holds it then).
    const Clock::time_point until =
        holder ? deadline.value_or(Clock::time_point::max()) : Clock::now() + kUnreachableRetry;
    KeyWatch watch(client, client.preferred());
    if (holder) watch.start(holder->key, revision + 1, /*deletes_only=*/true);
    KeyWatch::Result r = KeyWatch::Result::kTimeout;
    if (holder) {
      r = watch.wait(deadline ? std::min(until, *deadline) : until, cancel_fd, &events);
    } else if (sleep_until({}, cancel_fd, std::min(until, deadline.value_or(until)) - Clock::now()) ==
               Wake::kCancelled) {
      r = KeyWatch::Result::kCancelled;
    }
    if (r == KeyWatch::Result::kCancelled) {
      failure = pidlock_failure(errc::cancelled, "wait for etcd lock");
      return insp;
    }
  }
}

namespace {

// The store behind "etcd://" addresses, over the operations above.
class EtcdStore final : public Store {
 public:
  std::shared_ptr<HeldLock> acquire(const boost::filesystem::path& address, const AcquireOptions& options,
                                    Failure& failure, Inspection& held) override {
    return remote_acquire(address.string(), options, failure, held);
  }
  Inspection inspect(const boost::filesystem::path& address, const JudgeOptions& options,
                     Failure& failure) override {
    return remote_inspect(address.string(), options, failure);
  }
  Inspection wait_until_free(const boost::filesystem::path& address, std::optional<std::chrono::milliseconds> timeout,
                             const Canceller* canceller, const JudgeOptions& /*options*/, Failure& failure) override {
    return remote_wait_until_free(address.string(), timeout, canceller, failure);
  }
  // A lease-based lock is never stale: it vanishes when its lease ends.
  BreakResult break_stale(const boost::filesystem::path& address, const JudgeOptions& options,
                          Failure& failure) override {
    BreakResult result;
    result.inspection = remote_inspect(address.string(), options, failure);
    return result;
  }
};

}  // namespace

Store& etcd_store() {
  static EtcdStore* store = new EtcdStore;  // never destroyed: used at exit
  return *store;
}

}  // namespace pidlock::detail
