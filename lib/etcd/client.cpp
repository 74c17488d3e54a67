#include "etcd/client.hpp"
#include "etcd/curl_api.hpp"

#include "etcd/base64.hpp"

#include <curl/curl.h>

#include <poll.h>

#include <algorithm>
#include <mutex>

namespace pidlock::detail::etcd {

namespace {

// Responses larger than this are not etcd answers about one key.
constexpr std::size_t kMaxResponseBytes = 1 << 20;

// gRPC codes after which another member may well succeed.
constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcUnavailable = 14;

void global_init() {
  // curl_global_init is not thread-safe; once per process, before any
  // handle. (Never cleaned up: other code in the process may use curl.)
  static std::once_flag once;
  std::call_once(once, [] { curl_api().global_init(CURL_GLOBAL_DEFAULT); });
}

size_t append_body(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  size_t n = size * count;
  if (body->size() + n > kMaxResponseBytes) return 0;  // aborts the transfer
  body->append(data, n);
  return n;
}

curl_slist* json_headers() {
  curl_slist* h = curl_api().slist_append(nullptr, "Content-Type: application/json");
  // No "Expect: 100-continue" round trip before larger bodies.
  return curl_api().slist_append(h, "Expect:");
}

// Options shared by unary calls and watches.
void common_options(CURL* easy, curl_slist* headers, std::string* body) {
  curl_api().easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);  // we run in several threads
  // Loopback and cluster traffic never goes through an http_proxy from the
  // environment.
  curl_api().easy_setopt(easy, CURLOPT_PROXY, "");
  curl_api().easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_api().easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_body);
  curl_api().easy_setopt(easy, CURLOPT_WRITEDATA, body);
  curl_api().easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(kConnectTimeout.count()));
  curl_api().easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
}

std::error_code curl_error(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT: return std::make_error_code(std::errc::connection_refused);
    case CURLE_OPERATION_TIMEDOUT: return std::make_error_code(std::errc::timed_out);
    case CURLE_COULDNT_RESOLVE_HOST: return std::make_error_code(std::errc::host_unreachable);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR: return std::make_error_code(std::errc::connection_reset);
    default: return std::make_error_code(std::errc::io_error);
  }
}

std::string url_of(const std::string& endpoint, std::string_view path) {
  return "http://" + endpoint + std::string(path);
}

}  // namespace

