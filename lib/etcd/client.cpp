#include "etcd/client.hpp"

#include "etcd/auth_tokens.hpp"

#include <algorithm>
#include <optional>

namespace pidlock::detail::etcd {

namespace {

// A member that has not answered within this share of the call's time gets
// company (see the top of client.hpp): early enough that a silent member
// costs little, late enough that a healthy but busy one (a WAL fsync on a
// loaded disk) is rarely doubled.
constexpr std::chrono::milliseconds kMinHedgeDelay{50};
constexpr std::chrono::milliseconds kMaxHedgeDelay{500};
// Below this there is no time for a request at all.
constexpr std::chrono::milliseconds kMinCallTime{5};

std::chrono::milliseconds hedge_delay(Clock::duration budget, std::size_t members) {
  auto share = std::chrono::duration_cast<std::chrono::milliseconds>(budget) / static_cast<int>(members + 1);
  return std::clamp(share, kMinHedgeDelay, kMaxHedgeDelay);
}

std::chrono::milliseconds until(Clock::time_point t) {
  return std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now());
}

void add_problem(std::string* problems, const std::string& p) {
  if (!problems->empty()) *problems += "; ";
  *problems += p;
}

}  // namespace

struct Client::Call {
  Call(std::string_view p, const std::string& body, Clock::time_point d) : path(p), payload(body), deadline(d) {}
  std::string_view path;
  const std::string& payload;
  Clock::time_point deadline;
  std::chrono::milliseconds budget{0};
  std::chrono::milliseconds hedge{0};
  std::size_t launched = 0;  // members tried, counting from preferred_
  std::size_t in_flight = 0;
  Clock::time_point next_launch;
  std::string problems;
  // A "not found"/"already exists" answer while a duplicate of this very
  // request may have been the cause: believed only if nothing better comes.
  std::optional<Reply> held_back;
  std::optional<Reply> decided;
  std::vector<bool> suspected;  // members asked again after a suspect failure
  std::optional<Reply> not_etcd;  // a member that failed twice so: the answer if no other comes
  std::optional<std::size_t> relaunch;
  std::error_code last_error = std::make_error_code(std::errc::timed_out);
};

Client::Client(Cluster cluster) : cluster_(std::move(cluster)) {
  curl_global_setup();
  members_.resize(cluster_.endpoints.size());
}

Client::~Client() {
  if (abandoned_) return;
  cancel_all();
  for (auto& m : members_)
    if (m.transfer.easy) curl_api().easy_cleanup(m.transfer.easy);
  if (multi_) curl_api().multi_cleanup(static_cast<CURLM*>(multi_));
  if (headers_) curl_api().slist_free_all(headers_);
}

void Client::abandon() noexcept { abandoned_ = true; }

void Client::cancel_all() noexcept {
  for (auto& m : members_) {
    if (!m.in_flight) continue;
    // Removing a running transfer closes its connection; the next call to
    // that member opens a new one.
    curl_api().multi_remove_handle(static_cast<CURLM*>(multi_), m.transfer.easy);
    m.in_flight = false;
  }
}

void Client::set_headers() {
  if (headers_) curl_api().slist_free_all(headers_);
  headers_ = make_headers(token_, /*require_leader=*/false);
}

void Client::drop_token() {
  if (token_.empty()) return;
  forget_token(cluster_, token_);
  token_.clear();
  set_headers();
}

bool Client::authenticate(Clock::time_point deadline, Reply* failure, int cancel_fd) {
  if (cluster_.security.user.empty() || auth_disabled_ || !token_.empty()) return true;
  token_ = cached_token(cluster_);
  if (!token_.empty()) {
    set_headers();
    return true;
  }
  Json request = {{"name", cluster_.security.user}, {"password", cluster_.security.password}};
  Reply r = attempt("/v3/auth/authenticate", request.dump(), deadline, cancel_fd);
  if (r.ok()) {
    token_ = r.body.value("token", std::string());
    if (token_.empty()) {
      failure->status = Reply::Status::kMisconfigured;
      failure->message = "etcd answered the authentication of user \"" + cluster_.security.user + "\" without a token";
      return false;
    }
    cache_token(cluster_, token_);
    set_headers();
    return true;
  }
  if (r.status == Reply::Status::kRefused && r.message.find("authentication is not enabled") != std::string::npos) {
    auth_disabled_ = true;  // as etcdctl: a user on a cluster without auth is no error
    return true;
  }
  *failure = std::move(r);
  if (failure->status == Reply::Status::kMisconfigured || failure->status == Reply::Status::kRefused) {
    failure->status = Reply::Status::kMisconfigured;
    failure->message = "authentication as etcd user \"" + cluster_.security.user + "\" failed: " + failure->message;
  }
  return false;
}

