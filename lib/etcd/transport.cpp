#include "etcd/transport.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace pidlock::detail::etcd {

namespace {

// Responses larger than this are not etcd answers about one lock.
constexpr std::size_t kMaxResponseBytes = 1 << 20;

size_t append_response(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<std::string*>(user);
  size_t n = size * count;
  if (response->size() + n > kMaxResponseBytes) return 0;  // aborts the transfer
  response->append(data, n);
  return n;
}

bool contains(const char* text, const char* what) { return text != nullptr && std::strstr(text, what) != nullptr; }

}  // namespace

void curl_global_setup() {
  // curl_global_init is not thread-safe; once per process, before any
  // handle. (Never cleaned up: other code in the process may use curl.)
  static std::once_flag once;
  std::call_once(once, [] { curl_api().global_init(CURL_GLOBAL_DEFAULT); });
}

curl_slist* make_headers(const std::string& token, bool require_leader) {
  const CurlApi& api = curl_api();
  curl_slist* h = api.slist_append(nullptr, "Content-Type: application/json");
  if (h) h = api.slist_append(h, "Expect:");
  // etcd reads the token from the "authorization" metadata, which the
  // gateway fills from this header.
  if (h && !token.empty()) h = api.slist_append(h, ("Authorization: " + token).c_str());
  // The gateway turns Grpc-Metadata-* headers into gRPC metadata; etcd
  // cancels streams that carry hasleader=true when its member has had no
  // leader for a few election timeouts (clientv3's WithRequireLeader).
  if (h && require_leader) h = api.slist_append(h, "Grpc-Metadata-hasleader: true");
  return h;
}

void set_common_options(Transfer& t, const Security& security, curl_slist* headers) {
  const CurlApi& api = curl_api();
  CURL* easy = t.easy;
  api.easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);  // we run in several threads
  // Cluster traffic never goes through an http_proxy from the environment.
  api.easy_setopt(easy, CURLOPT_PROXY, "");
  api.easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  api.easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_response);
  api.easy_setopt(easy, CURLOPT_WRITEDATA, &t.response);
  api.easy_setopt(easy, CURLOPT_ERRORBUFFER, t.error);
  api.easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  if (!security.ca_file.empty()) api.easy_setopt(easy, CURLOPT_CAINFO, security.ca_file.c_str());
  if (!security.cert_file.empty()) {
    api.easy_setopt(easy, CURLOPT_SSLCERT, security.cert_file.c_str());
    api.easy_setopt(easy, CURLOPT_SSLKEY, security.key_file.c_str());
  }
}

void set_request(Transfer& t, const std::string& url, const std::string& body, std::chrono::milliseconds timeout) {
  const CurlApi& api = curl_api();
  t.response.clear();
  t.error[0] = '\0';
  const long ms = std::max<long>(1, static_cast<long>(timeout.count()));
  api.easy_setopt(t.easy, CURLOPT_URL, url.c_str());
  api.easy_setopt(t.easy, CURLOPT_POSTFIELDS, body.c_str());
  api.easy_setopt(t.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  api.easy_setopt(t.easy, CURLOPT_TIMEOUT_MS, ms);
  api.easy_setopt(t.easy, CURLOPT_CONNECTTIMEOUT_MS, std::min<long>(ms, kConnectTimeout.count()));
}

namespace {

bool is_misconfiguration(CURLcode rc, const char* error_buffer) {
  switch (rc) {
    // The server does not speak HTTP (or speaks HTTP/0.9, which is never etcd).
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:
    // Our TLS files, or the server's certificate against them.
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
      return true;
    // A handshake can also fail because the member is going away; these
    // texts (OpenSSL's) say instead that the two sides do not fit: https to
    // a plain HTTP port, or a client certificate the server refuses (TLS
    // 1.3 reports that as an alert on the first read).
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      return contains(error_buffer, "wrong version number") || contains(error_buffer, "unknown protocol") ||
             contains(error_buffer, "packet length too long") ||
             (contains(error_buffer, "alert") &&
              (contains(error_buffer, "certificate") || contains(error_buffer, "unknown ca")));
    default:
      return false;
  }
}

}  // namespace

TransferFailure judge_failure(CURLcode rc, const char* error_buffer) {
  if (is_misconfiguration(rc, error_buffer)) return TransferFailure::kMisconfigured;
  switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:  // e.g. "SSL_ERROR_SYSCALL": EOF in the handshake
    case CURLE_GOT_NOTHING:        // "Empty reply from server"
    case CURLE_SEND_ERROR:         // e.g. a TLS 1.3 server that refused our certificate
    case CURLE_RECV_ERROR:
      return TransferFailure::kSuspect;
    default:
      return TransferFailure::kMemberState;
  }
}

std::error_code transfer_error(CURLcode rc) {
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

std::string describe_failure(const Endpoint& endpoint, CURLcode rc, const char* error_buffer) {
  std::string what = error_buffer != nullptr && error_buffer[0] != '\0' ? error_buffer : curl_api().easy_strerror(rc);
  return endpoint.host_port + ": " + what;
}

}  // namespace pidlock::detail::etcd