std::int64_t int_field(const Json& object, const char* name) {
  if (!object.is_object()) return 0;
  auto it = object.find(name);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

std::optional<KeyValue> parse_kv(const Json& kv) {
  if (!kv.is_object()) return std::nullopt;
  KeyValue out;
  auto text = [&](const char* name) -> std::optional<std::string> {
    auto it = kv.find(name);
    if (it == kv.end()) return std::string();  // proto3: empty bytes are omitted
    if (!it->is_string()) return std::nullopt;
    return base64_decode(it->get<std::string>());
  };
  auto key = text("key");
  auto value = text("value");
  if (!key || !value) return std::nullopt;
  out.key = std::move(*key);
  out.value = std::move(*value);
  out.create_revision = int_field(kv, "create_revision");
  out.mod_revision = int_field(kv, "mod_revision");
  out.version = int_field(kv, "version");
  out.lease = int_field(kv, "lease");
  return out;
}

std::optional<KeyValue> first_kv(const Json& range_response) {
  auto it = range_response.find("kvs");
  if (it == range_response.end() || !it->is_array() || it->empty()) return std::nullopt;
  return parse_kv((*it)[0]);
}

Client::Client(std::vector<std::string> endpoints, std::chrono::milliseconds request_timeout)
    : endpoints_(std::move(endpoints)), request_timeout_(request_timeout) {
  global_init();
}

Client::~Client() {
  if (easy_) curl_api().easy_cleanup(static_cast<CURL*>(easy_));
  if (headers_) curl_api().slist_free_all(static_cast<curl_slist*>(headers_));
}

void Client::abandon() noexcept {
  easy_ = nullptr;
  headers_ = nullptr;
}

Reply Client::call(std::string_view path, const Json& request, std::optional<std::chrono::milliseconds> timeout) {
  Reply reply;
  if (!easy_) {
    easy_ = curl_api().easy_init();
    headers_ = json_headers();
    if (!easy_ || !headers_) {
      reply.message = "cannot create a curl handle" + (curl_api().problem.empty() ? std::string() : ": " + curl_api().problem);
      return reply;
    }
  }
  CURL* easy = static_cast<CURL*>(easy_);
  const std::string payload = request.dump();
  std::string body;
  std::string problems;
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    const std::size_t member = (preferred_ + i) % endpoints_.size();
    const std::string& ep = endpoints_[member];
    body.clear();
    // Settings persist on the handle (and its open connections are
    // reused), so set everything a call depends on each time.
    common_options(easy, static_cast<curl_slist*>(headers_), &body);
    curl_api().easy_setopt(easy, CURLOPT_URL, url_of(ep, path).c_str());
    curl_api().easy_setopt(easy, CURLOPT_POSTFIELDS, payload.c_str());
    curl_api().easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    curl_api().easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.value_or(request_timeout_).count()));
    CURLcode rc = curl_api().easy_perform(easy);
    if (rc != CURLE_OK) {
      problems += (problems.empty() ? "" : "; ") + ep + ": " + curl_api().easy_strerror(rc);
      reply.error = curl_error(rc);
      continue;
    }
    long http = 0;
    curl_api().easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http);
    Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      problems += (problems.empty() ? "" : "; ") + ep + ": HTTP " + std::to_string(http) +
                  " with a body that is not JSON (is this an etcd v3.4+ client URL?)";
      reply.error = std::make_error_code(std::errc::protocol_error);
      continue;
    }
    auto err = parsed.find("error");
    if (http == 200 && err == parsed.end()) {
      preferred_ = member;
      reply.status = Reply::Status::kOk;
      reply.body = std::move(parsed);
      return reply;
    }
    // Unary errors: {"error": "...", "message": "...", "code": N}; errors
    // of streaming methods (lease keep-alive): {"error": {"grpc_code": N,
    // "message": "..."}}.
    int code = 0;
    std::string message = "HTTP " + std::to_string(http);
    if (err != parsed.end() && err->is_object()) {
      code = static_cast<int>(int_field(*err, "grpc_code"));
      message = err->value("message", message);
    } else {
      code = static_cast<int>(int_field(parsed, "code"));
      if (auto m = parsed.find("message"); m != parsed.end() && m->is_string()) message = m->get<std::string>();
    }
    if (code == kGrpcUnavailable || code == kGrpcDeadlineExceeded || (http >= 500 && code == 0)) {
      problems += (problems.empty() ? "" : "; ") + ep + ": " + message;
      reply.error = std::make_error_code(code == kGrpcDeadlineExceeded ? std::errc::timed_out
                                                                       : std::errc::resource_unavailable_try_again);
      continue;
    }
    preferred_ = member;
    reply.status = Reply::Status::kRefused;
    reply.grpc_code = code;
    reply.message = std::move(message);
    return reply;
  }
  reply.status = Reply::Status::kUnreachable;
  reply.message = std::move(problems);
  return reply;
}

WatchStream::WatchStream(std::vector<std::string> endpoints, std::size_t preferred)
    : endpoints_(std::move(endpoints)), preferred_(preferred) {
  global_init();
}

WatchStream::~WatchStream() {
  close();
  if (multi_) curl_api().multi_cleanup(static_cast<CURLM*>(multi_));
  if (headers_) curl_api().slist_free_all(static_cast<curl_slist*>(headers_));
}

void WatchStream::abandon() noexcept {
  easy_ = nullptr;
  multi_ = nullptr;
  headers_ = nullptr;
}

void WatchStream::close() noexcept {
  if (!easy_) return;
  curl_api().multi_remove_handle(static_cast<CURLM*>(multi_), static_cast<CURL*>(easy_));
  curl_api().easy_cleanup(static_cast<CURL*>(easy_));
  easy_ = nullptr;
}

bool WatchStream::open(const std::string& key, std::int64_t start_revision, std::chrono::milliseconds open_timeout,
                       std::string* problem, int wake_fd) {
  key_ = key;
  next_revision_ = start_revision;
  return reopen(open_timeout, problem, wake_fd);
}

bool WatchStream::reopen(std::chrono::milliseconds open_timeout, std::string* problem, int wake_fd) {
  close();
  std::string problems;
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    std::size_t member = (preferred_ + i) % endpoints_.size();
    std::string why;
    Result r = open_on(member, open_timeout, &why, wake_fd);
    if (r == Result::kEvents) {
      preferred_ = member;
      return true;
    }
    if (r == Result::kCancelled) {
      *problem = "cancelled";
      return false;
    }
    problems += (problems.empty() ? "" : "; ") + endpoints_[member] + ": " + why;
  }
  *problem = problems;
  return false;
}

