#include "etcd/address.hpp"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

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
bool valid_host_port(std::string_view ep) {
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

// Reads the endpoint list up to the '/' that starts the key; *rest is left
// at that '/'. An endpoint may carry its own scheme, which contains slashes.
bool parse_endpoints(std::string_view* rest, std::vector<Endpoint>* out, std::string* problem) {
  for (;;) {
    Endpoint ep;
    for (std::string_view scheme : {std::string_view("https://"), std::string_view("http://")}) {
      if (rest->compare(0, scheme.size(), scheme) == 0) {
        ep.tls = scheme.size() == 8;
        rest->remove_prefix(scheme.size());
        break;
      }
    }
    std::size_t end = rest->find_first_of(",/");
    std::string_view hp = rest->substr(0, end);
    if (!valid_host_port(hp)) {
      *problem = hp.empty() ? "no endpoint: write etcd://HOST:PORT[,HOST:PORT...]/prefix/name"
                            : "\"" + std::string(hp) + "\" is not an endpoint of the form [https://]HOST:PORT";
      return false;
    }
    ep.host_port = std::string(hp);
    out->push_back(std::move(ep));
    if (end == std::string_view::npos) {
      *problem = "no key: write etcd://HOST:PORT[,HOST:PORT...]/prefix/name";
      return false;
    }
    rest->remove_prefix(end);
    if ((*rest)[0] == '/') return true;
    rest->remove_prefix(1);  // the comma
    if (rest->empty() || (*rest)[0] == '/') {
      *problem = "a trailing comma after the last endpoint";
      return false;
    }
  }
}

// %XX escapes in option values (a file name with '&' or '?', say).
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      *out += in[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= in.size()) return false;
    auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16);
    if (ec != std::errc() || end != in.data() + i + 3 || value == 0) return false;
    *out += static_cast<char>(value);
    i += 2;
  }
  return true;
}

bool parse_option(std::string_view item, Address* out, std::string* problem) {
  std::size_t eq = item.find('=');
  std::string_view name = item.substr(0, eq);
  std::string value;
  if (eq == std::string_view::npos || !percent_decode(item.substr(eq + 1), &value) || value.empty()) {
    *problem = "option \"" + std::string(item) + "\" needs a value (NAME=VALUE, %XX escapes allowed)";
    return false;
  }
  if (name == "ttl") {
    long long ttl = 0;
    if (!parse_unsigned(value, kMaxTtl.count(), &ttl)) {
      *problem = "ttl must be a whole number of seconds from 1 to " + std::to_string(kMaxTtl.count());
      return false;
    }
    out->ttl = std::chrono::seconds(ttl);
  } else if (name == "cacert") {
    out->cluster.security.ca_file = value;
  } else if (name == "cert") {
    out->cluster.security.cert_file = value;
  } else if (name == "key") {
    out->cluster.security.key_file = value;
  } else if (name == "user") {
    out->cluster.security.user = value;
  } else if (name == "password") {
    *problem = "a password is never read from the address (it would show in process lists and logs): "
               "set ETCDCTL_PASSWORD, or ETCDCTL_USER=NAME:PASSWORD";
    return false;
  } else {
    *problem = "unknown option \"" + std::string(name) + "\" (known: ttl, cacert, cert, key, user)";
    return false;
  }
  return true;
}

std::string env(const GetEnv& getenv, const char* name) {
  const char* v = getenv ? getenv(name) : std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Fills what the address left out from ETCDCTL_* and checks the result.
bool complete_security(const GetEnv& getenv, bool address_has_tls_files, Address* out, std::string* problem) {
  Security& s = out->cluster.security;
  bool any_tls = false;
  for (const auto& ep : out->cluster.endpoints) any_tls = any_tls || ep.tls;
  if (address_has_tls_files && !any_tls) {
    *problem = "cacert, cert and key apply to https:// endpoints, and none is listed";
    return false;
  }
  if (any_tls) {
    if (s.ca_file.empty()) s.ca_file = env(getenv, "ETCDCTL_CACERT");
    if (s.cert_file.empty() && s.key_file.empty()) {
      s.cert_file = env(getenv, "ETCDCTL_CERT");
      s.key_file = env(getenv, "ETCDCTL_KEY");
    }
  }
  if (s.cert_file.empty() != s.key_file.empty()) {
    *problem = "a client certificate needs its key, and a key its certificate (cert= and key=)";
    return false;
  }
  for (const std::string* file : {&s.ca_file, &s.cert_file, &s.key_file}) {
    if (!file->empty() && ::access(file->c_str(), R_OK) != 0) {
      *problem = "cannot read \"" + *file + "\": " + std::strerror(errno);
      return false;
    }
  }
  // etcdctl's ETCDCTL_USER is "name" or "name:password".
  std::string env_user = env(getenv, "ETCDCTL_USER");
  std::string env_password;
  if (std::size_t colon = env_user.find(':'); colon != std::string::npos) {
    env_password = env_user.substr(colon + 1);
    env_user.resize(colon);
  }
  if (s.user.empty()) s.user = env_user;
  if (!s.user.empty()) {
    s.password = env(getenv, "ETCDCTL_PASSWORD");
    if (s.password.empty() && s.user == env_user) s.password = env_password;
  }
  return true;
}

}  // namespace

Cluster Cluster::plain(const std::vector<std::string>& host_ports) {
  Cluster c;
  for (const auto& hp : host_ports) c.endpoints.push_back(Endpoint{hp, false});
  return c;
}

std::string Cluster::describe() const {
  std::string out;
  for (const auto& ep : endpoints) {
    if (!out.empty()) out += ',';
    out += ep.tls ? ep.url() : ep.host_port;
  }
  return out;
}

bool parse_address(const std::string& text, Address* out, std::string* problem, const GetEnv& getenv) {
  *out = Address{};
  out->text = text;
  if (text.compare(0, kScheme.size(), kScheme) != 0) {
    *problem = "an etcd lock address starts with etcd://";
    return false;
  }
  std::string_view rest = std::string_view(text).substr(kScheme.size());
  if (!parse_endpoints(&rest, &out->cluster.endpoints, problem)) return false;
  std::string_view path = rest;
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
    if (!parse_option(query.substr(0, amp), out, problem)) return false;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  const Security& s = out->cluster.security;
  bool tls_files = !s.ca_file.empty() || !s.cert_file.empty() || !s.key_file.empty();
  return complete_security(getenv, tls_files, out, problem);
}

}  // namespace pidlock::detail::etcd
