#include "etcd/curl_api.hpp"

#include <dlfcn.h>

namespace pidlock::detail::etcd {
namespace {

// Stand-ins used when libcurl is missing: creating a handle fails, so every
// etcd call reports an error (naming CurlApi::problem) instead of crashing.
CURLcode no_global_init(long) { return CURLE_FAILED_INIT; }
CURL* no_easy_init() { return nullptr; }
CURLcode no_easy_setopt(CURL*, CURLoption, ...) { return CURLE_FAILED_INIT; }
CURLcode no_easy_perform(CURL*) { return CURLE_FAILED_INIT; }
CURLcode no_easy_getinfo(CURL*, CURLINFO, ...) { return CURLE_FAILED_INIT; }
void no_easy_cleanup(CURL*) {}
const char* no_easy_strerror(CURLcode) { return "libcurl is not available"; }
curl_slist* no_slist_append(curl_slist*, const char*) { return nullptr; }
void no_slist_free_all(curl_slist*) {}
CURLM* no_multi_init() { return nullptr; }
CURLMcode no_multi_add_handle(CURLM*, CURL*) { return CURLM_INTERNAL_ERROR; }
CURLMcode no_multi_remove_handle(CURLM*, CURL*) { return CURLM_INTERNAL_ERROR; }
CURLMcode no_multi_perform(CURLM*, int*) { return CURLM_INTERNAL_ERROR; }
CURLMcode no_multi_poll(CURLM*, curl_waitfd*, unsigned, int, int*) { return CURLM_INTERNAL_ERROR; }
CURLMsg* no_multi_info_read(CURLM*, int*) { return nullptr; }
CURLMcode no_multi_cleanup(CURLM*) { return CURLM_INTERNAL_ERROR; }

CurlApi missing(std::string problem) {
  return CurlApi{no_global_init,   no_easy_init,           no_easy_setopt,    no_easy_perform,
                 no_easy_getinfo,  no_easy_cleanup,        no_easy_strerror,  no_slist_append,
                 no_slist_free_all, no_multi_init,         no_multi_add_handle, no_multi_remove_handle,
                 no_multi_perform, no_multi_poll,          no_multi_info_read, no_multi_cleanup,
                 std::move(problem)};
}

template <typename F>
bool bind(void* library, const char* name, F* out, std::string* problem) {
  void* symbol = ::dlsym(library, name);
  if (symbol == nullptr) {
    *problem = std::string("libcurl lacks ") + name;
    return false;
  }
  *out = reinterpret_cast<F>(symbol);
  return true;
}

CurlApi load() {
  void* library = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = ::dlerror();
    return missing(std::string("cannot load libcurl.so.4 (needed for etcd:// addresses): ") +
                   (why != nullptr ? why : "unknown error"));
  }
  CurlApi api = missing({});
  std::string problem;
  bool ok = bind(library, "curl_global_init", &api.global_init, &problem) &&
            bind(library, "curl_easy_init", &api.easy_init, &problem) &&
            bind(library, "curl_easy_setopt", &api.easy_setopt, &problem) &&
            bind(library, "curl_easy_perform", &api.easy_perform, &problem) &&
            bind(library, "curl_easy_getinfo", &api.easy_getinfo, &problem) &&
            bind(library, "curl_easy_cleanup", &api.easy_cleanup, &problem) &&
            bind(library, "curl_easy_strerror", &api.easy_strerror, &problem) &&
            bind(library, "curl_slist_append", &api.slist_append, &problem) &&
            bind(library, "curl_slist_free_all", &api.slist_free_all, &problem) &&
            bind(library, "curl_multi_init", &api.multi_init, &problem) &&
            bind(library, "curl_multi_add_handle", &api.multi_add_handle, &problem) &&
            bind(library, "curl_multi_remove_handle", &api.multi_remove_handle, &problem) &&
            bind(library, "curl_multi_perform", &api.multi_perform, &problem) &&
            bind(library, "curl_multi_poll", &api.multi_poll, &problem) &&
            bind(library, "curl_multi_info_read", &api.multi_info_read, &problem) &&
            bind(library, "curl_multi_cleanup", &api.multi_cleanup, &problem);
  if (!ok) return missing(problem);
  return api;
}

}  // namespace

const CurlApi& curl_api() {
  static const CurlApi api = load();
  return api;
}

}  // namespace pidlock::detail::etcd
