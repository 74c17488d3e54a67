// What etcd's HTTP/JSON gateway answers, and how to tell an etcd answer from
// anything else.
//
// The gateway speaks proto3 JSON: 64-bit integers are strings, `bytes`
// fields (keys, values) are base64, and fields with zero values are left
// out. Every etcd response carries a header naming the cluster and the
// member; an error is {"error", "code", "message"} (unary calls) or
// {"error": {"grpc_code", "message"}} (streaming calls such as the lease
// keep-alive). Anything else — a 404 page, an HTML page, a bare {} — did not
// come from an etcd v3 client URL, and is a misconfiguration, never a
// verdict on the lock (G10).
#ifndef PIDLOCK_ETCD_REPLY_HPP
#define PIDLOCK_ETCD_REPLY_HPP

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace pidlock::detail::etcd {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// gRPC status codes the gateway reports, as far as we act on them.
inline constexpr int kGrpcInvalidArgument = 3;
inline constexpr int kGrpcDeadlineExceeded = 4;
inline constexpr int kGrpcNotFound = 5;
inline constexpr int kGrpcPermissionDenied = 7;
inline constexpr int kGrpcResourceExhausted = 8;
inline constexpr int kGrpcFailedPrecondition = 9;
inline constexpr int kGrpcUnavailable = 14;
inline constexpr int kGrpcUnauthenticated = 16;

// What a call produced.
struct Reply {
  enum class Status {
    kOk,             // `body` holds the response message
    kUnreachable,    // no member answered in time (connection errors,
                     //   timeouts, "no leader"): the cluster's state is unknown
    kRefused,        // etcd answered with an error (grpc_code, message)
    kMisconfigured,  // a member does not answer as etcd v3, or TLS or
                     //   authentication settings do not fit: `message` says
  };
  Status status = Status::kUnreachable;
  Json body;
  int grpc_code = 0;
  std::string message;  // kRefused: etcd's message; otherwise per-member errors
  // kUnreachable: the last member's failure as an error code (ECONNREFUSED,
  // ETIMEDOUT, EAGAIN for "no leader", ...).
  std::error_code error;
  bool ok() const noexcept { return status == Status::kOk; }
};

// One member's answer to one request, judged.
struct Answer {
  enum class Kind {
    kOk,
    kTryAnother,      // this member cannot serve now (unavailable, no leader,
                      //   timeout, overloaded); another member may
    kRefused,         // etcd's final answer: an error
    kReauthenticate,  // the auth token expired or is unknown
    kNotEtcd,         // not an etcd v3 answer, or credentials refused
  };
  Kind kind = Kind::kNotEtcd;
  Json body;
  int grpc_code = 0;
  std::string message;
  std::string cluster_id;  // kOk: from the response header
};

// Judges an HTTP response of status `http` with `body` to a unary call.
Answer judge_answer(long http, const std::string& body);

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
// The store revision in a response's header; 0 if missing.
std::int64_t header_revision(const Json& response);
// Parses a mvccpb.KeyValue; nullopt if it is not one.
std::optional<KeyValue> parse_kv(const Json& kv);
// The kvs of a RangeResponse, in order; entries that do not parse are left out.
std::vector<KeyValue> range_kvs(const Json& range_response);

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_REPLY_HPP