WatchStream::Result WatchStream::open_on(std::size_t member, std::chrono::milliseconds open_timeout,
                                         std::string* problem, int wake_fd) {
  if (!multi_) multi_ = curl_api().multi_init();
  if (!headers_) headers_ = json_headers();
  CURL* easy = curl_api().easy_init();
  if (!multi_ || !headers_ || !easy) {
    if (easy) curl_api().easy_cleanup(easy);
    *problem = "cannot create a curl handle" + (curl_api().problem.empty() ? std::string() : ": " + curl_api().problem);
    return Result::kBroken;
  }
  buffer_.clear();
  error_.clear();
  pending_.clear();
  ended_.reset();
  created_ = false;
  Json request = {{"create_request", {{"key", base64_encode(key_)}}}};
  if (next_revision_ > 0) request["create_request"]["start_revision"] = std::to_string(next_revision_);
  body_ = request.dump();
  common_options(easy, static_cast<curl_slist*>(headers_), &buffer_);
  curl_api().easy_setopt(easy, CURLOPT_URL, url_of(endpoints_[member], "/v3/watch").c_str());
  curl_api().easy_setopt(easy, CURLOPT_POSTFIELDS, body_.c_str());
  curl_api().easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(body_.size()));
  // A stream ends only when we close it or the member goes away; TCP
  // keep-alive notices a member whose host vanished without a reset.
  curl_api().easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_api().easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 5L);
  curl_api().easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 2L);
  if (curl_api().multi_add_handle(static_cast<CURLM*>(multi_), easy) != CURLM_OK) {
    curl_api().easy_cleanup(easy);
    *problem = "cannot add the watch to curl";
    return Result::kBroken;
  }
  easy_ = easy;
  Result r = pump(Clock::now() + open_timeout, wake_fd, /*until_created=*/true);
  if (created_ && r != Result::kBroken && r != Result::kCompacted && r != Result::kCancelled) return Result::kEvents;
  *problem = r == Result::kTimeout ? "no answer to the watch request" : error_.empty() ? "the watch failed" : error_;
  close();
  return r == Result::kCancelled ? r : Result::kBroken;
}

bool WatchStream::parse_lines(Result* result) {
  bool done = false;
  std::size_t start = 0;
  for (std::size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
    Json message = Json::parse(buffer_.begin() + start, buffer_.begin() + nl, nullptr, false);
    if (message.is_discarded() || !message.is_object()) continue;
    if (auto err = message.find("error"); err != message.end()) {
      error_ = err->is_object() ? err->value("message", std::string("watch error")) : err->dump();
      *result = Result::kBroken;
      done = true;
      continue;
    }
    auto res = message.find("result");
    if (res == message.end() || !res->is_object()) continue;
    if (res->value("created", false)) {
      created_ = true;
      done = true;
    }
    if (res->value("canceled", false)) {
      error_ = res->value("cancel_reason", std::string("the watch was cancelled by etcd"));
      *result = int_field(*res, "compact_revision") > 0 ? Result::kCompacted : Result::kBroken;
      done = true;
      continue;
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
  buffer_.erase(0, start);
  return done;
}

WatchStream::Result WatchStream::pump(std::optional<Clock::time_point> deadline, int wake_fd,
                                      bool until_created) {
  CURLM* multi = static_cast<CURLM*>(multi_);
  for (;;) {
    if (!easy_) return Result::kBroken;
    if (ended_) return *ended_;
    int running = 0;
    curl_api().multi_perform(multi, &running);
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
    while (CURLMsg* msg = curl_api().multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy_) {
        if (error_.empty())
          error_ = msg->data.result == CURLE_OK ? "the member closed the watch stream"
                                                : curl_api().easy_strerror(msg->data.result);
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
    curl_api().multi_poll(multi, wake_fd >= 0 ? &extra : nullptr, wake_fd >= 0 ? 1 : 0, wait_ms, nullptr);
    if (wake_fd >= 0 && (extra.revents & CURL_WAIT_POLLIN)) return Result::kCancelled;
  }
}

WatchStream::Result WatchStream::wait(std::optional<Clock::time_point> deadline, int wake_fd,
                                      std::vector<WatchEvent>* events) {
  events->clear();
  Result r = pending_.empty() ? (easy_ ? pump(deadline, wake_fd, /*until_created=*/false) : Result::kBroken)
                              : Result::kEvents;
  if (r == Result::kEvents) events->swap(pending_);
  return r;
}

}  // namespace pidlock::detail::etcd
