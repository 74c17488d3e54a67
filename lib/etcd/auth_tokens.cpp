#include "etcd/auth_tokens.hpp"

#include <map>
#include <mutex>

namespace pidlock::detail::etcd {

namespace {

std::mutex& tokens_mutex() {
  static std::mutex m;
  return m;
}

std::map<std::string, std::string>& tokens() {
  static std::map<std::string, std::string> t;
  return t;
}

std::string key_of(const Cluster& cluster) { return cluster.describe() + '\n' + cluster.security.user; }

}  // namespace

std::string cached_token(const Cluster& cluster) {
  std::lock_guard<std::mutex> guard(tokens_mutex());
  auto it = tokens().find(key_of(cluster));
  return it == tokens().end() ? std::string() : it->second;
}

void cache_token(const Cluster& cluster, const std::string& token) {
  std::lock_guard<std::mutex> guard(tokens_mutex());
  tokens()[key_of(cluster)] = token;
}

void forget_token(const Cluster& cluster, const std::string& token) {
  std::lock_guard<std::mutex> guard(tokens_mutex());
  auto it = tokens().find(key_of(cluster));
  if (it != tokens().end() && it->second == token) tokens().erase(it);
}

}  // namespace pidlock::detail::etcd
