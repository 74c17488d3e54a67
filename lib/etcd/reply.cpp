#include "etcd/reply.hpp"

#include "etcd/base64.hpp"

namespace pidlock::detail::etcd {

namespace {

// The start of a body, printable, for messages about what answered.
std::string excerpt(const std::string& body) {
  std::string out;
  for (unsigned char c : body.substr(0, 60)) out += (c < 0x20 || c >= 0x7f) ? ' ' : static_cast<char>(c);
  if (body.size() > 60) out += "...";
  return out.empty() ? "(empty)" : "\"" + out + "\"";
}

// Does `object` carry an etcd ResponseHeader? *cluster_id gets its cluster.
bool has_etcd_header(const Json& object, std::string* cluster_id) {
  if (!object.is_object()) return false;
  auto h = object.find("header");
  if (h == object.end() || !h->is_object()) return false;
  auto cluster = h->find("cluster_id");
  auto member = h->find("member_id");
  if (cluster == h->end() || member == h->end() || !cluster->is_string() || !member->is_string()) return false;
  *cluster_id = cluster->get<std::string>();
  return !cluster_id->empty() && *cluster_id != "0";
}

// Errors that no other member will answer differently, but that mean the
// credentials or the address are wrong rather than that the lock is held.
bool is_credentials_error(const std::string& message) {
  for (const char* m : {"authentication failed", "user name is empty", "user name not found"})
    if (message.find(m) != std::string::npos) return true;
  return false;
}

Answer judge_error(long http, const Json& parsed) {
  Answer a;
  auto err = parsed.find("error");
  a.message = "HTTP " + std::to_string(http);
  if (err->is_object()) {  // a streaming method's error
    a.grpc_code = static_cast<int>(int_field(*err, "grpc_code"));
    a.message = err->value("message", a.message);
  } else {
    a.grpc_code = static_cast<int>(int_field(parsed, "code"));
    if (auto m = parsed.find("message"); m != parsed.end() && m->is_string()) a.message = m->get<std::string>();
    else if (err->is_string()) a.message = err->get<std::string>();
  }
  switch (a.grpc_code) {
    case kGrpcUnavailable:
    case kGrpcDeadlineExceeded:
    case kGrpcResourceExhausted:
      a.kind = Answer::Kind::kTryAnother;
      return a;
    case kGrpcUnauthenticated:
      a.kind = Answer::Kind::kReauthenticate;
      return a;
    case 0:
      // gRPC never reports an error with code OK: a 5xx from a proxy in
      // front of a member (try another), or not etcd at all.
      a.kind = http >= 500 ? Answer::Kind::kTryAnother : Answer::Kind::kNotEtcd;
      a.message = "HTTP " + std::to_string(http) + " with an error that is not etcd's: " + parsed.dump().substr(0, 80);
      return a;
    default:
      a.kind = is_credentials_error(a.message) ? Answer::Kind::kNotEtcd : Answer::Kind::kRefused;
      return a;
  }
}

}  // namespace

Answer judge_answer(long http, const std::string& body) {
  Answer a;
  Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    // A proxy or load balancer in front of the members says the member is
    // down: another may answer. Anything else is not an etcd client URL.
    a.kind = (http == 502 || http == 503 || http == 504) ? Answer::Kind::kTryAnother : Answer::Kind::kNotEtcd;
    a.message = "HTTP " + std::to_string(http) + " with a body that is not etcd's JSON: " + excerpt(body) +
                " (is this the client URL of an etcd v3.4+ member?)";
    return a;
  }
  if (parsed.contains("error")) return judge_error(http, parsed);
  // The lease keep-alive is a streaming method: its message is in "result".
  const Json& message = parsed.contains("result") ? parsed["result"] : parsed;
  if (http != 200 || !has_etcd_header(message, &a.cluster_id)) {
    a.kind = Answer::Kind::kNotEtcd;
    a.message = "HTTP " + std::to_string(http) + " with JSON that is not an etcd response (no header naming the " +
                "cluster and member): " + excerpt(body);
    return a;
  }
  a.kind = Answer::Kind::kOk;
  a.body = std::move(parsed);
  return a;
}

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

std::int64_t header_revision(const Json& response) {
  auto h = response.find("header");
  return h == response.end() ? 0 : int_field(*h, "revision");
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

std::vector<KeyValue> range_kvs(const Json& range_response) {
  std::vector<KeyValue> out;
  auto it = range_response.find("kvs");
  if (it == range_response.end() || !it->is_array()) return out;
  for (const auto& kv : *it)
    if (auto parsed = parse_kv(kv)) out.push_back(std::move(*parsed));
  return out;
}

}  // namespace pidlock::detail::etcd