Reply Client::call(std::string_view path, const Json& request, Clock::time_point deadline, int cancel_fd) {
  const std::string payload = request.dump();
  for (int round = 0;; ++round) {
    Reply failure;
    if (!authenticate(deadline, &failure, cancel_fd)) return failure;
    Reply r = attempt(path, payload, deadline, cancel_fd);
    // An expired or unknown token (members forget simple tokens when they
    // restart): authenticate again, once.
    if (r.status == Reply::Status::kRefused && r.grpc_code == kGrpcUnauthenticated && round == 0 &&
        !cluster_.security.user.empty()) {
      drop_token();
      continue;
    }
    if (r.status == Reply::Status::kMisconfigured && r.message.find("user name is empty") != std::string::npos)
      r.message = "etcd requires authentication and no user is set (user= in the address, or ETCDCTL_USER): " +
                  r.message;
    if (r.status == Reply::Status::kRefused && r.grpc_code == kGrpcUnauthenticated) {
      r.status = Reply::Status::kMisconfigured;
      r.message = (cluster_.security.user.empty() ? "etcd requires authentication and no user is set (user= in "
                                                    "the address, or ETCDCTL_USER): "
                                                  : "etcd refused the auth token: ") +
                  r.message;
    }
    return r;
  }
}

bool Client::launch(Call& call, std::size_t member) {
  Member& m = members_[member];
  const CurlApi& api = curl_api();
  if (!m.transfer.easy) m.transfer.easy = api.easy_init();
  if (!multi_) multi_ = api.multi_init();
  if (!headers_) set_headers();
  if (!m.transfer.easy || !multi_ || !headers_) {
    add_problem(&call.problems, "cannot create a curl handle" + (api.problem.empty() ? std::string() : ": " + api.problem));
    return false;
  }
  set_common_options(m.transfer, cluster_.security, headers_);
  set_request(m.transfer, cluster_.endpoints[member].url() + std::string(call.path), call.payload,
              std::max(until(call.deadline), std::chrono::milliseconds(1)));
  if (api.multi_add_handle(static_cast<CURLM*>(multi_), m.transfer.easy) != CURLM_OK) {
    add_problem(&call.problems, "cannot start a curl transfer");
    return false;
  }
  m.in_flight = true;
  ++call.in_flight;
  return true;
}

namespace {

Reply misconfigured(std::string message) {
  Reply r;
  r.status = Reply::Status::kMisconfigured;
  r.message = std::move(message);
  return r;
}

}  // namespace

bool Client::finish(Call& call, std::size_t member, CURLcode rc) {
  Member& m = members_[member];
  curl_api().multi_remove_handle(static_cast<CURLM*>(multi_), m.transfer.easy);
  m.in_flight = false;
  --call.in_flight;
  return rc == CURLE_OK ? finish_answer(call, member) : finish_failure(call, member, rc);
}

bool Client::finish_failure(Call& call, std::size_t member, CURLcode rc) {
  const Transfer& t = members_[member].transfer;
  const std::string what = describe_failure(cluster_.endpoints[member], rc, t.error);
  switch (judge_failure(rc, t.error)) {
    case TransferFailure::kMisconfigured:
      call.decided = misconfigured(what + " (check the address's scheme, port and TLS files)");
      return true;
    case TransferFailure::kSuspect:
      if (!call.suspected[member]) {
        call.suspected[member] = true;
        call.relaunch = member;
        return false;
      }
      // Twice in a row: this member is no etcd client URL we can talk to.
      // Other members may still answer; if none does, this is the verdict.
      if (!call.not_etcd)
        call.not_etcd = misconfigured(what + " (twice: the member takes the connection and closes it without an "
                                             "answer; check the address's scheme (https://), port and TLS files)");
      break;
    case TransferFailure::kMemberState:
      call.last_error = transfer_error(rc);
      break;
  }
  add_problem(&call.problems, what);
  call.next_launch = Clock::now();  // fail over at once
  return false;
}

