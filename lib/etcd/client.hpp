// etcd v3 through its HTTP/JSON gateway (grpc-gateway, built into every
// etcd server): unary calls with fail-over across the cluster's members,
// and the streaming watch.
//
// The gateway speaks proto3 JSON: 64-bit integers are strings, `bytes`
// fields (keys, values) are base64, and fields with zero values are left
// out. The helpers below read it that way.
//
// Thread safety: a Client or WatchStream is used by one thread at a time.
// Neither is used after fork() (the child never calls etcd).
#ifndef PIDLOCK_ETCD_CLIENT_HPP
#define PIDLOCK_ETCD_CLIENT_HPP

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pidlock::detail::etcd {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Per-request bound on a unary call to one member. A member that accepts
// the connection but does not answer (frozen, partitioned) costs this much
// before the next member is tried.
inline constexpr std::chrono::milliseconds kRequestTimeout{2000};
inline constexpr std::chrono::milliseconds kConnectTimeout{1000};

// What a unary call produced.
struct Reply {
  enum class Status {
    kOk,           // `body` holds the response message
    kUnreachable,  // no member answered (connection errors, timeouts,
                   //   "no leader"): the state of the cluster is unknown
    kRefused,      // a member answered with an error (grpc_code, message)
  };
  Status status = Status::kUnreachable;
  Json body;
  int grpc_code = 0;
  std::string message;  // kRefused: etcd's message; kUnreachable: per-member errors
  // kUnreachable: the last member's failure as an error code
  // (ECONNREFUSED, ETIMEDOUT, EAGAIN for "no leader", ...).
  std::error_code error;
  bool ok() const noexcept { return status == Status::kOk; }
};

// gRPC status codes the gateway reports, as far as we act on them.
inline constexpr int kGrpcNotFound = 5;

class Client {
 public:
  explicit Client(std::vector<std::string> endpoints, std::chrono::milliseconds request_timeout = kRequestTimeout);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // POSTs `request` to `path` ("/v3/kv/range", ...) on the member that
  // answered last, then on the others in order. Moves on only when a member
  // cannot be reached or says it cannot serve (Unavailable, DeadlineExceeded:
  // no leader, leader changed, request timed out); any other answer is
  // final. `timeout` bounds each member's attempt (default: the client's).
  Reply call(std::string_view path, const Json& request,
             std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  const std::vector<std::string>& endpoints() const noexcept { return endpoints_; }
  // The member to try first (the last that answered).
  std::size_t preferred() const noexcept { return preferred_; }

  // Leaks the curl handle instead of cleaning it up: for a forked child,
  // whose copy of the parent's connection must not be touched.
  void abandon() noexcept;

 private:
  std::vector<std::string> endpoints_;
  std::chrono::milliseconds request_timeout_;
  std::size_t preferred_ = 0;
  void* easy_ = nullptr;     // CURL*
  void* headers_ = nullptr;  // curl_slist*
};

// A key-value pair as etcd reports it (value decoded).
struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

// Reads a proto3-JSON int64 (a string, or a number from a lenient writer);
// 0 when absent or malformed.
std::int64_t int_field(const Json& object, const char* name);
// Parses a mvccpb.KeyValue; nullopt if it is not one.
std::optional<KeyValue> parse_kv(const Json& kv);
// The first kv of a RangeResponse (kvs[0]), if any.
std::optional<KeyValue> first_kv(const Json& range_response);

struct WatchEvent {
  bool deleted = false;
  KeyValue kv;  // for a delete: key and mod_revision only
};

// One watch on one key, over the gateway's streaming /v3/watch: each
// message is a JSON object on its own line. Resuming after a broken stream
// starts from the revision after the last event seen, so no event is lost
// (unless etcd compacted it away, which the stream reports).
class WatchStream {
 public:
  explicit WatchStream(std::vector<std::string> endpoints, std::size_t preferred = 0);
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Starts watching `key` from `start_revision`, on the preferred member
  // first, then the others. Returns false with *problem when no member
  // accepted the watch within `open_timeout` each, or `wake_fd` (-1: none)
  // became readable.
  bool open(const std::string& key, std::int64_t start_revision, std::chrono::milliseconds open_timeout,
            std::string* problem, int wake_fd = -1);
  // Opens again after kBroken, from the revision after the last event seen.
  bool reopen(std::chrono::milliseconds open_timeout, std::string* problem, int wake_fd = -1);
  bool is_open() const noexcept { return easy_ != nullptr; }
  void close() noexcept;

  enum class Result {
    kEvents,     // *events holds at least one event
    kTimeout,    // the deadline passed
    kCancelled,  // `wake_fd` became readable
    kBroken,     // the stream ended (member gone); reopen()
    kCompacted,  // the revision to resume from is gone; look at the key again
  };
  // Waits for events until `deadline` (none: no limit) or `wake_fd` (-1:
  // none) is readable.
  Result wait(std::optional<Clock::time_point> deadline, int wake_fd, std::vector<WatchEvent>* events);

  // The revision after the last event seen: where a resumed watch starts.
  std::int64_t next_revision() const noexcept { return next_revision_; }

  void abandon() noexcept;  // see Client::abandon

 private:
  // kEvents once created; kCancelled when `wake_fd` fired; else failed.
  Result open_on(std::size_t endpoint, std::chrono::milliseconds open_timeout, std::string* problem, int wake_fd);
  // Parses complete lines of the buffer: returns true when the stream said
  // something that ends a wait (events, cancel, error).
  bool parse_lines(Result* result);
  Result pump(std::optional<Clock::time_point> deadline, int wake_fd, bool until_created);

  std::vector<std::string> endpoints_;
  std::size_t preferred_;
  std::string key_;
  std::int64_t next_revision_ = 0;
  bool created_ = false;
  std::optional<Result> ended_;  // kBroken/kCompacted once the stream ended
  std::vector<WatchEvent> pending_;  // parsed, not yet handed out
  std::string buffer_;
  std::string body_;
  std::string error_;
  void* multi_ = nullptr;    // CURLM*
  void* easy_ = nullptr;     // CURL*, while open
  void* headers_ = nullptr;  // curl_slist*
};

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_CLIENT_HPP
