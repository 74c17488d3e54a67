#include "etcd/address.hpp"

#include <cctype>
#include <charconv>

namespace pidlock::detail::etcd {

namespace {

constexpr std::string_view kScheme = "etcd://";

bool parse_unsigned(std::string_view text, long long max, long long* out) {
  if (text.empty() || text.size() > 12) return false;
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 1 || v > max) return false;
  *out = v;
  return true;
}

// "host:port" or "[v6]:port", with a host of sane characters only: the
// endpoint becomes part of a URL, so nothing that could change its meaning
// ('@', '/', '?', '#', spaces) gets through.
bool valid_endpoint(std::string_view ep) {
  std::size_t colon = ep.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = ep.substr(0, colon);
  long long port = 0;
  if (!parse_unsigned(ep.substr(colon + 1), 65535, &port)) return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    for (char c : host.substr(1, host.size() - 2))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    return true;
  }
  for (char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') return false;
  return true;
}

}  // namespace

bool parse_address(const std::string& text, Address* out, std::string* problem) {
  *out = Address{};
  out->text = text;
  if (text.compare(0, kScheme.size(), kScheme) != 0) {
    *problem = "an etcd lock address starts with etcd://";
    return false;
  }
  std::string_view rest = std::string_view(text).substr(kScheme.size());
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    *problem = "no key: write etcd://HOST:PORT[,HOST:PORT...]/prefix/name";
    return false;
  }
  std::string_view hosts = rest.substr(0, slash);
  std::string_view path = rest.substr(slash);
  while (!hosts.empty()) {
    std::size_t comma = hosts.find(',');
    std::string_view ep = hosts.substr(0, comma);
    if (!valid_endpoint(ep)) {
      *problem = "\"" + std::string(ep) + "\" is not an endpoint of the form HOST:PORT";
      return false;
    }
    out->endpoints.emplace_back(ep);
    if (comma == std::string_view::npos) break;
    hosts.remove_prefix(comma + 1);
    if (hosts.empty()) {
      *problem = "a trailing comma after the last endpoint";
      return false;
    }
  }
  if (out->endpoints.empty()) {
    *problem = "no endpoint: write etcd://HOST:PORT[,HOST:PORT...]/prefix/name";
    return false;
  }
  std::string_view query;
  if (std::size_t q = path.find('?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  if (path.size() < 2 || path.back() == '/') {
    *problem = "the key must name something below /, e.g. /locks/mydb";
    return false;
  }
  for (char c : path)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      *problem = "the key contains a control character";
      return false;
    }
  out->key = std::string(path);
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    if (item.compare(0, 4, "ttl=") == 0) {
      long long ttl = 0;
      if (!parse_unsigned(item.substr(4), kMaxTtl.count(), &ttl)) {
        *problem = "ttl must be a whole number of seconds from 1 to " + std::to_string(kMaxTtl.count());
        return false;
      }
      out->ttl = std::chrono::seconds(ttl);
    } else {
      *problem = "unknown option \"" + std::string(item) + "\" (known: ttl=SECONDS)";
      return false;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return true;
}

std::string join_endpoints(const std::vector<std::string>& endpoints) {
  std::string out;
  for (const auto& ep : endpoints) {
    if (!out.empty()) out += ',';
    out += ep;
  }
  return out;
}

}  // namespace pidlock::detail::etcd