bool Client::finish_answer(Call& call, std::size_t member) {
  Member& m = members_[member];
  const Endpoint& ep = cluster_.endpoints[member];
  long http = 0;
  curl_api().easy_getinfo(m.transfer.easy, CURLINFO_RESPONSE_CODE, &http);
  Answer a = judge_answer(http, m.transfer.response);
  switch (a.kind) {
    case Answer::Kind::kOk:
      if (!cluster_id_.empty() && a.cluster_id != cluster_id_) {
        call.decided = misconfigured("the endpoints belong to different etcd clusters: " + ep.host_port +
                                     " is in cluster " + a.cluster_id + ", " +
                                     (cluster_id_member_.empty() ? std::string("the lock's") : cluster_id_member_) +
                                     " in cluster " + cluster_id_);
        return true;
      }
      if (cluster_id_.empty()) {
        cluster_id_ = a.cluster_id;
        cluster_id_member_ = ep.host_port;
      }
      preferred_ = member;
      call.decided = Reply{};
      call.decided->status = Reply::Status::kOk;
      call.decided->body = std::move(a.body);
      return true;
    case Answer::Kind::kTryAnother:
      add_problem(&call.problems, ep.host_port + ": " + a.message);
      call.last_error = std::make_error_code(a.grpc_code == kGrpcDeadlineExceeded ? std::errc::timed_out
                                                                                   : std::errc::resource_unavailable_try_again);
      call.next_launch = Clock::now();
      return false;
    case Answer::Kind::kNotEtcd:
      call.decided = misconfigured(ep.host_port + ": " + a.message);
      return true;
    case Answer::Kind::kReauthenticate:
    case Answer::Kind::kRefused:
      break;
  }
  preferred_ = member;
  Reply r;
  r.status = Reply::Status::kRefused;
  r.grpc_code = a.grpc_code;
  r.message = std::move(a.message);
  const bool duplicate_may_cause = a.grpc_code == kGrpcNotFound || a.grpc_code == kGrpcFailedPrecondition;
  if (duplicate_may_cause && call.launched > 1 && call.in_flight > 0) {
    if (!call.held_back) call.held_back = std::move(r);
    return false;
  }
  call.decided = std::move(r);
  return true;
}

bool Client::progress(Call& call) {
  const CurlApi& api = curl_api();
  int running = 0;
  api.multi_perform(static_cast<CURLM*>(multi_), &running);
  int queued = 0;
  while (CURLMsg* msg = api.multi_info_read(static_cast<CURLM*>(multi_), &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (!members_[i].in_flight || members_[i].transfer.easy != msg->easy_handle) continue;
      if (finish(call, i, msg->data.result)) return true;
      if (call.relaunch) {
        std::size_t again = *call.relaunch;
        call.relaunch.reset();
        if (!launch(call, again)) call.next_launch = Clock::now();
      }
      break;
    }
  }
  return false;
}

Reply Client::attempt(std::string_view path, const std::string& payload, Clock::time_point deadline,
                      int cancel_fd) {
  Call call(path, payload, deadline);
  const std::size_t n = cluster_.endpoints.size();
  const CurlApi& api = curl_api();
  if (until(deadline) < kMinCallTime) {
    Reply r;
    r.message = "no time left for the request";
    r.error = std::make_error_code(std::errc::timed_out);
    return r;
  }
  call.suspected.assign(n, false);
  call.budget = until(deadline);
  call.hedge = hedge_delay(call.budget, n);
  call.next_launch = Clock::now();
  for (;;) {
    Clock::time_point now = Clock::now();
    if (call.launched < n && now >= call.next_launch) {
      std::size_t member = (preferred_ + call.launched) % n;
      ++call.launched;
      call.next_launch = now + call.hedge;
      if (!launch(call, member)) call.next_launch = now;
      continue;
    }
    if (call.in_flight == 0 && call.launched == n) break;
    if (now >= deadline) {
      add_problem(&call.problems, "no answer within the call's " + std::to_string(call.budget.count()) + " ms");
      call.last_error = std::make_error_code(std::errc::timed_out);
      break;
    }
    if (progress(call)) {
      cancel_all();
      return std::move(*call.decided);
    }
    if (call.in_flight == 0 && call.launched == n) break;
    Clock::time_point wake = deadline;
    if (call.launched < n) wake = std::min(wake, call.next_launch);
    int wait_ms = static_cast<int>(std::clamp<long long>(until(wake).count(), 0, 1000));
    if (call.in_flight == 0) continue;
    struct curl_waitfd extra {};
    extra.fd = cancel_fd;
    extra.events = CURL_WAIT_POLLIN;
    api.multi_poll(static_cast<CURLM*>(multi_), cancel_fd >= 0 ? &extra : nullptr, cancel_fd >= 0 ? 1 : 0, wait_ms,
                   nullptr);
    if (cancel_fd >= 0 && (extra.revents & CURL_WAIT_POLLIN)) {
      cancel_all();
      Reply r;
      r.message = "cancelled";
      r.error = std::make_error_code(std::errc::operation_canceled);
      return r;
    }
  }
  cancel_all();
  if (call.held_back) return std::move(*call.held_back);
  if (call.not_etcd) return std::move(*call.not_etcd);
  Reply r;
  r.status = Reply::Status::kUnreachable;
  r.message = std::move(call.problems);
  r.error = call.last_error;
  return r;
}

}  // namespace pidlock::detail::etcd
