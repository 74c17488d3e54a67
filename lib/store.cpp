#include "store.hpp"

#include <string_view>

namespace pidlock::detail {

Store* store_for(const boost::filesystem::path& address, Failure& failure) {
  constexpr std::string_view kEtcdScheme = "etcd://";
  if (address.native().compare(0, kEtcdScheme.size(), kEtcdScheme) != 0) return &file_store();
#if PIDLOCK_HAVE_ETCD
  (void)failure;
  return &etcd_store();
#else
  failure = pidlock_failure(errc::invalid_argument, "use lock address",
                            "this build of pidlock has no etcd support (configure with -DPIDLOCK_WITH_ETCD=ON)");
  return nullptr;
#endif
}

}  // namespace pidlock::detail
