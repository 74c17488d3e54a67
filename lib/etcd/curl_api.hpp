// libcurl, loaded when the first etcd:// address is used (dlopen), not at
// program start. Linking libcurl directly would make every program that
// links pidlock load libcurl and its ~30 dependencies (TLS, Kerberos, LDAP)
// at start-up, which tripled the start-up cost of the pidlock command even
// for plain lock files.
#ifndef PIDLOCK_ETCD_CURL_API_HPP
#define PIDLOCK_ETCD_CURL_API_HPP

#include <curl/curl.h>

#include <string>

namespace pidlock::detail::etcd {

// The libcurl functions the etcd client uses. When libcurl cannot be loaded,
// every member points to a stand-in that fails (the init functions return
// null), and problem() says why.
struct CurlApi {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
  decltype(&::curl_multi_init) multi_init;
  decltype(&::curl_multi_add_handle) multi_add_handle;
  decltype(&::curl_multi_remove_handle) multi_remove_handle;
  decltype(&::curl_multi_perform) multi_perform;
  decltype(&::curl_multi_poll) multi_poll;
  decltype(&::curl_multi_info_read) multi_info_read;
  decltype(&::curl_multi_cleanup) multi_cleanup;
  std::string problem;  // empty when libcurl was loaded
};

// Loads libcurl.so.4 on first use (thread-safe); never unloaded.
const CurlApi& curl_api();

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_CURL_API_HPP
