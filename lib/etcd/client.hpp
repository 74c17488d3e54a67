// Unary calls to an etcd cluster through its HTTP/JSON gateway (grpc-gateway,
// built into every etcd server since 3.4), with one deadline per call and
// hedged fail-over across the members.
//
// Why hedged: a member that is frozen or cut off does not refuse a
// connection, it just says nothing (its kernel, or a partition, swallows
// the request). Trying members one after another, each with its own
// timeout, would spend the whole deadline on the first silent one. So a
// call starts on the member that answered last, and when that member has
// not answered within a hedge delay (a fraction of the deadline), the same
// request also goes to the next member, and so on: the first etcd answer
// wins and the others are abandoned. Every request pidlock sends may be
// delivered twice without harm (see the callers: lease ids are chosen by
// us, transactions compare before they write, keep-alives and reads are
// idempotent); the two answers a duplicate can provoke ("lease already
// exists", "lease not found") are believed only when no other attempt of
// the call can still answer.
//
// Thread safety: a Client is used by one thread at a time. It is never used
// after fork() (the child never calls etcd; see abandon()).
#ifndef PIDLOCK_ETCD_CLIENT_HPP
#define PIDLOCK_ETCD_CLIENT_HPP

#include "etcd/address.hpp"
#include "etcd/reply.hpp"
#include "etcd/transport.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pidlock::detail::etcd {

// How long a call may take when its caller has no deadline of its own.
inline constexpr std::chrono::milliseconds kCallTimeout{5000};

class Client {
 public:
  explicit Client(Cluster cluster);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // POSTs `request` to `path` ("/v3/kv/range", ...) and returns the first
  // etcd answer, or kUnreachable when none came before `deadline`, or
  // kMisconfigured as soon as any member answers as something other than
  // etcd v3 (or in another cluster than the others). Authenticates first
  // when the cluster has a user, and again once if etcd says the token
  // expired. When `cancel_fd` (-1: none) becomes readable the call ends at
  // once, kUnreachable with ECANCELED: a monitor thread being stopped must
  // not wait for a silent member.
  Reply call(std::string_view path, const Json& request, Clock::time_point deadline, int cancel_fd = -1);
  Reply call(std::string_view path, const Json& request) { return call(path, request, Clock::now() + kCallTimeout); }

  const Cluster& cluster() const noexcept { return cluster_; }
  // The member that answered last (tried first by the next call).
  std::size_t preferred() const noexcept { return preferred_; }
  void prefer(std::size_t member) noexcept { preferred_ = member % cluster_.endpoints.size(); }
  // The cluster id the members answered with; empty before the first answer.
  const std::string& cluster_id() const noexcept { return cluster_id_; }
  // From now on answers from any other cluster are a misconfiguration.
  void expect_cluster(const std::string& id) { cluster_id_ = id; }
  // The auth token in use ("" without authentication), for watches.
  const std::string& token() const noexcept { return token_; }
  // Makes sure there is a token (when the cluster has a user); false with
  // *failure when authentication failed.
  bool authenticate(Clock::time_point deadline, Reply* failure, int cancel_fd = -1);
  // The token was refused: forget it (here and in the process-wide cache).
  void drop_token();

  // Leaks the curl handles instead of cleaning them up: for a forked child,
  // whose copies of the parent's connections must not be touched.
  void abandon() noexcept;

 private:
  struct Member {
    Transfer transfer;
    bool in_flight = false;
  };
  struct Call;

  Reply attempt(std::string_view path, const std::string& payload, Clock::time_point deadline, int cancel_fd);
  bool launch(Call& call, std::size_t member);
  // Moves the transfers on and handles the finished ones; true when one
  // decided the call.
  bool progress(Call& call);
  // Handles one finished transfer; true when it decided the call.
  bool finish(Call& call, std::size_t member, CURLcode rc);
  bool finish_failure(Call& call, std::size_t member, CURLcode rc);
  bool finish_answer(Call& call, std::size_t member);
  void cancel_all() noexcept;
  void set_headers();

  Cluster cluster_;
  std::vector<Member> members_;
  std::size_t preferred_ = 0;
  std::string cluster_id_;
  std::string cluster_id_member_;  // who first told us the cluster id
  std::string token_;
  bool auth_disabled_ = false;  // a user is configured, but etcd has auth off
  void* multi_ = nullptr;       // CURLM*
  curl_slist* headers_ = nullptr;
  bool abandoned_ = false;
};

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_CLIENT_HPP
