// The curl settings every request to a member shares (unary calls and
// watches): TLS files, headers, limits; and what a failed transfer means.
#ifndef PIDLOCK_ETCD_TRANSPORT_HPP
#define PIDLOCK_ETCD_TRANSPORT_HPP

#include "etcd/address.hpp"
#include "etcd/curl_api.hpp"

#include <chrono>
#include <string>
#include <system_error>

namespace pidlock::detail::etcd {

// The longest a connection attempt to one member may take before a call
// gives up on it (the call's own deadline may end it sooner).
inline constexpr std::chrono::milliseconds kConnectTimeout{1000};

// curl_global_init, once per process, before any handle.
void curl_global_setup();

// One request's curl handle and what it received.
struct Transfer {
  CURL* easy = nullptr;
  std::string response;
  char error[CURL_ERROR_SIZE] = {};
};

// Request headers: JSON, no "Expect: 100-continue" round trip, the auth
// token when there is one, and (for watches) "require a leader", so that a
// member cut off from its cluster ends our watch instead of leaving it
// silent. Null when curl cannot allocate.
curl_slist* make_headers(const std::string& token, bool require_leader);

// Sets on `t.easy` everything but the URL, body and timeout: TLS files,
// `headers`, the response buffer, no proxy from the environment.
void set_common_options(Transfer& t, const Security& security, curl_slist* headers);

// Sets the URL, the POST body (which must outlive the transfer) and the
// time the transfer may take.
void set_request(Transfer& t, const std::string& url, const std::string& body, std::chrono::milliseconds timeout);

// Did a failed transfer fail because of the member's state (try another
// member) or because the settings do not fit the server (a TLS
// certificate that does not verify, https to a plain HTTP port, a server
// that does not speak HTTP)?
enum class TransferFailure {
  kMemberState,    // down, frozen, resetting: another member may answer
  kMisconfigured,  // the settings do not fit the server
  kSuspect,        // the server accepted the connection and closed it
                   //   without an answer (in the TLS handshake, or after
                   //   the request): https to a plain port, plain HTTP to a
                   //   TLS port, a client certificate refused — or a member
                   //   going away. Ask it once more: a member going away
                   //   refuses the second connection.
};
TransferFailure judge_failure(CURLcode rc, const char* error_buffer);

// The failure as an error code (ECONNREFUSED, ETIMEDOUT, ...).
std::error_code transfer_error(CURLcode rc);

// "host:port: <curl's detailed message>".
std::string describe_failure(const Endpoint& endpoint, CURLcode rc, const char* error_buffer);

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_TRANSPORT_HPP
