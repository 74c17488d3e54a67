#include "etcd/lock_queue.hpp"

#include "etcd/base64.hpp"

#include <cstdio>

namespace pidlock::detail::etcd {

namespace {

// The end of the range of keys that start with `prefix` (etcd's
// GetPrefixRangeEnd): the prefix with its last byte incremented. The prefix
// always ends in '/', so there is no overflow to carry.
std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  return end;
}

Json range_of_prefix(const std::string& name) {
  const std::string prefix = lock_prefix(name);
  return Json{{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_end(prefix))}};
}

Json put(const std::string& key, std::int64_t lease, const std::string& value) {
  return Json{{"request_put",
               {{"key", base64_encode(key)}, {"value", base64_encode(value)}, {"lease", std::to_string(lease)}}}};
}

Json range(Json request) { return Json{{"request_range", std::move(request)}}; }

}  // namespace

std::string lock_prefix(const std::string& name) { return name + "/"; }

std::string contender_key(const std::string& name, std::int64_t lease) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease));
  return lock_prefix(name) + hex;
}

Json holder_request(const std::string& name) {
  Json r = range_of_prefix(name);
  r["sort_order"] = "ASCEND";
  r["sort_target"] = "CREATE";
  r["limit"] = "1";
  return r;
}

Json try_request(const std::string& name, std::int64_t lease, const std::string& value) {
  // With a range, the comparison holds when it holds for every key in the
  // range, and for a missing key etcd compares zeros: "create revision 0
  // over the prefix" means "no key under the prefix".
  Json all = range_of_prefix(name);
  Json empty = {{"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"},
                {"key", all["key"]}, {"range_end", all["range_end"]}};
  return Json{{"compare", Json::array({empty})},
              {"success", Json::array({put(contender_key(name, lease), lease, value)})},
              {"failure", Json::array({range(holder_request(name))})}};
}

Json enqueue_request(const std::string& name, std::int64_t lease, const std::string& value) {
  const std::string key = contender_key(name, lease);
  Json absent = {{"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}, {"key", base64_encode(key)}};
  return Json{{"compare", Json::array({absent})},
              {"success", Json::array({put(key, lease, value), range(holder_request(name))})},
              {"failure", Json::array({range(Json{{"key", base64_encode(key)}}), range(holder_request(name))})}};
}

Json position_request(const std::string& name, std::int64_t own_revision) {
  Json r = range_of_prefix(name);
  r["sort_order"] = "DESCEND";
  r["sort_target"] = "CREATE";
  r["limit"] = "2";
  r["max_create_revision"] = std::to_string(own_revision);
  return r;
}

const Json* txn_range(const Json& txn_response, std::size_t n) {
  auto rs = txn_response.find("responses");
  if (rs == txn_response.end() || !rs->is_array() || rs->size() <= n) return nullptr;
  auto rr = (*rs)[n].find("response_range");
  if (rr == (*rs)[n].end() || !rr->is_object()) return nullptr;
  return &*rr;
}

}  // namespace pidlock::detail::etcd
