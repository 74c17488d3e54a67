#include "etcd/watch_stream.hpp"

#include "etcd/base64.hpp"

#include <algorithm>

namespace pidlock::detail::etcd {

WatchStream::WatchStream(Cluster cluster, std::size_t preferred)
    : cluster_(std::move(cluster)), preferred_(preferred % cluster_.endpoints.size()) {
  curl_global_setup();
}

WatchStream::~WatchStream() {
  if (abandoned_) return;
  close();
  if (multi_) curl_api().multi_cleanup(static_cast<CURLM*>(multi_));
  if (headers_) curl_api().slist_free_all(headers_);
}

void WatchStream::abandon() noexcept { abandoned_ = true; }

void WatchStream::close() noexcept {
  if (!transfer_.easy) return;
  curl_api().multi_remove_handle(static_cast<CURLM*>(multi_), transfer_.easy);
  curl_api().easy_cleanup(transfer_.easy);
  transfer_.easy = nullptr;
}

bool WatchStream::open(const std::string& key, std::int64_t start_revision, bool deletes_only,
                       const std::string& token, std::chrono::milliseconds open_timeout, std::string* problem,
                       int wake_fd) {
  key_ = key;
  deletes_only_ = deletes_only;
  next_revision_ = start_revision;
  return reopen(token, open_timeout, problem, wake_fd);
}

void WatchStream::prepare(const std::string& key, std::int64_t start_revision, bool deletes_only) {
  close();
  key_ = key;
  deletes_only_ = deletes_only;
  next_revision_ = start_revision;
}

bool WatchStream::reopen(const std::string& token, std::chrono::milliseconds open_timeout, std::string* problem,
                         int wake_fd, std::size_t members) {
  close();
  std::string problems;
  const std::size_t n = cluster_.endpoints.size();
  const std::size_t first = preferred_;
  for (std::size_t i = 0; i < std::min(n, members); ++i) {
    std::size_t member = (first + i) % n;
    preferred_ = (member + 1) % n;  // where the next reopen goes on, if this one fails
    std::string why;
    Result r = open_on(member, token, open_timeout, &why, wake_fd);
    if (r == Result::kEvents) {
      preferred_ = member;
      return true;
    }
    if (r == Result::kCancelled) {
      *problem = "cancelled";
      return false;
    }
    problems += (problems.empty() ? "" : "; ") + cluster_.endpoints[member].host_port + ": " + why;
  }
  *problem = problems;
  return false;
}

WatchStream::Result WatchStream::open_on(std::size_t member, const std::string& token,
                                         std::chrono::milliseconds open_timeout, std::string* problem,
                                         int wake_fd) {
  const CurlApi& api = curl_api();
  if (!multi_) multi_ = api.multi_init();
  if (headers_) api.slist_free_all(headers_);
  headers_ = make_headers(token, /*require_leader=*/true);
  transfer_.easy = api.easy_init();
  if (!multi_ || !headers_ || !transfer_.easy) {
    if (transfer_.easy) api.easy_cleanup(transfer_.easy);
    transfer_.easy = nullptr;
    *problem = "cannot create a curl handle" + (api.problem.empty() ? std::string() : ": " + api.problem);
    return Result::kBroken;
  }
  error_.clear();
  pending_.clear();
  ended_.reset();
  created_ = false;
  Json create = {{"key", base64_encode(key_)}, {"progress_notify", true}};
  if (next_revision_ > 0) create["start_revision"] = std::to_string(next_revision_);
  if (deletes_only_) create["filters"] = Json::array({"NOPUT"});
  request_ = Json{{"create_request", create}}.dump();
  set_common_options(transfer_, cluster_.security, headers_);
  // A stream has no time limit; the caller's waits have.
  set_request(transfer_, cluster_.endpoints[member].url() + "/v3/watch", request_, std::chrono::milliseconds(0));
  api.easy_setopt(transfer_.easy, CURLOPT_TIMEOUT_MS, 0L);
  api.easy_setopt(transfer_.easy, CURLOPT_CONNECTTIMEOUT_MS,
                  static_cast<long>(std::min(open_timeout, kConnectTimeout).count()));
  if (api.multi_add_handle(static_cast<CURLM*>(multi_), transfer_.easy) != CURLM_OK) {
    api.easy_cleanup(transfer_.easy);
    transfer_.easy = nullptr;
    *problem = "cannot add the watch to curl";
    return Result::kBroken;
  }
  Result r = pump(Clock::now() + open_timeout, wake_fd, /*until_created=*/true);
  if (created_ && r != Result::kBroken && r != Result::kCompacted && r != Result::kCancelled) return Result::kEvents;
  *problem = r == Result::kTimeout ? "no answer to the watch request" : error_.empty() ? "the watch failed" : error_;
  close();
  return r == Result::kCancelled ? r : Result::kBroken;
}

bool WatchStream::parse_lines(Result* result) {
  bool done = false;
  std::string& buffer = transfer_.response;
  std::size_t start = 0;
  for (std::size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
    Json message = Json::parse(buffer.begin() + start, buffer.begin() + nl, nullptr, false);
    if (message.is_discarded() || !message.is_object()) continue;
    if (auto err = message.find("error"); err != message.end()) {
      error_ = err->is_object() ? err->value("message", std::string("watch error")) : err->dump();
      *result = Result::kBroken;
      done = true;
      continue;
    }
    auto res = message.find("result");
    if (res == message.end() || !res->is_object()) continue;
    if (res->value("canceled", false)) {
      // Also how etcd refuses a watch it will not serve (permission denied,
      // bad token, no leader): created and cancelled at once.
      error_ = res->value("cancel_reason", std::string("the watch was cancelled by etcd"));
      *result = int_field(*res, "compact_revision") > 0 ? Result::kCompacted : Result::kBroken;
      done = true;
      continue;
    }
    if (res->value("created", false)) {
      created_ = true;
      done = true;
    }
    auto evs = res->find("events");
    if (evs == res->end() || !evs->is_array()) continue;
    for (const auto& ev : *evs) {
      auto kv = ev.find("kv");
      if (kv == ev.end()) continue;
      auto parsed = parse_kv(*kv);
      if (!parsed) continue;
      WatchEvent out;
      out.deleted = ev.value("type", std::string("PUT")) == "DELETE";
      out.kv = std::move(*parsed);
      next_revision_ = std::max(next_revision_, out.kv.mod_revision + 1);
      pending_.push_back(std::move(out));
      if (*result == Result::kTimeout) *result = Result::kEvents;
      done = true;
    }
  }
  buffer.erase(0, start);
  return done;
}

WatchStream::Result WatchStream::pump(std::optional<Clock::time_point> deadline, int wake_fd,
                                      bool until_created) {
  const CurlApi& api = curl_api();
  CURLM* multi = static_cast<CURLM*>(multi_);
  for (;;) {
    if (!transfer_.easy) return Result::kBroken;
    if (ended_) return *ended_;
    int running = 0;
    api.multi_perform(multi, &running);
    Result result = Result::kTimeout;
    parse_lines(&result);
    // A cancel or error ends the stream; events before it are still handed
    // out first (pending_), the end is reported by the next wait.
    if (result == Result::kBroken || result == Result::kCompacted) {
      ended_ = result;
      if (until_created || pending_.empty()) return result;
      return Result::kEvents;
    }
    if (until_created ? created_ : !pending_.empty()) return Result::kEvents;
    int queued = 0;
    while (CURLMsg* msg = api.multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == transfer_.easy) {
        if (error_.empty())
          error_ = msg->data.result == CURLE_OK
                       ? "the member closed the watch stream"
                       : describe_failure(cluster_.endpoints[preferred_], msg->data.result, transfer_.error);
        ended_ = Result::kBroken;
        return Result::kBroken;
      }
    }
    int wait_ms = 1000;
    if (deadline) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0) return Result::kTimeout;
      wait_ms = static_cast<int>(std::min<long long>(left, wait_ms));
    }
    struct curl_waitfd extra {};
    extra.fd = wake_fd;
    extra.events = CURL_WAIT_POLLIN;
    api.multi_poll(multi, wake_fd >= 0 ? &extra : nullptr, wake_fd >= 0 ? 1 : 0, wait_ms, nullptr);
    if (wake_fd >= 0 && (extra.revents & CURL_WAIT_POLLIN)) return Result::kCancelled;
  }
}

WatchStream::Result WatchStream::wait(std::optional<Clock::time_point> deadline, int wake_fd,
                                      std::vector<WatchEvent>* events) {
  events->clear();
  Result r = pending_.empty() ? (transfer_.easy ? pump(deadline, wake_fd, /*until_created=*/false) : Result::kBroken)
                              : Result::kEvents;
  if (r == Result::kEvents) events->swap(pending_);
  return r;
}

}  // namespace pidlock::detail::etcd
